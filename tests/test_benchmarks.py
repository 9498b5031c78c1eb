"""benchmarks/overhead.py runs and prints its figures (no timing assertions: the machine is shared)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_overhead_benchmark_quick() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "overhead.py"), "--quick"], capture_output=True,
                          text=True, timeout=180, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    number = r"-?\d+(\.\d+)?"
    for loop in ("hpt.train.fit", "hand-written loop", "DataLoader loop"):
        assert re.search(rf"^  {re.escape(loop)}.*\s{number}\s+{number}\s", out, re.M), out
    assert re.search(rf"^  ratio hpt/handwritten: {number}", out, re.M), out
    assert re.search(rf"^  ratio hpt/DataLoader: +{number}", out, re.M), out
    assert re.search(rf"^  overhead per trial: {number} ms", out, re.M), out
