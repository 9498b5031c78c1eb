"""A real two-node Ray cluster on 127.0.0.1 for the Ray backend's tests, once per test session.

Each node is one ``ray start ... --block`` process (through tests/ray_node.py, which keeps
Ray on the loopback address), in its own process session, stopped through its own
process id: SIGTERM (the node drains and stops every process it started), then SIGKILL to
its process group if it has not gone within 20 seconds. ``ray stop`` is never used: it
ends every Ray process on the machine by name. The child asks the kernel to SIGTERM it
when pytest dies (PR_SET_PDEATHSIG). Token authentication is off (a loopback cluster
of the test's own) and usage statistics are not sent; every Ray file lives in a
temporary folder of the session, not /tmp/ray.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from tests.cloud_servers import _die_with_parent, free_port

__all__ = ["RAY_ENV", "RayCluster", "ray_cluster"]

ROOT = Path(__file__).resolve().parents[1]
# For the nodes and for every driver that connects to them (hpt runs in tests included).
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass
class RayCluster:
    port: int
    temp_dir: str
    cpus_per_node: int = 2
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, *args: str) -> None:
        log = tempfile.TemporaryFile()
        argv = [sys.executable, str(ROOT / "tests" / "ray_node.py"), "start", "--node-ip-address", "127.0.0.1",
                "--num-cpus", str(self.cpus_per_node), "--num-gpus", "0", "--object-store-memory", str(200 * 2**20),
                "--disable-usage-stats", "--block", *args]
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.temp_dir,
                                           start_new_session=True, preexec_fn=_die_with_parent,
                                           env={**os.environ, **RAY_ENV}))
        self.logs.append(log)

    def start(self, timeout: float = 90.0) -> None:
        self._start("--head", "--port", str(self.port), "--include-dashboard=false", "--temp-dir", self.temp_dir)
        self._wait(lambda: _listening(self.port), "the head node did not listen", timeout)
        self._start("--address", self.address)
        self._wait(lambda: self.alive_nodes() >= 2, "the second node did not join", timeout)

    def alive_nodes(self) -> int:
        """Alive nodes, as a driver on this cluster sees them."""
        code = (f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False); "
                "print(sum(n['Alive'] for n in ray.nodes()))")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                              env={**os.environ, **RAY_ENV})
        return int(done.stdout.strip() or 0) if done.returncode == 0 else 0

    def _wait(self, ready: Any, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc, log in zip(self.procs, self.logs, strict=True):
                if proc.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"ray start exited with {proc.returncode}: {log.read()[-3000:]!r}")
            if ready():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{what} within {timeout:.0f}s")

    def stop(self) -> None:
        for proc in reversed(self.procs):  # the second node first, then the head
            _stop(proc)
        for log in self.logs:
            log.close()
        self.procs.clear()
        self.logs.clear()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    try:  # whatever that node left in its own process group (the group id is its process id)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    """Two nodes of 2 CPUs each on 127.0.0.1; the test process's environment points drivers at it."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed: pip install 'hpt[ray]' (make test installs it)")
    temp_dir = tempfile.mkdtemp(prefix="hpt-ray-")  # short: Ray's socket paths live under it
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    if "ray" in sys.modules:  # imported before the variable was set: tell it too
        sys.modules["ray"]._private.ray_constants.ENABLE_RAY_CLUSTER = False
    cluster = RayCluster(free_port(), temp_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(temp_dir, ignore_errors=True)
