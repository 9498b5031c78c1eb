"""Many series in one spec (data.series): windows per series, per-series scaling, checks per series,
val_mase and per-series baselines; hpt final and hpt predict over a panel."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpt.baselines import period_baselines
from hpt.data import ReadOptions, read_data
from hpt.model_io import load_model
from hpt.panel import in_sample_naive_mae, mase, mase_scale, series_frames
from hpt.periods import Period
from hpt.windows import count_windows, make_windows, series_problems, window_problem
from tests.conftest import ROOT, cli_here, hpt_cli, hpt_here, trial_rows

START = pd.Timestamp("2024-01-01")
PERIOD = Period(START, START + pd.Timedelta(days=20))


def write_panel(path: Path, series: dict[str, tuple[float, int]], *, shape: str = "ramp") -> Path:
    """A long-format CSV (station, ts, y): each series `id -> (scale, hourly rows)` from 2024-01-01.

    "ramp": y is the row number times the scale (plus a series offset), so a window that ran from
    one series into the next would show a step down; "daily": a day's cycle plus a slow wobble."""
    parts = []
    for j, (sid, (scale, n)) in enumerate(series.items()):
        k = np.arange(n, dtype=np.float64)
        y = scale * k + 10_000 * (len(series) - j) if shape == "ramp" else \
            scale * (3 + np.sin(2 * np.pi * k / 24) + 0.3 * np.cos(0.37 * k))
        parts.append(pd.DataFrame({"station": sid, "ts": pd.date_range(START, periods=n, freq="h"), "y": y}))
    pd.concat(parts).sample(frac=1.0, random_state=0).to_csv(path, index=False)  # long files come in any order
    return path


def panel_spec(data: Path | str, **data_keys: Any) -> dict[str, Any]:
    return {
        "name": "panel", "architecture": "mlp",
        "data": {"path": str(data), "time_column": "ts", "target": "y", "series": "station", **data_keys},
        "date_ranges": [["2024-01-01", "2024-01-21"]],
        "search": {"strategy": "grid", "seed": 0},
        "parameters": {"lr": [0.01], "hidden_size": [8]},
        "training": {"epochs": 2, "batch_size": 64, "lookback": 24, "horizon": 2, "validation": 0.25},
        "objective": "val_mase",
    }


def read_panel(path: Path, **options: Any) -> pd.DataFrame:
    return read_data(str(path), "ts", ("y",), ReadOptions(series="station", **options)).frame


# -- windows and scaling ------------------------------------------------------------------


def test_series_ids_are_read_as_written_so_leading_zeros_stay(tmp_path: Path) -> None:
    # "007" read as the number 7 was no series a user could name: series_filter, --series and the forecasts' ids
    from hpt.static import read_series_values

    path = write_panel(tmp_path / "p.csv", {"007": (1.0, 50), "012": (2.0, 50), "100": (3.0, 50)})
    frame = read_panel(path)
    assert [sid for sid, _ in series_frames(frame)] == ["007", "012", "100"]
    assert [sid for sid, _ in series_frames(read_panel(path, series_filter=("007",)))] == ["007"]
    regions = {"007": "east", "012": "west", "100": "east"}
    table = pd.read_csv(path, dtype={"station": str}).assign(region=lambda f: f["station"].map(regions))
    table.to_csv(path, index=False)
    values = read_series_values(str(path), "station", ("region",))
    assert values.to_dict()["region"] == {"007": "east", "012": "west", "100": "east"}


def test_windows_never_cross_series_and_each_series_is_scaled_by_its_own_train_part(tmp_path: Path) -> None:
    frame = read_panel(write_panel(tmp_path / "p.csv", {"a": (1.0, 200), "b": (1000.0, 300), "c": (1.0, 150)}))
    assert [sid for sid, _ in series_frames(frame)] == ["a", "b", "c"]
    w = make_windows(frame, PERIOD, 24, 2, 0.25)
    # each series is a ramp: within it every step adds the same amount; crossing into the next series steps down
    whole = np.concatenate([w.x_train[..., 0], w.y_train], axis=1)
    steps = np.diff(whole, axis=1)
    assert (steps > 0).all()
    assert np.allclose(steps, steps[:, :1], rtol=1e-3)
    scored = np.diff(np.concatenate([w.x_val[..., 0], w.y_val], axis=1), axis=1)
    assert (scored > 0).all()
    # every window of each series alone, and no other: (rows in train - width + 1) per series
    assert len(w.y_train) == sum(round(n * 0.75) - 26 + 1 for n in (200, 300, 150))
    assert w.panel is not None and w.panel.series == ("a", "b", "c")
    # per-series scaling: each series' train part has mean 0 and std 1 in its own units, scale 1 and 1000 alike
    assert w.panel.std[1, 0] / w.panel.std[0, 0] == pytest.approx(1000 * 225 / 150, rel=0.01)  # ramps of 225 and 150 train rows
    starts = np.cumsum([0, 200, 300])
    for k, n in enumerate((200, 300, 150)):
        train = w.values[starts[k]:starts[k] + round(n * 0.75), 0]
        assert train.mean() == pytest.approx(0, abs=1e-5) and train.std() == pytest.approx(1, abs=1e-4)
    assert np.abs(w.y_val).max() < 3  # the big series' validation targets are on the small one's scale


def test_robust_scaling_scales_each_series_by_its_own_median_and_iqr_and_scores_in_standardised_units(
        tmp_path: Path) -> None:
    frame = read_panel(write_panel(tmp_path / "p.csv", {"a": (1.0, 240), "b": (1000.0, 360)}, shape="daily"))
    standard = make_windows(frame, PERIOD, 24, 2, 0.25)
    robust = make_windows(frame, PERIOD, 24, 2, 0.25, scaler="robust")
    assert robust.panel is not None and standard.panel is not None
    for k, (start, n) in enumerate(((0, 240), (240, 360))):
        train = robust.values[start:start + round(n * 0.75), 0].astype(np.float64)
        q25, median, q75 = np.quantile(train, [0.25, 0.5, 0.75])
        assert median == pytest.approx(0, abs=1e-5) and q75 - q25 == pytest.approx(1, abs=1e-4)
        # the model file's statistics put the series back in its own units: the median and IQR of its train part
        raw = frame.xs(("a", "b")[k], level="station")["y"].to_numpy()[:round(n * 0.75)]
        assert robust.panel.mean[k, 0] == pytest.approx(np.median(raw), rel=1e-5)
        assert robust.panel.std[k, 0] == pytest.approx(np.subtract(*np.quantile(raw, [0.75, 0.25])), rel=1e-4)
    # the same windows, and scored in the same standardised units as with standard scaling
    assert len(robust.y_val) == len(standard.y_val) and len(robust.y_train) == len(standard.y_train)
    assert robust.panel.standardised(robust.y_val) == pytest.approx(standard.y_val.astype(np.float64), abs=1e-4)
    # baselines in the robust windows' units score as in the standard ones
    assert robust.panel.naive_mae / standard.panel.naive_mae == pytest.approx(1 / robust.panel.unit, rel=1e-4)


def test_a_series_the_model_never_saw_is_scaled_as_the_model_was_trained() -> None:
    from hpt.model_io import TrainedModel

    rows = np.array([[1.0], [2.0], [3.0], [4.0], [100.0]])
    for scaler, mean, std in (("standard", 22.0, np.std(rows)), ("robust", 3.0, 2.0)):
        model = TrainedModel(module=None, architecture="mlp", params={"scaler": scaler}, columns=("y",), lookback=2,
                             horizon=1, mean=np.zeros(1), std=np.ones(1), trial_id="t", metrics={}, series="station",
                             series_scaling={"seen": (np.array([5.0]), np.array([7.0]))})
        one = model.for_series("new", rows)
        assert (one.series, float(one.mean[0]), float(one.std[0])) == (None, pytest.approx(mean), pytest.approx(std))
        seen = model.for_series("seen")
        assert (float(seen.mean[0]), float(seen.std[0])) == (5.0, 7.0)
    with pytest.raises(ValueError, match='series "new" was not among'):
        model.for_series("new")


def test_a_series_too_short_for_a_period_is_left_out_of_it(tmp_path: Path) -> None:
    frame = read_panel(write_panel(tmp_path / "p.csv", {"a": (1.0, 200), "short": (1.0, 30)}))
    w = make_windows(frame, PERIOD, 24, 2, 0.25)
    assert w.panel is not None and w.panel.series == ("a",)
    assert len(w.y_train) == round(200 * 0.75) - 26 + 1


def _each_series_by_hand(one: pd.DataFrame, period: Period, lookback: int, horizon: int,
                         validation: float) -> tuple[int, int, int, int, int]:
    """One series' rows in the period, gaps, missing steps, and train and validation windows without a missing
    step, counted window by window as the docs say (hourly steps; validation: the last share of the rows)."""
    times = one.index[(one.index >= period.start) & (one.index < period.end)]
    hours = np.diff(times.to_numpy()) / np.timedelta64(1, "h")
    n, width = len(times), lookback + horizon
    s = round(n * (1 - validation))
    def whole(j: int) -> bool:
        return bool(np.all(hours[j:j + width - 1] == 1))
    train = sum(whole(j) for j in range(0, s - width + 1))
    val = sum(whole(j) for j in range(max(s - lookback, 0), n - width + 1))
    return n, int((hours > 1).sum()), int((hours[hours > 1] - 1).sum()), train, val


def test_each_series_of_a_panel_is_checked_and_counted_as_it_would_be_alone(tmp_path: Path,
                                                                         write_spec: Any) -> None:
    hours = pd.date_range(START, periods=480, freq="h")
    k = np.arange(480.0)
    daily = 3 + np.sin(2 * np.pi * k / 24) + 0.01 * k
    keep_b = ~np.isin(np.arange(480), [100, 101, 102, 103, 104, 300])  # two gaps: 5 and 1 missing steps
    keep_holey = np.arange(480) % 20 != 7  # a missing step every 20 hours: no window of 26 rows
    series = {
        "a": (hours, daily),
        "b": (hours[keep_b], 2 * daily[keep_b]),
        "dup": (hours.append(hours[[50, 400]]), np.r_[daily, [99.0, -99.0]]),  # two duplicated times: the first kept
        "flat": (hours, np.zeros(480)),
        "holey": (hours[keep_holey], daily[keep_holey]),
        "late": (hours + pd.Timedelta(days=30), daily),  # no row in the period
        "short": (hours[:30], daily[:30]),
        "tail": (hours[200:], daily[200:] + 5),  # starts inside the period
    }
    pd.concat([pd.DataFrame({"station": sid, "ts": t, "y": y}) for sid, (t, y) in series.items()]).sample(
        frac=1.0, random_state=1).to_csv(tmp_path / "p.csv", index=False)
    frame = read_panel(tmp_path / "p.csv")
    alone = dict(series_frames(frame))
    lookback, horizon, validation = 24, 2, 0.25
    left_out = series_problems(frame, PERIOD, lookback, horizon, validation)
    # each series' reason is the one it would get alone, said of "it"; the series without a row in the period last
    expected = {}
    for sid, one in alone.items():
        problem = window_problem(one, PERIOD, lookback, horizon, validation)
        if problem and sid != "late":
            expected[sid] = problem.replace(f"period {PERIOD}: ", "").replace(f"period {PERIOD} ", "it ")
    expected["late"] = f"it has no data (the series covers {hours[0] + pd.Timedelta(days=30)} to " \
                       f"{hours[-1] + pd.Timedelta(days=30)})"
    assert left_out == expected
    assert list(left_out) == ["flat", "holey", "short", "late"]
    assert left_out["flat"].startswith('target "y" is constant (0) on its train part')
    assert left_out["holey"].startswith("gaps leave its train part no window of lookback 24 + horizon 2")
    assert left_out["short"].startswith("it has 30 rows, 22 before the validation split")
    # the counts: each series' windows counted by hand, summed over those left in
    by_hand = {sid: _each_series_by_hand(one, PERIOD, lookback, horizon, validation) for sid, one in alone.items()}
    assert by_hand["b"][1:3] == (2, 6) and by_hand["dup"][0] == 480 and by_hand["tail"][0] == 280
    count = count_windows(frame, PERIOD, lookback, horizon, validation)
    kept = [sid for sid in alone if sid not in left_out]
    assert kept == ["a", "b", "dup", "tail"]
    assert (count.rows, count.gaps, count.missing_steps, count.train, count.val) == tuple(
        sum(by_hand[sid][i] for sid in kept) for i in range(5))
    assert (count.series, count.left_out, count.gappy) == (4, 4, ("b",))
    for sid in kept:
        one = count_windows(alone[sid], PERIOD, lookback, horizon, validation)
        assert (one.rows, one.gaps, one.missing_steps, one.train, one.val) == by_hand[sid], sid
    # the windows: each series' own, one series after another, each scaled by its own train part
    w = make_windows(frame, PERIOD, lookback, horizon, validation)
    each = [make_windows(alone[sid], PERIOD, lookback, horizon, validation) for sid in kept]
    assert w.panel is not None and w.panel.series == tuple(kept)
    for part in ("x_train", "y_train", "x_val", "y_val"):
        assert np.array_equal(getattr(w, part), np.concatenate([getattr(e, part) for e in each])), part
    assert np.array_equal(w.panel.mean, np.stack([e.mean for e in each]))
    assert np.array_equal(w.panel.val_series, np.repeat(np.arange(4), [len(e.y_val) for e in each]))
    # hpt validate says how many series the spec tunes on
    done = cli_here("validate", str(write_spec({**panel_spec(tmp_path / "p.csv"), "objective": "val_mse"})))
    assert done.returncode == 2  # the period holds the duplicated times
    done = cli_here("validate", str(write_spec({**panel_spec(tmp_path / "p.csv", duplicates="first")})))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": ok (mlp, 1 period, 8 series)")
    assert '4 of 8 series left out of it ("flat", "holey", "short" and 1 more), the first, "flat",' in done.stderr


# -- MASE and the baselines -----------------------------------------------------------------


def test_mase_by_hand() -> None:
    # series 0: y = 0, 2, 0, 2, 4 with season 2: |0-0|, |2-2|, |4-0| -> naive MAE 4/3
    assert in_sample_naive_mae(np.array([0, 2, 0, 2, 4.0]), pd.date_range(START, periods=5, freq="h").to_numpy(),
                               pd.Timedelta("1h"), 2) == pytest.approx(4 / 3)
    # a missing hour: only lags exactly one season apart count (rows 0->2 are 3 h apart: left out)
    times = pd.DatetimeIndex([START, START + pd.Timedelta("1h"), START + pd.Timedelta("3h")]).to_numpy()
    assert np.isnan(in_sample_naive_mae(np.array([1, 5, 2.0]), times, pd.Timedelta("1h"), 2))
    # two windows of series 0 (mean abs errors 1 and 3 -> MAE 2) and one of series 1 (0.5): 2 / 4 and 0.5 / 0.25
    errors = np.array([[1.0, 1.0], [2.0, 4.0], [0.5, 0.5]])
    assert mase(errors, np.array([0, 0, 1]), np.array([4.0, 0.25])) == pytest.approx((0.5 + 2.0) / 2)
    # a series shorter than a season and a step, or exactly seasonal, is scaled by the one-step naive's MAE
    hours = pd.date_range(START, periods=4, freq="h").to_numpy()
    assert mase_scale(np.array([0, 2, 0, 2.0]), hours, pd.Timedelta("1h"), 2) == pytest.approx(2.0)
    assert mase_scale(np.array([0, 1, 3.0]), hours[:3], pd.Timedelta("1h"), 24) == pytest.approx(1.5)
    # a series with nothing to scale by is left out of the mean
    assert mase(errors, np.array([0, 0, 1]), np.array([4.0, 0.0])) == pytest.approx(0.5)


def test_baselines_are_scored_per_series_and_pooled_like_a_trial(tmp_path: Path) -> None:
    frame = read_panel(write_panel(tmp_path / "p.csv", {"a": (1.0, 240), "b": (1000.0, 360)}, shape="daily"))
    pooled = period_baselines(frame, PERIOD, 24, 2, 0.25, season=24)
    alone = {sid: period_baselines(one, PERIOD, 24, 2, 0.25, season=24) for sid, one in series_frames(frame)}
    n = {sid: len(make_windows(one, PERIOD, 24, 2, 0.25).y_val) for sid, one in series_frames(frame)}
    for name in ("naive-last", "naive-seasonal"):
        # the pooled standardised MSE is the series' own, weighted by their windows: the big one does not drown the small
        expected = sum(n[s] * alone[s][name]["val_mse"] for s in n) / sum(n.values())
        assert pooled[name]["val_mse"] == pytest.approx(expected)
    # val_mase: each series' MAE over its own in-sample seasonal-naive MAE, averaged over the series
    w = make_windows(frame, PERIOD, 24, 2, 0.25)
    assert w.panel is not None
    for name in ("naive-last", "naive-seasonal"):
        by_hand = np.mean([alone[s][name]["val_mae"] / w.panel.naive_mae[k] for k, s in enumerate(("a", "b"))])
        assert pooled[name]["val_mase"] == pytest.approx(by_hand)


# -- through the CLI -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tuned_panel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A panel of three series (scales 1 and 1,000, and one too short) tuned once with `hpt run` on its first
    20 days; two more days are left for a final's hold-out."""
    folder = tmp_path_factory.mktemp("panel")
    data = write_panel(folder / "stations.csv", {"small": (1.0, 528), "big": (1000.0, 528), "short": (1.0, 30)},
                       shape="daily")
    spec = folder / "panel.json"
    spec.write_text(json.dumps(panel_spec(data)))
    done = hpt_cli("run", str(spec), "--sink", str(folder / "results"), "--workers", "1", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '1 of 3 series left out of it ("short") because it has 30 rows' in done.stderr
    return folder / "results"


def test_run_and_results_over_a_panel(tuned_panel: Path) -> None:
    table = pd.read_csv(tuned_panel / "results.csv")
    trials = trial_rows(table)
    assert list(trials["status"]) == ["ok"]
    assert trials["val_mase"].notna().all() and trials["val_mse"].notna().all()
    baselines = table[table["architecture"].str.startswith("naive-")]
    assert sorted(baselines["architecture"]) == ["naive-last", "naive-seasonal"]
    assert baselines["val_mase"].notna().all()
    record = json.loads(next((tuned_panel / "runs").glob("*.json")).read_text())
    period = record["data"]["periods"]["2024-01-01..2024-01-21"]
    # 2 series of 480 hourly rows: 360 train rows -> 335 windows each, none across the two
    assert (period["series"], period["series_left_out"], period["train_windows"]) == (2, 1, 670)
    shown = hpt_here("results", str(tuned_panel))
    assert shown.exit_code == 0, shown.output
    assert "metric val_mase" in shown.output and "seasonal" in shown.output


@pytest.fixture(scope="module")
def final_panel(tuned_panel: Path) -> tuple[Path, dict[str, Any], str]:
    """`hpt final` of the tuned panel on a 2-day hold-out: its model, report.json and printed report."""
    report = tuned_panel.parent / "report.json"
    done = hpt_here("final", str(tuned_panel), "--holdout", "2D", "--report", str(report))
    assert done.exit_code == 0, done.output
    doc = json.loads(report.read_text())
    return Path(doc["uris"]["model"]), doc, done.output


def test_final_says_nothing_of_the_tuning_periods_it_does_not_train_on(tuned_panel: Path, tmp_path: Path) -> None:
    """The run warned that "short" is left out of the tuning period; the final trains on a span of its own and
    says what it leaves out there, not the tuning period's warning again."""
    done = hpt_cli("final", str(tuned_panel), "--holdout", "2D", "--report", str(tmp_path / "report.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "left out of it" not in done.stderr and "period 2023" not in done.stderr, done.stderr
    assert json.loads((tmp_path / "report.json").read_text())["panel"]["left_out"] == ["short"]


def test_a_holdout_shorter_than_the_horizon_is_refused_as_such(tuned_panel: Path) -> None:
    # hourly data, horizon 2: an hour's hold-out holds no forecast; said of the hold-out, not of the training window
    done = hpt_cli("final", str(tuned_panel), "--holdout", "1h")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().endswith("(--holdout 1h): 1 step of data, fewer than the config's horizon of 2: no "
                                        "forecast fits in it; give a hold-out of at least 2 steps (2h)"), done.stderr


def test_final_over_a_panel_reports_mase_the_share_beating_seasonal_naive_and_the_worst_series(
        final_panel: tuple[Path, dict[str, Any], str]) -> None:
    model, doc, output = final_panel
    assert doc["panel"] == {"column": "station", "series": 2, "left_out": ["short"]}
    assert doc["train"]["target_mean"] is None and doc["train"]["target_std"] is None  # each series has its own
    assert doc["holdout"]["windows"] == 2 * (48 - 2 + 1)  # each series' 48 hold-out hours, none across the two
    scored = doc["models"][0]
    series = scored["series"]
    assert series["series"] == 2 and 0 <= series["beats_seasonal"] <= 2
    assert series["beats_seasonal_share"] == pytest.approx(series["beats_seasonal"] / 2)
    assert [w["series"] for w in series["worst"]] and {w["series"] for w in series["worst"]} == {"small", "big"}
    assert all(w["windows"] == 47 for w in series["worst"])
    mases = [w["mase"] for w in series["worst"]]
    assert mases == sorted(mases, reverse=True)  # the worst first
    # the panel's MASE is the mean of the series'; the baselines have theirs on the same windows
    assert scored["metrics"]["mase"] == pytest.approx(np.mean(mases))
    assert set(doc["baselines"]) == {"naive-last", "naive-seasonal"}
    assert all("mase" in b["metrics"] for b in doc["baselines"].values())
    # in data units each series is put back in its own: the big one's errors are in the thousands' units
    assert scored["metrics"]["mae"] > 10 * scored["standardised"]["mae"]
    assert f"beats seasonal naive on {series['beats_seasonal']} of 2 series" in output
    assert '1 left out (no window in the training span or the hold-out: "short")' in output
    assert "worst:" in output and '"big" MASE' in output and "MASE " in output
    index = pd.read_csv(model.parents[1] / "index.csv")
    assert index["mase"].iloc[-1] == pytest.approx(scored["metrics"]["mase"])
    assert index["beats_seasonal_share"].iloc[-1] == pytest.approx(series["beats_seasonal_share"])


def test_predict_forecasts_every_series_of_the_file_each_in_its_own_units(
        tuned_panel: Path, final_panel: tuple[Path, dict[str, Any], str], tmp_path: Path) -> None:
    model, _, _ = final_panel
    data = tuned_panel.parent / "stations.csv"
    out = tmp_path / "forecasts.csv"
    done = hpt_here("predict", str(model), "--data", str(data), "--last", "--out", str(out))
    assert done.exit_code == 0, done.output
    table = pd.read_csv(out)
    assert list(table.columns) == ["series", "timestamp", "horizon_step", "prediction"]
    assert sorted(set(table["series"])) == ["big", "short", "small"]
    last = table[table["series"] == "big"]
    assert list(last["timestamp"]) == ["2024-01-23 00:00:00", "2024-01-23 01:00:00"]  # after the file's last row
    # the two series have one shape at scales 1 and 1,000: each scaled by its own statistics, one forecast
    small = table.loc[table["series"] == "small", "prediction"].to_numpy()
    assert last["prediction"].to_numpy() == pytest.approx(1000 * small, rel=1e-4)
    # the Python API gives the same: the model for one series, as a single series' model
    loaded = load_model(model)
    assert loaded.series == "station" and set(loaded.series_scaling) == {"small", "big"}
    frame = read_panel(data)
    big_rows = frame.xs("big", level="station")
    assert loaded.for_series("big").predict(big_rows) == pytest.approx(last["prediction"].to_numpy(), rel=1e-6)
    with pytest.raises(ValueError, match="trained on many series"):
        loaded.predict(big_rows)
    # --series: only those; every window of them without --last
    some = hpt_here("predict", str(model), "--data", str(data), "--series", "small", "--out", str(out))
    assert some.exit_code == 0, some.output
    rows = pd.read_csv(out)
    assert set(rows["series"]) == {"small"} and len(rows) == 2 * (528 - 24 + 1)


def _predict_last(model: Path, data: Path, series: dict[str, tuple[float, int]]) -> tuple[Any, pd.DataFrame]:
    """hpt predict --last of a daily-shaped panel of `series` (id -> (scale, hourly rows)) written to `data`."""
    write_panel(data, series, shape="daily")
    done = cli_here("predict", str(model), "--data", str(data), "--last")
    assert done.returncode == 0, done.stderr
    return done, pd.read_csv(io.StringIO(done.stdout))


def test_predict_forecasts_a_series_the_model_never_saw_with_a_warning(
        final_panel: tuple[Path, dict[str, Any], str], tmp_path: Path) -> None:
    done, table = _predict_last(final_panel[0], tmp_path / "new.csv", {"small": (1.0, 200), "fresh": (10.0, 200)})
    assert ('series "fresh" is not among the 2 series the model was trained on: forecast by the global model, '
            "scaled by its own rows in") in done.stderr
    fresh, small = (table.loc[table["series"] == s, "prediction"].to_numpy() for s in ("fresh", "small"))
    assert fresh == pytest.approx(10 * small, rel=0.05)  # its own scale: 10 times the small one's


def test_predict_last_says_which_series_end_before_the_others(
        final_panel: tuple[Path, dict[str, Any], str], tmp_path: Path) -> None:
    model, data = final_panel[0], tmp_path / "new.csv"
    done, table = _predict_last(model, data, {"small": (1.0, 200), "big": (1000.0, 150)})
    assert ('warning: --last: series "big" ends before the latest series\' last row (2024-01-09 07:00:00), so forecast '
            "from its own last row") in done.stderr
    assert table.groupby("series")["timestamp"].min().to_dict() == {"big": "2024-01-07 06:00:00",
                                                                     "small": "2024-01-09 08:00:00"}
    same = cli_here("predict", str(model), "--data", str(data), "--last", "--series", "small")
    assert same.returncode == 0 and "--last:" not in same.stderr  # one series: nothing to compare


@pytest.mark.parametrize(("change", "says"), [
    ("drop", 'lacks the series column "station"'),
    ("drop both", 'lacks the series column "station" (data.series: the model was trained on many series and forecasts '
                  'each one) and "y" (it has: ts)'),
    ("unknown", '--series: no series "nowhere" in column "station"'),
    ("duplicate", 'new.csv holds 1 duplicated timestamp in "ts" of 1 series ("small") (first: 2024-01-02 20:00:00 in '
                  'series "small", rows 101 and 102): a forecast takes one row per series and time; remove them'),
])
def test_predict_refuses_a_file_without_the_series_column_an_unknown_series_or_a_duplicated_time(
        final_panel: tuple[Path, dict[str, Any], str], tmp_path: Path, change: str, says: str) -> None:
    model, _, _ = final_panel
    data = write_panel(tmp_path / "new.csv", {"small": (1.0, 100)}, shape="daily")
    extra: tuple[str, ...] = ()
    if change.startswith("drop"):
        pd.read_csv(data).drop(columns=["station", "y"] if change == "drop both" else "station").to_csv(data, index=False)
    elif change == "duplicate":  # its last day twice, another value first: no forecast from either silently
        rows = pd.read_csv(data)
        pd.concat([rows, rows.tail(1).assign(value=99999.0)]).to_csv(data, index=False)
    else:
        extra = ("--series", "nowhere")
    done = hpt_here("predict", str(model), "--data", str(data), *extra)
    assert done.exit_code == 2
    errors = [line for line in done.output.splitlines() if line.startswith("hpt: error")]
    assert len(errors) == 1 and says in errors[0], done.output


def test_a_panel_tunes_with_the_robust_scaler_beside_the_standard_one(tmp_path: Path, write_spec: Any) -> None:
    data = write_panel(tmp_path / "p.csv", {"a": (1.0, 480), "b": (1000.0, 480)}, shape="daily")
    doc = panel_spec(data)
    doc["parameters"] = {"scaler": ["standard", "robust"]}
    done = hpt_here("run", str(write_spec(doc)), "--sink", str(tmp_path / "results"), "--workers", "1")
    assert done.exit_code == 0, done.output
    table = pd.read_csv(tmp_path / "results" / "results.csv")
    trials = trial_rows(table)
    assert sorted(trials["param_scaler"]) == ["robust", "standard"] and list(trials["status"]) == ["ok", "ok"]
    # both scored in each series' standardised units: the same scale as each other and the baselines'
    naive = table.loc[table["architecture"] == "naive-last", "val_mse"].iloc[0]
    assert (trials["val_mse"] < 10 * naive).all() and trials["val_mase"].notna().all()


def test_validate_names_the_series_with_duplicates(tmp_path: Path, write_spec: Any) -> None:
    data = write_panel(tmp_path / "p.csv", {"a": (1.0, 480), "b": (1.0, 480)})
    frame = pd.read_csv(data)
    frame = pd.concat([frame, frame[(frame["station"] == "b") & (frame["ts"] == "2024-01-03 05:00:00")]])
    frame.to_csv(data, index=False)
    done = hpt_here("validate", str(write_spec(panel_spec(data))))
    assert done.exit_code == 2
    error = [line for line in done.output.splitlines() if "duplicated" in line]
    assert len(error) == 1
    assert 'holds 1 duplicated timestamp in "ts" of 1 series ("b")' in error[0]
    assert 'first: 2024-01-03 05:00:00 in series "b"' in error[0]
    merged = hpt_here("validate", str(write_spec(panel_spec(data, duplicates="mean"))))
    assert merged.exit_code == 0, merged.output


def test_series_filter_tunes_on_a_subset(tmp_path: Path, write_spec: Any) -> None:
    data = write_panel(tmp_path / "p.csv", {"a": (1.0, 480), "b": (1.0, 480), "short": (1.0, 30)})
    frame = read_panel(data, series_filter=("a", "b"))
    assert sorted(set(frame.index.get_level_values(0))) == ["a", "b"]
    done = hpt_here("validate", str(write_spec(panel_spec(data, series_filter=["a", "b"]))))
    assert done.exit_code == 0, done.output


@pytest.mark.parametrize(("change", "where", "says"), [
    ({"data": {"series": "place"}}, "data.series", 'no column "place"'),
    ({"data": {"series": "y"}}, "data.series", "\"y\" is already the target (data.target)"),
    ({"data": {"series_filter": ["a", "nowhere"]}}, "data.series_filter", 'no series "nowhere"'),
    ({"data": {"series": None, "series_filter": ["a"]}}, "data.series_filter", "needs data.series"),
    ({"data": {"series": None}}, "objective", "val_mase is scored over many series: it needs data.series"),
])
def test_panel_spec_errors_are_one_line(tmp_path: Path, write_spec: Any, change: dict[str, Any], where: str,
                                        says: str) -> None:
    doc = panel_spec(write_panel(tmp_path / "p.csv", {"a": (1.0, 480)}))
    for section, keys in change.items():
        doc[section] = {k: v for k, v in {**doc[section], **keys}.items() if v is not None}
    done = hpt_here("validate", str(write_spec(doc)))
    assert done.exit_code == 2
    errors = [line for line in done.output.splitlines() if line.startswith("hpt: error")]
    assert len(errors) == 1, done.output
    assert where in errors[0] and says in errors[0], errors[0]


def test_a_panel_read_from_a_bucket_with_results_streamed_to_it(s3_server: Any, tmp_path: Path,
                                                                 write_spec: Any) -> None:
    bucket = s3_server.create_bucket()
    data = write_panel(tmp_path / "stations.csv", {"a": (1.0, 480), "b": (1000.0, 480)}, shape="daily")
    s3_server.put(bucket, "data/stations.csv", data.read_bytes())
    env = {**s3_server.client_env(), "HPT_SINK_RETRIES": "2", "HPT_SINK_TIMEOUT": "5"}
    spec = write_spec(panel_spec(f"s3://{bucket}/data/stations.csv"))
    done = hpt_cli("run", str(spec), "--sink", f"s3://{bucket}/results", "--workers", "1", env=env)
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(io.BytesIO(s3_server.get(bucket, "results/results.csv")))
    assert list(trial_rows(table)["status"]) == ["ok"] and table["val_mase"].notna().all()


def test_validate_counts_and_names_the_series_with_gaps_and_constant_targets(tmp_path: Path,
                                                                            write_spec: Any) -> None:
    data = write_panel(tmp_path / "p.csv", {"a": (1.0, 480), "b": (1.0, 480), "flat": (0.0, 480)}, shape="daily")
    frame = pd.read_csv(data)
    hole = (frame["station"] == "b") & frame["ts"].between("2024-01-05 00:00:00", "2024-01-05 04:00:00")
    frame[~hole].to_csv(data, index=False)
    done = cli_here("validate", str(write_spec(panel_spec(data))))
    assert done.returncode == 0, done.stderr
    assert ('1 of 3 series left out of it ("flat") because target "y" is constant (0) on its train part'
            in done.stderr)
    assert "1 gap in 1 series (\"b\") (5 missing steps of 1h)" in done.stderr


def test_the_bundled_panel_demo_is_what_its_generator_makes_and_its_spec_validates() -> None:
    from tests.make_stations import OUT, csv_text

    assert OUT.read_text(encoding="utf-8") == csv_text()
    done = hpt_here("validate", str(ROOT / "specs" / "panel.json"))
    assert done.exit_code == 0, done.output
    # daily data: the warning about the station that opened later gives dates, not midnights
    assert '("harbour") because it has no data (the series covers 2023-11-01 to 2024-12-31)' in done.output, done.output


def test_a_period_no_series_gives_a_window_is_refused(tmp_path: Path, write_spec: Any) -> None:
    data = write_panel(tmp_path / "p.csv", {"a": (1.0, 30), "b": (1.0, 24)})
    done = hpt_here("validate", str(write_spec({**panel_spec(data), "date_ranges": [["2024-01-01", "2024-01-02"]]})))
    assert done.exit_code == 2
    errors = [line for line in done.output.splitlines() if line.startswith("hpt: error")]
    assert len(errors) == 1, done.output
    assert 'date_ranges[0]: period 2024-01-01..2024-01-02: none of the 2 series gives it a window (the first, "a": ' \
           "it has 24 rows" in errors[0]
