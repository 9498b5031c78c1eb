"""How good are the models hpt hands over? (issue 21)

For each built-in architecture x training.scaler x training.loss: a small random search
(the same number of configs for every family: lr drawn from the family's `hpt auto` range)
with `hpt run` on a tuning period before the hold-out, objective the loss's own metric
(val_mse for mse, val_mae for mae), then `hpt final` on a one-month hold-out at the end of
the data. Both run in this process through hpt's own entry points (run_spec, run_final), one
worker with one torch thread. Printed per combination: the hold-out MAE and MSE in the
data's units, each as a ratio to seasonal naive on the same windows (below 1: better than
seasonal naive), and the seconds of tuning and final training together.

    python benchmarks/forecast_quality.py                 # the bundled hourly data, lookback 168, horizon 24
    python benchmarks/forecast_quality.py --quick         # a smoke run: dlinear, lookback 48, 1 config, 2 epochs
    python benchmarks/forecast_quality.py --archs dlinear,nhits --scalers window --losses mae --configs 8
    python benchmarks/forecast_quality.py --data ../shared/data/seattle_weather_daily.csv --target temp_max \\
        --time-column date --lookback 28 --horizon 7 --tune 2013-01-01:2015-12-01
"""

from __future__ import annotations

import argparse
import io
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from hpt.architectures import BUILTIN
from hpt.backends.local import Slot
from hpt.final import FinalRequest, run_final
from hpt.hparams import LOSSES, SCALERS
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.spec import parse_spec

__all__ = ["main"]


def _spec(args: argparse.Namespace, arch: str, scaler: str, loss: str) -> Any:
    low, high, _ = BUILTIN[arch].auto_ranges["lr"]
    start, end = args.tune.split(":")
    return parse_spec({
        "name": f"fq-{arch}-{scaler}-{loss}",
        "architecture": arch,
        "data": {"path": args.data, "time_column": args.time_column, "target": args.target},
        "date_ranges": [[start, end]],
        "search": {"strategy": "random", "max_trials": args.configs, "seed": args.seed},
        "parameters": {"lr": {"loguniform": [low, high]}},
        "training": {"epochs": args.epochs, "batch_size": 64, "lookback": args.lookback, "horizon": args.horizon,
                     "validation": 0.25, "patience": 5, "loss": loss, "scaler": scaler, "seed": args.seed},
        "objective": "val_mae" if loss == "mae" else "val_mse",
    })


def _one(args: argparse.Namespace, arch: str, scaler: str, loss: str, folder: Path) -> dict[str, Any]:
    spec = _spec(args, arch, scaler, loss)
    location = str(folder / spec.name)
    start = time.perf_counter()
    summary = run_spec(spec, RunOptions(sink=location, device="cpu"), Reporter(io.StringIO(), bar=False, quiet=True),
                       slots=[Slot("cpu-0", "cpu", (("CUDA_VISIBLE_DEVICES", ""),), threads=1)])
    if summary.exit_code in (130, 143):  # interrupted (Ctrl-C, SIGTERM): stop here, not at the next combination
        raise SystemExit(summary.exit_code)
    if summary.best is None:
        return {"arch": arch, "scaler": scaler, "loss": loss, "error": summary.best_note or "no ok trial"}
    report = run_final(FinalRequest(location=location, holdout=args.holdout, device="cpu", threads=1),
                       say=lambda line: None)
    seconds = time.perf_counter() - start
    model, naive = report.document["models"][0]["metrics"], report.document["baselines"]["naive-seasonal"]["metrics"]
    return {"arch": arch, "scaler": scaler, "loss": loss, "mae": model["mae"], "mse": model["mse"],
            "mae_ratio": model["mae"] / naive["mae"], "mse_ratio": model["mse"] / naive["mse"], "seconds": seconds,
            "naive_mae": naive["mae"], "naive_mse": naive["mse"], "windows": report.document["holdout"]["windows"]}


def _line(r: dict[str, Any]) -> str:
    return (f"{r['arch']:<15} {r['scaler']:<9} {r['loss']:<5} {r['mae']:>10.4g} {r['mse']:>12.4g} "
            f"{r['mae_ratio']:>10.3f} {r['mse_ratio']:>10.3f} {r['seconds']:>8.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: dlinear (unless --archs), lookback 48, 1 config, 2 epochs")
    parser.add_argument("--data", default="demo:electricity_hourly.csv")
    parser.add_argument("--target", default="y")
    parser.add_argument("--time-column", default="ts")
    parser.add_argument("--archs", help="comma-separated [default: every built-in]")
    parser.add_argument("--scalers", default="standard,window")
    parser.add_argument("--losses", default="mse,mae")
    parser.add_argument("--configs", type=int, default=4, help="random configs per combination")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lookback", type=int, default=168)
    parser.add_argument("--horizon", type=int, default=24)
    parser.add_argument("--tune", default="2014-09-01:2014-12-01", help="the tuning period START:END")
    parser.add_argument("--holdout", default="1M", help="hpt final --holdout [default: the last month]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="also print each combination as it finishes")
    args = parser.parse_args(argv)
    if args.quick:
        args.configs, args.epochs, args.lookback, args.tune = 1, 2, 48, "2014-10-01:2014-12-01"
        args.archs = args.archs or "dlinear"
    args.archs = args.archs or ",".join(BUILTIN)
    archs, scalers, losses = (a.split(",") for a in (args.archs, args.scalers, args.losses))
    for name, given, valid in (("--archs", archs, BUILTIN), ("--scalers", scalers, SCALERS), ("--losses", losses, LOSSES)):
        unknown = [g for g in given if g not in valid]
        if unknown:
            parser.error(f"{name}: unknown {', '.join(unknown)}; valid: {', '.join(valid)}")
    torch.set_num_threads(1)
    logging.getLogger("hpt").setLevel(logging.WARNING)
    print(f"forecast quality on {args.data} ({args.target}): lookback {args.lookback}, horizon {args.horizon}; "
          f"tuning {args.tune}, {args.configs} random configs of {args.epochs} epochs per combination; "
          f"hold-out: the last {args.holdout}; 1 worker, one torch thread")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in archs:
            for scaler in scalers:
                for loss in losses:
                    rows.append(_one(args, arch, scaler, loss, Path(tmp)))
                    r = rows[-1]
                    if "error" in r:
                        print(f"  {arch:<15} {scaler:<9} {loss:<5} failed: {r['error']}", flush=True)
                    elif args.verbose:
                        print(f"  done: {_line(r)}", flush=True)
    ok = [r for r in rows if "error" not in r]
    if not ok:
        raise SystemExit("no combination finished")
    print(f"seasonal naive on the same {ok[0]['windows']} hold-out windows: mae {ok[0]['naive_mae']:.4g}, "
          f"mse {ok[0]['naive_mse']:.4g}")
    print(f"  {'architecture':<15} {'scaler':<9} {'loss':<5} {'mae':>10} {'mse':>12} {'mae/snaive':>10} "
          f"{'mse/snaive':>10} {'seconds':>8}")
    for r in sorted(ok, key=lambda r: r["mae_ratio"]):
        print(f"  {_line(r)}")
    both = [r for r in ok if r["mae_ratio"] < 1 and r["mse_ratio"] < 1]
    best = min(ok, key=lambda r: r["mae_ratio"])
    print(f"beat seasonal naive on both mae and mse: {len(both)} of {len(ok)} combinations; best mae: "
          f"{best['arch']} {best['scaler']} {best['loss']} ({(best['mae_ratio'] - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
