"""The built-in architectures as modules (shapes, gradients, what the convolutions see), in `hpt archs`,
and as model files of a real run read back by `hpt predict`; training.loss and training.scaler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from hpt.architectures import BUILTIN
from hpt.architectures.heads import RobustScaled, WindowScaled, fit_scalers
from hpt.architectures.models import tcn_receptive_field
from hpt.hparams import TRAINING
from hpt.model_io import load_model
from hpt.search import expand
from hpt.spec import check_data, parse_spec
from hpt.train import TrainContext, evaluate, loss_function
from hpt.trial import Status
from tests.conftest import ROOT, hpt_cli, hpt_here, run_rows_by, tiny_spec

NEW = ["linear", "nlinear", "dlinear", "nhits", "patchtst", "tcn"]
DEMO = ROOT / "hpt" / "demo" / "electricity_hourly.csv"


hpt = hpt_here


# --------------------------------------------------------------------------- modules


@pytest.mark.parametrize("name", list(BUILTIN))
@pytest.mark.parametrize(("n_features", "lookback", "horizon"), [(1, 24, 1), (3, 30, 5), (2, 7, 12)])
def test_output_shape_and_every_parameter_gets_a_gradient(name: str, n_features: int, lookback: int,
                                                          horizon: int) -> None:
    torch.manual_seed(0)
    model = BUILTIN[name].build(n_features, lookback, horizon, {})
    x = torch.randn(5, lookback, n_features, requires_grad=True)
    out = model(x)
    assert out.shape == (5, horizon)
    out.pow(2).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: {pname} gets no gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters() if p.grad is not None)


def _seen_steps(model: torch.nn.Module, lookback: int) -> int:
    """How many of the latest input steps move the forecast (the receptive field, measured)."""
    model.eval()
    x = torch.randn(1, lookback, 1, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None
    moving = (x.grad[0, :, 0].abs() > 0).nonzero()
    return lookback - int(moving.min())


@pytest.mark.parametrize(("lookback", "kernel_size"), [(24, 3), (168, 3), (168, 2), (200, 7), (5, 4)])
def test_tcn_sees_the_whole_lookback(lookback: int, kernel_size: int) -> None:
    torch.manual_seed(0)
    model = BUILTIN["tcn"].build(1, lookback, 2, {"kernel_size": kernel_size, "dropout": 0.0})
    assert model.receptive_field >= lookback
    assert _seen_steps(model, lookback) == lookback  # the oldest step reaches the forecast
    # and not needlessly deep: one level fewer would not cover the lookback
    levels = len(model.levels)
    assert levels == 1 or tcn_receptive_field(levels - 1, kernel_size) < lookback


def test_cnn_sees_the_steps_hpt_archs_says() -> None:
    torch.manual_seed(0)
    model = BUILTIN["cnn"].build(1, 168, 1, {"dropout": 0.0})
    assert _seen_steps(model, 168) == 15  # 1 + (3 - 1) * (2**3 - 1), whatever the lookback
    line = next(ln for ln in hpt("archs", "cnn").stdout.splitlines() if ln.startswith("cnn:"))
    assert "15 with the defaults" in line and "tcn covers the whole lookback" in line


def test_hpt_archs_lists_every_architecture_with_its_inputs_and_the_new_training_keys() -> None:
    done = hpt("archs")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    for name in BUILTIN:
        at = lines.index(next(ln for ln in lines if ln.startswith(f"{name}: ")))
        block = lines[at + 1:at + 1 + len(BUILTIN[name].hparams) + 2]
        assert any(ln.startswith("  inputs: ") for ln in block), (name, block)
        assert any(ln.startswith("  auto ranges: lr ") for ln in block), (name, block)
        known = lines[at + 1 + len(BUILTIN[name].hparams) + 2]  # what it takes known ahead, after the auto ranges
        assert known.startswith("  known ahead: data.calendar and" if BUILTIN[name].future else "  known ahead: none")
    assert "flattened" in next(ln for ln in lines[lines.index(next(ln for ln in lines if ln.startswith("dlinear:"))):]
                               if ln.startswith("  inputs: "))
    for key in ("loss", "huber_delta", "quantiles", "scaler", "mdn_components"):
        assert any(ln.split()[:2] == [key, "default"] and f" {json.dumps(TRAINING[key].default)} " in ln
                   for ln in lines), key


def test_dlinear_with_a_window_shorter_than_its_kernel_and_nlinear_adds_the_last_value_back() -> None:
    dlinear = BUILTIN["dlinear"].build(1, 5, 2, {"kernel_size": 25})
    assert dlinear(torch.randn(3, 5, 1)).shape == (3, 2)
    nlinear = BUILTIN["nlinear"].build(2, 6, 3, {})
    torch.nn.init.zeros_(nlinear.linear.weight)
    torch.nn.init.zeros_(nlinear.linear.bias)
    x = torch.randn(4, 6, 2)
    assert torch.equal(nlinear(x), x[:, -1:, 0].expand(4, 3))  # a zero map forecasts the last target value


# --------------------------------------------------------------------------- losses


def test_each_loss_on_a_hand_checked_example() -> None:
    forecast = torch.tensor([[0.0, 1.0, 3.0]])
    actual = torch.tensor([[0.5, -1.0, 3.0]])  # errors -0.5, 2, 0
    assert float(loss_function({"loss": "mse"})(forecast, actual)) == pytest.approx((0.25 + 4) / 3)
    assert float(loss_function({"loss": "mae"})(forecast, actual)) == pytest.approx((0.5 + 2) / 3)
    # huber, delta 1: 0.5 * e**2 inside, delta * (|e| - 0.5 * delta) outside
    assert float(loss_function({"loss": "huber", "huber_delta": 1.0})(forecast, actual)) == pytest.approx(
        (0.125 + 1.5 + 0) / 3)
    assert float(loss_function({"loss": "huber", "huber_delta": 3.0})(forecast, actual)) == pytest.approx(
        (0.125 + 2.0) / 3)
    assert float(loss_function({})(forecast, actual)) == pytest.approx((0.25 + 4) / 3)  # older params: mse


def test_an_unknown_loss_or_scaler_is_one_line_naming_the_valid_ones(write_spec: Any) -> None:
    for where, doc in (("training.loss", tiny_spec(training={"loss": "pinball"})),
                       ("parameters.loss[1]", tiny_spec(parameters={"loss": ["mae", "pinball"]})),
                       ("training.scaler", tiny_spec(training={"scaler": "minmax"}))):
        done = hpt_cli("validate", str(write_spec(doc)))
        assert done.returncode == 2
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("hpt: error: ") and f"{where}: expected one of" in lines[0]
        valid = '"mse", "mae", "huber"' if "loss" in where else '"standard", "window"'
        assert valid in lines[0], lines[0]


# The trial ids of this spec as hpt computed them before training.loss, huber_delta, quantiles and scaler existed:
# a spec that does not set them must keep them (its rows and models are found again on a rerun).
_ID_SPEC = {
    "name": "ids", "architecture": "mlp",
    "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
    "date_ranges": [["2013-01-01", "2013-01-15"]],
    "search": {"strategy": "grid", "seed": 0},
    "parameters": {"lr": [0.001, 0.01]},
    "training": {"epochs": 3, "lookback": 24},
}
_IDS_BEFORE = ["176a00d2c312", "ef2955d89437"]


def _ids(**training: Any) -> list[str]:
    doc = {**_ID_SPEC, "training": {**_ID_SPEC["training"], **training}}
    return [t.trial_id for t in expand(parse_spec(doc))]


def test_ids_of_specs_without_the_new_keys_are_unchanged_and_a_set_key_changes_them() -> None:
    assert _ids() == _IDS_BEFORE
    assert _ids(loss="mse", scaler="standard", huber_delta=1.0, quantiles=[0.1, 0.5, 0.9]) == _IDS_BEFORE  # defaults
    changed = [_ids(loss="mae"), _ids(loss="huber"), _ids(loss="huber", huber_delta=0.5), _ids(scaler="window"),
               _ids(loss="quantile"), _ids(loss="quantile", quantiles=[0.25, 0.5, 0.75])]
    assert len({tuple(ids) for ids in changed}) == 6
    assert not {i for ids in changed for i in ids} & set(_IDS_BEFORE)


def test_the_loss_can_be_tuned_and_rows_carry_every_validation_metric(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(architecture="linear", date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"loss": ["mae", "huber"], "lr": [0.01]}, objective="val_mae",
                                training={"epochs": 2}))
    sink = tmp_path / "out"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [json.loads(p.read_text()) for p in (sink / "rows").glob("*.json")]
    trials = [r for r in rows if r["architecture"] == "linear"]
    assert sorted(r["param_loss"] for r in trials) == ["huber", "mae"]
    for row in rows:  # the baselines' rows too
        assert row["val_rmse"] == pytest.approx(row["val_mse"] ** 0.5)
        assert row["val_mae"] > 0


# --------------------------------------------------------------------------- per-window scaling


def test_window_scaling_forecasts_move_with_a_constant_added_to_the_target() -> None:
    torch.manual_seed(0)
    for name in BUILTIN:
        model = BUILTIN[name].build(2, 24, 3, {"scaler": "window"}).eval()
        assert isinstance(model, WindowScaled)
        x = torch.randn(4, 24, 2, dtype=torch.float64)
        model.double()
        shifted = x.clone()
        shifted[:, :, 0] += 7.5
        with torch.no_grad():
            assert torch.allclose(model(shifted), model(x) + 7.5, atol=1e-9), name
        plain = BUILTIN[name].build(2, 24, 3, {}).double().eval()
        with torch.no_grad():  # without it only nlinear moves with the level (it subtracts the last value)
            assert torch.allclose(plain(shifted), plain(x) + 7.5, atol=1e-9) == (name == "nlinear"), name


# --------------------------------------------------------------------------- robust scaling


def test_robust_scaling_takes_each_column_s_median_and_iqr_and_the_std_where_the_iqr_is_zero() -> None:
    train = np.zeros((9, 3))
    train[:, 0] = [0, 1, 2, 3, 4, 5, 6, 7, 80]  # a spike: the IQR ignores it, a standard deviation would not
    train[:, 1] = [0, 0, 0, 0, 0, 0, 0, 0, 3]  # mostly constant: IQR 0, its standard deviation (1 here) instead
    train[:, 2] = np.arange(9) * 2.0
    model = BUILTIN["linear"].build(3, 4, 1, {"scaler": "robust"})
    assert isinstance(model, RobustScaled)
    fit_scalers(model, lambda: train)
    assert model.center.tolist() == [4.0, 0.0, 8.0]
    assert model.spread.tolist() == [4.0, 1.0, 8.0]


def _seasonal_naive(model: torch.nn.Module) -> torch.nn.Module:
    """`model` (linear, lookback 24, horizon 1, one column) set to forecast the value 24 steps back."""
    inner = model.inner if isinstance(model, RobustScaled) else model
    with torch.no_grad():
        inner.linear.weight.zero_()
        inner.linear.weight[0, 0] = 1.0
        inner.linear.bias.zero_()
    return model


def test_robust_scaling_keeps_the_metrics_on_the_scale_of_the_standard_scaler() -> None:
    # the same forecaster (seasonal naive, as a linear model) scores the same under either scaler: the robust
    # scaler's units stay inside the model, its metrics are on the target standardised with the train part's
    # mean and std, as every other config's and the baselines'
    spec = parse_spec(tiny_spec(architecture="linear", date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"scaler": ["standard", "robust"]}))
    context = TrainContext(check_data(spec))
    trials = expand(spec)
    windows, (_, _, x_val, y_val) = context.windows(trials[0])
    train = windows.values[:windows.split.val].astype(np.float64)  # what TrainContext fits a robust scaler on
    scores = {}
    for trial in trials:
        model = BUILTIN["linear"].build(1, 24, 1, dict(trial.params))
        fit_scalers(model, lambda: train)
        if isinstance(model, RobustScaled):
            assert model.spread[0] != pytest.approx(1.0)  # it does scale differently
        scores[trial.params["scaler"]] = evaluate(_seasonal_naive(model), x_val, y_val)
    expected = float(((y_val[:, 0] - x_val[:, 0, 0]) ** 2).mean())
    assert scores["robust"]["val_mse"] == pytest.approx(scores["standard"]["val_mse"], rel=1e-5)
    assert scores["robust"]["val_mse"] == pytest.approx(expected, rel=1e-5)


def test_the_scaler_can_be_tuned_and_a_robust_model_file_keeps_its_medians(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(architecture="dlinear", date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"scaler": ["standard", "robust"], "lr": [0.003]},
                                training={"epochs": 2, "horizon": 3}))
    sink = tmp_path / "out"
    rows = run_rows_by(spec, sink, "scaler")
    assert set(rows) == {"standard", "robust"}
    assert 0 < rows["robust"]["val_mse"] < 2 * rows["standard"]["val_mse"] + 1  # the same (standardised) scale
    model_path = sink / "models" / f"{rows['robust']['trial_id']}.pt"
    model = load_model(model_path)
    assert isinstance(model.module, RobustScaled) and model.module.center[0] != 0  # the train part's median
    frame = pd.read_csv(DEMO, parse_dates=["ts"], nrows=24 * 20)
    data = tmp_path / "recent.csv"
    frame.to_csv(data, index=False)
    got = _predict_last(model_path, data)
    np.testing.assert_allclose(got, model.predict(frame.tail(24)), rtol=1e-6)
    assert frame["y"].min() * 0.5 < got.mean() < frame["y"].max() * 1.5  # data units

    # hpt final retrains the config with a robust scaler fitted on its own training window
    report_path = tmp_path / "report.json"
    done = hpt("final", str(sink), "--config", rows["robust"]["config_id"], "--threads", "1", "--holdout", "1M",
               "--report", str(report_path))
    assert done.exit_code == 0, done.output
    report = json.loads(report_path.read_text())
    final = load_model(sink / "final" / report["final_id"] / "model.pt")
    assert final.params["scaler"] == "robust" and isinstance(final.module, RobustScaled)
    assert final.module.center[0] != model.module.center[0]  # its own window's median
    assert report["models"][0]["standardised"]["mse"] < 1.5


# --------------------------------------------------------------------------- real runs, hpt predict


def _run_one(write_spec: Any, tmp_path: Path, arch: str, **training: Any) -> Path:
    """A real one-trial `hpt run` of `arch` (two epochs on two weeks, horizon 3); its model file."""
    spec = write_spec(tiny_spec(architecture=arch, date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"lr": [0.003]}, training={"epochs": 2, "horizon": 3, **training}))
    sink = tmp_path / f"out-{arch}"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    models = list((sink / "models").glob("*.pt"))
    assert len(models) == 1
    return models[0]


def _predict_last(model: Path, data: Path) -> np.ndarray:
    out = data.parent / f"{data.stem}-forecast.csv"
    done = hpt("predict", str(model), "--data", str(data), "--last", "--out", str(out))
    assert done.exit_code == 0, done.output
    return pd.read_csv(out)["prediction"].to_numpy()


@pytest.mark.parametrize("arch", NEW)
def test_a_trial_s_model_file_forecasts_through_hpt_predict(arch: str, tmp_path: Path) -> None:
    # the trial as a run's worker trains it (in this process: a run per family costs a process start each;
    # test_a_window_scaled_model_file... below goes through a real `hpt run`)
    spec = parse_spec(tiny_spec(architecture=arch, date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"lr": [0.003]}, training={"epochs": 2, "horizon": 3}))
    result = TrainContext(check_data(spec)).run(expand(spec)[0])
    assert result.status is Status.OK and result.model, result.error
    model_path = tmp_path / "model.pt"
    model_path.write_bytes(result.model)
    frame = pd.read_csv(DEMO, parse_dates=["ts"], nrows=24 * 20)
    data = tmp_path / "recent.csv"
    frame.to_csv(data, index=False)
    got = _predict_last(model_path, data)
    model = load_model(model_path)
    assert model.architecture == arch and model.horizon == 3
    np.testing.assert_allclose(got, model.predict(frame.tail(24)), rtol=1e-6)
    assert frame["y"].min() * 0.5 < got.mean() < frame["y"].max() * 1.5  # data units


def test_a_window_scaled_model_file_keeps_its_scaler_through_hpt_predict(write_spec: Any, tmp_path: Path) -> None:
    model_path = _run_one(write_spec, tmp_path, "dlinear", scaler="window", loss="mae")
    model = load_model(model_path)
    assert model.params["scaler"] == "window" and isinstance(model.module, WindowScaled)
    frame = pd.read_csv(DEMO, parse_dates=["ts"], nrows=24 * 20)
    data, shifted = tmp_path / "recent.csv", tmp_path / "shifted.csv"
    frame.to_csv(data, index=False)
    frame.assign(y=frame["y"] + 5000.0).to_csv(shifted, index=False)
    base = _predict_last(model_path, data)
    np.testing.assert_allclose(_predict_last(model_path, shifted), base + 5000.0, atol=0.05)  # float32 rounding

    # hpt final retrains the config with its scaler and loss, and scores the hold-out with it
    report_path = tmp_path / "report.json"
    done = hpt("final", str(model_path.parents[1]), "--threads", "1", "--holdout", "1M", "--report", str(report_path))
    assert done.exit_code == 0, done.output
    report = json.loads(report_path.read_text())
    final = load_model(model_path.parents[1] / "final" / report["final_id"] / "model.pt")
    assert final.params["scaler"] == "window" and final.params["loss"] == "mae"
    assert isinstance(final.module, WindowScaled)
    y = pd.read_csv(DEMO, parse_dates=["ts"]).set_index("ts")["y"]
    start = y.index.get_loc(pd.Timestamp("2014-12-01"))
    values = y.to_numpy()
    windows = np.stack([values[i - 24:i, None] for i in range(start, len(values) - 2)])
    actual = np.stack([values[i:i + 3] for i in range(start, len(values) - 2)])
    err = final.predict_windows(windows) - actual
    assert report["models"][0]["metrics"]["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-4)


_OWN_MODELS = (
    "from torch import nn\n\n\n"
    "def flat(n_features, lookback, horizon, width=8):\n"
    "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.Linear(width, horizon))\n\n\n"
    "def ignores_horizon(n_features, lookback, horizon, width=8):\n"
    "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width))\n\n\n"
    "def returns_none(n_features, lookback, horizon, width=8):\n"
    "    return None\n\n\n"
    "def needs_width(n_features, lookback, horizon, width):\n"
    "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.Linear(width, horizon))\n\n\n"
    "def one_input_too_many(n_features, lookback, horizon, width=8):\n"
    "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features + 1, horizon))\n")


def test_a_builder_whose_model_does_not_return_batch_by_horizon_fails_saying_so(tmp_path: Path) -> None:
    # trained, a (batch, 8) output broadcasts against (batch, 3) targets and gets a score: refused when built instead
    from hpt.architectures import get_architecture

    (tmp_path / "shape_models.py").write_text(_OWN_MODELS)
    built = get_architecture("shape_models:flat", tmp_path).build(2, 24, 3, {})
    assert tuple(built(torch.zeros(5, 24, 2)).shape) == (5, 3)
    with pytest.raises(ValueError, match=r"^shape_models:ignores_horizon built with horizon=3 returns \(batch, 8\) for an "
                                         r"input of \(batch, 24, 2\): it must return \(batch, horizon\), here \(batch, 3\)$"):
        get_architecture("shape_models:ignores_horizon", tmp_path).build(2, 24, 3, {})
    with pytest.raises(ValueError, match="^shape_models:returns_none returned NoneType, not a torch.nn.Module$") as e:
        get_architecture("shape_models:returns_none", tmp_path).build(2, 24, 3, {})
    # a failed trial's error: hpt's own check says what is wrong; where in hpt it said so is noise (not "__init__.py")
    from hpt.errors import one_line

    assert one_line(e.value) == "BuilderError: shape_models:returns_none returned NoneType, not a torch.nn.Module"
    quantiles = get_architecture("shape_models:flat", tmp_path).build(2, 24, 3, {"loss": "quantile",
                                                                              "quantiles": [0.1, 0.5, 0.9]})
    assert tuple(quantiles(torch.zeros(5, 24, 2)).shape) == (5, 3, 3)  # built with 9 outputs: the check saw 9


def test_validate_and_run_refuse_a_builder_that_returns_another_shape_and_warn_of_one_that_fails(tmp_path: Path) -> None:
    # built once at the spec's first values when the spec is checked: a builder that breaks the (batch, horizon) rule is
    # one line, not a failed trial per config after the run has started; one that raises may do so only on this machine
    (tmp_path / "checked_models.py").write_text(_OWN_MODELS)
    specs = []
    for builder in ("flat", "ignores_horizon", "returns_none", "one_input_too_many"):
        doc = tiny_spec(architecture=f"checked_models:{builder}", parameters={"width": [4, 8]},
                        training={"epochs": 1, "lookback": 24, "horizon": 3}, date_ranges=[["2013-01-01", "2013-01-15"]])
        specs.append(tmp_path / f"{builder}.json")
        specs[-1].write_text(json.dumps(doc))
    done = hpt_here("validate", *map(str, specs))
    assert done.exit_code == 2
    assert done.stderr.splitlines() == [
        f"hpt: warning: {specs[3]}: architecture: checked_models:one_input_too_many failed to build here with width=4 "
        "lookback=24 horizon=3 (the spec's first values): RuntimeError: mat1 and mat2 shapes cannot be multiplied "
        "(2x24 and 25x3) (at linear.py:" + done.stderr.split("(at linear.py:", 1)[-1].split(")")[0] + "); its trials "
        "will fail alike unless that depends on the machine",
        f"hpt: error: {specs[1]}: architecture: checked_models:ignores_horizon built with horizon=3 returns (batch, 4) "
        "for an input of (batch, 24, 1): it must return (batch, horizon), here (batch, 3)",
        f"hpt: error: {specs[2]}: architecture: checked_models:returns_none returned NoneType, not a torch.nn.Module",
    ], done.stderr
    assert done.stdout.splitlines() == [f"{specs[0]}: ok (checked_models:flat, 1 period)",
                                        f"{specs[3]}: ok (checked_models:one_input_too_many, 1 period)"]
    ran = hpt_here("run", str(specs[1]), "--sink", str(tmp_path / "res"), "--workers", "1")
    assert ran.exit_code == 2 and "returns (batch, 4)" in ran.stderr and "Traceback" not in ran.output
    assert not (tmp_path / "res").exists()  # refused before the run wrote anything


def test_archs_and_predict_find_a_builder_module_in_the_working_folder(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "cwd_models.py").write_text(_OWN_MODELS)
    script = Path(sys.executable).parent / "hpt"  # the console script: unlike `python -m`, it puts no folder on sys.path
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run([str(script), "archs", "cwd_models:flat"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.startswith("cwd_models:flat\n  width ") and "  width " in done.stdout, done.stderr
    away = tmp_path / "elsewhere"
    away.mkdir()
    done = subprocess.run([str(script), "archs", "cwd_models:flat"], cwd=away, capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 2 and done.stderr.strip() == ('hpt: error: cannot import module "cwd_models" for builder '
                                                            '"cwd_models:flat": put cwd_models.py in the working folder '
                                                            "or on PYTHONPATH"), done.stderr
    # a model of that builder, forecast from the builder's folder (hpt predict takes no spec to look beside)
    doc = tiny_spec(architecture="cwd_models:flat", parameters={"width": [4]}, training={"epochs": 1},
                    date_ranges=[["2013-01-01", "2013-01-15"]])
    (tmp_path / "spec.json").write_text(json.dumps(doc))
    ran = hpt_cli("run", str(tmp_path / "spec.json"), "--sink", str(tmp_path / "res"), "--workers", "1", env={"PYTHONPATH": ""})
    assert ran.returncode == 0, ran.stderr
    model = next((tmp_path / "res" / "models").glob("*.pt"))
    data = "demo:electricity_hourly.csv"
    done = subprocess.run([str(script), "predict", str(model), "--data", data, "--last"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.startswith("timestamp,horizon_step,prediction\n"), done.stderr
    done = subprocess.run([str(script), "predict", str(model), "--data", data, "--last"], cwd=away,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "put cwd_models.py in the working folder or on PYTHONPATH" in done.stderr, done.stderr


def test_a_builder_argument_without_a_default_is_a_parameter_the_spec_must_give(tmp_path: Path, write_spec: Any) -> None:
    import os
    import subprocess
    import sys

    (tmp_path / "req_models.py").write_text(_OWN_MODELS)
    script = Path(sys.executable).parent / "hpt"
    done = subprocess.run([str(script), "archs", "req_models:needs_width"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0 and done.stdout.splitlines()[:2] == ["req_models:needs_width",
                                                                     "  width  required  a value"], done.stdout
    doc = tiny_spec(architecture="req_models:needs_width", parameters={"width": [4, 8]}, training={"epochs": 1},
                    date_ranges=[["2013-01-01", "2013-01-15"]])
    (tmp_path / "given.json").write_text(json.dumps(doc))  # a width to tune: a parameter like any other
    given = hpt_cli("plan", str(tmp_path / "given.json"))
    assert given.returncode == 0 and "width=4" in given.stdout and "width=8" in given.stdout, given.stderr
    (tmp_path / "missing.json").write_text(json.dumps({**doc, "parameters": {}}))  # none: said before anything trains
    missing = hpt_cli("validate", str(tmp_path / "missing.json"))
    assert missing.returncode == 2 and missing.stderr.strip().endswith(
        'parameters: req_models:needs_width takes width without a default: give its values here, such as "width": '
        "[...]"), missing.stderr


def test_a_mistyped_builder_function_gets_a_did_you_mean(tmp_path: Path) -> None:
    from hpt.architectures import get_architecture
    from hpt.errors import InputError

    (tmp_path / "typo_models.py").write_text(_OWN_MODELS)
    with pytest.raises(InputError, match='^builder "typo_models:flta": no function "flta" in module typo_models '
                                         r'\(did you mean "flat"\?\)$'):
        get_architecture("typo_models:flta", folder=tmp_path)
    with pytest.raises(InputError, match='^builder "typo_models:": no function named after the ":"'):
        get_architecture("typo_models:", folder=tmp_path)
    (tmp_path / "typo_models.py").write_text(_OWN_MODELS + "\n\ndef no_horizon(n_features, lookback, width=8):\n"
                                                           "    return None\n")
    import sys

    sys.modules.pop("typo_models", None)
    with pytest.raises(InputError, match="must accept the keyword arguments n_features, lookback, horizon; it lacks "
                                         "horizon$"):
        get_architecture("typo_models:no_horizon", folder=tmp_path)


def test_a_model_whose_builder_changed_since_it_was_saved_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hpt predict (load_model) with the builder's code edited since: one line that says what changed, not that the
    file is no model of hpt's."""
    import sys

    from hpt.architectures import get_architecture
    from hpt.errors import InputError
    from hpt.model_io import model_payload

    (tmp_path / "edited_models.py").write_text(_OWN_MODELS)
    monkeypatch.chdir(tmp_path)
    module = get_architecture("edited_models:flat", folder=tmp_path).build(1, 24, 2, {"width": 4}, 0)
    data = model_payload(architecture="edited_models:flat", params={"width": 4}, n_features=1, lookback=24,
                         horizon=2, columns=("y",), mean=np.zeros(1), std=np.ones(1),
                         state_dict=module.state_dict(), trial_id="t1", period=("2013-01-01", "2013-02-01"), metrics={})
    assert load_model(data).horizon == 2
    for edit, says in (("width=8, depth=2):\n    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, "
                        "width), nn.ReLU(), nn.Linear(width, width), nn.Linear(width, horizon))\n",
                        "its saved weights do not fit the model \"edited_models:flat\" builds now (RuntimeError: "),
                       ("):\n    return None\n",
                        '"edited_models:flat" cannot build its model now (BuilderError: edited_models:flat returned NoneType'),
                       ("width=8, extra=None, *, depth):\n    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * "
                        "n_features, width), nn.Linear(width, horizon))\n",
                        '"edited_models:flat" cannot build its model now (BuilderError: edited_models:flat takes depth '
                        'without a default, and the parameters give no value for it)')):
        (tmp_path / "edited_models.py").write_text(_OWN_MODELS.replace(
            "width=8):\n    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), "
            "nn.Linear(width, horizon))\n", edit, 1))
        sys.modules.pop("edited_models", None)
        with pytest.raises(InputError) as e:
            load_model(data)
        assert says in str(e.value) and str(e.value).endswith("was the builder changed since the model was saved?")
        assert "\n" not in str(e.value)
