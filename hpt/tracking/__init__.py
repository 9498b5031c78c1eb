"""Views of hpt runs in the tools people already look at: TensorBoard and MLflow.

Both read a trial the same way: its row (``rows/<trial_id>.json``, the record of truth)
and its learning curve (``curves/<trial_id>.csv``) become a :class:`TrialView`: the
tuned parameters, the row's metrics, the curve's per-epoch values and the tags that
say which trial it is. The optional packages are imported only by the modules that use
them (:mod:`hpt.tracking.tensorboard`, :mod:`hpt.tracking.mlflow`).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from hpt.errors import InputError, install_hint
from hpt.fidelity import fidelity_named
from hpt.rows import TAG_COLUMNS, TEXT_COLUMNS, is_param, params_of
from hpt.sinks import Sink
from hpt.store import ResultStore

__all__ = ["TrialView", "location_trials", "location_uri", "need", "parse_curve", "seconds", "trial_view", "version_status",
           "with_curves"]

CURVE_PREFIX = "curve/"
"""Per-epoch values are named ``curve/<column>`` (curve/val_mse); the row's own metrics keep their names (val_mse)."""


@dataclass(frozen=True)
class TrialView:
    """One trial as the trackers show it."""

    trial_id: str
    config_id: str
    status: str
    fidelity: str
    period: str  # "2013-01-01_2013-04-01"
    params: dict[str, Any]  # the tuned parameters, by name
    metrics: dict[str, float]  # the row's metrics (best epoch's val_mse, train_time_s, n_params, ...)
    curve: list[dict[str, float]] = field(default_factory=list)  # one dict per epoch, "epoch" included
    tags: dict[str, str] = field(default_factory=dict)  # run id, trial id, config id, period, fidelity, status, model
    started_at: str = ""
    finished_at: str = ""

    @property
    def name(self) -> str:
        """config id, period and fidelity: how a trial is named in TensorBoard and MLflow."""
        return f"{self.config_id}/{self.period}/{self.fidelity}"

    @property
    def version(self) -> str:
        """What tells this row from another row of the same trial (a later run of it); :func:`version_status` reads
        the status back."""
        return "|".join((self.tags.get("run_id", ""), self.status, self.finished_at))

    @property
    def steps(self) -> int:
        """The last epoch of the curve (0 without one): where the row's metrics are put on an epoch axis."""
        return int(self.curve[-1]["epoch"]) if self.curve else 0


def version_status(version: str) -> str:
    """The status in a :attr:`TrialView.version` ("" for another text)."""
    parts = version.split("|")
    return parts[1] if len(parts) == 3 else ""


def trial_view(row: Mapping[str, Any], curve_text: str | None = None, location: str = "") -> TrialView:
    """A row (and its curve's CSV text) as a :class:`TrialView`."""
    params = params_of(row)
    metrics = {k: float(v) for k, v in row.items()
               if k not in TEXT_COLUMNS and k not in TAG_COLUMNS and not is_param(k) and _finite(v)}
    period = f"{row.get('period_start') or ''}_{row.get('period_end') or ''}"
    tags = {k: str(row[k]) for k in ("run_id", "trial_id", "config_id", "status", "fidelity", "architecture",
                                     "period_start", "period_end", "seed", "device", "model_uri", "error")
            if row.get(k) not in (None, "")}
    tags.update({k: str(row[k]) for k in TAG_COLUMNS if row.get(k) not in (None, "")})
    if location:
        tags["results"] = location
    return TrialView(trial_id=str(row["trial_id"]), config_id=str(row["config_id"]), status=str(row["status"]),
                     fidelity=fidelity_named(row.get("fidelity")).name, period=period, params=params, metrics=metrics,
                     curve=parse_curve(curve_text), tags=tags, started_at=str(row.get("started_at") or ""),
                     finished_at=str(row.get("finished_at") or ""))


def parse_curve(text: str | None) -> list[dict[str, float]]:
    """A ``curves/<trial_id>.csv`` text as one dict of numbers per epoch (cells that are not numbers left out)."""
    if not text:
        return []
    epochs = []
    for i, line in enumerate(csv.DictReader(io.StringIO(text)), start=1):
        values = {}
        for k, v in line.items():
            try:
                number = float(v)
            except (TypeError, ValueError):
                continue
            if k and math.isfinite(number):
                values[k] = number
        values.setdefault("epoch", float(i))
        epochs.append(values)
    return epochs


def location_trials(uri: str) -> tuple[ResultStore, list[TrialView]]:
    """The store of a results location and its trials (naive baselines left out), by trial id, without curves
    (:func:`with_curves` reads those of the trials to show); an InputError says why when there are none."""
    from hpt.results.load import load_results
    from hpt.sinks import open_sink

    store = ResultStore(open_sink(uri))
    rows = [row for _, row in sorted(store.rows().items())
            if not str(row.get("architecture", "")).startswith("naive-")]
    if not rows:
        load_results(uri)  # says what the location holds instead of rows, when that is the trouble
        raise InputError(f"no trials at {uri}: only naive baselines' rows")
    return store, [trial_view(row, None, location_uri(store.sink)) for row in rows]


def location_uri(sink: Sink) -> str:
    """How the trackers name a results location: a bucket's URI, a folder's absolute path (the same from any cwd)."""
    from hpt.sinks.local import LocalSink

    return sink.url("").rstrip("/") if isinstance(sink, LocalSink) else sink.uri  # as hpt run names its folder


def with_curves(store: ResultStore, views: list[TrialView]) -> list[TrialView]:
    """`views` with their learning curves read from the store."""
    curves = store.curves([v.trial_id for v in views])
    return [replace(v, curve=parse_curve(curves.get(v.trial_id))) for v in views]


def seconds(stamp: str) -> float:
    """A row's ISO timestamp (started_at, finished_at) in seconds since the epoch; now when it has none."""
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return time.time()
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def need(module: str, option: str, extra: str) -> None:
    """Raise InputError with the install line when the optional `module` is missing."""
    try:
        __import__(module)
    except ImportError:
        raise InputError(f"{option} needs {extra}: {install_hint(extra)}") from None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
