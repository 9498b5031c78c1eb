"""The loop that joins them: a scheduler decides what to try, a backend runs it, the store keeps it.

    Spec -> Scheduler -> Runner -> Backend (workers) -> events -> Runner -> Scheduler and Store

The runner owns what every backend needs alike: signals (no new trials after Ctrl-C or
SIGTERM, a grace period for the running ones, then ``interrupted`` rows), exit codes and
the progress log. The scheduler is rebuilt from the rows already at the results location,
so running the same command again resumes an interrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from hpt import __version__, layout
from hpt.backends import Backend
from hpt.backends.local import AutoPacker, LocalBackend, Slot, choose_slots
from hpt.baselines import RunBaselines, without_baselines
from hpt.claims import Claims, Holder
from hpt.errors import SIGNAL_EXIT, HptError, InputError
from hpt.progress import Reporter, format_duration, format_params, format_value, plural
from hpt.results import (
    BestConfig,
    Judgement,
    VsBaseline,
    config_judgement,
    main_fidelity,
    rank_fidelity,
    versus_baselines,
)
from hpt.rows import parse_row, rows_frame
from hpt.runs import RunRecord, abandon_dead_runs, run_fields
from hpt.scheduling import DONE, Scheduler, make_scheduler
from hpt.sinks import check_uri, open_sink
from hpt.spec import Spec, check_data, data_report
from hpt.stamps import new_id
from hpt.store import ResultStore
from hpt.trial import Event, Finished, Progress, Started, Status, Trial, TrialResult, as_decided, monitor_of

__all__ = ["ClaimGate", "Gate", "RunOptions", "RunSummary", "drive", "local_backend", "make_backend", "ray_backend",
           "results_location", "run_spec"]

log = logging.getLogger("hpt")


@dataclass(frozen=True)
class RunOptions:
    sink: str | None = None  # overrides the spec's sink
    workers: int | None = None  # CPU worker processes (default: usable CPUs / threads)
    threads: int | None = None  # torch threads per worker (overrides resources.threads; default 1 on the CPU, 2 with a GPU)
    device: str = "auto"  # auto | cpu | cuda
    force: bool = False  # rerun trials that already have an ok row
    gpus: tuple[str, ...] | None = None  # narrows the visible GPUs (overrides the spec's resources.gpus)
    trials_per_gpu: int | str | None = None  # N or "auto" (overrides resources.trials_per_gpu)
    grace: float = 10.0  # seconds running trials get to finish after SIGINT/SIGTERM
    executor: str | None = None  # "local" or "ray" (overrides resources.executor; default local)
    ray_address: str | None = None  # with executor ray: HOST:PORT, ray://HOST:PORT or auto (else $RAY_ADDRESS)
    mlflow: str | None = None  # --mlflow URI: log each trial there (overrides the spec's tracking.mlflow)
    tensorboard: str | None = None  # --tensorboard DIR: write each trial there (overrides tracking.tensorboard)


@dataclass
class RunSummary:
    run_id: str
    results: str
    skipped: int
    counts: Counter[str] = field(default_factory=Counter)
    best: BestConfig | None = None
    best_note: str = ""  # why no config is best, when none is
    vs_baseline: VsBaseline | None = None  # the best config against the better naive baseline
    verdict: Judgement | None = None  # ... and where the other reported errors disagree with the objective's
    exit_code: int = 0
    elapsed_s: float = 0.0
    elsewhere: dict[str, Holder] = field(default_factory=dict)  # trials another live run trains: not started here


def results_location(spec: Spec, override: str | None = None) -> str:
    """Where results go: --sink (a folder relative to the current one), else the spec's sink (a folder relative
    to the spec's, see :func:`hpt.spec.parse_spec`), else hpt-results/<name> in the current folder.

    A folder comes back as an absolute path, so that what is printed says which folder it is.
    """
    location = override or spec.sink or os.path.join("hpt-results", spec.name)
    check_uri(location)
    if "://" in location:
        return location
    location = os.path.abspath(os.path.expanduser(location))
    if not override:
        _say_old_place(spec, location)
    return location


def _say_old_place(spec: Spec, location: str) -> None:
    """hpt up to 0.2 took a spec's relative sink from the current folder: results left there are named, not ignored."""
    written = spec.document.get("sink")
    if not isinstance(written, str) or "://" in written or os.path.isabs(os.path.expanduser(written)):
        return
    old = os.path.abspath(os.path.expanduser(written))
    if old != location and os.path.isdir(os.path.join(old, "rows")) and not os.path.isdir(os.path.join(location, "rows")):
        log.warning("warning: results at %s are not used: the spec's sink %s is relative to the spec's folder, "
                    "%s (earlier versions of hpt took it from the current folder); move them there, or give --sink %s",
                    old, json.dumps(written), location, old)


def local_backend(spec: Spec, frame: pd.DataFrame, options: RunOptions, say: Any,
                  slots: list[Slot] | None = None) -> LocalBackend:
    """The worker pool of this machine, as the options and the spec's resources ask; `frame` is the checked data."""
    resources = spec.resources
    per_gpu = options.trials_per_gpu or resources.get("trials_per_gpu") or 1
    only = options.gpus or tuple(str(g) for g in resources.get("gpus", ())) or None
    if slots is None:
        slots = choose_slots(options.device, options.workers, only=only, per_gpu=1 if per_gpu == "auto" else int(per_gpu),
                             threads=options.threads or resources.get("threads"))
    gpus = list(dict.fromkeys(s.gpu for s in slots if s.gpu is not None))
    packer = AutoPacker(gpus, say, threads=slots[0].threads) if gpus and per_gpu == "auto" else None
    return LocalBackend(frame, slots, spec.objective, grow=packer)


def ray_backend(spec: Spec, frame: pd.DataFrame, options: RunOptions, say: Any) -> Backend:
    """Trials as Ray tasks on the cluster at --ray-address or $RAY_ADDRESS, else on a local Ray instance."""
    from hpt.backends.ray import RayBackend, connect, import_ray

    if options.gpus:
        raise InputError(f"--gpus {','.join(options.gpus)} picks GPUs of this machine; on Ray each node offers the "
                         "GPUs its `ray start` registered (CUDA_VISIBLE_DEVICES or --num-gpus there)")
    resources = spec.resources
    if resources.get("gpus"):
        say("resources.gpus picks GPUs of this machine for the local pool; on Ray it is ignored")
    address = options.ray_address or os.environ.get("RAY_ADDRESS") or None
    per_gpu = options.trials_per_gpu or resources.get("trials_per_gpu") or 1
    owned = connect(address)
    try:
        return RayBackend(frame, spec.objective, device=options.device, max_trials=options.workers, per_gpu=per_gpu,
                          address=address or "", say=say, shutdown=owned,
                          threads=options.threads or resources.get("threads"))
    except BaseException:
        if owned:
            import_ray().shutdown()
        raise


def make_backend(spec: Spec, frame: pd.DataFrame, options: RunOptions, say: Any,
                 slots: list[Slot] | None = None) -> Backend:
    """The backend the options (else the spec's resources.executor) name: the local pool by default, or Ray.

    `frame` is the spec's data as :func:`hpt.spec.check_data` returned it (read and checked once per run).
    """
    executor = options.executor or spec.resources.get("executor") or "local"
    if executor == "ray":
        return ray_backend(spec, frame, options, say)
    if options.ray_address:
        raise InputError("--ray-address needs --executor ray (or \"resources\": {\"executor\": \"ray\"} in the spec)")
    return local_backend(spec, frame, options, say, slots)


class Gate(Protocol):
    """Whether this run may start a trial now (another run at the location may have it)."""

    recheck_s: float  # how often trials turned away are asked about again while the run has other work

    def admit(self, trial: Trial) -> bool:
        """True: start it here (it is this run's now). False: not here, because it is done already or
        another live run is training it; the latter are listed by :meth:`waiting`."""

    def waiting(self) -> list[Trial]:
        """Trials turned away because another live run is training them, to ask about again later."""


class ClaimGate:
    """Admits a trial once this run holds its claim and no other run has stored an ok row for it."""

    def __init__(self, claims: Claims, store: ResultStore, run_id: str, force: bool) -> None:
        self.claims = claims
        self.store = store
        self.recheck_s = claims.renew
        self.run_id = run_id
        # --force reruns the ok rows that were there when it started, not those another run writes meanwhile
        self.rerun = {tid: row.get("run_id") for tid, row in store.rows().items()} if force else {}
        self.held: dict[str, tuple[Trial, Holder]] = {}  # turned away: another live run has it
        self.done_elsewhere = 0

    def admit(self, trial: Trial) -> bool:
        tid = trial.trial_id
        holder = self.claims.take(tid)
        if holder is not None:
            self.held[tid] = (trial, holder)
            return False
        self.held.pop(tid, None)
        try:
            row = parse_row(self.store.sink.read(layout.row(tid)))
        except HptError:
            row = None  # the location is away: train it (the first ok row is kept)
        if row is not None and row.get("status") == Status.OK.value and row.get("run_id") != self.run_id \
                and row.get("run_id") != self.rerun.get(tid, ""):
            self.claims.release(tid)  # another run finished it since this one started
            self.done_elsewhere += 1
            return False
        return True

    def waiting(self) -> list[Trial]:
        return [trial for trial, _ in self.held.values()]


class _Signals:
    """SIGINT/SIGTERM while the loop runs: the first stops new trials, a second stops the running ones."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.count = 0

    def __call__(self, signum: int, _frame: Any) -> None:
        self.count += 1
        if self.first is None:
            self.first = signum

    @property
    def exit_code(self) -> int:
        return SIGNAL_EXIT.get(signal.Signals(self.first), 130) if self.first else 0


def drive(scheduler: Scheduler, backend: Backend, on_result: Any, reporter: Reporter, objective: str,
          grace: float = 10.0, gate: Gate | None = None, on_progress: Any = None) -> int:
    """Run the loop until the scheduler is done or a signal stops it; the exit code (0, 130, 143).

    `on_result(result)` stores each ended trial, the interrupted ones included; `on_progress(event)`, when
    given, hears each epoch that is part of a trial's result (not those trained after its stop). An error
    raised while storing a result stops the loop and propagates; the results already polled
    are stored and the trials still running recorded ``interrupted`` on the way out, and an
    error doing that is logged, never allowed to hide the first one.

    With a `gate`, a trial starts only once the gate admits it. Those turned away because
    another live run trains them are asked about again when a slot is free and the
    scheduler has nothing else, at most every ``gate.recheck_s`` seconds while trials run
    here; when nothing runs here any more they are asked once more and then left to that run.
    """
    signals = _Signals()
    previous = {s: signal.signal(s, signals) for s in SIGNAL_EXIT}
    running: set[str] = set()
    stopping: dict[str, tuple[int, str]] = {}  # trial id -> the epoch its stop was decided on, and why
    monitor = monitor_of(objective)

    def decided(result: TrialResult) -> TrialResult:
        """A stopped trial's result as of the epoch of the decision, whenever the stop reached it."""
        stop = stopping.pop(result.trial.trial_id, None)
        return result if stop is None else as_decided(result, *stop, monitor)

    finished = 0
    deadline: float | None = None
    exhausted = False
    total = scheduler.remaining() or 0
    events: list[Event] = []
    reporter.start(total)
    failing = False
    recheck = time.monotonic() + (gate.recheck_s if gate else 0.0)
    try:
        while True:
            while signals.first is None and backend.free() > 0:
                nxt = scheduler.suggest() if not exhausted else DONE
                if isinstance(nxt, TrialResult):  # decided without training (a config racing dropped)
                    finished += 1
                    on_result(nxt)
                    scheduler.on_result(nxt)
                    reporter.trial_done(nxt, finished, max(total, finished + len(running)), objective)
                    continue
                if not isinstance(nxt, Trial):
                    exhausted = nxt is DONE
                    if gate is None or not gate.waiting() or (running and time.monotonic() < recheck):
                        break
                    recheck = time.monotonic() + gate.recheck_s
                    for trial in [t for t in gate.waiting()[:backend.free()] if gate.admit(t)]:
                        backend.submit(trial)
                        running.add(trial.trial_id)
                    break
                if gate is not None and not gate.admit(nxt):
                    continue
                backend.submit(nxt)
                running.add(nxt.trial_id)
            if not running:
                if exhausted or signals.first is not None or (gate is not None and gate.waiting()):
                    break
                raise RuntimeError("the scheduler waits while no trial is running")  # a scheduler bug, not input
            if signals.first is not None:
                if deadline is None:
                    deadline = time.monotonic() + grace
                    n = len(running)
                    reporter.interrupted(f"{signal.Signals(signals.first).name}: no new trials; {n} running "
                                         f"{'trial gets' if n == 1 else 'trials get'} up to {grace:g}s to finish "
                                         f"(a second signal stops {'it' if n == 1 else 'them'} now)")
                if signals.count > 1 or time.monotonic() >= deadline:
                    break
            events = backend.poll(0.2)
            while events:
                event = events.pop(0)
                if isinstance(event, Started):
                    reporter.trial_started(event.trial, event.where)
                elif isinstance(event, Progress):
                    if event.trial.trial_id in stopping:
                        continue  # an epoch trained while its stop was on the way: not part of its result
                    if on_progress is not None:
                        on_progress(event)
                    reason = scheduler.on_progress(event)
                    if reason:
                        stopping[event.trial.trial_id] = (event.epoch, reason)
                        backend.stop(event.trial.trial_id, reason)
                elif isinstance(event, Finished):
                    result = decided(event.result)
                    running.discard(result.trial.trial_id)
                    finished += 1
                    on_result(result)
                    scheduler.on_result(result)
                    total = finished + len(running) + (scheduler.remaining() or 0)
                    reporter.trial_done(result, finished, total, objective)
    except BaseException:
        failing = True
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        ended = [decided(e.result) for e in events if isinstance(e, Finished)]  # polled, not yet stored when it failed
        for result in ended + backend.close():
            finished += 1
            try:
                on_result(result)
                reporter.trial_done(result, finished, max(total, finished), objective)
            except Exception as e:
                if not failing:
                    raise
                log.warning("could not record interrupted trial %s: %s", result.trial.trial_id, e)
    return signals.exit_code


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
    # what is said before the run's first line (runs found killed, the scheduler's notes) is said after it
    held: list[str] | None = [f"run {dead.get('run_id')} on host {dead.get('host')} ended without a word (killed?); "
                              f"its last heartbeat was at {dead.get('heartbeat_at') or dead.get('started_at')}: "
                              f"{layout.run(str(dead.get('run_id')))} now says abandoned" for dead in abandon_dead_runs(store)]

    def say(line: str) -> None:
        if held is None:
            reporter.line(line)
        else:
            held.append(line)

    scheduler = scheduler if scheduler is not None else make_scheduler(spec, say, sink.uri)
    scheduler.restore({} if options.force else without_baselines(store.rows()), store.curves)
    backend = backend if backend is not None else make_backend(spec, frame, options, reporter.line, slots)

    run_id = new_id()
    summary = RunSummary(run_id, sink.uri, scheduler.skipped)
    columns = spec.columns
    run = RunRecord(store, run_id)
    claims = Claims(sink, run_id, run.beat)
    gate = ClaimGate(claims, store, run_id, options.force)
    baselines = RunBaselines(spec, frame)

    def on_result(result: TrialResult) -> None:
        row = store.record(result, run_id, columns)
        if tracker is not None:  # MLflow: queued for a background thread; TensorBoard: a small local file
            tracker.add(row, result.curve)
        tid = result.trial.trial_id
        store.then(lambda: claims.release(tid))  # once its row is at the location
        summary.counts[result.status.value] += 1
        if result.status in (Status.OK, Status.PRUNED):  # a window setting drawn as the run goes (tpe, random)
            baselines.record(store, run_id, columns, result.trial.params)

    t0 = time.monotonic()
    status = "failed"
    try:
        try:
            # the first write (a local folder is made now): a start that failed before it leaves nothing behind;
            # a missing, garbage or truncated results.csv is rebuilt from rows/, even with nothing to train
            store.write_csv()
            run.start({**run_fields(spec, backend.slot_names()), "data": data_report(spec, frame)}, claims.expires_at())
            if tracker is not None:
                tracker.begin_run(run_id)
            claims.start()
            reporter.line(f"hpt {__version__}: {spec.name}: {scheduler.describe()} of {spec.architecture} on "
                          f"{backend.describe()}")
            if scheduler.skipped:
                reporter.line(f"skipping {plural(scheduler.skipped, 'trial')} already done at {sink.uri} "
                              "(--force reruns them)")
            reporter.line(f"results: {sink.uri}")
            for line in held or ():
                reporter.line(line)
            held = None
            reporter.line(baselines.record(store, run_id, columns))
        except BaseException:
            backend.close()  # a signal or an error before the loop: its workers are starting, stop them
            raise
        summary.exit_code = drive(scheduler, backend, on_result, reporter, spec.objective, options.grace, gate,
                                  tracker.progress if tracker is not None else None)
        status = "interrupted" if summary.exit_code else "finished"
    finally:
        summary.elapsed_s = time.monotonic() - t0
        summary.skipped = scheduler.skipped + gate.done_elsewhere
        summary.elsewhere = {tid: holder for tid, (_, holder) in gate.held.items()}
        for holder, n in Counter(summary.elsewhere.values()).items():
            reporter.line(f"{plural(n, 'trial')} {'is' if n == 1 else 'are'} being trained by {holder}; not started here")
        reporter.close()
        try:
            run.end(status, counts=dict(summary.counts), skipped=summary.skipped,
                    elsewhere={tid: h.run_id for tid, h in summary.elsewhere.items()})
        finally:
            undelivered = store.close()  # waits for the background writes of results.csv and uploads (claims released)
            claims.close()
            if tracker is not None:
                tracker.end_run(run_id, {"finished": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED"))
            tracked = tracker.close() if tracker is not None else []  # a line; the exit code stays the run's
    if not undelivered:  # a location that did not take this run's results is not read again (it said why)
        try:
            store.refresh()  # rows other runs at the location stored meanwhile count toward the best config too
        except (OSError, HptError) as e:
            log.warning("could not read the rows other runs stored at %s: %s", sink.uri, e)
    trial_rows = rows_frame(store.rows().values())
    planned = {spec.fidelity.name: [p.label for p in spec.periods]}
    fidelity = main_fidelity(trial_rows, spec.objective)  # what best_config ranks: ranked once here
    ranking = rank_fidelity(trial_rows, spec.objective, fidelity, planned.get(fidelity, ()))
    summary.best, summary.best_note = ranking.best, ranking.why_no_best()
    if summary.best is not None:
        summary.vs_baseline = vs = versus_baselines(trial_rows, ranking).get(summary.best.config_id)
        summary.verdict = None if vs is None else config_judgement(trial_rows, ranking, vs, spec.columns)
    _report_end(reporter, spec, summary, scheduler.report(trial_rows))
    for line in undelivered + tracked:
        reporter.line(line)
    if undelivered:
        summary.exit_code = summary.exit_code or 1
    return summary


def _tracker(spec: Spec, options: RunOptions, sink: Any) -> Any:
    """The trackers of this run (--mlflow, --tensorboard or the spec's tracking section), None without one."""
    if not (options.mlflow or options.tensorboard or spec.tracking):
        return None
    from hpt.tracking import location_uri
    from hpt.tracking.live import open_trackers

    return open_trackers(options.mlflow, options.tensorboard, spec.tracking, spec.name, location_uri(sink))


def _report_end(reporter: Reporter, spec: Spec, s: RunSummary, notes: list[str]) -> None:
    """The run's summary; `notes`: the scheduler's lines about the run (a promotion's screen vs its full results)."""
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items(), key=lambda kv: list(Status).index(Status(kv[0]))))
    verb = "interrupted" if s.exit_code else "finished"
    reporter.line(f"run {s.run_id} {verb} in {format_duration(s.elapsed_s)}: {counts or 'none run'}"
                  + (f"; {s.skipped} skipped as already done" if s.skipped else "")
                  + (f"; {len(s.elsewhere)} left to another run" if s.elsewhere else ""))
    if s.exit_code:
        reporter.line("finished trials are kept; run the same command again to do the rest")
    if s.best:
        reporter.line(f"best config {s.best.config_id}: {format_params(s.best.params)}  "
                      f"mean {spec.objective}={format_value(s.best.mean)} over {plural(s.best.periods_run, 'period')}")
        vs = s.vs_baseline
        if vs is not None:  # judged on the objective; the other reported errors where they disagree
            dissent = f"; {s.verdict.dissent()}" if s.verdict is not None and s.verdict.dissent() else ""
            reporter.line(f"best config vs naive baselines: {vs.text(spec.objective)}{dissent}" if vs.beats else
                          f"warning: the best config does not beat the {vs.label} forecast: "
                          f"{vs.text(spec.objective)}{dissent}")
    elif s.best_note:
        reporter.line(s.best_note)
    for line in notes:
        reporter.line(line)
    reporter.line(f"results: {s.results}  (see them with: hpt results {s.results})")
