"""The run's progress lines: the ETA does not count the workers' start-up as if every trial paid it."""

from __future__ import annotations

import io
import re
from typing import Any

import pandas as pd
import pytest

from hpt import progress
from hpt.periods import Period
from hpt.progress import Reporter
from hpt.trial import Status, Trial, TrialResult

PERIOD = Period(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-02-01"))


def _result(i: int, train_s: float) -> TrialResult:
    trial = Trial(f"t{i}", f"c{i}", "mlp", {"lr": 0.01}, ("lr",), PERIOD, seed=i)
    return TrialResult(trial, Status.OK, metrics={"val_mse": 0.5, "train_time_s": train_s})


def _etas(monkeypatch: pytest.MonkeyPatch, slots: int, ends: list[float], train_s: float) -> list[float]:
    """The ETA of each line when trial k of len(ends) ends at ends[k] seconds after the run started."""
    clock = {"now": 0.0}
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock["now"])
    out = io.StringIO()
    reporter = Reporter(out=out, bar=False)
    reporter.start(len(ends), slots=slots)
    for k, t in enumerate(ends, 1):
        clock["now"] = t
        reporter.trial_done(_result(k, train_s), k, len(ends), "val_mse")
    return [_seconds(m) for m in re.findall(r"ETA (\S+)", out.getvalue())]


def _seconds(text: str) -> float:
    m = re.fullmatch(r"(?:(\d+)m)?([\d.]+)s", text)
    assert m, text
    return 60 * int(m.group(1) or 0) + float(m.group(2))


def test_the_first_eta_is_the_trials_training_time_not_the_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 workers take 8 s to start; then each trial takes 1 s: trials end at 9, 9, 10, 10, 11, 11
    etas = _etas(monkeypatch, slots=2, ends=[9, 9, 10, 10, 11, 11], train_s=1.0)
    assert etas[0] == pytest.approx(2.5)  # 5 left, 1 s each, 2 at a time (it was 9 s x 5 = 45 s)
    assert etas[1] == pytest.approx(2.0)
    # then the pace since the first 2 ended (3 s at most where 2 s are left; it was 30 s, 20 s, ...)
    assert max(etas[2:]) <= 3.0 and etas[-1] == pytest.approx(2 / 3, abs=0.05)


def test_the_pace_after_the_first_trials_counts_what_training_time_leaves_out(monkeypatch: Any) -> None:
    # 1 worker; training takes 1 s but each trial costs 3 s end to end (saving, uploading): the pace wins
    etas = _etas(monkeypatch, slots=1, ends=[5, 8, 11, 14], train_s=1.0)
    assert etas == [pytest.approx(3.0), pytest.approx(6.0), pytest.approx(3.0)]


def test_a_count_that_moved_is_marked_as_an_estimate_until_it_ends() -> None:
    """Early stopping moves the run's count of its trials: once it has, `~` marks the total; the last line, where the
    count is what ran, is `[N/N] ` as in any run (scripts look for "] ok ")."""
    out = io.StringIO()
    reporter = Reporter(out=out, bar=False)
    reporter.start(12)
    for done, total in ((1, 12), (2, 14), (3, 11), (11, 11)):
        reporter.trial_done(_result(done, 0.1), done, total, "val_mse")
    lines = out.getvalue().splitlines()
    assert [line[:9] for line in lines] == ["[ 1/12] o", "[ 2/~14] ", "[ 3/~11] ", "[11/11] o"]


def test_an_adaptive_searchs_count_is_marked_as_an_estimate_from_the_first_line() -> None:
    out = io.StringIO()
    reporter = Reporter(out=out, bar=False)
    reporter.start(7, estimate=True)
    reporter.trial_done(_result(1, 0.1), 1, 7, "val_mse")
    reporter.trial_done(_result(2, 0.1), 2, 2, "val_mse")  # the search found itself done sooner
    assert [line[:8] for line in out.getvalue().splitlines()] == ["[1/~7] o", "[2/2] ok"]
