"""The winner, retrained on the newest data and tested on a hold-out that tuning never saw.

``hpt final LOCATION`` takes the best config of a results location (the one ``hpt best``
names, or another by id), trains it on the newest data before the hold-out for the median
``best_epoch`` of its tuning trials (no early stopping: the hold-out is never seen in
training), and scores it on the hold-out in the data's own units and standardised (with
the train part's scale, like the trial rows' ``val_*``), beside both naive baselines on the
same windows. Its training is one trial per model (:class:`hpt.trial.Refit`), run by the
runner on the backend ``hpt run`` would use, under claims. It writes, at the location::

    final/<final_id>/model.pt      the model (same format as models/<trial_id>.pt)
    final/<final_id>/scratch.pt    with --from-model --compare: the model trained from scratch
    final/<final_id>/report.json   what was trained, on what, and how it scored
    final/index.csv                one row per final model, merged with conditional writes

The hold-out is the final ``holdout`` months of automatic periods (``date_ranges.auto``),
or given as a duration at the end of the data (``--holdout 1M``) or a start date; a tuning
period that overlaps it is refused, since the hold-out would then not be unseen.

    prepare (choose; the hold-out from hpt.windows) -> training (trials, runner, backend) -> run (files) -> report (lines)
"""

from hpt.final.index import INDEX_CSV, merge_index
from hpt.final.prepare import MIN_VERDICT_WINDOWS, FinalRequest
from hpt.final.report import FinalReport, report_lines
from hpt.final.run import run_final

__all__ = ["INDEX_CSV", "MIN_VERDICT_WINDOWS", "FinalReport", "FinalRequest", "merge_index", "report_lines",
           "run_final"]
