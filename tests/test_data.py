"""Data: parsing, sorting, missing values, and windows without look-ahead."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpt.data import DataError, ReadOptions, load_frame, read_data, resolve_data_path
from hpt.periods import Period
from hpt.spec import check_data, data_report, load_spec
from hpt.windows import count_windows, infer_step, make_windows, window_report
from tests.conftest import ROOT, cli_here, hpt_cli, tiny_spec, trial_rows

SHARED_WEATHER = ROOT / "tests" / "data" / "seattle_weather_daily.csv"
DEMO = ROOT / "hpt" / "demo" / "electricity_hourly.csv"


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI in this process here: these checks are of what `hpt validate` says about data, not of the process
    (the bucket test runs it as a process: the cloud clients' settings come from its environment)."""
    return cli_here


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
    assert "dropped 1 of 4 rows with missing values (1 in y; the first at 2020-01-02 00:00:00); data.fill fills them " \
           "instead" in caplog.text  # where they are, not only how many


def test_duplicated_timestamps_are_listed_with_their_rows(tmp_path: Path) -> None:
    path = _csv(tmp_path, "t,y\n2020-01-02,3\n2020-01-01,1\n2020-01-01,2\n")
    table = read_data(path, "t", ("y",))
    assert list(table.frame["y"]) == [1.0, 3.0]  # the first row of each is kept; a period that holds one is refused
    assert table.duplicates.to_dict() == {pd.Timestamp("2020-01-01"): (3, 4)}


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
    w = make_windows(frame, Period(t[0], t[-1] + pd.Timedelta("1h")), lookback=5, horizon=2, split=0.2)
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
    w = make_windows(frame, Period(t[0], pd.Timestamp("2020-01-11")), lookback=24, horizon=1, split="2D")
    assert len(w.y_val) == 48  # the last two days, one window per hour
    # calendar months, as --holdout takes them: a month back from the period's last time (Mar 31 23h: Mar 1 on, 31
    # days; Mar 14 23h: Feb 15 on, 29 days in 2020)
    t = pd.date_range("2020-01-01", "2020-03-31 23:00", freq="h")
    path = _csv(tmp_path, pd.DataFrame({"t": t, "y": np.sin(np.arange(len(t)))}).to_csv(index=False))
    frame = load_frame(path, "t", ("y",))
    for end, days in (("2020-04-01", 31), ("2020-03-15", 29)):
        w = make_windows(frame, Period(t[0], pd.Timestamp(end)), lookback=24, horizon=1, split="1M")
        assert len(w.y_val) == 24 * days, (end, len(w.y_val))


def test_bundled_demo_data_resolves() -> None:
    path = resolve_data_path("demo:electricity_hourly.csv")
    assert Path(path).is_file()
    with pytest.raises(DataError, match="bundled: electricity_hourly.csv"):
        resolve_data_path("demo:nope.csv")


@pytest.mark.parametrize("kind", ["s3", "gcs"])
def test_data_read_from_a_bucket(kind: str, request: pytest.FixtureRequest, write_spec: Any,
                                 tmp_path: Path) -> None:
    server = request.getfixturevalue(f"{kind}_server")
    scheme = {"s3": "s3", "gcs": "gs"}[kind]
    bucket = server.create_bucket()
    server.put(bucket, "data/load.csv", DEMO.read_bytes())
    env = {**server.client_env(), "HPT_SINK_RETRIES": "2", "HPT_SINK_TIMEOUT": "5"}
    data = {"path": f"{scheme}://{bucket}/data/load.csv", "time_column": "ts", "target": "y"}
    spec = write_spec(tiny_spec(data=data, parameters={"lr": [0.01]}, training={"epochs": 1}))
    done = hpt_cli("run", str(spec), "--sink", str(tmp_path / "r"), "--workers", "1", env=env)
    assert done.returncode == 0, done.stderr
    table = trial_rows(pd.read_csv(tmp_path / "r" / "results.csv"))
    assert list(table["status"]) == ["ok", "ok"]
    auto = hpt_cli("auto", "--arch", "mlp", "--data", data["path"], "--target", "y", "--time-column", "ts", "--trials", "2",
               "--dry-run", "--today", "2026-11-01", env=env)
    assert auto.returncode == 0 and "2 configs x 3 periods" in auto.stdout, auto.stderr

    for path, words in [(f"{scheme}://{bucket}/data/nothing.csv", f"no object at {scheme}://{bucket}/data/nothing.csv"),
                        (f"{scheme}://{bucket}/data/load.csv", 'no column "load"')]:
        bad = write_spec(tiny_spec(data={**data, "path": path, "target": "load" if "load.csv" in path else "y"}))
        out = hpt_cli("validate", str(bad), env=env)
        errors = [line for line in out.stderr.splitlines() if line.startswith("hpt: error:")]
        assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
        assert words in errors[0] and ("data.target" if "load.csv" in path else "data.path") in errors[0]


@pytest.mark.parametrize("path", ["ftp://host/x.csv", "gs://bucket-only", "s3:/bucket/x.csv"])
def test_unsupported_data_locations_are_refused(path: str) -> None:
    with pytest.raises(DataError) as info:
        resolve_data_path(path)
    assert info.value.json_path == "data.path"


# -- issue 15: data that is not what it seems ------------------------------------------------

HOURS = pd.date_range("2013-01-01", periods=24 * 20, freq="h")


def _series(n: int = len(HOURS)) -> np.ndarray:
    return np.sin(np.arange(n) / 5) + np.arange(n) / 100


def _spec_on(write_spec: Any, path: Path | str, data: dict[str, Any] | None = None, **overrides: Any) -> Path:
    """A spec on a generated file: one period over HOURS, lookback 24."""
    doc = tiny_spec(data={"path": str(path), "time_column": "ts", "target": "y", **(data or {})},
                    date_ranges=[["2013-01-01", "2013-01-21"]], parameters={"lr": [0.01]},
                    training={"epochs": 1, "lookback": 24, "horizon": 1, "validation": 0.2})
    doc.update(overrides)
    return Path(write_spec(doc))


def _one_error(out: Any) -> str:
    """The run ended with exit 2 and one `hpt: error:` line, no traceback; that line."""
    errors = [line for line in out.stderr.splitlines() if line.startswith("hpt: error:")]
    assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    return errors[0]


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_day_first_dates_next_to_ambiguous_ones_are_refused_with_a_format_to_set(
        tmp_path: Path, write_spec: Any, cli: Any) -> None:
    days = pd.date_range("2013-01-01", periods=60, freq="D")
    path = _write(tmp_path / "d.csv", pd.DataFrame({"ts": days.strftime("%d/%m/%Y"), "y": _series(60)}))
    spec = _spec_on(write_spec, path, date_ranges=[["2013-01-01", "2013-03-01"]], training={"lookback": 5})
    line = _one_error(cli("validate", str(spec)))
    assert line.endswith('data.time_column: cannot parse "13/01/2013" in column "ts" (row 14) as a time in the format '
                         'of row 2 ("01/01/2013": "%m/%d/%Y"); set data.time_format, e.g. "%d/%m/%Y"'), line
    frame = load_frame(str(path), "ts", ("y",), ReadOptions(time_format="%d/%m/%Y"))
    assert list(frame.index) == list(days)  # every row at its own day, none month-first
    spec = _spec_on(write_spec, path, {"time_format": "%d/%m/%Y"}, date_ranges=[["2013-01-01", "2013-03-01"]],
                    training={"lookback": 5})
    assert cli("validate", str(spec)).returncode == 0


def test_dates_that_read_day_first_and_month_first_alike_are_refused(tmp_path: Path) -> None:
    days = pd.date_range("2013-01-01", periods=12, freq="D")
    path = _write(tmp_path / "d.csv", pd.DataFrame({"ts": days.strftime("%m/%d/%Y"), "y": _series(12)}))
    with pytest.raises(DataError) as info:
        load_frame(str(path), "ts", ("y",))
    assert info.value.json_path == "data.time_column"
    assert info.value.message == ('times such as "01/01/2013" (row 2) in column "ts" read day-first and month-first '
                                  'alike: set data.time_format to "%m/%d/%Y" or "%d/%m/%Y"')
    us = _write(tmp_path / "us.csv", pd.DataFrame({"ts": HOURS[::24].strftime("%m/%d/%Y"), "y": _series(20)}))
    assert load_frame(str(us), "ts", ("y",)).index[12] == pd.Timestamp("2013-01-13")  # 01/13: month-first only


def test_a_time_format_that_does_not_match_names_the_row(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", pd.DataFrame({"ts": ["01.02.2013", "02.02.2013", "2013-02-03"], "y": [1, 2, 3]}))
    with pytest.raises(DataError) as info:
        load_frame(str(path), "ts", ("y",), ReadOptions(time_format="%d.%m.%Y"))
    assert (info.value.json_path, info.value.message) == (
        "data.time_format", 'row 4: "2013-02-03" in column "ts" does not match "%d.%m.%Y"')
    with pytest.raises(DataError, match='"%d.%Q": .*bad directive'):
        load_frame(str(path), "ts", ("y",), ReadOptions(time_format="%d.%Q"))


def test_integer_epochs_need_a_time_unit_and_a_wrong_one_is_named(tmp_path: Path, write_spec: Any, cli: Any) -> None:
    seconds = (HOURS - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s")
    path = _write(tmp_path / "e.csv", pd.DataFrame({"ts": seconds, "y": _series()}))
    line = _one_error(cli("validate", str(_spec_on(write_spec, path))))
    assert 'data.time_column: column "ts" holds numbers such as 1356998400 (row 2), not dates' in line
    assert 'set data.time_unit to "s" or "ms"' in line
    assert cli("validate", str(_spec_on(write_spec, path, {"time_unit": "s"}))).returncode == 0
    assert list(load_frame(str(path), "ts", ("y",), ReadOptions(time_unit="s")).index) == list(HOURS)
    line = _one_error(cli("validate", str(_spec_on(write_spec, path, {"time_unit": "ms"}))))
    assert line.endswith('data.time_unit: "ms" reads 1356998400 in column "ts" (row 2) as the year 1970; '
                         'did you mean "s"?'), line
    ms = _write(tmp_path / "ms.csv", pd.DataFrame({"ts": seconds * 1000, "y": _series()}))
    assert list(load_frame(str(ms), "ts", ("y",), ReadOptions(time_unit="ms")).index) == list(HOURS)
    assert 'did you mean "ms"?' in _one_error(cli("validate", str(_spec_on(write_spec, ms, {"time_unit": "s"}))))


def test_mixed_utc_offsets_become_utc(tmp_path: Path, write_spec: Any, cli: Any) -> None:
    berlin = HOURS.tz_localize("UTC").tz_convert("Europe/Berlin")  # summer time starts on 2013-03-31
    stamps = [t.isoformat() for t in berlin]
    path = _write(tmp_path / "tz.csv", pd.DataFrame({"ts": stamps, "y": _series()}))
    assert {s[-6:] for s in stamps} == {"+01:00"}
    march = pd.date_range("2013-03-25", periods=len(HOURS), freq="h", tz="UTC")
    summer = _write(tmp_path / "summer.csv", pd.DataFrame(
        {"ts": [t.isoformat() for t in march.tz_convert("Europe/Berlin")], "y": _series()}))
    frame = load_frame(str(summer), "ts", ("y",))
    assert list(frame.index) == list(march.tz_localize(None))  # one hour apart, as in UTC
    out = cli("validate", str(_spec_on(write_spec, summer, date_ranges=[["2013-03-26", "2013-04-10"]])))
    assert out.returncode == 0, out.stderr  # was exit 1: "Mixed timezones detected"
    naive = stamps[:10] + [stamps[10][:19]] + stamps[11:]
    _write(path, pd.DataFrame({"ts": naive, "y": _series()}))
    line = _one_error(cli("validate", str(_spec_on(write_spec, path))))
    assert f'"{stamps[10][:19]}" in column "ts" (row 12) has no UTC offset, unlike row 2' in line


@pytest.mark.parametrize("data, path, words", [
    ({"time_unit": "h"}, "data.time_unit", 'expected "s" or "ms"'),
    ({"time_format": "dd/mm/yyyy"}, "data.time_format", "strftime pattern"),
    ({"time_format": "%d/%m/%Y", "time_unit": "s"}, "data.time_unit", "not both"),
    ({"fill": "linear"}, "data.fill", "none, ffill, interpolate"),
    ({"fill_limit": 3}, "data.fill_limit", 'needs data.fill "ffill" or "interpolate"'),
    ({"fill": "ffill", "fill_limit": 0}, "data.fill_limit", "integer >= 1"),
    ({"duplicates": "max"}, "data.duplicates", "first, last, mean"),
])
def test_data_keys_are_checked(write_spec: Any, data: dict[str, Any], path: str, words: str) -> None:
    from hpt.errors import SpecError
    from hpt.spec import load_spec

    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tiny_spec(data=data)))
    assert any(f"{path}: " in line and words in line for line in info.value.lines()), info.value.lines()


def test_the_step_is_the_most_common_difference() -> None:
    times = HOURS.delete([5, 6, 7, 50]).append(pd.DatetimeIndex([HOURS[-1] + pd.Timedelta("1D")]))
    assert infer_step(times) == pd.Timedelta("1h")
    months = pd.date_range("2000-01-01", periods=40, freq="MS")
    assert infer_step(months) == pd.Timedelta("31D")
    frame = pd.DataFrame({"y": _series(40)}, index=months)
    w = make_windows(frame, Period(months[0], months[-1] + pd.Timedelta("31D")), 3, 1, 0.25)
    assert (w.skipped_train, w.skipped_val) == (0, 0)  # February is no gap


def test_windows_never_span_a_missing_step(tmp_path: Path) -> None:
    keep = np.ones(len(HOURS), dtype=bool)
    keep[[100, 101, 102, 300]] = False  # two gaps
    path = _write(tmp_path / "g.csv", pd.DataFrame({"ts": HOURS[keep], "y": np.arange(len(HOURS), dtype=float)[keep]}))
    frame = load_frame(str(path), "ts", ("y",))
    period = Period(HOURS[0], HOURS[-1] + pd.Timedelta("1h"))
    w = make_windows(frame, period, lookback=24, horizon=2, split=0.2)
    unscale = lambda a: np.rint(a * w.std[0] + w.mean[0])  # noqa: E731  (y is the hour's number)
    for x, y in ((w.x_train, w.y_train), (w.x_val, w.y_val)):
        hours = np.concatenate([unscale(x[:, :, 0]), unscale(y)], axis=1)
        assert np.all(np.diff(hours, axis=1) == 1)  # every window is 26 consecutive hours
    assert (w.skipped_train, w.skipped_val) == (2 * 25, 0)  # each gap costs lookback + horizon - 1 windows
    count = count_windows(frame, period, 24, 2, 0.2)
    assert (count.gaps, count.missing_steps, count.train, count.skipped_train) == (2, 4, len(w.x_train), 50)
    report = window_report(frame, [period], 24, 2, 0.2)
    assert report["step"] == "1h" and report["periods"][period.label] == count.to_json()


def test_gaps_are_counted_in_the_log(tmp_path: Path, write_spec: Any, cli: Any) -> None:
    keep = np.ones(len(HOURS), dtype=bool)
    keep[[100, 101, 102, 300]] = False
    path = _write(tmp_path / "g.csv", pd.DataFrame({"ts": HOURS[keep], "y": _series()[keep]}))
    spec_path = _spec_on(write_spec, path)
    out = cli("validate", str(spec_path))
    assert out.returncode == 0, out.stderr
    assert ("hpt: warning: period 2013-01-01..2013-01-21: 2 gaps (4 missing steps of 1h): 48 of 357 train and 0 of 95 "
            "validation windows span one and are not used") in out.stderr
    spec = load_spec(spec_path)
    report = json.loads(json.dumps(data_report(spec, check_data(spec))))  # for the run record
    assert report["step"] == "1h" and report["fill"] == "none" and report["lookback"] == 24
    assert report["periods"]["2013-01-01..2013-01-21"] == {
        "rows": len(HOURS) - 4, "gaps": 2, "missing_steps": 4, "train_windows": 309, "val_windows": 95,
        "skipped_train_windows": 48, "skipped_val_windows": 0}


@pytest.mark.parametrize("fill, limit, expected", [
    ("ffill", None, [4.0, 4.0, 4.0, 4.0, 8.0]),
    ("interpolate", None, [4.0, 5.0, 6.0, 7.0, 8.0]),
    ("interpolate", 2, [4.0, 5.0, 6.0, 8.0]),  # a third missing step in a row stays a gap
])
def test_fill_fills_missing_steps_and_values(tmp_path: Path, fill: str, limit: int | None,
                                             expected: list[float]) -> None:
    y = np.arange(len(HOURS), dtype=float)
    y[20] = np.nan  # a missing value is filled like a missing step
    keep = np.ones(len(HOURS), dtype=bool)
    keep[[5, 6, 7]] = False
    path = _write(tmp_path / "g.csv", pd.DataFrame({"ts": HOURS[keep], "y": y[keep]}))
    frame = load_frame(str(path), "ts", ("y",), ReadOptions(fill=fill, fill_limit=limit))
    assert list(frame["y"].iloc[4:4 + len(expected)]) == expected
    assert frame.loc[HOURS[20], "y"] == (19.0 if fill == "ffill" else 20.0)
    assert frame.attrs["filled_steps"] == (4 if limit is None else 3)
    none = load_frame(str(path), "ts", ("y",))
    assert len(none) == len(HOURS) - 4 and HOURS[20] not in none.index


def test_a_gap_that_leaves_the_validation_part_no_window_names_the_period(tmp_path: Path, write_spec: Any,
                                                                           cli: Any) -> None:
    keep = np.ones(len(HOURS), dtype=bool)
    keep[-72:-10] = False  # the validation part ("3D") starts with a gap longer than a window
    path = _write(tmp_path / "g.csv", pd.DataFrame({"ts": HOURS[keep], "y": _series()[keep]}))
    spec = _spec_on(write_spec, path, training={"lookback": 24, "validation": "3D"})
    line = _one_error(cli("validate", str(spec)))
    assert ("date_ranges[0]: period 2013-01-01..2013-01-21: gaps leave its validation part no window of lookback 24 "
            "+ horizon 1 without a missing step (the first: no data from 2013-01-18 00:00:00 to 2013-01-20 13:00:00); "
            "set data.fill or choose another period") in line
    filled = _spec_on(write_spec, path, {"fill": "interpolate"}, training={"lookback": 24, "validation": "3D"})
    assert cli("validate", str(filled)).returncode == 0


def _with_duplicates(tmp_path: Path) -> Path:
    rows = pd.DataFrame({"ts": HOURS, "y": _series()})
    extra = rows.iloc[[5, 400]].assign(y=[10.0, 20.0])
    return _write(tmp_path / "dup.csv", pd.concat([rows, extra]).sort_index(kind="stable"))


def test_duplicated_timestamps_inside_a_period_are_refused_unless_merged(tmp_path: Path, write_spec: Any,
                                                                         cli: Any) -> None:
    path = _with_duplicates(tmp_path)
    line = _one_error(cli("validate", str(_spec_on(write_spec, path))))
    assert line.endswith('date_ranges[0]: period 2013-01-01..2013-01-21 holds 2 duplicated timestamps in "ts" '
                         '(first: 2013-01-01 05:00:00, rows 7 and 8): remove them or set data.duplicates to "first", '
                         '"last" or "mean" (a file of several series: name their column in data.series)'), line
    for how, value in (("first", _series()[5]), ("last", 10.0), ("mean", (_series()[5] + 10) / 2)):
        assert cli("validate", str(_spec_on(write_spec, path, {"duplicates": how}))).returncode == 0
        frame = load_frame(str(path), "ts", ("y",), ReadOptions(duplicates=how))
        assert frame.index.is_unique and len(frame) == len(HOURS)
        assert frame.loc[HOURS[5], "y"] == pytest.approx(value)


def test_each_period_counts_every_duplicated_timestamp_it_holds_when_periods_overlap(
        tmp_path: Path, write_spec: Any, cli: Any) -> None:
    spec = _spec_on(write_spec, _with_duplicates(tmp_path), date_ranges=[["2013-01-01", "2013-01-10"],
                                                                          ["2013-01-01", "2013-01-20"]])
    out = cli("validate", str(spec))
    errors = [line for line in out.stderr.splitlines() if line.startswith("hpt: error:")]
    assert out.returncode == 2 and len(errors) == 2, out.stderr
    assert "period 2013-01-01..2013-01-10 holds 1 duplicated timestamp in \"ts\" (first: 2013-01-01 05:00:00" in errors[0]
    assert "period 2013-01-01..2013-01-20 holds 2 duplicated timestamps in \"ts\" (first: 2013-01-01 05:00:00" in errors[1]


def test_duplicated_timestamps_outside_every_period_are_a_warning(tmp_path: Path, write_spec: Any, cli: Any) -> None:
    spec = _spec_on(write_spec, _with_duplicates(tmp_path), date_ranges=[["2013-01-02", "2013-01-15"]])
    out = cli("validate", str(spec))
    assert out.returncode == 0, out.stderr
    assert ('hpt: warning: dup.csv: 2 duplicated timestamps in "ts" (first: 2013-01-01 05:00:00, rows 7 and 8) outside '
            "the periods used; no trial uses them") in out.stderr.splitlines()


def test_a_target_constant_on_a_train_part_is_refused_with_the_period(tmp_path: Path, write_spec: Any,
                                                                      cli: Any) -> None:
    y = _series()
    y[:200] = 3.0
    path = _write(tmp_path / "c.csv", pd.DataFrame({"ts": HOURS, "y": y}))
    spec = _spec_on(write_spec, path, date_ranges=[["2013-01-01", "2013-01-08"], ["2013-01-08", "2013-01-20"]])
    line = _one_error(cli("validate", str(spec)))
    assert line.endswith('date_ranges[0]: period 2013-01-01..2013-01-08: target "y" is constant (3) on its train part '
                         "(2013-01-01 00:00:00 to 2013-01-06 13:00:00): its scale is zero, there is nothing to learn")


@pytest.mark.parametrize("column", ["y", "x"])
def test_an_infinite_value_in_a_period_is_refused_with_the_period_and_column(
        tmp_path: Path, write_spec: Any, cli: Any, column: str) -> None:
    frame = pd.DataFrame({"ts": HOURS, "y": _series(), "x": _series() * 2})
    frame.loc[50, column] = -np.inf
    path = _write(tmp_path / "i.csv", frame)
    line = _one_error(cli("validate", str(_spec_on(write_spec, path, {"features": ["x"]}))))
    assert line.endswith(f'date_ranges[0]: period 2013-01-01..2013-01-21: column "{column}" holds an infinite value '
                         "(-inf at 2013-01-03 02:00:00)"), line


def test_the_bundled_data_gives_the_same_windows_as_before() -> None:
    frame = load_frame(str(DEMO), "ts", ("y",))
    assert frame.attrs["step"] == pd.Timedelta("1h")
    period = Period(pd.Timestamp("2013-01-01"), pd.Timestamp("2013-03-01"))
    w = make_windows(frame, period, 48, 3, "7D")
    rows = frame.loc["2013-01-01":"2013-02-28 23:00"].to_numpy()
    s = len(rows) - 7 * 24
    z = ((rows - rows[:s].mean(axis=0)) / rows[:s].std(axis=0)).astype(np.float32)
    x = np.lib.stride_tricks.sliding_window_view(z[:-3], 48, axis=0).transpose(0, 2, 1)
    y = np.lib.stride_tricks.sliding_window_view(z[48:, 0], 3)
    assert np.array_equal(w.x_train, x[: s - 50]) and np.array_equal(w.y_train, y[: s - 50])
    assert np.array_equal(w.x_val, x[s - 48:]) and np.array_equal(w.y_val, y[s - 48:])
    assert (w.skipped_train, w.skipped_val) == (0, 0)


HOSTILE: dict[str, bytes] = {
    "empty.csv": b"",
    "header_only.csv": b"ts,y\n",
    "one_row.csv": b"ts,y\n2013-01-01,1\n",
    "binary.csv": bytes(range(256)) * 8,
    "latin1.csv": "ts,y\n2013-01-01,1\n2013-01-02,caf\xe9\n".encode("latin-1"),
    "no_times.csv": b"ts,y\n,1\n,2\n",
    "bool_times.csv": b"ts,y\nTrue,1\nFalse,2\n",
    "float_times.csv": b"ts,y\n1.5,1\n2.5,2\n",
    "no_values.csv": b"ts,y\n2013-01-01,\n2013-01-02,\n",
    "ragged.csv": b"ts,y\n2013-01-01,1,5,6\n2013-01-02\n",
    "open_quote.csv": b'ts,y\n"2013-01-01,1\n',
    "zone_names.csv": b"ts,y\n2013-01-01 00:00 CET,1\n2013-01-01 01:00 CET,2\n",
    "too_large.csv": b"ts,y\n" + b"".join(b"2013-01-%02d,%s\n" % (d, b"1e308" if d % 2 else b"-1e308")
                                          for d in range(1, 11)),
    "not_parquet.parquet": b"PAR1 and then nothing a parquet file holds",
    "folder.csv": b"",  # made a folder below
}


def test_validate_exits_0_or_2_for_every_data_problem_never_1(tmp_path: Path, write_spec: Any, cli: Any) -> None:
    specs = []
    for name, content in HOSTILE.items():
        path = tmp_path / name
        if name == "folder.csv":
            path.mkdir()
        else:
            path.write_bytes(content)
        specs.append(str(_spec_on(write_spec, path, date_ranges=[["2013-01-01", "2013-01-11"]],
                                  training={"lookback": 2, "validation": 0.3})))
    out = cli("validate", *specs)
    assert out.returncode == 2 and "Traceback" not in out.stderr and "the run failed" not in out.stderr, out.stderr
    assert "RuntimeWarning" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("hpt: error:")]
    for spec, name in zip(specs, HOSTILE, strict=True):
        mine = [line for line in errors if line.startswith(f"hpt: error: {spec}: ")]
        assert len(mine) == 1, (name, out.stderr)
        assert all(c.isprintable() for c in mine[0]), (name, mine[0])


def test_files_separated_by_semicolons_tabs_or_bars_read_as_with_commas(tmp_path: Path, write_spec: Any,
                                                                        cli: Any) -> None:
    frame = pd.DataFrame({"ts": HOURS, "y": _series()})
    want = load_frame(str(_write(tmp_path / "comma.csv", frame)), "ts", ("y",))
    for name, sep, decimal in (("semicolon.csv", ";", ","), ("tab.csv", "\t", "."), ("bar.csv", "|", ".")):
        frame.to_csv(tmp_path / name, sep=sep, decimal=decimal, index=False)
        pd.testing.assert_frame_equal(load_frame(str(tmp_path / name), "ts", ("y",)), want)
    assert (tmp_path / "semicolon.csv").read_text().splitlines()[2].startswith("2013-01-01 01:00:00;0,2086")  # decimal comma
    done = cli("validate", str(_spec_on(write_spec, tmp_path / "semicolon.csv")))
    assert done.returncode == 0, done.stderr
    quoted = tmp_path / "quoted.csv"  # a comma file whose column name holds semicolons stays a comma file
    quoted.write_text('ts,"y;kW;avg"\n2013-01-01 00:00,1.5\n2013-01-01 01:00,2.5\n')
    assert list(load_frame(str(quoted), "ts", ("y;kW;avg",))["y;kW;avg"]) == [1.5, 2.5]
    frame.to_csv(tmp_path / "spaces.csv", sep=" ", index=False)
    line = _one_error(cli("validate", str(_spec_on(write_spec, tmp_path / "spaces.csv"))))
    assert ('data.time_column: no column "ts" in spaces.csv (the header is one column: hpt reads CSV files separated by '
            "commas, semicolons, tabs or |; save it with one of them); columns: ts y") in line


def test_a_duplicate_in_a_period_past_the_end_of_the_data_is_one_of_the_periods_problems(
        tmp_path: Path, write_spec: Any, cli: Any) -> None:
    """Not also a warning that it lies outside the periods used."""
    spec = _spec_on(write_spec, _with_duplicates(tmp_path), date_ranges=[["2013-01-10", "2013-02-01"]])
    done = cli("validate", str(spec))
    errors = [line for line in done.stderr.splitlines() if line.startswith("hpt: error:")]
    assert done.returncode == 2 and "outside the periods used" not in done.stderr, done.stderr
    assert len(errors) == 2 and all("date_ranges[0]: period 2013-01-10..2013-02-01 " in e for e in errors), errors
    assert "reaches outside the data (2013-01-01 00:00:00 to 2013-01-20 23:00:00)" in errors[0]
    assert ('holds 1 duplicated timestamp in "ts" (first: 2013-01-17 16:00:00, rows 403 and 404): remove them or set '
            "data.duplicates to") in errors[1]


def test_a_screen_too_short_for_daily_windows_says_the_screen_is_one_month_not_use_longer_periods(
        write_spec: Any, cli: Any) -> None:
    spec = write_spec(tiny_spec(
        data={"path": str(SHARED_WEATHER), "time_column": "date", "target": "temp_max"},
        date_ranges=[["2012-01-01", "2013-01-01"], ["2013-01-01", "2014-01-01"]],
        training={"lookback": 28, "horizon": 7, "validation": "60D"}))
    assert cli("validate", str(spec)).returncode == 0  # the year-long periods fit these windows
    out = cli("run", str(spec), "--quick", "--dry-run")
    assert out.returncode == 2 and out.stdout == "", out.stdout
    assert out.stderr.splitlines() == [
        f"hpt: error: {spec}: --quick: screening period 2015-12-01..2016-01-01 has 31 rows, 0 before the "
        "validation split (validation '60D' takes 31): too few for lookback 28 + horizon 7 (train part needs >= 35 "
        "rows, validation >= 7); the screen is one whole month of data: a shorter validation, lookback or horizon could "
        "fit it, or tune without the screen (--quick, search.promote)"], out.stderr
    # search.promote screens the same month: validate says so as the run would, naming search.promote
    promoted = write_spec(tiny_spec(
        data={"path": str(SHARED_WEATHER), "time_column": "date", "target": "temp_max"},
        date_ranges=[["2012-01-01", "2013-01-01"], ["2013-01-01", "2014-01-01"]],
        training={"lookback": 28, "horizon": 7, "validation": "60D"}, search={"strategy": "grid", "promote": {"top": 1}}))
    for command in ("validate", "plan"):
        out = cli(command, str(promoted))
        assert out.returncode == 2 and f"hpt: error: {promoted}: search.promote: screening period 2015-12-01" in out.stderr
