"""Forecasting many windows with a model: in batches of :data:`BATCH`, in eval mode, without gradients.

Every place hpt runs a model over many windows goes through :func:`batches`: a trial's
validation score (:func:`hpt.train.evaluate`), ``hpt final``'s hold-out forecasts, and a saved
model's :meth:`~hpt.model_io.TrainedModel.predict_windows` (``hpt predict``). Torch is
imported when a model runs, not with this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["BATCH", "batches", "forecast"]

BATCH = 8192
"""Windows per forward pass: bounds the memory one pass takes (its inputs and activations)."""


def batches(model: Any, x: Any, batch: int = BATCH, *, at: np.ndarray | None = None,
            prepare: Callable[[Any], Any] | None = None) -> Iterator[tuple[int, Any]]:
    """`model`'s output for each batch of windows, in order, with the position of its first window.

    `x` is a tensor of windows on the model's device, or a NumPy array (each batch is moved to
    the model's device as it runs). With `at`, the windows are ``x[at]``, taken one batch at a
    time, so ``x`` may be a view of every window of a series without copying them all.
    `prepare` turns a batch into the model's input (scaling it, for one).
    """
    import torch

    model.eval()
    device = next((p.device for p in model.parameters()), None)
    count = len(x) if at is None else len(at)
    for i in range(0, count, batch):
        chunk = x[i:i + batch] if at is None else x[at[i:i + batch]]
        if prepare is not None:
            chunk = prepare(chunk)
        if isinstance(chunk, np.ndarray):
            chunk = torch.from_numpy(chunk)
        if device is not None:
            chunk = chunk.to(device)
        with torch.no_grad():
            yield i, model(chunk)


def forecast(model: Any, x: Any, batch: int = BATCH, *, at: np.ndarray | None = None,
             prepare: Callable[[Any], Any] | None = None) -> np.ndarray:
    """`model`'s forecasts for every window (see :func:`batches`) as one float64 NumPy array on the CPU:
    ``(N, horizon)``, or ``(N, horizon, quantiles)`` for a quantile model; ``(0,)`` for no windows."""
    parts = [out.float().cpu().numpy() for _, out in batches(model, x, batch, at=at, prepare=prepare)]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
