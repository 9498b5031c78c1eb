"""The GPU pool for real, on the CUDA GPUs of this machine; skipped where there is none.

Without a GPU the pool is tested with injected GPU lists (tests/test_executor.py); these
tests run the same code paths on real devices: pinning, packing, mixed precision, the
memory columns of the rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from hpt.backends.local import visible_gpus
from tests.conftest import tiny_spec, trial_rows

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _lstm_spec(write_spec: Any, **training: Any) -> Path:
    return write_spec(tiny_spec(architecture="lstm", parameters={"lr": [0.001, 0.003, 0.01], "hidden_size": [16]},
                                training={"epochs": 3, **training}))


def test_trials_run_on_every_gpu_two_per_gpu_in_bf16(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    done = cli("run", str(_lstm_spec(write_spec, amp="bf16")), "--sink", str(tmp_path / "r"), "--trials-per-gpu", "2")
    assert done.returncode == 0, done.stderr
    gpus = visible_gpus()
    assert f"{len(gpus)} GPU" in done.stdout and "2 trials per GPU" in done.stdout
    table = trial_rows(pd.read_csv(tmp_path / "r" / "results.csv"))
    assert len(table) == 6 and (table["status"] == "ok").all(), table[["status", "error"]]
    assert table["device"].str.contains(torch.cuda.get_device_name(0), regex=False).all()
    slots = set(table["device"].str.split(" ").str[0])
    assert slots <= {f"gpu{g}{k}" for g in gpus for k in ("", ".1")}
    assert (table["gpu_mem_peak_mb"] > 0).all() and (table["gpu_mem_reserved_mb"] >= table["gpu_mem_peak_mb"]).all()


def test_trials_per_gpu_auto_measures_a_trial_and_packs(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    done = cli("run", str(_lstm_spec(write_spec)), "--sink", str(tmp_path / "r"), "--trials-per-gpu", "auto")
    assert done.returncode == 0, done.stderr
    assert "--trials-per-gpu auto: a trial peaked at" in done.stdout and "trials per GPU (limited by" in done.stdout
    table = trial_rows(pd.read_csv(tmp_path / "r" / "results.csv"))
    assert (table["status"] == "ok").all()


def test_gpus_narrows_the_pool(write_spec: Any, cli: Any, tmp_path: Path) -> None:
    first = visible_gpus()[0]
    done = cli("run", str(_lstm_spec(write_spec)), "--sink", str(tmp_path / "r"), "--gpus", first)
    assert done.returncode == 0, done.stderr
    table = trial_rows(pd.read_csv(tmp_path / "r" / "results.csv"))
    assert set(table["device"].str.split(" ").str[0]) == {f"gpu{first}"}


@pytest.mark.parametrize("amp", ["off", "fp16"])
def test_a_stopped_trial_goes_on_from_its_checkpoint_on_the_gpu(write_spec: Any, amp: str) -> None:
    import dataclasses

    from hpt.search import expand
    from hpt.spec import check_data, load_spec
    from hpt.train import TrainContext

    spec = load_spec(write_spec(tiny_spec(architecture="lstm", parameters={"lr": [0.01], "dropout": [0.2]},
                                          training={"epochs": 6, "patience": 0, "amp": amp})))
    context = TrainContext(check_data(spec), "cuda:0")
    trial = dataclasses.replace(expand(spec)[0], checkpoint_at=(2,))
    stopped = context.run(trial, lambda epoch, _: "pruned at epoch 2" if epoch == 3 else None)
    assert stopped.status.value == "pruned" and 2 in stopped.checkpoints
    resumed = context.run(dataclasses.replace(trial, resume=stopped.checkpoints[2]))
    straight = context.run(trial)
    assert resumed.status.value == "ok", resumed.error  # the generators' states load on the host
    assert resumed.metrics["epochs"] == straight.metrics["epochs"] == 6
    # cuDNN's kernels are not bitwise deterministic: the same training, to a small tolerance
    assert resumed.metrics["val_mse"] == pytest.approx(straight.metrics["val_mse"], rel=0.05)
