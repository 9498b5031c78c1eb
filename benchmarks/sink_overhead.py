"""Time each kind of results location adds to a trial: local folder, S3 (moto) and GCS (fake-gcs-server).

The store is driven as the runner drives it: the main process waits while a trial trains
(here it sleeps ``--trial-seconds``, as it waits on the worker process), then records the
result (model, curve, row, results.csv), and at the end closes the store, which waits for
the background uploads. The time added per trial is what the main process spends in
``record()`` plus its share of the final ``close()``: the part of storing results that is
on the training path. For comparison, the same trials stored synchronously (no background
uploader) show what the uploads themselves cost.

The servers run on 127.0.0.1, so this measures hpt's own overhead, not a real network.

    .venv/bin/python benchmarks/sink_overhead.py [--trials 20] [--trial-seconds 0.5] [--model-kb 256]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from hpt.periods import Period  # noqa: E402
from hpt.sinks import open_sink  # noqa: E402
from hpt.store import ResultStore  # noqa: E402
from hpt.trial import Status, Trial, TrialResult  # noqa: E402
from tests.cloud_servers import LocalServer, start_gcs, start_s3  # noqa: E402

REFERENCE_TRIAL_S = 10.0
METRICS = ["val_mse", "val_mae", "train_time_s", "epochs", "best_epoch"]


def _result(i: int, model_kb: int, tag: str) -> TrialResult:
    period = Period(pd.Timestamp("2013-01-01"), pd.Timestamp("2013-03-01"))
    trial = Trial(f"{tag}-{i:05d}", f"cfg-{i:05d}", "lstm", {"lr": 0.001 * (i + 1), "hidden_size": 64},
                  ("lr", "hidden_size"), period, 0)
    curve = "epoch,train_loss,val_mse,val_mae,lr\n" + "".join(f"{e},0.5,0.4,0.3,0.001\n" for e in range(50))
    return TrialResult(trial, Status.OK, {"val_mse": 0.1 + i * 1e-3, "val_mae": 0.2, "train_time_s": 10.0,
                                          "epochs": 50, "best_epoch": 40},
                       started_at="2024-01-01T00:00:00+00:00", finished_at=f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
                       device="cuda:0", model=secrets.token_bytes(model_kb * 1024), curve=curve)


def measure(uri: str, trials: int, trial_s: float, model_kb: int, stream: bool) -> dict[str, float]:
    """Per-trial seconds on the training path: median record(), and (sum of record() + close()) / trials."""
    store = ResultStore(open_sink(uri), stream=stream)
    store.done()  # as a run does at start (reads rows/)
    record_s: list[float] = []
    for i in range(trials):
        time.sleep(trial_s)  # the trial trains in a worker process meanwhile
        t0 = time.perf_counter()
        store.record(_result(i, model_kb, secrets.token_hex(3)), "bench", METRICS)
        record_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    waiting = store.close()
    close_s = time.perf_counter() - t0
    if waiting:
        raise RuntimeError("; ".join(waiting))
    return {"record_median": statistics.median(record_s), "close": close_s,
            "per_trial": (sum(record_s) + close_s) / trials}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--trial-seconds", type=float, default=0.5, help="simulated training time per trial")
    ap.add_argument("--model-kb", type=int, default=256, help="size of each saved model")
    ap.add_argument("--repeats", type=int, default=3, help="runs per sink; medians are reported")
    args = ap.parse_args()

    servers: dict[str, LocalServer] = {}
    tmp = tempfile.TemporaryDirectory()
    os.environ["HPT_JOURNAL"] = os.path.join(tmp.name, "journal")
    try:
        servers["s3"] = start_s3()
        servers["gcs"] = start_gcs()
        for server in servers.values():
            os.environ.update(server.client_env())
        buckets = {kind: server.create_bucket() for kind, server in servers.items()}

        def location(kind: str, n: int) -> str:
            if kind == "local":
                return os.path.join(tmp.name, f"local-{n}")
            return f"{'s3' if kind == 's3' else 'gs'}://{buckets[kind]}/bench-{n}"

        print(f"{args.trials} trials x {args.repeats} repeats per sink, {args.model_kb} KiB model, "
              f"{args.trial_seconds:g}s simulated training per trial; servers on 127.0.0.1")
        rows = []
        n = 0
        for kind in ("local", "s3", "gcs"):
            for stream in (True, False):
                got = []
                for _ in range(args.repeats):
                    n += 1
                    got.append(measure(location(kind, n), args.trials, args.trial_seconds, args.model_kb, stream))
                rows.append((kind, stream, {k: statistics.median(g[k] for g in got) for k in got[0]}))
    finally:
        for server in servers.values():
            server.stop()
        tmp.cleanup()

    local = {stream: r for kind, stream, r in rows if kind == "local"}
    print(f"\n{'sink':<6} {'uploads':<11} {'record() median':>16} {'close()':>9} {'added/trial':>12} "
          f"{'minus local':>12} {'% of 10s trial':>15} {'x local':>8}")
    for kind, stream, r in rows:
        base = local[stream]["per_trial"]
        extra = r["per_trial"] - base
        print(f"{kind:<6} {'background' if stream else 'inline':<11} {r['record_median'] * 1e3:>13.2f} ms "
              f"{r['close'] * 1e3:>6.0f} ms {r['per_trial'] * 1e3:>9.2f} ms {extra * 1e3:>9.2f} ms "
              f"{100 * extra / REFERENCE_TRIAL_S:>+14.3f}% {r['per_trial'] / base:>7.2f}x")
    print()
    for kind, stream, r in rows:
        if stream and kind != "local":
            extra = r["per_trial"] - local[True]["per_trial"]
            verdict = "meets" if extra < 0.05 * REFERENCE_TRIAL_S else "MISSES"
            print(f"{kind} with background uploads (as hpt run does): {r['per_trial'] * 1e3:.1f} ms per trial on the "
                  f"training path, {extra * 1e3:+.1f} ms against the local folder = "
                  f"{100 * extra / REFERENCE_TRIAL_S:+.3f}% of a {REFERENCE_TRIAL_S:g}s trial; {verdict} the 5% goal")


if __name__ == "__main__":
    main()
