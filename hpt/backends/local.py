"""The local backend: one spawned worker process per slot (a CPU share or a GPU), started with the first trial.

Each worker loads torch once, keeps the data, and trains the trials it is handed one at a
time, sending every epoch's metrics back and obeying a stop message at the next epoch's
end. GPU workers are pinned with ``CUDA_VISIBLE_DEVICES`` before CUDA initialises. A
worker that dies takes only its trial with it: the trial comes back failed with the cause,
and a new worker takes the slot. The slots themselves (CPUs, GPUs, packing) are
:mod:`hpt.backends.slots`'s.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

import pandas as pd

from hpt.backends.slots import AutoPacker, Slot, choose_slots, cpu_slots, gpu_slots, usable_cpus, visible_gpus
from hpt.progress import plural
from hpt.trial import Event, Finished, Progress, Started, Status, Trial, TrialResult, utcnow

__all__ = ["AutoPacker", "LocalBackend", "Slot", "choose_slots", "cpu_slots", "gpu_slots", "usable_cpus", "visible_gpus"]


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
