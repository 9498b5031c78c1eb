"""A local journal of results not yet delivered to a remote results location.

Every finished trial's objects (model, curve, row) are written here first, as one *entry*,
and leave only once they are in the bucket and the row is in ``results.csv``. So an outage,
a crash or a killed job loses nothing: the next run of the same spec, or ``hpt sync``,
delivers what is left.

Layout: ``<root>/<location slug>/<process dir>/<entry>/`` where the root is
``$HPT_JOURNAL`` or ``~/.cache/hpt/journal``. Each running process holds an advisory lock
on its own directory; a directory nobody holds belongs to a process that has ended, and
whoever locks it next delivers its entries.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Entry", "Journal", "journal_root"]

_MANIFEST = "manifest.json"
_DELIVERED = "delivered"
_LOCK = ".lock"


def journal_root() -> Path:
    """``$HPT_JOURNAL``, else ``$XDG_CACHE_HOME/hpt/journal`` (``~/.cache/hpt/journal``)."""
    if os.environ.get("HPT_JOURNAL"):
        return Path(os.environ["HPT_JOURNAL"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "hpt" / "journal"


@dataclass(frozen=True)
class Entry:
    """One unit of delivery: objects to write in order, and the row (if any) for results.csv."""

    path: Path
    keys: tuple[str, ...]
    row: dict[str, Any] | None

    @property
    def delivered(self) -> bool:
        """True once the objects are in the bucket; only the results.csv update may be left."""
        return (self.path / _DELIVERED).exists()

    def objects(self) -> Iterator[tuple[str, bytes]]:
        for i, key in enumerate(self.keys):
            yield key, (self.path / str(i)).read_bytes()

    def mark_delivered(self) -> None:
        (self.path / _DELIVERED).touch()

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _read_entry(path: Path) -> Entry | None:
    try:
        manifest = json.loads((path / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None  # half-written by a process that died: its trial was not acknowledged either
    return Entry(path, tuple(manifest["keys"]), manifest.get("row"))


class Journal:
    """This process's journal for one results location, and the entries left by ended processes."""

    def __init__(self, uri: str, root: Path | None = None) -> None:
        self.uri = uri
        self.dir = (root or journal_root()) / _slug(uri)
        self.own = self.dir / f"{_safe(socket.gethostname())}-{os.getpid()}-{secrets.token_hex(3)}"
        self._lock_fd: int | None = None
        self._seq = 0

    def _open(self) -> None:
        if self._lock_fd is not None:
            return
        # Lock under a hidden name first: another process must never see this directory unlocked and adopt it.
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "location.txt").write_text(self.uri + "\n")
        hidden = self.dir / f".new-{self.own.name}"
        hidden.mkdir()
        self._lock_fd = _try_lock(hidden)
        assert self._lock_fd is not None, "a fresh journal directory is locked by no one"
        os.rename(hidden, self.own)

    def add(self, objects: list[tuple[str, bytes]], row: dict[str, Any] | None = None) -> Entry:
        """Write an entry durably (objects, then its manifest, then a rename) and return it."""
        self._open()
        self._seq += 1
        final = self.own / f"{self._seq:08d}"
        tmp = self.own / f".tmp-{self._seq:08d}"
        tmp.mkdir()
        for i, (_, data) in enumerate(objects):
            (tmp / str(i)).write_bytes(data)
        (tmp / _MANIFEST).write_text(json.dumps({"keys": [k for k, _ in objects], "row": row}, default=str))
        os.replace(tmp, final)
        return Entry(final, tuple(k for k, _ in objects), row)

    def close(self) -> None:
        """Release this process's directory; remove it when nothing is left in it."""
        if self._lock_fd is None:
            return
        if not any(p for p in self.own.iterdir() if not p.name.startswith(".")):
            shutil.rmtree(self.own, ignore_errors=True)
        os.close(self._lock_fd)
        self._lock_fd = None

    def orphans(self) -> Iterator[tuple[Path, list[Entry]]]:
        """Entries of ended processes, one directory at a time, locked while the caller delivers them.

        The caller removes delivered entries; the directory goes when it is empty.
        """
        if not self.dir.is_dir():
            return
        for d in sorted(p for p in self.dir.iterdir() if p.is_dir() and p != self.own and not p.name.startswith(".")):
            fd = _try_lock(d)
            if fd is None:
                continue  # a live process: it delivers its own
            try:
                entries = [e for e in (_read_entry(p) for p in sorted(d.iterdir()) if not p.name.startswith("."))
                           if e is not None]
                yield d, entries
                if not any(p for p in d.iterdir() if not p.name.startswith(".")):
                    shutil.rmtree(d, ignore_errors=True)
            finally:
                os.close(fd)

    def count_waiting(self) -> int:
        """Entries holding a row still waiting in this location's journal, from every process."""
        if not self.dir.is_dir():
            return 0
        n = 0
        for manifest in self.dir.glob(f"*/*/{_MANIFEST}"):
            entry = _read_entry(manifest.parent)
            n += entry is not None and entry.row is not None
        return n

def _try_lock(d: Path) -> int | None:
    try:
        fd = os.open(d / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[:60] or "x"


def _slug(uri: str) -> str:
    return f"{_safe(uri.replace('://', '-'))}-{hashlib.sha256(uri.encode()).hexdigest()[:8]}"
