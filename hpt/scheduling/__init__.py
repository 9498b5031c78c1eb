"""What to try: the :class:`Scheduler` protocol and the schedulers of the search strategies.

- :mod:`hpt.scheduling.plan`: a fixed, lazy plan (grid, random, the auto strategy's spread).
- :mod:`hpt.scheduling.auto`: the rounds of ``hpt auto``, moving the lr range between rounds.
- :mod:`hpt.scheduling.strategies`: the scheduler of each strategy a spec can name (their keys: :mod:`hpt.spec.search`).
"""

from __future__ import annotations

from hpt.scheduling.base import DONE, WAIT, Scheduler, Suggestion
from hpt.scheduling.strategies import make_scheduler

__all__ = ["DONE", "WAIT", "Scheduler", "Suggestion", "make_scheduler"]
