"""Does "Is the winner real?" say yes only when something differs? (issue 17)

Tiny MLPs on the bundled electricity data, 6 monthly periods (January to June 2013), each
experiment repeated with fresh seeds; every trial is built by hpt's own plan (seeds per
period) and trained by hpt's own trainer, and every verdict is what `hpt results` says.

(a)  the null experiment: 8 configs that differ only in `seed`. How often is any
     significance claimed? Goal: at most 5% at alpha 0.05.
(a') the same configs trained as hpt trained them before issue 17 (the config's seed in
     every period) and judged by the test of then (the best against the next 3, Wilcoxon,
     uncorrected): the behaviour the issue reported.
(b)  a real difference: the same model with lr 0.003 against lr 0.0001 (30 times too
     small). How often is it detected (the winner is the good config and the verdict says
     it is better)? Goal: at least 80%.
(c)  both at once: 4 seeds of the good lr and 4 of the small one (8 configs): is the winner
     told apart from the small-lr configs, and tied with its equals?

    python benchmarks/verdicts.py              # 20 repetitions of each, about 6 minutes on 2 cores
    python benchmarks/verdicts.py --reps 40 --workers 2
    python benchmarks/verdicts.py --quick      # a smoke run: 2 repetitions, 2 epochs
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import pandas as pd

from hpt.results import ALPHA, Verdict, rank_fidelity, winner_verdict
from hpt.rows import result_row, rows_frame
from hpt.search import expand
from hpt.spec import parse_spec
from hpt.trial import Trial

__all__ = ["main"]

PERIODS = [[f"2013-{m:02d}-01", f"2013-{m + 1:02d}-01"] for m in range(1, 7)]
GOOD_LR, SMALL_LR = 0.003, 0.0001
CONFIGS = 8

_context: Any = None


def _init(data_path: str) -> None:
    global _context
    import torch

    from hpt.data import load_frame
    from hpt.train import TrainContext

    torch.set_num_threads(1)  # one torch thread per worker: workers x 1 thread = the cores in use
    _context = TrainContext(load_frame(data_path, "ts", ("y",)), cache_size=len(PERIODS))


def _train(trial: Trial) -> dict[str, Any]:
    result = _context.run(trial)
    return result_row(dataclasses.replace(result, model=None, curve=None), "verdicts", ["val_mse"])


def _spec(parameters: dict[str, list[Any]], epochs: int, hidden: int) -> Any:
    return parse_spec({
        "name": "verdicts",
        "architecture": "mlp",
        "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
        "date_ranges": PERIODS,
        "parameters": {"hidden_size": [hidden], "num_layers": [1], "dropout": [0.0], "lr": [GOOD_LR], **parameters},
        "training": {"epochs": epochs, "batch_size": 64, "lookback": 24, "horizon": 1, "validation": 0.25, "patience": 3},
        "objective": "val_mse",
    })


def _as_in_0_2(trial: Trial) -> Trial:
    """The trial as hpt ran it before issue 17: the config's own seed in every period."""
    seed = int(trial.params["seed"])
    return dataclasses.replace(trial, seed=seed, trial_id=f"{trial.trial_id}-fixed")


def _old_claims(frame: pd.DataFrame) -> bool:
    """The test before issue 17: the best against each of the next 3, Wilcoxon p < alpha and more wins: "clearly better"."""
    from scipy import stats

    r = rank_fidelity(frame, "val_mse", "full")
    values = r.values.to_numpy(dtype=float)
    for other in values[1:4]:
        d = values[0] - other
        nonzero = d[d != 0]
        if len(nonzero) and stats.wilcoxon(nonzero).pvalue < ALPHA and (nonzero < 0).sum() > (nonzero > 0).sum():
            return True
    return False


def _verdict(frame: pd.DataFrame) -> tuple[Verdict, pd.DataFrame]:
    r = rank_fidelity(frame, "val_mse", "full")
    return winner_verdict(r, detail=0), r.table


def _claims(v: Verdict) -> bool:
    """Any significance claimed: the configs differ (Friedman) or the best is told apart from one."""
    return bool(v.distinguishable) or (v.friedman_p is not None and v.friedman_p < v.alpha)


def _pct(n: int, of: int, goal: str = "") -> str:
    """`n of N (share%)`; with a goal, the exact (Clopper-Pearson) 95% interval of the share too."""
    if not goal:
        return f"{n} of {of} ({100 * n / of:.1f}%)"
    from scipy import stats

    ci = stats.binomtest(n, of).proportion_ci(0.95)
    return f"{n} of {of} ({100 * n / of:.1f}%, 95% interval {100 * ci.low:.1f}-{100 * ci.high:.1f}%; goal {goal})"


def _run(pool: ProcessPoolExecutor, trials: Sequence[Trial]) -> list[dict[str, Any]]:
    return list(pool.map(_train, trials, chunksize=4))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=20, help="repetitions of each experiment")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 repetitions of 2 epochs")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.epochs, args.hidden = 2, 2, 8
    reps, epochs = args.reps, args.epochs
    print(f"verdicts benchmark: mlp (hidden {args.hidden}, 1 layer), lookback 24, <= {epochs} epochs, "
          f"{len(PERIODS)} monthly periods 2013-01..2013-06 of the bundled electricity data, alpha {ALPHA:g}")
    print(f"  {args.workers} worker process{'es' if args.workers != 1 else ''} x 1 torch thread each; "
          f"{reps} repetitions of each experiment", flush=True)
    t0 = time.perf_counter()
    null = {"claimed": 0, "friedman": 0, "apart": 0, "old": 0, "old_fixed": 0}
    real = {"detected": 0, "good_won": 0}
    mixed = {"good_won": 0, "all_small_apart": 0, "some_small_apart": 0, "small_apart": 0, "good_apart": 0}
    data_path = _spec({}, epochs, args.hidden).data.path
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"), initializer=_init,
                             initargs=(data_path,)) as pool:
        for rep in range(reps):
            seeds = list(range(CONFIGS * rep, CONFIGS * (rep + 1)))
            # (a) and (a'): 8 configs that differ only in seed
            plan = list(expand(_spec({"seed": seeds}, epochs, args.hidden)))
            frame = rows_frame(_run(pool, plan))
            v, _ = _verdict(frame)
            null["claimed"] += _claims(v)
            null["friedman"] += v.friedman_p is not None and v.friedman_p < v.alpha
            null["apart"] += bool(v.distinguishable)
            null["old"] += _old_claims(frame)
            fixed = rows_frame(_run(pool, [_as_in_0_2(t) for t in plan]))
            null["old_fixed"] += _old_claims(fixed)
            # (b): a learning rate 30 times too small against a good one, same seed
            frame = rows_frame(_run(pool, list(expand(_spec({"lr": [GOOD_LR, SMALL_LR], "seed": [rep]}, epochs,
                                                                args.hidden)))))
            v, table = _verdict(frame)
            good_won = v.best is not None and float(table.iloc[0]["lr"]) == GOOD_LR
            real["good_won"] += good_won
            real["detected"] += good_won and v.answer == "yes"
            # (c): 4 seeds of each
            frame = rows_frame(_run(pool, list(expand(_spec({"lr": [GOOD_LR, SMALL_LR],
                                                             "seed": list(range(4 * rep, 4 * rep + 4))},
                                                            epochs, args.hidden)))))
            v, table = _verdict(frame)
            lrs = dict(zip(table["config_id"], table["lr"].astype(float), strict=True))
            if v.best is not None and lrs[v.best] == GOOD_LR:
                mixed["good_won"] += 1
                small_apart = sum(lrs[c] == SMALL_LR for c in v.distinguishable)
                mixed["small_apart"] += small_apart
                mixed["all_small_apart"] += small_apart == 4
                mixed["some_small_apart"] += small_apart > 0
                mixed["good_apart"] += sum(lrs[c] == GOOD_LR for c in v.distinguishable)
    wall = time.perf_counter() - t0
    print(f"(a) null: {CONFIGS} configs that differ only in seed (seeds per period, hpt now)")
    print(f"  significance claimed in {_pct(null['claimed'], reps, '<= 5%')} repetitions")
    print(f"    Friedman p < {ALPHA:g}: {_pct(null['friedman'], reps)}; best told apart from some config: "
          f"{_pct(null['apart'], reps)}")
    print(f"    the old uncorrected test (best vs next 3, Wilcoxon) on the same rows: {_pct(null['old'], reps)}")
    print("(a') the same configs trained as before issue 17 (one seed in every period), the old test")
    print(f"  \"clearly better\" claimed in {_pct(null['old_fixed'], reps)} repetitions")
    print(f"(b) real difference: lr {GOOD_LR:g} against lr {SMALL_LR:g} (30x too small), 2 configs")
    print(f"  detected in {_pct(real['detected'], reps, '>= 80%')} repetitions; the good lr won in "
          f"{_pct(real['good_won'], reps)}")
    print(f"(c) both: 4 seeds of lr {GOOD_LR:g} and 4 of lr {SMALL_LR:g} (8 configs)")
    won = mixed["good_won"]
    print(f"  a good-lr config won in {_pct(won, reps)}; when it did, the winner was told apart from all 4 small-lr "
          f"configs in {_pct(mixed['all_small_apart'], max(won, 1))}, from at least one in "
          f"{_pct(mixed['some_small_apart'], max(won, 1))}")
    print(f"  small-lr configs told apart: {_pct(mixed['small_apart'], max(4 * won, 1))}; good-lr configs told apart "
          f"(wrongly): {_pct(mixed['good_apart'], max(3 * won, 1))}")
    trials = reps * (3 * CONFIGS * len(PERIODS) + 2 * len(PERIODS))
    print(f"time: {trials} trials in {wall:.0f}s")


if __name__ == "__main__":
    main()
