"""The validated spec's frozen objects: :class:`Spec` and its parts, and the metric names a spec may use."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from hpt.architectures import Architecture, get_architecture
from hpt.calendar import calendar_columns, with_calendar
from hpt.data import TIME_READING, DataError, ReadOptions, Table, read_data, time_reading
from hpt.fidelity import FULL, Fidelity
from hpt.future import mark_known_ahead
from hpt.hparams import QUANTILE_LOSSES, TRAINING
from hpt.periods import AutoPeriods, Period
from hpt.spec.search import SearchSpec
from hpt.static import ATTR, fit_encoding, read_series_values, with_static

__all__ = ["ALWAYS_METRICS", "DISTRIBUTIONS", "METRICS", "MAX_REPEATS", "OBJECTIVES", "PANEL_METRICS",
           "QUANTILE_METRICS", "REPEATS", "Axis", "DataSpec", "Distribution", "Spec", "config_losses"]

DISTRIBUTIONS = ("loguniform", "uniform", "int")

# short name -> result column; every column is also accepted as its own name
METRICS: dict[str, str] = {
    "mse": "val_mse",
    "mae": "val_mae",
    "rmse": "val_rmse",
    "pinball": "val_pinball",
    "coverage": "val_coverage",
    "train_loss": "train_loss",
    "train_time": "train_time_s",
    "best_epoch": "best_epoch",
    "epochs": "epochs",
    "n_params": "n_params",
    "infer_ms": "infer_ms",
    "mase": "val_mase",
}
ALWAYS_METRICS = ("val_mse", "val_mae", "val_rmse", "train_time_s", "epochs", "best_epoch", "n_params", "infer_ms")
OBJECTIVES = ("val_mse", "val_mae", "val_rmse", "val_pinball", "val_mase", "train_loss")
QUANTILE_METRICS = ("val_pinball", "val_coverage")  # rows of a quantile model (training.loss "quantile"/"mdn") only
PANEL_METRICS = ("val_mase",)  # rows of a spec over many series (data.series) only
REPEATS = "repeats"  # training.repeats: seeds per config and period
MAX_REPEATS = 100


@dataclass(frozen=True)
class DataSpec:
    path: str  # resolved: absolute, bundled or a URI
    time_column: str
    target: str
    features: tuple[str, ...] = ()
    options: ReadOptions = ReadOptions()  # time_format, time_unit, fill, fill_limit, duplicates
    season: int | None = None  # steps in one season for the seasonal-naive baseline; None: from the data's step
    calendar: tuple[str, ...] = ()  # data.calendar: hour, dow, dom, month, doy (hpt.calendar)
    future_features: tuple[str, ...] = ()  # data.future_features: columns known ahead (hpt.future)
    series_features: tuple[str, ...] = ()  # data.series_features: static per-series columns (hpt.static)

    @property
    def series(self) -> str | None:
        """``data.series``: the column naming each row's series (many series: :mod:`hpt.panel`), or None."""
        return self.options.series

    @property
    def columns(self) -> tuple[str, ...]:
        """The file's columns the models read: the target, the features, then the future features."""
        return (self.target, *self.features, *self.future_features)

    @property
    def known_ahead(self) -> tuple[str, ...]:
        """The input columns known for the forecast steps too: the future features and calendar columns."""
        return (*self.future_features, *calendar_columns(self.calendar))

    def read(self) -> Table:
        """The data; with ``data.calendar`` its calendar columns after the file's; the columns known
        ahead, if any, named in the frame's ``attrs`` (:func:`hpt.future.mark_known_ahead`)."""
        try:
            table = read_data(self.path, self.time_column, self.columns, self.options)
        except DataError as e:  # read_data numbers every column after the target as a feature
            found = tuple((self._key(path), message) for path, message in e.found)
            if found == e.found:
                raise
            raise DataError(*found[0], others=tuple(found[1:])) from None
        if self.series is not None:  # a panel's windows score each series against its own seasonal naive
            table.frame.attrs["season"] = self.season
        read_as = time_reading(self.options)
        if read_as:  # how its times were read: a saved model reads a file the same way (hpt predict)
            table.frame.attrs[TIME_READING] = read_as
        if not self.known_ahead and not self.series_features:
            return table
        frame = with_calendar(table.frame, self.calendar)
        if self.series_features:
            frame = self._with_series_features(frame)
        return dataclasses.replace(table, frame=mark_known_ahead(frame, self.known_ahead) if self.known_ahead else frame)

    def _key(self, path: str) -> str:
        """The spec key of a column :func:`read_data` numbered among the features: a future feature's own."""
        at = path.removeprefix("data.features[").rstrip("]")
        if path.startswith("data.features[") and at.isdigit() and int(at) >= len(self.features):
            return f"data.future_features[{int(at) - len(self.features)}]"
        return path

    def _with_series_features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A panel's `frame` with its static series features' inputs (:mod:`hpt.static`), their encoding fitted
        on the series it holds and named in its ``attrs`` for the model file."""
        assert self.series is not None
        values = read_series_values(self.path, self.series, self.series_features, self.options.series_filter)
        values = values.reindex(pd.Index(frame.index.get_level_values(0).unique(), name=self.series))
        encoding = fit_encoding(values)
        out = with_static(frame, encoding.encode(values)[0])
        out.attrs[ATTR] = encoding.to_json()
        return out


@dataclass(frozen=True)
class Distribution:
    """A range to sample from in random search."""

    kind: str  # loguniform | uniform | int
    low: float
    high: float

    def to_json(self) -> dict[str, list[float]]:
        return {self.kind: [self.low, self.high]}


Axis = tuple[Any, ...] | Distribution


@dataclass(frozen=True)
class Spec:
    """A validated experiment spec."""

    name: str
    architecture: str
    data: DataSpec
    periods: tuple[Period, ...]
    search: SearchSpec
    parameters: Mapping[str, Axis]
    training: Mapping[str, Any]  # fixed training values given in the spec
    metrics: tuple[str, ...]
    objective: str
    sink: str | None  # a folder relative to the spec's folder is made absolute, as data.path is
    source: str = "<spec>"
    document: Mapping[str, Any] = field(default_factory=dict)
    period_rule: AutoPeriods | None = None  # set when date_ranges is {"auto": ...}
    today: date = field(default_factory=date.today)  # the month automatic periods are drawn from
    fidelity: Fidelity = FULL  # QUICK: the one-month screening variant (see quick_spec)
    resources: Mapping[str, Any] = field(default_factory=dict)  # gpus, trials_per_gpu, executor, threads (options win)
    repeats: int = 1  # training.repeats: seeds per config and period; a period's value is their mean
    tracking: Mapping[str, Any] = field(default_factory=dict)  # mlflow (URI or true), experiment, tensorboard (DIR)
    folder: str | None = None  # the folder its relative paths were read from (the spec's); None: the current one

    @property
    def arch(self) -> Architecture:
        return get_architecture(self.architecture)

    @property
    def base_params(self) -> dict[str, Any]:
        """Every hyperparameter's value before the search varies the tuned ones."""
        base = {name: p.default for name, p in TRAINING.items()}
        base.update(self.arch.defaults)
        base.update(self.training)
        return base

    @property
    def losses(self) -> list[str]:
        """The training losses its configs use (``training.loss``, or each value ``parameters.loss`` tunes)."""
        return config_losses(self.parameters, self.training)

    @property
    def columns(self) -> tuple[str, ...]:
        """The metric columns of this spec's results, objective first (and the quantile metrics
        when a config trains on the quantile loss)."""
        quantile = QUANTILE_METRICS if set(QUANTILE_LOSSES) & set(self.losses) else ()
        panel = PANEL_METRICS if self.data.series is not None else ()
        return tuple(dict.fromkeys((self.objective, *ALWAYS_METRICS, *quantile, *panel, *self.metrics)))


def config_losses(parameters: Mapping[str, Axis], training: Mapping[str, Any]) -> list[str]:
    """The training losses the configs of a search use."""
    axis = parameters.get("loss")
    return [str(v) for v in axis] if isinstance(axis, tuple) else [str(training.get("loss", TRAINING["loss"].default))]
