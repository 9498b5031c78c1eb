"""Forecasts from a saved model: every window of a CSV or Parquet file, or only its last one (of
every series in it, for a model trained on many).

A window is `lookback` consecutive rows without a missing step; its forecast is dated from
its last row: step k (1..horizon) is ``k * step`` after it, so the last window forecasts
past the end of the file. Windows go through the model in batches, all at once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpt.calendar import with_calendar
from hpt.data import (
    DataError,
    ReadOptions,
    column_hint,
    duplicates_text,
    file_columns,
    is_bucket_uri,
    read_data,
    resolve_data_path,
)
from hpt.errors import HptError, InputError, show
from hpt.hparams import quantile_name
from hpt.model_io import TrainedModel, load_model
from hpt.panel import name_few, series_frames
from hpt.periods import time_text, whole_days
from hpt.progress import plural
from hpt.static import read_series_values
from hpt.windows import breaks, frame_step, input_windows, step_text, unbroken

__all__ = ["COLUMNS", "Forecasts", "check_out", "forecast_file", "open_model", "write_csv"]

log = logging.getLogger("hpt")

COLUMNS = ("timestamp", "horizon_step", "prediction")
"""The columns of ``hpt predict``'s CSV; a quantile model's adds one per quantile (p10, p50, p90), and a model
trained on many series (``data.series``) has a ``series`` column first, each row's series id."""


@dataclass(frozen=True)
class Forecasts:
    """What :func:`forecast_file` gives: one row per window and horizon step, and how the windows were cut."""

    table: pd.DataFrame  # timestamp, horizon_step, prediction (in the target's units), and p10... for quantiles
    windows: int
    skipped: int  # windows left out because they span a missing step
    rows: int  # rows of the file used
    step: pd.Timedelta
    model: TrainedModel
    series: int = 1  # the series forecast (a model trained on many: each a block of the table, column "series" its id)
    unseen: tuple[str, ...] = ()  # of those, the ones the model was not trained on


def open_model(uri: str) -> TrainedModel:
    """A saved model (a path, gs:// or s3:// URI); InputError when there is none or it is not hpt's."""
    try:
        model = load_model(uri)
    except FileNotFoundError:
        raise InputError(f"no model at {uri}") from None
    except IsADirectoryError:
        raise InputError(f"{uri} is a folder: give a model file (models/<trial_id>.pt or final/<id>/model.pt)") from None
    except HptError:  # bad input, or a bucket that did not answer (exit 1)
        raise
    except Exception:  # torch's unpickling errors for a file that is not a model
        raise InputError(f"{uri} is not a model saved by hpt: it cannot be read as one (hpt saves models as "
                         "models/<trial_id>.pt and final/<id>/model.pt)") from None
    return model


def _time_column(model: TrainedModel, header: list[str], given: str | None, path: str) -> str:
    if given:
        return given
    if model.time_column:
        return model.time_column
    others = [c for c in header if c not in model.file_columns]
    if len(others) == 1:
        log.info("the model does not record its time column (saved by an older hpt): reading times from \"%s\"",
                 others[0])
        return others[0]
    raise InputError(f"the model does not record its time column (saved by an older hpt) and {path} has "
                     f"{'no other column' if not others else 'several other columns'}: give --time-column "
                     f"(columns: {', '.join(header)})")


def forecast_file(model: TrainedModel, path: str, time_column: str | None = None, last: bool = False,
                  series: tuple[str, ...] | None = None, time_format: str | None = None,
                  time_unit: str | None = None) -> Forecasts:
    """The model's forecasts for every window of the file at `path` (only the last with `last`).

    InputError (exit 2) when the file lacks a column the model was trained on (all missing
    ones are named), has rows at another step than the model's data, has fewer usable rows
    than the model's lookback, or no window without a missing step (with `last`: its last
    rows span one).

    A model trained on many series (``data.series``) forecasts each series of the file (those
    in `series` only, when given) on its own, the table's first column, ``series``, naming it: a series it
    was trained on scaled by its train part's statistics, stored in the model, one it never saw
    by those of its own rows in the file (with a warning: the global model has not seen it). A
    series that cannot be forecast is left out with a warning; none left is InputError.

    The file's times are read as the model's training data were (its ``data.time_format`` and ``data.time_unit``,
    recorded in the model), unless `time_format` or `time_unit` say otherwise.
    """
    if series and model.series is None:
        raise InputError("--series: the model was trained on one series (no data.series): drop --series")
    try:
        resolved = resolve_data_path(path)
        header = file_columns(resolved)
    except DataError as e:
        raise InputError(f"--data: {e.message}") from None
    column = _time_column(model, header, time_column, path)
    missing = [c for c in (column, *model.file_columns) if c not in header]
    if model.series is not None and model.series not in header:
        also = f" and {', '.join(show(c) for c in missing)}" if missing else ""  # every column it lacks, at once
        raise InputError(f'{path} lacks the series column "{model.series}" (data.series: the model was trained on '
                         f"many series and forecasts each one){column_hint(model.series, header)}{also} "
                         f"(it has: {', '.join(header)})")
    if missing:
        hint = column_hint(missing[0], header) if len(missing) == 1 or len(header) == 1 else ""
        what = "the time column" if missing == [column] else \
            "columns the model was trained on" if column not in missing else "columns the model needs"
        fix = "" if column not in missing or len(header) < 2 else "; give --time-column" if missing == [column] else \
            "; --time-column names another time column, the others need the names the model was trained with"
        raise InputError(f"{path} lacks {what}: {', '.join(show(c) for c in missing)}{hint} "
                         f"(it has: {', '.join(header)}){fix}")
    given = {"time_format": time_format, "time_unit": time_unit}
    reading = {k: v for k, v in given.items() if v} or model.time_reading
    options = ReadOptions(series=model.series, series_filter=tuple(dict.fromkeys(series)) if series else None,
                          time_format=reading.get("time_format"), time_unit=reading.get("time_unit"))
    try:
        table = read_data(resolved, column, model.file_columns, options)
        ahead = read_data(resolved, column, model.future_features, options).frame if model.future_features else None
    except DataError as e:
        where = "--series" if e.json_path == "data.series_filter" else path
        message = e.message.replace("set data.time_format", "give --time-format").replace(
            "set data.time_unit", "give --time-unit")
        if e.json_path in ("data.time_format", "data.time_unit", f"data.{column}", "data.time_column") \
                and reading and not any(given.values()):  # the model's way of reading times did not fit this file
            said = ", ".join(f"data.{k} {v!r}" for k, v in reading.items())
            message = (message.replace("data.time_unit reads", "the model's time unit reads")
                       .replace("; leave it out", "") +
                       f" (read as the model's training data: {said}; --time-format or --time-unit say otherwise)")
        raise InputError(f"{where}: {message}") from None
    if len(table.duplicates):  # the windows would mix the rows of one time
        per = "series and time" if model.series is not None else \
            "time (the model was trained on one series: of a file of several, give one series' rows)"
        raise InputError(f"{path} holds {duplicates_text(table.duplicates, column)}: a forecast takes one row per "
                         f"{per}; remove them")
    frame = table.frame
    step = frame_step(frame)
    if model.step is not None and step > pd.Timedelta(0) and not _same_step(step, model.step):
        raise InputError(f"{path} has a row every {step_text(step)}; the model was trained on data every "
                         f"{step_text(model.step)}: give data at the model's step (its windows and dates would be wrong)")
    step = model.step or step
    if model.series is None:
        return _forecast_series(model, path, frame, ahead, step, last)
    return _forecast_panel(model, path, frame, ahead, step, last, _static_inputs(model, resolved, path, frame))


def _static_inputs(model: TrainedModel, resolved: str, path: str, frame: pd.DataFrame) -> pd.DataFrame | None:
    """Of a model with static series features (:mod:`hpt.static`): each series' inputs, encoded from the file's
    values as in training; a value missing or not seen in training is filled, with a warning line."""
    encoding = model.series_features
    if encoding is None:
        return None
    ids = pd.Index(frame.index.get_level_values(0).unique())
    assert model.series is not None
    try:
        values = read_series_values(resolved, model.series, encoding.names, tuple(ids), required=False)
    except DataError as e:
        raise InputError(f"{path}: {e.message}") from None
    encoded, notes = encoding.encode(values.reindex(ids))
    for note in notes:
        log.warning("%s: %s", path, note)
    return encoded


def _forecast_panel(model: TrainedModel, path: str, frame: pd.DataFrame, ahead: pd.DataFrame | None,
                    step: pd.Timedelta, last: bool, static: pd.DataFrame | None = None) -> Forecasts:
    """:func:`forecast_file` of a model trained on many series: each series of `frame` on its own (with its
    static series features' inputs from `static`, one row per series id, when the model takes them)."""
    assert model.series is not None
    futures = dict(series_frames(ahead)) if ahead is not None else {}
    tables, left_out, unseen = [], [], []
    ends: dict[str, pd.Timestamp] = {}  # with --last: each forecast series' last row, where its forecast starts
    windows = skipped = rows = 0
    for sid, one in series_frames(frame):
        seen = sid in model.series_scaling
        if static is not None:
            one = one.assign(**static.loc[sid])
        try:
            history = None if seen else with_calendar(one, model.calendar)
            got = _forecast_series(model.for_series(sid, history), f'{path} (series "{sid}")', one, futures.get(sid),
                                   step, last)
        except InputError as e:
            left_out.append((sid, str(e)))
            continue
        if not seen:
            unseen.append(sid)
        ends[sid] = one.index[-1]
        tables.append(got.table.assign(series=sid)[["series", *got.table.columns]])
        windows, skipped, rows = windows + got.windows, skipped + got.skipped, rows + got.rows
    if unseen:
        log.warning("%s not among the %s the model was trained on: forecast by the global model, scaled by its own "
                    "rows in %s", _series_words(unseen), plural(len(model.series_scaling), "series"), path)
    if not tables:
        raise InputError(left_out[0][1] + ("" if len(left_out) == 1 else f" (and {len(left_out) - 1} more series "
                                                                          "cannot be forecast)"))
    for sid, why in left_out:
        log.warning("series \"%s\" left out: %s", sid, why)
    if last:
        _say_stale(ends, step)
    return Forecasts(pd.concat(tables, ignore_index=True), windows, skipped, rows, step, model, len(tables),
                     tuple(unseen))


def _say_stale(ends: dict[str, pd.Timestamp], step: pd.Timedelta) -> None:
    """--last forecasts each series after its own last row: say which series end before the latest one does."""
    latest = max(ends.values(), default=None)
    stale = sorted((end, sid) for sid, end in ends.items() if end < latest)
    if stale:
        end, sid = stale[0]
        earliest = "" if len(stale) == 1 else f'; the earliest, "{sid}", at {time_text(end, step)}'
        log.warning("--last: %s before the latest series' last row (%s), so forecast from %s own last row%s",
                    _series_words([s for _, s in stale], ("ends", "end")),
                    time_text(latest, step), "its" if len(stale) == 1 else "their", earliest)


def _series_words(ids: list[str], verb: tuple[str, str] = ("is", "are")) -> str:
    """"series "x" is" or "3 series ("x", "y", "z") are": the series a warning is about, and its verb."""
    return f'series "{ids[0]}" {verb[0]}' if len(ids) == 1 else f"{len(ids)} series ({name_few(ids)}) {verb[1]}"


def _forecast_series(model: TrainedModel, path: str, frame: pd.DataFrame, ahead: pd.DataFrame | None,
                     step: pd.Timedelta, last: bool) -> Forecasts:
    """:func:`forecast_file` of one series' rows."""
    n, lookback = len(frame), model.lookback
    if n < lookback:
        raise InputError(f"{path} has {plural(n, 'row')} with values: fewer than the model's lookback of {lookback}")
    rows = _with_future_rows(model, frame, ahead, step)
    values = rows[list(model.columns)].to_numpy(np.float64)
    windows = input_windows(values, lookback + model.future_rows)  # a view: a batch of them is copied at a time
    whole, ready = _usable(model, rows, values, step)
    if last:  # the window whose lookback ends at the file's last row with values
        starts = np.array([int(rows.index.get_loc(frame.index[-1])) - lookback + 1])
        if not ready[starts[0]]:
            raise InputError(_last_problem(model, path, frame, step))
    else:
        starts = np.flatnonzero(ready)
        if not len(starts):
            raise InputError(_none_problem(model, path, whole, step))
    quantiles = model.quantiles
    preds = model.predict_windows(windows, at=starts)
    ends = rows.index.to_numpy()[starts + lookback - 1]
    h = model.horizon
    offsets = np.arange(1, h + 1)
    stamps = ends[:, None] + offsets[None, :] * step.to_timedelta64()
    columns = {"timestamp": pd.DatetimeIndex(stamps.ravel()), "horizon_step": np.tile(offsets, len(starts))}
    if quantiles:  # the median is the point forecast; each quantile its own column, in increasing order
        columns["prediction"] = preds[..., quantiles.index(0.5)].ravel()
        columns.update({quantile_name(q): preds[..., i].ravel() for i, q in enumerate(quantiles)})
    else:
        columns["prediction"] = preds.ravel()
    table = pd.DataFrame(columns)
    skipped = 0 if last else int(len(whole) - len(starts))
    return Forecasts(table, len(starts), skipped, n, step, model)


def _with_future_rows(model: TrainedModel, frame: pd.DataFrame, ahead: pd.DataFrame | None,
                      step: pd.Timedelta) -> pd.DataFrame:
    """The file's rows with the model's calendar columns; with inputs known ahead also the rows of the
    forecast steps after the last (and the file's rows holding only future features), their
    unknown columns empty, the future features from `ahead`."""
    if not model.future_rows:
        return with_calendar(frame, model.calendar)
    end = frame.index[-1]
    times = frame.index.append(pd.DatetimeIndex([end + k * step for k in range(1, model.horizon + 1)]))
    if ahead is not None:
        times = times.append(ahead.index[ahead.index <= end + model.horizon * step])
    rows = frame.reindex(times.unique().sort_values())
    if ahead is not None:
        rows[list(ahead.columns)] = ahead.reindex(rows.index)
    return with_calendar(rows, model.calendar)


def _usable(model: TrainedModel, rows: pd.DataFrame, values: np.ndarray,
            step: pd.Timedelta) -> tuple[np.ndarray, np.ndarray]:
    """Per window start: whether its lookback rows are whole rows of the file (the windows to
    consider), and whether it can be forecast (no missing step in it, the forecast steps' inputs
    known ahead all given)."""
    width = model.lookback + model.future_rows
    known = np.array([c in model.known_ahead for c in model.columns], dtype=bool)
    whole = _all_in_runs(np.isfinite(values).all(axis=1), model.lookback)[:len(rows) - width + 1]
    ready = unbroken(breaks(rows.index, step), width)
    if model.future_rows:
        given = _all_in_runs(np.isfinite(values[:, known]).all(axis=1), model.future_rows)
        ready = ready & given[model.lookback:][:len(ready)]
    return whole, ready & whole


def _all_in_runs(ok: np.ndarray, width: int) -> np.ndarray:
    """For each run of `width` consecutive rows (by its first), whether `ok` holds for all of them."""
    bad = np.concatenate(([0], np.cumsum(~ok)))
    return np.asarray(bad[width:] - bad[:len(ok) - width + 1] == 0)


def _last_problem(model: TrainedModel, path: str, frame: pd.DataFrame, step: pd.Timedelta) -> str:
    """Why --last cannot forecast after the file's last row."""
    if model.future_features and not breaks(frame.index[-model.lookback:], step).any():
        end = frame.index[-1]
        return (f"{path}: no {', '.join(show(c) for c in model.future_features)} for the {model.horizon} forecast "
                f"steps after its last row ({time_text(end + step, step)} to {time_text(end + model.horizon * step, step)}): the "
                "model takes them (data.future_features); add those rows with their values (the target empty)")
    return (f"{path}: the last {model.lookback} rows (the model's lookback) span a missing step; "
            "fill the gap or drop --last")


def _none_problem(model: TrainedModel, path: str, whole: np.ndarray, step: pd.Timedelta) -> str:
    """Why no window of the file can be forecast."""
    if model.future_features:
        return (f"{path}: no window of {model.lookback} rows (the model's lookback) without a missing step has "
                f"{', '.join(show(c) for c in model.future_features)} for all its {model.horizon} forecast steps "
                "(the model takes them: data.future_features); add them, or fill the gaps")
    return (f"{path}: each of its {plural(int(whole.sum()), 'window')} of {model.lookback} rows (the model's "
            f"lookback) spans a missing step (data every {step_text(step)}): fill the gaps")


def _same_step(data: pd.Timedelta, model: pd.Timedelta) -> bool:
    """The file's step is the model's, within calendar slack (months of 28 to 31 days, leap years)."""
    return abs(data - model) <= model * 0.1


def check_out(out: str, data: str) -> None:
    """Refuse an ``--out`` in a folder that does not exist, or one that is the ``--data`` file
    (writing would replace the input): InputError, before anything is computed."""
    target = Path(out).expanduser()
    if not target.parent.is_dir():
        raise InputError(f"--out {out}: no folder {target.parent.resolve()}; create it first")
    try:
        resolved = resolve_data_path(data)
    except DataError:
        return  # forecast_file says what is wrong with --data
    if is_bucket_uri(resolved):
        return
    source = Path(resolved)
    same = target.resolve() == source.resolve() or (target.exists() and source.exists() and os.path.samefile(target, source))
    if same:
        raise InputError(f"--out {out} is the --data file: writing the forecasts would replace it; give another --out")


def write_csv(table: pd.DataFrame, out: Any, step: pd.Timedelta | None = None) -> None:
    """The forecasts as CSV (full precision) to a path or an open text file; InputError when the path cannot be written.
    Times are dates alone for data every `step` of whole days (as the data wrote them), else date and time."""
    fmt = "%Y-%m-%d" if whole_days(step) else _TIME_FORMAT
    if not isinstance(out, (str, Path)):
        table.to_csv(out, index=False, date_format=fmt, lineterminator="\n")
        return
    try:
        with open(Path(out).expanduser(), "w", encoding="utf-8", newline="") as f:
            table.to_csv(f, index=False, date_format=fmt, lineterminator="\n")
    except OSError as e:
        raise InputError(f"--out {out}: cannot write it: {e.strerror or e}") from None


_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
