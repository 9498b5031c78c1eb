"""One run of a spec: the store opened, the scheduler restored from its rows, each result recorded, the run's
record started and ended, the summary said.

    open (data, sink, store, trackers, runs found killed) -> _Run: begin (the first lines, the baselines)
    -> drive (hpt.runner.loop) -> end (the run record, the store closed) -> summary (hpt.runner.summary)
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import pandas as pd

from hpt import __version__, layout
from hpt.backends import Backend
from hpt.backends.slots import Slot
from hpt.baselines import RunBaselines, without_baselines
from hpt.claims import Claims, sweep_expired
from hpt.errors import HptError, InputError, signals_put_off
from hpt.memo import at_location
from hpt.progress import Reporter, plural
from hpt.rows import read_lines
from hpt.runner.backend import make_backend
from hpt.runner.gate import ClaimGate
from hpt.runner.loop import drive
from hpt.runner.options import RunOptions, results_location
from hpt.runner.summary import RunSummary, judge_best, report_end
from hpt.runs import RunRecord, abandon_dead_runs, run_fields
from hpt.scheduling import Scheduler, make_scheduler
from hpt.scheduling.adaptive import again_text, rows_to_resume
from hpt.scheduling.base import FINISHED
from hpt.sinks import open_sink
from hpt.spec import Spec, check_data, data_report
from hpt.stamps import new_id
from hpt.store import ResultStore
from hpt.trial import Status, TrialResult

log = logging.getLogger("hpt")


def run_spec(spec: Spec, options: RunOptions | None = None, reporter: Reporter | None = None,
             slots: list[Slot] | None = None, scheduler: Scheduler | None = None,
             backend: Backend | None = None) -> RunSummary:
    """Run every trial of `spec` not already done, streaming results as each one finishes.

    `scheduler` defaults to the spec's search strategy, `backend` to the one the options or
    the spec's resources.executor name: this machine's worker pool (on `slots` when given:
    tests inject GPU lists) or a Ray cluster.
    """
    options = options or RunOptions()
    reporter = reporter or Reporter()
    frame = check_data(spec)
    sink = open_sink(results_location(spec, options.sink))
    sink.check_writable()
    tracker = _tracker(spec, options, sink)
    store = ResultStore(sink, stream=True, replace_ok=options.force)
    if sink.remote:
        store.sync()  # what an earlier run left undelivered in the local journal, before deciding what is done
    _refuse_anothers_csv(store)
    said = _Held(reporter, _dead_runs(store))
    with at_location(sink):  # a large plan's ids: read from the location rather than drawn, kept there when drawn
        scheduler = scheduler if scheduler is not None else make_scheduler(spec, said, sink.uri)
        rows, again = rows_to_resume(spec, {} if options.force else without_baselines(store.rows()))
        if again:
            said(again_text(again))
        scheduler.restore(rows, store.curves)
        backend = backend if backend is not None else make_backend(spec, frame, options, said, slots)
        run = _Run(spec, frame, options, reporter, store, tracker, scheduler, backend,
                   finished_before={tid for tid, row in rows.items() if row.get("status") in FINISHED})
        undelivered, tracked = run.go(said)
    if not undelivered:  # a location that did not take this run's results is not read again (it said why)
        try:
            store.refresh()  # rows other runs at the location stored meanwhile count toward the best config too
        except (OSError, HptError) as e:
            log.warning("could not read the rows other runs stored at %s: %s", sink.uri, e)
    trial_rows = store.frame()
    judge_best(run.summary, spec, trial_rows)
    report_end(reporter, spec, run.summary, scheduler.report(trial_rows))
    for line in undelivered + tracked:
        reporter.line(line)
    if undelivered:
        run.summary.exit_code = run.summary.exit_code or 1
    return run.summary


def _refuse_anothers_csv(store: ResultStore) -> None:
    """A results.csv that hpt did not write (no trial_id column) where no run of hpt has been (no rows, no run
    records) is someone else's file, which the run would replace: refused before anything is written. One that
    hpt wrote and that was damaged is rebuilt from the rows."""
    sink = store.sink
    if store.rows():
        return
    data = sink.read(layout.RESULTS_CSV)
    if data is None or read_lines(data) is not None or sink.list(layout.RUNS):
        return
    raise InputError(f"{sink.uri} holds a results.csv that hpt did not write (it has no trial_id column), which a run "
                     "would replace: give another location, or move that file away")


def _dead_runs(store: ResultStore) -> list[str]:
    """Runs at the location that ended without a word, now marked abandoned: a line each. Claims whose lease ran out
    (such a run's, or one away when its trial ended) are deleted."""
    sweep_expired(store.sink)
    return [f"run {dead.get('run_id')} on host {dead.get('host')} ended without a word (killed?); "
            f"its last heartbeat was at {dead.get('heartbeat_at') or dead.get('started_at')}: "
            f"{layout.run(str(dead.get('run_id')))} now says abandoned" for dead in abandon_dead_runs(store)]


class _Held:
    """What is said before the run's first line (runs found killed, the scheduler's notes) is said after it."""

    def __init__(self, reporter: Reporter, lines: list[str]) -> None:
        self.reporter = reporter
        self.lines: list[str] | None = lines

    def __call__(self, line: str) -> None:
        if self.lines is None:
            self.reporter.line(line)
        else:
            self.lines.append(line)

    def release(self) -> None:
        for line in self.lines or ():
            self.reporter.line(line)
        self.lines = None


class _Run:
    """One run at its location: its record, its claims and gate, the baselines it stores, each result recorded."""

    def __init__(self, spec: Spec, frame: pd.DataFrame, options: RunOptions, reporter: Reporter, store: ResultStore,
                 tracker: Any, scheduler: Scheduler, backend: Backend, finished_before: set[str]) -> None:
        self.spec, self.frame, self.options, self.reporter = spec, frame, options, reporter
        self.store, self.tracker, self.scheduler, self.backend = store, tracker, scheduler, backend
        self.run_id = new_id()
        self.summary = RunSummary(self.run_id, store.sink.uri, scheduler.skipped)
        self.columns = spec.columns
        self.record = RunRecord(store, self.run_id)
        self.claims = Claims(store.sink, self.run_id, self.record.beat)
        self.gate = ClaimGate(self.claims, store, self.run_id, options.force)
        self.baselines = RunBaselines(spec, frame)
        self.finished_before = finished_before  # trials with an ok or pruned row at the start: what a run skips

    def on_result(self, result: TrialResult) -> None:
        row = self.store.record(result, self.run_id, self.columns)
        if self.tracker is not None:  # MLflow: queued for a background thread; TensorBoard: a small local file
            self.tracker.add(row, result.curve)
        if result.amends:  # the row of a trial this run recorded, written again to say what came of it: no new result
            return
        tid = result.trial.trial_id
        claims = self.claims
        self.store.then(lambda: claims.release(tid))  # once its row is at the location
        self.summary.add(result)
        if result.status in (Status.OK, Status.PRUNED):  # a window setting drawn as the run goes (tpe, random)
            self.baselines.record(self.store, self.run_id, self.columns, result.trial.params)

    def go(self, said: _Held) -> tuple[list[str], list[str]]:
        """Begins, drives the loop, ends; the lines of what the location did not take, and the trackers' lines."""
        t0 = time.monotonic()
        status = "failed"
        try:
            try:
                self.begin(said)
            except BaseException:
                self.backend.close()  # a signal or an error before the loop: its workers are starting, stop them
                raise
            tracker = self.tracker
            self.reporter.seeds = self.spec.repeats > 1
            self.summary.exit_code = drive(self.scheduler, self.backend, self.on_result, self.reporter,
                                           self.spec.objective, self.options.grace, self.gate,
                                           tracker.progress if tracker is not None else None)
            status = "interrupted" if self.summary.exit_code else "finished"
        finally:
            undelivered, tracked = self.end(status, t0)
        return undelivered, tracked

    def begin(self, said: _Held) -> None:
        """The run's first write, its record and claims, its first lines and the baselines' rows."""
        spec, store, reporter, scheduler, sink = self.spec, self.store, self.reporter, self.scheduler, self.store.sink
        # the first write (a local folder is made now): a start that failed before it leaves nothing behind;
        # a missing, garbage or truncated results.csv is rebuilt from rows/, even with nothing to train
        store.write_csv()
        self.record.start({**run_fields(spec, self.backend.slot_names()), "data": data_report(spec, self.frame)},
                          self.claims.expires_at())
        if self.tracker is not None:
            self.tracker.begin_run(self.run_id)
        self.claims.start()
        f = spec.fidelity
        fidelity = f" at {f.name} fidelity ({f.purpose})" if f.purpose else ""  # --quick: a screen, said first
        reporter.line(f"hpt {__version__}: {spec.name}: {scheduler.describe()}{fidelity} of {spec.architecture} on "
                      f"{self.backend.describe()}")
        if scheduler.skipped:
            reporter.line(f"skipping {plural(scheduler.skipped, 'trial')} already done at {sink.uri} "
                          "(--force reruns them)")
        reporter.line(f"results: {sink.uri}")
        said.release()
        reporter.line(self.baselines.record(store, self.run_id, self.columns))

    def end(self, status: str, t0: float) -> tuple[list[str], list[str]]:
        """The run's record ended, the store closed (its writes waited for), the claims and trackers closed."""
        summary, reporter, gate, tracker = self.summary, self.reporter, self.gate, self.tracker
        summary.elapsed_s = time.monotonic() - t0
        # skipped: done before and not trained by this run (one that waited at asha's first rung and was judged in,
        # or a stopped trial a finalist completed, is this run's)
        again = sum(1 for tid in summary.last if tid in self.finished_before)
        summary.redone = min(again, self.scheduler.skipped)
        gate.settle()
        summary.skipped = self.scheduler.skipped - summary.redone + gate.done_elsewhere
        summary.elsewhere = {tid: holder for tid, (_, holder) in gate.held.items()}
        for holder, n in Counter(summary.elsewhere.values()).items():
            reporter.line(f"{plural(n, 'trial')} {'is' if n == 1 else 'are'} being trained by {holder}; not started here")
        reporter.close()
        try:
            with signals_put_off():  # a signal now is taken once the record says how the run ended
                self.record.end(status, counts=dict(summary.counts), results=summary.ended, skipped=summary.skipped,
                                elsewhere={tid: h.run_id for tid, h in summary.elsewhere.items()})
        finally:
            undelivered = self.store.close()  # waits for the background writes of results.csv and uploads (claims released)
            self.claims.close()
            if tracker is not None:
                tracker.end_run(self.run_id, {"finished": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED"))
            tracked = tracker.close() if tracker is not None else []  # a line; the exit code stays the run's
        return undelivered, tracked


def _tracker(spec: Spec, options: RunOptions, sink: Any) -> Any:
    """The trackers of this run (--mlflow, --tensorboard or the spec's tracking section), None without one."""
    if not (options.mlflow or options.tensorboard or spec.tracking):
        return None
    from hpt.tracking import location_uri
    from hpt.tracking.live import open_trackers

    return open_trackers(options.mlflow, options.tensorboard, spec.tracking, spec.name, location_uri(sink))
