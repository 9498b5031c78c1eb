"""The trials' results at a location on top of any sink (the keys: :mod:`hpt.layout`).

A finished trial is its model, its curve and its row, then a line of ``results.csv``;
run records are :mod:`hpt.runs`, claims :mod:`hpt.claims`.

Several runs may write to one location at once: ``results.csv`` is only replaced with
:func:`hpt.sinks.update` (a conditional write against the version just read; on a conflict
the newer file is read, merged and written again), so no run drops another's rows. A row
object is written with :func:`~hpt.sinks.update` as well, and never over another run's ``ok`` row unless it is a new ``ok``
row of a ``--force`` run (:mod:`hpt.claims` keeps two live runs off one trial; this is what
holds when they met anyway).

For a remote sink a streaming store (``ResultStore(sink, stream=True)``) writes each trial
to a local journal (:mod:`hpt.journal`) and returns at once; a background thread delivers
it (:mod:`hpt.uploader`), retrying while the sink is away, so uploads overlap the next trial's
training and an outage loses nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd

from hpt import layout
from hpt.journal import Entry, Journal
from hpt.layout import RESULTS_CSV
from hpt.progress import plural
from hpt.rows import (
    TypedLines,
    bulk,
    is_baseline,
    parse_csv,
    parse_row,
    read_lines,
    result_row,
    row_damage,
    rows_frame,
    to_csv,
)
from hpt.sinks import Sink, env_float, update
from hpt.trial import Status, TrialResult, outranks
from hpt.uploader import InMemory, Then, Uploader

__all__ = ["ResultStore", "SyncReport"]

log = logging.getLogger("hpt")
T = TypeVar("T")


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`ResultStore.sync` did."""

    delivered: int  # trials delivered from the local journal
    repaired: int  # rows that were in rows/ but missing from results.csv
    rows: int  # rows at the location afterwards
    damaged: int = 0  # lines of results.csv that did not say their row (cut short, text for a number): replaced


class ResultStore:
    """Reads and writes one results location.

    With ``stream=True`` and a remote sink, :meth:`record` and :meth:`write_run` return at
    once and a background thread delivers; call :meth:`close` at the end to wait for it.
    """

    def __init__(self, sink: Sink, stream: bool = False, replace_ok: bool = False) -> None:
        self.sink = sink
        self.replace_ok = replace_ok  # --force: a new ok row may replace an ok row (nothing else ever does)
        self._rows: dict[str, dict[str, Any]] | None = None
        self._known: dict[str, dict[str, Any]] = {}  # rows known to be at the location: results.csv is merged from them
        # results.csv as this store last read or wrote it, its version and its text rows (None: not parsed yet)
        self._csv: tuple[bytes, str, dict[str, dict[str, Any]] | None] | None = None
        self._lines: TypedLines | None = None  # results.csv's ok lines, typed
        self._damaged = False  # results.csv was there and not a table of rows
        self._drop: set[str] = set()  # trials whose results.csv line is damaged: the next merge replaces it
        self._typed: dict[str, dict[str, Any]] = {}  # ... their rows, by trial id
        self.objects_read = 0  # row objects read by rows(): what a run with nothing left to train reads
        self._lock = threading.Lock()
        self.stream = stream
        self.journal = Journal(sink.uri) if stream and getattr(sink, "remote", False) else None
        self._uploader: Uploader | None = None

    @property
    def uri(self) -> str:
        return self.sink.uri

    def rows(self) -> dict[str, dict[str, Any]]:
        """Every trial's row by trial id (the trials of ``rows/``), read once and kept up to date.

        A trial whose ``results.csv`` line is ``ok`` has its row from that line (:class:`~hpt.rows.TypedLines`):
        an ok row object is only ever replaced by another ok one (:meth:`_write`), and a line is merged
        only from a row object written before it, so an ok line is an ok row for good. Only the other
        row objects are read (a location of 100,000 done trials: none). A ``--force`` store reads them all:
        it reruns the rows that are there, as their objects say.
        """
        if self._rows is None:
            keys = self.sink.list(layout.ROWS)
            done = {} if self.replace_ok else self._ok_lines()
            if self._damaged and keys:  # hpt's own file, damaged (someone else's, beside no rows, is not rebuilt)
                log.warning("warning: %s is damaged (not a table of rows); it is rebuilt from rows/, the record of "
                            "truth", self.sink.url(RESULTS_CSV))
            ids = layout.ids_of(keys, layout.ROWS)
            rows = self._read_rows(keys, {key: done[tid] for tid, key in ids.items() if tid in done})
            with self._lock:
                self._known.update(rows)
            self._rows = rows
        return self._rows

    def _read_rows(self, keys: list[str], typed: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The rows of `keys`, in their order: from `typed` (by key) where it has them, else read."""
        unread = [k for k in keys if k not in typed]
        self.objects_read += len(unread)
        blobs = iter(self.read_many(self.sink.read, unread))
        rows: dict[str, dict[str, Any]] = {}
        for key in keys:
            row = typed.get(key)
            if row is not None:
                rows[row["trial_id"]] = row
                continue
            data = next(blobs)
            row = parse_row(data)
            if row is not None:
                rows[row["trial_id"]] = row
            elif key.endswith(".json") and data is not None:
                log.warning("warning: %s is damaged (%s); its trial will run again", key, row_damage(data))
        return rows

    def _ok_lines(self) -> dict[str, dict[str, Any]]:
        """The rows of results.csv's ok lines, typed, by trial id ({} when it is missing or damaged); the file
        as read becomes the version the next merge into it expects."""
        got = self.sink.read_versioned(RESULTS_CSV)
        if got is None:
            return {}
        self._csv = (got[0], got[1], None)  # its text rows when a merge needs them
        cut: list[list[str]] = []
        with bulk():  # the lines' lists are made and gone before the garbage collector runs again
            table = read_lines(got[0], whole=True, cut=cut)  # a line cut short (a damaged file) is no ok row
            if table is None:
                self._damaged = True
                return {}
            header, lines = table
            status = header.index("status") if "status" in header else None
            ok = [cells for cells in lines if status is not None and cells[status] == Status.OK.value]
            self._lines = TypedLines(header, ok)
            # lines that do not say their row (cut short, text for a number): rewritten from the rows at the next merge
            self._drop = _ids_of(cut, header) | self._lines.damaged
            del table, lines, ok
        if self._drop:
            log.warning("warning: %s: %s damaged (cut short, or text where a number belongs), trial %s first; "
                        "rewritten from rows/", self.sink.url(RESULTS_CSV), plural(len(self._drop), "line"),
                        min(self._drop))
        self._typed = self._lines.rows
        return self._typed

    def frame(self) -> pd.DataFrame:
        """:meth:`rows` as :func:`~hpt.rows.rows_frame` gives them; from results.csv's typed columns when every
        row is one of its ok lines (a run with nothing left to train)."""
        rows, lines = self.rows(), self._lines
        if lines is not None and len(rows) == len(lines.rows) and all(lines.rows.get(t) is r for t, r in rows.items()):
            return lines.frame(rows)
        return rows_frame(rows.values())

    def refresh(self, trial_ids: Iterable[str] | None = None) -> None:
        """Read again what other runs may have written since :meth:`rows` was read: the rows of `trial_ids`,
        or (None) every row object in ``rows/`` not known yet. Newer rows replace known ones as they would at
        the location (an ok row is never replaced by a worse one)."""
        rows = self.rows()
        if trial_ids is None:
            keys = [k for tid, k in layout.ids_of(self.sink.list(layout.ROWS), layout.ROWS).items() if tid not in rows]
        else:
            keys = [layout.row(tid) for tid in dict.fromkeys(trial_ids)]
        found = [r for r in (parse_row(data) for data in self.read_many(self.sink.read, keys)) if r is not None]
        with self._lock:
            for row in found:
                _prefer_newer(self._known, row)
                _prefer_newer(rows, row)

    def read_many(self, read: Callable[[str], T], keys: list[str]) -> list[T]:
        """`read` of each key, in order: 16 at a time from a bucket (each is a request), one by one from a folder."""
        if getattr(self.sink, "remote", False) and len(keys) > 1:
            with ThreadPoolExecutor(16) as pool:
                return list(pool.map(read, keys))
        return [read(k) for k in keys]

    def curves(self, trial_ids: Collection[str]) -> dict[str, str]:
        """The learning curves (``curves/<trial_id>.csv`` text) of these trials, by id; those without one left out."""
        ids = list(dict.fromkeys(trial_ids))
        blobs = self.read_many(self.sink.read, [layout.curve(tid) for tid in ids])
        return {tid: data.decode("utf-8", "replace") for tid, data in zip(ids, blobs, strict=True) if data is not None}

    def done(self) -> set[str]:
        """Ids of trials that finished ``ok``: a re-run skips them."""
        return {tid for tid, row in self.rows().items() if row.get("status") == Status.OK.value}

    def record(self, result: TrialResult, run_id: str, metric_columns: Iterable[str]) -> dict[str, Any]:
        """Store a finished trial: model and curve first, then its row, then results.csv."""
        tid = result.trial.trial_id
        objects: list[tuple[str, bytes]] = []
        model_uri = ""
        if result.model is not None:
            objects.append((layout.model(tid), result.model))
            model_uri = self.sink.url(layout.model(tid))
        if result.curve is not None:
            objects.append((layout.curve(tid), result.curve.encode()))
        row = result_row(result, run_id, metric_columns, model_uri)
        objects.append((layout.row(tid), json.dumps(row, indent=1).encode()))
        _prefer_newer(self.rows(), row)
        self._put(objects, row)
        return row

    def then(self, call: Callable[[], None]) -> None:
        """Call `call` once everything stored so far is at the location (at once when nothing waits)."""
        if self.stream:
            self._background().submit(Then(call))
        else:
            call()

    def write_csv(self) -> None:
        """Merge every row this store knows to be at the location (those of :meth:`rows`, and those it wrote) into
        results.csv."""
        self.rows()  # read, if not yet
        self._merge_csv(())

    def write_run(self, record: dict[str, Any]) -> None:
        """Write a run record (:mod:`hpt.runs`) in turn with the results before it."""
        self._put([(layout.run(record["run_id"]), json.dumps(record, indent=1, default=str).encode())], None)

    def _put(self, objects: list[tuple[str, bytes]], row: dict[str, Any] | None) -> None:
        if self.journal is not None:  # remote: durable in the local journal first, then delivered
            self._background().submit(self.journal.add(objects, row))
        elif self.stream:  # a local folder: written, and results.csv merged in batches, off the dispatch thread
            self._background().submit(InMemory(objects, row))
        elif self._write(objects, row) and row is not None:
            self._merge_csv([row])

    def _background(self) -> Uploader:
        if self._uploader is None:
            self._uploader = Uploader(self._deliver, self._merge_csv, self.uri)
        return self._uploader

    def _deliver(self, entry: Entry | InMemory | Then) -> bool:
        """Write an entry's objects; False when its row was not written because an ok row is there."""
        stands = True
        if not entry.delivered:
            stands = self._write(list(entry.objects()), entry.row)
            entry.mark_delivered()
        return stands

    def _write(self, objects: list[tuple[str, bytes]], row: dict[str, Any] | None) -> bool:
        """Write a trial's objects, its row last and with a conditional write, unless an ok row of
        another run is there already: an ok row is only ever replaced by a --force run's ok row.
        False when nothing was written for that reason."""
        if row is None:
            for key, data in objects:
                self.sink.write(key, data)
            return True
        key = layout.row(row["trial_id"])
        got = self.sink.read_versioned(key)
        if not self._may_replace(got[0] if got else None, row):
            return False
        for k, data in objects:
            if k != key:
                self.sink.write(k, data)
        mine = dict(objects)[key]
        stands = True

        def merge(there: bytes | None) -> bytes | None:  # another run may have written this row meanwhile
            nonlocal stands
            stands = self._may_replace(there, row)
            return mine if stands else None

        update(self.sink, key, merge, expect=got)
        return stands

    def _may_replace(self, data: bytes | None, row: dict[str, Any]) -> bool:
        """Whether `row` may replace the trial's row at the location (`data`): unless that row outranks it
        (:func:`~hpt.trial.outranks`), and an ok row there only by a --force run's ok row."""
        there = parse_row(data)
        if there is None or _same(there, row):
            return True
        if not outranks(there, row) and (there.get("status") != Status.OK.value or self.replace_ok):
            return True
        if there.get("status") == Status.OK.value and not is_baseline(row):
            # a baseline's row is the same whichever run computed it: keeping one says nothing
            log.warning("warning: trial %s: the ok row of run %s is kept at %s; this run's %s result is not stored",
                        row["trial_id"], there.get("run_id"), self.uri, row.get("status"))
        with self._lock:
            self._known[row["trial_id"]] = there
            if self._rows is not None:
                self._rows[row["trial_id"]] = there
        return False

    def _merge_csv(self, rows: Iterable[dict[str, Any]], drop: Collection[str] = ()) -> None:
        """Merge `rows` and every row known to be here into results.csv (:func:`hpt.sinks.update`); the lines of
        the trials in `drop` (damaged ones) go first, so a row takes their place even from the same run."""
        with self._lock:
            for row in rows:
                _prefer_newer(self._known, row)
            mine = list(self._known.values())
            drop = {*drop, *self._drop}
        merged: dict[str, dict[str, Any]] = {}
        out = b""

        def merge(data: bytes | None) -> bytes | None:
            nonlocal merged, out
            last = self._csv
            todo = mine
            if last is not None and data is last[0]:  # as this store last read or wrote it: parsed once at most
                # a row typed from a line of the file as this store read it is in every version it read or wrote since
                typed = self._typed
                todo = [row for row in mine if typed.get(row["trial_id"]) is not row]
                if not todo and not drop:
                    return None
                merged = dict(last[2]) if last[2] is not None else parse_csv(data)
            else:
                merged = parse_csv(data) if data else {}
            changed = False
            for tid in drop:
                changed |= merged.pop(tid, None) is not None
            for row in todo:
                changed |= _prefer_newer(merged, row)
            if data is not None and not changed:
                return None
            out = to_csv(list(merged.values())).encode()
            return out

        # optimistic: results.csv as this store last wrote it, unread; a conflict reads, merges and writes again
        version = update(self.sink, RESULTS_CSV, merge, expect=(self._csv[0], self._csv[1]) if self._csv else ...)
        if version is not None:
            self._csv = (out, version, merged)
        with self._lock:
            self._drop -= drop  # gone from the file, written now or by another run before

    def sync(self) -> SyncReport:
        """Deliver what ended runs left in the local journal, and add rows missing from results.csv."""
        delivered = 0
        journal = self.journal or (Journal(self.sink.uri) if getattr(self.sink, "remote", False) else None)
        if journal is not None:
            for _, entries in journal.orphans():
                stood = [self._deliver(entry) for entry in entries]
                rows = [e.row for e, ok in zip(entries, stood, strict=True) if e.row is not None and ok]
                self._merge_csv(rows)
                if self._rows is not None:
                    for row in rows:
                        _prefer_newer(self._rows, row)
                for entry in entries:
                    entry.remove()
                delivered += sum(1 for e in entries if e.row is not None)
        got = self.sink.read(RESULTS_CSV)
        cut: list[list[str]] = []
        table = read_lines(got, whole=True, cut=cut) if got else None
        typed = TypedLines(*table) if table is not None and table[1] else None
        # lines cut short, or with text for a number: their rows replace them
        damaged = (_ids_of(cut, table[0]) if table is not None else set()) | (typed.damaged if typed else set())
        listed = _ids_of(table[1], table[0]) - damaged if table is not None else set()
        missing = [k for k in self.sink.list(layout.ROWS) if layout.id_of(k, layout.ROWS) not in listed]
        repaired = [r for r in (parse_row(self.sink.read(k)) for k in missing) if r is not None]
        if repaired or damaged:
            self._merge_csv(repaired, drop=damaged)
        final = self.sink.read(RESULTS_CSV)
        return SyncReport(delivered, len(repaired), len(parse_csv(final)) if final else 0, len(damaged))

    def close(self) -> list[str]:
        """Wait (up to ``$HPT_FLUSH_TIMEOUT`` s, default 120) for queued results to be delivered.

        Returns nothing when all arrived; otherwise lines that say what is still waiting,
        where, and how to deliver it.
        """
        if self._uploader is None:
            if self.journal is not None:
                self.journal.close()
            return []
        waiting, error = self._uploader.close(env_float("HPT_FLUSH_TIMEOUT", 120.0))
        if self.journal is None:
            return [] if not waiting else [
                f"{plural(waiting, 'finished trial')} could not be written to {self.uri}: {error}",
                "run the same command again to train them again (finished trials that were written are kept)"]
        self.journal.close()
        if not waiting:
            return []
        return [f"{plural(waiting, 'finished trial')} could not be delivered to {self.uri} in full: {error}",
                f"they are kept in the local journal {self.journal.dir}",
                f"deliver them with: hpt sync {self.uri}   (or run the same command again)"]


def _ids_of(lines: list[list[str]], header: list[str]) -> set[str]:
    """The trial ids of results.csv `lines` (those cut before their id have none)."""
    tid = header.index("trial_id")
    return {cells[tid] for cells in lines if len(cells) > tid}


def _prefer_newer(rows: dict[str, dict[str, Any]], row: dict[str, Any]) -> bool:
    """Put `row` in `rows` unless the one there outranks it (:func:`~hpt.trial.outranks`), or neither outranks the
    other and the one there finished later; True when `rows` changed."""
    old = rows.get(row["trial_id"])
    if old is row:
        return False
    if old is not None:
        if outranks(old, row) or _same(old, row):
            return False
        if not outranks(row, old) and str(old.get("finished_at") or "") > str(row.get("finished_at") or ""):
            return False
    rows[row["trial_id"]] = row
    return True


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same run, status and finish time, compared as text (a row from results.csv beside one from JSON)."""
    for k in _SAME_KEYS:
        x, y = a.get(k, ""), b.get(k, "")
        if not (x.__class__ is str and y.__class__ is str and x == y) and str(x) != str(y):  # text mostly: no str()
            return False
    return True


_SAME_KEYS = ("run_id", "status", "finished_at")
