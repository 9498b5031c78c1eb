"""The trial ids of large plans, kept in a local cache so that a run of an unchanged spec does not draw them again.

Counting what is done before a run walks the whole plan: every config drawn and every trial id
hashed (about 2 s for 100,000 trials). The ids are a function of what the plan was built from
(:meth:`hpt.search.TrialPlan.memo_key`: the search and its axes, the periods and their data's
fingerprints, the fidelity, the base parameters, hpt's and numpy's versions), so they are kept
under the digest of that, one file a plan, in ``$XDG_CACHE_HOME/hpt/plans`` (``~/.cache/hpt/plans``).
A file is checked whole (its count and a checksum) before it is used, and the caller checks some
of its ids against trials built the usual way; a file that fails either is drawn again and
rewritten. Only the newest :data:`KEEP` files are kept; deleting the folder loses nothing but
the time to draw them again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["KEEP", "load_ids", "memo_root", "save_ids"]

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


def load_ids(key: str, n: int) -> list[str] | None:
    """The `n` ids kept under `key`; None when there is no such file, or it is not whole."""
    try:
        text = _path(key).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    head, _, body = text.partition("\n")
    if head != f"{_MAGIC} {key} {n} {_checksum(body)}":
        return None
    ids = body.split("\n")
    return ids if len(ids) == n else None


def save_ids(key: str, ids: Sequence[str]) -> None:
    """Keep `ids` under `key` (written whole or not at all), and drop the oldest files beyond :data:`KEEP`;
    a cache that cannot be written is passed over."""
    body = "\n".join(ids)
    root = memo_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(f"{_MAGIC} {key} {len(ids)} {_checksum(body)}\n{body}")
            os.replace(tmp, _path(key))
        except BaseException:
            os.unlink(tmp)
            raise
        kept = sorted(root.glob("*.ids"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
