"""The ``search`` section of a spec: its keys and their checks, and the strategies that take them.

:data:`KEYS` is the one table of the section's keys (besides ``strategy``), each with its
check; a key's check fills the :class:`SearchSpec` field of the same name. A strategy
(:data:`STRATEGIES`) names the keys of its own that it takes; every strategy takes
:data:`SHARED_KEYS` too: ``early_stopping``, ``budget``, ``warm_start``, ``finalists``, ``race`` and ``promote``,
which :func:`hpt.scheduling.strategies.make_scheduler` applies as wrappers around any
strategy's scheduler. A new key is a check, a row of :data:`KEYS`, a :class:`SearchSpec`
field and its place in a strategy's keys or in :data:`SHARED_KEYS`.

This module imports nothing of hpt but its errors: the spec parser reads it, and the
schedulers (:mod:`hpt.scheduling`), which import the spec, build what it describes.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpt.errors import did_you_mean, show

__all__ = [
    "AUTO_TRIALS",
    "EARLY_STOPPING",
    "FINALISTS",
    "KEYS",
    "MIN_EPOCHS",
    "PROMOTE_STRATEGIES",
    "SHARED_KEYS",
    "STRATEGIES",
    "TPE_MIN_EPOCHS",
    "TPE_STARTUP",
    "Budget",
    "EarlyStopping",
    "Promote",
    "SearchSpec",
    "Strategy",
    "check_search",
    "default_min_epochs",
    "parse_duration",
    "search_strategy",
]

AUTO_TRIALS = 12  # configs per round of the auto strategy unless max_trials says otherwise
TPE_STARTUP = 10  # configs tpe draws at random before it models the results (Optuna's default)
FINALISTS = 3  # configs a search with early stopping completes on every period at its end, unless search.finalists says

Report = Callable[[str, str], None]  # (JSON path, message)


EARLY_STOPPING = ("asha", "hyperband", "median")
"""Kinds of ``search.early_stopping``: Optuna's SuccessiveHalving, Hyperband and Median pruners."""
MIN_EPOCHS = 1
"""``early_stopping.min_epochs`` by default: the first rung. An epoch's value ranked configs about as their final one
did (Spearman 0.82-0.98 per period for lstm, cnn and mlp on the bundled hourly data; 0.80-0.98 at epoch 2), and random+asha
found full random search's best at about 0.15 of its compute instead of 0.20 (benchmarks/README.md); Ray Tune's
ASHA also starts at 1 (grace_period)."""
TPE_MIN_EPOCHS = 2
"""The first rung with tpe, which also chooses its next configs from what the rungs say: in the search-efficiency
benchmark tpe+asha found full random search's best in 34 of 60 seed-runs with the first rung at 2 and in 24 of 60 at 1
(back to back, 20 seeds x 3 runs; benchmarks/README.md)."""


def default_min_epochs(strategy: str) -> int:
    """``early_stopping.min_epochs`` when the spec gives none, for `strategy` (``search.strategy``)."""
    return TPE_MIN_EPOCHS if strategy == "tpe" else MIN_EPOCHS

_ES_KEYS = ("kind", "min_epochs", "reduction_factor", "min_trials", "resource", "min_share")
_ES_DEFAULTS = {"reduction_factor": 3}  # and min_epochs: default_min_epochs(strategy)
RESOURCES = ("epochs", "data")
"""What early stopping's rungs count: epochs of one trial, or shares of each period's training windows."""
MIN_SHARE = 0.1  # resource "data": the smallest share a rung trains on, unless early_stopping.min_share says
LEAST_SHARE = 0.01  # the smallest min_share: a period's hundredth (hpt wants 100 training windows in a period)
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
    value there; before that it goes on (asha: and is judged at that rung, by its value there,
    once they have; median and hyperband: it is not judged at that rung again).

    With `resource` "data" (asha only) the rungs are shares of each period's training
    windows instead of epochs: 1/reduction_factor^k down to `min_share` (1/9 and 1/3 with the
    defaults), each a trial of its own trained for the full epochs on that share (the most
    recent windows); a config goes on to the next share, and at last to its full trial, only
    when in the best 1/reduction_factor of its period's configs at the share.
    """

    kind: str
    min_epochs: int = MIN_EPOCHS
    reduction_factor: int = 3
    min_trials: int | None = None  # None: the reduction factor, and at least MIN_TRIALS
    resource: str = "epochs"  # or "data": rungs are shares of each period's training windows
    min_share: float = MIN_SHARE  # resource "data": the smallest share a rung trains on

    @property
    def shares(self) -> list[int]:
        """Resource "data": the rungs' shares as their denominators n (a share is 1/n), smallest share first."""
        out, n = [], self.reduction_factor
        while 1 / n >= self.min_share - 1e-12:
            out.append(n)
            n *= self.reduction_factor
        return out[::-1]

    @property
    def evidence(self) -> int:
        """The fewest other trials of the period a trial is judged against at a rung."""
        if self.min_trials is not None:
            return self.min_trials
        return MIN_TRIALS if self.kind == "median" else max(MIN_TRIALS, self.reduction_factor)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.resource == "data":
            out.update(resource=self.resource, min_share=self.min_share)
        else:
            out["min_epochs"] = self.min_epochs
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


@dataclass(frozen=True)
class Promote:
    """``search.promote``: every config is screened at the quick fidelity, then the best `top` run at full fidelity.

    `top` is a number of configs (an int >= 1) or a share of the configs the screen ranked (a float in (0, 1)).
    """

    top: int | float

    def count(self, ranked: int) -> int:
        """How many of `ranked` configs (ranked by the screen) are promoted."""
        if isinstance(self.top, int):
            return min(self.top, ranked)
        return min(ranked, max(1, math.ceil(self.top * ranked)))

    @property
    def text(self) -> str:
        """As ``hpt plan`` says it: "the best 2 configs", "the best 25% of the configs"."""
        if isinstance(self.top, int):
            return f"the best {self.top} config{'s' if self.top != 1 else ''}"
        return f"the best {100 * self.top:g}% of the configs"


@dataclass(frozen=True)
class SearchSpec:
    """The validated ``search`` section: one field per key of :data:`KEYS`, and the strategy."""

    strategy: str = "grid"
    max_trials: int | None = None
    seed: int = 0
    startup_trials: int = TPE_STARTUP  # tpe: configs drawn at random before the sampler models results
    early_stopping: EarlyStopping | None = None
    budget: Budget | None = None
    warm_start: tuple[str, ...] = ()  # results locations whose rows seed the search
    finalists: int = FINALISTS  # configs a search with early stopping completes on every period at its end (0: none)
    race: bool = False  # configs run period by period; the worse ones are dropped after each period
    promote: Promote | None = None  # screen every config quick, then run the best at full fidelity


@dataclass(frozen=True)
class Strategy:
    """A value of ``search.strategy``: the keys of its own it takes, and which of them it needs."""

    name: str
    keys: tuple[str, ...]  # besides "strategy" and the shared keys
    distributions: bool  # takes {"loguniform": ...} axes
    required: Mapping[str, str] = field(default_factory=dict)  # key -> what it says, for the message when missing
    defaults: Mapping[str, Any] = field(default_factory=dict)  # key -> its value when not given (or not valid)

    @property
    def valid(self) -> tuple[str, ...]:
        """Every key its ``search`` section may have."""
        return ("strategy", *self.keys, *SHARED_KEYS)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("grid", ("max_trials", "seed"), distributions=False),
    Strategy("random", ("max_trials", "seed"), distributions=True, required={"max_trials": "how many configs to sample"}),
    Strategy("auto", ("max_trials", "seed"), distributions=True, defaults={"max_trials": AUTO_TRIALS}),
    Strategy("tpe", ("max_trials", "seed", "startup_trials"), distributions=True,
             required={"max_trials": "how many configs to try"}),
)}

SHARED_KEYS = ("early_stopping", "budget", "warm_start", "finalists", "race", "promote")
"""``search`` keys every strategy takes."""


@dataclass(frozen=True)
class Section:
    """What a key's check reads: the section's object, where to report, how to resolve a folder it names."""

    obj: Mapping[str, Any]
    report: Report
    folder: Callable[[str], str]  # a local folder named in the spec, relative to the spec's folder


def parse_duration(text: str) -> float | None:
    """Seconds in "2h", "90m", "1h30m", "45s", "1.5d"; None when it is not such a duration."""
    compact = text.replace(" ", "").lower()
    if not compact or _DURATION.sub("", compact):
        return None
    return sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(compact))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _seed(s: Section) -> int:
    seed = s.obj.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        s.report("search.seed", f"expected an integer >= 0, got {show(seed)}")
        return 0
    return int(seed)


def _max_trials(s: Section) -> int | None:
    value = s.obj.get("max_trials")
    if value is not None and (not _is_int(value) or value < 1):
        s.report("search.max_trials", f"expected an integer >= 1, got {show(value)}")
        return None
    return value


def _startup_trials(s: Section) -> int:
    startup = s.obj.get("startup_trials", TPE_STARTUP)
    if not _is_int(startup) or startup < 1:
        s.report("search.startup_trials", f"expected an integer >= 1, got {show(startup)}")
        return TPE_STARTUP
    return int(startup)


def _stopping_object(value: Any) -> Any:
    """``search.early_stopping`` with its shorthand spelt out: "asha" for {"kind": "asha"}."""
    return {"kind": value} if isinstance(value, str) else value


def _early_stopping(s: Section) -> EarlyStopping | None:
    where = "search.early_stopping"
    value = _stopping_object(s.obj.get("early_stopping"))
    if value is None:
        return None
    if not isinstance(value, dict):
        kinds = ", ".join(f'"{k}"' for k in EARLY_STOPPING[:-1]) + f' or "{EARLY_STOPPING[-1]}"'
        s.report(where, f'expected {kinds}, or an object such as {{"kind": "asha", '
                        f'"min_epochs": 1, "reduction_factor": 3, "min_trials": 3}}, got {show(value)}')
        return None
    ok = True
    for key in value:
        if key not in _ES_KEYS:
            s.report(f"{where}.{key}", f"unknown key{did_you_mean(str(key), _ES_KEYS)}; valid: {', '.join(_ES_KEYS)}")
            ok = False
    kind = value.get("kind")
    if kind not in EARLY_STOPPING:
        s.report(f"{where}.kind", ("missing (required): " if kind is None else "")
                 + f"expected one of {', '.join(EARLY_STOPPING)}"
                 + ("" if kind is None else f", got {show(kind)}{did_you_mean(str(kind), EARLY_STOPPING)}"))
        return None
    numbers: dict[str, Any] = {**_ES_DEFAULTS, "min_epochs": default_min_epochs(str(s.obj.get("strategy", "grid")))}
    for key, low in (("min_epochs", 1), ("reduction_factor", 2), ("min_trials", 1)):
        if key not in value:
            continue
        v = value[key]
        if key == "reduction_factor" and kind == "median":
            s.report(f"{where}.{key}", "median stopping has no reduction factor (asha and hyperband have one)")
            ok = False
        elif not _is_int(v) or v < low:
            s.report(f"{where}.{key}", f"expected an integer >= {low}, got {show(v)}")
            ok = False
        else:
            numbers[key] = int(v)
    resource = value.get("resource", "epochs")
    if resource not in RESOURCES:
        s.report(f"{where}.resource", f"expected one of {', '.join(RESOURCES)}, got {show(resource)}")
        return None
    if resource == "data":
        ok = _data_resource(s, value, str(kind), numbers) and ok
    elif "min_share" in value:
        s.report(f"{where}.min_share", 'a share of the data: only with "resource": "data"')
        ok = False
    return EarlyStopping(str(kind), resource=str(resource), **numbers) if ok else None


def _data_resource(s: Section, value: Mapping[str, Any], kind: str, numbers: dict[str, Any]) -> bool:
    """Check early stopping on data shares; fill `numbers` with its min_share. False when it is wrong."""
    where = "search.early_stopping"
    if kind != "asha":
        s.report(f"{where}.resource", f'"data" works with asha (rungs of growing data shares), not {kind}')
        return False
    if "min_epochs" in value:
        s.report(f"{where}.min_epochs", 'with "resource": "data" every rung trains the full epochs on a share of the '
                                        "data; remove min_epochs (min_share sets the smallest share)")
        return False
    share = value.get("min_share", MIN_SHARE)
    if not isinstance(share, (int, float)) or isinstance(share, bool) or not LEAST_SHARE <= share < 1:
        s.report(f"{where}.min_share", f"expected a share from {LEAST_SHARE:g} to below 1 (0.1: a tenth of the training "
                                       f"windows; a smaller share holds a handful of windows), got {show(share)}")
        return False
    factor = numbers["reduction_factor"]
    if 1 / factor < share:
        s.report(f"{where}.min_share", f"no rung: the largest share below the whole, 1/{factor} (1/reduction_factor), "
                                       f"is below min_share {share:g}; lower min_share")
        return False
    numbers["min_share"] = float(share)
    return True


def _budget(s: Section) -> Budget | None:
    value = s.obj.get("budget")
    if value is None:
        return None
    if _is_int(value) and value >= 1:
        return Budget(trials=int(value), text=str(value))
    if isinstance(value, str):
        seconds = parse_duration(value)
        if seconds is not None and seconds > 0 and math.isfinite(seconds):
            return Budget(seconds=seconds, text=value.strip())
    s.report("search.budget", f'expected a duration such as "2h", "90m" or "1h30m", or a number of trials >= 1, '
                              f"got {show(value)}")
    return None


def _warm_start(s: Section) -> tuple[str, ...]:
    value = s.obj.get("warm_start")
    if value is None or s.obj.get("promote") is not None and value:
        return ()  # with promotion: its line says it does not combine
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        s.report("search.warm_start", f"expected a list of results locations (folders, gs:// or s3:// URIs), "
                                      f"got {show(value)}")
        return ()
    out: list[str] = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            s.report(f"search.warm_start[{i}]", f"expected a folder, gs:// or s3:// URI, got {show(v)}")
            continue
        where = s.folder(v.strip())
        if where in out:
            s.report(f"search.warm_start[{i}]", f"{show(v)} is listed twice")
        elif "://" not in where and not os.path.isdir(where):
            s.report(f"search.warm_start[{i}]", f"{where}: no such results folder")
        else:
            out.append(where)
    return tuple(out)


def _finalists(s: Section) -> int:
    if "finalists" not in s.obj:
        return FINALISTS
    value = s.obj["finalists"]
    if s.obj.get("promote") is not None and value:
        return FINALISTS  # promotion's line says it does not combine
    if not _is_int(value) or value < 0:
        s.report("search.finalists", f"expected an integer >= 0 (0 turns finalists off), got {show(value)}")
        return FINALISTS
    if value and s.obj.get("early_stopping") is None and s.obj.get("race", False) is False:  # a bad race: its line
        s.report("search.finalists", "only early stopping or racing leaves configs with stopped periods to complete; "
                                     "remove it or add early_stopping or race")
    return int(value)


RACE_STRATEGIES = ("grid", "random")
"""The strategies ``search.race`` works with (hpt.scheduling.race holds their whole plan)."""


def _race(s: Section) -> bool:
    value = s.obj.get("race", False)
    if value is None:
        return False  # as "early_stopping": null and "promote": null: not set
    if not isinstance(value, bool):
        s.report("search.race", f"expected true or false, got {show(value)}")
        return False
    strategy = s.obj.get("strategy", "grid")
    if value and strategy not in RACE_STRATEGIES and strategy in STRATEGIES:
        s.report("search.race", f"racing works with the {' and '.join(RACE_STRATEGIES)} strategies, "
                                f"not {strategy} (it holds the whole plan and starts it a period at a time)")
    if value and s.obj.get("early_stopping") is not None:
        s.report("search.race", "racing drops configs between periods; it does not combine with early_stopping "
                                "(remove one)")
    return value


_NOT_WITH_PROMOTE = {
    "race": "",
    "budget": "",
    "finalists": ": its promoted configs run every period already",
    "warm_start": ": its screen ranks this run's configs alone",
}
"""The shared search keys promotion refuses (each a line of its own), with why where the key alone does not say."""

PROMOTE_STRATEGIES = ("grid", "random", "auto")
"""The strategies ``search.promote`` works with: their configs are fixed ahead, so every one can be screened."""


def _promote(s: Section) -> Promote | None:
    where = "search.promote"
    value = s.obj.get("promote")
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = {"top": value}  # 3 for {"top": 3}
    if not isinstance(value, dict):
        s.report(where, f'expected an object such as {{"top": 3}} (configs) or {{"top": 0.25}} (a share of them), '
                        f"got {show(value)}")
        return None
    extra = [k for k in value if k != "top"]
    top: Any = value.get("top")
    for key in extra:
        s.report(f"{where}.{key}", "unknown key" + (' (did you mean "top"?)' if top is None else "") + "; valid: top")
    if isinstance(top, float) and top.is_integer() and top >= 1:
        top = int(top)  # 2.0 is 2 configs (a share is below 1)
    if _is_int(top) and top >= 1:
        number: int | float = int(top)
    elif isinstance(top, float) and 0 < top < 1:
        number = top
    elif top is None and extra:
        return None  # a misspelt "top": its line says so
    else:
        s.report(f"{where}.top", ("missing (required): " if top is None else "")
                 + "expected a number of configs >= 1 or a share of them between 0 and 1"
                 + ("" if top is None else f", got {show(top)}"))
        return None
    strategy = s.obj.get("strategy", "grid")
    if strategy not in PROMOTE_STRATEGIES and strategy in STRATEGIES:
        s.report(where, f"promotion screens every config first; it works with the {', '.join(PROMOTE_STRATEGIES)} "
                        f"strategies, not {strategy} (it chooses configs from full results)")
    for other, why in _NOT_WITH_PROMOTE.items():
        if s.obj.get(other) not in (None, False, 0, []):
            s.report(where, f"promotion is its own adaptive search (a quick screen, then the best at full fidelity); "
                            f"it does not combine with {other}{why} (remove one)")
            break
    stopping = s.obj.get("early_stopping")
    given = _stopping_object(stopping)
    kind, resource = (given.get("kind"), given.get("resource", "epochs")) if isinstance(given, dict) else (None, None)
    if kind in EARLY_STOPPING and (kind != "asha" or resource != "epochs"):
        s.report(where, "with promotion, early stopping works inside the quick screen and must be asha on epochs "
                        f'("early_stopping": "asha"), got {show(stopping)}')
    return None if extra else Promote(number)


KEYS: dict[str, Callable[[Section], Any]] = {
    "max_trials": _max_trials,
    "seed": _seed,
    "startup_trials": _startup_trials,
    "early_stopping": _early_stopping,
    "budget": _budget,
    "warm_start": _warm_start,
    "finalists": _finalists,
    "race": _race,
    "promote": _promote,
}
"""Every key of ``search`` but ``strategy``, with its check: the value of its :class:`SearchSpec` field."""


def search_strategy(obj: Mapping[str, Any], report: Report) -> Strategy:
    """The strategy ``search.strategy`` names (grid when it names none, or none that exists)."""
    name = obj.get("strategy", "grid")
    if name not in STRATEGIES:
        hint = did_you_mean(str(name), STRATEGIES)
        report("search.strategy", f"expected one of {', '.join(STRATEGIES)}, got {show(name)}{hint}")
        name = "grid"
    return STRATEGIES[name]


def check_search(obj: Mapping[str, Any], strategy: Strategy, report: Report,
                 folder: Callable[[str], str] = lambda path: path) -> SearchSpec:
    """The keys `strategy` takes, checked; `folder` resolves a local folder the section names."""
    section = Section(obj, report, folder)
    values: dict[str, Any] = {}
    for key in (*strategy.keys, *SHARED_KEYS):
        if key in strategy.required and key not in obj:
            report(f"search.{key}", f"required for {strategy.name} search ({strategy.required[key]})")
        value = KEYS[key](section)
        values[key] = strategy.defaults.get(key) if value is None and key in strategy.defaults else value
    return SearchSpec(strategy.name, **values)
