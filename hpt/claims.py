"""Claims: which run is training which trial at a results location.

Before a run starts a trial it creates ``claims/<trial_id>.json`` with a conditional write
(create if absent), holding its run id, host, pid and when the claim expires. A background
thread renews the run's claims while it lives (a lease); a finished trial's claim is
deleted once its row is at the location. Another run that finds a live claim leaves the
trial alone; a claim whose lease ran out, or whose process is gone from this very host, is
taken over, again with a conditional write, so of two runs racing for it one wins.

``HPT_CLAIM_LEASE`` sets the lease in seconds (default 120), ``HPT_CLAIM_RENEW`` how often
it is renewed (default a quarter of the lease).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hpt import layout
from hpt.errors import HptError
from hpt.sinks import Sink, env_float, update
from hpt.stamps import now, parse_stamp, utcnow

__all__ = ["Claims", "Holder", "expired", "lease_seconds", "process_gone", "sweep_expired", "this_process"]

log = logging.getLogger("hpt")


def lease_seconds() -> tuple[float, float]:
    """(lease, renewal interval) in seconds, from ``HPT_CLAIM_LEASE`` and ``HPT_CLAIM_RENEW``."""
    lease = env_float("HPT_CLAIM_LEASE", 120.0)
    return lease, min(env_float("HPT_CLAIM_RENEW", lease / 4), lease / 2)


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def this_process() -> dict[str, Any]:
    """Who writes a claim or a run record: host, pid and pid namespace (containers on one host share a hostname)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_ns": _pid_namespace()}


def process_gone(record: dict[str, Any]) -> bool:
    """True when the record's process is gone from this machine (same host and pid namespace): its run ended
    without a word. Anything else (another machine, another container) is only known dead when its lease runs out."""
    me = this_process()
    pid = record.get("pid")
    if record.get("host") != me["host"] or record.get("pid_ns", "") != me["pid_ns"] or not isinstance(pid, int) \
            or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # someone else's process: alive
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"  # killed, not yet reaped by its parent
    except (OSError, IndexError):
        return False


def expired(record: dict[str, Any], at: datetime | None = None) -> bool:
    """A claim or run record whose lease ran out, or whose process is gone from this host.

    A record without a lease (written by an older hpt) never expires.
    """
    until = parse_stamp(record.get("expires_at"))
    if until is None:
        return False
    return until < (at or now()) or process_gone(record)


@dataclass(frozen=True)
class Holder:
    """The live run that holds a claim."""

    run_id: str
    host: str
    pid: int

    def __str__(self) -> str:
        return f"run {self.run_id} on host {self.host}"


class Claims:
    """This run's claims at one results location, renewed by a background thread until released.

    `beat(expires_at)` is called after each renewal (the run record's heartbeat).
    """

    def __init__(self, sink: Sink, run_id: str, beat: Callable[[str], None] | None = None) -> None:
        self.sink = sink
        self.run_id = run_id
        self.lease, self.renew = lease_seconds()
        self.beat = beat
        self.me = {"run_id": run_id, **this_process()}
        self._held: dict[str, str] = {}  # trial id -> version of our claim object
        self._lock = threading.Lock()  # guards _held
        self._io = threading.Lock()  # a release and a renewal of one claim do not cross
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down = False  # the location did not answer: trials start unclaimed until a renewal reaches it
        self._warned = False
        self._lapsed: dict[str, str] = {}  # trial id -> version of a claim released while the location was away

    def expires_at(self) -> str:
        return utcnow(self.lease)

    def _record(self) -> bytes:
        return json.dumps({**self.me, "claimed_at": utcnow(), "expires_at": self.expires_at()}).encode()

    def start(self) -> None:
        """Start renewing (and beating) in the background."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hpt-claims", daemon=True)
            self._thread.start()

    def take(self, trial_id: str) -> Holder | None:
        """Claim a trial for this run: None when it is ours now, else the live run that holds it.

        When the location does not answer, the trial is started unclaimed (training goes
        on through an outage, as results do) and a warning says so once; so are the next
        ones, at once, until the renewals in the background reach the location again (a
        claim's wait for an answer, minutes by the sink's settings, would hold up each start).
        """
        if self._down:
            return None
        holder: Holder | None = None

        def claim(data: bytes | None) -> bytes | None:
            """Ours unless another live run holds it (a claim that expired or is damaged is taken over)."""
            nonlocal holder
            holder = _holder(data) if data is not None else None
            return None if holder is not None and holder.run_id != self.run_id else self._record()

        try:
            version = update(self.sink, layout.claim(trial_id), claim, expect=None, attempts=5)  # first: create it
            if version is None:
                return holder
            with self._lock:
                self._held[trial_id] = version
            return None
        except HptError as e:
            self.away(e)
            return None

    @property
    def down(self) -> bool:
        """Whether trials start unclaimed now: the location did not answer, and no renewal has reached it since."""
        return self._down

    def away(self, e: Exception) -> None:
        """The location did not answer (a claim, or a read on the way to a trial's start): trials start unclaimed
        until a renewal reaches it again; a warning says so the first time."""
        self._down = True
        if not self._warned:
            self._warned = True
            log.warning("warning: cannot claim trials at %s (%s); starting them unclaimed, so another run on "
                        "this location might train them too", self.sink.uri, e)

    def release(self, trial_id: str) -> None:
        """Delete this run's claim on a trial (unless another run has taken it over meanwhile); while the location is
        away, it is left to lapse."""
        key = layout.claim(trial_id)
        with self._io:
            version = self._held.get(trial_id)
            if version is None:
                return
            if self._down:  # not renewed any more, it lapses by itself: asking the location would wait for it
                with self._lock:
                    self._held.pop(trial_id, None)
                self._lapsed[trial_id] = version  # deleted once the location answers again
                return
            _delete_unchanged(self.sink, key, version)
            with self._lock:
                self._held.pop(trial_id, None)

    def close(self) -> None:
        """Stop renewing and release what is still held (trials that were interrupted, say)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for tid in list(self._held):
            try:
                self.release(tid)
            except Exception as e:  # it expires by itself
                log.debug("could not release the claim on %s: %s", tid, e)
        if not self._down and self._lapsed:
            try:
                self._delete_lapsed()
            except Exception as e:  # they expire by themselves
                log.debug("could not delete lapsed claims: %s", e)

    def _delete_lapsed(self) -> None:
        """Delete the claims released while the location was away, those still as this run left them."""
        for tid, version in list(self._lapsed.items()):
            with self._io:
                _delete_unchanged(self.sink, layout.claim(tid), version)
                self._lapsed.pop(tid, None)

    def _loop(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # the main thread handles them
        while not self._stop.wait(self.renew):
            self.tick()

    def tick(self) -> None:
        """One renewal: the claims held and the heartbeat; while the location is down, a read to see whether it
        answers again, and then trials are claimed again."""
        try:
            self._renew()
            if self._down:
                self.sink.read(layout.run(self.run_id))
                self._down = False
            if self._lapsed:
                self._delete_lapsed()
        except Exception as e:  # the location is away: the next beat tries again
            log.debug("could not renew claims at %s: %s", self.sink.uri, e)

    def _renew(self) -> None:
        with self._lock:
            held = dict(self._held)
        for tid in held:
            with self._io:
                version = self._held.get(tid)
                if version is None:
                    continue  # released meanwhile
                new = self.sink.write_if(layout.claim(tid), self._record(), version)
                with self._lock:
                    if new is not None:
                        self._held[tid] = new
                        continue
                    del self._held[tid]
            log.warning("warning: trial %s: the claim of this run lapsed and another run took it over; both may "
                        "train it (the first ok row is kept)", tid)
        if self.beat is not None:
            self.beat(self.expires_at())


def sweep_expired(sink: Sink) -> int:
    """Delete the claims at the location whose lease ran out (a run killed, or away when its trial ended): a run
    would take each over, but left alone they stay behind. How many were deleted."""
    deleted = 0
    for key in sink.list(layout.CLAIMS):
        got = sink.read_versioned(key)
        if got is None or not layout.id_of(key, layout.CLAIMS):
            continue
        try:
            record = json.loads(got[0])
        except ValueError:
            continue  # damaged: taken over (and so rewritten) by the next run that claims its trial
        if isinstance(record, dict) and expired(record) and _delete_unchanged(sink, key, got[1]):
            deleted += 1
    return deleted


def _delete_unchanged(sink: Sink, key: str, version: Any) -> bool:
    """Delete the claim at `key` if it is still at `version` (not taken over meanwhile; a narrow window remains
    between the read and the delete, as sinks have no conditional delete); whether it was deleted."""
    got = sink.read_versioned(key)
    if got is None or got[1] != version:
        return False
    sink.delete(key)
    return True


def _holder(data: bytes) -> Holder | None:
    """The live run a claim object names, or None when it expired or is damaged."""
    try:
        record = json.loads(data)
    except ValueError:
        return None
    if not isinstance(record, dict) or parse_stamp(record.get("expires_at")) is None or expired(record):
        return None
    return Holder(str(record.get("run_id", "?")), str(record.get("host", "?")), int(record.get("pid") or 0))
