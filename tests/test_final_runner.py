"""`hpt final` trains through the runner: a signal records an interrupted final, and two finals of one
config at once train it once (claims). The final's model is held at a gate (tests/gated.py) while the
test acts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests import gated
from tests.conftest import ROOT, hpt_cli, tiny_spec
from tests.final_fixtures import TODAY


@pytest.fixture(scope="module")
def held_location(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A location tuned with one gated config (let through while tuning); then the gate is shut again, so
    that a final's model waits before its second epoch. (location, gate)"""
    folder = tmp_path_factory.mktemp("held")
    gate = folder / "gate"
    gated.let(gate)
    spec = folder / "held.json"
    spec.write_text(json.dumps(tiny_spec(name="held-final", architecture=gated.ARCHITECTURE, date_ranges={"auto": {
        "count": 1, "months": 1, "holdout": 1}}, parameters={"lr": [0.01], "gate": [str(gate)]},
        training={"epochs": 3, "patience": 0})))
    sink = folder / "results"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--today", TODAY, "--workers", "1", "-q", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    (gate / "all.go").unlink()
    best = json.loads(next(p for p in (sink / "rows").glob("*.json")
                           if "naive" not in p.read_text()).read_text())["best_epoch"]
    assert best >= 2, "the final must train at least 2 epochs to be held at the gate"
    return sink, gate


def _start_final(location: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "hpt", "final", str(location), "--grace", "0", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _held(gate: Path, before: set[int], proc: subprocess.Popen[str]) -> int:
    """The arrival number of the final's model, once it waits at the gate."""

    def new() -> list[int]:
        return [n for n in gated.waiting(gate) if n not in before]

    return gated.wait_for(new, "the final's model did not start training", alive=proc)[0]


def _finals(location: Path) -> list[Path]:
    folder = location / "final"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def test_sigterm_records_an_interrupted_final_and_exits_143(held_location: tuple[Path, Path]) -> None:
    location, gate = held_location
    before = set(gated.arrivals(gate))
    finals = _finals(location)
    proc = _start_final(location)
    _held(gate, before, proc)
    os.killpg(proc.pid, signal.SIGTERM)  # what Jenkins sends on abort, to the whole process tree
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stdout + stderr
    assert "Traceback" not in stderr and "SIGTERM: no new trials" in stderr
    new = [p for p in _finals(location) if p not in finals]
    assert len(new) == 1 and sorted(p.name for p in new[0].iterdir()) == ["report.json"]  # no model
    report = json.loads((new[0] / "report.json").read_text())
    assert report["status"] == "interrupted" and report["final_id"] == new[0].name
    assert [(t["mode"], t["status"]) for t in report["trials"]] == [("scratch", "interrupted")]
    assert stdout.splitlines()[0].startswith(f"final {new[0].name} interrupted: config {report['config_id']}")
    assert f"recorded: {new[0] / 'report.json'}" in stdout
    index = location / "final" / "index.csv"
    assert not index.exists() or new[0].name not in index.read_text()  # the index lists models only
    assert not list((location / "claims").glob("*.json"))  # released


def test_two_finals_of_one_config_at_once_train_it_once(held_location: tuple[Path, Path]) -> None:
    location, gate = held_location
    before = set(gated.arrivals(gate))
    finals = _finals(location)
    first = _start_final(location)
    arrival = _held(gate, before, first)
    claim = json.loads(next((location / "claims").glob("final-*.json")).read_text())
    second = hpt_cli("final", str(location), timeout=240)  # while the first one trains
    assert second.returncode == 0, second.stdout + second.stderr
    assert set(gated.arrivals(gate)) == before | {arrival}  # it built no model
    assert f"final {claim['run_id']} on host {claim['host']} is training these models now; not trained again here" \
        in second.stdout
    assert f"its report: {location}/final/{claim['run_id']}/report.json" in second.stdout
    gated.let(gate, trial=arrival)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stdout + stderr
    new = [p for p in _finals(location) if p not in finals]
    assert [p.name for p in new] == [claim["run_id"]]  # one final trained and written
    assert sorted(p.name for p in new[0].iterdir()) == ["model.pt", "report.json"]
    assert stdout.startswith(f"final {claim['run_id']}: config ")


def test_a_final_whose_worker_dies_is_recorded_failed_and_exits_1(held_location: tuple[Path, Path]) -> None:
    location, gate = held_location
    before = set(gated.arrivals(gate))
    finals = _finals(location)
    proc = _start_final(location)
    arrival = _held(gate, before, proc)
    os.kill(gated.arrivals(gate)[arrival][0], signal.SIGKILL)  # its worker, as the kernel's OOM killer would
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stderr
    new = [p for p in _finals(location) if p not in finals]
    assert len(new) == 1 and sorted(p.name for p in new[0].iterdir()) == ["report.json"]
    report = json.loads((new[0] / "report.json").read_text())
    assert report["status"] == "failed"
    assert report["trials"][0]["error"] == "worker process died (killed by signal SIGKILL) while training this trial"
    assert f"from scratch: failed (on cpu): {report['trials'][0]['error']}" in stdout
