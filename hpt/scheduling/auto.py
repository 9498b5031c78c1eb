"""The rounds of ``hpt auto``: each round spreads lr over a log range; when the round's best lr
sits in the outer tenth of the range, the next round moves the range half its width that way.

One scheduler for all rounds: it waits for a round's last trial before deciding the next,
so the worker pool stays up across rounds and no rows are re-read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from hpt.progress import format_value, plural
from hpt.rows import result_row, rows_frame
from hpt.scheduling.base import DONE, WAIT, Curves, Scheduler, Suggestion
from hpt.scheduling.finalists import FINALIST
from hpt.scheduling.plan import PlanScheduler
from hpt.search import TrialPlan
from hpt.trial import Trial, TrialResult

__all__ = ["EDGE", "AutoScheduler", "next_range"]

EDGE = 0.1  # the outer tenth of the log range on either side

LrRange = tuple[float, float]


def next_range(low: float, high: float, best: float) -> LrRange | None:
    """The lr range of the next round, or None when `best` lies well inside [low, high]."""
    position = math.log(best / low) / math.log(high / low)
    if EDGE < position < 1 - EDGE:
        return None
    factor = math.sqrt(high / low) if position >= 1 - EDGE else 1 / math.sqrt(high / low)
    return float(f"{low * factor:.6g}"), float(f"{high * factor:.6g}")


class AutoScheduler(Scheduler):
    """Up to `rounds` rounds; `make_round(n, lr_range)` gives round n's plan (its rows carry ``round``)."""

    def __init__(self, make_round: Callable[[int, LrRange], TrialPlan], lr_range: LrRange, rounds: int,
                 objective: str, say: Callable[[str], None]) -> None:
        self.make_round = make_round
        self.rounds = rounds
        self.objective = objective
        self.say = say
        self.lr_range = lr_range
        self.round = 0
        self._restored: Mapping[str, Mapping[str, Any]] = {}
        self._rows: dict[str, Mapping[str, Any]] = {}  # this run's results, as rows
        self._running: set[str] = set()
        self._inner: PlanScheduler | None = None
        self._finished = False
        self._skipped = 0  # in the rounds before this one
        self.skipped = 0
        self._ranges: dict[int, LrRange] = {}  # each round's lr range
        self._round_of: dict[str, int] = {}  # the trials of every round: trial id -> its round
        self._decided: tuple[str, float] | None = None  # the config (and lr) the last round's decision rested on
        self._start_round(lr_range)

    def _start_round(self, lr_range: LrRange) -> None:
        self.round += 1
        self.lr_range = self._ranges[self.round] = lr_range
        plan = self.make_round(self.round, lr_range)
        self._inner = PlanScheduler(plan)
        self._inner.restore(self._restored)
        self._ids = set(plan.trial_ids())
        self._round_of.update(dict.fromkeys(self._ids - self._round_of.keys(), self.round))
        self._announced = False

    def describe(self) -> str:
        assert self._inner is not None
        return f"up to {plural(self.rounds, 'round')} of {self._inner.describe()}"

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self._restored = rows
        assert self._inner is not None
        self._inner.restore(rows)
        self.skipped = self._inner.skipped

    def remaining(self) -> int | None:
        return None if self._inner is None or self._finished else self._inner.remaining()

    def suggest(self) -> Trial | Suggestion:
        while not self._finished:
            assert self._inner is not None
            if not self._announced:
                self._announce()
            nxt = self._inner.suggest()
            self.skipped = self._skipped + self._inner.skipped
            if nxt is not DONE:
                if isinstance(nxt, Trial):
                    self._running.add(nxt.trial_id)
                return nxt
            if self._running:
                return WAIT  # the round's last trials decide the next round
            self._skipped += self._inner.skipped
            self._decide()
        return DONE

    def _announce(self) -> None:
        assert self._inner is not None
        plan = self._inner.plan
        low, high = self.lr_range
        done = f"; {plural(self._inner.skipped, 'trial')} of it already done" if self.round > 1 and \
            self._inner.skipped else ""  # round 1's are on the run's first lines ("skipping ...")
        self.say(f"auto round {self.round}/{self.rounds}: {plan.spec.architecture}, lr {low:g}..{high:g} (log), "
                 f"{plural(len(plan.configs), 'config')} x {plural(len(plan.periods), 'period')}"
                 + (f" ({plan.fidelity.name} {plan.fidelity.purpose})" if plan.fidelity.purpose else "") + done)
        self._announced = True

    def _decide(self) -> None:
        from hpt.results import best_config, why_no_best

        # the rounds' own trials: a finalist row (from the stage after the last round, when resuming) was not there
        # when the round first decided, and the replay decides as it did
        rows = rows_frame([r for r in {**self._restored, **self._rows}.values() if not r.get(FINALIST)], self._ids)
        plan = self._inner.plan if self._inner is not None else None
        planned = {plan.fidelity.name: [p.label for p in plan.periods]} if plan is not None else None
        best = best_config(rows, self.objective, planned=planned)
        low, high = self.lr_range
        if best is None:
            self.say(f"auto round {self.round}: {why_no_best(rows, self.objective, planned=planned)}; stopping")
            self._finished = True
            return
        best_lr = float(best.params["lr"])
        self._decided = (best.config_id, best_lr)
        moved = next_range(low, high, best_lr)
        if moved is None:
            self.say(f"auto: best lr {format_value(best_lr)} lies inside {low:g}..{high:g}; done")
            self._finished = True
            return
        side = "top" if moved[0] > low else "bottom"
        if self.round == self.rounds:
            self.say(f"auto: best lr {format_value(best_lr)} sits at the {side} of {low:g}..{high:g} after the last "
                     f"round; --rounds {self.rounds + 1} would try {moved[0]:g}..{moved[1]:g}")
            self._finished = True
            return
        self.say(f"auto: best lr {format_value(best_lr)} sits at the {side} of {low:g}..{high:g}; "
                 f"round {self.round + 1} moves the range to {moved[0]:g}..{moved[1]:g}")
        self._start_round(moved)

    def report(self, rows: pd.DataFrame) -> list[str]:
        """With early stopping the rounds decide on the configs that ran every period by then; the finalists, run
        after the last round, complete stopped ones. One that became the best is said, with where its lr sits in
        its round's range (the rounds' move would have gone on from an edge)."""
        from hpt.results import best_config

        if rows.empty:
            return []
        mine = rows[rows["trial_id"].astype(str).isin(self._round_of.keys())]
        best = best_config(mine, self.objective)
        if best is None or (self._decided and best.config_id == self._decided[0]) or "lr" not in best.params:
            return []
        lr = float(best.params["lr"])
        round_no = self._round_of[str(mine.loc[mine["config_id"].astype(str) == best.config_id, "trial_id"].iloc[0])]
        low, high = self._ranges[round_no]
        moved = next_range(low, high, lr)
        where = f"its lr lies inside round {round_no}'s range {low:g}..{high:g}" if moved is None else \
            (f"its lr sits at the {'top' if moved[0] > low else 'bottom'} of round {round_no}'s range {low:g}..{high:g}: "
             f"hpt auto --lr-range {moved[0]:g} {moved[1]:g} tries beyond it")
        before = "no round had a config ranked over every period" if self._decided is None else \
            f"the rounds had decided on {self._decided[0]} (lr {format_value(self._decided[1])})"
        return [f"auto: the finalists made config {best.config_id} (lr {format_value(lr)}) the best after {before}; "
                f"{where}"]

    def on_result(self, result: TrialResult) -> None:
        tid = result.trial.trial_id
        self._running.discard(tid)
        self._rows[tid] = result_row(result, "", (self.objective,))
