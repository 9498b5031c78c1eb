"""The seams between stages: a trial to run and the result it gives."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hpt.periods import Period

__all__ = ["Event", "Finished", "Progress", "Started", "Status", "Trial", "TrialResult", "utcnow"]


class Status(str, enum.Enum):
    OK = "ok"
    FAILED = "failed"
    DIVERGED = "diverged"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"  # stopped early by the scheduler: metrics so far, its curve, no model


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
    fidelity: str = "full"  # "quick" for screening trials
    tags: Mapping[str, Any] = field(default_factory=dict)  # extra row columns, e.g. {"round": 2}

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


def utcnow() -> str:
    """The current UTC time as the rows record it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
