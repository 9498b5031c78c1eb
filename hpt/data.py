"""Time-series data: read a CSV or Parquet file into a frame on a sorted time index.

Times are parsed in one format, duplicated timestamps merged or listed, rows with missing
values dropped, or (``data.fill``) missing values and missing steps filled. How a period's
rows are then split, scaled and cut into windows is :mod:`hpt.windows`'s; how its time column is
parsed, :mod:`hpt.time_column`'s.
"""

from __future__ import annotations

import atexit
import csv
import dataclasses
import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpt.errors import DataError, InputError, did_you_mean, show
from hpt.panel import is_panel, name_few, times_of
from hpt.periods import Period
from hpt.progress import plural
from hpt.time_column import parse_times
from hpt.windows import breaks, infer_step, missing_steps, most_common_step, period_rows

__all__ = [
    "DEMO_DATA",
    "DUPLICATES",
    "duplicates_text",
    "FILLS",
    "TIME_READING",
    "TIME_UNITS",
    "DataError",
    "ReadOptions",
    "Table",
    "column_hint",
    "csv_format",
    "file_columns",
    "is_bucket_uri",
    "load_frame",
    "period_fingerprint",
    "read_columns",
    "read_data",
    "resolve_data_path",
    "time_reading",
]

log = logging.getLogger("hpt")

DEMO_PREFIX = "demo:"
DEMO_DATA = "demo:electricity_hourly.csv"

TIME_UNITS = ("s", "ms")
TIME_READING = "time_reading"
"""A frame's ``attrs`` key: how its times were read (:func:`time_reading`), for a saved model to read a file alike."""
FILLS = ("none", "ffill", "interpolate")
DUPLICATES = ("first", "last", "mean")


@dataclass(frozen=True)
class ReadOptions:
    """How the data is read: the spec's ``data`` keys beyond the file and its columns."""

    time_format: str | None = None  # a strftime pattern such as "%d/%m/%Y %H:%M"
    time_unit: str | None = None  # numbers as times: "s" or "ms" since 1970-01-01 UTC
    fill: str = "none"  # none | ffill | interpolate: missing values and missing steps
    fill_limit: int | None = None  # at most this many missing steps in a row are filled
    duplicates: str | None = None  # first | last | mean; None: refused inside a period
    series: str | None = None  # data.series: the column naming each row's series (a panel: hpt.panel)
    series_filter: tuple[str, ...] | None = None  # data.series_filter: only these series


def time_reading(options: ReadOptions) -> dict[str, str]:
    """How `options` read the times, beyond what the file says itself: ``time_format`` and ``time_unit`` when set."""
    return {k: v for k, v in (("time_format", options.time_format), ("time_unit", options.time_unit)) if v}


@dataclass(frozen=True)
class Table:
    """What :func:`read_data` returns: the frame and what reading it found."""

    frame: pd.DataFrame  # float columns, target first, on a sorted unique DatetimeIndex (a panel: (series, time))
    step: pd.Timedelta  # the most common time difference
    duplicates: pd.Series  # unmerged duplicated timestamps (a panel: (series, time)) -> the file rows that hold them
    filled_steps: int = 0


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


def load_frame(path: str, time_column: str, columns: tuple[str, ...], options: ReadOptions | None = None,
               ) -> pd.DataFrame:
    """The data as float columns (target first) on a sorted DatetimeIndex (see :func:`read_data`)."""
    return read_data(path, time_column, columns, options).frame


def read_data(path: str, time_column: str, columns: tuple[str, ...], options: ReadOptions | None = None) -> Table:
    """Read, parse and regularise the data: the frame and what reading it found.

    `path` is a local file or a ``gs://bucket/key`` or ``s3://bucket/key`` object (read
    with the same clients and credentials as the results locations, once per process).
    Times are read in one format (the first row's, or ``options.time_format``); times with
    UTC offsets become UTC. Duplicated timestamps are merged as ``options.duplicates`` says,
    else the first row of each is kept and the duplicates are listed in the table (a period
    that holds one is refused). Rows with a missing value are dropped, or with
    ``options.fill`` missing values and missing steps are filled. Results are cached per
    file version, so validating and running read the file once.
    """
    local = _download(path) if is_bucket_uri(path) else path
    if not os.path.isfile(local):
        raise DataError("data.path", f"file not found: {path}")
    table = _load_cached(local, os.stat(local).st_mtime_ns, time_column, columns, path, options or ReadOptions())
    return dataclasses.replace(table, frame=table.frame.copy(deep=False))  # the cached one stays as read


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
def _load_cached(path: str, _mtime: int, time_column: str, columns: tuple[str, ...], shown: str,
                 options: ReadOptions) -> Table:
    """`path` is the local file to read; `shown` is how the user named it (messages use that)."""
    parquet = shown.endswith((".parquet", ".pq"))
    header = _header(path, parquet, shown)
    name_only = shown.rstrip("/").rsplit("/", 1)[-1]
    series = [options.series] if options.series is not None else []
    absent = [(key, f'no column "{name}" in {name_only}{column_hint(name, header)}; columns: {_names(header)}')
              for key, name in [("data.time_column", time_column), *(("data.series", s) for s in series),
                                *_column_keys(columns)] if name not in header]
    if absent:  # every one at once: a spec with three typos is fixed in one go (one header: a separator to fix)
        raise DataError(*absent[0], others=tuple(absent[1:]) if len(header) > 1 else ())
    wanted = [time_column, *series, *dict.fromkeys(columns)]
    try:
        raw = pd.read_parquet(path, columns=wanted) if parquet else pd.read_csv(
            path, usecols=wanted, dtype={s: str for s in series}, **csv_format(path))  # series ids as written: "007"
    except Exception as e:  # pandas raises many kinds for a malformed file
        raise DataError("data.path", f"cannot read {shown}: {e}") from None
    if raw.empty:
        raise DataError("data.path", f"{shown} has no rows")
    raw = raw.reset_index(drop=True)  # row numbers in messages are positions (a Parquet file may keep an index)
    index = parse_times(raw[time_column], time_column, options)
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
    rows = np.arange(2, len(frame) + 2)  # as a spreadsheet numbers them: the header is row 1
    if series:
        return _read_panel(frame, rows, raw[series[0]], options, name_only, shown)
    if not frame.index.is_monotonic_increasing:
        order = np.argsort(frame.index.to_numpy(), kind="stable")
        frame, rows = frame.iloc[order], rows[order]
    frame, duplicates = _merge_duplicates(frame, rows, options.duplicates)
    if len(duplicates) and options.duplicates is not None:
        _say_merged(name_only, len(duplicates), frame.index.name, options.duplicates)
        duplicates = _NO_DUPLICATES
    step = infer_step(frame.index)
    frame, fill = _regularise(frame, step, options)
    _say_fill(name_only, fill, options)
    if frame.empty:
        raise DataError("data.path", f"{shown} has no rows with values")
    frame.attrs.update(step=step, filled_steps=fill.filled)
    return Table(frame, step, duplicates, fill.filled)


def _read_panel(frame: pd.DataFrame, rows: np.ndarray, ids: pd.Series, options: ReadOptions, name_only: str,
                shown: str) -> Table:
    """A long-format file as a panel (:mod:`hpt.panel`): each series sorted, its duplicates merged or
    listed and its gaps filled on its own; the step is the most common one within the series. All the
    rows are sorted at once; only a series with something to merge, drop or fill is taken apart."""
    column = str(ids.name)
    empty = ids.isna().to_numpy()
    if empty.any():
        raise DataError("data.series", f'column "{column}" has no series id in row {int(np.flatnonzero(empty)[0]) + 2}')
    ids = ids.astype(str)
    if options.series_filter is not None:
        present = set(ids)
        unknown = [i for i in options.series_filter if i not in present]
        if unknown:
            raise DataError("data.series_filter", f'no series {name_few(unknown)} in column "{column}" of {name_only}'
                                                  f"{did_you_mean(unknown[0], sorted(present))}")
        keep = ids.isin(options.series_filter).to_numpy()
        frame, rows, ids = frame.iloc[keep], rows[keep], ids[keep]
    codes, uniques = pd.factorize(ids, sort=True)  # each row's series as a number, in the order of the ids
    order = np.lexsort((frame.index.to_numpy(), codes))  # by series, then time
    frame, rows, codes = frame.iloc[order], rows[order], codes[order]
    times, values = frame.index.to_numpy(), frame.to_numpy()
    same = codes[1:] == codes[:-1]  # two consecutive rows of one series
    starts = np.r_[0, np.flatnonzero(~same) + 1]
    # the step: the most common difference within the series (a duplicate's 0 is none, merged or not)
    step = most_common_step(np.diff(times)[same])
    # only the series with a timestamp to merge, a missing value, or a missing step to fill are taken apart
    work = np.r_[False, same & (times[1:] == times[:-1])] | np.isnan(values).any(axis=1)
    if options.fill != "none":
        work[1:] |= same & breaks(frame.index, step)
    touched = np.flatnonzero(np.add.reduceat(work, starts))
    ends = np.r_[starts[1:], len(codes)]
    fills = {str(sid): _Fill(int(n)) for sid, n in zip(uniques, ends - starts, strict=True)}  # the others: as they are
    listed, pieces, done = [], [], 0  # pieces: (series, times, values), the others' rows as they are between them
    for k in touched:
        lo, hi = starts[k], ends[k]
        sid = str(uniques[codes[lo]])
        pieces.append((codes[done:lo], times[done:lo], values[done:lo]))
        merged, dups = _merge_duplicates(frame.iloc[lo:hi], rows[lo:hi], options.duplicates)
        if len(dups):
            listed.append((sid, dups))
        regular, fills[sid] = _regularise(merged, step, options)
        pieces.append((np.full(len(regular), codes[lo]), regular.index.to_numpy(), regular.to_numpy()))
        done = hi
    pieces.append((codes[done:], times[done:], values[done:]))
    if listed and options.duplicates is not None:
        _say_merged(f"{name_only} ({len(listed)} series: {name_few([i for i, _ in listed])})",
                    sum(len(d) for _, d in listed), frame.index.name, options.duplicates)
        listed = []
    _say_panel_fill(name_only, fills, options)
    series, at = np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])
    if not len(series):
        raise DataError("data.path", f"{shown} has no rows with values")
    kept, series = np.unique(series, return_inverse=True)  # a series whose every row was dropped is none
    when, moments = pd.factorize(at, sort=True)
    index = pd.MultiIndex(levels=[uniques[kept], pd.DatetimeIndex(moments)], codes=[series, when],
                          names=[column, frame.index.name], verify_integrity=False)
    panel = pd.DataFrame(np.concatenate([p[2] for p in pieces]), index=index, columns=frame.columns)
    filled = sum(f.filled for f in fills.values())
    panel.attrs.update(step=step, filled_steps=filled)
    duplicates = pd.concat([d.set_axis(pd.MultiIndex.from_arrays([[sid] * len(d), d.index], names=index.names))
                            for sid, d in listed]) if listed else _NO_DUPLICATES
    return Table(panel, step, duplicates, filled)


def _names(header: list[str], most: int = 20) -> str:
    """Column names for a one-line message: odd ones JSON-quoted, at most `most` of them."""
    shown = [n if n.isprintable() and n.strip() == n and n else show(n) for n in map(str, header[:most])]
    return ", ".join(shown) + (f", ... ({len(header)} columns)" if len(header) > most else "")


def _column_keys(columns: tuple[str, ...]) -> list[tuple[str, str]]:
    target, *features = columns
    return [("data.target", target)] + [(f"data.features[{i}]", f) for i, f in enumerate(features)]


def _header(path: str, parquet: bool, shown: str) -> list[str]:
    try:
        if parquet:
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0, **csv_format(path)).columns)
    except Exception as e:
        raise DataError("data.path", f"cannot read {shown}: {e}") from None


SEPARATORS = (",", ";", "\t", "|")
"""The column separators a CSV file may use; :func:`csv_format` tells which one a file does."""


def csv_format(path: str) -> dict[str, str]:
    """How to read a CSV file, as options of ``pandas.read_csv``: its separator and decimal mark.

    The separator is, of :data:`SEPARATORS`, the one that splits the header into the most
    columns and the first data row into as many (a comma when none splits the header), so
    files saved with semicolons, tabs or bars are read as they are (quoted names are
    respected). A file separated by semicolons (as spreadsheets write in languages with a
    decimal comma) may write numbers as 1,5 or 1.5.
    """
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = [f.readline(), f.readline()]
    except (OSError, UnicodeDecodeError):
        return {}  # pandas reports what is wrong with the file
    best, most = ",", 1
    for sep in SEPARATORS:
        counts = [len(next(csv.reader([line], delimiter=sep), [])) for line in lines if line.strip()]
        if counts and counts[0] > most and all(c == counts[0] for c in counts):
            best, most = sep, counts[0]
    return {"sep": best, "decimal": "," if best == ";" else "."}


def column_hint(name: str, header: list[str]) -> str:
    """What to add to "no column `name`": a header read as one column that holds a character that could separate
    columns (a space, a colon: the file uses a separator hpt does not read) names the separators hpt reads; else a
    close name, if any (a file of one column lacks the others)."""
    if len(header) == 1 and name not in header and re.search(r"[^\w.\-]", header[0]):
        return (" (the header is one column: hpt reads CSV files separated by commas, semicolons, tabs or |; "
                "save it with one of them)")
    return did_you_mean(name, header)


# -- duplicates and gaps --------------------------------------------------------------------


def duplicates_text(dups: pd.Series, time_column: str) -> str:
    """The duplicated timestamps a :class:`Table` lists, for a message: ``2 duplicated timestamps in "ts" (first:
    2013-01-01 05:00:00, rows 7 and 8)``; of a panel, ``... in "ts" of 2 series ("a", "b") (first: ... in series
    "a", ...)``."""
    where = ""
    first = str(dups.index[0])
    if is_panel(dups.to_frame()):
        ids = list(dict.fromkeys(map(str, dups.index.get_level_values(0))))
        where = f" of {len(ids)} series ({name_few(ids)})"
        first = f'{dups.index[0][1]} in series "{dups.index[0][0]}"'
    rows = dups.iloc[0]
    return (f'{plural(len(dups), "duplicated timestamp")} in "{time_column}"{where} (first: {first}, rows '
            + ", ".join(map(str, rows[:-1])) + f" and {rows[-1]})")


def _merge_duplicates(frame: pd.DataFrame, rows: np.ndarray, how: str | None) -> tuple[pd.DataFrame, pd.Series]:
    """One row per timestamp: merged as `how` says, else the first kept. Also the duplicated timestamps
    with the file rows that hold them (the caller says how many were merged, or lists them)."""
    repeated = frame.index.duplicated(keep=False)
    if not repeated.any():
        return frame, _NO_DUPLICATES
    times = frame.index[repeated]
    listed = pd.Series(rows[repeated], index=times).groupby(level=0).agg(tuple)
    if how == "mean":
        merged = frame.groupby(level=0, sort=True).mean()
    else:
        merged = frame[~frame.index.duplicated(keep="last" if how == "last" else "first")]
    return merged, listed


def _say_merged(where: str, n: int, time_column: Any, how: str) -> None:
    log.info("%s: %s duplicated in %s: kept the %s of each (data.duplicates)", where,
             plural(n, "timestamp"), show(time_column), how)


_NO_DUPLICATES = pd.Series([], index=pd.DatetimeIndex([]), dtype=object)


@dataclass(frozen=True)
class _Fill:
    """What :func:`_regularise` did to one series."""

    rows: int  # before
    dropped: int = 0  # rows with a missing value dropped (data.fill "none")
    holes: int = 0  # missing values and steps found (data.fill)
    filled: int = 0
    left: int = 0  # steps left missing (beyond data.fill_limit)
    detail: str = ""  # of the rows dropped: in which columns, and the first one's time


def _regularise(frame: pd.DataFrame, step: pd.Timedelta, options: ReadOptions) -> tuple[pd.DataFrame, _Fill]:
    """Drop rows with missing values, or fill them and the missing steps as options.fill says."""
    missing = np.isnan(frame.to_numpy(dtype=np.float64)).any(axis=1)
    if options.fill == "none":
        if not missing.any():
            return frame, _Fill(len(frame))
        per_column = frame[missing].isna().sum()
        columns = ", ".join(f"{n} in {c}" for c, n in per_column[per_column > 0].items())
        first = frame.index[missing][0]
        detail = f" ({columns}; the first at {first[-1] if isinstance(first, tuple) else first})"
        return frame[~missing], _Fill(len(frame), dropped=int(missing.sum()), detail=detail)
    counts = missing_steps(frame.index, step)
    if counts.any():
        at = np.repeat(np.arange(len(counts)), counts)
        k = np.arange(len(at)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
        added = frame.index[at] + step * k
        frame = frame.reindex(frame.index.append(pd.DatetimeIndex(added)).sort_values())
    holes = frame.isna().any(axis=1)
    if options.fill == "ffill":
        filled = frame.ffill(limit=options.fill_limit)
    else:
        filled = frame.interpolate(method="time", limit=options.fill_limit, limit_area="inside")
    left = filled.isna().any(axis=1)
    return filled[~left], _Fill(len(missing), holes=int(holes.sum()), filled=int((holes & ~left).sum()),
                                left=int(left.sum()))


def _say_fill(where: str, fill: _Fill, options: ReadOptions) -> None:
    """The log line of what :func:`_regularise` did to the data (nothing when it found nothing to do)."""
    if fill.dropped:
        log.warning("%s: dropped %d of %d rows with missing values%s; data.fill fills them instead", where,
                    fill.dropped, fill.rows, fill.detail)
    if fill.holes:
        limit = f" (at most {options.fill_limit} in a row)" if options.fill_limit else ""
        log.info("%s: filled %s by %s%s%s", where, plural(fill.filled, "missing step"),
                 "carrying the last value forward" if options.fill == "ffill" else "interpolation", limit,
                 f"; {plural(fill.left, 'step')} left missing" if fill.left else "")


def _say_panel_fill(where: str, fills: dict[str, _Fill], options: ReadOptions) -> None:
    """One log line for the series of a panel that had rows dropped or filled: the sums, and which series."""
    touched = [sid for sid, f in fills.items() if f.dropped or f.holes]
    if touched:
        total = _Fill(sum(f.rows for f in fills.values()), *(sum(getattr(f, k) for f in fills.values())
                                                             for k in ("dropped", "holes", "filled", "left")))
        _say_fill(f"{where} ({len(touched)} series: {name_few(touched)})", total, options)


# -- periods ----------------------------------------------------------------------------


def period_fingerprint(frame: pd.DataFrame, period: Period) -> str:
    """A digest of the rows a period trains and validates on: their times and values.

    Trial ids include it, so data corrected inside a period reruns that period's trials,
    while rows appended after it leave it (and its finished trials) as they were.
    """
    rows = period_rows(frame, period)
    digest = hashlib.sha256()
    digest.update(",".join(map(str, rows.columns)).encode())
    if is_panel(rows):  # which series each row is of
        digest.update("\0".join(map(str, rows.index.get_level_values(0))).encode())
    digest.update(times_of(rows).to_numpy(dtype="datetime64[ns]").view(np.int64).tobytes())
    digest.update(np.ascontiguousarray(rows.to_numpy(dtype=np.float64)).tobytes())
    return digest.hexdigest()[:16]


def file_columns(path: str) -> list[str]:
    """The column names of a CSV or Parquet file (local, ``gs://`` or ``s3://``), read from its header only."""
    local = _download(path) if is_bucket_uri(path) else path
    if not os.path.isfile(local):
        raise DataError("data.path", f"file not found: {path}")
    return _header(local, path.endswith((".parquet", ".pq")), path)


def read_columns(path: str, columns: tuple[str, ...], text: tuple[str, ...] = ()) -> pd.DataFrame:
    """Columns of a CSV or Parquet file (local, ``gs://`` or ``s3://``) as they are: every row in the file's
    order, no value parsed beyond what the reader infers (text stays text), the CSV's `text` columns read as
    written ("007" stays "007"). The caller names columns the file has (:func:`file_columns`). Cached per file
    version, like :func:`read_data`."""
    local = _download(path) if is_bucket_uri(path) else path
    if not os.path.isfile(local):
        raise DataError("data.path", f"file not found: {path}")
    return _read_columns_cached(local, os.stat(local).st_mtime_ns, tuple(dict.fromkeys(columns)), path, text).copy()


@functools.lru_cache(maxsize=8)
def _read_columns_cached(path: str, _mtime: int, columns: tuple[str, ...], shown: str,
                         text: tuple[str, ...]) -> pd.DataFrame:
    try:
        if shown.endswith((".parquet", ".pq")):
            return pd.read_parquet(path, columns=list(columns)).reset_index(drop=True)
        return pd.read_csv(path, usecols=list(columns), dtype=dict.fromkeys(text, str), **csv_format(path))
    except Exception as e:  # pandas raises many kinds for a malformed file
        raise DataError("data.path", f"cannot read {shown}: {e}") from None
