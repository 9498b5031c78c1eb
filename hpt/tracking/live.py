"""The trackers of one ``hpt run`` (--mlflow URI, --tensorboard DIR, or the spec's tracking section), behind the
runner's hooks: each epoch a running trial reports, each stored trial's row, and their lines at the end."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from hpt.trial import Progress

__all__ = ["Tracker", "Trackers", "open_trackers"]


class Tracker(Protocol):
    def progress(self, event: Progress) -> None: ...
    def add(self, row: Mapping[str, Any], curve: str | None = None) -> None:
        """A stored trial's row and its curve's CSV text; a row of a trial added before, without a curve, is that
        trial's row written again without training (its curve at the location is the one it had)."""
    def begin_run(self, run_id: str) -> None: ...
    def end_run(self, run_id: str, status: str) -> None: ...
    def close(self) -> list[str]: ...


class Trackers:
    """Several trackers as one: what is asked of it is asked of each."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def progress(self, event: Progress) -> None:
        for t in self.trackers:
            t.progress(event)

    def add(self, row: Mapping[str, Any], curve: str | None = None) -> None:
        for t in self.trackers:
            t.add(row, curve)

    def begin_run(self, run_id: str) -> None:
        for t in self.trackers:
            t.begin_run(run_id)

    def end_run(self, run_id: str, status: str) -> None:
        for t in self.trackers:
            t.end_run(run_id, status)

    def close(self) -> list[str]:
        return [line for t in self.trackers for line in t.close()]


def open_trackers(mlflow: str | None, tensorboard: str | None, tracking: Mapping[str, Any], spec_name: str,
                  location: str) -> Trackers | None:
    """The trackers the options (else the spec's tracking section) ask for; None when none. InputError on a
    missing package or a bad option, before anything trains."""
    trackers: list[Tracker] = []
    if mlflow or tracking.get("mlflow"):
        from hpt.tracking.mlflow import live_log

        logger = live_log(mlflow, tracking, spec_name, location)
        if logger is not None:
            trackers.append(logger)
    out = tensorboard or tracking.get("tensorboard")
    if out:
        from hpt.tracking.tensorboard import TensorBoardLog

        trackers.append(TensorBoardLog(out, location, "--tensorboard" if tensorboard else "tracking.tensorboard"))
    return Trackers(trackers) if trackers else None
