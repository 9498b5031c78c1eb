"""Windows: how a period's rows are split chronologically and cut into the windows a model learns from.

* **The split** (:class:`Split`, :func:`split_rows`): a run of rows is cut in time order into
  train ``[0, val)``, validation ``[val, holdout)`` and hold-out ``[holdout, rows)``. A tuning
  period's validation part is its last rows (``validation``: a fraction or a duration); ``hpt
  final``'s hold-out (:class:`Holdout`) starts at a time and has no validation part before it.
* **A period's rows** (:func:`period_rows`): those with ``start <= time < end``.
* **The missing-step rule** (:func:`breaks`, :func:`unbroken`): the series' step is its most
  common time difference (:func:`infer_step`); a longer difference is a missing step, and no
  window holds the rows on both sides of one.
* **The windows** (:func:`make_windows`, :func:`count_windows`): window ``j`` holds rows
  ``j .. j+lookback+horizon-1``, inputs first, then targets (the target column). Train windows
  lie wholly in the train part; a scored window (validation, or the hold-out) has its targets in
  the scored part and its inputs may reach back before it (those values are past), so nothing
  scored leaks into training. Scaling statistics come from the train part only.

Windows are positions in the rows (the first row of each), copied into arrays only when asked
for. Breaks are a boolean per pair of consecutive rows: no window holds the rows on both sides.

**Many series** (``data.series``, :mod:`hpt.panel`): each series is split, checked, scaled and cut
as above on its own; a series that cannot give a period a window is left out of it
(:func:`series_problems`); the windows of the others lie one series after another in one
:class:`Windows`, whose :class:`PanelWindows` says which series each scored window is of. All of
it is computed for every series at once (:class:`_Rows`, :class:`_Cut`): per-series figures are
arrays over the series, found by passes over all the rows (a single series is a panel of one), so
a panel of a thousand series costs little more than one series of as many rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from hpt.errors import DataError, InputError, show
from hpt.future import known_ahead, known_mask, zero_unknown
from hpt.hparams import parse_validation
from hpt.panel import is_panel, leave_static, mase_scale, name_few, season_length, series_count, times_of
from hpt.periods import Holdout, Period, parse_time, time_text, usable_span
from hpt.progress import plural

__all__ = ["Holdout", "PanelWindows", "Split", "SplitRule", "Starts", "WindowCount", "Windows", "breaks",
           "count_windows", "forecast_ends", "frame_step", "holdout_window", "infer_step", "input_windows",
           "left_out_line", "make_windows", "missing_steps", "most_common_step", "overlapping_period", "parse_holdout",
           "period_rows", "require_holdout", "series_problems", "split_rows", "step_text", "unbroken",
           "window_problem", "window_report"]

_HOLDOUT_UNITS = {"M": "months", "W": "weeks", "D": "days", "h": "hours"}


# -- the step and the missing-step rule ---------------------------------------------------


def infer_step(*indexes: pd.DatetimeIndex) -> pd.Timedelta:
    """The series' step: the most common difference between consecutive times (the smallest of a tie);
    of several series (a panel's), over the differences within each."""
    return most_common_step(np.concatenate([np.diff(index.to_numpy()) for index in indexes]) if indexes else np.array([]))


def most_common_step(diffs: np.ndarray) -> pd.Timedelta:
    """The most common positive time difference (the smallest of a tie); 0 when there is none."""
    diffs = diffs[diffs > np.timedelta64(0)]
    if not len(diffs):
        return pd.Timedelta(0)
    values, counts = np.unique(diffs, return_counts=True)
    return pd.Timedelta(values[int(np.argmax(counts))])


def step_text(step: pd.Timedelta) -> str:
    """A step in the largest unit that divides it: "1D", "1h", "15min", "90s"."""
    if step <= pd.Timedelta(0):
        return "none"
    for unit in ("D", "h", "min", "s", "ms", "us"):
        n, rest = divmod(step, pd.Timedelta(1, unit=unit))
        if not rest:
            return f"{n}{unit}"
    return str(step)


def frame_step(frame: pd.DataFrame) -> pd.Timedelta:
    """The step :func:`hpt.data.read_data` found, else the frame's own (a panel's: over the differences within
    each series)."""
    step = frame.attrs.get("step")
    if isinstance(step, pd.Timedelta):
        return step
    index = frame.index
    if isinstance(index, pd.MultiIndex):
        codes = np.asarray(index.codes[0])
        return most_common_step(np.diff(times_of(frame).to_numpy())[codes[1:] == codes[:-1]])
    return infer_step(index)


def breaks(index: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """For each pair of consecutive times, whether at least one step is missing between them.

    Half a step of slack lets calendar steps through: months of 28 to 31 days, leap years.
    """
    if step <= pd.Timedelta(0) or len(index) < 2:
        return np.zeros(max(len(index) - 1, 0), dtype=bool)
    return np.diff(index.to_numpy()) > (1.5 * step).to_timedelta64()


def missing_steps(index: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """How many steps are missing after each time (0 where the next time follows directly)."""
    out = np.zeros(max(len(index) - 1, 0), dtype=np.int64)
    brk = breaks(index, step)
    if brk.any():
        diffs = np.diff(index.to_numpy())[brk]
        out[brk] = np.rint(diffs / step.to_timedelta64()).astype(np.int64) - 1
    return np.maximum(out, 0)


def unbroken(cut: np.ndarray, width: int) -> np.ndarray:
    """For each run of `width` consecutive rows (by its first row), whether no break lies inside it.

    `cut[i]` says no window may hold both row i and row i+1 (:func:`breaks`: a missing step).
    """
    n = len(cut) + 1
    if n < width:
        return np.zeros(0, dtype=bool)
    seen = np.concatenate(([0], np.cumsum(cut)))  # breaks before each row
    return np.asarray(seen[width - 1:] - seen[: n - width + 1] == 0)


# -- the split ----------------------------------------------------------------------------


SplitRule = float | str | Holdout
"""Where a period's rows are split: a validation part at their end (a fraction such as 0.2 or a
duration such as "7D", as the ``validation`` hyperparameter says), or a :class:`Holdout`."""


@dataclass(frozen=True)
class Split:
    """A run of rows cut in time order: train ``[0, val)``, validation ``[val, holdout)``, hold-out ``[holdout, rows)``."""

    rows: int
    val: int  # the first validation row
    holdout: int  # the first hold-out row; `rows` when there is none

    @property
    def train(self) -> range:
        return range(0, self.val)

    @property
    def validation(self) -> range:
        return range(self.val, self.holdout)

    @property
    def held_out(self) -> range:
        return range(self.holdout, self.rows)

    @property
    def scored(self) -> range:
        """The rows windows are scored on: the hold-out when there is one, else the validation part."""
        return self.held_out if self.holdout < self.rows else self.validation


def split_rows(index: pd.DatetimeIndex, rule: SplitRule) -> Split:
    """How `rule` splits the rows at these times.

    A validation fraction takes that share of the rows (rounded); a duration the rows within
    it of the last time; a hold-out every row from its start on, and leaves no validation part.
    """
    val, holdout = _split_points(index, np.array([0]), np.array([len(index)]), rule)
    return Split(len(index), int(val[0]), int(holdout[0]))


def _split_points(times: pd.DatetimeIndex, lo: np.ndarray, hi: np.ndarray, rule: SplitRule,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Where `rule` splits each run ``[lo, hi)`` of `times` (runs one after another, covering every time, each
    in time order), as :func:`split_rows` says: per run, its first validation row and its first hold-out row,
    counted from its first row."""
    n = hi - lo
    if isinstance(rule, Holdout):
        val = _in_each(np.asarray(times < rule.start), lo, hi)
        return val, val
    validation = parse_validation(rule)
    if isinstance(validation, float):
        return np.rint(n * (1 - validation)).astype(np.int64), n
    t = times.to_numpy()
    if not len(t):
        return np.zeros_like(n), n
    ends = t[np.maximum(hi - 1, 0)]
    if isinstance(validation, pd.DateOffset):  # calendar months back from each run's last time
        last = (pd.DatetimeIndex(ends) - validation).to_numpy()
    else:
        last = ends - validation.to_timedelta64()  # within the duration of a run's last time
    return _in_each(t <= np.repeat(last, n), lo, hi), n


def _in_each(flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """How many of `flags` are set in each run ``[lo, hi)``."""
    seen = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    return seen[hi] - seen[lo]


def period_rows(frame: pd.DataFrame, period: Period) -> pd.DataFrame:
    """The rows of `frame` (of every series, for a panel) with ``period.start <= time < period.end``."""
    index = frame.index
    if not isinstance(index, pd.MultiIndex) and index.is_monotonic_increasing:  # a slice: no mask, no copy
        return frame.iloc[int(index.searchsorted(period.start)):int(index.searchsorted(period.end))]
    times = times_of(frame)
    return frame.loc[(times >= period.start) & (times < period.end)]


# -- the hold-out -------------------------------------------------------------------------


def parse_holdout(text: str) -> pd.DateOffset:
    """``--holdout``: a number and a unit, M (months), W (weeks), D (days) or h (hours): "1M", "6W"."""
    t = text.strip()
    unit = t[-1:] if t[-1:] in _HOLDOUT_UNITS else ""
    number = t[:-1].strip() if unit else ""
    if not unit or not number.isdigit() or int(number) < 1:
        raise InputError(f"--holdout: expected a length such as 1M (months), 6W, 30D or 72h, got {show(text)}")
    return pd.DateOffset(**{_HOLDOUT_UNITS[unit]: int(number)})


def holdout_window(kept: int, frame: pd.DataFrame, holdout: str | None = None,
                   holdout_start: str | None = None) -> Holdout:
    """The hold-out: from --holdout-start, or --holdout before the end of the data, or the
    `kept` months the spec's automatic periods keep back (``date_ranges.auto.holdout``, 0 for
    none); it always runs to the end of the data.

    InputError when none is given, or it leaves no data (or all of it) to the hold-out.
    """
    times = times_of(frame)
    first, last, step = times.min(), times.max(), frame_step(frame)
    end = pd.Timestamp(last + step)
    if holdout and holdout_start:
        raise InputError("give --holdout or --holdout-start, not both")
    require_holdout(kept, holdout, holdout_start)
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
        months = kept  # require_holdout said there are some
        start = usable_span(first, last, step, months)[1]  # where the automatic periods had to end
        how = f"date_ranges.auto.holdout: {plural(months, 'month')}"
    if start <= first:
        raise InputError(f"hold-out {how}: it starts at {start}, not after the data's first time ({first}): "
                         "nothing is left to train on")
    if start > last:
        raise InputError(f"hold-out {how}: it starts at {start}, after the data's last time ({last})")
    return Holdout(start, end, how)


def require_holdout(kept: int, holdout: str | None, holdout_start: str | None) -> None:
    """InputError unless a hold-out is given: an option, or `kept` > 0 months the spec's automatic periods keep back."""
    if not (holdout or holdout_start or kept):
        raise InputError("no hold-out: the spec's periods keep none back (set \"holdout\": N months in "
                         "date_ranges.auto and tune again), so give one: --holdout 1M (the last month of the data) "
                         "or --holdout-start YYYY-MM-DD")


def overlapping_period(periods: Iterable[Period], holdout: Holdout) -> Period | None:
    """The first tuning period that overlaps the hold-out, or None."""
    for p in sorted(periods):
        if p.start < holdout.end and p.end > holdout.start:
            return p
    return None


# -- windows ------------------------------------------------------------------------------


class Starts(NamedTuple):
    """The first row of each train and scored window, and how many of each a break left out."""

    train: np.ndarray
    scored: np.ndarray
    skipped_train: int
    skipped_scored: int


def input_windows(values: np.ndarray, lookback: int) -> np.ndarray:
    """Every run of `lookback` consecutive rows of `values` ``(rows, F)``: a view ``(rows-lookback+1, lookback, F)``."""
    return np.lib.stride_tricks.sliding_window_view(values, lookback, axis=0).transpose(0, 2, 1)


@dataclass(frozen=True, eq=False)
class PanelWindows:
    """What the windows of a panel (:mod:`hpt.panel`) know beyond a single series' :class:`Windows`: the
    series that give the period windows, each one's scaling, which series each scored window is of, and
    each one's in-sample seasonal-naive MAE in its standardised units (for ``val_mase``)."""

    series: tuple[str, ...]
    mean: np.ndarray  # (series, columns): each series' train-part statistics
    std: np.ndarray
    train_rows: np.ndarray  # the rows of `Windows.values` in a series' train part (bool)
    val_series: np.ndarray  # the series (its position in `series`) of each scored window
    naive_mae: np.ndarray  # per series (hpt.panel.mase_scale), in the windows' units
    season: int
    # per series: how its windows' target units give its standardised ones, ``z = value * unit + shift`` (training.scaler
    # "robust": each series scaled by its medians and IQRs); 1 and 0 when they are those (standard scaling)
    unit: np.ndarray | None = None
    shift: np.ndarray | None = None

    def standardised(self, values: np.ndarray) -> np.ndarray:
        """Values of the scored windows' targets ``(N, ...)`` (forecasts or actuals, in the windows' units) in
        each series' standardised units, those the panel's ``val_*`` are scored in."""
        values = np.asarray(values, dtype=np.float64)
        if self.unit is None or self.shift is None:
            return values
        per = (-1,) + (1,) * (values.ndim - 1)
        return values * self.unit[self.val_series].reshape(per) + self.shift[self.val_series].reshape(per)


@dataclass(frozen=True, eq=False)
class Windows:
    """Scaled sliding windows of one period: inputs ``(N, lookback, F)``, targets ``(N, horizon)``;
    with inputs known ahead (:mod:`hpt.future`) the inputs are ``(N, lookback + horizon, F)``.

    ``*_train`` are the train windows, ``*_val`` the scored ones: the validation part's, or the
    hold-out's for a :class:`Holdout` split. Windows that would span a missing step are left out;
    ``skipped_train`` and ``skipped_val`` count them. The arrays are made from the scaled rows
    when first asked for. The windows of many series (`panel`) have each series' rows one after
    another, each scaled by its own train part: their `mean` and `std` are then 0 and 1 and `split`
    covers every row, and `panel` holds each series' statistics and train rows.
    """

    values: np.ndarray  # the period's rows, scaled, float32 (rows, F); the target is column 0
    times: np.ndarray  # the time of each row (datetime64)
    lookback: int
    horizon: int
    starts: Starts
    split: Split
    mean: np.ndarray  # per column, fitted on the train part
    std: np.ndarray
    columns: tuple[str, ...]
    known: np.ndarray | None = None  # per column, whether it is known ahead (hpt.future); None: none is
    panel: PanelWindows | None = None  # the windows of several series: `values` is theirs one after another

    @property
    def future_rows(self) -> int:
        """Rows of the forecast steps after each input window: `horizon` with inputs known ahead, else 0."""
        return self.horizon if self.known is not None else 0

    @property
    def skipped_train(self) -> int:
        return self.starts.skipped_train

    @property
    def skipped_val(self) -> int:
        return self.starts.skipped_scored

    def _inputs(self, starts: np.ndarray) -> np.ndarray:
        windows = input_windows(self.values, self.lookback + self.future_rows)[starts]  # indexing with an array copies
        return windows if self.known is None else zero_unknown(windows, self.lookback, self.known)

    def _targets(self, starts: np.ndarray) -> np.ndarray:
        return np.lib.stride_tricks.sliding_window_view(self.values[self.lookback:, 0], self.horizon)[starts]

    @cached_property
    def x_train(self) -> np.ndarray:
        return self._inputs(self.starts.train)

    @cached_property
    def y_train(self) -> np.ndarray:
        return self._targets(self.starts.train)

    @cached_property
    def x_val(self) -> np.ndarray:
        return self._inputs(self.starts.scored)

    @cached_property
    def y_val(self) -> np.ndarray:
        return self._targets(self.starts.scored)

    def train_values(self) -> np.ndarray:
        """The scaled rows of the train part (of every series' for a panel) ``(rows, F)``, as float64."""
        rows = self.values[self.panel.train_rows] if self.panel is not None else self.values[:self.split.val]
        return rows.astype(np.float64)

    @property
    def val_ends(self) -> np.ndarray:
        """The time of each scored window's last input row (datetime64)."""
        return self.times[self.starts.scored + self.lookback - 1]


@dataclass(frozen=True)
class WindowCount:
    """The windows of one period and what missing steps cost it."""

    period: Period
    rows: int
    gaps: int  # stretches of missing steps between the period's rows
    missing_steps: int
    train: int  # windows used
    val: int
    skipped_train: int  # windows left out because they span a missing step
    skipped_val: int
    series: int | None = None  # of a panel: the series that give the period windows
    left_out: int = 0  # of a panel: the series too short (or otherwise unfit) for the period
    gappy: tuple[str, ...] = ()  # of a panel: the series with gaps in the period

    def to_json(self) -> dict[str, int]:
        panel = {} if self.series is None else {"series": self.series, "series_left_out": self.left_out}
        return {"rows": self.rows, "gaps": self.gaps, "missing_steps": self.missing_steps,
                "train_windows": self.train, "val_windows": self.val,
                "skipped_train_windows": self.skipped_train, "skipped_val_windows": self.skipped_val, **panel}


def count_windows(frame: pd.DataFrame, period: Period, lookback: int, horizon: int, split: SplitRule,
                  left_out: dict[str, str] | None = None) -> WindowCount:
    """The windows `make_windows` would cut from this period, and those missing steps cost (of a
    panel: summed over the series that give the period windows; `left_out`: the others, when known)."""
    if not is_panel(frame):
        return _window_count(period, _cut(_period_rows(frame, period), lookback, horizon, split).counts(),
                             np.array([True]))
    if left_out is None:
        cut, left_out = _check_series(frame, period, lookback, horizon, split)
    else:
        cut = _cut(_period_rows(frame, period), lookback, horizon, split)
    ids = cut.rows.ids
    fit = np.array([sid not in left_out for sid in ids], dtype=bool)
    counts = cut.counts()
    return replace(_window_count(period, counts, fit), series=int(fit.sum()), left_out=len(left_out),
                   gappy=tuple(ids[k] for k in np.flatnonzero(fit & (counts.gaps > 0))))


def _window_count(period: Period, counts: _Counts, series: np.ndarray) -> WindowCount:
    """The :class:`WindowCount` of these series (a mask), their figures summed."""
    rows, gaps, missing, train, val, skipped_train, skipped_val = (int(c[series].sum()) for c in counts)
    return WindowCount(period, rows, gaps, missing, train, val, skipped_train, skipped_val)


def window_report(frame: pd.DataFrame, periods: Iterable[Period], lookback: int, horizon: int,
                  validation: float | str) -> dict[str, Any]:
    """What the data gives each period, for the run record: the step, filled steps, and per
    period its rows, gaps, missing steps, windows used and windows left out for a gap."""
    return {
        "step": step_text(frame_step(frame)),
        "filled_steps": int(frame.attrs.get("filled_steps", 0)),
        "lookback": lookback, "horizon": horizon, "validation": validation,
        "periods": {p.label: count_windows(frame, p, lookback, horizon, validation).to_json() for p in periods},
    }


LONGER_PERIODS = "use longer periods, or a shorter validation, lookback or horizon"
"""The advice of a period too short for its windows; a fixed screening period cannot be longer (see check_data)."""


def _too_few(period: Period, rows: int, split: Split, rule: SplitRule, lookback: int, horizon: int) -> str:
    n_train, n_scored, need = split.val, len(split.scored), lookback + horizon
    if isinstance(rule, Holdout):
        return (f"period {period} has {plural(rows, 'row')}, {n_train} before the hold-out (which takes {n_scored}): "
                f"too few for lookback {lookback} + horizon {horizon} (the training window needs >= {need} rows, the "
                f"hold-out >= {horizon}); use a longer training window or hold-out, or a shorter lookback or horizon")
    return (f"period {period} has {plural(rows, 'row')}, {n_train} before the validation split "
            f"(validation {rule!r} takes {n_scored}): too few for lookback {lookback} + horizon {horizon} "
            f"(train part needs >= {need} rows, validation >= {horizon}); {LONGER_PERIODS}")


def window_problem(frame: pd.DataFrame, period: Period, lookback: int, horizon: int, split: SplitRule,
                   left_out: dict[str, str] | None = None) -> str | None:
    """Why this period cannot give at least one train and one scored window, or None.

    Also refused: an infinite value, a target that is constant on the train part (its
    scale is zero), and gaps that leave the train or the scored part no window. A panel is
    refused when none of its series gives the period windows (:func:`series_problems`; `left_out`, when
    known).
    """
    if is_panel(frame):
        if left_out is None:
            left_out = series_problems(frame, period, lookback, horizon, split)
        return _none_left(frame, period, left_out)
    return _one_series_problem(_cut(_period_rows(frame, period), lookback, horizon, split))


def _one_series_problem(cut: _Cut) -> str | None:
    """:func:`window_problem` of a single series' :class:`_Cut`."""
    rows = cut.rows
    if not rows.n[0]:
        first, last = time_text(rows.first[0], rows.step), time_text(rows.last[0], rows.step)
        return f"period {rows.period} has no data (data covers {first} to {last})"
    return _problems(cut).get(0)


def make_windows(frame: pd.DataFrame, period: Period, lookback: int, horizon: int, split: SplitRule,
                 scaler: str = "standard") -> Windows:
    """Split a period chronologically, scale with train statistics, and cut sliding windows.

    A window that spans a missing step (a gap in the times) is left out. DataError (at
    ``date_ranges``) when the period cannot give a train and a scored window (:func:`window_problem`).
    Of many series with `scaler` "robust" (``training.scaler``), each series is scaled by its own train
    part's medians and interquartile ranges (:class:`PanelWindows`); any other scaler is the model's.
    """
    if is_panel(frame):
        return _panel_windows(frame, period, lookback, horizon, split, robust=scaler == "robust")
    cut = _cut(_period_rows(frame, period), lookback, horizon, split)
    problem = _one_series_problem(cut)
    if problem:
        raise DataError("date_ranges", problem)
    z, mean, std, starts = _scaled(cut, np.array([0]))
    n, val, holdout = (int(a[0]) for a in (cut.rows.n, cut.val, cut.holdout))
    known = known_ahead(frame)
    return Windows(z.T, cut.rows.times.to_numpy(), lookback, horizon, starts, Split(n, val, holdout), mean[0],
                   std[0], cut.rows.columns, known_mask(cut.rows.columns, known) if known else None)


def series_problems(frame: pd.DataFrame, period: Period, lookback: int, horizon: int,
                    split: SplitRule) -> dict[str, str]:
    """Of a panel: the series that cannot give this period a train and a scored window, each with
    why (:func:`window_problem`); they are left out of the period."""
    return _check_series(frame, period, lookback, horizon, split)[1]


def _check_series(frame: pd.DataFrame, period: Period, lookback: int, horizon: int,
                  split: SplitRule) -> tuple[_Cut, dict[str, str]]:
    """A panel's rows in a period, cut into windows (:class:`_Cut`); and why each series left out of the period is.

    Those without rows in the period come last."""
    cut = _cut(_period_rows(frame, period), lookback, horizon, split)
    rows = cut.rows
    out = {rows.ids[k]: why.replace(f"period {period}: ", "").replace(f"period {period} ", "it ")
           for k, why in _problems(cut).items()}
    for k in np.flatnonzero(rows.n == 0):
        first, last = time_text(rows.first[k], rows.step), time_text(rows.last[k], rows.step)
        out[rows.ids[k]] = f"it has no data (the series covers {first} to {last})"
    return cut, out


def _none_left(frame: pd.DataFrame, period: Period, left_out: dict[str, str]) -> str | None:
    """Why a panel gives a period no window: none of its series does; None when some do."""
    n = series_count(frame)
    if len(left_out) < n:
        return None
    sid, first = next(iter(left_out.items()))
    return f"period {period}: none of the {n} series gives it a window (the first, \"{sid}\": {first})"


def left_out_line(period: Period, left_out: dict[str, str], n: int) -> str:
    """The log line of the series a period leaves out (:func:`series_problems`): how many, the first few
    named, and why the first is."""
    sid, why = next(iter(left_out.items()))
    first = "" if len(left_out) == 1 else f', the first, "{sid}",'
    return (f"period {period}: {len(left_out)} of {n} series left out of it ({name_few(list(left_out))}){first} "
            f"because {why}")


def _panel_windows(frame: pd.DataFrame, period: Period, lookback: int, horizon: int, split: SplitRule,
                   robust: bool = False) -> Windows:
    """The windows of every series of a panel that gives the period windows, one after another: each
    series scaled by its own train part (`robust`: by its medians and IQRs), no window crossing from one
    series into the next."""
    cut, left_out = _check_series(frame, period, lookback, horizon, split)
    problem = _none_left(frame, period, left_out)
    if problem:
        raise DataError("date_ranges", problem)
    rows = cut.rows
    fit = np.array([k for k, sid in enumerate(rows.ids) if sid not in left_out])
    z, mean, std, starts = _scaled(cut, fit)
    n, val = rows.n[fit], cut.val[fit]
    offsets = np.concatenate(([0], np.cumsum(n)))
    units = np.ones(len(fit))
    shifts = np.zeros(len(fit))
    if robust:  # each series' rows by its train part's medians and IQRs, in place of its means and deviations
        for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
            center, spread = _robust_stats(z[:, a:b].T[:val[i]])
            leave_static(tuple(rows.columns), center, spread)
            z[:, a:b] = ((z[:, a:b].T.astype(np.float64) - center) / spread).astype(np.float32).T
            mean[i], std[i] = mean[i] + center * std[i], std[i] * spread
            shifts[i], units[i] = center[0], spread[0]
    step = frame_step(frame)
    season = season_length(step, frame.attrs.get("season"))
    times = rows.times.to_numpy()[_in_runs(len(rows.times), rows.lo[fit], rows.hi[fit])]
    at = np.arange(len(times)) - np.repeat(offsets[:-1], n)  # each row's place in its series
    panel = PanelWindows(
        series=tuple(rows.ids[k] for k in fit), mean=mean, std=std, train_rows=at < np.repeat(val, n),
        val_series=np.repeat(np.arange(len(fit)), cut.used(cut.scored)[fit]),
        naive_mae=np.array([mase_scale(z[0, a:a + v], times[a:a + v], step, season)
                            for a, v in zip(offsets[:-1], val, strict=True)]),
        season=season, unit=units, shift=shifts)
    total = int(offsets[-1])
    known = known_ahead(frame)
    return Windows(z.T, times, lookback, horizon, starts, Split(total, total, total),
                   np.zeros(len(rows.columns)), np.ones(len(rows.columns)), rows.columns,
                   known_mask(rows.columns, known) if known else None, panel)


# -- a period's rows, every series at once ---------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Rows:
    """A period's rows of every series of a frame, one series after another, each in time order (a single
    series is a panel of one). The checks, the counts and the windows of a period come from it for every
    series at once: each per-series figure is an array over the series, found by passes over all the rows."""

    period: Period
    times: pd.DatetimeIndex  # the time of each row
    values: np.ndarray  # (columns, rows) float64: each column's values one after another, as a frame holds them
    columns: tuple[str, ...]
    ids: tuple[str, ...]  # each series' id, in the frame's order ("" for a single series)
    lo: np.ndarray  # each series' first row
    hi: np.ndarray  # the row after its last (lo == hi: no rows in the period)
    first: pd.DatetimeIndex  # each series' first and last time in the frame (in any period)
    last: pd.DatetimeIndex
    step: pd.Timedelta

    @property
    def n(self) -> np.ndarray:
        """Each series' rows."""
        return self.hi - self.lo

    def series(self, k: int) -> np.ndarray:
        """Series `k`'s rows ``(rows, columns)``."""
        return self.values[:, self.lo[k]:self.hi[k]].T

    def pairs(self, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per series, the pairs of consecutive rows (pair i: rows i and i+1) from its first row to row `stop`
        (a row of the period, or its first row: none), as runs ``(start, stop)`` over the pairs."""
        last = max(len(self.times) - 1, 0)
        start = np.minimum(self.lo, last)
        return start, np.clip(stop - 1, start, last)


def _period_rows(frame: pd.DataFrame, period: Period) -> _Rows:
    """The rows of `frame` with ``period.start <= time < period.end``, series by series."""
    index = frame.index
    times = times_of(frame)
    inside: slice | np.ndarray
    if isinstance(index, pd.MultiIndex):
        codes = np.asarray(index.codes[0])
        change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        starts, ends = (np.r_[0, change], np.r_[change, len(codes)]) if len(codes) else (change, change)
        ids = tuple(map(str, index.levels[0][codes[starts]]))
        inside = np.asarray((times >= period.start) & (times < period.end))
        before = np.concatenate(([0], np.cumsum(inside)))
        lo, hi = before[starts], before[ends]
    else:
        starts, ends, ids = np.array([0]), np.array([len(index)]), ("",)
        if index.is_monotonic_increasing:  # a slice: no mask, no copy
            inside = slice(int(index.searchsorted(period.start)), int(index.searchsorted(period.end)))
        else:
            inside = np.asarray((times >= period.start) & (times < period.end))
        lo, hi = np.array([0]), np.array([len(times[inside])])
    values = frame.to_numpy(dtype=np.float64).T[:, inside]
    if not isinstance(inside, slice):  # each column's values one after another, as a frame holds them: a series'
        values = np.ascontiguousarray(values)  # means and deviations then add its values up as they always did
    return _Rows(period, times[inside], values, tuple(frame.columns), ids, lo, hi, times[starts], times[ends - 1],
                 frame_step(frame))


def _in_runs(size: int, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Which of `size` positions lie in one of the runs ``[lo, hi)`` (runs that do not overlap)."""
    edges = np.bincount(lo, minlength=size + 1) - np.bincount(hi, minlength=size + 1)
    return np.cumsum(edges[:size]) > 0


class _Counts(NamedTuple):
    """Per series, :class:`WindowCount`'s figures."""

    rows: np.ndarray
    gaps: np.ndarray
    missing_steps: np.ndarray
    train: np.ndarray
    val: np.ndarray
    skipped_train: np.ndarray
    skipped_val: np.ndarray


@dataclass(frozen=True, eq=False)
class _Cut:
    """A period's rows (:class:`_Rows`) split by a rule and cut into windows of lookback + horizon rows, per
    series: its split, where its train and scored windows may start, and which windows no missing step
    runs through. Window starts are rows of the period, as runs ``(start, stop)`` per series."""

    rows: _Rows
    lookback: int
    horizon: int
    rule: SplitRule
    val: np.ndarray  # per series: its first validation (or hold-out) row, from its first row
    holdout: np.ndarray  # and its first hold-out row (its row count when there is none)
    brk: np.ndarray  # per pair of consecutive rows: a missing step between them (:func:`breaks`; a pair of two
    # series is never asked about: each series' pairs are those from its first row to its last)
    train: tuple[np.ndarray, np.ndarray]  # per series: its train windows' first rows
    scored: tuple[np.ndarray, np.ndarray]  # and its scored windows' (targets in the scored part)
    clean: np.ndarray  # per row: no missing step lies inside the window that starts there (of its series)

    def used(self, part: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Per series, its windows of `part` (:attr:`train` or :attr:`scored`) that no missing step runs through."""
        return _in_each(self.clean, *part)

    def starts(self, part: tuple[np.ndarray, np.ndarray], series: np.ndarray) -> np.ndarray:
        """The first rows of the windows of `part` of these series that no missing step runs through."""
        start, stop = part
        return np.flatnonzero(_in_runs(len(self.clean), start[series], stop[series]) & self.clean)

    def counts(self) -> _Counts:
        rows = self.rows
        missing = missing_steps(rows.times, rows.step)
        pairs_lo, pairs_hi = rows.pairs(rows.hi)
        train, scored = (stop - start for start, stop in (self.train, self.scored))
        used_train, used_scored = self.used(self.train), self.used(self.scored)
        sums = np.concatenate(([0], np.cumsum(missing)))
        return _Counts(rows.n, _in_each(missing > 0, pairs_lo, pairs_hi), sums[pairs_hi] - sums[pairs_lo],
                       used_train, used_scored, train - used_train, scored - used_scored)


def _cut(rows: _Rows, lookback: int, horizon: int, rule: SplitRule) -> _Cut:
    """`rows` split by `rule` (:func:`split_rows`) and cut into windows of `lookback` inputs and `horizon` targets.

    Window j of a series holds its rows j .. j+lookback+horizon-1; train windows end before the
    validation part, scored windows have their targets in the scored part (:attr:`Split.scored`)."""
    width = lookback + horizon
    n, size = rows.n, len(rows.times)
    val, holdout = _split_points(rows.times, rows.lo, rows.hi, rule)
    brk = breaks(rows.times, rows.step)
    clean = np.zeros(size, dtype=bool)
    if size >= width:
        clean[:size - width + 1] = unbroken(brk, width)
    # the scored part is [val, rows) (a hold-out's has no validation part before it); its windows' inputs reach back
    first_scored = np.maximum(val - lookback, 0)
    train = (rows.lo, rows.lo + np.maximum(val - width + 1, 0))
    scored = (rows.lo + first_scored, rows.lo + np.maximum(n - width + 1, first_scored))
    return _Cut(rows, lookback, horizon, rule, val, holdout, brk, train, scored, clean)


_LARGE = 1e100  # values below this in size always have a finite standard deviation


def _problems(cut: _Cut) -> dict[int, str]:
    """Why each series with rows in the period cannot give it a train and a scored window, as
    :func:`window_problem` says it of a single series; by series (its place in :attr:`_Rows.ids`), in order."""
    rows, lookback, horizon, rule = cut.rows, cut.lookback, cut.horizon, cut.rule
    period, lo, n, val = rows.period, rows.lo, rows.n, cut.val
    out: dict[int, str] = {}
    left = n > 0
    few = left & ((val < lookback + horizon) | (n - val < horizon))
    for k in map(int, np.flatnonzero(few)):
        out[k] = _too_few(period, int(n[k]), Split(int(n[k]), int(val[k]), int(cut.holdout[k])), rule, lookback,
                          horizon)
    left &= ~few
    infinite = left & (_in_each(~np.isfinite(rows.values).all(axis=0), lo, rows.hi) > 0)
    for k in map(int, np.flatnonzero(infinite)):
        values = rows.series(k)
        i, j = (int(at[0]) for at in np.nonzero(~np.isfinite(values)))
        out[k] = (f'period {period}: column "{rows.columns[j]}" holds an infinite value ({values[i, j]} at '
                  f"{rows.times[lo[k] + i]})")
    left &= ~infinite
    large = left & (_in_each((np.abs(rows.values) > _LARGE).any(axis=0), lo, lo + val) > 0)
    for k in map(int, np.flatnonzero(large)):  # may be too large to scale: as window_problem computes it
        train = rows.series(k)[:val[k]]
        with np.errstate(all="ignore"):  # an overflow is the finding here, not a warning to print
            scale = train.std(axis=0)
        if not np.isfinite(scale).all():
            j = int(np.flatnonzero(~np.isfinite(scale))[0])
            out[k] = (f'period {period}: column "{rows.columns[j]}" holds values too large to scale '
                      f"(up to {np.abs(train[:, j]).max():g} on its train part)")
            left[k] = False
    target = rows.values[0]
    flat = left & (_in_each(target[1:] != target[:-1], *rows.pairs(lo + val)) == 0)
    for k in map(int, np.flatnonzero(flat)):
        out[k] = (f'period {period}: target "{rows.columns[0]}" is constant ({target[lo[k]]:g}) on its train part '
                  f"({time_text(rows.times[lo[k]], rows.step)} to {time_text(rows.times[lo[k] + val[k] - 1], rows.step)}): "
                  "its scale is "
                  "zero, there is nothing to learn")
    left &= ~flat
    scored = "hold-out" if isinstance(rule, Holdout) else "validation"
    for name, part in (("train", cut.train), (scored, cut.scored)):
        for k in map(int, np.flatnonzero(left & (cut.used(part) == 0))):
            gap = int(np.flatnonzero(cut.brk[part[0][k]:rows.hi[k] - 1])[0]) + part[0][k]
            out[k] = (f"period {period}: gaps leave its {name} part no window of lookback {lookback} + horizon "
                      f"{horizon} without a missing step (the first: no data from "
                      f"{time_text(rows.times[gap] + rows.step, rows.step)} to "
                      f"{time_text(rows.times[gap + 1] - rows.step, rows.step)}); set data.fill or choose another period")
            left[k] = False
    return dict(sorted(out.items()))


def _scaled(cut: _Cut, series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Starts]:
    """The rows of these series one after another, each scaled by its own train part's means and standard
    deviations (float32, ``(columns, rows)``); those statistics ``(series, columns)``; and the first rows of
    their windows (among those rows) that no missing step runs through."""
    rows = cut.rows
    mean = np.empty((len(series), len(rows.columns)))
    std = np.empty_like(mean)
    for i, k in enumerate(series):
        train = rows.series(k)[:cut.val[k]]
        mean[i], std[i] = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0  # a constant feature; a constant target is refused
    leave_static(tuple(rows.columns), mean, std)  # static series features: scaled across the series already
    n = rows.n[series]
    keep = _in_runs(len(rows.times), rows.lo[series], rows.hi[series])
    values = rows.values if keep.all() else rows.values[:, keep]
    z = ((values - np.repeat(mean.T, n, axis=1)) / np.repeat(std.T, n, axis=1)).astype(np.float32)
    place = np.cumsum(keep) - 1  # each kept row's place among them
    train, scored = (place[cut.starts(part, series)] for part in (cut.train, cut.scored))
    skipped = [int((stop - start)[series].sum() - cut.used((start, stop))[series].sum())
               for start, stop in (cut.train, cut.scored)]
    return z, mean, std, Starts(train, scored, *skipped)


def _robust_stats(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The medians and interquartile ranges of standardised rows ``(rows, F)`` per column (an IQR of 0: 1, the
    column's standard deviation), as :class:`hpt.architectures.heads.RobustScaled` takes them."""
    q25, median, q75 = np.quantile(np.asarray(z, dtype=np.float64), [0.25, 0.5, 0.75], axis=0)
    iqr = q75 - q25
    iqr[~(iqr > 1e-12)] = 1.0
    return median, iqr


def forecast_ends(index: pd.DatetimeIndex, period: Period, horizon: int,
                  step: pd.Timedelta) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The times in `period` whose next `horizon` steps are all rows inside it, and the positions
    of those rows ``(N, horizon)``: where a forecast made at that time can be scored."""
    ends = index[(index >= period.start) & (index + horizon * step < period.end)]
    at = np.stack([index.get_indexer(ends + k * step) for k in range(1, horizon + 1)], axis=1)
    whole = (at >= 0).all(axis=1)
    return ends[whole], at[whole]
