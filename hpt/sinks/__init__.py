"""Where results go: one small protocol, one module per backend.

A sink stores opaque objects under keys such as ``rows/<trial_id>.json``; it knows nothing
of torch or of the results layout (that is :mod:`hpt.store`). The URI scheme picks the
backend: a plain path is a local folder.
"""

from __future__ import annotations

from typing import Protocol

from hpt.errors import InputError

__all__ = ["Sink", "open_sink"]


class Sink(Protocol):
    uri: str

    def check_writable(self) -> None:
        """Prove the location can be written, or raise InputError saying what to fix."""

    def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing any old object atomically."""

    def read(self, key: str) -> bytes | None:
        """The object under `key`, or None when there is none."""

    def list(self, prefix: str) -> list[str]:
        """Keys that start with `prefix` (e.g. ``"rows/"``), sorted."""

    def url(self, key: str) -> str:
        """Where a user finds the object under `key` (a path or a URI)."""


def open_sink(uri: str) -> Sink:
    """The sink for a results location: a folder path, ``gs://bucket/prefix`` or ``s3://bucket/prefix``."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme in ("", "file"):
        from hpt.sinks.local import LocalSink

        return LocalSink(uri.split("://", 1)[1] if scheme else uri)
    if scheme in ("gs", "s3"):
        raise InputError(f"sink {uri}: {scheme}:// results locations are not supported by this version of hpt yet; "
                         "use a local folder")
    raise InputError(f"sink {uri}: unknown scheme {scheme}://; use a folder path, gs://bucket/prefix or s3://bucket/prefix")
