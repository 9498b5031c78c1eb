"""The verdict against the naive baselines looks at the user's metric (the objective's) and says when
another reported error disagrees: in `hpt results`' warning, at the end of a run, and in `hpt final`'s report."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from hpt.final import report_lines
from hpt.progress import Reporter
from hpt.results import BestConfig, VsBaseline, judge
from hpt.results.versus import judge_best
from hpt.runner.summary import RunSummary, report_end
from hpt.spec import parse_spec
from tests.conftest import tiny_spec
from tests.test_results import baseline, grid, results_cli, write_results


def test_a_judgement_is_on_its_metric_and_names_the_errors_that_disagree() -> None:
    mine = {"mse": 0.66, "mae": 1.18, "rmse": 0.8124, "coverage": 0.5, "train_time_s": 9.0}
    theirs = {"mse": 1.0, "mae": 1.0, "rmse": 1.0, "coverage": 0.8, "train_time_s": 0.0}
    verdict = judge("mse", mine, theirs, "seasonal naive")
    assert verdict.beats and verdict.text() == "beats seasonal naive on mse (-34%), not on mae (+18%)"
    verdict = judge("mae", mine, theirs, "seasonal naive")  # coverage and times are not errors: never compared
    assert not verdict.beats
    assert verdict.text() == "does NOT beat seasonal naive on mae (+18%), though it does on mse (-34%), rmse (-19%)"
    assert judge("rmse", mine, {**theirs, "mae": 1.5}, "x").text() == "beats x on rmse (-19%)"  # all agree: no more
    name, verdict = judge_best("val_mae", mine, {"naive-last": {"mse": 0.5, "mae": 2.0},
                                                 "naive-seasonal": {"mse": 1.0, "mae": 1.0}})
    assert name == "naive-seasonal"  # the better baseline on the judging metric, not on mse
    assert verdict.text() == "does NOT beat the better baseline (naive-seasonal) on mae (+18%), though it does on mse (-34%)"


def test_hpt_results_warning_says_where_another_error_disagrees(tmp_path: Path) -> None:
    rows = grid({"a": [0.5, 0.6, 0.7]}, {"a": {"lr": 0.1}}, 3)  # val_mae: half of val_mse, mean 0.3
    rows += [{**baseline("naive-seasonal", i, v), "val_mae": 0.5} for i, v in enumerate([0.4, 0.5, 0.6])]
    out = results_cli("results", write_results(tmp_path, rows)).output
    assert ("warning: the best config a does not beat the seasonal naive forecast: mean val_mse 0.6 against 0.5 "
            "(+20% vs seasonal naive, better in 0 of 3 periods); though it does on val_mae (-40%)\n") in out, out
    best = results_cli("best", str(tmp_path))  # hpt best warns the same, on stderr beside its JSON
    assert best.exit_code == 0 and best.stdout.strip() == '{"lr": [0.1]}', best.output
    assert ("warning: the best config a does not beat the seasonal naive forecast: mean val_mse 0.6 against 0.5 "
            "(+20% vs seasonal naive, better in 0 of 3 periods); though it does on val_mae (-40%)\n") in best.stderr
    agreeing = tmp_path / "agreeing"
    rows = rows[:3] + [{**r, "val_mae": 0.1} for r in rows[3:]]
    out = results_cli("results", write_results(agreeing, rows)).output
    assert "(+20% vs seasonal naive, better in 0 of 3 periods)\n" in out, out


def _run_end(vs: VsBaseline, objective: str, mine: dict[str, float], theirs: dict[str, float]) -> str:
    summary = RunSummary("r1", "/x", 0, best=BestConfig("a", {"lr": 0.1}, vs.config_mean, 3, 3, "full"),
                         vs_baseline=vs, verdict=judge(objective, mine, theirs, vs.label))
    out = io.StringIO()
    report_end(Reporter(out, bar=False), parse_spec(tiny_spec(objective=objective)), summary)
    return out.getvalue()


def test_the_end_of_a_run_judges_on_the_objective_and_says_where_another_error_disagrees() -> None:
    vs = VsBaseline("a", "naive-seasonal", 0.66, 1.0, 3, 3)
    text = _run_end(vs, "val_mse", {"val_mse": 0.66, "val_mae": 1.18}, {"val_mse": 1.0, "val_mae": 1.0})
    assert ("best config vs naive baselines: -34% vs seasonal naive on val_mse, better in 3 of 3 periods; "
            "not on val_mae (+18%)\n") in text
    vs = VsBaseline("a", "naive-seasonal", 1.18, 1.0, 3, 0)
    text = _run_end(vs, "val_mae", {"val_mae": 1.18, "val_mse": 0.66}, {"val_mae": 1.0, "val_mse": 1.0})
    assert ("warning: the best config does not beat the seasonal naive forecast: +18% vs seasonal naive on val_mae, "
            "better in 0 of 3 periods; though it does on val_mse (-34%)\n") in text


def _doc(metric: str, model: dict[str, float]) -> dict[str, Any]:
    """A final report as `hpt final` writes it, cut to what its printed lines read."""
    errors = {"mse": 1.0, "mae": 1.0, "rmse": 1.0}
    return {"final_id": "f1", "config_id": "a", "architecture": "mlp", "params": {"lr": 0.1}, "chosen": "best",
            "train": {"start": "2014-10-01", "end": "2014-11-01", "length": "1 month", "rows": 744, "windows": 700},
            "epochs": 3, "epochs_from": "the median", "device": "cpu", "metric": metric,
            "holdout": {"start": "2014-11-01", "end": "2014-12-01", "how": "1M", "rows": 720, "windows": 697,
                        "horizon": 1},
            "models": [{"mode": "scratch", "metrics": model, "standardised": model}],
            "baselines": {"naive-last": {"metrics": {k: 2 * v for k, v in errors.items()},
                                         "standardised": errors},
                          "naive-seasonal": {"metrics": errors, "standardised": errors, "season": 24}},
            "best_baseline": "naive-seasonal", "uris": {"model": "m.pt", "report": "r.json", "index": "i.csv"}}


@pytest.mark.parametrize(("metric", "want"), [
    ("val_mse", "the model beats the better baseline (naive-seasonal) on mse (-34%), not on mae (+18%) "
                "on 697 hold-out windows"),
    ("val_mae", "warning: the model does NOT beat the better baseline (naive-seasonal) on mae (+18%), though it does on "
                "mse (-34%), rmse (-19%) on 697 hold-out windows"),
    ("train_loss", "the model beats the better baseline (naive-seasonal) on mse (-34%), not on mae (+18%) "
                   "on 697 hold-out windows"),  # no hold-out train_loss: judged on mse
])
def test_hpt_final_judges_on_the_objective_s_error(metric: str, want: str) -> None:
    lines = report_lines(_doc(metric, {"mse": 0.66, "mae": 1.18, "rmse": 0.8124}))
    assert f"  {want}" in lines


def test_the_best_configs_judgement_takes_its_rows_and_the_baselines_not_every_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On 100,000 rows a copy of them all (and another without the baselines') cost a tenth of a second each."""
    import hpt.results.summary as summary
    from hpt.results import load_results, summarise

    rows = grid({"a": [0.5, 0.6, 0.7], "b": [0.8, 0.9, 1.0], "c": [0.9, 0.9, 0.9]},
                {"a": {"lr": 0.1}, "b": {"lr": 0.2}, "c": {"lr": 0.3}}, 3)
    rows += [{**baseline("naive-seasonal", i, v), "val_mae": 0.5} for i, v in enumerate([0.4, 0.5, 0.6])]
    taken: list[list[str]] = []
    real = summary.config_judgement

    def spy(rows: Any, *args: Any) -> Any:
        taken.append(sorted(rows["config_id"].astype(str)))
        return real(rows, *args)

    monkeypatch.setattr(summary, "config_judgement", spy)
    s = summarise(load_results(write_results(tmp_path, rows)), "val_mse")
    assert taken == [["a"] * 3 + [r["config_id"] for r in rows[9:]]]
    assert s.best_verdict is not None and s.best_verdict.dissent() == "though it does on val_mae (-40%)"
