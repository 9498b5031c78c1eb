"""Run records: ``runs/<run_id>.json`` at a results location.

A run writes its record when it starts (what was run, where, by whom, with which versions),
renews its heartbeat while it runs (``heartbeat_at``, and ``expires_at``: the lease of its
claims), and writes it once more at the end with how it ended. A record still ``running``
after its lease ran out, or whose process is gone from this host, is a run that was killed:
the next run at the location marks it ``abandoned``.

Readers go through :func:`run_records` (every record that reads as one) and
:func:`latest_run` (the latest one that holds a spec).
"""

from __future__ import annotations

import getpass
import importlib.metadata
import json
import os
import platform
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from hpt import __version__, layout
from hpt.claims import expired, this_process
from hpt.sinks import Sink, update
from hpt.stamps import utcnow

if TYPE_CHECKING:
    from hpt.spec import Spec
    from hpt.store import ResultStore

__all__ = ["RunRecord", "abandon_dead_runs", "latest_run", "run_fields", "run_records"]


def run_fields(spec: Spec, slots: Iterable[str]) -> dict[str, Any]:
    """What a run record says about the run: its spec, the command, versions, host, user and slots."""
    try:
        torch_version = importlib.metadata.version("torch")  # without importing torch into this process
    except importlib.metadata.PackageNotFoundError:
        torch_version = "unknown"
    return {
        "spec_name": spec.name,
        "spec_source": spec.source,
        "spec_folder": spec.folder or os.getcwd(),  # where its relative paths (data.path) were read from
        "spec": dict(spec.document),
        "fidelity": spec.fidelity.name,
        "periods": [p.label for p in spec.periods],  # what every config is meant to run: hpt results reads it
        "command": sys.argv,
        "hpt_version": __version__,
        "torch_version": torch_version,
        "python": platform.python_version(),
        **this_process(),  # host, pid, pid_ns: with the heartbeat, how a killed run is told from a live one
        "user": getpass.getuser(),
        "slots": list(slots),
    }


class RunRecord:
    """This run's record at the store's location: :meth:`start`, :meth:`beat` while it runs, :meth:`end`."""

    def __init__(self, store: ResultStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.record: dict[str, Any] = {}
        self._lock = threading.Lock()

    def start(self, fields: dict[str, Any], expires_at: str) -> None:
        """Write the record of a run that starts now (`fields` as :func:`run_fields` gives, and more), its lease
        running to `expires_at`."""
        now = utcnow()
        with self._lock:
            self.record.update({"run_id": self.run_id, **fields, "started_at": now, "status": "running",
                                "heartbeat_at": now, "expires_at": expires_at})
            record = dict(self.record)
        self.store.write_run(record)

    def beat(self, expires_at: str) -> None:
        """The heartbeat (a claims renewal calls it): the run is alive, its lease runs to `expires_at`."""
        with self._lock:  # held while writing: an ended run's record is never overwritten by a late beat
            if self.record.get("status") == "running":
                self.record.update(heartbeat_at=utcnow(), expires_at=expires_at)
                self.store.sink.write(layout.run(self.run_id), _encode(self.record))

    def end(self, status: str, **fields: Any) -> None:
        """Write how the run ended (finished, interrupted, failed); nothing when it never started."""
        with self._lock:
            if "run_id" not in self.record:
                return
            self.record.update(status=status, finished_at=utcnow(), **fields)
            record = dict(self.record)
        self.store.write_run(record)


def _encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, indent=1, default=str).encode()


def _decode(data: bytes | None) -> dict[str, Any] | None:
    """A run record's object as a record, None when it is none (missing, damaged, not an object)."""
    try:
        record = json.loads(data) if data else None
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def run_records(sink: Sink) -> list[tuple[str, dict[str, Any]]]:
    """Every run record at the location that reads as one, oldest first (run ids begin with the time), with its key."""
    keys = [k for k in sink.list(layout.RUNS) if layout.id_of(k, layout.RUNS)]
    return [(k, r) for k in keys if (r := _decode(sink.read(k))) is not None]


def latest_run(sink: Sink) -> tuple[str, dict[str, Any]] | None:
    """The latest run record that holds a spec, with its key; None when there is none."""
    for key in reversed([k for k in sink.list(layout.RUNS) if layout.id_of(k, layout.RUNS)]):
        record = _decode(sink.read(key))
        if record is not None and isinstance(record.get("spec"), dict):
            return key, record
    return None


def abandon_dead_runs(store: ResultStore) -> list[dict[str, Any]]:
    """Mark ``running`` records whose run is dead (:func:`hpt.claims.expired`) ``abandoned``; those so marked.

    A record whose run beat meanwhile is left alone (:func:`hpt.sinks.update`).
    """
    sink = store.sink
    keys = [k for k in sink.list(layout.RUNS) if layout.id_of(k, layout.RUNS)]
    marked = []
    for key, got in zip(keys, store.read_many(sink.read_versioned, keys), strict=True):
        if got is not None and update(sink, key, _abandon, expect=got) is not None:
            marked.append({**(_decode(got[0]) or {}), "status": "abandoned"})
    return marked


def _abandon(data: bytes | None) -> bytes | None:
    """A dead run's record marked abandoned; None for any other (a live run's, one that ended, a damaged one)."""
    record = _decode(data)
    if record is None or record.get("status") != "running" or not expired(record):
        return None
    return _encode({**record, "status": "abandoned"})
