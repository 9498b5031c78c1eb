"""Automatic periods, --quick screening, `hpt auto` and screen-check."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.auto import LR_FAMILY, AutoRequest, auto_spec
from hpt.errors import SpecError
from hpt.fidelity import QUICK
from hpt.periods import AutoPeriods, auto_periods
from hpt.scheduling.auto import next_range
from hpt.screening import compare_rankings
from hpt.search import expand
from hpt.spec import load_spec, quick_spec
from tests import gated
from tests.conftest import ROOT, cli_here, tiny_spec, trial_row_files, trial_rows

FIRST, LAST, STEP = pd.Timestamp("2012-01-01"), pd.Timestamp("2014-12-31 23:00"), pd.Timedelta("1h")


def _labels(rule: AutoPeriods, today: date) -> list[str]:
    return [p.label for p in auto_periods(rule, FIRST, LAST, STEP, today)]


def test_automatic_periods_follow_the_month() -> None:
    rule = AutoPeriods(count=3, months=3, holdout=6)
    nov = _labels(rule, date(2026, 11, 1))
    assert nov == _labels(rule, date(2026, 11, 30))  # the same month: the same periods
    months = {tuple(_labels(rule, date(2026, m, 15))) for m in range(1, 13)}
    assert len(months) >= 10  # another month: another set
    for m in range(1, 13):
        periods = auto_periods(rule, FIRST, LAST, STEP, date(2026, m, 15))
        assert len(periods) == 3
        assert all(p.start >= FIRST and p.end <= pd.Timestamp("2014-07-01") for p in periods)  # holdout untouched
        assert all(p.end == p.start + pd.DateOffset(months=3) for p in periods)
        assert all(a.end <= b.start for a, b in zip(periods, periods[1:], strict=False))  # no overlap


def test_automatic_periods_that_do_not_fit_are_bad_input(write_spec: Any) -> None:
    spec = write_spec(tiny_spec(date_ranges={"auto": {"count": 8, "months": 6}}))
    with pytest.raises(SpecError, match=r"date_ranges.auto: the data holds 36 whole months: too few for 8 periods"):
        load_spec(spec)
    with pytest.raises(SpecError, match=r"date_ranges.auto.months: expected an integer >= 1"):
        load_spec(write_spec(tiny_spec(date_ranges={"auto": {"months": 0}})))


def test_plan_shows_the_periods_of_the_month(write_spec: Any) -> None:
    spec = write_spec(tiny_spec(date_ranges={"auto": {"count": 2, "months": 1}}))
    nov = cli_here("plan", str(spec), "--today", "2026-11-22")
    dec = cli_here("plan", str(spec), "--today", "2026-12-01")
    assert nov.returncode == 0 and "drawn for 2026-11" in nov.stdout
    assert nov.stdout != dec.stdout.replace("2026-12", "2026-11")


def test_quick_spec_is_one_month_at_most_20_epochs(write_spec: Any) -> None:
    spec = load_spec(write_spec(tiny_spec(training={"epochs": 50})), today=date(2013, 6, 10))
    quick = quick_spec(spec)
    assert [p.label for p in quick.periods] == ["2013-05-01..2013-06-01"]
    full_ids = {t.config_id: t.trial_id for t in expand(spec)}
    for trial in expand(quick):
        assert trial.params["epochs"] == 20 and trial.fidelity == QUICK
        assert trial.config_id in full_ids and trial.trial_id not in full_ids.values()
    lower = quick_spec(load_spec(write_spec(tiny_spec(training={"epochs": 5})), today=date(2013, 6, 10)))
    assert all(t.params["epochs"] == 5 for t in expand(lower))  # a lower value in the spec wins


def test_quick_run_rows(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(training={"epochs": 25, "patience": 0}))
    out = cli("run", str(spec), "--quick", "--today", "2014-03-05", "--sink", str(tmp_path / "res"), "--workers", "1")
    assert out.returncode == 0, out.stderr
    table = pd.read_csv(tmp_path / "res" / "results.csv")
    rows = table[table["architecture"] == "mlp"].reset_index(drop=True)  # the naive baselines' rows apart
    assert len(rows) == 2 and (table["fidelity"] == "quick").all()
    assert set(rows["period_start"]) == {"2014-02-01"} and set(rows["period_end"]) == {"2014-03-01"}
    assert (rows["epochs"] <= 20).all()
    curve = pd.read_csv(tmp_path / "res" / "curves" / f"{rows['trial_id'][0]}.csv")
    assert len(curve) == 20


def test_auto_tunes_only_the_learning_rate_family(write_spec: Any) -> None:
    base = write_spec(tiny_spec(architecture="lstm", parameters={"hidden_size": [8], "dropout": [0.0, 0.2]},
                                training={"epochs": 20}))
    spec = auto_spec(AutoRequest(arch="lstm", base_spec=str(base), trials=6, today=date(2026, 11, 22)))
    assert set(spec.parameters) == set(LR_FAMILY) | {"hidden_size"}  # one-value lists stay fixed
    trials = list(expand(spec))
    assert {frozenset(t.tuned_params) for t in trials} == {frozenset(LR_FAMILY) | {"hidden_size"}}
    assert all(t.params["hidden_size"] == 8 and t.params["dropout"] == 0.1 for t in trials)
    lrs = sorted({t.params["lr"] for t in trials})
    assert lrs[0] == pytest.approx(1e-4) and lrs[-1] == pytest.approx(1e-2)  # spread over the range, ends included
    assert spec.periods == load_spec(base).periods


@pytest.mark.parametrize("cosine", [{"training": {"lr_schedule": "cosine"}},
                                    {"parameters": {"lr_schedule": ["cosine"], "hidden_size": [8]}}])
def test_auto_with_a_cosine_schedule_draws_no_lr_decay_or_lr_patience(write_spec: Any, cosine: dict[str, Any]) -> None:
    """A cosine schedule ignores lr_decay and lr_patience: auto does not draw them (they would only repeat configs)."""
    base = write_spec(tiny_spec(architecture="mlp", **cosine))
    doc = json.loads(base.read_text())
    base.write_text(json.dumps({**doc, "training": {**doc["training"], "epochs": 20}}))
    spec = auto_spec(AutoRequest(arch="mlp", base_spec=str(base), trials=4, today=date(2026, 11, 22)))
    assert {"lr", "patience"} <= set(spec.parameters) and not {"lr_decay", "lr_patience"} & set(spec.parameters)
    trials = list(expand(spec))
    assert len({t.config_id for t in trials}) == 4 and all(t.params["lr_schedule"] == "cosine" for t in trials)


def test_next_range_moves_only_from_the_edges() -> None:
    assert next_range(1e-4, 1e-2, 1e-2) == pytest.approx((1e-3, 1e-1))
    assert next_range(1e-4, 1e-2, 1.2e-4) == pytest.approx((1e-5, 1e-3))
    assert next_range(1e-4, 1e-2, 1e-3) is None


def test_auto_moves_a_badly_placed_range(cli: Any, write_spec: Any, tmp_path: Path) -> None:
    """With learning rates far too small, the largest one always wins: round 2 must move up."""
    base = write_spec(tiny_spec(date_ranges=[["2013-01-01", "2013-01-15"]], training={"epochs": 2}))
    out = cli("auto", "--arch", "mlp", "--spec", str(base), "--lr-range", "1e-7", "1e-6", "--trials", "3",
              "--rounds", "2", "--sink", str(tmp_path / "res"))
    assert out.returncode == 0, out.stderr
    assert "auto round 1/2: mlp, lr 1e-07..1e-06" in out.stdout
    assert "best lr 1e-06 sits at the top of 1e-07..1e-06; round 2 moves the range to 3.16228e-07..3.16228e-06" in out.stdout
    rows = pd.read_csv(tmp_path / "res" / "results.csv")
    assert sorted(rows["round"].value_counts().items()) == [(1, 3), (2, 3)]
    assert rows[rows["round"] == 2]["param_lr"].between(3.16e-7, 3.17e-6).all()
    # 2 epochs: no patience could act, so neither is drawn (test_auto_draws_only_patience_that_can_act)
    assert set(rows.filter(like="param_").columns) == {"param_lr", "param_lr_decay", "param_hidden_size"}


def test_auto_draws_only_patience_that_can_act(write_spec: Any) -> None:
    """patience p stops a trial at epoch 1 + p at the earliest: with 8 epochs, p above 6 never acts, and drawing
    it only made configs that train alike (the built-in ranges are 3..15 and 1..8)."""
    def axes(epochs: int) -> dict[str, Any]:
        base = write_spec(tiny_spec(architecture="mlp", training={"epochs": epochs}))
        spec = auto_spec(AutoRequest(arch="mlp", base_spec=str(base), trials=4, today=date(2026, 11, 22)))
        return {k: (v.low, v.high) for k, v in spec.parameters.items() if k in ("patience", "lr_patience")}

    assert axes(20) == {"patience": (3, 15), "lr_patience": (1, 8)}  # the built-in ranges: all of them can act
    assert axes(8) == {"patience": (3, 6), "lr_patience": (1, 6)}
    assert axes(4) == {"lr_patience": (1, 2)}  # patience 3 or more never acts in 4 epochs


def test_auto_bad_input() -> None:
    out = cli_here("auto", "--arch", "transformerz", "--dry-run")
    assert out.returncode == 2 and 'unknown architecture "transformerz"; known: mlp, lstm' in out.stderr
    out = cli_here("auto", "--arch", "lstm", "--data", "x.csv", "--dry-run")
    assert out.returncode == 2 and "--data needs --target and --time-column" in out.stderr
    out = cli_here("auto", "--arch", "lstm", "--target", "y", "--dry-run")  # without --data it went unread
    assert out.returncode == 2 and out.stderr.splitlines() == [
        "hpt: error: --target and --time-column name the columns of --data: give --data too"], out.stderr
    out = cli_here("auto", "--arch", "lstm", "--lr-range", "0", "2", "--dry-run")  # said as a spec's loguniform
    assert out.returncode == 2 and out.stderr.splitlines()[-1] == "hpt: error: --lr-range: expected 0 < LOW < HIGH, got 0 2"
    # a bundled file by its demo: name, as a spec's data.path takes it (it was looked for in the current folder)
    out = cli_here("auto", "--arch", "mlp", "--data", "demo:electricity_hourly.csv", "--target", "y", "--time-column",
                   "ts", "--dry-run")
    assert out.returncode == 0 and "file not found" not in out.stderr, out.stderr


def test_auto_says_which_search_settings_of_its_base_spec_it_does_not_use(write_spec: Any) -> None:
    base = write_spec(tiny_spec(search={"strategy": "grid", "seed": 0, "race": True, "early_stopping": "asha"},
                                parameters={"lr": [0.001, 0.01], "hidden_size": [8]}))
    out = cli_here("auto", "--arch", "mlp", "--spec", str(base), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert ("hpt: auto searches with its own settings (--trials, --seed, --early-stopping); ignoring the base spec's "
            "search.race, search.early_stopping") in out.stderr.splitlines(), out.stderr


def test_compare_rankings() -> None:
    rows = []
    for i, (q, f) in enumerate([(0.1, 1.0), (0.2, 2.0), (0.3, 3.0), (0.4, 5.0), (0.5, 4.0)]):
        rows.append({"config_id": f"c{i}", "fidelity": "quick", "status": "ok", "period_start": "a", "period_end": "b",
                     "val_mse": q, "train_time_s": 1.0})
        rows.append({"config_id": f"c{i}", "fidelity": "full", "status": "ok", "period_start": "c", "period_end": "d",
                     "val_mse": f, "train_time_s": 10.0})
    check = compare_rankings(pd.DataFrame(rows), "val_mse", top_k=3)
    assert check.configs == 5 and check.spearman == pytest.approx(0.9)
    assert check.overlap == 3 and check.cost_ratio == pytest.approx(0.1)


def test_screen_check_runs_both_and_reports(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(parameters={"lr": [0.0003, 0.003, 0.03]}))
    out = cli("screen-check", str(spec), "--configs", "3", "--sink", str(tmp_path / "res"), "--today", "2013-03-10", "-q",
              "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert "Spearman rank correlation quick vs full:" in out.stdout and "top-3 overlap:" in out.stdout
    rows = pd.read_csv(tmp_path / "res" / "results.csv")
    assert sorted(rows["fidelity"].value_counts().items()) == [("full", 6 + 4), ("quick", 3 + 2)]  # + baselines
    trials = rows[rows["architecture"] == "mlp"]
    assert json.loads(json.dumps(list(trials["config_id"].unique()))) and trials["config_id"].nunique() == 3


def test_screen_check_trains_an_earlier_runs_stopped_trials_to_their_end(write_spec: Any, tmp_path: Path) -> None:
    # a spec with early stopping: its run left pruned rows, which screen-check took for done (NaN, exit 0)
    spec = write_spec(tiny_spec(parameters={"lr": [0.0001, 0.0003, 0.003, 0.03]}, training={"epochs": 3},
                                search={"strategy": "grid", "early_stopping": {"kind": "asha", "min_trials": 2},
                                        "finalists": 0}))
    sink = str(tmp_path / "res")
    ran = cli_here("run", str(spec), "--sink", sink, "-q", "--workers", "1", "--today", "2013-03-10")
    assert ran.returncode == 0 and "pruned" in ran.stdout, ran.stdout + ran.stderr
    out = cli_here("screen-check", str(spec), "--configs", "4", "--sink", sink, "--today", "2013-03-10", "-q",
                   "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert ("screen-check trains every config to its last epoch, quick and full: the spec's search.early_stopping is "
            "not used here") in out.stdout
    assert "screen-check over 4 configs (val_mse, lower is better):" in out.stdout and "nan" not in out.stdout
    rows = trial_rows(pd.read_csv(tmp_path / "res" / "results.csv"))
    full = rows[(rows["fidelity"] == "full") & (rows["status"] == "ok")]
    assert full["config_id"].nunique() == 4 and len(full) == 8, rows[["config_id", "status", "fidelity"]]


def test_auto_finds_a_builder_module_in_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / "my_cwd_models.py").write_text(
        "from torch import nn\n\n\n"
        "def flat(n_features, lookback, horizon, width=8):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.Linear(width, horizon))\n")
    script = Path(sys.executable).parent / "hpt"  # the console script: unlike `python -m`, it puts no folder on sys.path
    done = subprocess.run([str(script), "auto", "--arch", "my_cwd_models:flat", "--trials", "2", "--dry-run",
                           "--today", "2026-11-01"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr
    assert "6 trials = 2 configs x 3 periods" in done.stdout and "my_cwd_models:flat" in done.stdout


def test_auto_names_its_results_folder_without_the_builders_colon() -> None:
    spec = auto_spec(AutoRequest(arch="hpt.architectures.models:build_mlp", trials=2, today=date(2026, 11, 1)))
    assert spec.name == "auto-hpt.architectures.models-build_mlp"


def test_screen_check_exits_143_on_sigterm_and_keeps_what_finished(write_spec: Any, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gated.let(gate, trial=0)  # the first quick trial runs to its end; the next one waits (tests/gated.py)
    spec = write_spec(tiny_spec(architecture=gated.ARCHITECTURE,
                                parameters={"lr": [0.001, 0.002, 0.003], "gate": [str(gate)]},
                                training={"epochs": 3, "patience": 0}))
    sink = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "screen-check", str(spec), "--configs", "3", "--sink", str(sink),
                             "--today", "2013-03-10", "--workers", "1", "--grace", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    gated.wait_for(lambda: trial_row_files(sink) and 1 in gated.waiting(gate), "the second quick trial did not start",
                   alive=proc)
    os.killpg(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stdout + stderr
    assert "Traceback" not in stderr and "screen-check: full run" not in stdout  # the full run never started
    assert stdout.splitlines()[-1] == ("screen-check interrupted: no comparison; the same command goes on from the "
                                       "trials that finished") and "nan" not in stdout
    assert (trial_rows(pd.read_csv(sink / "results.csv"))["status"] == "ok").sum() >= 1


def test_screen_check_exits_1_when_results_were_not_delivered(write_spec: Any, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from click.testing import CliRunner

    import hpt.screening
    from hpt.cli import main

    real = hpt.screening.run_spec

    def undelivered_quick_run(spec: Any, *args: Any, **kwargs: Any) -> Any:
        summary = real(spec, *args, **kwargs)
        return dataclasses.replace(summary, exit_code=1) if spec.fidelity == QUICK else summary

    monkeypatch.setattr(hpt.screening, "run_spec", undelivered_quick_run)
    spec = write_spec(tiny_spec(parameters={"lr": [0.001, 0.01]}, training={"epochs": 2}))
    out = CliRunner().invoke(main, ["screen-check", str(spec), "--configs", "2", "--sink", str(tmp_path / "res"),
                                    "--today", "2013-03-10", "-q", "--workers", "1"])
    assert out.exit_code == 1, out.output
    assert "screen-check: full run" in out.output and "Spearman rank correlation" in out.output  # it went on


def _daily_csv(folder: Path) -> Path:
    """Two years of one daily series (a station of the bundled many-series demo)."""
    demo = pd.read_csv(ROOT / "hpt" / "demo" / "stations_daily.csv")
    path = folder / "daily.csv"
    demo[demo["station"] == demo["station"].iloc[0]][["date", "rides"]].to_csv(path, index=False)
    return path


def test_quick_says_nothing_of_the_periods_the_screens_month_replaces(write_spec: Any) -> None:
    """--quick trains on one month, not the spec's periods: the notes about those (the months "fit" chose, too few
    windows) are not said; without --quick they are."""
    from tests.conftest import hpt_cli

    fit = str(write_spec(tiny_spec(date_ranges={"auto": {"months": "fit"}})))
    short = str(write_spec(tiny_spec(date_ranges=[["2013-01-01", "2013-01-05"]])))
    for path, note in ((fit, '"months": "fit" chose 2 months'), (short, "fewer than 100, likely too few to learn from")):
        full, quick = hpt_cli("plan", path), hpt_cli("plan", path, "--quick")
        assert full.returncode == quick.returncode == 0, full.stderr + quick.stderr
        assert note in full.stderr and note not in quick.stderr, quick.stderr
        assert "quick screening" in quick.stdout
    assert "fit" not in hpt_cli("auto", "--arch", "mlp", "--quick", "--dry-run").stderr


def test_fit_months_gives_each_period_enough_training_windows(write_spec: Any, tmp_path: Path) -> None:
    daily = _daily_csv(tmp_path)
    doc = tiny_spec(data={"path": str(daily), "time_column": "date", "target": "rides"},
                    date_ranges={"auto": {"count": 3, "months": "fit"}}, training={"lookback": 28, "validation": 0.2})
    out = cli_here("plan", str(write_spec(doc)), "--today", "2026-12-01")
    assert out.returncode == 0, out.stderr
    assert 'periods (auto: {"count": 3, "months": 6, "holdout": 0}, drawn for 2026-12)' in out.stdout
    assert re.search(r'date_ranges.auto: "months": "fit" chose 6 months, the fewest that give each period at least 100 '
                     r"training windows \(1\d\d in the shortest; 1D steps, lookback 28, horizon 1, validation 0.2\)",
                     out.stderr), out.stderr
    assert "warning" not in out.stderr  # 4 months would leave about 70 windows a period: warned about

    hourly = cli_here("plan", str(write_spec(tiny_spec(date_ranges={"auto": {"months": "fit"}}))))
    assert hourly.returncode == 0 and '"months": 2,' in hourly.stdout  # two months of hours are plenty
    bad = cli_here("validate", str(write_spec(tiny_spec(date_ranges={"auto": {"months": "fitted"}}))))
    assert bad.returncode == 2 and 'date_ranges.auto.months: expected an integer >= 1 or "fit", got "fitted"' in bad.stderr


def test_auto_without_a_spec_draws_periods_long_enough_for_daily_data(tmp_path: Path) -> None:
    daily = _daily_csv(tmp_path)
    spec = auto_spec(AutoRequest(arch="mlp", data=str(daily), target="rides", time_column="date",
                                 today=date(2026, 12, 1)))
    assert spec.period_rule is not None and spec.period_rule.months == 6  # 2 months of days: 1 training window
    assert all(p.end == p.start + pd.DateOffset(months=6) for p in spec.periods) and len(spec.periods) == 3
    demo = auto_spec(AutoRequest(arch="mlp", today=date(2026, 12, 1)))  # hourly: 2 months, as before
    assert demo.period_rule is not None and demo.period_rule.months == 2
    # the data's last month is held out: `hpt final` needs no option and no period overlaps it (the last period
    # ran to the data's end, and hpt final refused every hold-out)
    from hpt.windows import require_holdout

    last_month = pd.Timestamp(pd.read_csv(daily)["date"].max()).to_period("M").start_time
    for s in (spec, demo):
        assert s.period_rule is not None and s.period_rule.holdout == 1
        require_holdout(s.period_rule.holdout, None, None)
    assert max(p.end for p in spec.periods) <= last_month
    assert max(p.end for p in demo.periods) == pd.Timestamp("2014-12-01")  # the demo data ends with 2014


def test_fit_months_fits_every_validation_setting_the_search_tries(write_spec: Any, tmp_path: Path) -> None:
    doc = tiny_spec(data={"path": str(_daily_csv(tmp_path)), "time_column": "date", "target": "rides"},
                    date_ranges={"auto": {"count": 2, "months": "fit"}}, training={"lookback": 28},
                    parameters={"lr": [0.001], "validation": [0.1, 0.4]})
    del doc["training"]["validation"]  # tuned
    out = cli_here("plan", str(write_spec(doc)), "--today", "2026-12-01")
    assert out.returncode == 0, out.stderr
    # 6 months would do for validation 0.1 (about 130 training windows), not for 0.4 (about 75)
    assert '"months": 9,' in out.stdout and "validation 0.1 or 0.4)" in out.stderr and "warning" not in out.stderr


def test_auto_says_when_the_finalists_made_another_config_the_best_and_where_its_lr_sits() -> None:
    # with early stopping the rounds decide on the configs that ran every period by then; the finalists complete
    # stopped ones after the last round: one that became the best, its lr at its round's top, was not said
    import dataclasses

    from hpt.rows import result_row, rows_frame
    from hpt.scheduling.auto import AutoScheduler
    from hpt.scheduling.base import DONE
    from hpt.spec import parse_spec
    from hpt.spec.objects import Distribution
    from hpt.trial import Status, Trial, TrialResult

    spec = parse_spec(tiny_spec(parameters={"lr": {"loguniform": [0.001, 0.1]}},
                                search={"strategy": "random", "max_trials": 3, "seed": 0}))

    def make_round(n: int, lr_range: tuple[float, float]) -> Any:
        return expand(dataclasses.replace(spec, parameters={"lr": Distribution("loguniform", *lr_range)}),
                      tags={"round": n})

    said: list[str] = []
    auto = AutoScheduler(make_round, (0.001, 0.1), 1, "val_mse", said.append)
    trials = []
    while isinstance(nxt := auto.suggest(), Trial):
        trials.append(nxt)
    by_lr = sorted({t.config_id: float(t.params["lr"]) for t in trials}.items(), key=lambda kv: kv[1])
    middle, top = by_lr[1][0], by_lr[-1][0]
    results = []
    for t in trials:  # the middle lr ran every period; the top one was stopped in its first (early stopping)
        status = Status.PRUNED if t.config_id == top else Status.OK
        results.append(TrialResult(t, status, {"val_mse": 0.5 if t.config_id == middle else 0.9}, started_at="a",
                                   finished_at="b"))
    for r in results:
        auto.on_result(r)
    assert auto.suggest() is DONE and said[-1].startswith("auto: best lr ")
    decided = said[-1]
    # then the finalists complete the top one, which beats the middle one in every period
    finalist = [TrialResult(t, Status.OK, {"val_mse": 0.2}, started_at="c", finished_at="d") for t in trials
                if t.config_id == top]
    rows = rows_frame([result_row(r, "run", ("val_mse",)) for r in [*results, *finalist]
                       if not (r.trial.config_id == top and r.status is Status.PRUNED)])
    low, high = 0.001, 0.1
    moved = next_range(low, high, by_lr[-1][1])
    (line,) = auto.report(rows)
    assert line.startswith(f"auto: the finalists made config {top} (lr {by_lr[-1][1]:.4g}) the best after the rounds "
                           f"had decided on {middle} (lr {by_lr[1][1]:.4g}); "), line
    assert line.endswith(f"round 1's range {low:g}..{high:g}: hpt auto --lr-range {moved[0]:g} {moved[1]:g} tries "
                         "beyond it" if moved else f"its lr lies inside round 1's range {low:g}..{high:g}"), line
    # no config ran every period in the round (every one stopped): that ends the rounds, and the finalists decide
    said.clear()
    alone = AutoScheduler(make_round, (0.001, 0.1), 1, "val_mse", said.append)
    started = []
    while isinstance(nxt := alone.suggest(), Trial):
        started.append(nxt)
    for t in started:
        alone.on_result(TrialResult(t, Status.PRUNED, {"val_mse": 0.9}, started_at="a", finished_at="b"))
    assert alone.suggest() is DONE and said[-1].endswith("; stopping")
    (line,) = alone.report(rows)
    assert line.startswith(f"auto: the finalists made config {top} (lr {by_lr[-1][1]:.4g}) the best after no round "
                           "had a config ranked over every period; "), line
    # run again at that location, the rounds replay their decisions from the rows there: the finalist rows (the
    # stage after the last round) are left out of them, or the replay would decide otherwise than the run did
    said.clear()
    replay = AutoScheduler(make_round, (0.001, 0.1), 1, "val_mse", said.append)
    stored = {r.trial.trial_id: result_row(r, "run", ("val_mse",)) for r in results}
    stored.update({r.trial.trial_id: {**result_row(r, "run", ("val_mse",)), "finalist": 1} for r in finalist})
    replay.restore(stored)
    while isinstance(replay.suggest(), Trial):
        pass
    assert replay.suggest() is DONE
    assert said[-1] == decided, said
