"""The ``parameters`` section: what the search varies, a list of values or a distribution per parameter,
and the checks that read it with other sections (the architecture's constraints, early stopping's epochs)."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from hpt.architectures import Architecture
from hpt.errors import did_you_mean, show
from hpt.hparams import TRAINING, Constraint, HParam
from hpt.spec.checker import Checker, hint, is_int
from hpt.spec.objects import DISTRIBUTIONS, REPEATS, Axis, Distribution
from hpt.spec.search import STRATEGIES, SearchSpec, default_min_epochs
from hpt.spec.training import normalise

__all__ = ["auto_axes", "check_constraints", "check_stopping_epochs", "most_epochs", "parse_parameters"]

_MAX_CONSTRAINT_COMBINATIONS = 10**5  # beyond this many, a constraint is left to the run-time check


def parse_parameters(ck: Checker, value: Any, arch: Architecture | None, search: SearchSpec) -> dict[str, Axis]:
    obj = ck.section(value, "parameters")
    if obj is None:
        return {}
    valid: dict[str, HParam] = dict(TRAINING)
    if arch is not None:
        valid.update({p.name: p for p in arch.hparams})
    out: dict[str, Axis] = {}
    for name, axis in obj.items():
        where = f"parameters.{name}"
        hp = valid.get(name)
        if name == REPEATS:
            ck.add(where, f'"{REPEATS}" is not tuned: set it under "training" (seeds per config and period)')
            continue
        if name == "quantiles":
            ck.add(where, '"quantiles" is not tuned (pinball losses of other quantiles do not compare): '
                          'set it under "training"')
            continue
        if hp is None:
            if arch is None:
                continue  # the architecture's own error is reported; its names are unknown
            owner = f"{arch.name} or training"
            ck.add(where, f"unknown parameter for {owner}{hint(name, valid, 'parameters')}; "
                          f"valid: {', '.join(valid)}")
            continue
        parsed = _axis(ck, axis, hp, where, search.strategy)
        if parsed is not None:
            out[name] = parsed
    return out


def _axis(ck: Checker, axis: Any, hp: HParam, where: str, strategy: str) -> Axis | None:
    if isinstance(axis, list):
        if not axis:
            ck.add(where, "empty list: give at least one value")
            return None
        if _all_admissible(axis, hp):
            return tuple(axis) if hp.kind != "int" else tuple(normalise(hp, v) for v in axis)
        ok = True
        seen: set[Any] = set()
        for i, v in enumerate(axis):
            msg = hp.problem(v)
            if msg:
                ck.add(f"{where}[{i}]", msg)
                ok = False
                continue
            key = _value_key(v)
            if key in seen:
                ck.add(f"{where}[{i}]", f"{show(v)} is listed twice")
                ok = False
            seen.add(key)
        return tuple(normalise(hp, v) for v in axis) if ok else None
    if isinstance(axis, dict):
        return _distribution(ck, axis, hp, where, strategy)
    example = '{"loguniform": [0.0001, 0.1]}' if hp.numeric else "a list"
    ck.add(where, f"expected a list of values or a distribution such as {example}, got {show(axis)}")
    return None


def _distribution(ck: Checker, axis: dict[str, Any], hp: HParam, where: str, strategy: str) -> Distribution | None:
    if len(axis) != 1 or next(iter(axis)) not in DISTRIBUTIONS:
        keys = ", ".join(f'"{k}"' for k in DISTRIBUTIONS)
        found = ", ".join(f'"{k}"' for k in axis) or "nothing"
        ck.add(where, f"expected one distribution key ({keys}), got {found}"
                      f"{did_you_mean(next(iter(axis)), DISTRIBUTIONS) if len(axis) == 1 else ''}")
        return None
    kind, bounds = next(iter(axis.items()))
    path = f"{where}.{kind}"
    if not STRATEGIES[strategy].distributions:
        if not (ck.meant("search") and ck.meant("search.strategy")):
            return None  # the search section's own problem says what is wrong (a misspelt key, an unknown strategy)
        takes = " or ".join(f'"{name}"' for name, s in STRATEGIES.items() if s.distributions)
        ck.add(where, f'a distribution needs "search": {{"strategy": {takes}}}; '
                      f"{strategy} search takes a list of values")
        return None
    if not hp.numeric:
        ck.add(where, f"takes {hp.describe()}: give a list of values, not a distribution")
        return None
    if (not isinstance(bounds, list) or len(bounds) != 2
            or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)):
        ck.add(path, f"expected [low, high] numbers, got {show(bounds)}")
        return None
    low, high = bounds
    if low >= high:
        ck.add(path, f"reversed range: low {show(low)} is not below high {show(high)}")
        return None
    if kind == "loguniform" and low <= 0:
        ck.add(path, f"loguniform needs low > 0, got {show(low)}")
        return None
    if kind == "int" and not (is_int(low) and is_int(high)):
        ck.add(path, f"expected integer bounds, got {show(bounds)}")
        return None
    if hp.kind == "int" and kind != "int":
        ck.add(where, f'{hp.name} takes integers: use {{"int": [{_int_text(low)}, {_int_text(high)}]}}')
        return None
    for b in (low, high):
        msg = hp.problem(b)
        if msg:
            ck.add(path, f"bound {show(b)}: {msg}")
            return None
    return Distribution(kind, float(low) if kind != "int" else int(low), float(high) if kind != "int" else int(high))


def check_constraints(ck: Checker, arch: Architecture, given: Any, parameters: dict[str, Axis],
                      training: dict[str, Any]) -> None:
    """Every combination of the values a constraint reads, each problem once per blamed value.

    Only the axes a constraint names are crossed, so a large grid elsewhere costs nothing.
    """
    given = given if isinstance(given, dict) else {}
    base = {**{n: p.default for n, p in TRAINING.items()}, **arch.defaults, **training}
    for rule in arch.constraints:
        if any(n in given and n not in parameters for n in rule.names):
            continue  # that axis is already reported as invalid
        if any(isinstance(parameters.get(n), Distribution) for n in rule.names):
            continue  # sampled values cannot be listed; the builder's own error catches them
        axes = {n: list(a) if isinstance(a := parameters.get(n), tuple) else [base.get(n)] for n in rule.names}
        if math.prod(len(v) for v in axes.values()) > _MAX_CONSTRAINT_COMBINATIONS:
            continue
        _constraint(ck, rule, axes, [n for n in rule.names if n in parameters], training)


def _constraint(ck: Checker, rule: Constraint, axes: dict[str, list[Any]], tuned: list[str],
                training: dict[str, Any]) -> None:
    blamed = set()
    for indices in itertools.product(*(range(len(v)) for v in axes.values())):
        at = dict(zip(axes, indices, strict=True))
        msg = rule.check({n: axes[n][i] for n, i in at.items()})
        if msg is None:
            continue
        if tuned:
            where = f"parameters.{tuned[0]}[{at[tuned[0]]}]"
        else:
            where = next((f"training.{n}" for n in rule.names if n in training), "architecture")
        if where not in blamed:
            blamed.add(where)
            ck.add(where, msg)


def most_epochs(parameters: Mapping[str, Axis], training: Mapping[str, Any]) -> int:
    """The most epochs a trial of these parameters and training values runs."""
    axis = parameters.get("epochs")
    if axis is None:
        return int(training.get("epochs", TRAINING["epochs"].default))
    return int(axis.high if isinstance(axis, Distribution) else max(axis))


def check_stopping_epochs(ck: Checker, search: SearchSpec, parameters: Mapping[str, Axis],
                          training: Mapping[str, Any]) -> None:
    """Early stopping that could never stop a trial (its first check at or after the last epoch) is a mistake."""
    stopping = search.early_stopping
    if stopping is None or stopping.resource == "data":
        return  # its rungs are data shares, each trained for every epoch
    most = most_epochs(parameters, training)
    if stopping.min_epochs >= most:
        default = " (the default)" if stopping.min_epochs == default_min_epochs(search.strategy) else ""
        ck.add("search.early_stopping.min_epochs", f"{stopping.min_epochs}{default} is not below the most epochs a "
                                                   f"trial runs ({most}): no trial could be stopped early; train more "
                                                   "epochs or remove early_stopping")


def _int_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _all_admissible(values: list[Any], hp: HParam) -> bool:
    """Whether every value is admissible and none is listed twice, checked in bulk.

    A grid axis of 10^6 numbers takes milliseconds; on False the caller goes value by
    value to say which ones are wrong.
    """
    if hp.numeric and set(map(type, values)) <= {int, float}:
        arr = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(arr)
        if hp.kind == "int":
            ok &= arr == np.floor(arr)
        if hp.low is not None:
            ok &= arr > hp.low if hp.low_open else arr >= hp.low
        if hp.high is not None:
            ok &= arr < hp.high if hp.high_open else arr <= hp.high
        if not ok.all():
            return False
        return len(set(values)) == len(values)  # 64 and 64.0 are one value
    if any(hp.problem(v) for v in values):
        return False
    return len(set(map(_value_key, values))) == len(values)


def _value_key(v: Any) -> Any:
    """Equal keys for values a grid would repeat: 64 and 64.0 are one value, true and 1 are two."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("number", v)
    try:
        hash(v)
    except TypeError:
        return ("json", json.dumps(v, sort_keys=True, default=str))
    return (type(v).__name__, v)


EPOCH_COUNTS = ("patience", "lr_patience")
"""Hyperparameters counted in epochs without improvement: a value of the most epochs less one or more never acts."""


def auto_axes(arch: Architecture, epochs: int | None = None) -> dict[str, Axis]:
    """The auto strategy's search space: the architecture's learning-rate family ranges. With `epochs` (the most a
    trial runs), the patience ranges end at epochs - 2, the most that can act (after the first epoch, patience p
    stops a trial at epoch 1 + p); one left with a single value or none is not drawn (its default stays)."""
    kinds = {"log": "loguniform", "linear": "uniform", "int": "int"}
    axes: dict[str, Axis] = {}
    for name, (lo, hi, scale) in arch.auto_ranges.items():
        if epochs is not None and name in EPOCH_COUNTS and hi > epochs - 2:
            if lo >= epochs - 2:
                continue  # one value at most could act: nothing to tune
            hi = epochs - 2
        axes[name] = Distribution(kinds[scale], lo, hi)
    return axes
