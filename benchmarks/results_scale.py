"""How long `hpt results`, `hpt best` and a finished `hpt run` take on a big results location (goal: under 2 s).

    .venv/bin/python benchmarks/results_scale.py [--rows 100000] [--repeat 3] [--against OLD_CHECKOUT] [--keep DIR]

Builds a real results location the way runs leave it: a random search of an mlp on the
bundled demo data over 2 periods (half as many configs as rows; four tuned parameters,
lookback among them, so there are two window settings of naive baselines), one ok row object
per trial in rows/ (so a run has nothing left to train), the naive baseline rows, results.csv and a run record.
Then times each command in a fresh process as a user runs it (medians of --repeat runs)
and its peak memory (the process's maximum resident set size):

    hpt results LOC [--format json | csv], hpt best LOC,
    hpt run SPEC --sink LOC with every trial already done (from start to exit), first with no plan ids kept in
    the local cache (cold: the first run of the spec on a machine), then as a run after another one.

--against DIR runs the same commands with the hpt package of another checkout (e.g.
``git worktree add /tmp/hpt-old <commit>``) first on its path, and prints old/new ratios.
Torch runs with one thread (the runs' workers do; results and best import no torch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["COMMANDS", "build_location", "main", "measure"]

ROOT = Path(__file__).resolve().parent.parent
PERIODS = [["2013-01-01", "2013-03-01"], ["2013-07-01", "2013-09-01"]]


def bench_spec(configs: int) -> dict[str, Any]:
    """The spec the location is a run of: `configs` random configs x 2 periods."""
    return {
        "name": "results-scale",
        "architecture": "mlp",
        "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
        "date_ranges": PERIODS,
        "search": {"strategy": "random", "max_trials": configs, "seed": 0},
        "parameters": {"lr": {"loguniform": [1e-4, 1e-1]}, "hidden_size": [16, 32, 64, 128, 256],
                       "dropout": {"uniform": [0.0, 0.5]}, "lookback": [24, 48]},
        "training": {"epochs": 2, "batch_size": 128, "horizon": 1, "validation": "7D"},
        "metrics": ["mse", "mae", "train_time"],
        "objective": "val_mse",
    }


def build_location(root: Path, n_rows: int, seed: int = 0) -> tuple[Path, int, int]:
    """Write a location of about `n_rows` trial rows under `root`; (its spec file, trial rows, baseline rows)."""
    from hpt.baselines import RunBaselines
    from hpt.rows import result_row, to_csv
    from hpt.search import expand
    from hpt.spec import check_data, load_spec
    from hpt.trial import Status, TrialResult

    spec_path = root / "spec.json"
    loc = root / "location"
    spec_path.write_text(json.dumps({**bench_spec(max(1, n_rows // len(PERIODS))), "sink": str(loc)}))
    spec = load_spec(spec_path)
    rng = np.random.default_rng(seed)
    difficulty = {p: rng.uniform(0.8, 1.5) for p in spec.periods}
    columns = spec.columns
    rows = []
    stamp = "2026-01-01T00:00:00.000+00:00"
    for trial in expand(spec):
        p = trial.params
        quality = 0.05 + 0.02 * (np.log10(p["lr"]) + 2.5) ** 2 + p["dropout"] / 10 + 8 / p["hidden_size"] / 100
        metrics = {"val_mse": float(quality * difficulty[trial.period] * rng.lognormal(0, 0.1)),
                   "val_mae": float(rng.uniform(0.1, 0.3)), "train_time_s": float(rng.uniform(5, 60))}
        result = TrialResult(trial, Status.OK, metrics=metrics, started_at=stamp, finished_at=stamp, device="cuda:0")
        rows.append(result_row(result, "bench", columns, f"{loc}/models/{trial.trial_id}.pt"))
    baselines = RunBaselines(spec, check_data(spec))
    base = [result_row(r, "bench", columns) for r in baselines.missing(baselines.settings(), {})]
    (loc / "rows").mkdir(parents=True)
    (loc / "runs").mkdir()
    for row in rows + base:
        (loc / "rows" / f"{row['trial_id']}.json").write_text(json.dumps(row, indent=1))
    (loc / "results.csv").write_text(to_csv(rows + base))
    record = {"run_id": "bench", "spec_name": spec.name, "spec_source": str(spec_path), "spec": spec.document,
              "status": "finished", "fidelity": spec.fidelity.name, "periods": [p.label for p in spec.periods]}
    (loc / "runs" / "bench.json").write_text(json.dumps(record, indent=1))
    return spec_path, len(rows), len(base)


COMMANDS = {
    "hpt results": ["results", "{loc}"],
    "hpt results --format json": ["results", "{loc}", "--format", "json"],
    "hpt results --format csv": ["results", "{loc}", "--format", "csv"],
    "hpt best": ["best", "{loc}"],
    "hpt run (nothing left, cold)": ["run", "{spec}", "--workers", "1"],
    "hpt run (nothing left)": ["run", "{spec}", "--workers", "1"],
}
COLD = "hpt run (nothing left, cold)"
"""Timed with the local cache of plan ids emptied before each run (the first run of the spec on a machine); the
processes keep that cache (``$XDG_CACHE_HOME/hpt/plans``) in the location's folder, not the user's."""


def measure(args: list[str], tree: Path, repeat: int, cache: Path | None = None,
            cold: bool = False) -> tuple[float, float, float, int]:
    """Median wall seconds, median CPU seconds (user + system: what a busy machine changes least), peak MB
    (the largest of the runs) and exit code of `python -m hpt ARGS` with `tree` first on the path; `cache` its
    $XDG_CACHE_HOME, whose kept plan ids are deleted before each run when `cold`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1",
           **({"XDG_CACHE_HOME": str(cache)} if cache is not None else {})}
    times, cpu, peaks, code = [], [], [], 0
    for _ in range(repeat):
        if cold and cache is not None:
            shutil.rmtree(cache / "hpt" / "plans", ignore_errors=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "hpt", *args], env=env, cwd=tree,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - t0)
        cpu.append(usage.ru_utime + usage.ru_stime)
        peaks.append(usage.ru_maxrss / 1024)  # kB on Linux
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
    return statistics.median(times), statistics.median(cpu), max(peaks), code


def main(argv: list[str] | None = None) -> int:
    """Print each command's median time and peak memory (and old/new ratios with --against)."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="trial rows at the location [default: 100000]")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command; the median is printed")
    ap.add_argument("--against", metavar="DIR", type=Path,
                    help="another checkout of hpt (an older commit) to time the same commands with")
    ap.add_argument("--keep", metavar="DIR", type=Path,
                    help="build the location in DIR and keep it; a DIR built before is used as it is")
    ap.add_argument("--quick", action="store_true", help="2,000 rows, one run each (a smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rows, args.repeat = 2_000, 1
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if (root / "location" / "results.csv").exists():
            lines = (root / "location" / "results.csv").read_text(encoding="utf-8").splitlines()[1:]
            spec_path, n_base = root / "spec.json", sum(",naive-" in line for line in lines)
            n_rows, built = len(lines) - n_base, "reused"
        else:
            spec_path, n_rows, n_base = build_location(root, args.rows)
            built = f"built in {time.perf_counter() - t0:.0f} s"
        loc = root / "location"
        print(f"location: {n_rows} trial rows ({n_rows // len(PERIODS)} configs x {len(PERIODS)} periods) "
              f"and {n_base} baseline rows, {built}; torch threads: 1; median of {args.repeat} runs, each in a "
              f"fresh process; s: wall, cpu: user+system seconds, MB: peak resident memory")
        trees = [("new", ROOT)] + ([("old", args.against.resolve())] if args.against else [])
        print(f"  {'command':<28} " + "  ".join(f"{name + ' s':>7} {name + ' cpu':>7} {name + ' MB':>7}"
                                               for name, _ in trees) + ("  ratio old/new" if args.against else ""))
        worst = 0.0
        for label, template in COMMANDS.items():
            cmd = [a.format(loc=loc, spec=spec_path) for a in template]
            figures = [measure(cmd, tree, args.repeat, root / "cache", label == COLD) for _, tree in trees]
            worst = max(worst, figures[0][0]) if not label.startswith("hpt run") else worst
            cells = "  ".join(f"{t:7.2f} {c:7.2f} {mb:7.0f}" + ("" if code == 0 else f" (exit {code})")
                              for t, c, mb, code in figures)
            ratio = f"  {figures[1][0] / figures[0][0]:.1f}x (cpu {figures[1][1] / figures[0][1]:.1f}x)" \
                if args.against else ""
            print(f"  {label:<28} {cells}{ratio}")
        print(f"slowest of results/best: {worst:.2f} s (goal < 2 s at 100,000 rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
