"""data.calendar: sin/cos calendar inputs at known times, spec mistakes, ids, and a model with them
through `hpt run` and `hpt predict` (the inputs derived from the file's times again)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpt.calendar import with_calendar
from hpt.model_io import load_model
from hpt.search import expand
from hpt.spec import parse_spec
from tests.conftest import ROOT, hpt_cli, hpt_here, tiny_spec

DEMO = ROOT / "hpt" / "demo" / "electricity_hourly.csv"


def _at(stamp: str, name: str) -> tuple[float, float]:
    frame = with_calendar(pd.DataFrame({"y": [0.0]}, index=pd.DatetimeIndex([stamp])), (name,))
    return float(frame[f"calendar:{name}_sin"].iloc[0]), float(frame[f"calendar:{name}_cos"].iloc[0])


@pytest.mark.parametrize(("stamp", "name", "fraction"), [
    ("2024-01-01 00:00", "dow", 0.0),  # a Monday, midnight: the start of the week
    ("2024-01-03 12:00", "dow", 2.5 / 7),  # Wednesday noon
    ("2024-01-01 06:00", "hour", 0.25),
    ("2024-01-01 18:30", "hour", 18.5 / 24),
    ("2024-04-16 00:00", "dom", 0.5),  # April has 30 days: the 16th starts its second half
    ("2024-07-01 00:00", "month", 0.5),
    ("2023-01-01 00:00", "doy", 0.0),
    ("2024-07-02 00:00", "doy", 183 / 366),  # 2024 is a leap year
])
def test_calendar_inputs_at_known_times(stamp: str, name: str, fraction: float) -> None:
    sin, cos = _at(stamp, name)
    assert sin == pytest.approx(math.sin(2 * math.pi * fraction), abs=1e-12)
    assert cos == pytest.approx(math.cos(2 * math.pi * fraction), abs=1e-12)


def test_calendar_mistakes_name_the_entry_and_ids_without_it_are_unchanged(write_spec: Any) -> None:
    done = hpt_cli("validate", str(write_spec(tiny_spec(data={"calendar": ["hours"]}))))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"hpt: error: {done.stderr.split(': ')[2]}: data.calendar[0]: unknown calendar "
                                        'input "hours" (did you mean "hour"?); valid: hour, dow, dom, month, doy']
    plain = [t.trial_id for t in expand(parse_spec(tiny_spec()))]
    assert [t.trial_id for t in expand(parse_spec(tiny_spec(data={"calendar": []})))] == plain
    with_it = [t.trial_id for t in expand(parse_spec(tiny_spec(data={"calendar": ["hour"]})))]
    assert not set(with_it) & set(plain)


def test_a_calendar_input_the_same_on_every_row_is_a_warning(write_spec: Any) -> None:
    # the hour of daily data is always midnight: two input columns that tell the model nothing
    doc = tiny_spec(data={"path": "demo:stations_daily.csv", "time_column": "date", "target": "rides",
                          "series": "station", "calendar": ["hour", "dow"]},
                    date_ranges=[["2024-01-01", "2024-07-01"]], objective="val_mase",
                    training={"epochs": 1, "lookback": 14, "horizon": 7, "validation": "28D"})
    done = hpt_here("validate", str(write_spec(doc)))
    assert done.exit_code == 0, done.output
    assert [line for line in done.stderr.splitlines() if "calendar" in line] == [
        'hpt: warning: stations_daily.csv: data.calendar[0]: "hour" is the same on every row of this data (a row '
        "every 1D): it tells the model nothing; leave it out"]


def test_a_model_with_calendar_inputs_forecasts_from_a_file_without_them(write_spec: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(architecture="linear", date_ranges=[["2013-01-01", "2013-01-15"]],
                                data={"calendar": ["hour", "dow"]}, parameters={"lr": [0.003]},
                                training={"epochs": 2, "horizon": 3}))
    sink = tmp_path / "out"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    (model_path,) = (sink / "models").glob("*.pt")
    model = load_model(model_path)
    assert model.columns == ("y", "calendar:hour_sin", "calendar:hour_cos", "calendar:dow_sin", "calendar:dow_cos")
    assert model.calendar == ("hour", "dow") and model.file_columns == ("y",)
    assert model.module.linear.weight.shape[1] == (24 + 3) * 5  # the lookback's rows and the 3 forecast steps'
    assert model.known_ahead == model.columns[1:] and model.future_rows == 3

    frame = pd.read_csv(DEMO, parse_dates=["ts"], nrows=24 * 20)
    data, out = tmp_path / "recent.csv", tmp_path / "forecast.csv"
    frame.to_csv(data, index=False)
    done_predict = hpt_here("predict", str(model_path), "--data", str(data), "--last", "--out", str(out))
    assert done_predict.exit_code == 0, done_predict.output
    got = pd.read_csv(out)["prediction"].to_numpy()
    np.testing.assert_allclose(got, model.predict(frame.tail(24)), rtol=1e-6)  # times from the ts column
    np.testing.assert_allclose(got, model.predict(frame.tail(24).set_index("ts")), rtol=1e-6)  # from the index
    shifted = frame.assign(ts=frame["ts"] + pd.Timedelta("6h")).tail(24)  # other times, same values
    assert not np.allclose(model.predict(shifted), got)
