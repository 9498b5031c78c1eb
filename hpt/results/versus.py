"""Each ranked config against the better naive baseline, on the same periods and validation windows.

Baseline rows (:mod:`hpt.baselines`) carry the window setting of the trials they were
scored for as ``param_lookback``, ``param_horizon`` and ``param_validation`` where the
spec tunes them; a config is compared with the baseline rows of its fidelity whose setting
is the config's, period by period. Of the two baselines, the one with the lower mean over
the config's periods is "the better baseline".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hpt.baselines import LABELS, WINDOW_KEYS
from hpt.progress import plural
from hpt.results.rank import Ranking, fidelities
from hpt.rows import is_number, plain
from hpt.trial import Status

__all__ = ["VsBaseline", "versus_baselines"]


@dataclass(frozen=True)
class VsBaseline:
    """A config's mean metric against the better baseline's over the periods both have."""

    config_id: str
    baseline: str  # naive-last or naive-seasonal
    config_mean: float
    baseline_mean: float
    periods: int  # periods compared
    better: int  # periods where the config's value is lower than the baseline's

    @property
    def change(self) -> float:
        """The config's mean relative to the baseline's, in percent (negative: the config is lower, better)."""
        if self.baseline_mean == 0:
            return 0.0 if self.config_mean == 0 else math.inf
        return (self.config_mean - self.baseline_mean) / abs(self.baseline_mean) * 100

    @property
    def beats(self) -> bool:
        """The config's mean is lower than the better baseline's."""
        return self.config_mean < self.baseline_mean

    @property
    def label(self) -> str:
        return LABELS.get(self.baseline, self.baseline)

    def text(self) -> str:
        """E.g. ``-38% vs seasonal naive, better in 3 of 3 periods``."""
        return f"{_percent(self.change)} vs {self.label}, better in {self.better} of {plural(self.periods, 'period')}"

    def short(self) -> str:
        """E.g. ``-38% seasonal 3/3``, for a table column."""
        name = "seasonal" if self.baseline == "naive-seasonal" else "last"
        return f"{_percent(self.change)} {name} {self.better}/{self.periods}"

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "config_mean": self.config_mean, "baseline_mean": self.baseline_mean,
                "change_pct": None if math.isinf(self.change) else round(self.change, 2), "periods": self.periods,
                "periods_better": self.better, "beats": self.beats, "text": self.text()}


def _percent(x: float) -> str:
    if math.isinf(x):
        return "+inf%"
    return f"{x:+.0f}%" if abs(x) >= 1 else f"{x:+.1f}%"


def _norm(v: Any) -> Any:
    v = plain(v)
    return float(v) if is_number(v) else (None if v is None else str(v))


def versus_baselines(rows: pd.DataFrame, ranking: Ranking) -> dict[str, VsBaseline]:
    """Each config of `ranking` against the better baseline, by config id; configs without a matching
    baseline row (results from before baselines, or another metric) are left out.

    `rows` are the baseline rows (others are ignored).
    """
    metric = ranking.metric
    if rows.empty or ranking.table.empty or metric not in rows or "architecture" not in rows:
        return {}
    mine = rows[rows["architecture"].isin(LABELS).to_numpy() & (fidelities(rows) == ranking.fidelity).to_numpy()
                & (rows["status"].astype(str) == Status.OK.value).to_numpy() & rows[metric].notna().to_numpy()]
    if mine.empty:
        return {}
    if "finished_at" in mine:
        mine = mine.sort_values("finished_at", kind="stable", na_position="first")  # the latest row of a key wins
    # (baseline, window setting) -> period -> value
    scored: dict[tuple[str, tuple[Any, ...]], dict[str, float]] = {}
    for rec in mine.to_dict(orient="records"):
        setting = tuple(_norm(rec.get(f"param_{k}")) for k in WINDOW_KEYS)
        period = f"{rec['period_start']}..{rec['period_end']}"
        scored.setdefault((str(rec["architecture"]), setting), {})[period] = float(rec[metric])
    out = {}
    table = ranking.table.set_index("config_id")
    for cid, values in ranking.values.iterrows():
        setting = tuple(_norm(table.at[cid, k]) if k in ranking.params else None for k in WINDOW_KEYS)
        best: VsBaseline | None = None
        for name in LABELS:
            base = scored.get((name, setting))
            if not base:
                continue
            shared = [p for p, v in values.items() if pd.notna(v) and p in base]
            if not shared:
                continue
            mine_mean = float(sum(values[p] for p in shared) / len(shared))
            base_mean = float(sum(base[p] for p in shared) / len(shared))
            better = sum(1 for p in shared if values[p] < base[p])
            vs = VsBaseline(str(cid), name, mine_mean, base_mean, len(shared), better)
            if best is None or vs.baseline_mean < best.baseline_mean:
                best = vs
        if best is not None:
            out[str(cid)] = best
    return out
