"""``search.warm_start``: rows of earlier runs (other results locations) that seed this search.

Only ``ok`` rows that fit the current search are used: the same architecture and fidelity,
a value of the objective, a value inside the current space for every tuned parameter, and
the same data and fixed hyperparameters (checked by recomputing the row's config id from
its parameters on top of this spec's fixed values: any difference in data file, columns or
a fixed value gives another id). The log says how many rows were used and, by reason, how
many were ignored. Warm-start rows are only read: nothing is written to those locations,
and they are never copied to this run's location.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpt.baselines import without_baselines
from hpt.errors import InputError
from hpt.fidelity import fidelity_named
from hpt.progress import plural
from hpt.rows import is_number, params_of
from hpt.search import config_id
from hpt.sinks import open_sink
from hpt.spec import Axis, Distribution, Spec
from hpt.store import ResultStore
from hpt.trial import Status

__all__ = ["WarmStart", "fits", "in_space", "load_warm_start"]


@dataclass
class WarmStart:
    """The warm-start rows that fit this spec's search, and where to read their curves."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    stores: dict[str, ResultStore] = field(default_factory=dict)  # trial id -> the store it came from

    def curves(self, trial_ids: Collection[str]) -> dict[str, str]:
        """Their learning curves, read from the locations they came from."""
        by_store: dict[int, tuple[ResultStore, list[str]]] = {}
        for tid in trial_ids:
            store = self.stores.get(tid)
            if store is not None:
                by_store.setdefault(id(store), (store, []))[1].append(tid)
        out: dict[str, str] = {}
        for store, ids in by_store.values():
            out.update(store.curves(ids))
        return out


def in_space(value: Any, axis: Axis) -> bool:
    """Whether `value` is one of a list axis's values or inside a distribution."""
    if isinstance(axis, Distribution):
        if not is_number(value) or isinstance(value, bool) or not math.isfinite(float(value)):
            return False
        if axis.kind == "int" and float(value) != int(float(value)):
            return False
        return axis.low <= float(value) <= axis.high
    return any(type(value) is type(v) and value == v or (is_number(value) and is_number(v) and not isinstance(v, bool)
                                                          and not isinstance(value, bool) and value == v) for v in axis)


def fits(row: Mapping[str, Any], spec: Spec, value: bool = True) -> str:
    """Why a row does not fit `spec`'s search ("" when it fits); `value`: it must have the objective."""
    fidelity = fidelity_named(row.get("fidelity"))
    if fidelity != spec.fidelity:
        return fidelity.rows
    if row.get("architecture") != spec.architecture:
        return f"architecture {row.get('architecture')}"
    objective = row.get(spec.objective)
    if value and not (is_number(objective) and math.isfinite(float(objective))):  # type: ignore[arg-type]
        return f"no {spec.objective} value"
    params = params_of(row)
    for name, axis in spec.parameters.items():
        if name not in params:
            return f"no value for {name}"
        if not in_space(params[name], axis):
            return f"{name} outside this search space"
    if config_id(spec, {**spec.base_params, **params}) != row.get("config_id"):
        return "other data or fixed hyperparameters"
    return ""


def _same_location(a: str, b: str) -> bool:
    if "://" in a or "://" in b:
        return a.rstrip("/") == b.rstrip("/")
    return os.path.realpath(a) == os.path.realpath(b)


def load_warm_start(spec: Spec, say: Callable[[str], None], own: str | None = None) -> WarmStart:
    """The rows of ``search.warm_start`` that fit `spec`; says how many were used and ignored, and why."""
    warm = WarmStart()
    for i, uri in enumerate(spec.search.warm_start):
        where = f"search.warm_start[{i}]"
        if own is not None and _same_location(uri, own):
            raise InputError(f"{spec.source}: {where}: {uri} is this run's own results location "
                             "(its rows are used anyway)")
        store = ResultStore(open_sink(uri))
        rows = store.rows()
        used, ignored = 0, Counter[str]()
        for row in without_baselines(rows).values():
            if row.get("status") != Status.OK.value:
                ignored[f"not ok ({row.get('status')})"] += 1
                continue
            why = fits(row, spec)
            if why:
                ignored[why] += 1
                continue
            used += 1
            copy = dict(row)
            warm.rows.append(copy)
            warm.stores[str(row["trial_id"])] = store
        reasons = ", ".join(f"{n} {why}" for why, n in ignored.most_common())
        say(f"warm start from {uri}: {plural(used, 'row')} used" + (
            f", {plural(sum(ignored.values()), 'row')} ignored: {reasons}" if ignored else "")
            + ("" if rows else " (no rows there)"))
    return warm
