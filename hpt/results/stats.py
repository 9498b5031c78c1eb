"""Is the winner real? The best config against the runners-up, paired over the periods both ran."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpt.results.rank import Ranking

__all__ = ["ALPHA", "Comparison", "compare_configs", "periods_needed"]

ALPHA = 0.05
"""The significance level of the paired tests."""


@dataclass(frozen=True)
class Comparison:
    """The best config against another over the periods both ran ok."""

    best: str
    other: str
    shared: int
    wins: int
    losses: int
    ties: int
    mean_diff: float  # best minus other, mean over the shared periods; negative: best is lower
    p_value: float | None  # Wilcoxon signed-rank, two-sided, exact for small samples
    sign_p: float | None  # sign test (binomial) on wins and losses
    verdict: str

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < ALPHA and self.wins > self.losses


def periods_needed(alpha: float = ALPHA) -> int:
    """The fewest paired periods with which a two-sided Wilcoxon test can reach p < alpha at all."""
    n = 1
    while 2.0 / 2**n >= alpha:
        n += 1
    return n


def compare_configs(ranking: Ranking, n: int = 3) -> list[Comparison]:
    """The best config against each of the next `n` in the ranking: wins per period and paired tests."""
    best = ranking.best
    if best is None or n <= 0:
        return []
    from scipy import stats

    a = ranking.values.loc[best.config_id].to_numpy(dtype=float)
    out = []
    others = [c for c in ranking.table["config_id"].head(n + 1) if c != best.config_id][:n]
    for other in others:
        b = ranking.values.loc[other].to_numpy(dtype=float)
        shared = ~(np.isnan(a) | np.isnan(b))
        d = a[shared] - b[shared]
        wins, losses = int((d < 0).sum()), int((d > 0).sum())
        ties = int(len(d) - wins - losses)
        nonzero = d[d != 0]
        p = float(stats.wilcoxon(nonzero).pvalue) if len(nonzero) else None
        sign_p = float(stats.binomtest(wins, wins + losses).pvalue) if wins + losses else None
        mean_diff = float(d.mean()) if len(d) else float("nan")
        out.append(Comparison(best.config_id, str(other), len(d), wins, losses, ties, mean_diff, p, sign_p,
                              _verdict(len(d), len(nonzero), wins, losses, p)))
    return out


def _verdict(shared: int, nonzero: int, wins: int, losses: int, p: float | None) -> str:
    need = periods_needed()
    if shared == 0:
        return "no period in common: cannot compare"
    if p is None:
        return "equal in every shared period"
    if nonzero < need:
        return f"too few periods to tell (needs {need}+)"
    if p < ALPHA:
        return "clearly better" if wins > losses else "different, but the other wins more periods"
    return "no clear difference"
