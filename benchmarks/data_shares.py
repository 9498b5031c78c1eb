"""Which windows should a data rung train on? Most recent, evenly spread or random, measured.

Early stopping on data (``early_stopping.resource: "data"``) trains each config first on a
share of each period's training windows. This trains random configs of the search-efficiency
benchmark's space (mlp on the bundled electricity data, its 2 periods and training settings)
on the whole of each period and on a share of it, picking the share's windows three ways:

- recent: the most recent windows (the ones just before the validation part): what hpt does;
- spread: evenly spaced over the training part;
- random: drawn at random (seeded per trial).

It prints, per way, the Spearman rank correlation between the configs' mean objective over
the periods at the share and on the whole (what a rung's decision rests on), whether the
share's best config is the whole's best, and the training time at the share against the
whole. One torch thread, in this process, one trial at a time.

    python benchmarks/data_shares.py                 # 12 configs, share 1/9
    python benchmarks/data_shares.py --configs 16 --share 3
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import time
from collections.abc import Callable

import torch

import hpt.train
from hpt.fidelity import Fidelity, data_share
from hpt.search import expand
from hpt.spec import check_data
from hpt.train import TrainContext
from hpt.trial import Status, Trial

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from search_efficiency import make_spec  # noqa: E402  (the same space, periods and training)

Tensors = tuple[torch.Tensor, ...]


def spread(tensors: Tensors, share: float) -> Tensors:
    x, y, *rest = tensors
    keep = max(1, math.ceil(share * len(x) - 1e-9))
    index = torch.linspace(0, len(x) - 1, keep).round().long()
    return (x[index], y[index], *rest)


def drawn(tensors: Tensors, share: float) -> Tensors:
    x, y, *rest = tensors
    keep = max(1, math.ceil(share * len(x) - 1e-9))
    index = torch.randperm(len(x), generator=torch.Generator().manual_seed(len(x)))[:keep].sort().values
    return (x[index], y[index], *rest)


WAYS: dict[str, Callable[[Tensors, float], Tensors]] = {"recent": hpt.train.recent_share, "spread": spread,
                                                         "random": drawn}


def spearman(a: list[float], b: list[float]) -> float:
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0.0] * len(v)
        for r, i in enumerate(order):
            out[i] = float(r)
        return out

    ra, rb = ranks(a), ranks(b)
    return statistics.correlation(ra, rb)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--share", type=int, default=9, help="the share is 1/SHARE (default 9)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = make_spec("random", args.seed, args.configs, args.epochs, 2)
    ctx = TrainContext(check_data(spec), objective=spec.objective)
    full = list(expand(spec))
    share = data_share(spec.fidelity, args.share)

    def mean_by_config(trials: list[Trial]) -> tuple[dict[str, float], float]:
        values: dict[str, list[float]] = {}
        spent = 0.0
        for t in trials:
            r = ctx.run(t)
            spent += float(r.metrics.get("train_time_s", 0.0))
            ok = r.status is Status.OK and spec.objective in r.metrics
            values.setdefault(t.config_id, []).append(float(r.metrics[spec.objective]) if ok else math.inf)
        return {c: statistics.fmean(v) for c, v in values.items()}, spent

    whole, whole_s = mean_by_config(full)
    configs = sorted(whole)
    best = min(configs, key=lambda c: whole[c])
    print(f"data shares: {args.configs} configs of mlp (search-efficiency space, seed {args.seed}), 2 periods, "
          f"up to {args.epochs} epochs, share 1/{args.share}; one torch thread; training time on the whole: {whole_s:.1f}s")
    print(f"  {'windows':<8} {'Spearman vs whole':>18} {'best found':>11} {'time vs whole':>14}")
    for name, way in WAYS.items():
        hpt.train.recent_share = way  # TrainContext.run picks a share's windows through it
        at_share, spent = mean_by_config([expand_one(t, share) for t in full])
        finite = [c for c in configs if math.isfinite(whole[c]) and math.isfinite(at_share[c])]
        rho = spearman([whole[c] for c in finite], [at_share[c] for c in finite])
        found = min(configs, key=lambda c: at_share[c]) == best
        print(f"  {name:<8} {rho:>18.2f} {'yes' if found else 'no':>11} {spent / whole_s:>14.2f}", flush=True)
    return 0


def expand_one(trial: Trial, share: Fidelity) -> Trial:
    """`trial` at the share (its id does not matter here: nothing is stored)."""
    return dataclasses.replace(trial, fidelity=share)


if __name__ == "__main__":
    t0 = time.monotonic()
    code = main()
    print(f"time: {time.monotonic() - t0:.0f}s")
    sys.exit(code)
