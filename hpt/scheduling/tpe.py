"""``search.strategy: "tpe"``: configs chosen by Optuna's TPE sampler from the results so far.

One Optuna study holds one trial per config (ask-and-tell). A config's value is its mean
objective over its periods, told when its last period finishes; a config with a pruned
period is told as pruned, one with a failed or diverged period as failed (its other
periods are then not started). The periods of a config run in parallel on free slots:
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
from hpt.scheduling.base import DONE, Curves, Scheduler, Suggestion
from hpt.scheduling.pruning import metric_value, start_order
from hpt.scheduling.warm import WarmStart, fits, row_params
from hpt.search import TrialPlan, config_id
from hpt.spec import Axis, Distribution, Spec
from hpt.trial import Status, Trial, TrialResult

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
    number: int  # its trial in the study
    waiting: list[optuna.trial.Trial] = field(default_factory=list)  # asked trials told when it is decided
    todo: list[int] = field(default_factory=list)  # periods not yet suggested
    running: set[str] = field(default_factory=set)
    values: dict[int, float] = field(default_factory=dict)  # period -> objective of its ok trial
    state: str = ""  # "", COMPLETE, PRUNED, FAIL
    pruned_at: tuple[int, float] | None = None  # (epoch, value so far) of its pruned period


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
        self._configs[cid] = config
        return config

    # -- rebuilding ------------------------------------------------------------------------

    def restore(self, rows: Mapping[str, Mapping[str, Any]], curves: Curves | None = None) -> None:

        if self.warm is not None:
            self._seed_from(self.warm.rows)
        mine: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows.values():
            if row.get("status") != Status.INTERRUPTED.value and not fits(row, self.spec, value=False):
                mine.setdefault(str(row["config_id"]), []).append(row)

        def order(item: tuple[str, list[Mapping[str, Any]]]) -> tuple[float, tuple[str, str, str]]:
            tags = [float(r[TAG]) for r in item[1] if isinstance(r.get(TAG), (int, float))]
            return (min(tags) if tags else math.inf), min(start_order(r) for r in item[1])

        for cid, config_rows in sorted(mine.items(), key=order):
            params = {name: row_params(config_rows[0])[name] for name in self.spec.parameters}
            config = self._add(params, cid, len(self.study.get_trials(deepcopy=False)))
            ids = {self._trial(config, p).trial_id: p for p in range(self.periods)}
            here = {ids[str(r["trial_id"])]: r for r in config_rows if str(r["trial_id"]) in ids}
            if not here:  # rows of other periods (another month's automatic periods): not this search
                self._params.pop()
                del self._configs[cid]
                continue
            self.asked += 1
            self.skipped += len(here)
            for p, row in here.items():
                status = row.get("status")
                value = metric_value(row, self.spec.objective)
                if status == Status.OK.value and value is not None:
                    config.values[p] = value
                elif status == Status.PRUNED.value:
                    config.state = "PRUNED"
                    config.pruned_at = (int(row.get("epochs") or 1), value if value is not None else math.inf)
                elif not config.state:
                    config.state = "FAIL"
            config.todo = [p for p in range(self.periods) if p not in here]
            if not config.state and not config.todo:
                config.state = "COMPLETE"
            if config.state:
                config.todo = []
                self.study.add_trial(self._frozen(config))
            else:  # some periods still to run: pending, as it was when the run stopped
                self.study.enqueue_trial(params)
                self.study.sampler = self._sampler(config.number)
                config.waiting.append(self.study.ask(self.distributions))
                self._pending.append(config)

    def _seed_from(self, rows: list[dict[str, Any]]) -> None:
        import optuna

        by_config: dict[str, list[dict[str, Any]]] = {}
        for row in sorted(rows, key=start_order):
            by_config.setdefault(str(row["config_id"]), []).append(row)
        for config_rows in by_config.values():
            values = [metric_value(r, self.spec.objective) for r in config_rows]
            params = {name: row_params(config_rows[0])[name] for name in self.spec.parameters}
            self.study.add_trial(optuna.trial.create_trial(
                params=params, distributions=self.distributions, value=sum(v for v in values if v is not None) / len(values),
                user_attrs={"warm_start": True}))
        self._warm_used = len(by_config)
        self.say(f"warm start: tpe starts from {plural(len(by_config), 'earlier config')} "
                 f"({plural(len(rows), 'row')}; a config's value is its mean {self.spec.objective} over its periods there)")

    def _frozen(self, config: _Config) -> optuna.trial.FrozenTrial:
        import optuna

        state = getattr(optuna.trial.TrialState, config.state)
        value = self._mean(config) if config.state == "COMPLETE" else None
        steps = {config.pruned_at[0]: config.pruned_at[1]} if config.pruned_at and config.state == "PRUNED" else None
        return optuna.trial.create_trial(state=state, value=value, params=config.params,
                                         distributions=self.distributions, intermediate_values=steps)

    def _mean(self, config: _Config) -> float:
        return sum(config.values.values()) / len(config.values)

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
                config = self._add(params, cid, asked.number)
                config.waiting.append(asked)
                self._pending.append(config)
                return self.suggest()
            self.repeats += 1
            if known.state:
                self._tell(known, [asked])  # tried before: the same value again
            else:
                known.waiting.append(asked)  # running now: told with it
        return DONE

    def on_result(self, result: TrialResult) -> None:
        config = self._configs.get(result.trial.config_id)
        tid = result.trial.trial_id
        if config is None or tid not in config.running:
            return
        config.running.discard(tid)
        if config.state:
            return  # already decided by another period
        status = result.status
        value = metric_value(result.metrics, self.spec.objective)
        if status is Status.OK and value is not None and math.isfinite(value):
            period = next(p for p in range(self.periods) if self._trial(config, p).trial_id == tid)
            config.values[period] = value
            if len(config.values) == self.periods:
                config.state = "COMPLETE"
        elif status is Status.PRUNED:
            config.state = "PRUNED"
            config.pruned_at = (int(result.metrics.get("epochs", 1)), value if value is not None else math.inf)
        elif status is Status.INTERRUPTED:
            config.todo.insert(0, next(p for p in range(self.periods) if self._trial(config, p).trial_id == tid))
            return
        else:
            config.state = "FAIL"  # failed or diverged: the sampler hears it failed, the run goes on
        if config.state:
            config.todo = []
            self._tell(config, config.waiting)
            config.waiting = []
            self._pending.remove(config)

    def _tell(self, config: _Config, trials: list[optuna.trial.Trial]) -> None:
        import optuna

        for t in trials:
            if config.state == "COMPLETE":
                self.study.tell(t, self._mean(config))
                continue
            if config.state == "PRUNED" and config.pruned_at is not None:
                t.report(config.pruned_at[1], config.pruned_at[0])
            self.study.tell(t, state=getattr(optuna.trial.TrialState, config.state))
