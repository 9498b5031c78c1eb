"""Every key at a results location, named in one place.

    results.csv                  one row per trial, merged from the rows after each finished trial
    rows/<trial_id>.json         the row of one trial: the record of truth
    models/<trial_id>.pt         the trained model (see hpt.model_io)
    curves/<trial_id>.csv        per-epoch metrics
    runs/<run_id>.json           what was run, where, when; a heartbeat while it runs (hpt.runs)
    claims/<trial_id>.json       which live run trains the trial (hpt.claims)
    plans/<key>.ids              the trial ids of a large plan, so another machine need not draw them (hpt.memo)
    final/<final_id>/model.pt    a final model (hpt final); scratch.pt beside it when compared
    final/<final_id>/report.json what the final model was trained on and how it scored
    final/index.csv              one row per final model

Code that reads or writes a location names its keys with these functions and constants,
never with a literal path of its own; :func:`kind` says which of them a key is, so a test
can check that a run writes nothing else.
"""

from __future__ import annotations

import re

__all__ = ["CLAIMS", "CURVES", "FINAL", "FINAL_INDEX", "MODELS", "PLANS", "RESULTS_CSV", "ROWS", "RUNS", "claim", "curve",
           "final_model", "final_report", "id_of", "ids_of", "kind", "model", "plan_ids", "row", "run"]

RESULTS_CSV = "results.csv"
FINAL_INDEX = "final/index.csv"
ROWS = "rows/"
MODELS = "models/"
CURVES = "curves/"
RUNS = "runs/"
CLAIMS = "claims/"
PLANS = "plans/"
FINAL = "final/"

_SUFFIX = {ROWS: ".json", MODELS: ".pt", CURVES: ".csv", RUNS: ".json", CLAIMS: ".json", PLANS: ".ids"}


def row(trial_id: str) -> str:
    return f"{ROWS}{trial_id}.json"


def model(trial_id: str) -> str:
    return f"{MODELS}{trial_id}.pt"


def curve(trial_id: str) -> str:
    return f"{CURVES}{trial_id}.csv"


def run(run_id: str) -> str:
    return f"{RUNS}{run_id}.json"


def claim(trial_id: str) -> str:
    return f"{CLAIMS}{trial_id}.json"


def plan_ids(key: str) -> str:
    return f"{PLANS}{key}.ids"


def final_model(final_id: str, scratch: bool = False) -> str:
    """A final model's key: ``model.pt``, or with `scratch` the from-scratch model a --compare trains beside it."""
    return f"{FINAL}{final_id}/{'scratch' if scratch else 'model'}.pt"


def final_report(final_id: str) -> str:
    return f"{FINAL}{final_id}/report.json"


def id_of(key: str, folder: str) -> str | None:
    """The id in a key of `folder` (``id_of("rows/ab12.json", ROWS) == "ab12"``), None for any other key."""
    suffix = _SUFFIX[folder]
    if not key.startswith(folder) or not key.endswith(suffix) or "/" in key[len(folder):]:
        return None
    return key[len(folder):len(key) - len(suffix)] or None


def ids_of(keys: list[str], folder: str) -> dict[str, str]:
    """The keys of `folder` among `keys` by their ids, in order (``{"ab12": "rows/ab12.json"}``): :func:`id_of`
    of each, in one pass (a listing of 100,000 rows)."""
    start, suffix = len(folder), _SUFFIX[folder]
    end = -len(suffix)
    return {k[start:end]: k for k in keys
            if k.startswith(folder) and k.endswith(suffix) and len(k) > start - end and "/" not in k[start:end]}


_FINAL_KEY = re.compile(r"final/[^/]+/(model\.pt|scratch\.pt|report\.json)")


def kind(key: str) -> str | None:
    """Which of the layout's names `key` is ("results.csv", "rows/", ..., "final/"), None when it is none of them."""
    if key in (RESULTS_CSV, FINAL_INDEX):
        return key
    for folder in _SUFFIX:
        if id_of(key, folder) is not None:
            return folder
    return FINAL if _FINAL_KEY.fullmatch(key) else None
