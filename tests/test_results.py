"""`hpt results` and `hpt best`: what a user reads from a results folder."""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from scipy import stats

from hpt.cli import main
from hpt.results import BestConfig, best_config, load_results, rank_fidelity, summarise, winner_verdict
from hpt.rows import rows_frame, to_csv
from tests.conftest import ROOT, hpt_cli, hpt_here, tiny_spec

P = [(f"{2013 + m // 12}-{m % 12 + 1:02d}-01", f"{2013 + m // 12}-{m % 12 + 1:02d}-15") for m in range(24)]


def row(config: str, period: int, value: float | None, status: str = "ok", fidelity: str = "full",
        error: str = "", **params: Any) -> dict[str, Any]:
    """One results row of `config` in period number `period` (0-based) with val_mse `value`."""
    start, end = P[period]
    tid = f"{config}-{fidelity}-{period}"
    r: dict[str, Any] = {"run_id": "r1", "trial_id": tid, "config_id": config, "status": status, "architecture": "mlp",
                         "fidelity": fidelity, "period_start": start, "period_end": end}
    r.update({f"param_{k}": v for k, v in params.items()})
    r.update({"val_mse": value, "val_mae": None if value is None else value / 2, "train_time_s": 1.0, "epochs": 3,
              "best_epoch": 3, "device": "cpu", "started_at": f"2026-01-01T00:00:{period:02d}+00:00",
              "finished_at": f"2026-01-01T00:01:{period:02d}+00:00", "error": error, "model_uri": ""})
    return r


def write_results(folder: Path, rows: Iterable[dict[str, Any]], csv: bool = True) -> str:
    """A results folder as a run leaves it: rows/<trial_id>.json and results.csv."""
    rows = list(rows)
    (folder / "rows").mkdir(parents=True, exist_ok=True)
    for r in rows:
        (folder / "rows" / f"{r['trial_id']}.json").write_text(json.dumps(r))
    if csv:
        pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    return str(folder)


def results_cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def grid(values: dict[str, list[float]], params: dict[str, dict[str, Any]], periods: int) -> list[dict[str, Any]]:
    """Rows of each config in `values` (its val_mse per period), with its parameters."""
    return [row(cid, i, v, **params[cid]) for cid, vs in values.items() for i, v in enumerate(vs[:periods])]


# --------------------------------------------------------------------------- rankings


def test_ranking_orders_by_mean_and_counts_periods_won(tmp_path: Path) -> None:
    values = {"aaa": [0.10, 0.30, 0.20], "bbb": [0.20, 0.10, 0.40], "ccc": [0.50, 0.60, 0.70]}
    params = {"aaa": {"lr": 0.01, "hidden_size": 16}, "bbb": {"lr": 0.1, "hidden_size": 16},
              "ccc": {"lr": 0.001, "hidden_size": 8}}
    uri = write_results(tmp_path, grid(values, params, 3))

    out = results_cli("results", uri, "--format", "json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    configs = doc["full"]["configs"]
    assert [c["config_id"] for c in configs] == ["aaa", "bbb", "ccc"]
    a = configs[0]
    assert a["mean"] == pytest.approx(0.2) and a["median"] == pytest.approx(0.2) and a["worst"] == pytest.approx(0.3)
    assert a["std"] == pytest.approx(pd.Series([0.1, 0.3, 0.2]).std(ddof=0))
    assert (a["periods_run"], a["periods_won"], a["ranks"]) == (3, 2, [1, 2, 1])
    assert (a["lr"], a["hidden_size"]) == (0.01, 16) and isinstance(a["hidden_size"], int)
    assert configs[1]["ranks"] == [2, 1, 2] and configs[1]["periods_won"] == 1
    assert doc["full"]["best"] == "aaa" and doc["full"]["periods"] == [f"{s}..{e}" for s, e in P[:3]]

    text = results_cli("results", uri).stdout
    assert "1*  aaa" in text and "2/3  1 2 1" in text
    assert "best: aaa  hidden_size=16 lr=0.01  mean val_mse=0.2, won 2 of 3 periods" in text


def test_configs_of_several_families_in_one_location_say_which_family_they_are(tmp_path: Path) -> None:
    """One spec per family into one sink (docs/spec.md "Tuning across families"): the ranking names each config's
    architecture; a location of one family shows no such column."""
    rows = grid({"nh1": [0.1, 0.2], "dl1": [0.3, 0.3], "dl2": [0.5, 0.4]},
                {"nh1": {"lr": 0.01}, "dl1": {"lr": 0.01}, "dl2": {"lr": 0.001}}, 2)
    for r in rows:
        r["architecture"] = "nhits" if r["config_id"].startswith("nh") else "dlinear"
    uri = write_results(tmp_path / "mixed", rows)
    text = results_cli("results", uri).stdout
    assert re.search(r"#\s+config\s+architecture\s+lr\s+mean", text), text
    assert re.search(r"1\*\s+nh1\s+nhits\s+0\.01\s", text) and re.search(r"3\s+dl2\s+dlinear\s+0\.001\s", text), text
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    assert [(c["config_id"], c["architecture"]) for c in doc["full"]["configs"]] == [
        ("nh1", "nhits"), ("dl1", "dlinear"), ("dl2", "dlinear")]
    assert list(doc["trends"])[0] == "architecture"  # the metric per family first, then the pooled parameters
    assert [t["value"] for t in doc["trends"]["architecture"]] == ["nhits", "dlinear"]
    assert "* best: nh1 (nhits)  lr=0.01  mean val_mse=0.15" in text
    best = results_cli("best", uri)  # its line says the family too: lr=0.01 alone would not tell nhits from dlinear
    assert best.stderr.startswith("best config nh1 (nhits): mean val_mse=0.15 over 2 periods"), best.stderr
    one = write_results(tmp_path / "one", grid({"a": [0.1, 0.2]}, {"a": {"lr": 0.01}}, 2))
    assert results_cli("best", one).stderr.startswith("best config a: mean")
    assert "architecture" not in results_cli("results", one).stdout
    assert "architecture" not in json.loads(results_cli("results", one, "--format", "json").stdout)["full"]["configs"][0]


def test_partial_config_is_shown_but_never_crowned(tmp_path: Path) -> None:
    rows = grid({"full1": [0.3, 0.3, 0.3], "full2": [0.4, 0.5, 0.4]}, {"full1": {"lr": 1}, "full2": {"lr": 2}}, 3)
    rows += [row("part", 0, 0.01, lr=3), row("part", 1, 0.01, lr=3)]  # best mean, one period missing
    uri = write_results(tmp_path, rows)

    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    by_id = {c["config_id"]: c for c in doc["full"]["configs"]}
    assert doc["full"]["best"] == "full1"
    assert by_id["part"]["partial"] and by_id["part"]["ranks"] == [1, 1, None] and not by_id["part"]["best"]
    text = results_cli("results", uri).stdout
    assert "part (partial)" in text and "never crowned best" in text
    best = results_cli("best", uri)
    assert json.loads(best.stdout) == {"lr": [1]}


def test_best_refuses_when_no_config_ran_every_period(tmp_path: Path) -> None:
    uri = write_results(tmp_path, [row("a", 0, 0.1, lr=1), row("b", 1, 0.2, lr=2)])
    out = results_cli("best", uri)
    assert out.exit_code == 1
    assert "no config has run all 2 periods yet" in out.stderr and "Traceback" not in out.output


# --------------------------------------------------------------------------- is the winner real?


def _comparison_doc(tmp_path: Path, values: dict[str, list[float]], periods: int, *args: str) -> dict[str, Any]:
    params = {cid: {"lr": i} for i, cid in enumerate(values)}
    uri = write_results(tmp_path, grid(values, params, periods))
    return json.loads(results_cli("results", uri, "--format", "json", *args).stdout)


def _said(tmp_path: Path, *args: str) -> str:
    """`hpt results` as a terminal shows it, with lines joined (the verdict is wrapped)."""
    return " ".join(results_cli("results", str(tmp_path), *args).stdout.split())


def test_two_configs_clear_winner_over_eight_periods(tmp_path: Path) -> None:
    best = [0.10, 0.20, 0.15, 0.12, 0.30, 0.22, 0.18, 0.11]
    doc = _comparison_doc(tmp_path, {"win": best, "lose": [v + 0.05 for v in best]}, 8)
    (c,) = doc["comparisons"]
    assert (c["best"], c["other"], c["wins"], c["shared_periods"]) == ("win", "lose", 8, 8)
    assert c["p_value"] == pytest.approx(2 / 2**8) and c["test"] == "wilcoxon"
    assert c["distinguishable"] and c["verdict"] == "worse than the best"
    w = doc["winner"]
    assert (w["answer"], w["distinguishable"], w["tied_with_best"], w["periods_needed"]) == ("yes", ["lose"], [], 6)
    assert w["statement"] == "Yes: win beats lose in 8 of 8 periods (Wilcoxon p=0.008): the lead is real at the 0.05 level."
    assert w["statement"] in _said(tmp_path)


def test_two_configs_over_three_periods_are_too_few_to_tell(tmp_path: Path) -> None:
    doc = _comparison_doc(tmp_path, {"win": [0.1, 0.2, 0.3], "lose": [0.2, 0.3, 0.4]}, 3)
    (c,) = doc["comparisons"]
    assert c["wins"] == 3 and c["p_value"] is None and c["verdict"] == "too few periods to tell" and not c["distinguishable"]
    assert doc["winner"]["answer"] == "too few periods" and doc["winner"]["tied_with_best"] == ["lose"]
    assert ("Cannot tell yet: with 2 configs no test can reach p < 0.05 over fewer than 6 periods (these results have 3), "
            "so every config is tied with the best for now.") in _said(tmp_path)


def test_two_configs_with_a_noisy_lead_are_tied(tmp_path: Path) -> None:
    a = [0.10, 0.30, 0.10, 0.30, 0.10, 0.30, 0.10, 0.30]
    b = [0.20, 0.20, 0.20, 0.20, 0.21, 0.20, 0.20, 0.20]
    doc = _comparison_doc(tmp_path, {"a": a, "b": b}, 8)
    (c,) = doc["comparisons"]
    assert c["best"] == "a" and (c["wins"], c["losses"]) == (4, 4)
    assert c["p_value"] > 0.2 and c["verdict"] == "tied with the best"
    assert doc["winner"]["answer"] == "no"
    assert "No: a beats b in 4 of 8 periods and loses 4 (Wilcoxon p=0.250): the two are tied; the lead may be chance" \
        in _said(tmp_path)


def _null_values(seed: int = 54, configs: int = 8, periods: int = 6) -> dict[str, list[float]]:
    """Configs that differ only in noise; each period has its own difficulty."""
    rng = np.random.default_rng(seed)
    difficulty = np.round(rng.uniform(0.5, 1.5, periods), 3)
    values = np.round(difficulty[None, :] + rng.normal(0, 0.02, (configs, periods)), 4)
    return {f"s{i}": list(map(float, v)) for i, v in enumerate(values)}


def test_eight_configs_that_differ_only_in_noise_are_all_tied_with_the_best(tmp_path: Path) -> None:
    values = _null_values()
    doc = _comparison_doc(tmp_path, values, 6)
    w = doc["winner"]
    best, runner_up = w["best"], doc["full"]["configs"][1]["config_id"]
    first = doc["comparisons"][0]
    assert (first["other"], first["wins"], first["shared_periods"]) == (runner_up, 6, 6)  # 6 wins to 0: the case ...
    assert stats.wilcoxon(np.subtract(values[best], values[runner_up])).pvalue < 0.05  # ... that 0.1 called "clearly better"
    assert w["test"] == "friedman+nemenyi" and w["friedman_p"] == pytest.approx(0.237, abs=1e-3)
    assert (w["answer"], w["configs_tested"], len(w["tied_with_best"]), w["distinguishable"]) == ("no", 8, 7, [])
    assert all(c["verdict"] == "tied with the best" and c["p_value"] is None for c in doc["comparisons"])
    assert w["statement"].startswith(f"No: {best} is not distinguishable from any of the 7 other configs "
                                     "(Friedman p=0.237 over 6 periods): all 8 are tied with the best")
    said = _said(tmp_path)
    assert w["statement"] in said and "best vs" in said and "Nemenyi p" in said
    assert {c["verdict"] for c in doc["full"]["configs"]} == {"best", "tied with the best"}
    told = results_cli("best", str(tmp_path)).stderr
    assert f"best config {best}: " in told and "; tied with 7 other configs (hpt results says which)" in told


def test_a_p_value_next_to_the_level_is_not_rounded_onto_it() -> None:
    """0.0498 shown as "0.050" beside "the lead is real at the 0.05 level" reads as a contradiction."""
    from hpt.results.stats import format_p

    assert [format_p(p) for p in (0.0498, 0.0501, 0.04996, 0.05, 0.2, 0.0123, 0.0004, None)] == [
        "0.0498", "0.0501", "0.04996", "0.050", "0.200", "0.012", "4.0e-04", "-"]
    assert format_p(0.0098, alpha=0.01) == "0.0098" and format_p(0.0098) == "0.010"


def _real_difference(periods: int = 10) -> dict[str, list[float]]:
    """Three good configs that differ only in noise and three that are worse by 0.3 in every period."""
    rng = np.random.default_rng(1)
    difficulty = rng.uniform(0.5, 1.5, periods)
    good = {f"g{i}": difficulty + rng.normal(0, 0.02, periods) for i in range(3)}
    bad = {f"b{i}": difficulty + 0.3 + rng.normal(0, 0.02, periods) for i in range(3)}
    return {k: [round(float(x), 4) for x in v] for k, v in {**good, **bad}.items()}


def test_the_winner_is_told_apart_from_worse_configs_and_tied_with_its_equals(tmp_path: Path) -> None:
    values = _real_difference()
    doc = _comparison_doc(tmp_path, values, 10, "--compare", "5")
    w = doc["winner"]
    assert w["best"].startswith("g") and w["friedman_p"] < 1e-4 and w["answer"] == "partly"
    assert sorted(w["distinguishable"]) == ["b0", "b1", "b2"]
    assert sorted(w["tied_with_best"]) == sorted({"g0", "g1", "g2"} - {w["best"]})
    by_other = {c["other"]: c for c in doc["comparisons"]}
    assert all(by_other[b]["verdict"] == "worse than the best" and by_other[b]["p_value"] < 0.05 for b in ("b0", "b1", "b2"))
    assert all(c["verdict"] == "tied with the best" and c["p_value"] >= 0.05
               for o, c in by_other.items() if o.startswith("g"))
    tied = ", ".join(w["tied_with_best"])
    assert w["statement"] == (f"Partly: {w['best']} is better than 3 of the 5 other configs (Friedman p={w['friedman_p']:.1e} "
                              "over 10 periods, then Nemenyi's test of the best against each, corrected for 6 configs); "
                              f"2 configs are tied with the best: {tied}.")
    said = _said(tmp_path, "--compare", "5")
    assert w["statement"] in said
    markdown = results_cli("results", str(tmp_path), "--format", "markdown").stdout
    assert "### Is the winner real?" in markdown and "| best vs |" in markdown and "Partly: " in markdown
    csv = pd.read_csv(io.StringIO(results_cli("results", str(tmp_path), "--format", "csv").stdout)).set_index("config_id")
    assert csv.loc[w["best"], "verdict"] == "best" and csv.loc["b1", "verdict"] == "worse than the best"


def test_nemenyi_and_friedman_agree_with_scikit_posthocs_and_scipy() -> None:
    import scikit_posthocs as sp

    values = _real_difference(8)
    frame = pd.DataFrame(grid(values, {c: {} for c in values}, 8))
    ranking = rank_fidelity(frame, "val_mse", "full")
    verdict = winner_verdict(ranking, detail=5)
    blocks = ranking.values.T.to_numpy()  # periods x configs, the best first
    assert verdict.friedman_p == pytest.approx(stats.friedmanchisquare(*blocks.T).pvalue)
    reference = sp.posthoc_nemenyi_friedman(blocks)
    assert [c.p_value for c in verdict.comparisons] == pytest.approx(list(reference.iloc[0, 1:]), rel=1e-6)


def test_the_tabled_periods_needed_are_what_scipy_gives_at_every_step() -> None:
    from hpt.results.stats import _NEEDED_AT_ALPHA, _TABLED_UP_TO, ALPHA, _periods_needed_scipy, periods_needed

    for first, n in _NEEDED_AT_ALPHA:
        assert periods_needed(first) == _periods_needed_scipy(first, ALPHA) == n
        if first > 3:
            assert periods_needed(first - 1) == _periods_needed_scipy(first - 1, ALPHA) == n - 1
    assert periods_needed(_TABLED_UP_TO) == _periods_needed_scipy(_TABLED_UP_TO, ALPHA)
    assert periods_needed(50, alpha=0.01) == _periods_needed_scipy(50, 0.01)  # other levels: scipy's answer


def test_a_summary_with_too_few_periods_to_test_imports_no_scipy(tmp_path: Path) -> None:
    """The verdict of 5,000 configs over 2 periods needs no test at all: nothing imports scipy.stats (a second)."""
    rows = grid({f"c{i}": [1.0 + i, 2.0 + i] for i in range(5000)}, {f"c{i}": {} for i in range(5000)}, 2)
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    code = ("import json, sys; import pandas as pd; from hpt.results import summarise, render; "
            f"s = summarise(pd.DataFrame(json.load(open({str(tmp_path / 'rows.json')!r})))); render(s, 'json', 3); "
            "print(s.verdict.answer, s.verdict.needed, 'scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.split() == ["too", "few", "periods", "6", "False"]


def test_a_config_that_ranks_first_in_most_periods_is_not_called_worse(tmp_path: Path) -> None:
    a = [1.0] * 19 + [9.0]  # first in 19 of 20 periods, one disaster
    b = [1.01] * 19 + [1.0]  # the lower mean
    c = [1.02] * 20
    doc = _comparison_doc(tmp_path, {"a": a, "b": b, "c": c}, 20)
    w = doc["winner"]
    assert w["best"] == "b" and w["ranks_above_best"] == ["a"] and w["answer"] == "partly"
    assert {x["other"]: x["verdict"] for x in doc["comparisons"]} == {"a": "ranks above the best", "c": "worse than the best"}
    assert "a ranks above b in most periods, though b has the lower mean val_mse." in w["statement"]


def test_partial_configs_are_not_tested(tmp_path: Path) -> None:
    values = _real_difference(10)
    rows = grid(values, {c: {"lr": i} for i, c in enumerate(values)}, 10) + [row("part", 0, 0.01, lr=99)]
    uri = write_results(tmp_path, rows)
    doc = json.loads(results_cli("results", uri, "--format", "json", "--compare", "9").stdout)
    assert doc["winner"]["not_tested"] == ["part"] and doc["winner"]["configs_tested"] == 6
    assert doc["comparisons"][-1] == {**doc["comparisons"][-1], "other": "part", "verdict": "not tested: missing periods",
                                      "p_value": None, "shared_periods": 1}
    assert "1 config missing periods is not tested." in doc["winner"]["statement"]


def test_compare_lists_the_next_few_and_the_tests_cover_every_config(tmp_path: Path) -> None:
    values = {f"c{i}": [0.1 * (i + 1)] * 2 for i in range(6)}
    doc = _comparison_doc(tmp_path, values, 2, "--compare", "4")
    assert [c["other"] for c in doc["comparisons"]] == ["c1", "c2", "c3", "c4"]
    assert doc["winner"]["tied_with_best"] == ["c1", "c2", "c3", "c4", "c5"] and doc["winner"]["periods_needed"] == 3
    assert "... and 1 more config tested (--compare N lists more" in results_cli("results", str(tmp_path),
                                                                                 "--compare", "4").stdout


def test_compare_zero_lists_no_comparison_but_still_gives_the_verdict(tmp_path: Path) -> None:
    best = [0.10, 0.20, 0.15, 0.12, 0.30, 0.22, 0.18, 0.11]
    doc = _comparison_doc(tmp_path / "two", {"win": best, "lose": [v + 0.05 for v in best]}, 8, "--compare", "0")
    assert doc["comparisons"] == [] and doc["winner"]["answer"] == "yes"
    assert doc["winner"]["statement"].startswith("Yes: win beats lose in 8 of 8 periods (Wilcoxon p=0.008)")
    doc = _comparison_doc(tmp_path / "eight", _null_values(), 6, "--compare", "0")
    assert doc["comparisons"] == [] and doc["winner"]["answer"] == "no" and len(doc["winner"]["tied_with_best"]) == 7
    assert "all 8 are tied with the best" in _said(tmp_path / "eight", "--compare", "0")


def _seeded_rows() -> list[dict[str, Any]]:
    """Two configs x 6 periods x 3 seeds: `good` is lower by 0.1, its seeds spread by 0.01, `bad`'s by 0.05."""
    rows = []
    for cid, offset, spread in (("good", 0.0, 0.01), ("bad", 0.1, 0.05)):
        for p in range(6):
            for s, noise in enumerate((-spread, 0.0, spread)):
                r = row(cid, p, 1.0 + p / 10 + offset + noise, lr=offset)
                r["trial_id"] = f"{cid}-{p}-{s}"
                r["seed"] = 1000 * p + s
                rows.append(r)
    return rows


def test_a_periods_value_is_the_mean_of_its_seeds_and_their_spread_is_shown(tmp_path: Path) -> None:
    uri = write_results(tmp_path, _seeded_rows())
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    good, bad = doc["full"]["configs"]
    assert good["config_id"] == "good" and good["mean"] == pytest.approx(1.25) and good["seeds"] == 3
    assert good["seed_std"] == pytest.approx(0.01) and bad["seed_std"] == pytest.approx(0.05)
    assert good["std"] == pytest.approx(np.std([1.0 + p / 10 for p in range(6)]))  # across the periods' means
    text = results_cli("results", uri).stdout
    header = next(line for line in text.splitlines() if line.lstrip().startswith("#"))
    assert re.search(r"worst +period std +seed std +won", header)
    assert "each period's value is the mean over its seeds (3 per period)" in text
    assert doc["winner"]["answer"] == "yes" and "one seed per period" not in text


def test_one_seed_per_period_says_the_seed_noise_is_not_measured(tmp_path: Path) -> None:
    doc = _comparison_doc(tmp_path, _null_values(), 6)
    assert all(c["seeds"] == 1 and c["seed_std"] is None for c in doc["full"]["configs"])
    text = results_cli("results", str(tmp_path)).stdout
    assert "one seed per period: the seed noise is not measured; training.repeats: 3" in text
    assert "seed std" not in text


# --------------------------------------------------------------------------- trends, screening, failures


def test_parameter_trends_per_value_in_order(tmp_path: Path) -> None:
    rows = []
    mse = {0.001: 0.5, 0.01: 0.1, 0.1: 0.3}
    for lr in (0.1, 0.001, 0.01):
        for h in (8, 16, 32):
            for p in range(2):
                rows.append(row(f"lr{lr}-h{h}", p, mse[lr] + h / 1000 + p / 100, lr=lr, hidden_size=h))
    uri = write_results(tmp_path, rows)
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    lr = doc["trends"]["lr"]
    assert [t["value"] for t in lr] == [0.001, 0.01, 0.1]
    assert [t["trials"] for t in lr] == [6, 6, 6] and [t["configs"] for t in lr] == [3, 3, 3]
    assert lr[1]["median"] == pytest.approx(0.122)  # of 0.108, 0.116, 0.118, 0.126, 0.132, 0.142
    assert [t["value"] for t in doc["trends"]["hidden_size"]] == [8, 16, 32]

    text = results_cli("results", uri).stdout
    block = text[text.index("lr: val_mse per value"):]
    lines = block.splitlines()[1:5]
    assert lines[0].split() == ["lr", "median", "mean", "best", "trials", "configs"]
    assert [ln.split()[0] for ln in lines[1:]] == ["0.001", "0.01", "0.1"] and lines[2].split()[1] == "*"


def test_a_trends_mark_needs_two_configs_with_the_value(tmp_path: Path) -> None:
    """The lowest median of a value only one config had is not marked: the next best value that 2 configs had is."""
    mse = {("a", 8): 0.5, ("b", 8): 0.4, ("c", 16): 0.3, ("d", 16): 0.35, ("e", 32): 0.1}
    rows = [row(c, p, v + p / 100, hidden_size=h) for (c, h), v in mse.items() for p in range(2)]
    text = results_cli("results", write_results(tmp_path, rows)).stdout
    block = text[text.index("hidden_size: val_mse per value"):].splitlines()
    values = {ln.split()[0]: ln.split()[1] for ln in block[2:5]}
    assert values == {"8": "0.455", "16": "*", "32": "0.105"}, block
    assert "* lowest median of the values that 2 or more configs had" in text
    # every config its own value: nothing is marked, and no note explains a mark that is not there
    mse = {("a", 8): 0.5, ("e", 32): 0.1}
    rows = [row(c, p, v + p / 100, hidden_size=h) for (c, h), v in mse.items() for p in range(2)]
    text = results_cli("results", write_results(tmp_path / "alone", rows)).stdout
    block = text[text.index("hidden_size: val_mse per value"):].splitlines()
    assert [ln.split()[:2] for ln in block[2:4]] == [["8", "0.505"], ["32", "0.105"]], block
    assert "lowest median" not in text, text


def test_random_search_values_are_binned(tmp_path: Path) -> None:
    rows = [row(f"c{i}", p, 0.1 + abs(i - 20) / 100, lr=1e-4 * 1.2**i) for i in range(40) for p in range(2)]
    doc = json.loads(results_cli("results", write_results(tmp_path, rows), "--format", "json").stdout)
    bins = doc["trends"]["lr"]
    assert 2 <= len(bins) <= 8 and sum(b["configs"] for b in bins) == 40 and ".." in bins[0]["value"]


def test_a_value_per_config_is_binned_as_a_distributions_draws_are(tmp_path: Path) -> None:
    """9 configs of a tpe or random search, each with its own lr: ranges, not 9 rows of one config each; a grid's
    values, each shared by several configs, stay values."""
    rows = [row(f"c{i}", p, 0.1 + i / 100, lr=1e-4 * 2.5**i, hidden_size=[8, 16, 32][i % 3])
            for i in range(9) for p in range(2)]
    trends = json.loads(results_cli("results", write_results(tmp_path, rows), "--format", "json").stdout)["trends"]
    assert len(trends["lr"]) == 3 and all(".." in t["value"] for t in trends["lr"])
    assert sum(t["configs"] for t in trends["lr"]) == 9
    assert [t["value"] for t in trends["hidden_size"]] == [8, 16, 32]


def test_a_uniform_parameters_ranges_are_even_and_a_log_uniform_ones_even_in_logs(tmp_path: Path) -> None:
    """Both spread over more than 20x: dropout drawn evenly (0.002..0.4) gets ranges of equal width, lr drawn evenly in
    logs (1e-4..1e-1) ranges of equal ratio."""
    rows = [row(f"c{i}", p, 0.1 + i / 100, dropout=0.002 + 0.05 * i, lr=1e-4 * 10 ** (3 * i / 8))
            for i in range(9) for p in range(2)]
    trends = json.loads(results_cli("results", write_results(tmp_path, rows), "--format", "json").stdout)["trends"]

    def edges(param: str) -> list[tuple[float, float]]:
        return [tuple(float(x) for x in t["value"].split("..")) for t in trends[param]]  # type: ignore[misc]

    widths = [b - a for a, b in edges("dropout")]
    ratios = [b / a for a, b in edges("lr")]
    assert len(widths) == 3 and max(widths) == pytest.approx(min(widths), rel=0.02)
    assert len(ratios) == 3 and max(ratios) == pytest.approx(min(ratios), rel=0.02)


def test_screening_rows_are_ranked_apart(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": {"lr": 1}, "b": {"lr": 2}}, 2)
    rows += [row("q1", 0, 0.01, fidelity="quick", lr=5), row("a", 0, 0.02, fidelity="quick", lr=1)]
    uri = write_results(tmp_path, rows)
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    assert [c["config_id"] for c in doc["full"]["configs"]] == ["a", "b"]
    assert [c["config_id"] for c in doc["screening"]["configs"]] == ["q1", "a"]
    assert doc["full"]["configs"][0]["mean"] == pytest.approx(0.2)
    text = results_cli("results", uri).stdout
    assert "Screening (quick) rows, ranked apart: 2 ok trials, 2 configs" in text
    assert text.index("Configs ranked") < text.index("Screening")
    assert json.loads(results_cli("best", uri).stdout) == {"lr": [1]}


def test_failed_diverged_interrupted_are_counted_and_listed_never_ranked(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": {"lr": 1}, "b": {"lr": 2}}, 2)
    rows += [row("bad", 0, None, status="failed", error="RuntimeError: CUDA out of memory\nmore", lr=9),
             row("bad", 1, None, status="failed", error="RuntimeError: CUDA out of memory", lr=9),
             row("nan", 0, float("nan"), status="diverged", error="loss is nan", lr=50),
             row("half", 0, 0.01, status="interrupted", lr=7)]
    uri = write_results(tmp_path, rows)
    text = results_cli("results", uri).stdout
    assert "8 trials (4 ok, 2 failed, 1 diverged, 1 interrupted)" in text
    assert "Not ranked: 4 trials did not finish ok (2 failed, 1 diverged, 1 interrupted)" in text
    listed = text[text.index("Not ranked"):]
    assert "RuntimeError: CUDA out of memory" in listed and "more" not in listed
    assert "bad-full-0" in listed and "nan-full-0" in listed and "half-full-0" in listed and "lr=50" in listed
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    assert {c["config_id"] for c in doc["full"]["configs"]} == {"a", "b"}
    assert sorted(p["status"] for p in doc["not_ranked"]) == ["diverged", "failed", "failed", "interrupted"]
    assert doc["counts"] == {"ok": 4, "failed": 2, "diverged": 1, "interrupted": 1}


def test_a_failed_period_makes_a_config_partial(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.1, 0.1]}, {"a": {"lr": 1}, "b": {"lr": 2}}, 2)
    rows[3] = row("b", 1, None, status="failed", error="boom", lr=2)
    doc = json.loads(results_cli("results", write_results(tmp_path, rows), "--format", "json").stdout)
    assert doc["full"]["best"] == "a"
    assert [c["partial"] for c in doc["full"]["configs"]] == [False, True]


def test_each_fidelity_is_ranked_apart_never_mixed_into_full(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": {"lr": 1}, "b": {"lr": 2}}, 2)
    # a cheaper fidelity where b looks far better, and a config only it ran: neither may reach the full ranking
    rows += [row("b", 0, 0.01, fidelity="low", lr=2), row("b", 1, 0.01, fidelity="low", lr=2),
             row("c", 0, 0.001, fidelity="low", lr=3), row("c", 1, 0.001, fidelity="low", lr=3),
             row("q", 0, 0.005, fidelity="quick", lr=4)]
    uri = write_results(tmp_path, rows)

    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    assert list(doc["rankings"]) == ["full", "low", "quick"]
    full = doc["rankings"]["full"]
    assert [(c["config_id"], c["mean"]) for c in full["configs"]] == [("a", pytest.approx(0.2)), ("b", pytest.approx(0.3))]
    assert full == doc["full"] and doc["rankings"]["quick"] == doc["screening"]
    assert [c["config_id"] for c in doc["rankings"]["low"]["configs"]] == ["c", "b"] and doc["rankings"]["low"]["best"] == "c"
    assert doc["full"]["best"] == "a" and doc["comparisons"][0]["best"] == "a"
    assert json.loads(results_cli("best", uri).stdout) == {"lr": [1]}

    text = results_cli("results", uri).stdout
    sections = [ln for ln in text.splitlines() if ln.startswith("Configs ranked") or " rows, ranked apart: " in ln]
    assert sections == ["Configs ranked by mean val_mse over 2 periods (full runs: 4 ok trials, 2 configs)",
                        "low rows, ranked apart: 4 ok trials, 2 configs",
                        "Screening (quick) rows, ranked apart: 1 ok trial, 1 config"]
    assert "Parameter trends (full rows;" in text
    table = pd.read_csv(io.StringIO(results_cli("results", uri, "--format", "csv").stdout))
    assert list(zip(table["fidelity"], table["config_id"], strict=True)) == [("full", "a"), ("full", "b"), ("low", "c"),
                                                                               ("low", "b"), ("quick", "q")]
    s = summarise(load_results(uri), "val_mse")
    assert list(s.rankings) == ["full", "low", "quick"] and s.main is s.rankings["full"] and s.best == s.full.best


def test_the_full_ranking_says_where_each_config_stood_in_the_screen(tmp_path: Path) -> None:
    """search.promote (or hpt screen-check) leaves quick rows of every config and full rows of the best of them:
    the full ranking's screen column gives each config's place in the screen, and a note how well the screen
    ranked the configs that ran both ways."""
    quick = [row(c, 0, v, fidelity="quick", lr=lr) for c, v, lr in
             (("a", 0.1, 1), ("b", 0.2, 2), ("c", 0.3, 3), ("d", 0.4, 4))]
    full = grid({"c": [0.1, 0.1], "b": [0.2, 0.2], "a": [0.3, 0.3]}, {"a": {"lr": 1}, "b": {"lr": 2}, "c": {"lr": 3}}, 2)
    uri = write_results(tmp_path, quick + full)
    out = results_cli("results", uri).stdout.splitlines()
    header = next(line for line in out if line.lstrip().startswith("#  config"))
    assert header.split()[-1] == "screen"
    assert [line.split()[1:11:9] for line in out[out.index(header) + 1:out.index(header) + 4]] == \
        [["c", "3/4"], ["b", "2/4"], ["a", "1/4"]]
    assert ("  screen: its place among the 4 configs of the screening (quick) ranking; screen vs full: Spearman -1.00 "
            "over the 3 configs ranked both ways (below 0.5: the screen says little about the full ranking)") in out
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    assert [c["screen_place"] for c in doc["full"]["configs"]] == [3, 2, 1]
    assert doc["screen_vs_full"] == {"screened": 4, "configs": 3, "spearman": -1.0}
    table = pd.read_csv(io.StringIO(results_cli("results", uri, "--format", "csv").stdout))
    assert table[table["fidelity"] == "full"]["screen_place"].tolist() == [3, 2, 1]
    plain = write_results(tmp_path / "plain", full)  # no screen: no column, no note
    text = results_cli("results", plain).stdout
    assert "screen" not in text and json.loads(results_cli("results", plain, "--format", "json").stdout)[
        "screen_vs_full"] is None


def test_without_full_rows_the_first_fidelity_with_ok_rows_decides(tmp_path: Path) -> None:
    rows = [row("b", 0, 0.02, fidelity="low", lr=2), row("b", 1, 0.02, fidelity="low", lr=2),
            row("c", 0, 0.01, fidelity="low", lr=3), row("q", 0, 0.005, fidelity="quick", lr=4),
            row("f", 0, None, status="failed", error="boom", lr=5)]
    uri = write_results(tmp_path, rows)
    text = results_cli("results", uri).stdout
    assert "no full rows ranked yet: the best config, comparisons and trends are from the low rows" in text
    assert "Parameter trends (low rows;" in text
    best = results_cli("best", uri)
    assert json.loads(best.stdout) == {"lr": [2]}  # c leads but ran one period of two
    assert best.stderr == ("best config b: mean val_mse=0.02 over 2 periods, best in 1 of them; from low rows; the only "
                           "config that ran every period (1 other partial or stopped early)\n")
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    assert doc["full"]["configs"] == [] and doc["full"]["best"] is None and list(doc["rankings"]) == ["full", "low", "quick"]
    assert doc["rankings"]["full"]["configs"] == []  # the failed row is full: a ranking of nothing


def test_pruned_configs_are_listed_apart_and_never_ranked(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": {"lr": 1}, "b": {"lr": 2}}, 2)
    rows += [row("p", 0, 0.05, status="pruned", lr=9), row("p", 1, 0.04, status="pruned", lr=9),
             row("h", 0, 0.01, lr=2), row("h", 1, 0.5, status="pruned", lr=2),  # best value of all, one period pruned
             row("f", 0, None, status="failed", error="boom", lr=8), row("x", 0, 0.5, status="timed-out", lr=7)]
    write_results(tmp_path, rows[:-1])
    uri = write_results(tmp_path, rows[-3:] + [row("p2", 0, 0.01, status="pruned", lr=6)], csv=False)  # rows/ only
    text = results_cli("results", uri).stdout
    assert "11 trials (5 ok, 4 pruned, 1 failed, 1 timed-out)" in text
    assert "Stopped early: 3 configs with a pruned period (4 trials), listed apart and never ranked" in text
    stopped = text[text.index("Stopped early"):text.index("Parameter trends")]
    assert re.search(r"^  h +2 +1/2 +3 +0.255$", stopped, re.M), stopped  # 1 of its 2 periods pruned, after 3 epochs
    assert re.search(r"^  p +9 +2/2 ", stopped, re.M) and re.search(r"^  p2 +6 +1/1 ", stopped, re.M)
    ranked = text[:text.index("Stopped early")]
    assert " h " not in ranked and re.search(r"^  1\* +a ", ranked, re.M)
    assert "Not ranked: 2 trials did not finish ok (1 failed, 1 timed-out)" in text
    assert "p-full-0" not in text[text.index("Not ranked"):]
    assert "val_mse per value over ok trials; 4 pruned trials left out, counted per value under pruned" in text
    # lr=2: b's two completed trials and h's completed one; h's pruned one counted apart
    assert re.search(r"^  2 \* +0.3 +0.2033 +0.01 +3 +2 +1$", text, re.M), text  # lr 1 was one config's
    assert re.search(r"^  9 +- +- +- +0 +0 +2$", text, re.M), text  # a value only pruned trials had
    doc = json.loads(results_cli("results", uri, "--format", "json").stdout)
    assert [c["config_id"] for c in doc["full"]["configs"]] == ["a", "b"] and doc["full"]["best"] == "a"
    assert {c["config_id"]: c["periods_pruned"] for c in doc["full"]["pruned"]} == {"h": 1, "p": 2, "p2": 1}
    assert {c["config_id"]: c["epochs"] for c in doc["full"]["pruned"]}["h"] == 3  # a count: 3, not 3.0
    assert all(isinstance(c["epochs"], int) for c in doc["full"]["pruned"])
    assert sorted(p["status"] for p in doc["not_ranked"]) == ["failed", "timed-out"]
    assert json.loads(results_cli("best", uri).stdout) == {"lr": [1]}


# --------------------------------------------------------------------------- formats and options


@pytest.fixture
def four_configs(tmp_path: Path) -> str:
    values = {"aaa": [0.1, 0.2], "bbb": [0.2, 0.1], "ccc": [0.3, 0.3], "ddd": [0.5, 0.4]}
    params = {"aaa": {"lr": 0.01, "opt": "adam"}, "bbb": {"lr": 0.1, "opt": "sgd"}, "ccc": {"lr": 0.001, "opt": "adam"},
              "ddd": {"lr": 0.001, "opt": "sgd"}}
    rows = grid(values, params, 2) + [row("eee", 0, None, status="failed", error="boom", lr=1.0, opt="x")]
    return write_results(tmp_path, rows)


def test_csv_output_parses(four_configs: str) -> None:
    out = results_cli("results", four_configs, "--format", "csv")
    table = pd.read_csv(io.StringIO(out.stdout))
    assert list(table["config_id"]) == ["aaa", "bbb", "ccc", "ddd"] and list(table["rank"]) == [1, 2, 3, 4]
    assert {"fidelity", "mean", "median", "worst", "std", "periods_run", "periods_won", "ranks", "lr", "opt"} <= set(table)
    assert list(table["ranks"]) == ["1;2", "2;1", "3;3", "4;4"]


def test_markdown_output_is_tables(four_configs: str) -> None:
    md = results_cli("results", four_configs, "--format", "markdown").stdout
    assert md.startswith("## ") and "### Configs ranked by mean val_mse" in md
    assert "| # | config | lr | opt | mean |" in md and "|---:|---|---:|" in md
    assert "| 1\\* | aaa | 0.01 | adam | 0.15 |" in md and "- \\* best: aaa" in md
    assert "#### opt: val_mse per value" in md and "### Not ranked: 1 trial " in md


def test_top_and_where(four_configs: str) -> None:
    doc = json.loads(results_cli("results", four_configs, "--format", "json", "--top", "2").stdout)
    assert [c["config_id"] for c in doc["full"]["configs"]] == ["aaa", "bbb"] and doc["full"]["configs_total"] == 4
    assert "... and 2 more configs" in results_cli("results", four_configs, "--top", "2").stdout

    out = results_cli("results", four_configs, "--where", "opt == 'sgd' and lr < 1", "--format", "json")
    doc = json.loads(out.stdout)
    assert [c["config_id"] for c in doc["full"]["configs"]] == ["bbb", "ddd"] and doc["where"]
    assert json.loads(results_cli("best", four_configs, "--where", "lr <= 0.001").stdout) == {"lr": [0.001], "opt": ["adam"]}
    doc = json.loads(results_cli("results", four_configs, "--where", "period_start == '2013-02-01'",
                                 "--format", "json").stdout)
    assert doc["full"]["configs"][0]["config_id"] == "bbb" and doc["full"]["periods"] == ["2013-02-01..2013-02-15"]


def test_the_comparison_explains_its_columns_and_tests_a_line_each(four_configs: str) -> None:
    text = results_cli("results", four_configs).stdout
    lines = text[text.index("Is the winner real?"):].splitlines()
    assert "  mean diff: best minus other (val_mse; negative: the best is lower)" in lines, text
    tests = next(line for line in lines if "Friedman test over the periods" in line)
    assert tests.endswith("corrected for comparing 4 configs, at 0.05"), tests
    assert '  "tied with the best": the tests cannot tell it from the best' in lines, text


def test_metric_option_and_alias(four_configs: str) -> None:
    doc = json.loads(results_cli("results", four_configs, "--metric", "mae", "--format", "json").stdout)
    assert doc["metric"] == "val_mae" and doc["full"]["configs"][0]["mean"] == pytest.approx(0.075)


@pytest.mark.parametrize("args, message", [
    (["--metric", "val_mse2"], 'hpt: error: --metric: no metric "val_mse2" in these results (did you mean "val_mse"?)'),
    (["--where", "lrr < 1"], "hpt: error: --where: name 'lrr' is not defined (did you mean \"lr\"?)"),
    (["--where", "lr <"], "hpt: error: --where: cannot evaluate 'lr <': not a complete expression; write one such as "
                          "\"lr < 0.01\""),
    (["--where", "lr + 1"], "hpt: error: --where: 'lr + 1' is not a condition"),
    (["--where", "lr > 100"], "hpt: error: --where: no row matches 'lr > 100' (of 9 rows)"),
])
def test_bad_input_is_one_line_and_exit_2(four_configs: str, args: list[str], message: str) -> None:
    out = results_cli("results", four_configs, *args)
    assert out.exit_code == 2 and out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines


def test_empty_location_is_exit_2(tmp_path: Path) -> None:
    out = results_cli("results", str(tmp_path))
    assert out.exit_code == 2 and out.stderr == f"hpt: error: no results at {tmp_path}: no results.csv; no rows/\n"
    out = results_cli("best", str(tmp_path))
    assert out.exit_code == 2


def test_the_folder_above_results_names_the_results_inside(tmp_path: Path) -> None:
    """`hpt results hpt-results/` instead of `hpt-results/<name>`: the error names the folders that hold results."""
    for name in ("lstm-demo", "cnn-demo"):
        write_results(tmp_path / name, [row("a", 0, 0.2, lr=1)])
    (tmp_path / "notes").mkdir()
    out = results_cli("best", str(tmp_path))
    assert out.exit_code == 2 and out.stderr == (
        f"hpt: error: no results at {tmp_path}: no results.csv; no rows/; results are in cnn-demo, lstm-demo inside it "
        f"(give one of those, e.g. {tmp_path / 'cnn-demo'})\n")


def _only(folder: Path, name: str, data: bytes) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


# (case id, what the folder holds, the error after "hpt: error: "; {d} is the folder)
NOT_RESULTS: list[tuple[str, Callable[[Path], Any], str]] = [
    ("missing folder", lambda d: d.rmdir(), "{d} does not exist"),
    ("a file", lambda d: (d.rmdir(), d.write_text("{}")), "{d} is a file, not a results folder"),
    ("foreign csv", lambda d: _only(d, "results.csv", b"a,b\n1,2\n"),
     "no results at {d}: {d}/results.csv has no trial rows (no trial_id column); no rows/"),
    ("binary csv", lambda d: _only(d, "results.csv", bytes(range(256)) * 8),
     "no results at {d}: {d}/results.csv is not a text file; no rows/"),
    ("empty csv", lambda d: _only(d, "results.csv", b"\n"), "no results at {d}: {d}/results.csv is empty; no rows/"),
    ("header only", lambda d: _only(d, "results.csv", b"run_id,trial_id,config_id,status\n"),
     "no results at {d}: {d}/results.csv has no trial rows (only its header); no rows/"),
    ("csv unreadable", lambda d: (d / "results.csv").mkdir(), "no results at {d}: {d}/results.csv cannot be read: "),
    ("corrupt rows", lambda d: (_only(d, "rows/a.json", b"{bad"), _only(d, "rows/b.json", b'{"x": 1}')),
     "no results at {d}: no results.csv; {d}/rows/ holds no readable trial rows (2 .json files)"),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in NOT_RESULTS], ids=[c[0] for c in NOT_RESULTS])
def test_a_location_without_rows_says_what_it_holds(tmp_path: Path, make: Callable[[Path], Any], message: str) -> None:
    folder = tmp_path / "res"
    folder.mkdir()
    make(folder)
    for command in ("results", "best"):
        out = results_cli(command, str(folder))
        assert out.exit_code == 2 and out.stdout == "", out.output
        assert out.stderr.startswith("hpt: error: " + message.format(d=folder)), out.stderr
        assert len(out.stderr.splitlines()) == 1


def test_a_mistyped_results_folder_gets_a_did_you_mean(tmp_path: Path) -> None:
    (tmp_path / "my-daily").mkdir()
    out = results_cli("results", str(tmp_path / "my-dialy"))
    assert out.exit_code == 2 and out.stderr == f'hpt: error: {tmp_path / "my-dialy"} does not exist (did you mean ' \
                                                '"my-daily"?)\n', out.stderr


def test_a_spec_given_to_results_is_bad_input_not_a_crash() -> None:
    done = hpt_cli("results", "specs/lstm.json")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("hpt: error: specs/lstm.json is a file, not a results folder")
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_results_csv_is_named(tmp_path: Path) -> None:
    _only(tmp_path, "results.csv", b"run_id,trial_id,config_id,status\nr,t,c,ok\n")
    (tmp_path / "results.csv").chmod(0)
    out = results_cli("results", str(tmp_path))
    assert out.exit_code == 2
    assert out.stderr == (f"hpt: error: no results at {tmp_path}: {tmp_path}/results.csv cannot be read: "
                          "Permission denied; no rows/\n")


def test_default_metric_is_the_runs_objective(four_configs: str) -> None:
    runs = Path(four_configs) / "runs"
    runs.mkdir()
    (runs / "r1.json").write_text(json.dumps({"run_id": "r1", "spec": {"objective": "val_mae"}}))
    assert json.loads(results_cli("results", four_configs, "--format", "json").stdout)["metric"] == "val_mae"


def test_configs_alike_in_the_table_are_told_apart_by_their_specs(tmp_path: Path) -> None:
    """A spec edited (15 -> 30 epochs) and run again into its folder: the ranking shows each lr twice; a note names
    the setting that tells them apart, and which configs have which value."""
    values = {"aaa": [0.10, 0.30], "bbb": [0.20, 0.40], "ccc": [0.15, 0.35], "ddd": [0.25, 0.45]}
    params = {"aaa": {"lr": 0.01}, "bbb": {"lr": 0.1}, "ccc": {"lr": 0.01}, "ddd": {"lr": 0.1}}
    rows = grid(values, params, 2)
    for r in rows:
        r["run_id"] = "r1" if r["config_id"] in ("aaa", "bbb") else "r2"
    uri = write_results(tmp_path, rows)
    unknown = "their specs differ outside the tuned parameters (the run records in runs/ do not say where)"
    assert unknown in results_cli("results", uri).stdout  # no run records: other configs, but not told where
    runs = tmp_path / "runs"
    runs.mkdir()
    spec = {"name": "s", "architecture": "mlp", "parameters": {"lr": [0.01, 0.1]}, "training": {"epochs": 15}}
    (runs / "r1.json").write_text(json.dumps({"run_id": "r1", "spec": spec}))
    (runs / "r2.json").write_text(json.dumps({"run_id": "r2", "spec": {**spec, "training": {"epochs": 30}}}))
    out = results_cli("results", uri)
    assert out.exit_code == 0, out.output
    assert ("4 configs share their values in the columns shown with another config (e.g. aaa and ccc: lr=0.01): "
            "specs that differ in training.epochs (15: aaa and 1 more; 30: ccc and 1 more) wrote here") in out.stdout
    assert "training.epochs" in " ".join(json.loads(results_cli("results", uri, "--format", "json").stdout)["notes"])
    best = results_cli("best", uri)  # its JSON is one config's tuned values: which spec's, the note says
    assert "note: 4 configs share their values" in best.stderr and json.loads(best.stdout) == {"lr": [0.01]}
    (runs / "r2.json").write_text(json.dumps({"run_id": "r2", "spec": spec}))  # records that do not tell them apart
    assert unknown in results_cli("results", uri).stdout
    write_results(tmp_path, [r for r in rows if r["config_id"] in ("aaa", "bbb")])  # one spec's configs: no note
    for r in ("ccc", "ddd"):
        for p in (0, 1):
            (tmp_path / "rows" / f"{r}-full-{p}.json").unlink()
    assert "share their values" not in results_cli("results", uri).stdout


# --------------------------------------------------------------------------- loading


def test_rows_not_yet_in_results_csv_are_read(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": {"lr": 1, "h": 8}, "b": {"lr": 2, "h": 16}}, 2)
    write_results(tmp_path, rows[:3])
    write_results(tmp_path, rows, csv=False)  # the last row object is there, results.csv not rewritten yet
    frame = load_results(str(tmp_path))
    assert len(frame) == 4
    assert json.loads(results_cli("best", str(tmp_path)).stdout) == {"h": [8], "lr": [1]}


def test_integer_parameters_stay_integers_across_runs(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": {"lr": 0.5, "h": 8}, "b": {"lr": 1.0}}, 2)
    write_results(tmp_path, rows)  # h is empty in b's rows: pandas alone would read 8 as 8.0
    assert results_cli("best", str(tmp_path)).stdout == '{"h": [8], "lr": [0.5]}\n'


def test_best_config_of_row_dicts(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.1, 0.3]}, {"a": {"lr": 1}, "b": {"lr": 2}}, 2)
    rows += [row("q", 0, 0.001, fidelity="quick", lr=3)]
    best = best_config(rows_frame(rows), "val_mse")
    assert best == BestConfig("a", {"lr": 1}, pytest.approx(0.2), 2, 1, "full")
    assert best_config(rows_frame(rows), "val_mse", fidelity="quick") == BestConfig("q", {"lr": 3}, 0.001, 1, 1, "quick")
    assert best_config(rows_frame([]), "val_mse") is None
    assert best_config(rows_frame(rows, {rows[0]["trial_id"]}), "val_mse") == BestConfig("a", {"lr": 1}, 0.2, 1, 1, "full")
    assert list(rank_fidelity(pd.DataFrame(rows), "val_mse", "full").table["config_id"]) == ["a", "b"]


def test_summarise_library_call(tmp_path: Path) -> None:
    rows = grid({"a": [0.2, 0.2], "b": [0.3, 0.3]}, {"a": {"lr": 1}, "b": {"lr": 2}}, 2)
    s = summarise(pd.DataFrame(rows), "val_mse")
    assert s.full.best is not None and s.full.best.config_id == "a" and s.screening.table.empty


# --------------------------------------------------------------------------- a real run, plots


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    spec = folder / "spec.json"
    spec.write_text(json.dumps(tiny_spec(parameters={"lr": [0.001, 0.03], "hidden_size": [8]})))
    run = hpt_cli("run", str(spec), "--sink", str(folder / "res"), "-q", "--workers", "1")
    assert run.returncode == 0, run.stderr
    (folder / "run.log").write_text(run.stdout)
    return folder / "res"


def test_real_run_results_and_best(real_run: Path, write_spec: Callable[..., Path]) -> None:
    out = results_cli("results", str(real_run))
    assert out.exit_code == 0
    assert f"{real_run}: 4 trials (4 ok) and 4 naive baseline rows; metric val_mse" in out.stdout
    assert "Configs ranked by mean val_mse over 2 periods (full runs: 4 ok trials, 2 configs)" in out.stdout
    doc = json.loads(results_cli("results", str(real_run), "--format", "json").stdout)
    assert len(doc["full"]["configs"]) == 2 and all(c["periods_run"] == 2 for c in doc["full"]["configs"])
    assert doc["comparisons"][0]["verdict"] == "too few periods to tell" and doc["winner"]["periods_needed"] == 6

    early = real_run.parent / "early"  # a run's first moments: its baselines stored, no trial yet
    early.mkdir(exist_ok=True)
    table = pd.read_csv(real_run / "results.csv")
    table[table["architecture"].astype(str).str.startswith("naive")].to_csv(early / "results.csv", index=False)
    shown = results_cli("results", str(early)).stdout
    assert shown.startswith(f"{early}: 0 trials and 4 naive baseline rows; metric val_mse"), shown

    best = results_cli("best", str(real_run))
    assert best.exit_code == 0 and "best config" in best.stderr
    params = json.loads(best.stdout)
    assert set(params) == {"lr", "hidden_size"} and params["hidden_size"] == [8]
    assert results_cli("validate", str(write_spec(parameters=params))).exit_code == 0  # pastes into a spec

    # the end of the run named the same config, with the same mean
    log = (real_run.parent / "run.log").read_text()
    ran = re.search(r"^best config (\w+): .*mean val_mse=(\S+) over 2 periods$", log, re.M)
    told = re.search(r"^best config (\w+): mean val_mse=(\S+) over 2 periods", best.stderr, re.M)
    assert ran and told and ran[1] == told[1] and float(ran[2]) == pytest.approx(float(told[2]), rel=1e-3)


def test_configs_with_ok_trials_and_a_stopped_period_are_not_called_no_ok_trials(tmp_path: Path) -> None:
    """An early Ctrl-C of an asha run: one config has two ok periods and a waiting (pruned) one, the rest were stopped.
    Every command says no config is ranked and why, not "no trial finished ok"."""
    waits = "pruned at epoch 2 (rung 0: 1 of the 3 other trials of its period it is judged with got there so far; it waits)"
    rows = [row("aaa", 0, 0.1, lr=0.03), row("aaa", 1, 0.2, lr=0.03), row("aaa", 2, 0.3, "pruned", error=waits, lr=0.03),
            row("bbb", 0, 0.9, "pruned", error="pruned at epoch 2 (rung 0, behind 2 of 3 trials of its period)", lr=0.3)]
    rows += [baseline("naive-seasonal", i, 1.0) for i in range(3)]  # a run records them first: its periods
    uri = write_results(tmp_path, rows)
    why = ("no config is ranked: 2 configs have a period stopped early (pruned; 1 of them waits at the first rung for "
           "other trials to get there, which a run that did not finish goes on with when run again), and a config with "
           "a stopped period is never ranked")
    shown = results_cli("results", uri).stdout
    assert f"\n{why[0].upper()}{why[1:]}\n" in shown and "No ok trials" not in shown
    assert "Stopped early: 2 configs with a pruned period" in shown
    best = CliRunner().invoke(main, ["best", uri])
    assert best.exit_code != 0 and best.stderr.strip() == f"hpt: error: {uri}: {why}", best.stderr
    # both configs wait (two trials each): said of the configs, not counted as trials
    rows[3] = row("bbb", 0, 0.9, "pruned", error=waits, lr=0.3)
    rows.insert(4, row("bbb", 1, 0.8, "pruned", error=waits, lr=0.3))
    (tmp_path / "both").mkdir()
    shown = results_cli("results", write_results(tmp_path / "both", rows)).stdout
    assert "No config is ranked: 2 configs have a period stopped early (pruned; they all wait at the first rung " in shown


def test_run_summary_and_best_agree_when_no_config_ran_every_period(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    """Each config finished ok in a different period only: the run must not crown one that `hpt best` refuses."""
    spec = write_spec(parameters={"lr": [1e3, 2e3], "hidden_size": [8]})  # diverges in every period
    sink = tmp_path / "res"
    first = hpt_here("run", str(spec), "--sink", str(sink), "-q", "--workers", "1")
    assert first.exit_code == 0, first.output
    assert "no trial finished ok with a val_mse value" in first.stdout and "best config" not in first.stdout
    rows = [json.loads(p.read_text()) for p in sorted((sink / "rows").glob("*.json"))]
    rows = [r for r in rows if not r["architecture"].startswith("naive-")]  # the baselines' rows: never ranked
    assert len(rows) == 4 and {r["status"] for r in rows} == {"diverged"}
    leader, other = sorted({r["config_id"] for r in rows})
    for r in rows:  # as if an earlier run had finished the leader's first period and the other's second
        if (r["config_id"], r["period_start"]) in ((leader, "2013-01-01"), (other, "2013-02-01")):
            r.update(status="ok", val_mse=0.01 if r["config_id"] == leader else 0.02, error="")
            (sink / "rows" / f"{r['trial_id']}.json").write_text(json.dumps(r))
    (sink / "results.csv").write_text(to_csv(rows))

    again = hpt_here("run", str(spec), "--sink", str(sink), "-q", "--workers", "1")
    assert again.exit_code == 0, again.output
    assert "skipping 2 trials already done" in again.stdout
    words = f"no config has run all 2 periods yet, so none is crowned best (leading: {leader} with 1 period)"
    assert words in again.stdout and "best config" not in again.stdout
    best = results_cli("best", str(sink))
    assert best.exit_code == 1 and words in best.stderr and best.stdout == ""


def test_plots_are_real_pngs(real_run: Path, tmp_path: Path) -> None:
    out = results_cli("results", str(real_run), "--plot", str(tmp_path / "plots"))
    assert out.exit_code == 0, out.output
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["curves.png", "parameters.png", "periods.png"]
    assert "plots: " in out.stdout
    for name in names:
        path = tmp_path / "plots" / name
        width, height = _png_size(path)
        assert 400 <= width <= 3000 and 200 <= height <= 3000, (name, width, height)
        assert 15_000 < path.stat().st_size < 2_000_000, name


def test_plots_from_constructed_rows_with_categories(four_configs: str, tmp_path: Path) -> None:
    out = results_cli("results", four_configs, "--plot", str(tmp_path / "p"), "--format", "json")
    json.loads(out.stdout)  # the plots line goes to stderr, stdout stays JSON
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["parameters.png", "periods.png"]  # no curves/


@pytest.mark.parametrize(("direct_url", "hint"), [
    (None, "pip install 'hpt[plot]'"),  # from a package index
    ({"url": "CLONE", "dir_info": {"editable": True}}, "pip install -e '.[plot]'"),  # pip install -e . in a clone
])
def test_plot_without_matplotlib_says_what_to_install_as_hpt_was_installed(
        four_configs: str, tmp_path: Path, direct_url: dict[str, Any] | None, hint: str) -> None:
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    clone = tmp_path / "clone"
    clone.mkdir()
    info = fake / "hpt-9.9.dist-info"  # found before the installed hpt's, as pip's record of how hpt was installed
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hpt\nVersion: 9.9\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps({**direct_url, "url": clone.as_uri()}))
    out = hpt_cli("results", four_configs, "--plot", str(tmp_path / "p"), cwd=clone,
                  env={"PYTHONPATH": os.pathsep.join([str(fake), str(ROOT)])})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == f"hpt: error: --plot needs matplotlib: {hint}\n"


# -- naive baselines and the Pareto front ------------------------------------------------


def baseline(name: str, period: int, value: float, **params: Any) -> dict[str, Any]:
    """A baseline's row (as hpt.baselines writes it) in period number `period`, with val_mse `value`."""
    r = row(f"{name}-{'-'.join(map(str, params.values()))}", period, value, **params)
    r.update(architecture=name, trial_id=f"{name}-{params}-{period}", epochs=None, best_epoch=None, train_time_s=0.01)
    return r


def test_the_baseline_count_follows_where_to_the_periods_left(tmp_path: Path) -> None:
    rows = [row(c, p, v + p / 10, lr=lr) for c, v, lr in (("a", 0.5, 0.01), ("b", 0.6, 0.1)) for p in range(3)]
    rows += [baseline(name, p, 1.0) for name in ("naive-last", "naive-seasonal") for p in range(3)]
    uri = write_results(tmp_path, rows)
    assert "6 trials (6 ok) and 6 naive baseline rows;" in results_cli("results", uri).stdout
    shown = results_cli("results", uri, "--where", f"period_start == '{P[1][0]}'").stdout
    assert "2 trials (2 ok) and 2 naive baseline rows;" in shown, shown  # the baselines of that one period
    doc = json.loads(results_cli("results", uri, "--where", "lr < 0.05", "--format", "json").stdout)
    assert doc["baseline_rows"] == 6  # a's three periods: all their baselines


def test_each_config_against_the_better_baseline_of_its_own_window_setting(tmp_path: Path) -> None:
    rows = grid({"a": [0.5, 0.6, 0.7], "b": [0.8, 0.9, 1.0]}, {"a": {"horizon": 1}, "b": {"horizon": 3}}, 3)
    rows += [baseline("naive-seasonal", i, 1.0, horizon=1) for i in range(3)]
    rows += [baseline("naive-last", i, v, horizon=1) for i, v in enumerate([0.6, 0.6, 0.6])]  # a: better in 1 of 3
    rows += [baseline("naive-seasonal", i, 2.0, horizon=3) for i in range(3)]
    rows += [baseline("naive-last", i, 0.01, horizon=3) for i in range(2)]  # a period short, lower: still the better
    uri = write_results(tmp_path, rows)
    out = results_cli("results", uri)
    assert out.exit_code == 0
    text = out.output
    assert "6 trials (6 ok) and 11 naive baseline rows" in text
    assert re.search(r"^ +1\* +a .* 1 1 1 +\+0\.0% last 1/3$", text, re.M), text  # mean 0.6 against 0.6
    assert re.search(r"^ +2 +b .* 2 2 2 +\+8400% last 0/2$", text, re.M), text  # its own horizon's baselines
    assert "* best: a  horizon=1  mean val_mse=0.6, won 3 of 3 periods; +0.0% vs persistence (naive-last), " \
           "better in 1 of 3 periods" in text
    assert "warning: the best config a does not beat the persistence (naive-last) forecast" in text
    # the baselines are never ranked, tested or named best
    doc = json.loads(results_cli("results", uri, "--format", "json").output)
    assert [c["config_id"] for c in doc["full"]["configs"]] == ["a", "b"] and doc["winner"]["configs_tested"] == 2
    assert doc["baseline_rows"] == 11 and doc["baseline_warning"].startswith("the best config a does not beat")
    assert doc["full"]["configs"][1]["vs_baseline"] == {
        "baseline": "naive-last", "config_mean": pytest.approx(0.85), "baseline_mean": 0.01,
        "change_pct": pytest.approx(8400.0), "periods": 2, "periods_better": 0, "beats": False,
        "text": "+8400% vs persistence (naive-last), better in 0 of 2 periods"}
    # the CSV has the comparison as columns, and its warning goes to stderr (stdout stays the table)
    csv_out = results_cli("results", uri, "--format", "csv")
    table = pd.read_csv(io.StringIO(csv_out.stdout))
    assert table[["config_id", "vs_naive_baseline", "vs_naive_pct"]].values.tolist() == [
        ["a", "naive-last", 0.0], ["b", "naive-last", 8400.0]]
    assert csv_out.stderr.startswith("warning: the best config a does not beat the persistence (naive-last) forecast")
    best = results_cli("best", uri)
    assert best.exit_code == 0 and json.loads(best.stdout) == {"horizon": [1]}
    assert "warning" not in results_cli("results", uri, "--format", "csv").stdout  # (stderr has it)


def test_tags_are_not_metrics(tmp_path: Path) -> None:
    """A seasonal baseline's season, an auto round and a tpe number are row tags, never offered to rank by."""
    rows = grid({"a": [0.5, 0.6], "b": [0.8, 0.9]}, {"a": {"lr": 0.1}, "b": {"lr": 0.2}}, 2)
    for r in rows:
        r.update(round=1, tpe_trial=0)
    rows += [{**baseline("naive-seasonal", i, 1.0), "season": 24} for i in range(2)]
    uri = write_results(tmp_path, rows)
    for tag in ("season", "round", "tpe_trial"):
        out = results_cli("results", uri, "--metric", tag)
        assert out.exit_code == 2 and f'no metric "{tag}"' in out.stderr, out.stderr
        available = out.stderr.split("available: ")[1]
        assert "val_mse" in available and not {"season", "round", "tpe_trial"} & set(available.strip().split(", "))


def test_the_comparison_line_and_no_warning_when_the_best_beats_the_baselines(tmp_path: Path) -> None:
    rows = grid({"a": [0.5, 0.6, 0.7], "b": [0.8, 0.9, 1.0]}, {"a": {"lr": 0.1}, "b": {"lr": 0.2}}, 3)
    rows += [baseline("naive-seasonal", i, 1.0) for i in range(3)] + [baseline("naive-last", i, 2.0) for i in range(3)]
    uri = write_results(tmp_path, rows)
    text = results_cli("results", uri).output
    assert "* best: a  lr=0.1  mean val_mse=0.6, won 3 of 3 periods; -40% vs seasonal naive, better in 3 of 3 " \
           "periods" in text
    assert re.search(r"^ +2 +b .* -10% seasonal 2/3$", text, re.M), text  # equal in period 3 is not better
    assert "warning" not in text
    md = results_cli("results", uri, "--format", "markdown").output
    assert "| -40% seasonal 3/3 |" in md and "warning" not in md
    assert json.loads(results_cli("results", uri, "--format", "json").output)["baseline_warning"] is None


def test_the_warning_line_in_table_and_markdown(tmp_path: Path) -> None:
    rows = grid({"a": [0.5, 0.6, 0.7]}, {"a": {"lr": 0.1}}, 3)
    rows += [baseline("naive-seasonal", i, v) for i, v in enumerate([0.4, 0.5, 0.6])]
    uri = write_results(tmp_path, rows)
    want = ("warning: the best config a does not beat the seasonal naive forecast: mean val_mse 0.6 against 0.5 "
            "(+20% vs seasonal naive, better in 0 of 3 periods)")
    for fmt in ("table", "markdown"):
        out = results_cli("results", uri, "--format", fmt).output
        assert any(line.startswith(want) for line in out.splitlines()), out


def _costly(config: str, mean: float, n_params: int, periods: int = 2) -> list[dict[str, Any]]:
    rows = [row(config, i, mean, width=n_params // 10) for i in range(periods)]
    for r in rows:
        r.update(n_params=n_params, infer_ms=n_params / 100)
    return rows


def test_pareto_front_of_the_metric_and_a_cost_column_in_every_format(tmp_path: Path) -> None:
    rows = (_costly("c1", 0.9, 100) + _costly("c2", 0.5, 200) + _costly("c3", 0.6, 300)  # c3: c2 is smaller and better
            + _costly("c4", 0.7, 200)  # as small as c2, worse
            + _costly("c5", 0.4, 400) + _costly("c6", 0.4, 400)  # equal on both: both on the front
            + _costly("c7", 0.4, 500)  # as good as c5, bigger
            + _costly("c8", 0.1, 50, periods=1))  # partial: never on the front
    rows += [baseline("naive-last", i, 0.05) for i in range(2)]  # no n_params: never on it
    uri = write_results(tmp_path, rows)
    out = results_cli("results", uri, "--pareto", "n_params")
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert lines[2] == ("Pareto front of mean val_mse and n_params (full runs): 4 configs of 7 that no other config "
                        "beats on both, by n_params")
    assert [line.split()[:4] for line in lines[4:8]] == [["c1", "10", "100", "0.9"], ["c2", "20", "200", "0.5"],
                                                         ["c5", "40", "400", "0.4"], ["c6", "40", "400", "0.4"]]
    assert "1 config left out: partial (not every period run) or without n_params" in out.output
    csv_out = results_cli("results", uri, "--pareto", "infer_ms", "--format", "csv").output
    assert pd.read_csv(io.StringIO(csv_out))["config_id"].tolist() == ["c1", "c2", "c5", "c6"]
    counted = results_cli("results", uri, "--pareto", "n_params", "--format", "csv").output.splitlines()
    assert [line.split(",")[2] for line in counted[1:]] == ["100", "200", "400", "400"]  # a count, not 100.0
    doc = json.loads(results_cli("results", uri, "--pareto", "n_params", "--format", "json").output)
    assert doc["column"] == "n_params" and [c["n_params"] for c in doc["configs"]] == [100, 200, 400, 400]
    md = results_cli("results", uri, "--pareto", "n_params", "--format", "markdown").output
    assert "| c2 | 20 | 200 | 0.5 |" in md
    bad = results_cli("results", uri, "--pareto", "nparams")
    assert bad.exit_code == 2 and 'hpt: error: --pareto: no column "nparams" in these results (did you mean ' \
                                  '"n_params"?)' in bad.output
    for r in rows:  # a second family at the location: the front says which family each config is
        if r["config_id"] == "c2":
            r["architecture"] = "cnn"
    write_results(tmp_path, rows)
    lines = results_cli("results", uri, "--pareto", "n_params").output.splitlines()
    assert lines[3].split()[:3] == ["config", "architecture", "width"]
    assert [line.split()[:2] for line in lines[4:6]] == [["c1", "mlp"], ["c2", "cnn"]]
    doc = json.loads(results_cli("results", uri, "--pareto", "n_params", "--format", "json").output)
    assert [c["architecture"] for c in doc["configs"]] == ["mlp", "cnn", "mlp", "mlp"]


# -- complete means every period the spec planned, not every period that has rows -------------


def test_an_interrupted_run_leaves_its_config_partial_for_the_run_results_best_and_final(
        write_spec: Any, tmp_path: Path) -> None:
    """One config, two periods; the run is stopped after the first period's row: nothing is best yet."""
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import ROOT, trial_row_files

    spec = write_spec(tiny_spec(parameters={"lr": [0.001]}, training={"epochs": 600, "patience": 0}))
    sink = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--grace", "0",
                             "--workers", "1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while trial_row_files(sink) < 1:  # the first period's row is stored; the second period is training
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    table = load_results(str(sink))
    trials = table[~table["architecture"].str.startswith("naive-")]
    assert sorted(trials["status"]) == ["interrupted", "ok"]  # one ok period of two
    assert "best config" not in stdout
    assert "no config has run all 2 periods yet, so none is crowned best (leading: " in stdout
    assert "with 1 period)" in stdout

    text = results_cli("results", str(sink))
    assert text.exit_code == 0, text.stderr
    assert "has run every period" not in text.stdout and "best:" not in text.stdout
    assert "no config has run all 2 periods: none is crowned best" in text.stdout
    assert re.search(r"^  1  \w+ \(partial\) .* 1 -  ", text.stdout, re.M), text.stdout  # P2 has no rank
    doc = json.loads(results_cli("results", str(sink), "--format", "json").stdout)
    assert doc["full"]["configs"][0]["partial"] is True and doc["full"]["configs"][0]["periods_run"] == 1
    best = results_cli("best", str(sink))
    assert best.exit_code == 1 and best.stdout == ""
    assert "no config has run all 2 periods yet" in best.stderr and "Traceback" not in best.stderr
    final = hpt_here("final", str(sink), "--holdout", "1M")
    assert final.exit_code == 1 and isinstance(final.exception, SystemExit), final.output  # no crash: a plain exit 1
    assert "no config has run all 2 periods yet" in final.stderr, final.stderr
    assert not (sink / "final").exists()
    # --where that leaves out the second period narrows the periods: then the config is complete
    narrowed = results_cli("best", str(sink), "--where", "period_start < '2013-02-01'")
    assert narrowed.exit_code == 0 and json.loads(narrowed.stdout) == {"lr": [0.001]}, narrowed.stderr


def test_periods_come_from_the_run_records_even_those_written_before_records_named_them(tmp_path: Path) -> None:
    """A record without "periods"/"fidelity" (older hpt) gives data.periods and its run's rows' fidelity."""
    rows = grid({"a": [0.5], "b": [0.6, 0.7]}, {"a": {"lr": 0.1}, "b": {"lr": 0.2}}, 2)
    uri = write_results(tmp_path, rows)
    assert json.loads(results_cli("best", uri).stdout) == {"lr": [0.2]}  # no record: the periods with rows
    (tmp_path / "runs").mkdir()
    three = {f"{s}..{e}": {} for s, e in P[:3]}
    (tmp_path / "runs" / "r1.json").write_text(json.dumps({"run_id": "r1", "data": {"periods": three}}))
    out = results_cli("best", uri)
    assert out.exit_code == 1 and "no config has run all 3 periods yet" in out.output, out.output
    (tmp_path / "runs" / "r1.json").write_text(json.dumps({"run_id": "r1", "fidelity": "quick", "periods": list(three)}))
    assert json.loads(results_cli("best", uri).stdout) == {"lr": [0.2]}  # another fidelity's periods


def test_the_baseline_comparison_is_one_array_pass_per_window_setting_whatever_the_configs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hpt results` at scale: the configs are compared with the baselines in a few grouped passes."""
    import hpt.results.versus as versus

    calls: list[int] = []
    real = versus.compare

    def counting(values: np.ndarray, base: np.ndarray) -> Any:
        calls.append(len(values))
        return real(values, base)

    monkeypatch.setattr(versus, "compare", counting)
    rng = np.random.default_rng(0)
    rows = [row(f"c{i:04d}", p, float(rng.uniform(0.4, 0.9)), lookback=24 * (1 + i % 2)) for i in range(600)
            for p in range(2)]
    rows += [baseline(name, p, 0.5, lookback=lb) for name in ("naive-last", "naive-seasonal") for lb in (24, 48)
             for p in range(2)]
    uri = write_results(tmp_path, rows)
    doc = json.loads(results_cli("results", uri, "--format", "json", "--top", "0").output)
    assert len(calls) == 4 and sum(calls) == 2 * 600  # 2 window settings x 2 baselines, each config in one pass
    configs = {c["config_id"]: c for c in doc["full"]["configs"]}
    assert len(configs) == 600 and all(c["vs_baseline"]["periods"] == 2 for c in configs.values())
    c = configs["c0000"]
    assert c["vs_baseline"]["config_mean"] == pytest.approx(c["mean"]) and c["vs_baseline"]["baseline_mean"] == 0.5
