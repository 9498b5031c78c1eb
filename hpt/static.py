"""Static series features (``data.series_features``): columns constant within each series, such as a
station's region or capacity, given to the model as inputs.

Each is read once per series and encoded across the series (:class:`Encoding`): a column whose values
are all numbers is standardised by the mean and standard deviation of its values over the series (each
series counted once); any other column is categorical and one-hot encoded, one 0/1 input per category
(in sorted order), unscaled. The encoded values become input columns like the features, the same on
every row of a series: ``static:NAME`` for a numeric one, ``static:NAME=VALUE`` per category
(:data:`hpt.panel.STATIC`); the per-series scaling leaves them as they are (:mod:`hpt.windows`), so every
architecture takes them without knowing of them.

A model file stores the encoding (each numeric column's mean and standard deviation, each categorical
one's categories), so ``hpt predict`` encodes a file's series the same way. A value it cannot encode there
(the column or the series' value missing, a category not seen in training) becomes the train mean (0 once
standardised) or no category (all-zero one-hot), and :meth:`Encoding.encode` says which series had which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hpt.data import column_hint, file_columns, read_columns
from hpt.errors import DataError, show
from hpt.panel import STATIC, name_few

__all__ = ["ATTR", "Encoding", "Feature", "fit_encoding", "read_series_values", "series_values", "with_static"]

ATTR = "series_features"
"""The key of a frame's ``attrs`` that holds its encoding (:meth:`Encoding.to_json`), for the model file."""


@dataclass(frozen=True)
class Feature:
    """One static series feature's encoding: numeric (`mean`, `std`) or categorical (`categories`)."""

    name: str
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Its input columns: ``static:NAME``, or ``static:NAME=VALUE`` per category."""
        if self.categories is None:
            return (f"{STATIC}{self.name}",)
        return tuple(f"{STATIC}{self.name}={c}" for c in self.categories)

    def encode(self, values: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The inputs of each series' value ``(series, len(columns))``; and which series had no value, and
        which one it cannot encode (a category not among :attr:`categories`, text for a numeric one)."""
        missing = values.isna().to_numpy()
        if self.categories is None:
            x = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
            bad = np.isnan(x) & ~missing
            return np.nan_to_num((x - self.mean) / self.std, nan=0.0)[:, None], missing, bad
        text = np.array([_text(v) for v in values], dtype=object)
        hot = (text[:, None] == np.array(self.categories, dtype=object)[None, :]).astype(np.float64)
        return hot, missing, ~missing & (hot.sum(axis=1) == 0)

    def fill_text(self) -> str:
        """What a value it cannot encode becomes, for a warning."""
        if self.categories is None:
            return f"the training series' mean ({self.mean:g})"
        return "no category (all-zero one-hot)"

    def to_json(self) -> dict[str, Any]:
        if self.categories is None:
            return {"name": self.name, "mean": self.mean, "std": self.std}
        return {"name": self.name, "categories": list(self.categories)}


@dataclass(frozen=True)
class Encoding:
    """How a model's static series features become its inputs (see the module's docs)."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The file's columns it reads."""
        return tuple(f.name for f in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        """The input columns it gives, in order."""
        return tuple(c for f in self.features for c in f.columns)

    def encode(self, table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Each series' inputs (`table`: the series' values, one row per series id, a column per feature) and a
        warning line per feature whose column is absent, or some series' values could not be encoded
        (missing, or not among those seen in training), naming them and what they became (:meth:`Feature.fill_text`)."""
        blocks, notes = [], []
        for f in self.features:
            if f.name not in table.columns:
                blocks.append(np.zeros((len(table), len(f.columns))))
                notes.append(f'no column "{f.name}" (a static series feature): forecast every series with '
                             f"{f.fill_text()} for it")
                continue
            values = table[f.name]
            hot, missing, bad = f.encode(values)
            blocks.append(hot)
            ids = [str(i) for i in table.index]
            if missing.any():
                which = [i for i, m in zip(ids, missing, strict=True) if m]
                notes.append(f'{_series(which)} no value of "{f.name}" (a static series feature): forecast with '
                             f"{f.fill_text()} for it")
            if bad.any():
                which = [i for i, b in zip(ids, bad, strict=True) if b]
                first = show(_text(values.to_numpy()[np.flatnonzero(bad)[0]]))
                one = len(which) == 1
                if f.categories is None:
                    what = f"{first}, not a number" if one else f"values that are not numbers (the first: {first})"
                else:
                    knows = f"it knows {name_few([*f.categories], 5)}"
                    what = (f"{first}, a value the model was not trained on ({knows})" if one else
                            f"values the model was not trained on (the first: {first}; {knows})")
                notes.append(f'{_series(which)} "{f.name}" (a static series feature) {what}: forecast with '
                             f"{f.fill_text()} for it")
        data = np.concatenate(blocks, axis=1) if blocks else np.zeros((len(table), 0))
        return pd.DataFrame(data, index=table.index, columns=list(self.columns)), notes

    def to_json(self) -> dict[str, Any]:
        return {"features": [f.to_json() for f in self.features]}

    @classmethod
    def from_json(cls, stored: Any) -> Encoding | None:
        """The encoding a model file (or a frame's ``attrs``) holds; None where it holds none."""
        if not isinstance(stored, dict) or not stored.get("features"):
            return None
        return cls(tuple(Feature(str(f["name"]), float(f.get("mean", 0.0)), float(f.get("std", 1.0)),
                                 None if f.get("categories") is None else tuple(map(str, f["categories"])))
                         for f in stored["features"]))


def _series(ids: list[str]) -> str:
    return f'series "{ids[0]}" has' if len(ids) == 1 else f"{len(ids)} series ({name_few(ids)}) have"


def _text(value: Any) -> str:
    """A categorical value as its category's name."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _is_numeric(values: pd.Series) -> bool:
    """Whether a column's values (missing ones aside) are all numbers: booleans and text are categories."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    present = pd.Series(values.dropna().unique(), dtype=object)
    return bool(len(present)) and not any(isinstance(v, (bool, np.bool_)) for v in present) \
        and bool(pd.to_numeric(present, errors="coerce").notna().all())


def read_series_values(path: str, series: str, names: tuple[str, ...], ids: tuple[str, ...] | None = None,
                       required: bool = True) -> pd.DataFrame:
    """Each series' value of each static column of the file at `path` (:func:`series_values`; only the series
    `ids`, when given). When `required`, DataError (at ``data.series_features[i]``) for a column the file
    lacks; else such a column is left out (every series' value of it is missing)."""
    header = file_columns(path)
    keys = tuple(f"data.series_features[{i}]" for i in range(len(names)))
    if required:
        for key, name in zip(keys, names, strict=True):
            if name not in header:
                shown = ", ".join(map(str, header[:20])) + (f", ... ({len(header)} columns)" if len(header) > 20 else "")
                raise DataError(key, f'no column "{name}" in {path.rstrip("/").rsplit("/", 1)[-1]}'
                                     f"{column_hint(name, header)}; columns: {shown}")
    raw = read_columns(path, (series, *(n for n in names if n in header)), text=(series,))
    if ids is not None:
        raw = raw[raw[series].astype(str).isin(ids)]  # its index stays the file's row positions, for messages
    return series_values(raw, series, names, keys, required)


def series_values(raw: pd.DataFrame, series: str, names: tuple[str, ...], keys: tuple[str, ...],
                  required: bool = True) -> pd.DataFrame:
    """Each series' value of each static column: one row per series id (in sorted order), a column per name.

    `raw` holds the file's rows (its series column and the static columns present); `keys` the spec key of
    each name, for messages. DataError (at its key) for a column that is not constant within some series,
    and, when `required`, for a missing value; else a series without a value has it missing (NaN).
    """
    ids = raw[series].astype(str)
    out = {}
    for name, key in zip(names, keys, strict=True):
        if name not in raw.columns:
            continue
        col = raw[name]
        empty = col.isna().to_numpy()
        if required and empty.any():
            row = int(np.flatnonzero(empty)[0])
            raise DataError(key, f'column "{name}" has no value in row {int(raw.index[row]) + 2} (series '
                                 f'"{ids.iloc[row]}"): a static series feature needs its series\' value on every row')
        given = col[~empty]
        if _is_numeric(col):
            value = pd.to_numeric(given)
        else:  # each distinct value named once: a column of a million rows holds a few
            codes, uniques = pd.factorize(given)
            value = pd.Series(np.array([_text(u) for u in uniques], dtype=object)[codes], index=given.index)
        present = pd.DataFrame({"id": ids[~empty], "value": value})
        counts = present.groupby("id", sort=True)["value"].nunique()
        varying = [str(i) for i in counts.index[counts > 1]]
        if varying:
            seen = present.loc[present["id"] == varying[0], "value"].unique()[:2]
            raise DataError(key, f'column "{name}" is not constant within {len(varying)} series ({name_few(varying)}): '
                                 f'a static series feature has one value per series (series "{varying[0]}" has '
                                 f"{show(_plain(seen[0]))} and {show(_plain(seen[1]))})")
        out[name] = col[~empty].groupby(ids[~empty], sort=True).first()
    index = pd.Index(sorted(ids.unique()), name=series)
    return pd.DataFrame({n: v.reindex(index) for n, v in out.items()}, index=index)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (for :func:`hpt.errors.show`)."""
    return value.item() if isinstance(value, np.generic) else value


def fit_encoding(table: pd.DataFrame) -> Encoding:
    """The encoding of the series' values `table` (:func:`series_values`, no value missing): numeric columns
    standardised over the series (a standard deviation of 0: 1), the others one-hot over their sorted categories."""
    features = []
    for name in table.columns:
        values = table[name]
        if _is_numeric(values):
            x = pd.to_numeric(values).to_numpy(np.float64)
            std = float(x.std())
            features.append(Feature(str(name), float(x.mean()), std if std > 0 else 1.0))
        else:
            features.append(Feature(str(name), categories=tuple(sorted({_text(v) for v in values}))))
    return Encoding(tuple(features))


def with_static(frame: pd.DataFrame, encoded: pd.DataFrame) -> pd.DataFrame:
    """A panel's `frame` with each series' static inputs `encoded` (one row per series id) on every row of it."""
    index = frame.index
    assert isinstance(index, pd.MultiIndex)
    rows = encoded.reindex(pd.Index(index.levels[0]).astype(str)).to_numpy(np.float64)[np.asarray(index.codes[0])]
    return frame.assign(**{c: rows[:, j] for j, c in enumerate(encoded.columns)})
