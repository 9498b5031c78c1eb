"""`hpt run` end to end, as a user runs it: results folder, resume, Ctrl-C, dying workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.model_io import load_model
from tests import gated
from tests.conftest import ROOT, cli_here, hpt_here, tiny_spec, trial_row_files


def _csv(folder: Path) -> pd.DataFrame:
    """The trials' rows of results.csv (the naive baselines' rows left out)."""
    return _trials(pd.read_csv(folder / "results.csv"))


def _trials(table: pd.DataFrame) -> pd.DataFrame:
    return table[~table["architecture"].str.startswith("naive-")].reset_index(drop=True)


def test_run_writes_a_row_model_and_curve_per_trial_and_resumes(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 1e3], "hidden_size": [8]}))
    sink = tmp_path / "res"
    out = cli("run", str(spec), "--sink", str(sink), "--workers", "1")
    assert out.returncode == 0, out.stderr
    table = _csv(sink)
    assert len(table) == 6
    assert sorted(table["status"].value_counts().items()) == [("diverged", 2), ("ok", 4)]
    assert {"param_lr", "param_hidden_size", "val_mse", "val_mae", "train_time_s", "epochs", "best_epoch",
            "period_start", "period_end", "config_id", "model_uri", "device"} <= set(table.columns)
    ok = table[table["status"] == "ok"]
    for _, row in ok.iterrows():
        assert (sink / "rows" / f"{row.trial_id}.json").is_file()
        assert (sink / "curves" / f"{row.trial_id}.csv").is_file()
        assert load_model(row.model_uri).trial_id == row.trial_id
    runs = list((sink / "runs").glob("*.json"))
    record = json.loads(runs[0].read_text())
    assert record["status"] == "finished" and record["counts"] == {"ok": 4, "diverged": 2}
    assert record["spec"]["name"] == "tiny" and record["torch_version"]
    # the log: one line per trial, then a summary naming the best config and where results are
    lines = out.stdout.splitlines()
    assert sum(1 for line in lines if line.startswith("[")) == 6
    assert any(line.startswith("[6/6] ") for line in lines)
    assert "diverged" in out.stdout and "best config" in out.stdout and str(sink) in out.stdout
    trial_line = next(line for line in lines if line.startswith("[1/6] "))
    assert "  lr=" in trial_line and trial_line.index("lr=") < trial_line.index("hidden_size=")
    assert re.search(r"^best config \w+: lr=\S+ hidden_size=8  mean", out.stdout, re.M), out.stdout  # the same order

    again = hpt_here("run", str(spec), "--sink", str(sink), "--workers", "1")
    assert again.exit_code == 0, again.output
    assert "skipping 4 trials already done" in again.stdout
    table2 = _csv(sink)
    assert len(table2) == 6  # the diverged trials ran again and replaced their rows
    assert set(table2[table2["status"] == "ok"]["run_id"]) == set(ok["run_id"])  # ok rows untouched

    forced = hpt_here("run", str(spec), "--sink", str(sink), "--force", "-q", "--workers", "1")
    assert forced.exit_code == 0 and "skipping" not in forced.stdout, forced.output
    assert not any(line.startswith("[") for line in forced.stdout.splitlines())
    assert len(_csv(sink)) == 6 and len(list((sink / "runs").glob("*.json"))) == 3


def test_dry_run_and_plan_list_trials_without_training(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 0.1], "hidden_size": [8, 16]}))
    out = hpt_here("run", str(spec), "--dry-run", "--sink", str(tmp_path / "res"))
    assert out.exit_code == 0, out.output
    assert "12 trials = 6 configs x 2 periods" in out.stdout and "2013-01-01..2013-01-15" in out.stdout
    assert not (tmp_path / "res").exists()
    planned = hpt_here("plan", str(spec), "--limit", "3")
    assert "... and 9 more" in planned.stdout


def test_a_missing_warm_start_folder_is_bad_input_for_validate_plan_and_run(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(search={"strategy": "tpe", "max_trials": 4, "seed": 0,
                                        "warm_start": [str(tmp_path / "old-results")]},
                                parameters={"lr": {"loguniform": [0.001, 0.1]}, "hidden_size": [8]}))
    for args in (["validate"], ["plan"], ["run", "--sink", str(tmp_path / "res")]):
        out = cli_here(*args, str(spec))
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr == f"hpt: error: {spec}: search.warm_start[0]: {tmp_path / 'old-results'}: " \
                             "no such results folder\n"
    assert not (tmp_path / "res").exists()


def test_a_run_whose_start_fails_leaves_no_results_folder(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    """The location is checked first, but its folder is made only once every start-up check has passed."""
    out = cli("run", str(write_spec()), "--sink", str(tmp_path / "new" / "res"), "--device", "cuda",
              env={"CUDA_VISIBLE_DEVICES": ""})
    assert out.returncode == 2 and out.stderr == "hpt: error: --device cuda: no CUDA GPU is visible to this process\n"
    assert not (tmp_path / "new").exists()


def _held_spec(write_spec: Any, gate: Path) -> Path:
    """Six trials (3 configs x 2 periods, one worker: one after the other) that wait at `gate` after their
    first epoch until the test lets them go on (tests/gated.py)."""
    return write_spec(tiny_spec(architecture=gated.ARCHITECTURE,
                                parameters={"lr": [0.001, 0.002, 0.003], "gate": [str(gate)]},
                                training={"epochs": 3, "patience": 0}))


def _wait_for_rows(folder: Path, n: int, proc: subprocess.Popen[str]) -> None:
    gated.wait_for(lambda: trial_row_files(folder) >= n, f"{n} rows did not appear", alive=proc)


def _second_trial_waits(gate: Path, proc: subprocess.Popen[str]) -> None:
    """The first trial has its row; the next one is under way (held at the gate)."""
    gated.wait_for(lambda: 1 in gated.waiting(gate), "the second trial did not start", alive=proc)


def test_ctrl_c_keeps_finished_rows_and_a_rerun_finishes(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gated.let(gate, trial=0)  # the first trial runs to its end, the next one waits
    spec = _held_spec(write_spec, gate)
    sink = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--grace", "0",
                             "--workers", "1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(sink, 1, proc)
    _second_trial_waits(gate, proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    table = _csv(sink)
    assert (table["status"] == "ok").sum() >= 1
    assert (table["status"] == "interrupted").sum() == 1
    assert "interrupted" in stdout and "run the same command again" in stdout
    assert "SIGINT: no new trials; 1 running trial gets up to 0s to finish" in stdout
    interrupted_line = next(line for line in stdout.splitlines() if " interrupted " in line)
    assert "ETA" not in interrupted_line
    record = json.loads(next((sink / "runs").glob("*.json")).read_text())
    assert record["status"] == "interrupted"
    done = int((table["status"] == "ok").sum())

    gated.let(gate)  # the rerun's trials run to their end
    rerun = hpt_here("run", str(spec), "--sink", str(sink), "--workers", "1")
    assert rerun.exit_code == 0, rerun.output
    assert f"skipping {done} trial" in rerun.stdout and "already done" in rerun.stdout
    final = _csv(sink)
    assert len(final) == 6 and (final["status"] == "ok").all()


def test_a_run_whose_stdout_reader_goes_away_goes_on_and_stores_every_trial(write_spec: Any, tmp_path: Path) -> None:
    """`hpt run spec.json | head -1`: before, the run died at its next line with exit 1 and no word, its trials
    left untrained."""
    gate = tmp_path / "gate"
    gated.let(gate, trial=0)
    spec = _held_spec(write_spec, gate)
    sink = tmp_path / "res"
    with (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--workers", "1"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        _wait_for_rows(sink, 1, proc)
        _second_trial_waits(gate, proc)
        assert proc.stdout is not None
        proc.stdout.close()  # the reader goes away while the second trial trains
        gated.let(gate)
        code = proc.wait(timeout=120)
    stderr = (tmp_path / "stderr").read_text()
    assert code == 0 and "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    assert stderr.count("hpt: warning: stdout's reader went away (a closed pipe); the run goes on, storing every trial, "
                        "without printing its progress\n") == 1, stderr
    table = _csv(sink)
    assert len(table) == 6 and (table["status"] == "ok").all()


def _signalled_in_its_second_trial(write_spec: Any, tmp_path: Path, send: Callable[[subprocess.Popen[str]], None],
                                   heard: str) -> tuple[int, str, pd.DataFrame]:
    """A run (grace 120 s, its own process group) that `send` signals while its second trial is under way; that
    trial goes on once the run has said `heard`. Its exit code, its stdout and its results table."""
    gate = tmp_path / "gate"
    gated.let(gate, trial=0)
    spec = _held_spec(write_spec, gate)
    sink = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--grace", "120",
                             "--workers", "1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_rows(sink, 1, proc)
    _second_trial_waits(gate, proc)
    send(proc)
    assert proc.stdout is not None
    said = ""
    for line in proc.stdout:  # the run has heard it before the running trial goes on
        said += line
        if heard in line:
            break
    gated.let(gate, trial=1)
    stdout = said + proc.communicate(timeout=120)[0]
    return proc.returncode, stdout, _csv(sink)


def test_sigterm_gives_running_trials_a_grace_period_and_exits_143(write_spec: Any, tmp_path: Path) -> None:
    def jenkins_abort(proc: subprocess.Popen[str]) -> None:
        os.killpg(proc.pid, signal.SIGTERM)  # what Jenkins sends on abort, to the whole process tree

    code, stdout, table = _signalled_in_its_second_trial(write_spec, tmp_path, jenkins_abort, "SIGTERM: no new trials")
    assert code == 143
    assert "SIGTERM: no new trials; 1 running trial gets up to 120s to finish" in stdout
    assert len(table) == 2 and (table["status"] == "ok").all()  # the running trial was let finish; none started after


def test_a_signal_sent_to_the_process_and_its_group_at_once_counts_once(write_spec: Any, tmp_path: Path) -> None:
    """`timeout -s INT` sends SIGINT to hpt and to its process group: hpt hears it twice within a moment. That is one
    Ctrl-C, not two: the running trial gets its grace period (before, it was interrupted at once, as on a second
    Ctrl-C)."""
    def like_timeout(proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)  # heard apart (sent at the same instant, the kernel may merge them)
        os.killpg(proc.pid, signal.SIGINT)

    code, stdout, table = _signalled_in_its_second_trial(write_spec, tmp_path, like_timeout, "SIGINT: no new trials")
    assert code == 130
    assert len(table) == 2 and (table["status"] == "ok").all(), stdout  # the running trial finished


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_starting_up_exits_with_its_code_and_one_line(write_spec: Any, tmp_path: Path,
                                                                    signum: int, code: int) -> None:
    spec = _held_spec(write_spec, tmp_path / "gate")  # never opened: no trial finishes before the signal
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(tmp_path / "res"),
                             "--grace", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the moment: importing, reading the data, starting workers
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stdout + stderr
    assert "Traceback" not in stderr and "Aborted!" not in stderr
    assert "interrupted" in stdout + stderr



SIGNALLED = '''
import os, pathlib, signal, time
os.kill(os.getpid(), signal.{name})  # as a signal that arrives while a builder module imports torch
time.sleep(0.5)  # the import goes on: hpt puts the signal off until the import is over
pathlib.Path(__file__).with_suffix(".imported").write_text("ok")

def build(n_features, lookback, horizon):
    raise AssertionError("never trained")
'''


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_a_builder_module_imports_lets_the_import_finish_then_exits(
        write_spec: Any, cli: Any, tmp_path: Path, signum: int, code: int) -> None:
    """An exception raised inside an import of a C extension (torch, numpy) breaks it: an ImportError or an abort
    instead of 130/143. hpt lets the import finish, then stops as for any signal before the run."""
    (tmp_path / "signalled.py").write_text(SIGNALLED.format(name=signal.Signals(signum).name))
    spec = write_spec(tiny_spec(architecture="signalled:build"))
    out = cli("validate", str(spec))
    assert out.returncode == code, out.stdout + out.stderr
    assert out.stderr.splitlines()[-1] == f"hpt: interrupted ({signal.Signals(signum).name}); finished trials are kept"
    assert "Traceback" not in out.stderr
    assert (tmp_path / "signalled.imported").read_text() == "ok"  # the module's import ran to its end

BUILDER = '''
import os, signal
from torch import nn

def build(n_features, lookback, horizon, width=8, crash=0):
    if crash == 1:
        os._exit(3)
    if crash == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.ReLU(), nn.Linear(width, horizon))
'''


def test_a_worker_that_dies_fails_its_trial_and_the_run_goes_on(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "crashy.py").write_text(BUILDER)
    spec = write_spec(tiny_spec(architecture="crashy:build", parameters={"crash": [0, 1, 2]}))
    sink = tmp_path / "res"
    out = cli("run", str(spec), "--sink", str(sink), env={"PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    table = _csv(sink).set_index("param_crash")
    assert (table.loc[0, "status"] == "ok").all()
    assert (table.loc[1, "status"] == "failed").all()
    assert table.loc[1, "error"].str.contains("exited with code 3").all()
    assert table.loc[2, "error"].str.contains("killed by signal SIGKILL").all()


def test_two_workers_share_the_trials(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(parameters={"lr": [0.001, 0.01], "hidden_size": [8, 16]}))
    out = cli("run", str(spec), "--sink", str(tmp_path / "res"), "--workers", "2")
    assert out.returncode == 0 and "2 workers" in out.stdout
    table = _csv(tmp_path / "res")
    assert len(table) == 8 and (table["status"] == "ok").all()


def test_unwritable_results_folder_is_bad_input(write_spec: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = cli_here("run", str(write_spec()), "--sink", str(blocker / "res"))
    assert out.returncode == 2 and "cannot write results to" in out.stderr and "Traceback" not in out.stderr
    assert blocker.read_text() == "not a folder"


def test_a_folder_holding_a_results_csv_hpt_did_not_write_is_refused_and_left_as_it_was(
        write_spec: Any, tmp_path: Path) -> None:
    other = tmp_path / "report"
    other.mkdir()
    (other / "results.csv").write_text("a,b\n1,2\n")
    out = cli_here("run", str(write_spec()), "--sink", str(other))
    assert out.returncode == 2 and out.stderr.splitlines() == [
        f"hpt: error: {other} holds a results.csv that hpt did not write (it has no trial_id column), which a run "
        "would replace: give another location, or move that file away"], out.stderr
    assert sorted(p.name for p in other.iterdir()) == ["results.csv"] and (other / "results.csv").read_text() == "a,b\n1,2\n"
    # hpt's own location with its results.csv damaged is rebuilt from its rows, as ever
    spec = write_spec(tiny_spec(parameters={"lr": [0.01]}, training={"epochs": 1}))
    mine = tmp_path / "mine"
    assert cli_here("run", str(spec), "--sink", str(mine), "--workers", "1").returncode == 0
    (mine / "results.csv").write_text("garbage\n")
    again = cli_here("run", str(spec), "--sink", str(mine), "--workers", "1")
    assert again.returncode == 0 and "skipping 2 trials already done" in again.stdout, again.stdout + again.stderr
    assert f"hpt: warning: {mine / 'results.csv'} is damaged (not a table of rows); it is rebuilt from rows/, the " \
        "record of truth" in again.stderr.splitlines(), again.stderr
    assert len(_trials(_csv(mine))) == 2


def test_results_csv_is_never_half_written(write_spec: Any, tmp_path: Path) -> None:
    """A reader polling results.csv during a run always parses a whole table."""
    spec = write_spec(tiny_spec(parameters={"lr": [0.001, 0.002, 0.003, 0.004]}, training={"epochs": 1}))
    sink = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "-q", "--workers", "1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    while proc.poll() is None:
        if (sink / "results.csv").exists():
            table = _trials(pd.read_csv(sink / "results.csv"))
            assert table["model_uri"].notna().all()
            seen.add(len(table))
        time.sleep(0.005)
    assert proc.returncode == 0 and len(_csv(sink)) == 8
    assert len(seen) >= 2  # it grew while the run went on
    assert not [p for p in os.listdir(sink) if p.startswith(".")]


_NOTHING_LEFT_PROBE = """
import json, sys
import hpt.backends.local as local

spawned = []
spawn = local.LocalBackend._spawn
local.LocalBackend._spawn = lambda self, slot: spawned.append(slot.name) or spawn(self, slot)
from hpt.cli import main

try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "spawned": spawned, "torch": "torch" in sys.modules}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="GPUs are looked for without torch on Linux")
def test_a_run_with_nothing_left_starts_no_worker_and_imports_no_torch(write_spec: Any, cli: Any,
                                                                         tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(training={"epochs": 1, "batch_size": 64, "lookback": 24, "horizon": 1,
                                          "validation": 0.25}))
    sink = tmp_path / "res"
    assert cli("run", str(spec), "--sink", str(sink), "--workers", "1").returncode == 0
    from hpt.backends.slots import _gpu_device_nodes

    if _gpu_device_nodes():
        pytest.skip("this machine has a GPU device node: torch is imported to count its GPUs")
    out = subprocess.run([sys.executable, "-c", _NOTHING_LEFT_PROBE, "run", str(spec), "--sink", str(sink),
                          "--workers", "1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    probe = json.loads(out.stdout.splitlines()[-1])
    assert probe == {"code": 0, "spawned": [], "torch": False}, out.stderr
    assert "on the CPU (1 worker x 1 thread; no CUDA GPU in use)" in out.stdout  # the layout is still said
    assert "skipping 4 trials already done" in out.stdout and "none run; 4 skipped as already done" in out.stdout
