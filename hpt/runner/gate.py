"""Whether this run may start a trial now: another run at the same location may hold it (claims)."""

from __future__ import annotations

from typing import Protocol

from hpt import layout
from hpt.claims import Claims, Holder
from hpt.errors import HptError
from hpt.rows import parse_row
from hpt.store import ResultStore
from hpt.trial import Status, Trial


class Gate(Protocol):
    """Whether this run may start a trial now (another run at the location may have it)."""

    recheck_s: float  # how often trials turned away are asked about again while the run has other work

    def admit(self, trial: Trial) -> bool:
        """True: start it here (it is this run's now). False: not here, because it is done already or
        another live run is training it; the latter are listed by :meth:`waiting`."""

    def waiting(self) -> list[Trial]:
        """Trials turned away because another live run is training them, to ask about again later."""


class ClaimGate:
    """Admits a trial once this run holds its claim and no other run has stored an ok row for it."""

    def __init__(self, claims: Claims, store: ResultStore, run_id: str, force: bool) -> None:
        self.claims = claims
        self.store = store
        self.recheck_s = claims.renew
        self.run_id = run_id
        # --force reruns the ok rows that were there when it started, not those another run writes meanwhile
        self.rerun = {tid: row.get("run_id") for tid, row in store.rows().items()} if force else {}
        self.held: dict[str, tuple[Trial, Holder]] = {}  # turned away: another live run has it
        self.done_elsewhere = 0

    def admit(self, trial: Trial) -> bool:
        tid = trial.trial_id
        holder = self.claims.take(tid)
        if holder is not None:
            self.held[tid] = (trial, holder)
            return False
        self.held.pop(tid, None)
        if self.claims.down:  # the location is away: neither claimed nor read (each would wait for it), trained here
            return True
        try:
            row = parse_row(self.store.sink.read(layout.row(tid)))
        except HptError as e:
            self.claims.away(e)
            return True  # the location is away: train it (the first ok row is kept)
        if row is not None and row.get("status") == Status.OK.value and row.get("run_id") != self.run_id \
                and row.get("run_id") != self.rerun.get(tid, ""):
            self.claims.release(tid)  # another run finished it since this one started
            self.done_elsewhere += 1
            return False
        return True

    def waiting(self) -> list[Trial]:
        return [trial for trial, _ in self.held.values()]

    def settle(self) -> None:
        """At the run's end: the trials left to another run that it has finished since they were last asked about
        count as done elsewhere, not as still being trained there."""
        if self.claims.down:
            return
        for tid in list(self.held):
            try:
                row = parse_row(self.store.sink.read(layout.row(tid)))
            except HptError:
                return  # the location is away: they stay as they were last seen
            if row is not None and row.get("status") == Status.OK.value:
                del self.held[tid]
                self.done_elsewhere += 1
