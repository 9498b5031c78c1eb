"""The search strategies a spec can name: each validates its own ``search`` keys and builds its scheduler.

A strategy added later (issue 9: ``tpe``) plugs in here with its keys and its scheduler.
This module imports nothing of the spec at load time, so the spec parser can use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpt.errors import show

if TYPE_CHECKING:
    from hpt.scheduling.base import Scheduler
    from hpt.spec import Spec

__all__ = ["AUTO_TRIALS", "STRATEGIES", "Strategy", "make_scheduler"]

AUTO_TRIALS = 12  # configs per round of the auto strategy unless max_trials says otherwise

Report = Callable[[str, str], None]  # (JSON path, message)


@dataclass(frozen=True)
class Strategy:
    """A value of ``search.strategy``: the keys it takes, how it checks them, what it runs."""

    name: str
    keys: tuple[str, ...]  # besides "strategy"
    check: Callable[[Mapping[str, Any], Report], dict[str, Any]]  # -> SearchSpec fields
    build: Callable[[Spec], Scheduler]
    distributions: bool  # takes {"loguniform": ...} axes


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _seed(obj: Mapping[str, Any], report: Report) -> int:
    seed = obj.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        report("search.seed", f"expected an integer >= 0, got {show(seed)}")
        return 0
    return int(seed)


def _max_trials(obj: Mapping[str, Any], report: Report) -> int | None:
    value = obj.get("max_trials")
    if value is not None and (not _is_int(value) or value < 1):
        report("search.max_trials", f"expected an integer >= 1, got {show(value)}")
        return None
    return value


def _check_grid(obj: Mapping[str, Any], report: Report) -> dict[str, Any]:
    return {"max_trials": _max_trials(obj, report), "seed": _seed(obj, report)}


def _check_random(obj: Mapping[str, Any], report: Report) -> dict[str, Any]:
    if "max_trials" not in obj:
        report("search.max_trials", "required for random search (how many configs to sample)")
    return {"max_trials": _max_trials(obj, report), "seed": _seed(obj, report)}


def _check_auto(obj: Mapping[str, Any], report: Report) -> dict[str, Any]:
    return {"max_trials": _max_trials(obj, report) or AUTO_TRIALS, "seed": _seed(obj, report)}


def _plan_scheduler(spec: Spec) -> Scheduler:
    from hpt.scheduling.plan import PlanScheduler
    from hpt.search import expand

    return PlanScheduler(expand(spec))


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("grid", ("max_trials", "seed"), _check_grid, _plan_scheduler, distributions=False),
    Strategy("random", ("max_trials", "seed"), _check_random, _plan_scheduler, distributions=True),
    Strategy("auto", ("max_trials", "seed"), _check_auto, _plan_scheduler, distributions=True),
)}


def make_scheduler(spec: Spec) -> Scheduler:
    """The scheduler of the spec's search strategy."""
    return STRATEGIES[spec.search.strategy].build(spec)
