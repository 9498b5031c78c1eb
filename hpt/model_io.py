"""Saved models: what a ``models/<trial_id>.pt`` file holds, and how to use it again.

>>> from hpt import load_model
>>> model = load_model("hpt-results/lstm-demo/models/3f2a9c1d0b7e.pt")
>>> model.predict(frame)   # frame: the last `lookback` rows (or more) of the input columns

Newer files also record the data's time column and step (so ``hpt predict`` can date its
forecasts); files saved before they did still load, with ``time_column`` and ``step`` None.
Final models (``hpt final``) keep what made them under ``info``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpt.errors import InputError
from hpt.inference import BATCH

if TYPE_CHECKING:
    from hpt.static import Encoding

__all__ = ["FORMAT", "TrainedModel", "load_model", "model_payload"]

FORMAT = "hpt-model-1"


def model_payload(*, architecture: str, params: dict[str, Any], n_features: int, lookback: int,
                  horizon: int, columns: tuple[str, ...], mean: np.ndarray, std: np.ndarray,
                  state_dict: dict[str, Any], trial_id: str, period: tuple[str, str],
                  metrics: dict[str, float], seed: int | None = None, time_column: str | None = None,
                  step: str | None = None, info: dict[str, Any] | None = None,
                  known_ahead: tuple[str, ...] = (), series: str | None = None,
                  series_scaling: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None,
                  series_features: dict[str, Any] | None = None,
                  time_reading: dict[str, str] | None = None) -> bytes:
    """The bytes of a model file; loadable with ``torch.load(..., weights_only=True)``.

    `seed` is the seed the trial trained with (``params["seed"]`` is its config's seed).
    `time_column` and `step` (such as ``"1h"``) say how the data's times were read, so
    forecasts can be dated; `info` holds plain JSON-like extras (a final model's config id,
    train window and hold-out). `known_ahead`: the columns it takes for the forecast steps too
    (:mod:`hpt.future`); files without it have none. `series`: the column naming each row's series
    of a model trained on many series (``data.series``); its `mean` and `std` are then 0 and 1 (each
    series was scaled by its own), and `series_scaling` holds those: the ids of the series it was
    trained on and each one's mean and standard deviation per column ``(series, columns)``, of its
    train part. `series_features`: how its static series features became its ``static:`` columns
    (:meth:`hpt.static.Encoding.to_json`). `time_reading`: the spec's ``data.time_format`` and ``data.time_unit``
    when it set them (:func:`hpt.data.time_reading`), so that ``hpt predict`` reads a file's times as training did.
    """
    import torch

    payload = {
        "format": FORMAT,
        "architecture": architecture,
        "params": dict(params),
        "n_features": n_features,
        "lookback": lookback,
        "horizon": horizon,
        "columns": list(columns),
        "mean": [float(x) for x in mean],
        "std": [float(x) for x in std],
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "trial_id": trial_id,
        "period": list(period),
        "metrics": dict(metrics),
        "seed": seed,
    }
    if time_column is not None:
        payload["time_column"] = time_column
    if time_reading:
        payload["time_reading"] = dict(time_reading)
    if step is not None:
        payload["step"] = step
    if info:
        payload["info"] = dict(info)
    if known_ahead:
        payload["known_ahead"] = list(known_ahead)
    if series is not None:
        payload["series"] = series
    if series_scaling is not None:
        ids, means, stds = series_scaling
        payload["series_scaling"] = {"ids": [str(i) for i in ids], "mean": np.asarray(means, dtype=float).tolist(),
                                     "std": np.asarray(stds, dtype=float).tolist()}
    if series_features:
        payload["series_features"] = dict(series_features)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


@dataclass(frozen=True)
class TrainedModel:
    """A trained model with what it needs to forecast in the data's own units."""

    module: Any  # torch.nn.Module, in eval mode
    architecture: str
    params: dict[str, Any]
    columns: tuple[str, ...]  # target first, then features
    lookback: int
    horizon: int
    mean: np.ndarray
    std: np.ndarray
    trial_id: str
    metrics: dict[str, float]
    time_column: str | None = None  # None in files saved before models recorded it
    time_reading: dict[str, str] = field(default_factory=dict)  # data.time_format / data.time_unit it was trained with
    step: pd.Timedelta | None = None  # the data's step (None: not recorded)
    info: dict[str, Any] = field(default_factory=dict)  # a final model's config id, train window, hold-out
    known_ahead: tuple[str, ...] = ()  # columns it takes for the forecast steps too (hpt.future)
    series: str | None = None  # trained on many series (data.series): the column naming them
    # of a model trained on many series: each seen series' (mean, std) per column, of its train part
    series_scaling: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # static series features (data.series_features): how a series' values become its static: columns
    series_features: Encoding | None = None

    def require_one_series(self) -> None:
        """ValueError for a model trained on many series: it forecasts one series at a time (:meth:`for_series`)."""
        if self.series is not None:
            raise ValueError(f'this model was trained on many series (data.series "{self.series}"), each scaled '
                             "by its own statistics: forecast one series at a time, model.for_series(ID, rows)")

    def for_series(self, series_id: str, rows: pd.DataFrame | np.ndarray | None = None) -> TrainedModel:
        """A model trained on many series as one for the series `series_id`, which forecasts as a single
        series' model does: scaled by that series' statistics of its train part when the model was trained
        on it, else (a series it never saw: the model is global) by the mean and standard deviation of
        `rows` (their medians and IQRs for a model of ``training.scaler`` "robust"), that series' history
        (its columns as :meth:`predict` takes them); ValueError without them."""
        import dataclasses

        if self.series is None:
            return self
        if series_id in self.series_scaling:
            mean, std = self.series_scaling[series_id]
        elif rows is None:
            raise ValueError(f'series "{series_id}" was not among those the model was trained on: give its history, '
                             "rows=, to scale it by")
        else:
            from hpt.panel import leave_static

            values = self._values(rows)
            mean, std = np.nanmean(values, axis=0), np.nanstd(values, axis=0)
            std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
            if self.params.get("scaler") == "robust":  # as in training: its medians and IQRs (an IQR of 0: its std)
                q25, mean, q75 = np.nanquantile(values, [0.25, 0.5, 0.75], axis=0)
                std = np.where(q75 - q25 > 1e-12 * std, q75 - q25, std)
            leave_static(self.columns, mean, std)
        return dataclasses.replace(self, mean=np.asarray(mean, dtype=np.float64),
                                   std=np.asarray(std, dtype=np.float64), series=None, series_scaling={})

    @property
    def future_rows(self) -> int:
        """Rows after the lookback its windows have: `horizon` with inputs known ahead, else 0."""
        return self.horizon if self.known_ahead else 0

    @property
    def future_features(self) -> tuple[str, ...]:
        """The data's columns it needs for the forecast steps (``data.future_features``): read, not derived."""
        from hpt.calendar import PREFIX

        return tuple(c for c in self.known_ahead if not c.startswith(PREFIX))

    @property
    def calendar(self) -> tuple[str, ...]:
        """The calendar inputs (``data.calendar``) among its columns: derived from the times, not read."""
        from hpt.calendar import calendar_of

        return calendar_of(self.columns)

    @property
    def file_columns(self) -> tuple[str, ...]:
        """The columns a data file must hold for it: the target and features (no calendar inputs, no static
        series features' inputs: those are encoded from the file's columns :attr:`series_features` names)."""
        from hpt.calendar import PREFIX
        from hpt.panel import STATIC

        return tuple(c for c in self.columns if not c.startswith((PREFIX, STATIC)))

    @property
    def quantiles(self) -> tuple[float, ...] | None:
        """The quantiles a quantile model (``training.loss`` "quantile") forecasts; None for a point forecast."""
        from hpt.hparams import quantiles_of

        return quantiles_of(self.params)

    def predict(self, inputs: pd.DataFrame | np.ndarray, future: pd.DataFrame | None = None) -> np.ndarray:
        """Forecast the next `horizon` target values after each window's end.

        `inputs` is a DataFrame holding the model's columns (or an array of them in that
        order), at least `lookback` rows long, oldest first; a model with calendar inputs
        derives them from the DataFrame's DatetimeIndex or its time column. A model with
        inputs known ahead (:attr:`known_ahead`) takes them for the forecast steps from
        `future`: `horizon` rows of its future features (more are ignored), on their times;
        a model whose only ones are calendar inputs dates the steps from the last row and
        its step when `future` is None. Returns an array of shape ``(horizon,)`` for the
        window ending at the last row; for a quantile model ``(horizon, len(quantiles))``,
        each step's quantiles in increasing order.
        """
        values = self._values(inputs)
        if len(values) < self.lookback:
            raise ValueError(f"need at least lookback={self.lookback} rows, got {len(values)}")
        window = values[-self.lookback:]
        if self.known_ahead:
            window = np.concatenate([window, self._future_values(inputs, future)])
        return self.predict_windows(window[None])[0]  # type: ignore[no-any-return]

    def _timed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` on a DatetimeIndex (its own, else its time column), with the model's calendar columns."""
        from hpt.calendar import with_calendar

        timed = frame if isinstance(frame.index, pd.DatetimeIndex) or self.time_column not in frame.columns \
            else frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame[self.time_column])))
        return with_calendar(timed, self.calendar)

    def _values(self, inputs: pd.DataFrame | np.ndarray) -> np.ndarray:
        if not isinstance(inputs, pd.DataFrame):
            return np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
        if self.calendar and not set(self.columns) <= set(inputs.columns):
            inputs = self._timed(inputs)
        if self.series_features is not None and not set(self.series_features.columns) <= set(inputs.columns):
            inputs = self._with_static(inputs)
        return inputs[list(self.columns)].to_numpy(np.float64)

    def _with_static(self, rows: pd.DataFrame) -> pd.DataFrame:
        """One series' `rows` with its static series features' inputs, encoded from their columns in `rows`
        (their last values); ValueError when a column is missing or a value cannot be encoded."""
        assert self.series_features is not None
        lacking = [n for n in self.series_features.names if n not in rows.columns]
        if lacking:
            raise ValueError(f"the model takes static series features (data.series_features): give the rows their "
                             f"columns {', '.join(lacking)}")
        extra = {}
        for f in self.series_features.features:
            given = rows[f.name].dropna()
            hot, missing, bad = f.encode(given.iloc[-1:] if len(given) else pd.Series([np.nan]))
            if missing.any():
                raise ValueError(f'the rows have no value of "{f.name}" (a static series feature)')
            if bad.any():
                raise ValueError(f'the rows\' "{f.name}" (a static series feature) is {given.iloc[-1]!r}, a value the '
                                 "model was not trained on")
            extra.update({c: float(v) for c, v in zip(f.columns, hot[0], strict=True)})
        return rows.assign(**extra)

    def _future_values(self, inputs: pd.DataFrame | np.ndarray, future: pd.DataFrame | None) -> np.ndarray:
        """The forecast steps' rows ``(horizon, n_columns)`` in the data's units: the columns known
        ahead from `future` (or the times after the inputs' last), the others at their train mean."""
        if future is None:
            if self.future_features or not isinstance(inputs, pd.DataFrame) or self.step is None:
                raise ValueError(f"give future=: a DataFrame of the {self.horizon} forecast steps' "
                                 f"{', '.join(self.future_features) or 'times'} (inputs known ahead)")
            last = self._timed(inputs).index[-1]
            future = pd.DataFrame(index=pd.DatetimeIndex([last + k * self.step for k in range(1, self.horizon + 1)]))
        timed = self._timed(future)
        if len(timed) < self.horizon:
            raise ValueError(f"future= has {len(timed)} rows: the model forecasts {self.horizon} steps")
        rows = np.tile(self.mean, (self.horizon, 1))
        for i, c in enumerate(self.columns):
            if c in self.known_ahead:
                rows[:, i] = timed[c].to_numpy(np.float64)[:self.horizon]
        return rows

    @property
    def _shape(self) -> tuple[int, ...]:
        quantiles = self.quantiles
        return (self.horizon,) if quantiles is None else (self.horizon, len(quantiles))

    def predict_windows(self, windows: np.ndarray, batch: int = BATCH, at: np.ndarray | None = None) -> np.ndarray:
        """Forecasts for many windows at once: `windows` of shape ``(N, lookback, n_columns)``
        in the data's units, oldest row first (with inputs known ahead ``(N, lookback + horizon,
        n_columns)``: the forecast steps' rows after, only their columns known ahead read);
        returns ``(N, horizon)`` in the target's units
        (a quantile model: ``(N, horizon, len(quantiles))``).

        Each window gives what :meth:`predict` gives for it; they run through the model in
        batches of `batch` (:func:`hpt.inference.forecast`). With `at`, only the windows
        ``windows[at]``, copied a batch at a time (`windows` may then be a view of every window).
        """
        from hpt.inference import forecast

        self.require_one_series()
        windows = np.asarray(windows)
        rows = self.lookback + self.future_rows
        if windows.ndim != 3 or windows.shape[1:] != (rows, len(self.columns)):
            raise ValueError(f"expected windows of shape (N, {rows}, {len(self.columns)}), got {windows.shape}")
        if not (len(windows) if at is None else len(at)):
            return np.empty((0, *self._shape), dtype=np.float64)
        out = forecast(self.module, windows, batch, at=at, prepare=self._scaled)
        return out * self.std[0] + self.mean[0]  # type: ignore[no-any-return]

    def _scaled(self, windows: np.ndarray) -> np.ndarray:
        """Windows in the data's units as the model's inputs: standardised as in training, float32."""
        scaled = ((windows.astype(np.float64) - self.mean) / self.std).astype(np.float32)
        if self.known_ahead:
            from hpt.future import known_mask, zero_unknown

            zero_unknown(scaled, self.lookback, known_mask(self.columns, self.known_ahead))
        return scaled  # type: ignore[no-any-return]


def load_model(path: str | Path | bytes) -> TrainedModel:
    """Load a model saved by hpt onto the CPU: a ``models/<trial_id>.pt`` file, or its URI.

    `path` is a local path or a ``gs://bucket/.../models/<trial_id>.pt`` or
    ``s3://bucket/.../models/<trial_id>.pt`` URI (the ``model_uri`` column of the results),
    read with read-only access and the cloud's standard credentials; or a model file's bytes.
    """
    import torch

    from hpt.architectures import get_architecture

    source: Any = io.BytesIO(path) if isinstance(path, bytes) else str(path)
    if isinstance(path, str) and path.split("://", 1)[0].lower() in ("gs", "s3") and "://" in path:
        from hpt.sinks import read_uri

        source = io.BytesIO(read_uri(path))
    payload = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{'the bytes given' if isinstance(path, bytes) else path} is not a model saved by hpt")
    arch = get_architecture(payload["architecture"], Path.cwd(), "in the working folder")  # a builder of one's own
    known = tuple(payload.get("known_ahead") or ())
    where = "the bytes given" if isinstance(path, bytes) else str(path)
    try:
        module = arch.build(payload["n_features"], payload["lookback"], payload["horizon"], payload["params"],
                            payload["horizon"] if known else 0)
    except Exception as e:  # a builder of one's own, changed since: another signature, a bug
        raise InputError(f'{where}: "{payload["architecture"]}" cannot build its model now ({_first_line(e)}); '
                         "was the builder changed since the model was saved?") from None
    try:
        module.load_state_dict(payload["state_dict"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise InputError(f'{where}: its saved weights do not fit the model "{payload["architecture"]}" builds now '
                         f"({_first_line(e)}); was the builder changed since the model was saved?") from None
    module.eval()
    return TrainedModel(
        module=module,
        architecture=payload["architecture"],
        params=payload["params"],
        columns=tuple(payload["columns"]),
        lookback=payload["lookback"],
        horizon=payload["horizon"],
        mean=np.asarray(payload["mean"]),
        std=np.asarray(payload["std"]),
        trial_id=payload["trial_id"],
        metrics=payload["metrics"],
        time_column=payload.get("time_column"),
        time_reading={str(k): str(v) for k, v in (payload.get("time_reading") or {}).items()},
        step=_step(payload.get("step")),
        info=dict(payload.get("info") or {}),
        known_ahead=known,
        series=payload.get("series"),
        series_scaling=_series_scaling(payload.get("series_scaling")),
        series_features=_series_features(payload.get("series_features")),
    )


def _first_line(e: BaseException) -> str:
    """An exception as one short line (torch's load_state_dict lists every key on lines of their own)."""
    text = f"{type(e).__name__}: {e}".strip().splitlines()[0]
    return text if len(text) <= 200 else text[:197] + "..."


def _series_features(stored: Any) -> Encoding | None:
    """The static series features' encoding a model file records; None in one without them."""
    if not stored:
        return None
    from hpt.static import Encoding

    return Encoding.from_json(stored)


def _series_scaling(stored: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each seen series' (mean, std) as a model file of many series records them; none in older files."""
    if not isinstance(stored, dict):
        return {}
    return {str(sid): (np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64))
            for sid, m, s in zip(stored["ids"], stored["mean"], stored["std"], strict=True)}


def _step(text: Any) -> pd.Timedelta | None:
    """The recorded step ("1h"), or None where none (or no usable one) was recorded."""
    try:
        step = pd.Timedelta(text) if isinstance(text, str) and text else None
    except ValueError:
        return None
    return step if step is not None and step > pd.Timedelta(0) else None
