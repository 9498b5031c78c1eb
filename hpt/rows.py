"""The row schema: one row per trial, as ``rows/<trial_id>.json`` and as a line of ``results.csv``.

The store writes rows with :func:`result_row`, :func:`parse_row` and :func:`to_csv`, and
merges ``results.csv`` with :func:`parse_csv`; the results commands read them back into a
DataFrame with :func:`read_csv` and :func:`rows_frame`. Columns: the leading ids, period
and training seed, ``param_<name>`` for each tuned parameter, the metrics (and any tags, such as
``round``), then where and when.

The ``param_`` columns are made and read here only: :func:`param_column`, :func:`param_name`,
:func:`param_columns` and :func:`params_of`.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import math
import operator
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hpt.errors import redact
from hpt.fidelity import FULL
from hpt.layout import RESULTS_CSV
from hpt.trial import TrialResult

__all__ = [
    "BASELINES",
    "DEFAULT_FIDELITY",
    "DEVICE_METRICS",
    "KEY_COLUMNS",
    "LEADING_COLUMNS",
    "RESULTS_CSV",
    "TAG_COLUMNS",
    "TEXT_COLUMNS",
    "TRAILING_COLUMNS",
    "TypedLines",
    "all_numbers",
    "bulk",
    "damaged_lines",
    "fill_fidelity",
    "is_baseline",
    "is_number",
    "is_number_column",
    "is_param",
    "param_column",
    "param_columns",
    "param_name",
    "params_of",
    "parse_csv",
    "parse_row",
    "plain",
    "read_csv",
    "result_row",
    "row_damage",
    "rows_frame",
    "to_csv",
]

LEADING_COLUMNS = ("run_id", "trial_id", "config_id", "status", "architecture", "fidelity", "period_start", "period_end",
                   "seed")
TRAILING_COLUMNS = ("device", "started_at", "finished_at", "error", "model_uri", "baseline_key")
"""Where and when, then the key a trial shares with its naive baselines (:func:`hpt.search.baseline_key`)."""
TEXT_COLUMNS = frozenset(LEADING_COLUMNS + TRAILING_COLUMNS)
"""The columns that are never metrics: read as text, never offered to rank by."""
TAG_COLUMNS = frozenset({"round", "tpe_trial", "season", "finalist", "data_share", "resumed_epoch"})
"""Tags some rows carry (hpt auto's round, tpe's trial number, a seasonal baseline's season, 1 on the trials an
adaptive search's finalist stage trained, the share of the training windows a data rung trained on, the epoch a
stopped trial went on from when it ran again): numbers, not metrics."""
KEY_COLUMNS = ("trial_id", "config_id", "status")
"""What every row has: a JSON object or a table without them is not trial rows."""
DEVICE_METRICS = ("gpu_mem_peak_mb", "gpu_mem_reserved_mb")
"""Recorded for trials that ran on a GPU, whatever the spec's metrics."""
DEFAULT_FIDELITY = FULL.name
"""The fidelity of rows written before rows had one."""
BASELINES = ("naive-last", "naive-seasonal")
"""The naive baselines (:mod:`hpt.baselines`); rows of a baseline carry its name as their architecture."""


def is_baseline(row: Mapping[str, Any]) -> bool:
    """A row of a naive baseline, not of a trial: never ranked, never seen by a scheduler."""
    return row.get("architecture") in BASELINES


def result_row(result: TrialResult, run_id: str, metric_columns: Iterable[str], model_uri: str = "") -> dict[str, Any]:
    """The row of a finished trial: ids, period, tuned parameters, metrics, where and when."""
    t = result.trial
    row: dict[str, Any] = {
        "run_id": run_id,
        "trial_id": t.trial_id,
        "config_id": t.config_id,
        "status": result.status.value,
        "architecture": t.architecture,
        "fidelity": t.fidelity.name,
        "period_start": t.period.start_text,
        "period_end": t.period.end_text,
        "seed": t.seed,  # the seed it trained with; param_seed (when tuned) is the config's
    }
    row.update(t.tags)
    row.update({param_column(k): v for k, v in t.tuned_params.items()})
    row.update({m: result.metrics.get(m) for m in metric_columns})
    row.update({m: result.metrics[m] for m in DEVICE_METRICS if m in result.metrics})
    row.update({"device": result.device, "started_at": result.started_at, "finished_at": result.finished_at,
                "error": redact(result.error), "model_uri": model_uri})  # a row is read by people: no credentials
    return row


def parse_row(data: bytes | None) -> dict[str, Any] | None:
    """A ``rows/<trial_id>.json`` object as a row, or None when it is not one.

    A row is a JSON object with a text ``trial_id``, a ``config_id`` and a ``status``;
    anything else (missing, damaged, a foreign file) is not a row.
    """
    if data is None:
        return None
    try:
        row = json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(row, dict) or not all(c in row for c in KEY_COLUMNS) or not isinstance(row["trial_id"], str):
        return None
    return row


def row_damage(data: bytes | None) -> str:
    """Why a ``rows/<trial_id>.json`` object is not a row, in a few words (for a warning)."""
    if data is None:
        return "missing"
    if not data.strip():
        return "empty"
    try:
        row = json.loads(data)
    except RecursionError:
        return "nested too deep"
    except ValueError as e:
        return f"not JSON: {' '.join(str(e).split())[:80]}"
    if not isinstance(row, dict):
        return "not a JSON object"
    missing = [c for c in KEY_COLUMNS if c not in row]
    if missing:
        return f"no {', '.join(missing)}"
    return "trial_id is not text" if not isinstance(row["trial_id"], str) else "not a row"


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """The cyclic garbage collector paused while rows are made in bulk (lists, tuples and dicts of text and
    numbers: no cycles to find). As 100,000 rows' objects pile up it would walk them again and again (half a
    second of a run with nothing left to train); they are walked once, later, instead."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


@bulk()
def parse_csv(data: bytes) -> dict[str, dict[str, str]]:
    """``results.csv`` as rows of text, exactly as written, by trial id; {} when it is damaged.

    A missing trailing cell reads as empty; a line with more cells than the header, text
    that is not UTF-8 or a table without ``trial_id`` make the whole file damaged (the
    store then rebuilds it from the rows it knows). A trial listed twice keeps its last line.
    """
    table = read_lines(data)
    if table is None:
        return {}
    header, lines = table
    rows: dict[str, dict[str, str]] = {}
    for cells in lines:
        row = dict(zip(header, cells, strict=True))
        rows[row["trial_id"]] = row
    return rows


def read_lines(data: bytes, whole: bool = False, cut: list[list[str]] | None = None,
               ) -> tuple[list[str], list[list[str]]] | None:
    """``results.csv`` as its header and its lines of cells, each as long as the header; None when it is damaged
    (:func:`parse_csv` says when). With `whole`, only the lines written whole: a short line is left out, not padded,
    and so is the last one unless the file ends with a line break (:func:`to_csv` ends each line with one); the
    lines left out are added to `cut`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        return None
    if not lines or not lines[0] or "trial_id" not in lines[0]:
        return None
    header, width = lines[0], len(lines[0])
    if whole and len(lines) > 1 and not data.endswith(b"\n"):
        last = lines.pop()  # cut off, maybe inside its last cell
        if cut is not None:
            cut.append(last)
    body = [cells for cells in lines[1:] if len(cells) == width]
    if len(body) < len(lines) - 1:  # blank lines, short ones (padded) or long ones (damage)
        body = []
        for cells in lines[1:]:
            if not cells:
                continue
            if len(cells) > width:
                return None
            if len(cells) == width or not whole:
                body.append(cells + [""] * (width - len(cells)))
            elif cut is not None:
                cut.append(cells)
    return header, body


class TypedLines:
    """Lines of ``results.csv`` typed back column by column: :attr:`rows`, the rows :func:`result_row` made, by
    trial id (a line with a cell that cannot say its value, a list or an object written as text, left out, and so
    is a damaged one: text where a number belongs, its trial id in :attr:`damaged`), and :meth:`frame` of them.

    The text columns stay text (:data:`TEXT_COLUMNS`; ``seed`` is an int); in the others an empty cell is None
    (no value, or no such key) and the rest read as :func:`read_csv` reads parameters: ``8`` an int, ``0.5`` a
    float (``repr`` gives it back exactly), ``True`` a bool, anything else text. Each distinct text is typed
    once, and a column of floats in one call.
    """

    def __init__(self, header: list[str], lines: list[list[str]]) -> None:
        self.header = header
        untyped: set[int] = set()  # the lines with a cell that cannot be typed back
        damaged: set[int] = set()  # ... and those with text where a number belongs
        # as arrays of objects, which the garbage collector does not walk (tuples of 100,000 cells it walks once)
        self.columns = [_objects(col if c in TEXT_COLUMNS and c != "seed" else
                                 _typed_cells(col, untyped, damaged if is_number_column(c) else None))
                        for c, col in zip(header, zip(*lines, strict=True), strict=True)] if lines else []
        tid = header.index("trial_id")
        self.damaged = {lines[i][tid] for i in damaged}
        untyped |= damaged
        self.rows: dict[str, dict[str, Any]] = {
            values[tid]: dict(zip(header, values, strict=True))
            for i, values in enumerate(zip(*self.columns, strict=True)) if i not in untyped}
        self.line = {cells[tid]: i for i, cells in enumerate(lines) if i not in untyped}  # last, as in rows

    @bulk()
    def frame(self, trial_ids: Iterable[str]) -> pd.DataFrame:
        """:func:`rows_frame` of the rows of `trial_ids` (of :attr:`rows`), in that order, built from the columns
        in the order of the lines, then reordered: pandas reads the values in the order they were made, and a
        frame of 100,000 rows takes a second less than from the row dicts."""
        wanted = np.fromiter((self.line[t] for t in trial_ids), dtype=np.intp)
        if not len(wanted):
            return rows_frame([])
        lines = np.sort(wanted)
        taken = {c: col[lines] for c, col in zip(self.header, self.columns, strict=True)}
        frame = pd.DataFrame({c: values.tolist() for c, values in taken.items()})
        for c in param_columns(frame.columns):
            frame[c] = pd.Series(taken[c], index=frame.index, dtype=object)
        frame = frame.take(np.searchsorted(lines, wanted)).reset_index(drop=True)
        fill_fidelity(frame)
        return frame


def _objects(values: Sequence[Any]) -> np.ndarray:
    """`values` (text, numbers, None) as a 1-d array of those objects."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


_INT_CELL = re.compile(r"^[+-]?\d+$", re.MULTILINE)


def _floats(texts: Sequence[str]) -> list[float] | None:
    """What :func:`_typed` gives each of `texts` when every one is a float (none an int, True or empty): in one
    call (a random search's 50,000 values of lr); None otherwise."""
    if "" in texts or _INT_CELL.search("\n".join(texts)):
        return None
    try:
        return list(map(float, texts))
    except ValueError:
        return None


def _typed_cells(texts: Sequence[str], untyped: set[int], damaged: set[int] | None = None) -> Sequence[Any]:
    """The cells of a column that is not text as the values they were written from (:func:`_cell_value`),
    adding the lines of those that cannot be to `untyped`; for a column of numbers (a metric's) the lines of
    those that are text to `damaged`."""
    distinct = set(texts)
    if len(distinct) * 2 > len(texts):  # hardly repeated: metrics, floats all (repr, as to_csv writes them)?
        floats = _floats(texts)
        if floats is not None:
            return floats
        values = list(map(_cell_value, texts))
    else:
        typed = {t: _cell_value(t) for t in distinct}
        values = list(map(typed.__getitem__, texts))
    if any(t[:1] in ("[", "{") for t in distinct):
        untyped.update(i for i, v in enumerate(values) if v is _UNTYPED)
    if damaged is not None:
        damaged.update(i for i, v in enumerate(values) if v.__class__ is str or v is _UNTYPED)
    return values


_UNTYPED = object()  # a cell whose text was a list or an object: the CSV cannot say its value


def _cell_value(text: str) -> Any:
    """A cell of a column that is not text as the value it was written from (:class:`TypedLines`)."""
    if not text:
        return None
    return _UNTYPED if text[0] in "[{" else _typed(text)


_NEEDS_QUOTES = re.compile('[,"\r\n]')
_NUMBER_TYPES = frozenset({int, bool, float, type(None)})


def _text(v: Any) -> str:
    """One value as a cell: empty for None, NaN and NA; numpy scalars as the Python values they are."""
    if v is None:
        return ""
    if isinstance(v, str):
        return str.__str__(v)  # a str Enum by its value, not its name
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "" if math.isnan(f) else repr(f)
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):  # a list or array: not a missing value
        pass
    return str(v)


def _column(values: tuple[Any, ...]) -> list[str] | tuple[str, ...]:
    """The cells of one column, quoted as csv's QUOTE_MINIMAL does (and around a carriage return too)."""
    kinds = set(map(type, values))
    if kinds <= _NUMBER_TYPES:  # never quoted; str() of a float is its repr
        cells = list(map(str, values))
        if "None" in cells or "nan" in cells:  # only None and NaN can give these here
            cells = ["" if c == "None" or c == "nan" else c for c in cells]
        return cells
    text: list[str] | tuple[str, ...] = values if kinds == {str} else [
        v if v.__class__ is str else _text(v) for v in values]
    if _NEEDS_QUOTES.search("\0".join(text)):
        return ['"' + c.replace('"', '""') + '"' if _NEEDS_QUOTES.search(c) else c for c in text]
    return text


def _finished(row: Mapping[str, Any]) -> str:
    v = row.get("finished_at")
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """``results.csv`` of `rows` (dicts as :func:`result_row` builds, or text rows from :func:`parse_csv`).

    Columns: the leading ids and period, the ``param_`` columns by name, the other columns in
    the order first seen, then where and when. Rows by ``finished_at`` (a stable sort). An
    empty cell for None and NaN; integers as integers (``8``, never ``8.0``), floats as
    Python writes them (``repr``), booleans as True/False, text unchanged.
    """
    first: dict[str, None] = {}  # the columns in the order first seen, over the rows as given
    for r in rows:
        if not first.keys() >= r.keys():
            first.update(dict.fromkeys(r))
    seen = list(first)
    if not seen:
        return ",".join(LEADING_COLUMNS + TRAILING_COLUMNS) + "\n"
    params = sorted(param_columns(seen))
    known = TEXT_COLUMNS.union(params)
    order = ([c for c in LEADING_COLUMNS if c in seen] + params + [c for c in seen if c not in known]
             + [c for c in TRAILING_COLUMNS if c in seen])
    if len(order) == 1:  # one column: an empty cell must be quoted to be a line at all; leave that to the csv module
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(order)
        writer.writerows([_text(r.get(order[0]))] for r in sorted(rows, key=_finished))
        return buf.getvalue()
    # Column by column: a column of one type is converted in one pass, and the lines are joined in C.
    get = operator.itemgetter(*order)
    cells = []
    for r in sorted(rows, key=_finished):
        try:
            cells.append(get(r))
        except KeyError:
            cells.append(tuple(map(r.get, order)))
    columns = [_column(col) for col in zip(*cells, strict=True)]
    header = ",".join(_column(tuple(order)))
    return "\n".join([header, *map(",".join, zip(*columns, strict=True)), ""])


def read_csv(data: bytes) -> pd.DataFrame:
    """``results.csv`` as a DataFrame of typed values.

    Parameter columns hold the values the rows had, as objects (8 stays an int beside 0.5,
    True a bool, missing None); the other columns of :data:`TEXT_COLUMNS` are text; metrics
    are numbers as pandas reads them. Raises ValueError (UnicodeDecodeError included) when
    `data` is not a CSV table.
    """
    header = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
    params = dict.fromkeys(param_columns(header), str)
    # The other text columns pandas reads as text by itself, exactly as written, and in a fraction of the time it
    # takes when told (0.3 s of 100,000 rows); told are only those that are mostly numbers or empty: the seed and
    # the error. One that is read as something else all the same (numbers, or nothing) is read again, as text.
    told = {c: str for c in _NOT_TEXT_LOOKING if c in header}
    frame = pd.read_csv(io.BytesIO(data), dtype={**told, **params}, low_memory=False)  # type: ignore[arg-type]
    text = pd.api.types.pandas_dtype(str)
    again = [i for i, c in enumerate(frame.columns) if c in TEXT_COLUMNS and frame.dtypes.iloc[i] != text]
    if again:
        reread = pd.read_csv(io.BytesIO(data), usecols=again, dtype=str, low_memory=False)
        for j, i in enumerate(again):  # usecols keeps the file's order
            frame.isetitem(i, reread.iloc[:, j])
    for c in params:
        frame[c] = _typed_column(frame[c])
    return frame


_NOT_TEXT_LOOKING = ("seed", "error")
"""Text columns (:data:`TEXT_COLUMNS`) that are mostly numbers or empty: :func:`read_csv` says they are text."""


@bulk()
def rows_frame(rows: Iterable[Mapping[str, Any]], only: Collection[str] | None = None) -> pd.DataFrame:
    """Row dicts (as the store holds them) as the DataFrame the results functions take.

    `only` keeps the rows of these trial ids. Parameter values stay as they were (an int
    beside floats stays an int); rows without a fidelity are ``full``.
    """
    kept = [r for r in rows if only is None or r.get("trial_id") in only]
    frame = pd.DataFrame(kept)
    for c in param_columns(frame.columns):
        frame[c] = pd.Series([r.get(c) for r in kept], index=frame.index, dtype=object)
    if not frame.empty:
        fill_fidelity(frame)
    return frame


def fill_fidelity(frame: pd.DataFrame) -> None:
    """Give rows without a fidelity (written before rows had one) :data:`DEFAULT_FIDELITY`, in place."""
    if "fidelity" not in frame:
        frame["fidelity"] = DEFAULT_FIDELITY
    frame["fidelity"] = frame["fidelity"].fillna(DEFAULT_FIDELITY).astype(str)


def _typed_column(col: pd.Series) -> pd.Series:
    """Text from the CSV back to the JSON value it was: 8 -> int, 0.5 -> float, True -> bool."""
    codes, uniques = pd.factorize(col)  # each distinct text typed once; a missing value's code is -1
    typed = np.empty(len(uniques) + 1, dtype=object)
    texts = [str(u) for u in uniques.tolist()]
    typed[:-1] = _floats(texts) or [_typed(t) for t in texts]
    typed[-1] = None
    return pd.Series(typed[codes], index=col.index, dtype=object)


def _typed(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text == "True" if text in ("True", "False") else text
    digits = text[1:] if text[:1] in "+-" else text
    return int(text) if digits.isdecimal() else number  # "8" is an int, as the regex [-+]?\d+ said


_PARAM = "param_"


def param_column(name: str) -> str:
    """The column of a tuned parameter: ``lr`` -> ``param_lr``."""
    return _PARAM + name


def is_number_column(column: str) -> bool:
    """Whether a row column holds numbers only (metrics, times, tags; not the text columns nor parameters): a
    cell of text there is damage."""
    return column not in TEXT_COLUMNS and not column.startswith(_PARAM)


def damaged_lines(data: bytes, frame: pd.DataFrame) -> dict[str, str]:
    """The lines of ``results.csv`` (`data`, read into `frame` by :func:`read_csv`) that do not say their row, by
    trial id, and what is wrong: cut short (fewer cells than the header, or the last line without its line
    break), or text in a column of numbers. The file is parsed again only when some row lacks its last cell."""
    found: dict[str, str] = {}
    ids = frame["trial_id"].astype(str)
    for c in frame.columns:
        col = frame[c]
        if is_number_column(c) and not pd.api.types.is_numeric_dtype(col):  # object, or pandas' str
            bad = col.notna() & pd.to_numeric(col, errors="coerce").isna()
            for tid, v in zip(ids[bad], col[bad], strict=True):
                found.setdefault(tid, f'{c} is "{v}", not a number')
    maybe = frame[frame.columns[-1]].isna().to_numpy().copy()
    if len(maybe) and not data.endswith(b"\n"):
        maybe[-1] = True
    if maybe.any():
        table = read_lines(data, whole=True)
        whole = set() if table is None else {cells[table[0].index("trial_id")] for cells in table[1]}
        for tid in ids[maybe]:
            if tid not in whole:
                found.setdefault(tid, "cut short")
    return found


def is_param(column: str) -> bool:
    """Whether a column holds a tuned parameter."""
    return column.startswith(_PARAM)


def param_name(column: str) -> str:
    """The parameter a parameter column holds: ``param_lr`` -> ``lr``."""
    return column.removeprefix(_PARAM)


def param_columns(columns: Iterable[str]) -> list[str]:
    """The parameter columns among `columns`, in their order."""
    return [c for c in columns if c.startswith(_PARAM)]


def params_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The tuned parameters a row records (a dict, or a DataFrame row's items), by name, as plain JSON
    values; those it has no value for (None, NaN) left out."""
    out = {}
    for c, v in row.items():
        if c.startswith(_PARAM):
            v = plain(v)
            if v is not None:
                out[c[len(_PARAM):]] = v
    return out


def is_number(v: Any) -> bool:
    """An int or float (numpy's included), not a bool."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def all_numbers(values: Iterable[Any]) -> bool:
    """Every value :func:`is_number` (True for none); decided once per type: 100,000 random-search values are 3 types."""
    return all(issubclass(t, (int, float, np.integer, np.floating)) and not issubclass(t, (bool, np.bool_))
               for t in set(map(type, values)))


_PLAIN = frozenset({str, int, bool})  # JSON values as they are


def plain(v: Any) -> Any:
    """A value from a DataFrame as the plain JSON value of a row: numpy scalars -> Python values, NaN -> None."""
    if v is None or v.__class__ in _PLAIN:
        return v
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
    try:
        return json.loads(json.dumps(v))
    except (TypeError, ValueError):
        return str(v)
