"""Is the winner real? The best config tested against every other ranked config, corrected for the choice.

The procedure follows Demšar (JMLR 2006), the standard for comparing several models over
several data sets, with the periods as the data sets (blocks):

- Only configs that ran every period are tested (a partial config is "not tested"). A
  period's value is the mean over its seeds (``training.repeats``).
- Three or more configs: a Friedman test over the periods asks whether any config differs
  at all. Only when it does (p < ALPHA), Nemenyi's post-hoc test compares the best with each
  other config by mean rank. Nemenyi's test holds its error rate over every pair of configs,
  so picking the best after seeing the results does not inflate it (Holm's or
  Bonferroni-Dunn's comparisons with a control assume the control was chosen in advance).
- Two configs: a Wilcoxon signed-rank test over the periods (exact, two-sided), as Demšar
  recommends for two models.

A config the tests cannot tell from the best is "tied with the best". With too few periods
no test can reach p < ALPHA at all, and the verdict says so instead of guessing.
Statistics come from scipy: ``friedmanchisquare``, ``wilcoxon`` and the studentized range
distribution that Nemenyi's test refers to (as scikit-posthocs' ``posthoc_nemenyi_friedman``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from hpt.results.rank import Ranking

__all__ = [
    "ALPHA",
    "BETTER_RANKED",
    "Comparison",
    "TIED",
    "UNTESTED",
    "Verdict",
    "WORSE",
    "periods_needed",
    "winner_verdict",
]

ALPHA = 0.05
"""The significance level of the tests."""

TIED = "tied with the best"
WORSE = "worse than the best"
BETTER_RANKED = "ranks above the best"  # told apart from the best, but ranked better in most periods
UNTESTED = "not tested: missing periods"
TOO_FEW = "too few periods to tell"

FRIEDMAN_NEMENYI = "friedman+nemenyi"
WILCOXON = "wilcoxon"


@dataclass(frozen=True)
class Comparison:
    """The best config against another over the periods both ran ok."""

    best: str
    other: str
    shared: int
    wins: int  # periods where the best is lower
    losses: int
    ties: int
    mean_diff: float  # best minus other, mean over the shared periods; negative: the best is lower
    p_value: float | None  # Nemenyi's (corrected for the number of configs) or Wilcoxon's; None when not run
    verdict: str  # TIED, WORSE, BETTER_RANKED, UNTESTED or TOO_FEW

    @property
    def distinguishable(self) -> bool:
        """The tests tell this config apart from the best."""
        return self.verdict in (WORSE, BETTER_RANKED)


@dataclass(frozen=True)
class Verdict:
    """What the tests say about the best config of one ranking.

    `comparisons` are the best against the first configs after it in the ranking (as many
    as asked for); `tied`, `distinguishable` and `untested` name every config.
    """

    best: str | None
    test: str  # FRIEDMAN_NEMENYI, WILCOXON, or "" when nothing was tested
    configs: int  # configs tested (those that ran every period), the best included
    periods: int
    needed: int  # the fewest periods with which the test can reach p < alpha for this many configs
    friedman_p: float | None
    comparisons: tuple[Comparison, ...] = ()
    tied: tuple[str, ...] = ()
    distinguishable: tuple[str, ...] = ()
    untested: tuple[str, ...] = ()
    alpha: float = ALPHA
    better_ranked: tuple[str, ...] = field(default=())  # distinguishable, and ranked above the best
    pair: Comparison | None = None  # two configs: the best against the other, whatever `comparisons` holds

    @property
    def answer(self) -> str:
        """One word: yes (better than every other), partly, no (tied with all), too few periods, or nothing to compare."""
        if self.best is None or self.configs < 2:
            return "nothing to compare"
        if self.periods < self.needed:
            return "too few periods"
        if not self.distinguishable:
            return "no"
        if self.tied or self.better_ranked:
            return "partly"
        return "yes"

    def statement(self, metric: str = "the metric") -> str:
        """The verdict in plain words, one paragraph."""
        b, k, n = self.best, self.configs, self.periods
        others = k - 1
        untested = (f" {_count(len(self.untested), 'config')} missing periods "
                    f"{'is' if len(self.untested) == 1 else 'are'} not tested.") if self.untested else ""
        if b is None:
            return "No config has run every period: none is crowned best, nothing is tested." + untested
        if k < 2:
            return f"Only {b} has run every period: nothing to compare it with." + untested
        if self.answer == "too few periods":
            return (f"Cannot tell yet: with {k} configs no test can reach p < {self.alpha:g} over fewer than "
                    f"{self.needed} periods (these results have {n}), so every config is tied with the best for now. "
                    "Run more periods." + untested)
        how = self._how()
        if self.test == WILCOXON and self.pair is not None:
            c = self.pair
            head = f"{b} beats {c.other} in {c.wins} of {_count(c.shared, 'period')}" + (
                f" and loses {c.losses}" if c.losses else "")
            if c.verdict == WORSE:
                return f"Yes: {head} ({how}): the lead is real at the {self.alpha:g} level." + untested
            if c.verdict == BETTER_RANKED:
                return (f"Unclear: {c.other} beats {b} in most periods ({how}), though {b} has the lower mean {metric}: "
                        "its lead rests on a few periods." + untested)
            return (f"No: {head} ({how}): the two are tied; the lead may be chance. Run more periods, or more seeds "
                    "(training.repeats), to tell them apart." + untested)
        if self.answer == "no":
            differ = " The configs differ somewhere, but not from the best." if (
                self.friedman_p is not None and self.friedman_p < self.alpha) else ""
            return (f"No: {b} is not distinguishable from any of the {others} other configs ({how}): all {k} are tied "
                    f"with the best, and its lead may be chance.{differ} Choose among them by something else (speed, "
                    "size), or run more periods or seeds (training.repeats)." + untested)
        worse = len(self.distinguishable) - len(self.better_ranked)
        if self.answer == "yes":
            return f"Yes: {b} is better than each of the {others} other configs ({how})." + untested
        parts = [f"Partly: {b} is better than {worse} of the {others} other configs ({how})"]
        if self.tied:
            parts.append(f"{_count(len(self.tied), 'config')} {'is' if len(self.tied) == 1 else 'are'} tied with the best: "
                         f"{_ids(self.tied)}")
        text = "; ".join(parts) + "."
        if self.better_ranked:
            text += (f" {_ids(self.better_ranked)} rank{'s' if len(self.better_ranked) == 1 else ''} above {b} in most "
                     f"periods, though {b} has the lower mean {metric}.")
        return text + untested

    def _how(self) -> str:
        if self.test == WILCOXON:
            return f"Wilcoxon p={format_p(None if self.pair is None else self.pair.p_value, self.alpha)}"
        fp = f"Friedman p={format_p(self.friedman_p, self.alpha)} over {_count(self.periods, 'period')}"
        if self.friedman_p is None or self.friedman_p >= self.alpha:
            return fp
        return f"{fp}, then Nemenyi's test of the best against each, corrected for {self.configs} configs"


def format_p(p: float | None, alpha: float = ALPHA) -> str:
    """A p-value as the reports show it: 3 decimals, more where 3 would put it on the other side of `alpha` or on it
    (0.0498 is not shown as 0.050 beside a verdict that it is below 0.05)."""
    if p is None:
        return "-"
    if p < 0.001:
        return f"{p:.1e}"
    text = f"{p:.3f}"
    for digits in range(4, 8):
        shown = float(text)
        if p == alpha or ((shown < alpha) == (p < alpha) and shown != alpha):
            break
        text = f"{p:.{digits}f}"
    return text


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ids(ids: tuple[str, ...], shown: int = 5) -> str:
    more = f" (and {len(ids) - shown} more)" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def periods_needed(configs: int = 2, alpha: float = ALPHA) -> int:
    """The fewest periods with which the test for this many configs can reach p < alpha at all.

    Two configs: the exact two-sided Wilcoxon test (2/2^n < alpha). More: both the Friedman
    test and Nemenyi's test, at their most extreme (every period ranks the configs alike).
    """
    return _periods_needed(max(configs, 2), alpha)


_NEEDED_AT_ALPHA = ((3, 3), (72, 4), (414, 5), (2094, 6), (10190, 7), (48801, 8), (231632, 9))
"""periods_needed(k) at ALPHA for 3 <= k <= _TABLED_UP_TO: (the first k, periods) where the answer steps up.

What :func:`_periods_needed_scipy` gives (tests check every step), without importing scipy.stats
(about a second) for a summary whose periods are too few for any test to run."""
_TABLED_UP_TO = 1_000_000


@lru_cache(maxsize=256)
def _periods_needed(k: int, alpha: float) -> int:
    if k == 2:
        n = 1
        while 2.0 / 2**n >= alpha:
            n += 1
        return n
    if alpha == ALPHA and k <= _TABLED_UP_TO:
        return next(n for first, n in reversed(_NEEDED_AT_ALPHA) if k >= first)
    return _periods_needed_scipy(k, alpha)


def _periods_needed_scipy(k: int, alpha: float) -> int:
    """The fewest periods with which both Friedman's and Nemenyi's tests of `k` > 2 configs can reach p < alpha."""
    from scipy import stats

    crit = float(stats.studentized_range.ppf(1 - alpha, k, np.inf))
    for n in range(2, 10_000):
        friedman = float(stats.chi2.sf(n * (k - 1), k - 1))
        nemenyi_q = math.sqrt(2) * (k - 1) / math.sqrt(k * (k + 1) / (6 * n))
        if friedman < alpha and nemenyi_q > crit:
            return n
    return 10_000


def winner_verdict(ranking: Ranking, detail: int = 3, alpha: float = ALPHA) -> Verdict:
    """Test the best config of `ranking` against every other config that ran every period.

    `detail` is how many configs after the best (in ranking order) get a :class:`Comparison`
    with its p-value; the verdict on every config is in ``tied``, ``distinguishable`` and
    ``untested``.
    """
    best = ranking.best
    table = ranking.table
    partial = table["partial"].astype(bool).to_numpy()
    untested = tuple(map(str, table["config_id"][partial].tolist()))
    n = len(ranking.periods)
    if best is None:
        return Verdict(None, "", 0, n, periods_needed(2, alpha), None, untested=untested, alpha=alpha)
    ids = list(map(str, table["config_id"][~partial].tolist()))  # ranking order: the best first
    k = len(ids)
    needed = periods_needed(k, alpha)
    values = ranking.values.to_numpy(dtype=float)  # configs x periods, in table order
    complete = values[~partial]
    if k < 2:
        return Verdict(best.config_id, "", k, n, needed, None, untested=untested, alpha=alpha)
    others = ids[1:]
    if n < needed:
        verdicts = [TOO_FEW] * len(others)
        p_values: list[float | None] = [None] * len(others)
        test, friedman_p = (WILCOXON if k == 2 else FRIEDMAN_NEMENYI), None
    elif k == 2:
        test, friedman_p = WILCOXON, None
        p, verdict = _wilcoxon(complete[0], complete[1], alpha)
        verdicts, p_values = [verdict], [p]
    else:
        test = FRIEDMAN_NEMENYI
        friedman_p, verdicts, p_values = _friedman_nemenyi(complete, alpha, detail)
    best_values = complete[0]
    pair = _compare(best.config_id, others[0], best_values, complete[1], p_values[0], verdicts[0]) if k == 2 else None
    shown = []
    for i, other in enumerate(others[:max(detail, 0)]):
        shown.append(_compare(best.config_id, other, best_values, complete[i + 1], p_values[i], verdicts[i]))
    rest = max(detail, 0) - len(shown)
    if rest > 0:
        by_id = dict(zip(table["config_id"].astype(str), values, strict=True))
        for other in untested[:rest]:
            shown.append(_compare(best.config_id, other, best_values, by_id[other], None, UNTESTED))
    return Verdict(
        best=best.config_id, test=test, configs=k, periods=n, needed=needed, friedman_p=friedman_p,
        comparisons=tuple(shown),
        tied=tuple(o for o, v in zip(others, verdicts, strict=True) if v in (TIED, TOO_FEW)),
        distinguishable=tuple(o for o, v in zip(others, verdicts, strict=True) if v in (WORSE, BETTER_RANKED)),
        better_ranked=tuple(o for o, v in zip(others, verdicts, strict=True) if v == BETTER_RANKED),
        untested=untested, alpha=alpha, pair=pair,
    )


def _compare(best: str, other: str, a: np.ndarray, b: np.ndarray, p: float | None, verdict: str) -> Comparison:
    shared = ~(np.isnan(a) | np.isnan(b))
    d = a[shared] - b[shared]
    wins, losses = int((d < 0).sum()), int((d > 0).sum())
    return Comparison(best, other, int(shared.sum()), wins, losses, int(len(d) - wins - losses),
                      float(d.mean()) if len(d) else float("nan"), p, verdict)


def _wilcoxon(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[float | None, str]:
    """Wilcoxon's signed-rank test of `a` against `b` over the periods (exact, two-sided)."""
    from scipy import stats

    d = a - b
    nonzero = d[d != 0]
    if not len(nonzero):
        return None, TIED  # equal in every period
    p = float(stats.wilcoxon(nonzero).pvalue)
    if len(nonzero) < periods_needed(2, alpha):
        return p, TOO_FEW  # ties left too few differing periods
    if p >= alpha:
        return p, TIED
    return p, WORSE if (nonzero < 0).sum() > (nonzero > 0).sum() else BETTER_RANKED


def _friedman_nemenyi(values: np.ndarray, alpha: float, detail: int) -> tuple[float, list[str], list[float | None]]:
    """Friedman over the periods, then Nemenyi's test of the first config (the best) against each other one.

    `values` is configs x periods, the best first. P-values of the post-hoc test are computed
    for the first `detail` others only (each costs a numerical integration); the decision on
    every config compares its statistic with the critical value.
    """
    from scipy import stats

    k, n = values.shape
    others = k - 1
    blocks = values.T  # periods x configs
    ranks = stats.rankdata(blocks, axis=1)
    if np.all(ranks == ranks[:, :1]):  # every config scores the same in every period
        return 1.0, [TIED] * others, [None] * others
    friedman_p = float(stats.friedmanchisquare(*values).pvalue)
    if not math.isfinite(friedman_p) or friedman_p >= alpha:
        return friedman_p if math.isfinite(friedman_p) else 1.0, [TIED] * others, [None] * others
    mean_ranks = ranks.mean(axis=0)
    q = np.sqrt(2.0) * np.abs(mean_ranks[1:] - mean_ranks[0]) / math.sqrt(k * (k + 1) / (6.0 * n))
    crit = float(stats.studentized_range.ppf(1 - alpha, k, np.inf))
    verdicts = [TIED if qi <= crit else (BETTER_RANKED if mean_ranks[i + 1] < mean_ranks[0] else WORSE)
                for i, qi in enumerate(q)]
    p_values: list[float | None] = [None] * others
    m = min(max(detail, 0), others)
    if m:
        p_values[:m] = [min(1.0, float(p)) for p in stats.studentized_range.sf(q[:m], k, np.inf)]
    return friedman_p, verdicts, p_values
