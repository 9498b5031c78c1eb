"""search.promote: every config screened at the quick fidelity, then the best run at full fidelity, in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from hpt.backends.fake import FakeBackend, Script
from hpt.fidelity import QUICK
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.spec import load_spec, quick_spec
from hpt.trial import Trial
from tests.conftest import cli_here, tiny_spec
from tests.test_pruning import _interrupt_at, rows_of

LRS = [0.001, 0.003, 0.01, 0.1]
SCREEN = {0.001: 4.0, 0.003: 1.0, 0.01: 3.0, 0.1: 2.0}  # the screen ranks 0.003, 0.1, 0.01, 0.001
FULL = {0.001: 1.0, 0.003: 2.0, 0.01: 3.0, 0.1: 4.0}  # the full runs rank them by lr


def scripted(full: dict[float, float] = FULL, seen: list[Trial] | None = None) -> Any:
    def script(trial: Trial) -> Script:
        if seen is not None:
            seen.append(trial)
        table = SCREEN if trial.fidelity == QUICK else full
        value = table[float(trial.params["lr"])]
        return Script(curve=[value * 2, value])
    return script


def promote_spec(write_spec: Any, top: Any = 2, **overrides: Any) -> Any:
    return load_spec(write_spec(tiny_spec(parameters={"lr": LRS, "hidden_size": [8]}, search={"promote": top},
                                          training={"epochs": 30}, **overrides)))


def run(spec: Any, folder: Path, script: Any = None, say: list[str] | None = None, **options: Any) -> Any:
    backend = FakeBackend(script or scripted(), slots=2)
    reporter = Reporter(bar=False, quiet=True)
    if say is not None:
        reporter.line = say.append  # type: ignore[method-assign]
    return run_spec(spec, RunOptions(sink=str(folder), **options), reporter, backend=backend), backend


def stages(rows: pd.DataFrame) -> dict[str, dict[float, int]]:
    """Per fidelity: lr -> its ok trials."""
    ok = rows[rows["status"] == "ok"]
    return {f: {float(lr): n for lr, n in g.groupby("param_lr").size().items()} for f, g in ok.groupby("fidelity")}


def test_promote_screens_every_config_then_runs_the_best_by_the_screen_on_every_period(write_spec: Any,
                                                                                        tmp_path: Path) -> None:
    said: list[str] = []
    spec = promote_spec(write_spec)
    trials: list[Trial] = []
    summary, backend = run(spec, tmp_path / "res", scripted(seen=trials), say=said)
    rows = rows_of(tmp_path / "res")
    assert stages(rows) == {"quick": {lr: 1 for lr in LRS}, "full": {0.003: 2, 0.1: 2}}
    quick = rows[rows["fidelity"] == "quick"]
    # the screen trains as --quick does: its one period, at most 20 epochs
    assert set(quick["period_start"]) == {quick_spec(spec).periods[0].start_text}
    assert {(t.fidelity.name, t.params["epochs"]) for t in trials} == {("quick", 20), ("full", 30)}
    # every screening trial ended before the first full trial started
    assert quick["finished_at"].max() <= rows[rows["fidelity"] == "full"]["started_at"].min()
    assert summary.counts == {"ok": 8} and summary.best is not None and summary.best.params["lr"] == 0.003
    assert any(line.startswith("promote: the screen ranked 4 configs; the best 2 (") for line in said), said
    # the screen put 0.003 before 0.1, the full runs 0.003 before 0.1 too: they agree
    assert any("Spearman rank correlation 1.00 over 2 configs" in line for line in said), said
    assert not any(line.startswith("warning: the screen") for line in said)


def test_a_share_promotes_that_share_and_a_screen_unlike_the_full_runs_is_warned_about(write_spec: Any,
                                                                                        tmp_path: Path) -> None:
    said: list[str] = []
    inverted = {0.001: 4.0, 0.003: 1.0, 0.01: 3.0, 0.1: 2.0}
    inverted = {lr: 5.0 - v for lr, v in inverted.items()}  # the full runs rank the promoted configs backwards
    run(promote_spec(write_spec, top={"top": 0.75}), tmp_path / "res", scripted(inverted), say=said)
    assert stages(rows_of(tmp_path / "res"))["full"] == {0.003: 2, 0.1: 2, 0.01: 2}  # ceil(0.75 * 4) = 3
    assert any("Spearman rank correlation -1.00 over 3 configs" in line for line in said), said
    assert any(line.startswith("warning: the screen ranks the promoted configs unlike the full runs (correlation "
                               "-1.00 < 0.5)") for line in said), said
    # two promoted configs swapped, or every ranked config promoted: nothing to warn about (or to do)
    for top, folder, note in ((2, "two", "(with 2 configs it can only be 1 or -1: too few to warn about)"),
                              (4, "all", "(every config the screen ranked was promoted)")):
        said.clear()
        run(promote_spec(write_spec, top=top), tmp_path / folder, scripted(inverted), say=said)
        assert any(line.startswith("promote: the screen vs the full results") and line.endswith(note)
                   for line in said), said
        assert not any(line.startswith("warning: the screen") for line in said), said
        assert any(line.startswith("warning: search.promote promotes every one of the 4 configs") for line in said) \
            == (top == 4), said
    plan = cli_here("plan", str(promote_spec(write_spec, top=20).source))
    assert "promote, stage 2: all 4 configs by the screen (mean val_mse) run at full fidelity" in plan.stdout, plan.stdout


def test_promote_resumes_mid_screen_and_mid_full_stage_training_nothing_twice(write_spec: Any,
                                                                               tmp_path: Path) -> None:
    spec = promote_spec(write_spec)
    folder = tmp_path / "res"
    said: list[str] = []
    summary, backend = run(spec, folder, _interrupt_at(3, scripted()), grace=0, say=said)  # stopped in the screen
    assert summary.exit_code == 130
    trained = [tid for what, tid in backend.log if what == "submit"]
    rows = rows_of(folder)
    screened = int((rows["status"] == "ok").sum())
    assert set(rows["fidelity"]) == {"quick"} and screened < 4
    # the best so far is a screening result, and the end of the run says so
    assert any(line.startswith("best config ") and " (from screening (quick) rows: no config has full results yet): "
               in line for line in said), said
    summary, backend = run(spec, folder, _interrupt_at(4 - screened + 2, scripted()), grace=0)  # in the full stage
    assert summary.exit_code == 130
    trained += [tid for what, tid in backend.log if what == "submit"]
    rows = rows_of(folder)
    assert (rows[rows["fidelity"] == "quick"]["status"] == "ok").sum() == 4
    assert (rows[rows["fidelity"] == "full"]["status"] == "interrupted").any()
    said: list[str] = []
    summary, backend = run(spec, folder, say=said)
    assert summary.exit_code == 0
    again = [tid for what, tid in backend.log if what == "submit"]
    done = set(rows[rows["status"] == "ok"]["trial_id"])
    assert again and not set(again) & done  # only what was not finished
    final = rows_of(folder)
    assert stages(final) == {"quick": {lr: 1 for lr in LRS}, "full": {0.003: 2, 0.1: 2}}  # the same promotion
    assert len(set(trained) | set(again)) == 8
    # and once more: nothing left to train
    summary, backend = run(spec, folder)
    assert not [tid for what, tid in backend.log if what == "submit"] and summary.skipped == 8


def test_an_earlier_quick_run_is_the_screen(write_spec: Any, tmp_path: Path) -> None:
    spec = promote_spec(write_spec)
    run(quick_spec(spec), tmp_path / "res")  # hpt run --quick: the screen alone, whatever search.promote says
    assert set(rows_of(tmp_path / "res")["fidelity"]) == {"quick"}
    summary, backend = run(spec, tmp_path / "res")
    submitted = [tid for what, tid in backend.log if what == "submit"]
    assert len(submitted) == 4 and summary.skipped == 4
    assert stages(rows_of(tmp_path / "res"))["full"] == {0.003: 2, 0.1: 2}


NINE = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1]
LEVEL = {lr: 1.0 + i for i, lr in enumerate([0.01, 0.005, 0.02, 0.003, 0.05, 0.002, 0.1, 0.001, 0.0005])}
"""The screen's final value of each config: 0.01 the best, then 0.005, 0.02, ..."""


def screened_with_asha(trial: Trial) -> Script:
    """Falling screening curves (20 epochs) in the order of LEVEL; full curves that get worse, so early
    stopping would stop a full trial if it heard one."""
    lr = float(trial.params["lr"])
    if trial.fidelity == QUICK:
        return Script(curve=[LEVEL[lr] * (1 + 2 / e) for e in range(1, 21)])
    return Script(curve=[LEVEL[lr] * e for e in range(1, 9)])


def asha_promote_spec(write_spec: Any) -> Any:
    return load_spec(write_spec(tiny_spec(
        parameters={"lr": NINE, "hidden_size": [8]}, training={"epochs": 8},
        search={"promote": 2, "early_stopping": {"kind": "asha", "min_epochs": 2, "min_trials": 1}})))


def test_early_stopping_works_inside_the_screen_and_promotes_the_configs_successive_halving_takes_furthest(
        write_spec: Any, tmp_path: Path) -> None:
    said: list[str] = []
    summary, backend = run(asha_promote_spec(write_spec), tmp_path / "res", screened_with_asha, say=said)
    rows = rows_of(tmp_path / "res")
    quick, full = rows[rows["fidelity"] == "quick"], rows[rows["fidelity"] == "full"]
    assert quick["config_id"].nunique() == 9
    # the screen stopped most configs early: far fewer epochs than 9 configs x 20
    assert (quick["status"] == "pruned").sum() >= 5 and quick["epochs"].sum() < 9 * 20 / 2, quick[["status", "epochs"]]
    # the best two by the screen run on both periods, to their last epoch: the full stage is never stopped early
    assert stages(rows)["full"] == {0.01: 2, 0.005: 2}
    assert set(full["status"]) == {"ok"} and set(full["epochs"]) == {8}
    assert any(line.startswith("promote: the screen ranked 9 configs (asha's order, replayed with all the evidence); "
                               "the best 2 (") for line in said), said
    assert summary.exit_code == 0 and summary.best is not None and summary.best.params["lr"] == 0.01


def test_a_promoted_config_with_a_pruned_full_row_from_an_earlier_run_is_completed(write_spec: Any,
                                                                                    tmp_path: Path) -> None:
    """A pruned full-fidelity row (an earlier plain asha run at the same location) is not done for the full stage,
    which stops nothing: the promoted config trains it and is ranked (before, it was skipped, and never ranked)."""
    import json

    spec = asha_promote_spec(write_spec)
    run(spec, tmp_path / "res", screened_with_asha)
    rows = rows_of(tmp_path / "res")
    row = rows[(rows["fidelity"] == "full") & (rows["param_lr"] == 0.005)].iloc[0]
    path = tmp_path / "res" / "rows" / f"{row.trial_id}.json"
    stopped = {**json.loads(path.read_text()), "status": "pruned", "epochs": 2, "run_id": "earlier",
               "error": "pruned at epoch 2 (rung 0, behind 2 of 3 trials of its period)"}
    path.write_text(json.dumps(stopped))
    (tmp_path / "res" / "results.csv").unlink()  # rebuilt from rows/ (it would say ok)
    said: list[str] = []
    summary, backend = run(spec, tmp_path / "res", screened_with_asha, say=said)
    assert [tid for what, tid in backend.log if what == "submit"] == [row.trial_id]
    assert rows_of(tmp_path / "res").set_index("trial_id").loc[row.trial_id, "status"] == "ok"
    assert any(line.endswith("now run at full fidelity: 1 trial (3 already done)") for line in said), said
    assert summary.best is not None and summary.best.params["lr"] == 0.01


def test_promote_with_early_stopping_resumes_mid_screen_with_the_same_promotion(write_spec: Any,
                                                                              tmp_path: Path) -> None:
    spec = asha_promote_spec(write_spec)
    summary, _ = run(spec, tmp_path / "res", _interrupt_at(5, screened_with_asha), grace=0)
    assert summary.exit_code == 130 and set(rows_of(tmp_path / "res")["fidelity"]) == {"quick"}
    done = set(rows_of(tmp_path / "res").query("status == 'ok'")["trial_id"])
    summary, backend = run(spec, tmp_path / "res", screened_with_asha)
    assert summary.exit_code == 0
    assert not {tid for what, tid in backend.log if what == "submit"} & done  # nothing finished trains again
    assert stages(rows_of(tmp_path / "res"))["full"] == {0.01: 2, 0.005: 2}
    # --quick on the same spec is the screen alone, early stopping included: nothing left to do
    summary, backend = run(quick_spec(spec), tmp_path / "res", screened_with_asha)
    assert not [tid for what, tid in backend.log if what == "submit"]


def test_a_whole_number_written_as_a_float_promotes_that_many_and_null_race_is_no_race(write_spec: Any) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": LRS, "hidden_size": [8]},
                                          search={"promote": {"top": 2.0}, "race": None})))
    assert spec.search.promote is not None and spec.search.promote.top == 2 and isinstance(spec.search.promote.top, int)
    assert spec.search.race is False


def test_promote_spec_errors_are_one_line(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for search, message in (
            ({"promote": {"top": 0}}, "search.promote.top: expected a number of configs >= 1 or a share of them "
                                      "between 0 and 1, got 0"),
            ({"promote": {"best": 2}}, 'search.promote.best: unknown key (did you mean "top"?); valid: top'),
            ({"promote": {"top": 2, "seeds": 2}}, "search.promote.seeds: unknown key; valid: top"),
            ({"promote": "all"}, 'search.promote: expected an object such as {"top": 3}'),
            ({"promote": 2, "strategy": "tpe", "max_trials": 4},
             "search.promote: promotion screens every config first; it works with the grid, random, auto strategies, "
             "not tpe"),
            ({"promote": 2, "race": True}, "search.promote: promotion is its own adaptive search (a quick screen, then "
                                           "the best at full fidelity); it does not combine with race (remove one)"),
            ({"promote": 2, "early_stopping": "median"}, "search.promote: with promotion, early stopping works inside "
                                                          "the quick screen and must be asha on epochs"),
            # accepted and ignored before: promotion completes its own top configs and reads no earlier rows
            ({"promote": 2, "early_stopping": "asha", "finalists": 4},
             "search.promote: promotion is its own adaptive search (a quick screen, then the best at full fidelity); "
             "it does not combine with finalists: its promoted configs run every period already (remove one)"),
            ({"promote": 2, "finalists": 2}, "it does not combine with finalists"),  # not also "only early stopping ..."
            ({"promote": 2, "finalists": -1}, "it does not combine with finalists"),  # not also "expected an integer"
            ({"promote": 2, "warm_start": ["no/such/folder"]}, "it does not combine with warm_start"),  # nor "no such"
            ({"promote": 0.0}, "search.promote.top: expected a number of configs >= 1 or a share of them between 0 "
                               "and 1, got 0.0"),
            ({"promote": 2, "warm_start": [str(earlier)]},
             "it does not combine with warm_start: its screen ranks this run's configs alone (remove one)")):
        out = cli("plan", str(write_spec(tiny_spec(search=search))))
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
        assert len(out.stderr.splitlines()) == 1, out.stderr  # a misspelt "top" is not also "missing"


def test_promote_through_the_cli(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    """Real training: 4 configs screened for 1 epoch, the best 2 on 2 periods."""
    spec = write_spec(tiny_spec(search={"promote": {"top": 2}}, training={"epochs": 1},
                                parameters={"lr": [1e-5, 0.001, 0.01, 0.03], "hidden_size": [8]}))
    plan = cli("plan", str(spec), "--sink", str(tmp_path / "res"))
    assert plan.returncode == 0, plan.stderr
    assert "tiny: up to 8 trials in 2 stages = 4 screening, up to 4 full" in plan.stdout
    assert "promote, stage 1: every config is screened at quick fidelity (" in plan.stdout
    assert "at most 1 epoch): 4 trials (4 configs x 1 period)" in plan.stdout  # the spec's epochs, below 20
    assert ("promote, stage 2: the best 2 configs by the screen (mean val_mse) run at full fidelity on every "
            "period: at most 4 trials (2 configs x 2 periods)") in plan.stdout
    with_asha = write_spec(tiny_spec(search={"promote": {"top": 2}, "early_stopping": "asha"}, training={"epochs": 30},
                                     parameters={"lr": [1e-5, 0.001, 0.01, 0.03], "hidden_size": [8]}))
    plan = cli("plan", str(with_asha), "--sink", str(tmp_path / "other"))
    assert plan.returncode == 0, plan.stderr
    assert "promote, stage 1 with early stopping asha: rungs at epoch 1, 3, 9 of 20\n" in plan.stdout
    assert ("promote, stage 2: the best 2 configs by the screen (how far successive halving takes them) run at full "
            "fidelity on every period, without early stopping: at most 4 trials") in plan.stdout
    assert "finalists" not in plan.stdout  # the promoted configs run every period anyway
    out = cli("run", str(spec), "--sink", str(tmp_path / "res"), "--workers", "2")
    assert out.returncode == 0, out.stderr
    rows = rows_of(tmp_path / "res")
    assert sorted(rows["fidelity"]) == ["full"] * 4 + ["quick"] * 4 and set(rows["status"]) == {"ok"}
    assert rows[rows["fidelity"] == "full"]["config_id"].nunique() == 2
    assert "promote: the screen vs the full results of the promoted configs: Spearman rank correlation " in out.stdout
    results = cli("results", str(tmp_path / "res"))
    assert results.returncode == 0
    assert "Configs ranked by mean val_mse over 2 periods (full runs: 4 ok trials, 2 configs)" in results.stdout
    assert "Screening (quick) rows, ranked apart: 4 ok trials, 4 configs" in results.stdout
    again = cli("run", str(spec), "--sink", str(tmp_path / "res"), "--workers", "2")
    assert again.returncode == 0 and "skipping 8 trials already done" in again.stdout, again.stdout
    assert len(rows_of(tmp_path / "res")) == 8


def test_hpt_final_after_a_screen_says_the_screen_saw_the_hold_out(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    run(promote_spec(write_spec), tmp_path / "res")
    out = cli("final", str(tmp_path / "res"), "--holdout", "1M")
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().splitlines() == [
        "hpt: error: the quick screen's period 2014-12-01..2015-01-01 (--quick and search.promote screen on the last "
        "whole month of data) overlaps the hold-out 2014-12-01..2015-01-01 (--holdout 1M): the screen chose configs on "
        "it, so the hold-out would not be unseen; to keep months back from the screen too, tune with date_ranges.auto "
        "and its \"holdout\" (the screen then uses the last whole month before them)"], out.stderr
