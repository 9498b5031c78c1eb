"""How long `hpt results` takes to summarise 100,000 trial rows (goal: under 2 seconds).

    .venv/bin/python benchmarks/results_scale.py [--rows 100000] [--repeat 5]

Generates a random-search results table (20,000 configs x 5 periods by default, four tuned
parameters, 2% failed or diverged, screening rows), then times, as medians of several runs:
summarising it (ranking, paired tests, trends) and rendering the table, and the whole
command from a results.csv on disk (reading included).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from hpt.results import load_results, render, summarise

__all__ = ["generate", "main"]


def generate(n_rows: int, periods: int = 5, seed: int = 0) -> pd.DataFrame:
    """`n_rows` result rows: configs x `periods`, 5% of them screening rows, 2% failed or diverged."""
    rng = np.random.default_rng(seed)
    n_quick = n_rows // 20
    n_configs = (n_rows - n_quick) // periods
    lr = 10 ** rng.uniform(-4, -1, n_configs)
    hidden = rng.choice([16, 32, 64, 128, 256], n_configs)
    dropout = rng.uniform(0, 0.5, n_configs)
    optimizer = rng.choice(["adam", "adamw", "sgd"], n_configs)
    quality = 0.05 + 0.02 * (np.log10(lr) + 2.5) ** 2 + dropout / 10 + (optimizer == "sgd") * 0.02
    starts = pd.date_range("2013-01-01", periods=periods, freq="MS")
    cfg = np.repeat(np.arange(n_configs), periods)
    per = np.tile(np.arange(periods), n_configs)
    difficulty = rng.uniform(0.8, 1.5, periods)
    full = pd.DataFrame({
        "run_id": "bench", "trial_id": [f"t{i:07d}" for i in range(len(cfg))], "config_id": [f"c{i:06d}" for i in cfg],
        "status": "ok", "architecture": "lstm", "fidelity": "full",
        "period_start": starts[per].strftime("%Y-%m-%d"),
        "period_end": (starts[per] + pd.Timedelta(days=28)).strftime("%Y-%m-%d"),
        "param_dropout": dropout[cfg], "param_hidden_size": hidden[cfg], "param_lr": lr[cfg], "param_optimizer": optimizer[cfg],
        "val_mse": quality[cfg] * difficulty[per] * rng.lognormal(0, 0.1, len(cfg)),
    })
    bad = rng.random(len(full)) < 0.02
    full.loc[bad, "status"] = rng.choice(["failed", "diverged"], int(bad.sum()))
    full.loc[bad, "val_mse"] = np.nan
    full["error"] = np.where(bad, "RuntimeError: CUDA out of memory", "")
    q = rng.choice(n_configs, n_quick)
    quick = full.iloc[q * periods].copy()
    quick["trial_id"] = [f"q{i:07d}" for i in range(n_quick)]
    quick["fidelity"] = "quick"
    quick["status"] = "ok"
    quick["val_mse"] = quality[q] * rng.lognormal(0, 0.2, n_quick)
    quick["error"] = ""
    frame = pd.concat([full, quick], ignore_index=True)
    frame["val_mae"] = np.sqrt(frame["val_mse"])
    frame["train_time_s"] = rng.uniform(5, 60, len(frame))
    return frame


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Print the median times; exit 1 when summarising is over the 2-second goal."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    frame = generate(args.rows)
    print(f"{len(frame)} rows: {frame['config_id'].nunique()} configs, {frame['fidelity'].eq('quick').sum()} screening rows, "
          f"{frame['status'].ne('ok').sum()} failed or diverged")
    summarise(frame)  # warm up imports (scipy) so they are not timed

    def summary_and_table() -> None:
        render(summarise(frame, "val_mse"), "table", 10)

    t_summary = _median_time(summary_and_table, args.repeat)
    t_json = _median_time(lambda: render(summarise(frame, "val_mse"), "json", 10), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp) / "results.csv", index=False)
        t_load = _median_time(lambda: render(summarise(load_results(tmp), "val_mse"), "table", 10), args.repeat)
    print(f"summarise + table:            {t_summary:.3f} s (median of {args.repeat}; goal < 2 s)")
    print(f"summarise + json:             {t_json:.3f} s")
    print(f"read results.csv + summarise: {t_load:.3f} s")
    return 0 if t_summary < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
