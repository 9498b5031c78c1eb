"""A backend that trains nothing: each trial follows a scripted learning curve, one epoch per poll.

It lets scheduler and runner logic (ordering, waiting, stopping, resuming, signals) be
tested in milliseconds, deterministically, without torch or worker processes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hpt.trial import Event, Finished, Progress, Started, Status, Trial, TrialResult, curve_metrics, utcnow

__all__ = ["FakeBackend", "Script"]


@dataclass(frozen=True)
class Script:
    """What a fake trial does: its validation loss per epoch, or a failure before its first epoch."""

    curve: Sequence[float] = (1.0,)
    status: Status = Status.OK  # OK, FAILED or DIVERGED (at the end of the curve)
    error: str = ""
    seconds_per_epoch: float = 1.0


@dataclass
class _Running:
    trial: Trial
    script: Script
    slot: str
    started_at: str
    epoch: int = 0
    stop: str | None = None
    stop_in: int = 0  # epochs until the stop is obeyed
    curve: list[dict[str, float]] = field(default_factory=list)


class FakeBackend:
    """`slots` trials at a time; `script(trial)` says how each one goes. Every poll advances each
    running trial by one epoch. `log` records what happened, for assertions."""

    def __init__(self, script: Callable[[Trial], Script], slots: int = 1, stop_lag: int = 0) -> None:
        """`stop_lag`: epochs a stop takes to reach a trial after the one it was asked during (a worker's
        depend on timing)."""
        self.script = script
        self.slots = slots
        self.stop_lag = stop_lag
        self._running: dict[str, _Running] = {}
        self._events: list[Event] = []
        self.log: list[tuple[str, str]] = []  # ("submit" | "stop" | "close", trial_id)
        self.closed = False
        self.max_running = 0

    def describe(self) -> str:
        return f"a fake backend ({self.slots} slots)"

    def slot_names(self) -> Sequence[str]:
        return [f"fake-{i}" for i in range(self.slots)]

    def free(self) -> int:
        return self.slots - len(self._running)

    def submit(self, trial: Trial) -> None:
        if self.free() <= 0:
            raise RuntimeError("submit with no free slot")
        if trial.trial_id in self._running:
            raise RuntimeError(f"trial {trial.trial_id} is already running")
        busy = {r.slot for r in self._running.values()}
        slot = next(s for s in self.slot_names() if s not in busy)
        running = self._running[trial.trial_id] = _Running(trial, self.script(trial), slot, utcnow())
        if trial.resume is not None:  # a checkpoint of this backend's: the curve up to its epoch is there already
            for _ in range(int(trial.resume.decode().rsplit(" ", 1)[1])):
                self._step(running)
        self.max_running = max(self.max_running, len(self._running))
        self.log.append(("submit", trial.trial_id))
        self._events.append(Started(trial, slot))

    def stop(self, trial_id: str, reason: str) -> None:
        if trial_id in self._running:
            self._running[trial_id].stop = reason
            self._running[trial_id].stop_in = self.stop_lag
            self.log.append(("stop", trial_id))

    def poll(self, timeout: float) -> list[Event]:
        events, self._events = self._events, []
        for tid, r in list(self._running.items()):
            result = self._advance(r, events)
            if result is not None:
                del self._running[tid]
                events.append(Finished(result))
        return events

    def _advance(self, r: _Running, events: list[Event]) -> TrialResult | None:
        s = r.script
        if s.status is Status.FAILED:
            return self._result(r, Status.FAILED, s.error or "scripted failure")
        metrics = self._step(r)
        events.append(Progress(r.trial, r.epoch, metrics))
        if r.stop is not None:  # asked during this epoch: obeyed at its end (or stop_lag epochs later)
            if r.stop_in <= 0:
                return self._result(r, Status.PRUNED, r.stop)
            r.stop_in -= 1
        if r.epoch < len(s.curve):
            return None
        return self._result(r, s.status, s.error)

    @staticmethod
    def _step(r: _Running) -> dict[str, float]:
        """One more epoch of `r`'s scripted curve: its metrics."""
        r.epoch += 1
        value = r.script.curve[r.epoch - 1]
        metrics = {"epoch": r.epoch, "train_loss": value, "val_mse": value, "val_mae": value,
                   "lr": float(r.trial.params.get("lr", 0.0)), "time_s": r.epoch * r.script.seconds_per_epoch}
        r.curve.append(metrics)
        return metrics

    def _result(self, r: _Running, status: Status, error: str) -> TrialResult:
        metrics: dict[str, float] = {}
        curve = None
        if r.curve:
            metrics = {**curve_metrics(r.curve, "val_mse"), "train_time_s": len(r.curve) * r.script.seconds_per_epoch,
                       "n_params": 1}
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(r.curve[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({**m, "epoch": int(m["epoch"])} for m in r.curve)
            curve = buf.getvalue()
        kept = {e: f"fake {r.trial.trial_id} {e}".encode() for e in r.trial.checkpoint_at if e <= r.epoch} \
            if status is Status.PRUNED else {}  # a stopped trial's checkpoints, as hpt.train.fit's
        return TrialResult(r.trial, status, metrics=metrics, error=error, started_at=r.started_at, finished_at=utcnow(),
                           device=r.slot, curve=curve, checkpoints=kept)

    def close(self) -> list[TrialResult]:
        self.closed = True
        out = [self._result(r, Status.INTERRUPTED, "run interrupted before the trial finished")
               for r in self._running.values()]
        self.log += [("close", r.trial.trial_id) for r in self._running.values()]
        self._running.clear()
        return out
