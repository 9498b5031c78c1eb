"""``search.budget`` for every strategy: a wrapper that starts no new config once the budget is spent.

A number of trials counts the trials of this spec's fidelity already at the results
location (resuming goes on with what is left) and those started since. A duration counts
this run's time from its first trial. Once spent, the periods of configs already started
still run, so that no config is left half-run (a config missing a period is never ranked);
no new config starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from hpt.fidelity import Fidelity, fidelity_named
from hpt.progress import format_duration, plural
from hpt.scheduling.base import DONE, Curves, Scheduler, Suggestion
from hpt.spec.search import Budget
from hpt.trial import Progress, Status, Trial, TrialResult

__all__ = ["Budgeted"]


class Budgeted(Scheduler):
    """Wraps any scheduler with a budget of trials or of time."""

    def __init__(self, inner: Scheduler, budget: Budget, fidelity: Fidelity, say: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.budget = budget
        self.fidelity = fidelity
        self.say = say
        self.clock = clock
        self.spent_before = 0  # trials at the location when the run started
        self.started = 0
        self._t0: float | None = None
        self._configs: set[str] = set()  # configs with a trial at the location or started
        self._over = False

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self.inner.skipped

    def describe(self) -> str:
        return f"{self.inner.describe()}, budget {self.budget}"

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self.inner.restore(rows, curves)
        counted = [r for r in rows.values() if fidelity_named(r.get("fidelity")) == self.fidelity
                   and r.get("status") != Status.INTERRUPTED.value]
        self.spent_before = len(counted)
        self._configs = {str(r["config_id"]) for r in counted}

    def _left(self) -> int | None:
        if self.budget.trials is None:
            return None
        return max(0, self.budget.trials - self.spent_before - self.started)

    def _spent(self) -> str:
        """Why the budget is spent, or "" while it is not."""
        left = self._left()
        if left is not None and left <= 0:
            return f"{plural(self.spent_before + self.started, 'trial')} run" + (
                f" ({self.spent_before} before this run)" if self.spent_before else "")
        if self.budget.seconds is not None and self._t0 is not None and self.clock() - self._t0 >= self.budget.seconds:
            return f"{format_duration(self.clock() - self._t0)} since the first trial"
        return ""

    def remaining(self) -> int | None:
        inner, left = self.inner.remaining(), self._left()
        if self._over:
            return 0
        if left is None:
            return inner
        return left if inner is None else min(inner, left)

    def suggest(self) -> Trial | TrialResult | Suggestion:
        if self._t0 is None:
            self._t0 = self.clock()
        if self._over:
            return DONE
        nxt = self.inner.suggest()
        if isinstance(nxt, Trial):
            spent = self._spent()
            if spent and nxt.config_id not in self._configs:
                self._over = True
                self.say(f"budget {self.budget} spent ({spent}): no new config starts; the trials running finish")
                return DONE
            self._configs.add(nxt.config_id)
            self.started += 1
        return nxt

    def on_progress(self, event: Progress) -> str | None:
        return self.inner.on_progress(event)

    def on_result(self, result: TrialResult) -> None:
        self.inner.on_result(result)
