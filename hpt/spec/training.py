"""The ``training`` section: fixed hyperparameter values, and how many seeds each config trains (``repeats``)."""

from __future__ import annotations

from typing import Any

from hpt.architectures import Architecture
from hpt.errors import show
from hpt.hparams import TRAINING, HParam
from hpt.spec.checker import Checker, hint
from hpt.spec.objects import MAX_REPEATS, REPEATS

__all__ = ["normalise", "parse_repeats", "parse_training"]


def parse_training(ck: Checker, value: Any, arch: Architecture | None) -> dict[str, Any]:
    obj = ck.section(value, "training")
    if obj is None:
        return {}
    out = {}
    for key, v in obj.items():
        if key == REPEATS:
            continue  # not a hyperparameter: see parse_repeats()
        where = f"training.{key}"
        hp = TRAINING.get(key)
        if hp is None:
            if arch is not None and arch.hparam(key) is not None:
                ck.add(where, f'"{key}" is an argument of {arch.name}: set it under "parameters" '
                              "(a one-value list fixes it)")
            else:
                valid = (*TRAINING, REPEATS)
                ck.add(where, f"unknown key{hint(key, valid, 'training')}; valid: {', '.join(valid)}")
            continue
        msg = hp.problem(v)
        if msg:
            ck.add(where, msg)
            continue
        out[key] = normalise(hp, v)
    return out


def parse_repeats(ck: Checker, value: Any) -> int:
    """``training.repeats``: how many seeds each config trains per period (default 1).

    Not a hyperparameter (it is no part of a config's id, and cannot be tuned).
    """
    if not isinstance(value, dict) or REPEATS not in value:
        return 1
    k = value[REPEATS]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_REPEATS:
        ck.add(f"training.{REPEATS}", f"expected an integer from 1 to {MAX_REPEATS} (seeds per config and period), "
                                      f"got {show(k)}")
        return 1
    return k


def normalise(hp: HParam, v: Any) -> Any:
    """JSON 64.0 for an integer parameter becomes 64, so ids and models agree."""
    if hp.kind == "int" and isinstance(v, float):
        return int(v)
    if hp.name == "quantiles":
        return [float(q) for q in v]
    return v
