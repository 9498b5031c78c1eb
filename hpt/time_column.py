"""A data file's time column read into times: in one format (the first row's, or ``data.time_format``), ISO 8601
with or without UTC offsets (made UTC), or numbers since 1970 (``data.time_unit``); a row that does not fit is
named with its row number and the setting that would read it.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Protocol

import numpy as np
import pandas as pd

from hpt.errors import DataError, show

__all__ = ["TimeSettings", "parse_times"]


class TimeSettings(Protocol):
    """What the time column is read with (:class:`hpt.data.ReadOptions` has both)."""

    @property
    def time_format(self) -> str | None: ...  # a strftime pattern such as "%d/%m/%Y %H:%M"

    @property
    def time_unit(self) -> str | None: ...  # numbers as times: "s" or "ms" since 1970-01-01 UTC

# A UTC offset after a clock time: "...12:00:00+01:00", "...12:00Z", "...12:00 +0100".
_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_EPOCH_YEARS = (1971, 2200)  # times read with time_unit outside these years are read in the wrong unit


def parse_times(col: pd.Series, name: str, options: TimeSettings) -> pd.Series:
    """Naive UTC (or local, when the data has no offsets) times, one format for every row."""
    if pd.api.types.is_datetime64_any_dtype(col):
        parsed = col
    elif options.time_unit:
        parsed = _from_numbers(col, name, options.time_unit)
    elif options.time_format:
        parsed = _with_format(_as_text(col), options.time_format, "data.time_format", name)
    elif pd.api.types.is_numeric_dtype(col):
        row, value = _first_value(col, name)
        kind = "true/false values" if pd.api.types.is_bool_dtype(col) else "numbers"
        raise DataError("data.time_column",
                        f'column "{name}" holds {kind} such as {show(value)} (row {row}), not dates: for seconds or '
                        'milliseconds since 1970 set data.time_unit to "s" or "ms"; for dates written as numbers '
                        'set data.time_format, e.g. "%Y%m%d"')
    else:
        parsed = _infer_format(col.astype("string").str.strip(), name)
    missing = np.flatnonzero(parsed.isna().to_numpy())
    if len(missing):
        row = int(missing[0])
        raise DataError("data.time_column", f'row {row + 2} has no time in column "{name}"')
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _first_value(col: pd.Series, name: str) -> tuple[int, Any]:
    """The first non-missing value and its row number."""
    present = np.flatnonzero(col.notna().to_numpy())
    if not len(present):
        raise DataError("data.time_column", f'column "{name}" holds no times')
    i = int(present[0])
    value = col.iloc[i]
    return i + 2, value.item() if hasattr(value, "item") else value


def _as_text(col: pd.Series) -> pd.Series:
    """Times written as numbers (20130101) as the text a time_format reads."""
    if pd.api.types.is_float_dtype(col) and bool((col.dropna() % 1 == 0).all()):
        col = col.astype("Int64")
    return col.astype("string").str.strip()


def _with_format(text: pd.Series, fmt: str, key: str, name: str) -> pd.Series:
    """`text` read with strftime pattern `fmt`; a row that does not match is an error at `key`."""
    parsed = _try_format(text, fmt, key)
    bad = np.flatnonzero((parsed.isna() & text.notna()).to_numpy())
    if len(bad):
        row = int(bad[0])
        raise DataError(key, f'row {row + 2}: {show(text.iloc[row])} in column "{name}" does not match {show(fmt)}')
    return parsed


def _try_format(text: pd.Series, fmt: str, key: str = "data.time_format") -> pd.Series:
    utc = "%z" in fmt or "%Z" in fmt  # offsets that differ (summer time) become UTC
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.to_datetime(text, format=fmt, errors="coerce", utc=utc)
    except ValueError as e:  # a pattern pandas cannot use, such as "%Q"
        raise DataError(key, f"{show(fmt)}: {e}") from None


def _infer_format(text: pd.Series, name: str) -> pd.Series:
    """Read every row in the format of the first one; refuse rows in another format and
    day/month orders the data cannot tell apart."""
    from pandas.tseries.api import guess_datetime_format

    row, first = _first_value(text, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' note on day-first guesses
        fmt = guess_datetime_format(str(first))
    if fmt is None:
        raise DataError("data.time_column", f'cannot parse {show(first)} in column "{name}" (row {row}) as a time; '
                                            'set data.time_format to its pattern, e.g. "%d.%m.%Y %H:%M"')
    if fmt.startswith("%Y-%m-%d"):
        return _iso_times(text, name, row, first)
    parsed = _try_format(text, fmt, "data.time_column")
    bad = np.flatnonzero((parsed.isna() & text.notna()).to_numpy())
    if len(bad):
        i = int(bad[0])
        fits = [f for f in _day_month_swapped(fmt) if _try_format(text, f).notna().sum() == text.notna().sum()]
        hint = f"e.g. {show(fits[0])}" if fits else 'a pattern such as "%d/%m/%Y %H:%M"'
        raise DataError("data.time_column",
                        f'cannot parse {show(text.iloc[i])} in column "{name}" (row {i + 2}) as a time in the format '
                        f"of row {row} ({show(first)}: {show(fmt)}); set data.time_format, {hint}")
    for other in _day_month_swapped(fmt):
        if _try_format(text, other).notna().sum() == text.notna().sum():
            raise DataError("data.time_column",
                            f'times such as {show(first)} (row {row}) in column "{name}" read day-first and '
                            f"month-first alike: set data.time_format to {show(fmt)} or {show(other)}")
    return parsed


def _iso_times(text: pd.Series, name: str, row: int, first: Any) -> pd.Series:
    """ISO 8601 times, with or without clock times; UTC offsets in every row or in none."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas 2 warns that mixed zones will be an error
            parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
        naive = pd.api.types.is_datetime64_dtype(parsed)  # not when some zone was read
    except ValueError:  # pandas 3: "Mixed timezones detected"
        naive = False
    if not naive:  # every row needs an offset (pandas 2 would give the others its own); differing ones become UTC
        offset = text.str.contains(_OFFSET).fillna(False).to_numpy(dtype=bool)
        if not offset[text.notna().to_numpy()].all():
            odd = int(np.flatnonzero(offset != offset[row - 2])[0])
            has = "has no UTC offset" if offset[row - 2] else "has a UTC offset"
            raise DataError("data.time_column",
                            f'{show(text.iloc[odd])} in column "{name}" (row {odd + 2}) {has}, unlike row {row} '
                            f"({show(first)}); give every time an offset or none")
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True)
    bad = np.flatnonzero((parsed.isna() & text.notna()).to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError("data.time_column",
                        f'cannot parse {show(text.iloc[i])} in column "{name}" (row {i + 2}) as a time in the format '
                        f'of row {row} ({show(first)}: ISO 8601); set data.time_format to its pattern, e.g. "%d/%m/%Y"')
    return parsed


def _day_month_swapped(fmt: str) -> list[str]:
    """The same pattern with day and month swapped, where the order is a convention (not year-first)."""
    if "%d" not in fmt or "%m" not in fmt or fmt.startswith(("%Y", "%y")):
        return []
    return [fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")]


def _from_numbers(col: pd.Series, name: str, unit: str) -> pd.Series:
    """Seconds or milliseconds since 1970-01-01 UTC."""
    row, first = _first_value(col, name)
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise DataError("data.time_unit", f'column "{name}" holds {show(first)} (row {row}), not a number: '
                                          "data.time_unit reads seconds or milliseconds since 1970; leave it out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(col, unit=unit, errors="coerce")
    years = parsed.dt.year
    odd = np.flatnonzero(((years < _EPOCH_YEARS[0]) | (years >= _EPOCH_YEARS[1])).to_numpy()
                         | (parsed.isna() & col.notna()).to_numpy())
    if len(odd):
        i = int(odd[0])
        other = "ms" if unit == "s" else "s"
        when = parsed.iloc[i]
        read = f"the year {when.year}" if pd.notna(when) else "a time out of range"
        raise DataError("data.time_unit", f'"{unit}" reads {show(col.iloc[i].item())} in column "{name}" (row {i + 2}) as '
                                          f'{read}; did you mean "{other}"?')
    return parsed
