"""Load and validate a JSON experiment spec into a frozen :class:`Spec`.

Every problem is collected with its JSON path (``parameters.lr[2]``) and all of them are
raised together as one :class:`~hpt.errors.SpecError`, before anything trains.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpt.architectures import Architecture, future_problem, get_architecture
from hpt.calendar import CALENDAR, calendar_columns, with_calendar
from hpt.data import DUPLICATES, FILLS, TIME_UNITS, DataError, ReadOptions, Table, read_data, resolve_data_path
from hpt.errors import InputError, Problem, SpecError, did_you_mean, show
from hpt.future import mark_known_ahead
from hpt.hparams import QUANTILE_LOSSES, TRAINING, Constraint, HParam
from hpt.periods import AutoPeriods, Period, auto_periods, parse_time, quick_period
from hpt.progress import plural
from hpt.scheduling.strategies import (
    FINALISTS,
    SHARED_KEYS,
    STRATEGIES,
    TPE_STARTUP,
    Budget,
    EarlyStopping,
    check_shared,
)
from hpt.windows import WindowCount, count_windows, frame_step, step_text, window_problem, window_report

__all__ = [
    "DISTRIBUTIONS",
    "METRICS",
    "DataSpec",
    "Distribution",
    "SearchSpec",
    "Spec",
    "QUICK_EPOCHS",
    "check_data",
    "data_report",
    "load_spec",
    "parse_spec",
    "quick_spec",
]

log = logging.getLogger("hpt")

DISTRIBUTIONS = ("loguniform", "uniform", "int")
QUICK_EPOCHS = 20

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
}
ALWAYS_METRICS = ("val_mse", "val_mae", "val_rmse", "train_time_s", "epochs", "best_epoch", "n_params", "infer_ms")
OBJECTIVES = ("val_mse", "val_mae", "val_rmse", "val_pinball", "train_loss")
QUANTILE_METRICS = ("val_pinball", "val_coverage")  # rows of a quantile model (training.loss "quantile"/"mdn") only

_TOP = ("name", "description", "architecture", "data", "date_ranges", "search", "parameters",
        "training", "metrics", "objective", "sink", "resources", "tracking")
_ALIASES = {"date-range": "date_ranges"}
_DATA = ("path", "time_column", "target", "features", "time_format", "time_unit", "fill", "fill_limit", "duplicates",
         "season", "calendar", "future_features")
_AUTO_PERIODS = ("count", "months", "holdout")
_RESOURCES = ("gpus", "trials_per_gpu", "executor", "threads")
_TRACKING = ("mlflow", "experiment", "tensorboard")
_EXECUTORS = ("local", "ray")
REPEATS = "repeats"  # training.repeats: seeds per config and period
MAX_REPEATS = 100
MIN_TRAIN_WINDOWS = 100  # fewer in a period: validate and run warn
_MAX_CONSTRAINT_COMBINATIONS = 10**5  # beyond this many, a constraint is left to the run-time check


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
            at = e.json_path.removeprefix("data.features[").rstrip("]")
            if e.json_path.startswith("data.features[") and at.isdigit() and int(at) >= len(self.features):
                raise DataError(f"data.future_features[{int(at) - len(self.features)}]", e.message) from None
            raise
        if not self.known_ahead:
            return table
        return dataclasses.replace(table, frame=mark_known_ahead(with_calendar(table.frame, self.calendar),
                                                                 self.known_ahead))


@dataclass(frozen=True)
class SearchSpec:
    strategy: str = "grid"
    max_trials: int | None = None
    seed: int = 0
    startup_trials: int = TPE_STARTUP  # tpe: configs drawn at random before the sampler models results
    early_stopping: EarlyStopping | None = None
    budget: Budget | None = None
    warm_start: tuple[str, ...] = ()  # results locations whose rows seed the search
    finalists: int = FINALISTS  # configs a search with early stopping completes on every period at its end (0: none)
    race: bool = False  # configs run period by period; the worse ones are dropped after each period


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
    fidelity: str = "full"  # "quick": the one-month screening variant (see quick_spec)
    resources: Mapping[str, Any] = field(default_factory=dict)  # gpus, trials_per_gpu, executor, threads (options win)
    repeats: int = 1  # training.repeats: seeds per config and period; a period's value is their mean
    tracking: Mapping[str, Any] = field(default_factory=dict)  # mlflow (URI or true), experiment, tensorboard (DIR)

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
        return _losses(self.parameters, self.training)

    @property
    def columns(self) -> tuple[str, ...]:
        """The metric columns of this spec's results, objective first (and the quantile metrics
        when a config trains on the quantile loss)."""
        quantile = QUANTILE_METRICS if set(QUANTILE_LOSSES) & set(self.losses) else ()
        return tuple(dict.fromkeys((self.objective, *ALWAYS_METRICS, *quantile, *self.metrics)))


def load_spec(path: str | Path, today: date | None = None) -> Spec:
    """Read, parse and validate a spec file, its data included.

    `today` (default: the current date) picks automatic periods and the screening month.
    """
    source = str(path)
    p = Path(path)
    if not p.is_file():
        raise SpecError(source, [Problem("", "spec file not found" if not p.exists() else "not a file")])
    try:
        document = json.loads(p.read_text(encoding="utf-8-sig"), object_pairs_hook=_KeyedObject)  # a BOM is fine
    except json.JSONDecodeError as e:
        raise SpecError(source, [Problem("", f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}")]) from None
    except UnicodeDecodeError:
        raise SpecError(source, [Problem("", "not a UTF-8 text file")]) from None
    twice = list(_repeated_keys(document))
    if twice:
        raise SpecError(source, twice)
    return parse_spec(document, source=source, base_dir=p.resolve().parent, default_name=p.stem, today=today)


class _KeyedObject(dict):  # type: ignore[type-arg]
    """A JSON object that remembers the keys its text gave more than once (json keeps only the last value)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated = {k: n for k, n in Counter(k for k, _ in pairs).items() if n > 1}


def _repeated_keys(value: Any, where: str = "") -> Iterator[Problem]:
    """A problem for each key given twice in one object, at its JSON path, in document order."""
    if isinstance(value, dict):
        for key, n in getattr(value, "repeated", {}).items():
            yield Problem(_join(where, key), f"given {n} times in the same object (JSON would keep only the last "
                                             "one and drop the others): merge them into one")
        for key, v in value.items():
            yield from _repeated_keys(v, _join(where, key))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _repeated_keys(v, f"{where}[{i}]")


def parse_spec(document: Any, source: str = "<spec>", base_dir: Path | None = None,
               default_name: str = "experiment", today: date | None = None) -> Spec:
    """Validate a spec document, its data included; every problem is raised together."""
    return _Parser(source, base_dir, today or date.today()).parse(document, default_name)


def quick_spec(spec: Spec) -> Spec:
    """The screening variant: one period of the last whole month of data before `spec.today`,
    at most QUICK_EPOCHS epochs. Its trials get their own ids (fidelity "quick")."""
    frame = check_data(spec)
    first, last, step = _span(frame)
    try:
        period = quick_period(first, last, step, spec.today, spec.period_rule.holdout if spec.period_rule else 0)
    except ValueError as e:
        raise SpecError(spec.source, [Problem("date_ranges", f"--quick: {e}")]) from None
    quick = dataclasses.replace(spec, periods=(period,), fidelity="quick")
    check_data(quick)
    return quick


def check_data(spec: Spec) -> pd.DataFrame:
    """Read the spec's data and check that every period can be windowed; return the data."""
    extremes = _window_extremes(spec.parameters, spec.training)
    places = [(f"date_ranges[{i}]" if spec.period_rule is None else "date_ranges.auto", p)
              for i, p in enumerate(spec.periods)]
    frame, problems = _data_problems(spec.data, places, extremes)
    if spec.fidelity == "quick":
        problems = [Problem(pr.path, f"--quick: screening {pr.message}") for pr in problems]
    if problems or frame is None:
        raise SpecError(spec.source, problems)
    return frame


def data_report(spec: Spec, frame: pd.DataFrame) -> dict[str, Any]:
    """For the run record: how the data was read and what each period gives.

    Window counts are for the largest lookback and horizon the search can pick (the most
    windows a gap can cost) and the first validation setting.
    """
    lookback, horizon, validation = _window_extremes(spec.parameters, spec.training)[0]
    o = spec.data.options
    return {"time_format": o.time_format, "time_unit": o.time_unit, "fill": o.fill, "fill_limit": o.fill_limit,
            "duplicates": o.duplicates, **window_report(frame, spec.periods, lookback, horizon, validation)}


def _span(frame: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]:
    """First and last timestamp, and the series' step (its most common time difference)."""
    return frame.index[0], frame.index[-1], frame_step(frame)


def _data_problems(data: DataSpec, periods: list[tuple[str, Period]], extremes: list[tuple[int, int, Any]],
                   ) -> tuple[pd.DataFrame | None, list[Problem]]:
    try:
        table = data.read()
    except DataError as e:
        return None, [Problem(e.json_path, e.message)]
    frame = table.frame
    problems = []
    first, last, step = _span(frame)
    outside = table.duplicates
    for where, period in periods:  # where: the period's JSON path in the spec
        refused = False
        if period.start < first or period.end > last + step:
            problems.append(Problem(where, f"period {period} reaches outside the data ({first} to {last})"))
            refused = True
        inside = (outside.index >= period.start) & (outside.index < period.end)
        if inside.any():  # said for a period refused above too: it is the next thing to fix there
            problems.append(Problem(where, _duplicates_message(period, outside[inside], data.time_column)))
            outside = outside[~inside]
            refused = True
        if refused:
            continue
        for lookback, horizon, validation in extremes:
            msg = window_problem(frame, period, lookback, horizon, validation)
            if msg:
                problems.append(Problem(where, msg))
                break
        else:
            count = count_windows(frame, period, *extremes[0])
            _say_gaps(count, step, extremes[0])
            _say_few_windows(count, where, step, extremes[0])
    if len(outside) and len(outside) == len(table.duplicates):
        _say_once(f'{Path(data.path).name}: {plural(len(outside), "duplicated timestamp")} in "{data.time_column}" '
                  f"outside the periods used (first: {outside.index[0]}, rows {_rows(outside.iloc[0])}); "
                  "no trial uses them")
    return frame, problems


def _duplicates_message(period: Period, dups: pd.Series, time_column: str) -> str:
    return (f'period {period} holds {plural(len(dups), "duplicated timestamp")} in "{time_column}" (first: '
            f"{dups.index[0]}, rows {_rows(dups.iloc[0])}): remove them or set data.duplicates to "
            + ", ".join(f'"{d}"' for d in DUPLICATES[:-1]) + f' or "{DUPLICATES[-1]}"')


def _rows(rows: tuple[int, ...]) -> str:
    return ", ".join(map(str, rows[:-1])) + f" and {rows[-1]}"


def _say_gaps(count: WindowCount, step: pd.Timedelta, extremes: tuple[int, int, Any]) -> None:
    if not count.gaps:
        return
    lookback, horizon, _ = extremes
    _say_once(f"period {count.period}: {plural(count.gaps, 'gap')} ({plural(count.missing_steps, 'missing step')} "
              f"of {step_text(step)}): {count.skipped_train} of {count.train + count.skipped_train} train and "
              f"{count.skipped_val} of {count.val + count.skipped_val} validation windows span one and are not used "
              f"(lookback {lookback}, horizon {horizon}; data.fill fills gaps)")


def _say_few_windows(count: WindowCount, where: str, step: pd.Timedelta, extremes: tuple[int, int, Any]) -> None:
    if count.train >= MIN_TRAIN_WINDOWS:
        return
    lookback, horizon, validation = extremes
    _say_once(f"period {count.period} ({where}) leaves {plural(count.train, 'training window')} ({step_text(step)} "
              f"steps; lookback {lookback}, horizon {horizon}, validation {show(validation)}): fewer than "
              f"{MIN_TRAIN_WINDOWS}, too few to train on; use longer periods, or a shorter lookback, horizon or "
              "validation")


_said: set[str] = set()


def _say_once(message: str) -> None:
    """A warning once per process: validating and then running a spec checks its data twice."""
    if message not in _said:
        _said.add(message)
        log.warning("%s", message)


def _window_extremes(parameters: Mapping[str, Axis], training: Mapping[str, Any]) -> list[tuple[int, int, Any]]:
    """The largest lookback and horizon the search can pick, with each validation setting."""
    def values(name: str) -> list[Any]:
        axis = parameters.get(name)
        if axis is None:
            return [training.get(name, TRAINING[name].default)]
        return [axis.high] if isinstance(axis, Distribution) else list(axis)

    lookback = int(max(values("lookback")))
    horizon = int(max(values("horizon")))
    return [(lookback, horizon, v) for v in values("validation")]


class _Parser:
    def __init__(self, source: str, base_dir: Path | None, today: date) -> None:
        self.source = source
        self.base_dir = base_dir
        self.today = today
        self.problems: list[Problem] = []
        self.period_places: list[tuple[str, Period]] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def parse(self, doc: Any, default_name: str) -> Spec:
        if not isinstance(doc, dict):
            raise SpecError(self.source, [Problem("", f"expected a JSON object at the top, got {_type(doc)}")])
        doc = dict(doc)
        for alias, key in _ALIASES.items():
            if alias in doc:
                if key in doc:
                    self.add(alias, f'"{alias}" and "{key}" are the same setting; keep one')
                doc[key] = doc.pop(alias)
        self.unknown_keys(doc, _TOP, "")
        name = self.string(doc, "name", "", default=default_name)
        if name and (problem := _name_problem(name)):
            self.add("name", problem + ("" if "name" in doc else ' (the name comes from the file name: set "name")'))
        architecture = self.string(doc, "architecture", "")
        arch = None
        if architecture:
            try:
                arch = get_architecture(architecture, self.base_dir)
            except InputError as e:
                self.add("architecture", str(e))
        data = self.data(doc.get("data"))
        periods = self.periods(doc.get("date_ranges"))
        rule = periods if isinstance(periods, AutoPeriods) else None
        search = self.search(doc.get("search", {}))
        training = self.training(doc.get("training", {}), arch)
        repeats = self.repeats(doc.get("training"))
        parameters = self.parameters(doc.get("parameters", {}), arch, search)
        for name in sorted(set(training) & set(parameters)):
            log.warning("%s: training.%s is not used: parameters.%s tunes it", self.source, name, name)
        if arch is not None:
            self.constraints(arch, doc.get("parameters"), parameters, training)
            if data is not None and (problem := future_problem(arch, data.known_ahead)):
                self.add("architecture", problem)
        if search.early_stopping is not None:
            self.stopping_epochs(search.early_stopping, parameters, training)
        if search.strategy == "auto" and arch is not None:
            # the architecture's built-in learning-rate ranges, unless the spec gives its own
            parameters = {**_auto_axes(arch), **parameters}
        metrics = self.metrics(doc.get("metrics", []))
        objective = self.objective(doc.get("objective", "val_mse"))
        self.quantile_metrics(objective, metrics, parameters, training)
        resources = self.resources(doc.get("resources", {}))
        tracking = self.tracking(doc.get("tracking", {}))
        sink = self.sink(doc.get("sink"))
        if data is not None and periods:  # the data's problems are reported with the rest
            if rule is not None:
                periods = self.resolve_auto(data, rule)
            if periods:
                _, problems = _data_problems(data, self.period_places, _window_extremes(parameters, training))
                self.problems += problems
        if self.problems:
            raise SpecError(self.source, self.problems)
        assert data is not None and architecture
        assert isinstance(periods, tuple)
        return Spec(name=name, architecture=architecture, data=data, periods=periods, search=search,
                    parameters=parameters, training=training, metrics=metrics, objective=objective,
                    sink=sink, source=self.source, document=doc, period_rule=rule, today=self.today,
                    resources=resources, repeats=repeats, tracking=tracking)

    def quantile_metrics(self, objective: str, metrics: tuple[str, ...], parameters: Mapping[str, Axis],
                         training: Mapping[str, Any]) -> None:
        """val_pinball and val_coverage exist only for quantile models: asking for them needs
        training.loss "quantile" (or "mdn") in every config."""
        others = [loss for loss in _losses(parameters, training) if loss not in QUANTILE_LOSSES]
        if not others:
            return
        where = "parameters.loss" if "loss" in parameters else "training.loss"
        asked = [("objective", objective)] if objective in QUANTILE_METRICS else []
        asked += [("metrics", m) for m in metrics if m in QUANTILE_METRICS]
        for place, metric in asked[:1]:
            self.add(place, f'{metric} needs training.loss "quantile" or "mdn" in every config, but {where} '
                            f'gives {show(others[0])}: set "loss": "quantile" (and "quantiles")')

    def sink(self, value: Any) -> str | None:
        """A folder is relative to the spec's folder, as data.path is; a gs:// or s3:// URI stays as it is."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.add("sink", f"expected a folder path or a gs:// or s3:// URI, got {show(value)}")
            return None
        from hpt.sinks import check_uri

        try:
            check_uri(value)
        except InputError as e:
            self.add("sink", str(e))
            return None
        return self.folder(value)

    def folder(self, path: str) -> str:
        """A local folder named in the spec, relative to the spec's folder; a URI as it is."""
        if "://" in path or self.base_dir is None:
            return path
        return str(self.base_dir / Path(path).expanduser())

    def resolve_auto(self, data: DataSpec, rule: AutoPeriods) -> tuple[Period, ...]:
        try:
            frame = data.read().frame
        except DataError as e:
            self.add(e.json_path, e.message)
            return ()
        try:
            periods = auto_periods(rule, *_span(frame), self.today)
        except ValueError as e:
            self.add("date_ranges.auto", str(e))
            return ()
        self.period_places = [("date_ranges.auto", p) for p in periods]
        return periods

    # -- helpers -------------------------------------------------------------------------

    def unknown_keys(self, obj: dict[str, Any], valid: tuple[str, ...], where: str) -> None:
        for key in obj:
            if key not in valid:
                self.add(_join(where, key), f"unknown key{_hint(key, valid, where)}; valid: {', '.join(valid)}")

    def string(self, obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        path = _join(where, key)
        if key not in obj:
            if default is None:
                self.add(path, "missing (required)")
                return ""
            return default
        value = obj[key]
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"expected a non-empty string, got {show(value)}")
            return ""
        return value

    def section(self, value: Any, where: str, required: bool = False) -> dict[str, Any] | None:
        if value is None and required:
            self.add(where, "missing (required)")
            return None
        if not isinstance(value, dict):
            self.add(where, f"expected an object, got {show(value)}")
            return None
        return value

    # -- sections ------------------------------------------------------------------------

    def data(self, value: Any) -> DataSpec | None:
        obj = self.section(value, "data", required=True)
        if obj is None:
            return None
        self.unknown_keys(obj, _DATA, "data")
        path = self.string(obj, "path", "data")
        time_column = self.string(obj, "time_column", "data")
        target = self.string(obj, "target", "data")
        features = obj.get("features", [])
        if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
            self.add("data.features", f"expected a list of column names, got {show(features)}")
            features = []
        for i, f in enumerate(features):
            if f == target or f in features[:i]:
                self.add(f"data.features[{i}]", f'"{f}" is listed twice (the target is always an input)')
        options = self.read_options(obj)
        season = obj.get("season")
        if season is not None and (not _is_int(season) or season < 1):
            self.add("data.season", f"expected a positive integer (steps in one season, e.g. 24 for a day of hourly "
                                    f"data), got {show(season)}")
            season = None
        calendar = obj.get("calendar", [])
        if not isinstance(calendar, list) or not all(isinstance(c, str) for c in calendar):
            self.add("data.calendar", f"expected a list of calendar inputs ({', '.join(CALENDAR)}), got {show(calendar)}")
            calendar = []
        for i, c in enumerate(calendar):
            if c not in CALENDAR:
                self.add(f"data.calendar[{i}]", f"unknown calendar input {show(c)}{did_you_mean(c, CALENDAR)}; "
                                                f"valid: {', '.join(CALENDAR)}")
            elif c in calendar[:i]:
                self.add(f"data.calendar[{i}]", f"{show(c)} is listed twice")
        future = self.future_features(obj, target, features)
        if not (path and time_column and target) or options is None:
            return None
        try:
            resolved = resolve_data_path(path, self.base_dir)
        except DataError as e:
            self.add(e.json_path, e.message)
            return None
        return DataSpec(resolved, time_column, target, tuple(features), options, season,
                        tuple(dict.fromkeys(c for c in calendar if c in CALENDAR)), future)

    def future_features(self, obj: dict[str, Any], target: str | None, features: list[str]) -> tuple[str, ...]:
        """data.future_features: columns known ahead, neither the target nor among the features."""
        future = obj.get("future_features", [])
        if not isinstance(future, list) or not all(isinstance(f, str) and f for f in future):
            self.add("data.future_features", f"expected a list of column names, got {show(future)}")
            return ()
        for i, f in enumerate(future):
            if f == target or f in features or f in future[:i]:
                self.add(f"data.future_features[{i}]", f'"{f}" is listed twice (a future feature is an input '
                                                       "of the past rows too: list it here only)")
        return tuple(future)

    def read_options(self, obj: dict[str, Any]) -> ReadOptions | None:
        """data.time_format, time_unit, fill, fill_limit and duplicates."""
        before = len(self.problems)
        fmt, unit = obj.get("time_format"), obj.get("time_unit")
        if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
            self.add("data.time_format", f'expected a strftime pattern such as "%d/%m/%Y %H:%M", got {show(fmt)}')
        if unit is not None and unit not in TIME_UNITS:
            self.add("data.time_unit", f'expected "s" or "ms" (seconds or milliseconds since 1970), got {show(unit)}')
        elif unit is not None and fmt is not None:
            self.add("data.time_unit", "give data.time_format or data.time_unit, not both")
        fill = obj.get("fill", "none")
        if fill not in FILLS:
            self.add("data.fill", f"expected one of {', '.join(FILLS)}, got {show(fill)}"
                                  f"{did_you_mean(fill, FILLS) if isinstance(fill, str) else ''}")
        limit = obj.get("fill_limit")
        if limit is not None:
            if not _is_int(limit) or limit < 1:
                self.add("data.fill_limit", f"expected an integer >= 1 (missing steps in a row), got {show(limit)}")
            elif fill == "none":
                self.add("data.fill_limit", 'needs data.fill "ffill" or "interpolate"')
        duplicates = obj.get("duplicates")
        if duplicates is not None and duplicates not in DUPLICATES:
            self.add("data.duplicates", f"expected one of {', '.join(DUPLICATES)}, got {show(duplicates)}")
        if len(self.problems) > before:
            return None
        return ReadOptions(time_format=fmt, time_unit=unit, fill=fill, fill_limit=limit, duplicates=duplicates)

    def periods(self, value: Any) -> tuple[Period, ...] | AutoPeriods:
        if value is None:
            self.add("date_ranges", 'missing (required): a list of ["start", "end"] pairs or {"auto": {...}}')
            return ()
        if isinstance(value, dict):
            return self.auto_periods(value)
        if not isinstance(value, list) or not value:
            self.add("date_ranges", f'expected a non-empty list of ["start", "end"] pairs, got {show(value)}')
            return ()
        periods: list[Period] = []
        for i, pair in enumerate(value):
            where = f"date_ranges[{i}]"
            if not isinstance(pair, list) or len(pair) != 2:
                self.add(where, f'expected a ["start", "end"] pair, got {show(pair)}')
                continue
            stamps = []
            for j, text in enumerate(pair):
                try:
                    stamps.append(parse_time(text))
                except (ValueError, TypeError):
                    self.add(f"{where}[{j}]", f'expected a date such as "2013-01-01", got {show(text)}')
            if len(stamps) != 2:
                continue
            start, end = stamps
            if start >= end:
                self.add(where, f"reversed range: start {pair[0]} is not before end {pair[1]}")
                continue
            period = Period(start, end)
            if period in periods:
                self.add(where, f"period {period} is listed twice")
                continue
            periods.append(period)
            self.period_places.append((where, period))
        return tuple(periods)

    def auto_periods(self, value: dict[str, Any]) -> AutoPeriods | tuple[Period, ...]:
        if list(value) != ["auto"] or not isinstance(value["auto"], dict):
            self.add("date_ranges", f'expected {{"auto": {{"count": 3, "months": 3}}}} or a list of pairs, got {show(value)}')
            return ()
        obj = value["auto"]
        self.unknown_keys(obj, _AUTO_PERIODS, "date_ranges.auto")
        numbers = {}
        for key, default, low in (("count", 3, 1), ("months", 3, 1), ("holdout", 0, 0)):
            v = obj.get(key, default)
            if not _is_int(v) or v < low:
                self.add(f"date_ranges.auto.{key}", f"expected an integer >= {low}, got {show(v)}")
                return ()
            numbers[key] = int(v)
        return AutoPeriods(**numbers)

    def resources(self, value: Any) -> dict[str, Any]:
        obj = self.section(value, "resources")
        if obj is None:
            return {}
        self.unknown_keys(obj, _RESOURCES, "resources")
        out: dict[str, Any] = {}
        gpus = obj.get("gpus")
        if gpus is not None:
            if (not isinstance(gpus, list) or not gpus or len(set(map(str, gpus))) != len(gpus)
                    or not all((_is_int(g) and g >= 0) or (isinstance(g, str) and g.isdigit()) for g in gpus)):
                self.add("resources.gpus", f"expected a list of distinct GPU indices such as [0, 2], got {show(gpus)}")
            else:
                out["gpus"] = [str(g) for g in gpus]
        per_gpu = obj.get("trials_per_gpu")
        if per_gpu is not None:
            if per_gpu != "auto" and not (_is_int(per_gpu) and per_gpu >= 1):
                self.add("resources.trials_per_gpu", f'expected an integer >= 1 or "auto", got {show(per_gpu)}')
            else:
                out["trials_per_gpu"] = per_gpu
        threads = obj.get("threads")
        if threads is not None:
            if not (_is_int(threads) and threads >= 1):
                self.add("resources.threads", f"expected an integer >= 1 (torch threads per worker), got {show(threads)}")
            else:
                out["threads"] = int(threads)
        executor = obj.get("executor")
        if executor is not None:
            if executor not in _EXECUTORS:
                hint = did_you_mean(str(executor), _EXECUTORS)
                self.add("resources.executor", f'expected "local" or "ray", got {show(executor)}{hint}')
            else:
                out["executor"] = executor
        return out

    def tracking(self, value: Any) -> dict[str, Any]:
        obj = self.section(value, "tracking")
        if obj is None:
            return {}
        self.unknown_keys(obj, _TRACKING, "tracking")
        out: dict[str, Any] = {}
        uri = obj.get("mlflow")
        if uri is not None:
            if uri is not True and uri is not False and not (isinstance(uri, str) and uri.strip()):
                self.add("tracking.mlflow", f"expected a tracking URI such as \"http://host:5000\", or true for "
                         f"$MLFLOW_TRACKING_URI, got {show(uri)}")
            elif uri is not False:
                out["mlflow"] = uri
        for key, what in (("experiment", "an MLflow experiment name"), ("tensorboard", "a folder for TensorBoard")):
            value = obj.get(key)
            if value is not None:
                if not isinstance(value, str) or not value.strip():
                    self.add(f"tracking.{key}", f"expected {what}, got {show(value)}")
                else:  # a folder written in a spec is relative to the spec's folder, as sink and data.path are
                    out[key] = self.folder(value) if key == "tensorboard" else value
        return out

    def search(self, value: Any) -> SearchSpec:
        """The strategy checks its own keys (see :mod:`hpt.scheduling.strategies`)."""
        obj = self.section(value, "search")
        if obj is None:
            return SearchSpec()
        strategy = obj.get("strategy", "grid")
        if strategy not in STRATEGIES:
            hint = did_you_mean(str(strategy), STRATEGIES)
            self.add("search.strategy", f"expected one of {', '.join(STRATEGIES)}, got {show(strategy)}{hint}")
            strategy = "grid"
        chosen = STRATEGIES[strategy]
        self.unknown_keys(obj, ("strategy", *chosen.keys, *SHARED_KEYS), "search")
        own = chosen.check(obj, self.add)
        shared = check_shared(obj, self.add, self.folder)
        return SearchSpec(strategy, **own, **shared)

    def stopping_epochs(self, stopping: EarlyStopping, parameters: Mapping[str, Axis],
                        training: Mapping[str, Any]) -> None:
        """Early stopping that could never stop a trial (its first check at or after the last epoch) is a mistake."""
        axis = parameters.get("epochs")
        if axis is None:
            most = int(training.get("epochs", TRAINING["epochs"].default))
        else:
            most = int(axis.high if isinstance(axis, Distribution) else max(axis))
        if stopping.min_epochs >= most:
            self.add("search.early_stopping.min_epochs", f"{stopping.min_epochs} is not below the most epochs a trial "
                                                         f"runs ({most}): no trial could be stopped early")

    def training(self, value: Any, arch: Architecture | None) -> dict[str, Any]:
        obj = self.section(value, "training")
        if obj is None:
            return {}
        out = {}
        for key, v in obj.items():
            if key == REPEATS:
                continue  # not a hyperparameter: see repeats()
            where = f"training.{key}"
            hp = TRAINING.get(key)
            if hp is None:
                if arch is not None and arch.hparam(key) is not None:
                    self.add(where, f'"{key}" is an argument of {arch.name}: set it under "parameters" '
                                    "(a one-value list fixes it)")
                else:
                    valid = (*TRAINING, REPEATS)
                    self.add(where, f"unknown key{_hint(key, valid, 'training')}; valid: {', '.join(valid)}")
                continue
            msg = hp.problem(v)
            if msg:
                self.add(where, msg)
                continue
            out[key] = _normalise(hp, v)
        return out

    def repeats(self, value: Any) -> int:
        """``training.repeats``: how many seeds each config trains per period (default 1).

        Not a hyperparameter (it is no part of a config's id, and cannot be tuned).
        """
        if not isinstance(value, dict) or REPEATS not in value:
            return 1
        k = value[REPEATS]
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_REPEATS:
            self.add(f"training.{REPEATS}", f"expected an integer from 1 to {MAX_REPEATS} (seeds per config and period), "
                                            f"got {show(k)}")
            return 1
        return k

    def parameters(self, value: Any, arch: Architecture | None, search: SearchSpec) -> dict[str, Axis]:
        obj = self.section(value, "parameters")
        if obj is None:
            return {}
        valid: dict[str, HParam] = dict(TRAINING)
        if arch is not None:
            valid.update({p.name: p for p in arch.hparams})
        out: dict[str, Axis] = {}
        for name, axis in obj.items():
            where = f"parameters.{name}"
            hp = valid.get(name)
            if name == REPEATS:
                self.add(where, f'"{REPEATS}" is not tuned: set it under "training" (seeds per config and period)')
                continue
            if name == "quantiles":
                self.add(where, '"quantiles" is not tuned (pinball losses of other quantiles do not compare): '
                                'set it under "training"')
                continue
            if hp is None:
                if arch is None:
                    continue  # the architecture's own error is reported; its names are unknown
                owner = f"{arch.name} or training"
                self.add(where, f"unknown parameter for {owner}{_hint(name, valid, 'parameters')}; "
                                f"valid: {', '.join(valid)}")
                continue
            parsed = self.axis(axis, hp, where, search.strategy)
            if parsed is not None:
                out[name] = parsed
        return out

    def constraints(self, arch: Architecture, given: Any, parameters: dict[str, Axis],
                    training: dict[str, Any]) -> None:
        """Every combination of the values a constraint reads, each problem once per blamed value.

        Only the axes a constraint names are crossed, so a large grid elsewhere costs nothing.
        """
        given = given if isinstance(given, dict) else {}
        base = {**{n: p.default for n, p in TRAINING.items()}, **arch.defaults, **training}
        for rule in arch.constraints:
            if any(n in given and n not in parameters for n in rule.names):
                continue  # that axis is already reported as invalid
            if any(isinstance(parameters.get(n), Distribution) for n in rule.names):
                continue  # sampled values cannot be listed; the builder's own error catches them
            axes = {n: list(a) if isinstance(a := parameters.get(n), tuple) else [base.get(n)] for n in rule.names}
            if math.prod(len(v) for v in axes.values()) > _MAX_CONSTRAINT_COMBINATIONS:
                continue
            self.constraint(rule, axes, [n for n in rule.names if n in parameters], training)

    def constraint(self, rule: Constraint, axes: dict[str, list[Any]], tuned: list[str],
                   training: dict[str, Any]) -> None:
        blamed = set()
        for indices in itertools.product(*(range(len(v)) for v in axes.values())):
            at = dict(zip(axes, indices, strict=True))
            msg = rule.check({n: axes[n][i] for n, i in at.items()})
            if msg is None:
                continue
            if tuned:
                where = f"parameters.{tuned[0]}[{at[tuned[0]]}]"
            else:
                where = next((f"training.{n}" for n in rule.names if n in training), "architecture")
            if where not in blamed:
                blamed.add(where)
                self.add(where, msg)

    def axis(self, axis: Any, hp: HParam, where: str, strategy: str) -> Axis | None:
        if isinstance(axis, list):
            if not axis:
                self.add(where, "empty list: give at least one value")
                return None
            if _all_admissible(axis, hp):
                return tuple(axis) if hp.kind != "int" else tuple(_normalise(hp, v) for v in axis)
            ok = True
            seen: set[Any] = set()
            for i, v in enumerate(axis):
                msg = hp.problem(v)
                if msg:
                    self.add(f"{where}[{i}]", msg)
                    ok = False
                    continue
                key = _value_key(v)
                if key in seen:
                    self.add(f"{where}[{i}]", f"{show(v)} is listed twice")
                    ok = False
                seen.add(key)
            return tuple(_normalise(hp, v) for v in axis) if ok else None
        if isinstance(axis, dict):
            return self.distribution(axis, hp, where, strategy)
        example = '{"loguniform": [0.0001, 0.1]}' if hp.numeric else "a list"
        self.add(where, f"expected a list of values or a distribution such as {example}, got {show(axis)}")
        return None

    def distribution(self, axis: dict[str, Any], hp: HParam, where: str, strategy: str) -> Distribution | None:
        if len(axis) != 1 or next(iter(axis)) not in DISTRIBUTIONS:
            keys = ", ".join(f'"{k}"' for k in DISTRIBUTIONS)
            found = ", ".join(f'"{k}"' for k in axis) or "nothing"
            self.add(where, f"expected one distribution key ({keys}), got {found}"
                            f"{did_you_mean(next(iter(axis)), DISTRIBUTIONS) if len(axis) == 1 else ''}")
            return None
        kind, bounds = next(iter(axis.items()))
        path = f"{where}.{kind}"
        if not STRATEGIES[strategy].distributions:
            takes = " or ".join(f'"{name}"' for name, s in STRATEGIES.items() if s.distributions)
            self.add(where, f'a distribution needs "search": {{"strategy": {takes}}}; '
                            f"{strategy} search takes a list of values")
            return None
        if not hp.numeric:
            self.add(where, f"takes {hp.describe()}: give a list of values, not a distribution")
            return None
        if (not isinstance(bounds, list) or len(bounds) != 2
                or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)):
            self.add(path, f"expected [low, high] numbers, got {show(bounds)}")
            return None
        low, high = bounds
        if low >= high:
            self.add(path, f"reversed range: low {show(low)} is not below high {show(high)}")
            return None
        if kind == "loguniform" and low <= 0:
            self.add(path, f"loguniform needs low > 0, got {show(low)}")
            return None
        if kind == "int" and not (_is_int(low) and _is_int(high)):
            self.add(path, f"expected integer bounds, got {show(bounds)}")
            return None
        if hp.kind == "int" and kind != "int":
            self.add(where, f'{hp.name} takes integers: use {{"int": [{_int_text(low)}, {_int_text(high)}]}}')
            return None
        for b in (low, high):
            msg = hp.problem(b)
            if msg:
                self.add(path, f"bound {show(b)}: {msg}")
                return None
        return Distribution(kind, float(low) if kind != "int" else int(low), float(high) if kind != "int" else int(high))

    def metrics(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            self.add("metrics", f"expected a list of metric names, got {show(value)}")
            return ()
        names = []
        valid = sorted(set(METRICS) | set(METRICS.values()) | {"val_rmse"})
        for i, m in enumerate(value):
            column = METRICS.get(m, m) if isinstance(m, str) else None
            if column not in METRICS.values() and column != "val_rmse":
                hint = did_you_mean(m, valid) if isinstance(m, str) else ""
                self.add(f"metrics[{i}]", f"unknown metric {show(m)}{hint}; valid: {', '.join(sorted(METRICS))}")
                continue
            names.append(str(column))
        return tuple(dict.fromkeys(names))

    def objective(self, value: Any) -> str:
        column = METRICS.get(value, value) if isinstance(value, str) else None
        if column not in OBJECTIVES:
            hint = did_you_mean(value, OBJECTIVES) if isinstance(value, str) else ""
            self.add("objective", f"expected one of {', '.join(OBJECTIVES)} (lower is better), got {show(value)}{hint}")
            return "val_mse"
        return str(column)


MAX_NAME = 100


def _name_problem(name: str) -> str | None:
    """Why `name` cannot name a results folder (hpt-results/<name>), or None."""
    why = ""
    if len(name) > MAX_NAME:
        why = f"{len(name)} characters, more than {MAX_NAME}"
    elif name in (".", ".."):
        why = f"{show(name)} is not a folder name"
    elif sep := next((c for c in name if c in "/\\"), None):
        why = f"it holds the separator {show(sep)}"
    elif ctl := next((c for c in name if unicodedata.category(c) == "Cc"), None):
        why = f"it holds the control character U+{ord(ctl):04X}"
    return f"{show(name)} cannot name the results folder: {why}" if why else None


def _sections() -> dict[str, tuple[str, ...]]:
    """The keys of each section of a spec ("" is the top level), to point a misplaced key to its section."""
    search = ("strategy", *dict.fromkeys(k for s in STRATEGIES.values() for k in s.keys), *SHARED_KEYS)
    return {"": _TOP, "data": _DATA, "training": (*TRAINING, REPEATS), "parameters": tuple(TRAINING),
            "search": search, "resources": _RESOURCES, "tracking": _TRACKING, "date_ranges.auto": _AUTO_PERIODS}


def _hint(key: str, valid: tuple[str, ...] | Mapping[str, Any], where: str) -> str:
    """' (did you mean "data.season"?)' for a key of another section (training.season), else the closest valid key."""
    places = [f'"{_join(section, key)}"' for section, keys in _sections().items() if section != where and key in keys]
    return f" (did you mean {' or '.join(places)}?)" if places else did_you_mean(key, valid)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(type(v), show(v))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def _all_admissible(values: list[Any], hp: HParam) -> bool:
    """Whether every value is admissible and none is listed twice, checked in bulk.

    A grid axis of 10^6 numbers takes milliseconds; on False the caller goes value by
    value to say which ones are wrong.
    """
    if hp.numeric and set(map(type, values)) <= {int, float}:
        arr = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(arr)
        if hp.kind == "int":
            ok &= arr == np.floor(arr)
        if hp.low is not None:
            ok &= arr > hp.low if hp.low_open else arr >= hp.low
        if hp.high is not None:
            ok &= arr < hp.high if hp.high_open else arr <= hp.high
        if not ok.all():
            return False
        return len(set(values)) == len(values)  # 64 and 64.0 are one value
    if any(hp.problem(v) for v in values):
        return False
    return len(set(map(_value_key, values))) == len(values)


def _value_key(v: Any) -> Any:
    """Equal keys for values a grid would repeat: 64 and 64.0 are one value, true and 1 are two."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("number", v)
    try:
        hash(v)
    except TypeError:
        return ("json", json.dumps(v, sort_keys=True, default=str))
    return (type(v).__name__, v)


def _losses(parameters: Mapping[str, Axis], training: Mapping[str, Any]) -> list[str]:
    """The training losses the configs of a search use."""
    axis = parameters.get("loss")
    return [str(v) for v in axis] if isinstance(axis, tuple) else [str(training.get("loss", TRAINING["loss"].default))]


def _normalise(hp: HParam, v: Any) -> Any:
    """JSON 64.0 for an integer parameter becomes 64, so ids and models agree."""
    if hp.kind == "int" and isinstance(v, float):
        return int(v)
    if hp.name == "quantiles":
        return [float(q) for q in v]
    return v


def _auto_axes(arch: Architecture) -> dict[str, Axis]:
    """The auto strategy's search space: the architecture's learning-rate family ranges."""
    kinds = {"log": "loguniform", "linear": "uniform", "int": "int"}
    return {name: Distribution(kinds[scale], lo, hi) for name, (lo, hi, scale) in arch.auto_ranges.items()}
