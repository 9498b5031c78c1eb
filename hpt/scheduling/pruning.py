"""Early stopping for every strategy: a wrapper that hears each epoch and stops trials that are
behind the other trials **of their period**.

hpt's periods are folds in time: one period's loss can be ten times another's, so a trial
is only ever compared with trials of the same period (and fidelity) at the same epoch.
Each period has its own Optuna study, holding that period's trials and their intermediate
values; the pruner (Optuna's SuccessiveHalving, Hyperband or Median pruner) decides
through ask-and-tell. The value a trial reports at epoch k is its best objective so far,
the value its row would have if it stopped there.

Resuming rebuilds the studies from the rows and curves at the results location (and those
of ``search.warm_start``), in the order the trials started.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpt.fidelity import Fidelity, fidelity_named
from hpt.progress import format_params, plural
from hpt.rows import param_column
from hpt.scheduling.base import WAIT, Curves, Scheduler, Suggestion
from hpt.scheduling.checkpoints import RESUMED, Checkpoints
from hpt.scheduling.stopped import StoppedConfigs, stopped_for_its_config
from hpt.scheduling.warm import WarmStart
from hpt.spec import Distribution, Spec
from hpt.spec.search import EarlyStopping
from hpt.stamps import utcnow
from hpt.trial import WAITS, Progress, Status, Trial, TrialResult, waits

if TYPE_CHECKING:
    import optuna


__all__ = ["Pruning", "Reached", "behind_too_many", "checkpoint_rungs", "curve_values",
           "halving_standing", "make_pruner", "max_epochs", "metric_value", "period_key", "pruned_epoch", "row_key",
           "rungs", "start_order", "stopped_place", "stopped_unjudged", "stopping_text",
           "trial_key"]

_PRUNED_AT = re.compile(r"pruned at epoch (\d+)")
_PRUNED_SHARE = re.compile(r"pruned at data share 1/(\d+)")
_BEHIND = re.compile(r"behind (\d+) of (\d+) trials")
WAITED = "where it waited"
"""What the row of a waiting trial that stays stopped, out of the best at its rung, says (and the inner scheduler
hears): it was not judged when it stopped (:func:`stopped_unjudged`)."""


def max_epochs(spec: Spec) -> int:
    """The most epochs a trial of `spec` runs (the screening cap included)."""
    axis = spec.parameters.get("epochs")
    if axis is None:
        most = int(spec.base_params["epochs"])
    else:
        most = int(axis.high if isinstance(axis, Distribution) else max(axis))
    return spec.fidelity.epochs(most)


def rungs(stopping: EarlyStopping, max_epochs: int) -> list[int]:
    """The epochs at which trials are compared (before the last epoch, where stopping saves nothing)."""
    if stopping.kind == "median":
        return list(range(stopping.min_epochs, max_epochs))
    out, step = [], stopping.min_epochs
    while step < max_epochs:
        out.append(step)
        step *= stopping.reduction_factor
    return out


def checkpoint_rungs(stopping: EarlyStopping | None, max_epochs: int) -> tuple[int, ...]:
    """The epochs at which trials keep their training state, to go on from if they are stopped and run again
    (:mod:`hpt.scheduling.checkpoints`): asha's and hyperband's rungs on epochs; none for median (every epoch is
    its rung) or data shares (a share's trial is not the full one)."""
    if stopping is None or stopping.kind == "median" or stopping.resource != "epochs":
        return ()
    return tuple(rungs(stopping, max_epochs))


def stopping_text(stopping: EarlyStopping, max_epochs: int) -> str:
    """One line on what early stopping does, for logs and ``hpt plan``."""
    at = rungs(stopping, max_epochs)
    if not at:
        return f"early stopping {stopping.kind}: no epoch to compare at below {max_epochs}"
    n = stopping.evidence
    if stopping.kind == "median":
        return (f"early stopping median: from epoch {stopping.min_epochs} on, a trial worse than the median of its "
                f"period's finished trials at the same epoch stops; judged only once {plural(n, 'other trial')} "
                f"of its period reported at that epoch")
    listed = ", ".join(map(str, at))
    what = (f"in the best 1/{stopping.reduction_factor} of its period's trials at each rung"
            if stopping.kind == "asha" else
            f"in the best 1/{stopping.reduction_factor} of its bracket; brackets start at different rungs")
    if stopping.kind == "asha":
        return (f"early stopping asha: rungs at epoch {listed} of {max_epochs}; a trial goes on when {what}; "
                f"a rung judges a trial only once {plural(n, 'other trial')} of its period reached it: at the first rung "
                f"a trial waits for {'it' if n == 1 else 'them'} (it stops there, and once "
                f"{'it got' if n == 1 else 'they got'} there it goes on from that epoch if it is "
                f"in {'the' if n == 1 else 'their'} best 1/{stopping.reduction_factor}), at a later one it goes on and "
                f"is judged there once {'it has' if n == 1 else 'they have'}")
    return (f"early stopping {stopping.kind}: rungs at epoch {listed} of {max_epochs}; a trial goes on when {what}; "
            f"a rung judges a trial only once {plural(n, 'other trial')} of its bracket reached it (before that it "
            f"goes on)")


def make_pruner(stopping: EarlyStopping, max_epochs: int) -> optuna.pruners.BasePruner:
    """The Optuna pruner of `stopping` for trials of at most `max_epochs` epochs."""
    import optuna

    if stopping.kind == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=stopping.min_epochs,
                                                      reduction_factor=stopping.reduction_factor)
    if stopping.kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=stopping.min_epochs,
                                              max_resource=max(max_epochs, stopping.min_epochs),
                                              reduction_factor=stopping.reduction_factor)
    return optuna.pruners.MedianPruner(n_startup_trials=stopping.evidence, n_warmup_steps=stopping.min_epochs,
                                       n_min_trials=stopping.evidence)


def behind_too_many(behind: int, others: int, reduction_factor: int) -> bool:
    """Whether a trial that `behind` of the `others` trials at its rung beat is out of their best 1/reduction_factor:
    not among the best floor(n / reduction_factor) (at least 1) of the n trials there, itself included, as
    Optuna's SuccessiveHalvingPruner promotes. Early stopping on epochs and on data shares decides with it,
    and the finalists replay it at the end with every trial's values."""
    return behind + 1 > max(1, (others + 1) // reduction_factor)


def stopped_unjudged(error: Any) -> bool:
    """Whether a pruned trial stopped where no rung judged it: its config was stopped in another period
    (:func:`stopped_for_its_config`), or it waited at asha's first rung (its row says "it waits" until the run
    decides, then "where it waited")."""
    text = str(error or "")
    return stopped_for_its_config(text) or WAITS in text or WAITED in text


@dataclass
class Reached:
    """What :func:`halving_standing` needs of one finished trial (ok or pruned)."""

    config_id: str
    study: str  # fidelity and period (:func:`period_key`)
    status: str  # "ok" or "pruned"
    epoch: int  # the epoch it was stopped at (pruned trials)
    value: float  # its objective (ok trials)
    unjudged: bool = False  # stopped where no rung judged it (:func:`stopped_unjudged`): the replay judges it

    @staticmethod
    def where(error: Any, epochs: Any, most: int | None = None) -> int:
        """The epoch a trial got to, from its row or result: where this wrapper stopped it (its error), else its
        epochs trained (0 when unknown)."""
        epoch = pruned_epoch(error, most)
        if epoch is not None:
            return epoch
        try:
            return int(float(epochs))
        except (TypeError, ValueError):
            return 0


def halving_standing(trials: Mapping[str, Reached], curves: Mapping[str, Mapping[int, float]],
                     stopping: EarlyStopping, most: int, at: Sequence[int] | None = None,
                     best_so_far: bool = True) -> dict[str, tuple[int, float]]:
    """Successive halving replayed with all the evidence: config id -> (reach, place).

    `trials`: the finished trials (ok or pruned) by trial id; `curves`: their objective per epoch.
    A trial's reach is the epoch it got to (`most`, for an ok one), or the first rung before that
    where it is out of the best 1/reduction_factor of every trial of its period that got there
    (:func:`behind_too_many`, once `min_trials` others got there): a trial that ran early passed
    its rungs before the others got there, so a complete trial is not better for being complete.
    A trial stopped where no rung judged it (`unjudged`: it waited at the first rung, or its config
    was stopped in another period) is judged at that epoch too, and if it passes, it says nothing
    about how far its config gets. A config's reach is the least over its trials that say (a period
    early stopping did not start tells nothing; with none that says, the least epoch its trials got
    to); its place is its mean place (0 the best, 1 the worst) among its periods' trials at that
    epoch (the same period and epoch: comparable values), over its trials that got there. The
    finalists are chosen by it, and tpe is told it. `at`: the rungs, when they are not the stopping's
    epochs (data shares number theirs 1, 2, ..., the full trial `most`); `best_so_far`: a trial's value at a
    rung is its best up to there (an epoch's curve), else its value there alone (each share is a trial of its own,
    judged by its own value, as early stopping on data decides)."""
    factor, evidence = stopping.reduction_factor, stopping.evidence
    at = rungs(stopping, most) if at is None else at
    by_study: dict[str, list[str]] = {}
    for tid, seen in trials.items():
        by_study.setdefault(seen.study, []).append(tid)
    known: dict[tuple[str, int], float | None] = {}
    ranked: dict[tuple[str, int], list[float]] = {}  # (study, epoch) -> the values there, sorted

    def value_at(tid: str, epoch: int) -> float | None:
        """Its objective at `epoch` (the best so far); None when it did not get there."""
        if (tid, epoch) not in known:
            seen, curve = trials[tid], curves.get(tid, {})
            if seen.status == Status.OK.value and (epoch >= most or epoch > max(curve, default=0)):
                known[tid, epoch] = seen.value  # complete (ended by its own patience before `epoch`: as it ended)
            else:
                got = [v for e, v in curve.items() if e <= epoch] if best_so_far else \
                    [curve[epoch]] if epoch in curve else []
                reached = seen.epoch if seen.status == Status.PRUNED.value else most
                known[tid, epoch] = min(got) if got and epoch <= reached else None
        return known[tid, epoch]

    def standing(tid: str, epoch: int) -> tuple[int, int]:
        """(behind, others): how many of the other trials of its period that got to `epoch` were better."""
        study = trials[tid].study
        if (study, epoch) not in ranked:
            ranked[study, epoch] = sorted(v for o in by_study[study] if (v := value_at(o, epoch)) is not None)
        there, mine = ranked[study, epoch], value_at(tid, epoch)
        if mine is None:
            return len(there), len(there)
        return bisect.bisect_left(there, mine), len(there) - 1

    def reach(tid: str) -> int | None:
        """Its reach; None for an unjudged trial that passes every rung it got to (it says nothing)."""
        seen = trials[tid]
        got = most if seen.status == Status.OK.value else seen.epoch
        for rung in at:
            if rung > got or rung == got and not seen.unjudged:
                break
            behind, others = standing(tid, rung)
            if others >= evidence and behind_too_many(behind, others, factor):
                return rung
        return None if seen.unjudged else got

    reaches = {tid: reach(tid) for tid in trials}
    of_config: dict[str, list[str]] = {}
    for tid, seen in trials.items():
        of_config.setdefault(seen.config_id, []).append(tid)
    out = {}
    for cid, mine in of_config.items():
        said = [r for t in mine if (r := reaches[t]) is not None]
        far = min(said) if said else min(trials[t].epoch for t in mine)
        places = []
        for tid in mine:
            if trials[tid].unjudged and value_at(tid, far) is None:
                continue  # stopped before `far` without a verdict: no place there
            behind, others = standing(tid, far)
            places.append(behind / others if others else 0.0)
        out[cid] = far, sum(places) / len(places) if places else 0.0
    return out


def metric_value(metrics: Mapping[str, Any], objective: str) -> float | None:
    """The objective in one epoch's metrics (val_rmse from val_mse); None when it is not there."""
    try:
        if objective == "val_rmse" and "val_rmse" not in metrics:
            return math.sqrt(float(metrics["val_mse"]))
        return float(metrics[objective])
    except (KeyError, TypeError, ValueError):
        return None


def curve_values(text: str, objective: str) -> list[tuple[int, float]]:
    """(epoch, objective) per epoch of a ``curves/<trial_id>.csv`` text; unreadable lines are left out."""
    out = []
    for rec in csv.DictReader(io.StringIO(text)):
        value = metric_value(rec, objective)
        try:
            epoch = int(float(rec["epoch"]))
        except (KeyError, TypeError, ValueError):
            continue
        if value is not None:
            out.append((epoch, value))
    return out


def pruned_epoch(error: Any, most: int | None = None) -> int | None:
    """The epoch at which this wrapper decided to stop a trial, from its row's error. A trial early stopping
    on data stopped (:mod:`hpt.scheduling.data_rungs`: ``pruned at data share 1/9``) had, given the `most`
    epochs a trial trains, the compute of that share of them: its epoch-equivalent (at least 1)."""
    found = _PRUNED_AT.search(str(error or ""))
    if found:
        return int(found.group(1))
    share = _PRUNED_SHARE.search(str(error or ""))
    return max(1, round(most / int(share.group(1)))) if share and most is not None else None


def stopped_place(error: Any) -> float | None:
    """Where a stopped trial stood among the trials of its period at the epoch it was stopped (0 the best, 1 the
    worst), from its row's error (``... behind 5 of 6 trials of its period``); None in rows from before hpt said."""
    found = _BEHIND.search(str(error or ""))
    return int(found.group(1)) / int(found.group(2)) if found and int(found.group(2)) else None


def period_key(fidelity: Fidelity, start: Any, end: Any) -> str:
    """Which study a trial belongs to: its fidelity and period."""
    return f"{fidelity.name} {start}..{end}"


def trial_key(trial: Trial) -> str:
    """The study of a trial (:func:`period_key`)."""
    return period_key(trial.fidelity, trial.period.start_text, trial.period.end_text)


def row_key(row: Mapping[str, Any]) -> str:
    """The study of a row's trial (:func:`period_key`)."""
    return period_key(fidelity_named(row.get("fidelity")), row.get("period_start"), row.get("period_end"))


def start_order(row: Mapping[str, Any]) -> tuple[str, str, str]:
    """Rows in the order their trials started."""
    return str(row.get("started_at") or ""), str(row.get("finished_at") or ""), str(row.get("trial_id"))


def _int(v: Any) -> int | None:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


_STATES = {Status.OK.value: "COMPLETE", Status.PRUNED.value: "PRUNED"}


class Pruning(Scheduler):
    """Wraps any scheduler: its trials are stopped early when behind their period's peers.

    A trial of a config already stopped in another period is not started (the config can
    no longer be ranked): the inner scheduler hears it as pruned without it running, and the
    log says so once. One running when another period of its config is stopped stops at its
    next epoch (:meth:`StoppedConfigs.error`); where it stopped says nothing about it, so the
    finalists' and tpe's replay of successive halving does not hold it against its config.

    asha's first rung: a trial that gets there before `min_trials` others of its period did
    waits, while the search has more trials to start. It stops there (its row: pruned, "it
    waits"), the inner scheduler does not hear of it yet, and its value there counts as evidence
    for the others. Once `min_trials` others got there it is judged by that value: out of their
    best 1/reduction_factor, it stays stopped (the inner scheduler hears so, and its row is written again to say so:
    "where it waited"); in them, the same
    trial runs again, from its checkpoint there (its new row replaces the waiting one). Otherwise the first
    configs of a search would pass the first rung unjudged and train every epoch while the
    workers they hold keep the others from reaching it. A waiting trial runs again anyway when
    nothing else runs and the search has nothing more to start. Resuming finds waiting trials
    by their rows' "it waits" (a run that judged one wrote its row again, so such a row was not
    judged: the run stopped first). The inner scheduler reads it as interrupted, a trial to run
    again (tpe keeps its config pending, at its number); when it suggests the trial, it is judged
    as above, at once when its rung has `min_trials` others. One whose config was stopped in
    another period stays stopped, its row written again to say so. A waiting trial
    that was running again when the run stopped has an interrupted row in place of its waiting
    one: resuming lacks its value at the first rung until it has run again, so tpe may then ask
    other configs than the run would have.

    asha and hyperband trials keep their training state at each rung (:attr:`book`,
    :mod:`hpt.scheduling.checkpoints`): a waiting trial that runs again goes on from its first
    rung instead of from the first epoch, to the same result.
    """

    def __init__(self, inner: Scheduler, spec: Spec, say: Callable[[str], None], warm: WarmStart | None = None,
                 keep_stopped: bool = False, idle: bool = False) -> None:
        """`keep_stopped`: keep every stopped trial's checkpoint in :attr:`book` (a finalist stage takes them);
        otherwise only those of trials waiting at asha's first rung, which run again from it. `idle`: no rung can
        ever judge a trial (too few configs for min_trials): none waits at the first rung for it."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        assert spec.search.early_stopping is not None
        self.inner = inner
        self.spec = spec
        self.stopping = spec.search.early_stopping
        self.objective = spec.objective
        self.max_epochs = max_epochs(spec)
        self.say = say
        self.warm = warm
        self._keys = {period_key(spec.fidelity, p.start_text, p.end_text) for p in spec.periods}  # this run's studies
        self._studies: dict[str, optuna.Study] = {}
        self._live: dict[str, optuna.trial.Trial] = {}  # trial id -> its trial in its period's study
        self._best: dict[str, float] = {}  # trial id -> best objective so far
        self._stopping: set[str] = set()  # told to stop: later epochs are not reported
        self._rungs = rungs(self.stopping, self.max_epochs) if self.stopping.kind == "asha" else []
        self.keep_stopped = keep_stopped
        self.idle = idle
        self._keep_at = checkpoint_rungs(self.stopping, self.max_epochs) if keep_stopped else tuple(self._rungs[:1])
        self.book = Checkpoints()  # stopped trials' training state at their last rung: the finalists go on from it too
        self._unjudged: dict[str, list[int]] = {}  # trial id -> asha rungs (epochs) it passed before min_trials got there
        self._dead = StoppedConfigs(say)
        self._pausing: set[str] = set()  # trial ids stopped at the first rung to wait for evidence
        self._waiting: dict[str, tuple[optuna.trial.Trial, TrialResult | Mapping[str, Any]]] = {}  # trial id -> its
        # entry in its period's study, and the result it waited with (resuming: its row, until the inner scheduler
        # suggests the trial again)
        self._again: list[tuple[optuna.trial.Trial, TrialResult]] = []  # waiting trials to run again (judged in their
        # best 1/reduction_factor, or nothing more to start brings their evidence), as in _waiting
        self._restated: list[TrialResult] = []  # rows of waiting trials that stay stopped, saying so (TrialResult.amends)
        self._rerun: set[str] = set()  # trial ids running again: they do not wait a second time
        self._ghosts: set[tuple[str, int]] = set()  # (study, number): a waiting trial's entry, once it runs again
        self._waited = 0  # waiting trials found when resuming
        self.stopped = 0

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self.inner.skipped + self._waited  # trials waiting at the first rung are not trained again meanwhile

    def describe(self) -> str:
        return f"{self.inner.describe()}, early stopping {self.stopping.kind}"

    def _study(self, key: str) -> optuna.Study:
        import optuna

        study = self._studies.get(key)
        if study is None:
            study = optuna.create_study(study_name=f"hpt {key}", direction="minimize",
                                        pruner=make_pruner(self.stopping, self.max_epochs),
                                        sampler=optuna.samplers.RandomSampler(seed=0))
            self._studies[key] = study
        return study

    # -- rebuilding ------------------------------------------------------------------------

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        if self.warm is not None:
            used = len(self._replay([r for r in self.warm.rows if row_key(r) in self._keys], self.warm.curves))
            self.say(f"warm start: early stopping compares trials with {plural(used, 'earlier trial')} of the same "
                     f"periods" + ("" if used else " (none of the warm-start rows is of this spec's periods)"))
        own = [r for r in rows.values() if r.get("status") != Status.INTERRUPTED.value and row_key(r) in self._keys]
        waiting = set()
        for tid, t in self._replay(own, curves).items():
            if self._rungs and waits(rows[tid]):
                # not judged yet (a run that judged it rewrote its row): judged once its inner scheduler suggests it
                # again, at once when its rung has its evidence (the run stopped before it got to it)
                self._waiting[tid] = t, rows[tid]
                waiting.add(tid)
        for row in own:
            if row.get("status") == Status.PRUNED.value and str(row["trial_id"]) not in waiting \
                    and not stopped_for_its_config(row.get("error")):
                self._dead.stop(str(row["config_id"]), f"{row.get('period_start')}..{row.get('period_end')}")
        dead = [tid for tid in waiting if str(rows[tid]["config_id"]) in self._dead]
        for tid in dead:  # its config was stopped in another period: it stays stopped, as the run would have at once
            del self._waiting[tid]
            waiting.discard(tid)
        self._waited = len(waiting)
        self._dead.restored()
        told = dict(rows)
        for tid in dead:  # its row is written again to say so (the run stopped before it did)
            stopped = self._restate(rows[tid])
            if stopped is not None:
                self._restated.append(stopped)
                told[tid] = {**rows[tid], "error": stopped.error}
        # a trial still waiting is not decided: to the inner scheduler it is to run again, as an interrupted one is
        # (tpe keeps its config, and its number, in the study)
        self.inner.restore({tid: {**r, "status": Status.INTERRUPTED.value} if tid in waiting else r
                            for tid, r in told.items()}, curves)

    def _restate(self, row: Mapping[str, Any]) -> TrialResult | None:
        """A waiting row of a config stopped in another period, as the row that says so (None: not a trial of this
        spec's plan, which the run leaves as it is)."""
        from hpt.rows import TAG_COLUMNS, params_of
        from hpt.search import TrialPlan

        period = next((p for p in self.spec.periods
                       if (p.start_text, p.end_text) == (row.get("period_start"), row.get("period_end"))), None)
        if period is None:
            return None
        plan = TrialPlan(self.spec, [])
        params = {k: v for k, v in params_of(row).items() if k in self.spec.parameters}
        trial = next((t for t in (plan.trial(params, period, r) for r in range(self.spec.repeats))
                      if t.trial_id == row.get("trial_id")), None)
        if trial is None:
            return None
        trial = dataclasses.replace(trial, tags={**trial.tags, **{k: row[k] for k in TAG_COLUMNS if k in row}})
        return TrialResult(trial, Status.PRUNED, metrics=dict(row), error=self._dead.error(trial, self._rungs[0]),
                           started_at=str(row.get("started_at") or ""), finished_at=utcnow(),
                           device=str(row.get("device") or ""), amends=True)

    def _replay(self, rows: Iterable[Mapping[str, Any]], curves: Curves | None) -> dict[str, optuna.trial.Trial]:
        """Rebuild the period studies from finished trials: each epoch reported and checked as it was live.
        Returns each trial's entry in its study, by trial id."""
        import optuna

        rows = sorted(rows, key=start_order)
        entries = {}
        texts = curves([str(r["trial_id"]) for r in rows]) if curves is not None and rows else {}
        for row in rows:
            t = self._study(row_key(row)).ask()
            entries[str(row["trial_id"])] = t
            status = str(row.get("status"))
            last = pruned_epoch(row.get("error")) if status == Status.PRUNED.value else None
            limit = _int(row.get(param_column("epochs"))) or self.max_epochs
            best = math.inf
            for epoch, value in curve_values(texts.get(str(row["trial_id"]), ""), self.objective):
                if last is not None and epoch > last:
                    break
                best = min(best, value)
                t.report(best, epoch)
                if epoch < limit:
                    t.should_prune()  # records the rungs the trial reached, as it did live
            state = _STATES.get(status)
            final = metric_value(row, self.objective)
            if state == "COMPLETE" and final is not None and math.isfinite(final):
                self._tell(t, optuna.trial.TrialState.COMPLETE, final)
            elif state == "PRUNED":
                self._tell(t, optuna.trial.TrialState.PRUNED)
            else:
                self._tell(t, optuna.trial.TrialState.FAIL)
        return entries

    @staticmethod
    def _tell(t: optuna.trial.Trial, state: Any, value: float | None = None) -> None:
        t.study.tell(t, value, state=state)

    # -- the run -----------------------------------------------------------------------------

    def remaining(self) -> int | None:
        inner = self.inner.remaining()
        return None if inner is None else inner + len(self._waiting) + len(self._again)

    def _start(self, trial: Trial, before: optuna.trial.Trial | None = None) -> Trial:
        """`trial` as it starts, keeping its training state at the rungs; one that runs again (`before`: its entry
        when it waited) goes on from its checkpoint when there is one, its values up to there told again, and its
        new run reports in place of that entry."""
        t = self._live[trial.trial_id] = self._study(trial_key(trial)).ask()
        trial = dataclasses.replace(trial, checkpoint_at=self._keep_at)
        if before is None:
            return trial
        self._ghosts.add((before.study.study_name, before.number))
        self._rerun.add(trial.trial_id)
        trial = self.book.resumed(trial)
        first = self._rungs[0] if self._rungs else 0
        self.say(f"early stopping: {trial.period.label} {format_params(trial.tuned_params)} waited at epoch {first} and "
                 + ("goes on from there" if trial.resume is not None else "runs again from its first epoch (no "
                    "checkpoint of it is kept)"))
        if trial.resume is not None:
            went = int(trial.tags[RESUMED])
            values = before.study.get_trials(deepcopy=False)[before.number].intermediate_values
            told = {e: v for e, v in sorted(values.items()) if e <= went}
            for epoch, value in told.items():
                t.report(value, epoch)
                t.should_prune()
            self._best[trial.trial_id] = min(told.values(), default=math.inf)
        return trial

    def _judge_waiting(self) -> None:
        """Waiting trials whose first rung now has `min_trials` others: stopped for good, or to run again."""
        first = self._rungs[0] if self._rungs else 0
        for tid, (t, said) in list(self._waiting.items()):
            if not isinstance(said, TrialResult):
                continue  # resuming: judged once the inner scheduler suggests it again
            trial = said.trial
            why = self._dead.why(trial.config_id)
            if why is None and self._peers(t, first) < self.stopping.evidence:
                continue
            del self._waiting[tid]
            behind, others = self._behind(t, first)
            if why is not None:
                self._stays_stopped(trial, said, why=why)
            elif behind_too_many(behind, others, self.stopping.reduction_factor):
                self._stays_stopped(trial, said, behind=f"behind {behind} of {others} trials of its period")
            else:
                self._again.append((t, said))

    def _stays_stopped(self, trial: Trial, said: TrialResult, why: str = "", behind: str = "") -> None:
        """A waiting trial (`said`: the result it waited with) does not run again: out of the best at the first rung
        (`behind`), or its config was stopped in another period (`why`). The log says so, the inner scheduler hears
        it, and its row, which said it waits, is written again to say what came of it (:attr:`_restated`)."""
        first = self._rungs[0]
        where = f"rung 0, {behind}" if behind else f"its config was {why}"
        self.say(f"early stopping: {trial.period.label} {format_params(trial.tuned_params)} waited at epoch "
                 f"{first} and stays stopped ({where})")
        if not self.keep_stopped:
            self.book.drop(trial.trial_id)
        self.stopped += 1
        self._dead.stop(trial.config_id, trial.period.label)
        error = f"pruned at epoch {first} ({where}, {WAITED})" if behind else self._dead.error(trial, first)
        stopped = dataclasses.replace(said, error=error, finished_at=utcnow(), model=None, curve=None, checkpoints={},
                                      amends=True)
        self.inner.on_result(stopped)
        self._restated.append(stopped)

    def suggest(self) -> Trial | TrialResult | Suggestion:
        self._judge_waiting()
        while True:
            if self._restated:
                return self._restated.pop(0)
            if self._again:
                entry, said = self._again.pop(0)
                why = self._dead.why(said.trial.config_id)  # stopped in another period since it was judged in
                if why is None:
                    return self._start(said.trial, entry)
                self._stays_stopped(said.trial, said, why=why)
                continue
            nxt = self.inner.suggest()
            if not isinstance(nxt, Trial):
                if not self._waiting:
                    return nxt
                if self._live:
                    return WAIT  # trials running may bring the evidence the waiting ones lack
                for tid, (t, waited) in list(self._waiting.items()):  # none will: they run again, not
                    # waiting (the inner scheduler may itself wait for them: an auto round ends when its trials have)
                    if isinstance(waited, TrialResult):
                        del self._waiting[tid]
                        self._again.append((t, waited))
                if not self._again:
                    return nxt
                continue
            if nxt.trial_id in self._waiting:  # resuming: a trial that waits at the first rung
                t, row = self._waiting[nxt.trial_id]
                self._waiting[nxt.trial_id] = t, row if isinstance(row, TrialResult) else TrialResult(
                    nxt, Status.PRUNED, metrics=dict(row), error=str(row.get("error") or ""),  # as its row says
                    started_at=str(row.get("started_at") or ""), device=str(row.get("device") or ""))
                self._judge_waiting()
                continue
            if nxt.config_id not in self._dead:
                return self._start(nxt)
            self._dead.not_start(nxt, self.inner)

    def on_progress(self, event: Progress) -> str | None:
        reason = self.inner.on_progress(event)
        tid = event.trial.trial_id
        t = self._live.get(tid)
        if reason or t is None or tid in self._stopping:
            return reason
        value = metric_value(event.metrics, self.objective)
        if value is None:
            return None
        best = min(self._best.get(tid, math.inf), value)
        self._best[tid] = best
        t.report(best, event.epoch)
        if event.epoch >= int(event.trial.params.get("epochs", 0)):
            return None  # at the last epoch, stopping saves nothing
        why = self._dead.why(event.trial.config_id)
        if why is not None:  # another period of its config was stopped while this one ran
            t.should_prune()  # hyperband's pruner records the rungs it reached, as resuming replays them
            self._stopping.add(tid)
            return self._dead.error(event.trial, event.epoch)
        if self._rungs:
            return self._asha(t, tid, event.epoch)
        if not t.should_prune() or self._peers(t, event.epoch) < self.stopping.evidence:
            return None  # too little evidence at this rung: it goes on
        self._stopping.add(tid)
        behind, others = self._behind(t, event.epoch)
        return f"pruned at epoch {event.epoch} ({self._where(t)}, behind {behind} of {others} {self._among()})"

    def _asha(self, t: optuna.trial.Trial, tid: str, epoch: int) -> str | None:
        """asha's decision at `epoch`: at a rung, a trial goes on while in the best 1/reduction_factor of the
        others there (:func:`behind_too_many`). A trial that reached the first rung before `min_trials` others did
        waits there (the class's docstring) while the search has more trials to start; at a later rung it goes on
        meanwhile, and is judged at that rung, by its value there, as soon as they have got there. (Waiting at every
        rung, as the first, stopped too many: benchmarks/README.md.)"""
        t.should_prune()  # Optuna's pruner records the rungs the trial reached (its rows are rebuilt the same way)
        if epoch == self._rungs[0] and tid not in self._rerun and not self.idle \
                and (more := self.inner.remaining()) != 0:  # asked at the first rung only: on_progress is per epoch
            peers = self._peers(t, epoch)
            # not when the trials still to come (of any period) and those running could not bring the evidence: the
            # wait would end with the search, judged by nobody (early_stopping.min_trials above the search's size)
            if peers < self.stopping.evidence and (more is None or peers + more + len(self._live) - 1
                                                   >= self.stopping.evidence):
                self._stopping.add(tid)
                self._pausing.add(tid)
                return (f"pruned at epoch {epoch} (rung 0: {WAITS} for {self.stopping.evidence} other trials of its "
                        f"period, {peers} there so far)")  # then goes on if in their best 1/reduction_factor: the log says
        waiting = self._unjudged.setdefault(tid, [])
        if epoch in self._rungs and not (tid in self._rerun and epoch == self._rungs[0]):
            waiting.append(epoch)  # a waiting trial that runs again was judged at the first rung: once is enough
            # (one that goes on from its checkpoint there does not pass it again)
        for rung in list(waiting):
            if self._peers(t, rung) < self.stopping.evidence:
                continue  # too little evidence at this rung yet: it goes on
            waiting.remove(rung)
            behind, others = self._behind(t, rung)
            if behind_too_many(behind, others, self.stopping.reduction_factor):
                self._stopping.add(tid)
                where = f"rung {self._rungs.index(rung)}" + ("" if rung == epoch else f" at epoch {rung}")
                return f"pruned at epoch {epoch} ({where}, behind {behind} of {others} trials of its period)"
        return None

    def _peers(self, t: optuna.trial.Trial, epoch: int) -> int:
        """How many other trials of t's period (of its bracket, for hyperband) reported a value at `epoch`."""
        return sum(1 for f in self._judged_with(t) if epoch in f.intermediate_values)

    def _others(self, t: optuna.trial.Trial) -> list[optuna.trial.FrozenTrial]:
        """The other trials of t's period (a waiting trial that runs again: its new run only)."""
        name = t.study.study_name
        return [f for f in t.study.get_trials(deepcopy=False)
                if f.number != t.number and (name, f.number) not in self._ghosts]

    def _judged_with(self, t: optuna.trial.Trial) -> list[optuna.trial.FrozenTrial]:
        """The other trials t is judged with: those of its period, and of its bracket with hyperband."""
        import optuna

        trials = self._others(t)
        study = t.study
        pruner = study.pruner
        if isinstance(pruner, optuna.pruners.HyperbandPruner):
            bracket = pruner._get_bracket_id(study, study.get_trials(deepcopy=False)[t.number])
            trials = [f for f in trials if pruner._get_bracket_id(study, f) == bracket]
        return trials

    def _behind(self, t: optuna.trial.Trial, epoch: int) -> tuple[int, int]:
        """(5, 6) for *behind 5 of 6*: how many of the trials t is judged with (:meth:`_judged_with`) that reported
        at `epoch` were better, and how many reported there."""
        mine = t.study.get_trials(deepcopy=False)[t.number].intermediate_values[epoch]
        peers = [f.intermediate_values[epoch] for f in self._judged_with(t) if epoch in f.intermediate_values]
        return sum(v < mine for v in peers), len(peers)

    def _among(self) -> str:
        return "trials of its period's bracket" if self.stopping.kind == "hyperband" else "trials of its period"

    def _where(self, t: optuna.trial.Trial) -> str:
        if self.stopping.kind == "median":
            return "worse than the median of its period"
        attrs = t.study.get_trials(deepcopy=False)[t.number].system_attrs
        done = [int(k.rsplit("_", 1)[1]) for k in attrs if k.startswith("completed_rung_")]
        rung = f"rung {max(done)}" if done else "rung 0"
        return f"{rung} of its hyperband bracket" if self.stopping.kind == "hyperband" else rung  # judged within it

    def on_result(self, result: TrialResult) -> None:
        import optuna

        tid = result.trial.trial_id
        pausing = tid in self._pausing
        if self.keep_stopped or pausing:
            self.book.keep(result)
        else:
            self.book.drop(tid)  # a waiting trial's, once its new run has ended
        t = self._live.pop(tid, None)
        self._best.pop(tid, None)
        self._stopping.discard(tid)
        self._unjudged.pop(tid, None)
        self._pausing.discard(tid)
        if t is not None:
            value = metric_value(result.metrics, self.objective)
            if result.status is Status.OK and value is not None and math.isfinite(value):
                self._tell(t, optuna.trial.TrialState.COMPLETE, value)
            elif result.status is Status.PRUNED and pausing:
                self._tell(t, optuna.trial.TrialState.PRUNED)
                self._waiting[tid] = t, result  # decided once the rung has its evidence
                return
            elif result.status is Status.PRUNED:
                self._tell(t, optuna.trial.TrialState.PRUNED)
                self.stopped += 1
                self._dead.stop(result.trial.config_id, result.trial.period.label)
            else:
                self._tell(t, optuna.trial.TrialState.FAIL)
        self.inner.on_result(result)
