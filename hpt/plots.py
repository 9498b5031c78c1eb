"""PNG plots of a results summary: the metric per parameter value, per-period spread, learning curves.

matplotlib is an optional extra (``pip install 'hpt[plot]'``, see :func:`hpt.errors.install_hint`); it is imported only here,
and without it :func:`require_matplotlib` says what to install.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpt import layout
from hpt.baselines import baseline_mask
from hpt.errors import HptError, InputError, install_hint
from hpt.results import Ranking, Summary
from hpt.rows import param_column
from hpt.sinks import open_sink
from hpt.trial import Status

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["require_matplotlib", "write_plots"]

_MAX_CURVE_PANELS = 9


def require_matplotlib() -> None:
    """Raise InputError naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError(f"--plot needs matplotlib: {install_hint('plot')}") from None


def _figure(width: float, height: float) -> Figure:
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def write_plots(summary: Summary, frame: pd.DataFrame, out_dir: str, top: int = 5) -> list[str]:
    """Write parameters.png, periods.png and curves.png (those there is data for) to `out_dir`; their paths.

    `frame` is the rows the summary was made from (for the points and the trial ids of
    the curves, read from ``curves/`` at ``summary.uri``).
    """
    require_matplotlib()
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise InputError(f"--plot: cannot write to {out_dir}: {e.strerror or e}") from None
    r = summary.main
    if r.table.empty:
        return []
    rows = frame[(frame["fidelity"] == r.fidelity) & ~baseline_mask(frame)]
    rows = rows[(rows["status"] == Status.OK.value) & rows[r.metric].notna()]
    if summary.where:
        rows = rows[rows["trial_id"].isin(_ids(summary, frame))]
    written = []
    for name, fig in (("parameters.png", _parameters(summary, rows)), ("periods.png", _periods(r, top)),
                      ("curves.png", _curves(summary, rows, top))):
        if fig is None:
            continue
        path = os.path.join(out_dir, name)
        try:
            fig.savefig(path)
        except OSError as e:
            raise InputError(f"--plot: cannot write {path}: {e.strerror or e}") from None
        written.append(path)
    return written


def _ids(summary: Summary, frame: pd.DataFrame) -> set[str]:
    from hpt.results import filter_rows

    return set(filter_rows(frame, summary.where or "").get("trial_id", []))


def _label(row: pd.Series, params: Sequence[str]) -> str:
    return " ".join(f"{p}={_short(row[p])}" for p in params if not _missing(row[p]))


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _log_scale(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return bool(len(v)) and float(v.min()) > 0 and float(v.max()) / float(v.min()) > 30


def _parameters(summary: Summary, rows: pd.DataFrame) -> Figure | None:
    """The metric of every ok trial against each tuned parameter, coloured by period, with the median per value."""
    params = list(summary.trends)
    if not params:
        return None
    r = summary.main
    metric = r.metric
    ncols = min(3, len(params))
    nrows = math.ceil(len(params) / ncols)
    fig = _figure(4.6 * ncols, 3.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    periods = r.periods
    colours = _colours(len(periods))
    y_all = rows[metric].to_numpy(dtype=float)
    log_y = _log_scale(y_all)
    period_of = rows["period_start"].astype(str) + ".." + rows["period_end"].astype(str)
    rng = np.random.default_rng(0)
    for ax, p in zip(axes.flat, params, strict=False):
        col = rows[param_column(p)]
        present = col.notna().to_numpy()
        vals = col[present]
        y = rows.loc[present, metric].to_numpy(dtype=float)
        numeric = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in vals.unique())
        trend = summary.trends[p]
        if numeric:
            x = vals.astype(float).to_numpy()
            log_x = _log_scale(x)
            spread = (np.log10(x.max()) - np.log10(x.min())) if log_x else (x.max() - x.min())
            jitter = rng.uniform(-0.012, 0.012, len(x)) * (spread or 1)
            xs = x * 10**jitter if log_x else x + jitter
            if log_x:
                ax.set_xscale("log")
            if trend["value"].map(lambda v: isinstance(v, (int, float))).all():
                ax.plot(trend["value"].astype(float), trend["median"], "-", color="black", lw=1.8, zorder=3,
                        label="median per value")
                best = trend.loc[trend["median"].idxmin()]
                ax.plot([float(best["value"])], [best["median"]], "*", color="black", ms=13, zorder=4)
        else:
            order = list(trend["value"].astype(str))
            pos = {v: i for i, v in enumerate(order)}
            xs = np.array([pos[str(v)] for v in vals]) + rng.uniform(-0.15, 0.15, len(vals))
            ax.set_xticks(range(len(order)), order, rotation=20)
            ax.plot(range(len(order)), trend["median"], "_", color="black", ms=30, mew=2.5, zorder=3,
                    label="median per value")
        per = period_of[present].to_numpy()
        for i, period in enumerate(periods):
            m = per == period
            if m.any():
                ax.scatter(xs[m], y[m], s=16, alpha=0.65, color=colours[i], label=f"P{i + 1} {period}", zorder=2)
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(p)
        ax.set_ylabel(f"{metric} (lower is better)")
        ax.grid(alpha=0.3, which="both" if log_y else "major")
        ax.set_title(f"{metric} against {p}", fontsize=10)
    for ax in list(axes.flat)[len(params):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8)
    fig.suptitle(f"{metric} per parameter value ({len(rows)} ok {r.fidelity} trials; one dot per trial, "
                 "coloured by period; black: median, star: best)", fontsize=10)
    return fig


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def _periods(r: Ranking, top: int) -> Figure | None:
    """The top configs, one line each: their value in every period, mean marked; who wins where."""
    shown = r.table.head(max(top, 1))
    if shown.empty:
        return None
    periods = r.periods
    colours = _colours(len(periods))
    fig = _figure(9, 1.0 + 0.55 * len(shown) + 0.9)
    ax: Axes = fig.subplots()
    n = len(shown)
    best = r.best
    labels = []
    for i, row in enumerate(shown.to_dict(orient="records")):
        yv = n - 1 - i
        vals = r.values.loc[row["config_id"]].to_numpy(dtype=float)
        ok = np.isfinite(vals)
        if ok.any():
            ax.hlines(yv, vals[ok].min(), vals[ok].max(), color="0.6", lw=1.5, zorder=1)
        for j, v in enumerate(vals):
            if np.isfinite(v):
                ax.scatter([v], [yv], s=42, color=colours[j], zorder=3, edgecolor="white", linewidth=0.5,
                           label=f"P{j + 1} {periods[j]}" if i == 0 or not np.isfinite(r.values.iloc[0, j]) else None)
        ax.scatter([row["mean"]], [yv], marker="|", s=260, color="black", zorder=4, label="mean" if i == 0 else None)
        crown = "* " if best is not None and row["config_id"] == best.config_id else ""
        partial = f" (partial {row['periods_run']}/{len(periods)})" if row["partial"] else ""
        labels.append(f"{crown}#{i + 1} {_label(pd.Series(row), r.params)}\nwon {row['periods_won']}/{len(periods)}{partial}")
    ax.set_yticks(range(n - 1, -1, -1), labels, fontsize=8)
    all_vals = r.values.loc[shown["config_id"]].to_numpy(dtype=float)
    if _log_scale(all_vals.ravel()):
        ax.set_xscale("log")
    ax.set_xlabel(f"{r.metric} (lower is better)")
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.set_ylim(-0.6, n - 0.4)
    handles, leg = ax.get_legend_handles_labels()
    by = dict(zip(leg, handles, strict=True))
    ax.legend(by.values(), by.keys(), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"Top {n} configs: {r.metric} in each period (dot) and mean (bar); * best", fontsize=10)
    return fig


def _curves(summary: Summary, rows: pd.DataFrame, top: int) -> Figure | None:
    """Validation curves of the top configs, one panel per period, one colour per config."""
    r = summary.main
    shown = r.table.head(max(top, 1))
    try:
        sink = open_sink(summary.uri)
    except HptError:
        return None
    metric = r.metric if r.metric in ("val_mse", "val_mae", "train_loss") else "val_mse"
    periods = r.periods
    period_of = rows["period_start"].astype(str) + ".." + rows["period_end"].astype(str)
    trial_of = dict(zip(zip(rows["config_id"].astype(str), period_of, strict=True), rows["trial_id"].astype(str), strict=True))
    curves: dict[tuple[str, str], pd.DataFrame] = {}
    for cid in shown["config_id"]:
        for period in periods:
            tid = trial_of.get((cid, period))
            data = sink.read(layout.curve(tid)) if tid else None
            if data:
                try:
                    c = pd.read_csv(io.BytesIO(data))
                except (ValueError, pd.errors.ParserError):
                    continue
                if metric in c and "epoch" in c:
                    curves[(cid, period)] = c
    if not curves:
        return None
    with_curves = [p for p in periods if any(k[1] == p for k in curves)]
    used = with_curves[-_MAX_CURVE_PANELS:]  # the latest periods: a page of panels stays readable
    ncols = min(3, len(used))
    nrows = math.ceil(len(used) / ncols)
    fig = _figure(4.4 * ncols, 3.3 * nrows + 0.4 + 0.2 * math.ceil(len(shown) / 2))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    from matplotlib.ticker import MaxNLocator

    colours = _colours(max(len(shown), 1))
    values = np.concatenate([c[metric].to_numpy(dtype=float) for c in curves.values()])
    log_y = _log_scale(values)
    for ax, period in zip(axes.flat, used, strict=False):
        for i, row in enumerate(shown.to_dict(orient="records")):
            c = curves.get((row["config_id"], period))
            if c is None:
                continue
            label = f"#{i + 1} {_label(pd.Series(row), r.params)}"
            ax.plot(c["epoch"], c[metric], "-", color=colours[i], lw=1.6, label=label)
            best_at = int(c[metric].to_numpy(dtype=float).argmin())
            ax.plot([c["epoch"].iloc[best_at]], [c[metric].iloc[best_at]], "o", color=colours[i], ms=5)
        if log_y:
            ax.set_yscale("log")
        ax.set_title(f"P{periods.index(period) + 1} {period}", fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3, which="both" if log_y else "major")
    for ax in axes[:, 0]:
        ax.set_ylabel(metric)
    for ax in list(axes.flat)[len(used):]:
        ax.set_visible(False)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 2 if ncols < 3 else 3), fontsize=8)
    more = f"; the latest {len(used)} of {len(with_curves)} periods" if len(used) < len(with_curves) else ""
    fig.suptitle(f"Learning curves of the top {len(shown)} configs: {metric} per epoch (dot: best epoch, the one kept){more}",
                 fontsize=10)
    return fig
