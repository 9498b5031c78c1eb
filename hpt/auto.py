"""`hpt auto`: tune the learning-rate family with built-in ranges, moving the lr range when
the best value sits at its edge.

Each round runs the ``auto`` search strategy (lr spread evenly over its log range, lr_decay,
lr_patience and patience drawn at random) and every other hyperparameter at the
architecture's default or the base spec's value. When the round's best lr lies in the
outer tenth of the range (on the log scale), the next round shifts the range half its
width that way; rows carry their ``round``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from hpt.architectures import get_architecture
from hpt.data import DEMO_DATA
from hpt.errors import InputError
from hpt.progress import Reporter, format_value, plural
from hpt.results import best_config, why_no_best
from hpt.rows import rows_frame
from hpt.runner import RunOptions, RunSummary, run_spec
from hpt.search import expand
from hpt.sinks import open_sink
from hpt.spec import Spec, parse_spec, quick_spec
from hpt.store import ResultStore

__all__ = ["LR_FAMILY", "AutoRequest", "auto_spec", "next_range", "run_auto"]

log = logging.getLogger("hpt")

LR_FAMILY = ("lr", "lr_decay", "lr_patience", "patience")
EDGE = 0.1  # the outer tenth of the log range on either side


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


def _base_document(req: AutoRequest) -> tuple[dict[str, Any], Path | None, str]:
    """The base spec's document (or a minimal one), the folder its paths are relative to, its source."""
    if req.base_spec:
        path = Path(req.base_spec)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"--spec {path}: file not found") from None
        except json.JSONDecodeError as e:
            raise InputError(f"--spec {path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
        if not isinstance(doc, dict):
            raise InputError(f"--spec {path}: expected a JSON object")
        return doc, path.resolve().parent, str(path)
    return {"date_ranges": {"auto": {"count": 3, "months": 2}}}, None, "hpt auto"


def auto_spec(req: AutoRequest, lr_range: tuple[float, float] | None = None, round_no: int = 1) -> Spec:
    """The spec of one round: the base's data, periods and training, the auto strategy's search space."""
    doc, base_dir, source = _base_document(req)
    arch = get_architecture(req.arch, base_dir or Path.cwd())  # a builder module next to the spec or here
    doc = dict(doc)
    if req.data or not req.base_spec:
        if req.data and not (req.target and req.time_column):
            raise InputError("--data needs --target and --time-column (the columns to forecast and of the times)")
        if req.data:
            path = req.data if "://" in req.data else str(Path(req.data).resolve())  # a bucket URI stays as it is
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
    if lr_range is not None:
        kept["lr"] = {"loguniform": list(lr_range)}
    doc.update(
        name=f"{doc.get('name') or Path(req.base_spec).stem}-auto" if req.base_spec else default_name,
        architecture=req.arch,
        search={"strategy": "auto", "max_trials": req.trials, "seed": req.seed + round_no - 1},
        parameters=kept,
    )
    spec = parse_spec(doc, source=source, base_dir=base_dir, default_name=default_name, today=req.today)
    return quick_spec(spec) if req.quick else spec


def next_range(low: float, high: float, best: float) -> tuple[float, float] | None:
    """The lr range of the next round, or None when `best` lies well inside [low, high]."""
    position = math.log(best / low) / math.log(high / low)
    if EDGE < position < 1 - EDGE:
        return None
    factor = math.sqrt(high / low) if position >= 1 - EDGE else 1 / math.sqrt(high / low)
    return float(f"{low * factor:.6g}"), float(f"{high * factor:.6g}")


def run_auto(req: AutoRequest, options: RunOptions, reporter: Reporter) -> list[RunSummary]:
    """Run up to `req.rounds` rounds, each announced in the log; stop early when the best lr is inside its range."""
    if req.trials < 2:
        raise InputError("--trials must be at least 2")
    if req.lr_range is not None and not 0 < req.lr_range[0] < req.lr_range[1]:
        raise InputError(f"--lr-range: expected 0 < LOW < HIGH, got {req.lr_range[0]:g} {req.lr_range[1]:g}")
    spec = auto_spec(req, req.lr_range)
    lr = spec.parameters["lr"]
    lr_range = (float(lr.low), float(lr.high))  # type: ignore[union-attr]
    summaries: list[RunSummary] = []
    for round_no in range(1, req.rounds + 1):
        if round_no > 1:
            spec = auto_spec(req, lr_range, round_no)
        reporter.line(f"auto round {round_no}/{req.rounds}: {spec.architecture}, lr {lr_range[0]:g}..{lr_range[1]:g} "
                      f"(log), {plural(req.trials, 'config')} x {plural(len(spec.periods), 'period')}"
                      + (" (quick screening)" if spec.fidelity == "quick" else ""))
        plan = expand(spec, tags={"round": round_no})
        summary = run_spec(spec, options, reporter, plan=plan)
        summaries.append(summary)
        if summary.exit_code:
            break
        store = ResultStore(open_sink(summary.results))
        trial_rows = rows_frame(store.rows().values(), {t.trial_id for t in plan})
        best = best_config(trial_rows, spec.objective)
        if best is None:
            reporter.line(f"auto round {round_no}: {why_no_best(trial_rows, spec.objective)}; stopping")
            break
        best_lr = float(best.params["lr"])
        moved = next_range(*lr_range, best_lr)
        if moved is None:
            reporter.line(f"auto: best lr {format_value(best_lr)} lies inside {lr_range[0]:g}..{lr_range[1]:g}; done")
            break
        side = "top" if moved[0] > lr_range[0] else "bottom"
        if round_no == req.rounds:
            reporter.line(f"auto: best lr {format_value(best_lr)} sits at the {side} of {lr_range[0]:g}..{lr_range[1]:g} "
                          f"after the last round; --rounds {req.rounds + 1} would try {moved[0]:g}..{moved[1]:g}")
            break
        reporter.line(f"auto: best lr {format_value(best_lr)} sits at the {side} of {lr_range[0]:g}..{lr_range[1]:g}; "
                      f"round {round_no + 1} moves the range to {moved[0]:g}..{moved[1]:g}")
        lr_range = moved
    return summaries

