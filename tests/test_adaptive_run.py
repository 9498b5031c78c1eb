"""Early stopping and tpe end to end, as a user runs them: real tiny trials on the bundled data, 2 workers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from tests.conftest import cli_here, tiny_spec
from tests.test_pruning import rows_of


def test_early_stopping_on_real_trials_with_two_workers(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    doc = tiny_spec(search={"strategy": "grid", "seed": 0, "early_stopping": {"kind": "asha", "min_epochs": 1}},
                    parameters={"lr": [0.03, 0.0001, 0.00003], "hidden_size": [8, 16]})
    doc["training"]["epochs"] = 12  # a stop has epochs to arrive in: tiny epochs take milliseconds
    spec, sink = write_spec(doc), tmp_path / "res"
    plan = cli_here("plan", str(spec), "--sink", str(sink))
    assert plan.returncode == 0, plan.stderr
    assert ("early stopping asha: rungs at epoch 1, 3, 9 of 12\n"
            "  a trial goes on when in the best 1/3 of its period's trials at each rung\n"
            "  a rung judges a trial only once 3 other trials of its period reached it: at the first rung a trial waits "
            "for them (it stops there, and once they got there it goes on from that epoch if it is in their best 1/3), "
            "at a later one it goes on and is judged there once they have\n"
            "  trials are compared only with trials of the same period\n") in plan.stdout
    assert "finalists: when the search is done, the best 3 configs by how far they got are completed" in plan.stdout
    assert "at most 12 trials and 144 epochs (if none is stopped" in plan.stdout

    out = cli("run", str(spec), "--sink", str(sink), "--workers", "2")
    assert out.returncode == 0, out.stderr
    assert ("12 trials (6 configs x 2 periods), early stopping asha, then 3 finalists of mlp on the CPU (2 workers"
            in out.stdout)
    rows = rows_of(sink)
    pruned, ok = rows[rows["status"] == "pruned"], rows[rows["status"] == "ok"]
    assert len(pruned) >= 1 and len(ok) >= 2 and len(pruned) + len(ok) == len(rows)
    # why a config's other periods stop (or do not start: no row) is said once, not on each such line
    stopped_for_config = pruned["error"].str.contains("(its config was stopped in ", regex=False).any()
    assert int(stopped_for_config) <= out.stdout.count("a config with a stopped period is never ranked") <= 1, out.stdout
    for r in pruned.itertuples():
        for_config = re.fullmatch(r"pruned at epoch (\d+) \(its config was stopped in (\S+)\.\.\S+\)", r.error)
        if for_config:  # its other period was stopped (on its own merits) while this one ran: it stopped at once
            other = pruned[(pruned["config_id"] == r.config_id) & (pruned["trial_id"] != r.trial_id)]
            assert (other["period_start"].astype(str) == for_config.group(2)).all() and len(other) == 1
            assert not re.search("its config was", other["error"].iloc[0]), other["error"].iloc[0]
            assert int(for_config.group(1)) <= r.epochs <= 12
            # stopped as it trained (its progress line), or as it waited at the first rung (the log's line on the wait)
            assert f"pruned at epoch {for_config.group(1)} (its config" in out.stdout or (
                f"waited at epoch {for_config.group(1)} and stays stopped (its config was stopped in {for_config.group(2)}"
                in out.stdout), out.stdout
            continue
        found = re.fullmatch(r"pruned at epoch (\d+) \(rung [012]( at epoch (\d))?, behind \d+ of \d+ trials of its period\)",
                             r.error)
        # waited at the first rung, then judged out of the best third there: stays stopped, as its row says
        waited = re.fullmatch(r"pruned at epoch (1) \(rung 0, behind \d+ of \d+ trials of its period, where it waited\)",
                              r.error)
        found = found or waited
        assert found, r.error
        epoch = int(found.group(1))
        if not waited and found.group(3):  # judged at an earlier rung once min_trials others had got there
            assert int(found.group(3)) in (1, 3, 9) and int(found.group(3)) < epoch
        else:
            assert epoch in (1, 3, 9)
        # obeyed when the stop reaches the worker: at once or a few (millisecond) epochs later
        assert epoch <= r.epochs <= 12
        assert not r.model_uri and not (sink / "models" / f"{r.trial_id}.pt").exists()
        curve = pd.read_csv(sink / "curves" / f"{r.trial_id}.csv")
        assert len(curve) == r.epochs and r.val_mse == curve["val_mse"].min()
        assert f"  pruned at epoch {epoch} (rung " in out.stdout
    assert all((sink / "models" / f"{t}.pt").exists() for t in ok["trial_id"])
    assert (ok["epochs"] == 12).all()
    # trials that ran again (judged in after waiting at the first rung, finalists) went on from their last rung:
    # their rows and curves are whole, every epoch from the first
    went_on = rows[rows["resumed_epoch"].notna()]
    assert len(went_on) >= 1 and went_on["resumed_epoch"].isin([1, 3, 9]).all()
    for r in went_on.itertuples():
        assert list(pd.read_csv(sink / "curves" / f"{r.trial_id}.csv")["epoch"]) == list(range(1, int(r.epochs) + 1))

    shown = cli_here("results", str(sink))
    assert shown.returncode == 0, shown.stderr
    # the run's last line and hpt results count the same trials, each once (one that ran again by its row)
    end = re.search(r"^run \S+ finished in \S+: (\d+) ok, (\d+) pruned( \(\d+ stopped trials? ran again: (\d+) results "
                    r"for (\d+) trials?, each counted once, as its row says\))?$", out.stdout, re.M)
    assert end and (int(end.group(1)), int(end.group(2))) == (len(ok), len(pruned)), out.stdout
    assert f"{len(rows)} trials ({len(ok)} ok, {len(pruned)} pruned)" in shown.stdout, shown.stdout
    if end.group(3):  # trials judged in after waiting at the first rung, finalists: the progress counter's results
        assert int(end.group(5)) == len(rows) and f"[{end.group(4)}/{end.group(4)}] " in out.stdout
    n = pruned["config_id"].nunique()
    assert f"Stopped early: {n} config{'s' if n > 1 else ''} with a pruned period ({len(pruned)} trial" in shown.stdout
    assert f"{len(pruned)} pruned trial{'s' if len(pruned) > 1 else ''} left out, counted per value" in shown.stdout
    ranked = shown.stdout[:shown.stdout.index("Stopped early")]
    # finalists: at least 3 configs ran every period, so the ranking and the verdict have them
    configs = re.search(r"Configs ranked by mean val_mse over 2 periods \(full runs: \d+ ok trials, (\d+) configs\)", ranked)
    assert configs and int(configs.group(1)) >= 3 and "Is the winner real?" in ranked, shown.stdout
    assert not any(c in ranked for c in pruned["config_id"])  # a config with a pruned period is never ranked

    again = cli("run", str(spec), "--sink", str(sink), "--workers", "2")
    assert again.returncode == 0 and f"skipping {len(rows)} trials already done" in again.stdout
    assert len(rows_of(sink)) == len(rows)  # nothing finished or pruned ran twice


def test_tpe_on_real_trials_with_two_workers_survives_diverging_configs(write_spec: Any, cli: Any,
                                                                        tmp_path: Path) -> None:
    doc = tiny_spec(search={"strategy": "tpe", "seed": 0, "max_trials": 6, "startup_trials": 3, "budget": 7,
                            "early_stopping": {"kind": "median", "min_epochs": 1}},
                    parameters={"lr": [0.001, 0.01, 1e3], "hidden_size": {"int": [4, 16]}})
    spec, sink = write_spec(doc), tmp_path / "res"
    plan = cli_here("plan", str(spec))
    assert plan.returncode == 0, plan.stderr
    assert "up to 12 trials = 6 configs x 2 periods (tpe search, seed 0" in plan.stdout
    assert "tpe: each config is chosen from the results so far (the first 3 at random)" in plan.stdout
    assert "budget: 7 trials (counting those already at the results location); then no new config starts" \
        in plan.stdout
    assert "trials: chosen as results come in, so none can be listed ahead" in plan.stdout

    out = cli("run", str(spec), "--sink", str(sink), "--workers", "2")
    assert out.returncode == 0, out.stderr
    assert "up to 12 trials (6 configs chosen by tpe x 2 periods), early stopping median, budget 7 trials" in out.stdout
    rows = rows_of(sink)
    spent = re.search(r"^budget 7 trials spent \(([78]) trials run\): no new config starts", out.stdout, re.M)
    assert spent and len(rows) == int(spent.group(1)) and rows["trial_id"].is_unique
    # lr=1000 diverges (two of the three random first configs draw it): the sampler hears it failed, the config's
    # other period is not started, and the run goes on to the next configs
    diverged = rows[rows["status"] == "diverged"]
    assert len(diverged) >= 1 and (diverged["param_lr"] == 1e3).all() and "training loss reached" in out.stdout
    per_config = rows.groupby("config_id")["status"].agg(sorted)
    assert all(s == ["ok", "ok"] or "ok" not in s for s in per_config), per_config  # none left half-run
    assert set(rows["tpe_trial"]) == set(range(rows["config_id"].nunique()))
    record = json.loads(next((sink / "runs").glob("*.json")).read_text())
    assert record["spec"]["search"]["strategy"] == "tpe" and record["status"] == "finished"
