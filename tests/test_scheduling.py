"""Schedulers and the runner's loop on the fake backend: no training, milliseconds per run."""

from __future__ import annotations

import json
import os
import signal
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from hpt.backends.fake import FakeBackend, Script
from hpt.cli import main
from hpt.errors import SpecError
from hpt.progress import Reporter
from hpt.runner import RunOptions, drive, run_spec
from hpt.scheduling import DONE, Scheduler, make_scheduler
from hpt.scheduling.auto import AutoScheduler
from hpt.scheduling.plan import COUNT_LIMIT, PlanScheduler
from hpt.search import TrialPlan, expand
from hpt.spec import load_spec
from hpt.trial import Progress, Status, Trial, TrialResult
from tests.conftest import tiny_spec


def _quiet() -> Reporter:
    return Reporter(quiet=True)


def _by_lr(trial: Trial) -> Script:
    """Higher lr learns faster here: the loss after 3 epochs falls with lr."""
    lr = float(trial.params["lr"])
    return Script(curve=[1.0, 1.0 / (1 + 100 * lr), 1.0 / (1 + 200 * lr)])


def _rows(folder: Path) -> pd.DataFrame:
    """The trials' rows of results.csv (the naive baselines' rows left out)."""
    table = pd.read_csv(folder / "results.csv")
    return table[~table["architecture"].str.startswith("naive-")].reset_index(drop=True)


def test_a_plan_runs_through_the_fake_backend_and_resumes(write_spec: Any, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 0.1]})))
    sink = str(tmp_path / "res")
    backend = FakeBackend(_by_lr, slots=2)
    summary = run_spec(spec, RunOptions(sink=sink), _quiet(), backend=backend)
    assert summary.exit_code == 0 and summary.counts == {"ok": 6} and backend.max_running == 2
    rows = _rows(tmp_path / "res")
    assert len(rows) == 6 and rows["trial_id"].is_unique and (rows["epochs"] == 3).all()
    assert summary.best is not None and summary.best.params == {"lr": 0.1}

    again = FakeBackend(_by_lr, slots=2)
    summary = run_spec(spec, RunOptions(sink=sink), _quiet(), backend=again)
    assert summary.skipped == 6 and summary.counts == {} and again.log == []  # rebuilt from the rows: nothing to run
    forced = FakeBackend(_by_lr, slots=2)
    run_spec(spec, RunOptions(sink=sink, force=True), _quiet(), backend=forced)
    assert len([e for e in forced.log if e[0] == "submit"]) == 6


def test_a_failed_trial_is_rerun_and_a_finished_one_is_not(write_spec: Any, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01]})))
    sink = str(tmp_path / "res")
    flaky = FakeBackend(lambda t: Script(status=Status.FAILED, error="boom") if t.params["lr"] == 0.01 else _by_lr(t))
    assert run_spec(spec, RunOptions(sink=sink), _quiet(), backend=flaky).counts == {"ok": 2, "failed": 2}
    again = FakeBackend(_by_lr)
    summary = run_spec(spec, RunOptions(sink=sink), _quiet(), backend=again)
    assert summary.skipped == 2 and summary.counts == {"ok": 2}
    assert {json.loads((tmp_path / "res" / "rows" / f"{tid}.json").read_text())["status"]
            for _, tid in again.log} == {"ok"}


HUGE = {"lr": [round(1e-4 * (i + 1), 6) for i in range(10)], "hidden_size": list(range(8, 18)),
        "dropout": [i / 20 for i in range(10)], "weight_decay": [i * 1e-5 for i in range(10)],
        "batch_size": list(range(32, 42)), "epochs": list(range(1, 11)), "lr_patience": list(range(1, 11))}


def test_a_grid_of_ten_million_configs_starts_at_once_in_flat_memory(write_spec: Any, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters=HUGE)))
    plan = expand(spec)
    assert len(plan.configs) == 10**7 and len(plan) > COUNT_LIMIT
    scheduler = PlanScheduler(plan)
    tracemalloc.start()
    scheduler.restore({"x": {"status": "ok"}})  # rows at the location: the plan is not walked to count them
    firsts = [scheduler.suggest() for _ in range(50)]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert all(isinstance(t, Trial) for t in firsts) and len({t.trial_id for t in firsts}) == 50  # type: ignore[union-attr]
    assert peak < 2_000_000  # what 50 trials need, not what 2 x 10^7 would
    assert scheduler.remaining() == len(plan) - 50

    # end to end: the run starts, and a Ctrl-C after three trials ends it with 130 and their rows
    def interrupt_after_three(trial: Trial) -> Script:
        if len(backend.log) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return Script(curve=[0.5, 0.4])

    backend = FakeBackend(interrupt_after_three)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res"), grace=0), _quiet(), backend=backend)
    assert summary.exit_code == 130
    assert sorted(_rows(tmp_path / "res")["status"]) == ["interrupted", "ok", "ok", "ok"]


class _PruneAtTwo(PlanScheduler):
    """Stops every trial whose lr is below 0.01 after its second epoch."""

    def __init__(self, plan: TrialPlan) -> None:
        super().__init__(plan)
        self.heard: list[tuple[str, int]] = []

    def on_progress(self, event: Progress) -> str | None:
        self.heard.append((event.trial.trial_id, event.epoch))
        if event.epoch == 2 and event.trial.params["lr"] < 0.01:
            return "pruned at epoch 2 (test)"
        return None


@pytest.mark.parametrize("stop_lag", [0, 2])
def test_a_trial_the_scheduler_stops_is_a_pruned_row_as_of_the_decision_with_its_curve_and_no_model(
        write_spec: Any, tmp_path: Path, stop_lag: int) -> None:
    """However many epochs the stop takes to reach the trial (timing, on real workers), its row and curve end at
    the epoch the decision was made on: a seeded run gives the same rows again."""
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01]})))
    scheduler = _PruneAtTwo(expand(spec))
    backend = FakeBackend(lambda t: Script(curve=[1.0, 0.8, 0.6, 0.5, 0.4]), slots=2, stop_lag=stop_lag)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), _quiet(), backend=backend, scheduler=scheduler)
    assert summary.counts == {"ok": 2, "pruned": 2}
    rows = _rows(tmp_path / "res").set_index("param_lr")
    pruned = rows.loc[[0.001]]
    assert (pruned["status"] == "pruned").all() and (pruned["error"] == "pruned at epoch 2 (test)").all()
    assert (pruned["epochs"] == 2).all() and (pruned["best_epoch"] == 2).all()
    assert pruned["model_uri"].isna().all() and (pruned["val_mse"] == 0.8).all()  # best as of epoch 2
    assert (pruned["train_time_s"] == 2.0).all()  # the time it took to reach epoch 2
    for tid in pruned["trial_id"]:
        assert not (tmp_path / "res" / "models" / f"{tid}.pt").exists()
        assert pd.read_csv(tmp_path / "res" / "curves" / f"{tid}.csv")["epoch"].tolist() == [1, 2]
    assert (rows.loc[[0.01], "epochs"] == 5).all()
    assert len(scheduler.heard) == 2 * 2 + 2 * 5  # every epoch up to the decision reached the scheduler, none after


def test_a_trial_that_ends_ok_before_its_stop_arrives_is_pruned_as_of_the_decision(write_spec: Any,
                                                                                   tmp_path: Path) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001]})))
    backend = FakeBackend(lambda t: Script(curve=[1.0, 0.8, 0.6]), stop_lag=5)  # it ends at epoch 3 first
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), _quiet(), backend=backend,
                       scheduler=_PruneAtTwo(expand(spec)))
    assert summary.counts == {"pruned": 2}
    rows = _rows(tmp_path / "res")
    assert (rows["status"] == "pruned").all() and (rows["epochs"] == 2).all() and rows["model_uri"].isna().all()
    assert not list(tmp_path.glob("res/models/*.pt"))


def test_auto_rounds_wait_for_each_other_and_move_the_range(write_spec: Any, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tiny_spec(search={"strategy": "auto", "max_trials": 3},
                                          parameters={"lr": {"loguniform": [1e-5, 1e-4]}})))
    said: list[str] = []

    def make_round(n: int, lr_range: tuple[float, float]) -> TrialPlan:
        doc = tiny_spec(search={"strategy": "auto", "max_trials": 3, "seed": n},
                        parameters={"lr": {"loguniform": list(lr_range)}})
        return expand(load_spec(write_spec(doc)), tags={"round": n})

    scheduler = AutoScheduler(make_round, (1e-5, 1e-4), 3, spec.objective, said.append)
    backend = FakeBackend(_by_lr, slots=4)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), _quiet(), backend=backend, scheduler=scheduler)
    assert summary.exit_code == 0 and summary.counts == {"ok": 18}  # 3 rounds x 3 configs x 2 periods
    assert said[0].startswith("auto round 1/3: mlp, lr 1e-05..0.0001 (log), 3 configs x 2 periods")
    assert any("round 2 moves the range to 3.16228e-05..0.000316228" in s for s in said)
    assert "after the last round; --rounds 4 would try" in said[-1]
    rows = _rows(tmp_path / "res")
    order = [json.loads((tmp_path / "res" / "rows" / f"{tid}.json").read_text())["round"] for _, tid in backend.log]
    assert order == sorted(order)  # no trial of a round started before the round before it ended
    assert sorted(rows["round"].value_counts().items()) == [(1, 6), (2, 6), (3, 6)]

    # resuming rebuilds the rounds from the rows: nothing is trained twice, the same decisions are made
    said.clear()
    again = FakeBackend(_by_lr, slots=4)
    scheduler = AutoScheduler(make_round, (1e-5, 1e-4), 3, spec.objective, said.append)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res")), _quiet(), backend=again, scheduler=scheduler)
    assert again.log == [] and summary.skipped == 18
    assert any("round 2 moves the range" in s for s in said)


def test_an_error_while_storing_a_result_is_not_hidden_by_the_clean_up(write_spec: Any) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 0.1]})))
    stored: list[TrialResult] = []

    def store(result: TrialResult) -> None:
        if result.status is Status.OK:
            raise OSError("disk full")
        stored.append(result)  # the interrupted ones, on the way out

    lengths = iter([2, 6, 6, 6, 6, 6])
    backend = FakeBackend(lambda t: Script(curve=[1.0] * next(lengths)), slots=3)
    with pytest.raises(OSError, match="disk full"):
        drive(PlanScheduler(expand(spec)), backend, store, _quiet(), "val_mse")
    assert backend.closed and {r.status for r in stored} == {Status.INTERRUPTED} and len(stored) == 2

    def store_badly(result: TrialResult) -> None:
        raise OSError("disk full" if result.status is Status.OK else "still full")

    with pytest.raises(OSError, match="disk full"):
        lengths = iter([2, 6, 6, 6, 6, 6])
        drive(PlanScheduler(expand(spec)), FakeBackend(lambda t: Script(curve=[1.0] * next(lengths)), slots=3),
              store_badly, _quiet(), "val_mse")


class _Waits(Scheduler):
    def describe(self) -> str:
        return "nothing"

    def suggest(self) -> Any:
        from hpt.scheduling import WAIT

        return WAIT


def test_a_scheduler_that_waits_with_nothing_running_is_a_bug_not_a_hang() -> None:
    with pytest.raises(RuntimeError, match="waits while no trial is running"):
        drive(_Waits(), FakeBackend(_by_lr), lambda r: None, _quiet(), "val_mse")


def test_sigterm_gives_running_trials_the_grace_period(write_spec: Any, tmp_path: Path) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 0.1, 0.2]})))

    def script(trial: Trial) -> Script:
        if len(backend.log) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as the second trial starts
        return Script(curve=[1.0] * 3)

    backend = FakeBackend(script, slots=2)
    summary = run_spec(spec, RunOptions(sink=str(tmp_path / "res"), grace=60), _quiet(), backend=backend)
    assert summary.exit_code == 143
    assert summary.counts == {"ok": 2}  # the running trials finished in their grace; nothing new started
    assert len([e for e in backend.log if e[0] == "submit"]) == 2


def test_each_strategy_checks_its_own_search_keys(write_spec: Any) -> None:
    with pytest.raises(SpecError, match=r'search.patience: unknown key \(did you mean "training.patience" or '
                                         r'"parameters.patience"\?\); valid: strategy, max_trials, seed, early_stopping'):
        load_spec(write_spec(tiny_spec(search={"strategy": "grid", "patience": 3})))
    with pytest.raises(SpecError, match=r"search.max_trials: required for random search"):
        load_spec(write_spec(tiny_spec(search={"strategy": "random"})))
    auto = load_spec(write_spec(tiny_spec(search={"strategy": "auto"}, parameters={})))
    assert auto.search.max_trials == 12
    assert isinstance(make_scheduler(auto), PlanScheduler) and make_scheduler(auto).suggest() is not DONE


def _series_csv(path: Path, days: int, bump: tuple[str, float] | None = None) -> None:
    index = pd.date_range("2013-01-01", periods=days * 24, freq="h")
    values = np.sin(np.arange(len(index)) * 2 * np.pi / 24) + 0.01 * np.arange(len(index))
    frame = pd.DataFrame({"ts": index.strftime("%Y-%m-%d %H:%M:%S"), "y": values})
    if bump is not None:
        frame.loc[frame["ts"] == bump[0], "y"] += bump[1]
    frame.to_csv(path, index=False)


def test_data_corrected_inside_a_period_reruns_only_that_period(write_spec: Any, tmp_path: Path) -> None:
    data = tmp_path / "load.csv"
    _series_csv(data, days=45)
    doc = tiny_spec(data={"path": str(data), "time_column": "ts", "target": "y"})
    sink = str(tmp_path / "res")

    def run() -> FakeBackend:
        backend = FakeBackend(_by_lr)
        run_spec(load_spec(write_spec(doc)), RunOptions(sink=sink), _quiet(), backend=backend)
        return backend

    assert len(run().log) == 4
    _series_csv(data, days=60)  # newer rows appended after both periods
    assert run().log == []
    _series_csv(data, days=60, bump=("2013-02-03 05:00:00", 0.5))  # a correction inside the second period
    rerun = run()
    periods = {json.loads((tmp_path / "res" / "rows" / f"{tid}.json").read_text())["period_start"]
               for _, tid in rerun.log}
    assert len(rerun.log) == 2 and periods == {"2013-02-01"}


def test_the_progress_log_counts_what_will_run(write_spec: Any, tmp_path: Path, capsys: Any) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 0.1]})))
    sink = str(tmp_path / "res")
    run_spec(spec, RunOptions(sink=sink), Reporter(bar=False), backend=FakeBackend(_by_lr, slots=2))
    out = capsys.readouterr().out
    assert "6 trials (3 configs x 2 periods) of mlp on a fake backend (2 slots)" in out
    assert "[6/6] ok" in out and "run " in out and "finished" in out
    (tmp_path / "res" / "rows").joinpath(next(os.scandir(tmp_path / "res" / "rows")).name).unlink()  # one row lost
    run_spec(spec, RunOptions(sink=sink), Reporter(bar=False), backend=FakeBackend(_by_lr, slots=2))
    out = capsys.readouterr().out
    assert "skipping 5 trials already done" in out and "[1/1] ok" in out


def test_the_end_of_a_run_says_when_the_best_config_is_another_specs(write_spec: Any, tmp_path: Path,
                                                                     capsys: Any) -> None:
    # the spec edited from 2 to 3 epochs and run again into its folder: the best config, lr=0.001 of the first run,
    # looks like one of this run's but is not
    sink = str(tmp_path / "res")
    doc = tiny_spec(parameters={"lr": [0.001, 0.01]})
    for epochs, script in ((2, _by_lr), (3, lambda t: Script(curve=[9.0] * 3))):
        doc["training"] = {**doc["training"], "epochs": epochs}
        run_spec(load_spec(write_spec(doc)), RunOptions(sink=sink), Reporter(bar=False), backend=FakeBackend(script))
        line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("best config "))
        assert ("(another spec's config, with settings outside this spec's: hpt results tells them apart)" in line) \
            == (epochs == 3), line
    # not for a config the spec made with a tuned value of null where its training sets another, nor for another
    # family's (its name says it): a fresh location each
    nullable = tiny_spec(parameters={"lr": [0.001, 0.01], "grad_clip": [None]})
    nullable["training"] = {**nullable["training"], "epochs": 2, "grad_clip": 5.0}
    run_spec(load_spec(write_spec(nullable)), RunOptions(sink=str(tmp_path / "null")), Reporter(bar=False),
             backend=FakeBackend(_by_lr))
    for arch in ("mlp", "dlinear"):
        run_spec(load_spec(write_spec(tiny_spec(architecture=arch, parameters={"lr": [0.001, 0.01]}))),
                 RunOptions(sink=str(tmp_path / "families")), Reporter(bar=False),
                 backend=FakeBackend(_by_lr if arch == "mlp" else lambda t: Script(curve=[9.0] * 3)))
    out = capsys.readouterr().out
    assert sum(line.startswith("best config ") for line in out.splitlines()) == 3, out
    assert "another spec's config" not in out, out


def test_a_second_signal_while_the_workers_stop_leaves_the_run_interrupted(write_spec: Any, tmp_path: Path) -> None:
    # Ctrl-C, the running trial finishes within the grace, and a second Ctrl-C comes while the workers are being
    # stopped: the run record said "failed" and the summary was lost; it is one more signal of the same stop
    class SecondSignal(FakeBackend):
        def close(self) -> list[TrialResult]:
            os.kill(os.getpid(), signal.SIGINT)  # as a second press arrives while the pool winds down
            return super().close()

    def first(trial: Trial) -> Script:
        os.kill(os.getpid(), signal.SIGINT)
        return Script(curve=[1.0, 0.5])

    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01]})))
    sink = tmp_path / "res"
    summary = run_spec(spec, RunOptions(sink=str(sink), grace=60), _quiet(), backend=SecondSignal(first))
    assert summary.exit_code == 130 and summary.counts == {"ok": 1}
    assert json.loads(next((sink / "runs").glob("*.json")).read_text())["status"] == "interrupted"


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated", "a line cut short", "text for a number"])
def test_a_run_with_nothing_to_train_rebuilds_a_damaged_results_csv(write_spec: Any, tmp_path: Path, damage: str) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 0.1]})))
    sink = tmp_path / "res"
    run_spec(spec, RunOptions(sink=str(sink)), _quiet(), backend=FakeBackend(_by_lr, slots=2))
    whole = _rows(sink).set_index("trial_id").sort_index()
    csv = sink / "results.csv"
    if damage == "missing":
        csv.unlink()
    elif damage == "garbage":
        csv.write_bytes(b"\x00\x01 not a table \xff")
    elif damage == "truncated":
        csv.write_text(csv.read_text()[: len(csv.read_text()) * 2 // 3])
    else:  # one line of an ok trial: its last two cells gone (the run, status and finish time still there), or
        lines = csv.read_text().splitlines(keepends=True)  # its val_mse made text
        header = lines[0].rstrip("\n").split(",")
        at = next(i for i, line in enumerate(lines) if ",mlp," in line)
        cells = lines[at].rstrip("\n").split(",")
        assert cells[header.index("status")] == "ok"
        if damage == "a line cut short":
            cells = cells[:-2]
        else:
            cells[header.index("val_mse")] = "abc"
        lines[at] = ",".join(cells) + "\n"
        csv.write_text("".join(lines))
    again = FakeBackend(_by_lr)
    assert run_spec(spec, RunOptions(sink=str(sink)), _quiet(), backend=again).skipped == 6 and again.log == []
    rebuilt = _rows(sink).set_index("trial_id").sort_index()
    pd.testing.assert_frame_equal(rebuilt[whole.columns], whole)


@pytest.mark.parametrize("damage", ["a middle line cut short", "text for a number", "the last line cut"])
def test_results_read_a_damaged_line_from_rows_and_sync_rewrites_it(write_spec: Any, tmp_path: Path,
                                                                    damage: str) -> None:
    """A damaged line of results.csv (edited by hand, written by another tool, a write cut off): hpt results
    reads that trial from rows/ and says so; hpt sync puts the line back whole."""
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [0.001, 0.01, 0.1]})))
    sink = tmp_path / "res"
    run_spec(spec, RunOptions(sink=str(sink)), _quiet(), backend=FakeBackend(_by_lr, slots=2))
    csv = sink / "results.csv"
    intact = csv.read_text()

    def ranked() -> Any:
        done = CliRunner().invoke(main, ["results", str(sink), "--format", "json"])
        assert done.exit_code == 0, done.output
        return json.loads(done.stdout)["full"]["configs"], done.stderr

    want, quiet = ranked()
    assert "damaged" not in quiet
    lines = intact.splitlines(keepends=True)
    at = len(lines) - 1 if damage == "the last line cut" else next(i for i, line in enumerate(lines) if ",mlp," in line)
    tid = lines[at].split(",")[1]
    why = "cut short"
    if damage == "text for a number":  # val_mae: a column pandas then reads as text
        cells = lines[at].split(",")
        cells[lines[0].split(",").index("val_mae")] = "1e-x"
        lines[at] = ",".join(cells)
        why = 'val_mae is "1e-x", not a number'
    else:
        lines[at] = lines[at][:60] + ("\n" if damage == "a middle line cut short" else "")  # ends after its first cells
    csv.write_text("".join(lines))
    got, said = ranked()
    assert got == want
    assert f"warning: {csv}: the line of trial {tid} ({why}) is damaged; read from rows/ instead" in said
    synced = CliRunner().invoke(main, ["sync", str(sink)])
    assert synced.exit_code == 0 and "(1 damaged line replaced)" in synced.output, synced.output
    assert sorted(csv.read_text().splitlines()) == sorted(intact.splitlines())
    assert "damaged" not in ranked()[1]


def test_a_plan_walk_starts_at_the_first_trial_left_and_builds_none_when_all_are_done(
        write_spec: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resumed run on a big location: the trials already done are counted by id, never built again."""
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": [round(1e-4 * (i + 1), 6) for i in range(30)]})))
    plan = expand(spec)
    ids = list(plan.trial_ids())
    built: list[int] = []
    real = TrialPlan.__getitem__

    def counting(self: TrialPlan, i: Any) -> Any:
        built.append(i)
        return real(self, i)

    monkeypatch.setattr(TrialPlan, "__getitem__", counting)
    everything = PlanScheduler(plan)
    everything.restore({tid: {"status": "ok"} for tid in ids})
    assert everything.suggest() is DONE and built == [] and everything.skipped == len(ids) == 60

    part = PlanScheduler(plan)
    part.restore({tid: {"status": "ok"} for tid in ids[:50]})
    left = [part.suggest() for _ in range(11)]
    assert [t.trial_id for t in left[:10]] == ids[50:] and left[10] is DONE  # type: ignore[union-attr]
    assert built == list(range(50, 60)) and part.skipped == 50
