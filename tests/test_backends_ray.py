"""The Ray backend on a real two-node Ray cluster on 127.0.0.1 (tests/ray_cluster.py).

One cluster for the session. Trials are tiny mlp trials of 1-2 epochs; a builder module
next to the spec (probe_*.py) records the worker's process id of chosen configs and
can hold them, so that a test can kill a trial's worker or interrupt the driver while
that trial runs.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.errors import InputError
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.scheduling.plan import PlanScheduler
from hpt.search import TrialPlan, expand
from hpt.spec import load_spec
from hpt.trial import Finished, Progress, Status
from tests import gated
from tests.cloud_servers import free_port
from tests.conftest import RAY, ROOT, hpt_here, tiny_spec, trial_row_files, trial_row_objects, trial_rows
from tests.ray_cluster import RayCluster, ray_cluster  # noqa: F401  (the session's cluster)

pytestmark = RAY

needs_ray = pytest.mark.skipif(find_spec("ray") is None,
                               reason="Ray is not installed: pip install 'hpt[ray]' (make test installs it)")

PROBE = '''
import os
import time
from torch import nn

HOLD = {hold!r}  # width -> seconds the build of that config waits (after noting its process id)


def build(n_features, lookback, horizon, width=8):
    if width in HOLD:
        with open({pids!r}, "a") as f:
            f.write(f"{{width}} {{os.getpid()}}\\n")
        time.sleep(HOLD[width])
    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.ReLU(), nn.Linear(width, horizon))
'''


def _probe_spec(folder: Path, hold: dict[int, float], widths: list[int], periods: int = 1, **training: Any) -> Path:
    module = f"probe_{secrets.token_hex(4)}"  # one per test: a module imported once stays in the driver's sys.modules
    (folder / f"{module}.py").write_text(PROBE.format(hold=hold, pids=str(folder / "pids.txt")))
    ranges = [["2013-01-01", "2013-01-15"], ["2013-02-01", "2013-02-15"]][:periods]
    doc = tiny_spec(architecture=f"{module}:build", date_ranges=ranges, parameters={"width": widths},
                    training={"epochs": 1, **training})
    path = folder / "spec.json"
    path.write_text(json.dumps(doc))
    return path


def _pids(folder: Path) -> dict[int, int]:
    path = folder / "pids.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return {int(w): int(p) for w, p in (line.split() for line in lines)}


def _wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:g}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _rows(folder: Path) -> pd.DataFrame:
    return trial_rows(pd.read_csv(folder / "results.csv"))


def _ray(cluster: RayCluster, **kw: Any) -> RunOptions:
    return RunOptions(executor="ray", ray_address=cluster.address, **kw)


@pytest.fixture(scope="module")
def connected(ray_cluster: RayCluster) -> Iterator[RayCluster]:  # noqa: F811
    """This process connected to the cluster once, so that the runs in it find Ray's worker
    processes warm (each new connection is a new Ray job, with new workers importing torch)."""
    from hpt.backends.ray import connect, import_ray

    assert connect(ray_cluster.address)
    yield ray_cluster
    import_ray().shutdown()


# --- without a cluster ---------------------------------------------------------------------------


def test_the_executor_is_checked_with_the_spec(write_spec: Any, cli: Any) -> None:
    out = cli("validate", str(write_spec(tiny_spec(resources={"executor": "rey"}))))
    assert out.returncode == 2
    assert 'resources.executor: expected "local" or "ray", got "rey" (did you mean "ray"?)' in out.stderr
    assert load_spec(write_spec(tiny_spec(resources={"executor": "ray"}))).resources["executor"] == "ray"


def test_a_ray_address_without_the_ray_executor_is_bad_input(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    out = cli("run", str(write_spec()), "--ray-address", "127.0.0.1:6379", "--sink", str(tmp_path / "r"))
    assert out.returncode == 2 and "--ray-address needs --executor ray" in out.stderr, out.stderr
    out = cli("run", str(write_spec()), "--executor", "ray", "--gpus", "0", "--sink", str(tmp_path / "r"))
    assert out.returncode == 2 and "--gpus 0 picks GPUs of this machine" in out.stderr, out.stderr


def test_a_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from hpt.backends import ray as backend

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(InputError, match=r"pip install 'hpt\[ray\]'"):
        backend.connect("127.0.0.1:6379")


def test_addresses_are_parsed_with_rays_default_ports() -> None:
    from hpt.backends.ray_connect import _host_port

    assert _host_port("head:6380") == ("head", 6380)
    assert _host_port("head") == ("head", 6379)
    assert _host_port("ray://head:10002") == ("head", 10002)
    assert _host_port("ray://head") == ("head", 10001)
    assert _host_port("[::1]:6379") == ("::1", 6379)


def test_a_trial_asks_for_a_share_of_a_gpu_and_the_cluster_bounds_the_trials_in_flight() -> None:
    from hpt.backends.ray import capacity, trial_request

    assert trial_request(use_gpu=False, per_gpu=1) == (1.0, 0.0)
    assert trial_request(use_gpu=True, per_gpu=3) == (1.0, 0.3333)
    assert capacity(4, 0, (1.0, 0.0), 1, None) == 4
    assert capacity(4, 0, (1.0, 0.0), 1, 3) == 3  # --workers 3
    assert capacity(16, 2, trial_request(True, 3), 3, None) == 6  # 3 per GPU on 2 GPUs: 0.3333 x 3 fits in 1
    assert capacity(4, 2, trial_request(True, 4), 4, None) == 4  # 1 CPU each: the CPUs bound it
    assert capacity(0, 0, (1.0, 0.0), 1, None) == 1  # every node gone: one trial waits for them


@needs_ray
def test_a_wrong_address_is_exit_2_in_one_line_within_30s(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.monotonic()
    out = cli("run", str(write_spec()), "--executor", "ray", "--ray-address", address, "--sink", str(tmp_path / "r"))
    assert out.returncode == 2, out.stderr
    assert time.monotonic() - t0 < 30
    assert out.stderr.count("\n") == 1 and address in out.stderr and "Traceback" not in out.stderr, out.stderr
    assert "connection refused" in out.stderr


@needs_ray
def test_a_port_that_never_answers_as_ray_is_bad_input_in_bounded_time(tmp_path: Path) -> None:
    """A listener that accepts connections and says nothing: Ray would retry for minutes."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        code = ("import sys\nfrom hpt.backends.ray import connect\nfrom hpt.errors import InputError\n"
                f"try:\n    connect({address!r}, timeout=3)\nexcept InputError as e:\n    print(e)\n    sys.exit(2)\n")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT,
                              env=env)
        elapsed = time.monotonic() - t0
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith(f"--ray-address {address}: no Ray cluster answered within 3s"), done.stdout
    # what a loopback-only head needs of its drivers (tests/ray_node.py starts such heads)
    assert done.stdout.rstrip().endswith("a head started on a loopback address answers only drivers that set "
                                         "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 too"), done.stdout
    assert elapsed < 20  # the connecting thread does not hold the process at exit


def test_a_token_the_cluster_rejects_is_told_apart_from_a_missing_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's refusal is the same either way ("Unauthenticated"); with a token set, saying "set a token" misleads."""
    import socket

    from hpt.backends import ray_connect

    class Refusing:  # Ray's client, as its C++ side reports a refused token while it retries
        def is_initialized(self) -> bool:
            return False

        def init(self, **_: Any) -> None:
            os.write(2, b"[2026-12-07 10:00:00,000 W 11 12] gcs_rpc_client.h:1: Unauthenticated: InvalidAuthToken\n")
            time.sleep(3)

    monkeypatch.setattr(ray_connect, "import_ray", Refusing)
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        address = f"127.0.0.1:{head.getsockname()[1]}"
        with pytest.raises(InputError, match="the cluster wants an authentication token: set RAY_AUTH_MODE=token"):
            ray_connect.connect(address, timeout=0.5)
        monkeypatch.setenv("RAY_AUTH_MODE", "token")
        monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-clusters")
        with pytest.raises(InputError, match="the cluster rejected this machine's authentication token"):
            ray_connect.connect(address, timeout=0.5)


# --- on the cluster ------------------------------------------------------------------------------


@needs_ray
def test_trials_run_on_both_nodes_and_a_rerun_skips_them(connected: RayCluster, tmp_path: Path) -> None:
    widths = [4, 5, 6, 7]
    spec = load_spec(_probe_spec(tmp_path, {w: 0.5 for w in widths}, widths, periods=2))  # 4 at a time: 2 per node
    sink = tmp_path / "res"
    summary = run_spec(spec, _ray(connected, sink=str(sink)), Reporter(quiet=True))
    assert summary.exit_code == 0 and summary.counts == {"ok": 8}
    rows = _rows(sink)
    nodes = rows["device"].str.split("/").str[1]
    assert rows["device"].str.endswith("/cpu").all() and nodes.nunique() == 2, rows["device"].tolist()
    assert rows["device"].str.startswith(os.uname().nodename + "/").all()
    for tid in rows["trial_id"]:
        assert (sink / "models" / f"{tid}.pt").exists() and (sink / "curves" / f"{tid}.csv").exists()
    run = json.loads(next((sink / "runs").iterdir()).read_text())
    assert len(run["slots"]) == 2  # the run record lists the nodes

    again = run_spec(spec, _ray(connected, sink=str(sink)), Reporter(quiet=True))
    assert again.exit_code == 0 and again.skipped == 8 and sum(again.counts.values()) == 0
    assert len(_rows(sink)) == 8
    # 3 threads a trial: 3 CPUs of one node, and the nodes have 2: refused at once, where Ray would wait for good
    with pytest.raises(InputError, match=r"^--threads 3: no node of the Ray cluster at .* has 3 CPUs \(the largest "
                                         r"has 2\), .*: give --threads 2 or fewer$"):
        run_spec(spec, _ray(connected, sink=str(tmp_path / "wide"), threads=3), Reporter(quiet=True))


@needs_ray
def test_a_killed_task_is_a_failed_row_and_the_run_goes_on(connected: RayCluster, tmp_path: Path) -> None:
    spec = load_spec(_probe_spec(tmp_path, {5: 120.0}, [4, 5, 6, 7, 8, 9]))
    killed: list[int] = []

    def kill_width_5() -> None:
        pid = _wait_for(lambda: _pids(tmp_path).get(5), 90, "the trial of width 5 did not start")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_width_5, daemon=True)
    killer.start()
    summary = run_spec(spec, _ray(connected, sink=str(tmp_path / "res")), Reporter(quiet=True))
    killer.join(1)
    assert killed and summary.exit_code == 0 and summary.counts == {"ok": 5, "failed": 1}
    rows = _rows(tmp_path / "res").set_index("param_width")
    assert rows.loc[5, "status"] == "failed"
    error = str(rows.loc[5, "error"])
    device = rows.loc[5, "device"]
    assert device.endswith("/cpu") and error.startswith(f"Ray task on {device} failed: WorkerCrashedError: "), error
    assert "\n" not in error


class _PruneAtTwo(PlanScheduler):
    """Stops the trial of width 4 after its second epoch (as test_scheduling's stops those of a small lr)."""

    def __init__(self, plan: TrialPlan) -> None:
        super().__init__(plan)
        self.heard: dict[str, list[int]] = {}

    def on_progress(self, event: Progress) -> str | None:
        self.heard.setdefault(event.trial.trial_id, []).append(event.epoch)
        if event.epoch == 2 and event.trial.params["width"] == 4:
            return "pruned at epoch 2 (test)"
        return None


@needs_ray
def test_a_stop_from_the_scheduler_prunes_a_trial_on_ray(connected: RayCluster, write_spec: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The trial of width 4 is held at a gate (tests/gated.py): it starts an epoch only once the driver has
    polled the one before from the hub, so the stop, sent after epoch 2 was polled, reaches the task while it
    trains, however slow the machine; the trial of width 5 runs freely."""
    from hpt.backends.ray import RayBackend

    epochs, gate = 100, tmp_path / "gate"
    gated.let(gate, width=5)
    trained: dict[int, list[Any]] = {4: [], 5: []}  # what the tasks sent: their epochs, then their own result
    poll = RayBackend.poll

    def lockstep(self: RayBackend, timeout: float) -> list[Any]:
        events = poll(self, timeout)
        for e in events:
            if isinstance(e, Progress):
                trained[e.trial.params["width"]].append(e.epoch)
                if e.trial.params["width"] == 4:
                    gated.let(gate, epochs=e.epoch + 1, width=4)
            elif isinstance(e, Finished):
                trained[e.result.trial.params["width"]].append(e.result)
        return events

    monkeypatch.setattr(RayBackend, "poll", lockstep)
    spec = load_spec(write_spec(tiny_spec(date_ranges=[["2013-01-01", "2013-01-15"]], architecture=gated.ARCHITECTURE,
                                          parameters={"width": [4, 5], "gate": [str(gate)]},
                                          training={"epochs": epochs, "patience": 0})))
    scheduler = _PruneAtTwo(expand(spec))
    summary = run_spec(spec, _ray(connected, sink=str(tmp_path / "res")), Reporter(quiet=True), scheduler=scheduler)
    assert summary.counts == {"ok": 1, "pruned": 1}
    *reported, obeyed = trained[4]  # the task itself stopped, early
    assert obeyed.status is Status.PRUNED and obeyed.error == "pruned at epoch 2 (test)"
    assert reported == list(range(1, len(reported) + 1)) and 2 <= len(reported) < epochs
    rows = _rows(tmp_path / "res").set_index("param_width")
    pruned = rows.loc[4]
    assert pruned["status"] == "pruned" and pruned["error"] == "pruned at epoch 2 (test)"
    assert 2 <= pruned["epochs"] < epochs and pd.isna(pruned["model_uri"])
    assert rows.loc[5, "epochs"] == epochs and rows.loc[5, "status"] == "ok"
    for tid, heard in scheduler.heard.items():  # every epoch of every trial reached the scheduler, in order
        assert heard == list(range(1, int(rows.set_index("trial_id").loc[tid, "epochs"]) + 1))


@needs_ray
def test_hpt_final_trains_its_model_on_the_cluster(connected: RayCluster, tuned_location: Path, tmp_path: Path) -> None:
    """`hpt final --executor ray`: the model trains as a Ray task on a node, as it would locally."""
    from hpt.final import FinalRequest, run_final

    local = run_final(FinalRequest(str(tuned_location), threads=1, executor="local"), say=lambda line: None)
    done = hpt_here("final", str(tuned_location), "--executor", "ray", "--ray-address", connected.address,
                    "--report", str(tmp_path / "report.json"))
    assert done.exit_code == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["device"].startswith(os.uname().nodename + "/") and report["device"].endswith("/cpu")
    assert f"on {report['device']}" in done.stdout
    assert report["config_id"] == local.document["config_id"]
    # the same training as on this machine: the same seed and data give the same model
    assert report["models"][0]["metrics"]["mse"] == pytest.approx(local.document["models"][0]["metrics"]["mse"],
                                                                  rel=1e-6)
    assert (tuned_location / "final" / report["final_id"] / "model.pt").is_file()
    assert report["final_id"] in (tuned_location / "final" / "index.csv").read_text()


@needs_ray
def test_sigterm_on_the_driver_exits_143_keeps_finished_rows_and_cancels_the_running_task(
        ray_cluster: RayCluster, tmp_path: Path) -> None:  # noqa: F811
    spec = _probe_spec(tmp_path, {5: 300.0}, [4, 5, 6, 7])
    sink = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--executor", "ray", "--ray-address",
                             ray_cluster.address, "--sink", str(sink), "--grace", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: trial_row_files(sink) == 3, 120, "three trials did not finish")
        held = _wait_for(lambda: _pids(tmp_path).get(5), 30, "the trial of width 5 did not start")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    assert "SIGTERM: no new trials" in out + err
    rows = _rows(sink).set_index("param_width")
    assert sorted(rows["status"]) == ["interrupted", "ok", "ok", "ok"] and rows.loc[5, "status"] == "interrupted"
    _wait_for(lambda: not _alive(held), 30, "the cancelled task's worker process did not end")


@needs_ray
def test_a_run_killed_with_kill_9_on_ray_resumes_without_repeating_finished_trials(
        connected: RayCluster, tmp_path: Path) -> None:
    path = _probe_spec(tmp_path, {5: 300.0}, [4, 5, 6, 7])  # width 5 still trains when the run is killed
    sink = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(path), "--executor", "ray", "--ray-address",
                             connected.address, "--sink", str(sink)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        # generous guards, not timings: a Ray job's workers import torch, slow on a loaded 2-core machine
        _wait_for(lambda: trial_row_files(sink) == 3 or proc.poll() is not None, 400, "three trials did not finish")
        held = _wait_for(lambda: _pids(tmp_path).get(5) or proc.poll() is not None, 200,
                         "the trial of width 5 did not start")
        assert proc.poll() is None, proc.communicate()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and whatever it started, as an OOM kill or a CI abort does
        proc.communicate(timeout=60)
    # the row objects are the record (results.csv is merged from them in batches: a kill -9 can come first)
    first = pd.DataFrame(trial_row_objects(sink)).set_index("param_width")
    assert sorted(first.index) == [4, 6, 7] and (first["status"] == "ok").all()  # no row for the trial cut short
    _wait_for(lambda: not _alive(held), 200, "Ray did not end the killed driver's running task")

    (tmp_path / "pids.txt").unlink()
    module = json.loads(path.read_text())["architecture"].split(":")[0]
    (tmp_path / f"{module}.py").write_text(PROBE.format(hold={5: 0.0}, pids=str(tmp_path / "pids.txt")))  # no hold now
    spec = load_spec(path)
    ids = {int(t.params["width"]): t.trial_id for t in expand(spec)}
    again = run_spec(spec, _ray(connected, sink=str(sink)), Reporter(quiet=True))
    assert again.exit_code == 0 and again.skipped == 3 and again.counts == {"ok": 1}
    assert set(_pids(tmp_path)) == {5}  # only the trial cut short was built (trained) again
    rows = _rows(sink).set_index("param_width")
    assert (rows["status"] == "ok").all() and sorted(rows.index) == [4, 5, 6, 7]
    for width in (4, 6, 7):  # the finished trials' rows are the killed run's, untouched
        assert rows.loc[width, "run_id"] == first.loc[width, "run_id"] and rows.loc[width, "trial_id"] == ids[width]
    assert rows.loc[5, "run_id"] == again.run_id


def _hub_pids(cluster: RayCluster) -> set[int]:
    """The process ids of the hub actors (progress and stops) on the cluster's nodes: a process titled
    "ray::_Hub" that descends from one of its `ray start` processes."""
    nodes = {p.pid for p in cluster.procs}
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or not (entry / "cmdline").read_bytes().startswith(b"ray::_Hub"):
                continue
            pid = int(entry.name)
            while pid > 1 and pid not in nodes:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the parent
        except (OSError, ValueError):
            continue
        if pid in nodes:
            found.add(int(entry.name))
    return found


@needs_ray
def test_a_dead_hub_actor_ends_the_run_with_one_plain_error_line(ray_cluster: RayCluster,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    spec = _probe_spec(tmp_path, {5: 300.0}, [4, 5])
    sink = tmp_path / "res"
    before = _hub_pids(ray_cluster)
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--executor", "ray", "--ray-address",
                             ray_cluster.address, "--sink", str(sink)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # not a terminal
    try:
        _wait_for(lambda: trial_row_files(sink) == 1, 120, "the first trial did not finish")
        _wait_for(lambda: _pids(tmp_path).get(5), 60, "the trial of width 5 did not start")
        hub = _wait_for(lambda: _hub_pids(ray_cluster) - before, 30, "no hub actor found")
        os.kill(hub.pop(), signal.SIGKILL)  # as the kernel's out-of-memory killer would
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    errors = [line for line in err.splitlines() if line.startswith("hpt: error:")]
    assert errors == [line for line in err.splitlines() if line.strip()], err  # nothing else on stderr
    assert len(errors) == 1 and errors[0].startswith(
        "hpt: error: the Ray actor that relays this run's progress and stops died (ActorDiedError: "), err
    assert errors[0].endswith("finished trials are kept: run the same command again to train the rest")
    assert "\x1b[" not in out + err and "Traceback" not in err
    rows = _rows(sink).set_index("param_width")
    assert rows.loc[4, "status"] == "ok" and rows.loc[5, "status"] == "interrupted"


@needs_ray
def test_a_panel_runs_on_the_cluster_streams_to_a_gcs_bucket_and_its_final_model_forecasts_every_series(
        connected: RayCluster, gcs_server: Any, tmp_path: Path) -> None:
    """Many series (data.series) end to end on Ray with the results in a gs:// bucket (fake-gcs-server):
    `hpt run`, `hpt results`, `hpt final --executor ray` and `hpt predict` on the bucket's model."""
    from tests.test_panel import panel_spec, write_panel

    bucket = gcs_server.create_bucket()
    location = f"gs://{bucket}/panel"
    env = {**gcs_server.client_env(), "HPT_SINK_RETRIES": "2", "HPT_SINK_TIMEOUT": "5"}
    data = write_panel(tmp_path / "stations.csv", {"small": (1.0, 528), "big": (1000.0, 528)}, shape="daily")
    spec = tmp_path / "panel.json"
    spec.write_text(json.dumps(panel_spec(data)))
    ray = ("--executor", "ray", "--ray-address", connected.address)
    done = hpt_here("run", str(spec), *ray, "--sink", location, env=env)
    assert done.exit_code == 0, done.output
    table = pd.read_csv(io.BytesIO(gcs_server.get(bucket, "panel/results.csv")))
    trials = trial_rows(table)
    assert list(trials["status"]) == ["ok"] and trials["val_mase"].notna().all()
    assert trials["device"].str.endswith("/cpu").all()  # trained on a node of the cluster
    assert sorted(table.loc[table["architecture"].str.startswith("naive-"), "architecture"]) == \
        ["naive-last", "naive-seasonal"]

    shown = hpt_here("results", location, env=env)
    assert shown.exit_code == 0 and "metric val_mase" in shown.output, shown.output

    final = hpt_here("final", location, *ray, "--holdout", "2D", "--report", str(tmp_path / "report.json"), env=env)
    assert final.exit_code == 0, final.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["panel"]["series"] == 2 and report["device"].endswith("/cpu")
    model = report["uris"]["model"]
    assert model.startswith(f"gs://{bucket}/panel/final/")

    forecast = hpt_here("predict", model, "--data", str(data), "--last", env=env)
    assert forecast.exit_code == 0, forecast.output
    rows = pd.read_csv(io.StringIO(forecast.stdout))
    assert list(rows.columns[:4]) == ["series", "timestamp", "horizon_step", "prediction"]
    assert sorted(rows["series"].unique()) == ["big", "small"] and len(rows) == 2 * 2  # horizon 2 per series
    big, small = (rows.loc[rows["series"] == s, "prediction"].abs().mean() for s in ("big", "small"))
    assert big > 100 * small  # each series forecast in its own units
