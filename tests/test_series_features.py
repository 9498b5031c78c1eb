"""Static series features (data.series_features): per-series columns as inputs, scaled across the series
(numbers) or one-hot (text); checked when read, part of the ids, and encoded the same way by hpt predict."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpt.model_io import load_model
from hpt.search import expand
from hpt.spec import parse_spec
from hpt.spec.windowing import check_data
from hpt.static import Encoding, fit_encoding
from hpt.train import TrainContext
from hpt.windows import make_windows
from tests.conftest import cli_here, hpt_here

START = pd.Timestamp("2024-01-01")
STATIONS = {"a": ("day", 10.0), "b": ("night", 20.0), "c": ("day", 5.0), "d": ("night", 40.0)}
"""id: (region, capacity). A "day" station's daily cycle peaks at 06:00, a "night" one's at 18:00; each
station's level is its capacity."""
ONE_HOT = ("static:region=day", "static:region=night")


def write_stations(path: Path, stations: dict[str, tuple[str | None, float]] = STATIONS, rows: int = 528) -> Path:
    """A long-format CSV (station, ts, y, region, capacity) of hourly rows from 2024-01-01, rows in any order."""
    parts = []
    for sid, (region, capacity) in stations.items():
        k = np.arange(rows, dtype=np.float64)
        sign = -1.0 if region == "night" else 1.0
        y = capacity * (3 + sign * np.sin(2 * np.pi * k / 24) + 0.2 * np.cos(0.37 * k))
        parts.append(pd.DataFrame({"station": sid, "ts": pd.date_range(START, periods=rows, freq="h"), "y": y,
                                   "region": region, "capacity": capacity}))
    pd.concat(parts).sample(frac=1.0, random_state=0).to_csv(path, index=False)
    return path


def static_spec(data: Path | str, **data_keys: Any) -> dict[str, Any]:
    return {
        "name": "static", "architecture": "mlp",
        "data": {"path": str(data), "time_column": "ts", "target": "y", "series": "station",
                 "series_features": ["region", "capacity"], **data_keys},
        "date_ranges": [["2024-01-01", "2024-01-21"]],
        "search": {"strategy": "grid", "seed": 0},
        "parameters": {"lr": [0.01], "hidden_size": [8]},
        "training": {"epochs": 2, "batch_size": 64, "lookback": 24, "horizon": 2, "validation": 0.25},
        "objective": "val_mase",
    }


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("hpt: error")]


# -- checks ----------------------------------------------------------------------------------


def _varying(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[(frame["station"] == "a") & (frame["ts"] >= "2024-01-10"), "region"] = "night"
    return frame


def _one_missing(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[frame.index[4], "capacity"] = np.nan
    return frame


@pytest.mark.parametrize(("data_keys", "edit", "where", "says"), [
    ({}, _varying, "data.series_features[0]",
     'column "region" is not constant within 1 series ("a"): a static series feature has one value per series'),
    ({"series_features": ["regoin"]}, None, "data.series_features[0]", 'no column "regoin" in p.csv (did you mean "region"?)'),
    ({"series": None}, None, "data.series_features", "needs data.series"),
    ({}, _one_missing, "data.series_features[1]", 'column "capacity" has no value in row 6 (series "'),
    ({"series_features": ["region", "y"]}, None, "data.series_features[1]", '"y" is already the target (data.target)'),
    ({"series_features": ["station"]}, None, "data.series_features[0]",
     '"station" is already the series column (data.series)'),
    ({"series_features": ["region", "region"]}, None, "data.series_features[1]", '"region" is listed twice'),
    ({"series_features": "region"}, None, "data.series_features", "expected a list of column names"),
])
def test_series_feature_mistakes_are_one_line_exit_2(tmp_path: Path, write_spec: Any, data_keys: dict[str, Any],
                                                     edit: Any, where: str, says: str) -> None:
    data = write_stations(tmp_path / "p.csv")
    if edit is not None:
        edit(pd.read_csv(data)).to_csv(data, index=False)
    doc = static_spec(data, **data_keys)
    doc["data"] = {k: v for k, v in doc["data"].items() if v is not None}
    if "series" not in doc["data"]:
        doc["objective"] = "val_mse"  # val_mase needs data.series too: one mistake at a time
    done = hpt_here("validate", str(write_spec(doc)))
    assert done.exit_code == 2
    (error,) = _errors(done.output)
    assert f"{where}: " in error and says in error, error


def test_series_features_change_the_ids_and_so_do_their_values(tmp_path: Path) -> None:
    data = write_stations(tmp_path / "p.csv")
    without = static_spec(data)
    del without["data"]["series_features"]
    plain = {t.trial_id for t in expand(parse_spec(without))}
    with_them = [t.trial_id for t in expand(parse_spec(static_spec(data)))]
    assert plain and with_them and not plain & set(with_them)
    assert [t.trial_id for t in expand(parse_spec(static_spec(data)))] == with_them  # stable
    (tmp_path / "other").mkdir()
    other = write_stations(tmp_path / "other" / "p.csv", {**STATIONS, "a": ("day", 11.0)})
    moved = list(expand(parse_spec(static_spec(other))))
    # the same config (same file name and keys), but a static value changed: a new trial
    assert [t.config_id for t in moved] == [t.config_id for t in expand(parse_spec(static_spec(data)))]
    assert not {t.trial_id for t in moved} & set(with_them)


# -- the inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("scaler", ["standard", "robust"])
def test_static_inputs_are_scaled_across_the_series_not_per_series(tmp_path: Path, scaler: str) -> None:
    spec = parse_spec(static_spec(write_stations(tmp_path / "p.csv")))
    frame = spec.data.read().frame
    w = make_windows(frame, spec.periods[0], 24, 2, 0.25, scaler)
    assert w.columns == ("y", *ONE_HOT, "static:capacity")
    assert w.panel is not None and w.panel.series == ("a", "b", "c", "d")
    starts = np.cumsum([0, 480, 480, 480])  # each series' 20 days of hourly rows in the period
    capacity = np.array([STATIONS[sid][1] for sid in w.panel.series])
    expected = (capacity - capacity.mean()) / capacity.std()  # over the series, each once
    for k, sid in enumerate(w.panel.series):
        rows = w.values[starts[k]:starts[k] + 480, 1:]
        assert (rows == rows[0]).all()  # constant along the series
        day = STATIONS[sid][0] == "day"
        assert list(rows[0, :2]) == [float(day), float(not day)]  # one-hot, unscaled
        assert rows[0, 2] == pytest.approx(expected[k], rel=1e-5)
    # the per-series scaling is the identity for them: what a model file stores for each series
    assert (w.panel.mean[:, 1:] == 0).all() and (w.panel.std[:, 1:] == 1).all()


# -- run, final and predict ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four stations whose daily cycle's phase is their region's, tuned once with `hpt run`."""
    folder = tmp_path_factory.mktemp("static")
    data = write_stations(folder / "stations.csv")
    spec = folder / "static.json"
    spec.write_text(json.dumps(static_spec(data)))
    done = hpt_here("run", str(spec), "--sink", str(folder / "results"), "--workers", "1")
    assert done.exit_code == 0, done.output
    return folder / "results"


def test_a_run_feeds_them_to_the_model_its_input_grows_by_the_one_hot_width(tuned: Path) -> None:
    table = pd.read_csv(tuned / "results.csv")
    trial = table[table["architecture"] == "mlp"].iloc[0]
    assert trial["status"] == "ok" and np.isfinite(trial["val_mase"])
    model = load_model(next((tuned / "models").glob("*.pt")))
    # the target, the two regions one-hot, the capacity: 1 + 2 + 1 inputs
    assert model.columns == ("y", *ONE_HOT, "static:capacity")
    assert model.module.net[1].in_features == 24 * 4  # the mlp's first layer: lookback rows of 4 inputs, not 1
    assert model.series_features is not None and model.series_features.names == ("region", "capacity")
    capacity = model.series_features.features[1]
    assert (capacity.mean, capacity.std) == pytest.approx((18.75, np.std([10, 20, 5, 40])))
    record = json.loads(next((tuned / "runs").glob("*.json")).read_text())
    assert record["data"]["series_features"] == ["region", "capacity"]


@pytest.fixture(scope="module")
def final_model(tuned: Path) -> Path:
    report = tuned.parent / "report.json"
    done = hpt_here("final", str(tuned), "--holdout", "1D", "--report", str(report))
    assert done.exit_code == 0, done.output
    assert '4 series of "station" in the hold-out (static series features: region, capacity)' in done.output
    doc = json.loads(report.read_text())
    assert doc["panel"]["series_features"] == ["region", "capacity"]
    return Path(doc["uris"]["model"])


def test_predict_encodes_each_series_as_in_training_and_fills_what_it_cannot_with_a_warning(
        final_model: Path, tmp_path: Path) -> None:
    model = load_model(final_model)
    assert model.columns == ("y", *ONE_HOT, "static:capacity")
    data = write_stations(tmp_path / "new.csv", {"a": ("day", 10.0), "fresh": (None, 7.0), "west": ("coast", 3.0)},
                          rows=60)
    done = cli_here("predict", str(final_model), "--data", str(data), "--last")
    assert done.returncode == 0, done.stderr
    assert ('new.csv: series "fresh" has no value of "region" (a static series feature): forecast with no category '
            "(all-zero one-hot) for it") in done.stderr
    assert ('series "west" has "region" (a static series feature) "coast", a value the model was not trained on '
            '(it knows "day", "night"): forecast with no category (all-zero one-hot) for it') in done.stderr
    assert "not among the 4 series the model was trained on" in done.stderr
    table = pd.read_csv(io.StringIO(done.stdout))
    assert sorted(set(table["series"])) == ["a", "fresh", "west"] and table["prediction"].notna().all()
    # a seen series: as the Python API forecasts its rows, which take its static columns as the file has them
    rows = pd.read_csv(data, parse_dates=["ts"]).query("station == 'a'").sort_values("ts").set_index("ts")
    assert model.for_series("a").predict(rows) == pytest.approx(
        table.loc[table["series"] == "a", "prediction"].to_numpy(), rel=1e-5)
    # a series it never saw is scaled by its own rows, but its static inputs as encoded, across the series
    unseen = model.for_series("new", rows)
    assert list(unseen.mean[1:]) == [0, 0, 0] and list(unseen.std[1:]) == [1, 1, 1] and unseen.mean[0] > 0
    with pytest.raises(ValueError, match='the rows have no value of "region"'):
        model.for_series("a").predict(rows.assign(region=np.nan))
    # the column absent altogether: every series forecast, the capacity at the training mean, said once
    pd.read_csv(data).drop(columns="capacity").to_csv(data, index=False)
    again = hpt_here("predict", str(final_model), "--data", str(data), "--last", "--out", str(tmp_path / "out.csv"))
    assert again.exit_code == 0, again.output
    assert ('no column "capacity" (a static series feature): forecast every series with the training series\' '
            "mean (18.75) for it") in again.output
    assert set(pd.read_csv(tmp_path / "out.csv")["series"]) == {"a", "fresh", "west"}


def test_predict_refuses_a_static_column_not_constant_within_a_series(final_model: Path, tmp_path: Path) -> None:
    data = write_stations(tmp_path / "new.csv", {"a": ("day", 10.0)}, rows=60)
    frame = pd.read_csv(data)
    frame.loc[frame.index[:3], "capacity"] = 99.0
    frame.to_csv(data, index=False)
    done = hpt_here("predict", str(final_model), "--data", str(data), "--last")
    assert done.exit_code == 2
    (error,) = _errors(done.output)
    assert 'new.csv: column "capacity" is not constant within 1 series ("a")' in error, error


def _ar_panel(path: Path) -> Path:
    """Four series whose next value is 0.9 times the last ("up") or -0.9 times it ("down"), by region: from one
    row of history (lookback 1) only the region tells which."""
    rng = np.random.default_rng(0)
    parts = []
    for j in range(4):
        region = ("up", "down")[j % 2]
        y = np.zeros(300)
        for t in range(1, len(y)):
            y[t] = (0.9 if region == "up" else -0.9) * y[t - 1] + rng.normal()
        parts.append(pd.DataFrame({"station": f"s{j}", "ts": pd.date_range(START, periods=len(y), freq="h"),
                                   "y": 100 * (j + 1) + (j + 1) * y, "region": region}))
    pd.concat(parts).to_csv(path, index=False)
    return path


def test_the_model_learns_from_a_categorical_static_feature(tmp_path: Path) -> None:
    data = _ar_panel(tmp_path / "ar.csv")
    scores = {}
    for name, keys in (("without", {}), ("with", {"series_features": ["region"]})):
        doc = static_spec(data, **keys)
        if not keys:
            del doc["data"]["series_features"]
        doc.update(date_ranges=[["2024-01-01", "2024-01-13"]], objective="val_mse",
                   parameters={"lr": [0.003], "hidden_size": [32]})
        doc["training"].update(epochs=3, lookback=1, horizon=1, batch_size=32)
        spec = parse_spec(doc)
        result = TrainContext(check_data(spec)).run(expand(spec)[0])
        assert result.status.value == "ok", result.error
        scores[name] = result.metrics["val_mse"]
    # standardised: without the region the best one-row forecast is about the mean (mse near 1); with it, the
    # noise is what is left (1 - 0.81 = 0.19)
    assert scores["with"] < 0.5 * scores["without"], scores


def test_the_encoding_fills_what_it_cannot_encode_and_says_so() -> None:
    values = pd.DataFrame({"region": ["day", "night", "day"], "capacity": [10.0, 20.0, 30.0]},
                          index=pd.Index(["a", "b", "c"], name="station"))
    encoding = fit_encoding(values)
    assert Encoding.from_json(json.loads(json.dumps(encoding.to_json()))) == encoding  # as a model file keeps it
    new = pd.DataFrame({"region": ["coast", "hills", None, "night"], "capacity": ["big", 20.0, np.nan, 40.0]},
                       index=pd.Index(["w", "x", "y", "z"], name="station"))
    encoded, notes = encoding.encode(new)
    assert list(encoded.columns) == [*ONE_HOT, "static:capacity"]
    assert encoded.loc["z"].tolist() == pytest.approx([0.0, 1.0, (40 - 20) / np.std([10, 20, 30])])
    assert encoded.loc[["w", "x", "y"], list(ONE_HOT)].to_numpy().sum() == 0  # no category
    assert encoded.loc[["w", "y"], "static:capacity"].tolist() == [0.0, 0.0]  # the training mean
    assert notes == [
        'series "y" has no value of "region" (a static series feature): forecast with no category (all-zero one-hot) '
        "for it",
        '2 series ("w", "x") have "region" (a static series feature) values the model was not trained on (the first: '
        '"coast"; it knows "day", "night"): forecast with no category (all-zero one-hot) for it',
        'series "y" has no value of "capacity" (a static series feature): forecast with the training series\' mean '
        "(20) for it",
        'series "w" has "capacity" (a static series feature) "big", not a number: forecast with the training series\' '
        "mean (20) for it"]
