"""Whether a spec's data gives every period its windows: checked when a spec is parsed and again when it runs.

Also the spec at another fidelity (:func:`quick_spec`): its periods are drawn from the data.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpt.calendar import PREFIX as CALENDAR_PREFIX
from hpt.data import DUPLICATES, DataError, duplicates_text
from hpt.errors import Problem, SpecError, show
from hpt.fidelity import LAST_MONTH, QUICK, Fidelity
from hpt.hparams import TRAINING
from hpt.panel import is_panel, name_few, series_count, times_of
from hpt.periods import AutoPeriods, Period, auto_periods, quick_period
from hpt.progress import plural
from hpt.spec.objects import Axis, DataSpec, Distribution, Spec
from hpt.windows import (
    LONGER_PERIODS,
    WindowCount,
    count_windows,
    frame_step,
    left_out_line,
    series_problems,
    step_text,
    window_problem,
    window_report,
)

__all__ = ["FIT_MONTHS", "MIN_TRAIN_WINDOWS", "at_fidelity", "check_data", "data_problems", "data_report",
           "fit_months", "quick_spec", "span", "unused_periods", "window_extremes"]

log = logging.getLogger("hpt")

MIN_TRAIN_WINDOWS = 100  # fewer in a period: validate and run warn
FIT_MONTHS = (2, 3, 4, 6, 9, 12)
"""The months per period ``"months": "fit"`` tries, fewest first."""


def quick_spec(spec: Spec, where: str | None = None) -> Spec:
    """The screening variant: the spec at fidelity :data:`~hpt.fidelity.QUICK`. `where` names what asked for the
    screen in a problem with its month (``search.promote``; default ``--quick``)."""
    return at_fidelity(spec, QUICK, where)


def at_fidelity(spec: Spec, fidelity: Fidelity, where: str | None = None) -> Spec:
    """The spec at `fidelity`: its trials get their own ids, and train at most its epochs on its data
    (for ``last_month``: one period, the last whole month of data before `spec.today`, whose problems are said
    at `where`, by default the fidelity's option: not at the spec's date_ranges, which it replaces)."""
    if fidelity.data != LAST_MONTH:
        return dataclasses.replace(spec, fidelity=fidelity)
    with unused_periods():  # the data, read and checked for the spec's periods, which the month replaces
        frame = check_data(spec)
    first, last, step = span(frame)
    where = where or fidelity.option
    try:
        period = quick_period(first, last, step, spec.today, spec.period_rule.holdout if spec.period_rule else 0)
    except ValueError as e:
        raise SpecError(spec.source, [Problem(where, str(e))]) from None
    variant = dataclasses.replace(spec, periods=(period,), fidelity=fidelity)
    check_data(variant, where)
    return variant


def check_data(spec: Spec, where: str | None = None) -> pd.DataFrame:
    """Read the spec's data and check that every period can be windowed; return the data. `where`: what the
    periods' problems are said at, when not the spec's date_ranges (a screen's month)."""
    extremes = window_extremes(spec.parameters, spec.training)
    places = [(where or (f"date_ranges[{i}]" if spec.period_rule is None else "date_ranges.auto"), p)
              for i, p in enumerate(spec.periods)]
    frame, problems = data_problems(spec.data, places, extremes)
    if spec.fidelity.option:
        said = "" if where else f"{spec.fidelity.option}: "
        problems = [Problem(pr.path, f"{said}{spec.fidelity.purpose} {_fidelity_advice(spec, pr.message)}")
                    for pr in problems]
    if problems or frame is None:
        raise SpecError(spec.source, problems)
    return frame


def _fidelity_advice(spec: Spec, message: str) -> str:
    """A period problem of a fidelity whose period is fixed (the screen's whole month): not "use longer periods"."""
    if spec.fidelity.data != LAST_MONTH or LONGER_PERIODS not in message:
        return message
    return message.replace(LONGER_PERIODS, "the screen is one whole month of data: a shorter validation, lookback "
                           "or horizon could fit it, or tune without the screen (--quick, search.promote)")


def data_report(spec: Spec, frame: pd.DataFrame) -> dict[str, Any]:
    """For the run record: how the data was read and what each period gives.

    Window counts are for the largest lookback and horizon the search can pick (the most
    windows a gap can cost) and the first validation setting.
    """
    lookback, horizon, validation = window_extremes(spec.parameters, spec.training)[0]
    o = spec.data.options
    panel = {} if o.series is None else {"series": o.series, "series_filter": o.series_filter and list(o.series_filter),
                                         "series_features": list(spec.data.series_features)}
    return {"time_format": o.time_format, "time_unit": o.time_unit, "fill": o.fill, "fill_limit": o.fill_limit,
            "duplicates": o.duplicates, **panel, **window_report(frame, spec.periods, lookback, horizon, validation)}


def span(frame: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta]:
    """First and last timestamp (of any series), and the series' step (its most common time difference)."""
    times = times_of(frame)
    return times.min(), times.max(), frame_step(frame)


def data_problems(data: DataSpec, periods: list[tuple[str, Period]], extremes: list[tuple[int, int, Any]],
                   ) -> tuple[pd.DataFrame | None, list[Problem]]:
    try:
        table = data.read()
    except DataError as e:
        return None, [Problem(path, message) for path, message in e.found]
    frame = table.frame
    problems = []
    first, last, step = span(frame)
    _say_constant_calendar(data, frame, step)
    unused = np.ones(len(table.duplicates), dtype=bool)  # duplicated timestamps in no period
    at = times_of(table.duplicates)
    for where, period in periods:  # where: the period's JSON path in the spec
        refused = False
        if period.start < first or period.end > last + step:
            problems.append(Problem(where, f"period {period} reaches outside the data ({first} to {last})"))
            refused = True
        inside = (at >= period.start) & (at < period.end)
        if inside.any():  # said for a period refused above too: it is the next thing to fix there
            problems.append(Problem(where, _duplicates_message(period, table.duplicates[inside], data)))
            unused &= ~inside
            refused = True
        if refused:
            continue
        left_out: list[dict[str, str] | None] = []  # of a panel, per extreme: the series left out of the period
        for lookback, horizon, validation in extremes:
            left_out.append(series_problems(frame, period, lookback, horizon, validation) if is_panel(frame) else None)
            msg = window_problem(frame, period, lookback, horizon, validation, left_out[-1])
            if msg:
                problems.append(Problem(where, msg))
                break
        else:
            if is_panel(frame):
                _say_left_out(frame, period, left_out)
            count = count_windows(frame, period, *extremes[0], left_out[0])
            _say_gaps(count, step, extremes[0])
            _say_few_windows(count, where, step, extremes[0])
    if len(table.duplicates) and unused.all():
        _say_once(f"{Path(data.path).name}: {duplicates_text(table.duplicates, data.time_column)} outside the periods "
                  "used; no trial uses them")
    return frame, problems


def _say_constant_calendar(data: DataSpec, frame: pd.DataFrame, step: pd.Timedelta) -> None:
    """A calendar input that is the same on every row (``hour`` of daily data, ``dow`` of weekly data): two input
    columns that tell the model nothing."""
    for i, name in enumerate(data.calendar):
        values = frame[[f"{CALENDAR_PREFIX}{name}_sin", f"{CALENDAR_PREFIX}{name}_cos"]].to_numpy()
        if len(values) and np.ptp(values, axis=0).max() < 1e-9:
            _say_once(f'{Path(data.path).name}: data.calendar[{i}]: "{name}" is the same on every row of this data '
                      f"(a row every {step_text(step)}): it tells the model nothing; leave it out")


def _say_left_out(frame: pd.DataFrame, period: Period, each: list[dict[str, str] | None]) -> None:
    """The series of a panel a period leaves out (too short for the largest window the search can pick)."""
    left_out: dict[str, str] = {}
    for found in each:
        for sid, why in (found or {}).items():
            left_out.setdefault(sid, why)
    if left_out:
        _say_once(left_out_line(period, left_out, series_count(frame)))


def _duplicates_message(period: Period, dups: pd.Series, data: DataSpec) -> str:
    several = "" if data.series is not None else " (a file of several series: name their column in data.series)"
    return (f"period {period} holds {duplicates_text(dups, data.time_column)}: remove them or set data.duplicates to "
            + ", ".join(f'"{d}"' for d in DUPLICATES[:-1]) + f' or "{DUPLICATES[-1]}"' + several)


def _say_gaps(count: WindowCount, step: pd.Timedelta, extremes: tuple[int, int, Any]) -> None:
    if not count.gaps:
        return
    lookback, horizon, _ = extremes
    where = f" in {len(count.gappy)} series ({name_few(list(count.gappy))})" if count.gappy else ""
    _say_once(f"period {count.period}: {plural(count.gaps, 'gap')}{where} ({plural(count.missing_steps, 'missing step')} "
              f"of {step_text(step)}): {count.skipped_train} of {count.train + count.skipped_train} train and "
              f"{count.skipped_val} of {count.val + count.skipped_val} validation windows span one and are not used "
              f"(lookback {lookback}, horizon {horizon}; data.fill fills gaps)")


def _say_few_windows(count: WindowCount, where: str, step: pd.Timedelta, extremes: tuple[int, int, Any]) -> None:
    if count.train >= MIN_TRAIN_WINDOWS:
        return
    lookback, horizon, validation = extremes
    _say_once(f"period {count.period} ({where}) leaves {plural(count.train, 'training window')} ({step_text(step)} "
              f"steps; lookback {lookback}, horizon {horizon}, validation {show(validation)}): fewer than "
              f"{MIN_TRAIN_WINDOWS}, likely too few to learn from; use longer periods, or a shorter lookback, horizon or "
              "validation")


_said: set[str] = set()
_unsaid = 0  # > 0 while a spec loads whose periods a screen replaces (unused_periods): their notes are not said


@contextmanager
def unused_periods() -> Iterator[None]:
    """Load a spec whose periods will not be used (the quick screen's month replaces them): the notes about them
    (the months "fit" chose, too few windows, gaps, series left out) are not said; their errors still are."""
    global _unsaid
    _unsaid += 1
    try:
        yield
    finally:
        _unsaid -= 1


def _say_once(message: str, level: int = logging.WARNING) -> None:
    """A warning (or `level`) once per process: validating and then running a spec checks its data twice."""
    if message not in _said and not _unsaid:
        _said.add(message)
        log.log(level, "%s", message)


def fit_months(frame: pd.DataFrame, bounds: tuple[pd.Timestamp, pd.Timestamp, pd.Timedelta], rule: AutoPeriods,
               extremes: Sequence[tuple[int, int, Any]], today: date) -> AutoPeriods:
    """`rule` with the fewest months of FIT_MONTHS whose periods each hold at least MIN_TRAIN_WINDOWS training
    windows (for the largest lookback and horizon, with each validation setting: `extremes`); when none does, the
    most the data holds (the periods' windows are then warned about as for any period). `bounds`: the frame's
    :func:`span`. The choice is logged once."""
    first, last, step = bounds
    lookback, horizon, _ = extremes[0]
    validation = " or ".join(show(v) for _, _, v in extremes)
    chosen: tuple[AutoPeriods, int] | None = None
    for months in FIT_MONTHS:
        candidate = dataclasses.replace(rule, months=months)
        try:
            periods = auto_periods(candidate, first, last, step, today)
        except ValueError:
            break  # the data cannot hold the periods this long
        chosen = candidate, min(count_windows(frame, p, lb, h, v).train for p in periods for lb, h, v in extremes)
        if chosen[1] >= MIN_TRAIN_WINDOWS:
            break
    if chosen is None:
        return dataclasses.replace(rule, months=FIT_MONTHS[0])  # drawing them says the data is too short
    rule, fewest = chosen
    why = (f"the fewest that give each period at least {MIN_TRAIN_WINDOWS} training windows" if fewest >= MIN_TRAIN_WINDOWS
           else f"the most the data holds for {plural(rule.count, 'period')}")
    _say_once(f'date_ranges.auto: "months": "fit" chose {rule.months} months, {why} ({fewest} in the shortest; '
              f"{step_text(step)} steps, lookback {lookback}, horizon {horizon}, validation {validation})",
              logging.INFO)
    return rule


def window_extremes(parameters: Mapping[str, Axis], training: Mapping[str, Any]) -> list[tuple[int, int, Any]]:
    """The largest lookback and horizon the search can pick, with each validation setting."""
    def values(name: str) -> list[Any]:
        axis = parameters.get(name)
        if axis is None:
            return [training.get(name, TRAINING[name].default)]
        return [axis.high] if isinstance(axis, Distribution) else list(axis)

    lookback = int(max(values("lookback")))
    horizon = int(max(values("horizon")))
    return [(lookback, horizon, v) for v in values("validation")]
