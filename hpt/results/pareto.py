"""The quality/cost front: the configs no other config beats on both the ranking metric and a cost column."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from hpt.baselines import baseline_mask
from hpt.errors import InputError, did_you_mean
from hpt.results.rank import Ranking, fidelities
from hpt.rows import TEXT_COLUMNS, is_param
from hpt.trial import Status

__all__ = ["Front", "pareto_front"]


@dataclass(frozen=True)
class Front:
    """The configs of one ranking on the front of (mean metric, `column`), by `column`, lowest first.

    `table` has config_id, mean (the ranking's), the column's value (the median over the
    config's ok trials: n_params is the same in every trial, infer_ms is measured per trial)
    and the parameters (`params`: the tuned ones, after the architecture where the location holds several
    families). `considered` counts the complete configs with a value of the column;
    `left_out` the ranked configs that are partial or have none.
    """

    column: str
    metric: str
    fidelity: str
    params: list[str]
    table: pd.DataFrame
    considered: int
    left_out: int


def pareto_front(rows: pd.DataFrame, ranking: Ranking, column: str) -> Front:
    """The configs of `ranking` that no other config beats on both its mean metric and `column` (lower is better).

    A config is off the front when another has a mean and a column value no higher and is
    lower on at least one; configs equal on both stay on it together. Only complete
    configs (every period run) are considered: a partial config's mean is over fewer periods.
    `rows` are the rows the ranking was made from (baseline rows are left out).
    """
    rows = rows[~baseline_mask(rows).to_numpy()]
    numeric = [c for c in rows.columns if c not in TEXT_COLUMNS and not is_param(c)
               and pd.api.types.is_numeric_dtype(rows[c]) and rows[c].notna().any()]
    if column not in numeric:
        raise InputError(f'--pareto: no column "{column}" in these results{did_you_mean(column, numeric)}; '
                         f"available: {', '.join(numeric) or 'none'}")
    table = ranking.table
    shown = [*(["architecture"] if "architecture" in table else []), *ranking.params]  # the family: several at one location
    empty = pd.DataFrame(columns=["config_id", "mean", column, *shown])
    if table.empty:
        return Front(column, ranking.metric, ranking.fidelity, shown, empty, 0, 0)
    ok = rows[(fidelities(rows) == ranking.fidelity).to_numpy() & (rows["status"].astype(str) == Status.OK.value)]
    cost = pd.to_numeric(ok[column], errors="coerce").groupby(ok["config_id"].astype(str)).median()
    if (cost.dropna() % 1 == 0).all():  # a count (n_params) stays one: 689, not 689.0
        cost = cost.astype("Int64")
    t = table[~table["partial"].astype(bool)][["config_id", "mean", *shown]].copy()
    t[column] = cost.reindex(t["config_id"]).to_numpy()
    t = t[t[column].notna()]
    considered = len(t)
    t = t.sort_values([column, "mean", "config_id"], kind="stable")
    keep = []
    best_below = math.inf  # the lowest mean among configs with a strictly lower column value
    for _, group in t.groupby(column, sort=True):
        lowest = float(group["mean"].min())
        keep += list(group.index[(group["mean"] == lowest) & (lowest < best_below)])
        best_below = min(best_below, lowest)
    front = t.loc[keep, ["config_id", "mean", column, *shown]].reset_index(drop=True)
    return Front(column, ranking.metric, ranking.fidelity, shown, front, considered,
                 len(table) - considered)
