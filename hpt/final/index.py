"""final/index.csv: one row per final model at a results location, merged with conditional writes."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hpt import layout
from hpt.errors import HptError
from hpt.sinks import Sink, update

__all__ = ["INDEX_CSV", "INDEX_COLUMNS", "index_row", "merge_index"]

INDEX_CSV = layout.FINAL_INDEX
INDEX_COLUMNS = ("final_id", "mode", "created_at", "config_id", "architecture", "params", "train_start", "train_end",
                 "epochs", "holdout_start", "holdout_end", "holdout_windows", "mse", "mae", "rmse", "std_mse", "std_mae",
                 "std_rmse", "naive_last_mse", "naive_seasonal_mse", "vs_best_baseline", "from_model", "model_uri",
                 "report_uri", "device")


def index_row(doc: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    b = doc["baselines"]
    return {
        "final_id": doc["final_id"], "mode": model["mode"], "created_at": doc["created_at"],
        "config_id": doc["config_id"], "architecture": doc["architecture"],
        "params": json.dumps(doc["params"], sort_keys=True), "train_start": doc["train"]["start"],
        "train_end": doc["train"]["end"], "epochs": doc["epochs"], "holdout_start": doc["holdout"]["start"],
        "holdout_end": doc["holdout"]["end"], "holdout_windows": doc["holdout"]["windows"],
        **{k: model["metrics"][k] for k in ("mse", "mae", "rmse", "pinball", "coverage", "mase") if k in model["metrics"]},
        **({"beats_seasonal_share": model["series"]["beats_seasonal_share"]} if "series" in model else {}),
        **{f"std_{k}": model["standardised"][k] for k in ("mse", "mae", "rmse")},
        "naive_last_mse": b["naive-last"]["metrics"]["mse"], "naive_seasonal_mse": b["naive-seasonal"]["metrics"]["mse"],
        "vs_best_baseline": model["vs_best_baseline"], "from_model": doc["from_model"] or "",
        "model_uri": model["model_uri"], "report_uri": doc["uris"]["report"], "device": doc["device"],
    }


def _parse_index(data: bytes | None) -> list[dict[str, str]]:
    if not data:
        return []
    try:
        return [dict(r) for r in csv.DictReader(io.StringIO(data.decode("utf-8")))]
    except (UnicodeDecodeError, csv.Error):
        return []


def _index_csv(rows: list[dict[str, Any]]) -> bytes:
    columns = list(INDEX_COLUMNS) + sorted({k for r in rows for k in r} - set(INDEX_COLUMNS))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
    return buf.getvalue().encode()


def merge_index(sink: Sink, rows: list[dict[str, Any]]) -> None:
    """Add `rows` to final/index.csv through the one read-merge-write (:func:`hpt.sinks.update`): a
    final that wrote it meanwhile is read again and merged, so no row is lost."""
    mine = {(str(r["final_id"]), str(r["mode"])): r for r in rows}

    def merge(data: bytes | None) -> bytes:
        current = _parse_index(data)
        if data and data.strip() and not current:
            raise HptError(f"{sink.url(INDEX_CSV)} is not a CSV file hpt can merge into; move it away and run again "
                           "(the model and report.json are written)")
        kept = [r for r in current if (r.get("final_id", ""), r.get("mode", "")) not in mine]
        return _index_csv(kept + list(mine.values()))

    update(sink, INDEX_CSV, merge)
