"""Calendar inputs (``data.calendar``): the time of each row as sin/cos pairs, known in advance.

Each name gives two input columns, ``calendar:NAME_sin`` and ``calendar:NAME_cos``, of the
position of the row's time in its cycle: ``hour`` (of the day, minutes included), ``dow``
(day of the week, Monday 00:00 = 0), ``dom`` (day of the month over its length), ``month``
(of the year) and ``doy`` (day of the year over its length). They are added after the
target and the features, for the input window only; a model records them among its
columns, and `hpt predict` and ``load_model(...).predict`` derive them from the times again.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hpt.panel import times_of

__all__ = ["CALENDAR", "PREFIX", "calendar_columns", "calendar_of", "with_calendar"]

CALENDAR = ("hour", "dow", "dom", "month", "doy")
PREFIX = "calendar:"


def _position(index: pd.DatetimeIndex, name: str) -> np.ndarray:
    """Where each time lies in the cycle `name`, as a fraction of it in [0, 1)."""
    day = (index.hour + index.minute / 60 + index.second / 3600) / 24
    if name == "hour":
        return np.asarray(day, dtype=np.float64)
    if name == "dow":
        return np.asarray((index.day_of_week + day) / 7, dtype=np.float64)
    if name == "dom":
        return np.asarray((index.day - 1 + day) / index.days_in_month, dtype=np.float64)
    if name == "month":
        return np.asarray((index.month - 1 + (index.day - 1 + day) / index.days_in_month) / 12, dtype=np.float64)
    if name == "doy":
        return np.asarray((index.day_of_year - 1 + day) / np.where(index.is_leap_year, 366, 365), dtype=np.float64)
    raise ValueError(f"unknown calendar input {name!r}")


def calendar_columns(names: tuple[str, ...]) -> tuple[str, ...]:
    """The input columns of these calendar names: ``calendar:hour_sin``, ``calendar:hour_cos``, ..."""
    return tuple(f"{PREFIX}{n}_{f}" for n in names for f in ("sin", "cos"))


def calendar_of(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The calendar names a model's input columns hold (in order, each once)."""
    return tuple(dict.fromkeys(c[len(PREFIX):].rsplit("_", 1)[0] for c in columns if c.startswith(PREFIX)))


def with_calendar(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """`frame` (on a DatetimeIndex, or a panel's (series, time) index) with the calendar columns of `names`
    appended; `frame` itself when none."""
    if not names:
        return frame
    index = times_of(frame)
    extra = {}
    for name in names:
        angle = 2 * np.pi * _position(index, name)
        extra[f"{PREFIX}{name}_sin"] = np.sin(angle)
        extra[f"{PREFIX}{name}_cos"] = np.cos(angle)
    return frame.assign(**extra)
