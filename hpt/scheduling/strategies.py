"""The scheduler of each search strategy a spec can name (:data:`hpt.spec.search.STRATEGIES`).

A strategy's keys and their checks are the spec's (:mod:`hpt.spec.search`); here each
strategy gets the scheduler that runs it, and :func:`make_scheduler` wraps that scheduler
for the keys every strategy takes (early stopping, budget, finalists:
:mod:`hpt.scheduling.adaptive`), so they work alike for grid, random, auto and tpe;
``promote`` (:mod:`hpt.scheduling.promote`) replaces a fixed plan's scheduler by its two stages.
"""

from __future__ import annotations

from collections.abc import Callable

from hpt.fidelity import FULL
from hpt.scheduling.adaptive import adapt, idle_warnings
from hpt.scheduling.base import Scheduler
from hpt.scheduling.plan import PlanScheduler
from hpt.scheduling.tpe import TPEScheduler
from hpt.scheduling.warm import WarmStart, load_warm_start
from hpt.search import expand
from hpt.spec import Spec

__all__ = ["BUILDERS", "make_scheduler"]

Say = Callable[[str], None]


def _plan_scheduler(spec: Spec, say: Say, warm: WarmStart | None) -> Scheduler:
    return PlanScheduler(expand(spec))


def _tpe_scheduler(spec: Spec, say: Say, warm: WarmStart | None) -> Scheduler:
    return TPEScheduler(spec, say, warm)


BUILDERS: dict[str, Callable[[Spec, Say, WarmStart | None], Scheduler]] = {
    "grid": _plan_scheduler,
    "random": _plan_scheduler,
    "auto": _plan_scheduler,
    "tpe": _tpe_scheduler,
}
"""The scheduler of each strategy, by name: one for every strategy of :data:`hpt.spec.search.STRATEGIES`."""


def make_scheduler(spec: Spec, say: Say | None = None, location: str | None = None) -> Scheduler:
    """The scheduler of the spec's search strategy, wrapped for the shared keys (early stopping, budget).

    The rows of ``search.warm_start`` are read here (`location`, the run's own results
    location, is refused as one of them). `say` prints a line to the run's log (warm start
    counts, trials not started); default: nowhere.
    """
    say = say or (lambda line: None)
    configs = spec.search.max_trials or 0 if spec.search.strategy == "tpe" else len(expand(spec).configs)
    for line in idle_warnings(spec, configs):
        say(line)
    if spec.search.promote is not None:
        from hpt.scheduling.promote import Promote, screen_scheduler
        from hpt.spec import quick_spec

        if spec.fidelity != FULL:  # under --quick the run is the screen alone, as promotion runs it
            return screen_scheduler(spec, say)
        return Promote(spec, quick_spec(spec, "search.promote"), say)
    warm = load_warm_start(spec, say, location) if spec.search.warm_start else None
    return adapt(BUILDERS[spec.search.strategy](spec, say, warm), spec, say, warm, configs)
