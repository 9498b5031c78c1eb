"""How much hpt costs on top of plain PyTorch, and which CPU layout trains most trials per hour.

(a) Training throughput: ``hpt.train.fit`` on device-resident windows against a minimal
    hand-written loop and a DataLoader loop doing the same work per epoch (shuffle,
    forward, backward, step, one validation pass), same model, windows and epochs.
    Early stopping and lr decay are off so that every loop runs every epoch.
(b) Framework overhead per trial: a run of 50 tiny trials (``hpt.runner.run_spec`` in
    process, one CPU worker with one torch thread) into a local results folder that
    already holds 50, 1,000 or 10,000 rows. Worker start-up (spawn, torch import, data
    hand-over, the first trial's warm-up) and shut-down are excluded by timing from the
    moment the first trial's result reaches the runner to the moment the last one does, and
    subtracting the train_time_s of trials 2..50: what is left is everything hpt does
    around a trial (hand-over, model build, saving the model and curve, the row and
    results.csv, the log). It must not grow with the rows already there.
(c) Trials per hour of whole runs for the CPU layouts: one worker with every core as torch
    threads, one single-threaded worker per core, and hpt's default; on an idle machine
    and with another process keeping one core busy.

Every figure is the median over several repetitions, the loops interleaved so that load
from other processes falls on all of them alike.

    python benchmarks/overhead.py            # the figures in benchmarks/README.md (about ten minutes)
    python benchmarks/overhead.py --quick    # a smoke run (about a minute)
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hpt.architectures import get_architecture
from hpt.backends.local import Slot, choose_slots, usable_cpus
from hpt.data import DEMO_DATA, load_frame, resolve_data_path
from hpt.hparams import TRAINING
from hpt.periods import Period, parse_time
from hpt.progress import Reporter
from hpt.rows import RESULTS_CSV, to_csv
from hpt.runner import RunOptions, run_spec
from hpt.spec import load_spec
from hpt.train import fit
from hpt.windows import make_windows

Data = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
Loop = Callable[[nn.Module, dict[str, Any], Data, torch.device], None]

ARCH = "lstm"
HIDDEN = 32
LOOKBACK = 48
BATCH = 128


def _params(epochs: int) -> dict[str, Any]:
    params = {name: p.default for name, p in TRAINING.items()}
    params.update(get_architecture(ARCH).defaults)
    params.update(hidden_size=HIDDEN, lookback=LOOKBACK, horizon=1, batch_size=BATCH, epochs=epochs,
                  validation="7D", lr=1e-3, patience=0, lr_decay=1.0, seed=0)
    return params


def _model(params: dict[str, Any], device: torch.device) -> nn.Module:
    torch.manual_seed(0)
    return get_architecture(ARCH).build(1, LOOKBACK, 1, params).to(device)  # type: ignore[no-any-return]


def hpt_loop(model: nn.Module, params: dict[str, Any], data: Data, device: torch.device) -> None:
    fit(model, params, data, device)


def handwritten_loop(model: nn.Module, params: dict[str, Any], data: Data, device: torch.device) -> None:
    x, y, x_val, y_val = data
    opt = torch.optim.Adam(model.parameters(), lr=params["lr"])
    loss_fn = nn.MSELoss()
    n, batch = len(x), params["batch_size"]
    for _ in range(params["epochs"]):
        model.train()
        order = torch.randperm(n, device=device)
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            loss_fn(model(x_val), y_val).item()


def dataloader_loop(model: nn.Module, params: dict[str, Any], data: Data, device: torch.device) -> None:
    x, y, x_val, y_val = data
    loader = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=params["batch_size"], shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=params["lr"])
    loss_fn = nn.MSELoss()
    for _ in range(params["epochs"]):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            loss_fn(model(x_val), y_val).item()


LOOPS: dict[str, Loop] = {"hpt": hpt_loop, "handwritten": handwritten_loop, "DataLoader": dataloader_loop}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(period: Period, epochs: int, reps: int, device: torch.device) -> tuple[int, dict[str, list[float]]]:
    """Seconds per run of each loop, `reps` times, interleaved in a rotating order."""
    frame = load_frame(resolve_data_path(DEMO_DATA), "ts", ("y",))
    w = make_windows(frame, period, LOOKBACK, 1, "7D")
    data: Data = tuple(torch.from_numpy(a).to(device) for a in (w.x_train, w.y_train, w.x_val, w.y_val))  # type: ignore[assignment]
    params = _params(epochs)
    names = list(LOOPS)
    for name in names:  # warm-up: allocator, kernels, lazy initialisation
        LOOPS[name](_model(params, device), {**params, "epochs": 1}, data, device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        for name in names[r % len(names):] + names[:r % len(names)]:
            model = _model(params, device)
            _sync(device)
            t0 = time.perf_counter()
            LOOPS[name](model, params, data, device)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return len(w.x_train), times


def _tiny_spec(folder: Path, configs: int) -> Path:
    """`configs` tiny mlp configs x 2 periods, one epoch each."""
    lrs = [round(1e-3 * (1 + i), 6) for i in range(configs)]
    doc = {
        "name": f"overhead-{configs}",
        "architecture": "mlp",
        "data": {"path": DEMO_DATA, "time_column": "ts", "target": "y"},
        "date_ranges": [["2013-01-01", "2013-01-08"], ["2013-02-01", "2013-02-08"]],
        "search": {"strategy": "grid", "seed": 0},
        "parameters": {"lr": lrs, "hidden_size": [8]},
        "training": {"epochs": 1, "batch_size": 64, "lookback": 24, "horizon": 1, "validation": 0.25},
        "metrics": ["mse", "train_time"],
        "objective": "val_mse",
    }
    path = folder / f"overhead-{configs}.json"
    path.write_text(json.dumps(doc))
    return path


class _Clock(Reporter):
    """A silent reporter that notes when each trial's result reached the runner (and its training time and epochs)."""

    def __init__(self) -> None:
        super().__init__(out=io.StringIO(), bar=False, quiet=True)
        self.times: list[float] = []
        self.train: list[float] = []
        self.epochs: list[float] = []

    def trial_done(self, result: Any, done: int, total: int, objective: str) -> None:
        self.times.append(time.perf_counter())
        self.train.append(float(result.metrics.get("train_time_s", 0.0)))
        self.epochs.append(float(result.metrics.get("epochs", 0.0)))
        super().trial_done(result, done, total, objective)


def _slots(workers: int, threads: int) -> list[Slot]:
    return [Slot(f"cpu-{i}", "cpu", (("CUDA_VISIBLE_DEVICES", ""),), threads) for i in range(workers)]


def run_overhead(spec_path: Path, sink: Path) -> dict[str, float]:
    """One run: its wall time, its trials' train_time_s, and the overhead per trial after the first."""
    spec = load_spec(spec_path)
    clock = _Clock()
    t0 = time.perf_counter()
    summary = run_spec(spec, RunOptions(sink=str(sink)), clock, slots=_slots(1, 1))
    wall = time.perf_counter() - t0
    n = len(clock.times)
    if summary.counts.get("ok", 0) != n or n < 2:
        raise SystemExit(f"overhead run at {sink}: expected only ok trials, got {dict(summary.counts)}")
    steady = clock.times[-1] - clock.times[0] - sum(clock.train[1:])
    return {"trials": n, "wall": wall, "train": sum(clock.train), "per_trial_ms": 1000 * steady / (n - 1),
            "fixed": wall - sum(clock.train) - steady}


def _prefill(folder: Path, rows: int) -> None:
    """A results location that already holds `rows` rows of another spec (rows/ and results.csv)."""
    (folder / "rows").mkdir(parents=True)
    template = {"run_id": "old", "status": "ok", "architecture": "mlp", "fidelity": "full", "period_start": "2012-01-01",
                "period_end": "2012-01-08", "param_lr": 0.001, "param_hidden_size": 8, "val_mse": 0.5, "val_mae": 0.5,
                "train_time_s": 0.01, "epochs": 1, "best_epoch": 1, "device": "cpu-0", "error": "", "model_uri": ""}
    table = []
    for i in range(rows):
        row = {**template, "trial_id": f"old{i:08d}", "config_id": f"cfg{i:08d}", "param_lr": 1e-3 + i * 1e-7,
               "started_at": f"2026-01-01T00:00:{i % 60:02d}.000+00:00", "finished_at": f"2026-01-01T{i // 3600 % 24:02d}:"
               f"{i // 60 % 60:02d}:{i % 60:02d}.500+00:00"}
        (folder / "rows" / f"{row['trial_id']}.json").write_text(json.dumps(row))
        table.append(row)
    (folder / RESULTS_CSV).write_text(to_csv(table))


def overhead(trials: int, reps: int, existing: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="hpt-bench-") as tmp:
        spec = _tiny_spec(Path(tmp), trials // 2)
        filled = Path(tmp) / "filled"
        _prefill(filled, existing)
        runs = []
        for r in range(reps):
            sink = Path(tmp) / f"run-{r}"
            shutil.copytree(filled, sink)
            runs.append(run_overhead(spec, sink))
            shutil.rmtree(sink)
        return runs


def _layout_spec(folder: Path, configs: int) -> Path:
    """Small LSTM trials of about a second each on one core: what a CPU-only machine tunes."""
    doc = {
        "name": "layout",
        "architecture": "lstm",
        "data": {"path": DEMO_DATA, "time_column": "ts", "target": "y"},
        "date_ranges": [["2013-01-01", "2013-02-01"], ["2013-03-01", "2013-04-01"]],
        "search": {"strategy": "grid", "seed": 0},
        "parameters": {"lr": [round(1e-3 * (1 + i), 6) for i in range(configs)], "hidden_size": [16]},
        "training": {"epochs": 5, "batch_size": 128, "lookback": 24, "horizon": 1, "validation": "7D", "patience": 0},
        "objective": "val_mse",
    }
    path = folder / "layout.json"
    path.write_text(json.dumps(doc))
    return path


def trials_per_hour(configs: int, reps: int, busy: bool) -> dict[str, list[float]]:
    """Trials per hour of whole runs (worker start-up included) for each CPU layout, `reps` times, interleaved.

    `busy`: another process keeps one core busy meanwhile, as a second job on a shared machine does.
    """
    cores = usable_cpus()
    layouts = {f"1 worker x {cores} threads": _slots(1, cores), f"{cores} workers x 1 thread": _slots(cores, 1),
               "default (hpt run)": choose_slots("auto", None)}
    rates: dict[str, list[float]] = {name: [] for name in layouts}
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        with tempfile.TemporaryDirectory(prefix="hpt-bench-") as tmp:
            spec = load_spec(_layout_spec(Path(tmp), configs))
            for r in range(reps):
                for i, (name, slots) in enumerate(layouts.items()):
                    t0 = time.perf_counter()
                    summary = run_spec(spec, RunOptions(sink=str(Path(tmp) / f"run-{r}-{i}")), _Clock(), slots=slots)
                    rates[name].append(3600 * summary.counts["ok"] / (time.perf_counter() - t0))
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a fast smoke run: fewer epochs, repetitions and trials")
    ap.add_argument("--reps", type=int, help="repetitions of each loop in (a) [default: 15, quick: 1]")
    ap.add_argument("--runs", type=int, help="runs of (b) [default: 5, quick: 1]")
    ap.add_argument("--epochs", type=int, help="epochs per training run in (a) [default: 5, quick: 1]")
    ap.add_argument("--trials", type=int, help="trials of the big run in (b), even [default: 50, quick: 10]")
    ap.add_argument("--threads", type=int, default=1, help="torch threads in (a) [default: 1]")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="device of (a)")
    ap.add_argument("--layout-configs", type=int, help="configs per run in (c), x 2 periods [default: 6, quick: 2]")
    args = ap.parse_args(argv)
    reps = args.reps or (1 if args.quick else 15)
    runs = args.runs or (1 if args.quick else 5)
    epochs = args.epochs or (1 if args.quick else 5)
    trials = args.trials or (10 if args.quick else 50)
    if trials < 4 or trials % 2:
        ap.error("--trials must be an even number >= 4 (configs x 2 periods)")
    period = Period(parse_time("2013-01-01"), parse_time("2013-01-22" if args.quick else "2013-03-01"))
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)

    print(f"hpt overhead benchmark: torch {torch.__version__}, {os.cpu_count()} CPU cores, device {device}, "
          f"{args.threads} torch thread(s) in (a); medians of {reps} repetition(s) in (a), {runs} run(s) in (b)")
    n, times = throughput(period, epochs, reps, device)
    work = n * epochs
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n(a) training throughput: {ARCH} hidden_size {HIDDEN}, lookback {LOOKBACK}, batch {BATCH}, "
          f"{n} train windows x {epochs} epochs, period {period.label}")
    print(f"  {'loop':<34}{'windows/s':>11}{'median s':>10}{'min s':>9}{'max s':>9}")
    labels = {"hpt": "hpt.train.fit", "handwritten": "hand-written loop", "DataLoader": "DataLoader loop (shuffle)"}
    for name, t in times.items():
        print(f"  {labels[name]:<34}{work / med[name]:>11.0f}{med[name]:>10.3f}{min(t):>9.3f}{max(t):>9.3f}")
    for other, goal in (("handwritten", "  (goal >= 0.95)"), ("DataLoader", "")):
        paired = [o / h for o, h in zip(times[other], times["hpt"], strict=True)]
        print(f"  ratio hpt/{other}: {statistics.median(paired):.3f}{goal}  (throughput; median of the "
              f"{reps} paired repetitions, {min(paired):.2f}..{max(paired):.2f}; ratio of medians "
              f"{med[other] / med['hpt']:.3f})")

    sizes = (50, 200) if args.quick else (50, 1_000, 10_000)
    print(f"\n(b) framework overhead per trial: {trials} tiny mlp trials (1 epoch each) in process via "
          f"hpt.runner.run_spec, 1 CPU worker x 1 torch thread, into a local results folder that already holds "
          f"N rows; medians of {runs} run(s)")
    print(f"  {'N rows':>8}{'run wall s':>12}{'sum train_time_s':>18}{'start-up+end s':>16}{'ms/trial':>10}"
          f"{'x N=' + str(sizes[0]):>10}")
    per_trial = {}
    for size in sizes:
        runs_b = overhead(trials, runs, size)
        mb = {k: statistics.median(r[k] for r in runs_b) for k in runs_b[0]}
        per_trial[size] = mb["per_trial_ms"]
        print(f"  {size:>8}{mb['wall']:>12.2f}{mb['train']:>18.2f}{mb['fixed']:>16.2f}{mb['per_trial_ms']:>10.1f}"
              f"{mb['per_trial_ms'] / per_trial[sizes[0]]:>10.2f}")
    print("  overhead per trial: " + ", ".join(f"{ms:.1f} ms at {n:,} rows" for n, ms in per_trial.items())
          + f"  (goal: flat, <= 10 ms at every N; the time from the first trial's result to the last, minus "
            f"train_time_s of trials 2..{trials}, per trial)")

    configs = args.layout_configs or (2 if args.quick else 6)
    print(f"\n(c) trials per hour by CPU layout: {2 * configs} small LSTM trials (hidden 16, 5 epochs, 1-month "
          f"periods) per run, whole runs including worker start-up; medians of {runs} run(s)")
    print(f"  {'layout':<28}{'idle machine':>14}{'x 1st':>7}{'one core busy':>15}{'x 1st':>7}")
    idle = trials_per_hour(configs, runs, busy=False)
    busy = None if args.quick else trials_per_hour(configs, runs, busy=True)  # a smoke run measures the idle half
    first = next(iter(idle))
    for name in idle:
        a = statistics.median(idle[name])
        line = f"  {name:<28}{a:>14.0f}{a / statistics.median(idle[first]):>7.2f}"
        if busy is None:
            print(f"{line}{'not run':>15}{'-':>7}")
            continue
        b = statistics.median(busy[name])
        print(f"{line}{b:>15.0f}{b / statistics.median(busy[first]):>7.2f}")
    if busy is None:
        print("  (--quick: the one-core-busy half is not run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
