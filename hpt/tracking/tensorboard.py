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

Written with the ``tensorboard`` package's own event writer and protobufs (no TensorFlow,
no torch.utils.tensorboard); imported only here (``pip install 'hpt[tensorboard]'``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpt.errors import HptError, InputError
from hpt.tracking import CURVE_PREFIX, TrialView, location_trials, need, seconds, trial_view, with_curves

__all__ = ["Logdir", "TensorBoardLog", "TensorBoardReport", "write_tensorboard"]

_MARKERS = ".hpt"
_EXPERIMENT_SUFFIX = ".hpt-experiment"
_STATUS = {"ok": "STATUS_SUCCESS", "failed": "STATUS_FAILURE", "diverged": "STATUS_FAILURE"}  # others: UNKNOWN
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

    def __init__(self, out: str) -> None:
        need("tensorboard", "--tensorboard", "tensorboard")
        if "://" in out:
            raise InputError(f"--tensorboard {out}: expected a local folder (TensorBoard reads it with --logdir)")
        self.root = Path(out)
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"--tensorboard {out}: is a file, not a folder")
        self.markers = self.root / _MARKERS
        self.written = _read_markers(self.markers)
        self.taken = {m["run"] for m in self.written.values() if "run" in m}

    def lacks(self, view: TrialView) -> bool:
        """True when this row of the trial is not here yet (a new trial, or a rerun of one)."""
        return self.written.get(view.trial_id, {}).get("version") != view.version

    def write(self, view: TrialView) -> None:
        old = self.written.get(view.trial_id, {}).get("run")
        if old:  # the trial's row changed since it was written (a rerun): its run is written anew
            shutil.rmtree(self.root / old, ignore_errors=True)
            self.taken.discard(old)
        name = view.name if view.name not in self.taken else f"{view.name}/{view.trial_id}"
        _write_session(self.root / name, view)
        self.taken.add(name)
        self.markers.mkdir(parents=True, exist_ok=True)
        marker = {"run": name, "version": view.version}
        (self.markers / f"{view.trial_id}.json").write_text(json.dumps(marker))
        self.written[view.trial_id] = marker


class TensorBoardLog:
    """``hpt run --tensorboard DIR``: each trial written as it ends (in the main process, a few ms: one small
    local file); at the end, the trials of the location DIR still lacks and the HParams experiment."""

    def __init__(self, out: str, location: str) -> None:
        self.logdir = Logdir(out)
        self.location = location
        self.error = ""
        self.count = 0  # trials this run wrote

    def add(self, row: Mapping[str, Any], curve: str | None = None) -> None:
        view = trial_view(row, curve, self.location)
        try:
            if self.logdir.lacks(view):
                self.logdir.write(view)
                self.count += 1
        except OSError as e:
            self.error = self.error or f"{e.strerror or e}: {e.filename}"

    def begin_run(self, run_id: str) -> None:
        pass

    def end_run(self, run_id: str, status: str) -> None:
        pass

    def close(self) -> list[str]:
        out = str(self.logdir.root)
        added = 0
        try:
            added = write_tensorboard(self.location, out).written  # earlier runs' trials DIR lacks, the experiment
        except (OSError, HptError) as e:
            self.error = self.error or str(e)
        if self.error:
            return [f"tensorboard: not every trial could be written to {out}: {self.error}; "
                    f"write them with: hpt results {self.location} --tensorboard {out}"]
        earlier = f" and {added} of earlier runs" if added else ""
        return [f"tensorboard: {self.count} trial(s) of this run{earlier} written to {out}; "
                f"see them with: tensorboard --logdir {out}"]


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


def _write_session(folder: Path, view: TrialView) -> None:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(folder))
    start, end = seconds(view.started_at), seconds(view.finished_at)
    hparams = {**view.params, **_labels(view)}
    session = plugin_data_pb2.SessionStartInfo(group_name=view.name, start_time_secs=start,
                                               model_uri=view.tags.get("model_uri", ""))
    for key, value in hparams.items():
        _set_value(session.hparams[key], value)
    writer.add_event(Event(wall_time=start, step=0, summary=_plugin_summary(session_start_info=session)))
    for epoch in view.curve:
        step = int(epoch["epoch"])
        values = [Summary.Value(tag=CURVE_PREFIX + k, simple_value=v) for k, v in epoch.items() if k != "epoch"]
        writer.add_event(Event(wall_time=start + epoch.get("time_s", 0.0), step=step, summary=Summary(value=values)))
    metrics = [Summary.Value(tag=k, simple_value=v) for k, v in view.metrics.items()]
    writer.add_event(Event(wall_time=end, step=view.steps, summary=Summary(value=metrics)))
    status = api_pb2.Status.Value(_STATUS.get(view.status, "STATUS_UNKNOWN"))
    ended = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end)
    writer.add_event(Event(wall_time=end, step=view.steps, summary=_plugin_summary(session_end_info=ended)))
    writer.close()


def _write_experiment(root: Path, views: list[TrialView]) -> None:
    """The HParams experiment: each parameter and label with its type and the values seen, each metric."""
    from google.protobuf import struct_pb2
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

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
    writer = EventFileWriter(str(root), filename_suffix=_EXPERIMENT_SUFFIX)
    writer.add_event(Event(wall_time=time.time(), step=0, summary=_plugin_summary(experiment=experiment)))
    writer.close()


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
