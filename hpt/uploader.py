"""The background thread of a streaming :class:`hpt.store.ResultStore`: it delivers the finished trials in order
(journal entries to a bucket, or a local folder's objects), then merges their rows into ``results.csv`` in
batches, retrying while the location is away; and the calls to make once what came before is delivered.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from hpt.journal import Entry
from hpt.sinks import SinkUnavailable, describe

__all__ = ["InMemory", "Then", "Uploader"]

_CSV_PACE = 1.0  # seconds: while trials keep finishing, results.csv is merged at most this often
log = logging.getLogger("hpt")


@dataclass
class InMemory:
    """A finished trial's objects and row for a local folder, until the background thread writes them."""

    items: list[tuple[str, bytes]]
    row: dict[str, Any] | None
    delivered: bool = False

    def objects(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.items)

    def mark_delivered(self) -> None:
        self.delivered = True
        self.items = []

    def remove(self) -> None:
        pass


@dataclass
class Then:
    """A call to make once every entry queued before it is delivered (a claim released after its row is written)."""

    call: Callable[[], None]
    row: None = None
    delivered: bool = False

    def objects(self) -> Iterator[tuple[str, bytes]]:
        return iter(())

    def mark_delivered(self) -> None:
        self.call()
        self.delivered = True

    def remove(self) -> None:
        pass


class Uploader:
    """The background thread that delivers entries in order (journal entries to a bucket, or a local
    folder's objects), then merges their rows into results.csv: at once after a quiet spell, and at
    most once a second while trials keep finishing (a merge rewrites the whole file)."""

    def __init__(self, deliver: Callable[[Entry | InMemory | Then], bool],
                 merge: Callable[[list[dict[str, Any]]], None], uri: str) -> None:
        self.deliver = deliver  # writes an entry's objects; False when its row was not written (an ok row is there)
        self.merge = merge  # merges rows into results.csv
        self.uri = uri  # the location, for the log
        self.queue: deque[Entry | InMemory | Then] = deque()  # not yet delivered
        self.unmerged: list[Entry | InMemory] = []  # delivered, row not yet in results.csv
        self.cond = threading.Condition()
        self.closing = False
        self.abandon = False
        self.error = ""
        self.failing_since: float | None = None
        self.last_merge = -_CSV_PACE
        self.thread = threading.Thread(target=self._loop, name="hpt-uploader", daemon=True)
        self.thread.start()

    def submit(self, entry: Entry | InMemory | Then) -> None:
        with self.cond:
            self.queue.append(entry)
            self.cond.notify_all()

    def _step(self) -> None:
        with self.cond:
            entry = self.queue[0] if self.queue else None
        if entry is not None:
            stands = self.deliver(entry)
            with self.cond:
                self.queue.popleft()
                if entry.row is None or not stands:
                    entry.remove()
                else:
                    self.unmerged.append(entry)
        batch = list(self.unmerged)
        if batch and self._merge_due():  # one merge for every row delivered since the last one
            self.last_merge = time.monotonic()
            self.merge([e.row for e in batch if e.row is not None])
            for e in batch:
                e.remove()
            with self.cond:
                self.unmerged = self.unmerged[len(batch):]

    def _merge_due(self) -> bool:
        """A merge rewrites all of results.csv: at most one per _CSV_PACE seconds, except at the end."""
        return self.closing or time.monotonic() >= self.last_merge + _CSV_PACE

    def _loop(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # the main thread handles them
        pause = 1.0
        while True:
            with self.cond:
                while not self.queue and not self.closing:
                    if not self.unmerged:
                        self.cond.wait()
                    elif self._merge_due():
                        break
                    else:
                        self.cond.wait(self.last_merge + _CSV_PACE - time.monotonic())
                if self.abandon or (self.closing and not self.queue and not self.unmerged):
                    return
            try:
                self._step()
            except Exception as e:
                self.error = str(e) if isinstance(e, SinkUnavailable) else describe(e)
                if self.failing_since is None:
                    self.failing_since = time.monotonic()
                    log.warning("%s: cannot deliver results now (%s); training goes on, finished trials wait in the "
                                "local journal and are retried", self.uri, self.error)
                with self.cond:
                    if not self.abandon:
                        self.cond.wait(pause)
                pause = min(pause * 2, 5.0 if self.closing else 30.0)
                continue
            if self.failing_since is not None:
                log.warning("%s: delivering again (it did not answer for %.0fs)", self.uri,
                            time.monotonic() - self.failing_since)
                self.failing_since = None
            pause = 1.0

    def close(self, timeout: float) -> tuple[int, str]:
        """Wait for the queue to drain; (results still waiting, the last error)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        while self.thread.is_alive() and time.monotonic() < deadline:
            self.thread.join(min(0.2, max(0.0, deadline - time.monotonic())))
        with self.cond:
            self.abandon = True
            self.cond.notify_all()
            waiting = sum(1 for e in self.queue if e.row is not None) + len(self.unmerged)
        return waiting, self.error
