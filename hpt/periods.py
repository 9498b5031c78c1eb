"""Periods: the ``[start, end)`` date ranges each config is trained on."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

__all__ = ["Period", "parse_time"]


def parse_time(text: str) -> pd.Timestamp:
    """An ISO date or date-time ("2013-01-01", "2013-01-01T06:00"); ValueError otherwise."""
    if not isinstance(text, str) or not text[:4].isdigit():
        raise ValueError(text)
    stamp = pd.Timestamp(text)
    if stamp is pd.NaT:
        raise ValueError(text)
    return stamp


def _fmt(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%d") if t == t.normalize() else t.isoformat(sep=" ")


@dataclass(frozen=True, order=True)
class Period:
    """A half-open time range ``[start, end)``; its end part is held out for validation."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def label(self) -> str:
        return f"{_fmt(self.start)}..{_fmt(self.end)}"

    @property
    def start_text(self) -> str:
        return _fmt(self.start)

    @property
    def end_text(self) -> str:
        return _fmt(self.end)

    def __str__(self) -> str:
        return self.label
