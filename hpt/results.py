"""Read a results location into a DataFrame and rank its configs across periods."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

from hpt.errors import InputError
from hpt.sinks import open_sink
from hpt.store import RESULTS_CSV, ResultStore
from hpt.trial import Status

__all__ = ["best_config", "load_results", "rank_configs"]


def load_results(uri: str) -> pd.DataFrame:
    """Every trial row at a results location; from the row objects when results.csv is missing or behind."""
    sink = open_sink(uri)
    store = ResultStore(sink)
    csv = sink.read(RESULTS_CSV)
    frame = pd.read_csv(io.BytesIO(csv)) if csv else pd.DataFrame()
    rows = store.rows()
    if not rows and frame.empty:
        raise InputError(f"no results at {uri} (no results.csv and no rows/)")
    if rows and (frame.empty or set(frame["trial_id"]) != set(rows)):
        frame = pd.DataFrame(list(rows.values()))
    return frame


def _params(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith("param_")]


def rank_configs(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    """One line per config over its ok rows: mean, median, worst, std, periods run and won.

    Sorted with configs that ran every period first, then by mean objective.
    """
    ok = frame[frame["status"] == Status.OK.value]
    if ok.empty or objective not in ok:
        return pd.DataFrame()
    ok = ok.assign(_period=ok["period_start"].astype(str) + ".." + ok["period_end"].astype(str))
    n_periods = ok["_period"].nunique()
    ok = ok.assign(_rank=ok.groupby("_period")[objective].rank(method="min"))
    params = _params(ok)
    grouped = ok.groupby("config_id", sort=False)
    table = pd.DataFrame({
        "mean": grouped[objective].mean(),
        "median": grouped[objective].median(),
        "worst": grouped[objective].max(),
        "std": grouped[objective].std(ddof=0),
        "periods_run": grouped["_period"].nunique(),
        "periods_won": grouped["_rank"].apply(lambda r: int((r == 1).sum())),
        "ranks": grouped["_rank"].apply(lambda r: [int(x) for x in r]),
    })
    for p in params:
        table[p.removeprefix("param_")] = grouped[p].first()
    table["partial"] = table["periods_run"] < n_periods
    table = table.sort_values(["partial", "mean"], kind="stable").reset_index()
    return table


def best_config(rows: Iterable[dict[str, Any]], objective: str, trial_ids: set[str] | None = None) -> dict[str, Any] | None:
    """The config with the lowest mean objective among those that ran every period."""
    selected = [r for r in rows if trial_ids is None or r.get("trial_id") in trial_ids]
    if not selected:
        return None
    table = rank_configs(pd.DataFrame(selected), objective)
    if table.empty:
        return None
    complete = table[~table["partial"]]
    top = (complete if not complete.empty else table).iloc[0]
    params = {p.removeprefix("param_"): _plain(top[p.removeprefix("param_")])
              for p in _params(pd.DataFrame(selected))}
    return {"config_id": top["config_id"], "params": params, "mean": float(top["mean"]),
            "periods": int(top["periods_run"]), "partial": bool(top["partial"])}


def _plain(v: Any) -> Any:
    """numpy scalars -> Python values, so they print and serialise as JSON."""
    try:
        return json.loads(json.dumps(v.item() if hasattr(v, "item") else v))
    except (TypeError, ValueError):
        return str(v)
