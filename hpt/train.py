"""Train one trial on one device -> TrialResult. Torch only: no storage, no scheduling.

The windows of a period go to the device once; batches are index slices of those tensors
(no DataLoader, no per-batch host-to-device copy). Early stopping restores the best
weights; the learning rate decays on plateaus; a NaN or infinite loss ends the trial as
``diverged``, and so does a mean training loss above DIVERGED_LOSS. After every epoch an
optional callback hears the epoch's metrics and may stop the trial (a scheduler pruning
it): the result is then ``pruned``, with the metrics and curve so far and no model.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from hpt.architectures import get_architecture
from hpt.architectures.heads import MixtureNLL, fit_scalers
from hpt.data import TIME_READING
from hpt.errors import one_line
from hpt.future import known_ahead
from hpt.hparams import quantiles_of
from hpt.inference import batches, forecast
from hpt.model_io import model_payload
from hpt.panel import mase
from hpt.quantiles import coverage, pinball, point
from hpt.static import ATTR as SERIES_FEATURES
from hpt.trial import Status, Trial, TrialResult, curve_metrics, monitor_of, utcnow
from hpt.windows import PanelWindows, Windows, frame_step, make_windows, step_text

__all__ = ["INFER_WINDOWS", "Diverged", "EpochCallback", "Stepper", "TrainContext", "fit", "fit_fixed",
           "infer_ms", "loss_function"]

INFER_WINDOWS = 1000
"""infer_ms is the time to forecast this many windows in one batch."""
# Targets are standardised, so predicting their mean scores about 1: a mean training loss
# a thousand times worse means the optimiser has blown up (Adam at lr=1e3 stays finite).
DIVERGED_LOSS = 1e3
KEPT_CHECKPOINTS = 2
"""Checkpoints a trial holds while it trains: the stop it may get is decided on an epoch or two before it arrives."""


class Diverged(Exception):
    pass


EpochCallback = Callable[[int, dict[str, float]], "str | None"]
"""Called after each epoch with (epoch, metrics); a returned text stops the trial and says why."""


@dataclass
class Fit:
    """What :func:`fit` returns: the best weights' metrics and the learning curve."""

    metrics: dict[str, float]
    curve: list[dict[str, float]]
    stopped: str | None = None  # why the epoch callback stopped training early
    checkpoints: dict[int, bytes] = field(default_factory=dict)  # a stopped run's training state at its checkpoint
    # epochs (epoch -> torch.save bytes): `resume` for fit to go on from


def _device_name(device: torch.device, slot: str = "") -> str:
    """What the rows say about where a trial ran: the slot and, on a GPU, its model."""
    if device.type == "cuda":
        physical = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0] or str(device.index or 0)
        return f"{slot or 'gpu' + physical} ({torch.cuda.get_device_name(device)})"
    return slot or str(device)


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision on CUDA (bf16 or fp16); the CPU always trains in fp32."""
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


@contextlib.contextmanager
def _gpu_memory(device: torch.device, metrics: dict[str, float]) -> Iterator[None]:
    """Record the trial's peak GPU memory (allocated and reserved by the caching allocator)."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        metrics["gpu_mem_peak_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        metrics["gpu_mem_reserved_mb"] = round(torch.cuda.max_memory_reserved(device) / 2**20, 1)
        metrics["gpu_mem_total_mb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**20, 1)


class PinballLoss(nn.Module):
    """The mean pinball loss over every window, step and quantile."""

    def __init__(self, quantiles: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("quantiles", torch.tensor(quantiles, dtype=torch.float32))

    def forward(self, forecast: torch.Tensor, actual: torch.Tensor) -> torch.Tensor:
        return pinball(forecast, actual, self.quantiles.to(forecast.device)).mean()  # type: ignore[no-any-return]


def loss_function(params: dict[str, Any]) -> nn.Module:
    """``training.loss`` (mse when the params predate it), on standardised targets."""
    loss = params.get("loss", "mse")
    if loss == "mdn":
        return MixtureNLL()
    quantiles = quantiles_of(params)
    if quantiles:
        return PinballLoss(quantiles)
    if loss == "mae":
        return nn.L1Loss()
    if loss == "huber":
        return nn.HuberLoss(delta=float(params.get("huber_delta", 1.0)))
    return nn.MSELoss()


class Stepper:
    """A trial's optimiser and batches: the same for tuning (:func:`fit`) and a final model.

    The loss is ``training.loss`` (:func:`loss_function`); Adam, AdamW or SGD (momentum 0.9)
    with weight decay, a seeded batch order, optional gradient clipping and mixed precision
    on CUDA; the learning rate decays on plateaus of whatever :meth:`plateau` is given, or with
    ``training.lr_schedule`` "cosine" along a half cosine to 0 over ``epochs`` full passes, batch by batch.
    """

    def __init__(self, model: nn.Module, params: dict[str, Any], device: torch.device, seed: int) -> None:
        self.model = model
        self.device = device
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(seed)
        lr, wd = float(params["lr"]), float(params["weight_decay"])
        self.opt: torch.optim.Optimizer
        if params["optimizer"] == "sgd":
            self.opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
        elif params["optimizer"] == "adamw":
            self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
        else:
            self.opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
        decay = float(params["lr_decay"])
        self.cosine = params.get("lr_schedule", "plateau") == "cosine"
        self.epochs = int(params["epochs"])
        self.sched = (torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, factor=decay,
                                                                 patience=int(params["lr_patience"]))
                      if decay < 1 and not self.cosine else None)
        self.per_batch: torch.optim.lr_scheduler.LRScheduler | None = None  # the cosine, set at the first epoch
        self.clip = params.get("grad_clip")
        self.batch = int(params["batch_size"])
        self.amp = str(params.get("amp", "off"))
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == "fp16" and device.type == "cuda" else None
        self.loss_fn = loss_function(params)

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def epoch(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """One pass over the windows in a seeded random order; the mean training loss."""
        model, opt, n = self.model, self.opt, len(x)
        if self.cosine and self.per_batch is None:  # the batches of every epoch: known once the windows are
            self.per_batch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, self.epochs * math.ceil(n / self.batch))
        model.train()
        order = torch.randperm(n, device=self.device, generator=self.gen)
        total = torch.zeros((), device=self.device)
        for i in range(0, n, self.batch):
            idx = order[i:i + self.batch]
            opt.zero_grad(set_to_none=True)
            with _autocast(self.device, self.amp):
                loss = self.loss_fn(model(x[idx]).float(), y[idx])
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(opt)
            else:
                loss.backward()
            if self.clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), float(self.clip))
            if self.scaler is not None:
                self.scaler.step(opt)
                self.scaler.update()
            else:
                opt.step()
            if self.per_batch is not None:
                self.per_batch.step()
            total += loss.detach() * len(idx)
        return float(total) / n

    def plateau(self, value: float) -> None:
        """The epoch's monitored loss: the learning rate decays when it stops improving."""
        if self.sched is not None:
            self.sched.step(value)

    def state(self) -> dict[str, Any]:
        """What the next epoch depends on: the optimiser's, schedules', loss scaler's and batch order's state."""
        return {"opt": self.opt.state_dict(), "gen": self.gen.get_state(),
                "sched": self.sched.state_dict() if self.sched is not None else None,
                "per_batch": self.per_batch.state_dict() if self.per_batch is not None else None,
                "per_batch_steps": self.per_batch.T_max if isinstance(self.per_batch,
                                                                      torch.optim.lr_scheduler.CosineAnnealingLR) else 0,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None}

    def load(self, state: dict[str, Any]) -> None:
        """Go on from :meth:`state`."""
        if state["per_batch"] is not None:  # made before the optimiser's state is loaded: making it resets the lr
            self.per_batch = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, int(state["per_batch_steps"]))
        self.opt.load_state_dict(state["opt"])
        if self.per_batch is not None:
            self.per_batch.load_state_dict(state["per_batch"])
        if self.sched is not None and state["sched"] is not None:
            self.sched.load_state_dict(state["sched"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.gen.set_state(state["gen"])


def fit(model: nn.Module, params: dict[str, Any], data: tuple[torch.Tensor, ...], device: torch.device,
        monitor: str = "val_mse", on_epoch: EpochCallback | None = None, seed: int | None = None,
        panel: PanelWindows | None = None, checkpoint_at: Collection[int] = (), resume: bytes | None = None) -> Fit:
    """Train `model` in place on device-resident tensors (x_train, y_train, x_val, y_val).

    `seed` (default: ``params["seed"]``) seeds dropout and the batch order; a trial passes
    its own seed, derived per period (:func:`hpt.search.trial_seed`). The windows of many
    series (`panel`) are also scored by ``val_mase``.

    At the epochs in `checkpoint_at` the whole training state is kept (weights, optimiser,
    schedules, random generators, the best epoch so far, the curve, patience and time; the
    last KEPT_CHECKPOINTS of them, in host memory); a run the callback stops returns them
    (:attr:`Fit.checkpoints`). Given one as `resume`, training goes on from there and ends as
    the same run would have, had nothing stopped it: the same curve, weights and metrics
    (bitwise on a CPU; a GPU's kernels may differ in the last digits). Its time counts the
    time before the checkpoint too.
    """
    x_train, y_train, x_val, y_val = data
    seed = int(params["seed"]) if seed is None else seed
    torch.manual_seed(seed)
    step = Stepper(model, params, device, seed)
    patience = int(params["patience"])
    amp = step.amp

    best: dict[str, float] = {}
    best_state: dict[str, torch.Tensor] = {}
    curve: list[dict[str, float]] = []
    since_best = 0
    first, before = 1, 0.0
    if resume is not None:
        # on the host: the random generators' states must stay CPU tensors; weights and optimiser state are copied
        # to the device as they are loaded, and nothing of the checkpoint stays on the device after
        state = torch.load(io.BytesIO(resume), map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        step.load(state["stepper"])
        best, curve, since_best = state["best"], state["curve"], state["since_best"]
        best_state = {k: v.to(device) for k, v in state["best_state"].items()}
        first, before = int(state["epoch"]) + 1, float(state["time_s"])
        torch.set_rng_state(state["rng"])
        if device.type == "cuda" and state["cuda_rng"] is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        del state
    checkpoints: dict[int, bytes] = {}
    stopped: str | None = None
    start = time.perf_counter() - before
    ended = bool(patience and since_best >= patience)  # a checkpoint at the epoch its patience ran out
    for epoch in range(first, 0 if ended else int(params["epochs"]) + 1):
        train_loss = _checked(step.epoch(x_train, y_train), epoch, params)
        with _autocast(device, amp):
            scores = evaluate(model, x_val, y_val, quantiles_of(params), panel)
        if not all(math.isfinite(v) for v in scores.values()):
            raise Diverged(f"validation loss became {scores['val_mse']} in epoch {epoch}")
        current = {"epoch": epoch, "train_loss": train_loss, **scores,
                   "lr": step.lr, "time_s": round(time.perf_counter() - start, 4)}
        curve.append(current)
        if not best or current[monitor] < best[monitor]:
            best = current
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            since_best = 0
        else:
            since_best += 1
        step.plateau(current[monitor])
        if epoch in checkpoint_at:
            buf = io.BytesIO()
            torch.save({"epoch": epoch, "time_s": current["time_s"], "model": model.state_dict(),
                        "stepper": step.state(), "best": best, "best_state": best_state, "curve": curve,
                        "since_best": since_best, "rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}, buf)
            checkpoints[epoch] = buf.getvalue()
            if len(checkpoints) > KEPT_CHECKPOINTS:  # a stop comes an epoch or two after the epoch it is decided on
                del checkpoints[min(checkpoints)]
        if on_epoch is not None:
            stopped = on_epoch(epoch, current)
            if stopped:
                break
        if patience and since_best >= patience:
            break
    train_time = time.perf_counter() - start
    model.load_state_dict(best_state)
    metrics = {**curve_metrics(curve, monitor), "train_time_s": round(train_time, 4),
               "n_params": sum(p.numel() for p in model.parameters())}
    return Fit(metrics, curve, stopped, checkpoints if stopped else {})


def _checked(train_loss: float, epoch: int, params: dict[str, Any]) -> float:
    """An epoch's training loss; Diverged when it is not finite or past DIVERGED_LOSS."""
    if not math.isfinite(train_loss) or train_loss > DIVERGED_LOSS:
        raise Diverged(f"training loss reached {train_loss:.3g} in epoch {epoch} (lr={params['lr']:g})")
    return train_loss


def fit_fixed(model: nn.Module, params: dict[str, Any], x: torch.Tensor, y: torch.Tensor, device: torch.device,
              seed: int, on_epoch: EpochCallback | None = None) -> Fit:
    """Train `model` in place for exactly ``params["epochs"]`` epochs on device tensors, with nothing
    held out: the same optimiser and batches as :func:`fit` (:class:`Stepper`), the learning rate
    decaying when the training loss plateaus, and the last epoch's weights kept (nothing is selected)."""
    torch.manual_seed(seed)
    step = Stepper(model, params, device, seed)
    curve: list[dict[str, float]] = []
    stopped: str | None = None
    start = time.perf_counter()
    for epoch in range(1, int(params["epochs"]) + 1):
        train_loss = _checked(step.epoch(x, y), epoch, params)
        step.plateau(train_loss)
        curve.append({"epoch": epoch, "train_loss": train_loss, "lr": step.lr,
                      "time_s": round(time.perf_counter() - start, 4)})
        if on_epoch is not None:
            stopped = on_epoch(epoch, dict(curve[-1]))
            if stopped:
                break
    model.eval()
    metrics = {"train_loss": curve[-1]["train_loss"] if curve else math.nan, "epochs": len(curve),
               "train_time_s": round(time.perf_counter() - start, 4),
               "n_params": sum(p.numel() for p in model.parameters())}
    return Fit(metrics, curve, stopped)


def holdout_scores(model: nn.Module, windows: Windows, x: torch.Tensor, params: dict[str, Any]) -> dict[str, float]:
    """A refit trial's scores of its split, the windows' validation part: ``holdout_*`` in the data's
    units and ``holdout_std_*`` standardised (as :func:`hpt.baselines.forecast_scores` scores the baselines)."""
    from hpt.baselines import forecast_scores, panel_scores

    if windows.panel is not None:  # each series in its own units; the standardised errors pooled, and MASE
        units, standardised = panel_scores(forecast(model, x), windows.y_val, windows.panel, quantiles_of(params))
        return {**{f"holdout_{k}": v for k, v in units.items()},
                **{f"holdout_std_{k}": v for k, v in standardised.items()}}
    mean, std = float(windows.mean[0]), float(windows.std[0])
    actual = windows.y_val.astype(np.float64) * std + mean
    units, standardised = forecast_scores(forecast(model, x) * std + mean, actual, std, quantiles_of(params))
    return {**{f"holdout_{k}": v for k, v in units.items()}, **{f"holdout_std_{k}": v for k, v in standardised.items()}}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             quantiles: tuple[float, ...] | None = None, panel: PanelWindows | None = None) -> dict[str, float]:
    """``val_mse`` and ``val_mae`` over all windows (scaled units), of the median for a quantile
    model, which also gets ``val_pinball`` (mean pinball loss) and ``val_coverage`` (the share of
    targets inside its outer quantiles). The windows of many series (`panel`) also get ``val_mase``
    (:func:`hpt.panel.mase`): their scaled units are each series' own."""
    sums = torch.zeros(4, device=x.device, dtype=torch.float64)
    q = None if quantiles is None else torch.tensor(quantiles, device=x.device, dtype=torch.float64)
    per_window = torch.zeros(len(x), device=x.device, dtype=torch.float64) if panel is not None else None
    # series scaled by their medians and IQRs (training.scaler "robust"): errors in each one's standardised units
    unit = None if panel is None or panel.unit is None else \
        torch.as_tensor(panel.unit[panel.val_series], device=x.device, dtype=torch.float64)
    for i, batch in batches(model, x):
        out, actual = batch.double(), y[i:i + len(batch)].double()
        err = point(out, quantiles) - actual
        if per_window is not None:
            per_window[i:i + len(batch)] = err.abs().mean(dim=-1)  # MASE: in the units its scales are in
        scale = None if unit is None else unit[i:i + len(batch), None]
        if scale is not None:
            err = err * scale
        sums[0] += err.pow(2).sum()
        sums[1] += err.abs().sum()
        if q is not None:
            loss = pinball(out, actual, q).mean(dim=-1)
            sums[2] += (loss if scale is None else loss * scale).sum()
            sums[3] += coverage(out, actual).sum()
    mse, mae, pin, cover = (float(v) / y.numel() for v in sums)
    scores = {"val_mse": mse, "val_mae": mae}
    if q is not None:
        scores.update(val_pinball=pin, val_coverage=cover)
    if panel is not None and per_window is not None:
        value = mase(per_window.cpu().numpy(), panel.val_series, panel.naive_mae)
        if math.isfinite(value):  # no series with a seasonal-naive error to scale by: no val_mase
            scores["val_mase"] = value
    return scores


@torch.no_grad()
def infer_ms(model: nn.Module, x: torch.Tensor, amp: str = "off", repeats: int = 2) -> float:
    """Milliseconds `model` takes to forecast INFER_WINDOWS windows in one batch on their device.

    The windows are `x` repeated up to INFER_WINDOWS. A pass over a few windows first (lazy
    initialisation, cuDNN's choice of kernels), then the fastest of `repeats` timed passes
    (the least disturbed by other work on the machine); on CUDA the clock is read after a
    synchronize, so the figure is the work done, not the time to queue it.
    """
    model.eval()
    batch = x[torch.arange(INFER_WINDOWS, device=x.device) % len(x)]
    cuda = x.device.type == "cuda"
    best = math.inf
    with _autocast(x.device, amp):
        model(batch[:8])
        for _ in range(repeats):
            if cuda:
                torch.cuda.synchronize(x.device)
            start = time.perf_counter()
            model(batch)
            if cuda:
                torch.cuda.synchronize(x.device)
            best = min(best, time.perf_counter() - start)
    return round(best * 1000, 3)


class TrainContext:
    """Runs trials on one device against one dataset, caching each period's windows there."""

    def __init__(self, frame: pd.DataFrame, device: str | torch.device = "cpu", objective: str = "val_mse",
                 cache_size: int = 4, slot: str = "") -> None:
        self.frame = frame
        self.device = torch.device(device)
        self.label = _device_name(self.device, slot)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed window shapes: let cuDNN pick its fastest kernels
        self.monitor = monitor_of(objective)
        self._cache: OrderedDict[tuple[Any, ...], tuple[Windows, tuple[torch.Tensor, ...]]] = OrderedDict()
        self._cache_size = cache_size

    def windows(self, trial: Trial) -> tuple[Windows, tuple[torch.Tensor, ...]]:
        p = trial.params
        validation = trial.refit.split if trial.refit is not None else p["validation"]
        scaler = str(p.get("scaler", "standard"))  # of many series, "robust" scales each by its medians and IQRs
        key = (trial.period, p["lookback"], p["horizon"], validation, scaler == "robust")
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        w = make_windows(self.frame, trial.period, int(p["lookback"]), int(p["horizon"]), validation, scaler)
        tensors = tuple(torch.from_numpy(a).to(self.device) for a in (w.x_train, w.y_train, w.x_val, w.y_val))
        self._cache[key] = (w, tensors)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return w, tensors

    def run(self, trial: Trial, on_epoch: EpochCallback | None = None) -> TrialResult:
        """Train one trial; a failure or divergence is recorded in the result, never raised.

        `on_epoch` hears every epoch and may stop the trial: it is then ``pruned``.
        """
        started = utcnow()
        device = self.label
        memory: dict[str, float] = {}
        try:
            with _gpu_memory(self.device, memory):
                windows, tensors = self.windows(trial)
                if trial.fidelity.share < 1:
                    tensors = recent_share(tensors, trial.fidelity.share)
                model = self._build(trial, windows)
                if trial.refit is None:
                    result = fit(model, dict(trial.params), tensors, self.device, self.monitor, on_epoch,
                                 seed=trial.seed, panel=windows.panel, checkpoint_at=trial.checkpoint_at,
                                 resume=trial.resume)
                else:
                    result = fit_fixed(model, dict(trial.params), tensors[0], tensors[1], self.device, trial.seed,
                                       on_epoch)
            result.metrics.update(memory)
            if not result.stopped:  # after the memory peak is read: forecasting 1,000 windows is not training
                result.metrics["infer_ms"] = infer_ms(model, tensors[2], str(trial.params.get("amp", "off")))
                if trial.refit is not None:
                    result.metrics.update(holdout_scores(model, windows, tensors[2], dict(trial.params)))
        except torch.cuda.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            first = str(e).split(".")[0]
            return TrialResult(trial, Status.FAILED, started_at=started, finished_at=utcnow(), device=device,
                               error=f"CUDA out of memory on {device} with batch_size {trial.params['batch_size']}: "
                                     f"{first}; lower batch_size or --trials-per-gpu")
        except Diverged as e:
            return TrialResult(trial, Status.DIVERGED, error=str(e), started_at=started, finished_at=utcnow(), device=device)
        except Exception as e:
            return TrialResult(trial, Status.FAILED, error=one_line(e), started_at=started, finished_at=utcnow(), device=device)
        if result.stopped:
            return TrialResult(trial, Status.PRUNED, metrics=result.metrics, error=result.stopped, started_at=started,
                               finished_at=utcnow(), device=device, curve=_curve_csv(result.curve),
                               checkpoints=result.checkpoints)
        return TrialResult(trial, Status.OK, metrics=result.metrics, started_at=started, finished_at=utcnow(),
                           device=device, model=self._payload(trial, windows, model, result.metrics),
                           curve=_curve_csv(result.curve))

    def _build(self, trial: Trial, windows: Windows) -> nn.Module:
        """The trial's model on the device, seeded, its scalers fitted; a refit's starts from its weights when it has them."""
        torch.manual_seed(trial.seed)
        model = get_architecture(trial.architecture).build(
            len(windows.columns), int(trial.params["lookback"]), int(trial.params["horizon"]), dict(trial.params),
            windows.future_rows)
        # a robust scaler learns from the train part's rows, standardised; a fine-tune's start weights replace it
        fit_scalers(model, windows.train_values)
        model = model.to(self.device)
        if trial.refit is not None and trial.refit.start_from is not None:
            state = torch.load(io.BytesIO(trial.refit.start_from), map_location=self.device, weights_only=True)
            model.load_state_dict(state)
        return model

    def _payload(self, trial: Trial, windows: Windows, model: nn.Module, metrics: dict[str, float]) -> bytes:
        """The model file: a refit's says what its refit asks (its id, training span, info) and its
        standardised hold-out scores."""
        refit = trial.refit
        period = (trial.period.start_text, trial.period.end_text)
        if refit is not None:
            metrics = {k.replace("holdout_std_", "holdout_"): v for k, v in metrics.items()
                       if k.startswith("holdout_std_")}
        return model_payload(
            architecture=trial.architecture, params=dict(trial.params), n_features=len(windows.columns),
            lookback=int(trial.params["lookback"]), horizon=int(trial.params["horizon"]),
            columns=windows.columns, mean=windows.mean, std=windows.std, state_dict=model.state_dict(),
            trial_id=(refit.model_id if refit is not None and refit.model_id else trial.trial_id),
            period=(refit.model_period or period) if refit is not None else period,
            metrics=metrics, seed=trial.seed, time_column=self.frame.index.names[-1],
            step=step_text(frame_step(self.frame)), info=dict(refit.info) if refit is not None else None,
            known_ahead=known_ahead(self.frame),
            series=self.frame.index.names[0] if windows.panel is not None else None,
            series_scaling=(windows.panel.series, windows.panel.mean, windows.panel.std)
            if windows.panel is not None else None,
            series_features=self.frame.attrs.get(SERIES_FEATURES),
            time_reading=self.frame.attrs.get(TIME_READING),
        )


def recent_share(tensors: tuple[torch.Tensor, ...], share: float) -> tuple[torch.Tensor, ...]:
    """(x_train, y_train, x_val, y_val) with only the most recent `share` of the training windows (at least one):
    the windows closest to the validation part, as the quick screen trains on the last month."""
    x, y, *rest = tensors
    keep = max(1, math.ceil(share * len(x) - 1e-9))
    return (x[-keep:], y[-keep:], *rest)


def _curve_csv(curve: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    if curve:
        writer = csv.DictWriter(buf, fieldnames=list(curve[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(curve)
    return buf.getvalue()
