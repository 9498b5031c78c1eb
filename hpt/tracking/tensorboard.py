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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpt.errors import InputError
from hpt.tracking import CURVE_PREFIX, TrialView, location_trials, need, seconds, with_curves

__all__ = ["TensorBoardReport", "write_tensorboard"]

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
    need("tensorboard", "--tensorboard", "tensorboard")
    root = Path(out)
    if "://" in out:
        raise InputError(f"--tensorboard {out}: expected a local folder (TensorBoard reads it with --logdir)")
    if root.exists() and not root.is_dir():
        raise InputError(f"--tensorboard {out}: is a file, not a folder")
    store, views = location_trials(uri)
    markers = root / _MARKERS
    written = _read_markers(markers)
    todo = [v for v in views if written.get(v.trial_id, {}).get("version") != v.version]
    taken = {m["run"] for tid, m in written.items() if "run" in m}
    for view in with_curves(store, todo) if todo else []:
        old = written.get(view.trial_id, {}).get("run")
        if old:  # the trial's row changed since it was written (a rerun): its run is written anew
            shutil.rmtree(root / old, ignore_errors=True)
            taken.discard(old)
        name = view.name if view.name not in taken else f"{view.name}/{view.trial_id}"
        _write_session(root / name, view)
        taken.add(name)
        markers.mkdir(parents=True, exist_ok=True)
        marker = {"run": name, "version": view.version}
        (markers / f"{view.trial_id}.json").write_text(json.dumps(marker))
        written[view.trial_id] = marker
    if todo or not list(root.glob(f"events.out.tfevents.*{_EXPERIMENT_SUFFIX}")):
        _write_experiment(root, views)
    return TensorBoardReport(len(todo), len(views) - len(todo), out)


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
