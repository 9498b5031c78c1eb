"""Load and validate a JSON experiment spec into a frozen :class:`Spec`.

Every problem is collected with its JSON path (``parameters.lr[2]``) and all of them are
raised together as one :class:`~hpt.errors.SpecError`, before anything trains.

    load.py        reading the file: JSON errors, keys given twice
    parse.py       the document section by section (parse_spec), and the checks across sections
    checker.py     the problems found so far, and every section's keys (for "did you mean")
    objects.py     Spec and its parts, the metric names
    data.py, periods.py, training.py, parameters.py, search.py, metrics.py, run.py
                   one section each (run.py: name, sink, resources, tracking); search.py is the
                   table of the search keys and strategies, and imports nothing of hpt but its errors
    windowing.py   whether the data gives every period its windows (check_data), and the spec at
                   another fidelity (quick_spec)
"""

from __future__ import annotations

from hpt.spec.load import load_spec
from hpt.spec.objects import DISTRIBUTIONS, METRICS, Axis, DataSpec, Distribution, Spec
from hpt.spec.parse import parse_spec
from hpt.spec.search import SearchSpec
from hpt.spec.windowing import at_fidelity, check_data, data_report, quick_spec, unused_periods

__all__ = [
    "DISTRIBUTIONS",
    "METRICS",
    "Axis",
    "DataSpec",
    "Distribution",
    "SearchSpec",
    "Spec",
    "at_fidelity",
    "check_data",
    "data_report",
    "load_spec",
    "parse_spec",
    "quick_spec",
    "unused_periods",
]
