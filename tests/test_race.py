"""search.race: periods as a fidelity. Configs run period by period; the worse ones are dropped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from hpt.backends.fake import FakeBackend, Script
from hpt.progress import Reporter
from hpt.results import load_results, summarise
from hpt.runner import RunOptions, run_spec
from hpt.spec import load_spec
from hpt.trial import Trial
from tests.conftest import hpt_here, tiny_spec
from tests.test_pruning import _interrupt_at, rows_of

MONTHS = [["2013-01-01", "2013-01-15"], ["2013-02-01", "2013-02-15"], ["2013-03-01", "2013-03-15"],
          ["2013-04-01", "2013-04-15"]]
LRS = [0.001, 0.003, 0.01, 0.1]


def constructed(trial: Trial) -> Script:
    """lr=0.001 best in every period, lr=0.1 worst in every period, 0.003 and 0.01 take turns in between;
    each period's loss on its own scale."""
    period = [m[0] for m in MONTHS].index(trial.period.start_text)
    lr = float(trial.params["lr"])
    value = {0.001: 1.0, 0.003: 2.0 + period % 2, 0.01: 3.0 - period % 2, 0.1: 4.0}[lr] * 10 ** period
    return Script(curve=[value * 1.5, value])


def race_spec(write_spec: Any, **search: Any) -> Any:
    return load_spec(write_spec(tiny_spec(date_ranges=MONTHS, parameters={"lr": LRS, "hidden_size": [8]},
                                          search={"race": True, **search}, training={"epochs": 2})))


def run(spec: Any, folder: Path, script: Any = constructed, say: list[str] | None = None, **options: Any) -> Any:
    backend = FakeBackend(script, slots=2)
    reporter = Reporter(bar=False, quiet=True)
    if say is not None:
        reporter.line = say.append  # type: ignore[method-assign]
    return run_spec(spec, RunOptions(sink=str(folder), **options), reporter, backend=backend), backend


def by_lr(rows: pd.DataFrame) -> dict[float, list[tuple[str, str]]]:
    out: dict[float, list[tuple[str, str]]] = {}
    for r in rows.sort_values("period_start").itertuples():
        out.setdefault(float(r.param_lr), []).append((str(r.status), str(r.error if isinstance(r.error, str) else "")))
    return out


def test_race_drops_a_config_worse_in_every_period_and_keeps_a_tied_one(write_spec: Any, tmp_path: Path) -> None:
    said: list[str] = []
    summary, backend = run(race_spec(write_spec), tmp_path / "res", say=said)
    rows = rows_of(tmp_path / "res")
    trials = by_lr(rows)
    best = rows[rows["param_lr"] == 0.001]["config_id"].iloc[0]
    worst = rows[rows["param_lr"] == 0.1]["config_id"].iloc[0]
    # three periods are the fewest with which Friedman and Nemenyi can tell 4 configs apart: dropped after 3
    assert [s for s, _ in trials[0.1]] == ["ok", "ok", "ok", "pruned"]
    assert trials[0.1][3][1].startswith(f"dropped after 3 periods: worse than {best} (Nemenyi p=0.0")
    assert all(s == "ok" for lr in (0.001, 0.003, 0.01) for s, _ in trials[lr])  # tied with the best: they go on
    submitted = [tid for what, tid in backend.log if what == "submit"]
    assert len(submitted) == 15 and summary.counts == {"ok": 15, "pruned": 1}  # the dropped period is not trained
    assert any(line.startswith(f"race: after 3 periods, 1 config worse than {best} is dropped ({worst}); "
                               "3 configs go on") for line in said), said
    # period by period: every trial of a period started after every trial of the period before ended
    starts = rows[rows["status"] == "ok"].groupby("period_start")["started_at"].min().sort_index()
    ends = rows[rows["status"] == "ok"].groupby("period_start")["finished_at"].max().sort_index()
    assert all(starts.iloc[i + 1] >= ends.iloc[i] for i in range(3))


def test_a_race_that_needs_no_finalist_counts_to_its_last_result(write_spec: Any, tmp_path: Path, capsys: Any) -> None:
    # three configs complete every period, so the finalist stage (3 by default) has nothing to do: the counter said
    # [16/~24] at the last result, as if a finalist still had every period to run
    backend = FakeBackend(constructed, slots=2)
    run_spec(race_spec(write_spec), RunOptions(sink=str(tmp_path / "res")), Reporter(bar=False), backend=backend)
    counts = re.findall(r"^\[\s*(\d+)/(~?\d+)\]", capsys.readouterr().out, re.M)
    assert counts[-1] == ("16", "16"), counts
    # and one whose last results are the dropped config's periods, recorded without training (8 configs x 5
    # periods, 3 epochs: the drop comes after period 3); it ended at [40/~50]
    months = [[f"2013-{m:02d}-01", f"2013-{m:02d}-15"] for m in range(1, 6)]
    lrs = [0.001, 0.0011, 0.0012, 0.0013, 0.0014, 0.0015, 0.0016, 0.0017]

    def apart(trial: Trial) -> Script:
        lr = float(trial.params["lr"])
        return Script(curve=[9.0, 9.0] if lr == 0.0014 else [2.0, 1.0 + lr])  # the last config of each period

    spec = load_spec(write_spec(tiny_spec(date_ranges=months, parameters={"lr": lrs, "hidden_size": [8]},
                                          search={"race": True}, training={"epochs": 2})))
    run_spec(spec, RunOptions(sink=str(tmp_path / "late")), Reporter(bar=False), backend=FakeBackend(apart))
    out = capsys.readouterr().out
    counts = re.findall(r"^\[\s*(\d+)/(~?\d+)\]", out, re.M)
    last = out.splitlines()[out.splitlines().index("finalists: nothing left to complete (5 configs ran every period)") - 1]
    assert "dropped after" in last and counts[-1] == ("40", "40"), counts


def test_a_resumed_race_drops_the_same_config_and_trains_nothing_twice(write_spec: Any, tmp_path: Path) -> None:
    spec = race_spec(write_spec)
    first, _ = run(spec, tmp_path / "res", _interrupt_at(10, constructed), grace=0)
    assert first.exit_code == 130
    done = set(rows_of(tmp_path / "res").query("status == 'ok'")["trial_id"])
    again, backend = run(spec, tmp_path / "res")
    submitted = {tid for what, tid in backend.log if what == "submit"}
    assert not submitted & done and len(submitted) == 15 - len(done)
    trials = by_lr(rows_of(tmp_path / "res").drop_duplicates("trial_id", keep="last"))
    assert [s for s, _ in trials[0.1]] == ["ok", "ok", "ok", "pruned"]


def test_race_spec_errors_are_one_line(write_spec: Any, cli: Any) -> None:
    for search, message in (
            ({"race": "yes"}, 'search.race: expected true or false, got "yes"'),
            ({"race": True, "strategy": "tpe", "max_trials": 4},
             "search.race: racing works with the grid and random strategies, not tpe"),
            ({"race": True, "early_stopping": "asha"}, "search.race: racing drops configs between periods; it does not "
                                                        "combine with early_stopping")):
        out = cli("plan", str(write_spec(tiny_spec(search=search))))
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_race_through_the_cli_ends_with_a_verdict_and_says_which_config_it_dropped(write_spec: Any, cli: Any,
                                                                                   tmp_path: Path) -> None:
    """Real training: lr=1e-7 barely moves in two epochs and is last in every period, lr=0.01 first."""
    weeks = [[f"2013-0{m}-01", f"2013-0{m}-08"] for m in range(1, 5)]
    spec = write_spec(tiny_spec(date_ranges=weeks, search={"race": True},
                                parameters={"lr": [1e-7, 0.0003, 0.001, 0.003, 0.01], "hidden_size": [8]},
                                training={"epochs": 2}))
    plan = hpt_here("plan", str(spec))
    assert plan.exit_code == 0 and "race: configs run period by period\n  after period 3, the configs" in plan.stdout
    # a config the race drops has run 3 of the 4 periods: the 3 finalists add at most 3 trials, not 12
    assert "without early stopping (at most 3 more trials; rows tagged finalist)" in plan.stdout, plan.stdout
    out = cli("run", str(spec), "--sink", str(tmp_path / "res"), "--workers", "2")
    assert out.returncode == 0, out.stderr
    rows = rows_of(tmp_path / "res")
    slow = rows[rows["param_lr"] == 1e-7].sort_values("period_start")
    assert list(slow["status"]) == ["ok", "ok", "ok", "pruned"], slow[["status", "val_mse"]]
    reason = slow["error"].iloc[3]
    assert reason.startswith("dropped after 3 periods: worse than ") and "(Nemenyi p=0.0" in reason
    assert "race: after 3 periods, 1 config worse than" in out.stdout and reason in out.stdout
    results = hpt_here("results", str(tmp_path / "res"))
    assert results.exit_code == 0 and "Is the winner real?" in results.stdout
    assert "Dropped by the race: 1 config with a pruned period" in results.stdout and reason in results.stdout
    assert "  pruned: periods stopped early or dropped (not trained), of those with a row; " in results.stdout
    assert "Configs ranked by mean val_mse over 4 periods (full runs: 16 ok trials, 4 configs)" in results.stdout
    again = hpt_here("run", str(spec), "--sink", str(tmp_path / "res"), "--workers", "2")
    assert again.exit_code == 0 and "skipping 20 trials already done" in again.stdout, again.stdout
    assert len(rows_of(tmp_path / "res")) == 20  # nothing trained again, the dropped period not either


def test_with_more_finalists_than_survivors_a_dropped_config_is_completed_and_ranked(write_spec: Any,
                                                                                     tmp_path: Path) -> None:
    summary, backend = run(race_spec(write_spec, finalists=4), tmp_path / "res")
    rows = rows_of(tmp_path / "res").drop_duplicates("trial_id", keep="last")
    dropped = rows[rows["param_lr"] == 0.1].sort_values("period_start")
    assert list(dropped["status"]) == ["ok"] * 4 and dropped["finalist"].iloc[3] == 1  # its ok row replaces the pruned one
    assert summary.counts == {"ok": 16} and summary.ended == 17 and len(summary.again) == 1  # each trial as its row
    verdict = summarise(load_results(str(tmp_path / "res")), "val_mse").verdict
    assert verdict.configs == 4 and verdict.best == rows[rows["param_lr"] == 0.001]["config_id"].iloc[0]
