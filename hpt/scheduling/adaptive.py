"""The shared ``search`` keys applied to any strategy's scheduler, and what ``hpt plan`` says about them.

:func:`adapt` wraps a scheduler: :class:`~hpt.scheduling.pruning.Pruning` for
``early_stopping`` (inside; :class:`~hpt.scheduling.data_rungs.DataRungs` with ``"resource": "data"``),
:class:`~hpt.scheduling.budget.Budgeted` for ``budget``
(outside, so that trials early stopping does not start are not counted), :class:`~hpt.scheduling.race.Race`
for ``race`` (between them: racing holds the strategy's trials and starts a period at a time), and, with early
stopping or racing, around all :class:`~hpt.scheduling.finalists.Finalists` for ``finalists`` (the best
configs completed on every period once the search is otherwise done: its strategy has nothing
more to start or its budget is spent).
``warm_start`` rows reach the strategy's scheduler (tpe's sampler) and the pruner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hpt.fidelity import FULL
from hpt.progress import plural
from hpt.scheduling.base import Scheduler, stops_early
from hpt.scheduling.budget import Budgeted
from hpt.scheduling.pruning import Pruning, checkpoint_rungs, max_epochs, stopping_text
from hpt.scheduling.warm import WarmStart
from hpt.spec import Spec
from hpt.spec.search import FINALISTS
from hpt.trial import Status

__all__ = ["adapt", "again_text", "idle_warnings", "outline", "rows_to_resume", "stopping_idle", "stops_early"]


def adapt(scheduler: Scheduler, spec: Spec, say: Callable[[str], None], warm: WarmStart | None = None,
          configs: int | None = None) -> Scheduler:
    """`scheduler` with the spec's early stopping and budget around it; `configs`, when the search's size is known,
    tells early stopping whether a rung can ever judge a trial."""
    s = spec.search
    book, standing = None, None
    finalists = _has_finalists(spec)
    if s.early_stopping is not None and s.early_stopping.resource == "data":
        from hpt.scheduling.data_rungs import DataRungs

        scheduler = DataRungs(scheduler, spec, say)
        standing = scheduler.standing
    elif s.early_stopping is not None:
        scheduler = Pruning(scheduler, spec, say, warm, keep_stopped=finalists,
                            idle=configs is not None and stopping_idle(spec, configs))
        book = scheduler.book
    if s.race:
        from hpt.scheduling.race import Race

        scheduler = Race(scheduler, spec, say)
    if s.budget is not None:
        scheduler = Budgeted(scheduler, s.budget, spec.fidelity, say)
    if finalists:
        from hpt.scheduling.finalists import Finalists

        scheduler = Finalists(scheduler, spec, s.finalists, say, book, standing)
    return scheduler


def rows_to_resume(spec: Spec, rows: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Mapping[str, Any]], int]:
    """The rows a run resumes from, and how many pruned rows of its architecture are not done for it: when the spec
    stops nothing early (:func:`~hpt.scheduling.base.stops_early`), a trial an earlier run stopped early or racing
    dropped is not finished (its config could never be ranked) and trains again. Its row reads as an interrupted
    one, a trial to run again, to every scheduler (tpe keeps its config in the study, at its number)."""
    if stops_early(spec):
        return dict(rows), 0
    pruned = {tid for tid, row in rows.items() if row.get("status") == Status.PRUNED.value}
    n = sum(rows[tid].get("architecture") == spec.architecture for tid in pruned)
    return {tid: {**row, "status": Status.INTERRUPTED.value} if tid in pruned else row for tid, row in rows.items()}, n


def again_text(n: int) -> str:
    """The run's line about the pruned rows :func:`rows_to_resume` counted."""
    return (f"{plural(n, 'pruned row')} at the location {'is' if n == 1 else 'are'} from early stopping or racing, "
            "which this run does not use: the trials among them it runs are trained to their last epoch")


def idle_warnings(spec: Spec, configs: int, racing: bool = True) -> list[str]:
    """Warnings for shared keys that can do nothing in this search: early stopping with too few configs for a rung to
    judge any trial (warm-start trials count too: then it may), promotion that promotes every config, racing with too
    few periods to drop any config (with `racing`: ``hpt plan``'s race line says it already)."""
    s, out = spec.search, []
    stopping = s.early_stopping
    if stopping is not None and stopping_idle(spec, configs):
        out.append(f"warning: early stopping cannot stop any trial here: a trial is judged only once "
                   f"{plural(stopping.evidence, 'other trial')} of its period got as far (early_stopping.min_trials), "
                   f"and this search has {plural(configs, 'config')}; tune more configs or lower min_trials")
    if (stopping is not None or s.race) and s.finalists > max(configs, FINALISTS):  # the default 3: no news
        out.append(f"warning: search.finalists {s.finalists} is more than the {plural(configs, 'config')} this search "
                   f"has: at most {configs} can be completed")
    if s.promote is not None and s.promote.count(configs) >= configs and spec.fidelity == FULL:  # not --quick
        out.append(f"warning: search.promote promotes every one of the {plural(configs, 'config')}: the screen ranks "
                   "them and then all run at full fidelity, which costs more than a run without promotion; "
                   "promote fewer (search.promote.top)")
    if racing and s.race:
        from hpt.scheduling.race import can_drop, first_drop

        if not can_drop(len(spec.periods)):
            out.append(f"warning: racing cannot drop any config with {plural(len(spec.periods), 'period')} (its tests "
                       f"need {first_drop()} periods, and a period left to save): add periods")
    return out


def stopping_idle(spec: Spec, configs: int) -> bool:
    """Whether early stopping can never judge a trial: a period has fewer other trials (`configs` x the seeds of
    training.repeats) than `min_trials`, and no warm-start trials to count."""
    stopping = spec.search.early_stopping
    return stopping is not None and not spec.search.warm_start and configs * spec.repeats - 1 < stopping.evidence


def _has_finalists(spec: Spec) -> bool:
    """Whether the search ends with a finalist stage: ``finalists`` with early stopping or racing."""
    s = spec.search
    return bool(s.finalists and (s.early_stopping is not None or s.race))


def outline(spec: Spec, configs: int, periods: int) -> list[str]:
    """The adaptive part of the plan: rungs, the most trials and epochs that can run, the budget."""
    s = spec.search
    most = max_epochs(spec)
    trials = configs * periods
    lines = []
    if s.strategy == "tpe":
        line = (f"tpe: each config is chosen from the results so far (the first {min(s.startup_trials, configs)} "
                f"at random); a config's value is its mean {spec.objective} over its periods")
        stopping = s.early_stopping
        if stopping is not None and stopping.kind == "asha" and stopping.resource == "epochs":
            line += ("; a config asha, replayed with all the evidence, stops at a rung (a complete one too) is ranked "
                     "below those it keeps, by that rung and its place there")
        lines.append(line)
    per = " per round" if s.strategy == "auto" else ""
    if s.early_stopping is not None and s.early_stopping.resource == "data":
        from hpt.scheduling.data_rungs import data_cost, data_text

        lines.append(data_text(s.early_stopping, most) + "; trials are compared only with trials of the same period")
        lines.append(f"at most {plural(trials, 'trial')} and {trials * most:,} epochs{per} at full data, and "
                     f"{plural(trials * len(s.early_stopping.shares), 'trial')} on data shares: at most "
                     f"{data_cost(s.early_stopping):.2f}x the compute of the full trials (if none is stopped)")
    elif s.early_stopping is not None:
        lines.append(stopping_text(s.early_stopping, most) + "; trials are compared only with trials of the same period")
        lines.append(f"at most {plural(trials, 'trial')} and {trials * most:,} epochs{per} "
                     f"(if none is stopped; a stopped trial may run one more epoch before it stops)")
    else:
        lines.append(f"at most {plural(trials, 'trial')} and {trials * most:,} epochs{per} (no early stopping"
                     + ("; racing drops configs between periods)" if s.race else ")"))
    if s.race:
        from hpt.scheduling.race import race_text

        lines.append(race_text(periods))
    if s.budget is not None:
        if s.budget.trials is not None:
            lines.append(f"budget: {plural(s.budget.trials, 'trial')} (counting those already at the results location); "
                         "then no new config starts")
        else:
            lines.append(f"budget: {s.budget.text} from the first trial; then no new config starts")
    if _has_finalists(spec):
        from hpt.scheduling.finalists import finalists_text

        lacking = periods
        if s.race:  # a raced-out config ran at least the periods the tests need before its first drop
            from hpt.scheduling.race import first_drop

            lacking = max(0, periods - first_drop())
        lines.append(finalists_text(s.finalists, lacking * spec.repeats, bool(checkpoint_rungs(s.early_stopping, most))))
    if s.warm_start:
        lines.append(f"warm start from: {', '.join(s.warm_start)}")
    return lines
