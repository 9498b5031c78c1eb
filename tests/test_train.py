"""Training one trial: every architecture learns, divergence and failure are recorded, runs reproduce."""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from hpt.architectures import BUILTIN
from hpt.model_io import load_model
from hpt.search import expand
from hpt.spec import check_data, parse_spec
from hpt.train import TrainContext
from hpt.trial import Status, TrialResult, as_decided
from tests.conftest import tiny_spec

ARCHS = list(BUILTIN)


def _run(**overrides: Any) -> TrialResult:
    spec = parse_spec(tiny_spec(**overrides))
    return TrainContext(check_data(spec)).run(expand(spec)[0])


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_learns_on_real_data(arch: str) -> None:
    result = _run(architecture=arch, parameters={"lr": [0.003]}, training={"epochs": 4, "patience": 0})
    assert result.status is Status.OK, result.error
    curve = pd.read_csv(io.StringIO(result.curve or ""))
    assert len(curve) == 4
    # learns: the training loss falls, and a later epoch validates better than the first (4 epochs of
    # attention on two weeks are noisy: the last epoch is not always the best, whatever the seed)
    assert curve["train_loss"].iloc[-1] < curve["train_loss"].iloc[0]
    assert curve["val_mse"].iloc[1:].min() < curve["val_mse"].iloc[0]
    assert result.metrics["val_mse"] == pytest.approx(curve["val_mse"].min())
    assert result.metrics["n_params"] > 0 and result.metrics["best_epoch"] >= 1


def test_huge_learning_rate_is_recorded_as_diverged() -> None:
    result = _run(parameters={"lr": [1e3]})
    assert result.status is Status.DIVERGED
    assert "training loss" in result.error and result.model is None


def test_an_exception_is_recorded_as_failed_with_its_text() -> None:
    # A sampled d_model is not checked by the spec (it cannot list the values), so the builder refuses it.
    result = _run(architecture="attention", search={"strategy": "random", "max_trials": 1},
                  parameters={"d_model": {"int": [30, 31]}, "num_heads": [4]})
    assert result.status is Status.FAILED
    assert re.search(r"d_model=3[01] must be a multiple of num_heads=4", result.error), result.error


def test_declared_constraints_agree_with_what_the_builders_accept() -> None:
    values = {"d_model": [1, 2, 3, 8, 12], "num_heads": [1, 2, 3, 4, 5]}
    checked = 0
    for arch in BUILTIN.values():
        for rule in arch.constraints:
            for combo in itertools.product(*(values[n] for n in rule.names)):
                params = {**arch.defaults, **dict(zip(rule.names, combo, strict=True))}
                if rule.check(params) is None:
                    arch.build(2, 4, 1, params)
                else:
                    with pytest.raises(ValueError):
                        arch.build(2, 4, 1, params)
                checked += 1
    assert checked >= 25


def test_same_spec_same_metrics_on_the_cpu() -> None:
    a = _run(architecture="lstm", parameters={"hidden_size": [8]})
    b = _run(architecture="lstm", parameters={"hidden_size": [8]})
    assert a.metrics["val_mse"] == b.metrics["val_mse"] and a.metrics["train_loss"] == b.metrics["train_loss"]


def test_early_stopping_restores_the_best_epoch() -> None:
    result = _run(parameters={"lr": [0.05]}, training={"epochs": 30, "patience": 2, "lr_decay": 1.0})
    curve = pd.read_csv(io.StringIO(result.curve or ""))
    best = int(curve["val_mse"].idxmin()) + 1
    assert result.metrics["best_epoch"] == best
    assert result.metrics["epochs"] == len(curve) <= best + 2


def test_saved_model_loads_and_predicts_in_data_units(tmp_path: Path) -> None:
    result = _run(architecture="gru", training={"horizon": 3, "epochs": 2})
    path = tmp_path / "m.pt"
    path.write_bytes(result.model or b"")
    model = load_model(path)
    assert model.lookback == 24 and model.horizon == 3 and model.columns == ("y",)
    frame = pd.read_csv(Path(__file__).resolve().parents[1] / "hpt" / "demo" / "electricity_hourly.csv", nrows=200)
    forecast = model.predict(frame.tail(24))
    assert forecast.shape == (3,)
    recent = frame["y"].tail(24)
    assert recent.min() * 0.5 < forecast.mean() < recent.max() * 1.5  # kW, not standardised units
    with pytest.raises(ValueError, match="lookback=24"):
        model.predict(frame.tail(10))
    assert np.isfinite(forecast).all()


def test_infer_ms_times_1000_windows_in_one_batch_repeating_fewer() -> None:
    import torch

    from hpt.train import INFER_WINDOWS, infer_ms

    seen: list[tuple[int, ...]] = []

    class Recorder(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(tuple(x.shape))
            return x[:, -1, :1]

    x = torch.arange(3 * 4, dtype=torch.float32).reshape(3, 4, 1)  # three validation windows
    ms = infer_ms(Recorder(), x)
    assert ms >= 0 and INFER_WINDOWS == 1000
    assert seen == [(8, 4, 1), (1000, 4, 1), (1000, 4, 1)]  # a small warm-up pass, then the fastest of two timed


@pytest.mark.parametrize("arch, schedule", [("mlp", "plateau"), ("lstm", "cosine")])
def test_a_stopped_trial_goes_on_from_its_checkpoint_as_if_never_stopped(arch: str, schedule: str) -> None:
    spec = parse_spec(tiny_spec(architecture=arch, parameters={"lr": [0.01], "dropout": [0.2]},
                                training={"epochs": 8, "patience": 3, "lr_patience": 1, "lr_schedule": schedule}))
    context = TrainContext(check_data(spec))
    trial = dataclasses.replace(expand(spec)[0], checkpoint_at=(1, 2, 4))
    straight = context.run(trial)
    assert straight.status is Status.OK and straight.checkpoints == {}  # a trial that ends keeps none

    # stopped at epoch 5 on a decision about epoch 4 (a stop reaches a worker an epoch late)
    stopped = context.run(trial, lambda epoch, _: "pruned at epoch 4" if epoch == 5 else None)
    assert stopped.status is Status.PRUNED and sorted(stopped.checkpoints) == [2, 4]  # the last two it reached
    decided = as_decided(stopped, 4, "pruned at epoch 4", "val_mse")
    assert sorted(decided.checkpoints) == [2, 4]
    assert sorted(as_decided(stopped, 3, "pruned at epoch 3", "val_mse").checkpoints) == [2]

    for epoch in (2, 4):
        resumed = context.run(dataclasses.replace(trial, resume=decided.checkpoints[epoch]))
        assert resumed.status is Status.OK, resumed.error
        mine, theirs = (pd.read_csv(io.StringIO(r.curve or "")).drop(columns="time_s") for r in (resumed, straight))
        pd.testing.assert_frame_equal(mine, theirs)  # every epoch, the ones before the checkpoint included
        assert {k: v for k, v in resumed.metrics.items() if k not in ("train_time_s", "infer_ms")} == \
            {k: v for k, v in straight.metrics.items() if k not in ("train_time_s", "infer_ms")}
        weights = [load_model(r.model or b"").module.state_dict() for r in (resumed, straight)]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])
        assert resumed.metrics["train_time_s"] >= stopped_time(decided, epoch)  # counts the time before it too


def stopped_time(result: TrialResult, epoch: int) -> float:
    curve = pd.read_csv(io.StringIO(result.curve or ""))
    return float(curve.loc[curve["epoch"] == epoch, "time_s"].iloc[0])
