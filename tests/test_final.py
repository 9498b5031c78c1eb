"""`hpt final` end to end on the bundled data: the best config retrained on the newest month
before the hold-out, scored on the hold-out beside both naive baselines, and written at the
location (model, report, index) without touching what was there."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import Result

from hpt.data import read_data
from hpt.model_io import load_model
from hpt.results import load_results, summarise
from tests.conftest import ROOT, hpt_here, tiny_spec, trial_rows

DEMO = ROOT / "hpt" / "demo" / "electricity_hourly.csv"


def _index(location: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((location / "final" / "index.csv").read_text())))


def _final_ids(location: Path) -> set[str]:
    folder = location / "final"
    return {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()


hpt = hpt_here


def _final(location: Path | str, *args: str, tmp: Path, env: dict[str, str] | None = None) -> tuple[Result, dict[str, Any]]:
    """Run `hpt final` as a user would; the finished run and the report it wrote (--report)."""
    report = tmp / "report.json"
    done = hpt("final", str(location), "--threads", "1", "--report", str(report), *args, env=env)
    assert done.exit_code == 0, done.stdout + done.stderr
    return done, json.loads(report.read_text())


def _error_line(done: Result) -> str:
    lines = done.stderr.splitlines()
    assert done.exit_code == 2, done.stdout + done.stderr
    assert len(lines) == 1 and lines[0].startswith("hpt: error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert done.exception is None or isinstance(done.exception, SystemExit)
    return str(lines[0])


@pytest.fixture(scope="module")
def first_final(tuned_location: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, dict[str, Any], bytes]:
    """`hpt final` with every default; the results.csv from before it ran."""
    before = (tuned_location / "results.csv").read_bytes()
    done, report = _final(tuned_location, tmp=tmp_path_factory.mktemp("first"))
    return done, report, before


def test_final_trains_the_best_config_on_the_newest_month_and_writes_it(tuned_location: Path, first_final: Any) -> None:
    done, report, before = first_final
    rows = load_results(str(tuned_location))
    best = summarise(rows, "val_mse").best
    assert best is not None
    fid = report["final_id"]
    # the config `hpt best` names, trained on the month before the hold-out for the median best_epoch of its rows
    assert report["config_id"] == best.config_id
    epochs = rows.loc[rows["config_id"] == best.config_id, "best_epoch"].astype(int)
    assert report["epochs"] == max(1, int(np.floor(np.median(epochs) + 0.5)))
    assert (report["train"]["start"], report["train"]["end"]) == ("2014-11-01", "2014-12-01")
    assert (report["holdout"]["start"], report["holdout"]["end"]) == ("2014-12-01", "2015-01-01")
    assert report["holdout"]["windows"] == 31 * 24  # horizon 1: every hour of December is forecast once
    # what the user reads
    out = done.stdout
    assert out.startswith(f"final {fid}: config {best.config_id} (mlp)")
    assert "hold-out: 2014-12-01..2015-01-01 (date_ranges.auto.holdout: 1 month" in out
    assert "trained:  2014-11-01..2014-12-01" in out and f"for {report['epochs']} epoch" in out
    for name in ("model", "naive-last", "naive-seasonal (24)"):
        assert any(line.strip().startswith(name) for line in out.splitlines()), out
    assert "the better baseline" in out and f"written:  {tuned_location}/final/{fid}/model.pt" in out
    assert len(done.stderr.splitlines()) >= 4  # a line per stage
    assert any(line.startswith("hpt: trained from scratch in ") for line in done.stderr.splitlines()), done.stderr
    # the files at the location; what was there is untouched
    assert (tuned_location / "results.csv").read_bytes() == before
    folder = tuned_location / "final" / fid
    assert sorted(p.name for p in folder.iterdir()) == ["model.pt", "report.json"]
    assert json.loads((folder / "report.json").read_text())["final_id"] == fid
    row = next(r for r in _index(tuned_location) if r["final_id"] == fid)
    assert row["mode"] == "scratch" and row["config_id"] == best.config_id
    assert float(row["mse"]) == pytest.approx(report["models"][0]["metrics"]["mse"])
    assert row["model_uri"] == f"{tuned_location}/final/{fid}/model.pt"


def test_the_holdout_metrics_and_baselines_are_right(tuned_location: Path, first_final: Any) -> None:
    """Recomputed here by hand: the model file's forecasts, persistence and seasonal naive on December."""
    _, report, _ = first_final
    y = read_data(str(DEMO), "ts", ("y",)).frame["y"]
    held = y["2014-12-01":]
    scale = float(y["2014-11-01":"2014-11-30 23:00"].std(ddof=0))  # the train part's scale
    expected = {
        "naive-last": held.to_numpy() - y.shift(1)["2014-12-01":].to_numpy(),
        "naive-seasonal": held.to_numpy() - y.shift(24)["2014-12-01":].to_numpy(),
    }
    for name, err in expected.items():
        b = report["baselines"][name]
        assert b["metrics"]["mse"] == pytest.approx(np.mean(err ** 2))
        assert b["metrics"]["mae"] == pytest.approx(np.mean(np.abs(err)))
        assert b["standardised"]["mse"] == pytest.approx(np.mean(err ** 2) / scale ** 2)
        assert b["standardised"]["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)) / scale)
    assert report["baselines"]["naive-seasonal"]["season"] == 24
    model = load_model(str(tuned_location / "final" / report["final_id"] / "model.pt"))
    assert model.info["config_id"] == report["config_id"] and model.time_column == "ts"
    values = y.to_numpy()
    start = y.index.get_loc(pd.Timestamp("2014-12-01"))
    windows = np.stack([values[i - 24:i, None] for i in range(start, len(values))])
    err = model.predict_windows(windows)[:, 0] - held.to_numpy()
    m = report["models"][0]
    assert m["metrics"]["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-4)
    assert m["standardised"]["mae"] == pytest.approx(np.mean(np.abs(err)) / scale, rel=1e-4)
    best = min(("naive-last", "naive-seasonal"), key=lambda n: report["baselines"][n]["metrics"]["mse"])
    assert report["best_baseline"] == best and report["verdict"]["metric"] == "mse"  # the objective: val_mse
    assert m["vs_best_baseline"] == pytest.approx(m["metrics"]["mse"] / report["baselines"][best]["metrics"]["mse"] - 1)


def test_a_tuning_period_overlapping_the_holdout_is_refused(tuned_location: Path) -> None:
    ids = _final_ids(tuned_location)
    periods = sorted(set(pd.read_csv(tuned_location / "results.csv")["period_start"]))
    inside = (pd.Timestamp(periods[-1]) + pd.Timedelta(days=10)).date().isoformat()
    line = _error_line(hpt("final", str(tuned_location), "--holdout-start", inside))
    assert f"tuning period {periods[-1]}.." in line and f"overlaps the hold-out {inside}..2015-01-01" in line
    assert _final_ids(tuned_location) == ids  # nothing written


def test_no_holdout_is_refused_with_how_to_give_one(tuned_location: Path, tmp_path: Path) -> None:
    spec = tmp_path / "no-holdout.json"
    spec.write_text(json.dumps(tiny_spec()))  # explicit periods: nothing kept back
    line = _error_line(hpt("final", str(tuned_location), "--spec", str(spec)))
    assert "no hold-out" in line and "--holdout 1M" in line and "--holdout-start" in line
    assert "--compare needs --from-model" in _error_line(hpt("final", str(tuned_location), "--compare"))
    assert "--holdout: expected a length" in _error_line(hpt("final", str(tuned_location), "--holdout", "1X"))


def test_config_option_months_and_holdout_length(tuned_location: Path, first_final: Any, tmp_path: Path) -> None:
    _, first, _ = first_final
    rows = trial_rows(load_results(str(tuned_location)))
    other = next(c for c in sorted(set(rows["config_id"])) if c != first["config_id"])
    done, report = _final(tuned_location, "--config", other[:6], "--months", "2", "--holdout", "1M", tmp=tmp_path)
    assert report["config_id"] == other and report["chosen"].startswith("--config (mean val_mse=")
    assert (report["train"]["start"], report["train"]["end"]) == ("2014-10-01", "2014-12-01")
    assert report["holdout"]["how"] == "--holdout 1M"
    ids = {r["final_id"] for r in _index(tuned_location)}
    assert {first["final_id"], report["final_id"]} <= ids  # merged: the first final's row is kept
    line = _error_line(hpt("final", str(tuned_location), "--config", "nosuchconfig"))
    assert "--config nosuchconfig: no config with ok trials" in line and other in line
    # more months than the data has: all of it before the hold-out, and said as such, not as the months asked for
    (tmp_path / "long").mkdir()
    done, report = _final(tuned_location, "--config", other[:6], "--months", "100", "--holdout", "1M",
                          tmp=tmp_path / "long")
    assert (report["train"]["start"], report["train"]["end"]) == ("2012-01-01", "2014-12-01")
    assert report["train"]["length"] == "35 months, all the data before the hold-out"
    assert "the training window starts there, shorter than 100 months" in done.stderr
    assert "(35 months, all the data before the hold-out" in done.stdout and "100 months" not in done.stdout


def test_from_model_fine_tunes_and_compares_with_training_from_scratch(tuned_location: Path, first_final: Any,
                                                                       tmp_path: Path) -> None:
    _, first, _ = first_final
    start = tuned_location / "final" / first["final_id"] / "model.pt"
    done, report = _final(tuned_location, "--from-model", str(start), "--compare", tmp=tmp_path)
    assert [m["mode"] for m in report["models"]] == ["fine-tune", "scratch"]
    assert report["config_id"] == first["config_id"] and report["from_model"] == str(start)
    folder = tuned_location / "final" / report["final_id"]
    assert sorted(p.name for p in folder.iterdir()) == ["model.pt", "report.json", "scratch.pt"]
    assert load_model(str(folder / "model.pt")).info["mode"] == "fine-tune"
    assert load_model(str(folder / "scratch.pt")).info["mode"] == "scratch"
    # trained from scratch the same way as the first final: the same seed and data give the same model
    assert report["models"][1]["metrics"]["mse"] == pytest.approx(first["models"][0]["metrics"]["mse"], rel=1e-6)
    assert "model (fine-tuned)" in done.stdout and "model (from scratch)" in done.stdout
    wrote = next(line for line in done.stderr.splitlines() if line.startswith("hpt: wrote "))
    assert f"{folder / 'model.pt'}, {folder / 'scratch.pt'}, {folder / 'report.json'}" in wrote, wrote  # as stdout's
    modes = {r["mode"] for r in _index(tuned_location) if r["final_id"] == report["final_id"]}
    assert modes == {"fine-tune", "scratch"}


def test_final_on_a_local_s3_server(tuned_location: Path, s3_server: Any, tmp_path: Path) -> None:
    """Reads the rows and the recorded spec from the bucket, writes the model, report and index there."""
    bucket = s3_server.create_bucket()
    for path in tuned_location.rglob("*"):
        rel = path.relative_to(tuned_location).as_posix()
        if path.is_file() and not rel.startswith(("final/", "models/", "curves/")):
            s3_server.put(bucket, f"p/{rel}", path.read_bytes())
    env = s3_server.client_env()
    uri = f"s3://{bucket}/p"
    done, report = _final(uri, tmp=tmp_path, env=env)
    fid = report["final_id"]
    keys = s3_server.keys(bucket, "p/final/")
    assert keys == sorted([f"p/final/{fid}/model.pt", f"p/final/{fid}/report.json", "p/final/index.csv"])
    assert f"written:  {uri}/final/{fid}/model.pt" in done.stdout
    index = s3_server.get(bucket, "p/final/index.csv").decode()
    assert fid in index and f"{uri}/final/{fid}/model.pt" in index
    done = hpt("predict", f"{uri}/final/{fid}/model.pt", "--data", "demo:electricity_hourly.csv", "--last", env=env)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.splitlines()[0] == "timestamp,horizon_step,prediction"
    assert done.stdout.splitlines()[1].startswith("2015-01-01 00:00:00,1,")



def test_final_runs_from_another_folder_and_records_paths_that_work_from_any(tmp_path: Path) -> None:
    # the spec's relative data.path is read from the folder the run read it from (not the current one), and
    # index.csv's model_uri and the report's location are absolute (they were relative to where final ran)
    from tests.conftest import cli_here, tiny_spec

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    frame = pd.read_csv(ROOT / "hpt" / "demo" / "electricity_hourly.csv", nrows=24 * 75)
    frame.to_csv(project / "load.csv", index=False)
    doc = tiny_spec(data={"path": "load.csv", "time_column": "ts", "target": "y"}, parameters={"lr": [0.01]},
                    date_ranges=[["2012-01-01", "2012-01-15"]], training={"epochs": 1, "batch_size": 64,
                                                                          "lookback": 24, "horizon": 1, "validation": 0.25})
    (project / "spec.json").write_text(json.dumps(doc))
    ran = cli_here("run", "spec.json", "--sink", "res", "--workers", "1", cwd=project)
    assert ran.returncode == 0, ran.stderr
    done = cli_here("final", "../project/res", "--holdout", "7D", "--threads", "1", "--report", "report.json",
                    cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    index = pd.read_csv(project / "res" / "final" / "index.csv")
    model_uri = Path(index["model_uri"].iloc[-1])
    assert model_uri.is_absolute() and model_uri.is_file() and model_uri.parent.parent == project / "res" / "final"
    assert json.loads((elsewhere / "report.json").read_text())["location"] == str(project / "res")


def test_a_final_from_screening_rows_only_says_so(write_spec: Any, tmp_path: Path) -> None:
    # `hpt run --quick` alone, then hpt final: the screen's best was trained, and "chosen:" did not say it was the
    # screen's; a model that does not beat the baseline gets a warning: line, as the run and hpt results give it
    spec = write_spec(tiny_spec(parameters={"lr": [0.01, 0.003]}, training={"epochs": 1}))
    sink = str(tmp_path / "res")
    ran = hpt_here("run", str(spec), "--quick", "--today", "2013-03-10", "--sink", sink, "--workers", "1")
    assert ran.exit_code == 0, ran.output
    done = hpt_here("final", sink, "--holdout-start", "2013-03-01")
    assert done.exit_code == 0, done.output
    chosen = next(line for line in done.stdout.splitlines() if line.startswith("  chosen:"))
    assert chosen.endswith("; from screening (quick) rows: no config has full results yet)"), chosen
    verdict = next(line for line in done.stdout.splitlines() if "the better baseline" in line)
    assert verdict.startswith("  warning: the model does NOT beat") or verdict.startswith("  the model beats"), verdict


def test_index_merge_keeps_a_row_written_meanwhile(tmp_path: Path) -> None:
    """Two finals add their rows at once: the one whose conditional write loses reads again and merges."""
    from hpt.final import INDEX_CSV, merge_index
    from hpt.sinks.local import LocalSink

    class Racing(LocalSink):
        raced = False

        def write_if(self, key: str, data: bytes, version: str | None) -> str | None:
            if not self.raced:  # another final writes its row between our read and our write
                self.raced = True
                merge_index(LocalSink(str(self.root)), [{"final_id": "other", "mode": "scratch", "mse": 2.0}])
            return super().write_if(key, data, version)

    sink = Racing(str(tmp_path))
    merge_index(sink, [{"final_id": "first", "mode": "scratch", "mse": 1.0}])
    assert sink.raced
    rows = list(csv.DictReader(io.StringIO((tmp_path / INDEX_CSV).read_text())))
    assert sorted((r["final_id"], r["mse"]) for r in rows) == [("first", "1.0"), ("other", "2.0")]
    merge_index(LocalSink(str(tmp_path)), [{"final_id": "third", "mode": "fine-tune", "mse": 3.0}])
    assert [r["final_id"] for r in csv.DictReader(io.StringIO((tmp_path / INDEX_CSV).read_text()))] == \
        ["other", "first", "third"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible")
def test_device_cuda_without_a_gpu_is_refused(tuned_location: Path) -> None:
    line = _error_line(hpt("final", str(tuned_location), "--device", "cuda"))
    assert "--device cuda: no CUDA GPU is visible to this process" in line


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_final_trains_on_the_gpu(tuned_location: Path, first_final: Any, tmp_path: Path) -> None:
    _, first, _ = first_final
    done, report = _final(tuned_location, "--device", "cuda", tmp=tmp_path)
    assert report["device"].startswith("cuda:0 (") and report["config_id"] == first["config_id"]
    model = load_model(str(tuned_location / "final" / report["final_id"] / "model.pt"))  # loads onto the CPU
    assert next(model.module.parameters()).device.type == "cpu"
    assert report["models"][0]["metrics"]["mse"] == pytest.approx(first["models"][0]["metrics"]["mse"], rel=0.2)


def test_a_holdout_of_few_windows_warns_that_the_verdict_rests_on_too_few(tuned_location: Path, first_final: Any,
                                                                          tmp_path: Path) -> None:
    done, report = _final(tuned_location, "--holdout", "1h", tmp=tmp_path)
    note = ("the hold-out has 1 window: too few for a verdict against the baselines (under 30, one good or bad stretch "
            "decides it); give a longer --holdout or an earlier --holdout-start")
    assert report["holdout"]["windows"] == 1
    assert report["verdict"] == {"metric": "mse", "windows": 1, "min_windows": 30, "too_few": True, "note": note}
    assert "the better baseline" in done.stdout and "on 1 hold-out window\n" in done.stdout
    assert f"  warning:  {note}" in done.stdout.splitlines()
    assert f"hpt: warning: {note}" in done.stderr.splitlines()  # said as it trains, too
    first_done, first, _ = first_final  # a month of hourly windows: a verdict without the warning
    assert first["verdict"] == {"metric": "mse", "windows": 744, "min_windows": 30, "too_few": False, "note": None}
    assert "on 744 hold-out windows" in first_done.stdout and "too few" not in first_done.stdout + first_done.stderr
