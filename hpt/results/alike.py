"""Configs that look alike in a ranking: the same values of the parameters shown, and yet other configs.

A config id is made of the architecture, the data and every hyperparameter, the spec's
untuned ones (``training``, one-value ``parameters``) included. So where runs of specs that
differ only there wrote to one location (a spec edited from 15 to 30 epochs and run again into
its folder), the ranking shows configs whose tuned values are the same. The note says which
settings tell them apart, read from the specs the run records (``runs/``) hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from hpt.progress import plural
from hpt.results.rank import Ranking

__all__ = ["alike_note"]

IDENTITY = ("architecture", "data", "training", "parameters")
"""The spec keys a config id is made of (hpt.search.config_id)."""

SHOWN = 3  # settings named in the note


def alike_note(ranking: Ranking, trials: pd.DataFrame, specs: Mapping[str, Mapping[str, Any]]) -> str | None:
    """A note on the configs of `ranking` that share the values of every column it shows (the architecture and the
    tuned parameters) with another config, naming the spec settings that differ between them; None when there are
    none. `trials`: the rows ranked (each config's latest row names its run); `specs`: each run's spec by run id."""
    table = ranking.table
    shown = [c for c in ("architecture", *ranking.params) if c in table]
    if len(table) < 2:
        return None
    alike = table[table.duplicated(subset=shown, keep=False).to_numpy()] if shown else table
    if alike.empty:
        return None
    keys = alike[shown].astype(str).agg("|".join, axis=1) if shown else pd.Series("", index=alike.index)
    ids = alike["config_id"].astype(str)
    runs = trials.groupby(trials["config_id"].astype(str), sort=False)["run_id"].last().astype(str) \
        if "run_id" in trials else pd.Series(dtype=str)
    settings = {cid: _flat({k: v for k, v in specs.get(runs.get(cid, ""), {}).items() if k in IDENTITY},
                           skip={f"parameters.{p}" for p in ranking.params})
                for cid in ids}
    differing: dict[str, None] = {}
    for _, group in ids.groupby(keys):
        known = [settings[cid] for cid in group if settings[cid]]
        if len(known) < 2:
            continue
        for path in dict.fromkeys(p for s in known for p in s):
            if len({s.get(path, "(not set)") for s in known}) > 1:
                differing[path] = None
    first = alike[(keys == keys.iloc[0]).to_numpy()]
    values = ", ".join(f"{c}={_text(first[c].iloc[0])}" for c in shown)
    head = (f"{plural(len(alike), 'config')} share their values in the columns shown with another config "
            f"(e.g. {' and '.join(first['config_id'].astype(str).head(2))}{': ' + values if values else ''})")
    if not differing:
        return f"{head}: their specs differ outside the tuned parameters (the run records in runs/ do not say where)"
    said = []
    for path in list(differing)[:SHOWN]:
        by_value: dict[str, list[str]] = {}
        for cid in ids:
            if settings[cid]:
                by_value.setdefault(settings[cid].get(path, "(not set)"), []).append(cid)
        said.append(f"{path} ({'; '.join(f'{value}: {_first(cids)}' for value, cids in by_value.items())})")
    more = f", and {plural(len(differing) - SHOWN, 'more setting')}" if len(differing) > SHOWN else ""
    return f"{head}: specs that differ in {', '.join(said)}{more} wrote here"


def _text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _first(cids: list[str]) -> str:
    return cids[0] if len(cids) == 1 else f"{cids[0]} and {len(cids) - 1} more"


def _flat(obj: Any, prefix: str = "", skip: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """A spec's settings as dotted paths to their JSON text (lists whole), leaving out the paths in `skip`."""
    if prefix in skip:
        return {}
    if isinstance(obj, dict) and obj:
        out: dict[str, str] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k), skip))
        return out
    return {prefix: json.dumps(obj, sort_keys=True)} if prefix else {}
