"""A test architecture whose trials wait, at the start of an epoch, until the test lets them go on.

A test that waits for something asynchronous (a stop reaching a trial, a signal arriving while a
trial runs, a server going down between two results) must not count on how many epochs or seconds
a trial usually takes: on a loaded machine a 600-epoch trial can be over before the test looks, or a
stop can arrive after the last epoch. Such a test trains ``"architecture": "tests.gated:build"``
with the parameter ``"gate": [folder]`` and holds its trials at the gate:

- every trial runs its first epoch, then waits before each later epoch until it is let go on;
- ``let(folder)`` lets every trial (present and future) run to its end; ``let(folder, epochs=k)``
  lets them start epochs up to k; ``trial=n`` or ``width=w`` does it for the n-th trial to arrive
  (0, 1, ... in the order they started training) or for the trials of one width;
- ``waiting(folder)`` says which trials wait, at which epoch: "the next trial is under way".

A trial is never held longer than ``HOLD_S`` (minutes) in all: a test that fails before it lets
its trials go leaves no worker waiting for ever. The module is imported by the workers (the
repository root is on their path) and the gate is a folder, so it works across processes and
Ray nodes on one machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ARCHITECTURE", "HOLD_S", "build", "let", "arrivals", "waiting", "wait_for"]

ARCHITECTURE = "tests.gated:build"
HOLD_S = 300.0  # the longest a trial waits at its gate, over all its epochs
ALL = 10**9  # "every epoch"
_POLL_S = 0.01

T = TypeVar("T")


def build(n_features: int, lookback: int, horizon: int, width: int = 8, gate: str = "") -> Any:
    """A small mlp (as tests.conftest.tiny_spec's), held at the folder `gate` (none when empty).

    torch is imported here, not with the module: hpt imports a builder's module when it reads the spec,
    and a run's main process does not import torch for the built-in architectures this stands in for."""
    from torch import nn

    net = nn.Sequential(nn.Flatten(), nn.Linear(lookback * n_features, width), nn.ReLU(), nn.Linear(width, horizon))
    if gate:
        _hold_each_epoch(net, Path(gate), width)
    return net


def _hold_each_epoch(net: Any, gate: Path, width: int) -> None:
    """Make `net` wait at the start of each epoch after its first (hpt.train.Stepper.epoch calls
    ``train()`` once per epoch; evaluation calls ``train(False)``) until it is let go on."""
    state: dict[str, Any] = {"epoch": 0, "deadline": 0.0}
    train = net.train

    def gated_train(mode: bool = True) -> Any:
        if mode:
            if not state["epoch"]:  # it arrives when it starts training: a model built to check a spec never does
                state["keys"] = keys = (str(_arrive(gate, f"{os.getpid()} {width}")), f"w{width}", "all")
                state["at"] = gate / f"{keys[0]}.at"
            keys, at = state["keys"], state["at"]
            state["epoch"] += 1
            epoch = state["epoch"]
            if epoch > 1 and _allowed(gate, keys) < epoch:
                _write(at, str(epoch))
                state["deadline"] = state["deadline"] or time.monotonic() + HOLD_S
                while _allowed(gate, keys) < epoch and time.monotonic() < state["deadline"]:
                    time.sleep(_POLL_S)
                at.unlink(missing_ok=True)
        return train(mode)

    net.train = gated_train  # an instance attribute: found before the class's method


def _arrive(gate: Path, text: str) -> int:
    gate.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        try:
            fd = os.open(gate / f"{n}.arrived", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            n += 1
            continue
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return n


def _allowed(gate: Path, keys: tuple[str, ...]) -> int:
    best = 1
    for key in keys:
        try:
            best = max(best, int((gate / f"{key}.go").read_text()))
        except (OSError, ValueError):
            pass
    return best


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reader sees the old number or the new one, never half of it


def let(gate: str | Path, epochs: int = ALL, trial: int | None = None, width: int | None = None) -> None:
    """Let trials start epochs up to `epochs` (all of them by default): every trial, or the `trial`-th
    to arrive, or those of one `width`."""
    key = "all" if trial is None and width is None else str(trial) if width is None else f"w{width}"
    Path(gate).mkdir(parents=True, exist_ok=True)
    _write(Path(gate) / f"{key}.go", str(epochs))


def arrivals(gate: str | Path) -> dict[int, tuple[int, int]]:
    """The trials that started training so far: arrival number -> (process id, width)."""
    found = {}
    for path in Path(gate).glob("*.arrived"):
        try:
            pid, width = path.read_text().split()
        except (OSError, ValueError):
            continue  # being written
        found[int(path.stem)] = (int(pid), int(width))
    return found


def waiting(gate: str | Path) -> dict[int, int]:
    """The trials waiting at the gate now: arrival number -> the epoch each waits to start."""
    found = {}
    for path in Path(gate).glob("*.at"):
        try:
            found[int(path.stem)] = int(path.read_text())
        except (OSError, ValueError):
            continue
    return found


def wait_for(check: Callable[[], T], what: str, timeout: float = HOLD_S, alive: Any = None) -> T:
    """Poll `check` until it returns something true; fail with `what` after `timeout` seconds, or
    at once when the process `alive` (a Popen) has ended."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if alive is not None and alive.poll() is not None:
            raise AssertionError(f"{what}: the process ended first: {alive.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:g}s")
        time.sleep(0.05)
