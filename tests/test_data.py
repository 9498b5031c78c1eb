"""Data: parsing, sorting, missing values, and windows without look-ahead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpt.data import DataError, load_frame, make_windows, resolve_data_path
from hpt.periods import Period
from tests.conftest import ROOT, tiny_spec

SHARED_WEATHER = ROOT / "tests" / "data" / "seattle_weather_daily.csv"
DEMO = ROOT / "hpt" / "demo" / "electricity_hourly.csv"


def _csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "d.csv"
    path.write_text(text)
    return str(path)


def test_weather_dates_parse_and_text_column_is_refused() -> None:
    frame = load_frame(str(SHARED_WEATHER), "date", ("temp_max", "temp_min"))
    assert frame.index[0] == pd.Timestamp("2012-01-01") and len(frame) == 1461
    with pytest.raises(DataError) as info:
        load_frame(str(SHARED_WEATHER), "date", ("temp_max", "weather"))
    assert info.value.json_path == "data.features[0]" and '"weather" is not numeric' in info.value.message


def test_unsorted_rows_are_sorted_and_missing_targets_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _csv(tmp_path, "t,y\n2020-01-03,3\n2020-01-01,1\n2020-01-02,\n2020-01-04,4\n")
    frame = load_frame(path, "t", ("y",))
    assert list(frame["y"]) == [1.0, 3.0, 4.0]
    assert frame.index.is_monotonic_increasing
    assert "dropped 1 of 4 rows" in caplog.text


def test_duplicated_timestamps_are_reported(tmp_path: Path) -> None:
    path = _csv(tmp_path, "t,y\n2020-01-01,1\n2020-01-01,2\n2020-01-02,3\n")
    with pytest.raises(DataError, match="1 duplicated timestamp in"):
        load_frame(path, "t", ("y",))


def test_unparsable_time_names_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "t,y\n2020-01-01,1\nnot a date,2\n")
    with pytest.raises(DataError, match=r'cannot parse "not a date" .* \(row 3\)'):
        load_frame(path, "t", ("y",))


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=5, freq="h"), "y": np.arange(5.0)})
    frame.to_parquet(tmp_path / "d.parquet")
    loaded = load_frame(str(tmp_path / "d.parquet"), "t", ("y",))
    assert list(loaded["y"]) == [0, 1, 2, 3, 4]


def test_windows_never_train_on_validation_targets_and_scale_from_train_only(tmp_path: Path) -> None:
    n = 100
    t = pd.date_range("2020-01-01", periods=n, freq="h")
    path = _csv(tmp_path, pd.DataFrame({"t": t, "y": np.arange(n, dtype=float)}).to_csv(index=False))
    frame = load_frame(path, "t", ("y",))
    w = make_windows(frame, Period(t[0], t[-1] + pd.Timedelta("1h")), lookback=5, horizon=2, validation=0.2)
    split = 80  # rows 80..99 are validation
    mean, std = np.arange(split).mean(), np.arange(split).std()
    assert w.mean[0] == pytest.approx(mean) and w.std[0] == pytest.approx(std)
    unscale = lambda a: np.rint(a * std + mean)  # noqa: E731
    train_targets, val_targets = unscale(w.y_train), unscale(w.y_val)
    assert train_targets.max() == split - 1  # the last train target is the last train row
    assert val_targets.min() == split and val_targets.max() == n - 1
    # each window's targets follow its inputs directly
    assert np.all(unscale(w.x_train[:, -1, 0]) + 1 == train_targets[:, 0])
    assert np.all(unscale(w.x_val[:, -1, 0]) + 1 == val_targets[:, 0])
    assert len(w.x_train) == split - 5 - 2 + 1 and len(w.x_val) == n - split - 2 + 1


def test_duration_validation_holds_out_the_end_of_the_period(tmp_path: Path) -> None:
    t = pd.date_range("2020-01-01", periods=24 * 10, freq="h")
    path = _csv(tmp_path, pd.DataFrame({"t": t, "y": np.sin(np.arange(len(t)))}).to_csv(index=False))
    frame = load_frame(path, "t", ("y",))
    w = make_windows(frame, Period(t[0], pd.Timestamp("2020-01-11")), lookback=24, horizon=1, validation="2D")
    assert len(w.y_val) == 48  # the last two days, one window per hour


def test_bundled_demo_data_resolves() -> None:
    path = resolve_data_path("demo:electricity_hourly.csv")
    assert Path(path).is_file()
    with pytest.raises(DataError, match="bundled: electricity_hourly.csv"):
        resolve_data_path("demo:nope.csv")


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_data_read_from_a_bucket(kind: str, request: pytest.FixtureRequest, cli: Any, write_spec: Any,
                                 tmp_path: Path) -> None:
    server = request.getfixturevalue(f"{kind}_server")
    scheme = {"s3": "s3", "gcs": "gs"}[kind]
    bucket = server.create_bucket()
    server.put(bucket, "data/load.csv", DEMO.read_bytes())
    env = {**server.client_env(), "HPT_SINK_RETRIES": "2", "HPT_SINK_TIMEOUT": "5"}
    data = {"path": f"{scheme}://{bucket}/data/load.csv", "time_column": "ts", "target": "y"}
    spec = write_spec(tiny_spec(data=data, parameters={"lr": [0.01]}, training={"epochs": 1}))
    done = cli("run", str(spec), "--sink", str(tmp_path / "r"), env=env)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "r" / "results.csv")
    assert list(table["status"]) == ["ok", "ok"]
    auto = cli("auto", "--arch", "mlp", "--data", data["path"], "--target", "y", "--time-column", "ts", "--trials", "2",
               "--dry-run", "--today", "2026-11-01", env=env)
    assert auto.returncode == 0 and "2 configs x 3 periods" in auto.stdout, auto.stderr

    for path, words in [(f"{scheme}://{bucket}/data/nothing.csv", f"no object at {scheme}://{bucket}/data/nothing.csv"),
                        (f"{scheme}://{bucket}/data/load.csv", 'no column "load"')]:
        bad = write_spec(tiny_spec(data={**data, "path": path, "target": "load" if "load.csv" in path else "y"}))
        out = cli("validate", str(bad), env=env)
        errors = [line for line in out.stderr.splitlines() if line.startswith("hpt: error:")]
        assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
        assert words in errors[0] and ("data.target" if "load.csv" in path else "data.path") in errors[0]


@pytest.mark.parametrize("path", ["ftp://host/x.csv", "gs://bucket-only", "s3:/bucket/x.csv"])
def test_unsupported_data_locations_are_refused(path: str) -> None:
    with pytest.raises(DataError) as info:
        resolve_data_path(path)
    assert info.value.json_path == "data.path"
