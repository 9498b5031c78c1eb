"""Two runs on one results location (issue 15, points 2 and 3) on a folder, S3 (moto) and GCS
(fake-gcs-server): an ok row is never replaced by another run's unfinished one, a claimed
trial is left to the live run training it, an expired claim is taken over, a run killed
with kill -9 is shown abandoned and its trial rerun, and a damaged row is named."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.backends.fake import FakeBackend, Script
from hpt.claims import Claims
from hpt.layout import RESULTS_CSV
from hpt.periods import Period
from hpt.progress import Reporter
from hpt.results import load_results
from hpt.rows import parse_csv, parse_row
from hpt.runner import RunOptions, RunSummary, run_spec
from hpt.runner.summary import report_end
from hpt.search import expand
from hpt.sinks import open_sink
from hpt.spec import Spec, load_spec
from hpt.store import ResultStore
from hpt.trial import WAITS, Status, Trial, TrialResult
from tests.cloud_servers import LocalServer
from tests.conftest import ROOT, hpt_here, tiny_spec, trial_rows

HOST = socket.gethostname()


@pytest.fixture(params=["local", "s3", "gcs"])
def location(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty results location of each kind, and a private journal."""
    for k, v in {"HPT_JOURNAL": str(tmp_path / "journal"), "HPT_SINK_TIMEOUT": "3", "HPT_SINK_RETRIES": "2"}.items():
        monkeypatch.setenv(k, v)
    if request.param == "local":
        return str(tmp_path / "res")
    server: LocalServer = request.getfixturevalue(f"{request.param}_server")
    for k, v in server.client_env().items():
        monkeypatch.setenv(k, v)
    return f"{'gs' if request.param == 'gcs' else 's3'}://{server.create_bucket()}/p"


def _result(status: Status, run: str, model: bytes | None) -> TrialResult:
    period = Period(pd.Timestamp("2013-01-01"), pd.Timestamp("2013-01-15"))
    trial = Trial("t1", "c1", "mlp", {"lr": 0.01}, ("lr",), period, 0)
    return TrialResult(trial, status, {"val_mse": 0.5} if status is Status.OK else {}, started_at=f"{run}-start",
                       finished_at=f"2026-11-23T17:00:00.000+00:00 {run}", device="cpu-0", model=model,
                       curve=f"epoch,val_mse\n1,{run}\n", error="" if status is Status.OK else "stopped")


def test_an_ok_row_is_kept_against_another_runs_unfinished_rows_and_replaced_only_by_force(
        location: str, caplog: pytest.LogCaptureFixture) -> None:
    first, second = ResultStore(open_sink(location)), ResultStore(open_sink(location))
    first.record(_result(Status.OK, "runA", b"model of A"), "runA", ["val_mse"])
    with caplog.at_level(logging.WARNING, "hpt"):
        for status in (Status.INTERRUPTED, Status.FAILED, Status.DIVERGED, Status.PRUNED):
            second.record(_result(status, "runB", b"model of B"), "runB", ["val_mse"])
    sink = open_sink(location)
    row = parse_row(sink.read("rows/t1.json"))
    assert row is not None and (row["run_id"], row["status"]) == ("runA", "ok")
    assert sink.read("models/t1.pt") == b"model of A" and sink.read("curves/t1.csv") == b"epoch,val_mse\n1,runA\n"
    assert parse_csv(sink.read(RESULTS_CSV) or b"")["t1"]["run_id"] == "runA"
    assert f"warning: trial t1: the ok row of run runA is kept at {sink.uri}; this run's interrupted result is not " \
           "stored" in caplog.text
    assert second.rows()["t1"]["run_id"] == "runA"  # what the second run reports at its end
    ResultStore(open_sink(location)).record(_result(Status.OK, "runC", b"model of C"), "runC", ["val_mse"])
    assert parse_row(sink.read("rows/t1.json"))["run_id"] == "runA"  # type: ignore[index]  # first ok row wins

    forced = ResultStore(open_sink(location), replace_ok=True)  # hpt run --force
    forced.record(_result(Status.FAILED, "runD", None), "runD", ["val_mse"])
    forced.record(_result(Status.OK, "runE", b"model of E"), "runE", ["val_mse"])
    assert parse_row(sink.read("rows/t1.json"))["run_id"] == "runE"  # type: ignore[index]
    assert sink.read("models/t1.pt") == b"model of E"
    assert parse_csv(sink.read(RESULTS_CSV) or b"")["t1"]["run_id"] == "runE"


def test_an_interrupted_run_of_a_trial_leaves_the_row_of_how_it_ended(location: str) -> None:
    # a stopped (or failed) trial that trains again (a finalist, a waiting trial) and is cut short: its row still
    # says how it ended, with its curve, in the row object, results.csv and what the run reports at its end
    sink = open_sink(location)

    def there() -> tuple[str, str, str]:
        row = parse_row(sink.read("rows/t1.json"))
        assert row is not None
        return row["run_id"], row["status"], parse_csv(sink.read(RESULTS_CSV) or b"")["t1"]["status"]

    ResultStore(open_sink(location)).record(_result(Status.PRUNED, "runA", None), "runA", ["val_mse"])
    resumed = ResultStore(open_sink(location))
    resumed.record(_result(Status.INTERRUPTED, "runB", None), "runB", ["val_mse"])
    assert there() == ("runA", "pruned", "pruned")
    assert sink.read("curves/t1.csv") == b"epoch,val_mse\n1,runA\n"
    assert resumed.rows()["t1"]["run_id"] == "runA"
    resumed.record(_result(Status.PRUNED, "runB", None), "runB", ["val_mse"])  # stopped again: the newer stop
    assert there() == ("runB", "pruned", "pruned")
    resumed.record(_result(Status.INTERRUPTED, "runC", None), "runC", ["val_mse"])  # the same store, later
    assert there() == ("runB", "pruned", "pruned") and resumed.rows()["t1"]["status"] == "pruned"
    resumed.record(_result(Status.FAILED, "runD", None), "runD", ["val_mse"])
    resumed.record(_result(Status.INTERRUPTED, "runE", None), "runE", ["val_mse"])
    assert there() == ("runD", "failed", "failed")
    # a trial that waited at asha's first rung had not ended: cut short once it went on, it is to run again
    waiting = dataclasses.replace(_result(Status.PRUNED, "runE2", None), error=f"pruned at epoch 1 (rung 0: {WAITS}, "
                                                                            "and runs again if ...)")
    resumed.record(waiting, "runE2", ["val_mse"])
    resumed.record(_result(Status.INTERRUPTED, "runE3", None), "runE3", ["val_mse"])
    assert there() == ("runE3", "interrupted", "interrupted")
    resumed.record(_result(Status.OK, "runF", b"model of F"), "runF", ["val_mse"])  # an ok row replaces any of them
    assert there() == ("runF", "ok", "ok")


def test_the_runs_last_line_counts_a_trial_that_ran_again_as_its_row_says(tmp_path: Path) -> None:
    # one trial's results in one run: its count follows its row (as hpt results counts it), every result counted apart
    store, summary = ResultStore(open_sink(str(tmp_path))), RunSummary("run", str(tmp_path), 0)
    waiting = dataclasses.replace(_result(Status.PRUNED, "r3", None), error=f"pruned at epoch 1 (rung 0: {WAITS}, ...)")
    steps = [(_result(Status.PRUNED, "r1", None), "pruned"), (_result(Status.INTERRUPTED, "r2", None), "pruned"),
             (waiting, "pruned"), (_result(Status.INTERRUPTED, "r4", None), "interrupted"),
             (_result(Status.OK, "r5", b"model"), "ok")]  # "rN": when it finished
    for n, (result, status) in enumerate(steps, 1):
        store.record(result, "run", ["val_mse"])
        summary.add(result)
        assert store.rows()["t1"]["status"] == status and summary.counts == {status: 1}
        assert summary.ended == n
    assert summary.again == {"t1"}
    out = io.StringIO()
    report_end(Reporter(out, bar=False), load_spec(_spec(tmp_path, [0.01])[0]), summary)
    assert out.getvalue().startswith("run run finished in 0.0s: 1 ok (1 stopped trial ran again: 5 results for 1 trial, "
                                     "each counted once, as its row says)\n"), out.getvalue()
    store.close()


def _spec(tmp_path: Path, lrs: list[float], **training: Any) -> tuple[Path, Spec]:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(tiny_spec(parameters={"lr": lrs}, date_ranges=[["2013-01-01", "2013-01-15"]],
                                         training={"epochs": 1, **training})))
    return path, load_spec(path)


def _run(spec: Spec, location: str, backend: FakeBackend, **options: Any) -> tuple[RunSummary, str]:
    out = io.StringIO()
    summary = run_spec(spec, RunOptions(sink=location, **options), Reporter(out=out, bar=False), backend=backend)
    return summary, out.getvalue()


def _submitted(backend: FakeBackend) -> list[str]:
    return [tid for what, tid in backend.log if what == "submit"]


def _ok(_: Trial) -> Script:
    return Script(curve=[1.0])


def test_a_trial_claimed_by_a_live_run_is_left_to_it_and_run_after_it_lets_go(location: str, tmp_path: Path) -> None:
    _, spec = _spec(tmp_path, [0.001, 0.01, 0.1])
    ids = [t.trial_id for t in expand(spec)]
    other = Claims(open_sink(location), "20261123T170000Z-beef")
    assert other.take(ids[0]) is None
    backend = FakeBackend(_ok)
    summary, out = _run(spec, location, backend)
    assert sorted(_submitted(backend)) == sorted(ids[1:])
    assert f"1 trial is being trained by run 20261123T170000Z-beef on host {HOST}; not started here" in out
    assert f"run {summary.run_id} finished in" in out and "2 ok; 1 left to another run" in out
    assert summary.exit_code == 0 and summary.counts == {"ok": 2}
    record = json.loads(open_sink(location).read(f"runs/{summary.run_id}.json") or b"")
    assert record["status"] == "finished" and record["elsewhere"] == {ids[0]: "20261123T170000Z-beef"}
    assert open_sink(location).list("claims/") == [f"claims/{ids[0]}.json"]  # this run's claims are gone

    other.close()  # the other run ends without a row for it: the next run trains it
    assert open_sink(location).list("claims/") == []
    again = FakeBackend(_ok)
    summary, out = _run(spec, location, again)
    assert _submitted(again) == [ids[0]] and "skipping 2 trials already done" in out and "not started" not in out


def test_a_trial_another_run_finishes_meanwhile_is_not_trained_again(location: str, tmp_path: Path) -> None:
    _, spec = _spec(tmp_path, [0.001, 0.01, 0.1])
    ids = [t.trial_id for t in expand(spec)]
    other = Claims(open_sink(location), "other")
    assert other.take(ids[0]) is None
    trials = {t.trial_id: t for t in expand(spec)}

    def script(trial: Trial) -> Script:
        if trial.trial_id == ids[-1]:  # while this run trains its last trial, the other run finishes its own
            done = TrialResult(trials[ids[0]], Status.OK, {"val_mse": 0.1}, started_at="a", finished_at="b")
            ResultStore(open_sink(location)).record(done, "other", ["val_mse"])
            other.close()
        return Script(curve=[1.0, 1.0])

    backend = FakeBackend(script)
    summary, out = _run(spec, location, backend)
    assert ids[0] not in _submitted(backend) and "not started here" not in out
    assert summary.counts == {"ok": 2} and "2 ok; 1 skipped as already done" in out
    assert parse_row(open_sink(location).read(f"rows/{ids[0]}.json"))["run_id"] == "other"  # type: ignore[index]


def test_at_its_end_a_run_asks_about_every_trial_it_left_to_another_run(tmp_path: Path) -> None:
    # one slot, three trials another run held: it finished two and let go of the third (killed) while this run
    # trained its own; asked about one at a time, the first (done) ended the run, and the third went untrained
    _, spec = _spec(tmp_path, [0.001, 0.003, 0.01, 0.03])
    location = str(tmp_path / "res")
    trials = expand(spec)
    ids = [t.trial_id for t in trials]
    other = Claims(open_sink(location), "other")
    assert all(other.take(tid) is None for tid in ids[:3])

    def script(trial: Trial) -> Script:
        if trial.trial_id == ids[3]:
            for done in trials[:2]:
                ResultStore(open_sink(location)).record(
                    TrialResult(done, Status.OK, {"val_mse": 0.1}, started_at="a", finished_at="b"), "other", ["val_mse"])
                other.release(done.trial_id)
            other.close()  # its third trial: no row, no claim
        return Script(curve=[1.0])

    backend = FakeBackend(script, slots=1)
    summary, out = _run(spec, location, backend)
    assert _submitted(backend) == [ids[3], ids[2]], out
    assert summary.counts == {"ok": 2} and "not started here" not in out and "left to another run" not in out, out
    rows = ResultStore(open_sink(location)).rows()
    assert {tid: rows[tid]["run_id"] for tid in ids} == {
        ids[0]: "other", ids[1]: "other", ids[2]: summary.run_id, ids[3]: summary.run_id}


def test_at_its_end_a_run_counts_a_trial_the_other_run_finished_since_its_last_ask_as_done(tmp_path: Path) -> None:
    # the last ask comes when the run's own last trial ends; its last lines come after its workers stopped: a trial
    # the other run finished in between is done elsewhere, not "being trained by" it
    from hpt.runner.gate import ClaimGate

    _, spec = _spec(tmp_path, [0.001, 0.01])
    trials = expand(spec)
    sink = open_sink(str(tmp_path / "res"))
    other = Claims(sink, "other")
    assert all(other.take(t.trial_id) is None for t in trials)
    gate = ClaimGate(Claims(sink, "run-1"), ResultStore(sink), "run-1", force=False)
    assert not any(gate.admit(t) for t in trials) and len(gate.waiting()) == 2
    ResultStore(sink).record(TrialResult(trials[0], Status.OK, {"val_mse": 0.1}, started_at="a", finished_at="b"),
                             "other", ["val_mse"])
    gate.settle()
    assert gate.waiting() == [trials[1]] and gate.done_elsewhere == 1
    other.close()


def test_while_the_location_is_away_trials_start_unclaimed_at_once_until_a_renewal_reaches_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # each claim, and each read of a trial's row, waits for the location (minutes by the sink's settings): one
    # that did not answer is not asked again on the way to each trial's start, only by the renewals in the background
    from hpt.runner.gate import ClaimGate
    from hpt.sinks import SinkUnavailable
    from hpt.sinks.local import LocalSink

    class Away(LocalSink):
        down = False
        asked = 0

        def _ask(self) -> None:
            self.asked += 1
            if self.down:
                raise SinkUnavailable(f"{self.uri}: no answer after 5 attempts")

        def read(self, key: str) -> bytes | None:
            self._ask()
            return super().read(key)

        def read_versioned(self, key: str) -> tuple[bytes, Any] | None:
            self._ask()
            return super().read_versioned(key)

        def write_if(self, key: str, data: bytes, version: Any) -> Any:
            self._ask()
            return super().write_if(key, data, version)

    _, spec = _spec(tmp_path, [0.001, 0.003, 0.01])
    trials = expand(spec)
    sink = Away(tmp_path / "res")
    claims = Claims(sink, "run-1")
    gate = ClaimGate(claims, ResultStore(sink), "run-1", force=False)
    sink.down = True
    with caplog.at_level(logging.WARNING, "hpt"):
        assert all(gate.admit(t) for t in trials)  # trained here, unclaimed
    assert sink.asked == 1 and claims.down  # the first claim found it away; the others did not ask
    assert caplog.text.count("cannot claim trials at") == 1
    claims.tick()  # a renewal while it is still away: trials still start unclaimed
    assert claims.down
    sink.down = False
    claims.tick()  # it answers: the next trial is claimed again
    assert not claims.down and gate.admit(trials[0]) and sink.list("claims/") == [f"claims/{trials[0].trial_id}.json"]
    sink.down = True  # away again while that trial trains: at its end its claim is left to lapse, nothing asked
    assert gate.admit(trials[1]) and claims.down
    asked = sink.asked
    claims.release(trials[0].trial_id)
    assert sink.asked == asked and sink.list("claims/") == [f"claims/{trials[0].trial_id}.json"]
    sink.down = False
    claims.tick()  # it answers again: the claim of the trial that ended meanwhile is deleted, not left behind
    assert sink.list("claims/") == []
    claims.close()


def test_an_expired_claim_is_taken_over(location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    # a lease of 3 s: a server on a loaded machine may take over a second to answer the claim's write
    monkeypatch.setenv("HPT_CLAIM_LEASE", "3")
    _, spec = _spec(tmp_path, [0.001])
    (tid,) = [t.trial_id for t in expand(spec)]
    stalled = Claims(open_sink(location), "stalled")  # claims, then never renews: a run that hangs or lost its box
    assert stalled.take(tid) is None
    assert Claims(open_sink(location), "eager").take(tid) is not None  # live for its lease
    time.sleep(3.5)
    backend = FakeBackend(_ok)
    summary, out = _run(spec, location, backend)
    assert _submitted(backend) == [tid] and summary.counts == {"ok": 1}, out
    assert open_sink(location).list("claims/") == []
    with caplog.at_level(logging.WARNING, "hpt"):
        stalled._renew()  # it wakes up: its claim is gone, and it says so
    assert f"warning: trial {tid}: the claim of this run lapsed and another run took it over" in caplog.text
    stalled.close()
    assert not open_sink(location).list("claims/")


def test_claims_whose_lease_ran_out_are_deleted_by_the_next_run_and_by_sync(tmp_path: Path) -> None:
    # a run killed, or away when its trial ended, leaves its claim behind: no run takes over a trial that is done
    _, spec = _spec(tmp_path, [0.001])
    location = str(tmp_path / "res")
    sink = open_sink(location)
    lapsed = json.dumps({"run_id": "gone", "host": "elsewhere", "pid": 1, "expires_at": "2020-01-01T00:00:00+00:00"})
    sink.write("claims/aaaaaaaaaaaa.json", lapsed.encode())
    live = Claims(sink, "live")
    assert live.take("bbbbbbbbbbbb") is None  # another run's, alive: left alone
    summary, out = _run(spec, location, FakeBackend(_ok))
    assert summary.counts == {"ok": 1}, out
    assert sink.list("claims/") == ["claims/bbbbbbbbbbbb.json"]
    sink.write("claims/cccccccccccc.json", lapsed.encode())
    synced = hpt_here("sync", location)
    assert synced.exit_code == 0 and synced.stdout.rstrip().endswith("; 1 expired claim deleted"), synced.output
    assert sink.list("claims/") == ["claims/bbbbbbbbbbbb.json"]
    live.close()


def test_a_run_killed_with_kill_9_is_shown_abandoned_and_its_trial_is_rerun(tmp_path: Path) -> None:
    path, spec = _spec(tmp_path, [0.001], patience=0, epochs=100_000)  # still training when it is killed
    (tid,) = [t.trial_id for t in expand(spec)]
    res = tmp_path / "res"
    env = {**os.environ, "HPT_CLAIM_LEASE": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(path), "--sink", str(res), "--workers", "1"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (res / "claims" / f"{tid}.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no claim appeared"
            time.sleep(0.05)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        raise
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker, as a Jenkins abort or an OOM kill does
    try:
        _rerun_after_kill_9(path, res, tid, proc.pid)  # before its parent reaps it: dead, a zombie still
    finally:
        proc.communicate(timeout=60)


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] == b"Z"


def _rerun_after_kill_9(path: Path, res: Path, tid: str, pid: int) -> None:
    deadline = time.monotonic() + 60
    while not _zombie(pid):
        assert time.monotonic() < deadline, "the killed run did not die"
        time.sleep(0.05)
    (run_file,) = (res / "runs").glob("*.json")
    killed = json.loads(run_file.read_text())
    assert killed["status"] == "running" and killed["expires_at"] > killed["heartbeat_at"]

    backend = FakeBackend(_ok)  # the next run on this host: the claim's process is gone, so it is not waited for
    summary, out = _run(load_spec(path), str(res), backend)
    assert _submitted(backend) == [tid] and summary.counts == {"ok": 1}
    assert (f"run {killed['run_id']} on host {HOST} ended without a word (killed?); its last heartbeat was at "
            f"{killed['heartbeat_at']}: runs/{killed['run_id']}.json now says abandoned") in out
    assert json.loads(run_file.read_text())["status"] == "abandoned"
    assert json.loads((res / "runs" / f"{summary.run_id}.json").read_text())["status"] == "finished"
    assert not list((res / "claims").glob("*.json"))


def test_a_damaged_row_is_named_and_its_trial_run_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, spec = _spec(tmp_path, [0.001, 0.01])
    res = tmp_path / "res"
    ids = [t.trial_id for t in expand(spec)]
    _run(spec, str(res), FakeBackend(_ok))
    (res / "rows" / f"{ids[0]}.json").write_text('{"trial_id": "' + ids[0] + '", "sta')  # cut off mid-write
    (res / RESULTS_CSV).unlink()
    warning = f"warning: rows/{ids[0]}.json is damaged (not JSON: Unterminated string starting at: line 1 column "
    with caplog.at_level(logging.WARNING, "hpt"):
        assert list(trial_rows(load_results(str(res)))["trial_id"]) == [ids[1]]  # hpt results
    assert warning in caplog.text and "its trial will run again" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, "hpt"):
        backend = FakeBackend(_ok)
        _run(spec, str(res), backend)
    assert warning in caplog.text and "its trial will run again" in caplog.text
    assert _submitted(backend) == [ids[0]]
    assert parse_row((res / "rows" / f"{ids[0]}.json").read_bytes())["status"] == "ok"  # type: ignore[index]
    assert sorted(trial_rows(pd.DataFrame(parse_csv((res / RESULTS_CSV).read_bytes()).values()))["trial_id"]) \
        == sorted(ids)


def test_two_runs_of_one_spec_at_once_share_the_trials_and_train_each_once(tmp_path: Path) -> None:
    """Two `hpt run` processes of one spec on one folder, as two Jenkins builds of one job."""
    path, spec = _spec(tmp_path, [0.001, 0.002, 0.003, 0.004, 0.005, 0.006], epochs=15, patience=0)
    res = tmp_path / "res"
    procs = [subprocess.Popen([sys.executable, "-m", "hpt", "run", str(path), "--sink", str(res), "--workers", "1"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]  # a bound for a hang, not a speed: the machine may be busy
    assert [p.returncode for p in procs] == [0, 0], outputs
    trained = sum(out.count("] ok ") for out, _ in outputs)
    assert trained == 6, outputs  # each trial once, by one run or the other
    table = pd.read_csv(res / "results.csv")
    assert len(trial_rows(table)) == 6 and set(table["status"]) == {"ok"}
    assert not list((res / "claims").glob("*.json")) and "Traceback" not in "".join(e for _, e in outputs)


def test_a_claim_of_a_dead_process_is_taken_at_once_only_in_the_same_pid_namespace(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    sink = open_sink(str(tmp_path / "res"))
    me = Claims(sink, "me")
    for ns, taken in (("pid:[1]", False), (me.me["pid_ns"], True)):  # another container on this host; this one
        claim = {"run_id": "killed", "host": HOST, "pid": pid, "pid_ns": ns, "expires_at": "2999-01-01T00:00:00+00:00"}
        sink.write("claims/t.json", json.dumps(claim).encode())
        holder = me.take("t")
        assert (holder is None) is taken and (taken or str(holder) == f"run killed on host {HOST}")


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_a_bad_claim_lease_stops_the_run_naming_the_variable_before_anything_is_written(
        value: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec()))
    out = hpt_here("run", str(spec), "--sink", str(tmp_path / "res"), env={"HPT_CLAIM_LEASE": value})
    assert out.exit_code == 2, out.output
    assert out.stderr.strip() == f"hpt: error: $HPT_CLAIM_LEASE: expected a number of seconds > 0, got '{value}'"
    assert not (tmp_path / "res").exists()


def test_every_number_hpt_reads_from_the_environment_is_checked_up_front() -> None:
    """Every env_float("HPT_...") call in hpt names a variable of ENV_NUMBERS, the list check_env checks first."""
    import re

    from hpt.sinks import ENV_NUMBERS

    read = set()
    for path in (ROOT / "hpt").rglob("*.py"):
        read |= set(re.findall(r'env_float\("(HPT_\w+)"', path.read_text()))
    assert read and read <= set(ENV_NUMBERS)


def _count_row_reads(store_or_cls: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The rows/ keys read through `store_or_cls`'s read (a sink instance, or a sink class for every instance)."""
    read = store_or_cls.read
    keys: list[str] = []

    def counting(*args: Any) -> bytes | None:
        key = args[-1]
        if key.startswith("rows/"):
            keys.append(key)
        return read(*args)

    monkeypatch.setattr(store_or_cls, "read", counting)
    return keys


def test_a_store_reads_only_the_row_objects_whose_results_csv_line_is_not_ok(
        location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ok line is an ok row for good: its object is not read, and the row typed from the line is the object's."""
    writer = ResultStore(open_sink(location))
    period = Period(pd.Timestamp("2013-01-01"), pd.Timestamp("2013-01-15"))
    for i, status in enumerate([Status.OK] * 4 + [Status.FAILED]):
        trial = Trial(f"t{i}", f"c{i}", "mlp", {"lr": 0.01 * (i + 1), "hidden_size": 8 * (i + 1), "bidir": i % 2 == 0},
                      ("lr", "hidden_size", "bidir"), period, 1234 + i)
        writer.record(TrialResult(trial, status, {"val_mse": 0.1 + i / 3} if status is Status.OK else {},
                                  finished_at=f"2026-11-23T17:00:0{i}.000+00:00", error="" if status is Status.OK
                                  else "boom"), "runA", ["val_mse", "val_mae"])
    sink = open_sink(location)
    late = parse_row(sink.read("rows/t3.json"))
    assert late is not None
    sink.write("rows/t9.json", json.dumps({**late, "trial_id": "t9"}).encode())  # its run died before merging it
    every = ResultStore(open_sink(location), replace_ok=True)  # --force: reads every object
    objects = every.rows()
    assert every.objects_read == 6

    store = ResultStore(open_sink(location))
    read = _count_row_reads(store.sink, monkeypatch)
    rows = store.rows()
    assert sorted(read) == ["rows/t4.json", "rows/t9.json"]  # the failed trial's and the one not in results.csv
    assert store.objects_read == 2
    assert list(rows) == list(objects) == ["t0", "t1", "t2", "t3", "t4", "t9"]
    for tid, row in objects.items():
        assert {k: rows[tid].get(k) for k in row} == row  # the same values, of the same types
        assert [type(rows[tid][k]) for k in row] == [type(v) for v in row.values()]
    assert store.done() == {"t0", "t1", "t2", "t3", "t9"}


def test_a_run_with_nothing_left_reads_no_row_object_and_results_csv_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, spec = _spec(tmp_path, [0.001, 0.01, 0.1])
    res = str(tmp_path / "res")
    _run(spec, res, FakeBackend(lambda t: Script(status=Status.FAILED if t.params["lr"] == 0.1 else Status.OK)))
    from hpt import store as store_module
    from hpt.sinks.local import LocalSink
    parsed: list[int] = []
    def counted(read: Any) -> Any:
        return lambda *args, **kwargs: parsed.append(1) or read(*args, **kwargs)

    for name in ("parse_csv", "read_lines"):  # the two ways the store reads results.csv
        monkeypatch.setattr(store_module, name, counted(getattr(store_module, name)))
    read = _count_row_reads(LocalSink, monkeypatch)
    backend = FakeBackend(_ok)
    summary, out = _run(spec, res, backend)
    assert _submitted(backend) == [t.trial_id for t in expand(spec) if t.params["lr"] == 0.1]  # the failed one, again
    failed = f"rows/{_submitted(backend)[0]}.json"
    assert read[0] == failed and read[-1] == failed  # what it was (the store), what it is (the gate)
    assert not {f"rows/{t.trial_id}.json" for t in expand(spec)} - {failed} & set(read)  # no ok trial's object
    assert summary.counts == {"ok": 1} and "skipping 2 trials already done" in out
    read.clear()
    parsed.clear()
    before = (tmp_path / "res" / RESULTS_CSV).stat()
    summary, out = _run(spec, res, backend := FakeBackend(_ok))
    assert not _submitted(backend) and "skipping 3 trials already done" in out
    assert read == [] and parsed == [1]  # results.csv parsed once, no row object read
    after = (tmp_path / "res" / RESULTS_CSV).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # nothing to merge: not rewritten
