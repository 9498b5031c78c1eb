"""The local backend: one spawned worker process per slot (a CPU share or a GPU), started with the first trial.

Each worker loads torch once, keeps the data, and trains the trials it is handed one at a
time, sending every epoch's metrics back and obeying a stop message at the next epoch's
end. GPU workers are pinned with ``CUDA_VISIBLE_DEVICES`` before CUDA initialises. A
worker that dies takes only its trial with it: the trial comes back failed with the cause,
and a new worker takes the slot.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing as mp
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import pandas as pd

from hpt.errors import InputError
from hpt.progress import plural
from hpt.trial import Event, Finished, Progress, Started, Status, Trial, TrialResult, utcnow

__all__ = ["AutoPacker", "LocalBackend", "Slot", "choose_slots", "cpu_slots", "gpu_slots", "usable_cpus", "visible_gpus"]


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: a device string as the worker sees it, and its environment."""

    name: str  # for logs: "cpu-0", "gpu-2"
    device: str  # "cpu" or "cuda:0" (the worker sees only its own GPU)
    env: tuple[tuple[str, str], ...] = ()
    threads: int = 1

    @property
    def gpu(self) -> str | None:
        """The GPU this slot is pinned to (as the parent process numbers it), or None."""
        return dict(self.env).get("CUDA_VISIBLE_DEVICES") or None


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (or 0..n-1).

    On Linux without a GPU device node (NVIDIA's /dev/nvidiaN, WSL's /dev/dxg, AMD's /dev/kfd) there is none, and
    torch is not imported to say so (about 1.5 s a run that has nothing to train would spend).
    """
    if sys.platform.startswith("linux") and not _gpu_device_nodes():
        return []
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:
        return []
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def _gpu_device_nodes() -> bool:
    """Whether this Linux machine has a GPU device node that CUDA (or ROCm) would open."""
    return any(os.path.exists(node) for node in ("/dev/kfd", "/dev/dxg")) or \
        any(re.fullmatch(r"nvidia\d+", name) for name in _listdir("/dev"))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def usable_cpus(affinity: set[int] | None = None, read: Callable[[str], str | None] = _read_text) -> int:
    """The CPUs this process may use: those its affinity allows (``taskset``, a cpuset), capped by
    its cgroup's CPU quota (a container's ``--cpus``: cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up; at least 1.

    ``os.cpu_count()`` counts the host's CPUs, all 64 of them in a container given 4.
    `affinity` and `read` (a path's text, None when missing) are for tests.
    """
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cpus = max(1, len(affinity))
    own = next((line.split(":", 2)[2].strip() for line in (read("/proc/self/cgroup") or "").splitlines()
                if line.startswith("0::")), "/")  # cgroup v2: this process's group, e.g. /user.slice/x.scope
    for path in dict.fromkeys([f"/sys/fs/cgroup{own.rstrip('/')}/cpu.max", "/sys/fs/cgroup/cpu.max"]):
        text = read(path)  # "max 100000" (no quota) or "400000 100000" (4 CPUs)
        if text:
            quota, _, period = text.strip().partition(" ")
            return min(cpus, _quota_cpus(quota, period))
    for folder in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):  # cgroup v1; -1: no quota
        us = read(f"{folder}/cpu.cfs_quota_us")
        if us:
            return min(cpus, _quota_cpus(us.strip(), (read(f"{folder}/cpu.cfs_period_us") or "").strip()))
    return cpus


def _quota_cpus(quota: str, period: str) -> int:
    """CPUs a quota of `quota` microseconds per `period` allows (a huge number when there is none)."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return 1 << 30
    return -(-q // p) if q > 0 and p > 0 else 1 << 30


def gpu_slots(gpus: list[str], per_gpu: int = 1, first: int = 0, threads: int = 2) -> list[Slot]:
    """`per_gpu` slots on each GPU; each worker sees only its own GPU, as cuda:0, and has `threads`
    torch threads for its CPU-side work."""
    return [Slot(f"gpu{g}" + (f".{k}" if k else ""), "cuda:0", (("CUDA_VISIBLE_DEVICES", g),), threads)
            for g in gpus for k in range(first, first + per_gpu)]


def cpu_slots(workers: int | None = None, threads: int = 1, cpus: int | None = None) -> list[Slot]:
    """`workers` CPU slots of `threads` torch threads each; by default as many as fit the usable CPUs.

    One thread is the default even for one worker: small models gain nothing from a second
    thread and lose a lot when another process wants the core (measured on 2 cores: an mlp
    trial 17 ms with 1 thread, 330 ms with 2).
    """
    workers = workers or max(1, (cpus or usable_cpus()) // threads)
    return [Slot(f"cpu-{i}", "cpu", (("CUDA_VISIBLE_DEVICES", ""),), threads) for i in range(workers)]


def choose_slots(device: str, workers: int | None, gpus: list[str] | None = None, only: tuple[str, ...] | None = None,
                 per_gpu: int = 1, threads: int | None = None) -> list[Slot]:
    """Worker slots: `per_gpu` on each GPU in use, or `workers` CPU workers (default: usable CPUs / `threads`).

    `threads`: torch threads per worker [default: 1 on the CPU, 2 beside a GPU]. `gpus` is the
    visible GPU list (found when None; tests inject it); `only` narrows it.
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f'--device must be auto, cpu or cuda, got "{device}"')
    found = (visible_gpus() if gpus is None else gpus) if device != "cpu" else []
    if only:
        if not found:
            raise InputError(f"--gpus {','.join(only)}: no CUDA GPU is visible to this process")
        missing = [g for g in only if g not in found]
        if missing:
            raise InputError(f"--gpus: GPU {', '.join(missing)} is not visible; visible: {', '.join(found)}")
        found = [g for g in found if g in only]
    if device == "cuda" and not found:
        raise InputError("--device cuda: no CUDA GPU is visible to this process")
    if found:
        return gpu_slots(found, per_gpu, threads=threads or 2)
    return cpu_slots(workers, threads or 1)


class AutoPacker:
    """``--trials-per-gpu auto``: after the first finished trial, fill each GPU with as many
    trials as its memory holds with a safety margin (also bounded by CPU cores)."""

    CONTEXT_MB = 600.0  # a CUDA context and its kernels, not counted by the caching allocator
    MARGIN = 0.8  # of the GPU's memory
    CAP = 16

    def __init__(self, gpus: list[str], say: Callable[[str], None], cpus: int | None = None, threads: int = 2) -> None:
        self.gpus = gpus
        self.say = say
        self.threads = threads  # torch threads of each new worker, as those of the first ones
        self.cpus = cpus or usable_cpus()
        self.per_gpu: int | None = None

    def __call__(self, result: TrialResult) -> list[Slot]:
        reserved = result.metrics.get("gpu_mem_reserved_mb")
        total = result.metrics.get("gpu_mem_total_mb")
        if self.per_gpu is not None or result.status is not Status.OK or not reserved or not total:
            return []
        by_memory = int(total * self.MARGIN // (reserved + self.CONTEXT_MB))
        by_cpu = max(1, self.cpus // len(self.gpus))
        self.per_gpu = max(1, min(by_memory, by_cpu, self.CAP))
        limit = "GPU memory" if self.per_gpu == by_memory else "CPU cores" if self.per_gpu == by_cpu else "the cap"
        self.say(f"--trials-per-gpu auto: a trial peaked at {reserved:.0f} MB of {total / 1024:.0f} GB; "
                 f"packing {self.per_gpu} trials per GPU (limited by {limit})")
        return gpu_slots(self.gpus, self.per_gpu - 1, first=1, threads=self.threads)


def _die_with_parent() -> None:
    try:  # Linux: the kernel kills this worker when the parent dies
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# Messages, parent -> worker: ("trial", Trial), ("stop", trial_id, reason), None (exit).
# Worker -> parent: ("progress", epoch, metrics), ("result", TrialResult).


def _worker_main(conn: Connection, slot: Slot, objective: str) -> None:
    # Ctrl-C and Jenkins' abort signal the whole process group: the parent decides what they
    # mean (a grace period, then SIGKILL), so a running trial is not lost to them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    try:
        frame: pd.DataFrame = conn.recv()  # the data comes after the start (see _Worker)
    except EOFError:
        return
    import torch

    from hpt.train import TrainContext

    torch.set_num_threads(slot.threads)
    context = TrainContext(frame, slot.device, objective, slot=slot.name)
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        if msg[0] != "trial":
            continue  # a stop for a trial that already ended
        trial: Trial = msg[1]

        def on_epoch(epoch: int, metrics: dict[str, float], trial_id: str = trial.trial_id) -> str | None:
            conn.send(("progress", epoch, metrics))
            reason = None
            while conn.poll():
                m = conn.recv()
                if m is None:
                    return "the run is closing"
                if m[0] == "stop" and m[1] == trial_id:
                    reason = m[2]
            return reason

        conn.send(("result", context.run(trial, on_epoch)))


_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _Worker:
    def __init__(self, ctx: Any, slot: Slot, frame: pd.DataFrame, objective: str) -> None:
        self.slot = slot
        self.conn, child = ctx.Pipe()
        self.start_error = ""  # why the process could not be started
        saved = {k: os.environ.get(k) for k, _ in slot.env}
        os.environ.update(dict(slot.env))  # spawn copies the environment when the child starts
        # Ctrl-C and SIGTERM go to the whole process group. The child must ignore them from its first
        # instruction (a half-started worker would print a KeyboardInterrupt traceback): an ignored
        # signal stays ignored across exec. Meanwhile they are blocked here, so this process still
        # gets them, as soon as the child is on its way (Linux keeps a blocked signal pending even
        # while it is ignored; hpt's own threads block them for good, see hpt.store). A thread of a
        # library (OpenBLAS's, started when numpy is imported) does not block them and would take
        # and drop a signal sent in this window, so the window holds only the fork and exec: the
        # data goes to the worker after it, while signals are handled again.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        handlers = {s: signal.signal(s, signal.SIG_IGN) for s in _SIGNALS}
        try:
            self.proc = ctx.Process(target=_worker_main, args=(child, slot, objective),
                                    name=f"hpt-{slot.name}", daemon=True)
            self.proc.start()
        except OSError as e:  # it died while being handed its start-up data
            self.start_error = f"{type(e).__name__}: {e}"
        finally:
            for s, handler in handlers.items():
                signal.signal(s, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.trial: Trial | None = None
        self.started_at = ""
        if not self.start_error:
            self.send(frame)  # blocks while the worker starts; one that dies meanwhile is found not usable

    @property
    def usable(self) -> bool:
        return not self.start_error and self.proc.is_alive()

    def give(self, trial: Trial) -> None:
        self.trial = trial
        self.started_at = utcnow()
        self.send(("trial", trial))  # a worker that died meanwhile fails this trial: poll sees its death

    def send(self, msg: Any) -> None:
        try:
            self.conn.send(msg)
        except OSError:
            pass  # it died: its death is noticed by poll

    def stop(self, timeout: float = 5.0) -> None:
        if self.start_error:
            self.conn.close()
            return
        if self.proc.is_alive():
            self.send(None)
            self.proc.join(timeout)
        if self.proc.is_alive():  # still starting up, or stuck: it holds no trial
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()

    def kill(self) -> None:
        if not self.start_error:
            if self.proc.is_alive():
                self.proc.kill()
            self.proc.join(5)
        self.conn.close()


def _death_cause(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class LocalBackend:
    """Trains trials on worker processes on this machine, one per slot."""

    def __init__(self, frame: pd.DataFrame, slots: list[Slot], objective: str = "val_mse",
                 grow: Callable[[TrialResult], list[Slot]] | None = None) -> None:
        """`grow` sees each finished trial and may return more slots to start (automatic packing)."""
        if not slots:
            raise ValueError("a backend needs at least one slot")
        self.frame = frame
        self.objective = objective
        self.grow = grow
        self._ctx = mp.get_context("spawn")
        self._slots = list(slots)
        self._events: list[Event] = []
        self._workers: list[_Worker] = []
        self._started = False

    def start(self) -> None:
        """Start a worker on each slot (at the first :meth:`submit`: a run with nothing to train starts none)."""
        if self._started:
            return
        self._started = True
        # Workers ignore SIGTERM, so multiprocessing's own exit handler (terminate, then join) would
        # wait for them forever if this process ended without close(): kill them first, whatever the exit.
        atexit.register(self._kill_all)
        try:
            for slot in self._slots:
                self._workers.append(self._spawn(slot))
        except BaseException:  # Ctrl-C while they start: none is left behind
            self._kill_all()
            raise

    def _kill_all(self) -> None:
        for w in self._workers:
            w.kill()
        self._workers = []
        atexit.unregister(self._kill_all)

    def _spawn(self, slot: Slot) -> _Worker:
        return _Worker(self._ctx, slot, self.frame, self.objective)

    def describe(self) -> str:
        gpus = list(dict.fromkeys(s.gpu for s in self._slots if s.gpu is not None))
        if not gpus:
            return f"the CPU ({plural(len(self._slots), 'worker')} x {plural(self._slots[0].threads, 'thread')}; " \
                   "no CUDA GPU in use)"
        per_gpu = "trials per GPU: auto" if self.grow is not None else plural(len(self._slots) // len(gpus), "trial") + \
            " per GPU"
        return f"{plural(len(gpus), 'GPU')} ({', '.join(gpus)}), {per_gpu}"

    def slot_names(self) -> Sequence[str]:
        return [s.name for s in self._slots]

    def free(self) -> int:
        if not self._started:
            return len(self._slots)
        return sum(1 for w in self._workers if w.trial is None)

    def submit(self, trial: Trial) -> None:
        self.start()
        i, worker = next((i, w) for i, w in enumerate(self._workers) if w.trial is None)
        if not worker.usable:  # died while idle (killed, or while starting): a new one takes the slot
            worker.kill()
            worker = self._workers[i] = self._spawn(worker.slot)
        worker.give(trial)
        self._events.append(Started(trial, worker.slot.name))

    def stop(self, trial_id: str, reason: str) -> None:
        for w in self._workers:
            if w.trial is not None and w.trial.trial_id == trial_id:
                w.send(("stop", trial_id, reason))

    def poll(self, timeout: float) -> list[Event]:
        busy = [w for w in self._workers if w.trial is not None and not w.start_error]
        if busy and not self._events:
            wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=timeout)
        events, self._events = self._events, []
        extra: list[Slot] = []
        for i, w in enumerate(self._workers):
            if w.trial is None:
                continue
            result = self._receive(w, events)
            if result is None:
                continue
            w.trial = None
            if not w.usable:
                w.kill()
                self._workers[i] = self._spawn(w.slot)
            events.append(Finished(result))
            if self.grow is not None:
                extra += self.grow(result)
        self._slots += extra
        self._workers += [self._spawn(s) for s in extra] if self._started else []
        return events

    def _receive(self, w: _Worker, events: list[Event]) -> TrialResult | None:
        """Progress into `events`; the worker's result, a failure if it died, or None while it works."""
        assert w.trial is not None
        try:
            while w.conn.poll():
                msg = w.conn.recv()
                if msg[0] == "progress":
                    events.append(Progress(w.trial, msg[1], msg[2]))
                else:
                    return msg[1]  # type: ignore[no-any-return]
        except (EOFError, OSError):
            pass
        if w.start_error:
            cause = f"could not be started: {w.start_error}"
        elif w.proc.is_alive():
            return None
        else:
            w.proc.join(1)
            cause = _death_cause(w.proc.exitcode)
        return TrialResult(w.trial, Status.FAILED, error=f"worker process died ({cause}) while training this trial",
                           started_at=w.started_at, finished_at=utcnow(), device=w.slot.name)

    def close(self) -> list[TrialResult]:
        """Idle workers are asked to exit (killed if they are still starting up a moment later);
        busy ones are killed and their trials come back ``interrupted``."""
        interrupted = []
        idle = [w for w in self._workers if w.trial is None]
        for w in idle:
            if not w.start_error:
                w.send(None)
        deadline = time.monotonic() + 1.0
        for w in self._workers:
            if w.trial is not None:
                w.kill()
                interrupted.append(TrialResult(w.trial, Status.INTERRUPTED, error="run interrupted before the trial "
                                               "finished", started_at=w.started_at, finished_at=utcnow(),
                                               device=w.slot.name))
                w.trial = None
        for w in idle:
            w.stop(timeout=max(0.0, deadline - time.monotonic()))
        self._workers = []
        atexit.unregister(self._kill_all)
        return interrupted
