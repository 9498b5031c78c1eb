"""Parameter trends: the metric per value of each tuned parameter, over the ok trials (pruned ones counted apart)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hpt.results.rank import select
from hpt.rows import all_numbers, param_column, plain
from hpt.trial import Status

__all__ = ["parameter_trends"]

_MAX_TREND_VALUES = 12  # a numeric parameter with more distinct values (random search) is shown in bins


def parameter_trends(frame: pd.DataFrame, metric: str, params: Sequence[str]) -> dict[str, pd.DataFrame]:
    """For each parameter with two or more values: the metric per value over the ok rows.

    One table per parameter with columns value, median, mean, best, trials, configs,
    pruned; numeric values in increasing order (many distinct values, or a value per config
    as a distribution's draws give, are put in bins), others from the best median down.
    Only completed (ok) trials give the statistics; ``pruned`` counts the trials early stopping stopped at
    each value, which the statistics leave out (they favour the values that survived).
    """
    status = frame["status"].astype(str)
    ok_mask = (status == Status.OK.value) & frame[metric].notna()
    both = select(frame, ok_mask | (status == Status.PRUNED.value))
    is_ok = ok_mask[both.index]
    trends: dict[str, pd.DataFrame] = {}
    for p in params:
        column = param_column(p)
        if column not in both:
            continue
        col = both[column]
        present = col.notna()
        if col[present & is_ok].nunique() < 2:
            continue
        values = col[present]
        distinct = values.unique()  # once: each pass over 100,000 values as objects hashes every one
        numeric = all_numbers(distinct)
        drawn = numeric and len(distinct) > 4 and _one_config_each(values, both.loc[values.index, "config_id"])
        if numeric and (len(distinct) > _MAX_TREND_VALUES or drawn):
            # many values, or a value per config (a continuous distribution's draws): ranges, about 3 configs a bin
            key = _bins(values.astype(float), n=min(8, max(2, len(distinct) // 3)))
        elif numeric:
            key = values.astype(float)
        else:
            key = values.astype(str)
        every = pd.Series(1, index=key.index).groupby(key.to_numpy(), sort=numeric, observed=True).size().index
        ok_key = key[is_ok[key.index]]
        ok_rows = both.loc[ok_key.index, [metric, "config_id"]]
        g = ok_rows.groupby(ok_key.to_numpy(), sort=numeric, observed=True)
        t = pd.DataFrame({"median": g[metric].median(), "mean": g[metric].mean(), "best": g[metric].min(),
                          "trials": g[metric].size(), "configs": g["config_id"].nunique()}).reindex(every)
        t[["trials", "configs"]] = t[["trials", "configs"]].fillna(0).astype(int)  # a value only pruned trials had
        pruned_key = key[~is_ok[key.index]]
        counts = pd.Series(1, index=pruned_key.index).groupby(pruned_key.to_numpy(), observed=True).sum()
        t["pruned"] = counts.reindex(t.index).fillna(0).astype(int).to_numpy()
        t.index.name = "value"
        t = t.reset_index()
        if numeric and len(distinct) <= _MAX_TREND_VALUES:
            originals = {float(v): v for v in distinct}
            t["value"] = [plain(originals.get(v, v)) for v in t["value"]]
        elif numeric:
            t["value"] = t["value"].astype(str)
        else:
            t = t.sort_values("median", kind="stable").reset_index(drop=True)
        trends[p] = t
    return trends


def _one_config_each(values: pd.Series, configs: pd.Series) -> bool:
    """Whether no two configs share a value (random or tpe search over a distribution)."""
    return bool(configs.groupby(values.to_numpy()).nunique().max() <= 1)


def _bins(values: pd.Series, n: int = 8) -> pd.Series:
    """`n` ranges of equal width, on a log scale for values spread that way (a learning rate's draws: positive, over
    more than 20x, their median nearer their geometric than their arithmetic mean; a dropout's are not)."""
    lo, hi = float(values.min()), float(values.max())
    if lo > 0 and hi / lo > 20 and _spread_in_logs(values.to_numpy(dtype=float)):
        edges = np.geomspace(lo, hi, n + 1)
    else:
        edges = np.linspace(lo, hi, n + 1)
    edges = np.unique(edges)
    labels = [f"{a:.3g}..{b:.3g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return pd.Series(pd.cut(values, edges, labels=labels, include_lowest=True, duplicates="drop"), index=values.index)


def _spread_in_logs(x: np.ndarray) -> bool:
    median = float(np.median(x))
    return abs(np.log(median) - float(np.mean(np.log(x)))) < abs(np.log(median) - np.log(float(np.mean(x))))
