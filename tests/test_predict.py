"""`hpt predict`: a saved model forecasts every window of a file (or its last), and what it
writes is what ``load_model(...).predict`` gives for the same windows in Python."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import Result

from hpt.architectures import get_architecture
from hpt.model_io import load_model, model_payload
from tests.conftest import ROOT, hpt_here

DEMO = ROOT / "hpt" / "demo" / "electricity_hourly.csv"


hpt = hpt_here


def _error_line(done: Result) -> str:
    lines = done.stderr.splitlines()
    assert done.exit_code == 2, done.stdout + done.stderr
    assert len(lines) == 1 and lines[0].startswith("hpt: error: "), done.stderr
    return str(lines[0])


@pytest.fixture(scope="module")
def trial_model(tuned_location: Path) -> Path:
    return sorted((tuned_location / "models").glob("*.pt"))[0]


@pytest.fixture(scope="module")
def december(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The first ten days of December 2014, with three hours missing (a gap)."""
    frame = pd.read_csv(DEMO, parse_dates=["ts"])
    frame = frame[(frame.ts >= "2014-12-01") & (frame.ts < "2014-12-11")]
    return frame.drop(frame.index[100:103]).reset_index(drop=True)


def _expected(model_path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Every window's forecast one at a time with TrainedModel.predict, dated from the window's last row."""
    model = load_model(str(model_path))
    times = frame["ts"]
    out = []
    for end in range(model.lookback - 1, len(frame)):
        start = end - model.lookback + 1
        if (times.iloc[end] - times.iloc[start]) != pd.Timedelta(hours=model.lookback - 1):
            continue  # the window spans the gap
        pred = model.predict(frame.iloc[start:end + 1])
        for k in range(model.horizon):
            out.append((times.iloc[end] + pd.Timedelta(hours=k + 1), k + 1, float(pred[k])))
    return pd.DataFrame(out, columns=["timestamp", "horizon_step", "prediction"])


def _read(text_or_path: str | Path) -> pd.DataFrame:
    source = io.StringIO(text_or_path) if isinstance(text_or_path, str) else text_or_path
    return pd.read_csv(source, parse_dates=["timestamp"])


def test_predict_writes_what_load_model_predicts_for_every_window(trial_model: Path, december: pd.DataFrame,
                                                                  tmp_path: Path) -> None:
    data, out = tmp_path / "december.csv", tmp_path / "forecasts.csv"
    december.to_csv(data, index=False)
    done = hpt("predict", str(trial_model), "--data", str(data), "--out", str(out))
    assert done.exit_code == 0, done.stderr
    got, want = _read(out), _expected(trial_model, december)
    assert list(got.columns) == ["timestamp", "horizon_step", "prediction"]
    assert len(got) == len(december) - 24 + 1 - 23  # the 23 windows across the gap are left out
    pd.testing.assert_frame_equal(got[["timestamp", "horizon_step"]], want[["timestamp", "horizon_step"]])
    np.testing.assert_allclose(got["prediction"], want["prediction"], rtol=1e-5)
    assert "23 left out: they span a missing step" in done.stderr


def test_last_forecasts_the_steps_after_the_file_and_parquet_works(trial_model: Path, december: pd.DataFrame,
                                                                    tmp_path: Path) -> None:
    data = tmp_path / "december.parquet"
    december.to_parquet(data)
    done = hpt("predict", str(trial_model), "--data", str(data), "--last")
    assert done.exit_code == 0, done.stderr
    got = _read(done.stdout)
    assert got["timestamp"].tolist() == [pd.Timestamp("2014-12-11 00:00")] and got["horizon_step"].tolist() == [1]
    assert got["prediction"].iloc[0] == pytest.approx(load_model(str(trial_model)).predict(december)[0], rel=1e-5)


def test_a_horizon_of_several_steps_dates_each_one(tmp_path: Path, december: pd.DataFrame) -> None:
    """A model of horizon 3 with a feature column, saved the way hpt saves one."""
    frame = december.assign(temp=np.arange(len(december), dtype=float) % 7)
    data = tmp_path / "with-temp.csv"
    frame.to_csv(data, index=False)
    torch.manual_seed(0)
    module = get_architecture("mlp").build(2, 12, 3, {"hidden_size": 8, "num_layers": 1, "dropout": 0.0})
    path = tmp_path / "h3.pt"
    path.write_bytes(model_payload(architecture="mlp", params={"hidden_size": 8, "num_layers": 1, "dropout": 0.0},
                                   n_features=2, lookback=12, horizon=3, columns=("y", "temp"), mean=np.array([2e3, 3.0]),
                                   std=np.array([400.0, 2.0]), state_dict=module.state_dict(), trial_id="h3",
                                   period=("2014-01-01", "2014-02-01"), metrics={}, time_column="ts", step="1h"))
    done = hpt("predict", str(path), "--data", str(data))
    assert done.exit_code == 0, done.stderr
    got, want = _read(done.stdout), _expected(path, frame)
    assert got["horizon_step"].tolist()[:6] == [1, 2, 3, 1, 2, 3]
    pd.testing.assert_frame_equal(got[["timestamp", "horizon_step"]], want[["timestamp", "horizon_step"]])
    np.testing.assert_allclose(got["prediction"], want["prediction"], rtol=1e-5)
    line = _error_line(hpt("predict", str(path), "--data", str(DEMO)))
    assert 'lacks columns the model was trained on: "temp"' in line


def test_missing_columns_and_short_files_are_refused(trial_model: Path, december: pd.DataFrame, tmp_path: Path) -> None:
    renamed = tmp_path / "renamed.csv"
    december.rename(columns={"y": "load"}).to_csv(renamed, index=False)
    line = _error_line(hpt("predict", str(trial_model), "--data", str(renamed)))
    assert 'renamed.csv lacks columns the model was trained on: "y"' in line and "(it has: ts, load)" in line
    other_time = tmp_path / "time.csv"
    december.rename(columns={"ts": "when"}).to_csv(other_time, index=False)
    assert 'lacks the time column: "ts"' in _error_line(hpt("predict", str(trial_model), "--data", str(other_time)))
    assert hpt("predict", str(trial_model), "--data", str(other_time), "--time-column", "when", "--last").exit_code == 0
    short = tmp_path / "short.csv"
    december.head(10).to_csv(short, index=False)
    line = _error_line(hpt("predict", str(trial_model), "--data", str(short)))
    assert "short.csv has 10 rows with values: fewer than the model's lookback of 24" in line
    assert "no model at" in _error_line(hpt("predict", str(tmp_path / "nosuch.pt"), "--data", str(short)))
    line = _error_line(hpt("predict", str(short), "--data", str(short)))
    assert "short.csv is not a model saved by hpt: it cannot be read as one" in line and "Error" not in line, line
    # a file of the time column alone lacks the target: said so, with no hint about separators it does not need
    times = tmp_path / "times.csv"
    december[["ts"]].to_csv(times, index=False)
    line = _error_line(hpt("predict", str(trial_model), "--data", str(times)))
    assert 'times.csv lacks columns the model was trained on: "y"' in line and "separated by" not in line, line


def test_a_file_with_a_duplicated_time_is_refused_naming_it(trial_model: Path, december: pd.DataFrame,
                                                           tmp_path: Path) -> None:
    # a file of several series given to a one-series model, or one time twice: the windows would mix the rows
    doubled = tmp_path / "doubled.csv"
    pd.concat([december, december.tail(1).assign(y=99999.0)]).to_csv(doubled, index=False)
    for args in ((), ("--last",)):
        line = _error_line(hpt("predict", str(trial_model), "--data", str(doubled), *args))
        assert line == (f"hpt: error: {doubled} holds 1 duplicated timestamp in \"ts\" (first: 2014-12-10 23:00:00, "
                        f"rows {len(december) + 1} and {len(december) + 2}): a forecast takes one row per time (the model "
                        "was trained on one series: of a file of several, give one series' rows); remove them"), line


def test_a_model_saved_before_models_recorded_their_time_column(trial_model: Path, december: pd.DataFrame,
                                                                 tmp_path: Path) -> None:
    payload = torch.load(trial_model, weights_only=True)
    assert payload["time_column"] == "ts" and payload["step"] == "1h"  # what models record now
    del payload["time_column"], payload["step"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    model = load_model(str(old))
    assert model.time_column is None and model.step is None
    data = tmp_path / "december.csv"
    december.to_csv(data, index=False)
    done = hpt("predict", str(old), "--data", str(data), "--last")  # ts: the only other column
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith("2014-12-11 00:00:00,1,")
    two = tmp_path / "two.csv"
    december.assign(other=1.0).to_csv(two, index=False)
    assert "give --time-column" in _error_line(hpt("predict", str(old), "--data", str(two)))
    renamed = tmp_path / "renamed.csv"
    december.rename(columns={"ts": "date", "y": "load"}).to_csv(renamed, index=False)
    line = _error_line(hpt("predict", str(trial_model), "--data", str(renamed)))
    assert 'lacks columns the model needs: "ts", "y"' in line and "give --time-column" not in line
    assert line.endswith("; --time-column names another time column, the others need the names the model was "
                         "trained with")


def test_data_at_another_step_than_the_models_is_refused_naming_both(trial_model: Path, december: pd.DataFrame,
                                                                      tmp_path: Path) -> None:
    """Daily data into an hourly model: not an empty CSV (every daily 'window' spans missing hours), not a hint to
    fill a gap. A model saved before models recorded their step forecasts at the file's own step."""
    daily = pd.read_csv(DEMO, parse_dates=["ts"]).set_index("ts").resample("1D").mean().reset_index()
    path = tmp_path / "daily.csv"
    daily.to_csv(path, index=False)
    for last in ([], ["--last"]):
        line = _error_line(hpt("predict", str(trial_model), "--data", str(path), *last))
        assert "daily.csv has a row every 1D; the model was trained on data every 1h: give data at the model's step" in line
    payload = torch.load(trial_model, weights_only=True)
    del payload["step"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    done = hpt("predict", str(old), "--data", str(path), "--last")
    assert done.exit_code == 0, done.stderr
    assert _read(done.stdout)["timestamp"].tolist() == [daily["ts"].iloc[-1] + pd.Timedelta(days=1)]
    holey = tmp_path / "holey.csv"  # hourly, but an hour missing in every 10: no window of 24 rows without a gap
    december[december.index % 10 != 9].to_csv(holey, index=False)
    line = _error_line(hpt("predict", str(trial_model), "--data", str(holey)))
    assert "of 24 rows (the model's lookback) spans a missing step (data every 1h): fill the gaps" in line


def test_out_in_a_missing_folder_or_onto_the_data_file_is_refused(trial_model: Path, december: pd.DataFrame,
                                                                  tmp_path: Path) -> None:
    data = tmp_path / "december.csv"
    december.to_csv(data, index=False)
    before = data.read_bytes()
    line = _error_line(hpt("predict", str(trial_model), "--data", str(data), "--out", str(tmp_path / "no" / "f.csv")))
    assert line == f"hpt: error: --out {tmp_path / 'no' / 'f.csv'}: no folder {tmp_path / 'no'}; create it first"
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    for out, source in ((data, data), (tmp_path / "." / "december.csv", data), (link, data), (data, link)):
        line = _error_line(hpt("predict", str(trial_model), "--data", str(source), "--out", str(out)))
        assert line.endswith("is the --data file: writing the forecasts would replace it; give another --out"), line
    assert data.read_bytes() == before and link.is_symlink()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if not os.access(locked, os.W_OK):  # not as root, who may write anywhere
        line = _error_line(hpt("predict", str(trial_model), "--data", str(data), "--out", str(locked / "f.csv")))
        assert f"--out {locked / 'f.csv'}: cannot write it: Permission denied" in line


def test_a_file_separated_by_semicolons_with_decimal_commas_forecasts_as_with_commas(
        trial_model: Path, december: pd.DataFrame, tmp_path: Path) -> None:
    comma, semicolon = tmp_path / "comma.csv", tmp_path / "semicolon.csv"
    december.to_csv(comma, index=False)
    december.to_csv(semicolon, sep=";", decimal=",", index=False)
    want, got = hpt("predict", str(trial_model), "--data", str(comma)), hpt("predict", str(trial_model), "--data",
                                                                             str(semicolon))
    assert got.exit_code == 0, got.stderr
    assert got.stdout == want.stdout and len(_read(got.stdout)) > 100
    spaces = tmp_path / "spaces.csv"
    december.to_csv(spaces, sep=" ", index=False)
    line = _error_line(hpt("predict", str(trial_model), "--data", str(spaces)))
    assert "(the header is one column: hpt reads CSV files separated by commas, semicolons, tabs or |" in line


def test_a_model_reads_a_file_with_the_time_format_or_unit_it_was_trained_with(write_spec: Any,
                                                                                tmp_path: Path) -> None:
    # trained on day-first dates (data.time_format), the model could not forecast from its own training file:
    # predict read the times as month-first and said to "set data.time_format", which predict has no way to
    frame = pd.read_csv(DEMO, parse_dates=["ts"])
    frame = frame[(frame.ts >= "2013-01-01") & (frame.ts < "2013-02-15")].reset_index(drop=True)
    dayfirst, epochs, iso = tmp_path / "dayfirst.csv", tmp_path / "epochs.csv", tmp_path / "iso.csv"
    frame.assign(ts=frame.ts.dt.strftime("%d.%m.%Y %H:%M")).to_csv(dayfirst, index=False)
    frame.assign(ts=(frame.ts - pd.Timestamp("1970-01-01")).dt.total_seconds().astype("int64")).to_csv(epochs,
                                                                                                      index=False)
    frame.to_csv(iso, index=False)
    for path, reading in ((dayfirst, {"time_format": "%d.%m.%Y %H:%M"}), (epochs, {"time_unit": "s"})):
        spec = write_spec({"name": path.stem, "architecture": "mlp",
                           "data": {"path": str(path), "time_column": "ts", "target": "y", **reading},
                           "date_ranges": [["2013-01-01", "2013-02-01"]], "parameters": {"lr": [0.01]},
                           "training": {"epochs": 1, "lookback": 24, "horizon": 1, "validation": "7D"}})
        sink = tmp_path / f"res-{path.stem}"
        ran = hpt("run", str(spec), "--sink", str(sink), "--workers", "1")
        assert ran.exit_code == 0, ran.output
        model = next((sink / "models").glob("*.pt"))
        assert load_model(str(model)).time_reading == reading
        own = hpt("predict", str(model), "--data", str(path), "--last")
        assert own.exit_code == 0, own.stderr
        assert _read(own.stdout)["timestamp"].tolist() == [pd.Timestamp("2013-02-15 00:00")]
        # a file that writes its times otherwise: the error says how the model read them and which options change it
        line = _error_line(hpt("predict", str(model), "--data", str(iso), "--last"))
        assert line.endswith(f"(read as the model's training data: data.{next(iter(reading))} "
                             f"{next(iter(reading.values()))!r}; --time-format or --time-unit say otherwise)"), line
        other = hpt("predict", str(model), "--data", str(iso), "--last", "--time-format", "%Y-%m-%d %H:%M:%S")
        assert other.exit_code == 0 and other.stdout == own.stdout, other.stderr


def test_forecasts_of_daily_data_are_dated_by_day_and_finer_data_keeps_its_times() -> None:
    from hpt.predict import write_csv

    table = pd.DataFrame({"timestamp": pd.to_datetime(["2025-01-01", "2025-01-02"]), "horizon_step": [1, 2],
                          "prediction": [1.5, 2.5]})
    for step, first in ((pd.Timedelta(days=1), "2025-01-01,1,1.5"), (pd.Timedelta(hours=1), "2025-01-01 00:00:00,1,1.5"),
                        (pd.Timedelta(days=7), "2025-01-01,1,1.5"), (None, "2025-01-01 00:00:00,1,1.5")):
        out = io.StringIO()
        write_csv(table, out, step)
        assert out.getvalue().splitlines()[1] == first, (step, out.getvalue())

