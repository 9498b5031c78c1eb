"""Read a results location and decide from it: rankings across periods, paired tests, parameter trends.

:func:`load_results` reads the rows, :func:`summarise` turns them into a :class:`Summary`
(full-fidelity and screening rows ranked apart, the winner tested against the runners-up,
the objective per value of every tuned parameter, the trials that did not finish ``ok``),
and :func:`render` prints a summary as a table, CSV, JSON or Markdown.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hpt.errors import HptError, InputError, did_you_mean
from hpt.progress import plural
from hpt.sinks import Sink, open_sink
from hpt.sinks.local import LocalSink
from hpt.rows import RESULTS_CSV
from hpt.trial import Status

__all__ = [
    "ALPHA",
    "FORMATS",
    "Comparison",
    "Ranking",
    "Summary",
    "best_config",
    "best_params",
    "compare_configs",
    "default_metric",
    "filter_rows",
    "load_results",
    "parameter_trends",
    "rank_configs",
    "render",
    "summarise",
]

ALPHA = 0.05
"""The significance level of the paired tests."""

FORMATS = ("table", "csv", "json", "markdown")
_STATS = ("mean", "median", "worst", "std", "periods_run", "periods_won", "ranks", "partial")
_NOT_METRICS = {"run_id", "trial_id", "config_id", "status", "architecture", "fidelity", "period_start", "period_end",
                "device", "started_at", "finished_at", "error", "model_uri"}
_MAX_TREND_VALUES = 12  # a numeric parameter with more distinct values (random search) is shown in bins
_MAX_PROBLEMS_SHOWN = 20
_ROW_COLUMNS = ("trial_id", "config_id", "status")  # without these a table is not trial rows


# ---------------------------------------------------------------------------------------------- loading


def load_results(uri: str) -> pd.DataFrame:
    """Every trial row at a results location.

    ``results.csv`` is read, and any row object in ``rows/`` it does not have yet is added
    (the CSV is rebuilt after each trial, so it lags at most by the trial being written).
    Parameter columns keep their types: an integer stays an integer even where other
    runs' rows have no value. When there are no rows, the error says what the location holds.
    """
    sink = open_sink(uri)
    if isinstance(sink, LocalSink):
        if not sink.root.exists():
            raise InputError(f"{uri} does not exist")
        if not sink.root.is_dir():
            raise InputError(f"{uri} is a file, not a results folder (give the folder that hpt run wrote, "
                             "e.g. hpt-results/<name>)")
    found: list[str] = []  # what is there instead of rows, for the error
    rows_url = sink.url("rows/").rstrip("/") + "/"
    frame = _load_csv(sink, found)
    try:
        keys = [k for k in sink.list("rows/") if k.endswith(".json")]
    except OSError as e:
        keys = []
        found.append(f"{rows_url} cannot be read: {e.strerror or e}")
    else:
        if not keys:
            found.append("no rows/")
    if keys:
        ids = {k.removeprefix("rows/").removesuffix(".json"): k for k in keys}
        have: set[str] = set()
        if not frame.empty:
            listed = len(frame)
            frame = frame[frame["trial_id"].astype(str).isin(ids)]
            have = set(frame["trial_id"].astype(str))
            if listed and not have:
                found.append(f"{sink.url(RESULTS_CSV)} lists none of the trials in rows/")
        extra = _read_rows(sink, [k for tid, k in ids.items() if tid not in have])
        if extra:
            frame = pd.concat([frame, _rows_frame(extra)], ignore_index=True) if not frame.empty else _rows_frame(extra)
        elif not have:
            files = f"{len(keys)} .json file" + ("s" if len(keys) != 1 else "")
            found.append(f"{rows_url} holds no readable trial rows ({files})")
    if frame.empty:
        raise InputError(f"no results at {uri}: {'; '.join(found)}")
    _restore_ints(frame, sink)
    if "fidelity" not in frame:
        frame["fidelity"] = "full"
    frame["fidelity"] = frame["fidelity"].fillna("full").astype(str)
    return frame.reset_index(drop=True)


def _load_csv(sink: Sink, found: list[str]) -> pd.DataFrame:
    """results.csv's trial rows, or an empty frame with what was wrong added to `found`."""
    where = sink.url(RESULTS_CSV)
    try:
        data = sink.read(RESULTS_CSV)
    except OSError as e:
        found.append(f"{where} cannot be read: {e.strerror or e}")
        return pd.DataFrame()
    if data is None:
        found.append(f"no {RESULTS_CSV}")
        return pd.DataFrame()
    if not data.strip():
        found.append(f"{where} is empty")
        return pd.DataFrame()
    if b"\0" in data:
        found.append(f"{where} is not a text file")
        return pd.DataFrame()
    try:
        frame = _read_csv(data)
    except UnicodeDecodeError:
        found.append(f"{where} is not a text file")
        return pd.DataFrame()
    except ValueError as e:  # pandas' ParserError and EmptyDataError are ones
        found.append(f"{where} is not a CSV file: {' '.join(str(e).split())}")
        return pd.DataFrame()
    missing = next((c for c in _ROW_COLUMNS if c not in frame), None)
    if missing is not None:
        found.append(f"{where} has no trial rows (no {missing} column)")
        return pd.DataFrame()
    if frame.empty:
        found.append(f"{where} has no trial rows (only its header)")
    return frame


def _read_csv(data: bytes) -> pd.DataFrame:
    header = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    params = {c: str for c in header if c.startswith("param_")}
    text = {c: str for c in header if c in _NOT_METRICS}  # an error column that is mostly empty is still text
    frame = pd.read_csv(io.BytesIO(data), dtype={**text, **params}, low_memory=False)  # type: ignore[arg-type]
    for c in params:
        frame[c] = _typed_column(frame[c])
    return frame


def _typed_column(col: pd.Series) -> pd.Series:
    """Text from the CSV back to the JSON value it was: 8 -> int, 0.5 -> float, True -> bool."""
    values = {v: _typed(v) for v in col.dropna().unique()}
    return pd.Series([values.get(v) if isinstance(v, str) else None for v in col], index=col.index, dtype=object)


def _restore_ints(frame: pd.DataFrame, sink: Sink) -> None:
    """Integers that the CSV wrote as 8.0 (their column has gaps) become integers again, as their row objects say."""
    for c in frame.columns:
        if not c.startswith("param_"):
            continue
        col = frame[c]
        present = col.notna()
        if present.all() or not present.any():
            continue
        values = col[present]
        if not all(isinstance(v, float) and v.is_integer() for v in values):
            continue
        tid = frame.loc[values.index[0], "trial_id"]
        try:
            data = sink.read(f"rows/{tid}.json")
            original = json.loads(data).get(c) if data else None
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(original, int) and not isinstance(original, bool):
            ints = [int(v) if p else None for v, p in zip(col, present, strict=True)]
            frame[c] = pd.Series(ints, index=col.index, dtype=object)


def _typed(text: str) -> Any:
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    if text in ("True", "False"):
        return text == "True"
    try:
        return float(text)
    except ValueError:
        return text


def _read_rows(sink: Sink, keys: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        try:
            data = sink.read(key)
            row = json.loads(data) if data else None
        except (OSError, ValueError):
            continue  # an unreadable, damaged or foreign file is not a row
        if isinstance(row, dict) and all(c in row for c in _ROW_COLUMNS):
            rows.append(row)
    return rows


def _rows_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for c in frame.columns:
        if c.startswith("param_"):
            frame[c] = pd.Series([r.get(c) for r in rows], index=frame.index, dtype=object)
    return frame


def default_metric(uri: str) -> str:
    """The objective of the latest run recorded at `uri` (``runs/``), else ``val_mse``."""
    try:
        sink = open_sink(uri)
        keys = sink.list("runs/")
        data = sink.read(keys[-1]) if keys else None
        objective = json.loads(data).get("spec", {}).get("objective") if data else None
    except (HptError, OSError, ValueError, AttributeError):
        objective = None
    return objective if isinstance(objective, str) and objective else "val_mse"


def filter_rows(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The rows for which the pandas expression `where` holds; parameters may be named without ``param_``.

    Example: ``lr < 0.01 and period_start >= '2013-02-01'``.
    """
    params: dict[str, pd.Series] = {}
    for c in frame.columns:
        if c.startswith("param_"):
            col = frame[c]
            numeric = col.dtype == object and all(_is_number(v) for v in col.dropna().unique())
            params[c] = pd.to_numeric(col) if numeric else col  # arithmetic works on numbers kept as objects
    bare = {c.removeprefix("param_"): v for c, v in params.items() if c.removeprefix("param_") not in frame.columns}
    try:
        mask = frame.eval(where, resolvers=[params, bare])
    except NameError as e:  # pandas' UndefinedVariableError is one
        name = str(e).split("'")[1] if "'" in str(e) else ""
        names = sorted(set(bare) | {c for c in frame.columns if not c.startswith("param_")})
        raise InputError(f"--where: {e}{did_you_mean(name, names)}; names: {', '.join(names)}") from None
    except Exception as e:
        raise InputError(f"--where: cannot evaluate {where!r}: {type(e).__name__}: {e}") from None
    if not isinstance(mask, pd.Series) or mask.dtype != bool:
        raise InputError(f"--where: {where!r} is not a condition; write one such as \"lr < 0.01\"")
    picked = frame[mask]
    if picked.empty:
        raise InputError(f"--where: no row matches {where!r} (of {len(frame)} rows)")
    return picked


def _check_metric(frame: pd.DataFrame, metric: str) -> str:
    if metric not in frame.columns and f"val_{metric}" in frame.columns:
        metric = f"val_{metric}"  # --metric mse means val_mse
    numeric = [c for c in frame.columns
               if c not in _NOT_METRICS and not c.startswith("param_") and pd.api.types.is_numeric_dtype(frame[c])]
    if metric not in numeric:
        raise InputError(f'--metric: no metric "{metric}" in these results{did_you_mean(metric, numeric)}; '
                         f"available: {', '.join(numeric) or 'none'}")
    return metric


# ---------------------------------------------------------------------------------------------- ranking


@dataclass(frozen=True)
class Ranking:
    """Configs of one fidelity ranked across periods.

    `table` has one row per config: config_id, mean, median, worst, std, periods_run,
    periods_won, ranks (one per period, None where the config has no ok value), partial,
    then one column per parameter, by name. Configs that ran every period come first,
    then by mean (lower is better). `values` is configs x periods of the metric.
    """

    fidelity: str
    metric: str
    periods: list[str]
    params: list[str]
    table: pd.DataFrame
    values: pd.DataFrame
    trials: int

    @property
    def best(self) -> pd.Series | None:
        """The best config that ran every period; a partial config is never crowned."""
        complete = self.table[~self.table["partial"]]
        return None if complete.empty else complete.iloc[0]


def _period_labels(frame: pd.DataFrame) -> pd.Series:
    return frame["period_start"].astype(str) + ".." + frame["period_end"].astype(str)


def _empty_ranking(fidelity: str, metric: str) -> Ranking:
    return Ranking(fidelity, metric, [], [], pd.DataFrame(columns=["config_id", *_STATS]), pd.DataFrame(), 0)


def _rank(frame: pd.DataFrame, metric: str, fidelity: str) -> Ranking:
    ok = frame[(frame["status"] == Status.OK.value) & frame[metric].notna()]
    if ok.empty:
        return _empty_ranking(fidelity, metric)
    per = ok.groupby([ok["config_id"].astype(str), _period_labels(ok).rename("period")], sort=False)[metric].mean()
    values = per.unstack("period")
    periods = sorted(values.columns)
    values = values[periods]
    values.columns.name = None
    ranks = values.rank(axis=0, method="min")
    arr = ranks.to_numpy()
    table = pd.DataFrame({
        "config_id": values.index,
        "mean": values.mean(axis=1).to_numpy(),
        "median": values.median(axis=1).to_numpy(),
        "worst": values.max(axis=1).to_numpy(),
        "std": values.std(axis=1, ddof=0).to_numpy(),
        "periods_run": values.notna().sum(axis=1).to_numpy(),
        "periods_won": (arr == 1).sum(axis=1),
        "ranks": [[None if math.isnan(x) else int(x) for x in row] for row in arr.tolist()],
    })
    table["partial"] = table["periods_run"] < len(periods)
    params = sorted(c.removeprefix("param_") for c in ok.columns if c.startswith("param_") and ok[c].notna().any())
    if params:
        firsts = ok.groupby(ok["config_id"].astype(str), sort=False)[[f"param_{p}" for p in params]].first()
        for p in params:
            table[p] = firsts[f"param_{p}"].reindex(values.index).to_numpy()
    table = table.sort_values(["partial", "mean", "config_id"], kind="stable").reset_index(drop=True)
    return Ranking(fidelity, metric, periods, params, table, values.loc[table["config_id"]], len(ok))


def rank_configs(frame: pd.DataFrame, objective: str) -> pd.DataFrame:
    """One line per config over its ok rows: mean, median, worst, std, periods run and won, ranks.

    Full-fidelity rows are ranked when there are any, else the screening rows. Sorted
    with configs that ran every period first, then by mean objective.
    """
    if frame.empty or objective not in frame:
        return pd.DataFrame()
    fid = frame["fidelity"].fillna("full") if "fidelity" in frame else pd.Series("full", index=frame.index)
    full = frame[fid != "quick"]
    ranking = _rank(full if (full["status"] == Status.OK.value).any() else frame[fid == "quick"], objective, "")
    return ranking.table


def best_config(rows: Iterable[dict[str, Any]], objective: str, trial_ids: set[str] | None = None) -> dict[str, Any] | None:
    """The config with the lowest mean objective among those that ran every period.

    When no config ran every period yet, the best partial one, marked ``partial``.
    """
    selected = [r for r in rows if trial_ids is None or r.get("trial_id") in trial_ids]
    if not selected:
        return None
    table = rank_configs(_rows_frame(selected), objective)
    if table.empty:
        return None
    complete = table[~table["partial"]]
    top = (complete if not complete.empty else table).iloc[0]
    params = {c: _plain(top[c]) for c in table.columns
              if c not in _STATS and c != "config_id" and _plain(top[c]) is not None}
    return {"config_id": top["config_id"], "params": params, "mean": float(top["mean"]),
            "periods": int(top["periods_run"]), "partial": bool(top["partial"])}


def _plain(v: Any) -> Any:
    """numpy scalars -> Python values, so they print and serialise as JSON; NaN -> None."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
    try:
        return json.loads(json.dumps(v))
    except (TypeError, ValueError):
        return str(v)


# ---------------------------------------------------------------------------------------------- paired tests


@dataclass(frozen=True)
class Comparison:
    """The best config against another over the periods both ran ok."""

    best: str
    other: str
    shared: int
    wins: int
    losses: int
    ties: int
    mean_diff: float  # best minus other, mean over the shared periods; negative: best is lower
    p_value: float | None  # Wilcoxon signed-rank, two-sided, exact for small samples
    sign_p: float | None  # sign test (binomial) on wins and losses
    verdict: str

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA and self.wins > self.losses


def _periods_needed(alpha: float = ALPHA) -> int:
    """The fewest paired periods with which a two-sided Wilcoxon test can reach p < alpha at all."""
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


def compare_configs(ranking: Ranking, n: int = 3) -> list[Comparison]:
    """The best config against each of the next `n` in the ranking: wins per period and paired tests."""
    best = ranking.best
    if best is None or n <= 0:
        return []
    from scipy import stats

    a = ranking.values.loc[best["config_id"]].to_numpy(dtype=float)
    out = []
    others = [c for c in ranking.table["config_id"].head(n + 1) if c != best["config_id"]][:n]
    for other in others:
        b = ranking.values.loc[other].to_numpy(dtype=float)
        shared = ~(np.isnan(a) | np.isnan(b))
        d = a[shared] - b[shared]
        wins, losses = int((d < 0).sum()), int((d > 0).sum())
        ties = int(len(d) - wins - losses)
        nonzero = d[d != 0]
        p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) else None
        sign_p = float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else None
        mean_diff = float(d.mean()) if len(d) else float("nan")
        out.append(Comparison(str(best["config_id"]), str(other), len(d), wins, losses, ties, mean_diff, p, sign_p,
                              _verdict(len(d), len(nonzero), wins, losses, p)))
    return out


def _verdict(shared: int, nonzero: int, wins: int, losses: int, p: float | None) -> str:
    need = _periods_needed()
    if shared == 0:
        return "no period in common: cannot compare"
    if p is None:
        return "equal in every shared period"
    if nonzero < need:
        return f"too few periods to tell (needs {need}+)"
    if p < ALPHA:
        return "clearly better" if wins > losses else "different, but the other wins more periods"
    return "no clear difference"


# ---------------------------------------------------------------------------------------------- trends


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def parameter_trends(frame: pd.DataFrame, metric: str, params: Sequence[str]) -> dict[str, pd.DataFrame]:
    """For each parameter with two or more values: the metric per value over the ok rows.

    One table per parameter with columns value, median, mean, best, trials, configs;
    numeric values in increasing order (many distinct values, as random search gives,
    are put in bins), others from the best median down.
    """
    ok = frame[(frame["status"] == Status.OK.value) & frame[metric].notna()]
    trends: dict[str, pd.DataFrame] = {}
    for p in params:
        col = ok[f"param_{p}"]
        present = col.notna()
        if col[present].nunique() < 2:
            continue
        values = col[present]
        numeric = all(_is_number(v) for v in values.unique())
        if numeric and values.nunique() > _MAX_TREND_VALUES:
            key = _bins(values.astype(float))
        elif numeric:
            key = values.astype(float)
        else:
            key = values.astype(str)
        g = ok.loc[present, [metric, "config_id"]].groupby(key.to_numpy(), sort=numeric, observed=True)
        t = pd.DataFrame({"median": g[metric].median(), "mean": g[metric].mean(), "best": g[metric].min(),
                          "trials": g[metric].size(), "configs": g["config_id"].nunique()})
        t.index.name = "value"
        t = t.reset_index()
        if numeric and values.nunique() <= _MAX_TREND_VALUES:
            originals = {float(v): v for v in values.unique()}
            t["value"] = [_plain(originals.get(v, v)) for v in t["value"]]
        elif numeric:
            t["value"] = t["value"].astype(str)
        else:
            t = t.sort_values("median", kind="stable").reset_index(drop=True)
        trends[p] = t
    return trends


def _bins(values: pd.Series, n: int = 8) -> pd.Series:
    lo, hi = float(values.min()), float(values.max())
    if lo > 0 and hi / lo > 20:
        edges = np.geomspace(lo, hi, n + 1)
    else:
        edges = np.linspace(lo, hi, n + 1)
    edges = np.unique(edges)
    labels = [f"{a:.3g}..{b:.3g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return pd.Series(pd.cut(values, edges, labels=labels, include_lowest=True, duplicates="drop"), index=values.index)


# ---------------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Summary:
    """Everything `hpt results` reports about one results location."""

    uri: str
    metric: str
    where: str | None
    trials: int
    counts: dict[str, int]
    full: Ranking
    screening: Ranking
    comparisons: list[Comparison]
    trends: dict[str, pd.DataFrame]
    problems: pd.DataFrame  # the rows not ok: never ranked, always listed
    missing_metric: int = 0  # ok rows without a value of `metric`
    notes: list[str] = field(default_factory=list)

    @property
    def main(self) -> Ranking:
        """The ranking the decision rests on: full-fidelity rows, or screening rows when there are no others."""
        return self.full if not self.full.table.empty or self.screening.table.empty else self.screening


def summarise(frame: pd.DataFrame, metric: str = "val_mse", *, where: str | None = None, compare: int = 3,
              uri: str = "") -> Summary:
    """Rank, compare and break down the rows of a results location by `metric` (lower is better)."""
    if where:
        frame = filter_rows(frame, where)
    metric = _check_metric(frame, metric)
    fid = frame["fidelity"] if "fidelity" in frame else pd.Series("full", index=frame.index)
    quick = (fid == "quick").to_numpy()
    full = _rank(frame[~quick], metric, "full")
    screening = _rank(frame[quick], metric, "quick")
    main = full if not full.table.empty or screening.table.empty else screening
    main_rows = frame[~quick] if main is full else frame[quick]
    status = frame["status"].astype(str)
    counts = {k: int(v) for k, v in status.value_counts().items()}
    ok = status == Status.OK.value
    problems = frame[~ok]
    notes = []
    if main is screening:
        notes.append("only screening (quick) rows so far: the ranking below is from them")
    missing = int((ok & frame[metric].isna()).sum())
    if missing:
        notes.append(f"{plural(missing, 'ok trial')} without a {metric} value left out of the ranking")
    return Summary(uri=uri, metric=metric, where=where, trials=len(frame), counts=counts, full=full, screening=screening,
                   comparisons=compare_configs(main, compare), trends=parameter_trends(main_rows, metric, main.params),
                   problems=problems, missing_metric=missing, notes=notes)


def best_params(summary: Summary) -> dict[str, list[Any]]:
    """The best config's tuned parameters as spec ``parameters``: one-value grid axes, ready to paste.

    Raises HptError when no config ran every period.
    """
    r = summary.main
    best = r.best
    if best is None:
        if r.table.empty:
            raise HptError(f"no ok trials with {summary.metric} at {summary.uri}: nothing to choose from")
        lead = r.table.iloc[0]
        raise HptError(f"no config has run all {len(r.periods)} periods yet, so none is crowned best "
                       f"(leading: {lead['config_id']} with {plural(lead['periods_run'], 'period')}); "
                       "finish the run, or narrow the periods with --where")
    return {p: [_plain(best[p])] for p in r.params if _plain(best[p]) is not None}


# ---------------------------------------------------------------------------------------------- rendering


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _params_text(row: pd.Series, params: Sequence[str]) -> str:
    return " ".join(f"{p}={_num(row[p])}" for p in params if _plain(row[p]) is not None)


def _p(p: float | None) -> str:
    return "-" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


@dataclass
class _Section:
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    right: set[int] = field(default_factory=set)  # columns aligned right (numbers)
    notes: list[str] = field(default_factory=list)


def _ranking_section(r: Ranking, title: str, top: int) -> _Section:
    labels = " ".join(f"P{i}" for i in range(1, len(r.periods) + 1))
    headers = ["#", "config", *r.params, "mean", "median", "worst", "std", "won", f"ranks ({labels})"]
    sec = _Section(title, headers, right={0, *range(2, len(headers) - 1)})
    shown = r.table if top <= 0 else r.table.head(top)
    best = r.best
    for i, d in enumerate(shown.to_dict(orient="records"), 1):
        mark = "*" if best is not None and d["config_id"] == best["config_id"] else ""
        ranks = " ".join("-" if x is None else str(x) for x in d["ranks"])
        won = f"{d['periods_won']}/{len(r.periods)}"
        cid = d["config_id"] + (" (partial)" if d["partial"] else "")
        sec.rows.append([f"{i}{mark}", cid, *(_num(d[p]) for p in r.params), _num(d["mean"]), _num(d["median"]),
                         _num(d["worst"]), _num(d["std"]), won, ranks])
    if len(r.table) > len(shown):
        sec.notes.append(f"... and {len(r.table) - len(shown)} more configs (--top N shows more; --top 0 all)")
    n_partial = int(r.table["partial"].sum())
    if best is None:
        sec.notes.append(f"no config has run all {len(r.periods)} periods: none is crowned best")
    else:
        sec.notes.append(f"* best: {best['config_id']}  {_params_text(best, r.params)}  "
                         f"mean {r.metric}={_num(best['mean'])}, won {best['periods_won']} of {plural(len(r.periods), 'period')}")
    if n_partial:
        sec.notes.append(f"{plural(n_partial, 'partial config')} missing periods: shown after the complete ones, "
                         "never crowned best")
    sec.notes.append("periods: " + "  ".join(f"P{i} {p}" for i, p in enumerate(r.periods, 1)))
    return sec


def _comparison_section(s: Summary) -> _Section:
    r = s.main
    best = r.best
    title = "Is the winner real? Paired over the periods both ran"
    sec = _Section(title, ["best vs", *r.params, "wins", "mean diff", "Wilcoxon p", "sign p", "verdict"],
                   right={*range(1, len(r.params) + 5)})
    table = r.table.set_index("config_id")
    for c in s.comparisons:
        other = table.loc[c.other]
        sec.rows.append([c.other, *(_num(other[p]) for p in r.params), f"{c.wins} of {c.shared}", f"{c.mean_diff:+.3g}",
                         _p(c.p_value), _p(c.sign_p), c.verdict])
    if best is not None and s.comparisons:
        sec.notes += [_plain_statement(c) for c in s.comparisons[:1]]
        sec.notes.append(f"mean diff: best minus other ({s.metric}; negative: the best is lower); Wilcoxon signed-rank "
                         f"and sign tests, two-sided at {ALPHA:g}, not corrected for picking the best")
    return sec


def _plain_statement(c: Comparison) -> str:
    """One sentence a person can act on."""
    head = (f"{c.best} beats {c.other} in {c.wins} of {c.shared} period{'s' if c.shared != 1 else ''}"
            + (f" (loses {c.losses})" if c.losses else ""))
    need = _periods_needed()
    if c.shared == 0:
        return f"{c.best} and {c.other} ran no period in common: they cannot be compared"
    if c.p_value is None:
        return f"{c.best} and {c.other} score the same in every shared period"
    if c.wins + c.losses < need:
        return (f"{head}, but that is too few periods to tell: no paired test reaches p < {ALPHA:g} "
                f"with fewer than {need}; run more periods")
    if c.significant:
        return f"{head} (Wilcoxon p={_p(c.p_value)}): the lead is real at the {ALPHA:g} level"
    return f"{head} (Wilcoxon p={_p(c.p_value)}): not clearly better; the lead may be chance"


def _trend_sections(s: Summary) -> list[_Section]:
    out = []
    for p, t in s.trends.items():
        sec = _Section(f"{p}: {s.metric} per value", [p, "median", "mean", "best", "trials", "configs"], right={1, 2, 3, 4, 5})
        top = int(t["median"].to_numpy().argmin())
        for i, row in enumerate(t.itertuples(index=False)):
            sec.rows.append([_num(row.value) + (" *" if i == top else ""), _num(row.median), _num(row.mean),
                             _num(row.best), str(row.trials), str(row.configs)])
        out.append(sec)
    if out:
        out[-1].notes.append("* lowest median")
    return out


def _problem_section(s: Summary, limit: int) -> _Section:
    counts = ", ".join(f"{s.counts[k]} {k}" for k in ("failed", "diverged", "interrupted") if k in s.counts)
    others = ", ".join(f"{n} {k}" for k, n in s.counts.items() if k not in {x.value for x in Status})
    what = ", ".join(x for x in (counts, others) if x)
    sec = _Section(f"Not ranked: {plural(len(s.problems), 'trial')} did not finish ok ({what})",
                   ["status", "trial", "config", "fidelity", "period", "params", "error"])
    params = [c for c in s.problems.columns if c.startswith("param_")]
    shown = s.problems if limit <= 0 else s.problems.head(limit)
    for _, row in shown.iterrows():
        ptext = " ".join(f"{c.removeprefix('param_')}={_num(row[c])}" for c in params if _plain(row[c]) is not None)
        err = row.get("error")
        err_text = "" if err is None or (isinstance(err, float) and math.isnan(err)) else str(err).splitlines()[0][:100]
        sec.rows.append([str(row["status"]), str(row["trial_id"]), str(row["config_id"]), str(row.get("fidelity", "")),
                         f"{row.get('period_start')}..{row.get('period_end')}", ptext, err_text])
    if len(s.problems) > len(shown):
        sec.notes.append(f"... and {len(s.problems) - len(shown)} more (--format json or csv lists every one)")
    return sec


def _header(s: Summary) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in s.counts.items())
    parts = [f"{s.uri or 'results'}: {plural(s.trials, 'trial')} ({counts})"]
    if s.where:
        parts.append(f"where {s.where}")
    parts.append(f"metric {s.metric} (lower is better)")
    return "; ".join(parts)


def _sections(s: Summary, top: int) -> list[_Section]:
    secs = [_Section(_header(s), notes=list(s.notes))]
    if not s.full.table.empty:
        secs.append(_ranking_section(s.full, f"Configs ranked by mean {s.metric} over {plural(len(s.full.periods), 'period')} "
                                             f"(full runs: {plural(s.full.trials, 'ok trial')}, "
                                             f"{plural(len(s.full.table), 'config')})", top))
    if not s.screening.table.empty:
        secs.append(_ranking_section(s.screening, f"Screening (quick) rows, ranked apart: "
                                                  f"{plural(s.screening.trials, 'ok trial')}, "
                                                  f"{plural(len(s.screening.table), 'config')}", top))
    if s.full.table.empty and s.screening.table.empty:
        secs.append(_Section("No ok trials to rank"))
    if s.comparisons:
        secs.append(_comparison_section(s))
    elif s.main.best is not None:
        secs.append(_Section("Is the winner real?", notes=["only one config: nothing to compare it with"]))
    trends = _trend_sections(s)
    if trends:
        which = "full" if s.main is s.full else "screening"
        secs.append(_Section(f"Parameter trends ({which} rows; {s.metric} per value over ok trials)"))
        secs += trends
    if len(s.problems):
        secs.append(_problem_section(s, _MAX_PROBLEMS_SHOWN if top > 0 else 0))
    return secs


def _text_table(sec: _Section, indent: str = "  ") -> list[str]:
    cells = [sec.headers, *sec.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(sec.headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if i in sec.right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines


def _render_text(s: Summary, top: int) -> str:
    out: list[str] = []
    for i, sec in enumerate(_sections(s, top)):
        if i:
            out.append("")
        out.append(sec.title)
        if sec.headers:
            out += _text_table(sec)
        out += [f"  {n}" for n in sec.notes]
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def _render_markdown(s: Summary, top: int) -> str:
    out: list[str] = []
    for i, sec in enumerate(_sections(s, top)):
        level = "##" if i == 0 else ("####" if sec.headers and sec.title.split(":")[0] in s.trends else "###")
        out += [f"{level} {_md_cell(sec.title)}", ""]
        if sec.headers:
            out.append("| " + " | ".join(_md_cell(h) for h in sec.headers) + " |")
            out.append("|" + "|".join("---:" if j in sec.right else "---" for j in range(len(sec.headers))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in sec.rows]
            out.append("")
        notes = [n for n in sec.notes if n]
        if notes:
            out += [f"- {_md_cell(n)}" for n in notes] + [""]
    return "\n".join(out)


def _config_records(r: Ranking, top: int) -> list[dict[str, Any]]:
    shown = r.table if top <= 0 else r.table.head(top)
    best = r.best
    records = []
    for row in shown.to_dict(orient="records"):
        rec: dict[str, Any] = {"config_id": row["config_id"],
                               "best": best is not None and row["config_id"] == best["config_id"]}
        for k in _STATS:
            rec[k] = _plain(row[k])
        for p in r.params:
            rec[p if p not in rec else f"param_{p}"] = _plain(row[p])
        records.append(rec)
    return records


def _json(s: Summary, top: int) -> str:
    def ranking(r: Ranking) -> dict[str, Any]:
        return {"periods": r.periods, "parameters": r.params, "ok_trials": r.trials, "configs_total": len(r.table),
                "best": None if r.best is None else r.best["config_id"], "configs": _config_records(r, top)}

    problem_cols = [c for c in ("status", "trial_id", "config_id", "fidelity", "period_start", "period_end", "error")
                    if c in s.problems.columns]
    problems = []
    for row in s.problems.to_dict(orient="records"):
        rec = {c: _plain(row[c]) for c in problem_cols}
        rec["params"] = {c.removeprefix("param_"): _plain(v) for c, v in row.items()
                         if c.startswith("param_") and _plain(v) is not None}
        problems.append(rec)
    doc = {
        "uri": s.uri, "metric": s.metric, "where": s.where, "trials": s.trials, "counts": s.counts, "notes": s.notes,
        "full": ranking(s.full), "screening": ranking(s.screening),
        "comparisons": [{"best": c.best, "other": c.other, "shared_periods": c.shared, "wins": c.wins, "losses": c.losses,
                         "ties": c.ties, "mean_diff": _plain(c.mean_diff), "wilcoxon_p": c.p_value, "sign_p": c.sign_p,
                         "significant": c.significant, "verdict": c.verdict} for c in s.comparisons],
        "trends": {p: [{k: _plain(v) for k, v in rec.items()} for rec in t.to_dict(orient="records")]
                   for p, t in s.trends.items()},
        "not_ranked": problems,
    }
    return json.dumps(doc, indent=1) + "\n"


def _csv(s: Summary, top: int) -> str:
    frames = []
    for r in (s.full, s.screening):
        if r.table.empty:
            continue
        t = (r.table if top <= 0 else r.table.head(top)).copy()
        t["ranks"] = [";".join("" if x is None else str(x) for x in ranks) for ranks in t["ranks"]]
        t.insert(0, "fidelity", r.fidelity)
        t.insert(1, "rank", range(1, len(t) + 1))
        frames.append(t)
    if not frames:
        return "fidelity,rank,config_id," + ",".join(_STATS) + "\n"
    buf = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(buf, index=False)
    return buf.getvalue()


def render(summary: Summary, fmt: str = "table", top: int = 10) -> str:
    """The summary as text: ``table`` (a terminal), ``markdown`` (a build summary), ``json`` or ``csv``.

    `top` limits the configs listed per ranking (0: all). JSON has every section; CSV is
    the rankings, one line per config, with a ``fidelity`` column.
    """
    if fmt == "table":
        return _render_text(summary, top)
    if fmt == "markdown":
        return _render_markdown(summary, top)
    if fmt == "json":
        return _json(summary, top)
    if fmt == "csv":
        return _csv(summary, top)
    raise InputError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
