"""The loop that joins them: spec -> trials -> executor -> results location.

Trials that already have an ``ok`` row at the results location are skipped, so running the
same command again resumes an interrupted run.
"""

from __future__ import annotations

import getpass
import os
import platform
import secrets
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from hpt import __version__
from hpt.errors import InputError
from hpt.executor import AutoPacker, Executor, Slot, cpu_slots, gpu_slots, visible_gpus
from hpt.progress import Reporter, format_duration, format_params, format_value, plural
from hpt.results import BestConfig, best_config, why_no_best
from hpt.rows import rows_frame
from hpt.search import TrialPlan, expand
from hpt.sinks import open_sink
from hpt.spec import Spec, check_data
from hpt.store import ResultStore
from hpt.trial import Status, Trial, TrialResult, utcnow

__all__ = ["RunOptions", "RunSummary", "choose_slots", "results_location", "run_spec"]


@dataclass(frozen=True)
class RunOptions:
    sink: str | None = None  # overrides the spec's sink
    workers: int | None = None  # CPU worker processes (default 1)
    device: str = "auto"  # auto | cpu | cuda
    force: bool = False  # rerun trials that already have an ok row
    gpus: tuple[str, ...] | None = None  # narrows the visible GPUs (overrides the spec's resources.gpus)
    trials_per_gpu: int | str | None = None  # N or "auto" (overrides resources.trials_per_gpu)
    grace: float = 10.0  # seconds running trials get to finish after SIGINT/SIGTERM


@dataclass
class RunSummary:
    run_id: str
    results: str
    planned: int
    skipped: int
    counts: Counter[str] = field(default_factory=Counter)
    best: BestConfig | None = None
    best_note: str = ""  # why no config is best, when none is
    exit_code: int = 0
    elapsed_s: float = 0.0


def results_location(spec: Spec, override: str | None = None) -> str:
    """Where results go: --sink, else the spec's sink, else hpt-results/<name>."""
    return override or spec.sink or os.path.join("hpt-results", spec.name)


def choose_slots(device: str, workers: int | None, gpus: list[str] | None = None, only: tuple[str, ...] | None = None,
                 per_gpu: int = 1) -> list[Slot]:
    """Worker slots: `per_gpu` on each GPU in use, or `workers` CPU workers.

    `gpus` is the visible GPU list (found when None; tests inject it); `only` narrows it.
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f'--device must be auto, cpu or cuda, got "{device}"')
    found = (visible_gpus() if gpus is None else gpus) if device != "cpu" else []
    if only:
        if not found:
            raise InputError(f"--gpus {','.join(only)}: no CUDA GPU is visible to this process")
        missing = [g for g in only if g not in found]
        if missing:
            raise InputError(f"--gpus: GPU {', '.join(missing)} is not visible; visible: {', '.join(found)}")
        found = [g for g in found if g in only]
    if device == "cuda" and not found:
        raise InputError("--device cuda: no CUDA GPU is visible to this process")
    if found:
        return gpu_slots(found, per_gpu)
    return cpu_slots(workers or 1)


def _new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)


def _run_record(spec: Spec, run_id: str, slots: list[Slot], started: str) -> dict[str, Any]:
    import torch

    return {
        "run_id": run_id,
        "spec_name": spec.name,
        "spec_source": spec.source,
        "spec": dict(spec.document),
        "command": sys.argv,
        "hpt_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "slots": [s.name for s in slots],
        "started_at": started,
        "status": "running",
    }


def run_spec(spec: Spec, options: RunOptions | None = None, reporter: Reporter | None = None,
             slots: list[Slot] | None = None, plan: TrialPlan | None = None) -> RunSummary:
    """Run every trial of `spec` not already done, streaming results as each one finishes."""
    options = options or RunOptions()
    reporter = reporter or Reporter()
    frame = check_data(spec)
    sink = open_sink(results_location(spec, options.sink))
    sink.check_writable()
    store = ResultStore(sink, stream=True)
    if sink.remote:
        store.sync()  # what an earlier run left undelivered in the local journal, before deciding what is done
    plan = plan if plan is not None else expand(spec)
    resources = spec.resources
    per_gpu = options.trials_per_gpu or resources.get("trials_per_gpu") or 1
    only = options.gpus or tuple(str(g) for g in resources.get("gpus", ())) or None
    if slots is None:
        slots = choose_slots(options.device, options.workers, only=only, per_gpu=1 if per_gpu == "auto" else int(per_gpu))
    on_gpu = slots[0].gpu is not None

    done_ids = set() if options.force else store.done()
    todo, skipped, plan_ids = _select(plan, done_ids)
    run_id = _new_run_id()
    summary = RunSummary(run_id, sink.uri, len(plan), skipped)
    started = utcnow()
    record = _run_record(spec, run_id, slots, started)
    store.write_run(run_id, record)

    gpus = list(dict.fromkeys(s.gpu for s in slots if s.gpu is not None))
    where = (f"{plural(len(gpus), 'GPU')} ({', '.join(gpus)}), "
             + ("trials per GPU: auto" if per_gpu == "auto" else f"{plural(len(slots) // len(gpus), 'trial')} per GPU")
             if on_gpu else f"the CPU ({plural(len(slots), 'worker')}; no CUDA GPU in use)")
    reporter.line(f"hpt {__version__}: {spec.name}: {plural(len(plan), 'trial')} ({plural(len(plan.configs), 'config')} x "
                  f"{plural(len(plan.periods), 'period')}) of {spec.architecture} on {where}")
    if skipped:
        reporter.line(f"skipping {plural(skipped, 'trial')} already done at {sink.uri} (--force reruns them)")
    reporter.line(f"results: {sink.uri}")

    columns = spec.columns
    t0 = time.monotonic()
    finished = 0
    reporter.start(len(todo))

    def on_result(result: TrialResult) -> None:
        nonlocal finished
        finished += 1
        store.record(result, run_id, columns)
        summary.counts[result.status.value] += 1
        reporter.trial_done(result, finished, len(todo), spec.objective)

    packer = AutoPacker(gpus, reporter.line) if on_gpu and per_gpu == "auto" else None
    executor = Executor(frame, slots, spec.objective, grace=options.grace, grow=packer)
    status = "failed"
    try:
        executor.run(iter(todo), on_result, on_start=reporter.trial_started, on_interrupt=reporter.interrupted)
        status = "interrupted" if executor.interrupted_by else "finished"
    finally:
        reporter.close()
        summary.elapsed_s = time.monotonic() - t0
        summary.exit_code = executor.exit_code
        record.update(status=status, finished_at=utcnow(), counts=dict(summary.counts), skipped=skipped)
        store.write_run(run_id, record)
        undelivered = store.close()  # waits for the background uploads of a remote sink
    trial_rows = rows_frame(store.rows().values(), plan_ids)
    summary.best = best_config(trial_rows, spec.objective)
    summary.best_note = "" if summary.best else why_no_best(trial_rows, spec.objective)
    _report_end(reporter, spec, summary)
    for line in undelivered:
        reporter.line(line)
    if undelivered:
        summary.exit_code = summary.exit_code or 1
    return summary


def _select(plan: TrialPlan, done: set[str]) -> tuple[list[Trial], int, set[str]]:
    """The trials still to run (each id once), how many were skipped as done, and every id."""
    todo, seen, skipped = [], set(), 0
    for trial in plan:
        if trial.trial_id in seen:
            continue  # random search drew this config before
        seen.add(trial.trial_id)
        if trial.trial_id in done:
            skipped += 1
        else:
            todo.append(trial)
    return todo, skipped, seen


def _report_end(reporter: Reporter, spec: Spec, s: RunSummary) -> None:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items(), key=lambda kv: Status(kv[0]).name)) or "none run"
    verb = "interrupted" if s.exit_code else "finished"
    reporter.line(f"run {s.run_id} {verb} in {format_duration(s.elapsed_s)}: {counts}"
                  + (f"; {s.skipped} skipped as already done" if s.skipped else ""))
    if s.exit_code:
        reporter.line("finished trials are kept; run the same command again to do the rest")
    if s.best:
        reporter.line(f"best config {s.best.config_id}: {format_params(s.best.params)}  "
                      f"mean {spec.objective}={format_value(s.best.mean)} over {plural(s.best.periods_run, 'period')}")
    elif s.best_note:
        reporter.line(s.best_note)
    reporter.line(f"results: {s.results}  (see them with: hpt results {s.results})")
