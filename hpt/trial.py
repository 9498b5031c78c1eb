"""The seams between stages: a trial to run and the result it gives."""

from __future__ import annotations

import csv
import dataclasses
import enum
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpt.fidelity import FULL, Fidelity
from hpt.periods import Period
from hpt.stamps import utcnow  # a row's started_at and finished_at

if TYPE_CHECKING:
    from hpt.periods import Holdout

__all__ = ["WAITS", "Event", "Finished", "Progress", "Refit", "Started", "Status", "Trial", "TrialResult", "as_decided",
           "curve_metrics", "monitor_of", "outranks", "says_less", "status_counts", "utcnow", "waits"]


WAITS = "it waits"
"""In the error of a trial asha stopped at its first rung before `min_trials` others of its period got there
(hpt.scheduling.pruning writes it; hpt results counts such configs)."""


class Status(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"  # stopped early by the scheduler: metrics so far, its curve, no model


def status_counts(statuses: Iterable[Any]) -> Counter[str]:
    """How many of each status: ok, pruned, then the problems (failed, diverged, interrupted), any other after; the
    order a run's last line and ``hpt results`` give them in."""
    counts = Counter(str(s) for s in statuses)
    order = [Status.OK.value, Status.PRUNED.value, *(s.value for s in Status if s not in (Status.OK, Status.PRUNED))]
    return Counter({k: counts[k] for k in sorted(counts, key=lambda k: (order.index(k) if k in order else len(order), k))})


def says_less(row: Mapping[str, Any], there: Mapping[str, Any]) -> bool:
    """Whether `row` is an interrupted run of a trial whose row `there` says how it ended (stopped early, failed,
    diverged): the interruption says nothing about the trial, so that row stays (a finalist cut short while it
    trained a stopped trial again leaves the row of the stop, which a resumed run goes by). A trial that waited at
    asha's first rung had not ended: cut short once it went on, it is to run again, as its interrupted row says."""
    return row.get("status") == Status.INTERRUPTED.value and there.get("status") in _ENDED and not waits(there)


def outranks(there: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a trial's row `there` stays against another row of it, `row`, whichever is newer: an ok row against
    one that is not (a trial that finished is never undone), and a row that says how the trial ended against an
    interruption that says less (:func:`says_less`). Between other rows the caller decides (the newer one, the one
    at the location)."""
    ok = Status.OK.value
    return (there.get("status") == ok and row.get("status") != ok) or says_less(row, there)


_ENDED = (Status.PRUNED.value, Status.FAILED.value, Status.DIVERGED.value)
"""Statuses of a trial that ended: an interrupted run of it says less (:func:`says_less`)."""


def waits(row: Mapping[str, Any]) -> bool:
    """Whether `row` is of a trial that waits at asha's first rung (a ``pruned`` row whose error says :data:`WAITS`):
    not yet ended, it goes on or stays stopped once its period's evidence is there."""
    return row.get("status") == Status.PRUNED.value and WAITS in str(row.get("error") or "")


@dataclass(frozen=True)
class Refit:
    """How a trial trains a chosen config again instead of tuning it (``hpt final``).

    It trains for exactly ``params["epochs"]`` epochs on the training part of its period with
    nothing held out for selection (no early stopping: the last epoch's weights are kept), then
    forecasts the period's `split` once and scores it: the hold-out at the end of the period
    (:class:`hpt.windows.Holdout`), which training never saw. Its
    metrics are ``holdout_*`` in the data's units and ``holdout_std_*`` standardised (divided
    by the train part's standard deviation, like the rows' ``val_*``).
    """

    split: Holdout  # the period's end that is scored
    start_from: bytes | None = None  # weights to start from (torch.save of a state dict: fine-tuning), else fresh ones
    model_id: str = ""  # the model file's trial_id [default: the trial's]
    model_period: tuple[str, str] | None = None  # what the model file says it was trained on [default: the period]
    info: Mapping[str, Any] = field(default_factory=dict)  # what the model file's info says


@dataclass(frozen=True)
class Trial:
    """One (config, period, seed): the unit of work a worker trains."""

    trial_id: str
    config_id: str
    architecture: str
    params: Mapping[str, Any]  # every hyperparameter's value, tuned or not
    tuned: tuple[str, ...]  # the names the search varies
    period: Period
    seed: int  # what it trains with: derived from params["seed"], the period and the repeat (hpt.search.trial_seed)
    fidelity: Fidelity = FULL  # QUICK for screening trials
    tags: Mapping[str, Any] = field(default_factory=dict)  # extra row columns, e.g. {"round": 2}
    refit: Refit | None = None  # trained for fixed epochs and scored on a hold-out (hpt final), not tuned
    checkpoint_at: tuple[int, ...] = ()  # epochs whose training state a stopped trial's result keeps (early stopping's rungs)
    resume: bytes | None = field(default=None, repr=False)  # a checkpoint (:func:`hpt.train.fit`) it goes on from

    @property
    def tuned_params(self) -> dict[str, Any]:
        return {k: self.params[k] for k in self.tuned}


@dataclass(frozen=True)
class TrialResult:
    """What training a trial gave: metrics on success, the error otherwise."""

    trial: Trial
    status: Status
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    device: str = ""
    model: bytes | None = None  # the saved model file (torch.save), when one was trained
    curve: str | None = None  # per-epoch metrics as CSV text
    checkpoints: Mapping[int, bytes] = field(default_factory=dict, repr=False)  # a stopped trial's training state at
    # the epochs of its trial's checkpoint_at that it reached (epoch -> checkpoint): it can go on from there
    amends: bool = False  # not a new result: what came of a trial this run recorded before (a trial that waited at
    # asha's first rung and stays stopped), which its row is written again to say; not counted, reported or heard


@dataclass(frozen=True)
class Started:
    """A backend handed `trial` to a worker (`where`: the slot or node, for logs and rows)."""

    trial: Trial
    where: str


@dataclass(frozen=True)
class Progress:
    """A running trial finished an epoch; `metrics` has train_loss, val_mse, val_mae, lr, time_s."""

    trial: Trial
    epoch: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class Finished:
    """A trial ended: trained, failed, diverged, pruned or interrupted."""

    result: TrialResult


Event = Started | Progress | Finished


def monitor_of(objective: str) -> str:
    """The validation metric that picks a trial's best epoch (the weights it keeps) for `objective`."""
    return objective if objective.startswith("val_") and objective not in ("val_rmse", "val_coverage") else "val_mse"


def curve_metrics(curve: Sequence[Mapping[str, float]], monitor: str) -> dict[str, float]:
    """A row's metrics from a learning curve (epochs in order): those of the first epoch with the
    lowest `monitor`, whose weights a trial keeps, and how many epochs ran."""
    best = min(curve, key=lambda epoch: epoch[monitor])
    quantile = {k: best[k] for k in ("val_pinball", "val_coverage", "val_mase") if k in best}  # a quantile model's, a panel's
    return {"val_mse": best["val_mse"], "val_mae": best["val_mae"], "val_rmse": math.sqrt(best["val_mse"]), **quantile,
            "train_loss": best["train_loss"], "best_epoch": int(best["epoch"]), "epochs": len(curve)}


def as_decided(result: TrialResult, epoch: int, reason: str, monitor: str) -> TrialResult:
    """The result of a trial that a scheduler stopped on hearing `epoch`, as of that epoch.

    A stop reaches a worker while it trains on, one or two epochs later depending on timing;
    the epochs after the decision are left out of the row, its curve and its checkpoints, so that a
    pruned row is what the decision saw and a seeded run gives the same rows again. An ok result that
    ran past the decision (it ended before the stop reached it) is pruned there too; other
    results (failed, diverged, interrupted) are kept as they are.
    """
    if result.status not in (Status.OK, Status.PRUNED) or not result.curve:
        return result
    lines = result.curve.splitlines(keepends=True)
    rows = list(csv.DictReader(io.StringIO(result.curve)))
    kept = [{k: float(v) for k, v in row.items()} for row in rows if float(row["epoch"]) <= epoch]
    if not kept or (len(kept) == len(rows) and result.status is Status.PRUNED):
        return result
    metrics = {**result.metrics, **curve_metrics(kept, monitor), "train_time_s": kept[-1]["time_s"]}
    metrics.pop("infer_ms", None)  # measured on a model a pruned row does not keep
    return dataclasses.replace(result, status=Status.PRUNED, metrics=metrics, error=reason, model=None,
                               curve="".join(lines[:1 + len(kept)]),
                               checkpoints={e: state for e, state in result.checkpoints.items() if e <= epoch})
