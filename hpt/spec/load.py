"""Reading a spec file: JSON, with every key given twice in one object said, before the spec is parsed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from hpt.errors import Problem, SpecError, json_error
from hpt.spec.checker import join
from hpt.spec.objects import Spec
from hpt.spec.parse import parse_spec

__all__ = ["load_spec"]


def load_spec(path: str | Path, today: date | None = None, quick: bool = False) -> Spec:
    """Read, parse and validate a spec file, its data included.

    `today` (default: the current date) picks automatic periods and the screening month. `quick`: the spec's quick
    screening variant, without the notes about the periods it replaces (:func:`~hpt.spec.parse.parse_spec`).
    """
    source = str(path)
    if not source.strip():  # an empty SPEC (a CI parameter left blank): "." would be read as the current folder
        raise SpecError("", [Problem("", "the spec path is empty: give a spec file (e.g. specs/lstm.json)")])
    p = Path(path)
    if not p.is_file():
        raise SpecError(source, [Problem("", "spec file not found" if not p.exists() else "not a file")])
    try:
        document = json.loads(p.read_text(encoding="utf-8-sig"), object_pairs_hook=_KeyedObject)  # a BOM is fine
    except json.JSONDecodeError as e:
        raise SpecError(source, [Problem("", json_error(e))]) from None
    except UnicodeDecodeError:
        raise SpecError(source, [Problem("", "not a UTF-8 text file")]) from None
    twice = list(_repeated_keys(document))
    if twice:
        raise SpecError(source, twice)
    return parse_spec(document, source=source, base_dir=p.resolve().parent, default_name=p.stem, today=today,
                      quick=quick)


class _KeyedObject(dict):  # type: ignore[type-arg]
    """A JSON object that remembers the keys its text gave more than once (json keeps only the last value)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated = {k: n for k, n in Counter(k for k, _ in pairs).items() if n > 1}


def _repeated_keys(value: Any, where: str = "") -> Iterator[Problem]:
    """A problem for each key given twice in one object, at its JSON path, in document order."""
    if isinstance(value, dict):
        for key, n in getattr(value, "repeated", {}).items():
            yield Problem(join(where, key), f"given {n} times in the same object (JSON would keep only the last "
                                            "one and drop the others): merge them into one")
        for key, v in value.items():
            yield from _repeated_keys(v, join(where, key))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _repeated_keys(v, f"{where}[{i}]")
