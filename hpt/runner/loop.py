"""The loop: trials submitted while the backend has a free slot, its events handed on, signals obeyed.

    submit (scheduler.suggest, the gate) -> backend -> poll: Started, Progress (the scheduler may stop
    the trial), Finished (stored, then the scheduler hears it) -> ... until done or a signal ends it
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from hpt.backends import Backend
from hpt.errors import SIGNAL_EXIT
from hpt.progress import Reporter
from hpt.runner.gate import Gate
from hpt.scheduling import DONE, Scheduler
from hpt.trial import Event, Finished, Progress, Started, Trial, TrialResult, as_decided, monitor_of

log = logging.getLogger("hpt")


SAME_PRESS_S = 0.5
"""A signal this soon after the first is the same one delivered twice, not a second: ``timeout`` (and some
job runners) send it to the process and to its process group at once."""


class _Signals:
    """SIGINT/SIGTERM while the loop runs: the first stops new trials, a second stops the running ones."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.first_at = 0.0
        self.count = 0
        self.deadline: float | None = None  # when the running trials' grace period ends

    def __call__(self, signum: int, _frame: Any) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first, self.first_at = signum, now
        elif now - self.first_at < SAME_PRESS_S:
            return
        self.count += 1

    @property
    def exit_code(self) -> int:
        return SIGNAL_EXIT.get(signal.Signals(self.first), 130) if self.first else 0

    def stop_now(self, running: int, grace: float, reporter: Reporter) -> bool:
        """After a signal: says so once, and True when the running trials are to be stopped now."""
        if self.first is None:
            return False
        if self.deadline is None:
            self.deadline = time.monotonic() + grace
            n = running
            reporter.interrupted(f"{signal.Signals(self.first).name}: no new trials; {n} running "
                                 f"{'trial gets' if n == 1 else 'trials get'} up to {grace:g}s to finish "
                                 f"(a second signal stops {'it' if n == 1 else 'them'} now)")
        return self.count > 1 or time.monotonic() >= self.deadline


class _Loop:
    """What the loop keeps between its turns: the trials running, the stops on the way, the counts."""

    def __init__(self, scheduler: Scheduler, backend: Backend, on_result: Any, reporter: Reporter, objective: str,
                 gate: Gate | None, on_progress: Any) -> None:
        self.scheduler, self.backend, self.reporter, self.objective = scheduler, backend, reporter, objective
        self.on_result, self.on_progress, self.gate = on_result, on_progress, gate
        self.running: set[str] = set()
        self.stopping: dict[str, tuple[int, str]] = {}  # trial id -> the epoch its stop was decided on, and why
        self.monitor = monitor_of(objective)
        self.finished = 0
        self.exhausted = False
        self.total = scheduler.remaining() or 0
        self.events: list[Event] = []
        self.recheck = 0.0

    def decided(self, result: TrialResult) -> TrialResult:
        """A stopped trial's result as of the epoch of the decision, whenever the stop reached it."""
        stop = self.stopping.pop(result.trial.trial_id, None)
        return result if stop is None else as_decided(result, *stop, self.monitor)

    def start(self, trial: Trial) -> None:
        self.backend.submit(trial)
        self.running.add(trial.trial_id)

    def submit(self, signals: _Signals) -> None:
        """Trials into the backend's free slots: the scheduler's next ones, else those the gate turned away."""
        gate, backend, scheduler = self.gate, self.backend, self.scheduler
        while signals.first is None and backend.free() > 0:
            nxt = scheduler.suggest() if not self.exhausted else DONE
            if isinstance(nxt, TrialResult) and nxt.amends:  # what came of a trial recorded before: its row says it
                self.on_result(nxt)
                continue
            if isinstance(nxt, TrialResult):  # decided without training (a config racing dropped)
                self.finished += 1
                self.on_result(nxt)
                scheduler.on_result(nxt)
                self.reporter.trial_done(nxt, self.finished, max(self.total, self.finished + len(self.running)),
                                         self.objective)
                continue
            if not isinstance(nxt, Trial):
                self.exhausted = nxt is DONE
                if gate is None or not gate.waiting() or (self.running and time.monotonic() < self.recheck):
                    return
                self.recheck = time.monotonic() + gate.recheck_s
                free = backend.free()
                for trial in gate.waiting():  # each asked in turn: one done elsewhere meanwhile frees no slot here
                    if free == 0:
                        break
                    if gate.admit(trial):
                        self.start(trial)
                        free -= 1
                return
            if gate is not None and not gate.admit(nxt):
                continue
            self.start(nxt)

    def idle_end(self, signals: _Signals) -> bool:
        """Nothing runs: True when the loop is over (else the scheduler waits for nothing: a bug)."""
        if self.exhausted or signals.first is not None or (self.gate is not None and self.gate.waiting()):
            return True
        raise RuntimeError("the scheduler waits while no trial is running")  # a scheduler bug, not input

    def poll(self) -> None:
        """The backend's events: each epoch may stop its trial, each result is stored, then the scheduler hears it."""
        self.events = self.backend.poll(0.2)
        while self.events:
            event = self.events.pop(0)
            if isinstance(event, Started):
                self.reporter.trial_started(event.trial, event.where)
            elif isinstance(event, Progress):
                self.progress(event)
            elif isinstance(event, Finished):
                result = self.decided(event.result)
                self.running.discard(result.trial.trial_id)
                self.finished += 1
                self.on_result(result)
                self.scheduler.on_result(result)
                self.total = self.finished + len(self.running) + (self.scheduler.remaining() or 0)
                self.reporter.trial_done(result, self.finished, self.total, self.objective)

    def progress(self, event: Progress) -> None:
        if event.trial.trial_id in self.stopping:
            return  # an epoch trained while its stop was on the way: not part of its result
        if self.on_progress is not None:
            self.on_progress(event)
        reason = self.scheduler.on_progress(event)
        if reason:
            self.stopping[event.trial.trial_id] = (event.epoch, reason)
            self.backend.stop(event.trial.trial_id, reason)

    def close(self, failing: bool) -> None:
        """Stores the results polled but not stored yet and those of the trials the backend stops now."""
        ended = [self.decided(e.result) for e in self.events if isinstance(e, Finished)]
        for result in ended + self.backend.close():
            self.finished += 1
            try:
                self.on_result(result)
                self.reporter.trial_done(result, self.finished, max(self.total, self.finished), self.objective)
            except Exception as e:
                if not failing:
                    raise
                log.warning("could not record interrupted trial %s: %s", result.trial.trial_id, e)


def drive(scheduler: Scheduler, backend: Backend, on_result: Any, reporter: Reporter, objective: str,
          grace: float = 10.0, gate: Gate | None = None, on_progress: Any = None) -> int:
    """Run the loop until the scheduler is done or a signal stops it; the exit code (0, 130, 143).

    `on_result(result)` stores each ended trial, the interrupted ones included; `on_progress(event)`, when
    given, hears each epoch that is part of a trial's result (not those trained after its stop). An error
    raised while storing a result stops the loop and propagates; the results already polled
    are stored and the trials still running recorded ``interrupted`` on the way out, and an
    error doing that is logged, never allowed to hide the first one.

    With a `gate`, a trial starts only once the gate admits it. Those turned away because
    another live run trains them are asked about again when a slot is free and the
    scheduler has nothing else, at most every ``gate.recheck_s`` seconds while trials run
    here; when nothing runs here any more they are asked once more and then left to that run.
    """
    signals = _Signals()
    previous = {s: signal.signal(s, signals) for s in SIGNAL_EXIT}
    loop = _Loop(scheduler, backend, on_result, reporter, objective, gate, on_progress)
    reporter.start(loop.total, slots=backend.free(), estimate=not scheduler.exact)  # slots: those that run at once
    failing = False
    loop.recheck = time.monotonic() + (gate.recheck_s if gate else 0.0)
    try:
        while True:
            loop.submit(signals)
            if not loop.running and loop.idle_end(signals):
                break
            if signals.stop_now(len(loop.running), grace, reporter):
                break
            loop.poll()
    except BaseException:
        failing = True
        raise
    finally:
        try:
            loop.close(failing)  # stopping the workers takes a moment: a signal meanwhile is one more counted
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    return signals.exit_code
