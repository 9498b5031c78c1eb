"""The Scheduler protocol: what to try next. A scheduler knows trials and results, not workers."""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from hpt.trial import Progress, Status, Trial, TrialResult

if TYPE_CHECKING:
    import pandas as pd

    from hpt.spec import Spec

__all__ = ["DONE", "FINISHED", "WAIT", "Curves", "Scheduler", "Suggestion", "stops_early"]

FINISHED = (Status.OK.value, Status.PRUNED.value)
"""The statuses that end a trial for a search: ok, or pruned (stopped early); a resumed run trains neither again."""

Curves = Callable[[Collection[str]], Mapping[str, str]]
"""Reads the learning curves (``curves/<trial_id>.csv`` text) of trials at a results location,
by trial id; a trial without a curve is left out."""


class Suggestion(enum.Enum):
    """What :meth:`Scheduler.suggest` says when it has no trial to give."""

    WAIT = "wait"  # nothing until a running trial finishes (e.g. the end of a round)
    DONE = "done"  # nothing more, ever


WAIT = Suggestion.WAIT
DONE = Suggestion.DONE


class Scheduler:
    """Proposes trials, hears how they go, and can be rebuilt from the rows at a results location.

    The runner calls :meth:`restore` once with the rows already at the location (the
    record of truth: resuming is rebuilding, then going on), then :meth:`suggest` whenever
    a slot is free, :meth:`on_progress` after every epoch of a running trial (a returned
    text stops the trial and says why) and :meth:`on_result` once per finished trial,
    the trials it asked to stop included (they end ``pruned``). A wrapper that starts
    trials of its own (the finalist stage) passes their results on too: a scheduler
    ignores results of trials it does not know, or learns from them (tpe).
    """

    skipped = 0  # trials passed over because the location already has them done
    exact = False  # whether remaining() is the count of what will run, not an estimate that the search moves

    def describe(self) -> str:
        """What will run, for the first log line: ``12 trials (6 configs x 2 periods)``."""
        raise NotImplementedError

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        """Learn from the rows already at the results location, by trial id.

        `curves` reads those trials' learning curves from the location, for schedulers
        that compare curves (early stopping); the others need not call it.
        """

    def suggest(self) -> Trial | TrialResult | Suggestion:
        """The next trial to start, or WAIT, or DONE; or a trial decided without training it (a config racing
        dropped: its later periods), which the runner records and passes to :meth:`on_result` as if it had run."""
        raise NotImplementedError

    def remaining(self) -> int | None:
        """How many more trials this scheduler expects to start (an upper bound), None if unknown."""
        return None

    def on_progress(self, event: Progress) -> str | None:
        """A running trial finished an epoch; return a reason to stop it, or None to let it go on."""
        return None

    def on_result(self, result: TrialResult) -> None:
        """A trial this scheduler suggested has ended (or one a wrapper around it started)."""

    def report(self, rows: pd.DataFrame) -> list[str]:
        """Lines for the end of the run's summary, given every trial row at the location (promotion: how well
        its screen ranked the promoted configs); a wrapper around another scheduler (its ``inner``) passes its
        lines on."""
        inner = getattr(self, "inner", None)
        return inner.report(rows) if isinstance(inner, Scheduler) else []


def stops_early(spec: Spec) -> bool:
    """Whether the spec's search stops trials before their last epoch or period: early stopping (inside
    promotion's screen too) or racing. Where it does not, a pruned row at the results location (an earlier
    run's) is not a finished trial: it trains again."""
    return spec.search.early_stopping is not None or spec.search.race
