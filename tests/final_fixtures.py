"""A results location tuned once per test session for `hpt final` and `hpt predict`: two tiny
mlp configs on two automatic one-month periods that keep the last month of the bundled
data (December 2014) back as the hold-out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import hpt_cli, tiny_spec

TODAY = "2026-11-01"  # the automatic periods are drawn from this month: 2012-02 and 2013-08


def final_spec(**overrides: object) -> dict[str, object]:
    return tiny_spec(name="tiny-final", date_ranges={"auto": {"count": 2, "months": 1, "holdout": 1}},
                     training={"epochs": 2}, **overrides)


@pytest.fixture(scope="session")
def tuned_location(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("final")
    spec = folder / "tiny-final.json"
    spec.write_text(json.dumps(final_spec()))
    sink = folder / "results"
    done = hpt_cli("run", str(spec), "--sink", str(sink), "--today", TODAY, "--workers", "1", "-q", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return sink
