"""Is an early epoch a fair first rung? How well a trial's value after k epochs ranks configs as their final
value does, per period, on the bundled hourly electricity data.

For each architecture, a random search of ``--configs`` configs over 3 periods of 2 months runs to
``--epochs`` epochs without early stopping (``hpt run`` on worker processes, one torch thread
each); then, per period, the Spearman correlation of each trial's best value up to epoch k
(what early stopping judges at a rung at k) with its final value (its row's, the best epoch's).
``early_stopping.min_epochs`` (the first rung) defaults to 1 on this evidence
(benchmarks/README.md, "The first rung at epoch 1").

    python benchmarks/first_rung.py                       # lstm, cnn and mlp, 16 configs each
    python benchmarks/first_rung.py --archs lstm --configs 24 --seed 4
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

PERIODS = [["2013-01-01", "2013-03-01"], ["2013-07-01", "2013-09-01"], ["2014-01-01", "2014-03-01"]]
WIDTH = {"lstm": "hidden_size", "gru": "hidden_size", "mlp": "hidden_size", "cnn": "channels", "tcn": "channels"}
AT = (1, 2, 3, 6)


def spec_of(arch: str, configs: int, epochs: int, seed: int) -> dict:
    return {
        "name": f"first-rung-{arch}", "architecture": arch,
        "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
        "date_ranges": PERIODS,
        "search": {"strategy": "random", "max_trials": configs, "seed": seed},
        "parameters": {"lr": {"loguniform": [0.0001, 0.03]}, WIDTH[arch]: [16, 32, 64], "lookback": [24, 48]},
        "training": {"epochs": epochs, "batch_size": 64, "horizon": 1, "validation": "7D", "patience": 0},
        "objective": "val_mse",
    }


def correlations(results: Path) -> dict[str, dict[int, float]]:
    """Per period: epoch k -> Spearman of the trials' best value up to k with their final value."""
    rows = pd.read_csv(results / "results.csv")
    rows = rows[(rows["status"] == "ok") & ~rows["architecture"].astype(str).str.startswith("naive")]
    out = {}
    for period, trials in rows.groupby("period_start"):
        final, early = [], {k: [] for k in AT}
        for r in trials.itertuples():
            best = pd.read_csv(results / "curves" / f"{r.trial_id}.csv")["val_mse"].cummin().tolist()
            final.append(r.val_mse)
            for k in AT:
                early[k].append(best[min(k, len(best)) - 1])
        out[str(period)] = {k: float(spearmanr(v, final).statistic) for k, v in early.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", default="lstm,cnn,mlp", help=f"comma-separated, of {', '.join(WIDTH)}")
    parser.add_argument("--configs", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in archs if a not in WIDTH]
    if unknown:
        parser.error(f"--archs: unknown {', '.join(unknown)}; known: {', '.join(WIDTH)}")
    print(f"first rung: {args.configs} random configs x {len(PERIODS)} periods of 2 months, {args.epochs} epochs, "
          f"no early stopping, {args.workers} workers x 1 torch thread; Spearman per period of the best value up "
          "to epoch k with the final value (lowest - highest, median)", flush=True)
    print(f"  {'architecture':<14}" + "".join(f"{'epoch ' + str(k):>22}" for k in AT))
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            spec = Path(tmp) / f"{arch}.json"
            spec.write_text(json.dumps(spec_of(arch, args.configs, args.epochs, args.seed)))
            results = Path(tmp) / arch
            done = subprocess.run([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(results), "--workers",
                                   str(args.workers), "--threads", "1", "--quiet"], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{arch}: hpt run exited {done.returncode}:\n{done.stderr}", file=sys.stderr)
                return 1
            by_period = correlations(results)
            cells = []
            for k in AT:
                values = [c[k] for c in by_period.values()]
                cells.append(f"{min(values):.2f}-{max(values):.2f} ({statistics.median(values):.2f})")
            print(f"  {arch:<14}" + "".join(f"{c:>22}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
