"""training.lr_schedule: the learning rate decays on plateaus (the default) or along a cosine to 0."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hpt.search import expand
from hpt.spec import parse_spec
from tests.conftest import hpt_cli, run_rows_by, tiny_spec


def test_a_cosine_schedule_takes_the_lr_to_zero_by_the_last_epoch_and_can_be_tuned(write_spec: Any,
                                                                                     tmp_path: Path) -> None:
    spec = write_spec(tiny_spec(architecture="linear", date_ranges=[["2013-01-01", "2013-01-15"]],
                                parameters={"lr_schedule": ["plateau", "cosine"], "lr": [0.01]},
                                training={"epochs": 4, "patience": 0}))
    sink = tmp_path / "out"
    rows = run_rows_by(spec, sink, "lr_schedule")
    assert set(rows) == {"plateau", "cosine"}
    lr = {name: pd.read_csv(sink / "curves" / f"{row['trial_id']}.csv")["lr"].tolist() for name, row in rows.items()}
    # after epoch e of 4, the cosine is at 0.01 * (1 + cos(pi * e / 4)) / 2: 0.0085, 0.005, 0.0015, 0
    assert lr["cosine"] == pytest.approx([0.0085355, 0.005, 0.0014645, 0.0], abs=1e-6)
    assert lr["plateau"][0] == 0.01  # the plateau schedule only ever decays after lr_patience epochs
    assert rows["cosine"]["status"] == "ok" and rows["cosine"]["val_mse"] > 0


def test_lr_schedule_at_its_default_keeps_config_ids_and_an_unknown_one_is_exit_2(write_spec: Any) -> None:
    doc = tiny_spec()
    ids = [t.trial_id for t in expand(parse_spec(doc))]
    plateau = tiny_spec(training={"lr_schedule": "plateau"})
    assert [t.trial_id for t in expand(parse_spec(plateau))] == ids
    cosine = tiny_spec(training={"lr_schedule": "cosine"})
    assert not set(ids) & {t.trial_id for t in expand(parse_spec(cosine))}
    done = hpt_cli("validate", str(write_spec(tiny_spec(training={"lr_schedule": "step"}))))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpt: error: "), done.stderr
    assert 'training.lr_schedule: expected one of "plateau", "cosine"' in lines[0], lines[0]
