"""Inputs known ahead (data.calendar, data.future_features): the forecast steps' rows of a window,
architectures that cannot take them refused, and a model with a future feature through `hpt run`,
`hpt predict` and `hpt final`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from hpt.architectures import BUILTIN
from hpt.calendar import with_calendar
from hpt.future import mark_known_ahead
from hpt.model_io import load_model
from hpt.periods import Period
from hpt.search import expand
from hpt.spec import parse_spec
from hpt.windows import make_windows
from tests.conftest import ROOT, cli_here, hpt_cli, hpt_here, tiny_spec

DATA = ROOT / "hpt" / "demo" / "electricity_hourly.csv"


def test_future_rows_hold_the_forecast_steps_calendar_and_no_target() -> None:
    frame = pd.read_csv(DATA, parse_dates=["ts"], index_col="ts", nrows=24 * 30)
    frame = mark_known_ahead(with_calendar(frame, ("hour", "dow")), ("calendar:hour_sin", "calendar:hour_cos"))
    w = make_windows(frame, Period(frame.index[0], frame.index[-1]), 24, 5, 0.25)
    assert w.x_train.shape[1:] == (24 + 5, 5) and w.x_val.shape[1:] == (29, 5) and w.future_rows == 5
    j = 37
    start = int(w.starts.train[j])
    times = pd.DatetimeIndex(w.times[start + 24:start + 29])  # the forecast steps' times
    expected = with_calendar(pd.DataFrame(index=times), ("hour",)).to_numpy()
    future = w.x_train[j, 24:]
    np.testing.assert_allclose(future[:, 1:3] * w.std[1:3] + w.mean[1:3], expected, atol=1e-5)
    assert (future[:, [0, 3, 4]] == 0).all()  # the target and the calendar not known ahead (dow): left out
    np.testing.assert_array_equal(w.x_train[j, :24], w.values[start:start + 24])  # the lookback as before
    np.testing.assert_array_equal(w.y_train[j], w.values[start + 24:start + 29, 0])


@pytest.mark.parametrize(("arch", "data", "named"), [
    ("cnn", {"calendar": ["hour", "dow"]}, "data.calendar: hour, dow"),
    ("patchtst", {"future_features": ["promo"]}, "data.future_features: promo"),
])
def test_an_architecture_that_cannot_take_inputs_known_ahead_is_refused(write_spec: Any, tmp_path: Path, arch: str,
                                                                        data: dict[str, Any], named: str) -> None:
    if "future_features" in data:
        data = {**data, "path": str(_promo_file(tmp_path))}
    done = cli_here("validate", str(write_spec(tiny_spec(architecture=arch, data=data, parameters={"lr": [0.01]}))))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert f'architecture: architecture "{arch}" cannot take inputs known ahead ({named})' in line
    assert "use one that can (mlp, lstm, gru," in line and "Traceback" not in done.stderr


def test_future_feature_mistakes_and_ids(write_spec: Any, tmp_path: Path) -> None:
    path = str(_promo_file(tmp_path))
    done = cli_here("validate", str(write_spec(tiny_spec(data={"path": path, "features": ["promo"],
                                                              "future_features": ["promo"]}))))
    assert done.returncode == 2 and 'data.future_features[0]: "promo" is listed twice' in done.stderr
    absent = cli_here("validate", str(write_spec(tiny_spec(data={"path": path, "future_features": ["promo", "sale"]}))))
    assert absent.returncode == 2 and 'data.future_features[1]: no column "sale" in promo.csv' in absent.stderr
    # every column the spec names that the file lacks, at once: three typos were three rounds of validate
    typos = cli_here("validate", str(write_spec(tiny_spec(data={"path": path, "target": "yy", "features": ["promo", "x"],
                                                               "future_features": ["sale"]}))))
    assert typos.returncode == 2 and [line.split(": ")[3] for line in typos.stderr.splitlines()] == \
        ["data.target", "data.features[1]", "data.future_features[0]"], typos.stderr
    plain = [t.trial_id for t in expand(parse_spec(tiny_spec(data={"path": path})))]
    assert [t.trial_id for t in expand(parse_spec(tiny_spec(data={"path": path, "future_features": []})))] == plain
    with_it = [t.trial_id for t in expand(parse_spec(tiny_spec(data={"path": path, "future_features": ["promo"]})))]
    assert not set(with_it) & set(plain)


def _promo_file(folder: Path) -> Path:
    """Hourly data whose target jumps by 8 in the hours of a promotion, known ahead."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2013-01-01", "2013-03-31 23:00", freq="h")
    promo = (rng.random(len(times) // 6) < 0.3).repeat(6)[:len(times)].astype(float)
    y = 10 + 3 * np.sin(2 * np.pi * times.hour / 24) + 8 * promo + rng.normal(0, 0.3, len(times))
    path = folder / "promo.csv"
    pd.DataFrame({"ts": times, "y": y, "promo": promo}).to_csv(path, index=False)
    return path


def test_a_future_feature_through_run_predict_and_final(write_spec: Any, tmp_path: Path) -> None:
    data = _promo_file(tmp_path)
    spec = write_spec(tiny_spec(architecture="linear", data={"path": str(data), "future_features": ["promo"],
                                                             "calendar": ["hour"]},
                                date_ranges=[["2013-01-01", "2013-02-15"]], parameters={"lr": [0.01]},
                                training={"epochs": 2, "horizon": 4}))
    sink = tmp_path / "out"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    (model_path,) = (sink / "models").glob("*.pt")
    model = load_model(model_path)
    assert model.columns == ("y", "promo", "calendar:hour_sin", "calendar:hour_cos")
    assert model.known_ahead == ("promo", "calendar:hour_sin", "calendar:hour_cos") and model.future_rows == 4

    # the file holds the forecast steps' promotions after its last target (the target empty there)
    frame = pd.read_csv(data, parse_dates=["ts"]).iloc[:24 * 40]
    past, ahead = frame.iloc[:-4], frame.iloc[-4:]
    file, out = tmp_path / "recent.csv", tmp_path / "forecast.csv"
    pd.concat([past, ahead.assign(y=np.nan)]).to_csv(file, index=False)
    done_predict = hpt_here("predict", str(model_path), "--data", str(file), "--last", "--out", str(out))
    assert done_predict.exit_code == 0, done_predict.output
    table = pd.read_csv(out, parse_dates=["timestamp"])
    assert list(table["timestamp"]) == list(ahead["ts"])  # the forecast steps are the rows with promotions
    np.testing.assert_allclose(table["prediction"], model.predict(past.tail(24), future=ahead.set_index("ts")),
                               rtol=1e-6)
    flipped = ahead.assign(promo=1 - ahead["promo"]).set_index("ts")
    assert not np.allclose(model.predict(past.tail(24), future=flipped), table["prediction"])

    # every window: those whose forecast steps have promotions in the file
    done_all = hpt_here("predict", str(model_path), "--data", str(file), "--out", str(out))
    assert done_all.exit_code == 0, done_all.output
    assert len(pd.read_csv(out)) == 4 * (len(past) - 24 + 1)

    # without the forecast steps' promotions: one line naming them
    past.to_csv(file, index=False)
    missing = hpt_here("predict", str(model_path), "--data", str(file), "--last", "--out", str(out))
    assert missing.exit_code == 2
    assert '"promo" for the 4 forecast steps after its last row' in missing.output

    report_path = tmp_path / "report.json"
    done_final = hpt_here("final", str(sink), "--threads", "1", "--holdout-start", "2013-03-01",
                          "--report", str(report_path))
    assert done_final.exit_code == 0, done_final.output
    final = load_model(sink / "final" / json.loads(report_path.read_text())["final_id"] / "model.pt")
    assert final.known_ahead == model.known_ahead and final.module.linear.weight.shape[1] == (24 + 4) * 4
    pd.concat([past, ahead.assign(y=np.nan)]).to_csv(file, index=False)
    done_final_predict = hpt_here("predict", str(sink / "final" / json.loads(report_path.read_text())["final_id"]
                                                  / "model.pt"), "--data", str(file), "--last", "--out", str(out))
    assert done_final_predict.exit_code == 0, done_final_predict.output


@pytest.mark.parametrize("name", [a.name for a in BUILTIN.values() if a.future])
def test_each_architecture_that_takes_inputs_known_ahead_reads_the_forecast_steps_rows(name: str) -> None:
    torch.manual_seed(0)
    model = BUILTIN[name].build(3, 24, 5, {}, future_rows=5).eval()
    x = torch.randn(4, 24 + 5, 3, requires_grad=True)
    out = model(x)
    assert out.shape == (4, 5)
    out.sum().backward()
    assert x.grad is not None and x.grad[:, 24:, 1:].abs().sum() > 0  # the future rows move the forecast
    assert x.grad[:, :24].abs().sum() > 0


def test_window_scaling_with_future_rows_shifts_the_lookback_only() -> None:
    torch.manual_seed(0)
    for name in ("linear", "nlinear", "lstm"):
        model = BUILTIN[name].build(2, 24, 3, {"scaler": "window"}, future_rows=3).double().eval()
        x = torch.randn(4, 27, 2, dtype=torch.float64)
        x[:, 24:, 0] = 0  # the target is not known ahead
        shifted = x.clone()
        shifted[:, :24, 0] += 7.5
        with torch.no_grad():
            assert torch.allclose(model(shifted), model(x) + 7.5, atol=1e-9), name


def test_a_builder_of_one_s_own_takes_inputs_known_ahead_with_a_future_rows_argument(write_spec: Any,
                                                                                     tmp_path: Path) -> None:
    (tmp_path / "mymodels.py").write_text(
        "from torch import nn\n\n"
        "def ahead(n_features, lookback, horizon, future_rows=0, width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear((lookback + future_rows) * n_features, horizon))\n\n"
        "def past_only(n_features, lookback, horizon, width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, horizon))\n")
    calendar = {"calendar": ["hour"]}
    ok = hpt_cli("validate", str(write_spec(tiny_spec(architecture="mymodels:ahead", data=calendar,
                                                      parameters={"width": [4]}))))
    assert ok.returncode == 0, ok.stderr
    listed = hpt_cli("archs", "mymodels:ahead", cwd=tmp_path).stdout
    assert "  width " in listed and "future_rows" not in listed  # not a hyperparameter
    assert "  known ahead: data.calendar and data.future_features" in listed
    refused = hpt_cli("validate", str(write_spec(tiny_spec(architecture="mymodels:past_only", data=calendar,
                                                           parameters={"width": [4]}))))
    assert refused.returncode == 2
    assert ('architecture "mymodels:past_only" cannot take inputs known ahead (data.calendar: hour): its builder '
            'takes no "future_rows" argument') in refused.stderr


def test_a_calendar_model_saved_before_inputs_known_ahead_forecasts_from_its_lookback_alone(tmp_path: Path) -> None:
    """A file without "known_ahead" (hpt before data.future_features): its calendar columns cover the input window only."""
    from hpt.model_io import model_payload

    columns = ("y", "calendar:hour_sin", "calendar:hour_cos")
    torch.manual_seed(0)
    module = BUILTIN["linear"].build(3, 24, 2, {})
    path = tmp_path / "old.pt"
    path.write_bytes(model_payload(architecture="linear", params={}, n_features=3, lookback=24, horizon=2,
                                   columns=columns, mean=np.array([2e3, 0.0, 0.0]), std=np.array([400.0, 1.0, 1.0]),
                                   state_dict=module.state_dict(), trial_id="old", period=("2013-01-01", "2013-02-01"),
                                   metrics={}, time_column="ts", step="1h"))
    model = load_model(path)
    assert model.known_ahead == () and model.future_rows == 0
    frame = pd.read_csv(DATA, parse_dates=["ts"], nrows=48)
    data, out = tmp_path / "recent.csv", tmp_path / "forecast.csv"
    frame.to_csv(data, index=False)
    done = hpt_here("predict", str(path), "--data", str(data), "--last", "--out", str(out))
    assert done.exit_code == 0, done.output
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], model.predict(frame.tail(24)), rtol=1e-6)
