"""The results layout: what a row holds."""

from __future__ import annotations

import pandas as pd

from hpt.periods import Period
from hpt.rows import result_row
from hpt.trial import Status, Trial, TrialResult


def _result(metrics: dict[str, float], device: str) -> TrialResult:
    period = Period(pd.Timestamp("2013-01-01"), pd.Timestamp("2013-01-15"))
    trial = Trial("t1", "c1", "lstm", {"lr": 0.01, "hidden_size": 16}, ("lr",), period, 0, tags={"round": 2})
    return TrialResult(trial, Status.OK, metrics, started_at="a", finished_at="b", device=device)


def test_a_row_has_ids_period_tuned_params_metrics_and_where() -> None:
    row = result_row(_result({"val_mse": 0.5, "epochs": 3}, "cpu-0"), "run1", ["val_mse", "val_mae", "epochs"], "m.pt")
    assert row["param_lr"] == 0.01 and "param_hidden_size" not in row  # only what the search varies
    assert row["val_mse"] == 0.5 and row["val_mae"] is None and row["round"] == 2
    assert (row["period_start"], row["period_end"], row["model_uri"], row["device"]) == ("2013-01-01", "2013-01-15",
                                                                                        "m.pt", "cpu-0")
    assert "gpu_mem_peak_mb" not in row


def test_a_gpu_trial_row_records_its_peak_memory() -> None:
    metrics = {"val_mse": 0.5, "gpu_mem_peak_mb": 120.5, "gpu_mem_reserved_mb": 160.0, "gpu_mem_total_mb": 81559.0}
    row = result_row(_result(metrics, "gpu0 (NVIDIA H100 80GB HBM3)"), "run1", ["val_mse"])
    assert row["gpu_mem_peak_mb"] == 120.5 and row["gpu_mem_reserved_mb"] == 160.0
    assert "gpu_mem_total_mb" not in row  # the card's size, the same in every row: in the device name's model
