"""Does quick screening predict the full run? Run the same configs both ways and compare rankings."""

from __future__ import annotations

import dataclasses

import pandas as pd

from hpt.errors import SIGNAL_EXIT, InputError
from hpt.progress import Reporter
from hpt.results.screen import ScreenCheck, compare_rankings
from hpt.runner import RunOptions, run_spec
from hpt.scheduling.plan import PlanScheduler
from hpt.search import TrialPlan, expand
from hpt.sinks import open_sink
from hpt.spec import Spec, quick_spec
from hpt.store import ResultStore

__all__ = ["ScreenCheck", "compare_rankings", "screen_check"]


def screen_check(spec: Spec, n_configs: int, options: RunOptions, reporter: Reporter, top_k: int = 3) -> ScreenCheck:
    """Run the first `n_configs` configs of the spec quick and full (skipping what is done), then compare.

    Both runs train every epoch: the spec's early stopping and budget are not applied here.
    """
    if spec.search.strategy == "tpe":
        raise InputError(f"{spec.source}: screen-check runs a fixed list of configs both ways; tpe chooses its "
                         "configs from results: use a grid or random spec")
    s = spec.search
    unused = [name for name, on in (("early_stopping", s.early_stopping), ("race", s.race), ("promote", s.promote),
                                    ("budget", s.budget)) if on]
    if unused:  # each config is trained to its last epoch both ways: an earlier run's stopped trials train again
        reporter.line(f"screen-check trains every config to its last epoch, quick and full: the spec's "
                      f"search.{', search.'.join(unused)} {'is' if len(unused) == 1 else 'are'} not used here")
        spec = dataclasses.replace(spec, search=dataclasses.replace(s, early_stopping=None, race=False, promote=None,
                                                                    budget=None))
    configs = list(expand(spec).configs[:n_configs])
    quick = quick_spec(spec)
    ids = set()
    exit_code = 0
    for variant in (quick, spec):
        plan = TrialPlan(variant, configs)
        ids |= set(plan.trial_ids())
        reporter.line(f"screen-check: {variant.fidelity} run of {len(configs)} configs on "
                      + ", ".join(p.label for p in variant.periods))
        summary = run_spec(variant, options, reporter, scheduler=PlanScheduler(plan))
        exit_code = exit_code or summary.exit_code
        if summary.exit_code in SIGNAL_EXIT.values():
            break  # interrupted: the full run is not started
    store = ResultStore(open_sink(summary.results))
    rows = pd.DataFrame([r for r in store.rows().values() if r["trial_id"] in ids])
    result = compare_rankings(rows, spec.objective, top_k)
    return dataclasses.replace(result, exit_code=exit_code)
