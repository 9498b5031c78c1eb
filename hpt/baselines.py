"""Naive forecasts: what a tuned model has to beat to be worth having.

``naive-last`` (persistence) forecasts every step of the horizon with the last observed
target value; ``naive-seasonal`` with the value one season earlier (the season inferred
from the data's step: 24 for hourly data, 48 for half-hourly, 7 for daily, or given as
``data.season``). Both are computed from the series itself, on exactly the windows a trial
is validated on, in milliseconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BASELINES", "baseline_errors", "naive_forecasts", "period_baselines", "season_length"]

BASELINES = ("naive-last", "naive-seasonal")
"""The baselines' names; rows of a baseline carry its name as their architecture."""

_DAY = pd.Timedelta(days=1)


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


def naive_forecasts(target: pd.Series, ends: np.ndarray, horizon: int, step: pd.Timedelta,
                    season: int) -> dict[str, np.ndarray]:
    """Each baseline's forecasts, shape ``(len(ends), horizon)``, in the target's own units.

    `target` is the whole target series (indexed by time, sorted); `ends` the time of each
    window's last input row. Forecast step k (1..horizon) of seasonal naive is the value
    ``season * ceil(k / season)`` steps before it, so never later than the window's end;
    where that time is not in the series (a gap, or before its start) the last value stands in.
    """
    index = pd.DatetimeIndex(target.index)
    values = target.to_numpy(dtype=np.float64)
    ends = np.asarray(ends, dtype="datetime64[ns]")
    at_end = index.get_indexer(pd.DatetimeIndex(ends))
    if (at_end < 0).any():
        raise ValueError("a window's end is not a time of the series")
    last = np.repeat(values[at_end][:, None], horizon, axis=1)
    seasonal = last.copy()
    tolerance = step / 2 if step > pd.Timedelta(0) else None
    for k in range(1, horizon + 1):
        lag = season * -(-k // season)  # season * ceil(k / season), in steps
        source = pd.DatetimeIndex(ends) + (k - lag) * step
        pos = index.get_indexer(source, method="nearest", tolerance=tolerance) if tolerance is not None \
            else index.get_indexer(source)
        found = pos >= 0
        seasonal[found, k - 1] = values[pos[found]]
    return {"naive-last": last, "naive-seasonal": seasonal}


def baseline_errors(forecast: np.ndarray, actual: np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """Mean squared, absolute and root mean squared error of `forecast`, divided by `scale`
    (the target's standard deviation on the train part gives the standardised ``val_*``
    metrics of the trials' rows; 1 gives the data's own units)."""
    err = (np.asarray(forecast, dtype=np.float64) - np.asarray(actual, dtype=np.float64)) / scale
    mse = float(np.mean(err ** 2))
    return {"mse": mse, "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(mse))}


def period_baselines(frame: pd.DataFrame, period: Any, lookback: int, horizon: int, validation: float | str,
                     season: int | None = None) -> dict[str, dict[str, float]]:
    """Each baseline's ``val_mse``, ``val_mae`` and ``val_rmse`` on a period's validation windows.

    The windows and the standardisation are those a trial with this lookback, horizon and
    validation is scored on (:func:`hpt.data.make_windows`), so the figures compare directly
    with a trial's row.
    """
    from hpt.data import frame_step, make_windows

    w = make_windows(frame, period, lookback, horizon, validation)
    assert w.val_ends is not None
    mean, std = float(w.mean[0]), float(w.std[0])
    actual = w.y_val.astype(np.float64) * std + mean
    step = frame_step(frame)
    forecasts = naive_forecasts(frame.iloc[:, 0], w.val_ends, horizon, step, season_length(step, season))
    out = {}
    for name, forecast in forecasts.items():
        e = baseline_errors(forecast, actual, std)
        out[name] = {f"val_{k}": v for k, v in e.items()}
    return out
