"""The loop that joins them: a scheduler decides what to try, a backend runs it, the store keeps it.

    Spec -> Scheduler -> Runner -> Backend (workers) -> events -> Runner -> Scheduler and Store

The runner owns what every backend needs alike: signals (no new trials after Ctrl-C or
SIGTERM, a grace period for the running ones, then ``interrupted`` rows), exit codes and
the progress log. The scheduler is rebuilt from the rows already at the results location,
so running the same command again resumes an interrupted run.

    options (RunOptions, the results location) -> backend (which one) -> run (run_spec: store, record, start, end)
    -> loop (drive: submitting, events, decisions, signals; gate: claims) -> summary (the best config, the last lines)
"""

from hpt.runner.backend import local_backend, make_backend, ray_backend
from hpt.runner.gate import ClaimGate, Gate
from hpt.runner.loop import drive
from hpt.runner.options import RunOptions, results_location
from hpt.runner.run import run_spec
from hpt.runner.summary import RunSummary

__all__ = ["ClaimGate", "Gate", "RunOptions", "RunSummary", "drive", "local_backend", "make_backend", "ray_backend",
           "results_location", "run_spec"]
