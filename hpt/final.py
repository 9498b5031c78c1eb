"""The winner, retrained on the newest data and tested on a hold-out that tuning never saw.

``hpt final LOCATION`` takes the best config of a results location (the one ``hpt best``
names, or another by id), trains it on the newest data before the hold-out for the median
``best_epoch`` of its tuning trials (no early stopping: the hold-out is never seen in
training), and scores it on the hold-out in the data's own units and standardised (with
the train part's scale, like the trial rows' ``val_*``), beside both naive baselines on the
same windows. It writes, at the location::

    final/<final_id>/model.pt      the model (same format as models/<trial_id>.pt)
    final/<final_id>/scratch.pt    with --from-model --compare: the model trained from scratch
    final/<final_id>/report.json   what was trained, on what, and how it scored
    final/index.csv                one row per final model, merged with conditional writes

The hold-out is the final ``holdout`` months of automatic periods (``date_ranges.auto``),
or given as a duration at the end of the data (``--holdout 1M``) or a start date; a tuning
period that overlaps it is refused, since the hold-out would then not be unseen.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpt import __version__
from hpt.baselines import (
    BASELINES,
    baseline_errors,
    baseline_mask,
    naive_forecasts,
    quantile_forecasts,
    season_length,
)
from hpt.data import DataError, Windows, frame_step, make_windows, step_text
from hpt.errors import HptError, InputError, did_you_mean, show
from hpt.hparams import quantiles_of
from hpt.periods import Period, parse_time, usable_span
from hpt.progress import format_duration, format_params, format_value, plural
from hpt.quantiles import point, quantile_scores
from hpt.rows import DEFAULT_FIDELITY, plain
from hpt.sinks import Sink, SinkUnavailable, open_sink
from hpt.spec import Spec, load_spec, parse_spec
from hpt.trial import Status

__all__ = ["INDEX_CSV", "FinalReport", "FinalRequest", "Holdout", "holdout_window", "parse_holdout", "run_final"]

log = logging.getLogger("hpt")

INDEX_CSV = "final/index.csv"
INDEX_COLUMNS = ("final_id", "mode", "created_at", "config_id", "architecture", "params", "train_start", "train_end",
                 "epochs", "holdout_start", "holdout_end", "holdout_windows", "mse", "mae", "rmse", "std_mse", "std_mae",
                 "std_rmse", "naive_last_mse", "naive_seasonal_mse", "vs_best_baseline", "from_model", "model_uri",
                 "report_uri", "device")
_INDEX_ATTEMPTS = 20
_HOLDOUT_UNITS = {"M": "months", "W": "weeks", "D": "days", "h": "hours"}
_EVAL_BATCH = 8192
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


@dataclass(frozen=True)
class Holdout:
    """The hold-out: ``[start, end)`` at the end of the data, and where it was asked for."""

    start: pd.Timestamp
    end: pd.Timestamp
    how: str  # "date_ranges.auto.holdout: 1 month", "--holdout 1M", "--holdout-start 2014-12-01"

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)


@dataclass
class Trained:
    """One model trained for the final report: how, and how it scored on the hold-out."""

    mode: str  # "scratch" or "fine-tune"
    key: str  # its object at the location: final/<id>/model.pt or scratch.pt
    payload: bytes
    train_time_s: float
    train_loss: float
    metrics: dict[str, float]  # mse, mae, rmse in the data's units
    standardised: dict[str, float]  # the same divided by the train part's scale


@dataclass
class FinalReport:
    """What ``hpt final`` did: everything report.json holds, and the lines it prints."""

    final_id: str
    document: dict[str, Any]
    models: list[Trained] = field(default_factory=list)
    uris: dict[str, str] = field(default_factory=dict)  # model, report, index (and scratch)

    def lines(self) -> list[str]:
        return report_lines(self.document)


# -- the hold-out ---------------------------------------------------------------------


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


# -- the spec and the config ----------------------------------------------------------


def recorded_spec(sink: Sink, spec_path: str | None) -> tuple[Spec, str]:
    """--spec, else the spec of the latest run recorded in runs/ at the location; and where it was read."""
    if spec_path:
        return load_spec(spec_path), spec_path
    keys = [k for k in sink.list("runs/") if k.endswith(".json")]
    for key in reversed(keys):
        data = sink.read(key)
        try:
            record = json.loads(data) if data else None
        except ValueError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("spec"), dict):
            continue
        source = str(record.get("spec_source") or "")
        base = Path(source).parent if source and Path(source).parent.is_dir() else Path.cwd()
        where = sink.url(key)
        spec = parse_spec(record["spec"], source=f"{where} (the spec recorded there; --spec gives another)",
                          base_dir=base.resolve(), default_name=str(record.get("spec_name") or "experiment"))
        return spec, where
    raise InputError(f"no spec recorded in runs/ at {sink.uri}: give the spec it was tuned with, --spec SPEC")


def _config_rows(frame: pd.DataFrame, config_id: str, fidelity: str | None) -> pd.DataFrame:
    ok = frame[(frame["config_id"].astype(str) == config_id) & (frame["status"].astype(str) == Status.OK.value)]
    if fidelity is not None and "fidelity" in ok:
        same = ok[ok["fidelity"].fillna(DEFAULT_FIDELITY).astype(str) == fidelity]
        if not same.empty:
            return same
    return ok


def _tuned_params(rows: pd.DataFrame) -> dict[str, Any]:
    first = rows.iloc[0]
    out = {}
    for c in rows.columns:
        if c.startswith("param_"):
            v = plain(first[c])
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                out[c.removeprefix("param_")] = v
    return out


def _median_epochs(rows: pd.DataFrame) -> tuple[int, list[int]]:
    """The median best_epoch of a config's tuning rows (rounded half up, at least 1), and the values."""
    values = [int(v) for v in pd.to_numeric(rows.get("best_epoch", pd.Series(dtype=float)), errors="coerce").dropna()]
    if not values:
        raise InputError("the config's tuning rows have no best_epoch: cannot tell how long to train it")
    return max(1, int(math.floor(float(np.median(values)) + 0.5))), sorted(values)


def _model_params(uri: str) -> dict[str, Any] | None:
    """Every hyperparameter of a tuning trial's model file, or None where it cannot be read."""
    import torch

    from hpt.sinks import read_uri

    try:
        payload = torch.load(io.BytesIO(read_uri(uri)), map_location="cpu", weights_only=True)
    except Exception:
        return None
    params = payload.get("params") if isinstance(payload, dict) else None
    return dict(params) if isinstance(params, dict) else None


def _full_params(spec: Spec, config_id: str, rows: pd.DataFrame) -> dict[str, Any]:
    """The config's every hyperparameter: the spec's values with its tuned ones, else as its model file says."""
    from hpt.search import config_id as make_config_id

    params = {**spec.base_params, **_tuned_params(rows)}
    if make_config_id(spec, params) == config_id:
        return params
    for uri in rows.get("model_uri", pd.Series(dtype=object)).dropna().astype(str):
        found = _model_params(uri) if uri else None
        if found is not None:
            return found
    log.warning("config %s: the spec does not give this config's id and no model file of it could be read; "
                "training the spec's values with its tuned parameters", config_id)
    return params


@dataclass(frozen=True)
class _Choice:
    """The config to train, how it was chosen, its tuning rows and how long to train it."""

    config_id: str
    chosen: str
    params: dict[str, Any]  # every hyperparameter
    architecture: str
    rows: pd.DataFrame  # its ok tuning rows (of its fidelity)
    epochs: int
    epoch_values: list[int]  # the best_epoch values the epochs are the median of
    tuned: dict[str, Any]


def _choose(req: FinalRequest, frame: pd.DataFrame, summary: Any, spec: Spec, uri: str,
            start_model: Any) -> _Choice:
    """The config of --from-model's model, --config's, or the best one (as ``hpt best`` names it)."""
    metric = summary.metric
    fidelity: str | None = summary.main_fidelity
    if start_model is not None:
        config_id = str(start_model.info.get("config_id") or "")
        if not config_id:  # a trial's model: its row says its config
            match = frame[frame["trial_id"].astype(str) == start_model.trial_id]
            config_id = str(match["config_id"].iloc[0]) if len(match) else ""
        chosen = f"the config of {req.from_model}"
    elif req.config_id:
        config_id = _config_by_id(req.config_id, frame, uri)
        table = summary.main.table
        ranked = table[table["config_id"].astype(str) == config_id] if len(table) else table
        chosen = "--config" + (f" (mean {metric}={format_value(float(ranked['mean'].iloc[0]))} over "
                               f"{plural(int(ranked['periods_run'].iloc[0]), 'period')}, ranked {ranked.index[0] + 1} "
                               f"of {len(table)})" if len(ranked) else "")
    else:
        best = summary.best
        if best is None:
            raise HptError(f"{summary.main.why_no_best()} at {uri}: no best config yet (finish the run, or give "
                           "--config ID)")
        config_id, fidelity = best.config_id, best.fidelity
        chosen = (f"best config (mean {metric}={format_value(best.mean)} over {plural(best.periods_run, 'period')}, "
                  f"best in {best.periods_won})")
    rows = _config_rows(frame, config_id, fidelity) if config_id else frame.iloc[0:0]
    if start_model is not None:
        params = dict(start_model.params)
        architecture = str(start_model.architecture)
        epochs, values = _median_epochs(rows) if not rows.empty else (int(params.get("epochs", 1)), list[int]())
        config_id = config_id or str(start_model.info.get("config_id") or start_model.trial_id)
    else:
        if rows.empty:
            raise InputError(f"config {config_id}: no ok tuning rows at {uri}")
        params = _full_params(spec, config_id, rows)
        architecture = str(rows["architecture"].iloc[0])
        epochs, values = _median_epochs(rows)
    tuned = _tuned_params(rows) if not rows.empty else {k: params[k] for k in spec.parameters if k in params}
    return _Choice(config_id, chosen, params, architecture, rows, epochs, values, tuned)


def _config_by_id(given: str, frame: pd.DataFrame, uri: str) -> str:
    """--config: a config with ok rows, by its id or a prefix of it that names one."""
    ok_ids = sorted(set(frame.loc[frame["status"].astype(str) == Status.OK.value, "config_id"].astype(str)))
    if given in ok_ids:
        return given
    prefix = [c for c in ok_ids if c.startswith(given)]
    if len(prefix) == 1:
        return prefix[0]
    if prefix:
        raise InputError(f"--config {given}: the prefix matches {len(prefix)} configs ({', '.join(prefix[:5])}); "
                         "give more of the id")
    listed = ", ".join(ok_ids[:10]) + (f", ... ({len(ok_ids)})" if len(ok_ids) > 10 else "")
    raise InputError(f"--config {given}: no config with ok trials at {uri} has this id{did_you_mean(given, ok_ids)}; "
                     f"configs: {listed}")


def _periods(rows: pd.DataFrame) -> list[Period]:
    """The distinct periods of these rows, in order."""
    pairs = rows[["period_start", "period_end"]].dropna().astype(str).itertuples(index=False)
    return sorted({Period(pd.Timestamp(s), pd.Timestamp(e)) for s, e in pairs})


def _train_start(months: int | None, spec: Spec, periods: list[Period], end: pd.Timestamp) -> tuple[pd.Timestamp, str]:
    """Where training starts, `end` being the hold-out's start, and the length in words: --months,
    else as long as one of the config's tuning `periods` (in months when they are whole months)."""
    if months is not None:
        return pd.Timestamp(end - pd.DateOffset(months=months)), plural(months, "month")
    whole = {_whole_months(p) for p in periods}
    if len(whole) == 1 and None not in whole:  # month-aligned periods of one length: that many months
        n = int(next(iter(whole)) or 1)
        return pd.Timestamp(end - pd.DateOffset(months=n)), f"{plural(n, 'month')}, one tuning period"
    if spec.period_rule is not None and not periods:
        n = spec.period_rule.months
        return pd.Timestamp(end - pd.DateOffset(months=n)), f"{plural(n, 'month')}, one tuning period"
    span = max((p.end - p.start for p in periods), default=pd.Timedelta(days=30))
    return pd.Timestamp(end - span), f"{_span_text(span)}, one tuning period"


# -- training and scoring -------------------------------------------------------------


def _device(name: str) -> Any:
    import torch

    if name not in ("auto", "cpu", "cuda"):
        raise InputError(f'--device must be auto, cpu or cuda, got "{name}"')
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is visible to this process")
    return torch.device("cuda:0")


def train_epochs(model: Any, params: Mapping[str, Any], x: Any, y: Any, epochs: int, seed: int) -> tuple[float, float]:
    """Train `model` in place for exactly `epochs` epochs on device tensors; (seconds, last mean loss).

    The same optimiser, batches and gradient clipping as a trial (:class:`hpt.train.Stepper`), with
    no validation part: the learning rate decays when the training loss plateaus, and the
    last epoch's weights are kept (nothing is selected on the hold-out).
    """
    import torch

    from hpt.train import DIVERGED_LOSS, Stepper

    torch.manual_seed(seed)
    step = Stepper(model, dict(params), x.device, seed)
    start = time.perf_counter()
    loss_value = float("nan")
    for epoch in range(1, epochs + 1):
        loss_value = step.epoch(x, y)
        if not math.isfinite(loss_value) or loss_value > DIVERGED_LOSS:
            raise HptError(f"training diverged: the loss reached {loss_value:.3g} in epoch {epoch} "
                           f"(lr={params['lr']:g}); the tuning rows of this config may have been lucky")
        step.plateau(loss_value)
    model.eval()
    return time.perf_counter() - start, loss_value


def _forecast(model: Any, x: Any) -> np.ndarray:
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), _EVAL_BATCH):
            out.append(model(x[i:i + _EVAL_BATCH]).float().cpu().numpy())
    return np.concatenate(out).astype(np.float64)


def _scores(forecast: np.ndarray, actual: np.ndarray, scale: float,
            quantiles: tuple[float, ...] | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """(data units, standardised) errors of `forecast`; of a quantile forecast ``(N, horizon, Q)``
    those of its median, with its pinball loss and coverage."""
    median = point(forecast, quantiles)
    units, standardised = baseline_errors(median, actual, 1.0), baseline_errors(median, actual, scale)
    if quantiles:
        units.update(quantile_scores(forecast, actual, quantiles))
        standardised.update(quantile_scores(forecast, actual, quantiles, scale))
    return units, standardised


# -- the run --------------------------------------------------------------------------


def _new_final_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_final(req: FinalRequest, say: Callable[[str], None] | None = None) -> FinalReport:
    """Train the chosen config on the newest data, score it on the hold-out, write it at the location.

    `say` hears one line per stage (default: the ``hpt`` logger).
    """
    import torch

    say = say or (lambda line: log.info("%s", line))
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
    device = _device(req.device)
    from hpt.model_io import model_payload
    from hpt.results import load_results, planned_periods, summarise
    from hpt.search import trial_seed

    sink = open_sink(req.location)
    frame_rows = load_results(req.location)
    spec, spec_source = recorded_spec(sink, req.spec_path)
    metric = spec.objective
    _require_holdout(spec, req.holdout, req.holdout_start)  # bad input is said before "no best config yet"
    planned = planned_periods(req.location, frame_rows)
    if req.spec_path and spec.period_rule is None:  # automatic periods are this month's, not the tuning's: the records'
        planned[spec.fidelity.name] = [p.label for p in spec.periods]
    summary = summarise(frame_rows, metric, compare=0, uri=sink.uri, planned=planned)
    start_model = None
    if req.from_model:
        from hpt.predict import open_model

        try:
            start_model = open_model(req.from_model)
        except InputError as e:
            raise InputError(f"--from-model: {e}") from None

    choice = _choose(req, frame_rows[~baseline_mask(frame_rows)], summary, spec, sink.uri, start_model)
    config_id, params, architecture, rows = choice.config_id, choice.params, choice.architecture, choice.rows
    epochs, epoch_values, tuned = choice.epochs, choice.epoch_values, choice.tuned
    lookback, horizon = int(params["lookback"]), int(params["horizon"])

    # the data, the hold-out and the training window
    frame = spec.data.read().frame
    if start_model is not None and tuple(start_model.columns) != tuple(frame.columns):
        raise InputError(f"--from-model: the model forecasts from columns {', '.join(start_model.columns)}; "
                         f"the spec's data has {', '.join(map(str, frame.columns))}")
    step = frame_step(frame)
    holdout = holdout_window(spec, frame, req.holdout, req.holdout_start)
    tuning_periods = _periods(frame_rows)
    clash = overlapping_period(tuning_periods, holdout)
    if clash is not None:
        raise InputError(f"tuning period {clash} overlaps the hold-out {holdout.period} ({holdout.how}): the hold-out "
                         "would not be unseen; choose a later --holdout-start or a shorter --holdout, or tune with "
                         "date_ranges.auto.holdout so that the periods keep it back")
    train_start, length = _train_start(req.months, spec, _periods(rows) or tuning_periods, holdout.start)
    clamped = train_start < frame.index[0]
    if clamped:
        train_start = pd.Timestamp(frame.index[0])
    window = Period(train_start, holdout.end)
    # the windows' validation part is the hold-out: every row after (start - 1s), the unit the index surely holds
    held = f"{int((frame.index[-1] - holdout.start) / pd.Timedelta(seconds=1)) + 1}s"
    try:
        w: Windows = make_windows(frame, window, lookback, horizon, held)
    except DataError as e:
        raise InputError(f"training window {Period(train_start, holdout.start)} and hold-out {holdout.period}: "
                         f"{e.message}") from None
    assert w.val_ends is not None
    if len(w.val_ends) and pd.Timestamp(w.val_ends[0]) + step < holdout.start:
        raise HptError(f"the hold-out windows start before {holdout.start}: data with steps under a second is not supported")
    say(f"config {config_id} ({architecture}): {format_params(tuned) or 'no tuned parameters'}; {choice.chosen}")
    if clamped:
        say(f"the data starts at {train_start}: the training window starts there, shorter than {length}")
    train_rows = int(((frame.index >= train_start) & (frame.index < holdout.start)).sum())
    held_rows = int(((frame.index >= holdout.start) & (frame.index < holdout.end)).sum())
    say(f"data: {Path(spec.data.path).name}, {plural(len(frame), 'row')} every {step_text(step)}; hold-out "
        f"{holdout.period} ({holdout.how}): {plural(held_rows, 'row')}, {plural(len(w.x_val), 'window')} of horizon "
        f"{horizon}; no tuning period reaches it")
    few = _few_windows(len(w.x_val))
    if few:
        log.warning("%s", few)

    # training
    # as a run's workers: one torch thread on the CPU (a second thread collapses when another torch job shares
    # the cores: this lstm's final training took 0.6 s with 1 thread, 23 s with 2), two beside a GPU
    threads = req.threads or (1 if device.type == "cpu" else 2)
    torch.set_num_threads(threads)
    where = f"{device.type} ({plural(threads, 'torch thread')})" if device.type == "cpu" else \
        f"{device} ({torch.cuda.get_device_name(device)})"
    from_epochs = f"median best_epoch of {plural(len(epoch_values), 'tuning trial')}: {epoch_values}" if epoch_values \
        else "the epochs the model was trained for (no tuning rows of its config here)"
    say(f"training on {Period(train_start, holdout.start)} ({length}): {plural(train_rows, 'row')}, "
        f"{plural(len(w.x_train), 'window')}; {plural(epochs, 'epoch')} ({from_epochs}); on {where}")
    mean, std = float(w.mean[0]), float(w.std[0])
    actual = w.y_val.astype(np.float64) * std + mean
    x_train, y_train, x_val = (torch.from_numpy(a).to(device) for a in (w.x_train, w.y_train, w.x_val))
    final_id = _new_final_id()
    from hpt.architectures import get_architecture

    arch = get_architecture(architecture)
    seed = trial_seed(int(params.get("seed", 0)), f"final:{Period(train_start, holdout.start).label}")
    info = {"kind": "final", "final_id": final_id, "config_id": config_id,
            "train": [Period(train_start, holdout.start).start_text, Period(train_start, holdout.start).end_text],
            "holdout": [holdout.period.start_text, holdout.period.end_text], "epochs": epochs,
            "from_model": req.from_model or ""}
    final_params = {**params, "epochs": epochs}
    modes = (["fine-tune", "scratch"] if req.compare else ["fine-tune"]) if start_model is not None else ["scratch"]
    trained: list[Trained] = []
    quantiles = quantiles_of(params)
    for mode in modes:
        torch.manual_seed(seed)
        model = arch.build(len(w.columns), lookback, horizon, dict(params)).to(device)
        if mode == "fine-tune":
            assert start_model is not None
            model.load_state_dict(start_model.module.state_dict())
        seconds, loss = train_epochs(model, params, x_train, y_train, epochs, seed)
        forecast = _forecast(model, x_val) * std + mean
        metrics, standardised = _scores(forecast, actual, std, quantiles)
        say(f"{mode}: trained in {format_duration(seconds)} (last epoch's loss {loss:.4g}); hold-out "
            f"mse={format_value(metrics['mse'])} ({format_value(standardised['mse'])} standardised)")
        key = f"final/{final_id}/{'model.pt' if mode == modes[0] else 'scratch.pt'}"
        payload = model_payload(
            architecture=architecture, params=final_params, n_features=len(w.columns), lookback=lookback,
            horizon=horizon, columns=w.columns, mean=w.mean, std=w.std, state_dict=model.state_dict(),
            trial_id=final_id, period=(Period(train_start, holdout.start).start_text, holdout.period.start_text),
            metrics={f"holdout_{k}": v for k, v in standardised.items()}, seed=seed,
            time_column=str(frame.index.name) if frame.index.name is not None else spec.data.time_column,
            step=step_text(step), info={**info, "mode": mode})
        trained.append(Trained(mode, key, payload, seconds, loss, metrics, standardised))

    # baselines on the same windows
    season = season_length(step, spec.data.season)
    forecasts = naive_forecasts(frame.iloc[:, 0], w.val_ends, horizon, step, season)
    baselines: dict[str, dict[str, Any]] = {}
    if quantiles:
        forecasts = quantile_forecasts(forecasts, frame, Period(train_start, holdout.start), horizon, season, quantiles)
    for name in BASELINES:
        metrics, standardised = _scores(forecasts[name], actual, std, quantiles)
        baselines[name] = {"metrics": metrics, "standardised": standardised}
    baselines["naive-seasonal"]["season"] = season
    say(f"baselines on the same {plural(len(w.x_val), 'window')}: " + ", ".join(
        f"{n} mse={format_value(b['metrics']['mse'])}" for n, b in baselines.items()))

    # the report and the files
    uris = {"report": sink.url(f"final/{final_id}/report.json"), "index": sink.url(INDEX_CSV)}
    for t in trained:
        uris["model" if t.key.endswith("/model.pt") else "scratch"] = sink.url(t.key)
    train_period = Period(train_start, holdout.start)
    better = min(BASELINES, key=lambda n: baselines[n]["metrics"]["mse"])
    document: dict[str, Any] = {
        "final_id": final_id,
        "created_at": _utcnow(),
        "location": sink.uri,
        "spec": {"name": spec.name, "source": spec_source},
        "config_id": config_id,
        "chosen": choice.chosen,
        "metric": metric,
        "architecture": architecture,
        "params": tuned,
        "all_params": final_params,
        "data": {"path": spec.data.path, "time_column": spec.data.time_column, "columns": list(w.columns),
                 "step": step_text(step)},
        "train": {"start": train_period.start_text, "end": train_period.end_text, "length": length,
                  "rows": train_rows, "windows": int(len(w.x_train)), "target_mean": mean, "target_std": std},
        "epochs": epochs,
        "epochs_from": from_epochs,
        "best_epochs": epoch_values,
        "holdout": {"start": holdout.period.start_text, "end": holdout.period.end_text, "how": holdout.how,
                    "rows": held_rows, "windows": int(len(w.x_val)), "horizon": horizon,
                    "tuning_periods": [p.label for p in tuning_periods]},
        "from_model": req.from_model,
        "verdict": {"windows": int(len(w.x_val)), "min_windows": MIN_VERDICT_WINDOWS, "too_few": bool(few),
                    "note": few},
        "models": [{"mode": t.mode, "model_uri": sink.url(t.key), "train_time_s": round(t.train_time_s, 3),
                    "train_loss": t.train_loss, "metrics": t.metrics, "standardised": t.standardised,
                    "vs_best_baseline": _change(t.metrics["mse"], baselines[better]["metrics"]["mse"])}
                   for t in trained],
        "baselines": baselines,
        "best_baseline": better,
        "device": where,
        "hpt_version": __version__,
        "host": socket.gethostname(),
        "uris": uris,
    }
    for t in trained:
        sink.write(t.key, t.payload)
    sink.write(f"final/{final_id}/report.json", json.dumps(document, indent=1, default=str).encode())
    merge_index(sink, [_index_row(document, m) for m in document["models"]])
    say(f"wrote {uris['model']}, {uris['report']}; added to {uris['index']}")
    return FinalReport(final_id, document, trained, uris)


def _whole_months(p: Period) -> int | None:
    """How many months `p` spans when it runs from one month's start to another's, else None."""
    if p.start != p.start.normalize() or p.start.day != 1 or p.end != p.end.normalize() or p.end.day != 1:
        return None
    return (p.end.year - p.start.year) * 12 + p.end.month - p.start.month


def _span_text(span: pd.Timedelta) -> str:
    days = span / pd.Timedelta(days=1)
    return plural(int(days), "day") if days == int(days) else str(span)


def _few_windows(windows: int) -> str | None:
    """The warning for a hold-out with too few windows for its verdict, else None."""
    if windows >= MIN_VERDICT_WINDOWS:
        return None
    return (f"the hold-out has {plural(windows, 'window')}: too few for a verdict against the baselines (under "
            f"{MIN_VERDICT_WINDOWS}, one good or bad stretch decides it); give a longer --holdout or an earlier "
            "--holdout-start")


def _change(value: float, reference: float) -> float | None:
    """`value` relative to `reference`: -0.38 is 38% lower."""
    return (value - reference) / reference if reference > 0 else None


# -- final/index.csv ------------------------------------------------------------------


def _index_row(doc: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    b = doc["baselines"]
    return {
        "final_id": doc["final_id"], "mode": model["mode"], "created_at": doc["created_at"],
        "config_id": doc["config_id"], "architecture": doc["architecture"],
        "params": json.dumps(doc["params"], sort_keys=True), "train_start": doc["train"]["start"],
        "train_end": doc["train"]["end"], "epochs": doc["epochs"], "holdout_start": doc["holdout"]["start"],
        "holdout_end": doc["holdout"]["end"], "holdout_windows": doc["holdout"]["windows"],
        **{k: model["metrics"][k] for k in ("mse", "mae", "rmse", "pinball", "coverage") if k in model["metrics"]},
        **{f"std_{k}": model["standardised"][k] for k in ("mse", "mae", "rmse")},
        "naive_last_mse": b["naive-last"]["metrics"]["mse"], "naive_seasonal_mse": b["naive-seasonal"]["metrics"]["mse"],
        "vs_best_baseline": model["vs_best_baseline"], "from_model": doc["from_model"] or "",
        "model_uri": model["model_uri"], "report_uri": doc["uris"]["report"], "device": doc["device"],
    }


def _parse_index(data: bytes | None) -> list[dict[str, str]]:
    if not data:
        return []
    try:
        return [dict(r) for r in csv.DictReader(io.StringIO(data.decode("utf-8")))]
    except (UnicodeDecodeError, csv.Error):
        return []


def _index_csv(rows: list[dict[str, Any]]) -> bytes:
    columns = list(INDEX_COLUMNS) + sorted({k for r in rows for k in r} - set(INDEX_COLUMNS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return buf.getvalue().encode()


def merge_index(sink: Sink, rows: list[dict[str, Any]]) -> None:
    """Add `rows` to final/index.csv with a conditional write: on a conflict (another final
    wrote it meanwhile) read it again, merge and retry, so no row is lost."""
    mine = {(str(r["final_id"]), str(r["mode"])): r for r in rows}
    for attempt in range(_INDEX_ATTEMPTS):
        got = sink.read_versioned(INDEX_CSV)
        current = _parse_index(got[0]) if got else []
        if got and got[0].strip() and not current:
            raise HptError(f"{sink.url(INDEX_CSV)} is not a CSV file hpt can merge into; move it away and run again "
                           "(the model and report.json are written)")
        kept = [r for r in current if (r.get("final_id", ""), r.get("mode", "")) not in mine]
        if sink.write_if(INDEX_CSV, _index_csv(kept + list(mine.values())), got[1] if got else None):
            return
        time.sleep(random.uniform(0, min(2.0, 0.02 * 2 ** attempt)))
    raise SinkUnavailable(f"{sink.url(INDEX_CSV)} kept changing during {_INDEX_ATTEMPTS} attempts to update it")


# -- the printed report ---------------------------------------------------------------


_MODE_TEXT = {"fine-tune": "fine-tuned", "scratch": "from scratch"}


def _pct(change: float | None) -> str:
    return "n/a" if change is None else f"{change * 100:+.0f}%"


def report_lines(doc: Mapping[str, Any]) -> list[str]:
    """The short report ``hpt final`` prints."""
    tr, ho = doc["train"], doc["holdout"]
    lines = [
        f"final {doc['final_id']}: config {doc['config_id']} ({doc['architecture']}) "
        f"{format_params(doc['params']) or '(no tuned parameters)'}",
        f"  chosen:   {doc['chosen']}",
        f"  trained:  {tr['start']}..{tr['end']} ({tr['length']}; {plural(tr['rows'], 'row')}, "
        f"{plural(tr['windows'], 'window')}) for {plural(doc['epochs'], 'epoch')} ({doc['epochs_from']}) on {doc['device']}"
        + (f", starting from {doc['from_model']}" if doc.get("from_model") else ""),
        f"  hold-out: {ho['start']}..{ho['end']} ({ho['how']}; {plural(ho['rows'], 'row')}, "
        f"{plural(ho['windows'], 'window')} of horizon {ho['horizon']}), never used in tuning or training",
        "",
        f"  {'on the hold-out':<22}{'mse':>12}{'mae':>12}{'rmse':>12}   {'standardised: mse':>17}{'mae':>9}{'rmse':>9}",
    ]

    quantile = "pinball" in doc["models"][0]["metrics"]
    if quantile:  # a quantile model: the point metrics are its median's
        lines[-1] += f"{'pinball':>12}{'coverage':>10}"

    def row(name: str, m: Mapping[str, float], s: Mapping[str, float], note: str = "") -> str:
        extra = f"{m['pinball']:>12.5g}{m['coverage']:>10.1%}" if quantile else ""
        return (f"  {name:<22}{m['mse']:>12.5g}{m['mae']:>12.5g}{m['rmse']:>12.5g}   "
                f"{s['mse']:>17.4f}{s['mae']:>9.4f}{s['rmse']:>9.4f}{extra}{note}")

    for model in doc["models"]:
        label = "model" if len(doc["models"]) == 1 else f"model ({_MODE_TEXT.get(model['mode'], model['mode'])})"
        lines.append(row(label, model["metrics"], model["standardised"]))
    for name, b in doc["baselines"].items():
        label = f"{name} ({b['season']})" if "season" in b else name
        lines.append(row(label, b["metrics"], b["standardised"]))
    best = doc["best_baseline"]
    lines.append("")
    basis = f" on {plural(ho['windows'], 'hold-out window')}"
    for model in doc["models"]:
        change = model["vs_best_baseline"]
        verdict = "beats" if change is not None and change < 0 else "does NOT beat"
        who = "the model" if len(doc["models"]) == 1 else f"the model {_MODE_TEXT.get(model['mode'], model['mode'])}"
        lines.append(f"  {who} {verdict} the better baseline ({best}): mse {_pct(change)}{basis}")
    note = doc.get("verdict", {}).get("note")
    if note:
        lines.append(f"  warning:  {note}")
    uris = doc["uris"]
    lines.append(f"  written:  {uris['model']}" + (f", {uris['scratch']}" if "scratch" in uris else "")
                 + f", {uris['report']}")
    lines.append(f"  index:    {uris['index']}")
    lines.append(f"  use it:   hpt predict {uris['model']} --data FILE --last")
    return lines
