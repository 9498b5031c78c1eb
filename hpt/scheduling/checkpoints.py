"""Where a stopped trial can go on from: the training state early stopping kept at its rungs.

Early stopping on epochs (asha, hyperband) asks its trials to keep their training state at
each rung (:attr:`hpt.trial.Trial.checkpoint_at`); a stopped trial's result brings back the
one at the last rung it passed before the decision (:func:`hpt.trial.as_decided`). When the
same trial runs again (asha's first-rung wait judged it in, or a finalist completes its
config), it goes on from there instead of from the first epoch, and ends as it would have
had nothing stopped it (:func:`hpt.train.fit`): the same row and model, for the epochs
before the rung saved. Its row says where it resumed (``resumed_epoch``) and its
``train_time_s`` counts the time before the checkpoint too.

The checkpoints are kept in this process's memory, up to `limit` bytes (the oldest go first
beyond it); a trial without one (a run that resumes after a stop, a checkpoint let go) trains
from the start, to the same result.
"""

from __future__ import annotations

import dataclasses

from hpt.trial import Status, Trial, TrialResult

__all__ = ["LIMIT", "RESUMED", "Checkpoints"]

RESUMED = "resumed_epoch"
"""The row tag of a trial that went on from a checkpoint: the epoch it went on from."""
LIMIT = 2 << 30
"""Bytes of checkpoints kept in memory (2 GiB)."""


class Checkpoints:
    """The checkpoints of the stopped trials of one run, by trial id."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._held: dict[str, tuple[int, bytes]] = {}  # trial id -> (epoch, checkpoint)
        self._bytes = 0

    def keep(self, result: TrialResult) -> None:
        """A trial ended: a stopped one's last checkpoint is kept (the one before goes); an ok one needs none."""
        tid = result.trial.trial_id
        if result.status is Status.INTERRUPTED:
            return  # its checkpoint, if any, still stands
        self.drop(tid)
        if result.status is Status.PRUNED and result.checkpoints:
            epoch = max(result.checkpoints)
            self._held[tid] = epoch, result.checkpoints[epoch]
            self._bytes += len(result.checkpoints[epoch])
            while self._bytes > self.limit and self._held:
                self.drop(next(iter(self._held)))  # the oldest first

    def drop(self, tid: str) -> None:
        """Let a trial's checkpoint go (it will not run again)."""
        held = self._held.pop(tid, None)
        if held is not None:
            self._bytes -= len(held[1])

    def resumed(self, trial: Trial) -> Trial:
        """`trial`, going on from its checkpoint when one is kept (tagged with its epoch); else as it is."""
        held = self._held.get(trial.trial_id)
        if held is None:
            return trial
        return dataclasses.replace(trial, resume=held[1], tags={**trial.tags, RESUMED: held[0]})
