"""The summary as text: a terminal table, Markdown, JSON or CSV."""

from __future__ import annotations

import io
import json
import math
import textwrap
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from hpt.errors import InputError, redact
from hpt.fidelity import FULL, fidelity_named, share_text
from hpt.progress import plural
from hpt.results.pareto import Front
from hpt.results.rank import PRUNED_STATS, STATS, BestConfig, Ranking
from hpt.results.screen import ScreenPlaces
from hpt.results.stats import BETTER_RANKED, FRIEDMAN_NEMENYI, TIED, TOO_FEW, UNTESTED, WILCOXON, WORSE, Verdict, format_p
from hpt.results.summary import Summary
from hpt.results.versus import VsBaseline
from hpt.rows import DEFAULT_FIDELITY, param_column, params_of, plain
from hpt.trial import Status

__all__ = ["FORMATS", "render", "render_pareto"]

FORMATS = ("table", "csv", "json", "markdown")
_MAX_PROBLEMS_SHOWN = 20


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _params_text(best: BestConfig) -> str:
    return " ".join(f"{p}={_num(v)}" for p, v in best.params.items())


@dataclass
class _Section:
    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    right: set[int] = field(default_factory=set)  # columns aligned right (numbers)
    notes: list[str] = field(default_factory=list)
    paragraph: str = ""  # prose after the table: wrapped in a terminal, a paragraph in Markdown
    plain: bool = False  # the title is a line of its own (a warning), not a heading


def _ranking_section(r: Ranking, title: str, top: int, versus: Mapping[str, VsBaseline],
                     screen: ScreenPlaces | None = None) -> _Section:
    labels = " ".join(f"P{i}" for i in range(1, len(r.periods) + 1))
    seeds = r.seeds_measured
    spread = ["period std", "seed std"] if seeds else ["std"]
    vs_header = ["vs naive"] if versus else []
    family = ["architecture"] if "architecture" in r.table else []  # only when the location holds several
    screened = ["screen"] if screen is not None else []
    headers = ["#", "config", *family, *r.params, "mean", "median", "worst", *spread, "won", f"ranks ({labels})",
               *screened, *vs_header]
    sec = _Section(title, headers, right={0, *range(2 + len(family), len(headers) - 1 - len(screened) - len(vs_header)),
                                          *([len(headers) - 1 - len(vs_header)] if screen is not None else [])})
    shown = r.table if top <= 0 else r.table.head(top)
    best = r.best
    for i, d in enumerate(shown.to_dict(orient="records"), 1):
        mark = "*" if best is not None and d["config_id"] == best.config_id else ""
        ranks = " ".join("-" if x is None else str(x) for x in d["ranks"])
        won = f"{d['periods_won']}/{len(r.periods)}"
        cid = d["config_id"] + (" (partial)" if d["partial"] else "") + (" (finalist)" if d.get("finalist") else "")
        spreads = [_num(d["std"]), _num(d["seed_std"])] if seeds else [_num(d["std"])]
        vs = [versus[d["config_id"]].short() if d["config_id"] in versus else "-"] if versus else []
        place = [f"{screen.places[d['config_id']]}/{screen.screened}" if d["config_id"] in screen.places else "-"] \
            if screen is not None else []
        sec.rows.append([f"{i}{mark}", cid, *(d[c] for c in family), *(_num(d[p]) for p in r.params),
                         _num(d["mean"]), _num(d["median"]),
                         _num(d["worst"]), *spreads, won, ranks, *place, *vs])
    if len(r.table) > len(shown):
        sec.notes.append(f"... and {plural(len(r.table) - len(shown), 'more config')} (--top N shows more; --top 0 all)")
    n_partial = int(r.table["partial"].sum())
    if best is None:
        sec.notes.append(f"no config has run all {len(r.periods)} periods: none is crowned best")
    else:
        vs_best = versus.get(best.config_id)
        sec.notes.append(f"* best: {best.named}  {_params_text(best)}  "
                         f"mean {r.metric}={_num(best.mean)}, won {best.periods_won} of {plural(len(r.periods), 'period')}"
                         + (f"; {vs_best.text()}" if vs_best else ""))
    if "finalist" in r.table and r.table["finalist"].any():
        sec.notes.append("(finalist): early stopping stopped it in a period, or the race dropped it; completed on every "
                         "period at the search's end (search.finalists)")
    if n_partial:
        sec.notes.append(f"{plural(n_partial, 'partial config')} missing periods: shown after the complete ones, "
                         "never crowned best")
    sec.notes.append("periods: " + "  ".join(f"P{i} {p}" for i, p in enumerate(r.periods, 1)))
    if screen is not None:
        sec.notes.append(screen.note())
    if versus:
        sec.notes.append(f"vs naive: mean {r.metric} against the better naive baseline on the same periods and windows "
                         "(e.g. -38% seasonal 3/3: 38% below seasonal naive, below it in 3 of 3 periods)")
    if seeds:
        fewest = int(r.table["seeds"].min())
        most = int(r.table["seeds"].max())
        count = f"{fewest}" if fewest == most else f"{fewest} to {most}"
        sec.notes.append(f"each period's value is the mean over its seeds ({count} per period); period std: spread "
                         "across periods; seed std: spread across seeds within a period, the noise a difference must beat")
    return sec


def _pruned_section(r: Ranking, top: int) -> _Section:
    t = r.pruned
    raced = int((t["dropped"] != "").sum()) if "dropped" in t else 0
    what = "Stopped early" if not raced else "Dropped by the race" if raced == len(t) else "Stopped early or dropped by the race"
    if r.fidelity != DEFAULT_FIDELITY:
        what += f", {fidelity_named(r.fidelity).rows}"
    title = (f"{what}: {plural(len(t), 'config')} with a pruned period "
             f"({plural(int(t['periods_pruned'].sum()), 'trial')}), listed apart and never ranked")
    params = [c for c in t.columns if c not in ("config_id", *PRUNED_STATS)]
    headers = ["config", *params, "pruned", "epochs", f"{r.metric} so far", *(["why"] if raced else [])]
    sec = _Section(title, headers, right={*range(1, len(headers) - bool(raced))})
    shown = t if top <= 0 else t.head(top)
    for d in shown.to_dict(orient="records"):
        sec.rows.append([str(d["config_id"]), *(_num(d[p]) for p in params),
                         f"{d['periods_pruned']}/{d['periods_run']}", _stopped_at(d), _num(d["mean_so_far"]),
                         *([d["dropped"] or "stopped early"] if raced else [])])
    if len(t) > len(shown):
        sec.notes.append(f"... and {len(t) - len(shown)} more (--top 0 lists all)")
    shares = "data_share" in t and bool(pd.to_numeric(t["data_share"], errors="coerce").notna().any())
    sec.notes.append(("pruned: periods stopped early or dropped (not trained), of those with a row" if raced else
                      "pruned: periods stopped of those run") + "; epochs: the most a stopped trial ran"
                     + (" (share 1/9: stopped at that share of the data, early_stopping.resource \"data\")" if shares
                        else "") + "; so far: the mean over its trials up to where they stopped (not comparable with "
                     "the ranked means)"
                     + ("; why: the race (search.race) drops a config the tests find worse than the best so far, "
                        "and does not train its later periods" if raced else ""))
    return sec


def _stopped_at(d: dict[str, Any]) -> str:
    """The epochs column of a stopped config: its epochs, or the data share it was stopped at."""
    share = d.get("data_share")
    if (d.get("epochs") is None or pd.isna(d["epochs"])) and share is not None and not pd.isna(share) and share > 0:
        return f"share {share_text(float(share))}"
    return _num(d["epochs"])


_TEST_NAMES = {FRIEDMAN_NEMENYI: "Nemenyi p", WILCOXON: "Wilcoxon p"}


def _verdict_section(s: Summary) -> _Section:
    r = s.main
    v = s.verdict
    title = "Is the winner real? The best against every other config, corrected for picking it"
    sec = _Section(title, paragraph=v.statement(s.metric))
    if v.comparisons:
        sec.headers = ["best vs", *r.params, "wins", "mean diff", _TEST_NAMES.get(v.test, "p"), "verdict"]
        sec.right = {*range(1, len(r.params) + 4)}
        table = r.table.set_index("config_id")
        for c in v.comparisons:
            other = table.loc[c.other]
            sec.rows.append([c.other, *(_num(other[p]) for p in r.params), f"{c.wins} of {c.shared}",
                             f"{c.mean_diff:+.3g}", format_p(c.p_value, v.alpha), c.verdict])
        listed = {c.other for c in v.comparisons}
        left = len(v.tied) + len(v.distinguishable) + len(v.untested) - len(listed)
        if left > 0:
            sec.notes.append(f"... and {plural(left, 'more config')} tested "
                             "(--compare N lists more; --format json names every one)")
        sec.notes.extend(_method_notes(s, v))
    if v.best is not None and v.configs >= 2 and not r.seeds_measured:
        sec.notes.append("one seed per period: the seed noise is not measured; training.repeats: 3 trains three seeds "
                         "per config and period and shows their spread")
    return sec


def _method_notes(s: Summary, v: Verdict) -> list[str]:
    """What the columns of the comparison mean, and which tests made it: a line each."""
    diff = f"mean diff: best minus other ({s.metric}; negative: the best is lower)"
    if v.test == WILCOXON:
        return [diff, f"Wilcoxon signed-rank test over the periods, two-sided at {v.alpha:g}"]
    return [diff, f"Friedman test over the periods, then (only if it finds a difference) Nemenyi's test of the best "
                  f"against each config, corrected for comparing {v.configs} configs, at {v.alpha:g}",
            f'"{TIED}": the tests cannot tell it from the best']


def _trend_sections(s: Summary) -> list[_Section]:
    out = []
    marked = False
    for p, t in s.trends.items():
        pruned = "pruned" in t and bool(t["pruned"].sum())
        headers = [p, "median", "mean", "best", "trials", "configs"] + (["pruned"] if pruned else [])
        sec = _Section(f"{p}: {s.metric} per value", headers, right=set(range(1, len(headers))))
        # one config's value says as much about its other parameters as about this one: not marked
        medians = t["median"].where(t["configs"] >= 2).to_numpy(dtype=float)
        top = int(np.nanargmin(medians)) if not np.isnan(medians).all() else -1
        marked |= top >= 0
        for i, row in enumerate(t.itertuples(index=False)):
            sec.rows.append([_num(row.value) + (" *" if i == top else ""), _num(row.median), _num(row.mean),
                             _num(row.best), str(row.trials), str(row.configs)] + ([str(row.pruned)] if pruned else []))
        out.append(sec)
    if marked:  # no value of 2 or more configs (each config its own values): nothing marked, no note
        out[-1].notes.append("* lowest median of the values that 2 or more configs had")
    return out


def _problem_section(s: Summary, limit: int) -> _Section:
    known = [x.value for x in Status if x not in (Status.OK, Status.PRUNED)]  # failed, diverged, interrupted
    others = [k for k in s.counts if k not in known and k not in (Status.OK.value, Status.PRUNED.value)]  # unknown
    what = ", ".join(f"{s.counts[k]} {k}" for k in [*known, *others] if k in s.counts)
    sec = _Section(f"Not ranked: {plural(len(s.problems), 'trial')} did not finish ok ({what})",
                   ["status", "trial", "config", "fidelity", "period", "params", "error"])
    shown = s.problems if limit <= 0 else s.problems.head(limit)
    for _, row in shown.iterrows():
        ptext = " ".join(f"{name}={_num(v)}" for name, v in params_of(row).items())
        err = row.get("error")
        # a pruned row has none; a row written before hpt redacted errors may hold a URL's user and password
        err_text = "" if plain(err) is None else redact(next(iter(str(err).splitlines()), ""))[:100]
        sec.rows.append([str(row["status"]), str(row["trial_id"]), str(row["config_id"]), str(row.get("fidelity", "")),
                         f"{row.get('period_start')}..{row.get('period_end')}", ptext, err_text])
    if len(s.problems) > len(shown):
        sec.notes.append(f"... and {len(s.problems) - len(shown)} more (--format json or csv lists every one)")
    return sec


def _header(s: Summary) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in s.counts.items())
    parts = [f"{s.uri or 'results'}: {plural(s.trials, 'trial')}" + (f" ({counts})" if counts else "")
             + (f" and {plural(s.baseline_rows, 'naive baseline row')}" if s.baseline_rows else "")]
    if s.where:
        parts.append(f"where {s.where}")
    parts.append(f"metric {s.metric} (lower is better)")
    return "; ".join(parts)


def _ranking_title(s: Summary, r: Ranking) -> str:
    what = f"{plural(r.trials, 'ok trial')}, {plural(len(r.table), 'config')}"
    if r.fidelity == DEFAULT_FIDELITY:
        return f"Configs ranked by mean {s.metric} over {plural(len(r.periods), 'period')} (full runs: {what})"
    f = fidelity_named(r.fidelity)
    return f"{f.rows.capitalize() if f.purpose else f.rows}, ranked apart: {what}"


def _sections(s: Summary, top: int) -> list[_Section]:
    secs = [_Section(_header(s), notes=list(s.notes))]
    ranked = [r for r in s.rankings.values() if not r.table.empty]
    for r in ranked:
        secs.append(_ranking_section(r, _ranking_title(s, r), top, s.vs_baseline(r.fidelity),
                                     s.screen if r.fidelity == DEFAULT_FIDELITY else None))
        if r is s.main and s.baseline_warning:
            secs.append(_Section(f"warning: {s.baseline_warning}", plain=True))
    if not ranked:
        why = s.main.why_no_best()
        secs.append(_Section(f"{why[0].upper()}{why[1:]}" if why else "No ok trials to rank"))
    if s.main.best is not None:
        secs.append(_verdict_section(s))
    for r in s.rankings.values():
        if len(r.pruned):
            secs.append(_pruned_section(r, top))
    trends = _trend_sections(s)
    if trends:
        f = fidelity_named(s.main_fidelity)
        which = f.purpose or f.name
        n_pruned = max((int(t["pruned"].sum()) for t in s.trends.values() if "pruned" in t), default=0)  # its rows
        left_out = (f"; {plural(n_pruned, 'pruned trial')} left out, counted per value under pruned"
                    if n_pruned else "")
        secs.append(_Section(f"Parameter trends ({which} rows; {s.metric} per value over ok trials{left_out})"))
        secs += trends
    if len(s.problems):
        secs.append(_problem_section(s, _MAX_PROBLEMS_SHOWN if top > 0 else 0))
    return secs


def _text_table(sec: _Section, indent: str = "  ") -> list[str]:
    cells = [sec.headers, *sec.rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(sec.headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if i in sec.right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines


def _render_text(secs: list[_Section]) -> str:
    out: list[str] = []
    for i, sec in enumerate(secs):
        if i:
            out.append("")
        if sec.plain:  # one line, whatever its length: a log is grepped for it
            out.append(sec.title)
            continue
        out.append(sec.title)
        if sec.paragraph:
            out += textwrap.wrap(sec.paragraph, width=110, initial_indent="  ", subsequent_indent="  ")
        if sec.headers:
            out += _text_table(sec)
        out += [f"  {n}" for n in sec.notes]
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("*", "\\*")


def _render_markdown(secs: list[_Section], minor: Collection[str] = ()) -> str:
    """Sections as Markdown: the first a level-2 heading, the others level 3 (those whose title starts with
    a name in `minor` and a colon, level 4)."""
    out: list[str] = []
    for i, sec in enumerate(secs):
        if sec.plain:
            out += [_md_cell(sec.title), ""]
            continue
        level = "##" if i == 0 else ("####" if sec.headers and sec.title.split(":")[0] in minor else "###")
        out += [f"{level} {_md_cell(sec.title)}", ""]
        if sec.paragraph:
            out += [_md_cell(sec.paragraph), ""]
        if sec.headers:
            out.append("| " + " | ".join(_md_cell(h) for h in sec.headers) + " |")
            out.append("|" + "|".join("---:" if j in sec.right else "---" for j in range(len(sec.headers))) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in sec.rows]
            out.append("")
        notes = [n for n in sec.notes if n]
        if notes:
            out += [f"- {_md_cell(n)}" for n in notes] + [""]
    return "\n".join(out)


def _verdicts(v: Verdict | None) -> dict[str, str]:
    """Each config's verdict by id: best, tied with the best, worse than the best, ..."""
    if v is None or v.best is None:
        return {}
    out = {c: TOO_FEW if v.periods < v.needed else TIED for c in v.tied}
    out.update({c: UNTESTED for c in v.untested})
    out.update({c: WORSE for c in v.distinguishable})
    out.update({c: BETTER_RANKED for c in v.better_ranked})
    out.update({c.other: c.verdict for c in v.comparisons})
    out[v.best] = "best"
    return out


def _config_records(r: Ranking, top: int, verdict: Verdict | None = None,
                    versus: Mapping[str, VsBaseline] | None = None,
                    screen: ScreenPlaces | None = None) -> list[dict[str, Any]]:
    shown = r.table if top <= 0 else r.table.head(top)
    best = r.best
    verdicts = _verdicts(verdict)
    records = []
    for row in shown.to_dict(orient="records"):
        rec: dict[str, Any] = {"config_id": row["config_id"],
                               "best": best is not None and row["config_id"] == best.config_id}
        if verdict is not None:
            rec["verdict"] = verdicts.get(row["config_id"])
        for k in STATS:
            rec[k] = plain(row[k])
        if "architecture" in row:
            rec["architecture"] = row["architecture"]
        for p in r.params:
            rec[p if p not in rec else param_column(p)] = plain(row[p])
        if versus is not None:
            vs = versus.get(row["config_id"])
            rec["vs_baseline"] = None if vs is None else vs.to_json()
        if screen is not None:
            rec["screen_place"] = screen.places.get(row["config_id"])
        records.append(rec)
    return records


def _json(s: Summary, top: int) -> str:
    def ranking(r: Ranking) -> dict[str, Any]:
        verdict = s.verdict if r is s.main else None
        pruned = [{k: plain(v) for k, v in rec.items()} for rec in r.pruned.to_dict(orient="records")]
        return {"periods": r.periods, "parameters": r.params, "ok_trials": r.trials, "configs_total": len(r.table),
                "best": None if r.best is None else r.best.config_id,
                "configs": _config_records(r, top, verdict, s.vs_baseline(r.fidelity),
                                           s.screen if r.fidelity == DEFAULT_FIDELITY else None),
                "pruned": pruned}

    v = s.verdict

    problem_cols = [c for c in ("status", "trial_id", "config_id", "fidelity", "period_start", "period_end", "error")
                    if c in s.problems.columns]
    problems = []
    for row in s.problems.to_dict(orient="records"):
        rec = {c: plain(row[c]) for c in problem_cols}
        rec["params"] = params_of(row)
        problems.append(rec)
    doc = {
        "uri": s.uri, "metric": s.metric, "where": s.where, "trials": s.trials, "counts": s.counts, "notes": s.notes,
        "baseline_rows": s.baseline_rows, "baseline_warning": s.baseline_warning or None,
        "full": ranking(s.full), "screening": ranking(s.screening),
        "rankings": {f: ranking(r) for f, r in s.rankings.items()},
        "winner": {"best": v.best, "fidelity": s.main_fidelity, "answer": v.answer, "statement": v.statement(s.metric),
                   "test": v.test or None, "alpha": v.alpha, "configs_tested": v.configs, "periods": v.periods,
                   "periods_needed": v.needed, "friedman_p": v.friedman_p, "tied_with_best": list(v.tied),
                   "distinguishable": list(v.distinguishable), "ranks_above_best": list(v.better_ranked),
                   "not_tested": list(v.untested)},
        "comparisons": [{"best": c.best, "other": c.other, "shared_periods": c.shared, "wins": c.wins, "losses": c.losses,
                         "ties": c.ties, "mean_diff": plain(c.mean_diff), "p_value": c.p_value, "test": v.test or None,
                         "distinguishable": c.distinguishable, "verdict": c.verdict} for c in v.comparisons],
        "trends": {p: [{k: plain(v) for k, v in rec.items()} for rec in t.to_dict(orient="records")]
                   for p, t in s.trends.items()},
        "not_ranked": problems,
        "screen_vs_full": None if s.screen is None else {
            "screened": s.screen.screened, "configs": s.screen.both,
            "spearman": None if math.isnan(s.screen.spearman) else round(s.screen.spearman, 4)},
    }
    return json.dumps(doc, indent=1) + "\n"


def _csv(s: Summary, top: int) -> str:
    frames = []
    for r in s.rankings.values():
        if r.table.empty:
            continue
        t = (r.table if top <= 0 else r.table.head(top)).copy()
        t["ranks"] = [";".join("" if x is None else str(x) for x in ranks) for ranks in t["ranks"]]
        verdicts = _verdicts(s.verdict if r is s.main else None)
        t.insert(t.columns.get_loc("partial") + 1, "verdict", [verdicts.get(c, "") for c in t["config_id"]])
        vs = [s.vs_baseline(r.fidelity).get(c) for c in t["config_id"]]  # the table's "vs naive", as numbers
        at = t.columns.get_loc("verdict") + 1
        t.insert(at, "vs_naive_baseline", [v.baseline if v else "" for v in vs])
        t.insert(at + 1, "vs_naive_pct", [None if v is None or math.isinf(v.change) else round(v.change, 2) for v in vs])
        if r.fidelity == DEFAULT_FIDELITY and s.screen is not None:
            t.insert(at + 2, "screen_place", pd.array([s.screen.places.get(c) for c in t["config_id"]], dtype="Int64"))
        t.insert(0, "fidelity", r.fidelity)
        t.insert(1, "rank", range(1, len(t) + 1))
        frames.append(t)
    if not frames:
        return "fidelity,rank,config_id," + ",".join(STATS) + "\n"
    buf = io.StringIO()
    pd.concat(frames, ignore_index=True).to_csv(buf, index=False)
    return buf.getvalue()


def render(summary: Summary, fmt: str = "table", top: int = 10) -> str:
    """The summary as text: ``table`` (a terminal), ``markdown`` (a build summary), ``json`` or ``csv``.

    `top` limits the configs listed per ranking (0: all). JSON has every section; CSV is
    the rankings, one line per config, with a ``fidelity`` column.
    """
    if fmt == "table":
        return _render_text(_sections(summary, top))
    if fmt == "markdown":
        return _render_markdown(_sections(summary, top), summary.trends)
    if fmt == "json":
        return _json(summary, top)
    if fmt == "csv":
        return _csv(summary, top)
    raise InputError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _pareto_section(f: Front) -> _Section:
    fidelity = fidelity_named(f.fidelity)
    which = "full runs" if fidelity == FULL else f"{fidelity.purpose or fidelity.name} rows"
    title = (f"Pareto front of mean {f.metric} and {f.column} ({which}): {plural(len(f.table), 'config')} of "
             f"{f.considered} that no other config beats on both, by {f.column}")
    headers = ["config", *f.params, f.column, f"mean {f.metric}"]
    sec = _Section(title, headers, right={*range(1 + (f.params[:1] == ["architecture"]), len(headers))})
    for d in f.table.to_dict(orient="records"):
        sec.rows.append([str(d["config_id"]), *(_num(d[p]) for p in f.params), _num(d[f.column]), _num(d["mean"])])
    sec.notes.append(f"lower is better on both; a config is off the front when another config is no higher on "
                     f"mean {f.metric} and {f.column} and lower on one of them")
    if f.left_out:
        sec.notes.append(f"{plural(f.left_out, 'config')} left out: partial (not every period run) or without {f.column}")
    if f.table.empty:
        sec.notes.append(f"no complete config with a {f.column} value yet")
    return sec


def render_pareto(summary: Summary, front: Front, fmt: str = "table") -> str:
    """The configs on the quality/cost front (:func:`hpt.results.pareto_front`) in any of :data:`FORMATS`."""
    if fmt == "csv":
        buf = io.StringIO()
        front.table.to_csv(buf, index=False)
        return buf.getvalue()
    if fmt == "json":
        doc = {"uri": summary.uri, "metric": front.metric, "column": front.column, "fidelity": front.fidelity,
               "considered": front.considered, "left_out": front.left_out,
               "configs": [{k: plain(v) for k, v in rec.items()} for rec in front.table.to_dict(orient="records")]}
        return json.dumps(doc, indent=1) + "\n"
    secs = [_Section(_header(summary)), _pareto_section(front)]
    if fmt == "markdown":
        return _render_markdown(secs)
    if fmt != "table":
        raise InputError(f"--format: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    return _render_text(secs)
