"""Naive baselines: hand-checked figures, and their rows in a run as a user sees them."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from hpt.backends.fake import FakeBackend, Script
from hpt.baselines import naive_forecasts, period_baselines, season_length
from hpt.cli import main
from hpt.periods import Period
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.spec import load_spec
from hpt.trial import Trial
from tests.conftest import tiny_spec


def _hourly(values: Any, start: str = "2013-01-01") -> pd.DataFrame:
    index = pd.date_range(start, periods=len(values), freq="h")
    return pd.DataFrame({"y": np.asarray(values, dtype=float)}, index=index)


def _whole(frame: pd.DataFrame) -> Period:
    return Period(frame.index[0], frame.index[-1] + pd.Timedelta(hours=1))


def test_hand_computed_persistence_and_seasonal_naive_on_a_tiny_series() -> None:
    # 12 rows, validation 0.25: train rows 0..8, targets of the 3 validation windows at rows 9, 10, 11
    frame = _hourly([1, 3, 2, 5, 4, 6, 3, 7, 8, 6, 9, 10])
    # train mean 39/9, variance 44/9; persistence forecasts 8, 6, 9 for 6, 9, 10: errors 2, -3, -1
    # -> mse (4 + 9 + 1) / 3 = 14/3 in data units, (14/3) / (44/9) = 21/22 standardised
    got = period_baselines(frame, _whole(frame), lookback=2, horizon=1, validation=0.25, season=2)
    assert got["naive-last"]["val_mse"] == pytest.approx(21 / 22, rel=1e-6)
    assert got["naive-last"]["val_mae"] == pytest.approx(2 / (44 / 9) ** 0.5, rel=1e-6)
    # season 2: the value two steps before each target: 7, 8, 6 for 6, 9, 10 -> errors 1, -1, -4 -> 18/3 = 6
    assert got["naive-seasonal"]["val_mse"] == pytest.approx(6 / (44 / 9), rel=1e-6)
    assert got["naive-seasonal"]["val_rmse"] == pytest.approx((6 / (44 / 9)) ** 0.5, rel=1e-6)


def test_seasonal_naive_never_looks_past_the_window_and_repeats_the_last_season_over_long_horizons() -> None:
    frame = _hourly(np.arange(10.0))
    ends = frame.index[[5]].to_numpy()
    got = naive_forecasts(frame["y"], ends, horizon=5, step=pd.Timedelta(hours=1), season=2)
    assert got["naive-last"].tolist() == [[5, 5, 5, 5, 5]]
    assert got["naive-seasonal"].tolist() == [[4, 5, 4, 5, 4]]  # steps 6..10 from the last season 4, 5


def test_seasonal_naive_takes_the_row_within_half_a_step_and_falls_back_to_the_last_value_across_a_gap() -> None:
    """Irregular times: a row up to half a step off the seasonal time stands for it (the later of two as near);
    a gap, or a time before the series, leaves the last value; a window end that is no row is refused."""
    h = pd.Timedelta(hours=1)
    times = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:20", "2024-01-01 01:40", "2024-01-01 05:00",
                              "2024-01-01 06:00", "2024-01-01 07:00", "2024-01-01 08:00"])
    target = pd.Series([10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0], index=times)
    got = naive_forecasts(target, times[[4, 6]].to_numpy(), horizon=2, step=h, season=5)
    # end 06:00 looks back to 02:00 (01:40 is 20 min off: 12) and 03:00 (no row within 30 min: the last value, 14);
    # end 08:00 to 04:00 (none: 16) and 05:00 (13)
    assert got["naive-seasonal"].tolist() == [[12.0, 14.0], [16.0, 13.0]]
    assert got["naive-last"].tolist() == [[14.0, 14.0], [16.0, 16.0]]
    before = naive_forecasts(target, times[[3]].to_numpy(), horizon=1, step=h, season=5)
    assert before["naive-seasonal"].tolist() == [[11.0]]  # 06:00 - 5 h = 01:00: 01:20, the row 20 min after it
    tie = naive_forecasts(target, times[[3]].to_numpy(), horizon=1, step=pd.Timedelta(minutes=30), season=8)
    assert tie["naive-seasonal"].tolist() == [[12.0]]  # 05:30 - 240 min = 01:30: 01:20 and 01:40 as near, the later
    early = naive_forecasts(target, times[[0]].to_numpy(), horizon=1, step=h, season=3)
    assert early["naive-seasonal"].tolist() == [[10.0]]  # before the series: the last value
    with pytest.raises(ValueError, match="not a time of the series"):
        naive_forecasts(target, np.array(["2024-01-01 02:00"], dtype="datetime64[ns]"), horizon=1, step=h, season=1)


def test_season_from_the_step_or_data_season() -> None:
    assert season_length(pd.Timedelta(hours=1)) == 24
    assert season_length(pd.Timedelta(minutes=30)) == 48
    assert season_length(pd.Timedelta(days=1)) == 7
    assert season_length(pd.Timedelta(hours=1), season=168) == 168


def test_daily_sine_seasonal_naive_is_exact_and_persistence_is_not() -> None:
    frame = _hourly(np.sin(2 * np.pi * np.arange(24 * 20) / 24))
    got = period_baselines(frame, _whole(frame), lookback=48, horizon=3, validation=0.25)  # season 24 from the step
    assert got["naive-seasonal"]["val_mse"] < 1e-10
    # persistence misses by sin(x + k*15deg) - sin(x): standardised mse 2(1 - cos(k*15deg)) averaged over k=1..3
    expected = np.mean([2 * (1 - np.cos(2 * np.pi * k / 24)) for k in (1, 2, 3)])
    assert got["naive-last"]["val_mse"] == pytest.approx(expected, rel=0.02)
    assert got["naive-last"]["val_mse"] > 0.1


def test_random_walk_persistence_beats_seasonal_naive() -> None:
    frame = _hourly(np.random.default_rng(0).standard_normal(24 * 60).cumsum())
    got = period_baselines(frame, _whole(frame), lookback=24, horizon=1, validation=0.25)
    # one step of noise against 24 steps of it
    assert got["naive-last"]["val_mse"] * 5 < got["naive-seasonal"]["val_mse"]


def _write_data(path: Path, bump: float = 0.0) -> None:
    """Four weeks of hourly daily-sine data with noise; `bump` changes one value in the second period."""
    index = pd.date_range("2013-01-01", "2013-01-29", freq="h", inclusive="left")
    y = np.sin(2 * np.pi * np.arange(len(index)) / 24) + np.random.default_rng(1).normal(0, 0.1, len(index))
    y[index.get_loc(pd.Timestamp("2013-01-20 05:00"))] += bump
    pd.DataFrame({"ts": index.strftime("%Y-%m-%d %H:%M"), "y": y}).to_csv(path, index=False)


def _rows(sink: Path) -> pd.DataFrame:
    return pd.DataFrame([json.loads(p.read_text()) for p in sorted((sink / "rows").glob("*.json"))])


def test_a_real_run_logs_baselines_apart_from_the_trials_and_records_infer_ms(
        write_spec: Any, cli: Any, tmp_path: Path) -> None:
    data = tmp_path / "sine.csv"
    _write_data(data)
    spec = write_spec(_sine_spec(data))
    sink = tmp_path / "res"
    plan = CliRunner().invoke(main, ["run", str(spec), "--dry-run"], catch_exceptions=False)
    assert ("baselines: naive-last and naive-seasonal (season 24 from the 1h step): 4 rows = 2 x 2 periods on the "
            "trials' validation windows (not trials)") in plan.output

    out = cli("run", str(spec), "--sink", str(sink), "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert re.search(r"^baselines: naive-last and naive-seasonal \(season 24 from the 1h step\): 4 rows computed in "
                     r"\d+ ms \(not trials\)$", out.stdout, re.M), out.stdout
    assert "[2/2] " in out.stdout and "[3/" not in out.stdout  # the progress counts trials only
    rows = _rows(sink)
    base = rows[rows["architecture"].str.startswith("naive-")]
    assert sorted(base["architecture"]) == ["naive-last", "naive-last", "naive-seasonal", "naive-seasonal"]
    assert set(base["status"]) == {"ok"} and set(base["model_uri"]) == {""}
    assert len(list((sink / "models").glob("*.pt"))) == 2  # the trials' models only
    assert base.groupby("architecture")["period_start"].nunique().tolist() == [2, 2]
    # noisy daily sine: seasonal naive (the noise of two hours) beats persistence (the sine's own step)
    seasonal = base[base["architecture"] == "naive-seasonal"]["val_mse"]
    last = base[base["architecture"] == "naive-last"]["val_mse"]
    assert (seasonal.to_numpy() < last.to_numpy()).all()
    trials = rows[rows["architecture"] == "mlp"]
    assert (trials["infer_ms"] > 0).all() and (trials["n_params"] > 0).all()
    assert base["infer_ms"].isna().all() and base["n_params"].isna().all()
    with (sink / "results.csv").open(newline="") as f:  # the times as written: no float noise (0.0021000000000000003)
        written = [r["train_time_s"] for r in csv.DictReader(f) if r["architecture"].startswith("naive-")]
    assert len(written) == 4 and all(len(t.partition(".")[2]) <= 6 for t in written), written
    # two epochs of an mlp do not beat seasonal naive on a sine: the end of the run says so
    assert "warning: the best config does not beat the seasonal naive forecast: +" in out.stdout
    assert "vs seasonal naive on val_mse, better in 0 of 2 periods" in out.stdout  # judged on the objective

    shown = CliRunner().invoke(main, ["results", str(sink)], catch_exceptions=False)
    assert shown.exit_code == 0
    assert "2 trials (2 ok) and 4 naive baseline rows" in shown.output
    assert "\nwarning: the best config " in shown.output


def _sine_spec(data: Path, **overrides: Any) -> dict[str, Any]:
    return tiny_spec(**{"data": {"path": str(data)}, "parameters": {"lr": [0.01], "hidden_size": [8]},
                        "date_ranges": [["2013-01-01", "2013-01-14"], ["2013-01-14", "2013-01-29"]],
                        "training": {"epochs": 2}, **overrides})


def test_one_baseline_per_window_setting_and_period_never_twice_and_again_when_the_data_changes(
        write_spec: Any, tmp_path: Path) -> None:
    data = tmp_path / "sine.csv"
    _write_data(data)
    spec = load_spec(write_spec(_sine_spec(data, parameters={"lr": [0.01, 0.1], "horizon": [1, 3]})))
    sink = str(tmp_path / "res")
    lines: list[str] = []
    summary = run_spec(spec, RunOptions(sink=sink), _Lines(lines), backend=FakeBackend(_script, slots=2))
    assert summary.counts == {"ok": 8}  # 2 lr x 2 horizons x 2 periods; baselines are not trials
    rows = _rows(Path(sink))
    base = rows[rows["architecture"].str.startswith("naive-")]
    assert len(base) == 8  # 2 baselines x 2 periods x 2 horizons
    assert sorted(base.groupby("param_horizon").size().items()) == [(1, 4), (3, 4)]
    assert "param_lr" not in base or base["param_lr"].isna().all()
    assert base["trial_id"].is_unique and base.groupby("architecture")["config_id"].nunique().tolist() == [2, 2]
    assert any(x.startswith("baselines: naive-last and naive-seasonal (season 24 from the 1h step): 8 rows computed in")
               for x in lines), lines

    again = FakeBackend(_script, slots=2)
    summary = run_spec(spec, RunOptions(sink=sink), _Lines(lines), backend=again)
    assert summary.skipped == 8 and again.log == []  # baseline rows are not trials to skip either
    assert [x for x in lines if x.startswith("baselines:")][-1].endswith(": already at the location (not trials)")
    assert _rows(Path(sink)).equals(rows)

    _write_data(data, bump=5.0)  # period 2's data changes: its trials and baselines run again, period 1's do not
    spec = load_spec(write_spec(_sine_spec(data, parameters={"lr": [0.01, 0.1], "horizon": [1, 3]})))
    summary = run_spec(spec, RunOptions(sink=sink), _Lines(lines), backend=FakeBackend(_script, slots=2))
    assert summary.skipped == 4 and summary.counts == {"ok": 4}
    after = _rows(Path(sink))
    new = after[~after["trial_id"].isin(rows["trial_id"])]
    assert set(new["period_start"]) == {"2013-01-14"}
    assert sorted(new["architecture"].value_counts().items()) == [("mlp", 4), ("naive-last", 2), ("naive-seasonal", 2)]


def test_a_window_setting_drawn_during_the_run_gets_its_baselines_when_its_first_trial_ends(
        write_spec: Any, tmp_path: Path) -> None:
    data = tmp_path / "sine.csv"
    _write_data(data)
    spec = load_spec(write_spec(_sine_spec(data, parameters={"lookback": {"int": [12, 48]}},
                                           search={"strategy": "random", "max_trials": 3, "seed": 0})))
    sink = str(tmp_path / "res")
    run_spec(spec, RunOptions(sink=sink), _Lines([]), backend=FakeBackend(_script))
    rows = _rows(Path(sink))
    trials = rows[rows["architecture"] == "mlp"]
    base = rows[rows["architecture"].str.startswith("naive-")]
    assert set(base["param_lookback"]) == set(trials["param_lookback"])
    assert len(base) == 2 * 2 * trials["param_lookback"].nunique()


class _Lines(Reporter):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(quiet=True)
        self.lines = lines

    def line(self, text: str) -> None:
        self.lines.append(text)


def _script(trial: Trial) -> Script:
    return Script(curve=[1.0, 0.5])


def test_a_run_that_starts_beside_another_neither_recomputes_nor_warns_about_its_baselines(
        write_spec: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Run A stores everything while run B is starting (after B read the location's rows): B finds A's
    baseline rows, computes and announces none, and its end summary counts A's rows."""
    data = tmp_path / "sine.csv"
    _write_data(data)
    spec = load_spec(write_spec(_sine_spec(data, parameters={"lr": [0.01, 0.1]})))
    sink = str(tmp_path / "res")
    first: list[str] = []

    class _OtherRunFirst(_Lines):  # B's first line comes after it read the rows, before its baselines
        def line(self, text: str) -> None:
            if not first:
                run_spec(spec, RunOptions(sink=sink), _Lines(first), backend=FakeBackend(_script, slots=1))
            super().line(text)

    lines: list[str] = []
    with caplog.at_level("WARNING", logger="hpt"):
        summary = run_spec(spec, RunOptions(sink=sink), _OtherRunFirst(lines), backend=FakeBackend(_script, slots=1))
    assert any(x.endswith("4 rows computed in " + x.split(" computed in ")[-1]) for x in first if "baselines:" in x)
    assert [x for x in lines if x.startswith("baselines:")] == [
        "baselines: naive-last and naive-seasonal (season 24 from the 1h step): already at the location (not trials)"]
    assert not [r.message for r in caplog.records if "is kept" in r.getMessage()]
    base = _rows(Path(sink)).query("architecture.str.startswith('naive-')", engine="python")
    assert len(base) == 4 and base["run_id"].nunique() == 1 and base["run_id"].iloc[0] != summary.run_id
    assert summary.counts == {} and summary.best is not None and summary.best.periods_run == 2  # A's rows count


def test_two_runs_started_together_on_one_location_store_each_baseline_once_without_a_warning(
        write_spec: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    data = tmp_path / "sine.csv"
    _write_data(data)
    spec = write_spec(_sine_spec(data, parameters={"lr": [0.01, 0.1]}))
    sink = tmp_path / "res"
    command = [sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--workers", "1"]
    procs = [subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for _, stderr in outs:
        assert "is kept" not in stderr and "warning: trial" not in stderr, stderr
        assert "Traceback" not in stderr
    base = _rows(sink).query("architecture.str.startswith('naive-')", engine="python")
    assert len(base) == 4 and base["trial_id"].is_unique
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "warning: trial" not in again.stderr
    assert "baselines: naive-last and naive-seasonal (season 24 from the 1h step): already at the location " \
           "(not trials)" in again.stdout
    assert _rows(sink).query("architecture.str.startswith('naive-')", engine="python").equals(base)


def test_a_config_is_compared_with_its_own_baselines_beside_runs_of_another_horizon_or_target(
        write_spec: Any, tmp_path: Path) -> None:
    """One location, three specs that tune nothing of the windows: horizon 1, horizon 4, and another target.
    Each config's "vs naive" stays what it was with its own spec's baselines alone."""
    data = tmp_path / "sine.csv"
    _write_data(data)
    frame = pd.read_csv(data)
    frame["z"] = np.exp(2 * frame["y"])  # another target in the same file (not y rescaled: other standardised errors)
    frame.to_csv(data, index=False)
    sink = tmp_path / "res"

    def vs(config: str) -> dict[str, Any]:
        doc = json.loads(CliRunner().invoke(main, ["results", str(sink), "--format", "json", "--top", "0"]).output)
        return next(c["vs_baseline"] for c in doc["rankings"]["full"]["configs"] if c["config_id"] == config)

    def run(**overrides: Any) -> str:
        """The config the spec trains (one)."""
        before = set(_rows(sink)["config_id"]) if sink.exists() else set()
        doc = _sine_spec(data, **{k: v for k, v in overrides.items() if k != "data"})
        doc["data"].update(overrides.get("data", {}))
        spec = write_spec(doc)
        done = CliRunner().invoke(main, ["run", str(spec), "--sink", str(sink), "--workers", "1"],
                                  catch_exceptions=False)
        assert done.exit_code == 0, done.output
        rows = _rows(sink)
        (config,) = set(rows[rows["architecture"] == "mlp"]["config_id"]) - before
        return str(config)

    first = run(name="h1")
    alone = vs(first)
    second = run(name="h4", training={"epochs": 2, "horizon": 4})
    assert vs(second)["baseline_mean"] != alone["baseline_mean"]  # four steps ahead: other baseline errors
    assert vs(first) == alone
    run(name="z", data={"target": "z"}, parameters={"lr": [0.02], "hidden_size": [8]})
    assert vs(first) == alone
    rows = pd.read_csv(sink / "results.csv")
    assert rows["baseline_key"].notna().all() and rows["baseline_key"].nunique() == 3  # one per spec's windows
    # hpt results says the three are ranked together though their parameters look alike, and how to take one
    shown = CliRunner().invoke(main, ["results", str(sink)]).output
    key = rows.loc[rows["config_id"] == first, "baseline_key"].iloc[0]
    assert "3 data or window settings are ranked together" in shown
    one = CliRunner().invoke(main, ["results", str(sink), "--where", f"baseline_key == '{key}'", "--format", "json"])
    doc = json.loads(one.stdout)
    assert [c["config_id"] for c in doc["full"]["configs"]] == [first] and doc["notes"] == []
