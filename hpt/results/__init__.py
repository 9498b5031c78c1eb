"""Read a results location and decide from it: rankings across periods, is the winner real, parameter trends.

:func:`load_results` reads the rows, :func:`summarise` turns them into a :class:`Summary`
(each fidelity ranked apart, the winner tested against every other config, the objective per
value of every tuned parameter, the trials that did not finish ``ok``), and :func:`render`
prints a summary as a table, CSV, JSON or Markdown. :func:`best_config` is the one
definition of the best config, used by ``hpt results``, ``hpt best``, the end of a run and
``hpt auto``.

    load.py     load_results, planned_periods, default_metric, recorded_runs, run_specs, filter_rows, check_metric
    alike.py    alike_note: configs that look alike in a ranking, and the spec settings that tell them apart
    rank.py     Ranking per fidelity (where "ran every period" is decided), BestConfig, best_config
    stats.py    Verdict, winner_verdict: the best against every other config (Friedman, Nemenyi, Wilcoxon)
    trends.py   parameter_trends
    summary.py  Summary, summarise, best_params
    versus.py   VsBaseline, versus_baselines: each config against the better naive baseline
    pareto.py   Front, pareto_front: the configs on the quality/cost front (--pareto n_params)
    render.py   render, render_pareto: table, markdown, json, csv
"""

from __future__ import annotations

from hpt.results.load import (
    check_metric,
    default_metric,
    filter_rows,
    load_results,
    planned_periods,
    recorded_runs,
    run_specs,
)
from hpt.results.pareto import Front, pareto_front
from hpt.results.rank import (
    BestConfig,
    Planned,
    Ranking,
    best_config,
    fidelity_order,
    main_fidelity,
    rank_fidelities,
    rank_fidelity,
    why_no_best,
)
from hpt.results.render import FORMATS, render, render_pareto
from hpt.results.stats import ALPHA, Comparison, Verdict, periods_needed, winner_verdict
from hpt.results.summary import Summary, best_params, summarise
from hpt.results.trends import parameter_trends
from hpt.results.versus import Judgement, VsBaseline, config_judgement, judge, versus_baselines

__all__ = [
    "ALPHA",
    "FORMATS",
    "BestConfig",
    "Judgement",
    "Comparison",
    "Front",
    "Planned",
    "Ranking",
    "Summary",
    "Verdict",
    "VsBaseline",
    "best_config",
    "best_params",
    "check_metric",
    "config_judgement",
    "default_metric",
    "fidelity_order",
    "filter_rows",
    "judge",
    "load_results",
    "main_fidelity",
    "parameter_trends",
    "pareto_front",
    "planned_periods",
    "recorded_runs",
    "run_specs",
    "periods_needed",
    "rank_fidelities",
    "rank_fidelity",
    "render",
    "render_pareto",
    "summarise",
    "versus_baselines",
    "why_no_best",
    "winner_verdict",
]
