"""What running trials on Ray costs on top of the local worker pool, per trial and per epoch.

The same tiny trials (mlp, hidden 8, two periods of a week) run in the same process, on
the local pool and on Ray, in alternating order, several times:

(a) Per-trial overhead: runs of 1-epoch trials, one at a time (one worker process with
    one torch thread; on Ray at most one trial in flight, 1 CPU and one torch thread per
    task). As in benchmarks/overhead.py, the overhead is the time from the first trial's
    result reaching the runner to the last one's, minus the train_time_s of trials
    2..N, over N-1: hand-over, model build, saving model, curve and row, the log; on Ray
    also the task's submission, scheduling and its result's transfer. Start-up (worker
    processes, torch import, the first trial) is excluded and reported apart.
(b) Per-epoch cost: the same trials with 20 epochs and no early stopping; the median
    train_time_s per epoch on each. It includes what each epoch's progress report costs:
    a message down a pipe on the local pool; on Ray, a call to the run's hub actor that
    is sent, not waited for (its answer, which may carry a stop, is looked at later).

Ray runs as a local instance started once for the benchmark (the path of
``hpt run --executor ray`` without an address), on 127.0.0.1 only and without token
authentication (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, RAY_AUTH_MODE=disabled, no usage
statistics). Figures are medians over the repetitions.

    python benchmarks/ray_overhead.py            # the figures in benchmarks/README.md (a few minutes)
    python benchmarks/ray_overhead.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _key, _value in (("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"), ("RAY_AUTH_MODE", "disabled"),
                     ("RAY_USAGE_STATS_ENABLED", "0")):
    os.environ.setdefault(_key, _value)  # before ray is imported: it reads them then

import torch  # noqa: E402
from overhead import _Clock  # noqa: E402  (the benchmark beside this one: the same clock)

from hpt.backends.local import Slot  # noqa: E402
from hpt.backends.ray import connect, import_ray  # noqa: E402
from hpt.data import DEMO_DATA  # noqa: E402
from hpt.runner import RunOptions, run_spec  # noqa: E402
from hpt.spec import load_spec  # noqa: E402

EXECUTORS = ("local", "ray")


def _spec(folder: Path, configs: int, epochs: int) -> Path:
    doc = {
        "name": f"ray-overhead-{configs}-{epochs}",
        "architecture": "mlp",
        "data": {"path": DEMO_DATA, "time_column": "ts", "target": "y"},
        "date_ranges": [["2013-01-01", "2013-01-08"], ["2013-02-01", "2013-02-08"]],
        "search": {"strategy": "grid", "seed": 0},
        "parameters": {"lr": [round(1e-3 * (1 + i), 6) for i in range(configs)], "hidden_size": [8]},
        "training": {"epochs": epochs, "batch_size": 64, "lookback": 24, "horizon": 1, "validation": 0.25,
                     "patience": 0},
        "metrics": ["mse", "train_time"],
        "objective": "val_mse",
    }
    path = folder / f"{doc['name']}.json"
    path.write_text(json.dumps(doc))
    return path


def one_run(spec_path: Path, sink: Path, executor: str) -> dict[str, float]:
    spec = load_spec(spec_path)
    clock = _Clock()
    slots = [Slot("cpu-0", "cpu", (("CUDA_VISIBLE_DEVICES", ""),), 1)]
    options = RunOptions(sink=str(sink), executor=executor, workers=1)
    t0 = time.perf_counter()
    summary = run_spec(spec, options, clock, slots=slots if executor == "local" else None)
    wall = time.perf_counter() - t0
    n = len(clock.times)
    if summary.counts.get("ok", 0) != n or n < 2:
        raise SystemExit(f"{executor} run at {sink}: expected only ok trials, got {dict(summary.counts)}")
    steady = clock.times[-1] - clock.times[0] - sum(clock.train[1:])
    return {"per_trial_ms": 1000 * steady / (n - 1), "fixed_s": wall - sum(clock.train) - steady,
            "per_epoch_ms": 1000 * statistics.median(t / e for t, e in zip(clock.train, clock.epochs, strict=True))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: fewer trials and repetitions")
    ap.add_argument("--reps", type=int, help="runs of each executor [default: 5, quick: 1]")
    ap.add_argument("--trials", type=int, help="1-epoch trials per run in (a), even [default: 40, quick: 6]")
    ap.add_argument("--epochs", type=int, default=20, help="epochs per trial in (b) [default: 20]")
    args = ap.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    trials = args.trials or (6 if args.quick else 40)
    if trials < 4 or trials % 2:
        ap.error("--trials must be an even number >= 4 (configs x 2 periods)")
    epoch_trials = 4 if args.quick else 10
    ray = import_ray()
    t0 = time.perf_counter()
    connect(None)
    started = time.perf_counter() - t0
    print(f"hpt Ray overhead benchmark: ray {ray.__version__}, torch {torch.__version__}, {os.cpu_count()} CPU cores; "
          f"one trial at a time, one torch thread per worker (local pool: 1 worker process; Ray: 1 CPU per task); "
          f"medians of {reps} run(s) of each, alternating; a local Ray instance on 127.0.0.1 (started in "
          f"{started:.1f}s)")
    results: dict[str, dict[str, list[dict[str, float]]]] = {e: {"a": [], "b": []} for e in EXECUTORS}
    try:
        with tempfile.TemporaryDirectory(prefix="hpt-bench-") as tmp:
            folder = Path(tmp)
            short = _spec(folder, trials // 2, 1)
            long = _spec(folder, epoch_trials // 2, args.epochs)
            for r in range(reps):
                order = EXECUTORS if r % 2 == 0 else EXECUTORS[::-1]
                for part, spec in (("a", short), ("b", long)):
                    for executor in order:
                        results[executor][part].append(one_run(spec, folder / f"{part}-{executor}-{r}", executor))
    finally:
        ray.shutdown()

    def med(executor: str, part: str, key: str) -> float:
        return statistics.median(run[key] for run in results[executor][part])

    def spread(executor: str, part: str, key: str) -> str:
        values = [run[key] for run in results[executor][part]]
        return f"{min(values):.1f}-{max(values):.1f}"

    print(f"\n(a) per-trial overhead: {trials} trials of 1 epoch per run")
    print(f"  {'executor':<10} {'ms/trial':>9} {'range':>12} {'start-up+shut-down s':>21}")
    for e in EXECUTORS:
        print(f"  {e:<10} {med(e, 'a', 'per_trial_ms'):>9.1f} {spread(e, 'a', 'per_trial_ms'):>12} "
              f"{med(e, 'a', 'fixed_s'):>21.1f}")
    local, on_ray = med("local", "a", "per_trial_ms"), med("ray", "a", "per_trial_ms")
    print(f"  ratio ray/local: {on_ray / local:.2f}")
    print(f"  Ray adds per trial: {on_ray - local:.1f} ms (goal: <= 20 ms)")

    print(f"\n(b) per-epoch cost: {epoch_trials} trials of {args.epochs} epochs per run (train_time_s / epochs)")
    print(f"  {'executor':<10} {'ms/epoch':>9} {'range':>12}")
    for e in EXECUTORS:
        print(f"  {e:<10} {med(e, 'b', 'per_epoch_ms'):>9.2f} {spread(e, 'b', 'per_epoch_ms'):>12}")
    per_epoch = med("ray", "b", "per_epoch_ms") - med("local", "b", "per_epoch_ms")
    print(f"  Ray adds per epoch: {per_epoch:.2f} ms (the progress report to the hub)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
