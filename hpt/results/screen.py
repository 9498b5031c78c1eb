"""How well a cheaper fidelity's ranking predicts the full one: the comparison of ``hpt screen-check`` and of
``search.promote``'s summary, from rows alone."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hpt.errors import SIGNAL_EXIT
from hpt.fidelity import FULL, QUICK
from hpt.results.rank import rank_fidelity

__all__ = ["ScreenCheck", "compare_rankings"]


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
        if self.exit_code in SIGNAL_EXIT.values():
            return ["screen-check interrupted: no comparison; the same command goes on from the trials that finished"]
        if self.configs < 2:
            return [f"screen-check: {self.configs} config{'' if self.configs == 1 else 's'} ranked by both runs: too few "
                    "to compare rankings (--configs 2 or more, whose trials finish ok both ways)"]
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
