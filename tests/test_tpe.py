"""tpe, budget and warm start on the fake backend: what the sampler is told, determinism, resume, 2 workers."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.backends.fake import FakeBackend, Script
from hpt.errors import InputError
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.scheduling import make_scheduler
from hpt.scheduling.budget import Budgeted
from hpt.scheduling.tpe import TPEScheduler
from hpt.spec import load_spec
from hpt.trial import Status, Trial
from tests.conftest import cli_here, tiny_spec, trial_rows
from tests.test_pruning import _interrupt_at, rows_of

SPACE = {"lr": {"loguniform": [1e-4, 1e-1]}, "hidden_size": [8, 16]}


def bowl(trial: Trial) -> Script:
    """A loss with its minimum at lr=0.01 and hidden_size=16, ten times larger in February."""
    scale = 10.0 if trial.period.start_text == "2013-02-01" else 1.0
    base = scale * (1 + (math.log10(float(trial.params["lr"])) + 2) ** 2 + (trial.params["hidden_size"] == 8) * 0.2)
    return Script(curve=[base * (1 + 2 / e) for e in range(1, 7)])


def tpe_spec(write_spec: Any, **search: Any) -> Any:
    doc = tiny_spec(search={"strategy": "tpe", "seed": 0, "max_trials": 12, "startup_trials": 4, **search},
                    parameters=SPACE)
    doc["training"]["epochs"] = 6
    return load_spec(write_spec(doc))


def run(spec: Any, folder: Path, script: Any = bowl, slots: int = 1, say: list[str] | None = None,
        **options: Any) -> tuple[Any, FakeBackend]:
    backend = FakeBackend(script, slots=slots)
    reporter = Reporter(bar=False, quiet=True)
    if say is not None:
        reporter.line = say.append  # type: ignore[method-assign]
    return run_spec(spec, RunOptions(sink=str(folder), **options), reporter, backend=backend), backend


def configs_in_order(folder: Path) -> list[tuple[int, float, int]]:
    rows = rows_of(folder)
    first = rows.sort_values("tpe_trial").drop_duplicates("config_id")
    return [(int(r.tpe_trial), float(r.param_lr), int(r.param_hidden_size)) for r in first.itertuples()]


def test_tpe_learns_from_mean_over_periods_and_is_deterministic_with_one_worker(write_spec: Any, tmp_path: Path) -> None:
    spec = tpe_spec(write_spec)
    summary, backend = run(spec, tmp_path / "a")
    assert summary.exit_code == 0 and summary.counts == {"ok": 24}
    first = configs_in_order(tmp_path / "a")
    assert [n for n, _, _ in first] == list(range(12))
    again, _ = run(spec, tmp_path / "b")
    assert configs_in_order(tmp_path / "b") == first  # same spec, same seed, one worker: the same configs
    other, _ = run(tpe_spec(write_spec, seed=1), tmp_path / "c")
    assert configs_in_order(tmp_path / "c") != first
    # the sampler learns: after the 4 random configs, TPE's configs are nearer lr=0.01 than the random ones
    distance = [abs(math.log10(lr) + 2) for _, lr, _ in first]
    assert sum(distance[8:]) / 4 < sum(distance[:4]) / 4
    # the value told is the mean over the periods, when the last period finished
    scheduler = make_scheduler(spec)
    assert isinstance(scheduler, TPEScheduler)
    rows = {r["trial_id"]: r for r in rows_of(tmp_path / "a").to_dict(orient="records")}
    scheduler.restore(rows)
    means = rows_of(tmp_path / "a").groupby("tpe_trial")["val_mse"].mean()
    told = {t.number: t.value for t in scheduler.study.get_trials()}
    assert told == pytest.approx(means.to_dict()) and scheduler.skipped == 24 and scheduler.suggest() is not None


def test_two_workers_run_a_configs_periods_side_by_side_and_keep_at_most_two_configs_pending(write_spec: Any,
                                                                                             tmp_path: Path) -> None:
    spec = tpe_spec(write_spec)
    scheduler = make_scheduler(spec)
    assert isinstance(scheduler, TPEScheduler)
    pending: list[int] = []
    original = scheduler.suggest

    def counting() -> Any:
        nxt = original()
        pending.append(len(scheduler._pending))
        return nxt

    scheduler.suggest = counting  # type: ignore[method-assign]
    backend = FakeBackend(bowl, slots=2)
    side_by_side: set[str] = set()  # configs whose two periods were running at once
    submit = backend.submit

    def watching(trial: Trial) -> None:
        submit(trial)
        if sum(r.trial.config_id == trial.config_id for r in backend._running.values()) == 2:
            side_by_side.add(trial.config_id)

    backend.submit = watching  # type: ignore[method-assign]
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True), backend=backend,
                       scheduler=scheduler)
    assert summary.counts == {"ok": 24} and backend.max_running == 2 and max(pending) <= 2
    configs = set(rows_of(tmp_path / "res")["config_id"])
    assert len(configs) == 12 and len(side_by_side) > len(configs) / 2  # most configs ran both periods side by side


def test_a_failed_or_diverged_trial_is_told_as_failed_and_the_run_goes_on(write_spec: Any, tmp_path: Path) -> None:
    spec = tpe_spec(write_spec, max_trials=8)

    def flaky(trial: Trial) -> Script:
        lr = float(trial.params["lr"])
        if lr > 0.03:
            return Script(status=Status.FAILED, error="CUDA out of memory")
        if lr < 0.0005:
            return Script(curve=[5.0, float("nan")], status=Status.DIVERGED, error="loss became nan")
        return bowl(trial)

    scheduler = make_scheduler(spec)
    assert isinstance(scheduler, TPEScheduler)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True),
                       backend=FakeBackend(flaky, slots=2), scheduler=scheduler)
    assert summary.exit_code == 0 and summary.counts["failed"] + summary.counts["diverged"] >= 1
    states = {t.params["lr"]: t.state.name for t in scheduler.study.get_trials()}
    assert len(states) == 8
    assert all(s == "FAIL" for lr, s in states.items() if lr > 0.03 or lr < 0.0005)
    assert all(s == "COMPLETE" for lr, s in states.items() if 0.0005 <= lr <= 0.03)


@pytest.mark.parametrize(("at", "slots"), [(4, 1), (7, 1), (10, 1), (13, 1), (16, 1), (9, 2), (10, 2), (12, 2)])
def test_tpe_with_early_stopping_resumes_after_ctrl_c_as_if_never_stopped(write_spec: Any, tmp_path: Path,
                                                                          at: int, slots: int) -> None:
    """10 with one worker: after a config's periods waited at the first rung. With two: cut while trials wait at the
    first rung (9, 12: one waiting, its config's other period cut short; 10: both periods of the first config, which
    went on, cut short), once the rung had the evidence to judge them; resuming judges them then, as the run would
    have, and reruns what was cut short, so the rows end as the run's that was never stopped."""
    spec = tpe_spec(write_spec, early_stopping={"kind": "asha", "min_epochs": 1, "reduction_factor": 2})
    run(spec, tmp_path / "whole", slots=slots)
    first, _ = run(spec, tmp_path / "cut", _interrupt_at(at, bowl), grace=0, slots=slots)
    assert first.exit_code == 130
    again, backend = run(spec, tmp_path / "cut", slots=slots)
    submitted = {tid for what, tid in backend.log if what == "submit"}
    cut = rows_of(tmp_path / "cut")
    kept = cut[cut["run_id"] == first.run_id]  # the first run's rows, but the interrupted one (rerun)
    # skipped: the first run's rows but the interrupted one; some of them waited at the first rung and ran again (their
    # new rows replace them); the first run's results count each run of a trial
    assert len(kept) <= again.skipped <= sum(first.counts.values()) - 1
    assert again.skipped + sum(again.counts.values()) == len(rows_of(tmp_path / "cut"))  # each trial once: skipped or run
    assert cut["trial_id"].is_unique and not submitted & set(kept["trial_id"])  # nothing trained twice
    columns = ["tpe_trial", "param_lr", "param_hidden_size", "period_start", "status", "epochs", "error"]
    whole = rows_of(tmp_path / "whole")
    assert (whole["status"] == "pruned").any()
    key = ["tpe_trial", "period_start"]
    assert cut[columns].sort_values(key).reset_index(drop=True).equals(whole[columns].sort_values(key).reset_index(drop=True))
    # a pruned config is told as pruned (and so is a complete one that successive halving, replayed with all the
    # evidence, stops at a rung: the first configs passed their rungs before others got there)
    scheduler = make_scheduler(spec)
    curves = tmp_path / "whole" / "curves"
    scheduler.restore({r["trial_id"]: r for r in whole.to_dict(orient="records")},
                      lambda ids: {tid: (curves / f"{tid}.csv").read_text() for tid in ids})
    inner = scheduler.inner.inner  # type: ignore[attr-defined]  # finalists around early stopping around tpe
    pruned = {t.number for t in inner.study.get_trials() if t.state.name == "PRUNED"}
    assert set(whole[whole["status"] == "pruned"]["tpe_trial"]) <= pruned
    complete = whole.groupby("tpe_trial")["status"].agg(lambda s: (s == "ok").all())
    assert all(complete[n] for n in pruned - set(whole[whole["status"] == "pruned"]["tpe_trial"]))


@pytest.mark.parametrize("at", [14, 15])
def test_a_resumed_tpe_run_never_gives_a_new_config_the_number_of_an_old_one(write_spec: Any, tmp_path: Path,
                                                                             at: int) -> None:
    """9 configs in the space, 12 asks: some asks give a config tried before, which has no rows of its own, so the
    study rebuilt from the rows has fewer trials than the run's. The configs asked after resuming are numbered after
    those restored: each number is one config's, and the run ends with as many configs as the one never stopped."""
    doc = tiny_spec(search={"strategy": "tpe", "seed": 0, "max_trials": 12, "startup_trials": 2},
                    parameters={"lr": [0.001, 0.01, 0.1], "hidden_size": [8, 16, 32]})
    doc["training"]["epochs"] = 6
    spec = load_spec(write_spec(doc))
    run(spec, tmp_path / "whole", slots=2)
    first, _ = run(spec, tmp_path / "cut", _interrupt_at(at, bowl), grace=0, slots=2)
    assert first.exit_code == 130
    run(spec, tmp_path / "cut", slots=2)
    cut, whole = rows_of(tmp_path / "cut"), rows_of(tmp_path / "whole")
    assert (cut.groupby("tpe_trial")["config_id"].nunique() == 1).all()
    assert (cut.groupby("config_id")["tpe_trial"].nunique() == 1).all()
    assert cut["config_id"].nunique() == whole["config_id"].nunique() and (cut["status"] == "ok").all()


def test_a_config_tried_before_is_not_trained_again(write_spec: Any, tmp_path: Path) -> None:
    doc = tiny_spec(search={"strategy": "tpe", "max_trials": 10, "startup_trials": 2},
                    parameters={"lr": [0.001, 0.01], "hidden_size": [8, 16]})
    spec = load_spec(write_spec(doc))
    scheduler = make_scheduler(spec)
    assert isinstance(scheduler, TPEScheduler)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True),
                       backend=FakeBackend(bowl, slots=2), scheduler=scheduler)
    rows = rows_of(tmp_path / "res")
    assert rows["trial_id"].is_unique and rows["config_id"].nunique() <= 4 and summary.counts["ok"] == len(rows)
    assert scheduler.asked == 10 and scheduler.repeats == 10 - rows["config_id"].nunique()
    assert len(scheduler.study.get_trials()) == 10  # a repeat is told the value of the config it repeats


@pytest.mark.parametrize("strategy", ["grid", "tpe"])
def test_a_budget_of_trials_stops_new_configs_and_counts_what_is_there(write_spec: Any, tmp_path: Path,
                                                                       strategy: str) -> None:
    search = {"strategy": strategy, "budget": 5, "max_trials": 12} if strategy == "tpe" else {"budget": 5}
    doc = tiny_spec(search=search, parameters=SPACE if strategy == "tpe" else {"lr": [1e-4, 1e-3, 1e-2, 0.1],
                                                                                  "hidden_size": [8, 16]})
    spec = load_spec(write_spec(doc))
    said: list[str] = []
    summary, backend = run(spec, tmp_path / "res", say=said, slots=2)
    assert sum(summary.counts.values()) == 6  # 5, and the second period of the third config: none is left half-run
    assert rows_of(tmp_path / "res").groupby("config_id").size().eq(2).all()
    assert any(line.startswith("budget 5 trials spent (6 trials run): no new config starts") for line in said), said
    again, backend = run(spec, tmp_path / "res", say=said)
    assert again.counts == {} and backend.log == []  # spent: the 6 at the location count


def test_a_budget_of_time_starts_no_config_once_spent(write_spec: Any, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tiny_spec(search={"budget": "90m"}, parameters={"lr": [1e-4, 1e-3, 1e-2, 0.1]})))
    said: list[str] = []
    scheduler = make_scheduler(spec, said.append)
    assert isinstance(scheduler, Budgeted) and scheduler.budget.seconds == 5400
    now = [0.0]
    scheduler.clock = lambda: now[0]

    def slow(trial: Trial) -> Script:
        now[0] += 2000.0  # each trial "takes" 2000 s: the fifth would start at 8000 s
        return bowl(trial)

    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True),
                       backend=FakeBackend(slow), scheduler=scheduler)
    assert summary.counts == {"ok": 4}  # 2 configs started before 5400 s; each ran both its periods
    assert said == ["budget 90m spent (2h13m since the first trial): no new config starts; the trials running finish"]


def _earlier_run(write_spec: Any, folder: Path, **changes: Any) -> None:
    """An earlier random search on the same data: 6 configs, some outside today's space."""
    doc = tiny_spec(search={"strategy": "random", "max_trials": 6, "seed": 5},
                    parameters={"lr": {"loguniform": [1e-5, 1e-1]}, "hidden_size": [8, 16]})
    doc.update(changes)
    doc["training"]["epochs"] = 6
    run(load_spec(write_spec(doc)), folder)


def test_warm_start_uses_the_rows_that_fit_and_says_why_it_ignores_the_rest(write_spec: Any, tmp_path: Path) -> None:
    old, gru = tmp_path / "old", tmp_path / "old-gru"
    _earlier_run(write_spec, old)
    _earlier_run(write_spec, gru, architecture="gru")
    rows = rows_of(old)
    inside = rows[rows["param_lr"] >= 1e-4]
    assert 0 < len(inside) < len(rows)  # some of the earlier configs are outside today's lr range
    spec = tpe_spec(write_spec, warm_start=[str(old), str(gru)],
                    early_stopping={"kind": "asha", "min_epochs": 1})
    said: list[str] = []
    summary, backend = run(spec, tmp_path / "new", say=said)
    assert f"warm start from {old}: {len(inside)} rows used, {len(rows) - len(inside)} rows ignored: " \
           f"{len(rows) - len(inside)} lr outside this search space" in said
    assert f"warm start from {gru}: 0 rows used, 12 rows ignored: 12 architecture gru" in said
    assert f"warm start: tpe starts from {len(inside) // 2} earlier configs ({len(inside)} rows; a config's value " \
           "is its mean val_mse over its periods there)" in said
    assert f"warm start: early stopping compares trials with {len(inside)} earlier trials of the same periods" in said
    new = rows_of(tmp_path / "new")
    assert not set(new["trial_id"]) & set(rows["trial_id"])  # warm-start rows are never written here
    # every trial this run trained has its row; a stopped trial completed as a finalist counts twice in the run
    assert len(new) == len({tid for what, tid in backend.log if what == "submit"})
    assert len(trial_rows(pd.read_csv(tmp_path / "new" / "results.csv"))) == len(new)
    scheduler = make_scheduler(spec, location=str(tmp_path / "new"))
    scheduler.restore({})
    inner = scheduler.inner.inner  # type: ignore[attr-defined]  # finalists around early stopping around tpe
    warm = [t for t in inner.study.get_trials() if t.user_attrs.get("warm_start")]
    assert len(warm) == len(inside) // 2 and all(t.state.name == "COMPLETE" for t in warm)
    with pytest.raises(InputError, match=r"search.warm_start\[0\]: .* is this run's own results location"):
        make_scheduler(tpe_spec(write_spec, warm_start=[str(old)]), location=str(old))
    with pytest.raises(InputError, match=r"search.warm_start\[0\]: .*nowhere: no such results folder"):
        make_scheduler(tpe_spec(write_spec, warm_start=[str(tmp_path / "nowhere")]))
    json.dumps(said)


def test_two_seeded_one_worker_runs_of_tpe_with_asha_give_the_same_rows(write_spec: Any, cli: Any,
                                                                        tmp_path: Path) -> None:
    """Real workers, where a stop reaches the trial one or two epochs after the decision depending on
    timing: the pruned rows (epochs, values) and curves are those of the decision, so they repeat."""
    spec = write_spec(tiny_spec(
        date_ranges=[["2013-01-01", "2013-01-15"]], parameters={"lr": {"loguniform": [1e-4, 0.1]}, "hidden_size": [8]},
        search={"strategy": "tpe", "max_trials": 8, "seed": 0, "startup_trials": 3,
                "early_stopping": {"kind": "asha", "min_epochs": 1, "reduction_factor": 3}},
        training={"epochs": 12, "patience": 0}))
    runs = []
    for name in ("a", "b"):
        out = cli("run", str(spec), "--sink", str(tmp_path / name), "--workers", "1", "-q")
        assert out.returncode == 0, out.stderr
        rows = rows_of(tmp_path / name)
        curves = [(tmp_path / name / "curves" / f"{tid}.csv").read_text() for tid in rows["trial_id"]]
        runs.append((rows, [pd.read_csv(io.StringIO(c)).drop(columns="time_s") for c in curves]))
    (a, curves_a), (b, curves_b) = runs
    assert (a["status"] == "pruned").sum() >= 2, a[["status", "epochs", "error"]]
    same = ["trial_id", "status", "epochs", "best_epoch", "val_mse", "val_mae", "error"]
    pd.testing.assert_frame_equal(a[same], b[same])
    for ca, cb in zip(curves_a, curves_b, strict=True):
        pd.testing.assert_frame_equal(ca, cb)


def _tpe(scheduler: Any) -> TPEScheduler:
    """The tpe scheduler inside the wrappers (finalists, early stopping)."""
    while not isinstance(scheduler, TPEScheduler):
        scheduler = scheduler.inner
    return scheduler


def _told(scheduler: Any) -> dict[tuple[Any, ...], tuple[str, float | None, dict[int, float]]]:
    """What tpe's study holds of each config (its params): state, value, intermediate values."""
    inner = _tpe(scheduler)
    return {tuple(sorted(t.params.items())): (t.state.name, t.value, dict(t.intermediate_values))
            for t in inner.study.get_trials()}


def _tpe_with_asha(write_spec: Any, tmp_path: Path, finalists: int) -> tuple[Any, Any, pd.DataFrame]:
    """A tpe search with asha (rungs at epochs 1, 2, 4) on the fake backend: its spec, scheduler and rows."""
    spec = tpe_spec(write_spec, early_stopping={"kind": "asha", "min_epochs": 1, "reduction_factor": 2},
                    finalists=finalists)
    scheduler = make_scheduler(spec)
    run_spec(spec, RunOptions(sink=str(tmp_path / "res")), Reporter(quiet=True), backend=FakeBackend(bowl),
             scheduler=scheduler)
    return spec, scheduler, rows_of(tmp_path / "res")


def test_tpe_learns_from_stopped_trials_and_finalists_and_resuming_tells_it_the_same(write_spec: Any,
                                                                                      tmp_path: Path) -> None:
    spec, scheduler, rows = _tpe_with_asha(write_spec, tmp_path, finalists=7)
    live = _told(scheduler)
    by_config = {tuple(sorted({"lr": g["param_lr"].iloc[0], "hidden_size": g["param_hidden_size"].iloc[0]}.items())): g
                 for _, g in rows.groupby("config_id")}
    pruned = {k: g for k, g in by_config.items() if (g["status"] == "pruned").any()}
    finalists = {k: g for k, g in by_config.items() if g.get("finalist", pd.Series(dtype=float)).eq(1).any()}
    assert len(pruned) >= 3 and len(finalists) >= 1, rows[["config_id", "status"]]
    for key, group in {**pruned, **finalists}.items():
        state, value, steps = live[key]
        if state == "COMPLETE":  # a finalist successive halving, replayed with all the evidence, keeps to the end
            assert key in finalists and value == pytest.approx(group["val_mse"].mean()) and not steps
            continue
        # stopped, or a finalist the replay stops: pruned, its step the epoch it reaches, its place in its periods
        assert state == "PRUNED" and value is None and len(steps) == 1, (group, steps)
        (step, place), = steps.items()
        stopped = group[group["status"] == "pruned"]["error"].str.extract(r"pruned at epoch (\d+)")[0].astype(int)
        assert step <= (stopped.min() if key in pruned and key not in finalists else 5)
        assert 0 <= place <= 1  # a place, not February's ten-times-larger loss
    again = make_scheduler(spec)
    curves = tmp_path / "res" / "curves"
    again.restore({r["trial_id"]: r for r in rows.to_dict(orient="records")},
                  lambda ids: {tid: (curves / f"{tid}.csv").read_text() for tid in ids})
    assert _told(again) == live  # resuming tells tpe the same


def test_tpe_with_asha_models_the_configs_halving_keeps_not_the_first_that_ran_unjudged(write_spec: Any,
                                                                                       tmp_path: Path) -> None:
    """One worker: the first configs to get past the first rung pass the later ones before min_trials others got
    there and complete. tpe is not told they are the best for being complete: successive halving is replayed with
    all the evidence, and a complete config it stops at a rung is told as stopped there; the configs told complete
    are those it keeps to the end."""
    _, scheduler, rows = _tpe_with_asha(write_spec, tmp_path, finalists=0)
    told = _told(scheduler)
    complete = {tuple(sorted({"lr": g["param_lr"].iloc[0], "hidden_size": g["param_hidden_size"].iloc[0]}.items())):
                (int(g["tpe_trial"].iloc[0]), g["val_mse"].mean())
                for _, g in rows.groupby("config_id") if len(g) == 2 and (g["status"] == "ok").all()}
    kept = {key: mean for key, (_, mean) in complete.items() if told[key][0] == "COMPLETE"}
    stopped = {key: mean for key, (_, mean) in complete.items() if told[key][0] == "PRUNED"}
    assert stopped, rows[["tpe_trial", "status", "epochs", "error"]]  # complete, yet halving would have stopped them
    assert kept and stopped and max(kept.values()) < min(stopped.values())  # the curves do not cross
    for key, mean in kept.items():
        assert told[key][1] == pytest.approx(mean)  # told complete with its mean over the periods
    for key in stopped:
        (step, place), = told[key][2].items()
        assert step in (1, 2, 4) and 0 <= place <= 1  # the rung where the replay stops it, its place there
    best = _tpe(scheduler).study.best_trial
    assert tuple(sorted(best.params.items())) == min(kept, key=kept.__getitem__)


def test_the_plan_says_how_tpe_ranks_the_configs_asha_stops(write_spec: Any) -> None:
    doc = tiny_spec(search={"strategy": "tpe", "max_trials": 6, "startup_trials": 3,
                            "early_stopping": {"kind": "asha", "min_epochs": 1}}, parameters=SPACE)
    out = cli_here("plan", str(write_spec(doc)))
    assert out.returncode == 0, out.stderr
    assert ("tpe: each config is chosen from the results so far (the first 3 at random)\n"
            "  a config's value is its mean val_mse over its periods\n"
            "  a config asha, replayed with all the evidence, stops at a rung (a complete one too) is ranked below those "
            "it keeps, by that rung and its place there\n") in out.stdout  # a long plan line: a clause a line


def test_with_tpe_the_first_rung_is_epoch_2_unless_the_spec_says(write_spec: Any) -> None:
    # tpe chooses its next configs from what the rungs say: its first rung is epoch 2 (epoch 1 for the others)
    def plan(strategy: str, stopping: Any, epochs: int = 20) -> Any:
        search = {"strategy": strategy, "max_trials": 6, "early_stopping": stopping}
        doc = tiny_spec(search=search, parameters=SPACE)
        doc["training"]["epochs"] = epochs
        return cli_here("plan", str(write_spec(doc)))

    out = plan("tpe", "asha")
    assert out.returncode == 0, out.stderr
    assert "early stopping asha: rungs at epoch 2, 6, 18 of 20\n" in out.stdout
    assert "early stopping asha: rungs at epoch 1, 3, 9 of 20\n" in plan("random", "asha").stdout
    assert "early stopping asha: rungs at epoch 1, 3, 9 of 20\n" in plan("tpe", {"kind": "asha", "min_epochs": 1}).stdout
    assert "early stopping median: from epoch 2 on" in plan("tpe", "median").stdout
    out = plan("tpe", "asha", epochs=2)  # the default leaves no room: the line says it is the default
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().endswith("search.early_stopping.min_epochs: 2 (the default) is not below the most epochs "
                                       "a trial runs (2): no trial could be stopped early; train more epochs or remove "
                                       "early_stopping"), out.stderr
