"""The scheduler of a fixed plan (grid, random and the auto strategy's spread): walk it in order,
lazily, passing over trials that are already done at the results location."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpt.progress import plural
from hpt.scheduling.base import DONE, FINISHED, Curves, Scheduler, Suggestion
from hpt.search import TrialPlan
from hpt.trial import Trial

__all__ = ["COUNT_LIMIT", "PlanScheduler"]

COUNT_LIMIT = 100_000
"""Plans up to this many trials are counted before the run (about 2 s), so the log can say
exactly how many will run and how many are already done; larger ones are not walked ahead."""


class PlanScheduler(Scheduler):
    """Suggests the trials of `plan` in order; never walks the plan ahead of the run beyond counting.

    Memory does not grow with the plan: a grid of 10^7 configs starts its first trial at
    once. Only the ids of trials already done (and, for plans that may repeat a config,
    the ids already suggested) are kept.
    """

    exact = True  # a fixed list (a live run that trains some of its trials elsewhere moves it: the counter says so)

    def __init__(self, plan: TrialPlan) -> None:
        self.plan = plan
        self._next = 0
        self._start = 0  # where the walk begins: trials before it are done (known once counted)
        self._walked = False
        self._done: set[str] = set()
        self._seen: set[str] = set()  # for plans that may repeat a config (random draws from lists)
        self._todo: int | None = None  # trials left to suggest, once counted
        self.skipped = 0

    def describe(self) -> str:
        p = self.plan
        seeds = f" x {p.seeds} seeds" if p.seeds > 1 else ""
        return (f"{plural(len(p), 'trial')} ({plural(len(p.configs), 'config')} x "
                f"{plural(len(p.periods), 'period')}{seeds})")

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        """Trials with an ok row are done, and so are pruned ones: early stopping decided them (``--force`` reruns both)."""
        self._done = {tid for tid, row in rows.items() if row.get("status") in FINISHED}
        self._count()

    def _count(self) -> None:
        """Count what will run and what is done, when that is cheap enough and needed at all."""
        if not self._walked:
            self._start = 0
        if len(self.plan) > COUNT_LIMIT or not (self._done or self.plan.repeats):
            return
        todo, seen, first = 0, set(), None
        for i, tid in enumerate(self.plan.trial_ids()):
            if tid in seen:
                continue
            seen.add(tid)
            if tid in self._done:
                self.skipped += 1
            else:
                todo += 1
                first = i if first is None else first
        self._todo = todo
        # what comes before the first trial to run is done (or a repeat of one done): the walk starts there,
        # and a run with nothing left to do ends without building a trial
        if not self._walked:
            self._start = len(self.plan) if first is None else first

    def remaining(self) -> int:
        if self._todo is not None:
            return self._todo
        return len(self.plan) - self._next

    def suggest(self) -> Trial | Suggestion:
        plan = self.plan
        if not self._walked:
            self._walked = True
            self._next = self._start
        while self._next < len(plan):
            trial = plan[self._next]
            self._next += 1
            tid = trial.trial_id
            if plan.repeats:
                if tid in self._seen:
                    continue
                self._seen.add(tid)
            if tid in self._done:
                if self._todo is None:
                    self.skipped += 1  # counted ahead otherwise
                continue
            if self._todo is not None:
                self._todo -= 1
            return trial
        return DONE
