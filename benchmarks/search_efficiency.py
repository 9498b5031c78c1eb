"""Search efficiency: random search against the adaptive strategies, on real training.

Strategies (``--strategies``; all but tpe by default): random (full random search, the
baseline), random+asha and tpe+asha (early stopping on epochs), tpe, promote (every config
screened at the quick fidelity, the best 3 run at full fidelity: ``search.promote``),
promote+asha (the same with asha early stopping inside the screen), race
(``search.race``) and asha-data (random search with asha on data shares:
``early_stopping.resource: "data"``, rungs at 1/9 and 1/3 of each period's training windows).

Every strategy gets the same number of configs of the same space (mlp on the bundled
electricity data: lr, hidden_size, num_layers, dropout) over the same periods, repeated
over several seeds (the search seed; training itself is seeded alike); ``--tpe-configs N``
gives tpe and tpe+asha N instead (reported apart, "tpe+asha, N configs"): the other strategies
train random search's own configs, tpe draws its own, and with early stopping a config costs a
fraction of a full one. Per strategy it prints, as the median over seeds:

- compute: the sum of ``train_time_s`` of every trial, pruned, screening and data-share
  ones included, and the epochs trained (an epoch on a share of the data counts as that
  share of one; the same measure without the noise of a shared machine's load); a trial
  that went on from the checkpoint of its stopped run counts only what it trained after it;
- best: the best mean objective found (a config that completed every period);
- configs ranked: how many configs completed every period at the end (median, and the fewest
  over seeds), what the ranking and "Is the winner real?" work with; with early stopping or
  racing the finalists (``search.finalists``, default 3) are among them, and their compute is in
  the totals;
- to target: the compute spent until a config within 2% of the best mean objective that
  full random search found with the same seed had completed every period (trials in the
  order they finished), and that as a fraction of full random search's whole compute.

race drops configs after a period when the Friedman test and Nemenyi's comparison with the
best find them worse. No test can tell configs apart over fewer than 3 periods, so with the
default 2 periods race is random search; ``--periods 4`` (or 5) gives it periods to save
(the other strategies run them too).

The goals (issue 24): random+asha and promote (either kind) reach the target with at most 1/5 of full
random search's compute, tpe+asha with at most 1/3, and every adaptive strategy ends with at
least 3 configs ranked over every period. Trials run on worker processes as ``hpt run`` runs
them (one shared pool, one torch thread per worker); the strategies are interleaved seed by
seed so that load from other processes falls on all of them alike. ``--save FILE`` keeps each
outcome (JSON lines) and ``--merge FILE`` reports saved ones with a new run's, so one strategy
can be rerun (with random's outcomes saved, the ratios need them). ``--repeats N`` runs each
adaptive strategy N times per seed against the one random search: with several workers the
order results arrive in changes what early stopping and tpe decide, so one run's median can
move by a few hundredths; the report then gives each repeat's median and the median of them all.

    python benchmarks/search_efficiency.py            # the table in benchmarks/README.md
    python benchmarks/search_efficiency.py --quick    # a smoke run (about a minute)
    python benchmarks/search_efficiency.py --periods 4 --strategies random,race   # where racing can drop configs
    python benchmarks/search_efficiency.py --seeds 10 --repeats 3 --strategies random,random+asha,tpe+asha
    python benchmarks/search_efficiency.py --seeds 20 --repeats 3 --strategies tpe+asha --tpe-configs 48 \\
        --merge benchmarks/results/search_efficiency_random.jsonl     # tpe+asha with twice the configs
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpt.backends.local import LocalBackend, Slot
from hpt.progress import Reporter, plural
from hpt.runner import drive
from hpt.scheduling import make_scheduler
from hpt.scheduling.checkpoints import RESUMED
from hpt.spec import Spec, check_data, parse_spec
from hpt.spec.search import MIN_EPOCHS, TPE_MIN_EPOCHS
from hpt.trial import Event, Status, Trial, TrialResult

PERIODS = [["2013-01-01", "2013-03-01"], ["2013-07-01", "2013-09-01"]]
MORE_PERIODS = [["2012-07-01", "2012-09-01"], *PERIODS, ["2014-01-01", "2014-03-01"], ["2014-07-01", "2014-09-01"]]
SPACE = {"lr": {"loguniform": [1e-5, 1e-1]}, "hidden_size": {"int": [8, 128]}, "num_layers": {"int": [1, 4]},
         "dropout": {"uniform": [0.0, 0.5]}}
STRATEGIES = ("random", "random+asha", "tpe", "tpe+asha", "promote", "promote+asha", "race", "asha-data")
DEFAULT_STRATEGIES = ("random", "random+asha", "tpe+asha", "promote", "promote+asha", "race", "asha-data")
ADAPTIVE = ("random+asha", "tpe+asha", "promote", "promote+asha", "race", "asha-data")
GOALS = {"random+asha": 1 / 5, "promote": 1 / 5, "promote+asha": 1 / 5, "tpe+asha": 1 / 3}
"""Compute to the target as a share of full random search's (issue 24)."""
PROMOTE_TOP = 3  # promote: the configs the screen sends to full fidelity
TARGET = 0.02  # within 2% of the best mean objective full random search found


def periods(n: int) -> list[list[str]]:
    """The benchmark's periods: two months each, in time order; 2 (the default) are PERIODS."""
    return PERIODS if n == 2 else MORE_PERIODS[:n]


def make_spec(strategy: str, seed: int, configs: int, epochs: int, min_epochs: int | None,
              n_periods: int = 2) -> Spec:
    """The spec of one strategy's run; `min_epochs` None leaves asha's first rung to hpt (1; 2 with tpe)."""
    name, _, stopping = strategy.partition("+")
    search: dict[str, Any] = {"strategy": name, "seed": seed, "max_trials": configs}
    if name == "race":
        search.update(strategy="random", race=True)
    if name == "promote":
        search.update(strategy="random", promote={"top": PROMOTE_TOP})
    if stopping:
        search["early_stopping"] = {"kind": stopping, "reduction_factor": 3}
        if min_epochs is not None:
            search["early_stopping"]["min_epochs"] = min_epochs
    if name == "asha-data":  # random search, asha on growing shares of each period's training windows
        search.update(strategy="random", early_stopping={"kind": "asha", "resource": "data", "reduction_factor": 3})
    doc = {
        "name": f"search-efficiency-{strategy}-{seed}",
        "architecture": "mlp",
        "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
        "date_ranges": periods(n_periods),
        "search": search,
        "parameters": SPACE,
        "training": {"epochs": epochs, "batch_size": 64, "lookback": 48, "horizon": 1, "validation": "7D",
                     "patience": 8},
        "objective": "val_mse",
    }
    return parse_spec(doc, source="benchmark")


class _Shared:
    """The pool, lent to one run after another: closing a run leaves the workers up."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend

    def describe(self) -> str:
        return self.backend.describe()

    def slot_names(self) -> Sequence[str]:
        return self.backend.slot_names()

    def free(self) -> int:
        return self.backend.free()

    def submit(self, trial: Trial) -> None:
        self.backend.submit(trial)

    def poll(self, timeout: float) -> list[Event]:
        return self.backend.poll(timeout)

    def stop(self, trial_id: str, reason: str) -> None:
        self.backend.stop(trial_id, reason)

    def close(self) -> list[TrialResult]:
        return []


@dataclass
class Outcome:
    strategy: str
    seed: int
    compute: float  # sum of train_time_s
    epochs: float  # epochs trained (an epoch on a share of the data counts as that share of one)
    best: float  # best mean objective of a complete config (inf if none)
    timeline: list[tuple[float, float, float]]  # (compute, epochs so far, mean of a config that just completed)
    trials: int
    pruned: int
    wall: float
    ranked: int = 0  # configs that completed every period at the end (what the ranking and verdict work with)
    resumed: float = 0.0  # epochs not trained again: trials that went on from a stopped run's checkpoint
    repeat: int = 0  # which run of this strategy and seed (--repeats): with 2 workers results arrive in another order
    configs: int = 0  # the configs it could ask for (--configs, or --tpe-configs); 0 in outcomes saved before it was kept

    def label(self, configs: int) -> str:
        """The strategy, and its configs where they are not the run's `configs` (tpe with --tpe-configs)."""
        return self.strategy if self.configs in (0, configs) else f"{self.strategy}, {self.configs} configs"

    def to_target(self, target: float) -> float:
        """Compute spent until a complete config was within the target; inf if none was."""
        return next((spent for spent, _, mean in self.timeline if mean <= target), math.inf)

    def epochs_to_target(self, target: float) -> float:
        return next((float(epochs) for _, epochs, mean in self.timeline if mean <= target), math.inf)


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a strategy's run: the benchmark stops too (`code`: 130 or 143)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def configs_of(strategy: str, args: argparse.Namespace) -> int:
    """The configs a strategy's run asks for: --configs, and --tpe-configs for tpe, which draws its own."""
    return args.tpe_configs if strategy.startswith("tpe") and args.tpe_configs else args.configs


def run_one(strategy: str, seed: int, backend: _Shared, args: argparse.Namespace) -> Outcome:
    configs = configs_of(strategy, args)
    spec = make_spec(strategy, seed, configs, args.epochs, args.min_epochs, args.periods)
    scheduler = make_scheduler(spec)
    scheduler.restore({})
    results: list[TrialResult] = []

    def ended(result: TrialResult) -> None:
        if not result.amends:  # a waiting trial's row restated: no new result, no compute
            results.append(result)

    t0 = time.monotonic()
    code = drive(scheduler, backend, ended, Reporter(quiet=True), spec.objective)
    if code:
        raise Interrupted(code)  # an outcome cut short would read as a cheap search
    wall = time.monotonic() - t0
    periods = len(spec.periods)
    spent, epochs, resumed = 0.0, 0.0, 0.0
    values: dict[str, dict[str, float]] = {}  # config -> trial id -> its value (a finalist's replaces its pruned trial)
    broken: set[str] = set()  # configs with a failed or diverged trial
    timeline = []
    for r in results:
        went, before = _resumed(r)  # a trial that went on from a checkpoint: its row counts the time before it too
        spent += float(r.metrics.get("train_time_s", 0.0)) - before
        epochs += (int(r.metrics.get("epochs", 0)) - went) * r.trial.fidelity.share
        resumed += went * r.trial.fidelity.share
        if r.trial.fidelity != spec.fidelity:
            continue  # a screening (promote) or data-share (asha on data) trial: compute, never ranked
        cid = r.trial.config_id
        got = values.setdefault(cid, {})
        if r.status is not Status.OK or spec.objective not in r.metrics:
            if r.status is not Status.PRUNED:
                broken.add(cid)
            got.pop(r.trial.trial_id, None)
            continue
        got[r.trial.trial_id] = float(r.metrics[spec.objective])
        if cid not in broken and len(got) == periods:
            timeline.append((spent, epochs, statistics.fmean(got.values())))
    best = min((mean for _, _, mean in timeline), default=math.inf)
    ranked = sum(1 for cid, got in values.items() if cid not in broken and len(got) == periods)
    return Outcome(strategy, seed, spent, epochs, best, timeline, len(results),
                   sum(r.status is Status.PRUNED for r in results), wall, ranked, resumed, configs=configs)


def _resumed(result: TrialResult) -> tuple[int, float]:
    """(epoch, seconds): where a trial that went on from a checkpoint went on from, and its curve's time there (its
    first run's, counted with that run's result); (0, 0.0) for a trial that started at its first epoch."""
    went = int(result.trial.tags.get(RESUMED, 0))
    if not went or result.status not in (Status.OK, Status.PRUNED):  # a failed one reports no epochs or time
        return 0, 0.0
    curve = csv.DictReader(io.StringIO(result.curve or ""))
    return went, next((float(e["time_s"]) for e in curve if int(float(e["epoch"])) == went), 0.0)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _fmt(v: float, unit: str = "") -> str:
    if math.isinf(v):
        return "missed"
    if math.isnan(v):
        return "-"
    return f"{v:.1f}{unit}" if unit else f"{v:.4g}"


def independent_reach(full: list[Outcome]) -> tuple[int, int]:
    """(hits, pairs): over ordered pairs of full random searches with different seeds, how often the second's best is
    within the first's target (its best + TARGET). The chance that 24 configs of one's own reach a target set by 24
    other random configs: the bar for a strategy that does not train the random search's configs."""
    pairs = [(a, b) for a in full for b in full if a.seed != b.seed]
    return sum(b.best <= a.best * (1 + TARGET) for a, b in pairs), len(pairs)


def report(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    seeds = sorted({o.seed for o in outcomes})
    full = {o.seed: o for o in outcomes if o.strategy == "random"}
    outcomes = [o for o in outcomes if o.seed in full]  # a ratio needs full random search of the same seed
    first = args.min_epochs or f"{MIN_EPOCHS}, {TPE_MIN_EPOCHS} with tpe: hpt's defaults"
    print()
    tpe = f" ({args.tpe_configs} for tpe)" if args.tpe_configs else ""
    print(f"search efficiency: mlp on the bundled electricity data, {args.periods} periods, {args.configs} configs "
          f"per strategy{tpe}, up to {args.epochs} epochs, early stopping asha (min_epochs {first}, "
          f"reduction factor 3); promote: the best {PROMOTE_TOP} by the quick screen (+asha: asha inside the screen); "
          f"asha-data: asha on data shares "
          f"1/9, 1/3, 1; {args.workers} worker processes x 1 torch thread; seeds {', '.join(map(str, seeds))}")
    print(f"target: within {TARGET:.0%} of the best mean val_mse that full random search found with the same seed; "
          "medians over seeds" + (f" and {args.repeats} runs of each adaptive strategy" if args.repeats > 1 else ""))
    print()
    headers = ["strategy", "compute (s)", "epochs", "best mean val_mse", "reached target", "compute to target (s)",
               "to target / random's compute", "in epochs", "pruned trials", "configs ranked (min)", "wall (s)"]
    rows = []
    for strategy in _labels(outcomes, args):
        mine = [o for o in outcomes if o.label(args.configs) == strategy]
        to_target = [o.to_target(full[o.seed].best * (1 + TARGET)) for o in mine]
        reached = sum(not math.isinf(t) for t in to_target)
        rows.append([strategy, _fmt(_median([o.compute for o in mine]), "s"), f"{_median([o.epochs for o in mine]):.0f}",
                     _fmt(_median([o.best for o in mine])), f"{reached}/{len(mine)}", _fmt(_median(to_target), "s"),
                     _ratio(_ratios(mine, full)), _ratio(_ratios(mine, full, epochs=True)),
                     f"{_median([o.pruned for o in mine]):.0f} of {_median([o.trials for o in mine]):.0f}",
                     f"{_median([o.ranked for o in mine]):.0f} ({min(o.ranked for o in mine)})",
                     _fmt(_median([o.wall for o in mine]), "s")])
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for r in [headers, *rows]:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                        strict=True))))
    source = getattr(args, "source", {})
    saved = {o.seed for o in outcomes if source.get((o.strategy, o.seed, o.repeat))
             != source.get(("random", o.seed, full[o.seed].repeat))}  # random search measured in another run
    if saved:
        print()
        print(f"note: random search's outcomes for {plural(len(saved), 'seed')} were measured in another run than "
              "the strategies' (--merge): its compute in seconds carries the machine's speed then, so the time ratios "
              "move with any change in speed since; the epochs ratios do not (run random in the same command, "
              "--strategies random,..., for time ratios of one run)")
    hit, pairs = independent_reach(list(full.values()))
    if pairs:
        print()
        print(f"reference: full random search with another seed's configs reaches a seed's target in {hit} of {pairs} "
              f"seed pairs ({hit / pairs:.0%}): what a strategy that draws configs of its own (tpe) reaches by choosing "
              "no better than at random; random+asha, promote, race and asha-data train the configs of the random "
              "search they are measured against, so one of theirs is the target's config")
    print()
    print("per seed: compute to target (s) / compute (s), epochs to target / epochs, best mean val_mse, configs ranked")
    repeated = args.repeats > 1 or any(o.repeat for o in outcomes)  # saved outcomes of several runs too
    for o in sorted(outcomes, key=lambda o: (STRATEGIES.index(o.strategy), o.label(args.configs), o.seed)):
        target = full[o.seed].best * (1 + TARGET)
        e = o.epochs_to_target(target)
        run = f" run {o.repeat + 1}" if repeated and o.strategy != "random" else ""
        print(f"  {o.label(args.configs):<12} seed {o.seed}{run}: {_fmt(o.to_target(target), 's'):>8} / {o.compute:7.1f}s  "
              f"{'missed' if math.isinf(e) else f'{e:.0f}':>6} / {o.epochs:5.0f}  best {_fmt(o.best)}  "
              f"ranked {o.ranked}")
    print()
    for strategy in _labels(outcomes, args, ADAPTIVE):
        mine = [o for o in outcomes if o.label(args.configs) == strategy]
        if strategy == "race":
            print(f"race: {_median([o.pruned for o in mine]):.0f} of {_median([o.trials for o in mine]):.0f} trials "
                  f"dropped, not trained (median over seeds)"
                  + ("; with 2 periods no test can drop a config: --periods 4 or 5" if args.periods < 4 else ""))
        if any(o.resumed for o in mine):
            print(f"{strategy}: {_median([o.resumed for o in mine]):.0f} epochs not trained again (trials that went on "
                  f"from the checkpoint of their stopped run), {_median([o.resumed / (o.epochs + o.resumed) for o in mine]):.0%} "
                  "of what the run would have trained without (median over seeds)")
        fewest = min(o.ranked for o in mine)
        line = f"goal for {strategy}: >= 3 configs ranked over every period at the end: {fewest} at the fewest -> " \
               + ("met" if fewest >= 3 else "missed")
        goal = GOALS.get(mine[0].strategy)
        if goal is not None:
            ratio = _median(_ratios(mine, full))
            shown = "never reached" if math.isinf(ratio) else f"{ratio:.3f}"
            line += (f"; target within 1/{round(1 / goal)} of full random search's compute (median over seeds): "
                     f"{shown} -> {'met' if ratio <= goal else 'missed'} (in epochs: "
                     f"{_ratio(_ratios(mine, full, epochs=True))})")
            runs = sorted({o.repeat for o in mine})
            if len(runs) > 1:
                each = [_median(_ratios([o for o in mine if o.repeat == r], full)) for r in runs]
                line += (f"; each run: {', '.join('missed' if math.isinf(m) else f'{m:.3f}' for m in each)} "
                         f"(met in {sum(m <= goal for m in each)} of {len(each)})")
        print(line)


def _labels(outcomes: list[Outcome], args: argparse.Namespace, strategies: Sequence[str] = STRATEGIES) -> list[str]:
    """The table's strategies, in STRATEGIES' order: a strategy run with other configs (--tpe-configs) apart."""
    return [label for _, label in sorted({(STRATEGIES.index(o.strategy), o.label(args.configs))
                                          for o in outcomes if o.strategy in strategies})]


def _ratios(mine: list[Outcome], full: dict[int, Outcome], epochs: bool = False) -> list[float]:
    """Per seed: the compute (or epochs) to the target as a share of full random search's whole compute."""
    out = []
    for o in mine:
        target = full[o.seed].best * (1 + TARGET)
        out.append(o.epochs_to_target(target) / full[o.seed].epochs if epochs else
                   o.to_target(target) / full[o.seed].compute)
    return out


def _ratio(values: list[float]) -> str:
    m = _median(values)
    return "missed" if math.isinf(m) else f"{m:.2f}"


def _save(o: Outcome, path: str) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(dataclasses.asdict(o)) + "\n")


def _load(path: str) -> list[Outcome]:
    with open(path) as f:
        return [Outcome(**{**d, "timeline": [tuple(t) for t in d["timeline"]]})
                for d in (json.loads(line) for line in f if line.strip())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 4 configs, 4 epochs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--configs", type=int, default=24)
    parser.add_argument("--tpe-configs", type=int, default=None, metavar="N",
                        help="configs tpe and tpe+asha ask for (default: --configs). The other strategies train random "
                             "search's configs, so one of theirs is the target's; tpe draws its own, and with early "
                             "stopping each costs a fraction of a full one, so more of them can still cost less")
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--min-epochs", type=int, default=None,
                        help=f"asha's first rung for every strategy (default: hpt's, {MIN_EPOCHS}, and {TPE_MIN_EPOCHS} "
                             "with tpe; the tables before hpt made it 1 used 2 for all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each adaptive strategy per seed, against one random search (default 1)")
    parser.add_argument("--periods", type=int, default=2, choices=range(2, len(MORE_PERIODS) + 1),
                        help="periods per config (2: the README's table; race needs 4 or more to drop configs)")
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES),
                        help=f"comma-separated, of {', '.join(STRATEGIES)} (default: all but tpe)")
    parser.add_argument("--save", metavar="FILE", help="append each strategy's outcome to FILE (JSON lines)")
    parser.add_argument("--merge", metavar="FILE", action="append", default=[],
                        help="report these saved outcomes too (a strategy and seed run now replaces its saved one)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        parser.error(f"--strategies: unknown {', '.join(unknown)}; known: {', '.join(STRATEGIES)}")
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    if args.quick:
        args.seeds, args.configs, args.epochs, args.min_epochs = 1, 4, 4, 1
    spec = make_spec("random", 0, args.configs, args.epochs, args.min_epochs, args.periods)
    slots = [Slot(f"cpu-{i}", "cpu", (("CUDA_VISIBLE_DEVICES", ""),), threads=1) for i in range(args.workers)]
    pool = LocalBackend(check_data(spec), slots, spec.objective)
    outcomes = []
    code = 0
    try:
        shared = _Shared(pool)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for strategy, repeat in [(s, r) for s in chosen for r in range(1 if s == "random" else args.repeats)]:
                o = dataclasses.replace(run_one(strategy, seed, shared, args), repeat=repeat)
                outcomes.append(o)
                if args.save:
                    _save(o, args.save)
                run = f" run {repeat + 1}" if args.repeats > 1 and strategy != "random" else ""
                print(f"seed {seed} {strategy:<12}{run} compute {o.compute:7.1f}s  {o.epochs:7.0f} epochs  "
                      f"best mean val_mse {_fmt(o.best)}  {o.pruned} of {o.trials} trials pruned  "
                      f"{o.ranked} configs ranked  wall {o.wall:.1f}s", flush=True)
    except Interrupted as e:
        code = e.code
        print(f"interrupted: {len(outcomes)} outcomes complete; the strategy that was running is left out, "
              "no further strategy starts", file=sys.stderr, flush=True)
    finally:
        pool.close()
    ran = {(o.strategy, o.seed, o.repeat) for o in outcomes}
    args.source = {key: "" for key in ran}  # where each outcome comes from: "" this run, else the saved file
    for path in args.merge:
        more = [o for o in _load(path) if (o.strategy, o.seed, o.repeat) not in ran]
        args.source.update({(o.strategy, o.seed, o.repeat): path for o in more})
        outcomes += more
    if outcomes:
        report(outcomes, args)
    return code


if __name__ == "__main__":
    sys.exit(main())
