"""How much a trial trains: the fidelity of a run, a value that specs, trials and schedulers carry.

:data:`FULL` trains every config on the spec's periods for its epochs; :data:`QUICK`
(``--quick``) screens configs cheaply: one period, the last whole month of data, at most
20 epochs. A fidelity's name is its identity: rows and run records write it in their
``fidelity`` column and trial ids hash it, so one config's full and quick trials are
different trials, and results rank each fidelity apart. Rows say only the name:
:func:`fidelity_named` turns it back into the value where rows are read.

A fidelity that trains on less data is another value of this class with its own name:
:func:`data_share` gives the fidelity of early stopping's data rungs
(``early_stopping.resource: "data"``): a share ``1/n`` of each period's training windows (the
most recent ones), named ``data-1/n`` (``quick-data-1/n`` under ``--quick``). Whatever trains
differently must be named differently, as ids hash only the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["FIDELITIES", "FULL", "LAST_MONTH", "PERIODS", "QUICK", "Fidelity", "data_share", "fidelity_named",
           "share_text"]

PERIODS = "periods"  # Fidelity.data: the spec's periods
LAST_MONTH = "last_month"  # Fidelity.data: one period, the last whole month of data before the spec's today


@dataclass(frozen=True)
class Fidelity:
    """A fidelity: its name, the most epochs a trial trains and which data it trains on."""

    name: str  # the rows' fidelity column; what trial ids hash
    max_epochs: int | None = None  # a trial trains min(its epochs, max_epochs); None: its own epochs
    data: str = PERIODS  # PERIODS or LAST_MONTH
    option: str = ""  # the command-line option that picks it ("--quick"), for messages
    purpose: str = ""  # what it is for ("screening"), for messages; "" for full runs
    share: float = 1.0  # the share of each period's training windows it trains on (the most recent ones)

    def __str__(self) -> str:
        return self.name

    def epochs(self, epochs: int) -> int:
        """The epochs a trial of a config with `epochs` trains at this fidelity."""
        return epochs if self.max_epochs is None else min(epochs, self.max_epochs)

    @property
    def rows(self) -> str:
        """How messages name its rows: "full rows", "screening (quick) rows"."""
        return f"{self.purpose} ({self.name}) rows" if self.purpose else f"{self.name} rows"


FULL = Fidelity("full")
QUICK = Fidelity("quick", max_epochs=20, data=LAST_MONTH, option="--quick", purpose="screening")
FIDELITIES: dict[str, Fidelity] = {f.name: f for f in (FULL, QUICK)}


_DATA = re.compile(r"(?:(\w+)-)?data-1/(\d+)")


def share_text(share: float) -> str:
    """A share 1/n as it is written: ``1/9``; ``1`` for the whole."""
    return "1" if share >= 1 else f"1/{round(1 / share)}"


def data_share(base: Fidelity, n: int) -> Fidelity:
    """`base` on the most recent 1/`n` of each period's training windows: early stopping's data rungs."""
    name = f"data-1/{n}" if base == FULL else f"{base.name}-data-1/{n}"
    return replace(base, name=name, share=1 / n, purpose="data share")


def fidelity_named(name: Any) -> Fidelity:
    """The fidelity a row's ``fidelity`` column names: :data:`FULL` where it has none (rows written before
    rows had one); a name this version does not know is a fidelity of that name and nothing else."""
    if not isinstance(name, str) or not name:
        return FULL
    known = FIDELITIES.get(name)
    if known is not None:
        return known
    found = _DATA.fullmatch(name)
    if found and int(found.group(2)) >= 1 and (found.group(1) is None or found.group(1) in FIDELITIES):
        return data_share(FIDELITIES[found.group(1) or FULL.name], int(found.group(2)))
    return Fidelity(name)
