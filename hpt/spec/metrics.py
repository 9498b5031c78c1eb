"""The ``metrics`` and ``objective`` sections: the columns a run's rows carry and the one it minimises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hpt.errors import did_you_mean, show
from hpt.hparams import QUANTILE_LOSSES
from hpt.spec.checker import Checker
from hpt.spec.objects import METRICS, OBJECTIVES, PANEL_METRICS, QUANTILE_METRICS, Axis, DataSpec, config_losses

__all__ = ["check_panel", "check_quantile_metrics", "parse_metrics", "parse_objective"]


def parse_metrics(ck: Checker, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        ck.add("metrics", f"expected a list of metric names, got {show(value)}")
        return ()
    names = []
    valid = sorted(set(METRICS) | set(METRICS.values()) | {"val_rmse"})
    for i, m in enumerate(value):
        column = METRICS.get(m, m) if isinstance(m, str) else None
        if column not in METRICS.values() and column != "val_rmse":
            hint = did_you_mean(m, valid) if isinstance(m, str) else ""
            ck.add(f"metrics[{i}]", f"unknown metric {show(m)}{hint}; valid: {', '.join(sorted(METRICS))}")
            continue
        names.append(str(column))
    return tuple(dict.fromkeys(names))


def parse_objective(ck: Checker, value: Any) -> str:
    column = METRICS.get(value, value) if isinstance(value, str) else None
    if column not in OBJECTIVES:
        hint = did_you_mean(value, OBJECTIVES) if isinstance(value, str) else ""
        ck.add("objective", f"expected one of {', '.join(OBJECTIVES)} (lower is better), got {show(value)}{hint}")
        return "val_mse"
    return str(column)


def check_quantile_metrics(ck: Checker, objective: str, metrics: tuple[str, ...], parameters: Mapping[str, Axis],
                           training: Mapping[str, Any]) -> None:
    """val_pinball and val_coverage exist only for quantile models: asking for them needs
    training.loss "quantile" (or "mdn") in every config."""
    others = [loss for loss in config_losses(parameters, training) if loss not in QUANTILE_LOSSES]
    if not others:
        return
    where = "parameters.loss" if "loss" in parameters else "training.loss"
    asked = [("objective", objective)] if objective in QUANTILE_METRICS else []
    asked += [("metrics", m) for m in metrics if m in QUANTILE_METRICS]
    for place, metric in asked[:1]:
        ck.add(place, f'{metric} needs training.loss "quantile" or "mdn" in every config, but {where} '
                      f'gives {show(others[0])}: set "loss": "quantile" (and "quantiles")')


def check_panel(ck: Checker, data: DataSpec, objective: str, metrics: tuple[str, ...]) -> None:
    """val_mase exists only over many series (data.series)."""
    if data.series is None:
        asked = [("objective", objective)] if objective in PANEL_METRICS else []
        asked += [("metrics", m) for m in metrics if m in PANEL_METRICS]
        for place, metric in asked[:1]:
            ck.add(place, f"{metric} is scored over many series: it needs data.series (the column naming each "
                          "row's series)")
        return
