"""The trial ids of large plans, kept in a local cache so that a run of an unchanged spec does not draw them again.

Counting what is done before a run walks the whole plan: every config drawn and every trial id
hashed (about 2 s for 100,000 trials). The ids are a function of what the plan was built from
(:meth:`hpt.search.TrialPlan.memo_key`: the search and its axes, the periods and their data's
fingerprints, the fidelity, the base parameters, hpt's and numpy's versions), so they are kept
under the digest of that, one file a plan, in ``$XDG_CACHE_HOME/hpt/plans`` (``~/.cache/hpt/plans``).
A file is checked whole (its count and a checksum) before it is used, and the caller checks some
of its ids against trials built the usual way; a file that fails either is drawn again and
rewritten. Only the newest :data:`KEEP` files are kept; deleting the folder loses nothing but
the time to draw them again. During a run (:func:`at_location`) the results location keeps a
copy (``plans/<key>.ids``), so the first run of a spec on another machine (a fresh CI agent on a
bucket) reads it in one request instead of drawing the plan.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hpt.errors import HptError
from hpt.layout import plan_ids

__all__ = ["KEEP", "at_location", "load_ids", "memo_root", "save_ids"]

KEEP = 16
"""Plan files kept in the cache (the newest)."""

_MAGIC = "hpt-plan-ids 1"


def memo_root() -> Path:
    """``$XDG_CACHE_HOME/hpt/plans`` (``~/.cache/hpt/plans``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "hpt" / "plans"


def _path(key: str) -> Path:
    return memo_root() / f"{key}.ids"


def _checksum(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def _encode(key: str, ids: Sequence[str]) -> str:
    body = "\n".join(ids)
    return f"{_MAGIC} {key} {len(ids)} {_checksum(body)}\n{body}"


def _decode(text: str, key: str, n: int) -> list[str] | None:
    """The ids of a kept file's `text`, None unless it is whole and holds the `n` ids of `key`."""
    head, _, body = text.partition("\n")
    if head != f"{_MAGIC} {key} {n} {_checksum(body)}":
        return None
    ids = body.split("\n")
    return ids if len(ids) == n else None


_LOCATION: contextvars.ContextVar[Any] = contextvars.ContextVar("hpt_plan_location", default=None)
"""The results location whose copy of the plans' ids a run reads and writes beside the local cache."""


@contextlib.contextmanager
def at_location(sink: Any) -> Iterator[None]:
    """While in it, a plan whose ids the local cache lacks reads them from `sink` (a :class:`hpt.sinks.Sink`,
    ``plans/<key>.ids``: one request instead of drawing every config on a machine that has not run the spec),
    and ids drawn are kept there too. A location that cannot be read or written is passed over."""
    token = _LOCATION.set(sink)
    try:
        yield
    finally:
        _LOCATION.reset(token)


def load_ids(key: str, n: int) -> list[str] | None:
    """The `n` ids kept under `key` (the local cache's, else the location's, then kept locally too); None when
    neither holds them whole."""
    try:
        ids = _decode(_path(key).read_text(encoding="ascii"), key, n)
    except (OSError, UnicodeDecodeError):
        ids = None
    sink = _LOCATION.get()
    if ids is not None or sink is None:
        return ids
    try:
        data = sink.read(plan_ids(key))
        ids = _decode(data.decode("ascii"), key, n) if data is not None else None
    except (OSError, UnicodeDecodeError, HptError):
        return None
    if ids is not None:
        _save_local(key, ids)
    return ids


def save_ids(key: str, ids: Sequence[str]) -> None:
    """Keep `ids` under `key` in the local cache (written whole or not at all; the oldest files beyond
    :data:`KEEP` dropped) and at the location of :func:`at_location`; a place that cannot be written is
    passed over."""
    _save_local(key, ids)
    sink = _LOCATION.get()
    if sink is not None:
        try:
            sink.write(plan_ids(key), _encode(key, ids).encode("ascii"))
        except (OSError, HptError):
            pass


def _save_local(key: str, ids: Sequence[str]) -> None:
    root = memo_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(_encode(key, ids))
            os.replace(tmp, _path(key))
        except BaseException:
            os.unlink(tmp)
            raise
        kept = sorted(root.glob("*.ids"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
