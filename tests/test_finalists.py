"""No pruning on too little evidence (early_stopping.min_trials) and the finalist stage (search.finalists),
on the fake backend with scripted curves: one worker, configs in a known order of quality."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.backends.fake import Script
from hpt.errors import SpecError
from hpt.progress import format_params
from hpt.spec import load_spec
from hpt.trial import Trial
from tests.conftest import cli_here, tiny_spec
from tests.test_pruning import run, spec_with

# the curves of the configs in the order they start (the grid's order is seeded; the script follows the order)
CURVES = [
    [1.0] * 9,  # c0: the best at epoch 1 and never better: good early, not at the end
    [5.0, 4.0, 3.0, 2.0, 1.0, 0.8, 0.6, 0.5, 0.4],  # c1: slow start, the best config
    [2.0] * 9,  # c2
    [10.0] * 9, [10.0] * 9, [12.0] * 9,  # c3..c5: bad from the start
]


def ordered() -> tuple[Callable[[Trial], Script], dict[str, int]]:
    """A script giving the n-th config to start the n-th curve, and the config ids by that order."""
    order: dict[str, int] = {}

    def script(trial: Trial) -> Script:
        n = order.setdefault(trial.config_id, len(order))
        return Script(curve=CURVES[n])

    return script, order


def rows_by_config(folder: Path, order: dict[str, int]) -> dict[int, list[dict[str, Any]]]:
    """The rows at `folder` by config (its place in the start order), each config's rows by period."""
    out: dict[int, list[dict[str, Any]]] = {}
    for p in sorted((folder / "rows").glob("*.json")):
        row = json.loads(p.read_text())
        if row["config_id"] in order:
            out.setdefault(order[row["config_id"]], []).append(row)
    return {c: sorted(rows, key=lambda r: r["period_start"]) for c, rows in sorted(out.items())}


def statuses(rows: dict[int, list[dict[str, Any]]]) -> dict[int, list[str]]:
    return {c: [r["status"] for r in rs] for c, rs in rows.items()}


@pytest.mark.parametrize("min_trials", [None, 1])
def test_a_rung_judges_a_trial_only_once_min_trials_others_reached_it(write_spec: Any, tmp_path: Path,
                                                                      min_trials: int | None) -> None:
    stopping = {"kind": "asha", "min_epochs": 1, "reduction_factor": 3}
    if min_trials is not None:
        stopping["min_trials"] = min_trials
    spec = spec_with(write_spec, {"early_stopping": stopping, "finalists": 0})
    script, order = ordered()
    run(spec, tmp_path / "res", script)
    got = statuses(rows_by_config(tmp_path / "res", order))
    if min_trials is None:  # the default: 3 other trials of the period at the rung (reduction factor 3)
        # c0, c1 and c2 reach epoch 1 with fewer than 3 others there: they wait there (stopped), neither judged nor
        # trained on; once c3 got there they are judged by their values there, as asha judges any trial: c0, the
        # best at epoch 1, runs again; c1 (the best at the end, a slow starter) and c2 are behind: stopped there,
        # not privileged for having come first. The bad configs stop at the first rung
        assert got == {0: ["ok", "ok"], 1: ["pruned", "pruned"], 2: ["pruned", "pruned"], 3: ["pruned"], 4: ["pruned"],
                       5: ["pruned"]}
        waited = rows_by_config(tmp_path / "res", order)
        # their rows say so: they waited at the first rung, then were judged behind there (or their config stopped)
        assert all(r["epochs"] == 1 and re.fullmatch(r"pruned at epoch 1 \((rung 0, behind \d+ of \d+ trials of its period, "
                                                     r"where it waited|its config was stopped in .*)\)", r["error"])
                   for c in (1, 2) for r in waited[c]), waited
        assert sum(r["error"].endswith("where it waited)") for c in (1, 2) for r in waited[c]) >= 2
    else:  # judged against the first config alone: the best config of the search is stopped at epoch 1
        assert got == {0: ["ok", "ok"], 1: ["pruned"], 2: ["pruned"], 3: ["pruned"], 4: ["pruned"], 5: ["pruned"]}


def test_the_plan_says_when_rungs_judge_and_what_finalists_do(write_spec: Any) -> None:
    doc = tiny_spec(search={"strategy": "grid", "early_stopping": {"kind": "asha", "min_epochs": 1}})
    doc["training"] = {**doc["training"], "epochs": 9}
    out = cli_here("plan", str(write_spec(doc)))
    assert out.returncode == 0, out.stderr
    assert ("a rung judges a trial only once 3 other trials of its period reached it: at the first rung a trial waits "
            "for them (it stops there, and once they got there it goes on from that epoch if it is in their best "
            "1/3), at a later one it goes on and is judged there once they have") in out.stdout
    doc["search"]["early_stopping"]["min_trials"] = 1
    one = cli_here("plan", str(write_spec(doc))).stdout
    assert ("a rung judges a trial only once 1 other trial of its period reached it: at the first rung a trial waits for "
            "it (it stops there, and once it got there it goes on from that epoch if it is in the best 1/3), at a later "
            "one it goes on and is judged there once it has") in one, one
    assert ("finalists: when the search is done, the best 3 configs by how far they got are completed on every period "
            "at full epochs, without early stopping (at most 6 more trials; rows tagged finalist; a stopped trial goes on "
            "from the last rung it passed)") in out.stdout


def _finalist_spec(write_spec: Any, **search: Any) -> Any:
    return spec_with(write_spec, {"early_stopping": {"kind": "asha", "min_epochs": 1, "min_trials": 1}, **search})


def test_finalists_complete_every_period_and_are_ranked_with_a_verdict(write_spec: Any, tmp_path: Path, capsys: Any) -> None:
    script, order = ordered()
    summary, backend = run(_finalist_spec(write_spec), tmp_path / "res", script)
    rows = rows_by_config(tmp_path / "res", order)
    # c0 ran every period; c2 and c1 were stopped at epoch 1 (the best places among those stopped there):
    # completed on both periods, to the last epoch, without early stopping; the rest stay stopped
    assert statuses(rows) == {0: ["ok", "ok"], 1: ["ok", "ok"], 2: ["ok", "ok"], 3: ["pruned"], 4: ["pruned"],
                              5: ["pruned"]}
    for c in (1, 2):
        assert all(r["finalist"] == 1 and r["epochs"] == 9 for r in rows[c])
    assert all("finalist" not in r for c in (0, 3, 4, 5) for r in rows[c])
    submitted = [tid for what, tid in backend.log if what == "submit"]
    # the trial of a period early stopping stopped is the same trial (same id) when its config is a finalist:
    # submitted twice, its ok row now in place of the pruned one; so are c0's, which waited at the first rung
    assert sorted(tid for tid in set(submitted) if submitted.count(tid) == 2) == sorted(
        [r["trial_id"] for c in (1, 2) for r in rows[c][:1]] + [r["trial_id"] for r in rows[0]])
    # each trial once, as its row says; the finalists' and the waiting trials' runs among the results
    assert summary.counts == {"ok": 6, "pruned": 3} and summary.ended == len(submitted) == 13
    out = capsys.readouterr().out
    assert "finalists: 2 configs of the best 3 lack periods; 4 trials now run to the last epoch" in out
    ids = {c: cid for cid, c in order.items()}
    # then each finalist on a line of its own, with its values, as the early-stopping lines name the configs they stop
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if "finalists: 2 configs" in line)
    named = set()
    for c in (1, 2):
        values = format_params({"lr": rows[c][0]["param_lr"], "hidden_size": rows[c][0]["param_hidden_size"]})
        named.add(f"  config {ids[c]} ({values})")
        assert f"{values}  pruned at epoch 1" in out, out
    assert set(lines[at + 1:at + 3]) == named, out
    res = cli_here("results", str(tmp_path / "res"))
    assert res.returncode == 0, res.stderr
    ranked = [line for line in res.stdout.splitlines() if any(ids[c] in line for c in (0, 1, 2))]
    assert any(f"{ids[1]} (finalist)" in line and "*" in line.split()[0] for line in ranked), res.stdout  # best
    assert f"{ids[2]} (finalist)" in res.stdout and f"{ids[0]} (finalist)" not in res.stdout
    assert "(finalist): early stopping stopped it in a period, or the race dropped it; completed on every period" \
        in res.stdout
    verdict = res.stdout.split("Is the winner real?")[1] if "Is the winner real?" in res.stdout else ""
    assert verdict and "3 configs" in verdict, res.stdout


def test_finalists_0_leaves_the_stopped_configs_stopped(write_spec: Any, tmp_path: Path) -> None:
    script, order = ordered()
    run(_finalist_spec(write_spec, finalists=0), tmp_path / "res", script)
    assert statuses(rows_by_config(tmp_path / "res", order)) == {0: ["ok", "ok"], **{c: ["pruned"] for c in range(1, 6)}}


def test_resume_after_an_interrupted_finalist_stage_trains_no_finished_finalist_again(write_spec: Any,
                                                                                       tmp_path: Path, capsys: Any) -> None:
    spec = _finalist_spec(write_spec)
    script, order = ordered()
    _, whole = run(spec, tmp_path / "whole", script)
    first_finalist = [tid for what, tid in whole.log if what == "submit"][9]  # 9 search trials, then the finalists
    script, order = ordered()
    calls = [0]

    def cut(trial: Trial) -> Script:
        calls[0] += 1
        if calls[0] == 11:  # the second finalist trial starts: Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
        return script(trial)

    first, _ = run(spec, tmp_path / "cut", cut, grace=0)
    assert first.exit_code == 130
    assert "finalists: 2 configs of the best 3 lack periods" in capsys.readouterr().out
    plan = cli_here("plan", spec.source, "--sink", str(tmp_path / "cut"))  # what the run will do when it goes on
    marked = re.findall(r"^\s+\d+\s+(\S+)\s.*\(a finalist's: trained to its last epoch when the run goes on\)$",
                        plan.stdout, re.M)
    again, backend = run(spec, tmp_path / "cut", script)
    assert again.exit_code == 0
    # the config whose finalist trial was interrupted: its periods left (the other's, whose finalist trials had not
    # started, cannot be told from the rows alone: the plan's finalists line says the stage completes the best 3)
    submitted = [tid for what, tid in backend.log if what == "submit"]
    assert len(marked) == 1 and set(marked) <= set(submitted), plan.stdout
    # the finalists are still "the best 3", one of them complete now (it said "of the best 2")
    # its stopped trial trains from the first epoch: checkpoints live only in the run that stopped it
    assert re.search(r"^finalists: 1 config of the best 3 lacks periods; 2 trials now run .*; 1 runs again from the "
                     r"first epoch \(no checkpoint of it is kept\)$", capsys.readouterr().out, re.M)
    assert len(submitted) == 3 and first_finalist not in submitted  # the finalist trials it lacked, nothing else
    columns = ["trial_id", "status", "epochs", "finalist"]

    def table(folder: Path) -> pd.DataFrame:
        rows = [json.loads(p.read_text()) for p in (folder / "rows").glob("*.json")]
        return pd.DataFrame(rows).reindex(columns=columns).sort_values("trial_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(table(tmp_path / "cut"), table(tmp_path / "whole"))
    capsys.readouterr()
    _, backend = run(spec, tmp_path / "cut", script)  # once more: the search and its finalists are done
    assert not [tid for what, tid in backend.log if what == "submit"]
    rows = pd.DataFrame([json.loads(p.read_text()) for p in (tmp_path / "cut" / "rows").glob("*.json")])
    rows = rows[~rows["architecture"].str.startswith("naive-")]  # the baselines' rows
    ranked = int((rows.groupby("config_id")["status"].agg(lambda s: (s == "ok").sum()) == len(spec.periods)).sum())
    out = capsys.readouterr().out
    assert ranked >= 3 and f"finalists: nothing left to complete ({ranked} configs ran every period)" in out, out


def test_an_interrupted_finalist_leaves_the_row_of_its_stopped_trial_as_it_was(write_spec: Any, tmp_path: Path) -> None:
    spec = _finalist_spec(write_spec)
    script, order = ordered()
    _, whole = run(spec, tmp_path / "whole", script)
    submitted = [tid for what, tid in whole.log if what == "submit"]
    # the first finalist trial that trains a stopped trial again (9 search trials, then the finalists)
    again = next(i for i, tid in enumerate(submitted) if i >= 9 and tid in submitted[:9])
    tid = submitted[again]
    script, order = ordered()
    calls = [0]

    def cut(trial: Trial) -> Script:
        calls[0] += 1
        if calls[0] == again + 1:  # it starts again: Ctrl-C, and it is cut short
            os.kill(os.getpid(), signal.SIGINT)
        return script(trial)

    first, _ = run(spec, tmp_path / "cut", cut, grace=0)
    assert first.exit_code == 130
    # its row still says where early stopping stopped it, and why: an interrupted run of it says nothing more
    row = json.loads((tmp_path / "cut" / "rows" / f"{tid}.json").read_text())
    assert row["status"] == "pruned" and row["error"].startswith("pruned at epoch 1"), row
    assert "finalist" not in row
    table = pd.read_csv(tmp_path / "cut" / "results.csv").set_index("trial_id")
    assert table.loc[tid, "status"] == "pruned"
    again_run, _ = run(spec, tmp_path / "cut", script)  # and the run resumes to the same rows as one never cut
    assert again_run.exit_code == 0
    columns = ["trial_id", "status", "epochs", "finalist"]

    def rows(folder: Path) -> pd.DataFrame:
        got = [json.loads(p.read_text()) for p in (folder / "rows").glob("*.json")]
        return pd.DataFrame(got).reindex(columns=columns).sort_values("trial_id").reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(tmp_path / "cut"), rows(tmp_path / "whole"))


def test_finalists_spec_errors_are_one_line(write_spec: Any) -> None:
    with pytest.raises(SpecError, match=r"search.finalists: expected an integer >= 0 \(0 turns finalists off\), "
                                        r"got -1"):
        load_spec(write_spec(tiny_spec(search={"early_stopping": "asha", "finalists": -1})))
    assert load_spec(write_spec(tiny_spec(search={"early_stopping": "asha"}))).search.finalists == 3
    out = cli_here("validate", str(write_spec(tiny_spec(search={"strategy": "grid", "finalists": 2}))))
    assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.splitlines()) == 1
    assert out.stderr.strip().endswith("search.finalists: only early stopping or racing leaves configs with stopped "
                                       "periods to complete; remove it or add early_stopping or race")
    # a bad race value: its own line, not a second one about finalists
    out = cli_here("validate", str(write_spec(tiny_spec(search={"strategy": "grid", "race": "yes", "finalists": 2}))))
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.strip().endswith('search.race: expected true or false, got "yes"'), out.stderr


def test_finalists_are_the_configs_asha_takes_furthest_with_all_the_evidence(write_spec: Any, tmp_path: Path) -> None:
    # the first three configs are bad, but they run before 3 others reach a rung, so they pass every rung unjudged
    # and complete; c4 is second of 5 at epoch 1 and stopped there (asha keeps the best floor(5/3) = 1)
    curves = [[10.0] * 9, [11.0] * 9, [12.0] * 9, [1.0] * 9, [2.0] * 9, [13.0] * 9]
    order: dict[str, int] = {}

    def script(trial: Trial) -> Script:
        return Script(curve=curves[order.setdefault(trial.config_id, len(order))])

    spec = spec_with(write_spec, {"early_stopping": {"kind": "asha", "min_epochs": 1, "reduction_factor": 3},
                                  "finalists": 2})
    summary, _ = run(spec, tmp_path / "res", script)
    rows = rows_by_config(tmp_path / "res", order)
    # replayed with every trial's value at epoch 1, c0..c2 are out of the best third there, as c4 is; c4 is the
    # best of them there, so the two finalists are c3 (complete, the best) and c4, completed on both periods
    assert statuses(rows)[4] == ["ok", "ok"] and all(r.get("finalist") == 1 for r in rows[4])
    assert statuses(rows)[5] == ["pruned"]
    assert not any(r.get("finalist") for c in (0, 1, 2, 3) for r in rows[c])
    assert summary.exit_code == 0


def test_with_median_finalists_are_chosen_by_the_replay_not_by_being_complete(write_spec: Any, tmp_path: Path) -> None:
    # (hyperband is replayed as asha is, by its rungs and reduction factor: the asha test above.)
    # c0..c2 are bad but run first, so nothing judges them and they complete; c3..c6 improve and complete; c7 is the
    # best in the first period and stopped early in the second. Complete configs came first, so with 7 complete the
    # finalist stage had nothing to do; replayed with all the evidence, c0..c2 are out at the first rung and c7
    # (the best there in one period) ranks above them
    improving = [5.0, 2.0, 1.0, 0.5, 0.4, 0.3, 0.3, 0.3, 0.3]
    curves = [[10.0] * 9, [11.0] * 9, [12.0] * 9] + [improving] * 4
    order: dict[str, int] = {}

    def script(trial: Trial) -> Script:
        n = order.setdefault(trial.config_id, len(order))
        if n < 7:
            return Script(curve=curves[n])
        return Script(curve=[0.2] * 9 if trial.period.start_text.startswith("2013-01") else [6.0] * 9)

    spec = spec_with(write_spec, {"early_stopping": {"kind": "median", "min_epochs": 1}, "finalists": 5},
                     parameters={"lr": [0.001 * (i + 1) for i in range(8)], "hidden_size": [8]})
    summary, _ = run(spec, tmp_path / "res", script)
    rows = rows_by_config(tmp_path / "res", order)
    assert rows[7][0]["status"] == "ok" and rows[7][1]["status"] == "ok" and rows[7][1].get("finalist") == 1, \
        statuses(rows)
    assert not any(r.get("finalist") for c in range(7) for r in rows[c])
    assert summary.exit_code == 0


def test_a_finalist_whose_running_trial_a_stop_already_reached_is_run_again_to_the_end(write_spec: Any,
                                                                                     tmp_path: Path) -> None:
    """Three trials at a time, stops obeyed 3 epochs late: the stage picks a config whose search trial is
    still running with a stop on its way; that trial ends stopped, and the stage runs it again to the last
    epoch instead of ending with one finalist short (it ended with 2 configs ranked, not 3)."""
    from hpt.backends.fake import FakeBackend
    from hpt.progress import Reporter
    from hpt.runner import RunOptions, run_spec

    spec = spec_with(write_spec, {"early_stopping": {"kind": "asha", "min_epochs": 1, "min_trials": 3}})
    curves = CURVES[2:] + CURVES[:2]
    order: dict[str, int] = {}

    def script(trial: Trial) -> Script:
        return Script(curve=curves[order.setdefault(trial.config_id, len(order))])

    run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(bar=False, quiet=True),
             backend=FakeBackend(script, slots=3, stop_lag=3))
    rows = rows_by_config(tmp_path / "res", order)
    complete = [c for c, rs in rows.items() if [r["status"] for r in rs] == ["ok", "ok"]]
    assert len(complete) >= 3, statuses(rows)
    assert all(r["epochs"] == 9 for c in complete for r in rows[c] if r.get("finalist") == 1)
