"""Does quick screening predict the full run? Run the same configs both ways and compare rankings."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pandas as pd

from hpt.errors import SIGNAL_EXIT, InputError
from hpt.fidelity import FULL, QUICK
from hpt.progress import Reporter
from hpt.results import rank_fidelity
from hpt.runner import RunOptions, run_spec
from hpt.scheduling.plan import PlanScheduler
from hpt.search import TrialPlan, expand
from hpt.sinks import open_sink
from hpt.spec import Spec, quick_spec
from hpt.store import ResultStore

__all__ = ["ScreenCheck", "compare_rankings", "screen_check"]


@dataclass(frozen=True)
class ScreenCheck:
    configs: int  # configs ranked by both runs
    spearman: float  # rank correlation of the mean objective, quick vs full
    top_k: int
    overlap: int  # configs in both top-k lists
    quick_cost_s: float  # summed train_time_s
    full_cost_s: float
    exit_code: int = 0  # of the run that ended the check: 0, 1 (undelivered results), 130/143 (a signal)

    @property
    def cost_ratio(self) -> float:
        return self.quick_cost_s / self.full_cost_s if self.full_cost_s else float("nan")

    def lines(self, objective: str) -> list[str]:
        return [
            f"screen-check over {self.configs} configs ({objective}, lower is better):",
            f"  Spearman rank correlation quick vs full: {self.spearman:.2f}",
            f"  top-{self.top_k} overlap: {self.overlap} of {self.top_k}",
            f"  cost: quick {self.quick_cost_s:.1f}s vs full {self.full_cost_s:.1f}s of training "
            f"= {100 * self.cost_ratio:.0f}% ({1 / self.cost_ratio:.1f}x cheaper)" if self.cost_ratio else "",
        ]


def compare_rankings(rows: pd.DataFrame, objective: str, top_k: int = 3) -> ScreenCheck:
    """Compare the quick and full rankings of the configs both ran."""
    from scipy.stats import spearmanr

    means = {}
    for fidelity in (QUICK, FULL):
        table = rank_fidelity(rows, objective, fidelity.name).table
        means[fidelity] = table.set_index("config_id")["mean"] if not table.empty else pd.Series(dtype=float)
    common = means[QUICK].index.intersection(means[FULL].index)
    quick, full = means[QUICK][common], means[FULL][common]
    rho = float(spearmanr(quick, full).statistic) if len(common) > 1 else float("nan")
    k = min(top_k, len(common))
    overlap = len(set(quick.nsmallest(k).index) & set(full.nsmallest(k).index))
    cost = rows.groupby("fidelity")["train_time_s"].sum()
    return ScreenCheck(len(common), rho, k, overlap, float(cost.get(QUICK.name, 0.0)), float(cost.get(FULL.name, 0.0)))


def screen_check(spec: Spec, n_configs: int, options: RunOptions, reporter: Reporter, top_k: int = 3) -> ScreenCheck:
    """Run the first `n_configs` configs of the spec quick and full (skipping what is done), then compare.

    Both runs train every epoch: the spec's early stopping and budget are not applied here.
    """
    if spec.search.strategy == "tpe":
        raise InputError(f"{spec.source}: screen-check runs a fixed list of configs both ways; tpe chooses its "
                         "configs from results: use a grid or random spec")
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
