"""Inputs known ahead (``data.calendar``, ``data.future_features``): fed for the forecast steps too.

A model with inputs known ahead takes ``lookback + horizon`` rows instead of ``lookback``: the
input window, then one row per forecast step. In those future rows the columns known ahead
(the future features and the calendar columns, standardised like the rest) hold their values
at the forecast steps' times; every other column (the target, the ordinary features) is 0, its
train mean, so nothing of the future leaks in. The rows a window needs are those it already
spans (window j holds rows ``j .. j+lookback+horizon-1``), so the windows are the same.

A builder that can use them takes a ``future_rows`` keyword argument and is called with
``future_rows=horizon`` (its input is then ``(B, lookback + future_rows, n_features)``); one
that does not take it cannot, and a spec that gives it inputs known ahead is refused
(:func:`hpt.architectures.future_problem`). The
frame a spec reads names its columns known ahead in ``attrs`` (:func:`mark_known_ahead`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hpt.calendar import PREFIX, calendar_of

__all__ = ["FUTURE_ARG", "known_ahead", "known_mask", "known_text", "mark_known_ahead", "zero_unknown"]

FUTURE_ARG = "future_rows"
_ATTR = "known_ahead"


def mark_known_ahead(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """`frame`, its ``attrs`` naming the `columns` known for the forecast steps (kept through slicing and pickling)."""
    frame.attrs[_ATTR] = tuple(columns)
    return frame


def known_ahead(frame: pd.DataFrame) -> tuple[str, ...]:
    """The columns of `frame` known ahead (:func:`mark_known_ahead`); none for a frame not marked."""
    return tuple(frame.attrs.get(_ATTR, ()))


def known_mask(columns: tuple[str, ...], known: tuple[str, ...]) -> np.ndarray:
    """For each of `columns`, whether it is known ahead."""
    return np.array([c in known for c in columns], dtype=bool)


def zero_unknown(windows: np.ndarray, lookback: int, known: np.ndarray) -> np.ndarray:
    """Scaled windows ``(N, lookback + horizon, F)`` with every column not `known` ahead set to 0
    (its train mean) in the future rows; in place, and returned."""
    windows[:, lookback:, ~known] = 0.0
    return windows


def known_text(known: tuple[str, ...]) -> str:
    """The spec keys that gave these columns known ahead: "data.calendar: hour, dow; data.future_features: promo"."""
    calendar = calendar_of(known)
    features = [c for c in known if not c.startswith(PREFIX)]
    return "; ".join(([f"data.calendar: {', '.join(calendar)}"] if calendar else [])
                     + ([f"data.future_features: {', '.join(features)}"] if features else []))
