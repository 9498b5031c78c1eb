"""The documentation stays true: links lead somewhere, named commands exist, and README.md's
sample output is what its commands print today.

Every ```console block of README.md is run as written, in order, in a scratch folder (the
demo spec copied in; my_data.csv is tests/data/seattle_weather_daily.csv and my_spec.json
the README's own spec for it), and its output compared with the real output, numbers, ids
and durations aside: same lines, same order, a README line of just `...` standing for lines
left out.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, tiny_spec

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md",
         ROOT / "CHANGELOG.md"]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{4}")


def _without_code(text: str) -> str:
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for line in _without_code(page.read_text()).splitlines():
        if line.startswith("#"):
            slug = _slug(line.lstrip("#"))
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    assert page.is_file(), f"{page.relative_to(ROOT)} is missing"
    broken = []
    for target in LINK.findall(_without_code(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading with anchor #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def _code(text: str) -> str:
    return "\n".join([m.group(2) for m in FENCE.finditer(text)] + re.findall(r"`([^`\n]+)`", _without_code(text)))


def test_every_hpt_command_the_docs_name_exists() -> None:
    shown = subprocess.run([sys.executable, "-m", "hpt", "--help"], capture_output=True, text=True, check=True).stdout
    commands = set(re.findall(r"^  ([a-z][a-z-]*)  ", shown.split("Commands:", 1)[1], re.M))
    assert {"run", "results", "best", "final", "predict"} <= commands
    unknown = {f"{page.relative_to(ROOT)}: hpt {name}"
               for page in PAGES for name in re.findall(r"(?:^|\$ |/|: +)hpt ([a-z][a-z-]*)\b", _code(page.read_text()), re.M)
               if name not in commands}
    assert not unknown, f"commands not in hpt --help: {sorted(unknown)}"


def _normal(line: str, folder: Path) -> str:
    """A line of output with what changes from run to run (and machine to machine) made alike."""
    for prefix in {f"{folder}{os.sep}", f"{folder.resolve()}{os.sep}", "/home/you/hpt/"}:  # the README's stand-in
        line = line.replace(prefix, "")
    line = RUN_ID.sub("<id>", line)
    line = re.sub(r"\b[0-9a-f]{12,16}\b", "<id>", line)
    line = re.sub(r"[+-]?\d+(?:[.,]\d+)*(?:e[+-]?\d+)?", "N", line)
    line = re.sub(r"(?:N[dhms])+\b", "T", line)  # durations: 55.2s, 2m24s
    line = re.sub(r"(N \w+?)s\b", r"\1", line)  # 1 worker, 2 workers
    line = re.sub(r"\[\s+", "[", line)
    return " ".join(line.split())


def _console_commands(readme: str) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) of every ```console block, in order."""
    commands: list[tuple[str, list[str]]] = []
    for kind, body in FENCE.findall(readme):
        if kind != "console":
            continue
        for line in body.rstrip("\n").split("\n"):
            if line.startswith("$ "):
                commands.append((line[2:], []))
            else:
                assert commands, f"a console block of README.md starts without a command: {line!r}"
                commands[-1][1].append(line)
    return commands


def _same_shape(expected: list[str], real: list[str], folder: Path) -> str | None:
    """Why `expected` (with `...` lines for lines left out) is not the shape of `real`, or None."""
    want = [_normal(line, folder) if line != "..." else "..." for line in expected]
    have = [_normal(line, folder) for line in real]
    chunks: list[list[str]] = [[]]
    for line in want:
        if line == "...":
            chunks.append([])
        else:
            chunks[-1].append(line)
    pos = 0
    for i, chunk in enumerate(chunks):
        if not chunk:
            continue
        if i == 0:
            found = 0 if have[:len(chunk)] == chunk else -1
        else:
            found = next((k for k in range(pos, len(have) - len(chunk) + 1) if have[k:k + len(chunk)] == chunk), -1)
        if found < 0:
            return "these lines are not in the real output, in this order:\n  " + "\n  ".join(chunk)
        pos = found + len(chunk)
    if chunks[-1] and pos != len(have):
        return "the real output goes on after the last line shown (end the sample with a ... line):\n  " + \
            "\n  ".join(have[pos:])
    return None


def test_readme_sample_output_is_what_its_commands_print(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs" / "lstm.json", tmp_path / "specs" / "lstm.json")
    shutil.copy(ROOT / "tests" / "data" / "seattle_weather_daily.csv", tmp_path / "my_data.csv")
    own = readme[readme.index("## Tune your own CSV"):]
    (tmp_path / "my_spec.json").write_text(next(body for kind, body in FENCE.findall(own) if kind == "json"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": ""}
    ids: dict[str, str] = {}
    commands = _console_commands(readme)
    assert [c.split()[1] for c, _ in commands][:5] == ["run", "results", "best", "final", "predict"]
    for command, expected in commands:
        for shown, real_id in ids.items():
            command = command.replace(shown, real_id)
        args = shlex.split(command)
        assert args[0] == "hpt", f"README.md console blocks run hpt only: {command}"
        done = subprocess.run([sys.executable, "-m", "hpt", *args[1:]], cwd=tmp_path, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        real = done.stdout.rstrip("\n").split("\n")
        assert done.returncode == 0, f"$ {command}\n{done.stdout}"
        problem = _same_shape(expected, real, tmp_path)
        assert problem is None, f"README.md's sample of `{command}` differs from its output: {problem}\n" \
                                f"the real output:\n{done.stdout}"
        ids.update(zip(RUN_ID.findall("\n".join(expected)), RUN_ID.findall(done.stdout), strict=False))


def test_checking_a_spec_runs_its_builder_modules_top_level_code(tmp_path: Path) -> None:
    """docs/own-architecture.md, "Specs are code": validate and plan import the module a spec names."""
    (tmp_path / "mymodels.py").write_text(
        "import pathlib, sys\n"
        "pathlib.Path(__file__).with_name('ran.txt').open('a').write(sys.argv[1] + '\\n')\n"
        "from torch import nn\n\n"
        "def tiny(n_features, lookback, horizon, width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.Linear(width, horizon))\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(architecture="mymodels:tiny", parameters={"width": [4, 8]})))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in ("validate", "plan"):
        subprocess.run([sys.executable, "-m", "hpt", command, str(spec)], cwd=elsewhere, check=True,
                       capture_output=True)
    assert (tmp_path / "ran.txt").read_text().split() == ["validate", "plan"]


def test_the_spec_pages_example_is_the_demo_spec() -> None:
    page = (ROOT / "docs" / "spec.md").read_text(encoding="utf-8")
    example = page[page.index("## A spec"):].split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(example) == json.loads((ROOT / "specs" / "lstm.json").read_text(encoding="utf-8"))
