"""Start-up time of commands that never touch a bucket (issue 16).

google-cloud-storage and boto3 are dependencies of hpt, but only a gs:// or s3:// location
imports them. This times, as fresh processes:

- ``python -c pass`` (the interpreter's own start-up: the floor) and ``python -c "import click"``;
- ``hpt --help`` and ``hpt validate specs/lstm.json`` (the console script, as a user runs it);
- the same two with google.cloud.storage and boto3 imported first ("clients forced"): what
  the lazy imports save.

Each command runs once to warm the file cache, then REPS times, the commands interleaved (in
a new random order each round) so that load from other processes falls on all of them alike
and no command always follows the same one. Every figure is a median; the ratios are
against the floor and ``import click`` measured in the same run, so runs on a busy or
another machine stay comparable. ``--also PYTHON`` times another environment's
interpreter and its ``hpt`` (e.g. a venv of an earlier version) in the same loop, rows
tagged [this] and [other], and prints the ratio of the two: of the medians, and the median
of the ratios within each round.

    python benchmarks/startup.py                  # 30 repetitions (about 1.5 minutes on 2 cores)
    python benchmarks/startup.py --quick          # a smoke run
    python benchmarks/startup.py --reps 40 --also /tmp/hpt-before/.venv/bin/python   # benchmarks/README.md's before/after
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "lstm.json"
CLIENTS = "import google.cloud.storage, boto3"
# Runs an environment's hpt console script after `CLIENTS` (and runpy), so that little but that import differs.
FORCED = CLIENTS + "; import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"


def _hpt(python: str) -> str:
    script = Path(python).parent / "hpt"
    if not script.exists():
        raise SystemExit(f"no hpt console script next to {python}")
    return str(script)


def _has_clients(python: str) -> bool:
    return subprocess.run([python, "-c", CLIENTS], capture_output=True).returncode == 0


def commands(python: str, label: str) -> dict[str, list[str]]:
    """What to time for one environment: name -> argv."""
    hpt = _hpt(python)
    tag = f" [{label}]" if label else ""
    cmds = {f"python -c pass{tag}": [python, "-c", "pass"],
            f"python -c 'import click'{tag}": [python, "-c", "import click"],
            f"hpt --help{tag}": [hpt, "--help"],
            f"hpt validate specs/lstm.json{tag}": [hpt, "validate", str(SPEC)]}
    if _has_clients(python):
        cmds[f"hpt --help, clients forced{tag}"] = [python, "-c", FORCED, hpt, "--help"]
        cmds[f"hpt validate, clients forced{tag}"] = [python, "-c", FORCED, hpt, "validate", str(SPEC)]
    return cmds


def _time(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def _versions(python: str) -> str:
    code = ("import importlib.metadata as m\n"
            "def v(n):\n"
            "    try:\n        return m.version(n)\n    except m.PackageNotFoundError:\n        return 'not installed'\n"
            "print(f\"hpt {v('hpt')}, google-cloud-storage {v('google-cloud-storage')}, boto3 {v('boto3')}\")")
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30, help="timed repetitions of each command (default 30)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 repetitions")
    ap.add_argument("--also", metavar="PYTHON", help="also time this interpreter's environment (e.g. an older venv)")
    args = ap.parse_args(argv)
    reps = 2 if args.quick else args.reps

    envs = [(sys.executable, "this" if args.also else "")] + ([(args.also, "other")] if args.also else [])
    print(f"Python {platform.python_version()} on {os.cpu_count()} CPU cores; {reps} repetitions, interleaved; medians")
    for python, label in envs:
        print(f"  {label or 'environment'}: {python}: {_versions(python)}")
    groups = [(label, commands(python, label)) for python, label in envs]
    times: dict[str, list[float]] = {name: [] for _, cmds in groups for name in cmds}
    everything = [(name, argv) for _, cmds in groups for name, argv in cmds.items()]
    for _name, argv in everything:  # warm-up, not timed
        _time(argv)
    order = random.Random(0)
    for _ in range(reps):
        order.shuffle(everything)
        for name, argv in everything:
            times[name].append(_time(argv))

    median = {name: statistics.median(t) for name, t in times.items()}
    print(f"\n{'command':<48} {'median':>9} {'min':>9}  {'x floor':>7} {'x click':>7}")
    for label, cmds in groups:
        tag = f" [{label}]" if label else ""
        floor, click = median[f"python -c pass{tag}"], median[f"python -c 'import click'{tag}"]
        for name in cmds:
            print(f"{name:<48} {median[name] * 1e3:>6.0f} ms {min(times[name]) * 1e3:>6.0f} ms  "
                  f"{median[name] / floor:>7.2f} {median[name] / click:>7.2f}")
        for what in ("hpt --help", "hpt validate"):
            forced = next((n for n in cmds if n.startswith(f"{what}, clients forced")), None)
            lazy = next(n for n in cmds if n.startswith(what) and "forced" not in n)
            if forced:
                print(f"  lazy imports save {what}{tag}: {(median[forced] - median[lazy]) * 1e3:.0f} ms "
                      f"({median[forced] / median[lazy]:.2f}x when forced)")
    if args.also:
        print()
        for what in ("hpt --help", "hpt validate specs/lstm.json"):
            this, other = median[f"{what} [this]"], median[f"{what} [other]"]
            paired = statistics.median(a / b for a, b in zip(times[f"{what} [this]"], times[f"{what} [other]"], strict=True))
            print(f"  {what}: this / other = {this / other:.2f} ({(this - other) * 1e3:+.0f} ms); "
                  f"median of the {reps} paired ratios {paired:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
