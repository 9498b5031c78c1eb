"""Windows: how a period's rows are split chronologically and cut into the windows a model learns from.

* **The split** (:class:`Split`, :func:`split_rows`): a run of rows is cut in time order into
  train ``[0, val)``, validation ``[val, holdout)`` and hold-out ``[holdout, rows)``. A tuning
  period's validation part is its last rows (``validation``: a fraction or a duration); ``hpt
  final``'s hold-out (:class:`Holdout`) starts at a time and has no validation part before it.
* **A period's rows** (:func:`period_rows`): those with ``start <= time < end``.
* **The missing-step rule** (:func:`breaks`, :func:`unbroken`): the series' step is its most
  common time difference (:func:`infer_step`); a longer difference is a missing step, and no
  window holds the rows on both sides of one.
* **The windows** (:func:`window_starts`, :func:`make_windows`): window ``j`` holds rows
  ``j .. j+lookback+horizon-1``, inputs first, then targets (the target column). Train windows
  lie wholly in the train part; a scored window (validation, or the hold-out) has its targets in
  the scored part and its inputs may reach back before it (those values are past), so nothing
  scored leaks into training. Scaling statistics come from the train part only.

Windows are positions in the rows (the first row of each), copied into arrays only when asked
for. Breaks are a boolean per pair of consecutive rows: no window holds the rows on both sides.

**Many series** (``data.series``, :mod:`hpt.panel`): each series is split, checked, scaled and cut
as above on its own; a series that cannot give a period a window is left out of it
(:func:`series_problems`); the windows of the others lie one series after another in one
:class:`Windows`, whose :class:`PanelWindows` says which series each scored window is of.
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
from hpt.panel import is_panel, leave_static, mase_scale, name_few, season_length, series_frames, times_of
from hpt.periods import Holdout, Period, parse_time, usable_span
from hpt.progress import plural

__all__ = ["Holdout", "PanelWindows", "Split", "SplitRule", "Starts", "WindowCount", "Windows", "breaks",
           "count_windows", "forecast_ends", "frame_step", "holdout_window", "infer_step", "input_windows",
           "left_out_line", "make_windows", "missing_steps", "overlapping_period", "parse_holdout", "period_rows",
           "require_holdout", "series_problems", "split_rows", "step_text", "unbroken", "window_problem",
           "window_report", "window_starts"]

_HOLDOUT_UNITS = {"M": "months", "W": "weeks", "D": "days", "h": "hours"}


# -- the step and the missing-step rule ---------------------------------------------------


def infer_step(*indexes: pd.DatetimeIndex) -> pd.Timedelta:
    """The series' step: the most common difference between consecutive times (the smallest of a tie);
    of several series (a panel's), over the differences within each."""
    diffs = np.concatenate([np.diff(index.to_numpy()) for index in indexes]) if indexes else np.array([])
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
    """The step :func:`hpt.data.read_data` found, else the frame's own."""
    step = frame.attrs.get("step")
    return step if isinstance(step, pd.Timedelta) else infer_step(frame.index)


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
    n = len(index)
    if isinstance(rule, Holdout):
        s = int(index.searchsorted(rule.start))
        return Split(n, s, s)
    validation = parse_validation(rule)
    if isinstance(validation, float):
        s = int(round(n * (1 - validation)))
    else:
        s = int(index.searchsorted(index[-1] - validation, side="right")) if n else 0
    return Split(n, s, n)


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


def window_starts(split: Split, lookback: int, horizon: int, cut: np.ndarray) -> Starts:
    """The windows of `split`'s rows that no break in `cut` (:func:`breaks`) runs through.

    Window j holds rows j .. j+lookback+horizon-1; train windows end before the validation
    part, scored windows have their targets in the scored part (:attr:`Split.scored`).
    """
    width = lookback + horizon
    scored = split.scored
    train = np.arange(0, max(split.val - width + 1, 0))
    val = np.arange(max(scored.start - lookback, 0), max(scored.stop - width + 1, 0))
    clean = unbroken(cut, width)
    if clean.all():
        return Starts(train, val, 0, 0)
    return Starts(train[clean[train]], val[clean[val]], int((~clean[train]).sum()), int((~clean[val]).sum()))


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
    if is_panel(frame):
        if left_out is None:
            left_out = series_problems(frame, period, lookback, horizon, split)
        counts = {sid: count_windows(one, period, lookback, horizon, split)
                  for sid, one in series_frames(period_rows(frame, period)) if sid not in left_out}
        rows, gaps, missing, train, val, skipped_train, skipped_val = (
            sum(getattr(c, f) for c in counts.values())
            for f in ("rows", "gaps", "missing_steps", "train", "val", "skipped_train", "skipped_val"))
        return WindowCount(period, rows, gaps, missing, train, val, skipped_train, skipped_val, series=len(counts),
                           left_out=len(left_out), gappy=tuple(sid for sid, c in counts.items() if c.gaps))
    rows = period_rows(frame, period)
    step = frame_step(frame)
    starts = window_starts(split_rows(rows.index, split), lookback, horizon, breaks(rows.index, step))
    missing = missing_steps(rows.index, step)
    return WindowCount(period, len(rows), int((missing > 0).sum()), int(missing.sum()), len(starts.train),
                       len(starts.scored), starts.skipped_train, starts.skipped_scored)


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


def _too_few(period: Period, rows: int, split: Split, rule: SplitRule, lookback: int, horizon: int) -> str:
    n_train, n_scored, need = split.val, len(split.scored), lookback + horizon
    if isinstance(rule, Holdout):
        return (f"period {period} has {plural(rows, 'row')}, {n_train} before the hold-out (which takes {n_scored}): "
                f"too few for lookback {lookback} + horizon {horizon} (the training window needs >= {need} rows, the "
                f"hold-out >= {horizon}); use a longer training window or hold-out, or a shorter lookback or horizon")
    return (f"period {period} has {plural(rows, 'row')}, {n_train} before the validation split "
            f"(validation {rule!r} takes {n_scored}): too few for lookback {lookback} + horizon {horizon} "
            f"(train part needs >= {need} rows, validation >= {horizon}); use longer periods, or a shorter "
            f"validation, lookback or horizon")


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
    rows = period_rows(frame, period)
    if rows.empty:
        first, last = frame.index[0], frame.index[-1]
        return f"period {period} has no data (data covers {first} to {last})"
    parts = split_rows(rows.index, split)
    s = parts.val
    if s < lookback + horizon or len(parts.scored) < horizon:
        return _too_few(period, len(rows), parts, split, lookback, horizon)
    values = rows.to_numpy(dtype=np.float64)
    infinite = ~np.isfinite(values)
    if infinite.any():
        i, j = (int(k[0]) for k in np.nonzero(infinite))
        return f'period {period}: column "{rows.columns[j]}" holds an infinite value ({values[i, j]} at {rows.index[i]})'
    with np.errstate(all="ignore"):  # an overflow is the finding here, not a warning to print
        scale = values[:s].std(axis=0)
    if not np.isfinite(scale).all():
        j = int(np.flatnonzero(~np.isfinite(scale))[0])
        return (f'period {period}: column "{rows.columns[j]}" holds values too large to scale '
                f"(up to {np.abs(values[:s, j]).max():g} on its train part)")
    target = values[:s, 0]
    if target.min() == target.max():
        return (f'period {period}: target "{rows.columns[0]}" is constant ({target[0]:g}) on its train part '
                f"({rows.index[0]} to {rows.index[s - 1]}): its scale is zero, there is nothing to learn")
    step = frame_step(frame)
    brk = breaks(rows.index, step)
    starts = window_starts(parts, lookback, horizon, brk)
    scored = "hold-out" if isinstance(split, Holdout) else "validation"
    for part, found, begin in (("train", starts.train, 0), (scored, starts.scored, max(parts.scored.start - lookback, 0))):
        if not len(found):
            gap = int(np.flatnonzero(brk[begin:])[0]) + begin
            return (f"period {period}: gaps leave its {part} part no window of lookback {lookback} + horizon "
                    f"{horizon} without a missing step (the first: no data from {rows.index[gap] + step} to "
                    f"{rows.index[gap + 1] - step}); set data.fill or choose another period")
    return None


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
    problem = window_problem(frame, period, lookback, horizon, split)
    if problem:
        raise DataError("date_ranges", problem)
    return _series_windows(frame, period, lookback, horizon, split)


def _series_windows(frame: pd.DataFrame, period: Period, lookback: int, horizon: int, split: SplitRule) -> Windows:
    """:func:`make_windows` of one series whose period :func:`window_problem` found fit."""
    rows = period_rows(frame, period)
    values = rows.to_numpy(dtype=np.float64)
    parts = split_rows(rows.index, split)
    mean = values[:parts.val].mean(axis=0)
    std = values[:parts.val].std(axis=0)
    std[std == 0] = 1.0  # a constant feature; a constant target is refused above
    leave_static(tuple(rows.columns), mean, std)  # static series features: scaled across the series already
    z = ((values - mean) / std).astype(np.float32)
    starts = window_starts(parts, lookback, horizon, breaks(rows.index, frame_step(frame)))
    known = known_ahead(frame)
    return Windows(z, rows.index.to_numpy(), lookback, horizon, starts, parts, mean, std, tuple(rows.columns),
                   known_mask(tuple(rows.columns), known) if known else None)


def series_problems(frame: pd.DataFrame, period: Period, lookback: int, horizon: int,
                    split: SplitRule) -> dict[str, str]:
    """Of a panel: the series that cannot give this period a train and a scored window, each with
    why (:func:`window_problem`); they are left out of the period."""
    return _check_series(frame, period, lookback, horizon, split)[1]


def _check_series(frame: pd.DataFrame, period: Period, lookback: int, horizon: int,
                  split: SplitRule) -> tuple[list[tuple[str, pd.DataFrame]], dict[str, str]]:
    """A panel's series in a period: those fit for windows (their rows in it), and why each other one is not."""
    fit, out = [], {}
    inside = period_rows(frame, period)
    for sid, one in series_frames(inside):
        problem = window_problem(one, period, lookback, horizon, split)
        if problem:
            out[sid] = problem.replace(f"period {period}: ", "").replace(f"period {period} ", "it ")
        else:
            fit.append((sid, one))
    if len(fit) + len(out) < _series_count(frame):
        times = times_of(frame)
        seen = set(inside.index.get_level_values(0))
        for sid in frame.index.get_level_values(0).unique():
            if sid not in seen:
                mine = times[frame.index.get_level_values(0) == sid]
                out[str(sid)] = f"it has no data (the series covers {mine.min()} to {mine.max()})"
    return fit, out


def _series_count(frame: pd.DataFrame) -> int:
    index = frame.index
    assert isinstance(index, pd.MultiIndex)
    return int(np.count_nonzero(np.bincount(np.asarray(index.codes[0]), minlength=1)))


def _none_left(frame: pd.DataFrame, period: Period, left_out: dict[str, str]) -> str | None:
    """Why a panel gives a period no window: none of its series does; None when some do."""
    n = _series_count(frame)
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
    fit, left_out = _check_series(frame, period, lookback, horizon, split)
    problem = _none_left(frame, period, left_out)
    if problem:
        raise DataError("date_ranges", problem)
    parts = [(sid, _series_windows(one, period, lookback, horizon, split)) for sid, one in fit]
    units = np.ones(len(parts))
    shifts = np.zeros(len(parts))
    if robust:
        for k, (sid, w) in enumerate(parts):
            robust_w, shifts[k], units[k] = _robust(w)
            parts[k] = (sid, robust_w)
    step = frame_step(frame)
    season = season_length(step, frame.attrs.get("season"))
    offsets = np.cumsum([0] + [len(w.values) for _, w in parts])
    starts = Starts(np.concatenate([w.starts.train + o for (_, w), o in zip(parts, offsets, strict=False)]),
                    np.concatenate([w.starts.scored + o for (_, w), o in zip(parts, offsets, strict=False)]),
                    sum(w.starts.skipped_train for _, w in parts), sum(w.starts.skipped_scored for _, w in parts))
    train_rows = np.concatenate([np.arange(len(w.values)) < w.split.val for _, w in parts])
    panel = PanelWindows(
        series=tuple(sid for sid, _ in parts),
        mean=np.stack([w.mean for _, w in parts]), std=np.stack([w.std for _, w in parts]), train_rows=train_rows,
        val_series=np.concatenate([np.full(len(w.starts.scored), k) for k, (_, w) in enumerate(parts)]),
        naive_mae=np.array([mase_scale(w.values[:w.split.val, 0], w.times[:w.split.val], step, season)
                            for _, w in parts]),
        season=season, unit=units, shift=shifts)
    first = parts[0][1]
    n = int(offsets[-1])
    return Windows(np.concatenate([w.values for _, w in parts]), np.concatenate([w.times for _, w in parts]),
                   lookback, horizon, starts, Split(n, n, n), np.zeros_like(first.mean), np.ones_like(first.std),
                   first.columns, first.known, panel)


def _robust_stats(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The medians and interquartile ranges of standardised rows ``(rows, F)`` per column (an IQR of 0: 1, the
    column's standard deviation), as :class:`hpt.architectures.heads.RobustScaled` takes them."""
    q25, median, q75 = np.quantile(np.asarray(z, dtype=np.float64), [0.25, 0.5, 0.75], axis=0)
    iqr = q75 - q25
    iqr[~(iqr > 1e-12)] = 1.0
    return median, iqr


def _robust(w: Windows) -> tuple[Windows, float, float]:
    """One series' windows (:func:`_series_windows`) scaled by its train part's medians and IQRs instead of its
    means and standard deviations (`mean` and `std` are then those, in the data's units); and the (shift,
    unit) that put its target back in its standardised units, ``standardised = robust * unit + shift``."""
    center, spread = _robust_stats(w.values[:w.split.val])
    leave_static(w.columns, center, spread)
    values = ((w.values.astype(np.float64) - center) / spread).astype(np.float32)
    return replace(w, values=values, mean=w.mean + center * w.std, std=w.std * spread), float(center[0]), float(spread[0])


def forecast_ends(index: pd.DatetimeIndex, period: Period, horizon: int,
                  step: pd.Timedelta) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The times in `period` whose next `horizon` steps are all rows inside it, and the positions
    of those rows ``(N, horizon)``: where a forecast made at that time can be scored."""
    ends = index[(index >= period.start) & (index + horizon * step < period.end)]
    at = np.stack([index.get_indexer(ends + k * step) for k in range(1, horizon + 1)], axis=1)
    whole = (at >= 0).all(axis=1)
    return ends[whole], at[whole]
