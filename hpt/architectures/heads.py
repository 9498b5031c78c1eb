"""What any architecture gets around it, by ``training.loss`` and ``training.scaler``: a quantile
head, per-window scaling (RevIN) and robust scaling. Each wraps the module a builder returned;
inputs and outputs stay in the globally standardised units every metric is computed in."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["Quantiles", "RobustScaled", "WindowScaled", "fit_scalers", "unscale"]


def unscale(out: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """A forecast made in scaled units back in the units its inputs came in: ``out * scale + shift``
    for a point forecast ``(B, horizon)`` or quantiles ``(B, horizon, Q)``; `scale` and `shift`
    are ``(B,)`` (one per window) or scalars."""
    shape = (-1,) + (1,) * (out.dim() - 1)
    return out * scale.reshape(shape) + shift.reshape(shape)


class WindowScaled(nn.Module):
    """Any model with per-window instance normalisation (RevIN, Kim et al., ICLR 2022): the
    target column of each window is shifted by its own mean and divided by its own standard
    deviation before `inner` sees it, and the forecast is scaled back; other columns pass as
    they are. Inputs and outputs are in the same (globally standardised) units as without it."""

    EPS = 1e-5

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        target = x[:, :, :1]
        mean = target.mean(dim=1, keepdim=True)
        scale = torch.sqrt(target.var(dim=1, keepdim=True, unbiased=False) + self.EPS)
        out = self.inner(torch.cat([(target - mean) / scale, x[:, :, 1:]], dim=2))
        return unscale(out, scale.reshape(-1), mean.reshape(-1))


class RobustScaled(nn.Module):
    """Any model on robustly scaled inputs (``training.scaler`` "robust"): each column shifted by
    its median and divided by its interquartile range on the train part (a column whose IQR is 0,
    e.g. a mostly constant feature, by its standard deviation instead); the target's forecast is
    scaled back. A spike in the train part then no longer squeezes the usual values into a sliver
    of the range, as a standard deviation it inflates does. The medians and IQRs are buffers,
    set by :meth:`fit` from the train part and saved with the weights; inputs and outputs are in
    the globally standardised units, as without it."""

    center: torch.Tensor
    spread: torch.Tensor

    def __init__(self, inner: nn.Module, n_features: int) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("center", torch.zeros(n_features))
        self.register_buffer("spread", torch.ones(n_features))

    def fit(self, train: np.ndarray) -> None:
        """Set the medians and IQRs from the train part's rows ``(rows, n_features)`` (standardised)."""
        q25, median, q75 = np.quantile(np.asarray(train, dtype=np.float64), [0.25, 0.5, 0.75], axis=0)
        iqr = q75 - q25
        iqr[~(iqr > 1e-12)] = 1.0  # the column's standard deviation: the rows are standardised
        self.center.copy_(torch.as_tensor(median, dtype=self.center.dtype))
        self.spread.copy_(torch.as_tensor(iqr, dtype=self.spread.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner((x - self.center) / self.spread)
        return unscale(out, self.spread[0], self.center[0])


def fit_scalers(model: nn.Module, train: Callable[[], np.ndarray]) -> None:
    """Give every scaler in `model` that learns from data (:class:`RobustScaled`) the train
    part's standardised rows ``(rows, n_features)``, which `train` returns (called only when one
    needs them); a model without one is left as it is."""
    scalers = [m for m in model.modules() if isinstance(m, RobustScaled)]
    if scalers:
        rows = train()
        for module in scalers:
            module.fit(rows)


class Quantiles(nn.Module):
    """Any model built with horizon x quantiles outputs, read as ``(B, horizon, quantiles)``:
    each step's quantiles sorted in increasing order, so they never cross."""

    def __init__(self, inner: nn.Module, horizon: int, quantiles: int) -> None:
        super().__init__()
        self.inner = inner
        self.horizon = horizon
        self.quantiles = quantiles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x).reshape(len(x), self.quantiles, self.horizon).transpose(1, 2)
        return torch.sort(out, dim=2).values

