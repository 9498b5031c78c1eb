"""Which config ``hpt final`` trains, with which hyperparameters, for how many epochs, on which span."""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hpt.errors import HptError, InputError, did_you_mean
from hpt.fidelity import FULL, fidelity_named
from hpt.periods import Period
from hpt.progress import format_value, plural
from hpt.rows import DEFAULT_FIDELITY, params_of
from hpt.runs import latest_run
from hpt.sinks import Sink
from hpt.spec import Spec, load_spec, parse_spec, unused_periods
from hpt.trial import Status

__all__ = ["Choice", "choose", "config_periods", "recorded_spec", "span_text", "train_start"]

log = logging.getLogger("hpt")

def recorded_spec(sink: Sink, spec_path: str | None) -> tuple[Spec, str]:
    """--spec, else the spec of the latest run recorded in runs/ at the location; and where it was read. The final
    trains on a span of its own: the notes about the tuning periods (series left out, few windows) are not said."""
    if spec_path:
        with unused_periods():
            return load_spec(spec_path), spec_path
    latest = latest_run(sink)
    if latest is not None:
        key, record = latest
        source, folder = str(record.get("spec_source") or ""), str(record.get("spec_folder") or "")
        # the folder the run read the spec's relative paths from; older records name only the spec's file
        base = Path(folder) if folder and Path(folder).is_dir() else \
            Path(source).parent if source and Path(source).parent.is_dir() else Path.cwd()
        where = sink.url(key)
        with unused_periods():
            spec = parse_spec(record["spec"], source=f"{where} (the spec recorded there; --spec gives another)",
                              base_dir=base.resolve(), default_name=str(record.get("spec_name") or "experiment"))
        return spec, where
    raise InputError(f"no spec recorded in runs/ at {sink.uri}: give the spec it was tuned with, --spec SPEC")


def _config_rows(frame: pd.DataFrame, config_id: str, fidelity: str | None) -> pd.DataFrame:
    ok = frame[(frame["config_id"].astype(str) == config_id) & (frame["status"].astype(str) == Status.OK.value)]
    if fidelity is not None and "fidelity" in ok:
        same = ok[ok["fidelity"].fillna(DEFAULT_FIDELITY).astype(str) == fidelity]
        if not same.empty:
            return same
    return ok


def _median_epochs(rows: pd.DataFrame) -> tuple[int, list[int]]:
    """The median best_epoch of a config's tuning rows (rounded half up, at least 1), and the values."""
    values = [int(v) for v in pd.to_numeric(rows.get("best_epoch", pd.Series(dtype=float)), errors="coerce").dropna()]
    if not values:
        raise InputError("the config's tuning rows have no best_epoch: cannot tell how long to train it")
    return max(1, int(math.floor(float(np.median(values)) + 0.5))), sorted(values)


def _model_params(uri: str) -> dict[str, Any] | None:
    """Every hyperparameter of a tuning trial's model file, or None where it cannot be read."""
    import torch

    from hpt.sinks import read_uri

    try:
        payload = torch.load(io.BytesIO(read_uri(uri)), map_location="cpu", weights_only=True)
    except Exception:
        return None
    params = payload.get("params") if isinstance(payload, dict) else None
    return dict(params) if isinstance(params, dict) else None


def _full_params(spec: Spec, config_id: str, rows: pd.DataFrame) -> dict[str, Any]:
    """The config's every hyperparameter: the spec's values with its tuned ones, else as its model file says."""
    from hpt.search import config_id as make_config_id

    params = {**spec.base_params, **params_of(rows.iloc[0])}
    if make_config_id(spec, params) == config_id:
        return params
    for uri in rows.get("model_uri", pd.Series(dtype=object)).dropna().astype(str):
        found = _model_params(uri) if uri else None
        if found is not None:
            return found
    log.warning("config %s: the spec does not give this config's id and no model file of it could be read; "
                "training the spec's values with its tuned parameters", config_id)
    return params


@dataclass(frozen=True)
class Choice:
    """The config to train, how it was chosen, its tuning rows and how long to train it."""

    config_id: str
    chosen: str
    params: dict[str, Any]  # every hyperparameter
    architecture: str
    rows: pd.DataFrame  # its ok tuning rows (of its fidelity)
    epochs: int
    epoch_values: list[int]  # the best_epoch values the epochs are the median of
    tuned: dict[str, Any]

    @property
    def epochs_from(self) -> str:
        """Where `epochs` came from, in words."""
        if not self.epoch_values:
            return "the epochs the model was trained for (no tuning rows of its config here)"
        return f"median best_epoch of {plural(len(self.epoch_values), 'tuning trial')}: {self.epoch_values}"


def choose(from_model: str | None, given: str | None, frame: pd.DataFrame, summary: Any, spec: Spec, uri: str,
            start_model: Any) -> Choice:
    """The config of --from-model's model (`start_model`, opened from `from_model`), --config's (`given`), or
    the best one (as ``hpt best`` names it)."""
    metric = summary.metric
    fidelity: str | None = summary.main_fidelity
    if start_model is not None:
        config_id = str(start_model.info.get("config_id") or "")
        if not config_id:  # a trial's model: its row says its config
            match = frame[frame["trial_id"].astype(str) == start_model.trial_id]
            config_id = str(match["config_id"].iloc[0]) if len(match) else ""
        chosen = f"the config of {from_model}"
    elif given:
        config_id = _config_by_id(given, frame, uri)
        table = summary.main.table
        ranked = table[table["config_id"].astype(str) == config_id] if len(table) else table
        chosen = "--config" + (f" (mean {metric}={format_value(float(ranked['mean'].iloc[0]))} over "
                               f"{plural(int(ranked['periods_run'].iloc[0]), 'period')}, ranked {ranked.index[0] + 1} "
                               f"of {len(table)})" if len(ranked) else "")
    else:
        best = summary.best
        if best is None:
            raise HptError(f"{summary.main.why_no_best()} at {uri}: no best config yet (finish the run, or give "
                           "--config ID)")
        config_id, fidelity = best.config_id, best.fidelity
        rows_of = "" if best.fidelity == FULL.name else f"; from {fidelity_named(best.fidelity).rows}: no config has " \
            "full results yet"
        chosen = (f"best config (mean {metric}={format_value(best.mean)} over {plural(best.periods_run, 'period')}, "
                  f"best in {best.periods_won}{' of them' if best.periods_run > 1 else ''}{rows_of})")
    rows = _config_rows(frame, config_id, fidelity) if config_id else frame.iloc[0:0]
    if start_model is not None:
        params = dict(start_model.params)
        architecture = str(start_model.architecture)
        epochs, values = _median_epochs(rows) if not rows.empty else (int(params.get("epochs", 1)), list[int]())
        config_id = config_id or str(start_model.info.get("config_id") or start_model.trial_id)
    else:
        if rows.empty:
            raise InputError(f"config {config_id}: no ok tuning rows at {uri}")
        params = _full_params(spec, config_id, rows)
        architecture = str(rows["architecture"].iloc[0])
        epochs, values = _median_epochs(rows)
    tuned = params_of(rows.iloc[0]) if not rows.empty else {k: params[k] for k in spec.parameters if k in params}
    return Choice(config_id, chosen, params, architecture, rows, epochs, values, tuned)


def _config_by_id(given: str, frame: pd.DataFrame, uri: str) -> str:
    """--config: a config with ok rows, by its id or a prefix of it that names one."""
    ok_ids = sorted(set(frame.loc[frame["status"].astype(str) == Status.OK.value, "config_id"].astype(str)))
    if given in ok_ids:
        return given
    prefix = [c for c in ok_ids if c.startswith(given)]
    if len(prefix) == 1:
        return prefix[0]
    if prefix:
        raise InputError(f"--config {given}: the prefix matches {len(prefix)} configs ({', '.join(prefix[:5])}); "
                         "give more of the id")
    listed = ", ".join(ok_ids[:10]) + (f", ... ({len(ok_ids)})" if len(ok_ids) > 10 else "")
    raise InputError(f"--config {given}: no config with ok trials at {uri} has this id{did_you_mean(given, ok_ids)}; "
                     f"configs: {listed}")


def config_periods(rows: pd.DataFrame) -> list[Period]:
    """The distinct periods of these rows, in order."""
    pairs = rows[["period_start", "period_end"]].dropna().astype(str).itertuples(index=False)
    return sorted({Period(pd.Timestamp(s), pd.Timestamp(e)) for s, e in pairs})


def train_start(months: int | None, spec: Spec, periods: list[Period], end: pd.Timestamp) -> tuple[pd.Timestamp, str]:
    """Where training starts, `end` being the hold-out's start, and the length in words: --months,
    else as long as one of the config's tuning `periods` (in months when they are whole months)."""
    if months is not None:
        return pd.Timestamp(end - pd.DateOffset(months=months)), plural(months, "month")
    whole = {_whole_months(p) for p in periods}
    if len(whole) == 1 and None not in whole:  # month-aligned periods of one length: that many months
        n = int(next(iter(whole)) or 1)
        return pd.Timestamp(end - pd.DateOffset(months=n)), f"{plural(n, 'month')}, one tuning period"
    if spec.period_rule is not None and not periods:
        n = spec.period_rule.months
        return pd.Timestamp(end - pd.DateOffset(months=n)), f"{plural(n, 'month')}, one tuning period"
    span = max((p.end - p.start for p in periods), default=pd.Timedelta(days=30))
    return pd.Timestamp(end - span), f"{_span_text(span)}, one tuning period"



def span_text(p: Period) -> str:
    """How long `p` is in words: in months when it runs from one month's start to another's, else in days."""
    months = _whole_months(p)
    return plural(months, "month") if months else _span_text(p.end - p.start)


def _whole_months(p: Period) -> int | None:
    """How many months `p` spans when it runs from one month's start to another's, else None."""
    if p.start != p.start.normalize() or p.start.day != 1 or p.end != p.end.normalize() or p.end.day != 1:
        return None
    return (p.end.year - p.start.year) * 12 + p.end.month - p.start.month


def _span_text(span: pd.Timedelta) -> str:
    days = span / pd.Timedelta(days=1)
    return plural(int(days), "day") if days == int(days) else str(span)

