"""The sections of how a run runs and where it writes: ``name`` (the results folder), ``sink``, ``resources``
and ``tracking``."""

from __future__ import annotations

import unicodedata
from typing import Any

from hpt.errors import InputError, did_you_mean, show
from hpt.sinks import check_location
from hpt.spec.checker import SECTIONS, Checker, is_int

__all__ = ["MAX_NAME", "name_problem", "parse_resources", "parse_sink", "parse_tracking"]

_EXECUTORS = ("local", "ray")


def parse_sink(ck: Checker, value: Any) -> str | None:
    """A folder is relative to the spec's folder, as data.path is; a gs:// or s3:// URI stays as it is."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        ck.add("sink", f"expected a folder path or a gs:// or s3:// URI, got {show(value)}")
        return None
    try:
        check_location(value)  # a mistyped bucket URI, an unknown scheme, a bucket name no cloud takes
    except InputError as e:
        ck.add("sink", str(e))
        return None
    return ck.folder(value)


def parse_resources(ck: Checker, value: Any) -> dict[str, Any]:
    obj = ck.section(value, "resources")
    if obj is None:
        return {}
    ck.unknown_keys(obj, SECTIONS["resources"], "resources")
    out: dict[str, Any] = {}
    gpus = obj.get("gpus")
    if gpus is not None:
        if (not isinstance(gpus, list) or not gpus or len(set(map(str, gpus))) != len(gpus)
                or not all((is_int(g) and g >= 0) or (isinstance(g, str) and g.isdigit()) for g in gpus)):
            ck.add("resources.gpus", f"expected a list of distinct GPU indices such as [0, 2], got {show(gpus)}")
        else:
            out["gpus"] = [str(g) for g in gpus]
    per_gpu = obj.get("trials_per_gpu")
    if per_gpu is not None:
        if per_gpu != "auto" and not (is_int(per_gpu) and per_gpu >= 1):
            ck.add("resources.trials_per_gpu", f'expected an integer >= 1 or "auto", got {show(per_gpu)}')
        else:
            out["trials_per_gpu"] = per_gpu
    threads = obj.get("threads")
    if threads is not None:
        if not (is_int(threads) and threads >= 1):
            ck.add("resources.threads", f"expected an integer >= 1 (torch threads per worker), got {show(threads)}")
        else:
            out["threads"] = int(threads)
    executor = obj.get("executor")
    if executor is not None:
        if executor not in _EXECUTORS:
            hint = did_you_mean(str(executor), _EXECUTORS)
            ck.add("resources.executor", f'expected "local" or "ray", got {show(executor)}{hint}')
        else:
            out["executor"] = executor
    return out


def parse_tracking(ck: Checker, value: Any) -> dict[str, Any]:
    obj = ck.section(value, "tracking")
    if obj is None:
        return {}
    ck.unknown_keys(obj, SECTIONS["tracking"], "tracking")
    out: dict[str, Any] = {}
    uri = obj.get("mlflow")
    if uri is not None:
        if uri is not True and uri is not False and not (isinstance(uri, str) and uri.strip()):
            ck.add("tracking.mlflow", f"expected a tracking URI such as \"http://host:5000\", or true for "
                   f"$MLFLOW_TRACKING_URI, got {show(uri)}")
        elif uri is not False:
            out["mlflow"] = uri
    for key, what in (("experiment", "an MLflow experiment name"), ("tensorboard", "a folder for TensorBoard")):
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                ck.add(f"tracking.{key}", f"expected {what}, got {show(value)}")
            else:  # a folder written in a spec is relative to the spec's folder, as sink and data.path are
                out[key] = ck.folder(value) if key == "tensorboard" else value
    return out


MAX_NAME = 100


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a results folder (hpt-results/<name>), or None."""
    why = ""
    if len(name) > MAX_NAME:
        why = f"{len(name)} characters, more than {MAX_NAME}"
    elif name in (".", ".."):
        why = f"{show(name)} is not a folder name"
    elif sep := next((c for c in name if c in "/\\"), None):
        why = f"it holds the separator {show(sep)}"
    elif ctl := next((c for c in name if unicodedata.category(c) == "Cc"), None):
        why = f"it holds the control character U+{ord(ctl):04X}"
    return f"{show(name)} cannot name the results folder: {why}" if why else None


