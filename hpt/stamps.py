"""Timestamps and ids, made one way.

Every time hpt records (a row's ``started_at``, a run record's heartbeat, a claim's lease, a
final report's ``created_at``) is UTC in ISO 8601 with milliseconds, as :func:`utcnow` gives;
every id hpt makes for something it writes (a run, a final model) is :func:`new_id`: the UTC
second it was made and four random hex digits, so ids sort by time.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

__all__ = ["iso", "new_id", "now", "parse_stamp", "utcnow"]


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(t: datetime) -> str:
    """`t` as hpt records times."""
    return t.isoformat(timespec="milliseconds")


def utcnow(after_s: float = 0.0) -> str:
    """The current UTC time as hpt records it (`after_s` seconds from now: a lease's end)."""
    return iso(now() + timedelta(seconds=after_s))


def parse_stamp(text: object) -> datetime | None:
    """A recorded time back as an aware datetime (UTC when it names no zone; ``Z`` allowed); None when it is none."""
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def new_id() -> str:
    """A new id for a run or a final model: ``20240131T120000Z-3f2a``, sorting by when it was made."""
    return now().strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
