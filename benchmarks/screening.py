"""Does one-month, 20-epoch screening rank configs as the full run does, and what does it cost?

Runs a grid of LSTM configs on the bundled electricity data twice, quick and full, and prints
the Spearman rank correlation of the two rankings, the top-3 overlap and the cost ratio
(summed training time and wall time), all measured in this run.

    python benchmarks/screening.py            # 12 configs, 2 periods of 3 months, 40 epochs
    python benchmarks/screening.py --configs 16 --epochs 60
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date

from hpt.progress import Reporter
from hpt.runner import RunOptions
from hpt.screening import screen_check
from hpt.spec import parse_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    spec = parse_spec({
        "name": "screening-benchmark",
        "architecture": "lstm",
        "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
        "date_ranges": [["2013-01-01", "2013-04-01"], ["2013-07-01", "2013-10-01"]],
        "parameters": {"lr": [0.0003, 0.001, 0.003, 0.01], "hidden_size": [16, 32, 64], "dropout": [0.0, 0.2]},
        "training": {"epochs": args.epochs, "batch_size": 128, "lookback": 48, "validation": "14D", "patience": 8},
    }, today=date(2026, 11, 22))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        check = screen_check(spec, args.configs, RunOptions(sink=tmp, workers=args.workers), Reporter(quiet=True))
        wall = time.perf_counter() - t0
    print(f"screening benchmark: {check.configs} LSTM configs on electricity_hourly.csv; "
          f"full = 2 periods x 3 months x <= {args.epochs} epochs, quick = 1 month x <= 20 epochs")
    for line in check.lines(spec.objective):
        print(line)
    print(f"  wall time of both runs: {wall:.0f}s")


if __name__ == "__main__":
    main()
