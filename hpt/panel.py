"""Many series in one frame (``data.series``): the panel's shape, each series' season and the panel's MASE.

A panel is the data of several series in long format, read into one frame on a
:class:`pandas.MultiIndex` of (series id, time), its levels named by the series column and the
time column: the series in the order of their ids,
each series' rows in time order, one row per series and time. Every series is a
frame of its own (:func:`series_frames`) on which the single-series rules apply; how
a period's windows come from every series is :mod:`hpt.windows`'s.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

__all__ = ["STATIC", "in_sample_naive_mae", "is_panel", "leave_static", "mase", "mase_scale", "name_few",
           "season_length", "series_count", "series_frames", "static_mask", "times_of"]

_DAY = pd.Timedelta(days=1)

STATIC = "static:"
"""How the input columns of static series features (``data.series_features``, :mod:`hpt.static`) begin: they are
scaled across the series when read, so the per-series scaling leaves them as they are (:func:`static_mask`)."""


def static_mask(columns: tuple[str, ...]) -> np.ndarray:
    """For each of `columns`, whether it is a static series feature's input (:data:`STATIC`)."""
    return np.array([str(c).startswith(STATIC) for c in columns], dtype=bool)


def leave_static(columns: tuple[str, ...], shift: np.ndarray, scale: np.ndarray) -> None:
    """A per-series scaling's `shift` and `scale` (their last axis the `columns`) made, in place, the identity
    for the static series features' inputs: those are scaled across the series already (:mod:`hpt.static`),
    and a column constant within a series would be 0 scaled by its own statistics."""
    static = static_mask(tuple(columns))
    shift[..., static] = 0.0
    scale[..., static] = 1.0


def is_panel(frame: pd.DataFrame) -> bool:
    """Whether `frame` holds several series (a (series, time) MultiIndex)."""
    return isinstance(frame.index, pd.MultiIndex)


def times_of(frame: pd.DataFrame) -> pd.DatetimeIndex:
    """The time of each row: the index, or a panel's time level."""
    index = frame.index
    return pd.DatetimeIndex(index.get_level_values(-1) if isinstance(index, pd.MultiIndex) else index)


def series_count(frame: pd.DataFrame) -> int:
    """How many series a panel holds."""
    index = frame.index
    assert isinstance(index, pd.MultiIndex)
    return int(np.count_nonzero(np.bincount(np.asarray(index.codes[0]), minlength=1)))


def series_frames(frame: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """Each series of a panel by id, as a frame on its own sorted DatetimeIndex (with the panel's attrs)."""
    index = frame.index
    assert isinstance(index, pd.MultiIndex)
    codes = np.asarray(index.codes[0])
    times = index.get_level_values(-1).to_numpy()
    values = frame.to_numpy()
    bounds = np.flatnonzero(np.diff(codes)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(codes)], strict=True):
        if hi <= lo:
            continue
        one = pd.DataFrame(values[lo:hi], columns=frame.columns,
                           index=pd.DatetimeIndex(times[lo:hi], name=index.names[-1]), copy=False)
        one.attrs.update(frame.attrs)
        yield str(index.levels[0][codes[lo]]), one


def name_few(ids: list[str], most: int = 3) -> str:
    """Series ids for a one-line message: the first `most`, quoted, and how many more."""
    shown = ", ".join(f'"{i}"' for i in ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def season_length(step: pd.Timedelta, season: int | None = None) -> int:
    """Steps in one season: `season` when given, else inferred from the data's step.

    Steps that divide a day: one day (hourly 24, half-hourly 48, 15 minutes 96); daily: a
    week (7); weekly: a year (52); monthly (28 to 31 days): a year (12). Anything else: 1,
    where seasonal naive is persistence.
    """
    if season is not None:
        return int(season)
    if step <= pd.Timedelta(0):
        return 1
    if step < _DAY and _DAY % step == pd.Timedelta(0):
        return int(_DAY // step)
    if step == _DAY:
        return 7
    if step == pd.Timedelta(weeks=1):
        return 52
    if pd.Timedelta(days=28) <= step <= pd.Timedelta(days=31):
        return 12
    return 1


def in_sample_naive_mae(target: np.ndarray, times: np.ndarray, step: pd.Timedelta, season: int) -> float:
    """The mean absolute error of seasonal naive on a series' own rows: ``|y[t] - y[t - season]|`` over
    every row whose value one season (`season` steps of `step`) earlier is a row too. NaN when none is."""
    if len(target) <= season:
        return float("nan")
    t = np.asarray(times, dtype="datetime64[ns]")
    lagged = (t[season:] - t[:-season]) == (season * step).to_timedelta64()
    if not lagged.any():
        return float("nan")
    y = np.asarray(target, dtype=np.float64)
    return float(np.mean(np.abs(y[season:] - y[:-season])[lagged]))


def mase_scale(target: np.ndarray, times: np.ndarray, step: pd.Timedelta, season: int) -> float:
    """What a series' errors are divided by in :func:`mase`: its in-sample seasonal-naive MAE; where that
    is 0 or has no rows (a train part no longer than a season, or exactly seasonal), the one-step naive's."""
    scale = in_sample_naive_mae(target, times, step, season)
    return scale if scale > 0 else in_sample_naive_mae(target, times, step, 1)


def mase(abs_error: np.ndarray, series: np.ndarray, naive_mae: np.ndarray) -> float:
    """The panel's mean absolute scaled error: each series' MAE (the mean of `abs_error` ``(N, ...)``
    over its windows, `series` ``(N,)`` the index of each window's series) divided by its in-sample
    seasonal-naive MAE `naive_mae` ``(S,)``, averaged over the series. A series without windows, or
    whose naive MAE is 0 or NaN (nothing to scale by), is left out; NaN when none is left."""
    err = np.asarray(abs_error, dtype=np.float64).reshape(len(series), -1).mean(axis=1)
    n = len(naive_mae)
    counts = np.bincount(series, minlength=n)
    sums = np.bincount(series, weights=err, minlength=n)
    usable = (counts > 0) & (np.asarray(naive_mae) > 0)
    if not usable.any():
        return float("nan")
    return float(np.mean(sums[usable] / counts[usable] / np.asarray(naive_mae)[usable]))
