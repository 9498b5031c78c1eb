"""`hpt auto`: tune the learning-rate family with built-in ranges, moving the lr range when
the best value sits at its edge.

Each round runs the ``auto`` search strategy (lr spread evenly over its log range, lr_decay,
lr_patience and patience drawn at random) and every other hyperparameter at the
architecture's default or the base spec's value. The rounds are one scheduler
(:class:`hpt.scheduling.auto.AutoScheduler`) in one run; rows carry their ``round``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from hpt.architectures import get_architecture
from hpt.data import DEMO_DATA, DEMO_PREFIX
from hpt.errors import InputError, json_error
from hpt.progress import Reporter
from hpt.runner import RunOptions, RunSummary, run_spec
from hpt.scheduling.adaptive import adapt
from hpt.scheduling.auto import AutoScheduler
from hpt.search import TrialPlan, expand
from hpt.spec import Spec, parse_spec
from hpt.spec.periods import FIT

__all__ = ["LR_FAMILY", "AutoRequest", "auto_spec", "run_auto"]

log = logging.getLogger("hpt")

LR_FAMILY = ("lr", "lr_decay", "lr_patience", "patience")


@dataclass(frozen=True)
class AutoRequest:
    arch: str
    base_spec: str | None = None
    data: str | None = None
    target: str | None = None
    time_column: str | None = None
    trials: int = 12
    rounds: int = 3
    seed: int = 0
    quick: bool = False
    today: date | None = None
    lr_range: tuple[float, float] | None = None  # the first round's lr range instead of the built-in one
    early_stopping: str | None = None  # asha, hyperband or median: search.early_stopping of every round


AUTO_HOLDOUT = 1
"""Months at the data's end that `hpt auto`'s own periods (without a base spec) keep back for ``hpt final``."""


def _base_document(req: AutoRequest) -> tuple[dict[str, Any], Path | None, str]:
    """The base spec's document (or a minimal one), the folder its paths are relative to, its source."""
    if req.base_spec:
        path = Path(req.base_spec)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"--spec {path}: file not found") from None
        except json.JSONDecodeError as e:
            raise InputError(f"--spec {path}: {json_error(e)}") from None
        if not isinstance(doc, dict):
            raise InputError(f"--spec {path}: expected a JSON object")
        return doc, path.resolve().parent, str(path)
    # a month held out: the final model (hpt final) is tested on data no round tuned on
    return {"date_ranges": {"auto": {"count": 3, "months": FIT, "holdout": AUTO_HOLDOUT}}}, None, "hpt auto"


def auto_spec(req: AutoRequest, lr_range: tuple[float, float] | None = None, round_no: int = 1) -> Spec:
    """The spec of one round: the base's data, periods and training, the auto strategy's search space."""
    if req.lr_range is not None and not 0 < req.lr_range[0] < req.lr_range[1]:
        raise InputError(f"--lr-range: expected 0 < LOW < HIGH, got {req.lr_range[0]:g} {req.lr_range[1]:g}")
    if (req.target or req.time_column) and not req.data:
        raise InputError("--target and --time-column name the columns of --data: give --data too")
    doc, base_dir, source = _base_document(req)
    arch = get_architecture(req.arch, base_dir or Path.cwd())  # a builder module next to the spec or here
    doc = dict(doc)
    if req.data or not req.base_spec:
        if req.data and not (req.target and req.time_column):
            raise InputError("--data needs --target and --time-column (the columns to forecast and of the times)")
        if req.data:
            # a bucket URI and a bundled demo:NAME stay as they are
            path = req.data if "://" in req.data or req.data.startswith(DEMO_PREFIX) else str(Path(req.data).resolve())
            doc["data"] = {"path": path, "target": req.target, "time_column": req.time_column}
        else:
            doc["data"] = {"path": DEMO_DATA, "target": "y", "time_column": "ts"}
    default_name = "auto-" + re.sub(r"[^A-Za-z0-9._-]+", "-", arch.name)  # names a results folder: no ":" of a builder
    kept: dict[str, Any] = {}
    dropped = []
    for name, axis in (doc.get("parameters") or {}).items():
        if name not in LR_FAMILY and isinstance(axis, list) and len(axis) == 1:
            kept[name] = axis
        else:
            dropped.append(name)
    if dropped and round_no == 1:
        log.info("auto tunes %s; ignoring the base spec's parameters %s (one-value lists are kept)",
                 ", ".join(LR_FAMILY), ", ".join(dropped))
    base_search = doc.get("search")
    unread = [k for k in base_search if k not in ("strategy", "max_trials", "seed")] if isinstance(base_search, dict) \
        else []
    if unread and round_no == 1:  # the rounds' search is auto's own: --trials, --seed, --early-stopping
        log.info("auto searches with its own settings (--trials, --seed, --early-stopping); ignoring the base spec's "
                 "search.%s", ", search.".join(unread))
    if lr_range is not None:
        kept["lr"] = {"loguniform": list(lr_range)}
    doc.update(
        name=f"{doc.get('name') or Path(req.base_spec).stem}-auto" if req.base_spec else default_name,
        architecture=req.arch,
        search={"strategy": "auto", "max_trials": req.trials, "seed": req.seed + round_no - 1,
                **({"early_stopping": {"kind": req.early_stopping}} if req.early_stopping else {})},
        parameters=kept,
    )
    return parse_spec(doc, source=source, base_dir=base_dir, default_name=default_name, today=req.today,
                      quick=req.quick)


def run_auto(req: AutoRequest, options: RunOptions, reporter: Reporter) -> RunSummary:
    """One run of up to `req.rounds` rounds (one worker pool), each announced in the log; it stops
    early when the best lr lies inside its range."""
    if req.trials < 2:
        raise InputError("--trials must be at least 2")
    spec = auto_spec(req, req.lr_range)
    lr = spec.parameters["lr"]
    lr_range = (float(lr.low), float(lr.high))  # type: ignore[union-attr]

    def make_round(round_no: int, lr_range: tuple[float, float]) -> TrialPlan:
        round_spec = spec if round_no == 1 else auto_spec(req, lr_range, round_no)
        return expand(round_spec, tags={"round": round_no})

    scheduler = adapt(AutoScheduler(make_round, lr_range, req.rounds, spec.objective, reporter.line), spec,
                      reporter.line)
    return run_spec(spec, options, reporter, scheduler=scheduler)
