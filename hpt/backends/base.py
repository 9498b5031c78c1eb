"""The Backend protocol: where trials run. A backend knows workers, not schedulers or sinks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hpt.trial import Event, Trial, TrialResult

__all__ = ["Backend"]


class Backend(Protocol):
    """Runs trials somewhere and reports what happens to them as events.

    The runner asks :meth:`free` how many trials it may :meth:`submit` now, polls for
    :class:`~hpt.trial.Started`, :class:`~hpt.trial.Progress` and
    :class:`~hpt.trial.Finished` events, asks for one trial to :meth:`stop` at its next
    epoch (its result then arrives as ``pruned``), and at the end :meth:`close`\\ s the
    backend. Signals, grace periods and exit codes are the runner's business.
    """

    def describe(self) -> str:
        """Where trials run, for the first log line (e.g. ``the CPU (2 workers)``)."""

    def slot_names(self) -> Sequence[str]:
        """The slots trials run on, for the run record."""

    def free(self) -> int:
        """How many more trials :meth:`submit` takes now."""

    def submit(self, trial: Trial) -> None:
        """Start `trial` on a free slot; a Started event follows."""

    def poll(self, timeout: float) -> list[Event]:
        """The events since the last poll, waiting up to `timeout` seconds for the first."""

    def stop(self, trial_id: str, reason: str) -> None:
        """Ask a running trial to stop after its current epoch; `reason` becomes its row's error."""

    def close(self) -> list[TrialResult]:
        """Stop every worker now; the trials still running come back as ``interrupted`` results."""
