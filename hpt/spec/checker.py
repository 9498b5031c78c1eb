"""What every section's checks share: the problems found so far, and the keys of every section.

A section's parser takes the :class:`Checker` and adds a :class:`~hpt.errors.Problem` (a JSON
path and a message) for everything wrong; :func:`hpt.spec.parse_spec` raises them together.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from hpt.errors import Problem, close_matches, did_you_mean, show
from hpt.hparams import TRAINING
from hpt.periods import Period
from hpt.spec.objects import REPEATS
from hpt.spec.search import KEYS

__all__ = ["SECTIONS", "Checker", "hint", "is_int", "join", "type_text"]

SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("name", "description", "architecture", "data", "date_ranges", "search", "parameters", "training", "metrics",
         "objective", "sink", "resources", "tracking"),
    "data": ("path", "time_column", "target", "features", "time_format", "time_unit", "fill", "fill_limit", "duplicates",
             "season", "calendar", "future_features", "series", "series_filter", "series_features"),
    "training": (*TRAINING, REPEATS),
    "parameters": tuple(TRAINING),
    "search": ("strategy", *KEYS),
    "resources": ("gpus", "trials_per_gpu", "executor", "threads"),
    "tracking": ("mlflow", "experiment", "tensorboard"),
    "date_ranges.auto": ("count", "months", "holdout"),
}
"""The keys of each section of a spec ("" is the top level), to point a misplaced key to its section."""


class Checker:
    """The problems of one spec document, and the checks every section uses."""

    def __init__(self, source: str, base_dir: Path | None, today: date) -> None:
        self.source = source
        self.base_dir = base_dir  # the spec's folder: relative paths in the spec are relative to it
        self.today = today
        self.problems: list[Problem] = []
        self.period_places: list[tuple[str, Period]] = []  # each period with its JSON path, for the data's problems
        self.unsure: set[str] = set()  # sections (and keys) the spec gives wrongly: a misspelt key, a value that is not an
        # object, an unknown strategy; checks that depend on them keep quiet, as their problem would follow from that one

    def meant(self, path: str) -> bool:
        """Whether the spec gave `path` in a way it can be read (:attr:`unsure`): a check that depends on it reports."""
        return path not in self.unsure

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def unknown_keys(self, obj: dict[str, Any], valid: tuple[str, ...], where: str) -> None:
        for key in obj:
            if key not in valid:
                self.add(join(where, key), f"unknown key{hint(key, valid, where)}; valid: {', '.join(valid)}")
                self.unsure.update(join(where, k) for k in close_matches(key, valid) if k not in obj)

    def string(self, obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        path = join(where, key)
        if key not in obj:
            if default is None:
                self.add(path, "missing (required)")
                return ""
            return default
        value = obj[key]
        if not isinstance(value, str) or not value.strip():
            self.add(path, f"expected a non-empty string, got {show(value)}")
            return ""
        return value

    def section(self, value: Any, where: str, required: bool = False) -> dict[str, Any] | None:
        if value is None and required:
            self.add(where, "missing (required)")
            return None
        if not isinstance(value, dict):
            self.add(where, f"expected an object, got {show(value)}")
            self.unsure.add(where)
            return None
        return value

    def folder(self, path: str) -> str:
        """A local folder named in the spec, relative to the spec's folder; a URI as it is."""
        if "://" in path or self.base_dir is None:
            return path
        return str(self.base_dir / Path(path).expanduser())


def hint(key: str, valid: tuple[str, ...] | Mapping[str, Any], where: str) -> str:
    """' (did you mean "data.season"?)' for a key of another section (training.season), else the closest valid key."""
    places = [f'"{join(section, key)}"' for section, keys in SECTIONS.items() if section != where and key in keys]
    return f" (did you mean {' or '.join(places)}?)" if places else did_you_mean(key, valid)


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def type_text(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false"}.get(type(v), show(v))


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
