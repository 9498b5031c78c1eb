"""TensorBoard and MLflow views of a real run's results location (hpt results --tensorboard/--mlflow, hpt run --mlflow)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, cli_here, hpt_cli, hpt_here, tiny_spec

CONFIGS = {0.01: "ok", 1e12: "diverged"}  # lr 1e12 diverges in its first epoch: a trial that did not finish ok


@pytest.fixture(scope="module")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty MLflow SQLite store with its tables made, once for the module: MLflow's schema migrations take 5-15 s
    on a fresh file, the same in every test; each test copies this file instead (what it logs is its own)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def sqlite_store(empty_mlflow_db: Path, tmp_path: Path) -> str:
    """A fresh MLflow tracking URI for one test: a copy of the empty store in the test's folder."""
    import shutil

    shutil.copy(empty_mlflow_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture(scope="module")
def location(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished location: 2 configs x 2 periods, 2 epochs; one config ok, one diverged."""
    folder = tmp_path_factory.mktemp("tracking")
    spec = folder / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="tracked", parameters={"lr": list(CONFIGS), "hidden_size": [8]},
                                         training={"epochs": 2})))
    done = hpt_cli("run", str(spec), "--sink", str(folder / "results"), "--workers", "1", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    return folder / "results"


def _rows(location: Path) -> dict[str, dict[str, Any]]:
    rows = (json.loads(p.read_text()) for p in (location / "rows").glob("*.json"))
    return {r["trial_id"]: r for r in rows if not r["architecture"].startswith("naive-")}


def _curve(location: Path, trial_id: str) -> list[dict[str, str]]:
    import csv

    return list(csv.DictReader((location / "curves" / f"{trial_id}.csv").open()))


def _tensorboard_runs(out: Path) -> dict[str, dict[str, Any]]:
    """What TensorBoard's own event reader finds in `out`: per run folder, its scalars and its HParams session."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata
    from tensorboard.plugins.hparams.api_pb2 import Status

    runs = {}
    for folder in sorted({p.parent for p in out.rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
        acc.Reload()
        run: dict[str, Any] = {"scalars": {tag: [(e.step, e.value) for e in acc.Scalars(tag)]
                                           for tag in acc.Tags()["scalars"]}}
        for tag in acc.Tags()["tensors"]:
            content = acc.SummaryMetadata(tag).plugin_data.content
            if tag == metadata.SESSION_START_INFO_TAG:
                start = metadata.parse_session_start_info_plugin_data(content)
                run["hparams"] = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
                                  for k, v in start.hparams.items()}
                run["model_uri"] = start.model_uri
            elif tag == metadata.SESSION_END_INFO_TAG:
                run["status"] = Status.Name(metadata.parse_session_end_info_plugin_data(content).status)
            elif tag == metadata.EXPERIMENT_TAG:
                experiment = metadata.parse_experiment_plugin_data(content)
                run["experiment"] = {
                    "hparams": {h.name: [getattr(v, v.WhichOneof("kind")) for v in h.domain_discrete.values]
                                for h in experiment.hparam_infos},
                    "metrics": [m.name.tag for m in experiment.metric_infos]}
        runs[folder.relative_to(out).as_posix()] = run
    return runs


def test_tensorboard_writes_a_run_per_trial_with_curves_and_hparams(location: Path, tmp_path: Path) -> None:
    out = tmp_path / "tb"
    done = hpt_here("results", str(location), "--tensorboard", str(out))
    assert done.exit_code == 0, done.output
    assert f"tensorboard: 4 trial(s) written to {out}; see them with: tensorboard --logdir {out}" in done.stdout
    runs = _tensorboard_runs(out)
    experiment = runs.pop(".")["experiment"]
    rows = _rows(location)
    assert len(runs) == len(rows) == 4
    for row in rows.values():
        period = f"{row['period_start']}_{row['period_end']}"
        run = runs[f"{row['config_id']}/{period}/full"]
        assert run["hparams"] == {"lr": row["param_lr"], "hidden_size": row["param_hidden_size"],
                                  "config_id": row["config_id"], "period": period, "fidelity": "full",
                                  "status": row["status"]}
        assert run["status"] == {"ok": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE"}[row["status"]]
        assert row["status"] == CONFIGS[row["param_lr"]]
        if row["status"] == "ok":
            curve = _curve(location, row["trial_id"])
            assert [e for e, _ in run["scalars"]["curve/val_mse"]] == [1, 2]
            assert [v for _, v in run["scalars"]["curve/val_mse"]] == pytest.approx(
                [float(c["val_mse"]) for c in curve], rel=1e-6)
            assert run["scalars"]["curve/train_loss"][-1][1] == pytest.approx(float(curve[-1]["train_loss"]), rel=1e-6)
            assert run["scalars"]["val_mse"] == [(2, pytest.approx(row["val_mse"], rel=1e-6))]
            assert run["model_uri"] == row["model_uri"]
        else:
            assert "curve/val_mse" not in run["scalars"]
    assert sorted(experiment["hparams"]["lr"]) == sorted(CONFIGS)
    assert sorted(experiment["hparams"]["config_id"]) == sorted({r["config_id"] for r in rows.values()})
    assert sorted(experiment["hparams"]["status"]) == ["diverged", "ok"]
    assert {"val_mse", "val_mae", "train_time_s"} <= set(experiment["metrics"])

    files = sorted(p for p in out.rglob("*") if p.is_file())
    again = hpt_here("results", str(location), "--tensorboard", str(out), "--format", "json")
    assert again.exit_code == 0, again.output
    assert f"tensorboard: nothing new; 4 trial(s) already in {out}" in again.stderr
    json.loads(again.stdout)  # the line goes to stderr beside a JSON table
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files


def test_tensorboards_hparams_dashboard_lists_every_trial(location: Path, tmp_path: Path) -> None:
    """A real `tensorboard --logdir DIR` serves the HParams table: a row per trial with its parameters and metrics."""
    import subprocess
    import sys
    import urllib.request

    out = tmp_path / "tb"
    assert hpt_here("results", str(location), "--tensorboard", str(out)).exit_code == 0
    port = closed_port()
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(out), "--host", "127.0.0.1",
                               "--port", str(port), "--load_fast", "false"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    query = json.dumps({"experimentName": "", "startIndex": 0, "sliceSize": 100, "colParams": [],
                        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]})
    groups: list[dict[str, Any]] = []
    give_up = time.monotonic() + 300  # a guard against a hang, not a speed check
    try:
        while len(groups) < 4 and server.poll() is None and time.monotonic() < give_up:  # until it has read all four
            request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups",
                                             data=query.encode(), headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    groups = json.loads(response.read()).get("sessionGroups", [])
            except OSError:  # not listening yet: wait a moment (returns early if it died)
                try:
                    server.wait(0.3)
                except subprocess.TimeoutExpired:
                    pass
    finally:
        server.terminate()
        server.wait(30)
    assert len(groups) == 4
    rows = {(r["config_id"], f"{r['period_start']}_{r['period_end']}"): r for r in _rows(location).values()}
    for group in groups:
        row = rows[(group["hparams"]["config_id"], group["hparams"]["period"])]
        assert group["hparams"]["lr"] == row["param_lr"] and group["hparams"]["status"] == row["status"]
        metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        if row["status"] == "ok":
            assert metrics["val_mse"] == pytest.approx(row["val_mse"], rel=1e-6)


def test_tensorboard_adds_only_new_trials_and_rewrites_a_rerun_trial(location: Path, tmp_path: Path) -> None:
    """A location that grows: the trials written before are left alone; a trial whose row changed is written anew."""
    partial = tmp_path / "results"
    import shutil

    shutil.copytree(location, partial)
    rows = sorted(_rows(location))
    (partial / "rows" / f"{rows[0]}.json").unlink()
    (partial / "results.csv").unlink()
    out = tmp_path / "tb"
    first = hpt_here("results", str(partial), "--tensorboard", str(out))
    assert "tensorboard: 3 trial(s) written" in first.stdout, first.stderr
    before = {p: p.stat().st_mtime_ns for p in out.rglob("events.out.tfevents.*") if "hpt-experiment" not in p.name}
    shutil.copy(location / "rows" / f"{rows[0]}.json", partial / "rows")
    second = hpt_here("results", str(partial), "--tensorboard", str(out))
    assert f"tensorboard: 1 trial(s) written to {out} (3 already there)" in second.stdout, second.stderr
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert len(_tensorboard_runs(out)) == 5  # four trials and the experiment


def test_writing_a_trials_run_again_leaves_the_runs_named_inside_it(tmp_path: Path) -> None:
    """Two trials of one name (another seed of a config, or the same config at another location): the second is
    <name>/<trial_id>, inside the first's folder. Writing the first again replaces its events, not the second's."""
    from hpt.tracking.tensorboard import Logdir

    logdir = Logdir(str(tmp_path / "tb"))
    for trial in ("t1", "t2"):
        logdir.open(trial, "c1/2013-01-01_2013-02-01/full").close()
    first, second = tmp_path / "tb" / "c1/2013-01-01_2013-02-01/full", tmp_path / "tb" / "c1/2013-01-01_2013-02-01/full/t2"
    assert len(list(second.glob("events.out.tfevents.*"))) == 1
    again = Logdir(str(tmp_path / "tb"))  # the next hpt results, with t1's row changed
    again.open("t1", "c1/2013-01-01_2013-02-01/full").close()
    assert len(list(first.glob("events.out.tfevents.*"))) == 1 and len(list(second.glob("events.out.tfevents.*"))) == 1


def test_tensorboard_from_an_s3_location(location: Path, s3_server: Any, tmp_path: Path) -> None:
    bucket = s3_server.create_bucket()
    for path in location.rglob("*"):
        if path.is_file() and not path.name.endswith(".pt"):
            s3_server.put(bucket, f"p/{path.relative_to(location).as_posix()}", path.read_bytes())
    out = tmp_path / "tb"
    done = hpt_cli("results", f"s3://{bucket}/p", "--tensorboard", str(out), env=s3_server.client_env())
    assert done.returncode == 0, done.stderr
    assert "tensorboard: 4 trial(s) written" in done.stdout
    runs = _tensorboard_runs(out)
    assert sum(1 for r in runs.values() if r.get("scalars", {}).get("curve/val_mse")) == 2


@pytest.mark.parametrize("option", ["--tensorboard", "--plot"])
def test_an_output_folder_that_is_a_file_is_one_line_before_anything_is_printed(
        location: Path, tmp_path: Path, option: str) -> None:
    (tmp_path / "f").write_text("x")
    done = hpt_here("results", str(location), "--format", "csv", option, str(tmp_path / "f"))
    assert done.exit_code == 2 and done.stdout == ""  # not the table, then the error
    assert done.stderr.strip().splitlines() == [f"hpt: error: {option} {tmp_path / 'f'}: is a file, not a folder"]
    assert (tmp_path / "f").read_text() == "x"


def test_missing_extras_say_what_to_install(location: Path, tmp_path: Path) -> None:
    """Without the packages (hidden from the import system), one line naming the extra, exit 2, nothing read."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorboard', 'mlflow'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n")
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    for option, extra in (("--tensorboard", "tensorboard"), ("--mlflow", "mlflow")):
        done = hpt_cli("results", str(location), option, str(tmp_path / "x"), env=env, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        # hpt as this suite's environment installed it: pip install -e . in the clone (make test), elsewhere
        assert done.stderr.strip() == f"hpt: error: {option} needs {extra}: pip install -e '{ROOT}[{extra}]'"
        assert done.stdout == ""
    # asked for by the spec's tracking section, not an option: the line names the key
    spec = tmp_path / "tracked.json"
    spec.write_text(json.dumps(tiny_spec(tracking={"mlflow": f"sqlite:///{tmp_path / 'm.db'}"})))
    done = hpt_cli("run", str(spec), "--sink", str(tmp_path / "res"), env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"hpt: error: tracking.mlflow needs mlflow: pip install -e '{ROOT}[mlflow]'"


def test_neither_package_is_imported_unless_asked_for(location: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    script = ("import atexit, runpy, sys\n"
              "atexit.register(lambda: print('LOADED', sorted({m.split('.')[0] for m in sys.modules} "
              "& {'tensorboard', 'mlflow'})))\n"
              "sys.argv = ['hpt', *sys.argv[1:]]\n"
              "runpy.run_module('hpt', run_name='__main__', alter_sys=True)\n")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="plain", training={"epochs": 1}, date_ranges=[["2013-01-01", "2013-01-15"]],
                                         parameters={"lr": [0.01]})))
    for args in (["results", str(location)], ["run", str(spec), "--sink", str(tmp_path / "r"), "-q"]):
        done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "LOADED []"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mlflow_runs(store: str, experiment: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment} in {store}"
    return list(client.search_runs([found.experiment_id], max_results=1000))


def _check_mlflow_trials(store: str, experiment: str, location: Path, run_ids: set[str]) -> None:
    """One MLflow run per trial with the row's params, metrics, curve per epoch and tags, nested under its hpt run."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    runs = _mlflow_runs(store, experiment)
    parents = {r.data.tags["hpt.run_id"]: r for r in runs if r.data.tags.get("hpt.kind") == "run"}
    trials = {r.data.tags["hpt.trial_id"]: r for r in runs if "hpt.trial_id" in r.data.tags}
    rows = _rows(location)
    assert set(parents) == run_ids and all(p.info.status == "FINISHED" for p in parents.values())
    assert len(trials) == len(runs) - len(parents) == len(rows) == 4
    for tid, row in rows.items():
        run = trials[tid]
        tags = run.data.tags
        period = f"{row['period_start']}_{row['period_end']}"
        assert run.info.run_name == f"{row['config_id']}/{period}/full"
        assert tags["mlflow.parentRunId"] == parents[row["run_id"]].info.run_id
        assert (tags["hpt.config_id"], tags["hpt.period"], tags["hpt.fidelity"], tags["hpt.status"]) == \
            (row["config_id"], period, "full", row["status"])
        assert tags["hpt.results"] == str(location.resolve())
        assert run.data.params == {"lr": str(row["param_lr"]), "hidden_size": str(row["param_hidden_size"])}
        if row["status"] == "ok":
            assert run.info.status == "FINISHED"
            assert tags["hpt.model_uri"] == row["model_uri"] and Path(row["model_uri"]).is_file()
            assert run.data.metrics["val_mse"] == pytest.approx(row["val_mse"])
            history = client.get_metric_history(run.info.run_id, "curve/val_mse")
            assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
                (int(c["epoch"]), pytest.approx(float(c["val_mse"]))) for c in _curve(location, tid)]
        else:
            assert run.info.status == "FAILED" and "hpt.model_uri" not in tags
            assert "training loss reached nan" in tags["hpt.error"]


def test_mlflow_logs_a_finished_location_once(location: Path, tmp_path: Path, sqlite_store: str) -> None:
    store = sqlite_store
    done = cli_here("results", str(location), "--mlflow", store)
    assert done.returncode == 0, done.stderr
    assert f"mlflow: 4 trials logged to {store} (experiment tracked)" in done.stdout
    _check_mlflow_trials(store, "tracked", location, {r["run_id"] for r in _rows(location).values()})
    again = cli_here("results", str(location), "--mlflow", store)
    assert again.returncode == 0, again.stderr
    assert f"mlflow: 0 trials logged to {store} (experiment tracked); 4 already there" in again.stdout
    assert len(_mlflow_runs(store, "tracked")) == 5


def test_a_file_store_is_logged_to_and_a_uri_mlflow_cannot_track_to_is_one_line(
        location: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow keeps file stores (./mlruns) in maintenance mode and refuses them unless told it may: hpt tells it, as
    the docs promise file stores. A URI it has no store for is said once, exit 2, not as every trial's failure."""
    store = (tmp_path / "mlruns").as_uri()
    done = cli_here("results", str(location), "--mlflow", store)
    assert done.returncode == 0, done.stderr
    assert f"mlflow: 4 trials logged to {store} (experiment tracked)" in done.stdout
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # this process reads it back through MLflow too
    _check_mlflow_trials(store, "tracked", location, {r["run_id"] for r in _rows(location).values()})
    bad = cli_here("results", str(location), "--mlflow", "notascheme:/x", "--format", "csv")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("hpt: error: --mlflow notascheme:/x: MLflow cannot track there: ")
    assert len(bad.stderr.splitlines()) == 1 and "again" not in bad.stderr


def test_logging_to_a_new_sqlite_store_says_one_line(location: Path, tmp_path: Path) -> None:
    """MLflow's own INFO lines (it makes a new store's tables) stay out of hpt's output: the package is imported
    after hpt's settings for it, `hpt results --mlflow` too."""
    store = f"sqlite:///{tmp_path / 'new.db'}"
    done = hpt_cli("results", str(location), "--mlflow", store, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"mlflow: 4 trials logged to {store} (experiment tracked)"]


def test_mlflow_and_tensorboard_during_a_run_from_the_spec_tracking_section(tmp_path: Path, sqlite_store: str) -> None:
    """tracking.mlflow true: $MLFLOW_TRACKING_URI; tracking.experiment names the experiment; tracking.tensorboard
    gets each trial as it runs. Afterwards, `hpt results --mlflow/--tensorboard` finds nothing to add."""
    store = sqlite_store
    out = tmp_path / "tb"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="live", parameters={"lr": list(CONFIGS), "hidden_size": [8]},
                                         training={"epochs": 2}, tracking={"mlflow": True, "experiment": "hpt-live",
                                                                           "tensorboard": str(out)})))
    sink = tmp_path / "results"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q", env={"MLFLOW_TRACKING_URI": store})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-2:] == [
        f"mlflow: 4 trials logged to {store} (experiment hpt-live)",
        f"tensorboard: 4 trial(s) of this run written to {out}; see them with: tensorboard --logdir {out}"]
    _check_mlflow_trials(store, "hpt-live", sink, {r["run_id"] for r in _rows(sink).values()})
    runs = _tensorboard_runs(out)
    assert len(runs) == 5 and sorted(runs.pop(".")["experiment"]["hparams"]["lr"]) == sorted(CONFIGS)
    assert {r["status"] for r in runs.values()} == {"STATUS_SUCCESS", "STATUS_FAILURE"}
    after = cli_here("results", str(sink), "--mlflow", store, "--tensorboard", str(out))  # its spec names the experiment
    assert f"mlflow: 0 trials logged to {store} (experiment hpt-live); 4 already there" in after.stdout, after.stderr
    assert f"tensorboard: nothing new; 4 trial(s) already in {out}" in after.stdout


def test_a_trial_that_ran_again_or_stays_stopped_is_one_mlflow_run_saying_what_its_row_says(
        tmp_path: Path, sqlite_store: str) -> None:
    _one_run_per_trial_as_its_row_says(sqlite_store, "waits", tmp_path)


def _one_run_per_trial_as_its_row_says(store: str, name: str, tmp_path: Path) -> None:
    """asha with one worker: the first trials of a period wait at the first rung for others, then go on (a second
    row, with a longer curve) or stay stopped (their row written again, only its reason changes). The experiment
    keeps one run per trial, its row's: status, reason and row tag; its curve the one the location keeps; no run
    says "it waits". TensorBoard has one run per trial too, and exporting afterwards finds nothing to add."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    out, sink = tmp_path / "tb", tmp_path / "results"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(
        name=name, search={"strategy": "random", "seed": 1, "max_trials": 6,
                           "early_stopping": {"kind": "asha", "reduction_factor": 3}},
        parameters={"lr": {"loguniform": [1e-4, 1e-1]}, "hidden_size": [8, 16]}, training={"epochs": 6})))
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "--mlflow", store, "--tensorboard", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    log = done.stdout + done.stderr
    assert "waited at epoch 1 and stays stopped" in log and "waited at epoch 1 and goes on from there" in log, log
    rows = _rows(sink)
    assert done.stdout.splitlines()[-2:] == [
        f"mlflow: {len(rows)} trials logged to {store} (experiment {name})",
        f"tensorboard: {len(rows)} trial(s) of this run written to {out}; see them with: tensorboard --logdir {out}"]
    client = MlflowClient(tracking_uri=store)
    runs = [r for r in _mlflow_runs(store, name) if "hpt.trial_id" in r.data.tags]
    trials = {r.data.tags["hpt.trial_id"]: r for r in runs}
    assert len(runs) == len(trials) == len(rows)
    for tid, row in rows.items():
        tags = trials[tid].data.tags
        assert (tags["hpt.status"], tags.get("hpt.error", ""), tags["hpt.row"]) == \
            (row["status"], row["error"], f"{row['run_id']}|{row['status']}|{row['finished_at']}")
        assert "it waits" not in tags.get("hpt.error", "")
        history = client.get_metric_history(trials[tid].info.run_id, "curve/val_mse")
        assert sorted(m.step for m in history) == [int(c["epoch"]) for c in _curve(sink, tid)]
    again = [tid for tid, r in trials.items() if r.data.tags["hpt.status"] == "ok" and
             len(client.get_metric_history(r.info.run_id, "curve/val_mse")) == 6]
    deleted = client.search_runs([runs[0].info.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert {r.data.tags["hpt.trial_id"] for r in deleted} <= set(again) and deleted  # the first run of a trial that went on
    assert len(_tensorboard_runs(out)) == len(rows) + 1  # and the experiment's own
    after = cli_here("results", str(sink), "--mlflow", store, "--tensorboard", str(out))
    assert f"mlflow: 0 trials logged to {store} (experiment {name}); {len(rows)} already there" in after.stdout, \
        after.stderr
    assert f"tensorboard: nothing new; {len(rows)} trial(s) already in {out}" in after.stdout


def test_a_row_written_again_without_a_curve_keeps_the_trials_tensorboard_curve(location: Path, tmp_path: Path) -> None:
    """A trial's row written again without training: the same status only marks the trial (TensorBoard does not show
    the reason); another status is written at the end of the run, with the curve the location keeps."""
    import shutil

    from hpt.tracking import trial_view
    from hpt.tracking.tensorboard import Logdir, TensorBoardLog

    sink, out = tmp_path / "results", tmp_path / "tb"
    shutil.copytree(location, sink)
    rows = sorted(_rows(sink).items())
    ok = next(t for t, r in rows if r["status"] == "ok")
    tid, row = next((t, r) for t, r in rows if r["status"] == "diverged")
    curve = (sink / "curves" / f"{ok}.csv").read_text()
    (sink / "curves" / f"{tid}.csv").write_text(curve)  # the trial trained before its row said diverged
    name = f"{row['config_id']}/{row['period_start']}_{row['period_end']}/full"
    log = TensorBoardLog(str(out), str(sink))
    cut = {**row, "status": "interrupted", "error": "interrupted", "finished_at": "2026-12-07T00:00:00+00:00"}
    log.add(cut, curve)
    said_again = {**cut, "error": "said again", "finished_at": "2026-12-07T00:00:01+00:00"}
    log.add(said_again)
    assert not Logdir(str(out)).lacks(trial_view(said_again))
    assert _tensorboard_runs(out)[name]["status"] == "STATUS_UNKNOWN"
    log.add(row)  # the location's row: diverged, its curve the one above
    assert log.close() == [f"tensorboard: 1 trial(s) of this run and 3 of earlier runs written to {out}; "
                           f"see them with: tensorboard --logdir {out}"]
    run = _tensorboard_runs(out)[name]
    assert run["status"] == "STATUS_FAILURE"
    assert [e for e, _ in run["scalars"]["curve/val_mse"]] == [int(c["epoch"]) for c in _curve(sink, ok)]


def test_exporting_deletes_a_trials_older_mlflow_runs(location: Path, sqlite_store: str) -> None:
    """An experiment with two runs of a trial (an older row logged before the newer one, as hpt once did): exporting
    the location keeps the run of the trial's row and deletes the other."""
    from mlflow.tracking import MlflowClient

    store = sqlite_store
    assert cli_here("results", str(location), "--mlflow", store).returncode == 0
    runs = _mlflow_runs(store, "tracked")
    first = next(r for r in runs if "hpt.trial_id" in r.data.tags)
    client = MlflowClient(tracking_uri=store)
    older = client.create_run(first.info.experiment_id, start_time=first.info.start_time - 1000,
                              tags={**first.data.tags, "hpt.row": "an older row"}).info.run_id
    again = cli_here("results", str(location), "--mlflow", store)
    assert f"mlflow: 0 trials logged to {store} (experiment tracked); 4 already there" in again.stdout, again.stderr
    assert client.get_run(older).info.lifecycle_stage == "deleted"
    assert {r.info.run_id for r in _mlflow_runs(store, "tracked")} == {r.info.run_id for r in runs}


def test_mlflow_server_that_does_not_answer_costs_one_line(tmp_path: Path) -> None:
    port = closed_port()
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="away", training={"epochs": 1})))
    sink = tmp_path / "results"
    uri = f"http://127.0.0.1:{port}"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "--mlflow", uri)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = _rows(sink)
    assert len(rows) == 4 and {r["status"] for r in rows.values()} == {"ok"}
    assert all((sink / "models" / f"{tid}.pt").is_file() for tid in rows)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "mlflow:" in line.lower() or uri in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"mlflow: 4 of 4 trials could not be logged to {uri} (experiment away): ")
    assert lines[0].endswith(f"log them with: hpt results {sink.resolve()} --mlflow {uri}")
    assert done.stdout.splitlines()[-1] == lines[0]


def test_logging_a_location_to_a_server_that_does_not_answer_fails_in_one_line(location: Path, tmp_path: Path) -> None:
    """Logging is all that `hpt results --mlflow` was asked for: exit 1 and one line; TensorBoard's part is done."""
    uri = f"http://127.0.0.1:{closed_port()}"
    out = tmp_path / "tb"
    done = hpt_cli("results", str(location), "--tensorboard", str(out), "--mlflow", uri, "--format", "json")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"tensorboard: 4 trial(s) written to {out}; see them with: tensorboard --logdir {out}",
        f"hpt: error: mlflow: 4 of 4 trials could not be logged to {uri} (experiment tracked): "
        f"MlflowException: cannot connect to 127.0.0.1:{uri.rsplit(':', 1)[1]}; run the same command again to log them"]


@pytest.mark.parametrize(("tracking", "env", "message"), [
    ({"mlflow": True}, {"MLFLOW_TRACKING_URI": ""},
     "hpt: error: tracking.mlflow: true logs to $MLFLOW_TRACKING_URI, which is not set; "
     'set it or give the URI ("mlflow": "http://host:5000")'),
    ({"mlflow": 5}, {}, 'tracking.mlflow: expected a tracking URI such as "http://host:5000", or true for '
                        "$MLFLOW_TRACKING_URI, got 5"),
    ({"mlfow": "x"}, {}, 'tracking.mlfow: unknown key (did you mean "mlflow"?); valid: mlflow, experiment, tensorboard'),
])
def test_tracking_section_mistakes_are_one_line(tmp_path: Path, tracking: dict[str, Any], env: dict[str, str],
                                                message: str) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(tracking=tracking)))
    done = hpt_cli("run", str(spec), "--sink", str(tmp_path / "results"), env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "results" / "rows").exists()


def test_mlflow_logs_an_interrupted_run_and_its_interrupted_trial(tmp_path: Path, sqlite_store: str) -> None:
    """Ctrl-C: the trial cut short is logged KILLED with hpt.status interrupted, and so is the run's parent."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT, trial_row_files

    store = sqlite_store
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="cut", parameters={"lr": [0.001, 0.002, 0.003]},
                                         training={"epochs": 200, "patience": 0})))
    sink = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--grace", "0",
                             "--workers", "1", "-q", "--mlflow", store],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while trial_row_files(sink) < 1:  # a first trial is done; the next one is under way
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    rows = _rows(sink)
    assert sorted(r["status"] for r in rows.values()).count("interrupted") == 1
    assert stdout.splitlines()[-1] == f"mlflow: {len(rows)} trials logged to {store} (experiment cut)"
    runs = _mlflow_runs(store, "cut")
    trials = {r.data.tags["hpt.trial_id"]: r for r in runs if "hpt.trial_id" in r.data.tags}
    assert set(trials) == set(rows)
    for tid, row in rows.items():
        assert trials[tid].data.tags["hpt.status"] == row["status"]
        assert trials[tid].info.status == ("FINISHED" if row["status"] == "ok" else "KILLED")
    parent, = (r for r in runs if r.data.tags.get("hpt.kind") == "run")
    assert parent.info.status == "KILLED"


def test_tensorboard_during_a_run_has_each_epoch_before_the_trial_ends(tmp_path: Path) -> None:
    """hpt run --tensorboard: a trial's first epoch is in its TensorBoard run while the trial is held before its
    second (tests/gated.py); when it ends, its run has each epoch once, its HParams session and its status."""
    import subprocess
    import sys

    from tests import gated
    from tests.conftest import ROOT, trial_row_files

    gate, out, sink = tmp_path / "gate", tmp_path / "tb", tmp_path / "results"
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="epochs", architecture=gated.ARCHITECTURE,
                                         parameters={"lr": [0.01], "gate": [str(gate)]},
                                         date_ranges=[["2013-01-01", "2013-01-15"]],
                                         training={"epochs": 3, "patience": 0})))
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--workers", "1",
                             "-q", "--tensorboard", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        gated.wait_for(lambda: gated.waiting(gate) == {0: 2}, "the trial did not reach its second epoch", alive=proc)

        def first_epoch() -> list[tuple[int, float]]:
            runs = _tensorboard_runs(out) if out.is_dir() else {}
            return [point for run in runs.values() for point in run["scalars"].get("curve/val_mse", [])]

        (step, _), = gated.wait_for(first_epoch, "epoch 1 was not written while the trial ran", timeout=120, alive=proc)
        assert step == 1
        assert gated.waiting(gate) == {0: 2} and trial_row_files(sink) == 0  # still held: it has not ended
    finally:
        gated.let(gate)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + stderr
    assert stdout.splitlines()[-1] == \
        f"tensorboard: 1 trial(s) of this run written to {out}; see them with: tensorboard --logdir {out}"
    row, = _rows(sink).values()
    runs = _tensorboard_runs(out)
    assert set(runs) == {".", f"{row['config_id']}/2013-01-01_2013-01-15/full"}
    run = runs[f"{row['config_id']}/2013-01-01_2013-01-15/full"]
    assert run["scalars"]["curve/val_mse"] == [
        (int(c["epoch"]), pytest.approx(float(c["val_mse"]), rel=1e-6)) for c in _curve(sink, row["trial_id"])]
    assert [e for e, _ in run["scalars"]["curve/val_mse"]] == [1, 2, 3]
    assert run["scalars"]["val_mse"] == [(3, pytest.approx(row["val_mse"], rel=1e-6))]
    assert run["status"] == "STATUS_SUCCESS" and run["hparams"]["lr"] == 0.01


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, empty_mlflow_db: Path) -> Any:
    """A real `mlflow server` on 127.0.0.1 (a SQLite store in a temporary folder), in its own process group:
    started once for the module, stopped by its pid (killpg). Skipped, saying why, where the server cannot start
    for a missing module (its extra packages, aiohttp: pip install -e '.[test]' -c constraints.txt)."""
    import importlib.util
    import re
    import shutil
    import sys

    from tests.cloud_servers import LocalServer, free_port

    missing = [m for m in ("mlflow.server", "aiohttp") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"mlflow's tracking server needs {', '.join(missing)}: pip install -e '.[test]' -c constraints.txt")
    folder = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(empty_mlflow_db, folder / "mlflow.db")
    port = free_port()
    server = LocalServer("mlflow", [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                                    "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                                    "--default-artifact-root", str(folder / "artifacts"), "--workers", "1"],
                         port, "/health", {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})  # no job queue (huey)
    try:
        server.start(timeout=300)  # a guard against a hang
    except RuntimeError as e:
        module = re.search(r"No module named '([\w.]+)'", str(e))
        if module:
            pytest.skip(f"mlflow server cannot start here: no module {module[1]} "
                        "(pip install -e '.[test]' -c constraints.txt)")
        raise
    yield server
    server.stop()


def test_a_real_mlflow_server_gets_a_run_per_trial(mlflow_server: Any, tmp_path: Path) -> None:
    if mlflow_server.proc.poll() is not None:  # the test that stops it ran first
        mlflow_server.start(timeout=300)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="served", parameters={"lr": list(CONFIGS), "hidden_size": [8]},
                                         training={"epochs": 2})))
    sink = tmp_path / "results"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q", "--mlflow", mlflow_server.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if mlflow_server.url in line] == [
        f"mlflow: 4 trials logged to {mlflow_server.url} (experiment served)"]  # and it is the last line
    assert done.stdout.splitlines()[-1].startswith("mlflow: ")
    _check_mlflow_trials(mlflow_server.url, "served", sink, {r["run_id"] for r in _rows(sink).values()})


def test_a_real_mlflow_server_holds_one_run_per_trial_that_ran_again(mlflow_server: Any, tmp_path: Path) -> None:
    """What the server is asked for a trial's later row (delete a run, get one, change its tags) over its REST API."""
    if mlflow_server.proc.poll() is not None:  # the test that stops it ran first
        mlflow_server.start(timeout=300)
    _one_run_per_trial_as_its_row_says(mlflow_server.url, "waits-served", tmp_path)


def test_a_real_mlflow_server_stopped_mid_run_costs_one_line(mlflow_server: Any, tmp_path: Path) -> None:
    """The server stops after the first trial was logged and before the second ends: the run finishes as it
    would have (exit 0, every row and model stored) and says once, at its end, what was not logged."""
    import subprocess
    import sys

    from tests import gated
    from tests.conftest import ROOT

    if mlflow_server.proc.poll() is not None:
        mlflow_server.start(timeout=300)
    gate, sink, uri = tmp_path / "gate", tmp_path / "results", mlflow_server.url
    gated.let(gate, trial=0)  # the first trial runs to its end; the second waits before its second epoch
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(tiny_spec(name="stopped", architecture=gated.ARCHITECTURE,
                                         parameters={"lr": [0.001, 0.002], "gate": [str(gate)]},
                                         date_ranges=[["2013-01-01", "2013-01-15"]],
                                         training={"epochs": 2, "patience": 0})))
    proc = subprocess.Popen([sys.executable, "-m", "hpt", "run", str(spec), "--sink", str(sink), "--workers", "1",
                             "--mlflow", uri], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        gated.wait_for(lambda: gated.waiting(gate) == {1: 2}, "the second trial did not start", alive=proc)
        gated.wait_for(lambda: [r for r in _mlflow_runs_if_any(uri, "stopped")
                                if "hpt.trial_id" in r.data.tags and r.info.status == "FINISHED"],
                       "the first trial was not logged", alive=proc)  # its last call (set_terminated) is done
        mlflow_server.stop()
    finally:
        gated.let(gate)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + stderr
    rows = _rows(sink)
    assert len(rows) == 2 and {r["status"] for r in rows.values()} == {"ok"}
    assert all((sink / "models" / f"{tid}.pt").is_file() for tid in rows)
    lines = [line for line in (stdout + stderr).splitlines() if "mlflow:" in line.lower() or uri in line]
    assert lines == [stdout.splitlines()[-1]], lines
    assert lines[0].startswith(f"mlflow: 1 of 2 trials could not be logged to {uri} (experiment stopped): ")
    assert lines[0].endswith(f"; log them with: hpt results {sink.resolve()} --mlflow {uri}")


def _mlflow_runs_if_any(store: str, experiment: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    found = client.get_experiment_by_name(experiment)
    return list(client.search_runs([found.experiment_id])) if found else []


def test_hpt_final_logs_its_report_and_model_to_mlflow(tuned_location: Path, tmp_path: Path, sqlite_store: str) -> None:
    """hpt final --mlflow: one MLflow run with the tuned parameters, the hold-out metrics, tags, and report.json and
    model.pt as artifacts (byte for byte those at the location); logging the same final again adds nothing."""
    from mlflow.tracking import MlflowClient

    from hpt.tracking.mlflow import log_final

    store = sqlite_store
    done = cli_here("final", str(tuned_location), "--threads", "1", "--mlflow", store, "--report",
                   str(tmp_path / "report.json"), cwd=tmp_path)  # MLflow keeps a sqlite store's artifacts in ./mlruns
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    final_id, model = report["final_id"], report["models"][0]
    assert done.stdout.splitlines()[-1].startswith(
        f"mlflow: final {final_id} logged to {store} (experiment tiny-final): report.json and model.pt (run ")
    run, = _mlflow_runs(store, "tiny-final")
    tags = run.data.tags
    assert (tags["hpt.kind"], tags["hpt.final_id"], tags["hpt.config_id"], tags["hpt.model_uri"]) == \
        ("final", final_id, report["config_id"], model["model_uri"])
    assert run.info.status == "FINISHED"
    assert run.data.params == {**{k: json.dumps(v) for k, v in report["params"].items()},
                               "epochs": str(report["epochs"]), "train_start": report["train"]["start"],
                               "train_end": report["train"]["end"], "holdout_start": report["holdout"]["start"],
                               "holdout_end": report["holdout"]["end"]}
    assert run.data.metrics["holdout_mse"] == pytest.approx(model["metrics"]["mse"])
    assert run.data.metrics["naive-last_holdout_mse"] == pytest.approx(report["baselines"]["naive-last"]["metrics"]["mse"])
    client = MlflowClient(tracking_uri=store)
    assert sorted(a.path for a in client.list_artifacts(run.info.run_id)) == ["model.pt", "report.json"]
    got = Path(client.download_artifacts(run.info.run_id, "model.pt", str(tmp_path / "got")))
    assert got.read_bytes() == (tuned_location / "final" / final_id / "model.pt").read_bytes()
    logged = json.loads(Path(client.download_artifacts(run.info.run_id, "report.json", str(tmp_path / "got"))).read_text())
    assert logged["final_id"] == final_id and logged["models"][0]["metrics"] == model["metrics"]
    again = log_final(store, "tiny-final", report, {"model.pt": b""})
    assert again == f"mlflow: final {final_id} is already in {store} (experiment tiny-final)"
    assert len(_mlflow_runs(store, "tiny-final")) == 1


def test_hpt_final_with_a_tracking_server_away_is_one_line_and_hpt_results_logs_it_later(
        tuned_location: Path, tmp_path: Path, sqlite_store: str) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    done = cli_here("final", str(tuned_location), "--threads", "1", "--mlflow", uri, "--report", str(tmp_path / "r.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    final_id = json.loads((tmp_path / "r.json").read_text())["final_id"]
    assert (tuned_location / "final" / final_id / "model.pt").is_file()
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "mlflow:" in line.lower() or uri in line]
    assert lines == [f"mlflow: final {final_id} could not be logged to {uri} (experiment tiny-final): MlflowException: "
                     f"cannot connect to 127.0.0.1:{uri.rsplit(':', 1)[1]}; its model and report stay at "
                     f"{tuned_location}; log it later with: hpt results {tuned_location} --mlflow {uri}"]
    # the server back (here: another store), the command the line gives logs the final with the location's trials
    later = cli_here("results", str(tuned_location), "--mlflow", sqlite_store, cwd=tmp_path)
    assert later.returncode == 0, later.stdout + later.stderr
    assert f"mlflow: final {final_id} logged to {sqlite_store} (experiment tiny-final): report.json and model.pt" \
        in later.stdout, later.stdout
    finals = {r.data.tags.get("hpt.final_id"): r for r in _mlflow_runs(sqlite_store, "tiny-final")}
    assert finals[final_id].data.tags["hpt.kind"] == "final" and finals[final_id].info.status == "FINISHED"
    again = cli_here("results", str(tuned_location), "--mlflow", sqlite_store, cwd=tmp_path)
    assert again.returncode == 0 and f"final {final_id}" not in again.stdout  # there already: not said again
    assert len([r for r in _mlflow_runs(sqlite_store, "tiny-final") if r.data.tags.get("hpt.final_id") == final_id]) == 1


def test_hpt_final_logs_where_the_recorded_specs_tracking_section_says(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from hpt.errors import InputError
    from hpt.tracking.mlflow import final_target

    (tmp_path / "runs").mkdir()
    record = {"spec_name": "lstm", "spec": {"name": "lstm", "tracking": {"mlflow": "sqlite:///x.db", "experiment": "e"}}}
    (tmp_path / "runs" / "20260101T000000Z-abcd.json").write_text(json.dumps(record))
    assert final_target(None, str(tmp_path), None) == ("sqlite:///x.db", "e")
    assert final_target("http://h:5000", str(tmp_path), None) == ("http://h:5000", "e")
    record["spec"] = {"name": "lstm", "tracking": {"mlflow": True}}
    (tmp_path / "runs" / "20260101T000000Z-abcd.json").write_text(json.dumps(record))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(InputError, match=r"tracking.mlflow: true logs to \$MLFLOW_TRACKING_URI, which is not set"):
        final_target(None, str(tmp_path), None)
    assert final_target(None, str(tmp_path / "elsewhere"), None) is None  # nothing recorded: nowhere
