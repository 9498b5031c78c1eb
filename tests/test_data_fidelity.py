"""Data as a fidelity (early_stopping.resource "data"): rungs train on growing shares of each period's training
windows. Scheduler logic on the fake backend with scripted values; one small real run through the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch

from hpt.backends.fake import FakeBackend, Script
from hpt.fidelity import FULL, data_share, fidelity_named
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.scheduling import make_scheduler
from hpt.search import expand
from hpt.spec import load_spec
from hpt.train import recent_share
from hpt.trial import Trial
from tests.conftest import hpt_here, tiny_spec, trial_row_objects
from tests.test_pruning import LRS, run, spec_with
from tests.test_tpe import bowl, tpe_spec

DATA = {"kind": "asha", "resource": "data"}


def quality(trial: Trial) -> float:
    """Lowest at lr=0.01; a share's value is worse the less data it saw, in the same order of configs."""
    import math

    return (1 + abs(math.log10(float(trial.params["lr"])) + 2)) * (1 + 1 / trial.fidelity.share) / 2


def scripted(trial: Trial) -> Script:
    return Script(curve=[quality(trial)] * int(trial.params["epochs"]))


def rows_at(folder: Path) -> list[dict[str, Any]]:
    return sorted(trial_row_objects(folder), key=lambda r: r["started_at"])


def test_rungs_train_on_data_shares_and_stop_configs_behind_at_a_share(write_spec: Any, tmp_path: Path) -> None:
    spec = spec_with(write_spec, {"early_stopping": {**DATA, "min_trials": 2}, "finalists": 0})
    summary, backend = run(spec, tmp_path / "res", scripted)
    rows = rows_at(tmp_path / "res")
    # every trial a worker got trained on a share 1/9, 1/3 or on the whole, for the full 9 epochs
    shares = {r["trial_id"]: r.get("data_share") for r in rows}
    assert set(shares.values()) == {1 / 9, 1 / 3, 1.0}
    assert {r["fidelity"] for r in rows} == {"data-1/9", "data-1/3", "full"}
    trained = [r for r in rows if r["status"] == "ok"]
    assert all(r["epochs"] == 9 for r in trained)
    # a config climbs 1/9 -> 1/3 -> the whole within its period; configs behind at a share are stopped there:
    # their full trial is not trained but recorded pruned, with where and why
    pruned = [r for r in rows if r["status"] == "pruned"]
    assert pruned and all(r["fidelity"] == "full" for r in pruned)
    assert all(r["error"].startswith(("pruned at data share 1/9 (rung 0, behind", "pruned at data share 1/3 (rung 1, "
                                                                                    "behind")) for r in pruned)
    submitted = {tid for what, tid in backend.log if what == "submit"}
    assert not submitted & {r["trial_id"] for r in pruned}
    # lr=0.01 is the best at every share: it is never stopped and ends with an ok full row in both periods
    best = [r for r in rows if r["param_lr"] == 0.01 and r["fidelity"] == "full"]
    assert [r["status"] for r in best] == ["ok", "ok"]
    # the first configs (too few others at a share: min_trials 2) went on unjudged, so were not stopped
    first = next(r["config_id"] for r in rows if r["trial_id"] == backend.log[0][1])
    assert all(r["status"] == "ok" for r in rows if r["config_id"] == first)
    assert summary.counts["pruned"] == len(pruned)
    # hpt results lists them under "Stopped early" with the share where they stopped in the epochs column
    res = hpt_here("results", str(tmp_path / "res"))
    assert res.exit_code == 0, res.output
    stopped = res.stdout[res.stdout.index("Stopped early: "):]
    assert re.search(r" 1/\d\s+share 1/9\s", stopped) and not re.search(r" 1/\d\s+-\s", stopped), stopped


def test_full_trials_keep_their_ids_and_a_rerun_trains_nothing_again(write_spec: Any, tmp_path: Path) -> None:
    spec = spec_with(write_spec, {"early_stopping": {**DATA, "min_trials": 2}, "finalists": 0})
    run(spec, tmp_path / "res", scripted)
    rows = rows_at(tmp_path / "res")
    plain = spec_with(write_spec, {})  # the same spec without early stopping: the ids a full run gives
    assert {r["trial_id"] for r in rows if r["fidelity"] == "full"} <= {t.trial_id for t in expand(plain)}
    assert all(r["trial_id"] not in {t.trial_id for t in expand(plain)} for r in rows if r["fidelity"] != "full")
    summary, again = run(spec, tmp_path / "res", scripted)
    assert [tid for what, tid in again.log if what == "submit"] == []  # shares and full trials: all done
    assert summary.skipped == len(rows)  # and said so: the first run's trials, its share trials among them


def test_a_run_cut_after_a_share_goes_on_from_the_next_share(write_spec: Any, tmp_path: Path) -> None:
    spec = spec_with(write_spec, {"early_stopping": {**DATA, "min_trials": 2}, "finalists": 0})
    run(spec, tmp_path / "res", scripted)
    rows = rows_at(tmp_path / "res")
    best_full = next(r for r in rows if r["param_lr"] == 0.01 and r["fidelity"] == "full")
    third = next(r for r in rows if r["config_id"] == best_full["config_id"] and r["fidelity"] == "data-1/3"
                 and r["period_start"] == best_full["period_start"])
    for r in (best_full, third):  # as if the run had been killed after its 1/9 share
        (tmp_path / "res" / "rows" / f"{r['trial_id']}.json").unlink()
    summary, again = run(spec, tmp_path / "res", scripted)
    assert [tid for what, tid in again.log if what == "submit"] == [third["trial_id"], best_full["trial_id"]]
    assert summary.skipped == len(rows) - 2 and sum(summary.counts.values()) == 2  # every trial counted once


def _in(row: dict[str, Any], label: str) -> bool:
    return f"{row['period_start']}..{row['period_end']}" == label


def test_a_config_stopped_at_a_share_stops_what_it_trains_in_other_periods(write_spec: Any, tmp_path: Path) -> None:
    """A config with a stopped period is never ranked: when it is stopped at a share of one period, its trials
    training in another stop at their next epoch (a share, or its full trial), and a share there that ended
    meanwhile does not climb on. Before, they trained to the end and climbed on."""
    spec = spec_with(write_spec, {"early_stopping": {**DATA, "min_trials": 1}, "finalists": 0})
    first = spec.periods[0].label
    why = f"(its config was stopped in {first})"

    def fast_second(trial: Trial) -> Script:  # the second period's shares take an epoch, and it ranks the other way
        if trial.period.label == first:
            return Script(curve=[20 - quality(trial)] * 4)
        return Script(curve=[quality(trial)] * (6 if trial.fidelity == FULL else 1))

    def ruled_out(folder: Path) -> list[dict[str, Any]]:
        rows = rows_at(folder)
        stopped = {r["config_id"] for r in rows if _in(r, first) and r["fidelity"] == "full" and r["status"] == "pruned"
                   and "(its config was" not in r["error"]}  # stopped there for itself
        return [r for r in rows if r["config_id"] in stopped and not _in(r, first)]

    run(spec, tmp_path / "full", fast_second, slots=2)  # full trials in the second period, stopped meanwhile
    later = ruled_out(tmp_path / "full")
    fulls = [r for r in later if r["fidelity"] == "full" and r["error"].startswith("pruned at epoch")]
    assert fulls and all(r["epochs"] < 6 and r["error"].endswith(why) for r in fulls), later

    run(spec, tmp_path / "shares", lambda t: Script(curve=[quality(t)] * (2 if t.period.label == first else 6)), slots=4)
    later = ruled_out(tmp_path / "shares")
    shares = [r for r in later if r["fidelity"] != "full"]
    assert shares and all(r["status"] == "pruned" and r["epochs"] < 6 and r["error"].endswith(why) for r in shares)
    assert all(r["error"] == f"pruned at data share 1/9 {why}" for r in later if r["fidelity"] == "full"), later
    assert not any(r["fidelity"] == "data-1/3" for r in later)  # nothing climbed on
    # killed after the rows stopped for their config, before the stop's own: resuming stops the config again
    stop = next(r for r in rows_at(tmp_path / "shares") if r["config_id"] == later[0]["config_id"] and _in(r, first)
                and r["fidelity"] == "full")
    (tmp_path / "shares" / "rows" / f"{stop['trial_id']}.json").unlink()
    run(spec, tmp_path / "shares", lambda t: Script(curve=[quality(t)] * (2 if t.period.label == first else 6)), slots=4)
    again = next(r for r in rows_at(tmp_path / "shares") if r["trial_id"] == stop["trial_id"])
    assert (again["status"], again["error"]) == (stop["status"], stop["error"])

    run(spec, tmp_path / "ended", scripted, slots=4)  # shares of both periods end at the same epoch, their last
    later = [r for r in ruled_out(tmp_path / "ended") if r["fidelity"] == "full"]
    assert later and all(r["error"] == f"pruned at data share 1/9 {why}" for r in later), later
    at_share = {(r["config_id"], r["period_start"]): r["val_mse"] for r in rows_at(tmp_path / "ended")
                if r["fidelity"] == "data-1/9"}
    assert all(r["val_mse"] == at_share[r["config_id"], r["period_start"]] for r in later)  # the share's values


def test_a_share_queued_before_its_config_was_stopped_does_not_start(write_spec: Any) -> None:
    """One batch of results: x's share in Q passes (its next share is queued), then x is stopped at its share in P.
    The queued share does not start: x's full trial in Q is pruned there, for its config."""
    from hpt.trial import Status, TrialResult

    spec = spec_with(write_spec, {"early_stopping": {**DATA, "min_trials": 1}, "finalists": 0},
                     parameters={"lr": [0.01, 0.1], "hidden_size": [8]})
    p, q = (period.label for period in spec.periods)
    rungs = make_scheduler(spec)
    rungs.restore({})
    shares = {}
    for _ in range(4):
        share = rungs.suggest()
        assert isinstance(share, Trial) and share.fidelity.share == 1 / 9
        shares[float(share.params["lr"]), share.period.label] = share
    for lr, period, value in [(0.1, q, 1.0), (0.01, p, 1.0), (0.1, p, 5.0)]:  # x is lr=0.1
        rungs.on_result(TrialResult(shares[lr, period], Status.OK, metrics={"val_mse": value}))
    handed = [rungs.suggest() for _ in range(3)]
    assert [(type(h).__name__, (h.trial if isinstance(h, TrialResult) else h).period.label)  # type: ignore[union-attr]
            for h in handed] == [("TrialResult", p), ("Trial", p), ("TrialResult", q)]
    stopped = handed[2]
    assert isinstance(stopped, TrialResult) and stopped.status is Status.PRUNED and stopped.trial.fidelity == FULL
    assert stopped.error == f"pruned at data share 1/3 (its config was stopped in {p})"


def test_a_period_stopped_for_its_config_says_nothing_of_how_far_the_config_got(write_spec: Any) -> None:
    """The finalists' replay over the shares: config x was stopped at 1/3 in period P, out of the best there; in
    period Q it was the best at 1/9 and stopped at 1/3 because of P. Q says nothing: x got to 1/3 (reach 2), not
    to 1/9 alone (reach 1, as before, with x then behind every config that got further)."""
    from hpt.scheduling.data_rungs import DataRungs

    spec = spec_with(write_spec, {"early_stopping": {**DATA, "min_trials": 1}, "finalists": 0})
    p, q = spec.periods[0], spec.periods[1]
    rows: dict[str, dict[str, Any]] = {}

    def row(cid: str, period: Any, fidelity: str, status: str, value: float | None, error: str = "") -> None:
        rows[f"{cid}-{period.label}-{fidelity}"] = {
            "trial_id": f"{cid}-{period.label}-{fidelity}", "config_id": cid, "fidelity": fidelity, "status": status,
            "period_start": period.start_text, "period_end": period.end_text, "seed": 0, "val_mse": value,
            "error": error}

    for period in (p, q):
        for k, cid in enumerate(["a", "b", "c"]):
            row(cid, period, "data-1/9", "ok", 2.0 + k)
            row(cid, period, "data-1/3", "ok", 1.0 + k)
            row(cid, period, "full", "ok", 1.0 + k)
        row("x", period, "data-1/9", "ok", 1.0)
    row("x", p, "data-1/3", "ok", 5.0)
    row("x", p, "full", "pruned", 5.0, "pruned at data share 1/3 (rung 1, behind 3 of 3 trials of its period)")
    row("x", q, "full", "pruned", None, f"pruned at data share 1/3 (its config was stopped in {p.label}; a config "
                                        "with a stopped period is never ranked)")
    rungs = make_scheduler(spec)
    assert isinstance(rungs, DataRungs)
    rungs.restore(rows)
    assert rungs.standing()["x"][0] == 2


def test_finalists_complete_configs_stopped_at_a_share(write_spec: Any, tmp_path: Path) -> None:
    spec = spec_with(write_spec, {"early_stopping": {**DATA, "min_trials": 1}, "finalists": 3})
    run(spec, tmp_path / "res", scripted)
    full = [r for r in rows_at(tmp_path / "res") if r["fidelity"] == "full" and r["status"] == "ok"]
    by_config: dict[str, int] = {}
    for r in full:
        by_config[r["config_id"]] = by_config.get(r["config_id"], 0) + 1
    assert sum(n == 2 for n in by_config.values()) >= 3  # at least 3 configs ranked over both periods
    assert any(r.get("finalist") == 1 for r in full)
    assert all(r["data_share"] == 1.0 for r in full)  # a finalist trains on all the data (it said the share it
    # was stopped at)


def test_finalists_on_data_shares_are_chosen_by_a_replay_not_by_who_ran_first(write_spec: Any, tmp_path: Path) -> None:
    """The first configs climb every share unjudged (too few others there yet) and complete. The finalists are
    chosen by successive halving replayed over the shares with all the evidence, so the second-best config,
    stopped at a share, is completed, not the worst configs that happened to run first (before: complete
    configs ranked first, and finalists completed nothing)."""
    lrs = [0.1, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.05, 0.002]
    spec = spec_with(write_spec, {"seed": 2, "early_stopping": {**DATA, "min_trials": 2}, "finalists": 2},
                     parameters={"lr": lrs, "hidden_size": [8]})
    summary, backend = run(spec, tmp_path / "res", scripted)
    trained = {t.trial_id: t for t in expand(spec)}
    first = list(dict.fromkeys(float(trained[tid].params["lr"]) for what, tid in backend.log
                               if what == "submit" and tid in trained))[:2]
    rows = [r for r in rows_at(tmp_path / "res") if r["fidelity"] == "full"]
    complete = {lr for lr in lrs if [r["status"] for r in rows if r["param_lr"] == lr] == ["ok", "ok"]}
    finalists = {r["param_lr"] for r in rows if r.get("finalist") == 1}
    assert sorted(first) == [0.0001, 0.1]  # the two worst ran first: unjudged, complete, and no finalists
    assert set(first) <= complete and not set(first) & finalists
    assert 0.03 in finalists and {0.01, 0.03} <= complete  # the two best end ranked over both periods


def test_data_share_rankings_are_listed_by_share_largest_first() -> None:
    from hpt.results.rank import fidelity_order

    names = ["data-1/243", "data-1/27", "data-1/3", "quick", "data-1/81", "full", "data-1/9", "quick-data-1/9",
             "quick-data-1/3"]  # as text, 1/243 < 1/27 < 1/3 < 1/81 < 1/9
    assert fidelity_order(names) == ["full", "data-1/3", "data-1/9", "data-1/27", "data-1/81", "data-1/243", "quick",
                                     "quick-data-1/3", "quick-data-1/9"]


def test_the_replay_over_shares_judges_each_share_by_its_own_value() -> None:
    """Each share is a trial of its own: a config that did well on 1/9 and badly on 1/3 is out at 1/3, however it
    did on 1/9 (a best-so-far value, right for an epoch's curve, would carry 1/9's value up and let it through)."""
    from hpt.scheduling.pruning import Reached, halving_standing
    from hpt.spec.search import EarlyStopping

    shares = {"a": [1.0, 3.0, 2.0], "b": [1.1, 1.5], "g": [1.2, 1.6], **{f"w{i}": [2.0 + i] for i in range(6)}}
    trials, curves = {}, {}
    for cid, values in shares.items():  # "a" ran first: it climbed every share unjudged and completed
        curves[cid] = {k + 1: v for k, v in enumerate(values)}
        status = "ok" if len(values) == 3 else "pruned"
        trials[cid] = Reached(cid, "P1", status, len(values), values[-1])
    stopping = EarlyStopping("asha", 2, 3, min_trials=2, resource="data")
    standing = halving_standing(trials, curves, stopping, 3, at=range(1, 3), best_so_far=False)
    assert standing["a"][0] == 2 and standing["b"][0] == standing["g"][0] == 2  # all out at 1/3 ...
    assert standing["b"][1] < standing["g"][1] < standing["a"][1]  # ... where "a" is the worst
    carried = halving_standing(trials, curves, stopping, 3, at=range(1, 3))
    assert carried["a"][0] == 3  # judged by its best so far, it would pass 1/3 and rank first


def test_data_rows_are_ranked_apart_and_the_plan_shows_shares(write_spec: Any, tmp_path: Path, cli: Any) -> None:
    doc = tiny_spec(search={"strategy": "grid", "early_stopping": {**DATA, "min_trials": 1}, "finalists": 0},
                    parameters={"lr": [0.0001, 0.01], "hidden_size": [8]}, date_ranges=[["2013-01-01", "2013-01-15"]])
    doc["training"] = {**doc["training"], "epochs": 2}
    spec = write_spec(doc)
    plan = hpt_here("plan", str(spec))
    assert plan.exit_code == 0, plan.output
    assert "early stopping asha on data: rungs at data shares 1/9, 1/3 of each period's training windows" in plan.stdout
    assert "and 4 trials on data shares: at most 1.44x the compute of the full trials" in plan.stdout
    out = cli("run", str(spec), "--sink", str(tmp_path / "res"), "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert " data-1/9  " in out.stdout and " data-1/3  " in out.stdout  # each share's trial, named in the log
    res = hpt_here("results", str(tmp_path / "res"))
    assert res.exit_code == 0, res.output
    assert "Data share (data-1/9) rows, ranked apart" in res.stdout
    assert "Data share (data-1/3) rows, ranked apart" in res.stdout
    assert res.stdout.index("Configs ranked by mean val_mse over 1 period (full runs") < res.stdout.index("Data share")


def test_a_share_trains_on_the_most_recent_windows() -> None:
    x = torch.arange(10.0).reshape(10, 1, 1)
    y = torch.arange(10.0).reshape(10, 1)
    kept = recent_share((x, y, x[:2], y[:2]), 1 / 3)
    assert kept[0].flatten().tolist() == [6.0, 7.0, 8.0, 9.0] and kept[1].flatten().tolist() == [6.0, 7.0, 8.0, 9.0]
    assert kept[2] is not None and len(kept[2]) == 2  # the validation windows are all kept
    assert len(recent_share((x, y, x, y), 0.01)[0]) == 1


def test_share_fidelities_are_named_and_read_back() -> None:
    assert data_share(FULL, 9).name == "data-1/9" and fidelity_named("data-1/9") == data_share(FULL, 9)
    assert fidelity_named("quick-data-1/3").max_epochs == 20 and fidelity_named("quick-data-1/3").share == 1 / 3
    assert fidelity_named("full").share == 1.0


@pytest.mark.parametrize("stopping, where, says", [
    ({"kind": "asha", "resource": "bytes"}, "search.early_stopping.resource", "expected one of epochs, data"),
    ({"kind": "median", "resource": "data"}, "search.early_stopping.resource", '"data" works with asha'),
    ({"kind": "asha", "resource": "data", "min_epochs": 2}, "search.early_stopping.min_epochs", "remove min_epochs"),
    ({"kind": "asha", "resource": "data", "min_share": 1.5}, "search.early_stopping.min_share",
     "expected a share from 0.01 to below 1"),
    ({"kind": "asha", "resource": "data", "min_share": 0.0001}, "search.early_stopping.min_share",
     "a smaller share holds a handful of windows), got 0.0001"),
    ({"kind": "asha", "resource": "data", "min_share": 0.5}, "search.early_stopping.min_share", "no rung"),
    ({"kind": "asha", "min_share": 0.1}, "search.early_stopping.min_share", 'only with "resource": "data"'),
])
def test_bad_data_resource_settings_exit_2_with_one_line(write_spec: Any, stopping: dict[str, Any],
                                                        where: str, says: str) -> None:
    out = hpt_here("validate", str(write_spec(tiny_spec(search={"strategy": "grid", "early_stopping": stopping}))))
    assert out.exit_code == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hpt: error:") and where in lines[0] and says in lines[0], out.stderr
    assert "Traceback" not in out.output


def test_the_spec_keeps_the_shares(write_spec: Any) -> None:
    spec = load_spec(write_spec(tiny_spec(search={"strategy": "grid", "early_stopping": {
        **DATA, "reduction_factor": 2, "min_share": 0.2}})))
    stopping = spec.search.early_stopping
    assert stopping is not None and stopping.resource == "data" and stopping.shares == [4, 2]
    assert LRS  # the grid the fake-backend tests search


def test_tpe_learns_from_configs_stopped_at_a_share(write_spec: Any, tmp_path: Path) -> None:
    spec = tpe_spec(write_spec, early_stopping={**DATA, "min_trials": 1}, finalists=1)
    scheduler = make_scheduler(spec)
    run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True), backend=FakeBackend(bowl),
             scheduler=scheduler)
    rows = [r for r in rows_at(tmp_path / "res") if r["fidelity"] == "full"]
    stopped = {r["tpe_trial"]: r for r in rows if r["status"] == "pruned" and "data share" in r["error"]}
    assert stopped
    study = scheduler.inner.inner.study  # type: ignore[attr-defined]  # finalists around data rungs around tpe
    told = {t.number: t for t in study.get_trials()}
    for number, row in stopped.items():  # told pruned, its step the share's epoch-equivalent (6 epochs x 1/9 or 1/3)
        n = int(row["error"].split("data share 1/")[1].split()[0])
        ok = sum(r["status"] == "ok" for r in rows if r["tpe_trial"] == number)
        assert told[number].state.name == "PRUNED" and list(told[number].intermediate_values) == [ok * 6 + round(6 / n)]
