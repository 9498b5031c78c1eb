"""Hyperparameter declarations: one checker serves the spec's `training`, its grids and
distributions, and every architecture's own arguments."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hpt.errors import did_you_mean, show

__all__ = ["Constraint", "HParam", "LOSSES", "LR_SCHEDULES", "QUANTILE_LOSSES", "SCALERS", "TRAINING", "WINDOW_KEYS",
           "id_params", "parse_validation", "quantile_name", "quantiles_of"]

LOSSES = ("mse", "mae", "huber", "quantile", "mdn")
QUANTILE_LOSSES = ("quantile", "mdn")
"""The losses whose models forecast quantiles (``training.quantiles``): pinball-trained, or read off a mixture."""
WINDOW_KEYS = ("lookback", "horizon", "validation")
"""The hyperparameters that decide a trial's validation windows: a baseline is scored once per distinct setting."""
DEFAULT_QUANTILES = [0.1, 0.5, 0.9]
SCALERS = ("standard", "window", "robust")
LR_SCHEDULES = ("plateau", "cosine")

_KIND_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false"}


@dataclass(frozen=True)
class HParam:
    """A named hyperparameter: its default, its type and its admissible values."""

    name: str
    default: Any
    kind: str = "float"  # int | float | str | bool | any
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    nullable: bool = False
    check: Callable[[Any], str | None] | None = None
    help: str = ""
    # Left out of config ids at its default: a key added after ids existed keeps every earlier id.
    new_key: bool = False
    required: bool = False  # a builder's argument without a default: the spec must give it (under "parameters")

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "float") and self.choices is None and self.check is None

    def describe(self) -> str:
        """The admissible values in words, e.g. 'a number > 0'."""
        if self.choices is not None:
            return "one of " + ", ".join(show(c) for c in self.choices)
        words = _KIND_WORDS.get(self.kind, "a value")
        bounds = []
        if self.low is not None:
            bounds.append(f"{'>' if self.low_open else '>='} {_num(self.low)}")
        if self.high is not None:
            bounds.append(f"{'<' if self.high_open else '<='} {_num(self.high)}")
        text = words + (" " + " and ".join(bounds) if bounds else "")
        return text + (" or null" if self.nullable else "")

    def problem(self, value: Any) -> str | None:
        """Why `value` is not admissible, or None when it is."""
        if value is None:
            return None if self.nullable else f"expected {self.describe()}, got null"
        if self.check is not None:
            return self.check(value)
        if self.choices is not None:
            if value in self.choices:
                return None
            hint = did_you_mean(value, [c for c in self.choices if isinstance(c, str)]) if isinstance(value, str) else ""
            return f"expected {self.describe()}, got {show(value)}{hint}"
        if not _is_kind(value, self.kind):
            return f"expected {self.describe()}, got {show(value)}"
        if self.kind in ("int", "float"):
            if not math.isfinite(value):
                return f"expected {self.describe()}, got {show(value)}"
            too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
            too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
            if too_low or too_high:
                return f"expected {self.describe()}, got {show(value)}"
        return None


@dataclass(frozen=True)
class Constraint:
    """A rule over several hyperparameters that no single one's range can say, e.g. that
    ``d_model`` is a multiple of ``num_heads``; the spec checks it before anything trains."""

    names: tuple[str, ...]  # the hyperparameters `check` reads; the first tuned one is blamed
    check: Callable[[dict[str, Any]], str | None]  # values by name -> why they do not go together, or None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if isinstance(value, bool):
        return kind == "bool"
    if kind == "int":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "float":
        return isinstance(value, (int, float))
    if kind == "str":
        return isinstance(value, str)
    return False


_DURATION = re.compile(r"^\s*\d+\s*[A-Za-z]+\s*$")
_MONTHS = re.compile(r"^\s*(\d+)\s*M\s*$")


def parse_validation(value: Any) -> float | pd.Timedelta | pd.DateOffset:
    """`validation` is a fraction of each period (0.2) or a duration at its end ("7D", "2W", "12h"; "1M": calendar
    months, as ``--holdout`` takes them)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, (int, float)):
        if 0 < value < 1:
            return float(value)
        raise ValueError(value)
    months = _MONTHS.match(value) if isinstance(value, str) else None
    if months and int(months[1]) > 0:
        return pd.DateOffset(months=int(months[1]))
    if isinstance(value, str) and _DURATION.match(value):
        delta = pd.Timedelta(value)
        if delta > pd.Timedelta(0):
            return delta
    raise ValueError(value)


def _check_validation(value: Any) -> str | None:
    try:
        parse_validation(value)
    except (ValueError, TypeError):
        return f'expected a fraction between 0 and 1 or a duration such as "7D" or "1M", got {show(value)}'
    return None


def _check_quantiles(value: Any) -> str | None:
    ok = isinstance(value, list) and value and all(_is_kind(q, "float") and math.isfinite(q) for q in value)
    if not ok:
        return f"expected a list of numbers between 0 and 1 such as [0.1, 0.5, 0.9], got {show(value)}"
    outside = [q for q in value if not 0 < q < 1]
    if outside:
        return f"each quantile must be between 0 and 1 (exclusive), got {show(outside[0])}"
    if list(value) != sorted(set(value)):
        return f"expected increasing quantiles without repeats, got {show(value)}"
    if 0.5 not in value:
        return f"must include 0.5: the median is the point forecast (mse, mae, rmse), got {show(value)}"
    if len(value) == 1:
        return ('[0.5] alone is a median forecast, with no interval for coverage: add quantiles on both sides '
                '(such as [0.1, 0.5, 0.9]), or train the median with "loss": "mae"')
    return None


def quantiles_of(params: dict[str, Any]) -> tuple[float, ...] | None:
    """The quantiles a model forecasts (``training.loss`` "quantile" or "mdn"), or None for a point forecast."""
    if params.get("loss") not in QUANTILE_LOSSES:
        return None
    return tuple(float(q) for q in params.get("quantiles", DEFAULT_QUANTILES))


def quantile_name(q: float) -> str:
    """A quantile's column name: 0.1 -> "p10", 0.025 -> "p2.5"."""
    return f"p{round(q * 100, 6):g}"


TRAINING: dict[str, HParam] = {
    p.name: p
    for p in (
        HParam("epochs", 20, "int", low=1, help="maximum number of passes over the training windows"),
        HParam("batch_size", 64, "int", low=1, help="windows per optimisation step"),
        HParam("lookback", 48, "int", low=1, help="past time steps the model sees"),
        HParam("horizon", 1, "int", low=1, help="future time steps the model predicts"),
        HParam("validation", 0.2, "any", check=_check_validation,
               help='held-out end of each period: a fraction (0.2) or a duration ("7D")'),
        HParam("optimizer", "adam", "str", choices=("adam", "adamw", "sgd"), help="optimiser"),
        HParam("lr", 1e-3, "float", low=0, low_open=True, help="initial learning rate"),
        HParam("lr_decay", 0.5, "float", low=0, high=1, low_open=True,
               help="factor applied to lr when validation loss plateaus (1 = never)"),
        HParam("lr_patience", 3, "int", low=0, help="epochs without improvement before lr decays"),
        HParam("patience", 10, "int", low=0, help="epochs without improvement before stopping (0 = never)"),
        HParam("weight_decay", 0.0, "float", low=0, help="L2 penalty"),
        HParam("grad_clip", None, "float", low=0, low_open=True, nullable=True,
               help="clip the gradient norm to this value (null = no clipping)"),
        HParam("seed", 0, "int", low=0, help="random seed of weights and batch order"),
        HParam("amp", "off", "str", choices=("off", "bf16", "fp16"),
               help="mixed precision on CUDA GPUs (the CPU always trains in fp32)"),
        HParam("loss", "mse", "str", choices=LOSSES, new_key=True,
               help="training loss: mse, mae, huber (see huber_delta), quantile (see quantiles) or mdn (a mixture "
                    "of Gaussians per step on its negative log-likelihood, see mdn_components)"),
        HParam("huber_delta", 1.0, "float", low=0, low_open=True, new_key=True,
               help="huber loss: errors above this (standardised units) count linearly"),
        HParam("quantiles", DEFAULT_QUANTILES, "any", check=_check_quantiles, new_key=True,
               help="quantile and mdn losses: the quantiles forecast, increasing, between 0 and 1, with 0.5 (the "
                    "point forecast); a quantile model is trained on their mean pinball loss"),
        HParam("mdn_components", 3, "int", low=1, high=16, new_key=True,
               help="mdn loss: Gaussians in each step's mixture"),
        HParam("lr_schedule", "plateau", "str", choices=LR_SCHEDULES, new_key=True,
               help="plateau (lr times lr_decay when the monitored loss has not improved for lr_patience epochs) "
                    "or cosine (lr falls along a half cosine to 0 over the epochs, batch by batch, so the last "
                    "weights are settled, not the last of a noisy walk; lr_decay and lr_patience unused)"),
        HParam("scaler", "standard", "str", choices=SCALERS, new_key=True,
               help="standard (each column by its train part's mean and std), window (also each input "
                    "window's target by its own, the forecast scaled back: RevIN) or robust (each column by its "
                    "train part's median and interquartile range)"),
    )
}


def id_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` as config ids see them: a training key added after ids existed (``new_key``) is
    left out at its default, so a spec that does not set it keeps the ids it always had."""
    return {k: v for k, v in params.items()
            if not ((hp := TRAINING.get(k)) is not None and hp.new_key and v == hp.default)}
