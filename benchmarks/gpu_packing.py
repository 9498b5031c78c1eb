"""Completed trials per hour on the local GPUs at 1, 2, 4 and 8 trials per GPU, and bf16 vs fp32.

Runs the same 32 small LSTM trials (bundled electricity data, one month each) at each
packing level through hpt's own runner and worker pool, and prints trials/hour and the ratio
to 1 trial per GPU (goal: >= 3x at the best packing), then the best packing again with
``training.amp = "bf16"``. Needs a CUDA GPU:

    python benchmarks/gpu_packing.py                 # all visible GPUs
    python benchmarks/gpu_packing.py --levels 1 4 --trials 16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import date

from hpt.backends.local import visible_gpus
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.spec import parse_spec


def spec_for(trials: int, amp: str, epochs: int) -> object:
    lrs = [round(1e-3 * (1 + i / trials), 6) for i in range(trials)]  # distinct configs, same cost
    return parse_spec({
        "name": "gpu-packing",
        "architecture": "lstm",
        "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
        "date_ranges": [["2013-03-01", "2013-04-01"]],
        "parameters": {"lr": lrs},
        "training": {"epochs": epochs, "batch_size": 256, "lookback": 48, "patience": 0, "lr_decay": 1.0,
                     "amp": amp},
    }, today=date(2026, 11, 22))


def measure(trials: int, per_gpu: int, amp: str, epochs: int) -> float:
    """Trials per hour for one packing level (wall time of the whole run, worker start-up included)."""
    spec = spec_for(trials, amp, epochs)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = run_spec(spec, RunOptions(sink=tmp, trials_per_gpu=per_gpu), Reporter(quiet=True))  # type: ignore[arg-type]
        wall = time.perf_counter() - t0
    if summary.counts.get("ok", 0) != trials:
        print(f"  warning: {dict(summary.counts)}", file=sys.stderr)
    return trials / wall * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--repeat", type=int, default=2, help="runs per level; the median is reported")
    args = parser.parse_args()
    gpus = visible_gpus()
    if not gpus:
        print("gpu_packing: needs a CUDA GPU and none is visible; run it on the GPU box", file=sys.stderr)
        sys.exit(2)
    print(f"gpu_packing: {args.trials} LSTM trials (hidden 64, 1 month, {args.epochs} epochs) on GPUs {', '.join(gpus)}")
    print(f"{'trials/GPU':>10} {'trials/hour':>12} {'vs 1/GPU':>9}")
    rates = {}
    for level in args.levels:
        rates[level] = statistics.median(measure(args.trials, level, "off", args.epochs) for _ in range(args.repeat))
        print(f"{level:>10} {rates[level]:>12.0f} {rates[level] / rates[args.levels[0]]:>8.2f}x")
    best = max(rates, key=lambda k: rates[k])
    bf16 = statistics.median(measure(args.trials, best, "bf16", args.epochs) for _ in range(args.repeat))
    print(f"best packing {best}/GPU: fp32 {rates[best]:.0f} trials/hour, bf16 {bf16:.0f} ({bf16 / rates[best]:.2f}x)")


if __name__ == "__main__":
    main()
