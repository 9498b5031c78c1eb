"""The ``data`` section: the file, its columns and how to read it."""

from __future__ import annotations

import dataclasses
from typing import Any

from hpt.calendar import CALENDAR
from hpt.data import DUPLICATES, FILLS, TIME_UNITS, DataError, ReadOptions, resolve_data_path
from hpt.errors import did_you_mean, show
from hpt.spec.checker import SECTIONS, Checker, is_int
from hpt.spec.objects import DataSpec

__all__ = ["parse_data"]


def parse_data(ck: Checker, value: Any) -> DataSpec | None:
    obj = ck.section(value, "data", required=True)
    if obj is None:
        return None
    ck.unknown_keys(obj, SECTIONS["data"], "data")
    path = ck.string(obj, "path", "data")
    time_column = ck.string(obj, "time_column", "data")
    target = ck.string(obj, "target", "data")
    features = obj.get("features", [])
    if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
        ck.add("data.features", f"expected a list of column names, got {show(features)}")
        features = []
    for i, f in enumerate(features):
        if f == target:
            ck.add(f"data.features[{i}]", f'"{f}" is the target, always an input: leave it out of the features')
        elif f in features[:i]:
            ck.add(f"data.features[{i}]", f'"{f}" is listed twice (first as data.features[{features.index(f)}])')
    options = _read_options(ck, obj)
    season = obj.get("season")
    if season is not None and (not is_int(season) or season < 1):
        ck.add("data.season", f"expected a positive integer (steps in one season, e.g. 24 for a day of hourly "
                              f"data), got {show(season)}")
        season = None
    calendar = obj.get("calendar", [])
    if not isinstance(calendar, list) or not all(isinstance(c, str) for c in calendar):
        ck.add("data.calendar", f"expected a list of calendar inputs ({', '.join(CALENDAR)}), got {show(calendar)}")
        calendar = []
    for i, c in enumerate(calendar):
        if c not in CALENDAR:
            ck.add(f"data.calendar[{i}]", f"unknown calendar input {show(c)}{did_you_mean(c, CALENDAR)}; "
                                          f"valid: {', '.join(CALENDAR)}")
        elif c in calendar[:i]:
            ck.add(f"data.calendar[{i}]", f"{show(c)} is listed twice")
    future = _future_features(ck, obj, target, features)
    before = len(ck.problems)
    roles = {**{c: "a feature known ahead (data.future_features)" for c in future},
             **{c: "a feature (data.features)" for c in features},
             target: "the target (data.target)", time_column: "the time column (data.time_column)"}
    series = _series(ck, obj, roles)
    column = obj.get("series") if isinstance(obj.get("series"), str) else None
    static = _series_features(ck, obj, {column: "the series column (data.series)", **roles})
    if not (path and time_column and target) or options is None or len(ck.problems) > before:
        return None
    try:
        resolved = resolve_data_path(path, ck.base_dir)
    except DataError as e:
        ck.add(e.json_path, e.message)
        return None
    if series is not None:
        options = dataclasses.replace(options, series=series[0], series_filter=series[1])
    return DataSpec(resolved, time_column, target, tuple(features), options, season,
                    tuple(dict.fromkeys(c for c in calendar if c in CALENDAR)), future, static)


def _future_features(ck: Checker, obj: dict[str, Any], target: str | None, features: list[str]) -> tuple[str, ...]:
    """data.future_features: columns known ahead, neither the target nor among the features."""
    future = obj.get("future_features", [])
    if not isinstance(future, list) or not all(isinstance(f, str) and f for f in future):
        ck.add("data.future_features", f"expected a list of column names, got {show(future)}")
        return ()
    for i, f in enumerate(future):
        if f == target or f in features or f in future[:i]:
            ck.add(f"data.future_features[{i}]", f'"{f}" is listed twice (a future feature is an input '
                                                 "of the past rows too: list it here only)")
    return tuple(future)


def _series(ck: Checker, obj: dict[str, Any], columns: dict[Any, str]) -> tuple[str, tuple[str, ...] | None] | None:
    """data.series (the column naming each row's series) and data.series_filter (the ids to keep)."""
    column, ids = obj.get("series"), obj.get("series_filter")
    if column is None:
        if ids is not None:
            ck.add("data.series_filter", "needs data.series (the column naming each row's series)")
        return None
    if not isinstance(column, str) or not column:
        ck.add("data.series", f"expected the name of the column naming each row's series, got {show(column)}")
        return None
    if column in columns:
        ck.add("data.series", f'"{column}" is already {columns[column]}')
        return None
    if ids is None:
        return column, None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, (str, int)) and not isinstance(i, bool)
                                                         for i in ids):
        ck.add("data.series_filter", f"expected a non-empty list of series ids, got {show(ids)}")
        return None
    kept = tuple(str(i) for i in ids)
    for i, sid in enumerate(kept):
        if sid in kept[:i]:
            ck.add(f"data.series_filter[{i}]", f"{show(sid)} is listed twice")
    return column, tuple(dict.fromkeys(kept))


def _series_features(ck: Checker, obj: dict[str, Any], columns: dict[Any, str]) -> tuple[str, ...]:
    """data.series_features: static per-series columns (hpt.static), only with data.series, each a column of
    its own (not the time column, the target, a feature or the series column: `columns` says which each is)."""
    static = obj.get("series_features")
    if static is None:
        return ()
    if not isinstance(static, list) or not all(isinstance(f, str) and f for f in static):
        ck.add("data.series_features", f"expected a list of column names (static per-series inputs such as a region "
                                       f"or a capacity), got {show(static)}")
        return ()
    if obj.get("series") is None:
        ck.add("data.series_features", "needs data.series (the column naming each row's series): a static series "
                                       "feature holds one value per series")
        return ()
    for i, f in enumerate(static):
        if f in columns:
            ck.add(f"data.series_features[{i}]", f'"{f}" is already {columns[f]}')
        elif f in static[:i]:
            ck.add(f"data.series_features[{i}]", f'"{f}" is listed twice')
    return tuple(static)


def _read_options(ck: Checker, obj: dict[str, Any]) -> ReadOptions | None:
    """data.time_format, time_unit, fill, fill_limit and duplicates."""
    before = len(ck.problems)
    fmt, unit = obj.get("time_format"), obj.get("time_unit")
    if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
        ck.add("data.time_format", f'expected a strftime pattern such as "%d/%m/%Y %H:%M", got {show(fmt)}')
    if unit is not None and unit not in TIME_UNITS:
        ck.add("data.time_unit", f'expected "s" or "ms" (seconds or milliseconds since 1970), got {show(unit)}')
    elif unit is not None and fmt is not None:
        ck.add("data.time_unit", "give data.time_format or data.time_unit, not both")
    fill = obj.get("fill", "none")
    if fill not in FILLS:
        ck.add("data.fill", f"expected one of {', '.join(FILLS)}, got {show(fill)}"
                            f"{did_you_mean(fill, FILLS) if isinstance(fill, str) else ''}")
    limit = obj.get("fill_limit")
    if limit is not None:
        if not is_int(limit) or limit < 1:
            ck.add("data.fill_limit", f"expected an integer >= 1 (missing steps in a row), got {show(limit)}")
        elif fill == "none":
            ck.add("data.fill_limit", 'needs data.fill "ffill" or "interpolate"')
    duplicates = obj.get("duplicates")
    if duplicates is not None and duplicates not in DUPLICATES:
        ck.add("data.duplicates", f"expected one of {', '.join(DUPLICATES)}, got {show(duplicates)}")
    if len(ck.problems) > before:
        return None
    return ReadOptions(time_format=fmt, time_unit=unit, fill=fill, fill_limit=limit, duplicates=duplicates)
