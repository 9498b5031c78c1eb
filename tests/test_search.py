"""Grid and random search: counts, seeded order, no duplicates, laziness, stable ids; seeds per period, repeats."""

from __future__ import annotations

import dataclasses
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpt.backends.fake import FakeBackend, Script
from hpt.errors import SpecError
from hpt.progress import Reporter
from hpt.runner import RunOptions, run_spec
from hpt.search import GridSearch, RandomSearch, expand, trial_seed
from hpt.spec import Distribution, check_data, load_spec, parse_spec
from hpt.train import TrainContext
from hpt.trial import Trial
from tests.conftest import tiny_spec, trial_rows


def _points(space: Any) -> list[str]:
    return [json.dumps(p, sort_keys=True) for p in space]


def test_grid_covers_every_combination_once_in_a_seeded_shuffled_order() -> None:
    axes = {"lr": [0.1, 0.01, 0.001], "hidden_size": [8, 16], "dropout": [0.0, 0.1, 0.2, 0.3]}
    grid = GridSearch(axes, seed=1)
    points = _points(grid)
    assert len(grid) == 24 and len(set(points)) == 24
    natural = [json.dumps({"dropout": d, "hidden_size": h, "lr": lr}, sort_keys=True)
               for lr in axes["lr"] for h in axes["hidden_size"] for d in axes["dropout"]]
    assert sorted(points) == sorted(natural)
    assert points != natural  # shuffled
    assert _points(GridSearch(axes, seed=1)) == points  # deterministic under a seed
    assert _points(GridSearch(axes, seed=2)) != points


def test_grid_cut_short_still_spreads_over_the_space() -> None:
    grid = GridSearch({"lr": list(range(10)), "hidden_size": list(range(10))}, seed=0, max_trials=10)
    first = list(grid)
    assert len(first) == 10
    assert len({p["lr"] for p in first}) >= 5  # not the first row of the grid in natural order


def test_huge_grid_is_lazy() -> None:
    axes = {f"p{i}": list(range(10)) for i in range(9)}  # 10^9 points
    GridSearch({"p": [1]}, seed=0)[0]  # its lazy imports (scikit-learn) first: their memory is not the grid's
    tracemalloc.start()
    grid = GridSearch(axes, seed=0)
    some = [grid[i] for i in (0, 1, 10**9 - 1)] + list(grid[:100])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(grid) == 10**9 and len(some) == 103
    assert peak < 5_000_000  # nothing of size 10^9 was built: the points are computed from their index
    assert len({json.dumps(p, sort_keys=True) for p in grid[:1000]}) == 1000


def test_random_search_samples_inside_the_distributions_reproducibly() -> None:
    axes = {"lr": Distribution("loguniform", 1e-4, 1e-1), "dropout": Distribution("uniform", 0.0, 0.5),
            "hidden_size": Distribution("int", 8, 64), "optimizer": ("adam", "sgd")}
    space = RandomSearch(axes, seed=7, max_trials=200)
    draws = list(space)
    assert len(draws) == 200
    assert all(1e-4 <= d["lr"] <= 1e-1 and 0 <= d["dropout"] <= 0.5 for d in draws)
    assert all(isinstance(d["hidden_size"], int) and 8 <= d["hidden_size"] <= 64 for d in draws)
    assert {d["optimizer"] for d in draws} == {"adam", "sgd"}
    small = sum(d["lr"] < 1e-2 for d in draws)
    assert 100 < small < 170  # log scale: two thirds of the decades lie below 1e-2
    assert _points(RandomSearch(axes, seed=7, max_trials=200)) == _points(draws)
    assert space[150] == draws[150]  # random access without drawing the others
    assert len(set(_points(draws))) == 200


def test_random_search_over_lists_draws_different_configs_and_keeps_those_it_drew_before() -> None:
    axes = {"scaler": ("standard", "window", "robust"), "loss": ("mse", "mae"), "channels": (8,)}
    space = RandomSearch(axes, seed=1, max_trials=3)
    configs = list(space)
    assert len(configs) == 3 and len(set(_points(configs))) == 3  # draws 0-2 of seed 1 repeat one: a fourth draw
    raw = [space._draw(j) for j in range(3)]  # what the draws are (what hpt before this drew as the configs)
    assert len(set(_points(raw))) == 2 and configs[:2] == raw[:2]  # up to the repeat: the same configs as before
    everything = RandomSearch(axes, seed=1, max_trials=10)  # more than the space has: each of its 6 configs once
    assert len(everything) == 6 and len(set(_points(list(everything)))) == 6
    ints = RandomSearch({"hidden_size": Distribution("int", 8, 11), "opt": ("adam", "sgd")}, seed=0, max_trials=50)
    assert len(ints) == 8 and len(set(_points(list(ints)))) == 8
    assert len(RandomSearch({"lr": Distribution("loguniform", 1e-4, 1e-1)}, seed=0, max_trials=50)) == 50


def test_a_random_plan_over_lists_has_max_trials_different_configs(write_spec: Any) -> None:
    doc = tiny_spec(search={"strategy": "random", "max_trials": 3, "seed": 1},
                    parameters={"lr": [0.001, 0.01, 0.1], "hidden_size": [8, 16]})
    plan = expand(load_spec(write_spec(doc)))
    ids = [t.trial_id for t in plan]
    assert len(ids) == 3 * len(plan.periods) == len(set(ids))


def test_trial_ids_are_stable_and_change_with_the_config(write_spec: Any) -> None:
    a = expand(load_spec(write_spec()))
    b = expand(load_spec(write_spec()))
    assert [t.trial_id for t in a] == [t.trial_id for t in b]
    assert len(a) == 4 and len({t.trial_id for t in a}) == 4 and len({t.config_id for t in a}) == 2
    # each config runs once per period, its periods together
    assert [t.config_id for t in a][0] == [t.config_id for t in a][1]
    longer = expand(load_spec(write_spec(tiny_spec(training={"epochs": 4}))))
    assert not {t.trial_id for t in longer} & {t.trial_id for t in a}


def test_tuned_values_override_training_and_architecture_defaults(write_spec: Any) -> None:
    spec = load_spec(write_spec(tiny_spec(parameters={"batch_size": [16], "num_layers": [3]})))
    trial = expand(spec)[0]
    assert trial.params["batch_size"] == 16 and trial.params["num_layers"] == 3
    assert trial.params["epochs"] == 3 and trial.params["hidden_size"] == 64  # spec training, mlp default
    assert trial.tuned_params == {"batch_size": 16, "num_layers": 3}


# --------------------------------------------------------------------------- seeds per period, repeats


def test_each_period_trains_with_its_own_seed_and_the_same_spec_gives_the_same_seeds(write_spec: Any) -> None:
    plan = expand(load_spec(write_spec(tiny_spec(date_ranges=[["2013-01-01", "2013-01-15"], ["2013-02-01", "2013-02-15"],
                                                              ["2013-03-01", "2013-03-15"]]))))
    again = expand(load_spec(write_spec(tiny_spec(date_ranges=[["2013-01-01", "2013-01-15"], ["2013-02-01", "2013-02-15"],
                                                               ["2013-03-01", "2013-03-15"]]))))
    trials = list(plan)
    assert [(t.trial_id, t.seed) for t in trials] == [(t.trial_id, t.seed) for t in again]
    first = [t for t in trials if t.config_id == trials[0].config_id]
    assert len(first) == 3 and len({t.seed for t in first}) == 3  # seed luck does not repeat across periods
    assert all(t.params["seed"] == 0 for t in trials)  # what params record: the config's seed, unchanged
    assert first[1].seed == trial_seed(0, "2013-02-01..2013-02-15", 0)
    other = expand(load_spec(write_spec(tiny_spec(training={"seed": 1}))))
    assert not {t.seed for t in other} & {t.seed for t in trials}  # another config seed, other seeds everywhere


def test_repeats_multiply_the_plan_lazily_and_keep_the_first_seeds_ids(write_spec: Any) -> None:
    one = expand(load_spec(write_spec()))
    three = expand(load_spec(write_spec(tiny_spec(training={"repeats": 3}))))
    assert len(one) == 4 and len(three) == 12 and three.seeds == 3
    assert {t.config_id for t in three} == {t.config_id for t in one}  # repeats are no part of a config
    trials = list(three)
    assert len({t.trial_id for t in trials}) == 12 and list(three.trial_ids()) == [t.trial_id for t in trials]
    per_cell: dict[tuple[str, str], set[int]] = {}
    for t in trials:
        per_cell.setdefault((t.config_id, t.period.label), set()).add(t.seed)
    assert len(per_cell) == 4 and all(len(seeds) == 3 for seeds in per_cell.values())
    # a config's trials together; every period with its first seed before its second seed starts
    assert [t.config_id for t in trials[:6]] == [trials[0].config_id] * 6
    assert [t.period.label for t in trials[:4]] == [p.label for p in three.periods] * 2
    assert [t.trial_id for t in trials[:2]] == [t.trial_id for t in one][:2]  # raising repeats keeps the trials done


def test_repeats_of_a_huge_grid_stay_lazy(write_spec: Any) -> None:
    axes = {"lr": [round(1e-4 * (i + 1), 6) for i in range(100)], "hidden_size": list(range(8, 108)),
            "dropout": [i / 200 for i in range(100)]}  # 10^6 configs x 2 periods x 5 seeds
    plan = expand(load_spec(write_spec(tiny_spec(parameters=axes, training={"repeats": 5}))))
    tracemalloc.start()
    assert len(plan) == 10**7
    last = plan[len(plan) - 1]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000  # the last trial of 10^7 without building the others (a list of them: gigabytes)
    assert last.config_id == plan[len(plan) - 10].config_id and last.seed != plan[len(plan) - 3].seed


@pytest.mark.parametrize("training, parameters, path, words", [
    ({"repeats": 0}, None, "training.repeats", "expected an integer from 1 to 100"),
    ({"repeats": "3"}, None, "training.repeats", 'got "3"'),
    ({"repeat": 3}, None, "training.repeat", 'did you mean "repeats"'),
    (None, {"repeats": [1, 2]}, "parameters.repeats", 'is not tuned: set it under "training"'),
])
def test_bad_repeats_are_spec_errors(write_spec: Any, training: Any, parameters: Any, path: str, words: str) -> None:
    doc = tiny_spec(training=training) if training else tiny_spec(parameters={**tiny_spec()["parameters"], **parameters})
    spec_file = write_spec(doc)
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    assert any(f"{spec_file}: {path}: " in line and words in line for line in info.value.lines()), info.value.lines()


def _by_seed(trial: Trial) -> Script:
    return Script(curve=[1.0, 0.5 + (trial.seed % 1000) / 10_000])


def test_rows_record_the_seed_and_raising_repeats_resumes_with_the_new_seeds_only(write_spec: Any, tmp_path: Path) -> None:
    sink = str(tmp_path / "res")
    spec = load_spec(write_spec(tiny_spec(training={"repeats": 2})))
    first = FakeBackend(_by_seed, slots=2)
    summary = run_spec(spec, RunOptions(sink=sink), Reporter(quiet=True), backend=first)
    assert summary.counts == {"ok": 8}
    rows = trial_rows(pd.read_csv(tmp_path / "res" / "results.csv"))
    assert list(rows.columns[:9]) == ["run_id", "trial_id", "config_id", "status", "architecture", "fidelity",
                                      "period_start", "period_end", "seed"]
    cells = rows.groupby(["config_id", "period_start"])["seed"].nunique()
    assert len(cells) == 4 and (cells == 2).all()
    # configs with the same seed parameter share each period's seeds: paired comparisons see the same luck
    assert (rows.groupby("config_id")["seed"].apply(sorted).map(tuple).nunique()) == 1
    more = load_spec(write_spec(tiny_spec(training={"repeats": 3})))
    again = FakeBackend(_by_seed, slots=2)
    out = io.StringIO()
    summary = run_spec(more, RunOptions(sink=sink), Reporter(out, bar=False), backend=again)
    # each trial's line says its seed, as hpt plan lists it: a config's repeats in a period do not read alike
    lines = [line for line in out.getvalue().splitlines() if line.startswith("[")]
    seeds = {int(line.split("  seed ")[1].split()[0]) for line in lines}
    assert len(lines) == 4 and seeds == {t.seed for t in expand(more)} - set(rows["seed"].astype(int)), out.getvalue()
    assert summary.skipped == 8 and summary.counts == {"ok": 4}  # only the third seed of each config and period
    rows = trial_rows(pd.read_csv(tmp_path / "res" / "results.csv"))
    assert len(rows) == 12 and (rows.groupby(["config_id", "period_start"])["seed"].nunique() == 3).all()


def test_training_uses_the_trials_seed_and_the_model_file_records_it() -> None:
    spec = parse_spec(tiny_spec(parameters={"lr": [0.01], "hidden_size": [8]}, training={"epochs": 2}))
    context = TrainContext(check_data(spec))
    trial = expand(spec)[0]
    a, b = context.run(trial), context.run(trial)
    other = context.run(dataclasses.replace(trial, seed=trial.seed + 1))
    assert a.metrics["val_mse"] == b.metrics["val_mse"] != other.metrics["val_mse"]
    import io

    import torch

    payload = torch.load(io.BytesIO(a.model or b""), weights_only=True)
    assert payload["seed"] == trial.seed and payload["params"]["seed"] == 0


def test_plan_shows_each_trials_seed_and_the_seeds_per_period(write_spec: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hpt.cli import main

    spec = write_spec(tiny_spec(training={"repeats": 3}))
    out = CliRunner().invoke(main, ["plan", str(spec), "--sink", str(tmp_path / "res"), "--limit", "12"])
    assert out.exit_code == 0, out.output
    assert "12 trials = 2 configs x 2 periods x 3 seeds (training.repeats)" in out.stdout
    assert "\ntrials: trial id, period, seed, tuned values\n" in out.stdout  # what the columns below are
    plan = expand(load_spec(spec))
    for t in plan:
        assert f"  {t.trial_id}  {t.period.label}  seed {t.seed:<10}  " in out.stdout


def test_walking_a_plans_ids_derives_the_data_identity_and_each_seed_once(write_spec: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """What `hpt run` counts before it starts (100,000 ids on a big location): per config only its draw and its id."""
    import hpt.search as search

    spec = load_spec(write_spec(tiny_spec(search={"strategy": "random", "max_trials": 50, "seed": 0},
                                          parameters={"lr": {"loguniform": [1e-4, 1e-1]}, "hidden_size": [8, 16]})))
    plan = expand(spec)
    built = [t.trial_id for t in plan]  # the ids of the trials the run builds
    calls = {"data_identity": 0, "trial_seed": 0}

    def counting(name: str) -> Any:
        f = getattr(search, name)

        def counted(*args: Any) -> Any:
            calls[name] += 1
            return f(*args)
        return counted

    for name in calls:
        monkeypatch.setattr(search, name, counting(name))
    assert list(plan.trial_ids()) == built
    assert calls == {"data_identity": 0, "trial_seed": len(spec.periods)}  # per period, not per trial


def test_a_plans_ids_walked_fast_are_the_ids_of_its_trials_whatever_the_values(write_spec: Any) -> None:
    """trial_ids() hashes the text around a config's parameters once: the same bytes as config_id and trial_id."""
    from hpt.search import _Digests, config_id, digest

    spec = load_spec(write_spec(tiny_spec(search={"strategy": "random", "max_trials": 30, "seed": 3},
                                          parameters={"lr": {"loguniform": [1e-4, 1e-1]}, "seed": [0, 1, 2**40],
                                                      "optimizer": ["adam", "sgd"], "grad_clip": [None, 0.5],
                                                      "loss": ["mse", "huber"]},  # mse: left out of ids
                                          training={"repeats": 2, "loss": "huber"})))
    plan = expand(spec)
    trials = list(plan)
    assert list(plan.trial_ids()) == [t.trial_id for t in trials]
    assert all(t.config_id == config_id(spec, t.params) for t in trials)
    key = {"b": [1, 2.5, None, True], "a": "é\n\"", "z": {"y": 1e-300, "x": float("inf")}, "s": _Digests.SLOT}
    for value in ("3fa2", 0.1, -7, None, {"k": "ü", "a": [np.float64(0.25)]}, [1, "2"], 2**70):
        assert _Digests(key)(value) == digest({**key, "s": value})
    with pytest.raises(ValueError):
        _Digests({"a": 1})


def test_random_draws_are_what_they_always_were() -> None:
    """Draw i of seed s is the same config in every hpt version: trial ids, and so resuming, depend on it."""
    axes = {"lr": Distribution("loguniform", 1e-4, 1e-1), "hidden_size": Distribution("int", 8, 64),
            "optimizer": ("adam", "sgd")}
    drawn = {seed: [RandomSearch(axes, seed=seed, max_trials=10**6)[i] for i in (0, 999_999)]
             for seed in (0, 2**32 - 1, 2**32 + 5)}
    assert drawn == {
        0: [{"lr": 0.00814489, "hidden_size": 37, "optimizer": "adam"},
            {"lr": 0.00677384, "hidden_size": 24, "optimizer": "adam"}],
        2**32 - 1: [{"lr": 0.000569942, "hidden_size": 49, "optimizer": "adam"},
                    {"lr": 0.00105963, "hidden_size": 48, "optimizer": "sgd"}],
        2**32 + 5: [{"lr": 0.021019, "hidden_size": 52, "optimizer": "adam"},
                    {"lr": 0.0123978, "hidden_size": 43, "optimizer": "sgd"}],
    }


def _random_spec(write_spec: Any, **search: Any) -> Any:
    return load_spec(write_spec(tiny_spec(search={"strategy": "random", "max_trials": 150, "seed": 0, **search},
                                          parameters={"lr": {"loguniform": [1e-4, 1e-1]}, "hidden_size": [8, 16]})))


def _counting_draws(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    draws: list[int] = []
    real = RandomSearch._get

    def counted(self: RandomSearch, i: int) -> dict[str, Any]:
        draws.append(i)
        return real(self, i)

    monkeypatch.setattr(RandomSearch, "_get", counted)
    return draws


def test_a_large_plans_ids_are_kept_and_read_back_instead_of_drawn_again(
        write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `hpt run` counts before it starts (100,000 ids on a big location, 2 s of draws) is kept in the local
    cache: an unchanged spec reads it, drawing only the configs of the trials that check it; a changed spec, a
    damaged file or one whose ids are not the plan's draws them all again."""
    import hpt.search as search
    from hpt import memo

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(search, "MEMO_SIZES", (100, 10**6))
    draws = _counting_draws(monkeypatch)
    spec = _random_spec(write_spec)
    plan = expand(spec)
    built = [t.trial_id for t in plan]  # 150 configs x 2 periods
    kept = tmp_path / "cache" / "hpt" / "plans"
    draws.clear()
    assert list(plan.trial_ids()) == built and len(draws) == 150  # each config drawn once
    assert [p.name for p in kept.iterdir()] == [f"{plan.memo_key()}.ids"]

    draws.clear()
    assert list(expand(spec).trial_ids()) == built
    assert 0 < len(draws) <= search.MEMO_CHECKS + 2  # only the trials that check the kept ids

    key = plan.memo_key()
    assert key is not None
    memo.save_ids(key, ["000000000000", *built[1:]])  # whole, but not the plan's ids
    draws.clear()
    assert list(expand(spec).trial_ids()) == built and len(draws) > 150 and memo.load_ids(key, len(built)) == built
    path = kept / f"{key}.ids"
    path.write_bytes(path.read_bytes()[:-5])  # cut short
    assert memo.load_ids(key, len(built)) is None
    draws.clear()
    assert list(expand(spec).trial_ids()) == built and len(draws) == 150

    other = expand(_random_spec(write_spec, seed=1))
    draws.clear()
    ids = list(other.trial_ids())
    assert len(draws) == 150 and ids == [t.trial_id for t in other] and set(ids).isdisjoint(built)
    reordered = load_spec(write_spec(tiny_spec(search={"strategy": "random", "max_trials": 150, "seed": 0},
                                               parameters={"hidden_size": [8, 16],
                                                           "lr": {"loguniform": [1e-4, 1e-1]}})))
    assert expand(reordered).memo_key() not in (key, other.memo_key())  # random draws take the axes in order
    assert len(list(kept.iterdir())) == 2

    for i in range(memo.KEEP + 2):
        memo.save_ids(f"k{i}", ["a"])
    assert len(list(kept.iterdir())) == memo.KEEP  # the oldest dropped


def test_a_finished_run_of_a_large_plan_counts_what_is_done_from_the_kept_ids(
        write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with nothing left to train on a big location draws no config but those that check the kept ids."""
    import hpt.search as search

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(search, "MEMO_SIZES", (100, 10**6))
    spec = _random_spec(write_spec, max_trials=60)
    sink = str(tmp_path / "res")
    first = run_spec(spec, RunOptions(sink=sink), Reporter(quiet=True),
                     backend=FakeBackend(lambda t: Script(curve=[1.0, 0.5])))
    assert first.counts == {"ok": 120}
    draws = _counting_draws(monkeypatch)
    backend = FakeBackend(lambda t: Script(curve=[1.0, 0.5]))
    again = run_spec(spec, RunOptions(sink=sink), Reporter(quiet=True), backend=backend)
    assert again.skipped == 120 and again.counts == {} and backend.log == []
    assert 0 < len(draws) <= search.MEMO_CHECKS + 2 < 60  # the configs of the trials that check the kept ids only


def test_another_machine_reads_a_large_plans_ids_from_the_location_instead_of_drawing_them(
        write_spec: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run that drew a large plan keeps its ids at the location too (plans/<key>.ids, a layout key): a run
    on a machine whose own cache is empty (another CI agent) reads them there; a damaged copy is drawn again."""
    import hpt.search as search
    from hpt import layout

    monkeypatch.setattr(search, "MEMO_SIZES", (100, 10**6))
    spec = _random_spec(write_spec, max_trials=60)
    sink = tmp_path / "res"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "first-machine"))
    first = run_spec(spec, RunOptions(sink=str(sink)), Reporter(quiet=True),
                     backend=FakeBackend(lambda t: Script(curve=[1.0, 0.5])))
    assert first.counts == {"ok": 120}
    (kept,) = (sink / "plans").iterdir()
    assert layout.kind(f"plans/{kept.name}") == layout.PLANS and kept.read_text().count("\n") == 120

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "second-machine"))
    draws = _counting_draws(monkeypatch)
    again = run_spec(spec, RunOptions(sink=str(sink)), Reporter(quiet=True),
                     backend=FakeBackend(lambda t: Script(curve=[1.0, 0.5])))
    assert again.skipped == 120 and again.counts == {}
    assert 0 < len(draws) <= search.MEMO_CHECKS + 2 < 60  # only the trials that check the location's ids
    assert [p.name for p in (tmp_path / "second-machine" / "hpt" / "plans").iterdir()] == [kept.name]

    kept.write_text(kept.read_text().replace("\n", "\nx", 1))  # damaged: drawn again, and the copy rewritten
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "third-machine"))
    draws.clear()
    third = run_spec(spec, RunOptions(sink=str(sink)), Reporter(quiet=True),
                     backend=FakeBackend(lambda t: Script(curve=[1.0, 0.5])))
    assert third.skipped == 120 and len(draws) >= 60
    assert "\nx" not in kept.read_text()
