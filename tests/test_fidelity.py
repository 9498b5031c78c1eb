"""A fidelity (full, quick screening) is a value: trials, rows and the schedulers carry it; ids keep what main gave."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from hpt.baselines import RunBaselines
from hpt.fidelity import FULL, QUICK, fidelity_named
from hpt.rows import result_row
from hpt.search import expand
from hpt.spec import parse_spec, quick_spec
from hpt.trial import Status, TrialResult
from tests.conftest import tiny_spec

TODAY = date(2013, 3, 10)  # --quick screens February 2013


def _spec(**overrides: Any) -> Any:
    return parse_spec(tiny_spec(**overrides), today=TODAY)


# The ids hpt computed for these specs before the fidelity was a value (main at a936f98), byte for byte:
# rows, models and curves at a results location are found again by them.
_FULL_REPEATS = [("3e60a294cb9c", "e9cea4d2fa8f", 1880789147), ("3e60a294cb9c", "ee200e48eb33", 1970241469),
                 ("3e60a294cb9c", "6ab8948743eb", 1347314768), ("3e60a294cb9c", "26a845e5a2ef", 1614449532),
                 ("94ac6b3bad80", "5fc942404f0f", 1880789147), ("94ac6b3bad80", "4058b95a0249", 1970241469),
                 ("94ac6b3bad80", "1ce769738c27", 1347314768), ("94ac6b3bad80", "132dc3fa1a81", 1614449532)]
_QUICK_REPEATS = [("3e60a294cb9c", "5fbe7e8760a1"), ("3e60a294cb9c", "8b8cbc61d14f"),
                  ("94ac6b3bad80", "c8b1eed951e7"), ("94ac6b3bad80", "90ff13ddb42e")]
_BASELINES = {"full": ["f89840451be2", "3657725cb207", "bd11fda34e9e", "f1da2e7664f5"],
              "quick": ["b7791521fce1", "ed4314f3e34b"]}
_RANDOM = [("d7ae114d6f7c", "d50f695ce48f"), ("d7ae114d6f7c", "0863adaa6648"), ("ade241c71825", "5e4c1f2e051c"),
           ("ade241c71825", "868a87fdaffe"), ("46e8d1b34b19", "0baf80972d58"), ("46e8d1b34b19", "bb4ac8dc82f6")]
_RANDOM_QUICK = [("d7ae114d6f7c", "a12c1dd8c076"), ("ade241c71825", "24b1c785cd36"), ("46e8d1b34b19", "103e99c45032")]
_EPOCHS_30 = [("b6a45ed62c31", "77659ab15256", 30), ("b6a45ed62c31", "f9819309408e", 30),
              ("04be181d96bf", "235ea541cd0a", 30), ("04be181d96bf", "89ecf87c810c", 30)]
_EPOCHS_30_QUICK = [("b6a45ed62c31", "e9393286117c", 20), ("04be181d96bf", "405e8c554d91", 20)]


def test_trial_and_config_ids_of_full_and_quick_trials_are_what_they_were() -> None:
    spec = _spec(training={"repeats": 2})
    assert [(t.config_id, t.trial_id, t.seed) for t in expand(spec)] == _FULL_REPEATS
    quick = quick_spec(spec)
    trials = list(expand(quick))
    assert [(t.config_id, t.trial_id) for t in trials] == _QUICK_REPEATS
    assert {t.period.label for t in trials} == {"2013-02-01..2013-03-01"}

    frame = spec.data.read().frame
    for variant in (spec, quick):
        baselines = RunBaselines(variant, frame)
        ids = [baselines.trial(name, setting, period).trial_id for setting in baselines.settings()
               for period in variant.periods for name in ("naive-last", "naive-seasonal")]
        assert ids == _BASELINES["quick" if variant is quick else "full"]


def test_ids_of_sampled_configs_and_of_quick_trials_whose_epochs_are_capped_are_what_they_were() -> None:
    random = _spec(search={"strategy": "random", "seed": 3, "max_trials": 3},
                   parameters={"lr": {"loguniform": [0.0001, 0.1]}, "hidden_size": [8, 16]})
    assert [(t.config_id, t.trial_id) for t in expand(random)] == _RANDOM
    assert [(t.config_id, t.trial_id) for t in expand(quick_spec(random))] == _RANDOM_QUICK
    long = _spec(training={"epochs": 30})
    assert [(t.config_id, t.trial_id, t.params["epochs"]) for t in expand(long)] == _EPOCHS_30
    quick = expand(quick_spec(long))
    assert [(t.config_id, t.trial_id, t.params["epochs"]) for t in quick] == _EPOCHS_30_QUICK
    assert list(quick.trial_ids()) == [trial_id for _, trial_id, _ in _EPOCHS_30_QUICK]


def test_rows_write_the_fidelitys_name_and_reading_them_gives_the_value_back() -> None:
    quick = next(iter(expand(quick_spec(_spec()))))
    row = result_row(TrialResult(quick, Status.OK, {"val_mse": 1.0}), "run", ["val_mse"])
    assert row["fidelity"] == "quick" and json.loads(json.dumps(row))["fidelity"] == "quick"
    assert fidelity_named(row["fidelity"]) is QUICK and fidelity_named("full") is FULL
    for missing in (None, "", float("nan")):  # rows written before rows had a fidelity are full
        assert fidelity_named(missing) is FULL
    other = fidelity_named("low")  # a fidelity this version does not know: its name, nothing capped
    assert other not in (FULL, QUICK) and other.name == "low" and other.epochs(50) == 50 and other.rows == "low rows"
    assert QUICK.epochs(50) == 20 and QUICK.epochs(5) == 5 and FULL.epochs(50) == 50
    assert QUICK.rows == "screening (quick) rows"


def test_a_quick_runs_last_lines_name_the_best_of_its_screen_beside_full_rows(write_spec: Any, tmp_path: Any) -> None:
    # full rows were at the location already: the quick run named the best full config, "no config has quick
    # results yet", while hpt results ranked its screen's own best
    from hpt.results import best_config, load_results
    from tests.conftest import cli_here

    spec = str(write_spec(tiny_spec(parameters={"lr": [0.0003, 0.003, 0.03]}, training={"epochs": 2})))
    sink = str(tmp_path / "res")
    for extra in ((), ("--quick",)):
        done = cli_here("run", spec, "--sink", sink, "--workers", "1", "--today", "2013-03-10", *extra)
        assert done.returncode == 0, done.stderr
    assert re.match(r"hpt \S+: tiny: 3 trials \(3 configs x 1 period\) at quick fidelity \(screening\) of mlp on ",
                    done.stdout), done.stdout  # the start line says it is a screen
    line = next(t for t in done.stdout.splitlines() if t.startswith("best config "))
    quick_best = best_config(load_results(sink), "val_mse", fidelity=QUICK.name)
    assert quick_best is not None and line.startswith(f"best config {quick_best.config_id}: "), line
    assert "from full rows" not in line and "over 1 period" in line
