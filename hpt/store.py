"""The results layout on top of any sink.

    results.csv            one row per trial, rebuilt from the rows after each finished trial
    rows/<trial_id>.json   the row of one trial: the record of truth
    models/<trial_id>.pt   the trained model (see hpt.model_io)
    curves/<trial_id>.csv  per-epoch metrics
    runs/<run_id>.json     what was run, where, when
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

from hpt.sinks import Sink
from hpt.trial import Status, TrialResult

__all__ = ["RESULTS_CSV", "ResultStore", "result_row"]

RESULTS_CSV = "results.csv"
_LEADING = ["run_id", "trial_id", "config_id", "status", "architecture", "fidelity", "period_start", "period_end"]
_TRAILING = ["device", "started_at", "finished_at", "error", "model_uri"]


def result_row(result: TrialResult, run_id: str, metric_columns: Iterable[str], model_uri: str = "") -> dict[str, Any]:
    """The CSV row of a finished trial: ids, period, tuned parameters, metrics, where and when."""
    t = result.trial
    row: dict[str, Any] = {
        "run_id": run_id,
        "trial_id": t.trial_id,
        "config_id": t.config_id,
        "status": result.status.value,
        "architecture": t.architecture,
        "fidelity": t.fidelity,
        "period_start": t.period.start_text,
        "period_end": t.period.end_text,
    }
    row.update({f"param_{k}": v for k, v in t.tuned_params.items()})
    row.update({m: result.metrics.get(m) for m in metric_columns})
    row.update({"device": result.device, "started_at": result.started_at, "finished_at": result.finished_at,
                "error": result.error, "model_uri": model_uri})
    return row


class ResultStore:
    """Reads and writes one results location."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._rows: dict[str, dict[str, Any]] | None = None

    @property
    def uri(self) -> str:
        return self.sink.uri

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every trial's row by trial id, read once from ``rows/`` and kept up to date."""
        if self._rows is None:
            self._rows = {}
            for key in self.sink.list("rows/"):
                data = self.sink.read(key)
                if data is None:
                    continue
                try:
                    row = json.loads(data)
                except json.JSONDecodeError:
                    continue  # a foreign or damaged file is not a row; results.csv is rebuilt without it
                if isinstance(row, dict) and "trial_id" in row:
                    self._rows[row["trial_id"]] = row
        return self._rows

    def done(self) -> set[str]:
        """Ids of trials that finished ``ok``: a re-run skips them."""
        return {tid for tid, row in self.rows().items() if row.get("status") == Status.OK.value}

    def record(self, result: TrialResult, run_id: str, metric_columns: Iterable[str]) -> dict[str, Any]:
        """Store a finished trial: model and curve first, then its row, then results.csv."""
        tid = result.trial.trial_id
        model_uri = ""
        if result.model is not None:
            self.sink.write(f"models/{tid}.pt", result.model)
            model_uri = self.sink.url(f"models/{tid}.pt")
        if result.curve is not None:
            self.sink.write(f"curves/{tid}.csv", result.curve.encode())
        row = result_row(result, run_id, metric_columns, model_uri)
        self.sink.write(f"rows/{tid}.json", json.dumps(row, indent=1).encode())
        self.rows()[tid] = row
        self.write_csv()
        return row

    def write_csv(self) -> None:
        self.sink.write(RESULTS_CSV, to_csv(list(self.rows().values())).encode())

    def write_run(self, run_id: str, record: dict[str, Any]) -> None:
        self.sink.write(f"runs/{run_id}.json", json.dumps(record, indent=1, default=str).encode())


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows in a stable column order: ids, parameters, metrics, then where and when."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return ",".join(_LEADING + _TRAILING) + "\n"
    if "finished_at" in frame:
        frame = frame.sort_values("finished_at", kind="stable")
    cols = list(frame.columns)
    params = sorted(c for c in cols if c.startswith("param_"))
    middle = [c for c in cols if c not in _LEADING and c not in _TRAILING and c not in params]
    order = [c for c in _LEADING if c in cols] + params + middle + [c for c in _TRAILING if c in cols]
    buf = io.StringIO()
    frame[order].to_csv(buf, index=False)
    return buf.getvalue()
