"""Early stopping on data (``early_stopping.resource: "data"``): rungs of growing data shares.

Instead of stopping a trial after a few epochs, each trial of the strategy first trains, for
its full epochs, on a small share of its period's training windows (the most recent ones:
the windows closest to the validation part, as the quick screen takes the last month), then
on a larger share, and at last on all of them (its own trial, the id a run without early
stopping gives it). The shares are 1/reduction_factor^k down to ``min_share`` (1/9 and 1/3
with the defaults); each share's trial is a trial of its own, at the fidelity
``data-1/n`` (:func:`hpt.fidelity.data_share`): its own id and row, with the tag
``data_share``, ranked apart from the full rows as screening rows are. (Evenly spread and
random windows ranked configs no better: benchmarks/data_shares.py, Spearman 0.90 for all
three at share 1/9, medians over 3 seeds of 12 configs.)

At each share a config goes on only when it is in the best 1/reduction_factor of the trials
of its period that reached that share (asynchronous successive halving, as Optuna's
SuccessiveHalvingPruner promotes), and only once ``min_trials`` other trials of its period
reached it; before that it goes on unjudged. A config stopped at a share gets a ``pruned``
row for its full trial (not trained) that says where: ``pruned at data share 1/9 (rung 0,
behind 5 of 6 trials of its period)``, with the share's validation metrics; its periods
not yet started are not started, and its trials training in other periods (shares, or full
trials) stop at their next epoch (a config with a stopped period is never ranked:
:class:`StoppedConfigs`), unless it becomes a finalist (:mod:`hpt.scheduling.finalists`),
which trains the full trial.

Resuming derives everything from the rows: a share trial with a row is not trained again,
and a config part-way up the shares is judged again at its last share against every
value at that share the rows hold.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from hpt.fidelity import Fidelity, data_share, share_text
from hpt.progress import plural
from hpt.scheduling.base import DONE, FINISHED, WAIT, Curves, Scheduler, Suggestion
from hpt.scheduling.pruning import Reached, behind_too_many, halving_standing, metric_value, period_key, row_key
from hpt.scheduling.stopped import StoppedConfigs, stopped_for_its_config
from hpt.search import TrialPlan
from hpt.spec import Spec
from hpt.spec.search import EarlyStopping
from hpt.trial import Progress, Status, Trial, TrialResult

__all__ = ["SHARE", "DataRungs", "data_cost", "data_text"]

SHARE = "data_share"
"""The row tag with the share of its period's training windows a trial of a data-rung search trained on."""

Slot = tuple[str, str, int]  # a full trial as its share trials know it: config id, period label, training seed


def data_text(stopping: EarlyStopping, max_epochs: int) -> str:
    """One line on early stopping on data, for logs and ``hpt plan``."""
    shares = ", ".join(f"1/{n}" for n in stopping.shares)
    return (f"early stopping asha on data: rungs at data shares {shares} of each period's training windows (the most "
            f"recent), each trained for the full epochs (up to {max_epochs}), then the whole; a config goes on when "
            f"in the best 1/{stopping.reduction_factor} of its period's trials at each share; a share judges a trial "
            f"only once {plural(stopping.evidence, 'other trial')} of its period reached it (before that it goes on)")


def data_cost(stopping: EarlyStopping) -> float:
    """What a config that climbs every share costs, in full trials (1/9 + 1/3 + 1 = 1.44 with the defaults)."""
    return 1 + sum(1 / n for n in stopping.shares)


def _slot(trial: Trial) -> Slot:
    return trial.config_id, trial.period.label, trial.seed


class DataRungs(Scheduler):
    """Wraps any scheduler: each trial it proposes climbs the data shares first, its full trial last."""

    def __init__(self, inner: Scheduler, spec: Spec, say: Callable[[str], None]) -> None:
        assert spec.search.early_stopping is not None
        self.inner = inner
        self.spec = spec
        self.stopping = spec.search.early_stopping
        self.say = say
        self.fidelities: list[Fidelity] = [data_share(spec.fidelity, n) for n in self.stopping.shares]
        self._plans: dict[int, TrialPlan] = {}
        self._keys = {period_key(spec.fidelity, p.start_text, p.end_text) for p in spec.periods}
        self._values: dict[tuple[str, int], dict[Slot, float]] = {}  # (period label, rung) -> value of each trial there
        self._have: dict[tuple[Slot, int], dict[str, float]] = {}  # (slot, rung) -> the metrics of its share trial
        self._climbing: dict[str, tuple[Trial, int]] = {}  # running share trial id -> (its full trial, its rung)
        self._ready: list[Trial | TrialResult] = []  # next shares and decided full trials, handed out first
        self._dead = StoppedConfigs(say)
        self._fulls: set[str] = set()  # full trials handed out after their shares (their config can still be stopped)
        self._stopping: set[str] = set()  # running trials told to stop: their config was stopped
        self._full: dict[Slot, tuple[str, float, bool]] = {}  # a full trial's status (ok or pruned), objective and
        # whether it was stopped for its config (:func:`stopped_for_its_config`: where it stopped says nothing of it)
        self._shares_done = 0  # share trials the location has (resuming): never trained again

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self.inner.skipped + self._shares_done

    def describe(self) -> str:
        return f"{self.inner.describe()}, early stopping asha on data shares"

    def _plan(self, rung: int) -> TrialPlan:
        plan = self._plans.get(rung)
        if plan is None:
            plan = self._plans[rung] = TrialPlan(dataclasses.replace(self.spec, fidelity=self.fidelities[rung]), [])
        return plan

    # -- rebuilding ------------------------------------------------------------------------

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self.inner.restore(rows, curves)
        rungs = {f.name: k for k, f in enumerate(self.fidelities)}
        for row in rows.values():
            rung = rungs.get(str(row.get("fidelity")))
            label = f"{row.get('period_start')}..{row.get('period_end')}"
            if rung is not None and row.get("status") == Status.OK.value:
                value = metric_value(row, self.spec.objective)
                if value is None or not math.isfinite(value):
                    continue
                slot = (str(row["config_id"]), label, int(row["seed"]))
                self._values.setdefault((label, rung), {})[slot] = value
                self._have[(slot, rung)] = {k: v for k, v in row.items() if _kept(k, self.spec.objective)}
                self._shares_done += 1
                continue
            if row_key(row) not in self._keys or row.get("status") not in FINISHED:
                continue  # a full trial of this search that ended: its outcome for the replay, and a stop
            if row.get("status") == Status.PRUNED.value and not stopped_for_its_config(row.get("error")):
                self._dead.stop(str(row["config_id"]), label)  # (a row stopped for its config names no stop)
            self._heard((str(row["config_id"]), label, int(row["seed"])), str(row["status"]), row, row.get("error"))
        self._dead.restored()

    # -- climbing ----------------------------------------------------------------------------

    def _climb(self, full: Trial, rung: int) -> Trial | TrialResult:
        """What `full` runs next from `rung` on: a share trial, itself, or its pruned result (a share stopped it)."""
        slot = _slot(full)
        while rung < len(self.fidelities):
            metrics = self._have.get((slot, rung))
            if metrics is None:
                share = self._plan(rung).same_trial(full, {SHARE: self.fidelities[rung].share})
                self._climbing[share.trial_id] = (full, rung)
                return share
            if full.config_id in self._dead:  # stopped in another period while this share trained
                return self._pruned(full, rung, self._for_config(full, rung), metrics)  # the values of that share
            why = self._judge(slot, rung)
            if why:
                self._dead.stop(full.config_id, full.period.label)
                return self._pruned(full, rung, why, metrics)
            rung += 1
        self._fulls.add(full.trial_id)
        return dataclasses.replace(full, tags={**full.tags, SHARE: 1.0})

    def _pruned(self, full: Trial, rung: int, why: str, metrics: Mapping[str, Any] | None = None) -> TrialResult:
        """`full`'s pruned result: stopped at the share of `rung` (with that share's validation metrics, if it
        ended)."""
        stopped = dataclasses.replace(full, tags={**full.tags, SHARE: self.fidelities[rung].share})
        return TrialResult(stopped, Status.PRUNED, metrics=dict(metrics or {}), error=why)

    def _for_config(self, full: Trial, rung: int) -> str:
        """The error of a full trial whose share at `rung` ended, or stopped, or never started because its config
        was stopped in another period."""
        return self._dead.error(full, f"data share {share_text(self.fidelities[rung].share)}")

    def _judge(self, slot: Slot, rung: int) -> str:
        """Why the trial of `slot` stops at `rung` ("" when it goes on)."""
        values = self._values.get((slot[1], rung), {})
        mine = values[slot]
        others = [v for s, v in values.items() if s != slot]
        if len(others) < self.stopping.evidence:
            return ""  # too little evidence at this share: it goes on
        behind = sum(v < mine for v in others)
        if not behind_too_many(behind, len(others), self.stopping.reduction_factor):
            return ""
        share = share_text(self.fidelities[rung].share)
        return f"pruned at data share {share} (rung {rung}, behind {behind} of {len(others)} trials of its period)"

    # -- standing ----------------------------------------------------------------------------

    def _heard(self, slot: Slot, status: str, metrics: Mapping[str, Any], error: Any) -> None:
        value = metric_value(metrics, self.spec.objective)
        self._full[slot] = (status, math.inf if value is None or not math.isfinite(value) else value,
                            status == Status.PRUNED.value and stopped_for_its_config(error))

    def standing(self) -> dict[str, tuple[int, float]]:
        """Successive halving over the shares replayed with all the evidence (:func:`halving_standing`): config
        id -> (reach, place), the reach a rung number (1 the first share, the number of shares + 1 the full
        trial). A config that ran first climbed its shares before the others got there, unjudged: the replay
        judges it at every share as it judges the others, so being complete does not rank it higher. The
        finalists are chosen by it."""
        n = len(self.fidelities)
        trials: dict[str, Reached] = {}
        curves: dict[str, dict[int, float]] = {}
        for slot, (status, value, for_config) in self._full.items():
            curve = {rung + 1: v for rung in range(n) if (v := self._values.get((slot[1], rung), {}).get(slot)) is not None}
            if status == Status.OK.value:
                curve[n + 1] = value
            if not curve:
                continue  # not started: its config was stopped in another period
            reached = max(curve)
            key = f"{slot[0]} {slot[1]} {slot[2]}"
            trials[key] = Reached(slot[0], slot[1], status, reached, curve[reached], unjudged=for_config)
            curves[key] = curve
        return halving_standing(trials, curves, self.stopping, n + 1, at=range(1, n + 1), best_so_far=False)

    # -- the run -----------------------------------------------------------------------------

    def remaining(self) -> int | None:
        inner = self.inner.remaining()
        return None if inner is None else inner * (1 + len(self.fidelities)) + len(self._ready)

    def suggest(self) -> Trial | TrialResult | Suggestion:
        while self._ready:
            ready = self._ready.pop(0)
            why = self._dead.why(ready.config_id) if isinstance(ready, Trial) else None
            if not isinstance(ready, Trial) or why is None:
                return ready
            # its config was stopped in another period since it was queued (the same batch of results)
            climbing = self._climbing.pop(ready.trial_id, None)
            if climbing is not None:  # a share: its full trial is pruned there, with its shares so far
                full, rung = climbing
                return self._pruned(full, rung, self._for_config(full, rung))
            self._fulls.discard(ready.trial_id)  # the full trial: not started, as any trial of a stopped config
            self._dead.not_start(ready, self.inner)
        while True:
            nxt = self.inner.suggest()
            if nxt is DONE and self._climbing:
                return WAIT  # a climbing config may still want its next share
            if not isinstance(nxt, Trial):
                return nxt
            if nxt.config_id not in self._dead:
                return self._climb(nxt, 0)
            self._dead.not_start(nxt, self.inner)

    def on_progress(self, event: Progress) -> str | None:
        reason = self.inner.on_progress(event)
        tid = event.trial.trial_id
        why = self._dead.why(event.trial.config_id)
        if reason or why is None or (tid not in self._climbing and tid not in self._fulls) or tid in self._stopping \
                or event.epoch >= int(event.trial.params.get("epochs", 0)):
            return reason  # (at the last epoch, stopping saves nothing)
        self._stopping.add(tid)  # another period of its config was stopped while this trial trained
        return self._dead.error(event.trial, event.epoch)

    def on_result(self, result: TrialResult) -> None:
        climbing = self._climbing.pop(result.trial.trial_id, None)
        self._stopping.discard(result.trial.trial_id)
        self._fulls.discard(result.trial.trial_id)
        if climbing is None:
            if result.status.value in FINISHED and result.trial.fidelity == self.spec.fidelity:
                self._heard(_slot(result.trial), result.status.value, result.metrics, result.error)
            self.inner.on_result(result)  # a full trial, or one a wrapper started
            return
        full, rung = climbing
        value = metric_value(result.metrics, self.spec.objective)
        if result.status is Status.OK and value is not None and math.isfinite(value):
            slot = _slot(full)
            self._values.setdefault((slot[1], rung), {})[slot] = value
            self._have[(slot, rung)] = {k: v for k, v in result.metrics.items() if _kept(k, self.spec.objective)}
            self._ready.insert(0, self._climb(full, rung))  # judged at its share, then on (or stopped)
        elif result.status is Status.INTERRUPTED:
            self.inner.on_result(TrialResult(full, Status.INTERRUPTED, error=result.error))
        elif result.status is Status.PRUNED and full.config_id in self._dead:  # stopped for its config
            # (on_progress): its full trial is not started
            self._ready.insert(0, self._pruned(full, rung, self._for_config(full, rung)))
        else:  # failed or diverged on a share: so would the config be, as far as the search can tell
            share = share_text(self.fidelities[rung].share)
            self._ready.insert(0, TrialResult(full, result.status, error=f"at data share {share}: {result.error}"))


def _kept(column: str, objective: str) -> bool:
    """The metrics a stopped config's pruned full row takes from its last share: the validation scores."""
    return column == objective or column.startswith("val_")
