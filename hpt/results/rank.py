"""Configs ranked across periods, each fidelity apart, and the one definition of the best config."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from hpt.baselines import baseline_mask
from hpt.fidelity import fidelity_named
from hpt.progress import plural
from hpt.rows import DEFAULT_FIDELITY, param_columns, param_name, plain
from hpt.trial import WAITS, Status

__all__ = [
    "PRUNED_STATS",
    "STATS",
    "BestConfig",
    "Planned",
    "Ranking",
    "best_config",
    "empty_ranking",
    "fidelities",
    "fidelity_order",
    "main_fidelity",
    "rank_fidelities",
    "rank_fidelity",
    "select",
    "why_no_best",
]

Planned = Mapping[str, Collection[str]]
"""The periods (labels, ``2013-01-01..2013-03-01``) the runs meant each config of a fidelity to run, by fidelity."""

STATS = ("mean", "median", "worst", "std", "seed_std", "seeds", "periods_run", "periods_won", "ranks", "partial",
         "finalist")
"""The columns of a ranking's table after config_id, before the parameters."""
PRUNED_STATS = ("periods_pruned", "periods_run", "epochs", "data_share", "mean_so_far", "dropped")
RACED = "dropped after "
"""How the error of the trials of a config that racing (``search.race``) dropped begins."""
"""The columns of a ranking's pruned table after config_id, before the parameters."""


@dataclass(frozen=True)
class BestConfig:
    """The config with the lowest mean metric among those of one fidelity that ran every period."""

    config_id: str
    params: dict[str, Any]  # the tuned parameters, by name (those the config has a value for)
    mean: float
    periods_run: int  # every period of its fidelity's ranking
    periods_won: int
    fidelity: str
    architecture: str = ""  # where the ranking holds several families (one location, several specs); else ""

    @property
    def named(self) -> str:
        """Its id, with its family where the ranking holds several: ``8d3622a0a553 (nhits)``."""
        return f"{self.config_id} ({self.architecture})" if self.architecture else self.config_id


@dataclass(frozen=True)
class Ranking:
    """Configs of one fidelity ranked across periods.

    `table` has one row per config: config_id, mean, median, worst, std (across periods),
    seed_std (across seeds within a period, pooled over its periods; NaN with one seed per
    period), seeds (the fewest ok seeds any of its periods has), periods_run, periods_won,
    ranks (one per period, None where the config has no ok value), partial, then one column
    per parameter, by name. Configs that ran every period come first, then by mean (lower
    is better). `values` is configs x periods of the metric, each the mean over the
    period's seeds (the config's ok rows of that period: ``training.repeats``).

    Configs that early stopping stopped in any period are not in `table`: `pruned` lists
    them apart (config_id, periods_pruned, periods_run, epochs: the most any of its pruned
    trials ran, mean_so_far: the mean metric of its trials up to where they stopped, dropped:
    why racing dropped it, or "", then the parameters), so one is never ranked above a config that completed every period.
    """

    fidelity: str
    metric: str
    periods: list[str]
    params: list[str]
    table: pd.DataFrame
    values: pd.DataFrame
    trials: int  # ok trials with a value of the metric
    pruned: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["config_id", *PRUNED_STATS]))
    waiting: int = 0  # of the configs in `pruned`, those with a trial that waits at asha's first rung (its row says)

    @cached_property
    def best(self) -> BestConfig | None:
        """The config with the lowest mean among those that ran every period; a partial config is never crowned."""
        complete = self.table[~self.table["partial"].astype(bool)]
        if complete.empty:
            return None
        row = complete.iloc[0]
        params = {p: plain(row[p]) for p in self.params}
        return BestConfig(config_id=str(row["config_id"]), params={p: v for p, v in params.items() if v is not None},
                          mean=float(row["mean"]), periods_run=int(row["periods_run"]),
                          periods_won=int(row["periods_won"]), fidelity=self.fidelity,
                          architecture=str(row["architecture"]) if "architecture" in row else "")

    @property
    def seeds_measured(self) -> bool:
        """Some config has two or more seeds in a period (``training.repeats``): the seed spread is known."""
        return bool(len(self.table)) and bool(self.table["seed_std"].notna().any())

    def why_no_best(self) -> str:
        """Why no config is crowned, in the words ``hpt best`` and the end of a run use; "" when one is."""
        if self.best is not None:
            return ""
        if self.table.empty and len(self.pruned):  # ok trials of such a config too: "no ok trial" would be wrong
            n = len(self.pruned)
            who = "it waits" if n == 1 else "they all wait" if self.waiting == n else \
                f"{self.waiting} of them {'waits' if self.waiting == 1 else 'wait'}"
            waits = (f"; {who} at the first rung for other trials to get there, which a run that did not finish goes on "
                     "with when run again") if self.waiting else ""
            return (f"no config is ranked: {plural(n, 'config')} {'has' if n == 1 else 'have'} a period stopped early "
                    f"(pruned{waits}), and a config with a stopped period is never ranked")
        if self.table.empty:
            return f"no trial finished ok with a {self.metric} value"
        lead = self.table.iloc[0]
        return (f"no config has run all {len(self.periods)} periods yet, so none is crowned best "
                f"(leading: {lead['config_id']} with {plural(int(lead['periods_run']), 'period')})")


def empty_ranking(fidelity: str, metric: str) -> Ranking:
    """A ranking of no configs."""
    return Ranking(fidelity, metric, [], [], pd.DataFrame(columns=["config_id", *STATS]), pd.DataFrame(), 0)


def fidelities(frame: pd.DataFrame) -> pd.Series:
    """The fidelity of each row (``full`` where the row has none)."""
    if "fidelity" not in frame:
        return pd.Series(DEFAULT_FIDELITY, index=frame.index, dtype=object)
    return frame["fidelity"].fillna(DEFAULT_FIDELITY).astype(str)


def fidelity_order(values: Iterable[str]) -> list[str]:
    """Fidelities as they are shown and chosen from: ``full`` first, then the others by name, the data shares of
    one by their share, largest first (data-1/3 before data-1/27, which sort the other way as text)."""
    distinct = set(values)

    def key(name: str) -> tuple[str, float]:
        f = fidelity_named(name)
        return (name if f.share == 1 else name[:name.rfind("-")], -f.share)

    return [DEFAULT_FIDELITY] * (DEFAULT_FIDELITY in distinct) + sorted(distinct - {DEFAULT_FIDELITY}, key=key)


def select(frame: pd.DataFrame, mask: Any) -> pd.DataFrame:
    """The rows of `frame` where the boolean `mask` holds; `frame` itself when it holds for all
    (a copy of 100,000 rows costs tens of milliseconds, and most selections keep every row). Read only."""
    keep = np.asarray(mask, dtype=bool)
    return frame if keep.all() else frame[keep]


def _ok(frame: pd.DataFrame, metric: str) -> pd.Series:
    return (frame["status"].astype(str) == Status.OK.value) & frame[metric].notna()


def _ranks_anything(frame: pd.DataFrame, metric: str) -> bool:
    return not frame.empty and metric in frame and "status" in frame


def _trials(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of trials: baselines are never ranked."""
    mask = baseline_mask(frame)
    return select(frame, ~mask.to_numpy())


def main_fidelity(frame: pd.DataFrame, metric: str) -> str:
    """The fidelity a decision rests on: ``full`` when it has ok rows, else the first (by name) that has."""
    frame = _trials(frame)
    if not _ranks_anything(frame, metric):
        return DEFAULT_FIDELITY
    ranked = fidelity_order(fidelities(frame)[_ok(frame, metric)].unique())
    return ranked[0] if ranked else DEFAULT_FIDELITY


def _period_labels(frame: pd.DataFrame) -> pd.Series:
    return frame["period_start"].astype(str) + ".." + frame["period_end"].astype(str)


def rank_fidelity(frame: pd.DataFrame, metric: str, fidelity: str, planned: Collection[str] = ()) -> Ranking:
    """The configs of the rows of one fidelity ranked by their mean `metric` over the periods (lower is better).

    The periods are `planned` (the spec's: what every config is meant to run) and any other
    period the rows have; a config without an ok value in one of them is partial, never
    best. This is where "complete" is decided. Baseline rows (:mod:`hpt.baselines`) are
    left out: they are what the configs are compared with.
    """
    frame = _trials(frame)
    if not _ranks_anything(frame, metric):
        return empty_ranking(fidelity, metric)
    mine = select(frame, fidelities(frame) == fidelity)
    stopped = mine["status"].astype(str) == Status.PRUNED.value
    pruned_ids = set(mine.loc[stopped, "config_id"].astype(str))
    in_pruned = mine["config_id"].astype(str).isin(pruned_ids)
    pruned = _pruned_table(mine[in_pruned], metric)
    errors = mine.loc[stopped, "error"].fillna("").astype(str) if "error" in mine else pd.Series("", index=mine.index)
    waiting = mine.loc[stopped, "config_id"].astype(str)[errors.str.contains(WAITS, regex=False)].nunique()
    ok = select(mine, _ok(mine, metric) & ~in_pruned)
    if ok.empty:
        return dataclasses.replace(empty_ranking(fidelity, metric), pruned=pruned, waiting=waiting)
    cells = ok.groupby([ok["config_id"].astype(str), _period_labels(ok).rename("period")], sort=False)[metric]
    per = cells.mean()
    values = per.unstack("period")
    periods = sorted(set(values.columns) | set(planned))
    values = values.reindex(columns=periods)  # a planned period no config has run yet is a column of NaN
    values.columns.name = None
    ranks = values.rank(axis=0, method="min")
    arr = ranks.to_numpy()
    table = pd.DataFrame({
        "config_id": values.index,
        "mean": values.mean(axis=1).to_numpy(),
        "median": values.median(axis=1).to_numpy(),
        "worst": values.max(axis=1).to_numpy(),
        "std": values.std(axis=1, ddof=0).to_numpy(),
        **_seed_spread(cells, values.index),
        "periods_run": values.notna().sum(axis=1).to_numpy(),
        "periods_won": (arr == 1).sum(axis=1),
        "ranks": _rank_lists(arr),
    })
    table["partial"] = table["periods_run"] < len(periods)
    tagged = ok[pd.to_numeric(ok["finalist"], errors="coerce").fillna(0) > 0] if "finalist" in ok else ok.iloc[:0]
    table["finalist"] = table["config_id"].isin(set(tagged["config_id"].astype(str)))  # completed by search.finalists
    columns = sorted(c for c in param_columns(ok.columns) if ok[c].notna().any())
    params = [param_name(c) for c in columns]
    if columns:
        firsts = ok.groupby(ok["config_id"].astype(str), sort=False)[columns].first()
        for p, c in zip(params, columns, strict=True):
            table[p] = firsts[c].reindex(values.index).to_numpy()
    if "architecture" in ok:  # several families tuned into one location: say which config is which
        archs = ok.groupby(ok["config_id"].astype(str), sort=False)["architecture"].first().reindex(values.index)
        if archs.nunique() > 1:
            table["architecture"] = archs.astype(str).to_numpy()
    table = table.sort_values(["partial", "mean", "config_id"], kind="stable").reset_index(drop=True)
    return Ranking(fidelity, metric, periods, params, table, values.loc[table["config_id"]], len(ok), pruned, waiting)


def _rank_lists(ranks: np.ndarray) -> list[list[int | None]]:
    """Each config's ranks (whole numbers, NaN where it has no value) as a list of ints, None for NaN: made by
    numpy, and only the NaN put in one by one (50,000 configs' lists in a blink)."""
    missing = np.isnan(ranks)
    lists: list[list[int | None]] = np.where(missing, 0, ranks).astype(np.int64).tolist()
    for i, j in zip(*np.nonzero(missing), strict=True):
        lists[i][j] = None
    return lists


def _pruned_table(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One line per config with a pruned trial: how many periods were stopped, how far, its metric so far."""
    if rows.empty:
        return pd.DataFrame(columns=["config_id", *PRUNED_STATS])
    status = rows["status"].astype(str)
    counted = rows[status.isin([Status.OK.value, Status.PRUNED.value])]
    key = counted["config_id"].astype(str)
    stopped = counted["status"].astype(str) == Status.PRUNED.value
    epochs = counted["epochs"] if "epochs" in counted else pd.Series(float("nan"), index=counted.index)
    errors = counted["error"].fillna("").astype(str) if "error" in counted else pd.Series("", index=counted.index)
    shares = pd.to_numeric(counted["data_share"], errors="coerce") if "data_share" in counted else \
        pd.Series(float("nan"), index=counted.index)  # early stopping on data: the share a config was stopped at
    g = counted.groupby(key, sort=False)
    table = pd.DataFrame({
        "periods_pruned": stopped.groupby(key, sort=False).sum().astype(int),
        "periods_run": g.size(),
        "epochs": pd.to_numeric(epochs, errors="coerce").where(stopped).groupby(key, sort=False).max().astype("Int64"),
        "data_share": shares.where(stopped & (shares < 1)).groupby(key, sort=False).max(),
        "mean_so_far": pd.to_numeric(counted[metric], errors="coerce").groupby(key, sort=False).mean(),
        "dropped": errors.where(stopped & errors.str.startswith(RACED), "").groupby(key, sort=False).max(),
    })
    table.index.name = "config_id"
    table = table.reset_index()
    params = sorted(c for c in param_columns(counted.columns) if counted[c].notna().any())
    if params:
        firsts = g[params].first()
        for c in params:
            table[param_name(c)] = firsts[c].reindex(table["config_id"]).to_numpy()
    return table.sort_values(["epochs", "mean_so_far", "config_id"], ascending=[False, True, True],
                             kind="stable").reset_index(drop=True)


def _seed_spread(cells: Any, configs: pd.Index) -> dict[str, Any]:
    """Per config: the std across seeds within a period, pooled over its periods, and its fewest seeds in a period."""
    var = cells.var(ddof=1)  # NaN for a period with one seed
    count = cells.size()
    by_config = var.groupby(level=0, sort=False)
    pooled = np.sqrt(by_config.mean()).reindex(configs)  # mean skips periods with one seed
    fewest = count.groupby(level=0, sort=False).min().reindex(configs)
    return {"seed_std": pooled.to_numpy(dtype=float), "seeds": fewest.to_numpy(dtype=int)}


def rank_fidelities(frame: pd.DataFrame, metric: str, planned: Planned | None = None) -> dict[str, Ranking]:
    """One ranking per fidelity the rows have (``full`` first, then by name): fidelities are never mixed.

    `planned` gives each fidelity's periods as the runs meant them (see :func:`rank_fidelity`).
    """
    if frame.empty:
        return {}
    planned = planned or {}
    return {f: rank_fidelity(frame, metric, f, planned.get(f, ())) for f in fidelity_order(fidelities(frame).unique())}


def best_config(frame: pd.DataFrame, metric: str, fidelity: str | None = None,
                planned: Planned | None = None) -> BestConfig | None:
    """The best config of trial rows (see :func:`hpt.rows.rows_frame` for row dicts): THE definition of best.

    The lowest mean `metric` among the configs of `fidelity` (default: :func:`main_fidelity`)
    that ran every period: every period of `planned` for that fidelity (the spec's) and every
    period the rows have; None when no config did. `hpt results`, `hpt best`, `hpt final`,
    the end of a run and `hpt auto` all name this one; :func:`why_no_best` says why there is none.
    """
    fidelity = fidelity or main_fidelity(frame, metric)
    return rank_fidelity(frame, metric, fidelity, (planned or {}).get(fidelity, ())).best


def why_no_best(frame: pd.DataFrame, metric: str, fidelity: str | None = None, planned: Planned | None = None) -> str:
    """Why :func:`best_config` of the same arguments is None, in one line; "" when it is not."""
    fidelity = fidelity or main_fidelity(frame, metric)
    return rank_fidelity(frame, metric, fidelity, (planned or {}).get(fidelity, ())).why_no_best()
