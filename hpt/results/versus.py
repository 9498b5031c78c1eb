"""Each ranked config against the better naive baseline, on the same periods and validation windows.

A trial's rows and the baseline rows scored for it carry the same ``baseline_key``
(:func:`hpt.search.baseline_key`: the data, the window setting, the season and quantiles);
a config is compared with the baseline rows of its fidelity and key, period by period, so
runs of other targets or horizons at one location never stand in. Rows from before the key
(hpt 0.2 and earlier) fall back to the window setting: baseline rows carry it as
``param_lookback``, ``param_horizon`` and ``param_validation`` where the spec tunes them.
Of the two baselines, the one with the lower mean over the config's periods is "the better
baseline".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hpt.baselines import LABELS, WINDOW_KEYS
from hpt.progress import plural
from hpt.results.rank import Ranking, fidelities
from hpt.rows import is_number, param_column, plain
from hpt.search import BASELINE_KEY
from hpt.trial import Status

__all__ = ["Judgement", "VsBaseline", "compare", "config_keys", "config_judgement", "error_metrics", "judge",
           "judge_best", "mixed_settings", "percent", "relative_change", "versus_baselines"]

ERRORS = ("mse", "mae", "rmse", "pinball")
"""The forecast errors a verdict against a baseline looks at (lower is better), with or without ``val_``."""


@dataclass(frozen=True)
class VsBaseline:
    """A config's mean metric against the better baseline's over the periods both have."""

    config_id: str
    baseline: str  # naive-last or naive-seasonal
    config_mean: float
    baseline_mean: float
    periods: int  # periods compared
    better: int  # periods where the config's value is lower than the baseline's

    @property
    def change(self) -> float:
        """The config's mean relative to the baseline's, in percent (negative: the config is lower, better)."""
        return relative_change(self.config_mean, self.baseline_mean) * 100

    @property
    def beats(self) -> bool:
        """The config's mean is lower than the better baseline's."""
        return self.config_mean < self.baseline_mean

    @property
    def label(self) -> str:
        return LABELS.get(self.baseline, self.baseline)

    def text(self, metric: str = "") -> str:
        """E.g. ``-38% vs seasonal naive, better in 3 of 3 periods`` (``... naive on val_mse, ...`` given the metric)."""
        on = f" on {metric}" if metric else ""
        return f"{percent(self.change / 100)} vs {self.label}{on}, better in {self.better} of {plural(self.periods, 'period')}"

    def short(self) -> str:
        """E.g. ``-38% seasonal 3/3``, for a table column."""
        name = "seasonal" if self.baseline == "naive-seasonal" else "last"
        return f"{percent(self.change / 100)} {name} {self.better}/{self.periods}"

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "config_mean": self.config_mean, "baseline_mean": self.baseline_mean,
                "change_pct": None if math.isinf(self.change) else round(self.change, 2), "periods": self.periods,
                "periods_better": self.better, "beats": self.beats, "text": self.text()}


@dataclass(frozen=True)
class Judgement:
    """A model against a baseline on the user's metric (the objective's), and the other reported
    errors that disagree with it: ``beats seasonal naive on mse (-34%), not on mae (+18%)``."""

    baseline: str  # as the text names it
    changes: tuple[tuple[str, float], ...]  # (metric, relative_change; negative: the model is lower), judging first

    @property
    def metric(self) -> str:
        return self.changes[0][0]

    @property
    def change(self) -> float:
        return self.changes[0][1]

    @property
    def beats(self) -> bool:
        """The model is lower than the baseline on the judging metric."""
        return self.change < 0

    @property
    def disagreeing(self) -> tuple[tuple[str, float], ...]:
        """The other metrics on which the model does the opposite of what it does on the judging one."""
        return tuple((m, c) for m, c in self.changes[1:] if (c < 0) != self.beats)

    def dissent(self) -> str:
        """E.g. ``not on mae (+18%)`` or ``though it does on mae (-3%)``; "" when every metric agrees."""
        listed = ", ".join(f"{m} ({percent(c)})" for m, c in self.disagreeing)
        if not listed:
            return ""
        return f"not on {listed}" if self.beats else f"though it does on {listed}"

    def text(self) -> str:
        """E.g. ``beats seasonal naive on mse (-34%), not on mae (+18%)``."""
        head = f"{'beats' if self.beats else 'does NOT beat'} {self.baseline} on {self.metric} ({percent(self.change)})"
        dissent = self.dissent()
        return f"{head}, {dissent}" if dissent else head


def error_metrics(names: Iterable[str]) -> list[str]:
    """The forecast errors among `names` (mse, mae, rmse, pinball, with or without ``val_``): what a
    verdict compares; coverage (best near its nominal rate), times and sizes are left out."""
    return [n for n in names if n.removeprefix("val_") in ERRORS]


def judge(metric: str, mine: Mapping[str, float], theirs: Mapping[str, float], baseline: str) -> Judgement:
    """The model's errors `mine` against a baseline's `theirs` (metric -> value, lower is better),
    judged on `metric`; the other forecast errors both have say where they disagree."""
    others = [m for m in error_metrics(mine) if m != metric and m in theirs]
    return Judgement(baseline, tuple((m, relative_change(float(mine[m]), float(theirs[m]))) for m in (metric, *others)))


def judge_best(metric: str, mine: Mapping[str, float], baselines: Mapping[str, Mapping[str, float]],
               label: str = "the better baseline ({name})") -> tuple[str, Judgement]:
    """The baseline lowest on `metric` (its name) and the model's :func:`judge`-ment against it;
    `label` names it in the text. `metric` may be an objective (``val_mae``) for errors named
    without ``val_`` (a hold-out's); one they do not have (``train_loss``) judges on the first error."""
    if metric not in mine:
        metric = metric.removeprefix("val_") if metric.removeprefix("val_") in mine else error_metrics(mine)[0]
    name = min(baselines, key=lambda n: float(baselines[n][metric]))
    return name, judge(metric, mine, baselines[name], label.format(name=name))


def config_judgement(rows: pd.DataFrame, ranking: Ranking, vs: VsBaseline, metrics: Iterable[str]) -> Judgement:
    """`vs` (a config against the better baseline on the ranking's metric) with the other forecast
    errors among `metrics`: the config's and that baseline's means over the periods both have (at
    the ranking's fidelity, the baseline's rows of the config's key, or of its window setting without one)."""
    theirs_or_mine = rows["architecture"].astype(str) == vs.baseline  # of 100,000 rows only these are taken
    if "config_id" in rows:
        theirs_or_mine |= rows["config_id"].astype(str) == vs.config_id
    at = theirs_or_mine.to_numpy() & (fidelities(rows) == ranking.fidelity).to_numpy() & \
        (rows["status"].astype(str) == Status.OK.value).to_numpy()
    rows = rows[at]
    mine = rows[rows["config_id"].astype(str) == vs.config_id] if "config_id" in rows else rows.iloc[:0]
    theirs = rows[(rows["architecture"].astype(str) == vs.baseline).to_numpy()]
    key = config_keys(mine).get(vs.config_id)
    keyed = theirs[(theirs[BASELINE_KEY].astype(str) == key).to_numpy()] if key and BASELINE_KEY in theirs else None
    if keyed is not None and len(keyed):
        theirs = keyed
    else:
        setting = _setting_of(mine, ranking.params)
        theirs = theirs[[_setting_of(theirs.iloc[[i]], WINDOW_KEYS) == setting for i in range(len(theirs))]]
    means_mine, means_theirs = {ranking.metric: vs.config_mean}, {ranking.metric: vs.baseline_mean}
    for m in error_metrics(metrics):
        if m == ranking.metric or m not in mine or m not in theirs:
            continue
        a, b = _per_period(mine, m), _per_period(theirs, m)
        both = a.index.intersection(b.index)
        if len(both):
            means_mine[m], means_theirs[m] = float(a[both].mean()), float(b[both].mean())
    return judge(ranking.metric, means_mine, means_theirs, vs.label)


def _setting_of(rows: pd.DataFrame, params: Iterable[str]) -> tuple[Any, ...]:
    """The window setting of `rows` (their first row's), None for a key not in `params`."""
    first = rows.iloc[0] if len(rows) else {}
    return tuple(_norm(first.get(param_column(k))) if k in params else None for k in WINDOW_KEYS)


def _per_period(rows: pd.DataFrame, metric: str) -> pd.Series:
    """`metric` per period, the latest row of a period winning."""
    if "finished_at" in rows:
        rows = rows.sort_values("finished_at", kind="stable", na_position="first")
    keyed = rows.assign(_period=rows["period_start"].astype(str) + ".." + rows["period_end"].astype(str))
    return keyed.dropna(subset=[metric]).groupby("_period")[metric].last().astype(float)


def relative_change(value: float, reference: float) -> float:
    """`value` against `reference` as a fraction of it: -0.38 is 38% lower (better, for an error); 0 when
    both are 0, infinite when only the reference is. The one comparison with a baseline that
    ``hpt results``, ``hpt run``'s summary and ``hpt final`` print."""
    if reference == 0:
        return 0.0 if value == 0 else math.inf
    return (value - reference) / abs(reference)


def percent(change: float | None) -> str:
    """A :func:`relative_change` as a percentage: ``-38%``, ``+0.4%`` under one percent, ``n/a`` for None."""
    if change is None:
        return "n/a"
    x = change * 100
    if math.isinf(x):
        return "+inf%"
    return f"{x:+.0f}%" if abs(x) >= 1 else f"{x:+.1f}%"


def _norm(v: Any) -> Any:
    v = plain(v)
    return float(v) if is_number(v) else (None if v is None else str(v))


def versus_baselines(rows: pd.DataFrame, ranking: Ranking, keys: Mapping[str, str] | None = None,
                     ) -> Mapping[str, VsBaseline]:
    """Each config of `ranking` against the better baseline, by config id; configs without a matching
    baseline row (results from before baselines, or another metric) are left out.

    `rows` are the baseline rows (others are ignored); `keys` each config's baseline key (:func:`config_keys` of
    the trial rows; of `rows` when not given, the trials being among them). The configs are compared in one pass
    per window setting and baseline (:func:`compare`, on arrays of every config of that
    setting), so the cost grows with the configs only through array arithmetic; a config's
    :class:`VsBaseline` is made when it is looked up (a table shows the top few).
    """
    metric = ranking.metric
    if rows.empty or ranking.table.empty or metric not in rows or "architecture" not in rows:
        return {}
    mine = rows[rows["architecture"].isin(LABELS).to_numpy() & (fidelities(rows) == ranking.fidelity).to_numpy()
                & (rows["status"].astype(str) == Status.OK.value).to_numpy() & rows[metric].notna().to_numpy()]
    if mine.empty:
        return {}
    if "finished_at" in mine:
        mine = mine.sort_values("finished_at", kind="stable", na_position="first")  # the latest row of a key wins
    # (baseline, lookup) -> period -> value; a row is found by its key and, for rows without one, its window setting
    scored: dict[tuple[str, tuple[Any, ...]], dict[str, float]] = {}
    for rec in mine.to_dict(orient="records"):
        period = f"{rec['period_start']}..{rec['period_end']}"
        for lookup in _lookups(rec):
            scored.setdefault((str(rec["architecture"]), lookup), {})[period] = float(rec[metric])
    table = ranking.table
    values = ranking.values.to_numpy(dtype=float)  # configs x periods, in table order
    ids = table["config_id"].astype(str).tolist()
    periods = list(ranking.values.columns)
    found: dict[str, tuple[Any, ...]] = {}  # config id -> VsBaseline's fields after it
    keyed = {lookup for _, lookup in scored}
    keys = config_keys(rows) if keys is None else keys
    for setting, at in _settings(table, ranking.params, [keys.get(i) for i in ids], keyed).items():
        best: tuple[np.ndarray, ...] | None = None  # name index, config mean, baseline mean, periods, better
        for i, name in enumerate(LABELS):
            base = scored.get((name, setting))
            if not base:
                continue
            got = compare(values[at], np.array([base.get(p, np.nan) for p in periods], dtype=float))
            if best is None:
                best = (np.full(len(at), i), *got)
            else:  # the better baseline: the lower mean over the config's periods (a config without any keeps the other)
                lower = (got[2] > 0) & ((best[3] == 0) | (got[1] < best[2]))
                best = tuple(np.where(lower, new, old) for new, old in zip((np.full(len(at), i), *got), best,
                                                                           strict=True))
        if best is None:
            continue
        names = list(LABELS)
        for j, k, cm, bm, n, better in zip(at.tolist(), *(a.tolist() for a in best), strict=True):  # Python numbers
            if n:
                found[ids[j]] = (names[k], cm, bm, n, better)
    return _Found(found)


class _Found(Mapping[str, VsBaseline]):
    """Config id -> :class:`VsBaseline`, each made when asked for."""

    def __init__(self, found: dict[str, tuple[Any, ...]]) -> None:
        self._found = found

    def __getitem__(self, config_id: str) -> VsBaseline:
        return VsBaseline(config_id, *self._found[config_id])

    def __contains__(self, config_id: object) -> bool:
        return config_id in self._found

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


def compare(values: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Configs (rows of `values`, configs x periods) against one baseline's value per period (NaN: not scored),
    over the periods both have: each config's mean, the baseline's mean, the periods compared and
    the periods where the config is lower."""
    shared = ~np.isnan(values) & ~np.isnan(base)
    n = shared.sum(axis=1)
    safe = np.maximum(n, 1)
    mine = np.where(shared, values, 0.0).sum(axis=1) / safe
    theirs = np.where(shared, base, 0.0).sum(axis=1) / safe
    better = (shared & (values < base)).sum(axis=1)
    return mine, theirs, n, better


def _lookups(row: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """How a baseline row is found: by its key, and by its window setting (the only way for rows without a key)."""
    setting = ("setting", *(_norm(row.get(param_column(k))) for k in WINDOW_KEYS))
    key = row.get(BASELINE_KEY)
    return [("key", str(key)), setting] if isinstance(key, str) and key else [setting]


def config_keys(trials: pd.DataFrame) -> dict[str, str]:
    """Each config's baseline key (its latest row's), by config id; configs whose rows have none are left out."""
    if BASELINE_KEY not in trials or "config_id" not in trials:
        return {}
    last = trials.groupby(trials["config_id"].astype(str), sort=False)[BASELINE_KEY].last().dropna().astype(str)
    last = last[last != ""]  # groupby's last skips missing keys; a config with none has none
    return dict(zip(last.index.tolist(), last.tolist(), strict=True))


def mixed_settings(ranking: Ranking, keys: Mapping[str, str]) -> list[str]:
    """The baseline keys of `ranking`'s configs where configs of the same tuned window setting have different ones:
    specs of another target, file or fixed horizon wrote to one location, so their metrics are not comparable
    though the parameters shown look alike; [] otherwise (one spec, or settings the tuned parameters tell apart)."""
    table = ranking.table
    if table.empty or not keys:
        return []
    ordered = pd.Series([keys.get(i) for i in table["config_id"].astype(str)], index=table.index, dtype=object)
    tuned = [k for k in WINDOW_KEYS if k in ranking.params]  # configs the table shows apart are not mixed
    per_setting = ordered.groupby([table[k] for k in tuned], dropna=False).nunique() if tuned else \
        pd.Series([ordered.nunique()])
    if not (per_setting > 1).any():
        return []
    return list(dict.fromkeys(ordered.dropna()))  # the table's order: the best config's first


def _settings(table: pd.DataFrame, params: list[str], keys_of: list[str | None] | None = None,
              keyed: set[tuple[Any, ...]] | None = None) -> dict[tuple[Any, ...], np.ndarray]:
    """The positions in `table` of the configs of each lookup (:func:`_lookups`): a config whose baseline key some
    baseline row has by that key, any other by its window setting (None for a key the search does not tune)."""
    keys = []
    for k in WINDOW_KEYS:
        if k in params:
            codes, uniques = pd.factorize(table[k], use_na_sentinel=True)
            normed = [_norm(u) for u in uniques]
            keys.append([normed[c] if c >= 0 else None for c in codes])
        else:
            keys.append([None] * len(table))
    groups: dict[tuple[Any, ...], list[int]] = {}
    for j, setting in enumerate(zip(*keys, strict=True)):
        key: tuple[Any, ...] = ("key", keys_of[j]) if keys_of and keys_of[j] else ()
        groups.setdefault(key if key in (keyed or ()) else ("setting", *setting), []).append(j)
    return {s: np.array(at, dtype=int) for s, at in groups.items()}
