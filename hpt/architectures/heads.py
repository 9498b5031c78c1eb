"""What any architecture gets around it, by ``training.loss`` and ``training.scaler``: a quantile
head, a mixture density head, per-window scaling (RevIN) and robust scaling. Each wraps the module
a builder returned; inputs and outputs stay in the globally standardised units every metric is
computed in."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["Mixture", "MixtureNLL", "Quantiles", "RobustScaled", "WindowScaled", "fit_scalers", "mixture_quantiles",
           "unscale"]


def unscale(out: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """A forecast made in scaled units back in the units its inputs came in: ``out * scale + shift``
    for a point forecast ``(B, horizon)`` or quantiles ``(B, horizon, Q)``; of a mixture's
    parameters ``(B, horizon, K, 3)`` (:class:`Mixture` in training) the means so and the standard
    deviations times `scale`, the weights as they are. `scale` and `shift` are ``(B,)`` (one per
    window) or scalars."""
    if out.dim() == 4:
        s, m = scale.reshape(-1, 1, 1), shift.reshape(-1, 1, 1)
        return torch.stack([out[..., 0], out[..., 1] * s + m, out[..., 2] * s], dim=-1)
    shape = (-1,) + (1,) * (out.dim() - 1)
    return out * scale.reshape(shape) + shift.reshape(shape)


class WindowScaled(nn.Module):
    """Any model with per-window instance normalisation (RevIN, Kim et al., ICLR 2022): the
    target column of each window is shifted by its own mean and divided by its own standard
    deviation before `inner` sees it, and the forecast is scaled back; other columns pass as
    they are. Inputs and outputs are in the same (globally standardised) units as without it. Only the
    first `lookback` rows are the window's: rows after them (the forecast steps' inputs known ahead,
    :mod:`hpt.future`) keep their target at 0."""

    EPS = 1e-5

    def __init__(self, inner: nn.Module, lookback: int) -> None:
        super().__init__()
        self.inner = inner
        self.lookback = lookback

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        target = x[:, :self.lookback, :1]
        mean = target.mean(dim=1, keepdim=True)
        scale = torch.sqrt(target.var(dim=1, keepdim=True, unbiased=False) + self.EPS)
        future = x[:, self.lookback:, :1]
        out = self.inner(torch.cat([torch.cat([(target - mean) / scale, future], dim=1), x[:, :, 1:]], dim=2))
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



class Mixture(nn.Module):
    """Any model built with horizon x components x 3 outputs as a mixture density network
    (``training.loss`` "mdn"): each step's forecast is a mixture of `components` Gaussians.

    In training it returns the mixture's parameters ``(B, horizon, components, 3)``: each
    Gaussian's weight logit, mean and standard deviation (softplus, at least MIN_SIGMA), which
    :class:`MixtureNLL` scores. Evaluating (``eval()``: validation, ``hpt final``, ``hpt predict``)
    it returns the mixture's `quantiles` ``(B, horizon, Q)``, increasing, as a quantile model does,
    so every metric, the pinball loss and coverage included, is computed as for one.
    """

    MIN_SIGMA = 1e-3  # standardised units: a component never collapses onto a training value

    quantiles: torch.Tensor

    def __init__(self, inner: nn.Module, horizon: int, components: int, quantiles: tuple[float, ...]) -> None:
        super().__init__()
        self.inner = inner
        self.horizon = horizon
        self.components = components
        self.register_buffer("quantiles", torch.tensor(quantiles, dtype=torch.float32), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raw = self.inner(x).reshape(len(x), self.horizon, self.components, 3)
        sigma = nn.functional.softplus(raw[..., 2]) + self.MIN_SIGMA
        params = torch.stack([raw[..., 0], raw[..., 1], sigma], dim=-1)
        if self.training:
            return params
        return mixture_quantiles(params, self.quantiles)


def mixture_quantiles(params: torch.Tensor, quantiles: torch.Tensor, steps: int = 40) -> torch.Tensor:
    """The `quantiles` ``(Q,)`` of each mixture ``(..., K, 3)`` (weight logit, mean, standard
    deviation): ``(..., Q)``, by bisection on the mixture's distribution function between its
    lowest mean - 8 standard deviations and its highest + 8; increasing, since that function is."""
    p = params.float()
    weight = torch.softmax(p[..., 0], dim=-1).unsqueeze(-2)  # (..., 1, K)
    mean, sigma = p[..., 1].unsqueeze(-2), p[..., 2].unsqueeze(-2)
    q = quantiles.to(p.device, torch.float32)
    shape = (*p.shape[:-2], len(q))
    lo = (mean - 8 * sigma).amin(dim=-1).expand(shape).clone()
    hi = (mean + 8 * sigma).amax(dim=-1).expand(shape).clone()
    for _ in range(steps):
        mid = (lo + hi) / 2
        cdf = (weight * 0.5 * (1 + torch.erf((mid.unsqueeze(-1) - mean) / (sigma * math.sqrt(2))))).sum(dim=-1)
        below = cdf < q
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return torch.sort((lo + hi) / 2, dim=-1).values.to(params.dtype)


class MixtureNLL(nn.Module):
    """The mean negative log-likelihood of the targets ``(B, horizon)`` under each step's mixture
    ``(B, horizon, K, 3)`` (:class:`Mixture` in training), in standardised units."""

    def forward(self, params: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
        logit, mean, sigma = params.unbind(dim=-1)
        z = (actual.unsqueeze(-1) - mean) / sigma
        log_density = -0.5 * z.pow(2) - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
        return -torch.logsumexp(torch.log_softmax(logit, dim=-1) + log_density, dim=-1).mean()
