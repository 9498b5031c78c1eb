"""``search.promote``: quick-to-full promotion in one run.

Stage 1, the screen: every config of the strategy's plan (grid, random or auto) runs at the
quick fidelity (:data:`~hpt.fidelity.QUICK`: one period, the last whole month of data, at most
20 epochs), as ``hpt run --quick`` runs it: the same trials, the same ids, so the rows of an
earlier ``--quick`` run count. Stage 2: once every screening trial has ended, the configs are
ranked by the screen (a config with a failed or diverged screening trial is not ranked), and
the best `top` run at full fidelity on every period, to their last epoch.

With ``early_stopping`` (asha on epochs), early stopping works inside the screen alone: the
screen's trials are stopped at asha's rungs when behind the others (:class:`~hpt.scheduling.pruning.Pruning`,
as under ``hpt run --quick``), and the configs are ranked as successive halving, replayed at the end
with all the evidence, takes them (:func:`~hpt.scheduling.pruning.halving_standing`, as the finalists
are chosen): the furthest first, then by their place at the epoch they got to. Without it, by their mean
objective over their screening trials.

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
from hpt.scheduling.base import DONE, FINISHED, WAIT, Curves, Scheduler, Suggestion
from hpt.scheduling.plan import PlanScheduler
from hpt.scheduling.pruning import (
    Pruning,
    Reached,
    curve_values,
    halving_standing,
    max_epochs,
    metric_value,
    stopped_unjudged,
    stopping_text,
    trial_key,
)
from hpt.search import TrialPlan, expand
from hpt.trial import Progress, Status, Trial, TrialResult

if TYPE_CHECKING:
    import pandas as pd

    from hpt.spec import Spec
    from hpt.spec.search import Promote as PromoteSpec

__all__ = ["Promote", "promote_text", "promote_trials", "screen_scheduler"]



def screen_scheduler(quick: Spec, say: Callable[[str], None]) -> Scheduler:
    """The screen's scheduler: the plan at the quick fidelity, with the spec's early stopping (asha) if it has one.
    ``hpt run --quick`` on a promote spec runs this alone, so its rows are the screen's."""
    plan = PlanScheduler(expand(quick))
    return plan if quick.search.early_stopping is None else Pruning(plan, quick, say)


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
    epochs = f", at most {plural(max_epochs(quick), 'epoch')}" if quick.fidelity.max_epochs is not None else ""
    stopping = spec.search.early_stopping
    by = f"mean {spec.objective}" if stopping is None else "how far successive halving takes them"
    lines = [f"promote, stage 1: every config is screened at {quick.fidelity.name} fidelity ("
             f"{', '.join(p.label for p in quick.periods)}{epochs}): {plural(first, 'trial')} "
             f"({plural(configs, 'config')} x {plural(len(quick.periods), 'period')}{seeds})"]
    if stopping is not None:
        lines.append(f"promote, stage 1 with {stopping_text(stopping, max_epochs(quick))}")
    which = rule.text if top < configs else f"all {plural(configs, 'config')}"  # the warning says it costs more
    lines.append(f"promote, stage 2: {which} by the screen ({by}) run at {spec.fidelity.name} fidelity "
                 f"on every period{'' if stopping is None else ', without early stopping'}: at most "
                 f"{plural(second, 'trial')} ({plural(top, 'config')} x {plural(len(spec.periods), 'period')}{seeds})")
    return lines


class Promote(Scheduler):
    """Screens every config of a fixed plan at the quick fidelity, then runs the best at full fidelity."""

    def __init__(self, spec: Spec, quick: Spec, say: Callable[[str], None]) -> None:
        assert spec.search.promote is not None
        self.spec = spec
        self.rule: PromoteSpec = spec.search.promote
        self.say = say
        self.stopping = quick.search.early_stopping
        self.screen = expand(quick)  # stage 1: the plan at the quick fidelity (the ids --quick gives)
        self.inner = screen_scheduler(quick, say)
        self._most = max_epochs(quick)
        self._screen_trials: dict[str, Trial] = {trial.trial_id: trial for trial in self.screen}
        self._seen: dict[str, Reached] = {}  # screening trial id -> how it ended (the last row or result)
        self._curves: dict[str, dict[int, float]] = {}  # screening trial id -> epoch -> objective (early stopping)
        self._done: set[str] = set()  # trial ids with an ok or pruned row
        self._left_out = 0
        self._ok: set[str] = set()  # ... with an ok row: a full trial is done only then (the full stage stops none)
        self._running: set[str] = set()
        self._queue: list[Trial] | None = None  # stage 2, once it has started
        self._full_ids: set[str] = set()  # the promoted configs' full trials
        self._skipped_full = 0  # of those, already done at the location

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self.inner.skipped + self._skipped_full

    def describe(self) -> str:
        p = len(self.spec.periods)
        stopping = "" if self.stopping is None else f" with early stopping {self.stopping.kind}"
        return (f"{plural(len(self.screen), 'trial')} ({plural(len(self.screen.configs), 'config')}) screened at "
                f"{self.screen.fidelity.name} fidelity{stopping}, then {self.rule.text} on {plural(p, 'period')} at "
                f"{self.spec.fidelity.name} fidelity")

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self.inner.restore(rows, curves)
        self._done = {tid for tid, row in rows.items() if row.get("status") in FINISHED}
        self._ok = {tid for tid, row in rows.items() if row.get("status") == Status.OK.value}
        screened = [tid for tid in self._screen_trials if tid in rows]
        if self.stopping is not None and curves is not None and screened:
            for tid, text in curves([t for t in screened if t in self._done]).items():
                self._curves[tid] = dict(curve_values(text, self.spec.objective))
        for tid in screened:
            row = rows[tid]
            self._note(tid, str(row.get("status")), row.get("error"), row.get("epochs"),
                       metric_value(row, self.spec.objective))
        if self.inner.remaining() == 0:  # the screen is done: so is the choice, and the run can say what it skips
            self._queue = self._stage()

    def _note(self, tid: str, status: str, error: Any, epochs: Any, value: float | None) -> None:
        if status == Status.INTERRUPTED.value:
            return
        trial = self._screen_trials[tid]
        self._seen[tid] = Reached(trial.config_id, trial_key(trial), status, Reached.where(error, epochs),
                                  value if value is not None and math.isfinite(value) else math.inf,
                                  unjudged=stopped_unjudged(error))

    def ranked(self) -> list[str]:
        """The screened configs, best first. Without early stopping: those with every screening trial ok, by their
        mean value. With it: those with no failed or diverged screening trial, as successive halving replayed
        with all the evidence takes them (the furthest first, then by their place where they got to)."""
        by_config: dict[str, list[Reached]] = {}
        for seen in self._seen.values():
            by_config.setdefault(seen.config_id, []).append(seen)
        if self.stopping is None:
            per_config = len(self.screen.periods) * self.screen.seeds
            means = {cid: sum(s.value for s in got) / len(got) for cid, got in by_config.items()
                     if len(got) == per_config and all(s.status == Status.OK.value and math.isfinite(s.value)
                                                       for s in got)}
            return sorted(means, key=lambda c: (means[c], c))
        usable = {cid for cid, got in by_config.items() if all(s.status in FINISHED for s in got)}
        finished = {tid: s for tid, s in self._seen.items() if s.config_id in usable}
        standing = halving_standing(finished, self._curves, self.stopping, self._most)
        return sorted(usable, key=lambda c: (-standing[c][0], standing[c][1], c))

    def _stage(self) -> list[Trial]:
        ranked = self.ranked()
        chosen = ranked[:self.rule.count(len(ranked))]
        self._left_out = len(ranked) - len(chosen)  # ranked by the screen, not promoted
        tuned = {trial.config_id: dict(trial.tuned_params) for trial in self._screen_trials.values()}
        plan = TrialPlan(self.spec, [tuned[cid] for cid in chosen])
        todo = []
        for trial in plan:
            self._full_ids.add(trial.trial_id)
            if trial.trial_id in self._ok:  # a pruned row is an earlier run's early stopping: it trains
                self._skipped_full += 1
            else:
                todo.append(trial)
        unranked = len(self.screen.configs) - len(ranked)
        how = "" if self.stopping is None else " (asha's order, replayed with all the evidence)"
        self.say(f"promote: the screen ranked {plural(len(ranked), 'config')}{how}"
                 + (f" ({unranked} with a failed screening trial left out)" if unranked else "")
                 + f"; the best {len(chosen)} ({', '.join(chosen)}) now run at {self.spec.fidelity.name} fidelity: "
                 + plural(len(todo), "trial") + (f" ({self._skipped_full} already done)" if self._skipped_full else ""))
        return todo

    def remaining(self) -> int | None:
        if self._queue is not None:
            return len(self._queue)
        inner = self.inner.remaining()
        top = self.rule.count(len(self.screen.configs))
        return None if inner is None else inner + top * len(self.spec.periods) * self.spec.repeats

    def suggest(self) -> Trial | TrialResult | Suggestion:
        if self._queue is None:
            nxt = self.inner.suggest()
            if isinstance(nxt, Trial):
                self._running.add(nxt.trial_id)
                return nxt
            if nxt is not DONE:
                return nxt  # WAIT (early stopping waits for evidence), or a trial decided without training it
            if self._running:
                return WAIT  # the screen's last trials decide who is promoted
            self._queue = self._stage()
        if self._queue:
            trial = self._queue.pop(0)
            self._running.add(trial.trial_id)
            return trial
        return DONE

    def on_progress(self, event: Progress) -> str | None:
        tid = event.trial.trial_id
        if tid not in self._screen_trials:
            return None  # a full trial: trained to its last epoch (its own patience aside)
        if self.stopping is not None:
            value = metric_value(event.metrics, self.spec.objective)
            if value is not None:
                self._curves.setdefault(tid, {})[event.epoch] = value
        return self.inner.on_progress(event)

    def on_result(self, result: TrialResult) -> None:
        tid = result.trial.trial_id
        self._running.discard(tid)
        if tid in self._screen_trials:
            self._note(tid, result.status.value, result.error, result.metrics.get("epochs"),
                       metric_value(result.metrics, self.spec.objective))
            self.inner.on_result(result)
        if result.status in (Status.OK, Status.PRUNED):
            self._done.add(tid)
        if result.status is Status.OK:
            self._ok.add(tid)

    def report(self, rows: pd.DataFrame) -> list[str]:
        """The screen's rank correlation with the full results over the promoted configs, warned about when low."""
        from hpt.results.screen import LOW_CORRELATION, compare_rankings

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
        if check.configs < 3:  # +1 or -1: whether two configs swapped places, near-ties too
            return [line + " (with 2 configs it can only be 1 or -1: too few to warn about)"]
        if not self._left_out:
            return [line + " (every config the screen ranked was promoted)"]
        if not check.spearman >= LOW_CORRELATION:
            return [line, f"warning: the screen ranks the promoted configs unlike the full runs (correlation "
                          f"{check.spearman:.2f} < {LOW_CORRELATION}): configs it left out may have done better at "
                          "full fidelity; promote more (search.promote.top) or check with hpt screen-check"]
        return [line]
