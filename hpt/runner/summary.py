"""What a run ends with: its counts, the best config at the location against the naive baselines, the last lines."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from hpt.claims import Holder
from hpt.fidelity import fidelity_named
from hpt.progress import Reporter, format_duration, format_params, format_value, plural
from hpt.results import (
    BestConfig,
    Judgement,
    VsBaseline,
    config_judgement,
    main_fidelity,
    rank_fidelity,
    versus_baselines,
)
from hpt.search import config_id
from hpt.spec import Spec
from hpt.trial import Status, TrialResult, says_less, status_counts


@dataclass
class RunSummary:
    run_id: str
    results: str
    skipped: int
    last: dict[str, dict[str, str]] = field(default_factory=dict)  # trial id -> its row's status and error
    ended: int = 0  # the results this run had: a trial stopped, then run again, has two (the progress counter's)
    again: set[str] = field(default_factory=set)  # trials with more than one result in this run (stopped, then run again)
    best: BestConfig | None = None
    best_note: str = ""  # why no config is best, when none is
    vs_baseline: VsBaseline | None = None  # the best config against the better naive baseline
    verdict: Judgement | None = None  # ... and where the other reported errors disagree with the objective's
    exit_code: int = 0
    elapsed_s: float = 0.0
    elsewhere: dict[str, Holder] = field(default_factory=dict)  # trials another live run trains: not started here
    redone: int = 0  # trials done at the location when the run started (its "skipping N trials" line) that this run
    # trained again (waiting trials judged in, finalists): this run's, not skipped

    @property
    def counts(self) -> Counter[str]:
        """The trials this run ran, by status, each once, as its row says (so they add up as ``hpt results``
        counts): its last result, unless that is an interruption of one whose earlier result said how it ended."""
        return status_counts(said["status"] for said in self.last.values())

    def add(self, result: TrialResult) -> None:
        """One result of this run."""
        self.ended += 1
        tid, said = result.trial.trial_id, {"status": result.status.value, "error": str(result.error or "")}
        there = self.last.get(tid)
        if there is not None and result.status is not Status.INTERRUPTED:
            self.again.add(tid)  # stopped, then run again
        if there is None or not says_less(said, there):
            self.last[tid] = said


def judge_best(summary: RunSummary, spec: Spec, trial_rows: pd.DataFrame) -> None:
    """The best config among `trial_rows`, all the rows at the location (other runs' too), and how it fares
    against the baselines."""
    # the run's own fidelity (a --quick run's screen, beside full rows already there), else what best_config ranks
    ranking = rank_fidelity(trial_rows, spec.objective, spec.fidelity.name, [p.label for p in spec.periods])
    fidelity = main_fidelity(trial_rows, spec.objective)
    if ranking.best is None and fidelity != spec.fidelity.name:
        ranking = rank_fidelity(trial_rows, spec.objective, fidelity)
    summary.best, summary.best_note = ranking.best, ranking.why_no_best()
    if summary.best is not None:
        summary.vs_baseline = vs = versus_baselines(trial_rows, ranking).get(summary.best.config_id)
        summary.verdict = None if vs is None else config_judgement(trial_rows, ranking, vs, spec.columns)


def _of_this_spec(spec: Spec, best: BestConfig) -> bool:
    """Whether `spec` makes the config `best` (its data and untuned settings and these tuned values); a config of
    another family counts as this spec's (its name says its family)."""
    if best.architecture and best.architecture != spec.architecture:
        return True
    # a tuned value of null: the best config's values leave it out (it is not the untuned setting)
    nulls = {name: None for name, axis in spec.parameters.items()
             if name not in best.params and isinstance(axis, (list, tuple)) and None in axis}
    try:
        return config_id(spec, {**spec.base_params, **nulls, **best.params}) == best.config_id
    except (TypeError, ValueError):  # values a spec would not have
        return False


def report_end(reporter: Reporter, spec: Spec, s: RunSummary, notes: Sequence[str] = ()) -> None:
    """The run's summary; `notes`: the scheduler's lines about the run (a promotion's screen vs its full results)."""
    counts = ", ".join(f"{n} {k}" for k, n in s.counts.items())
    verb = "interrupted" if s.exit_code else "finished"
    again = (f" ({plural(len(s.again), 'stopped trial')} ran again: {s.ended} results for "
             f"{plural(len(s.last), 'trial')}, each counted once, as its row says)") if s.again else ""
    reporter.line(f"run {s.run_id} {verb} in {format_duration(s.elapsed_s)}: {counts or 'none run'}{again}"
                  + (f"; {s.skipped} skipped as already done" if s.skipped or s.redone else "")
                  + (f", {s.redone} done before trained again" if s.redone else "")
                  + (f"; {len(s.elsewhere)} left to another run" if s.elsewhere else ""))
    if s.exit_code:
        reporter.line("finished trials are kept; run the same command again to do the rest")
    if s.best:
        apart = "" if s.best.fidelity == spec.fidelity.name else \
            f" (from {fidelity_named(s.best.fidelity).rows}: no config has {spec.fidelity.name} results yet)"
        if not _of_this_spec(spec, s.best):  # runs of another spec (other untuned settings) wrote here too
            apart += " (another spec's config, with settings outside this spec's: hpt results tells them apart)"
        order = {name: i for i, name in enumerate(spec.parameters)}  # as the trials' lines give them
        params = dict(sorted(s.best.params.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
        reporter.line(f"best config {s.best.named}{apart}: {format_params(params)}  "
                      f"mean {spec.objective}={format_value(s.best.mean)} over {plural(s.best.periods_run, 'period')}")
        vs = s.vs_baseline
        if vs is not None:  # judged on the objective; the other reported errors where they disagree
            dissent = f"; {s.verdict.dissent()}" if s.verdict is not None and s.verdict.dissent() else ""
            reporter.line(f"best config vs naive baselines: {vs.text(spec.objective)}{dissent}" if vs.beats else
                          f"warning: the best config does not beat the {vs.label} forecast: "
                          f"{vs.text(spec.objective)}{dissent}")
    elif s.best_note:
        reporter.line(s.best_note)
    for line in notes:
        reporter.line(line)
    reporter.line(f"results: {s.results}  (see them with: hpt results {s.results})")
