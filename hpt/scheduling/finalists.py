"""``search.finalists``: an adaptive search ends with configs ranked over every period.

Early stopping leaves most configs with a stopped period, and a config missing a period is
never ranked: without more, the ranking and "Is the winner real?" may have one or two
configs to work with. When the search is otherwise done (its strategy has nothing more to
start, or its budget is spent), this wrapper takes the best `finalists` configs and trains
the periods they lack at full fidelity, to the last epoch and without early stopping.

Which configs: with early stopping on epochs, the configs that successive halving takes furthest
when it is replayed at the end with all the evidence (asha's and hyperband's rungs and reduction
factor, one bracket per period; for median every epoch from min_epochs is a rung that keeps the
better half: :func:`replayed`): a trial's reach is the epoch it got to (the
last, for a complete one), or the first rung before that where it is out of the best
1/reduction_factor of every trial of its period that got there (:func:`behind_too_many`; a
trial that ran early passed its rungs before the others got there, so a complete trial is not
better for being complete; a trial that waited at the first rung, or was stopped because its
config was, is judged where it stopped and, if it passes, says nothing); a config's reach is the
least over its periods that started and say (a period early stopping did not start tells nothing
about the config), and configs that got
equally far are ordered by their mean place among their periods' trials at that epoch (the same
period and epoch: comparable values). With asha on data shares, the same replay over the shares
(:meth:`~hpt.scheduling.data_rungs.DataRungs.standing`). With racing alone: those
that ran every period come first, then the others by how far they got: more periods finished,
then a later epoch reached in the period where they were stopped, then their place among the
trials stopped in that period at that epoch. Configs with a failed trial are passed over.

Ids: a finalist's trial of a period is the same trial (same id) as the one early stopping
stopped there; its ok row replaces the pruned row (an ok row supersedes a pruned one) and
carries the tag ``finalist``. With asha or hyperband it goes on from the training state kept
at the last rung it passed (:mod:`hpt.scheduling.checkpoints`; tag ``resumed_epoch``),
instead of training from the first epoch, to the same result. Resuming derives everything
from the rows: configs with a finalist row are finalists first, so an interrupted finalist
stage goes on with the same configs and trains only what they still lack.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hpt.progress import format_params, plural
from hpt.rows import TAG_COLUMNS, params_of
from hpt.scheduling.base import DONE, FINISHED, WAIT, Curves, Scheduler, Suggestion
from hpt.scheduling.checkpoints import RESUMED, Checkpoints
from hpt.scheduling.data_rungs import SHARE
from hpt.scheduling.pruning import (
    Reached,
    curve_values,
    halving_standing,
    max_epochs,
    metric_value,
    period_key,
    row_key,
    rungs,
    stopped_unjudged,
    trial_key,
)
from hpt.search import TrialPlan, config_id
from hpt.spec import Spec
from hpt.spec.search import EarlyStopping
from hpt.trial import Progress, Status, Trial, TrialResult

__all__ = ["FINALIST", "Finalists", "finalists_text"]

FINALIST = "finalist"
"""The row tag (1) of the trials the finalist stage trains."""
_OWN = {FINALIST, RESUMED, SHARE}
"""Tags of one trial, not of its config (a pruned full trial of early stopping on data carries the share it stopped
at; a finalist trains on all of the data)."""


def replayed(stopping: EarlyStopping | None) -> EarlyStopping | None:
    """The successive halving the finalists are chosen by, replayed with all the evidence (None: by periods and epochs
    reached): asha's and hyperband's rungs and reduction factor (one bracket: the period's trials); for median, every
    epoch from min_epochs a rung that keeps the better half. Early stopping on data shares has its own replay."""
    if stopping is None or stopping.resource != "epochs":
        return None
    return dataclasses.replace(stopping, reduction_factor=2) if stopping.kind == "median" else stopping


def finalists_text(count: int, trials_per_config: int, resumes: bool = False) -> str:
    """What ``hpt plan`` says about ``search.finalists`` (`resumes`: stopped trials go on from their last rung)."""
    goes_on = "; a stopped trial goes on from the last rung it passed" if resumes else ""
    return (f"finalists: when the search is done, the best {plural(count, 'config')} by how far they got are completed "
            f"on every period at full epochs, without early stopping (at most {plural(count * trials_per_config, 'more trial')}; "
            f"rows tagged {FINALIST}{goes_on})")


@dataclass
class _Seen(Reached):
    """What the ranking needs of one trial of this search: how far it got, and whether it is a finalist's."""

    finalist: bool = False


class Finalists(Scheduler):
    """Wraps an adaptive search (early stopping inside, budget outside) with the finalist stage."""

    def __init__(self, inner: Scheduler, spec: Spec, count: int, say: Callable[[str], None],
                 book: Checkpoints | None = None, standing: Callable[[], dict[str, tuple[int, float]]] | None = None
                 ) -> None:
        self.inner = inner
        self.book = book  # early stopping's checkpoints: a finalist's stopped trial goes on from its last rung
        self.standing = standing  # early stopping on data shares: its replay of successive halving, config -> reach
        self.spec = spec
        self.count = count
        self.say = say
        self._keys = {period_key(spec.fidelity, p.start_text, p.end_text) for p in spec.periods}
        self._per_config = len(spec.periods) * spec.repeats
        self._most = max_epochs(spec)
        self._seen: dict[str, _Seen] = {}  # trial id -> what it gave
        self._params: dict[str, dict[str, Any]] = {}  # config id -> its tuned values
        self._tags: dict[str, dict[str, Any]] = {}  # config id -> the tags its trials carry (hpt auto's round, tpe's number)
        self._tagged: set[str] = set()  # configs with a finalist row: finalists first when resuming
        self._shielded: set[str] = set()  # trial ids early stopping does not hear (finalists' trials)
        self._running: set[str] = set()
        self._queue: list[Trial] | None = None  # the finalist stage's trials, once it has started
        stopping = spec.search.early_stopping
        self._halving = replayed(stopping)  # early stopping on epochs, as successive halving replays it
        self._rungs = rungs(self._halving, self._most) if self._halving is not None else []
        self._curves: dict[str, dict[int, float]] = {}  # trial id -> epoch -> objective (with rungs: how far it got)
        self._whole = {SHARE: 1.0} if stopping is not None and stopping.resource == "data" else {}  # as its full rows

    @property
    def skipped(self) -> int:  # type: ignore[override]
        return self.inner.skipped

    def describe(self) -> str:
        return f"{self.inner.describe()}, then {plural(self.count, 'finalist')}"

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self.inner.restore(rows, curves)
        if self._rungs and curves is not None:
            mine = [tid for tid, row in rows.items() if row_key(row) in self._keys
                    and row.get("status") in FINISHED]
            for tid, text in (curves(mine) if mine else {}).items():
                self._curves[tid] = dict(curve_values(text, self.spec.objective))
        for tid, row in rows.items():
            key = row_key(row)
            cid, params = str(row["config_id"]), params_of(row)
            if row.get("status") == Status.INTERRUPTED.value or key not in self._keys \
                    or row.get("architecture") != self.spec.architecture:
                continue
            if cid not in self._params:  # a config this spec can rebuild its trials of (the same ids)
                if any(name not in params for name in self.spec.parameters):
                    continue
                tuned = {name: params[name] for name in self.spec.parameters}
                if config_id(self.spec, {**self.spec.base_params, **tuned}) != cid:
                    continue
                self._params[cid] = tuned
                self._tags[cid] = {k: row[k] for k in TAG_COLUMNS if k not in _OWN and row.get(k) is not None}
            status = str(row.get("status"))
            self._note(tid, cid, key, status, row.get("error"), row.get("epochs"), metric_value(row, self.spec.objective),
                       bool(row.get(FINALIST)))

    def _note(self, tid: str, cid: str, key: str, status: str, error: Any, epochs: Any, value: float | None,
              finalist: bool) -> None:
        epoch = Reached.where(error, epochs, self._most)
        self._seen[tid] = _Seen(cid, key, status, epoch, float("inf") if value is None else value,
                                unjudged=stopped_unjudged(error), finalist=finalist)
        if finalist:
            self._tagged.add(cid)

    # -- choosing ----------------------------------------------------------------------------

    def _oks(self) -> Counter[str]:
        """Each config's ok trials (a config with `per_config` of them ran every period)."""
        return Counter(s.config_id for s in self._seen.values() if s.status == Status.OK.value)

    def _ranked(self) -> list[str]:
        """Config ids, the finalists first: those already tagged, then by how far they got."""
        by_config: dict[str, list[_Seen]] = {}
        for seen in self._seen.values():
            by_config.setdefault(seen.config_id, []).append(seen)
        usable = [cid for cid, trials in by_config.items() if cid in self._tagged or cid in self._params and not any(
            s.status in (Status.FAILED.value, Status.DIVERGED.value) for s in trials)]
        if self._rungs:
            return sorted(usable, key=self._halving_key())
        if self.standing is not None:
            return sorted(usable, key=self._standing_key(self.standing()))
        stopped: dict[tuple[str, int], list[float]] = {}  # trials stopped (judged) in a period at an epoch: values
        for seen in self._seen.values():
            if seen.status == Status.PRUNED.value and not seen.unjudged:
                stopped.setdefault((seen.study, seen.epoch), []).append(seen.value)
        oks = self._oks()

        def key(cid: str) -> tuple[Any, ...]:
            trials = by_config[cid]
            ok = oks[cid]
            pruned = [s for s in trials if s.status == Status.PRUNED.value and not s.unjudged]
            first = min(pruned, key=lambda s: s.epoch) if pruned else None
            reached = first.epoch if first else 1 << 30
            place = 0.0
            if first is not None:
                peers = stopped[(first.study, first.epoch)]
                place = sum(v < first.value for v in peers) / len(peers)
            return ok < self._per_config, cid not in self._tagged, -ok, -reached, place, cid

        return sorted(usable, key=key)

    def _halving_key(self) -> Callable[[str], tuple[Any, ...]]:
        """The order of configs successive halving gives, replayed with all the evidence (:func:`halving_standing`)."""
        assert self._halving is not None
        finished = {tid: seen for tid, seen in self._seen.items() if seen.status in FINISHED}
        return self._standing_key(halving_standing(finished, self._curves, self._halving, self._most))

    def _standing_key(self, standing: dict[str, tuple[int, float]]) -> Callable[[str], tuple[Any, ...]]:
        """Configs in the order of a replay of successive halving: the furthest first, then by their place there."""

        def key(cid: str) -> tuple[Any, ...]:
            far, place = standing.get(cid, (0, 1.0))
            return cid not in self._tagged, -far, place, cid

        return key

    def _plan(self) -> TrialPlan:
        return TrialPlan(self.spec, [])

    def _chosen(self, ranked: list[str]) -> list[str]:
        """The finalists among `ranked` (:meth:`_ranked`): the best `count` configs; after a finalist stage began
        (configs with a finalist row, when resuming), its configs, topped up only while fewer than `count` configs
        are tagged or complete, so that rerunning a finished search trains nothing new (the replayed order changes
        once finalists have run to the end, as their values at every rung join the evidence)."""
        if not self._tagged:
            return ranked[:self.count]
        oks = self._oks()
        counted = {cid for cid in ranked if cid in self._tagged or oks[cid] >= self._per_config}
        chosen = [cid for cid in ranked if cid in self._tagged]
        for cid in ranked:
            if len(counted) >= self.count:
                break
            if cid not in counted:
                chosen.append(cid)
                counted.add(cid)
        return chosen

    def _stage(self) -> list[Trial]:
        ranked = self._ranked()
        chosen = self._chosen(ranked)
        if not chosen:
            return []
        plan = self._plan()
        todo = []
        finishing = set()  # chosen configs with a search trial still running (it completes them)
        for cid in chosen:
            for repeat in range(self.spec.repeats):
                for period in self.spec.periods:
                    trial = plan.trial(self._params[cid], period, repeat)
                    seen = self._seen.get(trial.trial_id)
                    if trial.trial_id in self._running:
                        self._shielded.add(trial.trial_id)  # a search trial of a finalist: no longer stopped early
                        finishing.add(cid)
                    elif seen is None or seen.status != Status.OK.value:
                        todo.append(self._finalist(trial))
        configs = len({t.config_id for t in todo})
        best = max(len(chosen), min(self.count, len(ranked)))  # resuming, chosen may leave out complete ones
        if todo:
            resumed = [int(t.tags[RESUMED]) for t in todo if t.resume is not None]
            at = sorted(set(resumed))
            goes_on = (f"; {len(resumed)} {'goes' if len(resumed) == 1 else 'go'} on from the rung where early stopping "
                       f"stopped {'it' if len(resumed) == 1 else 'them'} (epoch{'s' if len(at) > 1 else ''} "
                       f"{', '.join(map(str, at))})") if resumed else ""
            again = sum(1 for t in todo if self.book is not None and t.resume is None
                        and (s := self._seen.get(t.trial_id)) is not None and s.status == Status.PRUNED.value and s.epoch)
            if again:  # stopped off a kept rung, or by an earlier run: checkpoints live in the run that kept them
                goes_on += (f"; {again} {'runs' if again == 1 else 'run'} again from the first epoch (no checkpoint of "
                            f"{'it' if again == 1 else 'them'} is kept)")
            self.say(f"finalists: {plural(configs, 'config')} of the best {best} "
                     f"{'lacks' if configs == 1 else 'lack'} periods; {plural(len(todo), 'trial')} now run to the last "
                     f"epoch without early stopping{goes_on}")
            # a line a config, with its values as early stopping's log wrote them when it stopped or kept it waiting
            for named in dict.fromkeys(f"  config {t.config_id} ({format_params(t.tuned_params)})" for t in todo):
                self.say(named)
        else:
            done = sum(1 for n in self._oks().values() if n >= self._per_config)
            n = len(finishing)
            self.say(f"finalists: nothing left to complete ({plural(done, 'config')} ran every period"
                     + (f"; {n} more {'is' if n == 1 else 'are'} finishing {'its' if n == 1 else 'their'} last "
                        f"{'period' if n == 1 else 'periods'}" if n else "") + ")")
        return todo

    # -- the run -----------------------------------------------------------------------------

    def remaining(self) -> int | None:
        if self._queue is not None:
            return len(self._queue)
        inner = self.inner.remaining()
        if inner is None:
            return None
        # at most `count` configs complete their periods, each a trial running or still to come may leave lacking;
        # near the search's end (this runs after every result: a scan each time would grow with the run), also the
        # periods that the configs the stage would choose now lack: once nothing runs or is to come, what it trains
        maybe = len(self._running) + inner
        if maybe >= self.count:
            return inner + self.count * self._per_config
        oks = self._oks()
        lacking = sum(max(0, self._per_config - oks[cid]) for cid in self._chosen(self._ranked()))
        if not self._rungs and self.standing is None:  # complete configs rank first: once `count` are, none lacks
            maybe = min(maybe, max(0, self.count - sum(1 for n in oks.values() if n >= self._per_config)))
        return inner + lacking + maybe * self._per_config

    def suggest(self) -> Trial | TrialResult | Suggestion:
        if self._queue is None:
            nxt = self.inner.suggest()
            if nxt is WAIT or isinstance(nxt, TrialResult):
                return nxt
            if isinstance(nxt, Trial):
                if nxt.config_id in self._tagged:  # a finalist's period the search had not started (resuming)
                    nxt = dataclasses.replace(nxt, tags={**nxt.tags, FINALIST: 1})
                    self._shielded.add(nxt.trial_id)
                self._running.add(nxt.trial_id)
                return nxt
            self._queue = self._stage()
        while self._queue:
            trial = self._queue.pop(0)
            self._shielded.add(trial.trial_id)
            self._running.add(trial.trial_id)
            return trial
        # a finalist's trial still running may yet end stopped (a stop decided before the stage): wait for it
        return WAIT if self._running & self._shielded else DONE

    def on_progress(self, event: Progress) -> str | None:
        if self._rungs and event.trial.fidelity == self.spec.fidelity:
            value = metric_value(event.metrics, self.spec.objective)
            if value is not None:
                self._curves.setdefault(event.trial.trial_id, {})[event.epoch] = value
        reason = self.inner.on_progress(event)  # heard inside too (tpe keeps the curves its replay compares)
        return None if event.trial.trial_id in self._shielded else reason  # a finalist's trial is never stopped

    def on_result(self, result: TrialResult) -> None:
        trial = result.trial
        tid = trial.trial_id
        self._running.discard(tid)
        if result.status is not Status.INTERRUPTED and trial.fidelity == self.spec.fidelity:  # not a data share's
            if trial.config_id not in self._params:
                self._params[trial.config_id] = dict(trial.tuned_params)
                self._tags[trial.config_id] = {k: v for k, v in trial.tags.items() if k not in _OWN}
            self._note(tid, trial.config_id, trial_key(trial),
                       result.status.value, result.error, result.metrics.get("epochs"),
                       metric_value(result.metrics, self.spec.objective), bool(trial.tags.get(FINALIST)))
        self.inner.on_result(result)  # the finalist stage's own trials too: tpe learns from a finalist's complete result
        if self._queue is not None and tid in self._shielded and result.status is Status.PRUNED:
            # a finalist's search trial that a stop decided before the stage reached: run it again to the last epoch
            self._queue.append(self._finalist(trial))

    def _finalist(self, trial: Trial) -> Trial:
        """`trial` as the finalist stage runs it: tagged, and going on from its checkpoint when it has one."""
        trial = dataclasses.replace(trial, tags={**self._tags.get(trial.config_id, {}), **self._whole, FINALIST: 1},
                                    checkpoint_at=(), resume=None)
        return trial if self.book is None else self.book.resumed(trial)
