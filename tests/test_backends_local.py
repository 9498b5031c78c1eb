"""The worker pool without a GPU: injected GPU lists, pinning, packing, slots never double-booked."""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.backends.local import AutoPacker, LocalBackend, Slot, choose_slots, cpu_slots, gpu_slots, usable_cpus
from hpt.errors import InputError
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.search import expand
from hpt.spec import check_data, load_spec
from hpt.trial import Finished, Progress, Started, Status, TrialResult
from tests import gated
from tests.conftest import ROOT, hpt_here, tiny_spec, trial_rows


def test_slots_follow_the_gpus_and_trials_per_gpu() -> None:
    slots = choose_slots("auto", None, gpus=["0", "1", "2"], only=("0", "2"), per_gpu=2)
    assert [s.name for s in slots] == ["gpu0", "gpu0.1", "gpu2", "gpu2.1"]
    assert [dict(s.env)["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "0", "2", "2"]
    assert all(s.device == "cuda:0" for s in slots)  # each worker sees only its own GPU
    assert len(choose_slots("auto", 3, gpus=[])) == 3 and choose_slots("auto", 3, gpus=[])[0].device == "cpu"
    assert choose_slots("cpu", None, gpus=["0"])[0].device == "cpu"
    with pytest.raises(InputError, match="GPU 5 is not visible; visible: 0, 1, 2"):
        choose_slots("auto", None, gpus=["0", "1", "2"], only=("5",))
    with pytest.raises(InputError, match="no CUDA GPU is visible"):
        choose_slots("auto", None, gpus=[], only=("0",))
    with pytest.raises(InputError, match="no CUDA GPU is visible"):
        choose_slots("cuda", None, gpus=[])


def test_gpus_option_without_a_gpu_is_bad_input(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    out = cli("run", str(write_spec()), "--gpus", "0,2", "--sink", str(tmp_path / "r"))
    assert out.returncode == 2 and "--gpus 0,2: no CUDA GPU is visible" in out.stderr
    out = cli("run", str(write_spec()), "--trials-per-gpu", "zero")
    assert out.returncode == 2 and "expected a number >= 1 or auto" in out.stderr
    # the spec's resources.gpus: the line names it, not an option that was not given
    out = cli("run", str(write_spec(resources={"gpus": [0]})), "--sink", str(tmp_path / "r"))
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1] == \
        "hpt: error: resources.gpus 0: no CUDA GPU is visible to this process"
    out = cli("run", str(write_spec()), "--gpus", "0,0", "--sink", str(tmp_path / "r"))  # as the spec refuses it
    assert out.returncode == 2 and "--gpus': expected distinct GPU indices, got '0,0'" in out.stderr, out.stderr


def test_gpu_settings_on_the_cpu_are_said_to_do_nothing(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(parameters={"lr": [0.001]}, training={"epochs": 1, "amp": "bf16"}))
    done = hpt_here("run", str(spec), "--sink", str(tmp_path / "r"), "--workers", "1", "--trials-per-gpu", "2")
    assert done.exit_code == 0, done.output
    assert "note: --trials-per-gpu 2 and training.amp bf16 do nothing on the CPU (trials train in fp32, --workers " \
           "of them at a time)" in done.stdout.splitlines()
    tuned = write_spec(tiny_spec(parameters={"lr": [0.002], "amp": ["off", "bf16"]}, training={"epochs": 1}))
    done = hpt_here("run", str(tuned), "--sink", str(tmp_path / "t"), "--workers", "1")
    assert 'note: parameters.amp ["off", "bf16"] does nothing on the CPU' in done.stdout, done.stdout
    plain = hpt_here("run", str(write_spec(tiny_spec(parameters={"lr": [0.003]}, training={"epochs": 1}))),
                     "--sink", str(tmp_path / "p"), "--workers", "1")
    assert "do nothing on the CPU" not in plain.stdout and "does nothing" not in plain.stdout


def test_auto_packing_fills_memory_within_cpu_cores() -> None:
    said: list[str] = []
    packer = AutoPacker(["0", "1"], said.append, cpus=16)
    trial: Any = None
    failed = TrialResult(trial, Status.FAILED)
    assert packer(failed) == [] and packer.per_gpu is None
    ok = TrialResult(trial, Status.OK, metrics={"gpu_mem_reserved_mb": 1000.0, "gpu_mem_total_mb": 81920.0})
    extra = packer(ok)
    assert packer.per_gpu == 8  # memory allows 40, 16 cores over 2 GPUs allow 8
    assert [s.name for s in extra] == [f"gpu{g}.{k}" for g in "01" for k in range(1, 8)]
    assert "packing 8 trials per GPU (limited by CPU cores)" in said[0]
    assert packer(ok) == []  # decided once
    big = AutoPacker(["0"], said.append, cpus=64)
    big(TrialResult(trial, Status.OK, metrics={"gpu_mem_reserved_mb": 20000.0, "gpu_mem_total_mb": 81920.0}))
    assert big.per_gpu == 3 and "limited by GPU memory" in said[-1]


PROBE = '''
import os
from torch import nn

def build(n_features, lookback, horizon, width=8):
    with open(os.environ["HPT_PROBE_LOG"], "a") as f:
        f.write(f"{os.getpid()} {os.environ.get('CUDA_VISIBLE_DEVICES', '')}\\n")
    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.ReLU(), nn.Linear(width, horizon))
'''


def _probe_spec(write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, configs: int) -> Any:
    (tmp_path / "probe.py").write_text(PROBE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HPT_PROBE_LOG", str(tmp_path / "probe.log"))
    spec = load_spec(write_spec(tiny_spec(architecture="probe:build", parameters={"width": list(range(4, 4 + configs))},
                                          training={"epochs": 2})))
    (tmp_path / "probe.log").unlink()  # checking the spec built the model once, here: the log is the workers' from now
    return spec


def _on_cpu(slots: list[Slot]) -> list[Slot]:
    return [dataclasses.replace(s, device="cpu", threads=1) for s in slots]


def test_each_worker_is_pinned_to_its_gpu_and_slots_are_never_double_booked(
        write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _probe_spec(write_spec, tmp_path, monkeypatch, configs=6)
    slots = _on_cpu(gpu_slots(["3", "5"], per_gpu=2))  # the GPU list is injected; training runs on the CPU
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True), slots=slots)
    assert summary.counts["ok"] == 12
    seen: dict[str, set[str]] = defaultdict(set)
    for line in (tmp_path / "probe.log").read_text().splitlines():
        pid, gpu = line.split(" ")
        seen[pid].add(gpu)
    assert all(len(gpus) == 1 for gpus in seen.values())  # a worker only ever sees its own GPU
    per_gpu = defaultdict(set)
    for pid, gpus in seen.items():
        per_gpu[next(iter(gpus))].add(pid)
    assert set(per_gpu) == {"3", "5"} and all(len(pids) <= 2 for pids in per_gpu.values())
    rows = trial_rows(pd.read_csv(tmp_path / "res" / "results.csv"))
    assert set(rows["device"]) <= {"gpu3", "gpu3.1", "gpu5", "gpu5.1"}
    for _, trials in rows.groupby("device"):  # one trial at a time per slot
        spans = trials[["started_at", "finished_at"]].sort_values("started_at").to_numpy()
        assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


def test_the_pool_grows_when_told(write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _probe_spec(write_spec, tmp_path, monkeypatch, configs=4)
    slots = _on_cpu(gpu_slots(["0"]))
    grown: list[int] = []

    def grow(result: TrialResult) -> list[Slot]:
        if grown:
            return []
        grown.append(1)
        return _on_cpu(gpu_slots(["0"], 1, first=1))

    import hpt.runner.backend as runner

    monkeypatch.setattr(runner, "AutoPacker", lambda gpus, say, **kw: grow)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res"), trials_per_gpu="auto"), Reporter(quiet=True),
                       slots=slots)
    assert summary.counts["ok"] == 8
    rows = trial_rows(pd.read_csv(tmp_path / "res" / "results.csv"))
    assert set(rows["device"]) == {"gpu0", "gpu0.1"}


def test_the_cpu_default_is_one_single_threaded_worker_per_usable_cpu() -> None:
    slots = choose_slots("auto", None, gpus=[])
    assert len(slots) == usable_cpus() and {s.threads for s in slots} == {1}
    assert [s.threads for s in choose_slots("cpu", 1, gpus=[])] == [1]  # --workers 1: still one thread
    assert [s.threads for s in choose_slots("cpu", 3, gpus=[], threads=2)] == [2, 2, 2]  # --workers 3 --threads 2
    assert len(cpu_slots(threads=2, cpus=8)) == 4 and len(cpu_slots(threads=16, cpus=8)) == 1  # at least one
    assert {s.threads for s in choose_slots("auto", None, gpus=["0"])} == {2}  # beside a GPU, as before
    assert {s.threads for s in choose_slots("auto", None, gpus=["0"], threads=3)} == {3}


@pytest.mark.parametrize("affinity, files, cpus", [
    (set(range(64)), {}, 64),  # no cgroup files at all
    (set(range(64)), {"/sys/fs/cgroup/cpu.max": "max 100000\n"}, 64),  # v2 without a quota
    (set(range(64)), {"/sys/fs/cgroup/cpu.max": "400000 100000\n"}, 4),  # docker --cpus 4 on a 64-core host
    (set(range(64)), {"/sys/fs/cgroup/cpu.max": "150000 100000\n"}, 2),  # --cpus 1.5: rounded up
    (set(range(64)), {"/proc/self/cgroup": "0::/kubepods/pod1/c1\n",
                      "/sys/fs/cgroup/kubepods/pod1/c1/cpu.max": "200000 100000",
                      "/sys/fs/cgroup/cpu.max": "max 100000"}, 2),  # the process's own group first
    ({0}, {"/sys/fs/cgroup/cpu.max": "400000 100000"}, 1),  # taskset -c 0 inside the container
    ({0, 1, 2, 3, 4, 5}, {"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "300000\n",
                          "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 3),  # cgroup v1
    ({0, 1, 2, 3, 4, 5}, {"/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1",
                          "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000"}, 6),  # v1, no quota
    (set(), {}, 1),
])
def test_usable_cpus_follow_affinity_and_the_container_quota(affinity: set[int], files: dict[str, str],
                                                             cpus: int) -> None:
    assert usable_cpus(affinity, lambda path: files.get(path)) == cpus


@pytest.mark.skipif(not shutil.which("taskset"), reason="needs taskset (util-linux)")
def test_a_run_pinned_to_one_cpu_starts_one_worker(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(parameters={"lr": [0.001]}, training={"epochs": 1}))
    out = subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "hpt", "run", str(spec), "--sink",
                          str(tmp_path / "res")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith("on the CPU (1 worker x 1 thread; no CUDA GPU in use)")
    threaded = write_spec(tiny_spec(parameters={"lr": [0.001]}, training={"epochs": 1}, resources={"threads": 2}))
    for args, layout in (([], "2 threads"), (["--threads", "3"], "3 threads")):  # the option wins over the spec
        out = cli("run", str(threaded), "--sink", str(tmp_path / "res"), "--workers", "1", *args)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0].endswith(f"on the CPU (1 worker x {layout}; no CUDA GPU in use)")


def test_workers_report_every_epoch_and_stop_when_told(write_spec: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # the trial starts an epoch only once this process has heard the one before
    spec = load_spec(write_spec(tiny_spec(architecture=gated.ARCHITECTURE, parameters={"gate": [str(gate)]},
                                          training={"epochs": 200, "patience": 0})))
    trial = expand(spec)[0]
    backend = LocalBackend(check_data(spec), cpu_slots(1), spec.objective)
    try:
        backend.submit(trial)
        events: list[Any] = []
        deadline = time.monotonic() + gated.HOLD_S
        seen_at_stop = 0  # the last epoch this process had heard of when it sent the stop
        while not any(isinstance(e, Finished) for e in events) and time.monotonic() < deadline:
            batch = backend.poll(0.5)
            events += batch
            heard = [e.epoch for e in batch if isinstance(e, Progress)]
            if not seen_at_stop and heard and max(heard) >= 2:
                seen_at_stop = max(heard)
                backend.stop(trial.trial_id, "pruned at epoch 2 (test)")
            if heard:
                gated.let(gate, epochs=max(heard) + 1)
    finally:
        gated.let(gate)
        assert backend.close() == []
    assert isinstance(events[0], Started) and events[0].where == "cpu-0"
    epochs = [e.epoch for e in events if isinstance(e, Progress)]
    result = next(e.result for e in events if isinstance(e, Finished))
    assert result.status is Status.PRUNED and result.error == "pruned at epoch 2 (test)"
    # obeyed at the end of the epoch the stop arrives in: the one under way when it was sent, or the next
    assert epochs == list(range(1, len(epochs) + 1)) and seen_at_stop <= len(epochs) <= seen_at_stop + 2
    assert result.metrics["epochs"] == len(epochs) and result.model is None
    assert len(pd.read_csv(io.StringIO(result.curve or ""))) == len(epochs)
    assert {"train_loss", "val_mse", "val_mae", "lr"} <= set(next(e for e in events if isinstance(e, Progress)).metrics)


def test_a_worker_killed_while_idle_or_starting_is_replaced_and_costs_no_trial(write_spec: Any) -> None:
    spec = load_spec(write_spec(tiny_spec(training={"epochs": 1})))
    backend = LocalBackend(check_data(spec), cpu_slots(1), spec.objective)
    try:
        backend.start()
        worker = backend._workers[0]
        os.kill(worker.proc.pid, signal.SIGKILL)  # at once: it has not finished starting
        worker.proc.join(10)
        backend.submit(expand(spec)[0])
        results: list[TrialResult] = []
        deadline = time.monotonic() + 120
        while not results and time.monotonic() < deadline:
            results += [e.result for e in backend.poll(0.5) if isinstance(e, Finished)]
    finally:
        backend.close()
    assert [r.status for r in results] == [Status.OK], results


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_process_group_at_any_moment_of_start_up_ends_the_run(write_spec: Any, tmp_path: Path,
                                                                              signum: int, code: int) -> None:
    """Ctrl-C at a terminal and a Jenkins abort signal every process of the group, workers being born included."""
    gate = tmp_path / "gate"  # never opened: the trials are still running whenever the signal comes
    spec = write_spec(tiny_spec(architecture=gated.ARCHITECTURE, parameters={"lr": [0.001, 0.002, 0.003, 0.004],
                                                                             "gate": [str(gate)]},
                                training={"epochs": 2}))
    for offset in (0.0, 0.5):
        proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(tmp_path / f"r{offset}"),
                                 "--grace", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("results:"):
                break
        time.sleep(offset)
        os.killpg(proc.pid, signum)
        out = line + proc.communicate(timeout=60)[0]
        assert proc.returncode == code, out
        assert "Traceback" not in out and "KeyboardInterrupt" not in out, out


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the threads' signal masks from /proc (Linux)")
def test_no_thread_but_the_main_one_takes_a_signal_meant_for_the_run(write_spec: Any, tmp_path: Path) -> None:
    """While a worker starts, the main thread blocks SIGINT and SIGTERM and hpt ignores them (the worker must not
    die half-started); a library's thread that did not block them (numpy's and scipy's BLAS threads: a grid search
    imports scikit-learn, which imports scipy; a user's module, torch) would take a Ctrl-C or a Jenkins abort sent
    then and drop it, and the run would go on. Every thread but the main one blocks them."""
    gate = tmp_path / "gate"  # never opened: the run is still training when its threads are read
    spec = write_spec(tiny_spec(architecture=gated.ARCHITECTURE, parameters={"lr": [0.001, 0.002], "gate": [str(gate)]},
                                training={"epochs": 2}))
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}  # as a shell's
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(tmp_path / "r"), "--grace",
                             "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("results:"):  # its workers start now, its threads are up
            break
    time.sleep(3)  # the workers are training (held at the gate)
    threads = {}
    for task in Path(f"/proc/{proc.pid}/task").iterdir():
        status = dict(line.split(":\t", 1) for line in (task / "status").read_text().splitlines() if ":\t" in line)
        threads[task.name] = (status["Name"], int(status["SigBlk"], 16))
    os.killpg(proc.pid, signal.SIGTERM)
    out = "".join(lines) + proc.communicate(timeout=60)[0]
    assert proc.returncode == 143, out
    others = {tid: name for tid, (name, _) in threads.items() if tid != str(proc.pid)}
    assert others, threads  # the store's uploader, the claims' heartbeat at least
    wanted = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    assert all(mask & wanted == wanted for tid, (_, mask) in threads.items() if tid != str(proc.pid)), threads
