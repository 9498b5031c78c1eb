"""``hpt final``'s stages in order: settle what to train, train it through the runner, score the
baselines, write the model files, report.json and final/index.csv."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from hpt import layout
from hpt.final.index import INDEX_CSV, index_row, merge_index
from hpt.final.prepare import FinalRequest, Setup, panel_baselines, prepare, score_baselines, series_verdicts
from hpt.final.report import FinalReport, elsewhere_document, failed_document, report_document
from hpt.final.training import Training, final_trials, train
from hpt.progress import format_value, plural
from hpt.stamps import new_id, utcnow
from hpt.trial import Status, Trial, TrialResult

__all__ = ["run_final"]

log = logging.getLogger("hpt")


def run_final(req: FinalRequest, say: Callable[[str], None] | None = None) -> FinalReport:
    """Train the chosen config on the newest data, score it on the hold-out, write it at the location.

    `say` hears one line per stage (default: the ``hpt`` logger). A final interrupted by a signal,
    or whose training failed, is recorded as such in its report.json (no model is written) and
    its report's exit code says so; one whose trials another final is training now is left to it.
    """
    say = say or (lambda line: log.info("%s", line))
    s = prepare(req, say)
    final_id = new_id()
    trials = final_trials(s, final_id)
    training = train(req, s, trials, final_id, say)
    try:
        return _record(s, final_id, trials, training, say)
    finally:
        if training.claims is not None:
            training.claims.close()


def _record(s: Setup, final_id: str, trials: list[Trial], training: Training, say: Callable[[str], None]) -> FinalReport:
    sink = s.sink
    if training.elsewhere and not training.results:
        holder = next(iter(training.elsewhere.values()))
        doc = elsewhere_document(s, final_id, holder.run_id, holder.host, sink.url(layout.final_report(holder.run_id)))
        return FinalReport(final_id, doc)
    got = {r.trial.trial_id: r for r in training.results}
    pairs = [(str(t.tags["mode"]), got.get(t.trial_id) or _not_run(t, training)) for t in trials]
    report_key = layout.final_report(final_id)
    uris = {"report": sink.url(report_key), "index": sink.url(INDEX_CSV)}
    if any(r.status is not Status.OK for _, r in pairs):
        doc = failed_document(s, final_id, training.device, pairs, uris)
        sink.write(report_key, json.dumps(doc, indent=1, default=str).encode())
        say(f"final {final_id} {doc['status']}: recorded in {uris['report']}")
        return FinalReport(final_id, doc, uris, exit_code=training.exit_code or 1)
    forecasts = panel_baselines(s)
    baselines = score_baselines(s, forecasts)
    verdicts = None if forecasts is None else \
        [series_verdicts(s, result.model, forecasts) for _, result in pairs if result.model is not None]
    say(f"baselines on the same {plural(len(s.windows.x_val), 'window')}: " + ", ".join(
        f"{n} mse={format_value(b['metrics']['mse'])}" for n, b in baselines.items()))
    keys = {"model": layout.final_model(final_id), "scratch": layout.final_model(final_id, scratch=True)}
    uris.update({name: sink.url(keys[name]) for name, _ in zip(keys, pairs, strict=False)})
    doc = report_document(s, final_id, training.device, pairs, baselines, uris, verdicts)
    for name, (_, result) in zip(keys, pairs, strict=False):
        assert result.model is not None
        sink.write(keys[name], result.model)
    sink.write(report_key, json.dumps(doc, indent=1, default=str).encode())
    merge_index(sink, [index_row(doc, m) for m in doc["models"]])
    written = [uris[name] for name in ("model", "scratch") if name in uris]
    say(f"wrote {', '.join(written)}, {uris['report']}; added to {uris['index']}")
    files = {keys[name].rsplit("/", 1)[-1]: result.model for name, (_, result) in zip(keys, pairs, strict=False)
             if result.model is not None}
    return FinalReport(final_id, doc, uris, files)


def _not_run(trial: Trial, training: Training) -> TrialResult:
    """A trial the runner did not start: a signal came first, or another final trains it."""
    holder = training.elsewhere.get(trial.trial_id)
    error = f"being trained by final {holder.run_id} on host {holder.host}" if holder else \
        "interrupted before it started"
    return TrialResult(trial, Status.INTERRUPTED, error=error, finished_at=utcnow())
