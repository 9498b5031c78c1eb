"""Bad specs are reported before anything trains: one line per problem, with its JSON path, exit 2."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from hpt.errors import SpecError
from hpt.spec import Distribution, load_spec
from tests.conftest import cli_here, hpt_cli, tiny_spec

DATA = {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"}


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI in this process here: these checks are of what a command says about a spec, not of the process
    (the builder module test runs it as a process: its PYTHONPATH is the point)."""
    return cli_here


def _with(**changes: Any) -> dict[str, Any]:
    return tiny_spec(**changes)


def _params(**axes: Any) -> dict[str, Any]:
    return tiny_spec(parameters=axes)


# (case id, spec document, JSON path the message must name, words it must contain)
MALFORMED: list[tuple[str, Any, str, str]] = [
    ("unknown top key", {**tiny_spec(), "paramters": {}}, "paramters", 'did you mean "parameters"'),
    ("unknown training key", _with(training={"epoch": 3}), "training.epoch", 'did you mean "epochs"'),
    ("misspelt loss", _with(training={"loss": "maee"}), "training.loss", 'got "maee" (did you mean "mae"?)'),
    ("misspelt scaler", _params(scaler=["standard", "windw"]), "parameters.scaler[1]", 'did you mean "window"?'),
    ("arch arg under training", _with(architecture="lstm", training={"hidden_size": 8}), "training.hidden_size",
     'under "parameters"'),
    ("missing architecture", _with(architecture=None), "architecture", "missing"),
    ("unknown architecture", _with(architecture="transformerz"), "architecture", "known: mlp, lstm"),
    ("builder module missing", _with(architecture="no_such_pkg.models:build"), "architecture", "no_such_pkg"),
    ("builder module missing says where", _with(architecture="no_such_mod:build"), "architecture",
     'cannot import module "no_such_mod" for builder "no_such_mod:build": put no_such_mod.py next to the spec '
     "or on PYTHONPATH"),
    ("mistyped bucket sink", {**tiny_spec(), "sink": "s3:/bucket/x"}, "sink", "did you mean s3://bucket/x?"),
    ("sink of an unknown scheme", {**tiny_spec(), "sink": "ftp://x/y"}, "sink", "unknown scheme ftp://"),
    ("missing data", _with(data=None), "data", "missing"),
    ("data not an object", _with(data="file.csv"), "data", "expected an object"),
    ("missing target", {**tiny_spec(), "data": {"path": DATA["path"], "time_column": "ts"}}, "data.target", "missing"),
    ("unknown data key", _with(data={"file": "x.csv"}), "data.file", "unknown key"),
    ("data file missing", _with(data={"path": "nowhere.csv"}), "data.path", "file not found"),
    ("target column missing", _with(data={"target": "load"}), "data.target", 'no column "load"'),
    ("time column missing", _with(data={"time_column": "time"}), "data.time_column", 'no column "time"'),
    ("target listed as a feature", _with(data={"features": ["y"]}), "data.features[0]", '"y" is the target'),
    ("feature listed twice", _with(data={"features": ["y2", "y2"]}), "data.features[1]",
     'listed twice (first as data.features[0])'),
    ("season zero", _with(data={"season": 0}), "data.season", "expected a positive integer (steps in one season"),
    ("season not an integer", _with(data={"season": "daily"}), "data.season", 'got "daily"'),
    ("lr not a number", _params(lr=[0.001, 0.01, "fast"]), "parameters.lr[2]", 'expected a number > 0, got "fast"'),
    ("negative lr", _params(lr=[-0.1]), "parameters.lr[0]", "> 0"),
    ("empty grid axis", _params(lr=[]), "parameters.lr", "empty list"),
    ("duplicate grid value", _params(lr=[0.1, 0.1]), "parameters.lr[1]", "twice"),
    ("unknown parameter", _params(hiden_size=[8]), "parameters.hiden_size", 'did you mean "hidden_size"'),
    ("unknown parameter lists valid", _params(color=[1]), "parameters.color", "valid: epochs"),
    ("int param given a float", _params(hidden_size=[8.5]), "parameters.hidden_size[0]", "integer"),
    ("dropout out of range", _params(dropout=[1.5]), "parameters.dropout[0]", "< 1"),
    ("choice param", _params(optimizer=["adamm"]), "parameters.optimizer[0]", 'one of "adam"'),
    ("distribution in grid", _params(lr={"loguniform": [1e-4, 1e-1]}), "parameters.lr", '"strategy": "random"'),
    ("reversed distribution", {**_params(lr={"loguniform": [0.1, 0.001]}), "search": {"strategy": "random", "max_trials": 3}},
     "parameters.lr.loguniform", "reversed range"),
    ("unknown distribution", {**_params(lr={"logunifrom": [0.1, 1]}), "search": {"strategy": "random", "max_trials": 3}},
     "parameters.lr", 'did you mean "loguniform"'),
    ("loguniform from zero", {**_params(lr={"loguniform": [0, 1]}), "search": {"strategy": "random", "max_trials": 3}},
     "parameters.lr.loguniform", "low > 0"),
    ("float range for int param", {**_params(hidden_size={"uniform": [8, 64]}),
                                   "search": {"strategy": "random", "max_trials": 3}},
     "parameters.hidden_size", '{"int": [8, 64]}'),
    ("random without max_trials", _with(search={"strategy": "random"}), "search.max_trials", "required for random"),
    ("unknown strategy", _with(search={"strategy": "bayes"}), "search.strategy", "grid, random"),
    ("max_trials zero", _with(search={"max_trials": 0}), "search.max_trials", "integer >= 1"),
    ("epochs zero", _with(training={"epochs": 0}), "training.epochs", "integer >= 1, got 0"),
    ("batch size string", _with(training={"batch_size": "64"}), "training.batch_size", 'got "64"'),
    ("bad validation", _with(training={"validation": 1.5}), "training.validation", "fraction between 0 and 1"),
    ("date_ranges missing", _with(date_ranges=None), "date_ranges", "missing"),
    ("date_ranges empty", _with(date_ranges=[]), "date_ranges", "non-empty list"),
    ("not a pair", _with(date_ranges=[["2013-01-01"]]), "date_ranges[0]", "pair"),
    ("bad date", _with(date_ranges=[["2013-01-01", "2013-02-30"]]), "date_ranges[0][1]", "2013-02-30"),
    ("reversed dates", _with(date_ranges=[["2013-01-01", "2013-02-01"], ["2013-04-01", "2013-01-01"]]),
     "date_ranges[1]", "reversed range"),
    ("duplicate period", _with(date_ranges=[["2013-01-01", "2013-02-01"], ["2013-01-01", "2013-02-01"]]),
     "date_ranges[1]", "twice"),
    ("period outside data", _with(date_ranges=[["2016-01-01", "2016-03-01"]]), "date_ranges[0]", "outside the data"),
    ("period too short", _with(date_ranges=[["2013-01-01", "2013-01-02"]]), "date_ranges[0]", "too few"),
    ("heads do not divide d_model", _with(architecture="attention", parameters={"d_model": [32, 30], "num_heads": [4]}),
     "parameters.d_model[1]", "d_model 30 is not a multiple of num_heads 4"),
    ("tuned heads against default d_model", _with(architecture="attention", parameters={"num_heads": [4, 5]}),
     "parameters.num_heads[1]", "d_model 32 is not a multiple of num_heads 5"),
    ("period too short for tuned lookback", _params(lookback=[24, 400]), "date_ranges[0]", "lookback 400"),
    ("both date keys", {**tiny_spec(), "date-range": [["2013-01-01", "2013-02-01"]]}, "date-range", "keep one"),
    ("unknown metric", _with(metrics=["mse", "r2"]), "metrics[1]", 'unknown metric "r2"'),
    ("bad objective", _with(objective="accuracy"), "objective", "lower is better"),
    ("top level list", [1, 2], "", "expected a JSON object"),
    ("zero threads", _with(resources={"threads": 0}), "resources.threads", "expected an integer >= 1"),
    ("name climbs out of the results folder", _with(name="../../etc"), "name", 'holds the separator "/"'),
    ("name with a backslash", _with(name="a\\b"), "name", 'holds the separator "\\\\"'),
    ("name is a dot", _with(name="."), "name", '"." is not a folder name'),
    ("name is two dots", _with(name=".."), "name", '".." is not a folder name'),
    ("name with a newline", _with(name="a\nb"), "name", "control character U+000A"),
    ("name too long", _with(name="x" * 101), "name", "101 characters, more than 100"),
    ("int axis repeats 64 as 64.0", _params(hidden_size=[8, 64, 64.0]), "parameters.hidden_size[2]", "64.0 is listed twice"),
]


@pytest.mark.parametrize("doc, path, words", [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_spec_names_its_json_path(write_spec: Any, doc: Any, path: str, words: str) -> None:
    spec_file = write_spec(doc)
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    lines = info.value.lines()
    hit = [line for line in lines if f"{spec_file}: {path}:" in line or (not path and str(spec_file) in line)]
    assert hit, lines
    assert any(words in line for line in hit), lines


def test_table_has_enough_distinct_cases() -> None:
    assert len({c[0] for c in MALFORMED}) >= 20


def test_all_problems_reported_together(write_spec: Any) -> None:
    doc = tiny_spec(parameters={"lr": ["fast"], "hiden_size": [8]}, training={"epochs": 0})
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(doc))
    text = str(info.value)
    assert "parameters.lr[0]" in text and "parameters.hiden_size" in text and "training.epochs" in text
    assert len(info.value.lines()) == 3


def test_a_key_in_the_wrong_section_is_pointed_to_its_section(write_spec: Any, cli: Any) -> None:
    doc = tiny_spec(training={"season": 24, "strategy": "grid", "epoch": 3}, search={"max_trials": 4, "epochs": 3},
                    data={"lookback": 24})
    doc["season"] = 24
    spec_file = write_spec(doc)
    out = cli("validate", str(spec_file))
    assert out.returncode == 2 and out.stdout == "", out.stdout
    said = dict(line.split(": ", 4)[3:] for line in out.stderr.splitlines())  # hpt: error: FILE: PATH: MESSAGE
    assert said["training.season"].startswith('unknown key (did you mean "data.season"?); valid: epochs, ')
    assert said["season"].startswith('unknown key (did you mean "data.season"?); valid: name, ')
    assert said["training.strategy"].startswith('unknown key (did you mean "search.strategy"?)')
    assert said["search.epochs"].startswith('unknown key (did you mean "training.epochs" or "parameters.epochs"?)')
    assert said["data.lookback"].startswith('unknown key (did you mean "training.lookback" or "parameters.lookback"?)')
    assert said["training.epoch"].startswith('unknown key (did you mean "epochs"?)')  # a typo: the closest key here
    assert len(said) == 6, out.stderr


def test_another_strategys_search_key_says_which_strategy_takes_it(write_spec: Any, cli: Any) -> None:
    doc = tiny_spec(search={"strategy": "grid", "startup_trials": 3, "sedd": 1})
    out = cli("validate", str(write_spec(doc)))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    said = dict(line.split(": ", 4)[3:] for line in out.stderr.splitlines())  # hpt: error: FILE: PATH: MESSAGE
    assert said == {"search.startup_trials": 'only with strategy "tpe" (this spec\'s is "grid")',
                    "search.sedd": 'unknown key (did you mean "seed"?); valid: strategy, max_trials, seed, '
                                   "early_stopping, budget, warm_start, finalists, race, promote"}, out.stderr


@pytest.mark.parametrize("search_key, search, said", [
    ("serach", {"strategy": "random", "max_trials": 4}, ("serach", 'unknown key (did you mean "search"?)')),
    ("search", {"strategy": "randon", "max_trials": 4}, ("search.strategy", 'got "randon" (did you mean "random"?)')),
    ("search", {"strategie": "random", "max_trials": 4}, ("search.strategie", 'unknown key (did you mean "strategy"?)')),
    ("search", "random", ("search", 'expected an object such as {"strategy": "random"}, got "random"')),
], ids=["misspelt section", "unknown strategy", "misspelt strategy key", "strategy alone"])
def test_a_misspelt_search_is_the_one_problem_named_not_what_follows_from_it(write_spec: Any, cli: Any, search_key: str,
                                                                               search: Any, said: tuple[str, str]) -> None:
    # a distribution asks for a search that takes one: read as grid search, the spec would also get "a distribution
    # needs ..." for the misspelt search the user did give
    doc = tiny_spec(parameters={"lr": {"loguniform": [1e-4, 0.03]}})
    doc.pop("search", None)
    doc[search_key] = search
    out = cli("validate", str(write_spec(doc)))
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and f": {said[0]}: " in lines[0] and said[1] in lines[0], lines
    # with no search at all, or one spelt right that takes no distribution, the distribution's line is the answer
    del doc[search_key]
    for right in ({}, {"search": {"strategy": "grid"}}):
        out = cli("validate", str(write_spec({**doc, **right})))
        assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
        assert 'parameters.lr: a distribution needs "search": {"strategy": "random"' in out.stderr, out.stderr


def test_early_stopping_names_the_kind_it_was_probably_meant_to_be(write_spec: Any, cli: Any) -> None:
    for given, said in (("asah", 'search.early_stopping.kind: expected one of asha, hyperband, median, got "asah" '
                                 '(did you mean "asha"?)'),
                        (True, 'search.early_stopping: expected "asha", "hyperband" or "median", or an object such as '
                               '{"kind": "asha"')):
        doc = tiny_spec(search={"strategy": "random", "max_trials": 4, "early_stopping": given},
                        parameters={"lr": {"loguniform": [1e-4, 0.03]}})
        out = cli("validate", str(write_spec(doc)))
        assert out.returncode == 2 and len(out.stderr.splitlines()) == 1 and said in out.stderr, out.stderr


def test_a_period_with_few_training_windows_is_a_warning_that_says_what_to_change(
        tmp_path: Path, write_spec: Any, cli: Any) -> None:
    days = pd.date_range("2013-01-01", "2014-12-31", freq="D")
    pd.DataFrame({"day": days.strftime("%Y-%m-%d"), "sales": np.sin(np.arange(len(days))) + 10}).to_csv(
        tmp_path / "daily.csv", index=False)
    spec_file = write_spec(tiny_spec(data={"path": "daily.csv", "time_column": "day", "target": "sales"},
                                     date_ranges=[["2013-01-01", "2013-03-01"], ["2013-07-01", "2014-07-01"]],
                                     training={"lookback": 48, "validation": "7D"}))
    for command in (["validate"], ["run", "--dry-run"]):
        out = cli(*command, str(spec_file), cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        # 59 days, 7 of them validation, leave 52 rows: 4 windows of 48 + 1
        assert out.stderr.splitlines() == [
            'hpt: warning: period 2013-01-01..2013-03-01 (date_ranges[0]) leaves 4 training windows (1D steps; lookback 48, '
            'horizon 1, validation "7D"): fewer than 100, likely too few to learn from; use longer periods, or a shorter '
            "lookback, horizon or validation"], command  # the year-long period has enough
    # with a mistake elsewhere in the spec, only the mistake: the warning is of settings that are to change
    typo = write_spec(tiny_spec(data={"path": "daily.csv", "time_column": "day", "target": "sales"},
                                date_ranges=[["2013-01-01", "2013-03-01"], ["2013-07-01", "2014-07-01"]],
                                training={"lookback": 48, "validation": "7D", "epoch": 3}))
    out = cli("validate", str(typo), cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1 and "training.epoch: unknown key" in out.stderr


def test_invalid_json_reports_line_and_column(write_spec: Any) -> None:
    with pytest.raises(SpecError, match=r"invalid JSON at line 3, column 13"):
        load_spec(write_spec('{\n  "name": "x",\n  "epochs": ,\n}'))


@pytest.mark.parametrize(("text", "message"), [
    ('{\n  "name": "x",\n  "parameters": {"lr": [0.01, 0.1],},\n  "seed": 1,\n}',
     "invalid JSON at line 3, column 35: a comma after the last item (JSON allows none before })"),
    ('{"name": "x", "parameters": {"lr": [0.01, 0.1,]}}',
     "invalid JSON at line 1, column 46: a comma after the last item (JSON allows none before ])"),
    ("{\n  'name': 'x'\n}", "invalid JSON at line 2, column 3: a single quote (JSON strings and keys need double quotes)"),
])
def test_the_usual_json_slips_are_named_at_the_character_to_change(write_spec: Any, cli: Any, text: str,
                                                                   message: str) -> None:
    path = str(write_spec(text))
    done = cli("validate", path)
    assert done.returncode == 2 and done.stderr.strip() == f"hpt: error: {path}: {message}"


def test_a_key_given_twice_is_refused_at_each_json_path(write_spec: Any, cli: Any) -> None:
    text = json.dumps(tiny_spec(), indent=1)
    # two "parameters" blocks at the top, and "epochs" twice inside "training": json.loads would keep only the last
    text = text.replace('"parameters": {', '"parameters": {"lr": [0.1]},\n "parameters": {', 1)
    text = text.replace('"epochs": 3', '"epochs": 3, "epochs": 5', 1)
    out = cli("validate", str(write_spec(text)))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    errors = out.stderr.splitlines()
    assert len(errors) == 2
    assert errors[0].endswith("parameters: given 2 times in the same object (JSON would keep only the last one and "
                              "drop the others): merge them into one")
    assert ": training.epochs: given 2 times" in errors[1]


def test_a_spec_file_with_a_utf8_byte_order_mark_is_read(tmp_path: Path, cli: Any) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(tiny_spec()).encode())  # as Windows Notepad saves it
    out = cli("validate", str(path))
    assert out.returncode == 0, out.stderr
    assert f"{path}: ok (mlp, 2 periods)" in out.stdout


def test_validate_cli_exit_code_and_no_traceback(write_spec: Any, cli: Any) -> None:
    bad = write_spec(tiny_spec(parameters={"lr": [0.001, "fast"]}))
    good = write_spec()
    out = cli("validate", str(good), str(bad))
    assert out.returncode == 2
    assert f"{good}: ok" in out.stdout
    assert f'hpt: error: {bad}: parameters.lr[1]: expected a number > 0, got "fast"' in out.stderr
    assert "Traceback" not in out.stderr


def test_run_with_bad_spec_writes_nothing(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    bad = write_spec(tiny_spec(training={"epochs": -1}))
    out = cli("run", str(bad), "--sink", str(tmp_path / "res"))
    assert out.returncode == 2 and "training.epochs" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "res").exists()


def test_valid_spec_parses_everything(write_spec: Any) -> None:
    doc = tiny_spec(
        architecture="lstm",
        search={"strategy": "random", "max_trials": 4, "seed": 3},
        parameters={"lr": {"loguniform": [1e-4, 1e-2]}, "hidden_size": {"int": [8, 32]}, "dropout": [0.0, 0.2]},
        training={"validation": "3D", "optimizer": "adamw", "grad_clip": 1.0},
        metrics=["rmse", "n_params"],
        objective="mae",
    )
    doc["date-range"] = doc.pop("date_ranges")  # the blog-era alias
    spec = load_spec(write_spec(doc))
    assert spec.parameters["lr"] == Distribution("loguniform", 1e-4, 1e-2)
    assert spec.parameters["dropout"] == (0.0, 0.2)
    assert spec.objective == "val_mae"
    assert spec.columns[0] == "val_mae" and "val_rmse" in spec.columns and "n_params" in spec.columns
    assert spec.base_params["optimizer"] == "adamw" and spec.base_params["num_layers"] == 1
    assert [p.label for p in spec.periods] == ["2013-01-01..2013-01-15", "2013-02-01..2013-02-15"]


def test_relative_data_path_is_read_from_the_spec_folder(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "w.csv").write_text("date,temp\n" + "".join(
        f"2012/01/{d:02d},{d * 1.5}\n" for d in range(1, 32)))
    doc = tiny_spec(data={"path": "data/w.csv", "time_column": "date", "target": "temp"},
                    date_ranges=[["2012-01-01", "2012-02-01"]], training={"lookback": 5, "validation": 0.3})
    (folder / "spec.json").write_text(json.dumps(doc))
    spec = load_spec(folder / "spec.json")
    assert spec.data.path == str(folder / "data" / "w.csv")


def test_constraint_reports_each_bad_value_once_and_crosses_only_its_own_axes(write_spec: Any) -> None:
    big = {"lr": [i / 1e4 + 1e-5 for i in range(1000)], "weight_decay": [i / 10 for i in range(1000)],
           "seed": list(range(1000))}  # 10^9 configs: the constraint must not cross these
    doc = tiny_spec(architecture="attention", parameters={**big, "d_model": [30, 32, 50], "num_heads": [4, 2]})
    spec_file = write_spec(doc)
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    assert info.value.lines() == [
        f"{spec_file}: parameters.d_model[0]: d_model 30 is not a multiple of num_heads 4 (each head takes d_model / num_heads)",
        f"{spec_file}: parameters.d_model[2]: d_model 50 is not a multiple of num_heads 4 (each head takes d_model / num_heads)",
    ]
    good = load_spec(write_spec(tiny_spec(architecture="attention", parameters={**big, "d_model": [32, 48]})))
    assert good.parameters["d_model"] == (32, 48)


def test_sampled_values_are_left_to_the_run(write_spec: Any) -> None:
    doc = tiny_spec(architecture="attention", search={"strategy": "random", "max_trials": 2},
                    parameters={"d_model": {"int": [30, 31]}, "num_heads": [4]})
    assert load_spec(write_spec(doc)).parameters["d_model"] == Distribution("int", 30, 31)


def test_builder_module_next_to_the_spec_is_imported_by_the_workers(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "my_spec_models.py").write_text(
        "from torch import nn\n\n\n"
        "def tiny_tcn(n_features, lookback, horizon, width=16, dropout=0.0):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.ReLU(),\n"
        "                         nn.Dropout(dropout), nn.Linear(width, horizon))\n")
    doc = tiny_spec(architecture="my_spec_models:tiny_tcn", parameters={"width": [4, 8]}, training={"epochs": 1},
                    date_ranges=[["2013-01-01", "2013-01-15"]])
    (folder / "spec.json").write_text(json.dumps(doc))
    done = hpt_cli("run", str(folder / "spec.json"), "--sink", str(tmp_path / "res"), "--workers", "1",
                   env={"PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr
    rows = [json.loads(p.read_text()) for p in sorted((tmp_path / "res" / "rows").glob("*.json"))]
    rows = [r for r in rows if not r["architecture"].startswith("naive-")]
    assert [(r["status"], r["param_width"]) for r in sorted(rows, key=lambda r: r["param_width"])] == [("ok", 4), ("ok", 8)]


def test_a_training_value_the_search_tunes_is_named_as_unused(write_spec: Any, cli: Any) -> None:
    out = cli("validate", str(write_spec(tiny_spec(training={"lr": 0.1}))))
    assert out.returncode == 0, out.stderr
    assert "training.lr is not used: parameters.lr tunes it" in out.stderr
    assert "training.epochs" not in out.stderr


def test_a_setting_only_another_loss_reads_is_named_as_unused(write_spec: Any, cli: Any) -> None:
    out = cli("validate", str(write_spec(tiny_spec(training={"epochs": 2, "quantiles": [0.1, 0.5, 0.9],
                                                             "huber_delta": 2.0}))))
    assert out.returncode == 0, out.stderr
    assert "training.quantiles is not used: only loss quantile or mdn reads it, and this spec's loss is mse" in out.stderr
    assert "training.huber_delta is not used: only loss huber reads it, and this spec's loss is mse" in out.stderr
    tuned = tiny_spec(training={"epochs": 2, "huber_delta": 2.0}, parameters={"lr": [0.01], "loss": ["mse", "huber"]})
    out = cli("validate", str(write_spec(tuned)))  # one of the tuned losses reads it
    assert out.returncode == 0 and "not used" not in out.stderr, out.stderr


def test_a_name_that_is_not_a_folder_name_stops_the_run_before_anything_is_written(write_spec: Any, cli: Any,
                                                                                  tmp_path: Path) -> None:
    out = cli("run", str(write_spec(tiny_spec(name="../escaped"))), cwd=tmp_path)
    errors = [line for line in out.stderr.splitlines() if line.startswith("hpt: error:")]
    assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    assert errors[0].endswith('name: "../escaped" cannot name the results folder: it holds the separator "/"')
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "hpt-results").exists()
    assert load_spec(write_spec(tiny_spec(name="n" * 100))).name == "n" * 100


def test_a_file_name_that_is_not_a_folder_name_says_to_set_name(tmp_path: Path) -> None:
    path = tmp_path / ("s" * 101 + ".json")
    path.write_text(json.dumps(tiny_spec(name=None)))
    words = r'name: "s+\.\.\. cannot name .*101 characters.*\(the name comes from the file name: set "name"\)'
    with pytest.raises(SpecError, match=words):
        load_spec(path)


def test_a_grid_axis_of_a_million_values_is_checked_in_linear_time(write_spec: Any) -> None:
    values = [i * 1e-9 + 1e-6 for i in range(10**6)]
    started = time.perf_counter()
    spec = load_spec(write_spec(tiny_spec(parameters={"lr": values, "weight_decay": [v - 1e-6 for v in values]})))
    # a guard against the quadratic check, not a speed claim: that took 42 s for 10^4 values and hours for 10^6
    assert time.perf_counter() - started < 60
    assert len(spec.parameters["lr"]) == 10**6
    with pytest.raises(SpecError) as info:
        load_spec(write_spec(tiny_spec(parameters={"lr": [*values, values[17], 0.0]})))
    assert [line.split(": ", 1)[1] for line in info.value.lines()] == [
        f"parameters.lr[{10**6}]: {values[17]} is listed twice",
        f"parameters.lr[{10**6 + 1}]: expected a number > 0, got 0.0",
    ]


def test_plan_of_two_million_value_axes_answers_quickly_and_shows_a_sample(write_spec: Any) -> None:
    big = write_spec(tiny_spec(parameters={"lr": [i * 1e-9 + 1e-6 for i in range(10**6)],
                                           "seed": list(range(10**6))}))
    small = write_spec()
    started = time.perf_counter()
    assert hpt_cli("plan", str(small), "--limit", "1").returncode == 0
    start_up = time.perf_counter() - started  # importing hpt and its libraries: not what this test is about
    started = time.perf_counter()
    out = hpt_cli("plan", str(big), "--limit", "3")
    elapsed = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    assert elapsed - start_up < 60, (elapsed, start_up)  # a guard against walking the axes, not a speed claim
    lines = out.stdout.splitlines()
    assert "tuned: seed [0, 1, 2, 3, 4, ..., 999998, 999999] (1000000 values)" in lines
    assert "tiny: 2000000000000 trials = 1000000000000 configs x 2 periods" in lines[0]
    assert max(map(len, lines)) < 200


def test_did_you_mean_offers_only_a_name_close_to_the_one_written() -> None:
    from hpt.errors import did_you_mean

    columns = ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"]  # the Seattle weather data's
    assert did_you_mean("station", columns) == ""  # not "precipitation": they share "tation", nothing a typo makes
    assert did_you_mean("temp", columns) == ' (did you mean "temp_max" or "temp_min"?)'  # as close: both named
    assert did_you_mean("wether", columns) == ' (did you mean "weather"?)'
