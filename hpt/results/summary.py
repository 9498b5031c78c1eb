"""Everything `hpt results` reports about a results location, and the parameters `hpt best` prints."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from hpt.baselines import baseline_mask
from hpt.errors import HptError
from hpt.fidelity import QUICK, fidelity_named
from hpt.progress import plural
from hpt.results.alike import alike_note
from hpt.results.load import check_metric, filter_rows
from hpt.results.rank import (
    BestConfig,
    Planned,
    Ranking,
    empty_ranking,
    fidelities,
    main_fidelity,
    rank_fidelities,
    select,
)
from hpt.results.screen import ScreenPlaces, screen_places
from hpt.results.stats import Comparison, Verdict, winner_verdict
from hpt.results.trends import parameter_trends
from hpt.results.versus import Judgement, VsBaseline, config_judgement, config_keys, mixed_settings, versus_baselines
from hpt.rows import DEFAULT_FIDELITY, param_column
from hpt.trial import Status, status_counts

__all__ = ["Summary", "best_params", "summarise"]


@dataclass(frozen=True)
class Summary:
    """Everything `hpt results` reports about one results location.

    `rankings` has one ranking per fidelity the rows have, ``full`` first; `main_fidelity`
    is the one the best config, the verdict on it and the trends rest on (see
    :func:`hpt.results.rank.main_fidelity`). `verdict` tests the best against every other
    config of that ranking (:func:`hpt.results.stats.winner_verdict`).
    """

    uri: str
    metric: str
    where: str | None
    trials: int
    counts: dict[str, int]
    rankings: dict[str, Ranking]
    main_fidelity: str
    verdict: Verdict
    trends: dict[str, pd.DataFrame]
    problems: pd.DataFrame  # the rows neither ok nor pruned: never ranked, always listed
    missing_metric: int = 0  # ok rows without a value of `metric`
    notes: list[str] = field(default_factory=list)
    baseline_rows: int = 0  # rows of the naive baselines (never ranked, never counted as trials)
    versus: dict[str, Mapping[str, VsBaseline]] = field(default_factory=dict)  # fidelity -> config -> vs the better baseline
    best_verdict: Judgement | None = None  # the best config vs the better baseline, the other errors where they disagree
    alike: str | None = None  # the note on configs alike in the ranking's columns that other specs wrote (in notes too)

    def vs_baseline(self, fidelity: str) -> Mapping[str, VsBaseline]:
        """Each config of a fidelity's ranking against the better naive baseline, by config id."""
        return self.versus.get(fidelity, {})

    @property
    def baseline_warning(self) -> str:
        """A plain warning when the best config does not beat the better naive baseline; "" otherwise."""
        best = self.best
        vs = self.vs_baseline(self.main_fidelity).get(best.config_id) if best is not None else None
        if vs is None or vs.beats:
            return ""
        dissent = self.best_verdict.dissent() if self.best_verdict is not None else ""
        return (f"the best config {vs.config_id} does not beat the {vs.label} forecast: mean {self.metric} "
                f"{vs.config_mean:.4g} against {vs.baseline_mean:.4g} ({vs.text()})" + (f"; {dissent}" if dissent else ""))

    def ranking(self, fidelity: str) -> Ranking:
        """The ranking of one fidelity (of no configs when there are no such rows)."""
        return self.rankings.get(fidelity) or empty_ranking(fidelity, self.metric)

    @cached_property
    def main(self) -> Ranking:
        """The ranking the decision rests on: full-fidelity rows, else the first fidelity with ok rows."""
        return self.ranking(self.main_fidelity)

    @cached_property
    def full(self) -> Ranking:
        return self.ranking(DEFAULT_FIDELITY)

    @cached_property
    def screening(self) -> Ranking:
        return self.ranking(QUICK.name)

    @cached_property
    def screen(self) -> ScreenPlaces | None:
        """Where the full ranking's configs stood in the screening ranking (promotion, screen-check), if they did."""
        return screen_places(self.full, self.screening)

    @property
    def comparisons(self) -> tuple[Comparison, ...]:
        """The best against the first configs after it (as many as `compare` asked for)."""
        return self.verdict.comparisons

    @property
    def best(self) -> BestConfig | None:
        """The best config (:func:`hpt.results.rank.best_config` of these rows)."""
        return self.main.best


def summarise(frame: pd.DataFrame, metric: str = "val_mse", *, where: str | None = None, compare: int = 3,
              uri: str = "", planned: Planned | None = None,
              specs: Mapping[str, Mapping[str, Any]] | None = None) -> Summary:
    """Rank, test and break down the rows of a results location by `metric` (lower is better).

    The best config is tested against every other ranked config; `compare` is how many of
    them (in ranking order) get a detailed comparison. `planned` is each fidelity's periods
    as the runs meant them (:func:`hpt.results.load.planned_periods`): a config that has not
    run one of them is partial, never best. A planned period whose rows `where` leaves out
    altogether is left out with them (``--where "period_start >= '2013-07-01'"`` narrows the periods).
    `specs` is each run's spec by run id (:func:`hpt.results.load.run_specs`): where configs look alike in
    the ranking, a note names the settings of their specs that tell them apart.
    """
    is_base = baseline_mask(frame).to_numpy()
    baselines = frame[is_base]  # never filtered: a config is compared with them on its own periods and windows only
    trials = select(frame, ~is_base)
    if where:
        frame = filter_rows(trials, where) if not is_base.all() else filter_rows(frame, where)
        planned = _narrowed(planned or {}, trials, frame)
        frame = select(frame, ~baseline_mask(frame).to_numpy())
    else:
        frame = trials  # one copy of 100,000 rows without the baselines', not two
    metric = check_metric(frame if not frame.empty else baselines, metric)
    rankings = rank_fidelities(frame, metric, planned)
    main = main_fidelity(frame, metric)
    main_ranking = rankings.get(main) or empty_ranking(main, metric)
    main_rows = select(frame, fidelities(frame) == main)
    status = frame["status"].astype(str)
    counts = dict(status_counts(status))
    ok = status == Status.OK.value
    problems = frame[~ok & (status != Status.PRUNED.value)]  # pruned configs are listed apart, per ranking
    notes = []
    ranked = [f for f, r in rankings.items() if not r.table.empty]
    if main != DEFAULT_FIDELITY and ranked:
        if ranked == [main]:
            notes.append(f"only {fidelity_named(main).rows} so far: the ranking below is from them")
        else:
            notes.append(f"no full rows ranked yet: the best config, comparisons and trends are from the {main} rows")
    missing = int((ok & frame[metric].isna()).sum())
    if missing:
        notes.append(f"{plural(missing, 'ok trial')} without a {metric} value left out of the ranking")
    keys = config_keys(frame)  # each config's baseline key, once for every use below
    mixed = mixed_settings(main_ranking, keys)
    if mixed:  # several specs wrote here: another target, file or fixed horizon, alike in the parameters shown
        alike: str | None = (
            f"{len(mixed)} data or window settings are ranked together (specs of another target, file or horizon "
            f"wrote here; the parameters shown do not tell them apart): {metric} compares within one; "
            f"--where \"baseline_key == '{mixed[0]}'\" ranks the best config's")
    else:
        alike = alike_note(main_ranking, main_rows, specs or {})
    if alike is not None:
        notes.append(alike)
    versus = {f: versus_baselines(baselines, r, keys) for f, r in rankings.items()}
    best = main_ranking.best
    vs = versus.get(main, {}).get(best.config_id) if best is not None else None
    judged = None
    if vs is not None:  # the best config's rows and the baselines' (config_judgement takes no other)
        mine = frame[(frame["config_id"].astype(str) == vs.config_id).to_numpy()]
        judged = config_judgement(pd.concat([mine, baselines]), main_ranking, vs, frame.columns)
    shown = baselines
    if where and len(baselines):  # the baselines of the periods (and fidelities) the rows left in cover
        def places(rows: pd.DataFrame) -> pd.Series:
            return rows["period_start"].astype(str) + ".." + rows["period_end"].astype(str) + " " + fidelities(rows)

        shown = baselines[places(baselines).isin(set(places(frame))).to_numpy()]
    return Summary(uri=uri, metric=metric, where=where, trials=len(frame), counts=counts, rankings=rankings,
                   main_fidelity=main, verdict=winner_verdict(main_ranking, compare),
                   trends=_trends(main_rows, metric, main_ranking), problems=problems,
                   missing_metric=missing, notes=notes, baseline_rows=len(shown), versus=versus,
                   best_verdict=judged, alike=alike)


def _trends(rows: pd.DataFrame, metric: str, ranking: Ranking) -> dict[str, pd.DataFrame]:
    """:func:`parameter_trends` of the tuned parameters; where the ranking holds several families (one location, a
    spec per family), the metric per family first: a parameter's values pool the families that have it."""
    if "architecture" not in ranking.table or "architecture" not in rows:
        return parameter_trends(rows, metric, ranking.params)
    rows = rows.assign(**{param_column("architecture"): rows["architecture"].astype(str)})
    return parameter_trends(rows, metric, ["architecture", *ranking.params])


def _narrowed(planned: Planned, before: pd.DataFrame, after: pd.DataFrame) -> dict[str, list[str]]:
    """The planned periods, less those that had rows before a --where filter and have none after it."""
    def periods(rows: pd.DataFrame) -> set[tuple[str, str]]:
        if rows.empty or "period_start" not in rows:
            return set()
        labels = rows["period_start"].astype(str) + ".." + rows["period_end"].astype(str)
        return set(zip(fidelities(rows), labels, strict=True))

    dropped = periods(before) - periods(after)
    return {f: [p for p in ps if (f, p) not in dropped] for f, ps in planned.items()}


def best_params(summary: Summary) -> dict[str, list[Any]]:
    """The best config's tuned parameters as spec ``parameters``: one-value grid axes, ready to paste.

    Raises HptError when no config ran every period.
    """
    r = summary.main
    best = r.best
    if best is None:
        if r.table.empty:
            raise HptError(f"{summary.uri}: {r.why_no_best()}")
        raise HptError(f"{r.why_no_best()}; finish the run, or narrow the periods with --where")
    return {p: [v] for p, v in best.params.items()}
