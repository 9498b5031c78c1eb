"""Configs that early stopping stopped in one period: a config with a stopped period is never ranked,
so its other periods are not started and those running stop, unless the finalists complete it.

Early stopping on epochs (:mod:`hpt.scheduling.pruning`) and on data shares
(:mod:`hpt.scheduling.data_rungs`) keep this state the same way: :class:`StoppedConfigs`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hpt.progress import format_params
from hpt.scheduling.base import Scheduler
from hpt.trial import Status, Trial, TrialResult

__all__ = ["StoppedConfigs", "stopped_for_its_config"]

_ITS_CONFIG = re.compile(r"pruned at (?:epoch \d+|data share 1/\d+) \(its config was ")


def stopped_for_its_config(error: Any) -> bool:
    """Whether a pruned trial was stopped because another period of its config was (:meth:`StoppedConfigs.error`), so
    that where it stopped says nothing about it: it got that far and was not judged there."""
    return bool(_ITS_CONFIG.search(str(error or "")))


class StoppedConfigs:
    """Config id -> why its other periods do not start (``stopped in <period>``), and saying so once a run."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self._why: dict[str, str] = {}
        self._before: set[str] = set()  # those an earlier run stopped (restored): it said so
        self._told = False

    def stop(self, config_id: str, period_label: str) -> None:
        """A trial of `config_id` in the period `period_label` was stopped (the first stop is the one named)."""
        self._why.setdefault(config_id, f"stopped in {period_label}")

    def why(self, config_id: str) -> str | None:
        return self._why.get(config_id)

    def __contains__(self, config_id: object) -> bool:
        return config_id in self._why

    def restored(self) -> None:
        """The configs stopped so far were an earlier run's: this run does not say again that their periods
        do not start."""
        self._before = set(self._why)

    def not_start(self, trial: Trial, inner: Scheduler) -> None:
        """`trial`'s config was stopped: it does not start; the inner scheduler hears it as pruned."""
        why = self._why[trial.config_id]
        self._explain(trial)
        inner.on_result(TrialResult(trial, Status.PRUNED, error=f"not started: its config was {why}"))

    def error(self, trial: Trial, at: int | str) -> str:
        """The error of `trial`, stopped for its config, not for itself, at epoch `at` (or at a data share: ``"data
        share 1/9"``), as it trained or waited at asha's first rung, its config stopped in another period: ``pruned at
        epoch 7 (its config was stopped in 2023-01-01..2023-02-28)``. (Rows of hpt before 2026-12-07 add "; a config
        with a stopped period is never ranked": read alike.)"""
        self._explain(trial)
        where = f"epoch {at}" if isinstance(at, int) else at
        return f"pruned at {where} (its config was {self._why[trial.config_id]})"

    def _explain(self, trial: Trial) -> None:
        """Why a config's other periods stop or do not start, said once a run (each such row says where its config
        was stopped), with the first config this run stopped."""
        if not self._told and trial.config_id not in self._before:
            self._told = True
            self.say(f"early stopping: config {trial.config_id} ({format_params(trial.tuned_params)}) was "
                     f"{self._why[trial.config_id]}; a config with a stopped period is never ranked, so its other "
                     "periods stop (at their next epoch, when they are training) or are not started; the same goes "
                     "for every stopped config")
