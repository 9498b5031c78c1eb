"""The results layout: what a row holds, every key a run writes, run records, ids and timestamps, and the one
read-merge-write (hpt.sinks.update) on a folder and on S3."""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from hpt import layout
from hpt.periods import Period
from hpt.rows import result_row
from hpt.runs import abandon_dead_runs, latest_run, run_records
from hpt.sinks import Sink, SinkUnavailable, open_sink, update
from hpt.sinks.local import LocalSink
from hpt.stamps import new_id, parse_stamp, utcnow
from hpt.store import ResultStore
from hpt.trial import Status, Trial, TrialResult
from tests.cloud_servers import LocalServer
from tests.conftest import hpt_here


def _result(metrics: dict[str, float], device: str) -> TrialResult:
    period = Period(pd.Timestamp("2013-01-01"), pd.Timestamp("2013-01-15"))
    trial = Trial("t1", "c1", "lstm", {"lr": 0.01, "hidden_size": 16}, ("lr",), period, 0, tags={"round": 2})
    return TrialResult(trial, Status.OK, metrics, started_at="a", finished_at="b", device=device)


def test_a_row_has_ids_period_tuned_params_metrics_and_where() -> None:
    row = result_row(_result({"val_mse": 0.5, "epochs": 3}, "cpu-0"), "run1", ["val_mse", "val_mae", "epochs"], "m.pt")
    assert row["param_lr"] == 0.01 and "param_hidden_size" not in row  # only what the search varies
    assert row["val_mse"] == 0.5 and row["val_mae"] is None and row["round"] == 2
    assert (row["period_start"], row["period_end"], row["model_uri"], row["device"]) == ("2013-01-01", "2013-01-15",
                                                                                        "m.pt", "cpu-0")
    assert "gpu_mem_peak_mb" not in row


def test_a_gpu_trial_row_records_its_peak_memory() -> None:
    metrics = {"val_mse": 0.5, "gpu_mem_peak_mb": 120.5, "gpu_mem_reserved_mb": 160.0, "gpu_mem_total_mb": 81559.0}
    row = result_row(_result(metrics, "gpu0 (NVIDIA H100 80GB HBM3)"), "run1", ["val_mse"])
    assert row["gpu_mem_peak_mb"] == 120.5 and row["gpu_mem_reserved_mb"] == 160.0
    assert "gpu_mem_total_mb" not in row  # the card's size, the same in every row: in the device name's model


# ---------------------------------------------------------------- one read-merge-write: sinks.update

@pytest.fixture(params=["local", "s3"])
def sink(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sink:
    """A fresh location: a folder, or a bucket on the S3 test server."""
    if request.param == "local":
        return LocalSink(tmp_path / "loc")
    server: LocalServer = request.getfixturevalue("s3_server")
    for k, v in server.client_env().items():
        monkeypatch.setenv(k, v)
    return open_sink(f"s3://{server.create_bucket()}/p")


def _add_line(line: str) -> Callable[[bytes | None], bytes | None]:
    def merge(data: bytes | None) -> bytes | None:
        lines = (data or b"").decode().splitlines()
        return None if line in lines else "\n".join([*lines, line]).encode()
    return merge


def test_concurrent_updates_of_one_object_lose_nothing(sink: Sink) -> None:
    """Six writers, each adding its own lines to one object at once: every line of every writer is in it."""
    barrier = threading.Barrier(6)
    # each thread its own sink object, as separate runs have
    sinks = [sink if i == 0 else open_sink(sink.uri) if sink.remote else LocalSink(sink.uri) for i in range(6)]

    def writer(i: int) -> None:
        barrier.wait()
        for j in range(5):
            update(sinks[i], "index.csv", _add_line(f"w{i}-{j}"))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted((sink.read("index.csv") or b"").decode().splitlines()) == sorted(
        f"w{i}-{j}" for i in range(6) for j in range(5))


def test_update_leaves_an_object_alone_when_the_merge_says_so_and_rereads_a_stale_guess(sink: Sink) -> None:
    first = update(sink, "a.txt", _add_line("one"))
    assert first is not None and sink.read("a.txt") == b"one"
    assert update(sink, "a.txt", _add_line("one")) is None  # nothing to add: not written again
    assert sink.read_versioned("a.txt") == (b"one", first)
    sink.write("a.txt", b"one\nother")  # another writer, unknown to the guess below
    assert update(sink, "a.txt", _add_line("two"), expect=(b"one", first)) is not None
    assert sink.read("a.txt") == b"one\nother\ntwo"
    assert update(sink, "b.txt", _add_line("new"), expect=None) is not None  # None: known to be absent
    assert sink.read("b.txt") == b"new"


def test_an_object_that_keeps_changing_is_a_clear_error(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)

    def merge(data: bytes | None) -> bytes:
        sink.write("busy.csv", secrets.token_bytes(8))  # someone else writes it every time
        return b"mine"

    with pytest.raises(SinkUnavailable, match=r"busy\.csv kept changing during 3 attempts"):
        update(sink, "busy.csv", merge, attempts=3)


# ---------------------------------------------------------------- the layout, run records, ids

def test_a_run_writes_only_what_the_layout_names(tmp_path: Path, write_spec: Callable[..., Path]) -> None:
    res = tmp_path / "res"
    spec = write_spec(parameters={"lr": [0.001, 0.01]}, training={"epochs": 1})
    for extra in ((), ("--force",)):  # a second run at the same location: its own run record
        done = hpt_here("run", str(spec), "--sink", str(res), "--workers", "1", *extra)
        assert done.exit_code == 0, done.output
    keys = sorted(str(p.relative_to(res)) for p in res.rglob("*") if p.is_file())
    assert [k for k in keys if layout.kind(k) is None] == []
    assert {layout.kind(k) for k in keys} == {layout.RESULTS_CSV, layout.ROWS, layout.MODELS, layout.CURVES,
                                              layout.RUNS}
    runs = run_records(LocalSink(res))
    assert len(runs) == 2 and [r["status"] for _, r in runs] == ["finished", "finished"]
    assert [layout.id_of(k, layout.RUNS) for k, _ in runs] == [r["run_id"] for _, r in runs]
    last = runs[-1][1]
    assert parse_stamp(last["started_at"]) <= parse_stamp(last["heartbeat_at"]) <= parse_stamp(last["finished_at"])
    assert runs[0][1]["run_id"] != last["run_id"] and last["spec_name"] == "tiny" and last["counts"] == {"ok": 4}


def test_the_latest_run_record_passes_over_damaged_and_specless_ones(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    assert latest_run(sink) is None
    sink.write(layout.run("20240101T000000Z-aaaa"), json.dumps({"run_id": "a", "spec": {"name": "old"}}).encode())
    sink.write(layout.run("20240102T000000Z-bbbb"), json.dumps({"run_id": "b", "spec": {"name": "new"}}).encode())
    sink.write(layout.run("20240103T000000Z-cccc"), b"{not json")
    sink.write(layout.run("20240104T000000Z-dddd"), json.dumps({"run_id": "d"}).encode())
    sink.write("runs/notes.txt", b"a file of someone's")
    key, record = latest_run(sink) or ("", {})
    assert (key, record["spec"]["name"]) == (layout.run("20240102T000000Z-bbbb"), "new")
    assert [r["run_id"] for _, r in run_records(sink)] == ["a", "b", "d"]


def test_only_a_dead_runs_record_is_marked_abandoned(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    past, future = "2020-01-01T00:00:00.000+00:00", utcnow(3600)
    for run_id, status, expires in (("dead", "running", past), ("live", "running", future), ("done", "finished", past)):
        sink.write(layout.run(run_id), json.dumps({"run_id": run_id, "status": status, "expires_at": expires}).encode())
    marked = abandon_dead_runs(ResultStore(sink))
    assert [m["run_id"] for m in marked] == ["dead"]
    statuses = {r["run_id"]: r["status"] for _, r in run_records(sink)}
    assert statuses == {"dead": "abandoned", "live": "running", "done": "finished"}
    assert abandon_dead_runs(ResultStore(sink)) == []


def test_ids_sort_by_time_and_timestamps_read_back() -> None:
    a = new_id()
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{4}", a) and a[:16] <= new_id()[:16]
    stamp = utcnow()
    assert parse_stamp(stamp) is not None and stamp.endswith("+00:00") and "." in stamp
    assert parse_stamp("2024-01-01T00:00:00Z") == parse_stamp("2024-01-01T00:00:00+00:00")
    assert parse_stamp("2024-01-01T00:00:00") == parse_stamp("2024-01-01T00:00:00+00:00")  # no zone: UTC
    assert parse_stamp(None) is None and parse_stamp("soon") is None


@pytest.mark.parametrize(("there", "row", "stays"), [
    ("ok", "pruned", True), ("ok", "interrupted", True),  # a trial that finished is never undone
    ("pruned", "interrupted", True), ("diverged", "interrupted", True),  # the interruption says less
    ("waits", "interrupted", False),  # a waiting trial had not ended: cut short once it went on, it runs again
    ("interrupted", "pruned", False), ("pruned", "ok", False), ("ok", "ok", False), ("pruned", "pruned", False)])
def test_which_row_of_a_trial_stays_whichever_is_newer(there: str, row: str, stays: bool) -> None:
    """The rule the location's conditional write and the merge of rows (in memory, results.csv) share; between rows
    neither outranks, the location keeps its ok row (but for --force) and the merge the newer one."""
    from hpt.trial import WAITS, outranks

    def as_row(status: str) -> dict[str, str]:
        return {"status": "pruned", "error": f"pruned at epoch 1 (rung 0: {WAITS} ...)"} if status == "waits" else \
            {"status": status, "error": ""}

    assert outranks(as_row(there), as_row(row)) is stays
