"""The command line itself: one `hpt: error:` line and exit code 2 for every kind of bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, cli_here, hpt_here, tiny_spec


def _error_line(done: Any) -> str:
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and lines[0].startswith("hpt: error: "), done.stderr
    return str(lines[0])


@pytest.mark.parametrize("args, words", [
    (["plan", "specs/lstm.json", "--today", "2026-02-30"], "--today"),
    (["plan", "specs/lstm.json", "--today", "next week"], "expected a date such as 2026-11-01"),
    (["frob"], "No such command 'frob'"),
    (["run"], "Missing argument 'SPEC'"),
    (["run", "specs/lstm.json", "--workers", "0"], "--workers"),
    (["run", "specs/lstm.json", "--workers", "two"], "Invalid value for '--workers': 'two' is not a valid integer."),
    (["run", "specs/lstm.json", "--grace", "soon"], "Invalid value for '--grace': 'soon' is not a valid number."),
    (["run", "specs/lstm.json", "--device", "tpu"], "--device"),
    (["results", "hpt-results/x", "--top", "-1"], "--top"),
    (["results", "hpt-results/x", "--where", " "], "'--where': empty expression"),
    (["best", "hpt-results/x", "--where", ""], "'--where': empty expression"),
    (["final", "hpt-results/x", "--months", "0"], "--months"),
    (["predict", "model.pt"], "Missing option '--data'"),
])
def test_usage_errors_are_one_line(args: list[str], words: str) -> None:
    line = _error_line(cli_here(*args))
    assert words in line
    if args[0] != "frob":
        assert f"see 'hpt {args[0]} --help'" in line


@pytest.mark.parametrize("typed", ["s3:/bucket/x", "s3//bucket/x", "s3:bucket/x"])
def test_a_mistyped_bucket_uri_is_not_taken_for_a_folder(tmp_path: Path, typed: str) -> None:
    line = _error_line(cli_here("run", str(ROOT / "specs" / "lstm.json"), "--sink", typed, cwd=tmp_path))
    assert f"{typed}: not a valid location (did you mean s3://bucket/x?)" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [("plan",), ("run", "--dry-run")])
def test_plan_and_dry_run_refuse_a_location_that_cannot_be_as_the_run_does(command: tuple[str, ...]) -> None:
    # a bucket name no cloud takes was a note in brackets after the plan, exit 0; the run said exit 2
    done = cli_here(command[0], str(ROOT / "specs" / "lstm.json"), *command[1:], "--sink", "s3://Bad_Bucket/x")
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.splitlines() == ['hpt: error: s3://Bad_Bucket: "Bad_Bucket" is not a valid bucket name; '
                                        "expected s3://bucket/path"], done.stderr


def test_sync_refuses_what_is_not_a_results_location_and_creates_nothing(tmp_path: Path) -> None:
    missing_spec = tmp_path / "nosuch.json"
    assert "spec file not found" in _error_line(cli_here("sync", str(missing_spec)))
    assert "no such results folder" in _error_line(cli_here("sync", str(tmp_path / "nodir")))
    assert "s3//bucket/x: not a valid location (did you mean s3://bucket/x?)" in _error_line(
        cli_here("sync", "s3//bucket/x", cwd=tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no results there" in _error_line(cli_here("sync", str(empty)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not any(empty.iterdir())


def test_an_empty_spec_path_is_named_as_such(tmp_path: Path) -> None:
    # a CI job's SPEC parameter left blank: `hpt run ""` said "not a file" and named nothing
    for command in (("run", ""), ("plan", ""), ("run", "  ")):
        assert _error_line(cli_here(*command, cwd=tmp_path)) == \
            "hpt: error: the spec path is empty: give a spec file (e.g. specs/lstm.json)"
    assert f"File '{tmp_path}' is a directory" in _error_line(cli_here("run", str(tmp_path)))


def test_plan_says_when_it_cannot_look_at_the_results_location(cli: Any, tmp_path: Path) -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_DEFAULT_REGION": "us-east-1", "HPT_SINK_RETRIES": "1", "HPT_SINK_TIMEOUT": "2"}
    done = cli("plan", "specs/lstm.json", "--sink", "s3://some-bucket/x", "--limit", "1", env=env)
    assert done.returncode == 0, done.stderr
    assert "results: s3://some-bucket/x (could not check which trials are done: " in done.stdout


# Runs `python -m hpt ARGS` and, on the way out, prints which cloud-client modules were imported.
_CLOUD_MODULES = """\
import atexit, json, runpy, sys
def cloud():
    return sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "s3transfer")
                  or m.startswith(("google.cloud", "google.auth", "google.api_core")))
atexit.register(lambda: print("CLOUD MODULES", json.dumps(cloud())))
sys.argv = ["hpt", *sys.argv[1:]]
runpy.run_module("hpt", run_name="__main__", alter_sys=True)
"""


def _cloud_modules(*args: str, env: dict[str, str] | None = None) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _CLOUD_MODULES, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("CLOUD MODULES "), done.stdout
    return list(json.loads(last[len("CLOUD MODULES "):]))


@pytest.mark.parametrize("args", [["--help"], ["validate", "specs/lstm.json"], ["plan", "specs/lstm.json", "--limit", "1"]])
def test_commands_that_touch_no_bucket_import_no_cloud_client(args: list[str], tmp_path: Path) -> None:
    """google-cloud-storage and boto3 are dependencies, but only a gs:// or s3:// location loads them (start-up time)."""
    if args[0] == "plan":
        args = [*args, "--sink", str(tmp_path / "results")]
    assert _cloud_modules(*args) == []


def test_an_s3_location_does_import_its_client() -> None:
    """The check above can see an import: the same command with an s3:// location loads boto3."""
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_DEFAULT_REGION": "us-east-1", "HPT_SINK_RETRIES": "1", "HPT_SINK_TIMEOUT": "2"}
    modules = _cloud_modules("plan", "specs/lstm.json", "--limit", "1", "--sink", "s3://some-bucket/x", env=env)
    assert "boto3" in modules and "botocore" in modules


def test_other_libraries_log_records_are_not_printed(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "noisy_models.py").write_text(
        "import logging\n\n"
        "import torch  # registers torch's 'FakeTensor cache stats' log record at exit\n"
        "from torch import nn\n\n"
        "# torch's logging as an import cut short by Ctrl-C leaves it (not set up), and a chatty library\n"
        "logging.getLogger('torch').handlers.clear()\n"
        "logging.getLogger('torch').setLevel(logging.NOTSET)\n"
        "logging.getLogger('noisy.lib').info('library chatter')\n\n\n"
        "def build(n_features, lookback, horizon, width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.Linear(width, horizon))\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(architecture="noisy_models:build", parameters={"width": [4]})))
    done = cli("validate", str(spec))
    assert done.returncode == 0, done.stderr
    assert "FakeTensor" not in done.stderr and "library chatter" not in done.stderr, done.stderr


def test_a_double_ctrl_c_during_start_up_ends_with_130_and_no_traceback() -> None:
    for offset in (0.3, 0.5, 0.7, 0.9):
        for gap in (0.02, 0.2):
            proc = subprocess.Popen([sys.executable, "-m", "hpt", "plan", "specs/lstm.json"], cwd=ROOT, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
            time.sleep(offset)
            for _ in range(2):  # as a terminal does: to the whole process group
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
                time.sleep(gap)
            out, err = proc.communicate(timeout=60)
            if proc.returncode == -signal.SIGINT and not err:
                continue  # on a loaded machine the signal came before Python started: a shell says 130 too
            if err.startswith("Fatal Python error: init_"):
                continue  # or while Python itself started (importing its site module): before any code of hpt's
            assert "Traceback" not in err, (offset, gap, err)
            if "results:" not in out:  # not already done when the signals came
                assert proc.returncode == 130, (offset, gap, proc.returncode, err)
                assert err.splitlines()[-1] == "hpt: interrupted (SIGINT); finished trials are kept", err


def test_a_signal_that_an_import_turns_into_its_own_error_is_still_an_interrupt(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C while numpy imports (hpt plan at 0.9 s): numpy raised "ImportError: initialization failed", and the
    # command said "the run failed" and was then killed by the second Ctrl-C (-2), not 130
    import hpt.spec

    def interrupted_import(*_: Any, **__: Any) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(hpt.spec, "load_spec", interrupted_import)
    done = cli_here("plan", "specs/lstm.json", cwd=ROOT)
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip() == "hpt: interrupted (SIGINT); finished trials are kept", done.stderr
    monkeypatch.undo()
    broken = cli_here("plan", "specs/nosuch.json", cwd=ROOT)  # the next command is not taken for an interrupted one
    assert broken.returncode == 2, broken.stderr


def test_the_hint_for_trials_past_the_list_names_an_option_the_command_has(write_spec: Any, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the commands run in this process, in a folder of their own
    spec = write_spec(tiny_spec(parameters={"lr": [0.001 * (i + 1) for i in range(12)]}))  # 24 trials, 20 listed
    listed = hpt_here("run", str(spec), "--dry-run")
    assert listed.exit_code == 0, listed.output
    assert f"  ... and 4 more (hpt plan {spec} --limit N lists more)" in listed.stdout.splitlines()
    every = hpt_here("plan", str(spec), "--limit", "24")
    assert every.exit_code == 0 and "more" not in every.stdout, every.stdout + every.stderr
    one = hpt_here("plan", str(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01], "hidden_size": [8]}))))
    assert "tuned: lr [0.001, 0.01]" in one.stdout.splitlines() and "fixed: hidden_size [8]" in one.stdout.splitlines()
    assert len([line for line in every.stdout.splitlines() if "  seed " in line]) == 24
    auto = hpt_here("auto", "--arch", "mlp", "--dry-run", "--today", "2014-12-15")  # 12 configs x 3 periods
    assert auto.exit_code == 0, auto.output
    assert "  ... and 16 more" in auto.stdout.splitlines() and "--limit" not in auto.stdout


def test_a_folder_in_a_spec_is_relative_to_the_spec_and_one_on_the_command_line_to_the_current_folder(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the current folder (the commands run in this process: none is about the process)
    (tmp_path / "specs").mkdir()
    spec, plain = tmp_path / "specs" / "spec.json", tmp_path / "specs" / "plain.json"
    spec.write_text(json.dumps(tiny_spec(sink="out")))
    plain.write_text(json.dumps(tiny_spec(name="plain")))

    def results(*args: str) -> tuple[str, str]:
        done = hpt_here(*args)
        assert done.exit_code == 0, done.output
        return done.stdout.splitlines()[-1], done.stderr

    assert results("plan", "specs/spec.json") == (f"results: {tmp_path / 'specs' / 'out'}", "")
    assert results("plan", "specs/plain.json")[0] == f"results: {tmp_path / 'hpt-results' / 'plain'}"
    assert results("plan", "specs/spec.json", "--sink", "here")[0] == f"results: {tmp_path / 'here'}"
    auto = hpt_here("auto", "--arch", "mlp", "--spec", "specs/spec.json", "--dry-run")
    assert f"results: {tmp_path / 'specs' / 'out'}" in auto.stdout.splitlines(), auto.stdout + auto.stderr
    # where hpt 0.2 put a spec's relative sink: named, not silently ignored, until the spec's folder has results
    (tmp_path / "out" / "rows").mkdir(parents=True)
    line, said = results("plan", "specs/spec.json")
    assert line == f"results: {tmp_path / 'specs' / 'out'}"
    assert said == (f"hpt: warning: results at {tmp_path / 'out'} are not used: the spec's sink \"out\" is relative "
                    f"to the spec's folder, {tmp_path / 'specs' / 'out'} (earlier versions of hpt took it from the "
                    f"current folder); move them there, or give --sink {tmp_path / 'out'}\n")
    assert results("plan", "specs/spec.json", "--sink", "out")[1] == ""
    (tmp_path / "specs" / "out" / "rows").mkdir(parents=True)
    assert results("plan", "specs/spec.json")[1] == ""


def test_an_interrupt_python_cannot_raise_is_sent_again_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C landing in a weakref callback of an import's module lock: Python would print "Exception ignored ...
    Traceback" and drop it. hpt's hook sends the signal again instead; anything else reaches the hook there was."""
    import types

    import hpt.cli as cli_module

    sent: list[int] = []
    monkeypatch.setattr(cli_module, "_send_again", sent.append)
    passed: list[Any] = []
    for exc in (KeyboardInterrupt(), cli_module._Interrupted(), ValueError("x")):
        cli_module._unraisable(passed.append, types.SimpleNamespace(exc_value=exc))
    assert sent == [signal.SIGINT, signal.SIGTERM]
    assert [type(i.exc_value) for i in passed] == [ValueError]
