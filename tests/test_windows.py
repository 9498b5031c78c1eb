"""Windows: the chronological split, the missing-step rule, the hold-out split, and batched forecasts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hpt.periods import Period
from hpt.windows import (
    Holdout,
    Split,
    breaks,
    make_windows,
    split_rows,
    unbroken,
    window_problem,
)

HOURS = pd.date_range("2020-01-01", periods=240, freq="h")  # ten days, 2020-01-01 00:00 .. 2020-01-10 23:00
WHOLE = Period(HOURS[0], HOURS[-1] + pd.Timedelta("1h"))


def _frame(index: pd.DatetimeIndex = HOURS) -> pd.DataFrame:
    hour = (index - HOURS[0]) / pd.Timedelta("1h")  # the value is the hour's number: windows show their rows
    return pd.DataFrame({"y": np.asarray(hour, dtype=float), "x": np.sin(np.asarray(hour, dtype=float))}, index=index)


def _hours(w_x: np.ndarray, w_y: np.ndarray, mean: float, std: float) -> np.ndarray:
    """Each window's rows as hour numbers, inputs then targets."""
    return np.rint(np.concatenate([w_x[:, :, 0], w_y], axis=1) * std + mean)


@pytest.mark.parametrize("rule, first_val", [
    ("2D", HOURS.get_loc(pd.Timestamp("2020-01-09 00:00"))),  # the rows within two days of the last one
    (0.25, 180),  # a quarter of the 240 rows
])
def test_a_validation_split_lands_at_known_rows(rule: float | str, first_val: int) -> None:
    split = split_rows(HOURS, rule)
    assert split == Split(rows=240, val=first_val, holdout=240)
    assert split.train == range(0, first_val) and split.validation == range(first_val, 240)
    assert split.held_out == range(240, 240) and split.scored == split.validation


@pytest.mark.parametrize("start, first_held", [
    ("2020-01-09 12:00", "2020-01-09 12:00"),  # a time of the data: it is the hold-out's first row
    ("2020-01-09 12:30", "2020-01-09 13:00"),  # between two rows: the next one
])
def test_a_holdout_split_starts_at_its_time_and_leaves_no_validation_part(start: str, first_held: str) -> None:
    holdout = Holdout(pd.Timestamp(start), WHOLE.end, "--holdout-start")
    split = split_rows(HOURS, holdout)
    s = HOURS.get_loc(pd.Timestamp(first_held))
    assert split == Split(rows=240, val=s, holdout=s)
    assert split.validation == range(s, s) and split.scored == split.held_out == range(s, 240)


def test_holdout_windows_score_the_holdout_and_train_before_it() -> None:
    frame = _frame()
    holdout = Holdout(pd.Timestamp("2020-01-09 00:00"), WHOLE.end, "--holdout 2D")
    w = make_windows(frame, WHOLE, 24, 2, holdout)
    s = 192
    mean, std = w.mean[0], w.std[0]
    train, held = _hours(w.x_train, w.y_train, mean, std), _hours(w.x_val, w.y_val, mean, std)
    assert train[:, -1].max() == s - 1  # training never sees a hold-out row
    assert held[0, 24] == s and held[:, 24:].min() == s and held[-1, -1] == 239  # every hold-out target, once
    assert len(w.x_val) == 240 - s - 2 + 1 and pd.Timestamp(w.val_ends[0]) == HOURS[s - 1]
    assert np.isclose(mean, frame["y"].iloc[:s].mean()) and np.isclose(std, frame["y"].iloc[:s].std(ddof=0))
    # the same windows as the validation duration that reaches back to the hold-out's start
    same = make_windows(frame, WHOLE, 24, 2, "2D")
    for part in ("x_train", "y_train", "x_val", "y_val"):
        assert np.array_equal(getattr(w, part), getattr(same, part)), part


def test_a_window_that_spans_a_missing_step_is_left_out() -> None:
    index = HOURS.delete([50])  # 02:00 on the third day is missing
    w = make_windows(_frame(index), WHOLE, 4, 1, 0.25)
    hours = _hours(w.x_train, w.y_train, w.mean[0], w.std[0])
    assert np.all(np.diff(hours, axis=1) == 1)  # every window is five consecutive hours
    assert not ((hours[:, 0] < 50) & (hours[:, -1] > 50)).any()
    assert {45, 51} <= set(hours[:, 0]) and w.skipped_train == 4  # the windows ending at 49 and starting at 51 stay
    assert unbroken(breaks(index, pd.Timedelta("1h")), 5)[45:51].tolist() == [True, False, False, False, False, True]


def test_a_holdout_that_leaves_too_few_rows_before_it_says_so() -> None:
    holdout = Holdout(pd.Timestamp("2020-01-01 10:00"), WHOLE.end, "--holdout-start 2020-01-01T10:00")
    problem = window_problem(_frame(), WHOLE, 24, 1, holdout)
    assert problem is not None and "10 before the hold-out (which takes 230)" in problem


def test_forecasts_in_batches_are_those_of_one_pass() -> None:
    torch = pytest.importorskip("torch")
    from hpt.inference import forecast

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 3))
    x = torch.randn(10, 4, 2)
    whole = model(x).detach().numpy().astype(np.float64)
    assert np.allclose(forecast(model, x, batch=3), whole, rtol=1e-5, atol=1e-6)  # in order, none lost
    at = np.array([7, 1, 4])
    assert np.allclose(forecast(model, x.numpy(), batch=2, at=at), whole[at], rtol=1e-5, atol=1e-6)
    assert forecast(model, x[:0]).shape == (0,)
