"""MLflow runs for hpt trials: live (``hpt run --mlflow URI``) and after the fact (``hpt results LOCATION --mlflow URI``).

One MLflow run per trial, nested under a parent run per ``hpt run`` (tag ``hpt.run_id``):
params are the tuned parameters; metrics the curve per epoch (``curve/<column>``, step =
epoch) and the row's own metrics (val_mse, ... at the last epoch); tags say which trial it
is (``hpt.trial_id``, ``hpt.config_id``, ``hpt.period``, ``hpt.fidelity``, ``hpt.status``,
``hpt.results``, ``hpt.row``) and where its model is (``hpt.model_uri``). The model is a link,
not a copy: it is already stored at the results location, where ``hpt predict`` and
``hpt final`` read it, so a copy would double every upload (and a bucket's model would cross
the network twice) for nothing that the link does not give. A trial that did not finish ok
ends FAILED (failed, diverged) or KILLED (pruned, interrupted), its status in ``hpt.status``.

MLflow is never on the trial path: a background thread of the main process logs what the
store has recorded, retrying each call a few times; a tracking server that is away costs
the run nothing but a line at the end, and ``hpt results LOCATION --mlflow URI`` logs the
rest later. Trials already logged (same ``hpt.trial_id`` and ``hpt.row``) are skipped.

A trial's MLflow run shows its row as the results location has it: a newer row of a trial
(a trial that ran again: asha's waiting trial that went on, a rerun of an interrupted one)
is logged as a new run and the trial's earlier runs are deleted (MLflow keeps deleted runs
until ``mlflow gc``); a row written again without a new curve (a waiting trial that stays
stopped: only its reason changes) updates the trial's run in place, its curve kept, as the
location keeps its curve file.
Imported only when used (``pip install 'hpt[mlflow]'``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from hpt import layout
from hpt.errors import HptError, InputError, redact
from hpt.progress import plural
from hpt.runs import latest_run
from hpt.sinks import Sink, describe, env_float
from hpt.tracking import (
    CURVE_PREFIX,
    TrialView,
    location_trials,
    location_uri,
    need,
    seconds,
    trial_view,
    with_curves,
)

__all__ = ["MlflowLog", "final_target", "live_log", "log_final", "log_location", "ready", "tracking_uri"]

_ATTEMPTS = 3  # per MLflow call, while the server answers now and then
_STATUS = {"ok": "FINISHED", "failed": "FAILED", "diverged": "FAILED"}  # pruned, interrupted: KILLED
_BATCH = 1000  # MLflow's limit of metrics per log_batch
_RECONNECT_S = 30.0  # a server that was not reachable is tried again after this long


def ready(option: str = "--mlflow") -> None:
    """MLflow set up for hpt (its settings before it is imported), then imported: InputError with the install line when
    the package is missing, naming `option` (or the spec's tracking.mlflow) as what asked for it."""
    # MLflow's own HTTP client retries for minutes: hpt retries a few times itself, and never waits long
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    # and prints two lines ("View run ... at: URL") per run it ends on a server: hpt says one line at the end
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # and logs its own INFO lines ("Creating initial MLflow database tables...") into hpt's log
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    # and refuses a file store (./mlruns, file:/...), which it keeps in maintenance mode, unless told it may
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    need("mlflow", option, "mlflow")  # imports it: after the settings it reads at import


def check_store(uri: str, option: str = "--mlflow") -> None:
    """InputError when MLflow cannot make a store of `uri` (an unknown scheme, a store it refuses): said once, before
    any trial is logged, instead of as every trial's failure with advice to try again."""
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient(tracking_uri=uri)
    except Exception as e:  # MlflowException and its kin: the URI, not the server (none is asked yet)
        raise InputError(f"{option} {redact(uri)}: MLflow cannot track there: {describe(e)}") from None


def tracking_uri(option: str | None, tracking: Mapping[str, Any] | None = None) -> str | None:
    """Where to log: --mlflow URI, else the spec's tracking.mlflow (true: $MLFLOW_TRACKING_URI); None: nowhere."""
    value = option or (tracking or {}).get("mlflow")
    if value is True:
        value = os.environ.get("MLFLOW_TRACKING_URI")
        if not value:
            raise InputError('tracking.mlflow: true logs to $MLFLOW_TRACKING_URI, which is not set; '
                             'set it or give the URI ("mlflow": "http://host:5000")')
    return value or None


class MlflowLog:
    """Logs trials to one MLflow experiment from a background thread; :meth:`close` says what could not be logged."""

    def __init__(self, uri: str, experiment: str, location: str, live: bool = True, spec_name: str = "",
                 option: str = "--mlflow") -> None:
        ready(option)
        check_store(uri, option)
        self.uri = uri
        self.experiment = experiment
        self.location = location
        self.live = live  # an hpt run's trials as they end; else a finished location's, those not logged yet
        self.spec_name = spec_name
        self.queue: deque[TrialView | str] = deque()  # trials, and hpt run ids whose parent run to start
        self.cond = threading.Condition()
        self.closing = False
        self.added: set[str] = set()  # trial ids asked to be logged
        self.logged: set[str] = set()  # trial ids logged (a run created or brought up to date)
        self.skipped: set[str] = set()  # trial ids whose row was already there
        self.failed: set[str] = set()  # trial ids not logged
        self.error = ""
        self.down = False  # a call failed every attempt: later ones get one attempt each
        self.parents: dict[str, str] = {}  # hpt run id -> its MLflow parent run
        self.parent_status: dict[str, str] = {}
        self._client: Any = None
        self._experiment_id = ""
        self._runs: dict[str, dict[str, tuple[str, int]]] = {}  # trial id -> its active runs: row -> (run id, start ms)
        self._next_connect = 0.0
        self._created: set[str] = set()  # hpt run ids whose parent run this logger created (and so ends)
        self.thread = threading.Thread(target=self._loop, name="hpt-mlflow", daemon=True)
        self.thread.start()

    def progress(self, event: Any) -> None:
        """A running trial's epoch: logged with the rest of its curve once its row is stored (one run per row)."""

    def add(self, row: Mapping[str, Any], curve: str | None = None) -> None:
        """Queue a stored trial's row (and its curve's CSV text) for logging; returns at once."""
        self.add_view(trial_view(row, curve, self.location))

    def add_view(self, view: TrialView) -> None:
        with self.cond:
            self.added.add(view.trial_id)
            self.queue.append(view)
            self.cond.notify_all()

    def begin_run(self, run_id: str) -> None:
        """An hpt run starts: its parent run is created (in the background) before its first trial ends."""
        with self.cond:
            self.queue.append(run_id)
            self.cond.notify_all()

    def end_run(self, run_id: str, status: str) -> None:
        """The hpt run ended (finished, interrupted, failed): its parent run ends so, once its trials are logged."""
        with self.cond:
            self.parent_status[run_id] = status
            self.cond.notify_all()

    def close(self, timeout: float | None = None) -> list[str]:
        """Wait (up to `timeout`, default ``$HPT_MLFLOW_TIMEOUT`` s or 60) for the queue; the line to print."""
        timeout = env_float("HPT_MLFLOW_TIMEOUT", 60.0) if timeout is None else timeout
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.thread.join(timeout)
        with self.cond:
            self.closing = True
            waiting = {v.trial_id for v in self.queue if not isinstance(v, str)}
            self.queue.clear()
            failed = len(self.failed | waiting)
        where = f"{self.uri} (experiment {self.experiment})"
        if not failed:
            there = len(self.skipped - self.logged)
            skipped = f"; {there} already there" if there else ""
            return [f"mlflow: {plural(len(self.logged), 'trial')} logged to {where}{skipped}"]
        why = self.error or f"not done in {timeout:g}s"
        then = f"log them with: hpt results {self.location} --mlflow {self.uri}" if self.live else \
            "run the same command again to log them"
        return [f"mlflow: {failed} of {plural(len(self.added), 'trial')} could not be logged to {where}: {why}; {then}"]

    # the background thread

    def _loop(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # the main thread handles them
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    self.cond.wait()
                if not self.queue:
                    break
                view = self.queue[0]
            try:
                if isinstance(view, str):
                    self.parent(view)
                else:
                    self._log_trial(view)
            except Exception as e:
                self._failed(view, e)
            with self.cond:
                if self.queue and self.queue[0] is view:
                    self.queue.popleft()
        for run_id, parent in list(self.parents.items()):
            status = self.parent_status.get(run_id)
            if status is not None and run_id in self._created:
                try:
                    self._call(self._client.set_terminated, parent, status=status)
                except Exception as e:
                    self.error = self.error or describe(e)

    def _failed(self, view: TrialView | str, error: Exception) -> None:
        if not isinstance(view, str):  # a parent run not created now is created with its first trial
            self.failed.add(view.trial_id)
        if isinstance(error, _Away):
            return
        self.error = describe(error)  # said once, at the end
        self.down = True

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)`, tried up to _ATTEMPTS times (once while the server is down) with a short pause."""
        attempts = 1 if self.down else _ATTEMPTS
        for attempt in range(attempts):
            try:
                result = fn(*args, **kwargs)
            except Exception:
                if attempt + 1 == attempts or self.closing and self.down:
                    raise
                time.sleep(0.5 * 2 ** attempt)
            else:
                self.down = False
                return result

    def _connect(self) -> None:
        if self._client is not None:
            return
        if time.monotonic() < self._next_connect:  # away a moment ago: the trial is not logged, without a wait
            raise _Away(self.error)
        self._next_connect = time.monotonic() + _RECONNECT_S
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=self.uri)
        found = self._call(client.get_experiment_by_name, self.experiment)
        self._experiment_id = found.experiment_id if found else self._call(client.create_experiment, self.experiment)
        self._runs = self._logged(client)
        self._client = client

    def _logged(self, client: Any) -> dict[str, dict[str, tuple[str, int]]]:
        """The runs of the trials this location already has in the experiment (trial id -> row -> run id, start);
        parents by hpt run id."""
        done: dict[str, dict[str, tuple[str, int]]] = {}
        token = None
        where = f"tags.`hpt.results` = '{_quote(self.location)}'"
        while True:
            page = self._call(client.search_runs, [self._experiment_id], where, max_results=1000, page_token=token)
            for run in page:
                tags = run.data.tags
                if "hpt.trial_id" in tags:
                    runs = done.setdefault(tags["hpt.trial_id"], {})
                    runs[tags.get("hpt.row", "")] = (run.info.run_id, int(run.info.start_time or 0))
                elif tags.get("hpt.kind") == "run" and "hpt.run_id" in tags:
                    self.parents.setdefault(tags["hpt.run_id"], run.info.run_id)
            token = page.token
            if not token:
                return done

    def parent(self, run_id: str) -> str:
        """The MLflow run of hpt run `run_id` (created when it has none yet)."""
        self._connect()
        if run_id not in self.parents:
            tags = {"hpt.kind": "run", "hpt.run_id": run_id, "hpt.results": self.location}
            if self.spec_name:
                tags["hpt.spec"] = self.spec_name
            run = self._call(self._client.create_run, self._experiment_id, run_name=f"hpt run {run_id}", tags=tags)
            self.parents[run_id] = run.info.run_id
            self._created.add(run_id)
        return self.parents[run_id]

    def _log_trial(self, view: TrialView) -> None:
        """The trial's row as its one MLflow run: there already (skipped), brought up to date in place (a row without
        a new curve), or a new run; the trial's other runs are then deleted."""
        self._connect()
        runs = self._runs.setdefault(view.trial_id, {})
        if view.version in runs:
            self.skipped.add(view.trial_id)
            kept = runs[view.version]
        elif runs and not view.curve:
            kept = self._update(view, max(runs.values(), key=lambda r: r[1]))
        elif not view.curve and view.trial_id in self.failed:
            return  # its first row (with the curve) was not logged: `hpt results --mlflow` logs the row with it
        else:
            kept = self._create(view)
        for row, (rid, _) in list(runs.items()):
            if rid != kept[0]:
                self._call(self._client.delete_run, rid)
            del runs[row]
        runs[view.version] = kept
        self.failed.discard(view.trial_id)

    def _tags(self, view: TrialView) -> dict[str, str]:
        parent = self.parent(view.tags.get("run_id", "unknown"))
        tags = {f"hpt.{k}": v[:5000] for k, v in view.tags.items()}
        tags.update({"hpt.period": view.period, "hpt.row": view.version, "mlflow.parentRunId": parent})
        return tags

    def _create(self, view: TrialView) -> tuple[str, int]:
        from mlflow.entities import Metric, Param

        tags = self._tags(view)
        start, end = int(1000 * seconds(view.started_at)), int(1000 * seconds(view.finished_at))
        run = self._call(self._client.create_run, self._experiment_id, start_time=start, tags=tags, run_name=view.name)
        rid = run.info.run_id
        params = [Param(k, v if isinstance(v, str) else json.dumps(v)) for k, v in view.params.items()]
        metrics = [Metric(CURVE_PREFIX + k, v, start + int(1000 * epoch.get("time_s", 0.0)), int(epoch["epoch"]))
                   for epoch in view.curve for k, v in epoch.items() if k != "epoch"]
        metrics += [Metric(k, v, end, view.steps) for k, v in view.metrics.items()]
        for i in range(0, max(len(metrics), 1), _BATCH):
            self._call(self._client.log_batch, rid, metrics=metrics[i:i + _BATCH], params=params if i == 0 else [])
        self._call(self._client.set_terminated, rid, status=_STATUS.get(view.status, "KILLED"), end_time=end)
        self.logged.add(view.trial_id)
        return rid, start

    def _update(self, view: TrialView, earlier: tuple[str, int]) -> tuple[str, int]:
        """The trial's run says what its row says now (status, reason, parent; its curve and metrics stay: a row
        written again without training has the metrics it had)."""
        from mlflow.entities import RunTag

        rid = earlier[0]
        tags = self._tags(view)
        old = self._call(self._client.get_run, rid).data.tags
        for key in [k for k in old if k.startswith("hpt.") and k not in tags]:
            self._call(self._client.delete_tag, rid, key)  # the model link of a row that no longer has one
        self._call(self._client.log_batch, rid, tags=[RunTag(k, v) for k, v in tags.items() if old.get(k) != v])
        end = int(1000 * seconds(view.finished_at))
        self._call(self._client.set_terminated, rid, status=_STATUS.get(view.status, "KILLED"), end_time=end)
        self.logged.add(view.trial_id)
        return earlier


def live_log(option: str | None, tracking: Mapping[str, Any], spec_name: str, location: str) -> MlflowLog | None:
    """The logger of an ``hpt run`` (--mlflow URI or the spec's tracking section), or None when it logs nowhere.

    An InputError when the package is missing or tracking.mlflow is true without $MLFLOW_TRACKING_URI.
    """
    uri = tracking_uri(option, tracking)
    if uri is None:
        return None
    return MlflowLog(uri, str(tracking.get("experiment") or spec_name), location, spec_name=spec_name,
                     option="--mlflow" if option else "tracking.mlflow")


def log_location(location: str, uri: str) -> str:
    """Log the trials at a results location that the experiment lacks; the line to print (HptError when not all)."""
    store, views = location_trials(location)
    latest = latest_run(store.sink)
    record = latest[1] if latest else {}
    spec: dict[str, Any] = record["spec"] if isinstance(record.get("spec"), dict) else {}
    tracking: dict[str, Any] = spec["tracking"] if isinstance(spec.get("tracking"), dict) else {}
    experiment = str(tracking.get("experiment") or record.get("spec_name") or location.rstrip("/").rsplit("/", 1)[-1])
    logger = MlflowLog(uri, experiment, location_uri(store.sink), live=False, spec_name=str(record.get("spec_name", "")))
    for view in with_curves(store, views):
        logger.add_view(view)
    for run_id in sorted({v.tags.get("run_id", "unknown") for v in views}):
        logger.end_run(run_id, "FINISHED")
    line, = logger.close(timeout=1e9)  # no training waits on it: every trial is tried
    finals, complete = log_finals(store.sink, uri, experiment)  # hpt final's, those not logged when they trained
    text = "\n".join([line, *finals])
    if logger.failed or not complete:
        raise HptError(text)
    return text


def final_target(option: str | None, location: str, spec_path: str | None) -> tuple[str, str] | None:
    """Where ``hpt final`` logs: (tracking URI, experiment) from --mlflow, else the spec's tracking section (the
    --spec file's, else the spec recorded at the location); None: nowhere. InputError before anything trains."""
    if spec_path:
        from hpt.spec import load_spec

        spec = load_spec(spec_path)
        tracking, name = dict(spec.tracking), spec.name
    else:
        from hpt.sinks import open_sink

        try:
            latest = latest_run(open_sink(location))
        except HptError:  # hpt final says what is wrong with the location itself
            latest = None
        record = latest[1] if latest else {}
        doc: dict[str, Any] = record["spec"] if isinstance(record.get("spec"), dict) else {}
        tracking = doc["tracking"] if isinstance(doc.get("tracking"), dict) else {}
        name = str(record.get("spec_name") or location.rstrip("/").rsplit("/", 1)[-1])
    uri = tracking_uri(option, tracking)
    if uri is None:
        return None
    ready()
    return uri, str(tracking.get("experiment") or name)


def log_final(uri: str, experiment: str, report: Mapping[str, Any], files: Mapping[str, bytes]) -> str:
    """Log one ``hpt final`` as an MLflow run: its report (report.json) and model files as artifacts, its tuned
    parameters, hold-out metrics (the model's, the baselines') and tags; the line to print. Already logged (tag
    hpt.final_id): nothing is. A failure is said in the line, never raised: the location keeps both files, and
    ``hpt results LOCATION --mlflow URI`` logs it later."""
    done, line = _log_final(uri, experiment, report, files)
    if done == "failed":
        line += f"; log it later with: hpt results {report.get('location', '')} --mlflow {uri}"
    return line


def log_finals(sink: Sink, uri: str, experiment: str) -> tuple[list[str], bool]:
    """Log the finals at a results location (those ``final/index.csv`` lists) that the experiment lacks: the lines
    to print (one per final logged or not logged; none for those already there) and whether every one is there now."""
    try:
        index = list(csv.DictReader(io.StringIO((sink.read(layout.FINAL_INDEX) or b"").decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error):
        return [], True  # not an index hpt wrote: hpt final says so when it next merges into it
    lines, complete = [], True
    for final_id in dict.fromkeys(row.get("final_id") or "" for row in index):
        try:
            report = json.loads(sink.read(layout.final_report(final_id)) or b"")
        except ValueError:
            continue  # no report, or not one written whole: nothing to log
        def files(final_id: str = final_id) -> dict[str, bytes]:  # read once the final is known not to be there
            keys = (layout.final_model(final_id), layout.final_model(final_id, scratch=True))
            return {key.rsplit("/", 1)[-1]: data for key in keys if (data := sink.read(key)) is not None}

        done, line = _log_final(uri, experiment, report, files)
        complete = complete and done != "failed"
        if done != "already":
            lines.append(line)
    return lines, complete


def _log_final(uri: str, experiment: str, report: Mapping[str, Any],
               files: Mapping[str, bytes] | Callable[[], Mapping[str, bytes]]) -> tuple[str, str]:
    """What :func:`log_final` did ("logged", "already" or "failed") and its line; `files` may be read only when
    the final is not there yet."""
    ready()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    final_id, location = str(report["final_id"]), str(report.get("location", ""))
    where = f"{uri} (experiment {experiment})"
    client, rid = MlflowClient(tracking_uri=uri), ""
    try:
        found = _retried(client.get_experiment_by_name, experiment)
        eid = found.experiment_id if found else _retried(client.create_experiment, experiment)
        if _retried(client.search_runs, [eid], f"tags.`hpt.final_id` = '{_quote(final_id)}'", max_results=1):
            return "already", f"mlflow: final {final_id} is already in {where}"
        files = files() if callable(files) else files
        rid = _retried(client.create_run, eid, run_name=f"hpt final {final_id}", tags=_final_tags(report)).info.run_id
        now = int(time.time() * 1000)
        params = [Param(k, v if isinstance(v, str) else json.dumps(v)) for k, v in _final_params(report).items()]
        metrics = [Metric(k, v, now, 0) for k, v in _final_metrics(report).items()]
        _retried(client.log_batch, rid, metrics=metrics, params=params)
        _retried(client.log_dict, rid, dict(report), "report.json")
        with tempfile.TemporaryDirectory(prefix="hpt-final-") as tmp:
            for name, payload in files.items():
                path = os.path.join(tmp, name)
                with open(path, "wb") as f:
                    f.write(payload)
                _retried(client.log_artifact, rid, path)
        _retried(client.log_batch, rid, tags=[RunTag("hpt.final_id", final_id)])  # last: marks it complete
        _retried(client.set_terminated, rid, status="FINISHED")
    except Exception as e:
        if rid:
            try:
                client.set_terminated(rid, status="FAILED")
            except Exception:
                pass
        return "failed", (f"mlflow: final {final_id} could not be logged to {where}: {describe(e)}; "
                          f"its model and report stay at {location}")
    return "logged", f"mlflow: final {final_id} logged to {where}: report.json and {', '.join(files)} (run {rid})"


def _final_tags(report: Mapping[str, Any]) -> dict[str, str]:
    models = report.get("models") or [{}]
    tags = {"hpt.kind": "final", "hpt.config_id": report.get("config_id"), "hpt.results": report.get("location"),
            "hpt.architecture": report.get("architecture"), "hpt.spec": (report.get("spec") or {}).get("name"),
            "hpt.model_uri": models[0].get("model_uri"), "hpt.report_uri": (report.get("uris") or {}).get("report"),
            "hpt.from_model": report.get("from_model"), "hpt.verdict_note": (report.get("verdict") or {}).get("note")}
    return {k: str(v)[:5000] for k, v in tags.items() if v not in (None, "")}


def _final_params(report: Mapping[str, Any]) -> dict[str, Any]:
    """The tuned parameters, the epochs, and the training and hold-out spans."""
    train, holdout = report.get("train") or {}, report.get("holdout") or {}
    return {**(report.get("params") or {}), "epochs": report.get("epochs"), "train_start": train.get("start"),
            "train_end": train.get("end"), "holdout_start": holdout.get("start"), "holdout_end": holdout.get("end")}


def _final_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """holdout_<metric> (and holdout_std_<metric>, standardised) of the final model; the same prefixed by the mode
    of a second model (scratch_, with --compare) and by each baseline's name (naive-last_holdout_mse, ...)."""
    found: dict[str, float] = {}
    models = report.get("models") or []
    for i, model in enumerate(models):
        prefix = "" if i == 0 else f"{model.get('mode')}_"
        found.update({f"{prefix}holdout_{k}": v for k, v in (model.get("metrics") or {}).items()})
        found.update({f"{prefix}holdout_std_{k}": v for k, v in (model.get("standardised") or {}).items()})
        found.update({f"{prefix}{k}": model.get(k) for k in ("train_time_s", "train_loss", "vs_best_baseline")})
    for name, baseline in (report.get("baselines") or {}).items():
        found.update({f"{name}_holdout_{k}": v for k, v in (baseline.get("metrics") or {}).items()})
    return {k: float(v) for k, v in found.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v)}


def _retried(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)`, tried up to _ATTEMPTS times with a short pause."""
    for attempt in range(_ATTEMPTS):
        try:
            return fn(*args, **kwargs)
        except Exception:
            if attempt + 1 == _ATTEMPTS:
                raise
            time.sleep(0.5 * 2 ** attempt)


class _Away(Exception):
    """The server did not answer a moment ago: a trial is not logged, without trying again so soon."""


def _quote(text: str) -> str:
    return text.replace("'", "\\'")
