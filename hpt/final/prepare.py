"""What ``hpt final`` was asked, and everything it settles before training: the spec, the config,
the data, the hold-out, the training span and the windows, and the baselines on the same windows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpt.baselines import (
    BASELINES,
    baseline_mask,
    forecast_scores,
    naive_forecasts,
    panel_forecasts,
    panel_scores,
    quantile_forecasts,
)
from hpt.data import DataError
from hpt.errors import InputError
from hpt.fidelity import QUICK
from hpt.final.choose import Choice, choose, config_periods, recorded_spec, span_text, train_start
from hpt.future import known_ahead
from hpt.hparams import quantiles_of
from hpt.panel import season_length, times_of
from hpt.periods import Period, time_text
from hpt.progress import format_params, plural
from hpt.sinks import Sink, open_sink
from hpt.spec import Spec
from hpt.windows import (
    Holdout,
    Windows,
    frame_step,
    holdout_window,
    make_windows,
    overlapping_period,
    parse_holdout,
    require_holdout,
    step_text,
)

__all__ = ["MIN_VERDICT_WINDOWS", "WORST_SERIES", "FinalRequest", "Setup", "few_windows", "left_out_series",
           "panel_baselines", "prepare", "score_baselines", "series_verdicts"]

log = logging.getLogger("hpt")

MIN_VERDICT_WINDOWS = 30
"""Below this many hold-out windows, a verdict against the baselines is flagged as too few to trust."""


@dataclass(frozen=True)
class FinalRequest:
    """What ``hpt final`` was asked to do."""

    location: str
    spec_path: str | None = None  # else the spec recorded in runs/ at the location
    config_id: str | None = None  # else the best config
    months: int | None = None  # training window; else the length of one tuning period
    holdout: str | None = None  # "1M", "2W", "30D": the end of the data
    holdout_start: str | None = None  # a date: from there to the end of the data
    from_model: str | None = None  # fine-tune this earlier final model instead of training from scratch
    compare: bool = False  # with from_model: also train from scratch, report both
    device: str = "auto"
    threads: int | None = None  # torch CPU threads [default: 1 on the CPU, as each of a run's workers; 2 beside a GPU]
    gpus: tuple[str, ...] | None = None  # narrows the visible GPUs (as hpt run's --gpus)
    executor: str | None = None  # "local" or "ray" [default: the spec's resources.executor, else local]
    ray_address: str | None = None  # with executor ray: the cluster [default: $RAY_ADDRESS, else a local instance]
    grace: float = 10.0  # seconds the training gets to finish after SIGINT/SIGTERM


@dataclass(frozen=True)
class Setup:
    """What a final trains and on what: settled before anything trains or is written."""

    sink: Sink
    spec: Spec
    spec_source: str
    metric: str
    choice: Choice
    start_model: Any  # --from-model's model (hpt.predict's), or None
    frame: pd.DataFrame  # the spec's data, as the workers train on it
    holdout: Holdout
    tuning_periods: list[Period]
    train: Period  # the training span: up to the hold-out's start
    length: str  # the training span in words: "1 month, one tuning period"
    windows: Windows  # training windows and, as their validation part, the hold-out's
    train_rows: int
    held_rows: int
    from_model: str | None = None  # where start_model was read
    compare: bool = False  # with start_model: also train from scratch

    @property
    def window(self) -> Period:
        """What a final trial trains and scores on: the training span and the hold-out."""
        return Period(self.train.start, self.holdout.end)

    @property
    def modes(self) -> list[str]:
        """The models to train: ``scratch``; with --from-model ``fine-tune`` (and ``scratch`` with --compare)."""
        if self.start_model is None:
            return ["scratch"]
        return ["fine-tune", "scratch"] if self.compare else ["fine-tune"]


def check_request(req: FinalRequest) -> None:
    """InputError for options that contradict each other, before anything is read."""
    if req.compare and not req.from_model:
        raise InputError("--compare needs --from-model (it trains from scratch beside the fine-tuned model)")
    if req.config_id and req.from_model:
        raise InputError("give --config or --from-model, not both (a fine-tuned model keeps its own config)")
    if req.months is not None and req.months < 1:
        raise InputError(f"--months must be at least 1, got {req.months}")
    if req.holdout and req.holdout_start:
        raise InputError("give --holdout or --holdout-start, not both")
    if req.holdout:
        parse_holdout(req.holdout)
    if req.device not in ("auto", "cpu", "cuda"):
        raise InputError(f'--device must be auto, cpu or cuda, got "{req.device}"')


def _check_devices(req: FinalRequest, spec: Spec) -> None:
    """InputError for --device cuda without a GPU, or --gpus naming one that is not there (this machine's pool)."""
    if (req.executor or spec.resources.get("executor") or "local") == "local":
        from hpt.backends.slots import choose_slots, requested_gpus

        only, only_from = requested_gpus(req.gpus, spec.resources)
        choose_slots(req.device, 1, only=only, only_from=only_from)


def _open_start_model(from_model: str | None) -> Any:
    if not from_model:
        return None
    from hpt.predict import open_model

    try:
        return open_model(from_model)
    except InputError as e:
        raise InputError(f"--from-model: {e}") from None


def prepare(req: FinalRequest, say: Callable[[str], None]) -> Setup:
    """Read the location, choose the config, cut the hold-out and the training span; say what was chosen."""
    from hpt.results import load_results, planned_periods, summarise

    check_request(req)
    sink = open_sink(req.location)
    frame_rows = load_results(req.location)
    spec, spec_source = recorded_spec(sink, req.spec_path)
    metric = spec.objective
    kept = spec.period_rule.holdout if spec.period_rule is not None else 0  # months the tuning periods keep back
    require_holdout(kept, req.holdout, req.holdout_start)  # bad input is said before "no best config yet"
    _check_devices(req, spec)
    planned = planned_periods(req.location, frame_rows)
    if req.spec_path and spec.period_rule is None:  # automatic periods are this month's, not the tuning's: the records'
        planned[spec.fidelity.name] = [p.label for p in spec.periods]
    summary = summarise(frame_rows, metric, compare=0, uri=sink.uri, planned=planned)
    start_model = _open_start_model(req.from_model)
    choice = choose(req.from_model, req.config_id, frame_rows[~baseline_mask(frame_rows)], summary, spec, sink.uri,
                    start_model)
    frame = spec.data.read().frame
    if start_model is not None and tuple(start_model.columns) != tuple(frame.columns):
        raise InputError(f"--from-model: the model forecasts from columns {', '.join(start_model.columns)}; "
                         f"the spec's data has {', '.join(map(str, frame.columns))}")
    if start_model is not None and start_model.known_ahead != known_ahead(frame):
        raise InputError(f"--from-model: the model takes {', '.join(start_model.known_ahead) or 'no columns'} known "
                         f"ahead (for the forecast steps); the spec's data gives {', '.join(known_ahead(frame)) or 'none'}")
    holdout = holdout_window(kept, frame, req.holdout, req.holdout_start)
    tuning_periods = config_periods(frame_rows)
    clash = overlapping_period(tuning_periods, holdout)
    if clash is not None:
        quick = frame_rows["fidelity"].astype(str).eq(QUICK.name) if "fidelity" in frame_rows else None
        if quick is not None and quick.any() and clash in config_periods(frame_rows[quick]):
            raise InputError(f"the quick screen's period {clash} (--quick and search.promote screen on the last whole "
                             f"month of data) overlaps the hold-out {holdout.period} ({holdout.how}): the screen chose "
                             "configs on it, so the hold-out would not be unseen; to keep months back from the screen "
                             "too, tune with date_ranges.auto and its \"holdout\" (the screen then uses the last whole "
                             "month before them)")
        raise InputError(f"tuning period {clash} overlaps the hold-out {holdout.period} ({holdout.how}): the hold-out "
                         "would not be unseen; choose a later --holdout-start or a shorter --holdout, or tune with "
                         "date_ranges.auto.holdout so that the periods keep it back")
    start, length = train_start(req.months, spec, config_periods(choice.rows) or tuning_periods, holdout.start)
    times = times_of(frame)
    in_holdout = (times >= holdout.start) & (times < holdout.end)
    held = np.unique(times[in_holdout])
    horizon = int(choice.params.get("horizon", 1))
    if len(held) < horizon:  # not one forecast of the config fits in it (of any series)
        step = frame_step(frame)
        raise InputError(f"hold-out {holdout.period} ({holdout.how}): {plural(len(held), 'step')} of data, fewer than "
                         f"the config's horizon of {horizon}: no forecast fits in it; give a hold-out of at least "
                         f"{horizon} steps ({step_text(step * horizon)})")
    asked = None  # the length asked for, when the data starts later: the window is all the data before the hold-out
    if start < times.min():
        asked, start = length, pd.Timestamp(times.min())
        length = f"{span_text(Period(start, holdout.start))}, all the data before the hold-out"
    windows = _windows(frame, Period(start, holdout.start), holdout, choice.params)
    setup = Setup(sink, spec, spec_source, metric, choice, start_model, frame, holdout, tuning_periods,
                  Period(start, holdout.start), length, windows,
                  train_rows=int(((times >= start) & (times < holdout.start)).sum()),
                  held_rows=int(in_holdout.sum()),
                  from_model=req.from_model, compare=req.compare)
    _say_setup(setup, asked, say)
    return setup


def _windows(frame: pd.DataFrame, train: Period, holdout: Holdout, params: dict[str, Any]) -> Windows:
    """The training span's windows with the hold-out's as their scored part (the explicit split)."""
    try:
        return make_windows(frame, Period(train.start, holdout.end), int(params["lookback"]), int(params["horizon"]),
                            holdout, str(params.get("scaler", "standard")))
    except DataError as e:
        raise InputError(f"training window {train} and hold-out {holdout.period}: {e.message}") from None


def _say_setup(s: Setup, asked: str | None, say: Callable[[str], None]) -> None:
    """What the final trains, before it does; `asked`: the training length asked for when the data starts later."""
    c, w = s.choice, s.windows
    say(f"config {c.config_id} ({c.architecture}): {format_params(c.tuned) or 'no tuned parameters'}; {c.chosen}")
    if asked is not None:
        start = time_text(s.train.start, frame_step(s.frame))
        say(f"the data starts at {start}: the training window starts there, shorter than {asked}")
    say(f"data: {Path(s.spec.data.path).name}, {plural(len(s.frame), 'row')} every {step_text(frame_step(s.frame))}; "
        f"hold-out {s.holdout.period} ({s.holdout.how}): {plural(s.held_rows, 'row')}, "
        f"{plural(len(w.x_val), 'window')} of horizon {int(c.params['horizon'])}; no tuning period reaches it")
    few = few_windows(len(w.x_val))
    if few:
        log.warning("%s", few)


def few_windows(windows: int) -> str | None:
    """The warning for a hold-out with too few windows for its verdict, else None."""
    if windows >= MIN_VERDICT_WINDOWS:
        return None
    return (f"the hold-out has {plural(windows, 'window')}: too few for a verdict against the baselines (under "
            f"{MIN_VERDICT_WINDOWS}, one good or bad stretch decides it); give a longer --holdout or an earlier "
            "--holdout-start")


def panel_baselines(s: Setup) -> dict[str, np.ndarray] | None:
    """Of a final over many series: each baseline's forecasts of the hold-out's windows, each series' in
    its own standardised units (:func:`hpt.baselines.panel_forecasts`); None for one series."""
    if s.windows.panel is None:
        return None
    return panel_forecasts(s.frame, s.windows, s.window, s.holdout, s.spec.data.season, quantiles_of(s.choice.params))


def score_baselines(s: Setup, forecasts: dict[str, np.ndarray] | None = None) -> dict[str, dict[str, Any]]:
    """Both naive baselines on the hold-out's windows, scored as the model is (:func:`forecast_scores`); of many
    series from their forecasts `forecasts` (:func:`panel_baselines`), as the model is (:func:`panel_scores`)."""
    w, params = s.windows, s.choice.params
    if w.panel is not None:
        assert forecasts is not None
        out: dict[str, dict[str, Any]] = {}
        for name in BASELINES:
            units, standardised = panel_scores(forecasts[name], w.y_val, w.panel, quantiles_of(params))
            out[name] = {"metrics": units, "standardised": standardised}
        out["naive-seasonal"]["season"] = w.panel.season
        return out
    assert w.val_ends is not None
    step = frame_step(s.frame)
    mean, std = float(w.mean[0]), float(w.std[0])
    actual = w.y_val.astype(np.float64) * std + mean
    season = season_length(step, s.spec.data.season)
    quantiles = quantiles_of(params)
    forecasts = naive_forecasts(s.frame.iloc[:, 0], w.val_ends, int(params["horizon"]), step, season)
    if quantiles:
        forecasts = quantile_forecasts(forecasts, s.frame, s.train, int(params["horizon"]), season, quantiles)
    baselines: dict[str, dict[str, Any]] = {}
    for name in BASELINES:
        metrics, standardised = forecast_scores(forecasts[name], actual, std, quantiles)
        baselines[name] = {"metrics": metrics, "standardised": standardised}
    baselines["naive-seasonal"]["season"] = season
    return baselines


WORST_SERIES = 5
"""How many of a panel's series ``hpt final`` names as the model's worst on the hold-out."""


def series_verdicts(s: Setup, model_file: bytes, forecasts: dict[str, np.ndarray]) -> dict[str, Any]:
    """Of a final over many series: how the model (`model_file`, as trained) does on each series' hold-out
    windows against seasonal naive (`forecasts`: :func:`panel_baselines`), by MAE in the series' own
    standardised units: on how many series it beats it, and its worst series by MASE (its MAE over the
    series' in-sample seasonal-naive MAE)."""
    from hpt.inference import forecast
    from hpt.model_io import load_model
    from hpt.quantiles import point

    w, panel = s.windows, s.windows.panel
    assert panel is not None
    quantiles = quantiles_of(s.choice.params)
    actual = w.y_val.astype(np.float64)
    predicted = forecast(load_model(model_file).module, w.x_val)
    counts = np.bincount(panel.val_series, minlength=len(panel.series))

    def mae(f: np.ndarray) -> np.ndarray:
        err = np.abs(point(f, quantiles) - actual).mean(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(panel.val_series, weights=err, minlength=len(counts)) / counts  # type: ignore[no-any-return]

    mine, naive = mae(predicted), mae(forecasts["naive-seasonal"])
    unit = panel.unit if panel.unit is not None else np.ones(len(counts))  # the windows' units -> standardised
    scale = np.where(panel.naive_mae > 0, panel.naive_mae, np.nan)
    scored = counts > 0
    beats = int((mine < naive)[scored].sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        mase, naive_mase = mine / scale, naive / scale
    order = sorted(np.flatnonzero(scored), key=lambda k: (-mase[k] if np.isfinite(mase[k]) else np.inf, -mine[k]))
    worst = [{"series": panel.series[k], "windows": int(counts[k]), "mase": _number(mase[k]),
              "naive_seasonal_mase": _number(naive_mase[k]), "std_mae": float(mine[k] * unit[k]),
              "naive_seasonal_std_mae": float(naive[k] * unit[k]), "beats_seasonal": bool(mine[k] < naive[k])}
             for k in order[:WORST_SERIES]]
    return {"series": int(scored.sum()), "beats_seasonal": beats,
            "beats_seasonal_share": beats / int(scored.sum()) if scored.any() else None, "worst": worst}


def _number(value: float) -> float | None:
    """A float for JSON: None where it is not finite."""
    return float(value) if np.isfinite(value) else None


def left_out_series(s: Setup) -> list[str]:
    """Of a final over many series: the series that give its training span and hold-out no window."""
    assert s.windows.panel is not None
    trained = set(s.windows.panel.series)
    return [str(sid) for sid in s.frame.index.get_level_values(0).unique() if str(sid) not in trained]
