"""Naive forecasts: what a tuned model has to beat to be worth having.

``naive-last`` (persistence) forecasts every step of the horizon with the last observed
target value; ``naive-seasonal`` with the value one season earlier (the season inferred
from the data's step: 24 for hourly data, 48 for half-hourly, 7 for daily, or given as
``data.season``). Both are computed from the series itself, on exactly the windows a trial
is validated on, in milliseconds.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpt.hparams import WINDOW_KEYS
from hpt.panel import season_length
from hpt.rows import BASELINES, is_baseline

if TYPE_CHECKING:
    from hpt.periods import Period
    from hpt.spec import Spec
    from hpt.store import ResultStore
    from hpt.trial import Trial, TrialResult
    from hpt.windows import Windows

__all__ = ["BASELINES", "LABELS", "WINDOW_KEYS", "RunBaselines", "baseline_errors", "baseline_mask", "forecast_scores",
           "is_baseline", "naive_forecasts", "panel_forecasts", "panel_scores",
           "period_baselines", "quantile_forecasts", "season_length", "without_baselines"]

LABELS = {"naive-last": "persistence (naive-last)", "naive-seasonal": "seasonal naive"}


def baseline_mask(frame: pd.DataFrame) -> pd.Series:
    """Which rows of a results frame are baselines'."""
    if "architecture" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["architecture"].isin(BASELINES)


def without_baselines(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Rows by trial id, the baselines' left out."""
    return {tid: row for tid, row in rows.items() if not is_baseline(row)}


def naive_forecasts(target: pd.Series, ends: np.ndarray, horizon: int, step: pd.Timedelta,
                    season: int) -> dict[str, np.ndarray]:
    """Each baseline's forecasts, shape ``(len(ends), horizon)``, in the target's own units.

    `target` is the whole target series (indexed by time, sorted); `ends` the time of each
    window's last input row. Forecast step k (1..horizon) of seasonal naive is the value
    ``season * ceil(k / season)`` steps before it, so never later than the window's end;
    where that time is not in the series (a gap, or before its start) the last value stands in.
    """
    times = pd.DatetimeIndex(target.index).as_unit("ns").asi8  # nanoseconds (UTC of an aware index), sorted
    values = target.to_numpy(dtype=np.float64)
    ends = np.asarray(ends, dtype="datetime64[ns]").view(np.int64)
    at_end = _nearest(times, ends, 0)
    if (at_end < 0).any():
        raise ValueError("a window's end is not a time of the series")
    last = np.repeat(values[at_end][:, None], horizon, axis=1)
    seasonal = last.copy()
    tolerance = (step / 2).value if step > pd.Timedelta(0) else 0  # a time within half a step is that step's row
    for k in range(1, horizon + 1):
        lag = season * -(-k // season)  # season * ceil(k / season), in steps
        pos = _nearest(times, ends + (k - lag) * step.value, tolerance)
        found = pos >= 0
        seasonal[found, k - 1] = values[pos[found]]
    return {"naive-last": last, "naive-seasonal": seasonal}


def _nearest(times: np.ndarray, query: np.ndarray, tolerance: int) -> np.ndarray:
    """For each of `query`, the position in the sorted `times` of the nearest time at most `tolerance` away
    (a tie: the later), -1 where none is (nanoseconds; one binary search per query, no pandas index)."""
    n = len(times)
    if not n:
        return np.full(len(query), -1)
    right = np.minimum(np.searchsorted(times, query), n - 1)  # the first time >= query (or the last time)
    left = np.maximum(right - 1, 0)
    pick = np.where(np.abs(query - times[left]) < np.abs(times[right] - query), left, right)
    return np.where(np.abs(times[pick] - query) <= tolerance, pick, -1)


def baseline_errors(forecast: np.ndarray, actual: np.ndarray, scale: float = 1.0) -> dict[str, float]:
    """Mean squared, absolute and root mean squared error of `forecast`, divided by `scale`
    (the target's standard deviation on the train part gives the standardised ``val_*``
    metrics of the trials' rows; 1 gives the data's own units)."""
    err = (np.asarray(forecast, dtype=np.float64) - np.asarray(actual, dtype=np.float64)) / scale
    mse = float(np.mean(err ** 2))
    return {"mse": mse, "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(mse))}


def forecast_scores(forecast: np.ndarray, actual: np.ndarray, scale: float,
                    quantiles: tuple[float, ...] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """(data units, standardised by `scale`) errors of `forecast` against `actual`, a model's or a
    baseline's alike; of a quantile forecast ``(N, horizon, Q)`` those of its median, with its pinball
    loss and coverage."""
    from hpt.quantiles import point, quantile_scores

    median = point(forecast, quantiles)
    units, standardised = baseline_errors(median, actual, 1.0), baseline_errors(median, actual, scale)
    if quantiles:
        units.update(quantile_scores(forecast, actual, quantiles))
        standardised.update(quantile_scores(forecast, actual, quantiles, scale))
    return units, standardised


def quantile_forecasts(forecasts: Mapping[str, np.ndarray], frame: pd.DataFrame, train: Any, horizon: int,
                       season: int, quantiles: tuple[float, ...]) -> dict[str, np.ndarray]:
    """Each baseline's point `forecasts` ``(N, horizon)`` as quantile forecasts ``(N, horizon, Q)``:
    plus the empirical quantiles, per horizon step, of its own errors on the `train` part (a
    Period: every time in it whose next `horizon` steps are rows inside it), so that a quantile
    model's pinball loss and coverage have a fair comparison."""
    from hpt.quantiles import error_quantiles
    from hpt.windows import forecast_ends, frame_step

    step = frame_step(frame)
    ends, at = forecast_ends(pd.DatetimeIndex(frame.index), train, horizon, step)
    target = frame.iloc[:, 0]
    actual = target.to_numpy(np.float64)[at]
    on_train = naive_forecasts(target, ends.to_numpy(), horizon, step, season)
    return {n: f[..., None] + error_quantiles(on_train[n], actual, quantiles)[None] for n, f in forecasts.items()}


def period_baselines(frame: pd.DataFrame, period: Any, lookback: int, horizon: int, validation: float | str,
                     season: int | None = None, quantiles: tuple[float, ...] | None = None,
                     ) -> dict[str, dict[str, float]]:
    """Each baseline's ``val_mse``, ``val_mae`` and ``val_rmse`` on a period's validation windows;
    with `quantiles` also ``val_pinball`` and ``val_coverage`` (:func:`quantile_forecasts`, errors
    measured on the period's train part).

    The windows and the standardisation are those a trial with this lookback, horizon and
    validation is scored on (:func:`hpt.windows.make_windows`), so the figures compare directly
    with a trial's row. Of many series (a panel): each series' baselines on its own windows, in its
    own standardised units, pooled as a trial's windows are, and ``val_mase`` (:func:`hpt.panel.mase`).
    """
    from hpt.panel import mase
    from hpt.quantiles import point, quantile_scores
    from hpt.windows import make_windows

    w = make_windows(frame, period, lookback, horizon, validation)
    if w.panel is None:
        forecasts = _forecasts(frame, w, period, season, quantiles)
    else:
        forecasts = panel_forecasts(frame, w, period, validation, season, quantiles)
    actual = w.y_val.astype(np.float64)
    out = {}
    for name, forecast in forecasts.items():
        e = baseline_errors(point(forecast, quantiles), actual)
        if quantiles:
            e.update(quantile_scores(forecast, actual, quantiles))
        if w.panel is not None:
            e["mase"] = mase(np.abs(point(forecast, quantiles) - actual), w.panel.val_series, w.panel.naive_mae)
        out[name] = {f"val_{k}": v for k, v in e.items() if not (k == "mase" and np.isnan(v))}
    return out


def panel_forecasts(frame: pd.DataFrame, w: Windows, period: Period, split: Any, season: int | None,
                    quantiles: tuple[float, ...] | None) -> dict[str, np.ndarray]:
    """Each baseline's forecasts on the scored windows `w` of a panel (`split`: as they were cut), each
    series' in the windows' units (its own standardised ones, or its robust ones), in the windows' order
    (series after series)."""
    from hpt.panel import series_frames
    from hpt.windows import make_windows

    assert w.panel is not None
    frames = dict(series_frames(frame))
    each = [_forecasts(frames[sid], make_windows(frames[sid], period, w.lookback, w.horizon, split), period,
                       season, quantiles) for sid in w.panel.series]
    out = {name: np.concatenate([f[name] for f in each]) for name in BASELINES}
    p = w.panel
    if p.unit is not None and p.shift is not None:  # series scaled by their medians and IQRs: into those units
        per = (-1,) + (1,) * (next(iter(out.values())).ndim - 1)
        out = {n: (f - p.shift[p.val_series].reshape(per)) / p.unit[p.val_series].reshape(per) for n, f in out.items()}
    return out


def panel_scores(forecast: np.ndarray, actual: np.ndarray, panel: Any,
                 quantiles: tuple[float, ...] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """(data units, standardised) errors of forecasts of a panel's scored windows, a model's or a baseline's
    alike: `forecast` and `actual` in the windows' units (`panel`: their :class:`~hpt.windows.PanelWindows`;
    each series' standardised units, or its robust ones, :meth:`~hpt.windows.PanelWindows.standardised`).
    In data units each window is put back in its series' units; the
    standardised errors pool every window as a trial's ``val_*`` do; both get ``mase`` (:func:`hpt.panel.mase`)
    where some series has a naive error to scale by."""
    from hpt.panel import mase
    from hpt.quantiles import point

    forecast, actual = np.asarray(forecast, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    mean, std = panel.mean[panel.val_series, 0], panel.std[panel.val_series, 0]
    per = (-1,) + (1,) * (forecast.ndim - 1)
    units, _ = forecast_scores(forecast * std.reshape(per) + mean.reshape(per), actual * std[:, None] + mean[:, None],
                               1.0, quantiles)
    standardised, _ = forecast_scores(panel.standardised(forecast), panel.standardised(actual), 1.0, quantiles)
    value = mase(np.abs(point(forecast, quantiles) - actual), panel.val_series, panel.naive_mae)
    if np.isfinite(value):
        units["mase"] = standardised["mase"] = value
    return units, standardised


def _forecasts(frame: pd.DataFrame, w: Windows, period: Period, season: int | None,
               quantiles: tuple[float, ...] | None) -> dict[str, np.ndarray]:
    """Each baseline's forecasts on the validation windows `w` of one series, in its standardised units
    (those its trials are scored in); quantile forecasts with `quantiles` (:func:`quantile_forecasts`)."""
    from hpt.windows import frame_step

    mean, std = float(w.mean[0]), float(w.std[0])
    step = frame_step(frame)
    season = season_length(step, season)
    forecasts = naive_forecasts(frame.iloc[:, 0], w.val_ends, w.horizon, step, season)
    if quantiles and len(w.val_ends):
        from hpt.periods import Period

        train = Period(period.start, pd.Timestamp(w.val_ends[0]) + step)  # up to the first validation target
        forecasts = quantile_forecasts(forecasts, frame, train, w.horizon, season, quantiles)
    return {name: (f - mean) / std for name, f in forecasts.items()}


def _key(setting: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(setting[k]) for k in WINDOW_KEYS)


class RunBaselines:
    """The baseline rows of one run: both baselines in every period of `spec`, per window setting.

    A window setting is the (lookback, horizon, validation) of a trial. Lookback is part of
    it: the validation targets and the standardisation do not depend on it, but a window
    whose inputs would span a missing step is left out, and which ones do depends on the
    lookback; keeping it makes every figure exactly comparable with the trials that share
    it, for the cost of a few milliseconds per setting. Ids are derived from the baseline,
    the setting, the season (seasonal naive only), the fidelity and the period's data
    fingerprint, so re-running computes nothing twice and changed data computes it again.
    """

    def __init__(self, spec: Spec, frame: pd.DataFrame) -> None:
        from hpt.data import period_fingerprint
        from hpt.search import scored_quantiles
        from hpt.windows import frame_step

        self.spec = spec
        self.frame = frame
        self.step = frame_step(frame)
        self.season = season_length(self.step, spec.data.season)
        self._fingerprints = {p: period_fingerprint(frame, p) for p in spec.periods}
        self._tuned = tuple(k for k in WINDOW_KEYS if k in spec.parameters)
        self.quantiles = scored_quantiles(spec)
        self._done: set[tuple[Any, ...]] = set()  # settings whose rows are at the location or were computed

    def settings(self) -> list[dict[str, Any]]:
        """The window settings known before any trial runs: every combination of the values the spec gives
        (a list axis: each value; fixed: its value). A setting drawn from a distribution is scored when
        the first trial with it finishes (:meth:`missing` for that trial's params)."""
        base = self.spec.base_params
        axes = []
        for k in WINDOW_KEYS:
            axis = self.spec.parameters.get(k)
            if axis is None:
                axes.append([base[k]])
            elif isinstance(axis, (list, tuple)):
                axes.append(list(axis))
            else:
                return []
        return [dict(zip(WINDOW_KEYS, combo, strict=True)) for combo in itertools.product(*axes)]

    def describe(self, outcome: str = "") -> str:
        """One line for the plan (what will be scored) or, with `outcome`, for the run's log."""
        from hpt.progress import plural
        from hpt.windows import step_text

        settings = self.settings()
        how = "data.season" if self.spec.data.season is not None else f"the {step_text(self.step)} step"
        n = len(settings) * len(self.spec.periods) * len(BASELINES)
        per = f" x {plural(len(settings), 'window setting')}" if len(settings) > 1 else ""
        count = f"{plural(n, 'row')} = {len(BASELINES)} x {plural(len(self.spec.periods), 'period')}{per}" \
            if settings else "a row per period for each window setting the trials draw"
        what = outcome or f"{count} on the trials' validation windows"
        return f"baselines: naive-last and naive-seasonal (season {self.season} from {how}): {what} (not trials)"

    def trial(self, name: str, setting: Mapping[str, Any], period: Period) -> Trial:
        """The row identity of one baseline in one period for one window setting."""
        from hpt.search import BASELINE_KEY, baseline_key, data_identity, digest, trial_id
        from hpt.trial import Trial

        params = {k: setting[k] for k in WINDOW_KEYS}
        data = data_identity(self.spec)
        key: dict[str, Any] = {"baseline": name, "data": data, "window": params}
        tags: dict[str, Any] = {BASELINE_KEY: baseline_key(self.spec, params, data)}
        if name == "naive-seasonal":
            key["season"] = tags["season"] = self.season
        if self.quantiles:  # rows with val_pinball and val_coverage; without, ids as before quantiles existed
            key["quantiles"] = list(self.quantiles)
        cid = digest(key)
        return Trial(trial_id=trial_id(cid, period.label, self.spec.fidelity, self._fingerprints[period], seed=0),
                     config_id=cid, architecture=name, params=params, tuned=self._tuned, period=period, seed=0,
                     fidelity=self.spec.fidelity, tags=tags)

    def missing(self, settings: Iterable[Mapping[str, Any]], rows: Mapping[str, Mapping[str, Any]],
                ) -> list[TrialResult]:
        """The baseline results of these settings that `rows` (the location's, by trial id) lack, computed now."""
        from hpt.errors import InputError
        from hpt.trial import Status, TrialResult, utcnow

        out = []
        for setting in settings:
            key = _key(setting)
            if key in self._done:
                continue
            self._done.add(key)
            for period in self.spec.periods:
                trials = {name: self.trial(name, setting, period) for name in BASELINES}
                trials = {n: t for n, t in trials.items() if rows.get(t.trial_id, {}).get("status") != Status.OK.value}
                if not trials:
                    continue
                started = utcnow()
                t0 = time.perf_counter()
                try:
                    scores = period_baselines(self.frame, period, int(setting["lookback"]), int(setting["horizon"]),
                                              setting["validation"], self.season, self.quantiles)
                except InputError:  # a setting the data cannot window (its trials fail and say why)
                    continue
                took = round(time.perf_counter() - t0, 6)  # seconds, as train.py rounds its own (no float noise)
                for name, trial in trials.items():
                    metrics = {**scores[name], "train_time_s": took}
                    out.append(TrialResult(trial, Status.OK, metrics=metrics, started_at=started, finished_at=utcnow(),
                                           device="main process"))
        return out

    def record(self, store: ResultStore, run_id: str, columns: Iterable[str],
               params: Mapping[str, Any] | None = None) -> str:
        """Compute and store (as rows of `run_id`, with the metric `columns`) the baselines `store` lacks:
        those of every known setting (:meth:`settings`), or of the setting of one trial's `params`.
        Returns the line for the run's log."""
        from hpt.progress import plural
        from hpt.trial import Status

        t0 = time.perf_counter()
        settings = self.settings() if params is None else [{k: params[k] for k in WINDOW_KEYS}]
        new = [s for s in settings if _key(s) not in self._done]
        if new:  # another run at the location may have stored them since this run read its rows: never twice
            rows = store.rows()  # (an ok row is there for good: not read again)
            ids = [self.trial(name, s, period).trial_id for s in new for period in self.spec.periods
                   for name in BASELINES]
            store.refresh(tid for tid in ids if rows.get(tid, {}).get("status") != Status.OK.value)
        scored = self.missing(settings, store.rows())
        for result in scored:
            store.record(result, run_id, columns)
        done = (f"{plural(len(scored), 'row')} computed in {(time.perf_counter() - t0) * 1000:.0f} ms" if scored
                else "already at the location" if settings else "scored as the trials draw their window settings")
        return self.describe(done)
