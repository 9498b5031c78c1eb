"""Where results go: one small protocol, one module per backend.

A sink stores opaque objects under keys such as ``rows/<trial_id>.json``; it knows nothing
of torch or of the results layout (that is :mod:`hpt.store`). The URI scheme picks the
backend: a plain path is a local folder, ``gs://bucket/prefix`` Google Cloud Storage,
``s3://bucket/prefix`` Amazon S3 (or any endpoint in ``AWS_ENDPOINT_URL``).

Errors a sink raises:

- :class:`SinkAccessError` (exit code 2): a missing bucket, a permission refused, absent or
  rejected credentials. Retrying does not help; the message says what to fix.
- :class:`SinkUnavailable` (exit code 1): the location did not answer (timeouts, resets,
  5xx, throttling) after the sink's own retries. Retrying later may help.
- :class:`~hpt.errors.HptError` from :func:`broken_install` (exit code 1): the cloud's client
  library (google-cloud-storage or boto3, dependencies of hpt imported only when a gs:// or
  s3:// location is used) cannot be imported: the installation is broken; the message says
  how to repair it.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from collections.abc import Callable
from types import EllipsisType
from typing import Protocol, TypeVar

from hpt.errors import HptError, InputError, redact

__all__ = ["ENV_NUMBERS", "BucketSink", "Sink", "SinkAccessError", "SinkUnavailable", "broken_install", "check_before_run",
           "check_env", "check_location", "check_uri", "describe", "env_float", "open_sink", "read_uri", "redact", "retrying",
           "split_bucket_uri", "update"]

log = logging.getLogger("hpt")
T = TypeVar("T")


class SinkAccessError(InputError):
    """The results location cannot be used as configured (bucket, permission, credentials)."""


class SinkUnavailable(HptError):
    """The results location did not answer, even after retries; it may later."""


class Sink(Protocol):
    uri: str
    remote: bool  # True when writes cross a network: results then wait in a local journal first

    def check_writable(self) -> None:
        """Prove the location can be written, or raise SinkAccessError saying what to fix."""

    def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing any old object atomically."""

    def read(self, key: str) -> bytes | None:
        """The object under `key`, or None when there is none."""

    def folders(self, prefix: str = "") -> list[str]:
        """The names of the folders just inside `prefix` (``""`` or ending in ``/``), sorted: one listing."""

    def list(self, prefix: str) -> list[str]:
        """Keys that start with `prefix` (e.g. ``"rows/"``), sorted."""

    def url(self, key: str) -> str:
        """Where a user finds the object under `key` (a path or a URI)."""

    def delete(self, key: str) -> None:
        """Remove the object under `key`; nothing when there is none."""

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The object under `key` and an opaque version token for :meth:`write_if`, or None."""

    def write_if(self, key: str, data: bytes, version: str | None) -> str | None:
        """Store `data` only if the object is still at `version` (None: only if there is none).

        Returns the new version token, or None when someone else wrote the object in the
        meantime (nothing was written then). Two writers racing from the same version: one
        wins, the other gets None.
        """


_URI_LIKE = re.compile(r"(?i)(gs|s3)(:/*|//+)")


def check_uri(text: str) -> None:
    """Refuse a bucket URI typed with too few or too many slashes (``s3:/bucket``) or without its colon
    (``s3//bucket``), which would otherwise be taken for a local folder named ``s3:`` or ``s3``."""
    m = _URI_LIKE.match(text)
    if m and m.group(2) != "://":
        fixed = f"{m.group(1)}://{text[m.end():]}"
        raise InputError(f"{redact(text)}: not a valid location (did you mean {redact(fixed)}?)")


def check_location(uri: str) -> str:
    """The scheme of a results location ("" for a folder, "gs", "s3"); InputError for one that cannot be: a bucket
    URI mistyped, an unknown scheme, a bucket name no cloud takes. Nothing is asked of the location."""
    check_uri(uri)
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("", "file"):
        return ""
    if scheme not in ("gs", "s3"):
        raise InputError(f"{redact(uri)}: unknown scheme {scheme}://; use a folder path, gs://bucket/prefix or "
                         "s3://bucket/prefix")
    split_bucket_uri(uri)
    return scheme


def check_before_run(uri: str) -> None:
    """:func:`check_location`, and for a folder what the run's start checks: that it is one, or can be made
    (:meth:`~hpt.sinks.local.LocalSink.check_writable`, which removes again what it made to know). A bucket is not
    asked: `hpt plan` and `hpt validate` say what the run would, without a request."""
    if not check_location(uri):
        from hpt.sinks.local import LocalSink

        LocalSink(uri).check_writable()


def open_sink(uri: str) -> Sink:
    """The sink for a results location: a folder path, ``gs://bucket/prefix`` or ``s3://bucket/prefix``."""
    scheme = check_location(uri)
    if not scheme:
        from hpt.sinks.local import LocalSink

        return LocalSink(uri.split("://", 1)[1] if "://" in uri else uri)
    bucket, prefix = split_bucket_uri(uri)
    if scheme == "gs":
        from hpt.sinks.gcs import GCSSink

        return GCSSink(bucket, prefix)
    from hpt.sinks.s3 import S3Sink

    return S3Sink(bucket, prefix)


def split_bucket_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/a/b/`` -> ``("bucket", "a/b")``; credentials in the URI are refused without being echoed."""
    scheme, rest = uri.split("://", 1)
    bucket, _, prefix = rest.partition("/")
    if "@" in bucket or "?" in uri:
        raise InputError(f"{scheme}://...: credentials or query parameters in the URI are not supported; "
                         "use the cloud's standard credentials instead")
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]", bucket):
        raise InputError(f'{scheme}://{bucket}: "{bucket}" is not a valid bucket name; '
                         f"expected {scheme}://bucket/path")
    return bucket, prefix.strip("/")


def read_uri(uri: str) -> bytes:
    """The bytes of one object named by a full URI (``gs://b/p/models/x.pt``, ``s3://...``, or a path)."""
    if "://" not in uri or uri.lower().startswith("file://"):
        path = uri.split("://", 1)[1] if "://" in uri else uri
        with open(path, "rb") as f:
            return f.read()
    scheme, rest = uri.split("://", 1)
    bucket, _, key = rest.partition("/")
    data = open_sink(f"{scheme}://{bucket}").read(key)
    if data is None:
        raise FileNotFoundError(f"no object at {redact(uri)}")
    return data


# Every number hpt reads from the environment (what it means, for the error message); env_float reads only these.
ENV_NUMBERS = {
    "HPT_CLAIM_LEASE": "seconds",
    "HPT_CLAIM_RENEW": "seconds",
    "HPT_FLUSH_TIMEOUT": "seconds",
    "HPT_MLFLOW_TIMEOUT": "seconds",
    "HPT_SINK_RETRIES": "attempts",  # a whole number
    "HPT_SINK_TIMEOUT": "seconds",
}


def env_float(name: str, default: float) -> float:
    """The positive number in the environment variable `name` (one of ENV_NUMBERS), else `default` when
    it is unset or empty; anything else is bad input (InputError naming the variable)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    unit = ENV_NUMBERS[name]
    if not 0 < value < float("inf") or (unit == "attempts" and not value.is_integer()):
        kind = "a whole number" if unit == "attempts" else "a number"
        raise InputError(f"${name}: expected {kind} of {unit} > 0, got {text!r}")
    return value


def check_env() -> None:
    """Bad input in any of ENV_NUMBERS, before a command does anything (one InputError, the first one)."""
    for name in ENV_NUMBERS:
        env_float(name, 1.0)


def retrying(call: Callable[[], T], transient: Callable[[BaseException], bool], what: str,
             attempts: int | None = None) -> T:
    """Run `call`, retrying transient errors with jittered exponential backoff.

    After the last attempt a transient error becomes :class:`SinkUnavailable` naming `what`;
    any other error propagates unchanged. ``HPT_SINK_RETRIES`` sets the attempts (default 5).
    """
    attempts = attempts or int(env_float("HPT_SINK_RETRIES", 5))
    delay = 0.25
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as e:
            if not transient(e):
                raise
            if attempt == attempts:
                raise SinkUnavailable(f"{what}: no answer after {attempts} attempt{'s' if attempts != 1 else ''}: "
                                      f"{describe(e)}") from None
            log.debug("%s: %s; retrying in %.1fs", what, describe(e), delay)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 8.0)
    raise AssertionError("unreachable")


UPDATE_ATTEMPTS = 40


def update(sink: Sink, key: str, merge: Callable[[bytes | None], bytes | None], *,
           expect: tuple[bytes, str] | None | EllipsisType = ..., attempts: int = UPDATE_ATTEMPTS) -> str | None:
    """Replace the object under `key` with ``merge(what is there)``, safe against other writers.

    `merge` gets the object's bytes (None when there is none) and returns the new bytes, or
    None to leave it as it is. The new object is written with a conditional write against
    the version read; when another writer got there first, the object is read again and
    merged again (with a jittered back-off), so nothing another writer put there is lost.
    `expect` is the object and version the caller believes are there (what it last read or
    wrote; None: no object): the first attempt merges into it without reading. Returns the version written,
    None when `merge` left the object as it was; SinkUnavailable when the object kept
    changing during `attempts` tries.
    """
    for attempt in range(attempts):
        got = sink.read_versioned(key) if attempt or isinstance(expect, EllipsisType) else expect
        data = merge(got[0] if got else None)
        if data is None:
            return None
        written = sink.write_if(key, data, got[1] if got else None)
        if written is not None:
            return written
        if attempt:  # another writer was there first: read, merge, write again
            time.sleep(random.uniform(0, min(2.0, 0.02 * 2 ** attempt)))
    raise SinkUnavailable(f"{sink.url(key)} kept changing during {attempts} attempts to update it")


def broken_install(scheme: str, requirement: str, e: ImportError) -> HptError:
    """The error for a client library that hpt depends on but cannot import (exit code 1)."""
    name = re.split(r"[<>=!~]", requirement, maxsplit=1)[0]
    return HptError(f"{scheme} locations need {name}, a dependency of hpt that cannot be imported ({describe(e)}): this "
                    f"installation of hpt is broken; repair it in hpt's environment with pip install '{requirement}' "
                    "(pip check lists anything else missing)")


def describe(e: BaseException) -> str:
    """A one-line, secret-free description of an error from a cloud client."""
    text = " ".join(str(e).split())
    pool = re.search(r"host='([^']+)', port=(\d+)\): Max retries exceeded", text)
    if pool:  # urllib3's wording buries the point under the request line
        text = f"cannot connect to {pool.group(1)}:{pool.group(2)}"
    text = re.sub(r"((?:https?://|url: )\S+?)\?\S*", r"\1", text)  # queries may carry tokens
    text = redact(text)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class BucketSink:
    """What the bucket-backed sinks share: the URI, keys under the prefix, retried calls.

    Subclasses say which errors are worth retrying (:meth:`_transient`) and how to explain
    the others (:meth:`_access_error`).
    """

    remote = True
    scheme = ""
    client_loggers: tuple[str, ...] = ()

    def __init__(self, bucket: str, prefix: str = "") -> None:
        # hpt's CLI logs at INFO; the cloud clients' INFO lines ("Found credentials in ...") are noise there.
        for name in (*self.client_loggers, "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"{self.scheme}://{bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str) -> str:
        return f"{self.scheme}://{self.bucket_name}/{self._key(key)}"

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return retrying(call, self._transient, f"{self.uri}: {what}")
        except SinkUnavailable:
            raise
        except Exception as e:
            raise self._access_error(what, e) from None

    def _transient(self, e: BaseException) -> bool:
        raise NotImplementedError

    def _access_error(self, what: str, e: Exception) -> Exception:
        raise NotImplementedError
