"""Early stopping (search.early_stopping) on the fake backend: period-aware, live, resumable; and the shared search keys."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.backends.fake import FakeBackend, Script
from hpt.errors import SpecError
from hpt.progress import Reporter, format_params
from hpt.runner import RunOptions, run_spec
from hpt.scheduling import make_scheduler
from hpt.scheduling.checkpoints import Checkpoints
from hpt.scheduling.pruning import Pruning, rungs
from hpt.spec import load_spec
from hpt.spec.search import EarlyStopping, parse_duration
from hpt.trial import Progress, Trial, waits
from tests.conftest import tiny_spec, trial_row_objects

ASHA = {"kind": "asha", "min_epochs": 1, "reduction_factor": 3}
LRS = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03]


def rows_of(folder: Path) -> pd.DataFrame:
    """Every row object at a results folder (the record of truth), in the order the trials started."""
    return pd.DataFrame(trial_row_objects(folder)).sort_values(["started_at", "trial_id"]).reset_index(drop=True)


def loss(trial: Trial) -> float:
    """A loss that is lowest at lr=0.01 (1 to 2 in January), ten times larger in the February period."""
    import math

    scale = 10.0 if trial.period.start_text == "2013-02-01" else 1.0
    return scale * (1 + abs(math.log10(float(trial.params["lr"])) + 2) / 4)


def falling(trial: Trial, epochs: int = 9) -> Script:
    return Script(curve=[loss(trial) * (1 + 3 / e) for e in range(1, epochs + 1)])


def spec_with(write_spec: Any, search: dict[str, Any], **overrides: Any) -> Any:
    overrides.setdefault("parameters", {"lr": LRS, "hidden_size": [8]})
    doc = tiny_spec(search={"strategy": "grid", "seed": 0, **search}, **overrides)
    doc["training"] = {**doc["training"], "epochs": 9}
    return load_spec(write_spec(doc))


def run(spec: Any, folder: Path, script: Callable[[Trial], Script], slots: int = 1, **options: Any) -> Any:
    backend = FakeBackend(script, slots=slots)
    summary = run_spec(spec, RunOptions(sink=str(folder), **options), Reporter(bar=False), backend=backend)
    return summary, backend


def test_the_shared_search_keys_are_checked_with_json_paths_for_every_strategy(
        write_spec: Any, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    old = "old"
    (tmp_path / old).mkdir()  # an existing folder (a missing one is refused: tests/test_run.py)
    for strategy in ("grid", "random", "auto", "tpe"):
        extra = {"max_trials": 2} if strategy in ("random", "tpe") else {}
        spec_file = write_spec(tiny_spec(search={"strategy": strategy, **extra, "early_stopping": "asha",
                                                 "budget": "1h30m", "warm_start": [old]}))
        (spec_file.parent / old).mkdir(exist_ok=True)  # an existing folder, next to the spec (a missing one: test_run.py)
        spec = load_spec(spec_file)
        assert spec.search.early_stopping == EarlyStopping("asha", 2 if strategy == "tpe" else 1, 3)  # tpe: epoch 2
        assert spec.search.budget is not None and spec.search.budget.seconds == 5400
        assert spec.search.warm_start == (str(spec_file.parent / old),)  # a folder relative to the spec's
    bad = {"strategy": "tpe", "early_stopping": {"kind": "asha", "reduction_factor": 1, "min_epoch": 2, "min_trials": 0},
           "budget": "2 weeks", "warm_start": [old, old, 3], "startup_trials": 0}
    with pytest.raises(SpecError) as e:
        load_spec(write_spec(tiny_spec(search=bad)))
    assert [f"{p.path}: {p.message}" for p in e.value.problems] == [
        "search.max_trials: required for tpe search (how many configs to try)",
        "search.startup_trials: expected an integer >= 1, got 0",
        'search.early_stopping.min_epoch: unknown key (did you mean "min_epochs"?); valid: kind, min_epochs, '
        "reduction_factor, min_trials, resource, min_share",
        "search.early_stopping.reduction_factor: expected an integer >= 2, got 1",
        "search.early_stopping.min_trials: expected an integer >= 1, got 0",
        'search.budget: expected a duration such as "2h", "90m" or "1h30m", or a number of trials >= 1, got "2 weeks"',
        'search.warm_start[1]: "old" is listed twice',
        "search.warm_start[2]: expected a folder, gs:// or s3:// URI, got 3",
    ]
    with pytest.raises(SpecError, match=r"search.early_stopping.kind: expected one of asha, hyperband, median, "
                                         r'got "sha"'):
        load_spec(write_spec(tiny_spec(search={"early_stopping": {"kind": "sha"}})))
    with pytest.raises(SpecError, match="search.early_stopping.reduction_factor: median stopping has no reduction"):
        load_spec(write_spec(tiny_spec(search={"early_stopping": {"kind": "median", "reduction_factor": 3}})))
    with pytest.raises(SpecError, match=r"search.early_stopping.min_epochs: 3 is not below the most epochs a trial "
                                         r"runs \(3\): no trial could be stopped early; train more epochs or remove "
                                         r"early_stopping"):
        load_spec(write_spec(tiny_spec(search={"early_stopping": {"kind": "asha", "min_epochs": 3}})))
    with pytest.raises(SpecError, match=r"search.early_stopping.min_epochs: 1 \(the default\) is not below the most "
                                         r"epochs a trial runs \(1\)"):  # a key the spec does not name: say why
        load_spec(write_spec(tiny_spec(search={"early_stopping": "asha"}, training={"epochs": 1})))
    with pytest.raises(SpecError, match=r'parameters.lr: a distribution needs "search": \{"strategy": "random" or '
                                         r'"auto" or "tpe"\}; grid search takes a list of values'):
        load_spec(write_spec(tiny_spec(parameters={"lr": {"loguniform": [1e-4, 1e-2]}})))
    # as a user sees it: one line per problem with its JSON path, exit 2, no traceback
    out = cli("validate", str(write_spec(tiny_spec(search={"budget": 0, "early_stopping": {"kind": "asha",
                                                                                             "min_epochs": "2"}}))))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.splitlines()[0].endswith("search.early_stopping.min_epochs: expected an integer >= 1, got \"2\"")
    assert "search.budget: expected a duration" in out.stderr and len(out.stderr.splitlines()) == 2
    assert parse_duration("2h") == 7200 and parse_duration("1.5d") == 129600 and parse_duration("h") is None


def test_rungs_are_where_trials_are_compared() -> None:
    assert rungs(EarlyStopping("asha", 2, 3), 50) == [2, 6, 18]
    assert rungs(EarlyStopping("hyperband", 1, 2), 9) == [1, 2, 4, 8]
    assert rungs(EarlyStopping("median", 3), 6) == [3, 4, 5]
    assert rungs(EarlyStopping("asha", 2, 3), 2) == []


def test_a_period_with_ten_times_the_loss_never_stops_trials_of_another_period(write_spec: Any,
                                                                               tmp_path: Path) -> None:
    spec = spec_with(write_spec, {"early_stopping": ASHA})
    summary, backend = run(spec, tmp_path / "res", falling, slots=2)  # a config's two periods run side by side
    rows = rows_of(tmp_path / "res")
    assert summary.counts["pruned"] >= 2 and summary.counts["ok"] >= 2
    by_config = rows.pivot(index="param_lr", columns="period_start", values="status")
    # the February loss is ten times January's for every config: were periods compared with each other, every
    # February trial would look worse than the January ones and be stopped
    assert (by_config["2013-01-01"] == by_config["2013-02-01"]).all(), by_config
    assert (by_config.loc[0.01] == "ok").all()  # the best config survives in both periods
    # every February value is above every January value, at every epoch: measured against January, no February
    # trial would have gone on
    feb, jan = (rows[rows["period_start"] == start] for start in ("2013-02-01", "2013-01-01"))
    highest_jan = max(pd.read_csv(tmp_path / "res" / "curves" / f"{t}.csv")["val_mse"].max() for t in jan["trial_id"])
    assert feb["val_mse"].min() > highest_jan
    assert (feb["status"] == "ok").sum() >= 2


def test_stopped_trials_are_pruned_rows_with_their_curve_and_the_rung_in_the_log(write_spec: Any, tmp_path: Path,
                                                                                 capsys: Any) -> None:
    spec = spec_with(write_spec, {"early_stopping": ASHA, "finalists": 0})  # no finalist's ok row replaces a pruned one
    summary, backend = run(spec, tmp_path / "res", falling, slots=2)
    out = capsys.readouterr().out
    assert "12 trials (6 configs x 2 periods), early stopping asha of mlp" in out
    rows = rows_of(tmp_path / "res")
    pruned = rows[rows["status"] == "pruned"]
    submitted = [tid for what, tid in backend.log if what == "submit"]
    again = len(submitted) - len(set(submitted))  # waited at the first rung, then ran again: its new row replaced
    assert again >= 1 and len(pruned) > 0  # ... the pruned one
    # each trial counted once, as its row says (as hpt results counts them); the results the progress counter counted
    assert summary.counts == rows["status"].value_counts().to_dict()
    assert re.search(rf"^run \S+ finished in \S+: {len(rows) - len(pruned)} ok, {len(pruned)} pruned \({again} "
                     rf"stopped trials? ran again: {len(submitted)} results for {len(rows)} trials, each counted once, "
                     r"as its row says\)$", out, re.M), out
    assert re.search(rf"^\[{len(submitted)}/{len(submitted)}\] ", out, re.M), out
    # stopped at the first rung before 3 others got there, then judged there once they had, out of their best third:
    # not run again. The log said it waits, then what came of it; its row, which said it waits, now says that too
    waited = pruned[pruned["error"].str.endswith(", where it waited)")]
    assert len(waited) >= 1 and not pruned["error"].str.contains("it waits").any()
    for r in waited.itertuples():
        assert re.search(rf"^\[ ?\d+/~?\d+\] pruned +\S+  lr={r.param_lr:.4g} hidden_size=8  pruned at epoch 1 \(rung 0: it "
                         r"waits for 3 other trials of its period, [0-2] there so far\)  val_mse=", out, re.M), out
        behind = re.fullmatch(r"pruned at epoch 1 \(rung 0, (behind \d+ of \d+ trials of its period), where it waited\)",
                              r.error)
        assert r.epochs == 1 and behind, r.error
        assert re.search(rf"^early stopping: \S+ lr={r.param_lr:.4g} hidden_size=8 waited at epoch 1 and stays "
                         rf"stopped \(rung 0, {behind.group(1)}\)$", out, re.M), out
    for_config = pruned[pruned["error"].str.contains("(its config was stopped in ", regex=False)]
    for r in for_config.itertuples():  # stopped because its other period was, as it trained or as it waited
        where = re.fullmatch(r"pruned at epoch (\d+) \((its config was stopped in \S+)\)", r.error)
        assert where, r.error
        assert re.search(rf"lr={r.param_lr:.4g} hidden_size=8 +(waited at epoch {where.group(1)} and stays stopped|pruned "
                         rf"at epoch {where.group(1)}) \({re.escape(where.group(2))}", out), out
    for r in pruned.drop([*waited.index, *for_config.index]).itertuples():
        m = re.fullmatch(r"pruned at epoch (\d+) \(rung (\d+), behind (\d+) of (\d+) trials of its period\)", r.error)
        assert m, r.error
        epoch, rung = int(m.group(1)), int(m.group(2))
        assert 1 <= int(m.group(3)) <= int(m.group(4))  # the others of its period at that epoch, some better
        assert epoch == 3 ** rung  # min_epochs 1, reduction factor 3: rungs at epochs 1, 3, 9
        assert r.epochs == epoch  # the row is as of the decision, however late the stop reached the trial
        curve = pd.read_csv(tmp_path / "res" / "curves" / f"{r.trial_id}.csv")
        assert len(curve) == r.epochs and r.val_mse == curve["val_mse"].min()  # best so far
        assert re.search(rf"\] pruned +\S+ +lr={r.param_lr:.4g} hidden_size=8  pruned at epoch {epoch} "
                         rf"\(rung {rung}, behind \d+ of \d+ trials of its period\)  val_mse=", out)
    ok = rows[rows["status"] == "ok"]
    assert (ok["epochs"] == 9).all() and (ok["error"] == "").all()  # models: see the end-to-end test


def test_the_other_periods_of_a_stopped_config_are_not_started(write_spec: Any, cli: Any, tmp_path: Path,
                                                               capsys: Any) -> None:
    spec = spec_with(write_spec, {"early_stopping": ASHA, "finalists": 0})  # a finalist would start them
    summary, backend = run(spec, tmp_path / "res", falling, slots=1)
    rows = rows_of(tmp_path / "res")
    started = rows.groupby("config_id")["status"].agg(list)
    assert all(statuses[-1] == "pruned" or statuses == ["ok", "ok"] for statuses in started), started
    assert (started.map(len) == 1).any()  # stopped in January: February never started
    assert len({e[1] for e in backend.log if e[0] == "submit"}) == len(rows) < 12
    said = capsys.readouterr().out
    assert re.search(r"^early stopping: config [0-9a-f]{12} \(lr=\S+ hidden_size=8\) was stopped in 2013-\S+; a config "
                     r"with a stopped period is never ranked, so its other periods stop \(at their next epoch, when they "
                     r"are training\) or are not started; the same goes for every stopped config$",
                     said, re.M)  # which config: its values, as every other line names them
    assert said.count("is never ranked") == 1, said  # once a run
    summary, backend = run(spec, tmp_path / "res", falling, slots=1)  # nothing left: the earlier run said it
    assert not backend.log and summary.skipped == len(rows)
    assert "early stopping:" not in capsys.readouterr().out
    # hpt plan marks them, and counts as done what the run skips (not the trials of another fidelity)
    listed = cli("plan", str(spec.source), "--sink", str(tmp_path / "res")).stdout
    never = rows.groupby("config_id").filter(lambda g: len(g) == 1)["config_id"]
    assert listed.count("(its config was stopped in another period)") == len(never) > 0, listed
    assert f"({len(rows)} trials already done)" in listed
    quick = cli("plan", str(spec.source), "--sink", str(tmp_path / "res"), "--quick").stdout
    assert "already done" not in quick and "(done)" not in quick, quick


def test_a_search_too_small_for_early_stopping_or_racing_to_do_anything_is_warned_about(
        write_spec: Any, cli: Any, tmp_path: Path, capsys: Any) -> None:
    warning = ("warning: early stopping cannot stop any trial here: a trial is judged only once 3 other trials of its "
               "period got as far (early_stopping.min_trials), and this search has 3 configs; tune more configs or "
               "lower min_trials")
    three = spec_with(write_spec, {"early_stopping": "asha"}, parameters={"lr": LRS[:3], "hidden_size": [8]})
    assert warning in cli("plan", str(three.source)).stdout
    run(three, tmp_path / "three", falling)
    assert warning in capsys.readouterr().out
    run(spec_with(write_spec, {"early_stopping": "asha"}), tmp_path / "six", falling)  # 6 configs: it can
    run(spec_with(write_spec, {"early_stopping": {"kind": "asha", "min_trials": 2}},
                  parameters={"lr": LRS[:3], "hidden_size": [8]}), tmp_path / "two", falling)  # judged against 2
    assert "warning: early stopping cannot" not in capsys.readouterr().out
    many = spec_with(write_spec, {"early_stopping": "asha", "finalists": 10})  # 6 configs
    assert ("warning: search.finalists 10 is more than the 6 configs this search has: at most 6 can be completed"
            in cli("plan", str(many.source)).stdout)
    run(spec_with(write_spec, {"race": True}), tmp_path / "race", falling)  # 2 periods
    assert ("warning: racing cannot drop any config with 2 periods (its tests need 3 periods, and a period left to "
            "save): add periods") in capsys.readouterr().out


@pytest.mark.parametrize("min_trials", [6, 3])
def test_no_trial_waits_at_the_first_rung_for_more_trials_than_the_search_has(write_spec: Any, tmp_path: Path,
                                                                               min_trials: int) -> None:
    # 3 configs x 2 periods: a period has 2 other trials, so no trial can ever have min_trials (3, 6) others; each
    # waited at its first rung, then ran again once the search had started its last trial (twice the result
    # lines, and no decision)
    spec = spec_with(write_spec, {"early_stopping": {"kind": "asha", "min_trials": min_trials}},
                     parameters={"lr": LRS[:3], "hidden_size": [8]})
    summary, backend = run(spec, tmp_path / "res", falling)
    assert summary.counts == {"ok": 6} and len([what for what, _ in backend.log if what == "submit"]) == 6
    assert not [r for r in trial_row_objects(tmp_path / "res") if "waits" in str(r.get("error") or "")]


def test_a_rerun_without_early_stopping_trains_the_pruned_trials_to_their_last_epoch(
        write_spec: Any, cli: Any, tmp_path: Path, capsys: Any) -> None:
    """Turning early stopping off and running again completes the configs it had stopped: a pruned row is not done
    for a spec that stops nothing early (before, it was skipped, and its config never ranked)."""
    res = tmp_path / "res"
    spec = spec_with(write_spec, {"early_stopping": ASHA, "finalists": 0})
    run(spec, res, falling)
    before = rows_of(res)
    pruned = set(before.loc[before["status"] == "pruned", "trial_id"])
    ok = set(before.loc[before["status"] == "ok", "trial_id"])
    assert pruned and ok
    capsys.readouterr()
    plain = spec_with(write_spec, {})  # the same trials (ids), no early stopping
    listed = cli("plan", str(plain.source), "--sink", str(res)).stdout
    assert all(re.search(rf"{t} .*\(pruned earlier; trains again\)$", listed, re.M) for t in pruned), listed
    assert f"({len(ok)} trials already done)" in listed
    summary, backend = run(plain, res, falling)
    out = capsys.readouterr().out
    assert f"{len(pruned)} pruned rows at the location are from early stopping or racing, which this run does not " \
           "use: the trials among them it runs are trained to their last epoch" in out
    assert f"skipping {len(ok)} trials already done" in out
    submitted = [tid for what, tid in backend.log if what == "submit"]
    assert set(submitted) == pruned | (set(plain_ids(plain)) - pruned - ok)  # ok rows are kept, never retrained
    after = rows_of(res).set_index("trial_id")
    assert (after["status"] == "ok").all() and (after["epochs"] == 9).all() and len(after) == 12
    assert summary.counts == {"ok": len(submitted)}
    # with early stopping on again, nothing is left: every trial is done
    summary, backend = run(spec, res, falling)
    assert not [tid for what, tid in backend.log if what == "submit"]


@pytest.mark.parametrize("at", [None, 4, 7])
def test_a_tpe_rerun_without_early_stopping_completes_its_configs_and_resumes_as_if_never_stopped(
        write_spec: Any, tmp_path: Path, capsys: Any, at: int | None) -> None:
    """The configs an earlier tpe+asha run stopped keep their places (and numbers) in the study and run their
    missing periods first; cut by Ctrl-C at `at` trials and resumed, the rerun ends with the same rows."""
    lr = {"loguniform": [1e-4, 0.1]}
    tpe = {"strategy": "tpe", "max_trials": 8, "startup_trials": 4}
    es = spec_with(write_spec, {**tpe, "early_stopping": ASHA, "finalists": 0}, parameters={"lr": lr, "hidden_size": [8]})
    plain = spec_with(write_spec, tpe, parameters={"lr": lr, "hidden_size": [8]})
    for name in ("whole", "cut"):
        run(es, tmp_path / name, falling)
    before = rows_of(tmp_path / "whole")
    pruned = (before["status"] == "pruned").sum()
    assert pruned >= 4
    capsys.readouterr()
    run(plain, tmp_path / "whole", falling)
    assert f"{pruned} pruned rows at the location are from early stopping or racing" in capsys.readouterr().out
    whole = rows_of(tmp_path / "whole")
    assert (whole["status"] == "ok").all() and len(whole) == 16  # its 8 configs, the earlier ones, all ranked
    assert set(whole["config_id"]) == set(before["config_id"])  # ... the same 8 configs (none asked afresh)
    assert whole.groupby("config_id")["tpe_trial"].nunique().max() == 1  # one number per config
    if at is None:
        return
    first, _ = run(plain, tmp_path / "cut", _interrupt_at(at, falling), grace=0)
    assert first.exit_code == 130
    run(plain, tmp_path / "cut", falling)
    columns, key = ["tpe_trial", "param_lr", "period_start", "status", "epochs"], ["tpe_trial", "period_start"]
    cut = rows_of(tmp_path / "cut")
    assert cut[columns].sort_values(key).reset_index(drop=True).equals(whole[columns].sort_values(key).reset_index(drop=True))


def plain_ids(spec: Any) -> list[str]:
    from hpt.search import expand

    return [t.trial_id for t in expand(spec)]


def test_a_running_period_of_a_config_stopped_in_another_stops_at_its_next_epoch(write_spec: Any) -> None:
    from hpt.trial import Status, TrialResult

    spec = spec_with(write_spec, {"early_stopping": {**ASHA, "min_trials": 1}, "finalists": 0})
    scheduler = make_scheduler(spec)
    scheduler.restore({})
    trials = [scheduler.suggest() for _ in range(12)]  # every trial started: none waits at the first rung
    assert all(isinstance(t, Trial) for t in trials)
    jan, feb = trials[0].period, trials[1].period  # a config's periods one after the other: side by side on 2 slots
    mine, other = trials[0], trials[1]
    assert isinstance(mine, Trial) and isinstance(other, Trial) and mine.config_id == other.config_id and jan != feb
    for t, value in zip([t for t in trials[2:] if isinstance(t, Trial) and t.period == jan][:3], (0.5, 0.6, 0.7), strict=True):
        scheduler.on_progress(Progress(t, 1, {"val_mse": value}))  # January's others, all better than 1.0
    assert scheduler.on_progress(Progress(other, 1, {"val_mse": 9.0})) is None  # alone in February so far: goes on
    stop = scheduler.on_progress(Progress(mine, 1, {"val_mse": 1.0}))
    assert stop == "pruned at epoch 1 (rung 0, behind 3 of 3 trials of its period)"
    scheduler.on_result(TrialResult(mine, Status.PRUNED, {"val_mse": 1.0, "epochs": 1}, error=stop))
    # February is no worse than anything there, but its config can no longer be ranked: it stops at its next epoch
    assert scheduler.on_progress(Progress(other, 2, {"val_mse": 8.0})) == (
        f"pruned at epoch 2 (its config was stopped in {jan.label})")


def test_periods_of_a_stopped_config_that_train_side_by_side_stop_at_their_next_epoch(write_spec: Any, tmp_path: Path,
                                                                                     capsys: Any) -> None:
    params = {"lr": LRS + [0.02, 0.005], "hidden_size": [8, 16]}
    spec = spec_with(write_spec, {"early_stopping": ASHA, "finalists": 0}, parameters=params)
    run(spec, tmp_path / "res", falling, slots=3)  # a config's two periods start one after the other
    out = capsys.readouterr().out
    rows = rows_of(tmp_path / "res")
    mine = rows[rows["error"].str.contains("its config was", regex=False)]
    assert len(mine) >= 1
    for r in mine.itertuples():
        m = re.fullmatch(r"pruned at epoch (\d+) \(its config was stopped in (\S+)\.\.\S+\)", r.error)
        assert m and r.status == "pruned" and int(m.group(1)) == r.epochs < 9, r.error
        other = rows[(rows["config_id"] == r.config_id) & (rows["trial_id"] != r.trial_id)]
        assert list(other["period_start"]) == [m.group(2)] and other["error"].iloc[0].startswith("pruned at epoch")
        assert len(pd.read_csv(tmp_path / "res" / "curves" / f"{r.trial_id}.csv")) == r.epochs
        said = (f"pruned at epoch {r.epochs} (its config was stopped in {m.group(2)}",  # stopped as it trained, or
                f"waited at epoch {r.epochs} and stays stopped (its config was stopped in {m.group(2)}")  # as it waited
        assert any(line in out for line in said), out


def test_where_a_trial_stopped_unjudged_is_not_held_against_its_config() -> None:
    from hpt.scheduling.pruning import Reached, halving_standing, stopped_unjudged

    for_config = "pruned at epoch 2 (its config was stopped in 2013-01-01..2013-01-31)"
    waited = "pruned at epoch 1 (rung 0: it waits for 3 other trials of its period, 1 there so far)"
    assert stopped_unjudged(for_config) and stopped_unjudged(waited) and waits({"status": "pruned", "error": waited})
    # as rows of hpt before 2026-12-07 said them
    assert stopped_unjudged(f"{for_config[:-1]}; a config with a stopped period is never ranked)")
    old_wait = ("pruned at epoch 1 (rung 0: 1 of the 3 other trials of its period it is judged with got there so far; it "
                "waits, and runs again if it is then in their best 1/3)")
    assert stopped_unjudged(old_wait) and waits({"status": "pruned", "error": old_wait})
    assert not stopped_unjudged("pruned at epoch 2 (rung 0, behind 3 of 3 trials of its period)")
    jan = {1: 0.4, 2: 0.39, 3: 0.38}  # the best at epoch 1, behind at epoch 3
    curves = {"a-jan": jan, "b-jan": jan, "c-jan": {1: 0.5, 3: 0.3}, "d-jan": {1: 0.6, 3: 0.32},
              "e-jan": {1: 0.7, 3: 0.34}, "f-jan": {1: 0.45}, "h-jan": {1: 0.1},
              "a-feb": {1: 4.0, 2: 3.9}, "c-feb": {1: 6.0, 3: 5.0}, "d-feb": {1: 7.0, 3: 5.1}, "e-feb": {1: 8.0, 3: 5.2},
              "k-feb": {1: 9.0, 3: 5.25}, "l-feb": {1: 10.0, 3: 5.4}, "h-feb": {1: 4.5, 3: 5.3}}

    def trials(unjudged: bool) -> dict[str, Reached]:
        out = {"a-jan": Reached("a", "jan", "pruned", 3, float("inf")), "b-jan": Reached("b", "jan", "pruned", 3, 0),
               # February's trial of config a, the best there, stopped at epoch 2 because January's was stopped
               "a-feb": Reached("a", "feb", "pruned", 2, float("inf"), unjudged=unjudged),
               # waited at the first rung: f's behind too many there, h's the best (h's February was stopped at 3)
               "f-jan": Reached("f", "jan", "pruned", 1, float("inf"), unjudged=unjudged),
               "h-jan": Reached("h", "jan", "pruned", 1, float("inf"), unjudged=unjudged),
               "h-feb": Reached("h", "feb", "pruned", 3, float("inf"))}
        for c in "cde":
            out[f"{c}-jan"] = Reached(c, "jan", "ok", 9, curves[f"{c}-jan"][3])
        for c in "cdekl":
            out[f"{c}-feb"] = Reached(c, "feb", "ok", 9, curves[f"{c}-feb"][3])
        return out

    stopping = EarlyStopping("asha", 1, 3, min_trials=1)  # rungs at epochs 1 and 3 of 9
    standing = halving_standing(trials(True), curves, stopping, 9)
    # a got as far as January took it, as b (the same January, no February): the same reach and place
    assert standing["a"] == standing["b"] == (3, 0.75)
    assert standing["h"][0] == 3  # its February says how far it gets; January's wait passes the first rung
    assert standing["f"][0] == 1  # judged at the first rung where it waited: out of the best third there
    taken = halving_standing(trials(False), curves, stopping, 9)  # as if stopped there on their own merits
    assert taken["a"][0] == 2 and taken["h"][0] == 1


def _interrupt_at(n: int, script: Callable[[Trial], Script]) -> Callable[[Trial], Script]:
    count = [0]

    def wrapped(trial: Trial) -> Script:
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGINT)
        return script(trial)

    return wrapped


@pytest.mark.parametrize("kind", ["asha", "hyperband", "median"])
def test_resume_after_ctrl_c_makes_the_same_prunes_and_trains_nothing_twice(write_spec: Any, tmp_path: Path,
                                                                            kind: str, capsys: Any) -> None:
    stopping = {"kind": kind, "min_epochs": 1} | ({"reduction_factor": 2} if kind != "median" else {})
    params = {"lr": LRS + [0.02, 0.005], "hidden_size": [8, 16]}
    spec = spec_with(write_spec, {"early_stopping": stopping}, parameters=params)
    whole, whole_backend = run(spec, tmp_path / "whole", falling)
    first, _ = run(spec, tmp_path / "cut", _interrupt_at(7, falling), grace=0)
    assert first.exit_code == 130 and first.counts["interrupted"] == 1
    cut = rows_of(tmp_path / "cut")
    before, finished = set(cut["trial_id"]), set(cut[cut["status"].isin(["ok", "pruned"])]["trial_id"])
    capsys.readouterr()
    again, backend = run(spec, tmp_path / "cut", falling)
    submitted = [tid for what, tid in backend.log if what == "submit"]
    # skipped: the first run's trials this one did not train (one that waited at the first rung and is judged in now
    # runs again, as this run's); each trial is skipped or this run's
    assert again.exit_code == 0 and again.skipped == len(before - set(submitted)) >= 2
    assert again.skipped + sum(again.counts.values()) == len(rows_of(tmp_path / "cut"))
    # the last line adds up to the first line's "skipping N trials": skipped, or done before and trained again
    out = capsys.readouterr().out
    redone = len(finished & set(submitted))
    assert f"skipping {len(finished)} trials already done" in out and again.redone == redone
    assert f"; {again.skipped} skipped as already done" + (f", {redone} done before trained again\n" if redone else "\n") \
        in out, out
    assert again.skipped + redone == len(finished)
    if kind == "asha":
        assert redone  # a trial that waited at the first rung, judged in now
    done_before = set(rows_of(tmp_path / "cut")["trial_id"]) - set(submitted)
    assert not set(submitted) & done_before  # nothing finished or pruned ran twice
    columns = ["trial_id", "status", "epochs", "error"]
    expected = rows_of(tmp_path / "whole")[columns].sort_values("trial_id").reset_index(drop=True)
    assert rows_of(tmp_path / "cut")[columns].sort_values("trial_id").reset_index(drop=True).equals(expected)
    ran = [tid for what, tid in whole_backend.log if what == "submit"]
    again = len(ran) - len(set(ran))  # asha: waited at the first rung, then ran again (each trial counted once)
    assert whole.counts == expected["status"].value_counts().to_dict() and whole.ended == len(ran)
    assert (again > 0) == (kind == "asha")
    if kind != "median":
        assert whole.counts["pruned"] > 0


def test_the_pruner_is_consulted_every_epoch_and_stops_reach_the_backend(write_spec: Any) -> None:
    spec = spec_with(write_spec, {"early_stopping": {**ASHA, "min_trials": 1}, "finalists": 0})
    said: list[str] = []
    scheduler = make_scheduler(spec, said.append)
    assert isinstance(scheduler, Pruning)
    scheduler.restore({})
    from hpt.trial import Progress, Status, TrialResult

    first, second = scheduler.suggest(), scheduler.suggest()
    assert isinstance(first, Trial) and isinstance(second, Trial) and first.period != second.period
    # one trial per period: each is the only one of its period at rung 0, with more trials to start: each waits there
    for t, value in ((first, 5.0), (second, 50.0)):
        why = scheduler.on_progress(Progress(t, 1, {"val_mse": value}))
        assert why == "pruned at epoch 1 (rung 0: it waits for 1 other trials of its period, 0 there so far)"
        scheduler.on_result(TrialResult(t, Status.PRUNED, {"val_mse": value, "epochs": 1}, error=why))
    third, fourth = scheduler.suggest(), scheduler.suggest()  # new trials: the waiting ones lack their evidence
    assert isinstance(third, Trial) and isinstance(fourth, Trial) and third.period == first.period
    assert third.trial_id != first.trial_id and fourth.trial_id != second.trial_id
    # worse than the first trial of its own period at rung 0: stopped; better than it: goes on (even at 40 > 5)
    stop = scheduler.on_progress(Progress(third, 1, {"val_mse": 6.0}))
    assert stop == "pruned at epoch 1 (rung 0, behind 1 of 1 trials of its period)"
    assert scheduler.on_progress(Progress(fourth, 1, {"val_mse": 40.0})) is None
    # the waiting trials are judged by their value there: the first, in front of the third, is in; the second,
    # behind the fourth, stays stopped. They are the two periods of one config, which can then no longer be
    # ranked: the first stays stopped too, and a new trial starts in its place
    scheduler.on_result(TrialResult(third, Status.PRUNED, {"val_mse": 6.0, "epochs": 1}, error=stop))
    # their rows, which said they wait, are written again to say what came of them (not new results), then a new trial
    restated = [scheduler.suggest(), scheduler.suggest()]
    assert all(isinstance(r, TrialResult) and r.amends and r.status is Status.PRUNED for r in restated)
    assert [(r.trial.trial_id, r.error, r.metrics["val_mse"]) for r in restated if isinstance(r, TrialResult)] == [
        (second.trial_id, "pruned at epoch 1 (rung 0, behind 1 of 1 trials of its period, where it waited)", 50.0),
        (first.trial_id, f"pruned at epoch 1 (its config was stopped in {second.period.label})", 5.0)]
    nxt = scheduler.suggest()
    assert isinstance(nxt, Trial) and nxt.trial_id not in {first.trial_id, second.trial_id}
    values = format_params(first.tuned_params)
    assert said[-3:] == [
        f"early stopping: {second.period.label} {values} waited at epoch 1 and stays stopped (rung 0, behind 1 of 1 "
        "trials of its period)",
        f"early stopping: {first.period.label} {values} waited at epoch 1 and stays stopped (its config was stopped in "
        f"{second.period.label})",
        f"early stopping: config {first.config_id} ({values}) was stopped in {second.period.label}; a config with a "
        "stopped period is never ranked, so its other periods stop (at their next epoch, when they are training) or "
        "are not started; the same goes for every stopped config"]


def test_resuming_judges_waiting_rows_the_run_had_no_time_to_judge(write_spec: Any, tmp_path: Path) -> None:
    """A run killed between a trial's waiting row and the row that says what came of it (here: rows of a finished
    run put back as they were): resuming writes the row of a waiting trial whose config was stopped in another
    period again, as the run would have, without training anything; no row then says it waits."""
    import json

    from hpt.stamps import utcnow

    spec = spec_with(write_spec, {"early_stopping": ASHA})
    folder = tmp_path / "res"
    first, _ = run(spec, folder, falling)
    done = rows_of(folder)
    dead = done[done["error"].str.match(r"pruned at epoch 1 \(its config was stopped in ")]
    assert len(dead) >= 1 and not done["error"].astype(str).str.contains("it waits").any()
    for r in dead.itertuples():  # as they were before the run decided
        path = folder / "rows" / f"{r.trial_id}.json"
        row = json.loads(path.read_text())
        path.write_text(json.dumps({**row, "error": "pruned at epoch 1 (rung 0: it waits for 3 other trials of its "
                                               "period, 0 there so far)", "finished_at": utcnow()}))
    again, backend = run(spec, folder, falling)
    assert again.exit_code == 0 and not [tid for what, tid in backend.log if what == "submit"]
    rows = rows_of(folder).set_index("trial_id")
    assert not rows["error"].astype(str).str.contains("it waits").any()
    for r in dead.itertuples():
        assert rows.loc[r.trial_id, "error"] == r.error and rows.loc[r.trial_id, "run_id"] == again.run_id


def test_auto_rounds_stop_trials_early_too(write_spec: Any, tmp_path: Path, cli: Any) -> None:
    from hpt.scheduling.adaptive import adapt
    from hpt.scheduling.auto import AutoScheduler
    from hpt.search import expand

    def doc(n: int, lr_range: tuple[float, float]) -> dict[str, Any]:
        d = tiny_spec(search={"strategy": "auto", "max_trials": 4, "seed": n, "early_stopping": {**ASHA, "min_trials": 1},
                                     "finalists": 8},
                      parameters={"lr": {"loguniform": list(lr_range)}})
        d["training"]["epochs"] = 9
        return d

    spec = load_spec(write_spec(doc(1, (1e-5, 1e-4))))
    said: list[str] = []
    auto = AutoScheduler(lambda n, r: expand(load_spec(write_spec(doc(n, r))), tags={"round": n}), (1e-5, 1e-4), 3,
                         spec.objective, said.append)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True),
                       backend=FakeBackend(falling, slots=2), scheduler=adapt(auto, spec, said.append))
    rows = rows_of(tmp_path / "res")
    assert summary.exit_code == 0 and summary.counts["pruned"] > 0 and set(rows["round"]) == {1, 2, 3}
    assert any("round 2 moves the range" in line for line in said)  # rounds decide on the complete configs
    # once the last round is done, the best 8 by how far asha takes them with all the evidence run every period:
    # stopped ones are completed, each keeping its round
    finalists = rows[rows["finalist"] == 1]
    assert finalists["config_id"].nunique() >= 2 and finalists["round"].isin([1, 2, 3]).all(), rows[["round", "finalist"]]
    assert ((rows[rows["status"] == "ok"].groupby("config_id").size() == 2).sum() >= 8)
    out = cli("auto", "--arch", "mlp", "--early-stopping", "asha", "--dry-run", "--today", "2014-06-01")
    assert out.returncode == 0, out.stderr
    assert "early stopping asha: rungs at epoch 1, 3, 9 of 20" in out.stdout
    assert "at most 36 trials and 720 epochs per round (if none is stopped" in out.stdout


def test_a_trial_that_passed_a_rung_unjudged_is_judged_there_once_the_others_got_there(write_spec: Any) -> None:
    spec = spec_with(write_spec, {"early_stopping": ASHA, "finalists": 0})  # min_trials: 3 others at a rung
    scheduler = make_scheduler(spec)
    scheduler.restore({})
    from hpt.trial import Progress

    trials = [scheduler.suggest() for _ in range(12)]  # every trial started: no trial to come can be evidence,
    assert all(isinstance(t, Trial) for t in trials)  # so none waits at the first rung
    jan = [t for t in trials if isinstance(t, Trial) and t.period == trials[0].period]
    first, best, second, third = jan[:4]
    # the first trial of its period reaches rung 0 (epoch 1) alone: it goes on, unjudged
    assert scheduler.on_progress(Progress(first, 1, {"val_mse": 10.0})) is None
    assert scheduler.on_progress(Progress(first, 2, {"val_mse": 10.0})) is None
    for t, value in ((best, 1.0), (second, 2.0)):  # too few others at epoch 1 for these two as well
        assert scheduler.on_progress(Progress(t, 1, {"val_mse": value})) is None
    assert scheduler.on_progress(Progress(third, 1, {"val_mse": 3.0})) == \
        "pruned at epoch 1 (rung 0, behind 2 of 3 trials of its period)"
    # now 3 others have a value at epoch 1: the first trial, still running, is judged there by its value there
    assert scheduler.on_progress(Progress(first, 3, {"val_mse": 0.5})) == \
        "pruned at epoch 3 (rung 0 at epoch 1, behind 3 of 3 trials of its period)"
    # the best at epoch 1 is judged there too, and goes on
    assert scheduler.on_progress(Progress(best, 2, {"val_mse": 1.0})) is None


class _Counting(FakeBackend):
    """A fake backend that counts the epochs its trials train."""

    epochs = 0

    def poll(self, timeout: float) -> list[Any]:
        events = super().poll(timeout)
        self.epochs += sum(isinstance(e, Progress) for e in events)
        return events


@pytest.mark.parametrize("kind", ["asha", "hyperband"])
def test_stopped_trials_that_run_again_go_on_from_their_last_rung_to_the_same_rows(
        write_spec: Any, tmp_path: Path, capsys: Any, monkeypatch: Any, kind: str) -> None:
    # asha: waits at the first rung, and 3 finalists; hyperband: no waits, every config a finalist
    spec = spec_with(write_spec, {"early_stopping": {**ASHA, "kind": kind}, "finalists": 3 if kind == "asha" else 6})
    resumed = _Counting(falling, slots=2)
    run_spec(spec, RunOptions(sink=str(tmp_path / "resumed")), Reporter(bar=False), backend=resumed)
    out = capsys.readouterr().out
    with monkeypatch.context() as m:  # no checkpoint: every trial that runs again starts at its first epoch
        m.setattr(Checkpoints, "resumed", lambda self, trial: trial)
        scratch = _Counting(falling, slots=2)
        run_spec(spec, RunOptions(sink=str(tmp_path / "scratch")), Reporter(bar=False), backend=scratch)

    mine, theirs = rows_of(tmp_path / "resumed"), rows_of(tmp_path / "scratch")
    went_on = mine[mine["resumed_epoch"].notna()]
    assert len(went_on) >= 2 and "resumed_epoch" not in theirs, out
    waited = went_on[went_on["finalist"].isna()]  # waited at the first rung (epoch 1), judged in: went on from there
    finalists = went_on[went_on["finalist"] == 1]  # stopped at a rung, completed as finalists from there
    assert (len(waited) >= 1 if kind == "asha" else waited.empty) and (waited["resumed_epoch"] == 1).all()
    assert len(finalists) >= 1 and finalists["resumed_epoch"].isin([1, 3]).all()
    if kind == "hyperband":  # judged within its bracket, by Optuna's pruner: the trials' lines say so
        reasons = re.findall(r"  (pruned at epoch \d+ \(rung [^)]*\))  ", out)
        said = [re.fullmatch(r"pruned at epoch \d+ \(rung \d+ of its hyperband bracket, behind (\d+) of (\d+) trials "
                             r"of its period's bracket\)", r) for r in reasons if "its config" not in r]
        assert said and all(said), reasons
        for m in said:  # counted among the trials it was judged with: outside the best 1/reduction_factor of them
            behind, others = int(m[1]), int(m[2])
            assert behind >= max((others + 1) // ASHA["reduction_factor"], 1), reasons
    assert re.search(rf"^finalists: .*; {len(finalists)} go(es)? on from the rung where early stopping stopped (it|them) "
                     r"\(epochs? [13](, 3)?\)$", out, re.M), out
    for r in waited.itertuples():
        assert re.search(rf"^early stopping: \S+ lr={r.param_lr:.4g} hidden_size=8 waited at epoch 1 and goes on from "
                         r"there$", out, re.M), out
    for r in went_on.itertuples():  # the whole curve, the epochs before the checkpoint included
        assert list(pd.read_csv(tmp_path / "resumed" / "curves" / f"{r.trial_id}.csv")["epoch"]) == \
            list(range(1, int(r.epochs) + 1))
    same = ["trial_id", "config_id", "status", "val_mse", "epochs", "best_epoch", "train_time_s", "error", "finalist"]
    pd.testing.assert_frame_equal(mine[same].sort_values("trial_id").reset_index(drop=True),
                                  theirs[same].sort_values("trial_id").reset_index(drop=True))
    assert resumed.epochs == scratch.epochs - int(went_on["resumed_epoch"].sum())  # those epochs were not trained again


@pytest.mark.parametrize("kind, finalists, kept", [("asha", 3, (1, 3)), ("asha", 0, (1,)), ("hyperband", 3, (1, 3)),
                                                   ("hyperband", 0, ()), ("median", 3, ())])
def test_trials_keep_their_state_only_at_rungs_they_can_run_again_from(write_spec: Any, kind: str, finalists: int,
                                                                        kept: tuple[int, ...]) -> None:
    # finalists go on from any rung; without them only asha's first-rung waits run again
    stopping = {"kind": kind, "min_epochs": 1} | ({"reduction_factor": 3} if kind != "median" else {})
    scheduler = make_scheduler(spec_with(write_spec, {"early_stopping": stopping, "finalists": finalists}))
    scheduler.restore({})
    trial = scheduler.suggest()
    assert isinstance(trial, Trial) and trial.checkpoint_at == kept


def test_hpt_plan_shows_a_trial_waiting_at_the_first_rung_as_undecided(write_spec: Any, tmp_path: Path) -> None:
    # a run stopped while its first trials waited at rung 0: their rows say pruned, "it waits"; the plan called them
    # pruned and their configs' other periods "stopped in another period", and the run trained them all the same
    from hpt.search import expand
    from hpt.sinks import open_sink
    from hpt.store import ResultStore
    from hpt.trial import Status, TrialResult
    from tests.conftest import cli_here

    path = write_spec(tiny_spec(parameters={"lr": [0.001, 0.003, 0.01, 0.03]}, training={"epochs": 3},
                                search={"strategy": "grid", "early_stopping": "asha"}))
    first = expand(load_spec(path))[0]
    store = ResultStore(open_sink(str(tmp_path / "res")))
    store.record(TrialResult(first, Status.PRUNED, {"val_mse": 0.5, "epochs": 1}, started_at="a", finished_at="b",
                             error="pruned at epoch 1 (rung 0: it waits for 3 other trials of its period, 0 there so "
                                   "far)"), "run-1", ["val_mse"])
    store.close()
    done = cli_here("plan", str(path), "--sink", str(tmp_path / "res"))
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if first.trial_id in line)
    assert line.endswith(f"{format_params(first.tuned_params)}  (waits at the first rung: decided when the run goes "
                         "on)"), line
    assert "stopped in another period" not in done.stdout and "(pruned)" not in done.stdout, done.stdout
    assert done.stdout.splitlines()[-1] == f"results: {tmp_path / 'res'}"  # nothing done yet


def test_the_counts_estimate_allows_only_for_finalists_that_can_still_be(write_spec: Any, tmp_path: Path,
                                                                         capsys: Any) -> None:
    # 6 configs x 2 periods that all run every period (min_trials 20: nothing is judged): the count kept a
    # finalist stage's 3 configs x 2 periods in it to the end ([11/~18]), though at most the last trial's config
    # could still lack a period
    spec = spec_with(write_spec, {"early_stopping": {"kind": "asha", "min_trials": 20}})
    run(spec, tmp_path / "res", falling)
    counts = re.findall(r"^\[\s*(\d+)/(~?\d+)\]", capsys.readouterr().out, re.M)
    assert counts[0] == ("1", "~18") and counts[-1] == ("12", "12"), counts
    assert counts[-2] == ("11", "~15"), counts  # the last trial, the period the configs finalists would be now lack
    # (the last config's), and 2 more (the trial still to come may leave its config lacking): not 3 configs x 2 periods
