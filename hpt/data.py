"""Time-series data: read a CSV or Parquet file, select a period, split, scale and window it.

Within a period the split is chronological: the last part (a fraction of the rows or a
duration) is validation. Scaling statistics come from the train part only, and a validation
window's inputs may reach back into the train part (those values are in the past) but its
targets never cross the split, so nothing from the validation part leaks into training.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from hpt.errors import InputError, did_you_mean, show
from hpt.hparams import parse_validation
from hpt.periods import Period

__all__ = [
    "DEMO_DATA",
    "DataError",
    "Windows",
    "is_bucket_uri",
    "load_frame",
    "make_windows",
    "period_fingerprint",
    "resolve_data_path",
    "split_index",
]

log = logging.getLogger("hpt")

DEMO_PREFIX = "demo:"
DEMO_DATA = "demo:electricity_hourly.csv"


class DataError(InputError):
    """A problem with the data, tied to the spec key it comes from (e.g. ``data.target``)."""

    def __init__(self, json_path: str, message: str) -> None:
        self.json_path = json_path
        self.message = message
        super().__init__(f"{json_path}: {message}")


def resolve_data_path(path: str, base: Path | None = None) -> str:
    """``demo:NAME`` is a file bundled with hpt; a relative path is read from `base` (the spec's folder)."""
    if path.startswith(DEMO_PREFIX):
        name = path[len(DEMO_PREFIX):]
        demo = resources.files("hpt") / "demo" / name
        if not demo.is_file():
            raise DataError("data.path", f'no bundled dataset "{name}"; bundled: {", ".join(_demo_names())}')
        return str(demo)
    from hpt.sinks import check_uri

    try:
        check_uri(path)
    except InputError as e:
        raise DataError("data.path", str(e)) from None
    if "://" in path:
        scheme = path.split("://", 1)[0].lower()
        if scheme == "file":
            path = path.split("://", 1)[1]
        elif not is_bucket_uri(path) or "/" not in path.split("://", 1)[1].strip("/"):
            raise DataError("data.path", f"expected a file path, gs://bucket/key or s3://bucket/key, got {show(path)}")
        else:
            return path
    p = Path(path).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p)


def _demo_names() -> list[str]:
    folder = resources.files("hpt") / "demo"
    return sorted(f.name for f in folder.iterdir() if f.name.endswith((".csv", ".parquet")))


def load_frame(path: str, time_column: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """The data as float columns (target first) on a sorted, unique DatetimeIndex.

    `path` is a local file or a ``gs://bucket/key`` or ``s3://bucket/key`` object (read
    with the same clients and credentials as the results locations, once per process).
    Rows with a missing value in any of `columns` are dropped, with a count in the log.
    Results are cached per file version, so validating and running read the file once.
    """
    local = _download(path) if is_bucket_uri(path) else path
    if not os.path.isfile(local):
        raise DataError("data.path", f"file not found: {path}")
    return _load_cached(local, os.stat(local).st_mtime_ns, time_column, columns, path).copy(deep=False)


def is_bucket_uri(path: str) -> bool:
    return path.split("://", 1)[0].lower() in _BUCKET_SCHEMES if "://" in path else False


@functools.lru_cache(maxsize=8)
def _download(uri: str) -> str:
    """A local copy of a bucket object, made once per process, removed when the process ends."""
    from hpt.sinks import SinkUnavailable, read_uri

    try:
        data = read_uri(uri)
    except FileNotFoundError:
        raise DataError("data.path", f"no object at {uri} (check the bucket and key)") from None
    except SinkUnavailable:
        raise  # the storage did not answer: the run fails (exit 1), the spec is not at fault
    except InputError as e:  # no such bucket, no permission or credentials
        raise DataError("data.path", str(e)) from None
    global _download_dir
    if _download_dir is None:
        _download_dir = tempfile.mkdtemp(prefix="hpt-data-")
        atexit.register(shutil.rmtree, _download_dir, True)
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    local = Path(_download_dir) / f"{hashlib.sha256(uri.encode()).hexdigest()[:12]}-{name}"  # two buckets, one name
    local.write_bytes(data)
    return str(local)


_BUCKET_SCHEMES = ("gs", "s3")
_download_dir: str | None = None


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, _mtime: int, time_column: str, columns: tuple[str, ...], shown: str) -> pd.DataFrame:
    """`path` is the local file to read; `shown` is how the user named it (messages use that)."""
    parquet = shown.endswith((".parquet", ".pq"))
    header = _header(path, parquet, shown)
    name_only = shown.rstrip("/").rsplit("/", 1)[-1]
    for key, name in [("data.time_column", time_column), *(_column_keys(columns))]:
        if name not in header:
            hint = did_you_mean(name, header)
            raise DataError(key, f'no column "{name}" in {name_only}{hint}; columns: {", ".join(header)}')
    wanted = [time_column, *dict.fromkeys(columns)]
    try:
        raw = pd.read_parquet(path, columns=wanted) if parquet else pd.read_csv(path, usecols=wanted)
    except Exception as e:  # pandas raises many kinds for a malformed file
        raise DataError("data.path", f"cannot read {shown}: {e}") from None
    index = _parse_times(raw[time_column], time_column)
    frame = pd.DataFrame(index=pd.DatetimeIndex(index, name=time_column))
    for key, name in _column_keys(columns):
        col = raw[name]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            numeric = pd.to_numeric(col, errors="coerce")
            bad = col[numeric.isna() & col.notna()]
            if len(bad):
                raise DataError(key, f'column "{name}" is not numeric (row {bad.index[0] + 2}: {show(bad.iloc[0])})')
            col = numeric
        frame[name] = col.to_numpy(dtype="float64")
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    dup = frame.index[frame.index.duplicated()]
    if len(dup):
        raise DataError("data.time_column",
                        f'{len(dup)} duplicated timestamp{"s" if len(dup) > 1 else ""} in "{time_column}" (first: {dup[0]}); '
                        "aggregate or remove them")
    missing = frame.isna().any(axis=1)
    if missing.any():
        log.warning("%s: dropped %d of %d rows with missing values", name_only, int(missing.sum()), len(frame))
        frame = frame[~missing]
    if frame.empty:
        raise DataError("data.path", f"{shown} has no rows with values")
    return frame


def _column_keys(columns: tuple[str, ...]) -> list[tuple[str, str]]:
    target, *features = columns
    return [("data.target", target)] + [(f"data.features[{i}]", f) for i, f in enumerate(features)]


def _header(path: str, parquet: bool, shown: str) -> list[str]:
    try:
        if parquet:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except Exception as e:
        raise DataError("data.path", f"cannot read {shown}: {e}") from None


def _parse_times(col: pd.Series, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    else:
        try:
            parsed = pd.to_datetime(col)
        except (ValueError, TypeError):
            parsed = pd.to_datetime(col, errors="coerce", format="mixed")
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError("data.time_column", f'cannot parse {show(col.iloc[row])} in column "{name}" (row {row + 2}) as a time')
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


@dataclass(frozen=True)
class Windows:
    """Scaled sliding windows of one period: inputs ``(N, lookback, F)``, targets ``(N, horizon)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray  # per column, fitted on the train part
    std: np.ndarray
    columns: tuple[str, ...]


def split_index(index: pd.DatetimeIndex, validation: float | str) -> int:
    """Where the validation part of a period starts (a row position)."""
    spec = parse_validation(validation)
    if isinstance(spec, float):
        return int(round(len(index) * (1 - spec)))
    if len(index) == 0:
        return 0
    return int(index.searchsorted(index[-1] - spec, side="right"))


def period_rows(frame: pd.DataFrame, period: Period) -> pd.DataFrame:
    return frame.loc[(frame.index >= period.start) & (frame.index < period.end)]


def period_fingerprint(frame: pd.DataFrame, period: Period) -> str:
    """A digest of the rows a period trains and validates on: their times and values.

    Trial ids include it, so data corrected inside a period reruns that period's trials,
    while rows appended after it leave it (and its finished trials) as they were.
    """
    rows = period_rows(frame, period)
    digest = hashlib.sha256()
    digest.update(",".join(map(str, rows.columns)).encode())
    digest.update(rows.index.to_numpy(dtype="datetime64[ns]").view(np.int64).tobytes())
    digest.update(np.ascontiguousarray(rows.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()[:16]


def window_problem(frame: pd.DataFrame, period: Period, lookback: int, horizon: int,
                   validation: float | str) -> str | None:
    """Why this period cannot give at least one train and one validation window, or None."""
    rows = period_rows(frame, period)
    if rows.empty:
        first, last = frame.index[0], frame.index[-1]
        return f"period {period} has no data (data covers {first} to {last})"
    s = split_index(rows.index, validation)
    n_train, n_val = s, len(rows) - s
    need = lookback + horizon
    if n_train < need or n_val < horizon:
        return (f"period {period} has {len(rows)} rows, {n_train} before the validation split: too few "
                f"for lookback {lookback} + horizon {horizon} (train part needs >= {need} rows, "
                f"validation >= {horizon})")
    return None


def make_windows(frame: pd.DataFrame, period: Period, lookback: int, horizon: int,
                 validation: float | str) -> Windows:
    """Split a period chronologically, scale with train statistics, and cut sliding windows."""
    problem = window_problem(frame, period, lookback, horizon, validation)
    if problem:
        raise DataError("date_ranges", problem)
    rows = period_rows(frame, period)
    values = rows.to_numpy(dtype=np.float64)
    s = split_index(rows.index, validation)
    mean = values[:s].mean(axis=0)
    std = values[:s].std(axis=0)
    std[std == 0] = 1.0
    z = ((values - mean) / std).astype(np.float32)
    n = len(z)
    # x[j] = z[j : j+lookback]; y[j] = target z[j+lookback : j+lookback+horizon]
    x_all = np.lib.stride_tricks.sliding_window_view(z[: n - horizon], lookback, axis=0).transpose(0, 2, 1)
    y_all = np.lib.stride_tricks.sliding_window_view(z[lookback:, 0], horizon)
    train = slice(0, s - lookback - horizon + 1)
    val = slice(max(s - lookback, 0), n - lookback - horizon + 1)
    return Windows(
        x_train=x_all[train].copy(),
        y_train=y_all[train].copy(),
        x_val=x_all[val].copy(),
        y_val=y_all[val].copy(),
        mean=mean,
        std=std,
        columns=tuple(rows.columns),
    )
