"""TensorBoard event files from a results location (``hpt results LOCATION --tensorboard DIR``).

    DIR/
      <config_id>/<period>/<fidelity>/events.out.tfevents.*   one TensorBoard run per trial:
          curve/<column> per epoch (train_loss, val_mse, val_mae, lr, time_s), the row's metrics
          (val_mse, ..., at the last epoch), and the HParams plugin's session: the trial's
          parameters, config id, period, fidelity and status
      events.out.tfevents.*.hpt-experiment   the HParams experiment: every parameter with the values
          seen, every metric (rewritten whenever trials are added)
      .hpt/<trial_id>.json                   which run a trial was written to, and which row of it:
          a second call writes only trials not written yet, or whose row changed since (a rerun)

Written with the ``tensorboard`` package's own record writer and protobufs (no TensorFlow,
no torch.utils.tensorboard); imported only here (``pip install 'hpt[tensorboard]'``).
``hpt run --tensorboard DIR`` writes a trial's epochs as they arrive (:class:`TensorBoardLog`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpt.errors import HptError, check_folder
from hpt.tracking import CURVE_PREFIX, TrialView, location_trials, need, seconds, trial_view, version_status, with_curves
from hpt.trial import Progress

__all__ = ["Logdir", "TensorBoardLog", "TensorBoardReport", "write_tensorboard"]

_MARKERS = ".hpt"
_EXPERIMENT_SUFFIX = ".hpt-experiment"
_STATUS = {"ok": "STATUS_SUCCESS", "failed": "STATUS_FAILURE", "diverged": "STATUS_FAILURE"}  # others: UNKNOWN
_FILES = itertools.count()  # tells apart the event files this process opens in one second
_DISCRETE_MAX = 20  # a number parameter with at most this many values seen is listed by its values, else a range


@dataclass(frozen=True)
class TensorBoardReport:
    written: int  # trials written by this call (new, or their row changed)
    kept: int  # trials already in DIR as they are at the location
    out: str

    def line(self) -> str:
        if not self.written:
            return f"tensorboard: nothing new; {self.kept} trial(s) already in {self.out}"
        kept = f" ({self.kept} already there)" if self.kept else ""
        return f"tensorboard: {self.written} trial(s) written to {self.out}{kept}; see them with: tensorboard --logdir {self.out}"


def write_tensorboard(uri: str, out: str) -> TensorBoardReport:
    """Write the trials at results location `uri` that `out` lacks as TensorBoard runs; the experiment summary too."""
    logdir = Logdir(out)
    store, views = location_trials(uri)
    todo = [v for v in views if logdir.lacks(v)]
    for view in with_curves(store, todo) if todo else []:
        logdir.write(view)
    if todo or not list(logdir.root.glob(f"events.out.tfevents.*{_EXPERIMENT_SUFFIX}")):
        _write_experiment(logdir.root, views)
    return TensorBoardReport(len(todo), len(views) - len(todo), out)


class Logdir:
    """A TensorBoard log folder that hpt writes trials to, and the markers of those it holds."""

    def __init__(self, out: str, option: str = "--tensorboard") -> None:
        need("tensorboard", option, "tensorboard")
        check_folder(option, out)
        self.root = Path(out)
        self.markers = self.root / _MARKERS
        self.written = _read_markers(self.markers)
        self.taken = {m["run"] for m in self.written.values() if "run" in m}

    def lacks(self, view: TrialView) -> bool:
        """True when this row of the trial is not here yet (a new trial, or a rerun of one)."""
        return self.written.get(view.trial_id, {}).get("version") != view.version

    def has(self, trial_id: str) -> bool:
        """True when a row of the trial is here."""
        return bool(self.written.get(trial_id, {}).get("version"))

    def restate(self, view: TrialView) -> bool:
        """True when the row here has the view's status, which then is only said again (its reason, which
        TensorBoard does not show): the trial is marked with the new row and left as it is."""
        if version_status(self.written.get(view.trial_id, {}).get("version", "")) != view.status:
            return False
        self._mark(view.trial_id, {**self.written[view.trial_id], "version": view.version})
        return True

    def open(self, trial_id: str, name: str) -> _EventFile:
        """A new event file for the trial's run: the run written before (a rerun, or a write cut short) is
        removed first, and the trial is marked as being written (a write cut short is done again)."""
        old = self.written.get(trial_id, {}).get("run")
        if old:
            _remove_events(self.root / old)
            self.taken.discard(old)
        run = name if name not in self.taken else f"{name}/{trial_id}"
        self.taken.add(run)
        self._mark(trial_id, {"run": run, "version": ""})
        return _EventFile(self.root / run)

    def write(self, view: TrialView, events: _EventFile | None = None) -> None:
        """The trial's run: its curve (the epochs after those `events` has, when it was written as they came),
        its HParams session and the row's metrics; then it is marked written."""
        events = events or self.open(view.trial_id, view.name)
        try:
            _write_session(events, view)
        finally:
            events.close()
        self._mark(view.trial_id, {**self.written[view.trial_id], "version": view.version})

    def _mark(self, trial_id: str, marker: dict[str, str]) -> None:
        self.markers.mkdir(parents=True, exist_ok=True)
        (self.markers / f"{trial_id}.json").write_text(json.dumps(marker))
        self.written[trial_id] = marker


class TensorBoardLog:
    """``hpt run --tensorboard DIR``, in the main process: a trial's run gets each epoch as the runner hears of it
    (one small write to a local file), and its HParams session and row's metrics when it ends; at the end of the
    run, the trials of the location that DIR still lacks, and the HParams experiment."""

    def __init__(self, out: str, location: str, option: str = "--tensorboard") -> None:
        self.logdir = Logdir(out, option)
        self.location = location
        self.error = ""
        self.wrote: set[str] = set()  # trials this run wrote (a trial that ran again is written again)
        self.live: dict[str, _EventFile | None] = {}  # running trials' event files (None: one could not be written)
        self.later: set[str] = set()  # trials of this run to write at the end, from the location (rows without a curve)

    def progress(self, event: Progress) -> None:
        trial = event.trial
        if trial.trial_id in self.live and self.live[trial.trial_id] is None:
            return  # its epochs could not be written: the whole trial is, when it ends
        try:
            events = self.live.get(trial.trial_id)
            if events is None:
                name = f"{trial.config_id}/{trial.period.start_text}_{trial.period.end_text}/{trial.fidelity}"
                events = self.live[trial.trial_id] = self.logdir.open(trial.trial_id, name)
            events.epoch(event.epoch, event.metrics)
        except OSError as e:
            self._failed(e)
            dropped = self.live.get(trial.trial_id)
            if dropped is not None:
                dropped.close()
            self.live[trial.trial_id] = None

    def add(self, row: Mapping[str, Any], curve: str | None = None) -> None:
        view = trial_view(row, curve, self.location)
        events = self.live.pop(view.trial_id, None)
        try:
            if events is None and curve is None and self.logdir.restate(view):
                return  # its row written again, without training (a waiting trial that stays stopped): nothing to show
            if events is None and curve is None and self.logdir.has(view.trial_id):
                self.later.add(view.trial_id)  # written at the end, with the curve the location keeps
            elif events is not None or self.logdir.lacks(view):
                self.logdir.write(view, events)
                self.wrote.add(view.trial_id)
        except OSError as e:
            self._failed(e)

    def _failed(self, e: OSError) -> None:
        self.error = self.error or f"{e.strerror or e}: {e.filename}"

    def begin_run(self, run_id: str) -> None:
        pass

    def end_run(self, run_id: str, status: str) -> None:
        pass

    def close(self) -> list[str]:
        for events in self.live.values():  # trials that never ended here (none, unless the run failed)
            if events is not None:
                events.close()
        self.live.clear()
        out = str(self.logdir.root)
        added = 0
        try:
            added = write_tensorboard(self.location, out).written  # earlier runs' trials DIR lacks, the experiment
        except (OSError, HptError) as e:
            self.error = self.error or str(e)
        if self.error:
            return [f"tensorboard: not every trial could be written to {out}: {self.error}; "
                    f"write them with: hpt results {self.location} --tensorboard {out}"]
        others = max(added - len(self.later), 0)  # the trials of `later` are among those written now
        earlier = f" and {others} of earlier runs" if others else ""
        return [f"tensorboard: {len(self.wrote | self.later)} trial(s) of this run{earlier} written to {out}; "
                f"see them with: tensorboard --logdir {out}"]


def _remove_events(folder: Path) -> None:
    """A run's event files; the folders inside it are other trials' runs (another seed's, ``<name>/<trial_id>``),
    left as they are."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("events.out.tfevents.") and entry.is_file():
            entry.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # when nothing else is in it


class _EventFile:
    """One event file, written as events come: each is on disk (flushed) when :meth:`add` returns, so TensorBoard
    reads a running trial's epochs (the package's record writer, without its writer thread)."""

    def __init__(self, folder: Path, suffix: str = "") -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.summary.writer.record_writer import RecordWriter

        folder.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILES)}"
        self.file = open(folder / (name + suffix), "wb")  # noqa: SIM115 (closed by close())
        self.records = RecordWriter(self.file)
        self.last_epoch = 0  # the last epoch written
        self.add(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def add(self, event: Any) -> None:
        self.records.write(event.SerializeToString())
        self.file.flush()

    def epoch(self, epoch: int, values: Mapping[str, float], wall_time: float | None = None) -> None:
        """One epoch of the learning curve: curve/<column> at step `epoch` (written now unless `wall_time`)."""
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        scalars = [Summary.Value(tag=CURVE_PREFIX + k, simple_value=v) for k, v in values.items()
                   if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v)]
        self.add(Event(wall_time=time.time() if wall_time is None else wall_time, step=epoch,
                       summary=Summary(value=scalars)))
        self.last_epoch = epoch

    def close(self) -> None:
        self.file.close()


def _read_markers(folder: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # damaged: the trial is written again
        if isinstance(marker, dict):
            found[path.stem] = marker
    return found


def _write_session(events: _EventFile, view: TrialView) -> None:
    """The trial's HParams session, the epochs of its curve that `events` lacks, and the row's metrics."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    start, end = seconds(view.started_at), seconds(view.finished_at)
    hparams = {**view.params, **_labels(view)}
    session = plugin_data_pb2.SessionStartInfo(group_name=view.name, start_time_secs=start,
                                               model_uri=view.tags.get("model_uri", ""))
    for key, value in hparams.items():
        _set_value(session.hparams[key], value)
    events.add(Event(wall_time=start, step=0, summary=_plugin_summary(session_start_info=session)))
    for epoch in view.curve:
        if int(epoch["epoch"]) > events.last_epoch:
            events.epoch(int(epoch["epoch"]), epoch, wall_time=start + epoch.get("time_s", 0.0))
    metrics = [Summary.Value(tag=k, simple_value=v) for k, v in view.metrics.items()]
    events.add(Event(wall_time=end, step=view.steps, summary=Summary(value=metrics)))
    status = api_pb2.Status.Value(_STATUS.get(view.status, "STATUS_UNKNOWN"))
    ended = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end)
    events.add(Event(wall_time=end, step=view.steps, summary=_plugin_summary(session_end_info=ended)))


def _write_experiment(root: Path, views: list[TrialView]) -> None:
    """The HParams experiment: each parameter and label with its type and the values seen, each metric."""
    from google.protobuf import struct_pb2
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    seen: dict[str, list[Any]] = {}
    for view in views:
        for key, value in {**view.params, **_labels(view)}.items():
            if value not in seen.setdefault(key, []):
                seen[key].append(value)
    infos = []
    for key, values in seen.items():
        info = api_pb2.HParamInfo(name=key)
        if all(isinstance(v, bool) for v in values):
            info.type = api_pb2.DATA_TYPE_BOOL
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            info.type = api_pb2.DATA_TYPE_FLOAT64
            if len(values) > _DISCRETE_MAX:
                info.domain_interval.min_value, info.domain_interval.max_value = min(values), max(values)
                infos.append(info)
                continue
        else:
            info.type = api_pb2.DATA_TYPE_STRING
            values = [str(v) for v in values]
        info.domain_discrete.CopyFrom(struct_pb2.ListValue())
        for v in sorted(values):
            _set_value(info.domain_discrete.values.add(), v)
        infos.append(info)
    metrics = sorted({m for v in views for m in v.metrics})
    experiment = plugin_data_pb2.HParamsPluginData().experiment
    experiment.hparam_infos.extend(infos)
    experiment.metric_infos.extend(api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics)
    experiment.time_created_secs = time.time()
    for old in root.glob(f"events.out.tfevents.*{_EXPERIMENT_SUFFIX}"):
        old.unlink()
    events = _EventFile(root, suffix=_EXPERIMENT_SUFFIX)
    try:
        events.add(Event(wall_time=time.time(), step=0, summary=_plugin_summary(experiment=experiment)))
    finally:
        events.close()


def _plugin_summary(**data: Any) -> Any:
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    (field, value), = data.items()
    tag = {"experiment": metadata.EXPERIMENT_TAG, "session_start_info": metadata.SESSION_START_INFO_TAG,
           "session_end_info": metadata.SESSION_END_INFO_TAG}[field]
    plugin_data = plugin_data_pb2.HParamsPluginData(**{field: value})
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(plugin_data),
                                        tensor=metadata.NULL_TENSOR)])


def _labels(view: TrialView) -> dict[str, str]:
    return {"config_id": view.config_id, "period": view.period, "fidelity": view.fidelity, "status": view.status}


def _set_value(target: Any, value: Any) -> None:
    """A protobuf Value from a parameter: a number, a bool, else its text."""
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, (int, float)):
        target.number_value = float(value)
    else:
        target.string_value = value if isinstance(value, str) else json.dumps(value)
