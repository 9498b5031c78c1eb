"""Connecting to a Ray cluster (or starting a local Ray instance) for :mod:`hpt.backends.ray`, in seconds, with
one line for what went wrong: the address checked over TCP first, ``ray.init`` in a thread with a time limit, Ray's
own output held back and summed up, Ray's many-line errors made one line.

Ray is an optional extra (``pip install 'hpt[ray]'``) and is imported only in these two modules.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from hpt.errors import InputError, install_hint

__all__ = ["CONNECT_TIMEOUT", "connect", "import_ray", "one_line"]

CONNECT_TIMEOUT = 20.0  # seconds for a cluster to answer ray.init
PROBE_TIMEOUT = 5.0  # seconds for the TCP connection that checks an address before Ray tries it


def import_ray() -> Any:
    """The ray module, or an InputError that says which extra to install."""
    try:
        import ray
    except ImportError:
        raise InputError(f"--executor ray needs Ray: {install_hint('ray')}") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    """HOST and PORT of ``HOST:PORT`` or ``ray://HOST:PORT`` (Ray's default ports when absent)."""
    client = address.startswith("ray://")
    rest = address[len("ray://"):] if client else address
    host, colon, port = rest.rpartition(":")
    if not colon or not port.isdigit() or "]" in port:
        host, port = rest, "10001" if client else "6379"
    host = host.strip("[]")
    if not host:
        raise InputError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    return host, int(port)


def _token_given() -> bool:
    """Whether this machine has a Ray authentication token where Ray looks for one."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or os.path.isfile(path)


def _loopback(address: str) -> bool:
    """Whether HOST of ``HOST:PORT`` or ``ray://HOST:PORT`` is this machine's loopback address."""
    if address == "auto":
        return False
    host = _host_port(address)[0]
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _probe(address: str) -> None:
    """A TCP connection to the address: a wrong host or port fails here in seconds, not in Ray's minutes."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT).close()
    except socket.gaierror:
        raise InputError(f"--ray-address {address}: unknown host {host}") from None
    except ConnectionRefusedError:
        raise InputError(f"--ray-address {address}: connection refused (is `ray start --head` running there, "
                         "on that port?)") from None
    except OSError as e:
        why = f"no answer within {PROBE_TIMEOUT:g}s" if isinstance(e, TimeoutError) else e.strerror or type(e).__name__
        raise InputError(f"--ray-address {address}: cannot reach {host}:{port} ({why})") from None


class _NotMainThread(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "not the main thread" not in record.getMessage()


def connect(address: str | None, timeout: float | None = None) -> bool:
    """Connect this process to the Ray cluster at `address` (``HOST:PORT``, ``ray://HOST:PORT``,
    ``auto``), or start a local Ray instance when it is None. True when this call connected
    (the caller then shuts Ray down at the end); False when Ray was already initialised.

    A wrong or unreachable address is an :class:`InputError` within about `timeout` seconds.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    _plain_output()
    if not address or address == "local":
        return _start_local(ray)
    if address != "auto":
        _probe(address)
    box: list[BaseException] = []
    done = threading.Event()

    def init() -> None:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except BaseException as e:  # handed to the main thread
            box.append(e)
        finally:
            done.set()

    # In a thread, so that a cluster that never answers cannot hold the run: ray.init retries
    # for minutes. (Ray then leaves the process's SIGTERM handler alone, and says so.) Ray's
    # own warnings while it tries, one a second, are held back and summed up in the error.
    limit = CONNECT_TIMEOUT if timeout is None else timeout
    quiet = _NotMainThread()
    ray_log = logging.getLogger("ray._private.worker")
    ray_log.addFilter(quiet)
    try:
        with _held_stderr() as held:
            threading.Thread(target=init, name="hpt-ray-connect", daemon=True).start()
            answered = done.wait(limit)
    finally:
        ray_log.removeFilter(quiet)
    said = [ln for ln in held.text.splitlines() if ln.strip()]
    ray_said = [_RAY_LOG.sub("", ln) for ln in said if _RAY_LOG.match(ln)]
    if not answered:
        if any("Unauthenticated" in ln or "InvalidAuthToken" in ln for ln in ray_said):
            if os.environ.get("RAY_AUTH_MODE") == "token" and _token_given():
                raise InputError(f"--ray-address {address}: the cluster rejected this machine's authentication token "
                                 "(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): give it the cluster's")
            raise InputError(f"--ray-address {address}: the cluster wants an authentication token: set "
                             "RAY_AUTH_MODE=token and give this machine the cluster's token (~/.ray/auth_token, "
                             "RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN)")
        last = f" (Ray: {ray_said[-1][:200]})" if ray_said else ""
        hint = "; a head started on a loopback address answers only drivers that set " \
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 too" if _loopback(address) and \
            os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0" else ""
        raise InputError(f"--ray-address {address}: no Ray cluster answered within {limit:g}s{last}{hint}")
    if box:
        raise InputError(f"--ray-address {address}: {one_line(box[0])}") from None
    for line in said:  # what Ray said besides its retries (warnings of a successful connection)
        if not _RAY_LOG.match(line):
            print(line, file=sys.stderr)
    return True


# Ray's C++ warnings and notes: "[2026-11-23 15:09:10,987 W 29107 29111] gcs_client.cc:210: ..."
_RAY_LOG = re.compile(r"^\[[\d-]+ [\d:,]+ [WI] \d+ \d+\] \S+: ")


class _Held:
    text = ""


@contextlib.contextmanager
def _held_stderr() -> Iterator[_Held]:
    """Standard error (the file descriptor: Ray's C++ code writes there) into a temporary file."""
    held = _Held()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield held
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            held.text = tmp.read().decode(errors="replace")


def _start_local(ray: Any) -> bool:
    """A local Ray instance for this run, started from this thread: Ray's processes are told to
    die with the thread that started them, so not from a short-lived one."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    except Exception as e:
        raise InputError(f"could not start a local Ray instance: {one_line(e)}") from None
    finally:
        if main:  # ray.init puts its own SIGTERM handler (sys.exit) in place of hpt's
            signal.signal(signal.SIGTERM, previous)
    return True


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # a terminal's colour codes, which Ray puts in some messages


def _plain_output() -> None:
    """Ray prints what its nodes report to this driver (a worker that died, ...) in colour; not into a log file."""
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # Ray reads it at each print


def one_line(e: BaseException, limit: int = 400) -> str:
    """An exception as one line: Ray's messages run over many lines, with tracebacks and colour codes."""
    text = str(e)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    cause = getattr(e, "cause", None)
    if cause is not None and not isinstance(cause, type(e)):  # a RayTaskError: the task's own exception
        lines = [f"{type(cause).__name__}: {cause}".replace("\n", " ")]
    elif lines and lines[0].startswith("ray::"):  # "ray::_train() (pid=..., ip=...)" heads a task's error
        lines = lines[1:] or lines
    first = " ".join(lines[:2]) if lines else ""
    first = _ANSI.sub("", f"{type(e).__name__}: {first}" if first else type(e).__name__)
    return first if len(first) <= limit else first[:limit - 3] + "..."
