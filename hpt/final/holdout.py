"""The hold-out of ``hpt final``: the end of the data, which tuning and training never see."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hpt.data import frame_step
from hpt.errors import InputError, show
from hpt.periods import Period, parse_time, usable_span
from hpt.progress import plural
from hpt.spec import Spec

__all__ = ["Holdout", "holdout_window", "overlapping_period", "parse_holdout"]

_HOLDOUT_UNITS = {"M": "months", "W": "weeks", "D": "days", "h": "hours"}


@dataclass(frozen=True)
class Holdout:
    """The hold-out: ``[start, end)`` at the end of the data, and where it was asked for."""

    start: pd.Timestamp
    end: pd.Timestamp
    how: str  # "date_ranges.auto.holdout: 1 month", "--holdout 1M", "--holdout-start 2014-12-01"

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)




def parse_holdout(text: str) -> pd.DateOffset:
    """``--holdout``: a number and a unit, M (months), W (weeks), D (days) or h (hours): "1M", "6W"."""
    t = text.strip()
    unit = t[-1:] if t[-1:] in _HOLDOUT_UNITS else ""
    number = t[:-1].strip() if unit else ""
    if not unit or not number.isdigit() or int(number) < 1:
        raise InputError(f"--holdout: expected a length such as 1M (months), 6W, 30D or 72h, got {show(text)}")
    return pd.DateOffset(**{_HOLDOUT_UNITS[unit]: int(number)})


def holdout_window(spec: Spec, frame: pd.DataFrame, holdout: str | None = None,
                   holdout_start: str | None = None) -> Holdout:
    """The hold-out: from --holdout-start, or --holdout before the end of the data, or the
    spec's ``date_ranges.auto.holdout`` months; it always runs to the end of the data.

    InputError when none is given, or it leaves no data (or all of it) to the hold-out.
    """
    first, last, step = frame.index[0], frame.index[-1], frame_step(frame)
    end = pd.Timestamp(last + step)
    if holdout and holdout_start:
        raise InputError("give --holdout or --holdout-start, not both")
    _require_holdout(spec, holdout, holdout_start)
    if holdout_start:
        try:
            start = parse_time(holdout_start)
        except ValueError:
            raise InputError(f"--holdout-start: expected a date such as 2014-12-01, got {show(holdout_start)}") from None
        how = f"--holdout-start {holdout_start}"
    elif holdout:
        start = pd.Timestamp(end - parse_holdout(holdout))
        how = f"--holdout {holdout}"
    else:
        assert spec.period_rule is not None  # _require_holdout said so
        months = spec.period_rule.holdout
        start = usable_span(first, last, step, months)[1]  # where the automatic periods had to end
        how = f"date_ranges.auto.holdout: {plural(months, 'month')}"
    if start <= first:
        raise InputError(f"hold-out {how}: it starts at {start}, not after the data's first time ({first}): "
                         "nothing is left to train on")
    if start > last:
        raise InputError(f"hold-out {how}: it starts at {start}, after the data's last time ({last})")
    return Holdout(start, end, how)


def _require_holdout(spec: Spec, holdout: str | None, holdout_start: str | None) -> None:
    """InputError unless a hold-out is given: an option, or the spec's ``date_ranges.auto.holdout``."""
    if not (holdout or holdout_start or (spec.period_rule is not None and spec.period_rule.holdout)):
        raise InputError("no hold-out: the spec's periods keep none back (set \"holdout\": N months in "
                         "date_ranges.auto and tune again), so give one: --holdout 1M (the last month of the data) "
                         "or --holdout-start YYYY-MM-DD")


def overlapping_period(periods: list[Period], holdout: Holdout) -> Period | None:
    """The first tuning period that overlaps the hold-out, or None."""
    for p in sorted(periods):
        if p.start < holdout.end and p.end > holdout.start:
            return p
    return None
