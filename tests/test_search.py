"""Grid and random search: counts, seeded order, no duplicates, laziness, stable ids."""

from __future__ import annotations

import json
import time
import tracemalloc
from typing import Any

from hpt.search import GridSearch, RandomSearch, expand
from hpt.spec import Distribution, load_spec
from tests.conftest import tiny_spec


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
    tracemalloc.start()
    t0 = time.perf_counter()
    grid = GridSearch(axes, seed=0)
    some = [grid[i] for i in (0, 1, 10**9 - 1)] + list(grid[:100])
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(grid) == 10**9 and len(some) == 103
    assert peak < 5_000_000 and elapsed < 5
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
