"""``search.strategy: "tpe"``: configs chosen by Optuna's TPE sampler from the results so far.

One Optuna study holds one trial per config (ask-and-tell). A config's value is its mean
objective over its periods, told when its last period finishes; a config with a failed or
diverged period is told as failed (its other periods are then not started).

A config early stopping stopped in a period is told as pruned, with one intermediate value,
which is what Optuna's TPE ranks pruned trials by (after the complete ones: a later step
first, then a lower value). With asha on epochs (the finalists' order, :func:`halving_standing`):
successive halving is replayed with all the evidence, and a config is told complete, with its
mean, only when it completed every period and the replay takes it to the last epoch in each;
any other config that ran (a stopped one, and a complete one the replay stops at a rung: the
first configs pass their rungs before others got there) is told pruned, its step the epoch it
reaches, its value its mean place among its periods' trials at that epoch (periods' losses are
not comparable). So the configs TPE models as the best are the best by the same evidence, not
the first to have run unjudged. With other early stopping: the step is how far it got (the
periods it completed times the most epochs, plus the epoch where it was stopped), the value its
place among the trials of that period at that epoch when it was stopped. What a config stands
for changes as others finish (the replay, a period running when it was stopped that finishes, the
finalist stage that completes it): the study is then rebuilt from what each of its trials stands
for, as resuming does from the rows.

The periods of a config run in parallel on free slots:
the next period of a config already asked is suggested before a new config is asked, so
with N workers at most N configs are pending. Running configs are handed to TPE as
Optuna's "constant liar" does: TPE treats them as bad results until told, so workers that
ask one after another do not get the same corner of the space.

Determinism: the sampler is seeded per ask from (search.seed, the trial's number), so the
n-th config depends only on the study's contents at that moment; with one worker a run,
and a run resumed from its rows, ask the same configs in the same order. Rows carry
``tpe_trial``, the config's number in the study, so resuming rebuilds the study in order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpt.progress import plural
from hpt.rows import params_of
from hpt.scheduling.base import DONE, Curves, Scheduler, Suggestion
from hpt.scheduling.pruning import (
    Reached,
    curve_values,
    halving_standing,
    max_epochs,
    metric_value,
    pruned_epoch,
    start_order,
    stopped_place,
    stopped_unjudged,
)
from hpt.scheduling.stopped import stopped_for_its_config
from hpt.scheduling.warm import WarmStart, fits
from hpt.search import TrialPlan, config_id
from hpt.spec import Axis, Distribution, Spec
from hpt.trial import Progress, Status, Trial, TrialResult

if TYPE_CHECKING:
    import optuna

__all__ = ["TAG", "TPEScheduler", "distribution"]

TAG = "tpe_trial"
"""The row column with a config's number in the study."""


def distribution(axis: Axis) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution of a spec axis: a list is categorical; loguniform, uniform, int as they say."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not isinstance(axis, Distribution):
        return CategoricalDistribution(list(axis))
    if axis.kind == "int":
        return IntDistribution(int(axis.low), int(axis.high))
    return FloatDistribution(float(axis.low), float(axis.high), log=axis.kind == "loguniform")


@dataclass
class _Config:
    index: int  # in the plan
    config_id: str
    params: dict[str, Any]  # the tuned values
    number: int  # its first trial in the study
    waiting: list[optuna.trial.Trial] = field(default_factory=list)  # asked trials told when it is decided
    todo: list[int] = field(default_factory=list)  # periods not yet suggested
    running: set[str] = field(default_factory=set)
    ids: dict[str, int] = field(default_factory=dict)  # trial id -> period
    values: dict[int, float] = field(default_factory=dict)  # period -> objective of its ok trial
    stopped: dict[int, tuple[int, float]] = field(default_factory=dict)  # period -> (epoch, place) where it was stopped
    for_config: set[int] = field(default_factory=set)  # periods stopped because another period of the config was
    finished: dict[str, Reached] = field(default_factory=dict)  # trial id -> how it ended (ok or pruned)
    failed: bool = False
    told: tuple[Any, ...] = ()  # what the study was told of it: (state, value, intermediate values)


class TPEScheduler(Scheduler):
    """Asks Optuna's TPE sampler for up to ``search.max_trials`` configs, one period trial at a time."""

    def __init__(self, spec: Spec, say: Callable[[str], None], warm: WarmStart | None = None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.spec = spec
        self.say = say
        self.warm = warm
        s = spec.search
        self.max_trials = int(s.max_trials or 1)
        self.seed = s.seed
        self.startup = s.startup_trials
        self.distributions = {name: distribution(axis) for name, axis in spec.parameters.items()}
        self.study = optuna.create_study(direction="minimize", study_name="hpt tpe", sampler=self._sampler(0))
        self._params: list[dict[str, Any]] = []  # tuned values of each config, in plan order
        self.plan = TrialPlan(spec, self._params)
        self.periods = len(self.plan.periods)
        self._base = spec.base_params
        self._configs: dict[str, _Config] = {}
        self._pending: list[_Config] = []  # asked, not yet decided, in ask order
        self.asked = 0  # configs asked (restored ones included); at most max_trials
        self.repeats = 0  # asks that gave a config already tried
        self.skipped = 0
        self._warm_used = 0
        self.max_epochs = max_epochs(spec)
        stopping = s.early_stopping
        self._halving = stopping if stopping is not None and stopping.kind == "asha" and stopping.resource == "epochs" \
            else None  # told by successive halving replayed with all the evidence
        self._curves: dict[str, dict[int, float]] = {}  # trial id -> epoch -> objective (with _halving)
        self._stored: Curves | None = None  # the curves at the results location (resuming): those of trials heard of
        # later that ran before (a trial waiting at asha's first rung, judged when the search goes on)
        self._standing: dict[str, tuple[int, float]] = {}  # config id -> its replayed (reach, place)
        self._entries: list[optuna.trial.FrozenTrial | _Config] = []  # what each trial of the study stands for
        self._shift = 0  # resuming: numbers restored configs took beyond their places in the study (lost repeat asks)

    def _sampler(self, number: int) -> optuna.samplers.BaseSampler:
        import numpy as np
        import optuna

        seed = int(np.random.SeedSequence([self.seed, number]).generate_state(1)[0])
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.startup, constant_liar=True)

    def describe(self) -> str:
        return (f"up to {plural(self.max_trials * self.periods, 'trial')} ({plural(self.max_trials, 'config')} "
                f"chosen by tpe x {plural(self.periods, 'period')})")

    def _cid(self, params: Mapping[str, Any]) -> str:
        return config_id(self.spec, {**self._base, **params})

    def _trial(self, config: _Config, period: int) -> Trial:
        trial = self.plan[config.index * self.periods + period]
        return dataclasses.replace(trial, tags={**trial.tags, TAG: config.number})

    def _add(self, params: dict[str, Any], cid: str, number: int) -> _Config:
        self._params.append(params)
        config = _Config(len(self._params) - 1, cid, params, number, todo=list(range(self.periods)))
        config.ids = {self._trial(config, p).trial_id: p for p in range(self.periods)}
        self._configs[cid] = config
        return config

    def _state(self, config: _Config) -> str:
        """"" while undecided, else what the study is told of it: FAIL, COMPLETE or PRUNED."""
        if config.failed:
            return "FAIL"
        if len(config.values) == self.periods:
            return "PRUNED" if self._replayed(config) < self.max_epochs else "COMPLETE"
        return "PRUNED" if config.stopped else ""

    def _replayed(self, config: _Config) -> int:
        """The epoch the replayed successive halving takes the config to (the most epochs without it)."""
        return self._standing.get(config.config_id, (self.max_epochs, 0.0))[0] if self._halving else self.max_epochs

    def _steps(self, config: _Config) -> dict[int, float]:
        """A pruned config's intermediate value, which Optuna's TPE ranks pruned trials by (a later step first,
        then a lower value). With asha on epochs: the epoch the replay takes it to, and its mean place among
        its periods' trials there. Otherwise the step is how far it got: the periods it completed times the most
        epochs, plus the epoch where it was stopped; the value is its place among the trials of that period at
        that epoch (0 the best, 1 the worst), as one period's loss may be ten times another's."""
        if self._halving:
            reach, place = self._standing[config.config_id]
            return {reach: place}
        judged = {p: v for p, v in config.stopped.items() if p not in config.for_config} or config.stopped
        epoch, place = min([v for p, v in judged.items() if p not in config.values] or judged.values())
        return {len(config.values) * self.max_epochs + epoch: place}

    def _replay(self) -> None:
        """Successive halving replayed with every finished trial (asha on epochs)."""
        if self._halving:
            finished = {tid: f for c in self._configs.values() for tid, f in c.finished.items()}
            self._standing = halving_standing(finished, self._curves, self._halving, self.max_epochs)

    def _frozen(self, config: _Config) -> optuna.trial.FrozenTrial:
        import optuna

        state = self._state(config)
        return optuna.trial.create_trial(
            state=getattr(optuna.trial.TrialState, state), value=self._mean(config) if state == "COMPLETE" else None,
            params=config.params, distributions=self.distributions,
            intermediate_values=self._steps(config) if state == "PRUNED" else None)

    def _signature(self, config: _Config) -> tuple[Any, ...]:
        state = self._state(config)
        return (state, self._mean(config) if state == "COMPLETE" else None,
                tuple(self._steps(config).items()) if state == "PRUNED" else ())

    def _mean(self, config: _Config) -> float:
        return sum(config.values.values()) / len(config.values)

    def _hear(self, config: _Config, tid: str, status: Any, metrics: Mapping[str, Any], error: Any) -> None:
        """What one trial of `config` gave (a row or a result)."""
        period = config.ids[tid]
        value = metric_value(metrics, self.spec.objective)
        if status == Status.OK.value and value is not None and math.isfinite(value):
            config.values[period] = value
            config.finished[tid] = Reached(config.config_id, str(period), status, self.max_epochs, value)
        elif status == Status.PRUNED.value:
            epoch = pruned_epoch(error, self.max_epochs)
            if epoch is None:
                try:
                    epoch = int(float(metrics["epochs"]))
                except (KeyError, TypeError, ValueError):
                    return  # not started: its config was stopped in another period
            place = stopped_place(error)
            config.stopped[period] = (epoch, 0.5 if place is None else place)
            if stopped_for_its_config(error):
                config.for_config.add(period)  # another period's stop says how far the config got
            config.finished[tid] = Reached(config.config_id, str(period), status, epoch, math.inf,
                                           unjudged=stopped_unjudged(error))
        elif status != Status.INTERRUPTED.value:
            config.failed = True

    # -- rebuilding ------------------------------------------------------------------------

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:
        self._stored = curves
        if self.warm is not None:
            self._seed_from(self.warm.rows)
        # an interrupted row is a period still to run (so reads a trial waiting at asha's first rung, and without early
        # stopping or racing a pruned row, an earlier run's early stopping: rows_to_resume): the config keeps its place
        # in the study, pending, with its number, so that the numbers after it stay as they were (a resumed run asks
        # what the run never interrupted asks) and a new config never takes one
        redo = (Status.INTERRUPTED.value,)
        mine: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows.values():
            if not fits(row, self.spec, value=False):
                mine.setdefault(str(row["config_id"]), []).append(row)

        def number(config_rows: list[Mapping[str, Any]]) -> float:
            tags = [float(r[TAG]) for r in config_rows if isinstance(r.get(TAG), (int, float))]
            return min(tags) if tags else math.inf

        def order(item: tuple[str, list[Mapping[str, Any]]]) -> tuple[float, tuple[str, str, str]]:
            return number(item[1]), min(start_order(r) for r in item[1])

        numbers = [n for n in map(number, mine.values()) if math.isfinite(n)]
        untagged = int(max(numbers, default=len(self._entries) - 1)) + 1  # rows of an hpt that did not tag them
        for cid, config_rows in sorted(mine.items(), key=order):
            params = {name: params_of(config_rows[0])[name] for name in self.spec.parameters}
            tag = number(config_rows)
            config = self._add(params, cid, int(tag) if math.isfinite(tag) else untagged)
            if not any(str(r["trial_id"]) in config.ids for r in config_rows):
                # rows of other periods (another month's automatic periods): not this search
                self._params.pop()
                del self._configs[cid]
                continue
            here = {str(r["trial_id"]): r for r in config_rows
                    if str(r["trial_id"]) in config.ids and r.get("status") not in redo}
            self.asked += 1
            self.skipped += len(here)
            for tid, row in here.items():
                self._hear(config, tid, row.get("status"), row, row.get("error"))
            config.todo = [p for tid, p in config.ids.items() if tid not in here]
            self._entries.append(config)
            if not math.isfinite(tag):
                untagged += 1
        # a number no config has was an ask that gave a config tried before (it has no rows, and is not in the study
        # rebuilt here): the configs asked from now on are numbered after the last one restored, so that a number
        # stays one config's (the asks left are max_trials less the configs restored: repeats are asked again)
        self._shift = max(0, max([c.number + 1 for c in self._configs.values()], default=0) - len(self._entries))
        if self._halving and curves is not None:
            ids = [tid for c in self._configs.values() for tid in c.finished]
            for tid, text in (curves(ids) if ids else {}).items():
                self._curves[tid] = dict(curve_values(text, self.spec.objective))
        self._replay()
        for config in self._configs.values():
            if self._state(config):
                config.todo = []
            else:  # some periods still to run: pending, as it was when the run stopped
                self._pending.append(config)
        self._rebuild()

    def _ask_again(self, config: _Config) -> None:
        """A trial of the study for a pending config, with its values (resuming, rebuilding)."""
        self.study.enqueue_trial(config.params)
        self.study.sampler = self._sampler(len(self.study.get_trials(deepcopy=False)))
        config.waiting.append(self.study.ask(self.distributions))

    def _rebuild(self) -> None:
        """A decided config learnt more (a period that finished after another was stopped, a finalist's
        periods): the study is made anew from what each of its trials stands for, in order, as resuming does."""
        import optuna

        self.study = optuna.create_study(direction="minimize", study_name="hpt tpe", sampler=self._sampler(0))
        for config in self._pending:
            config.waiting = []
        for entry in self._entries:
            if not isinstance(entry, _Config):
                self.study.add_trial(entry)  # a warm-start config
            elif self._state(entry):
                self.study.add_trial(self._frozen(entry))
                entry.told = self._signature(entry)
            else:
                self._ask_again(entry)

    def _seed_from(self, rows: list[dict[str, Any]]) -> None:
        import optuna

        by_config: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=start_order):
            by_config.setdefault(str(row["config_id"]), []).append(row)
        for config_rows in by_config.values():
            values = [metric_value(r, self.spec.objective) for r in config_rows]
            params = {name: params_of(config_rows[0])[name] for name in self.spec.parameters}
            frozen = optuna.trial.create_trial(
                params=params, distributions=self.distributions, value=sum(v for v in values if v is not None) / len(values),
                user_attrs={"warm_start": True})
            self.study.add_trial(frozen)
            self._entries.append(frozen)
        self._warm_used = len(by_config)
        self.say(f"warm start: tpe starts from {plural(len(by_config), 'earlier config')} "
                 f"({plural(len(rows), 'row')}; a config's value is its mean {self.spec.objective} over its periods there)")

    # -- the run -----------------------------------------------------------------------------

    def remaining(self) -> int:
        return sum(len(c.todo) for c in self._pending) + (self.max_trials - self.asked) * self.periods

    def suggest(self) -> Trial | Suggestion:
        for config in self._pending:
            if config.todo:
                p = config.todo.pop(0)
                trial = self._trial(config, p)
                config.running.add(trial.trial_id)
                return trial
        while self.asked < self.max_trials:
            self.study.sampler = self._sampler(len(self.study.get_trials(deepcopy=False)))
            asked = self.study.ask(self.distributions)
            self.asked += 1
            params = {name: asked.params[name] for name in self.spec.parameters}
            cid = self._cid(params)
            known = self._configs.get(cid)
            if known is None:
                config = self._add(params, cid, asked.number + self._shift)
                self._entries.append(config)
                config.waiting.append(asked)
                self._pending.append(config)
                return self.suggest()
            self.repeats += 1
            self._entries.append(known)
            if self._state(known):
                self._tell(known, [asked])  # tried before: the same value again
            else:
                known.waiting.append(asked)  # running now: told with it
        return DONE

    def on_progress(self, event: Progress) -> str | None:
        """Keeps the objective per epoch of this search's trials (asha on epochs: the replay compares them)."""
        config = self._configs.get(event.trial.config_id)
        if self._halving and config is not None and event.trial.trial_id in config.ids:
            value = metric_value(event.metrics, self.spec.objective)
            if value is not None:
                self._curves.setdefault(event.trial.trial_id, {})[event.epoch] = value
        return None

    def on_result(self, result: TrialResult) -> None:
        """A trial of a config: one this scheduler suggested, or a finalist's (the finalist stage's own trials)."""
        config = self._configs.get(result.trial.config_id)
        tid = result.trial.trial_id
        period = None if config is None else config.ids.get(tid)
        if config is None or period is None:
            return
        config.running.discard(tid)
        decided = bool(config.told)
        if result.status is Status.INTERRUPTED:
            if not decided and period not in config.values:
                config.todo.insert(0, period)
            return
        if self._halving and result.status in (Status.OK, Status.PRUNED) and tid not in self._curves \
                and self._stored is not None:
            # ended without an epoch heard here: it ran before this process (a waiting trial judged on resuming), and
            # its curve is at the results location, as the live run heard it (a failed trial is not read for)
            self._curves.update({t: dict(curve_values(text, self.spec.objective))
                                 for t, text in self._stored([tid]).items()})
        self._hear(config, tid, result.status.value, result.metrics, result.error)
        self._replay()
        if self._state(config) and not decided:  # stopped, failed or diverged: told now, the run goes on
            config.todo = []
            self._tell(config, config.waiting)
            config.waiting = []
            self._pending.remove(config)
        if any(c.told and self._signature(c) != c.told for c in self._configs.values()):
            self._rebuild()

    def _tell(self, config: _Config, trials: list[optuna.trial.Trial]) -> None:
        import optuna

        frozen = self._frozen(config)
        for t in trials:
            if frozen.state is optuna.trial.TrialState.COMPLETE:
                self.study.tell(t, frozen.value)
                continue
            for step, value in frozen.intermediate_values.items():
                t.report(value, step)
            self.study.tell(t, state=frozen.state)
        config.told = self._signature(config)
