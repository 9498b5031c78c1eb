"""Periods: the ``[start, end)`` date ranges each config is trained on: given in the spec,
chosen automatically from the month hpt runs in, or the one-month screening window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property

import numpy as np
import pandas as pd

__all__ = ["AutoPeriods", "Holdout", "Period", "auto_periods", "parse_time", "quick_period", "time_text", "usable_span",
           "whole_days"]


def parse_time(text: str) -> pd.Timestamp:
    """An ISO date or date-time ("2013-01-01", "2013-01-01T06:00"); ValueError otherwise."""
    if not isinstance(text, str) or not text[:4].isdigit():
        raise ValueError(text)
    stamp = pd.Timestamp(text)
    if stamp is pd.NaT:
        raise ValueError(text)
    return stamp


def whole_days(step: pd.Timedelta | None) -> bool:
    """Whether data every `step` is daily or coarser in whole days (its times are dates); False when unknown."""
    day = pd.Timedelta(days=1)
    return step is not None and pd.Timedelta(step) >= day and pd.Timedelta(step) % day == pd.Timedelta(0)


def time_text(t: pd.Timestamp, step: pd.Timedelta | None = None) -> str:
    """A time as messages and labels write it: the date alone at midnight, else date and time. Of data every `step`:
    the date alone only when the step is whole days (:func:`whole_days`; an hourly row at midnight keeps its time)."""
    t = pd.Timestamp(t)
    days = step is None or whole_days(step)
    return t.strftime("%Y-%m-%d") if days and t == t.normalize() else t.isoformat(sep=" ")


@dataclass(frozen=True, order=True)
class Period:
    """A half-open time range ``[start, end)``; its end part is held out for validation."""

    start: pd.Timestamp
    end: pd.Timestamp

    @cached_property  # asked for every trial id: formatting a Timestamp is slow, and a Period never changes
    def label(self) -> str:
        return f"{self.start_text}..{self.end_text}"

    @cached_property
    def start_text(self) -> str:
        return time_text(self.start)

    @cached_property
    def end_text(self) -> str:
        return time_text(self.end)

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class AutoPeriods:
    """``{"auto": {"count": 3, "months": 3, "holdout": 0}}``: periods chosen from the month hpt runs in."""

    count: int = 3
    months: int = 3
    holdout: int = 0  # final months of data never used
    fit: bool = False  # "months": "fit": `months` is the fewest of FIT_MONTHS that give each period enough windows

    def to_json(self) -> dict[str, dict[str, int]]:
        return {"auto": {"count": self.count, "months": self.months, "holdout": self.holdout}}


def _month_start(t: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(t.year, t.month, 1)


def usable_span(first: pd.Timestamp, last: pd.Timestamp, step: pd.Timedelta, holdout: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The whole months of data, less the final `holdout` months: ``[start, end)``."""
    start = first if first == _month_start(first) else _month_start(first) + pd.DateOffset(months=1)
    end = _month_start(last + step) - pd.DateOffset(months=holdout)
    return pd.Timestamp(start), pd.Timestamp(end)


def auto_periods(rule: AutoPeriods, first: pd.Timestamp, last: pd.Timestamp, step: pd.Timedelta,
                 today: date) -> tuple[Period, ...]:
    """`rule.count` non-overlapping month-aligned periods inside the data, chosen by the month of `today`.

    The same year and month always give the same periods; another month gives another draw,
    so tuning repeated month after month does not overfit one split. Raises ValueError when
    the data cannot hold them.
    """
    start, end = usable_span(first, last, step, rule.holdout)
    n_months = (end.year - start.year) * 12 + end.month - start.month
    slots = n_months // rule.months  # candidate offsets are whole months; at most this many fit side by side
    if slots < rule.count:
        raise ValueError(f"the data holds {max(n_months, 0)} whole months"
                         + (f" before the {rule.holdout}-month holdout" if rule.holdout else "")
                         + f": too few for {rule.count} periods of {rule.months} months")
    rng = np.random.default_rng([today.year, today.month])
    # Cut the usable months into `count` free gaps and `count` periods: a random composition of the spare months.
    spare = n_months - rule.count * rule.months
    cuts = np.sort(rng.integers(0, spare + 1, size=rule.count))
    periods = []
    for k, cut in enumerate(cuts):
        offset = int(cut) + k * rule.months
        p_start = start + pd.DateOffset(months=offset)
        periods.append(Period(pd.Timestamp(p_start), pd.Timestamp(p_start + pd.DateOffset(months=rule.months))))
    return tuple(periods)


def quick_period(first: pd.Timestamp, last: pd.Timestamp, step: pd.Timedelta, today: date,
                 holdout: int = 0) -> Period:
    """The last whole month of data before the month of `today` (and before any holdout)."""
    start, end = usable_span(first, last, step, holdout)
    end = min(end, _month_start(pd.Timestamp(today)))
    if end - pd.DateOffset(months=1) < start:
        raise ValueError(f"no whole month of data before {today.isoformat()}")
    return Period(pd.Timestamp(end - pd.DateOffset(months=1)), pd.Timestamp(end))


@dataclass(frozen=True)
class Holdout:
    """The hold-out: ``[start, end)`` at the end of the data, and where it was asked for."""

    start: pd.Timestamp
    end: pd.Timestamp
    how: str  # "date_ranges.auto.holdout: 1 month", "--holdout 1M", "--holdout-start 2014-12-01"

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)
