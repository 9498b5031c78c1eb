"""``search.promote``: quick-to-full promotion in one run.

Stage 1, the screen: every config of the strategy's plan (grid, random or auto) runs at the
quick fidelity (:data:`~hpt.fidelity.QUICK`: one period, the last whole month of data, at most
20 epochs), as ``hpt run --quick`` runs it: the same trials, the same ids, so the rows of an
earlier ``--quick`` run count. Stage 2: once every screening trial has ended, the configs are
ranked by their mean objective over their screening trials (a config with a failed or diverged
one is not ranked), and the best `top` run at full fidelity on every period.

Resuming derives both stages from the rows: screening trials with a row are not trained again,
and once the screen is complete the same configs are promoted (ties go to the lower config id),
so an interrupted full stage trains only what they still lack.

At the end of the run, :meth:`Promote.report` compares the screen's ranking of the promoted
configs with their full ranking (Spearman's rank correlation, as ``hpt screen-check`` does) and
warns when it is low: the screen then says little about which configs a full run would rank best.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hpt.progress import plural
from hpt.scheduling.base import DONE, WAIT, Curves, Scheduler, Suggestion
from hpt.scheduling.plan import PlanScheduler
from hpt.scheduling.pruning import metric_value
from hpt.search import TrialPlan, expand
from hpt.trial import Status, Trial, TrialResult

if TYPE_CHECKING:
    import pandas as pd

    from hpt.spec import Spec
    from hpt.spec.search import Promote as PromoteSpec

__all__ = ["LOW_CORRELATION", "Promote", "promote_text", "promote_trials"]

LOW_CORRELATION = 0.5
"""Below this rank correlation between the screen and the full results, the run's summary warns."""

_DONE = (Status.OK.value, Status.PRUNED.value)


def promote_trials(spec: Spec, quick: Spec, configs: int) -> tuple[int, int]:
    """The most trials each stage of ``search.promote`` runs for `configs` configs."""
    assert spec.search.promote is not None
    top = spec.search.promote.count(configs)
    return configs * len(quick.periods) * quick.repeats, top * len(spec.periods) * spec.repeats


def promote_text(spec: Spec, quick: Spec, configs: int) -> list[str]:
    """What ``hpt plan`` says about ``search.promote``: both stages and their trial counts."""
    rule = spec.search.promote
    assert rule is not None
    top = rule.count(configs)
    seeds = f" x {spec.repeats} seeds" if spec.repeats > 1 else ""
    first, second = promote_trials(spec, quick, configs)
    epochs = f", at most {quick.fidelity.max_epochs} epochs" if quick.fidelity.max_epochs is not None else ""
    return [f"promote, stage 1: every config is screened at {quick.fidelity.name} fidelity ("
            f"{', '.join(p.label for p in quick.periods)}{epochs}): {plural(first, 'trial')} "
            f"({plural(configs, 'config')} x {plural(len(quick.periods), 'period')}{seeds})",
            f"promote, stage 2: {rule.text} by the screen (mean {spec.objective}) run at {spec.fidelity.name} fidelity "
            f"on every period: at most {plural(second, 'trial')} ({plural(top, 'config')} x "
            f"{plural(len(spec.periods), 'period')}{seeds})"]


class Promote(Scheduler):
    """Screens every config of a fixed plan at the quick fidelity, then runs the best at full fidelity."""

    def __init__(self, spec: Spec, quick: Spec, say: Callable[[str], None]) -> None:
        assert spec.search.promote is not None
        self.spec = spec
        self.rule: PromoteSpec = spec.search.promote
        self.say = say
        self.screen = expand(quick)  # stage 1: the plan at the quick fidelity (the ids --quick gives)
        self.inner = PlanScheduler(self.screen)
        self._screen_trials: dict[str, tuple[str, dict[str, Any]]] = {}  # trial id -> config id, tuned values
        self._values: dict[str, dict[str, float | None]] = {}  # config id -> screening trial id -> value (None: failed)
        self._done: set[str] = set()  # trial ids with an ok or pruned row
        self._running: set[str] = set()
        self._queue: list[Trial] | None = None  # stage 2, once it has started
        self._full_ids: set[str] = set()  # the promoted configs' full trials
        self._skipped_full = 0  # of those, already done at the location
        for trial in self.screen:
            self._screen_trials[trial.trial_id] = (trial.config_id, dict(trial.tuned_params))
            self._values.setdefault(trial.config_id, {})

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self.inner.skipped + self._skipped_full

    def describe(self) -> str:
        p = len(self.spec.periods)
        return (f"{self.inner.describe()} screened at {self.screen.fidelity.name} fidelity, then {self.rule.text} "
                f"on {plural(p, 'period')} at {self.spec.fidelity.name} fidelity")

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self.inner.restore(rows, curves)
        self._done = {tid for tid, row in rows.items() if row.get("status") in _DONE}
        for tid in self._screen_trials:
            row = rows.get(tid)
            if row is not None:
                self._note(tid, str(row.get("status")), metric_value(row, self.spec.objective))
        if self.inner.remaining() == 0:  # the screen is done: so is the choice, and the run can say what it skips
            self._queue = self._stage()

    def _note(self, tid: str, status: str, value: float | None) -> None:
        cid = self._screen_trials[tid][0]
        if status == Status.OK.value and value is not None and math.isfinite(value):
            self._values[cid][tid] = value
        elif status in (Status.FAILED.value, Status.DIVERGED.value, Status.PRUNED.value):
            self._values[cid][tid] = None

    def ranked(self) -> list[str]:
        """The screened configs, best first: those with every screening trial ok, by their mean value."""
        per_config = len(self.screen.periods) * self.screen.seeds
        means = {cid: sum(v for v in vals.values() if v is not None) / len(vals) for cid, vals in self._values.items()
                 if len(vals) == per_config and all(v is not None for v in vals.values())}
        return sorted(means, key=lambda c: (means[c], c))

    def _stage(self) -> list[Trial]:
        ranked = self.ranked()
        chosen = ranked[:self.rule.count(len(ranked))]
        tuned = {cid: params for cid, params in self._screen_trials.values()}
        plan = TrialPlan(self.spec, [tuned[cid] for cid in chosen])
        todo = []
        for trial in plan:
            self._full_ids.add(trial.trial_id)
            if trial.trial_id in self._done:
                self._skipped_full += 1
            else:
                todo.append(trial)
        unranked = len(self._values) - len(ranked)
        self.say(f"promote: the screen ranked {plural(len(ranked), 'config')}"
                 + (f" ({unranked} with a failed screening trial left out)" if unranked else "")
                 + f"; the best {len(chosen)} ({', '.join(chosen)}) now run at {self.spec.fidelity.name} fidelity: "
                 + plural(len(todo), "trial") + (f" ({self._skipped_full} already done)" if self._skipped_full else ""))
        return todo

    def remaining(self) -> int | None:
        if self._queue is not None:
            return len(self._queue)
        ranked = len(self.screen.configs)
        return self.inner.remaining() + self.rule.count(ranked) * len(self.spec.periods) * self.spec.repeats

    def suggest(self) -> Trial | TrialResult | Suggestion:
        if self._queue is None:
            nxt = self.inner.suggest()
            if isinstance(nxt, Trial):
                self._running.add(nxt.trial_id)
                return nxt
            if self._running:
                return WAIT  # the screen's last trials decide who is promoted
            self._queue = self._stage()
        if self._queue:
            trial = self._queue.pop(0)
            self._running.add(trial.trial_id)
            return trial
        return DONE

    def on_result(self, result: TrialResult) -> None:
        tid = result.trial.trial_id
        self._running.discard(tid)
        if tid in self._screen_trials and result.status is not Status.INTERRUPTED:
            self._note(tid, result.status.value, metric_value(result.metrics, self.spec.objective))
        if result.status in (Status.OK, Status.PRUNED):
            self._done.add(tid)

    def report(self, rows: pd.DataFrame) -> list[str]:
        """The screen's rank correlation with the full results over the promoted configs, warned about when low."""
        from hpt.results.screen import compare_rankings

        if self._queue is None or rows.empty:
            return []  # the screen did not end: nothing was promoted yet
        mine = rows[rows["trial_id"].astype(str).isin(set(self._screen_trials) | self._full_ids)]
        if "train_time_s" not in mine.columns:
            mine = mine.assign(train_time_s=0.0)
        check = compare_rankings(mine, self.spec.objective, top_k=1)
        head = f"promote: the screen vs the {self.spec.fidelity.name} results of the promoted configs"
        if check.configs < 2:
            return [f"{head}: {plural(check.configs, 'config')} ranked both ways, too few for a rank correlation"]
        cost = (f"; training time: the screen {check.quick_cost_s:.1f}s, the full stage {check.full_cost_s:.1f}s"
                if check.full_cost_s else "")
        line = f"{head}: Spearman rank correlation {check.spearman:.2f} over {check.configs} configs{cost}"
        if not check.spearman >= LOW_CORRELATION:
            return [line, f"warning: the screen ranks the promoted configs unlike the full runs (correlation "
                          f"{check.spearman:.2f} < {LOW_CORRELATION}): configs it left out may have done better at "
                          "full fidelity; promote more (search.promote.top) or check with hpt screen-check"]
        return [line]
