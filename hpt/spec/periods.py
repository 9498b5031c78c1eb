"""The ``date_ranges`` section: the periods every config trains on, listed or drawn from the data (``auto``)."""

from __future__ import annotations

from typing import Any

from hpt.data import DataError
from hpt.errors import show
from hpt.periods import AutoPeriods, Period, auto_periods, parse_time
from hpt.spec.checker import SECTIONS, Checker, is_int
from hpt.spec.objects import DataSpec
from hpt.spec.windowing import fit_months, span

__all__ = ["FIT", "parse_periods", "resolve_auto"]

FIT = "fit"
"""``date_ranges.auto.months``: as many months as each period needs for enough training windows."""


def parse_periods(ck: Checker, value: Any) -> tuple[Period, ...] | AutoPeriods:
    if value is None:
        ck.add("date_ranges", 'missing (required): a list of ["start", "end"] pairs or {"auto": {...}}')
        return ()
    if isinstance(value, dict):
        return _auto_periods(ck, value)
    if not isinstance(value, list) or not value:
        ck.add("date_ranges", f'expected a non-empty list of ["start", "end"] pairs, got {show(value)}')
        return ()
    periods: list[Period] = []
    for i, pair in enumerate(value):
        where = f"date_ranges[{i}]"
        if not isinstance(pair, list) or len(pair) != 2:
            ck.add(where, f'expected a ["start", "end"] pair, got {show(pair)}')
            continue
        stamps = []
        for j, text in enumerate(pair):
            try:
                stamps.append(parse_time(text))
            except (ValueError, TypeError):
                ck.add(f"{where}[{j}]", f'expected a date such as "2013-01-01", got {show(text)}')
        if len(stamps) != 2:
            continue
        start, end = stamps
        if start >= end:
            ck.add(where, f"reversed range: start {pair[0]} is not before end {pair[1]}")
            continue
        period = Period(start, end)
        if period in periods:
            ck.add(where, f"period {period} is listed twice")
            continue
        periods.append(period)
        ck.period_places.append((where, period))
    return tuple(periods)


def _auto_periods(ck: Checker, value: dict[str, Any]) -> AutoPeriods | tuple[Period, ...]:
    if list(value) != ["auto"] or not isinstance(value["auto"], dict):
        ck.add("date_ranges", f'expected {{"auto": {{"count": 3, "months": 3}}}} or a list of pairs, got {show(value)}')
        return ()
    obj = value["auto"]
    ck.unknown_keys(obj, SECTIONS["date_ranges.auto"], "date_ranges.auto")
    numbers: dict[str, Any] = {}
    if obj.get("months") == FIT:
        numbers["fit"] = True
    for key, default, low in (("count", 3, 1), ("months", 3, 1), ("holdout", 0, 0)):
        v = obj.get(key, default)
        if key == "months" and v == FIT:
            continue  # chosen once the windows are known (hpt.spec.windowing.fit_months)
        if not is_int(v) or v < low:
            fit = f' or "{FIT}"' if key == "months" else ""
            ck.add(f"date_ranges.auto.{key}", f"expected an integer >= {low}{fit}, got {show(v)}")
            return ()
        numbers[key] = int(v)
    return AutoPeriods(**numbers)


def resolve_auto(ck: Checker, data: DataSpec, rule: AutoPeriods,
                 extremes: list[tuple[int, int, Any]]) -> tuple[tuple[Period, ...], AutoPeriods]:
    """The periods `rule` draws from the data, and the rule with its months chosen (``"months": "fit"``, for the
    largest lookback and horizon the search can pick, `extremes`)."""
    try:
        frame = data.read().frame
    except DataError as e:
        for path, message in e.found:
            ck.add(path, message)
        return (), rule
    bounds = span(frame)
    if rule.fit:
        rule = fit_months(frame, bounds, rule, extremes, ck.today)
    try:
        periods = auto_periods(rule, *bounds, ck.today)
    except ValueError as e:
        ck.add("date_ranges.auto", str(e))
        return (), rule
    ck.period_places = [("date_ranges.auto", p) for p in periods]
    return periods, rule
