"""The search strategies a spec can name: each validates its own ``search`` keys and builds its scheduler.

Besides a strategy's own keys, every strategy takes the shared ones (:data:`SHARED_KEYS`):
``early_stopping``, ``budget``, ``warm_start`` and ``finalists``. They are checked here, once for all
strategies, and applied by :func:`make_scheduler` as wrappers around the strategy's
scheduler (:mod:`hpt.scheduling.adaptive`), so they work alike for grid, random, auto and tpe.
This module imports nothing of the spec at load time, so the spec parser can use it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpt.errors import show

if TYPE_CHECKING:
    from hpt.scheduling.base import Scheduler
    from hpt.scheduling.warm import WarmStart
    from hpt.spec import Spec

__all__ = [
    "AUTO_TRIALS",
    "EARLY_STOPPING",
    "FINALISTS",
    "SHARED_KEYS",
    "STRATEGIES",
    "TPE_STARTUP",
    "Budget",
    "EarlyStopping",
    "Strategy",
    "check_shared",
    "make_scheduler",
]

AUTO_TRIALS = 12  # configs per round of the auto strategy unless max_trials says otherwise
TPE_STARTUP = 10  # configs tpe draws at random before it models the results (Optuna's default)

Report = Callable[[str, str], None]  # (JSON path, message)
Say = Callable[[str], None]


@dataclass(frozen=True)
class Strategy:
    """A value of ``search.strategy``: the keys it takes, how it checks them, what it runs."""

    name: str
    keys: tuple[str, ...]  # besides "strategy" and the shared keys
    check: Callable[[Mapping[str, Any], Report], dict[str, Any]]  # -> SearchSpec fields
    build: Callable[[Spec, Say, WarmStart | None], Scheduler]
    distributions: bool  # takes {"loguniform": ...} axes


EARLY_STOPPING = ("asha", "hyperband", "median")
"""Kinds of ``search.early_stopping``: Optuna's SuccessiveHalving, Hyperband and Median pruners."""
_ES_KEYS = ("kind", "min_epochs", "reduction_factor", "min_trials")
_ES_DEFAULTS = {"min_epochs": 2, "reduction_factor": 3}
MIN_TRIALS = 3  # the fewest other trials a trial is judged against at a rung, unless the reduction factor is more


@dataclass(frozen=True)
class EarlyStopping:
    """``search.early_stopping``: stop trials whose curve is behind the other trials of their period.

    asha: Optuna's SuccessiveHalvingPruner (asynchronous successive halving): at epochs
    min_epochs x reduction_factor^k (the rungs) a trial goes on only when it is in the best
    1/reduction_factor of the trials of its period that reached that rung. hyperband:
    Optuna's HyperbandPruner, several such brackets with different first rungs. median:
    Optuna's MedianPruner, from min_epochs on, stop a trial worse than the median of the
    finished trials of its period at the same epoch.

    Whatever the kind, a trial is judged at a rung (an epoch, for median) only when at least
    `min_trials` other trials of its period (of its bracket, for hyperband) have reported a
    value there; before that it goes on, and it is not judged at that rung again.
    """

    kind: str
    min_epochs: int = 2
    reduction_factor: int = 3
    min_trials: int | None = None  # None: the reduction factor, and at least MIN_TRIALS

    @property
    def evidence(self) -> int:
        """The fewest other trials of the period a trial is judged against at a rung."""
        if self.min_trials is not None:
            return self.min_trials
        return MIN_TRIALS if self.kind == "median" else max(MIN_TRIALS, self.reduction_factor)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "min_epochs": self.min_epochs}
        if self.kind != "median":
            out["reduction_factor"] = self.reduction_factor
        out["min_trials"] = self.evidence
        return out


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


@dataclass(frozen=True)
class Budget:
    """``search.budget``: no new config starts once `trials` trials ran or `seconds` passed."""

    trials: int | None = None
    seconds: float | None = None
    text: str = ""  # as the spec wrote it, for logs

    def __str__(self) -> str:
        return f"{self.trials} trials" if self.trials is not None else self.text


def parse_duration(text: str) -> float | None:
    """Seconds in "2h", "90m", "1h30m", "45s", "1.5d"; None when it is not such a duration."""
    compact = text.replace(" ", "").lower()
    if not compact or _DURATION.sub("", compact):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(compact))


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


def _early_stopping(value: Any, report: Report) -> EarlyStopping | None:
    where = "search.early_stopping"
    if value is None:
        return None
    if isinstance(value, str):
        value = {"kind": value}  # "asha" for {"kind": "asha"}
    if not isinstance(value, dict):
        report(where, f'expected an object such as {{"kind": "asha", "min_epochs": 2, "reduction_factor": 3, '
                      f'"min_trials": 3}}, '
                      f"got {show(value)}")
        return None
    ok = True
    for key in value:
        if key not in _ES_KEYS:
            report(f"{where}.{key}", f"unknown key; valid: {', '.join(_ES_KEYS)}")
            ok = False
    kind = value.get("kind")
    if kind not in EARLY_STOPPING:
        report(f"{where}.kind", ("missing (required): " if kind is None else "")
               + f"expected one of {', '.join(EARLY_STOPPING)}" + ("" if kind is None else f", got {show(kind)}"))
        return None
    numbers: dict[str, Any] = dict(_ES_DEFAULTS)
    for key, low in (("min_epochs", 1), ("reduction_factor", 2), ("min_trials", 1)):
        if key not in value:
            continue
        v = value[key]
        if key == "reduction_factor" and kind == "median":
            report(f"{where}.{key}", "median stopping has no reduction factor (asha and hyperband have one)")
            ok = False
        elif not _is_int(v) or v < low:
            report(f"{where}.{key}", f"expected an integer >= {low}, got {show(v)}")
            ok = False
        else:
            numbers[key] = int(v)
    return EarlyStopping(str(kind), **numbers) if ok else None


def _budget(value: Any, report: Report) -> Budget | None:
    if value is None:
        return None
    if _is_int(value) and value >= 1:
        return Budget(trials=int(value), text=str(value))
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is not None and seconds > 0 and math.isfinite(seconds):
            return Budget(seconds=seconds, text=value.strip())
    report("search.budget", f'expected a duration such as "2h", "90m" or "1h30m", or a number of trials >= 1, '
                            f"got {show(value)}")
    return None


def _warm_start(value: Any, report: Report, folder: Callable[[str], str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        report("search.warm_start", f"expected a list of results locations (folders, gs:// or s3:// URIs), "
                                    f"got {show(value)}")
        return ()
    out: list[str] = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            report(f"search.warm_start[{i}]", f"expected a folder, gs:// or s3:// URI, got {show(v)}")
            continue
        where = folder(v.strip())
        if where in out:
            report(f"search.warm_start[{i}]", f"{show(v)} is listed twice")
        elif "://" not in where and not os.path.isdir(where):
            report(f"search.warm_start[{i}]", f"{where}: no such results folder")
        else:
            out.append(where)
    return tuple(out)


FINALISTS = 3  # configs a search with early stopping completes on every period at its end, unless search.finalists says


def _finalists(obj: Mapping[str, Any], report: Report) -> int:
    if "finalists" not in obj:
        return FINALISTS
    value = obj["finalists"]
    if not _is_int(value) or value < 0:
        report("search.finalists", f"expected an integer >= 0 (0 turns finalists off), got {show(value)}")
        return FINALISTS
    if value and obj.get("early_stopping") is None and obj.get("race") is not True:
        report("search.finalists", "only early stopping or racing leaves configs with stopped periods to complete; "
                                   "remove it or add early_stopping or race")
    return int(value)


# -- search.race (periods as a fidelity: hpt.scheduling.race) --
RACE_STRATEGIES = ("grid", "random")


def _race(obj: Mapping[str, Any], report: Report) -> bool:
    value = obj.get("race", False)
    if not isinstance(value, bool):
        report("search.race", f"expected true or false, got {show(value)}")
        return False
    strategy = obj.get("strategy", "grid")
    if value and strategy not in RACE_STRATEGIES and strategy in STRATEGIES:
        report("search.race", f"racing works with the {' and '.join(RACE_STRATEGIES)} strategies, "
                              f"not {strategy} (it holds the whole plan and starts it a period at a time)")
    if value and obj.get("early_stopping") is not None:
        report("search.race", "racing drops configs between periods; it does not combine with early_stopping "
                              "(remove one)")
    return value


SHARED_KEYS = ("early_stopping", "budget", "warm_start", "finalists", "race")
"""``search`` keys every strategy takes."""


def check_shared(obj: Mapping[str, Any], report: Report,
                 folder: Callable[[str], str] = lambda path: path) -> dict[str, Any]:
    """The shared ``search`` keys as SearchSpec fields; `folder` resolves a local folder named in the spec."""
    return {"early_stopping": _early_stopping(obj.get("early_stopping"), report),
            "budget": _budget(obj.get("budget"), report),
            "warm_start": _warm_start(obj.get("warm_start"), report, folder),
            "finalists": _finalists(obj, report),
            "race": _race(obj, report)}


def _check_grid(obj: Mapping[str, Any], report: Report) -> dict[str, Any]:
    return {"max_trials": _max_trials(obj, report), "seed": _seed(obj, report)}


def _check_random(obj: Mapping[str, Any], report: Report) -> dict[str, Any]:
    if "max_trials" not in obj:
        report("search.max_trials", "required for random search (how many configs to sample)")
    return {"max_trials": _max_trials(obj, report), "seed": _seed(obj, report)}


def _check_auto(obj: Mapping[str, Any], report: Report) -> dict[str, Any]:
    return {"max_trials": _max_trials(obj, report) or AUTO_TRIALS, "seed": _seed(obj, report)}


def _check_tpe(obj: Mapping[str, Any], report: Report) -> dict[str, Any]:
    if "max_trials" not in obj:
        report("search.max_trials", "required for tpe search (how many configs to try)")
    startup = obj.get("startup_trials", TPE_STARTUP)
    if not _is_int(startup) or startup < 1:
        report("search.startup_trials", f"expected an integer >= 1, got {show(startup)}")
        startup = TPE_STARTUP
    return {"max_trials": _max_trials(obj, report), "seed": _seed(obj, report), "startup_trials": int(startup)}


def _plan_scheduler(spec: Spec, say: Say, warm: WarmStart | None) -> Scheduler:
    from hpt.scheduling.plan import PlanScheduler
    from hpt.search import expand

    return PlanScheduler(expand(spec))


def _tpe_scheduler(spec: Spec, say: Say, warm: WarmStart | None) -> Scheduler:
    from hpt.scheduling.tpe import TPEScheduler

    return TPEScheduler(spec, say, warm)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("grid", ("max_trials", "seed"), _check_grid, _plan_scheduler, distributions=False),
    Strategy("random", ("max_trials", "seed"), _check_random, _plan_scheduler, distributions=True),
    Strategy("auto", ("max_trials", "seed"), _check_auto, _plan_scheduler, distributions=True),
    Strategy("tpe", ("max_trials", "seed", "startup_trials"), _check_tpe, _tpe_scheduler, distributions=True),
)}


def make_scheduler(spec: Spec, say: Say | None = None, location: str | None = None) -> Scheduler:
    """The scheduler of the spec's search strategy, wrapped for the shared keys (early stopping, budget).

    The rows of ``search.warm_start`` are read here (`location`, the run's own results
    location, is refused as one of them). `say` prints a line to the run's log (warm start
    counts, trials not started); default: nowhere.
    """
    from hpt.scheduling.adaptive import adapt
    from hpt.scheduling.warm import load_warm_start

    say = say or (lambda line: None)
    warm = load_warm_start(spec, say, location) if spec.search.warm_start else None
    return adapt(STRATEGIES[spec.search.strategy].build(spec, say, warm), spec, say, warm)
