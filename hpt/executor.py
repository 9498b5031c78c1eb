"""Run trials on worker processes, one slot each (a CPU share or a GPU), results to one writer.

Each worker is a spawned process that loads torch once, keeps the data, and trains the
trials it is handed one at a time. GPU workers are pinned with ``CUDA_VISIBLE_DEVICES``
before CUDA initialises. A worker that dies takes only its trial with it: the trial is
recorded as failed with the cause and a new worker takes the slot. On SIGINT/SIGTERM no
more trials start, running ones are stopped and recorded as ``interrupted``.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import pandas as pd

from hpt.errors import SIGNAL_EXIT
from hpt.trial import Status, Trial, TrialResult, utcnow

__all__ = ["AutoPacker", "Executor", "Slot", "cpu_slots", "gpu_slots", "visible_gpus"]


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
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (or 0..n-1)."""
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:
        return []
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def gpu_slots(gpus: list[str], per_gpu: int = 1, first: int = 0) -> list[Slot]:
    """`per_gpu` slots on each GPU; each worker sees only its own GPU, as cuda:0."""
    return [Slot(f"gpu{g}" + (f".{k}" if k else ""), "cuda:0", (("CUDA_VISIBLE_DEVICES", g),), 2)
            for g in gpus for k in range(first, first + per_gpu)]


class AutoPacker:
    """``--trials-per-gpu auto``: after the first finished trial, fill each GPU with as many
    trials as its memory holds with a safety margin (also bounded by CPU cores)."""

    CONTEXT_MB = 600.0  # a CUDA context and its kernels, not counted by the caching allocator
    MARGIN = 0.8  # of the GPU's memory
    CAP = 16

    def __init__(self, gpus: list[str], say: Callable[[str], None], cpus: int | None = None) -> None:
        self.gpus = gpus
        self.say = say
        self.cpus = cpus or os.cpu_count() or 1
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
        return gpu_slots(self.gpus, self.per_gpu - 1, first=1)


def cpu_slots(workers: int) -> list[Slot]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    return [Slot(f"cpu-{i}", "cpu", (("CUDA_VISIBLE_DEVICES", ""),), threads) for i in range(workers)]


def _die_with_parent() -> None:
    try:  # Linux: the kernel kills this worker when the parent dies
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(conn: Connection, frame: pd.DataFrame, slot: Slot, objective: str) -> None:
    # Ctrl-C and Jenkins' abort signal the whole process group: the parent decides what they
    # mean (a grace period, then SIGKILL), so a running trial is not lost to them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    import torch

    from hpt.train import TrainContext

    torch.set_num_threads(slot.threads)
    context = TrainContext(frame, slot.device, objective, slot=slot.name)
    while True:
        try:
            trial = conn.recv()
        except EOFError:
            return
        if trial is None:
            return
        conn.send(context.run(trial))


class _Worker:
    def __init__(self, ctx: Any, slot: Slot, frame: pd.DataFrame, objective: str) -> None:
        self.slot = slot
        self.conn, child = ctx.Pipe()
        saved = {k: os.environ.get(k) for k, _ in slot.env}
        os.environ.update(dict(slot.env))  # spawn copies the environment when the child starts
        try:
            self.proc = ctx.Process(target=_worker_main, args=(child, frame, slot, objective),
                                    name=f"hpt-{slot.name}", daemon=True)
            self.proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.trial: Trial | None = None

    def give(self, trial: Trial) -> None:
        self.trial = trial
        self.conn.send(trial)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout)
        self.conn.close()

    def kill(self) -> None:
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


class Executor:
    """Runs trials on a fixed set of slots; results reach `on_result` in the calling process."""

    def __init__(self, frame: pd.DataFrame, slots: list[Slot], objective: str = "val_mse", grace: float = 10.0,
                 grow: Callable[[TrialResult], list[Slot]] | None = None) -> None:
        """`grow` sees each finished trial and may return more slots to start (automatic packing)."""
        if not slots:
            raise ValueError("an executor needs at least one slot")
        self.frame = frame
        self.slots = slots
        self.objective = objective
        self.grace = grace
        self.grow = grow
        self.interrupted_by: int | None = None  # the signal that stopped the run, if any
        self._signals = 0

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals += 1
        if self.interrupted_by is None:
            self.interrupted_by = signum

    @property
    def exit_code(self) -> int:
        return SIGNAL_EXIT.get(signal.Signals(self.interrupted_by), 130) if self.interrupted_by else 0

    def run(self, trials: Iterable[Trial], on_result: Callable[[TrialResult], None],
            on_start: Callable[[Trial, Slot], None] | None = None,
            on_interrupt: Callable[[str], None] | None = None) -> None:
        """Run every trial (or until a signal); call `on_result` once per trial that started.

        `on_interrupt` is told, once, what a signal did (no new trials; how long the running
        ones may take).
        """
        ctx = mp.get_context("spawn")
        previous = {s: signal.signal(s, self._on_signal) for s in SIGNAL_EXIT}
        pending: Iterator[Trial] = iter(trials)
        workers = [_Worker(ctx, s, self.frame, self.objective) for s in self.slots]
        started: dict[int, str] = {}
        deadline: float | None = None  # end of the grace period after a signal
        try:
            exhausted = False
            while True:
                if not exhausted and self.interrupted_by is None:
                    for w in workers:
                        if w.trial is None:
                            nxt = next(pending, None)
                            if nxt is None:
                                exhausted = True
                                break
                            started[id(w)] = utcnow()
                            w.give(nxt)
                            if on_start:
                                on_start(nxt, w.slot)
                busy = [w for w in workers if w.trial is not None]
                if not busy:
                    break
                if self.interrupted_by is not None:
                    if deadline is None:
                        deadline = time.monotonic() + self.grace
                        if on_interrupt is not None:
                            on_interrupt(f"{signal.Signals(self.interrupted_by).name}: no new trials; "
                                         f"{len(busy)} running {'trial gets' if len(busy) == 1 else 'trials get'} up to "
                                         f"{self.grace:g}s to finish (a second signal stops "
                                         f"{'it' if len(busy) == 1 else 'them'} now)")
                    if self._signals > 1 or time.monotonic() >= deadline:
                        break
                ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=0.2))
                extra: list[Slot] = []
                for i, w in enumerate(workers):
                    if w.trial is None or (w.conn not in ready and w.proc.sentinel not in ready):
                        continue
                    result = self._receive(w, started.get(id(w), ""))
                    if result is None:
                        continue
                    w.trial = None
                    if not w.proc.is_alive():
                        w.kill()
                        workers[i] = _Worker(ctx, w.slot, self.frame, self.objective)
                    on_result(result)
                    if self.grow is not None and self.interrupted_by is None:
                        extra += self.grow(result)
                workers += [_Worker(ctx, s, self.frame, self.objective) for s in extra]
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            for w in workers:
                if w.trial is not None:  # interrupted (or an error in on_result): stop it now
                    w.kill()
                    on_result(TrialResult(w.trial, Status.INTERRUPTED, error="run interrupted before the trial finished",
                                          started_at=started.get(id(w), ""), finished_at=utcnow(), device=w.slot.name))
                else:
                    w.stop()

    def _receive(self, w: _Worker, started_at: str) -> TrialResult | None:
        """The worker's result, a failure if it died, or None if it is still working."""
        assert w.trial is not None
        try:
            if w.conn.poll():
                return w.conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            pass
        if w.proc.is_alive():
            return None
        w.proc.join(1)
        cause = _death_cause(w.proc.exitcode)
        return TrialResult(w.trial, Status.FAILED, error=f"worker process died ({cause}) while training this trial",
                           started_at=started_at, finished_at=utcnow(), device=w.slot.name)

