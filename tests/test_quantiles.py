"""training.loss "quantile" and "mdn": the pinball loss and coverage by hand, every architecture's widened
head, a mixture's quantiles and likelihood, spec errors, and a quantile and a mixture density model through
`hpt run`, `hpt predict` and `hpt final`."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from hpt.architectures import BUILTIN
from hpt.architectures.heads import Mixture, Quantiles, WindowScaled, mixture_quantiles
from hpt.model_io import load_model
from hpt.quantiles import quantile_scores
from hpt.search import expand
from hpt.spec import check_data, parse_spec
from hpt.train import TrainContext, evaluate, loss_function
from hpt.trial import Status
from tests.conftest import ROOT, hpt_cli, hpt_here, tiny_spec

DEMO = ROOT / "hpt" / "demo" / "electricity_hourly.csv"
QUANTILES = [0.1, 0.5, 0.9]

# two targets, each with three sorted quantile forecasts
FORECAST = [[[1.0, 2.5, 4.0], [0.0, 1.0, 3.0]]]
ACTUAL = [[2.0, 5.0]]
# by hand, q * d when the target is d >= 0 above the forecast, else (1 - q) * -d:
#   target 2: 0.1 * 1 + 0.5 * 0.5 + 0.1 * 2 = 0.55; target 5: 0.1 * 5 + 0.5 * 4 + 0.9 * 2 = 4.3
PINBALL = (0.55 + 4.3) / 6
COVERAGE = 0.5  # 2 lies in [1, 4], 5 is above 3


def test_pinball_loss_and_coverage_on_a_hand_checked_example() -> None:
    loss = loss_function({"loss": "quantile", "quantiles": QUANTILES})
    assert float(loss(torch.tensor(FORECAST), torch.tensor(ACTUAL))) == pytest.approx(PINBALL)
    scores = quantile_scores(np.array(FORECAST), np.array(ACTUAL), (0.1, 0.5, 0.9))
    assert scores == pytest.approx({"pinball": PINBALL, "coverage": COVERAGE})
    assert quantile_scores(np.array(FORECAST) * 10, np.array(ACTUAL) * 10, (0.1, 0.5, 0.9), scale=10.0) == \
        pytest.approx(scores)  # standardised: divided by the scale

    class Fixed(torch.nn.Module):  # a "model" that forecasts FORECAST whatever it sees
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tensor(FORECAST).expand(len(x), 2, 3)

    got = evaluate(Fixed(), torch.zeros(1, 4, 1), torch.tensor(ACTUAL), (0.1, 0.5, 0.9))
    # the point metrics are the median's: errors 0.5 and -4
    assert got == pytest.approx({"val_mse": (0.25 + 16) / 2, "val_mae": 4.5 / 2, "val_pinball": PINBALL,
                                 "val_coverage": COVERAGE})


@pytest.mark.parametrize("name", list(BUILTIN))
def test_every_architecture_forecasts_sorted_quantiles_per_step(name: str) -> None:
    torch.manual_seed(0)
    for scaler in ("standard", "window"):
        model = BUILTIN[name].build(2, 24, 5, {"loss": "quantile", "quantiles": [0.05, 0.5, 0.8, 0.95],
                                               "scaler": scaler})
        assert isinstance(model, WindowScaled if scaler == "window" else Quantiles)
        x = torch.randn(3, 24, 2, requires_grad=True)
        out = model(x)
        assert out.shape == (3, 5, 4)
        assert (out.diff(dim=2) >= 0).all()
        loss_function({"loss": "quantile", "quantiles": [0.05, 0.5, 0.8, 0.95]})(out, torch.randn(3, 5)).backward()
        assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize(("overrides", "where", "words"), [
    ({"training": {"loss": "quantile", "quantiles": [0.1, 0.5, 1.2]}}, "training.quantiles", "between 0 and 1"),
    ({"training": {"loss": "quantile", "quantiles": [0.9, 0.5, 0.1]}}, "training.quantiles", "increasing"),
    ({"training": {"loss": "quantile", "quantiles": [0.1, 0.9]}}, "training.quantiles", "must include 0.5"),
    ({"training": {"loss": "quantile", "quantiles": [0.5]}}, "training.quantiles", "[0.5] alone is a median forecast"),
    ({"training": {"quantiles": "0.1"}}, "training.quantiles", "a list of numbers"),
    ({"objective": "val_pinball"}, "objective", 'val_pinball needs training.loss "quantile" or "mdn" in every config'),
    ({"objective": "pinball", "parameters": {"loss": ["mse", "quantile"]}}, "objective", "parameters.loss gives"),
    ({"metrics": ["coverage"]}, "metrics", "val_coverage needs"),
    ({"training": {"loss": "quantile"}, "parameters": {"quantiles": [[0.1, 0.5, 0.9]]}}, "parameters.quantiles",
     "not tuned"),
])
def test_quantile_spec_mistakes_are_one_line(write_spec: Any, overrides: dict[str, Any], where: str,
                                             words: str) -> None:
    done = hpt_cli("validate", str(write_spec(tiny_spec(**overrides))))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpt: error: ") and f"{where}: " in lines[0], lines
    assert words in lines[0], lines[0]


# --------------------------------------------------------------------------- mixture density networks


def test_a_mixture_s_quantiles_by_hand() -> None:
    q = torch.tensor(QUANTILES)
    one = torch.tensor([[[[0.0, 1.0, 2.0], [-50.0, 9.0, 1.0]]]])  # the second Gaussian weighs ~e^-50: ignored
    np.testing.assert_allclose(mixture_quantiles(one, q)[0, 0].numpy(), [1 - 2 * 1.2815516, 1, 1 + 2 * 1.2815516],
                               atol=1e-4)  # N(1, 2): mean -+ 1.2816 standard deviations
    two = torch.tensor([[[[0.0, -3.0, 1.0], [0.0, 3.0, 1.0]]]])  # even weights, symmetric about 0
    lo, mid, hi = mixture_quantiles(two, q)[0, 0].tolist()
    assert mid == pytest.approx(0.0, abs=1e-4) and lo == pytest.approx(-hi, abs=1e-4)
    cdf = 0.5 * sum(0.5 * (1 + math.erf((hi - m) / math.sqrt(2))) for m in (-3.0, 3.0))
    assert cdf == pytest.approx(0.9, abs=1e-5)


@pytest.mark.parametrize("scaler", ["standard", "window", "robust"])
def test_every_architecture_gets_a_mixture_head_and_its_likelihood_gradient(scaler: str) -> None:
    torch.manual_seed(0)
    for name in ("mlp", "patchtst", "tcn"):
        model = BUILTIN[name].build(2, 24, 5, {"loss": "mdn", "mdn_components": 4, "scaler": scaler})
        x = torch.randn(3, 24, 2, requires_grad=True)
        params = model(x)  # training: each step's mixture
        assert params.shape == (3, 5, 4, 3) and (params[..., 2] > 0).all()
        loss_function({"loss": "mdn"})(params, torch.randn(3, 5)).backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        forecast = model.eval()(x)  # evaluating: its quantiles, increasing
        assert forecast.shape == (3, 5, 3) and (forecast.diff(dim=2) >= 0).all()
        assert any(isinstance(m, Mixture) for m in model.modules())


def test_a_window_scaled_mixture_moves_with_a_constant_added_to_the_target() -> None:
    torch.manual_seed(0)
    model = BUILTIN["mlp"].build(1, 24, 2, {"loss": "mdn", "scaler": "window", "dropout": 0.0}).double()
    x = torch.randn(4, 24, 1, dtype=torch.float64)
    with torch.no_grad():
        params, shifted = model(x), model(x + 7.5)
        np.testing.assert_allclose(shifted[..., 1], params[..., 1] + 7.5, atol=1e-9)  # the means move
        np.testing.assert_allclose(shifted[..., (0, 2)], params[..., (0, 2)], atol=1e-9)  # weights, widths do not
        model.eval()
        np.testing.assert_allclose(model(x + 7.5), model(x) + 7.5, atol=1e-5)


def test_a_tiny_mixture_density_fit_lowers_its_negative_log_likelihood() -> None:
    spec = parse_spec(tiny_spec(architecture="linear", date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"lr": [0.01]}, objective="val_pinball",
                                training={"epochs": 4, "horizon": 2, "loss": "mdn", "mdn_components": 2}))
    result = TrainContext(check_data(spec)).run(expand(spec)[0])
    assert result.status is Status.OK, result.error
    curve = pd.read_csv(io.StringIO(result.curve))
    assert curve["train_loss"].iloc[-1] < curve["train_loss"].iloc[0]  # the mean NLL on the train windows
    assert result.metrics["val_pinball"] > 0 and 0 < result.metrics["val_coverage"] <= 1


@pytest.mark.parametrize("loss", ["quantile", "mdn"])
def test_a_quantile_model_through_run_predict_and_final(write_spec: Any, tmp_path: Path, loss: str) -> None:
    spec = write_spec(tiny_spec(architecture="dlinear", date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"lr": [0.003]}, objective="val_pinball", metrics=["coverage"],
                                training={"epochs": 2, "horizon": 3, "loss": loss}))
    sink = tmp_path / "out"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mean val_pinball=" in done.stdout
    rows = [json.loads(p.read_text()) for p in (sink / "rows").glob("*.json")]
    (row,) = [r for r in rows if r["architecture"] == "dlinear"]
    assert row["val_pinball"] > 0 and 0 <= row["val_coverage"] <= 1 and row["val_mae"] > 0
    for baseline in (r for r in rows if r["architecture"].startswith("naive-")):  # quantiles from their train errors
        assert baseline["val_pinball"] > 0 and 0 < baseline["val_coverage"] <= 1, baseline

    # hpt predict: the median as prediction and one column per quantile, in order
    (model_path,) = (sink / "models").glob("*.pt")
    frame = pd.read_csv(DEMO, parse_dates=["ts"], nrows=24 * 20)
    data, out = tmp_path / "recent.csv", tmp_path / "forecast.csv"
    frame.to_csv(data, index=False)
    done_predict = hpt_here("predict", str(model_path), "--data", str(data), "--out", str(out))
    assert done_predict.exit_code == 0, done_predict.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["timestamp", "horizon_step", "prediction", "p10", "p50", "p90"]
    assert len(table) == 3 * (len(frame) - 23)
    assert (table["p10"] <= table["p50"]).all() and (table["p50"] <= table["p90"]).all()
    assert (table["p10"] < table["p90"]).any()
    np.testing.assert_array_equal(table["prediction"], table["p50"])
    model = load_model(model_path)
    assert model.quantiles == (0.1, 0.5, 0.9) and isinstance(model.module, Mixture) == (loss == "mdn")
    np.testing.assert_allclose(table[["p10", "p50", "p90"]].tail(3).to_numpy(), model.predict(frame.tail(24)),
                               rtol=1e-6)

    # hpt final: pinball and coverage on the hold-out, the model's and the baselines'
    report_path = tmp_path / "report.json"
    done_final = hpt_here("final", str(sink), "--threads", "1", "--holdout", "1M", "--report", str(report_path))
    assert done_final.exit_code == 0, done_final.output
    header = next(ln for ln in done_final.output.splitlines() if "on the hold-out" in ln)
    # pinball (data units) and coverage stand beside the data-unit errors, before the standardised ones
    assert header.split()[5:8] == ["rmse", "pinball", "coverage"] and header.index("coverage") < header.index("standardised")
    report = json.loads(report_path.read_text())
    final = load_model(sink / "final" / report["final_id"] / "model.pt")
    y = pd.read_csv(DEMO, parse_dates=["ts"]).set_index("ts")["y"]
    start, values = y.index.get_loc(pd.Timestamp("2014-12-01")), y.to_numpy()
    windows = np.stack([values[i - 24:i, None] for i in range(start, len(values) - 2)])
    actual = np.stack([values[i:i + 3] for i in range(start, len(values) - 2)])
    forecast = final.predict_windows(windows)
    expected = quantile_scores(forecast, actual, (0.1, 0.5, 0.9))
    metrics = report["models"][0]["metrics"]
    assert metrics["pinball"] == pytest.approx(expected["pinball"], rel=1e-4)
    assert metrics["coverage"] == pytest.approx(expected["coverage"], abs=1e-9)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(forecast[..., 1] - actual)), rel=1e-4)  # the median's
    for b in report["baselines"].values():
        assert b["metrics"]["pinball"] > 0 and 0 < b["metrics"]["coverage"] <= 1
        assert b["standardised"]["pinball"] == pytest.approx(b["metrics"]["pinball"] / report["train"]["target_std"])
    # the better baseline and the change against it are on the verdict's metric, the objective's (pinball)
    better = min(report["baselines"], key=lambda n: report["baselines"][n]["metrics"]["pinball"])
    assert report["verdict"]["metric"] == "pinball" and report["best_baseline"] == better
    assert report["models"][0]["vs_best_baseline"] == pytest.approx(
        metrics["pinball"] / report["baselines"][better]["metrics"]["pinball"] - 1)


def test_baseline_quantiles_are_their_own_errors_on_the_train_part() -> None:
    from hpt.baselines import naive_forecasts, quantile_forecasts
    from hpt.periods import Period

    times = pd.date_range("2024-01-01", periods=60, freq="h")
    noise = np.tile([0.0, 0.0, 0.0, 3.0], 15)  # on a trend of 1 a step: naive-last's one-step errors are 1 or 4
    frame = pd.DataFrame({"y": np.arange(60.0) + noise}, index=times)
    ends = times[[50, 55]].to_numpy()
    point = naive_forecasts(frame["y"], ends, 2, pd.Timedelta("1h"), 24)
    got = quantile_forecasts(point, frame, Period(times[0], times[40]), 2, 24, (0.1, 0.5, 0.9))
    # step 1 from the ends whose 2 steps lie in the train part
    errors = np.array([frame["y"].iloc[i + 1] - frame["y"].iloc[i] for i in range(38)])
    assert set(np.round(errors, 9)) == {1.0, 4.0, -2.0}
    expected = point["naive-last"][:, 0, None] + np.quantile(errors, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(got["naive-last"][:, 0, :], expected)
    assert got["naive-seasonal"].shape == (2, 2, 3)
