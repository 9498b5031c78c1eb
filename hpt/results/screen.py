"""How well a cheaper fidelity's ranking predicts the full one: the comparison of ``hpt screen-check`` and of
``search.promote``'s summary, from rows alone."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hpt.errors import SIGNAL_EXIT
from hpt.fidelity import FULL, QUICK
from hpt.results.rank import Ranking, rank_fidelity

__all__ = ["LOW_CORRELATION", "ScreenCheck", "ScreenPlaces", "compare_rankings", "screen_places"]

LOW_CORRELATION = 0.5
"""Below this rank correlation between the screen and the full results, the screen says little (warned of)."""


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


@dataclass(frozen=True)
class ScreenPlaces:
    """Where the configs of the full ranking stood in the screening (quick) ranking: ``search.promote`` promotes the
    best of the screen, ``hpt screen-check`` runs configs both ways."""

    places: dict[str, int]  # config id -> its place (1 the best) among the screen's ranked configs
    screened: int  # configs the screening ranking has
    both: int  # configs complete in both rankings
    spearman: float  # rank correlation of their means, screen vs full (NaN with fewer than 2)

    def note(self) -> str:
        """What the full ranking's ``screen`` column means, and how well the screen ranked these configs."""
        said = f"screen: its place among the {self.screened} configs of the screening (quick) ranking"
        if self.both < 2:
            return f"{said}; too few configs ranked both ways to say how well the screen ranks them"
        low = f" (below {LOW_CORRELATION}: the screen says little about the full ranking)" \
            if not self.spearman >= LOW_CORRELATION else ""
        return f"{said}; screen vs full: Spearman {self.spearman:.2f} over the {self.both} configs ranked both ways{low}"


def screen_places(full: Ranking, screening: Ranking) -> ScreenPlaces | None:
    """The screen places of the full ranking's configs; None when the rows have no screen or none of its configs ran
    in full."""
    screen = screening.table[~screening.table["partial"].astype(bool)] if not screening.table.empty else screening.table
    if screen.empty or full.table.empty:
        return None
    places = {cid: i for i, cid in enumerate(screen["config_id"].astype(str), 1)}
    complete = full.table[~full.table["partial"].astype(bool)]
    common = [cid for cid in complete["config_id"].astype(str) if cid in places]
    if not any(cid in places for cid in full.table["config_id"].astype(str)):
        return None
    means = screen.set_index(screen["config_id"].astype(str))["mean"]
    mine = complete.set_index(complete["config_id"].astype(str))["mean"]
    rho = float("nan")
    if len(common) > 1:
        from scipy.stats import spearmanr  # a second to import: only when there is something to correlate

        rho = float(spearmanr(means[common], mine[common]).statistic)
    return ScreenPlaces(places, len(screen), len(common), rho)
