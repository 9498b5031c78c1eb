"""Shared fixtures: small specs on the bundled data, and the CLI run as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # CI's timeout sends SIGTERM: turn it into KeyboardInterrupt so fixtures tear down their servers.
    def _term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # one of `make test`'s two test processes: training in this process (the CLI run here, the fit and
        # model tests) takes one core, as hpt's own workers do; two threads each on two cores slow both down
        import torch

        torch.set_num_threads(1)


RAY = pytest.mark.xdist_group("ray")
"""Tests that start Ray: one test process runs them all, one cluster at a time on the machine."""


def tiny_spec(**overrides: Any) -> dict[str, Any]:
    """A spec that trains in about a second per trial on the bundled electricity data."""
    doc: dict[str, Any] = {
        "name": "tiny",
        "architecture": "mlp",
        "data": {"path": "demo:electricity_hourly.csv", "time_column": "ts", "target": "y"},
        "date_ranges": [["2013-01-01", "2013-01-15"], ["2013-02-01", "2013-02-15"]],
        "search": {"strategy": "grid", "seed": 0},
        "parameters": {"lr": [0.001, 0.01], "hidden_size": [8]},
        "training": {"epochs": 3, "batch_size": 64, "lookback": 24, "horizon": 1, "validation": 0.25},
        "metrics": ["mse", "mae", "train_time"],
        "objective": "val_mse",
    }
    for key, value in overrides.items():
        if value is None:
            doc.pop(key, None)
        elif isinstance(value, dict) and isinstance(doc.get(key), dict) and key != "parameters":
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    return doc


def trial_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The trials' rows of a results table: the rows of the naive baselines (every run writes two per period,
    architecture naive-last and naive-seasonal) left out."""
    return table[~table["architecture"].astype(str).str.startswith("naive-")].reset_index(drop=True)


def trial_row_objects(folder: Path) -> list[dict[str, Any]]:
    """The trials' row objects at a results folder, the record of truth (the naive baselines' rows, there from the
    run's start, left out; a file being written is skipped)."""
    rows = []
    for path in sorted((folder / "rows").glob("*.json")) if (folder / "rows").is_dir() else ():
        try:
            row = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not str(row.get("architecture", "")).startswith("naive-"):
            rows.append(row)
    return rows


def run_rows_by(spec: Path, sink: Path, param: str) -> dict[Any, dict[str, Any]]:
    """`hpt run SPEC` on one worker into `sink` (it must succeed), then its trials' row objects by their value of
    the tuned parameter `param`."""
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--workers", "1", "-q")
    assert done.returncode == 0, done.stdout + done.stderr
    return {r[f"param_{param}"]: r for r in trial_row_objects(sink)}


def trial_row_files(folder: Path) -> int:
    """How many trials' row files are at a results folder (a file being written is not counted yet)."""
    return len(trial_row_objects(folder))


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec (tiny_spec with overrides, or a given document) to a file and return its path."""
    counter = iter(range(10**6))

    def write(doc: dict[str, Any] | str | None = None, **overrides: Any) -> Path:
        path = tmp_path / f"spec{next(counter)}.json"
        if isinstance(doc, str):
            path.write_text(doc)
        else:
            path.write_text(json.dumps(doc if doc is not None else tiny_spec(**overrides), indent=1))
        return path

    return write


def hpt_cli(*args: str, timeout: float = 300, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m hpt ARGS` as a separate process, as a user would."""
    return subprocess.run([sys.executable, "-m", "hpt", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or ROOT, env={**os.environ, **(env or {})})


def hpt_here(*args: str, env: dict[str, str] | None = None) -> Result:
    """The CLI in this process (a subprocess per call would cost seconds of imports each); the torch
    thread count it sets is put back afterwards."""
    import torch

    from hpt.cli import main

    threads = torch.get_num_threads()
    try:
        return CliRunner(env=env).invoke(main, list(args))
    finally:
        torch.set_num_threads(threads)


def cli_here(*args: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """What hpt_cli answers (exit code, stdout, stderr) from the CLI run in this process: for the many checks of
    what a command says that are not about the process, without a second's imports each. An exception hpt does
    not turn into an exit code fails the test (where hpt_cli would show a traceback in stderr). As with a new
    process, warnings a process says once are said again, and what the command sets in os.environ is undone."""
    import torch

    from hpt.cli import main
    from hpt.spec import windowing

    threads, here, environ = torch.get_num_threads(), os.getcwd(), dict(os.environ)
    try:
        if cwd is not None:
            os.chdir(cwd)
        windowing._said.clear()
        done = CliRunner(env=env).invoke(main, list(args), prog_name="hpt", catch_exceptions=False)
    finally:
        os.chdir(here)
        torch.set_num_threads(threads)
        os.environ.clear()
        os.environ.update(environ)
    return subprocess.CompletedProcess(["hpt", *args], done.exit_code, done.stdout, done.stderr)


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return hpt_cli


from tests.cloud_servers import gcs_server, s3_server  # noqa: E402, F401  (session-scoped S3 and GCS servers)
from tests.final_fixtures import tuned_location  # noqa: E402, F401  (a results location tuned for hpt final and predict)
