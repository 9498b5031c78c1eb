"""Quantile forecasts' scores (``training.loss`` "quantile"), on torch tensors and numpy arrays alike:
the pinball loss, coverage, the point forecast, and quantiles for the naive baselines."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["coverage", "error_quantiles", "pinball", "point", "quantile_scores"]


def pinball(forecast: Any, actual: Any, quantiles: Any) -> Any:
    """The pinball (quantile) loss of each value: `forecast` ``(..., Q)`` against `actual` ``(...)``,
    with `quantiles` ``(Q,)``; ``q * d`` when the actual is above the forecast by d >= 0, else
    ``(1 - q) * -d``. Works on torch tensors and numpy arrays alike; its mean is ``val_pinball``."""
    d = actual[..., None] - forecast
    return (quantiles - (d < 0) * 1.0) * d


def coverage(forecast: Any, actual: Any) -> Any:
    """Whether each actual lies inside the outer quantiles of `forecast` ``(..., Q)`` (ends included)."""
    return (actual >= forecast[..., 0]) & (actual <= forecast[..., -1])


def point(forecast: Any, quantiles: tuple[float, ...] | None) -> Any:
    """The point forecast: the median of a quantile forecast ``(..., Q)``, else `forecast` itself."""
    return forecast if quantiles is None else forecast[..., quantiles.index(0.5)]


def quantile_scores(forecast: np.ndarray, actual: np.ndarray, quantiles: tuple[float, ...],
                    scale: float = 1.0) -> dict[str, float]:
    """``pinball`` (mean over values and quantiles, divided by `scale`) and ``coverage`` of a
    quantile forecast ``(N, horizon, Q)`` against `actual` ``(N, horizon)``."""
    q = np.asarray(quantiles, dtype=np.float64)
    f, a = np.asarray(forecast, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    return {"pinball": float(np.mean(pinball(f, a, q))) / scale, "coverage": float(np.mean(coverage(f, a)))}


def error_quantiles(forecast: np.ndarray, actual: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """The empirical quantiles of ``actual - forecast`` per horizon step, ``(horizon, Q)``: added to
    a point forecast, they make it a quantile forecast (how the naive baselines get quantiles)."""
    err = np.asarray(actual, dtype=np.float64) - np.asarray(forecast, dtype=np.float64)
    return np.quantile(err, list(quantiles), axis=0).T  # type: ignore[no-any-return]
