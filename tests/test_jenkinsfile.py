"""The Jenkinsfile cannot drift from the CLI: every `hpt` command of its shell steps runs here.

Each command line is expanded by bash itself, with the job's parameter defaults in the
environment and a temporary results folder as the sink, so quoting and word splitting are
the ones Jenkins' `sh` step would apply. `run` and `auto` get `--dry-run`; `results` and the
step that copies results.csv read the folder of a tiny real run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, hpt_cli, tiny_spec

JENKINSFILE = ROOT / "Jenkinsfile"
TEXT = JENKINSFILE.read_text()
SCRIPTS = re.findall(r"script:\s*'''(.*?)'''", TEXT, re.S)
_CUT = re.compile(r"\s*(;;|>|\|\||\||&&)")


def parameter_defaults() -> dict[str, str]:
    """Every declared parameter's default (a choice's first value)."""
    found: dict[str, str] = {}
    for kind, name, rest in re.findall(r"\b(string|choice|booleanParam)\(name:\s*'(\w+)',(.*?)\)\n", TEXT, re.S):
        if kind == "choice":
            found[name] = re.findall(r"'([^']*)'", re.search(r"choices:\s*\[(.*?)\]", rest).group(1))[0]  # type: ignore[union-attr]
        elif kind == "booleanParam":
            found[name] = re.search(r"defaultValue:\s*(true|false)\b", rest).group(1)  # type: ignore[union-attr]
        else:
            found[name] = re.search(r"defaultValue:\s*'([^']*)'", rest).group(1)  # type: ignore[union-attr]
    return found


def mode_choices() -> list[str]:
    return re.findall(r"'(\w+)'", re.search(r"name:\s*'MODE',\s*choices:\s*\[(.*?)\]", TEXT).group(1))  # type: ignore[union-attr]


def hpt_lines() -> list[str]:
    """The `hpt ...` command of every shell line that runs hpt, without redirections."""
    lines = []
    for script in SCRIPTS:
        for line in script.splitlines():
            line = line.strip()
            m = re.search(r"(?:^|[\s)])(hpt\s.*)", line)
            if m and not line.startswith(("#", "echo")):
                lines.append(_CUT.split(m.group(1))[0].strip())
    return lines


def expand(command: str, env: dict[str, str]) -> list[str]:
    """`command` as bash splits it (set -u: a variable the job does not define is an error)."""
    out = subprocess.run(["bash", "-c", f"set -euf; printf '%s\\0' {command}"], capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], **env}, check=True)
    argv = out.stdout.split("\0")[:-1]
    assert argv[0] == "hpt", command
    return argv[1:]


def job_env(sink: Path) -> dict[str, str]:
    return {**parameter_defaults(), "HPT_SINK": str(sink), "HPT_VENV": str(Path(sys.executable).parents[1]),
            "WORKSPACE": str(ROOT)}


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder from a real run of two tiny trials."""
    folder = tmp_path_factory.mktemp("jenkins")
    spec = folder / "tiny.json"
    spec.write_text(__import__("json").dumps(tiny_spec(parameters={"lr": [0.01], "hidden_size": [8]})))
    sink = folder / "results"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "-q", "--workers", "1", timeout=240)
    assert done.returncode == 0, done.stderr
    return sink


def test_the_jenkinsfile_runs_hpt_in_every_mode() -> None:
    verbs = [line.split()[1] for line in hpt_lines()]
    assert {"validate", "run", "auto", "results", "final"} <= set(verbs), hpt_lines()
    case = re.search(r'case "\$MODE" in(.*?)esac', TEXT, re.S).group(1)  # type: ignore[union-attr]
    assert set(re.findall(r"^\s*(\w+)\)", case, re.M)) == set(mode_choices()) == {"run", "auto", "quick"}
    assert parameter_defaults()["SPEC"] == "specs/lstm.json"
    assert parameter_defaults()["ARCH"] == "lstm"


def test_secrets_are_never_expanded_into_commands_or_echoed() -> None:
    assert not any(re.search(r"set -\w*x|xtrace", script) for script in SCRIPTS)
    assert not re.search(r'\bsh\b[^\n]*"""', TEXT), "shell steps must be ''' strings: no Groovy interpolation"
    for script in SCRIPTS:
        assert "${" not in script or not re.search(r"\$\{(params|env)\.", script)
        assert not re.search(r"AWS_SECRET_ACCESS_KEY|GOOGLE_APPLICATION_CREDENTIALS", script)


def _id(command: str) -> str:
    return "-".join(w for w in command.split()[1:] if re.fullmatch(r"--quick|[a-z]+", w))


@pytest.mark.parametrize("command", hpt_lines(), ids=_id)
def test_hpt_command_runs(command: str, tmp_path: Path, tiny_results: Path, tuned_location: Path) -> None:
    verb = command.split()[1]
    sink = tiny_results if verb == "results" else tuned_location if verb == "final" else tmp_path / "sink"
    args = expand(command, job_env(sink))
    if verb in ("run", "auto"):
        args.append("--dry-run")
    elif verb == "final":
        args += ["--threads", "1"]  # a real final on a location whose spec keeps the last month back
    done = hpt_cli(*args, timeout=120, cwd=tmp_path if verb == "final" else None)
    assert done.returncode == 0, f"{command}\n-> hpt {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    if verb == "final":
        assert "hold-out: 2014-12-01..2015-01-01" in done.stdout, done.stdout
        assert json.loads((tmp_path / "hpt-final.json").read_text())["location"] == str(tuned_location)
    elif verb == "validate":
        assert ": ok (" in done.stdout
    elif verb == "results":
        assert "|" in done.stdout and "---" in done.stdout, done.stdout
    else:
        assert f"results: {sink}" in done.stdout, done.stdout  # the plan goes to the job's sink


def test_results_copy_step(tmp_path: Path, tiny_results: Path) -> None:
    """The step that copies results.csv and counts failed trials, run as Jenkins runs it."""
    script = next(s for s in SCRIPTS if "<<'EOF'" in s)
    program = re.search(r"<<'EOF'\n(.*?)\nEOF", script, re.S).group(1)  # type: ignore[union-attr]
    done = subprocess.run([sys.executable, "-", str(tiny_results)], input=program, capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hpt-results.csv").read_bytes() == (tiny_results / "results.csv").read_bytes()
    assert (tmp_path / "hpt-failed.txt").read_text() == "0"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: s.split("\n")[1].strip()[:30] if "\n" in s else s[:30])
def test_shell_steps_parse(script: str) -> None:
    done = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_ray_address_sends_the_trials_to_ray(tmp_path: Path) -> None:
    """RAY_ADDRESS set: every training command gets --executor ray and the address (empty: the local pool)."""
    training = [c for c in hpt_lines() if c.split()[1] in ("run", "auto")]
    assert len(training) == 3, training
    for command in training:
        args = expand(command, {**job_env(tmp_path / "sink"), "RAY_ADDRESS": "ray-head:6379"})
        assert args[args.index("--executor") + 1] == "ray" and args[args.index("--ray-address") + 1] == "ray-head:6379"
        assert "--executor" not in expand(command, job_env(tmp_path / "sink"))
    args = expand(training[0], {**job_env(tmp_path / "sink"), "RAY_ADDRESS": "ray-head:6379"})
    done = hpt_cli(*args, "--dry-run", timeout=120)  # the options parse; a dry run connects to nothing
    assert done.returncode == 0, done.stderr
    setup = next(s for s in SCRIPTS if "pip install" in s)
    assert re.search(r'if \[ -n "\$\{RAY_ADDRESS:-\}" \].*\n.*pip install --quiet -e \'\.\[ray\]\'', setup), setup


def _final_script() -> str:
    return next(s for s in SCRIPTS if "hpt final" in s)


def test_the_final_stage_is_optional_and_follows_a_clean_run() -> None:
    assert parameter_defaults()["FINAL"] == "false" and parameter_defaults()["FINAL_ARGS"] == ""
    stage = re.search(r"stage\('Final'\) \{(.*?)\n        \}\n", TEXT, re.S).group(1)  # type: ignore[union-attr]
    assert "params.FINAL && env.HPT_EXIT == '0'" in stage
    assert TEXT.index("stage('Results')") < TEXT.index("stage('Final')")
    for code, outcome in (("130", "ABORTED"), ("2", "error("), ("default", "error(")):
        assert re.search(rf"case {code}:.*?{re.escape(outcome)}" if code != "default" else r"default:\s*error\(",
                         stage, re.S), code
    assert "withCredentials(cloudCredentials())" in stage
    assert re.search(r"archiveArtifacts artifacts: '[^']*hpt-final\.txt, hpt-final\.json'", TEXT)


def test_final_step_writes_the_report_for_the_archive_and_keeps_hpts_exit_code(tmp_path: Path,
                                                                                 tiny_results: Path) -> None:
    """The Final stage's shell step, run as Jenkins runs it: the printed report in the log and
    hpt-final.txt, report.json as hpt-final.json; a refusal's exit code is the step's."""
    env = {**job_env(tiny_results), "FINAL_ARGS": "--holdout 1M --threads 1"}
    done = subprocess.run(["sh", "-c", _final_script()], capture_output=True, text=True, cwd=tmp_path, timeout=240,
                          env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env})
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hpt-final.txt").read_text() == done.stdout
    assert "hold-out: 2014-12-01..2015-01-01 (--holdout 1M" in done.stdout
    report = json.loads((tmp_path / "hpt-final.json").read_text())
    assert (tiny_results / "final" / report["final_id"] / "model.pt").is_file()
    env["FINAL_ARGS"] = ""  # tiny_results' periods keep no hold-out back: exit 2, saying how to give one
    done = subprocess.run(["sh", "-c", _final_script()], capture_output=True, text=True, cwd=tmp_path, timeout=240,
                          env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env})
    assert done.returncode == 2 and "hpt: error: no hold-out" in done.stderr, done.stderr
