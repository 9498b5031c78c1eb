"""Read a results location into one DataFrame of trial rows; pick and check what to rank by."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from hpt import layout
from hpt.errors import HptError, InputError, did_you_mean
from hpt.layout import RESULTS_CSV
from hpt.rows import (
    KEY_COLUMNS,
    TAG_COLUMNS,
    TEXT_COLUMNS,
    all_numbers,
    damaged_lines,
    fill_fidelity,
    is_number_column,
    is_param,
    param_columns,
    param_name,
    parse_row,
    read_csv,
    row_damage,
    rows_frame,
)
from hpt.runs import latest_run, run_records
from hpt.sinks import Sink, open_sink
from hpt.sinks.local import LocalSink

__all__ = ["check_metric", "default_metric", "filter_rows", "load_results", "planned_periods", "recorded_runs",
           "run_specs"]

log = logging.getLogger("hpt")


def load_results(uri: str) -> pd.DataFrame:
    """Every trial row at a results location.

    ``results.csv`` is read, and any row object in ``rows/`` it does not have yet is added
    (the CSV is rebuilt after each trial, so it lags at most by the trial being written).
    Parameter columns keep their types: an integer stays an integer even where other
    runs' rows have no value. When there are no rows, the error says what the location holds.
    """
    sink = open_sink(uri)
    if isinstance(sink, LocalSink):
        if not sink.root.exists():
            parent = sink.root.parent
            near = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
            raise InputError(f"{uri} does not exist{did_you_mean(sink.root.name, near)}")
        if not sink.root.is_dir():
            raise InputError(f"{uri} is a file, not a results folder (give the folder that hpt run wrote, "
                             "e.g. hpt-results/<name>)")
    found: list[str] = []  # what is there instead of rows, for the error
    damaged: list[str] = []  # warnings about row objects that do not parse, when there are rows to show
    rows_url = sink.url(layout.ROWS).rstrip("/") + "/"
    frame = _load_csv(sink, found, damaged)
    try:
        ids = layout.ids_of(sink.list(layout.ROWS), layout.ROWS)
    except OSError as e:
        ids = {}
        found.append(f"{rows_url} cannot be read: {e.strerror or e}")
    else:
        if not ids:
            found.append("no rows/")
    if ids:
        have: set[str] = set()
        if not frame.empty:
            listed = len(frame)
            tids = frame["trial_id"].astype(str).tolist()  # lists and sets: pandas' isin on text is slow at scale
            have = set(tids)
            if not have <= ids.keys():  # lines of trials without a row object
                frame = frame[[t in ids for t in tids]]
                have &= ids.keys()
            if listed and not have:
                found.append(f"{sink.url(RESULTS_CSV)} lists none of the trials in rows/")
        extra = _read_rows(sink, [k for tid, k in ids.items() if tid not in have], damaged)
        if extra:
            frame = pd.concat([frame, rows_frame(extra)], ignore_index=True) if not frame.empty else rows_frame(extra)
        elif not have:
            files = f"{len(ids)} .json file" + ("s" if len(ids) != 1 else "")
            found.append(f"{rows_url} holds no readable trial rows ({files})")
    if frame.empty:
        inside = _results_inside(sink)
        if inside:
            found.append(f"results are in {', '.join(inside[:5])}{', ...' if len(inside) > 5 else ''} inside it "
                         f"(give one of those, e.g. {uri.rstrip('/')}/{inside[0]})")
        raise InputError(f"no results at {uri}: {'; '.join(found)}")
    for line in damaged:
        log.warning("%s", line)
    _restore_ints(frame, sink)
    fill_fidelity(frame)
    return frame.reset_index(drop=True)


_INSIDE = 20
"""Folders looked into for results when a location holds none (a bucket asks two listings of each)."""


def _results_inside(sink: Sink) -> list[str]:
    """The folders just inside a location that hold results (hpt-results/ instead of hpt-results/<name>,
    gs://bucket/hpt instead of gs://bucket/hpt/<name>); the first :data:`_INSIDE` folders are looked into."""
    key = f"/{RESULTS_CSV}"
    try:
        return [name for name in sink.folders()[:_INSIDE]
                if name + key in sink.list(name + key) or layout.ROWS.rstrip("/") in sink.folders(name + "/")]
    except (OSError, HptError):  # it did not answer: the error says what was found without it
        return []


def _load_csv(sink: Sink, found: list[str], damaged: list[str]) -> pd.DataFrame:
    """results.csv's trial rows, or an empty frame with what was wrong added to `found`. Lines that do not say
    their row (:func:`hpt.rows.damaged_lines`) are left out, so their trials' rows are read from rows/ (the
    record of truth), and a warning for `damaged` says which."""
    where = sink.url(RESULTS_CSV)
    try:
        data = sink.read(RESULTS_CSV)
    except OSError as e:
        found.append(f"{where} cannot be read: {e.strerror or e}")
        return pd.DataFrame()
    if data is None:
        found.append(f"no {RESULTS_CSV}")
        return pd.DataFrame()
    if not data.strip():
        found.append(f"{where} is empty")
        return pd.DataFrame()
    if b"\0" in data:
        found.append(f"{where} is not a text file")
        return pd.DataFrame()
    try:
        frame = read_csv(data)
    except UnicodeDecodeError:
        found.append(f"{where} is not a text file")
        return pd.DataFrame()
    except ValueError as e:  # pandas' ParserError and EmptyDataError are ones
        found.append(f"{where} is not a CSV file: {' '.join(str(e).split())}")
        return pd.DataFrame()
    missing = next((c for c in KEY_COLUMNS if c not in frame), None)
    if missing is not None:
        found.append(f"{where} has no trial rows (no {missing} column)")
        return pd.DataFrame()
    if frame.empty:
        found.append(f"{where} has no trial rows (only its header)")
        return frame
    bad = damaged_lines(data, frame)
    if bad:
        tid, why = next(iter(bad.items()))
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        damaged.append(f"warning: {where}: the line of trial {tid} ({why}){more} is damaged; read from rows/ instead "
                       "(hpt sync rewrites the file)")
        frame = frame[~frame["trial_id"].astype(str).isin(bad.keys()).to_numpy()].reset_index(drop=True)
        for c in frame.columns:  # a column of numbers that held the text: numbers again
            if is_number_column(c) and not pd.api.types.is_numeric_dtype(frame[c]):
                frame[c] = pd.to_numeric(frame[c], errors="coerce")
    return frame


def _restore_ints(frame: pd.DataFrame, sink: Sink) -> None:
    """Integers that the CSV wrote as 8.0 (their column has gaps) become integers again, as their row objects say.

    hpt writes integers as integers; a results.csv written by another tool (pandas) may not.
    """
    for c in param_columns(frame.columns):
        col = frame[c]
        present = col.notna()
        if present.all() or not present.any():
            continue
        values = col[present]
        if not all(isinstance(v, float) and v.is_integer() for v in values):
            continue
        tid = frame.loc[values.index[0], "trial_id"]
        try:
            row = parse_row(sink.read(layout.row(tid)))
        except OSError:
            continue
        original = row.get(c) if row else None
        if isinstance(original, int) and not isinstance(original, bool):
            ints = [int(v) if p else None for v, p in zip(col, present, strict=True)]
            frame[c] = pd.Series(ints, index=col.index, dtype=object)


def _read_rows(sink: Sink, keys: Sequence[str], damaged: list[str]) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        try:
            data = sink.read(key)
        except OSError:
            continue  # an unreadable file is not a row
        row = parse_row(data)
        if row is not None:
            rows.append(row)
        elif data is not None:
            damaged.append(f"warning: {key} is damaged ({row_damage(data)}); its trial will run again")
    return rows


def recorded_runs(uri: str) -> list[dict[str, Any]]:
    """Every run record at `uri` (``runs/``) that reads as one, oldest first; [] where none can be read."""
    try:
        return [record for _, record in run_records(open_sink(uri))]
    except (HptError, OSError):
        return []


def default_metric(uri: str, records: list[dict[str, Any]] | None = None) -> str:
    """The objective of the latest run recorded at `uri` (``runs/``; or in `records`, when read), else ``val_mse``."""
    if records is None:
        try:
            latest = latest_run(open_sink(uri))
        except (HptError, OSError):
            latest = None
        records = [latest[1]] if latest else []
    specs = [r["spec"] for r in records if isinstance(r.get("spec"), dict)]
    objective = specs[-1].get("objective") if specs else None
    return objective if isinstance(objective, str) and objective else "val_mse"


def run_specs(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The spec each recorded run ran, by run id (:func:`recorded_runs`)."""
    return {str(r.get("run_id")): r["spec"] for r in records if isinstance(r.get("spec"), dict)}


def planned_periods(uri: str, frame: pd.DataFrame | None = None,
                    records: list[dict[str, Any]] | None = None) -> dict[str, list[str]]:
    """The periods the runs recorded in ``runs/`` at `uri` (or `records`, when read) meant every config to run,
    by fidelity.

    A run record says its fidelity and periods (``fidelity``, ``periods``); one written before
    records said them gives its periods in ``data.periods`` and its fidelity by the rows of
    its run in `frame` (a run that left no rows adds nothing). Unreadable records are passed over.
    """
    if records is None:
        records = recorded_runs(uri)

    def fidelity_of(run_id: str) -> str | None:
        if frame is None or frame.empty or "run_id" not in frame or "fidelity" not in frame:
            return None
        if not by_run:
            firsts = frame.drop_duplicates("run_id")
            by_run.update(zip(firsts["run_id"].astype(str).tolist(), firsts["fidelity"].astype(str).tolist(),
                              strict=True))
        return by_run.get(run_id)

    by_run: dict[str, str] = {}
    planned: dict[str, list[str]] = {}
    for record in records:
        periods = record.get("periods")
        if not isinstance(periods, list):
            data_report = record.get("data")
            periods = list(data_report.get("periods") or {}) if isinstance(data_report, dict) else []
        fidelity = record.get("fidelity") or fidelity_of(str(record.get("run_id")))
        if isinstance(fidelity, str) and periods:
            have = planned.setdefault(fidelity, [])
            have.extend(str(p) for p in periods if str(p) not in have)
    return planned


def filter_rows(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """The rows for which the pandas expression `where` holds; parameters may be named without ``param_``.

    Example: ``lr < 0.01 and period_start >= '2013-02-01'``.
    """
    params: dict[str, pd.Series] = {}
    for c in param_columns(frame.columns):
        col = frame[c]
        numeric = col.dtype == object and all_numbers(col.dropna().unique())
        params[c] = pd.to_numeric(col) if numeric else col  # arithmetic works on numbers kept as objects
    bare = {name: v for c, v in params.items() if (name := param_name(c)) not in frame.columns}
    try:
        mask = frame.eval(where, resolvers=[params, bare])
    except NameError as e:  # pandas' UndefinedVariableError is one
        name = str(e).split("'")[1] if "'" in str(e) else ""
        names = sorted(set(bare) | {c for c in frame.columns if not is_param(c)})
        raise InputError(f"--where: {e}{did_you_mean(name, names)}; names: {', '.join(names)}") from None
    except SyntaxError:
        raise InputError(f"--where: cannot evaluate {where!r}: not a complete expression; write one such as "
                         "\"lr < 0.01\" or \"hidden_size == 32 and lr < 0.01\"") from None
    except Exception as e:
        raise InputError(f"--where: cannot evaluate {where!r}: {type(e).__name__}: {e}") from None
    if not isinstance(mask, pd.Series) or mask.dtype != bool:
        raise InputError(f"--where: {where!r} is not a condition; write one such as \"lr < 0.01\"")
    picked = frame[mask]
    if picked.empty:
        raise InputError(f"--where: no row matches {where!r} (of {len(frame)} rows)")
    return picked


def check_metric(frame: pd.DataFrame, metric: str) -> str:
    """The numeric column `metric` names (``mse`` means ``val_mse``); InputError listing the metrics when none."""
    if metric not in frame.columns and f"val_{metric}" in frame.columns:
        metric = f"val_{metric}"  # --metric mse means val_mse
    numeric = [c for c in frame.columns if c not in TEXT_COLUMNS and c not in TAG_COLUMNS and not is_param(c)
               and pd.api.types.is_numeric_dtype(frame[c])]
    if metric not in numeric:
        raise InputError(f'--metric: no metric "{metric}" in these results{did_you_mean(metric, numeric)}; '
                         f"available: {', '.join(numeric) or 'none'}")
    return metric
