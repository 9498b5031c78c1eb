"""``search.race``: periods as a fidelity. Configs run period by period, and after each period
the configs the tests of ``hpt results`` find worse than the current best are dropped.

The strategy's scheduler (grid or random) gives every trial of its plan; this wrapper holds
them by period and starts one period at a time. When every trial of a period has ended, the
configs that ran every period so far ok are tested as "Is the winner real?" tests them
(:mod:`hpt.results.stats`): the best is the lowest mean over those periods; with three or
more configs a Friedman test, then Nemenyi's comparison of the best with each (corrected for
the number of configs); with two, Wilcoxon's signed-rank test. A config found worse than the
best is dropped: its trials of the later periods are not trained but recorded ``pruned``,
with the reason (``dropped after 3 periods: worse than 1a2b3c4d5e6f (Nemenyi p=0.012)``).
A config tied with the best, or with too few periods to tell, goes on. A config with a failed
period is not tested (it cannot be ranked) and goes on, as without racing.

Resuming: trials with a row are not trained again (the strategy's scheduler passes over
them); the decisions are made again from the ok rows of each period, in period order, so a
resumed race drops the same configs at the same periods.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from hpt.progress import plural
from hpt.results.stats import ALPHA, WORSE, _friedman_nemenyi, _wilcoxon, format_p, periods_needed
from hpt.scheduling.base import DONE, WAIT, Curves, Scheduler, Suggestion
from hpt.scheduling.pruning import metric_value, period_key, row_key, trial_key
from hpt.trial import Status, Trial, TrialResult

if TYPE_CHECKING:
    from hpt.spec import Spec

__all__ = ["DROPPED", "Race", "can_drop", "first_drop", "race_text"]

DROPPED = "dropped after"
"""How the error of a raced-out config's trials begins."""


def first_drop() -> int:
    """The first period after which racing can drop a config: the fewest periods its tests can decide over (Friedman's
    with 3 configs)."""
    return periods_needed(3)


def can_drop(periods: int) -> bool:
    """Whether racing over `periods` can drop a config at all: after :func:`first_drop` periods, with one left to save."""
    return periods - 1 >= first_drop()


def race_text(periods: int) -> str:
    """What ``hpt plan`` says about ``search.race``."""
    first = first_drop()
    head = "race: configs run period by period"
    if not can_drop(periods):
        return (f"{head}; with {plural(periods, 'period')} no config can be dropped (the tests need {first} periods, "
                "and a period left to save): add periods")
    when = f"period {first}" if periods - 1 == first else f"each period from {first} to {periods - 1}"
    return (f"{head}; after {when}, the configs the Friedman test and Nemenyi's comparison with the best "
            "(3 or more configs left) or Wilcoxon's test (2) find worse are dropped: their later periods are "
            "recorded pruned, not trained")


def drop_verdicts(values: Mapping[str, list[float]], alpha: float | None = None) -> tuple[str, dict[str, str]]:
    """The best config of `values` (config id -> its value in each period so far) and why each config
    found worse than it is dropped (``worse than <best> (Nemenyi p=0.012)``); no one is dropped when
    too few periods or configs allow no test."""
    alpha = ALPHA if alpha is None else alpha
    ids = sorted(values, key=lambda c: (sum(values[c]) / len(values[c]), c))
    if not ids:
        return "", {}
    best = ids[0]
    periods = len(values[best])
    if len(ids) < 2 or periods < periods_needed(len(ids), alpha):
        return best, {}
    table = np.array([values[c] for c in ids], dtype=float)
    if len(ids) == 2:
        p, verdict = _wilcoxon(table[0], table[1], alpha)
        verdicts, ps, test = [verdict], [p], "Wilcoxon"
    else:
        _, verdicts, ps = _friedman_nemenyi(table, alpha, len(ids) - 1)
        test = "Nemenyi"
    return best, {c: f"worse than {best} ({test} p={format_p(p, alpha)})"
                  for c, v, p in zip(ids[1:], verdicts, ps, strict=True) if v == WORSE}


class Race(Scheduler):
    """Wraps a grid or random search: its trials run a period at a time, and worse configs are dropped."""

    def __init__(self, inner: Scheduler, spec: Spec, say: Callable[[str], None]) -> None:
        self.inner = inner
        self.objective = spec.objective
        self.say = say
        self._keys = [period_key(spec.fidelity, p.start_text, p.end_text) for p in spec.periods]
        self._held: list[list[Trial]] = [[] for _ in self._keys]  # by period: trials not yet started
        self._values: dict[str, dict[int, list[float]]] = {}  # config id -> period -> its ok values (seeds)
        self._failed: set[str] = set()  # configs with a failed or diverged trial: not tested
        self._dropped: dict[str, str] = {}  # config id -> why
        self._running: set[str] = set()
        self._stage = 0  # the period running now
        self._drawn = False  # the inner scheduler's trials are held

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self.inner.skipped

    def describe(self) -> str:
        return f"{self.inner.describe()}, raced period by period"

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self.inner.restore(rows, curves)
        for row in rows.values():
            key = row_key(row)
            if key in self._keys:
                self._note(str(row["config_id"]), self._keys.index(key), str(row.get("status")),
                           metric_value(row, self.objective))

    def _note(self, cid: str, period: int, status: str, value: float | None) -> None:
        if status == Status.OK.value and value is not None and math.isfinite(value):
            self._values.setdefault(cid, {}).setdefault(period, []).append(value)
        elif status in (Status.FAILED.value, Status.DIVERGED.value):
            self._failed.add(cid)

    def remaining(self) -> int | None:
        if not self._drawn:
            return self.inner.remaining()
        return sum(len(h) for h in self._held)

    def _draw(self) -> None:
        """Hold every trial of the strategy's plan by its period."""
        while True:
            nxt = self.inner.suggest()
            if not isinstance(nxt, Trial):
                break
            key = trial_key(nxt)
            self._held[self._keys.index(key)].append(nxt)
        self._drawn = True

    def suggest(self) -> Trial | TrialResult | Suggestion:
        if not self._drawn:
            self._draw()
        while self._stage < len(self._keys):
            held = self._held[self._stage]
            if held:
                trial = held.pop(0)
                why = self._dropped.get(trial.config_id)
                if why is not None:  # recorded pruned, not trained
                    return TrialResult(trial, Status.PRUNED, error=why)
                self._running.add(trial.trial_id)
                return trial
            if self._running:
                return WAIT  # the period's last trials decide who goes on
            self._decide()
            self._stage += 1
        return DONE

    def _decide(self) -> None:
        """After period `_stage`: test the configs that ran every period so far, and drop the worse ones."""
        if self._stage + 1 >= len(self._keys):
            return  # the last period: nothing left to save
        upto = range(self._stage + 1)
        values = {cid: [sum(by[p]) / len(by[p]) for p in upto] for cid, by in self._values.items()
                  if cid not in self._dropped and cid not in self._failed and all(p in by for p in upto)}
        best, worse = drop_verdicts(values)
        n = self._stage + 1
        for cid, why in worse.items():
            self._dropped[cid] = f"{DROPPED} {plural(n, 'period')}: {why}"
        left = len(values) - len(worse)
        go_on = f"{plural(left, 'config')} {'goes' if left == 1 else 'go'} on"
        if worse:
            self.say(f"race: after {plural(n, 'period')}, {plural(len(worse), 'config')} worse than {best} "
                     f"{'is' if len(worse) == 1 else 'are'} dropped ({', '.join(worse)}); {go_on}")
        elif len(values) >= 2 and n >= periods_needed(len(values)):  # tested, none found worse: a log must show it ran
            self.say(f"race: after {plural(n, 'period')}, no config is found worse than {best}; {go_on}")

    def on_result(self, result: TrialResult) -> None:
        tid = result.trial.trial_id
        self._running.discard(tid)
        key = trial_key(result.trial)
        if key in self._keys:  # an interrupted trial is noted as nothing: it runs again when the run is resumed
            self._note(result.trial.config_id, self._keys.index(key), result.status.value,
                       metric_value(result.metrics, self.objective))
        self.inner.on_result(result)
