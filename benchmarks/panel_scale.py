"""How validating and windowing a panel (``data.series``) grow with the number of series.

For 10, 100 and 1,000 series of two years of daily data (730 rows each: 7,300 to 730,000
rows in one long-format CSV), each size in a fresh process (one torch thread):

- validate: ``hpt validate`` of a spec over the panel (two one-year periods), in that process
  after its imports: reading the file, the per-series checks and the window counts;
- windows/s: the train and validation windows of one period (lookback 28, horizon 7) built
  by :func:`hpt.windows.make_windows` and copied into the arrays a trial trains on, per second;
- peak memory: the process's peak resident memory after both (the data, its frames and the
  arrays).

It prints one row per size, then how each figure grows from one size to the next (10x more
series: a figure that grows 10x grows linearly). `--repeat N` measures each size N times and
reports the medians; `--against DIR` also measures the hpt checkout in DIR (another branch, or
the code before a change), its runs interleaved with this checkout's on the same data, and
prints how the two compare.

    python benchmarks/panel_scale.py            # 10, 100, 1,000 series x 730 days
    python benchmarks/panel_scale.py --quick    # 3, 10, 30 series x 120 days (a smoke test)
    python benchmarks/panel_scale.py --repeat 3 --against ../main
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
START = pd.Timestamp("2023-01-01")


def write_panel(folder: Path, series: int, days: int) -> Path:
    """A long-format CSV (station, date, riders) of `series` daily series of `days` rows, and its spec."""
    k = np.arange(days, dtype=np.float64)
    rng = np.random.default_rng(series)
    level = rng.uniform(10, 1000, series)
    y = level[:, None] * (1 + 0.3 * np.sin(2 * np.pi * k / 7)[None] + 0.05 * rng.standard_normal((series, days)))
    frame = pd.DataFrame({"station": np.repeat([f"s{i:04d}" for i in range(series)], days),
                          "date": np.tile(pd.date_range(START, periods=days, freq="D").strftime("%Y-%m-%d"), series),
                          "riders": y.ravel().round(2)})
    data = folder / f"panel-{series}.csv"
    frame.to_csv(data, index=False)
    half = (START + pd.Timedelta(days=days // 2)).strftime("%Y-%m-%d")
    end = (START + pd.Timedelta(days=days)).strftime("%Y-%m-%d")
    spec = {"name": f"panel-{series}", "architecture": "mlp",
            "data": {"path": str(data), "time_column": "date", "target": "riders", "series": "station"},
            "date_ranges": [[START.strftime("%Y-%m-%d"), half], [half, end]],
            "search": {"strategy": "grid"}, "parameters": {"lr": [0.001]},
            "training": {"epochs": 1, "lookback": 28, "horizon": 7, "validation": 0.2}, "objective": "val_mase"}
    path = folder / f"panel-{series}.json"
    path.write_text(json.dumps(spec))
    return path


def measure(spec_path: str) -> dict[str, float]:
    """In this process: validate the spec, then build one period's windows; the figures as a dict."""
    import resource

    import torch

    from hpt.cli import main
    from hpt.spec import load_spec
    from hpt.windows import make_windows

    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        main(["validate", spec_path], standalone_mode=False)
    except SystemExit as e:
        if e.code:
            raise
    validate = time.perf_counter() - start
    spec = load_spec(spec_path)
    frame = spec.data.read().frame
    period = spec.periods[0]
    start = time.perf_counter()
    w = make_windows(frame, period, 28, 7, 0.2)
    arrays = (w.x_train, w.y_train, w.x_val, w.y_val)
    built = time.perf_counter() - start
    windows = len(arrays[0]) + len(arrays[2])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"rows": len(frame), "validate_s": validate, "windows": windows, "windows_s": built,
            "windows_per_s": windows / built, "peak_mb": peak}


def run_child(spec: Path, root: Path) -> dict[str, float]:
    """:func:`measure` of `spec` in a fresh process importing hpt from `root`."""
    done = subprocess.run([sys.executable, __file__, "--one", str(spec)], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    if done.returncode:
        sys.exit(f"measuring {spec.name} with the hpt of {root} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def table(got: list[tuple[int, dict[str, float]]]) -> None:
    print(f"  {'series':>7} {'rows':>9} {'validate':>10} {'windows':>9} {'windows/s':>11} {'peak MB':>9}")
    for n, m in got:
        print(f"  {n:>7} {m['rows']:>9.0f} {m['validate_s']:>9.2f}s {m['windows']:>9.0f} {m['windows_per_s']:>11.0f} "
              f"{m['peak_mb']:>9.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3, 10 and 30 series x 120 days (a smoke test)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="measure each size N times, each in a fresh process, and report the medians (default 1)")
    ap.add_argument("--against", metavar="DIR", type=Path,
                    help="also measure the hpt checkout in DIR (its runs interleaved with this checkout's, on the "
                         "same data) and print how this one compares")
    ap.add_argument("--one", metavar="SPEC", help=argparse.SUPPRESS)  # a child: measure this spec, print JSON
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    if args.against is not None and not (args.against / "hpt" / "__init__.py").is_file():
        ap.error(f"--against: no hpt checkout in {args.against}")
    roots = [ROOT] + ([args.against.resolve()] if args.against is not None else [])
    sizes, days = ((3, 10, 30), 120) if args.quick else ((10, 100, 1000), 730)
    repeat = f", median of {args.repeat}" if args.repeat > 1 else ""
    print(f"panel scale: {', '.join(map(str, sizes))} series x {days} days (daily), each size in a fresh process, "
          f"one torch thread{repeat}; load average {os.getloadavg()[0]:.1f} at the start")
    got: dict[Path, list[tuple[int, dict[str, float]]]] = {root: [] for root in roots}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            spec = write_panel(Path(tmp), n, days)
            runs: dict[Path, list[dict[str, float]]] = {root: [] for root in roots}
            for _ in range(args.repeat):
                for root in roots:  # interleaved: a change in the machine's load falls on both
                    runs[root].append(run_child(spec, root))
            for root in roots:
                got[root].append((n, medians(runs[root])))
    if len(roots) > 1:
        print(f"this checkout ({ROOT}):")
    table(got[ROOT])
    print("growth from one size to the next (x series):")
    for (a, ma), (b, mb) in zip(got[ROOT], got[ROOT][1:], strict=False):
        print(f"  {a} -> {b} series (x{b / a:.3g}): validate x{mb['validate_s'] / ma['validate_s']:.2f}, "
              f"windows x{mb['windows'] / ma['windows']:.2f} built at x{mb['windows_per_s'] / ma['windows_per_s']:.2f} "
              f"the rate, peak memory x{mb['peak_mb'] / ma['peak_mb']:.2f}")
    for other in roots[1:]:
        print(f"against {other}:")
        table(got[other])
        print("this checkout against it (x: how many times faster, or as much memory):")
        for (n, mine), (_, theirs) in zip(got[ROOT], got[other], strict=True):
            print(f"  {n} series: validate x{theirs['validate_s'] / mine['validate_s']:.2f} faster "
                  f"({theirs['validate_s']:.2f} s -> {mine['validate_s']:.2f} s), windows built "
                  f"x{mine['windows_per_s'] / theirs['windows_per_s']:.2f} faster, peak memory "
                  f"x{mine['peak_mb'] / theirs['peak_mb']:.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
