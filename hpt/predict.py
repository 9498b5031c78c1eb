"""Forecasts from a saved model: every window of a CSV or Parquet file, or only its last one.

A window is `lookback` consecutive rows without a missing step; its forecast is dated from
its last row: step k (1..horizon) is ``k * step`` after it, so the last window forecasts
past the end of the file. Windows go through the model in batches, all at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hpt.data import DataError, file_columns, frame_step, read_data, resolve_data_path, step_text, unbroken
from hpt.errors import InputError, did_you_mean, show
from hpt.model_io import TrainedModel, load_model
from hpt.progress import plural

__all__ = ["COLUMNS", "Forecasts", "forecast_file", "open_model"]

log = logging.getLogger("hpt")

_BATCH = 8192
COLUMNS = ("timestamp", "horizon_step", "prediction")
"""The columns of ``hpt predict``'s CSV."""


@dataclass(frozen=True)
class Forecasts:
    """What :func:`forecast_file` gives: one row per window and horizon step, and how the windows were cut."""

    table: pd.DataFrame  # timestamp, horizon_step, prediction (in the target's units)
    windows: int
    skipped: int  # windows left out because they span a missing step
    rows: int  # rows of the file used
    step: pd.Timedelta
    model: TrainedModel


def open_model(uri: str) -> TrainedModel:
    """A saved model (a path, gs:// or s3:// URI); InputError when there is none or it is not hpt's."""
    try:
        return load_model(uri)
    except FileNotFoundError:
        raise InputError(f"no model at {uri}") from None
    except IsADirectoryError:
        raise InputError(f"{uri} is a folder: give a model file (models/<trial_id>.pt or final/<id>/model.pt)") from None
    except InputError:
        raise
    except Exception as e:  # torch's unpickling errors for a file that is not a model
        raise InputError(f"{uri} is not a model saved by hpt ({type(e).__name__})") from None


def _time_column(model: TrainedModel, header: list[str], given: str | None, path: str) -> str:
    if given:
        return given
    if model.time_column:
        return model.time_column
    others = [c for c in header if c not in model.columns]
    if len(others) == 1:
        log.info("the model does not record its time column (saved by an older hpt): reading times from \"%s\"",
                 others[0])
        return others[0]
    raise InputError(f"the model does not record its time column (saved by an older hpt) and {path} has "
                     f"{'no other column' if not others else 'several other columns'}: give --time-column "
                     f"(columns: {', '.join(header)})")


def forecast_file(model: TrainedModel, path: str, time_column: str | None = None, last: bool = False) -> Forecasts:
    """The model's forecasts for every window of the file at `path` (only the last with `last`).

    InputError (exit 2) when the file lacks a column the model was trained on (all missing
    ones are named), has fewer usable rows than the model's lookback, or (with `last`) its
    last rows span a missing step.
    """
    try:
        resolved = resolve_data_path(path)
        header = file_columns(resolved)
    except DataError as e:
        raise InputError(f"--data: {e.message}") from None
    column = _time_column(model, header, time_column, path)
    missing = [c for c in (column, *model.columns) if c not in header]
    if missing:
        hint = did_you_mean(missing[0], header) if len(missing) == 1 else ""
        what = "the time column" if missing == [column] else \
            "columns the model was trained on" if column not in missing else "columns the model needs"
        fix = "; give --time-column" if column in missing else ""
        raise InputError(f"{path} lacks {what}: {', '.join(show(c) for c in missing)}{hint} "
                         f"(it has: {', '.join(header)}){fix}")
    try:
        frame = read_data(resolved, column, tuple(model.columns)).frame
    except DataError as e:
        raise InputError(f"{path}: {e.message}") from None
    step = frame_step(frame)
    if model.step is not None and step > pd.Timedelta(0) and step != model.step:
        log.warning("%s has a step of %s; the model was trained on data every %s", path, step_text(step),
                    step_text(model.step))
    step = model.step or step
    values = frame[list(model.columns)].to_numpy(np.float64)
    n, lookback = len(values), model.lookback
    if n < lookback:
        raise InputError(f"{path} has {plural(n, 'row')} with values: fewer than the model's lookback of {lookback}")
    windows = np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0).transpose(0, 2, 1)
    starts = np.arange(len(windows))
    clean = unbroken(frame.index, step, lookback)
    if last:
        if not clean[-1]:
            raise InputError(f"{path}: the last {lookback} rows (the model's lookback) span a missing step; "
                             "fill the gap or drop --last")
        starts = starts[-1:]
    else:
        starts = starts[clean]
    preds = np.zeros((len(starts), model.horizon))
    for i in range(0, len(starts), _BATCH):  # copies of at most _BATCH windows at a time: memory stays bounded
        preds[i:i + _BATCH] = model.predict_windows(windows[starts[i:i + _BATCH]], batch=_BATCH)
    ends = frame.index.to_numpy()[starts + lookback - 1]
    h = model.horizon
    offsets = np.arange(1, h + 1)
    stamps = ends[:, None] + offsets[None, :] * step.to_timedelta64()
    table = pd.DataFrame({"timestamp": pd.DatetimeIndex(stamps.ravel()), "horizon_step": np.tile(offsets, len(starts)),
                          "prediction": preds.ravel()})
    skipped = 0 if last else int((~clean).sum())
    return Forecasts(table, len(starts), skipped, n, step, model)


def write_csv(table: pd.DataFrame, out: Any) -> None:
    """The forecasts as CSV (full precision) to a path or an open text file."""
    table.to_csv(out, index=False, date_format="%Y-%m-%d %H:%M:%S", lineterminator="\n")
