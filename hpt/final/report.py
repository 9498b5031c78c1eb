"""What ``hpt final`` reports: report.json's document, for a final that trained and one that did not,
and the short report it prints."""

from __future__ import annotations

import math
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpt import __version__
from hpt.baselines import BASELINES
from hpt.errors import redact
from hpt.final.prepare import MIN_VERDICT_WINDOWS, Setup, few_windows, left_out_series
from hpt.panel import name_few
from hpt.progress import format_params, plural
from hpt.results.versus import judge_best, relative_change
from hpt.stamps import utcnow
from hpt.trial import TrialResult

if TYPE_CHECKING:
    from hpt.windows import Windows

__all__ = ["FinalReport", "elsewhere_document", "failed_document", "report_document", "report_lines"]


@dataclass
class FinalReport:
    """What ``hpt final`` did: everything report.json holds, the lines it prints and its exit code."""

    final_id: str
    document: dict[str, Any]
    uris: dict[str, str] = field(default_factory=dict)  # model, report, index (and scratch)
    files: dict[str, bytes] = field(default_factory=dict)  # model.pt (and scratch.pt) as written, for trackers
    exit_code: int = 0  # 130 or 143: interrupted by a signal; 1: training failed

    def lines(self) -> list[str]:
        return report_lines(self.document)


def _chosen(s: Setup, final_id: str, status: str) -> dict[str, Any]:
    """What report.json says of any final: what was to be trained, and on what."""
    from hpt.windows import frame_step, step_text

    c, w, train, ho = s.choice, s.windows, s.train, s.holdout
    return {
        "final_id": final_id,
        "status": status,
        "created_at": utcnow(),
        "location": s.sink.url("").rstrip("/"),  # a folder: its absolute path, whatever folder hpt final ran in
        "spec": {"name": s.spec.name, "source": s.spec_source},
        "config_id": c.config_id,
        "chosen": c.chosen,
        "metric": s.metric,
        "architecture": c.architecture,
        "params": c.tuned,
        "all_params": {**c.params, "epochs": c.epochs},
        "data": {"path": s.spec.data.path, "time_column": s.spec.data.time_column, "columns": list(w.columns),
                 "step": step_text(frame_step(s.frame))},
        "train": {"start": train.start_text, "end": train.end_text, "length": s.length, "rows": s.train_rows,
                  "windows": int(len(w.x_train)), **_target_stats(w)},
        "epochs": c.epochs,
        "epochs_from": c.epochs_from,
        "best_epochs": c.epoch_values,
        "holdout": {"start": ho.period.start_text, "end": ho.period.end_text, "how": ho.how, "rows": s.held_rows,
                    "windows": int(len(w.x_val)), "horizon": int(c.params["horizon"]),
                    "tuning_periods": [p.label for p in s.tuning_periods]},
        "from_model": s.from_model,
    }


def _target_stats(w: Windows) -> dict[str, float | None]:
    """The train part's target mean and standard deviation; null over many series, each of which has its own
    (stored in the model file)."""
    one = w.panel is None
    return {"target_mean": float(w.mean[0]) if one else None, "target_std": float(w.std[0]) if one else None}


def _where(device: str, uris: dict[str, str]) -> dict[str, Any]:
    return {"device": device, "hpt_version": __version__, "host": socket.gethostname(), "uris": uris}


def _scores(metrics: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """A final trial's hold-out scores (:class:`hpt.trial.Refit`): (data units, standardised)."""
    units = {k.removeprefix("holdout_"): v for k, v in metrics.items()
             if k.startswith("holdout_") and not k.startswith("holdout_std_")}
    return units, {k.removeprefix("holdout_std_"): v for k, v in metrics.items() if k.startswith("holdout_std_")}


def _change(value: float, reference: float) -> float | None:
    """:func:`~hpt.results.versus.relative_change`, None where it is infinite (JSON has no infinity)."""
    change = relative_change(value, reference)
    return change if math.isfinite(change) else None


def report_document(s: Setup, final_id: str, device: str, trained: list[tuple[str, TrialResult]],
                    baselines: dict[str, dict[str, Any]], uris: dict[str, str],
                    series: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """report.json of a final whose models all trained: `trained` is (mode, result) in order, the first model.pt;
    of a final over many series, `series` is each model's :func:`~hpt.final.prepare.series_verdicts`."""
    few = few_windows(len(s.windows.x_val))
    models, better, judged_on = [], "", "mse"
    for (mode, result), key in zip(trained, ("model", "scratch"), strict=False):
        metrics, standardised = _scores(result.metrics)
        # the better baseline and the change against it on the metric the verdict judges on (the objective's)
        better, verdict = judge_best(s.metric, metrics, {n: baselines[n]["metrics"] for n in BASELINES})
        judged_on = verdict.metric
        models.append({"mode": mode, "model_uri": uris[key], "train_time_s": round(result.metrics["train_time_s"], 3),
                       "train_loss": result.metrics["train_loss"], "metrics": metrics, "standardised": standardised,
                       "vs_best_baseline": _change(metrics[judged_on], baselines[better]["metrics"][judged_on])})
        if series is not None:
            models[-1]["series"] = series[len(models) - 1]
    static = {"series_features": list(s.spec.data.series_features)} if s.spec.data.series_features else {}
    panel = {} if s.windows.panel is None else {"panel": {
        "column": s.spec.data.series, "series": len(s.windows.panel.series), "left_out": left_out_series(s), **static}}
    return {**_chosen(s, final_id, "ok"), **panel,
            "verdict": {"metric": judged_on, "windows": int(len(s.windows.x_val)), "min_windows": MIN_VERDICT_WINDOWS,
                        "too_few": bool(few), "note": few},
            "models": models, "baselines": baselines, "best_baseline": better, **_where(device, uris)}


def failed_document(s: Setup, final_id: str, device: str, results: list[tuple[str, TrialResult]],
                    uris: dict[str, str]) -> dict[str, Any]:
    """report.json of a final that did not train all its models: interrupted, failed or diverged."""
    status = next(r.status.value for _, r in results if r.status.value != "ok")
    trials = [{"mode": mode, "status": r.status.value, "error": redact(r.error), "device": r.device,
               "started_at": r.started_at, "finished_at": r.finished_at} for mode, r in results]
    return {**_chosen(s, final_id, status), "trials": trials, **_where(device, uris)}


def elsewhere_document(s: Setup, final_id: str, holder: str, host: str, report_uri: str) -> dict[str, Any]:
    """What a final says (and writes nowhere) when another final is training its models now."""
    return {**_chosen(s, final_id, "elsewhere"), "trained_by": holder, "trained_on": host, "report_uri": report_uri}


# -- the printed report ---------------------------------------------------------------


_MODE_TEXT = {"fine-tune": "fine-tuned", "scratch": "from scratch"}


def report_lines(doc: Mapping[str, Any]) -> list[str]:
    """The short report ``hpt final`` prints."""
    if doc.get("status") == "elsewhere":
        return [f"config {doc['config_id']} ({doc['architecture']}): final {doc['trained_by']} on host "
                f"{doc['trained_on']} is training these models now; not trained again here",
                f"  its report: {doc['report_uri']}"]
    if doc.get("status", "ok") != "ok":
        return _failed_lines(doc)
    tr, ho = doc["train"], doc["holdout"]
    lines = [
        f"final {doc['final_id']}: config {doc['config_id']} ({doc['architecture']}) "
        f"{format_params(doc['params']) or '(no tuned parameters)'}",
        f"  chosen:   {doc['chosen']}",
        f"  trained:  {tr['start']}..{tr['end']} ({tr['length']}; {plural(tr['rows'], 'row')}, "
        f"{plural(tr['windows'], 'window')}) for {plural(doc['epochs'], 'epoch')} ({doc['epochs_from']}) on {doc['device']}"
        + (f", starting from {doc['from_model']}" if doc.get("from_model") else ""),
        f"  hold-out: {ho['start']}..{ho['end']} ({ho['how']}; {plural(ho['rows'], 'row')}, "
        f"{plural(ho['windows'], 'window')} of horizon {ho['horizon']}), never used in tuning or training",
        "",
    ]
    # a quantile model: the point metrics are its median's; pinball (data units) and coverage beside them
    quantile = "pinball" in doc["models"][0]["metrics"]
    extra_head = f"{'pinball':>12}{'coverage':>10}" if quantile else ""
    lines.append(f"  {'on the hold-out':<22}{'mse':>12}{'mae':>12}{'rmse':>12}{extra_head}   "
                 f"{'standardised: mse':>17}{'mae':>9}{'rmse':>9}")

    def row(name: str, m: Mapping[str, float], s: Mapping[str, float], note: str = "") -> str:
        extra = f"{m['pinball']:>12.5g}{m['coverage']:>10.1%}" if quantile else ""
        return (f"  {name:<22}{m['mse']:>12.5g}{m['mae']:>12.5g}{m['rmse']:>12.5g}{extra}   "
                f"{s['mse']:>17.4f}{s['mae']:>9.4f}{s['rmse']:>9.4f}{note}")

    for model in doc["models"]:
        label = "model" if len(doc["models"]) == 1 else f"model ({_MODE_TEXT.get(model['mode'], model['mode'])})"
        lines.append(row(label, model["metrics"], model["standardised"]))
    for name, b in doc["baselines"].items():
        label = f"{name} ({b['season']})" if "season" in b else name
        lines.append(row(label, b["metrics"], b["standardised"]))
    lines.append("")
    basis = f" on {plural(ho['windows'], 'hold-out window')}"
    for model in doc["models"]:  # judged on the objective's error; the others where they disagree
        _, verdict = judge_best(str(doc.get("metric") or "mse"), model["metrics"],
                                {n: b["metrics"] for n, b in doc["baselines"].items()})
        who = "the model" if len(doc["models"]) == 1 else f"the model {_MODE_TEXT.get(model['mode'], model['mode'])}"
        # "warning:" where it does not beat it, as the run, hpt results and hpt best say it: a log grep finds it
        lines.append(f"  {'' if verdict.beats else 'warning: '}{who} {verdict.text()}{basis}")
    lines.extend(_panel_lines(doc))
    note = doc.get("verdict", {}).get("note")
    if note:
        lines.append(f"  warning:  {note}")
    uris = doc["uris"]
    lines.append(f"  written:  {uris['model']}" + (f", {uris['scratch']}" if "scratch" in uris else "")
                 + f", {uris['report']}")
    lines.append(f"  index:    {uris['index']}")
    lines.append(f"  use it:   hpt predict {uris['model']} --data FILE --last")
    return lines


def _panel_lines(doc: Mapping[str, Any]) -> list[str]:
    """Of a final over many series: MASE, on how many series each model beats seasonal naive, its worst series."""
    panel = doc.get("panel")
    if not panel:
        return []
    left = panel["left_out"]
    static = panel.get("series_features")
    lines = [f"  series:   {plural(panel['series'], 'series')} of \"{panel['column']}\" in the hold-out"
             + (f" (static series features: {', '.join(static)})" if static else "")
             + (f"; {len(left)} left out (no window in the training span or the hold-out: {name_few(left)})"
                if left else "")]
    mase = {n: b["metrics"].get("mase") for n, b in doc["baselines"].items()}
    for model in doc["models"]:
        who = "the model" if len(doc["models"]) == 1 else f"the model {_MODE_TEXT.get(model['mode'], model['mode'])}"
        v = model["series"]
        theirs = ", ".join(f"{n} {m:.3f}" for n, m in mase.items() if m is not None)
        if model["metrics"].get("mase") is not None:
            lines.append(f"  {who}: MASE {model['metrics']['mase']:.3f} over the series ({theirs})")
        share = v["beats_seasonal_share"]
        lines.append(f"  {who} beats seasonal naive on {v['beats_seasonal']} of {plural(v['series'], 'series')}"
                     + (f" ({share:.0%})" if share is not None else "") + " (MAE on its hold-out windows)")
        worst = "; ".join(f"\"{w['series']}\" MASE {_maybe(w['mase'])} (seasonal naive {_maybe(w['naive_seasonal_mase'])})"
                          for w in v["worst"])
        lines.append(f"  worst:    {worst}")
    return lines


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _failed_lines(doc: Mapping[str, Any]) -> list[str]:
    lines = [f"final {doc['final_id']} {doc['status']}: config {doc['config_id']} ({doc['architecture']}) "
             f"{format_params(doc['params']) or '(no tuned parameters)'}; nothing written but its report"]
    for t in doc["trials"]:
        where = f" (on {t['device']})" if t["device"] else ""
        error = f": {t['error']}" if t["error"] else ""
        lines.append(f"  {_MODE_TEXT.get(t['mode'], t['mode'])}: {t['status']}{where}{error}")
    lines.append(f"  recorded: {doc['uris']['report']}")
    return lines
