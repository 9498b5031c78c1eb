"""The ``hpt`` command: each command parses its arguments, calls one library function, prints."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

import click

from hpt import __version__
from hpt.errors import HptError, SpecError

__all__ = ["main"]

EPILOG = "Exit codes: 0 done (some trials may have failed), 1 the run failed, 2 bad input, 130/143 interrupted."


class _Exit(click.ClickException):
    """One or more one-line errors on stderr and an exit code, no traceback."""

    def __init__(self, lines: list[str], exit_code: int) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: Any = None) -> None:
        for line in self.lines:
            click.echo(f"hpt: error: {line}", err=True)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SpecError as e:
            raise _Exit(e.lines(), e.exit_code) from None
        except HptError as e:
            raise _Exit(str(e).splitlines() or [type(e).__name__], e.exit_code) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:
            if os.environ.get("HPT_DEBUG"):
                raise
            raise _Exit([f"the run failed: {type(e).__name__}: {e} (set HPT_DEBUG=1 to see the traceback)"], 1) from None


@click.group(cls=_Group, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpt")
def main() -> None:
    """Tune hyperparameters of PyTorch time-series models from a JSON spec.

    \b
    Examples:
      hpt validate specs/lstm.json        check a spec and its data
      hpt plan specs/lstm.json            list the trials without running them
      hpt run specs/lstm.json             run them; results in hpt-results/<name>/
      hpt results hpt-results/lstm-demo   rank the configs
      hpt archs                           architectures and their hyperparameters
    """
    logging.basicConfig(format="hpt: %(message)s", level=logging.INFO, stream=sys.stderr)


@main.command(epilog=EPILOG)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--sink", help="Results location (a folder); overrides the spec's sink.")
@click.option("--workers", type=click.IntRange(min=1), help="CPU worker processes when there is no GPU [default: 1].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train: every visible CUDA GPU, else the CPU.")
@click.option("--force", is_flag=True, help="Rerun trials that already have an ok row.")
@click.option("--dry-run", is_flag=True, help="Print the plan (as `hpt plan`) and run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No line per trial; only the start and the summary.")
def run(spec_path: str, sink: str | None, workers: int | None, device: str, force: bool, dry_run: bool,
        quiet: bool) -> None:
    """Run the trials of SPEC, writing a row and a model per finished trial.

    Trials that already have an ok row at the results location are skipped, so an
    interrupted run resumes when the same command is run again.

    \b
    Examples:
      hpt run specs/lstm.json
      hpt run specs/cnn.json --sink /data/results/cnn --workers 2
      hpt run specs/lstm.json --dry-run
    """
    from hpt.spec import load_spec

    spec = load_spec(spec_path)
    if dry_run:
        _print_plan(spec, sink, limit=20)
        return
    from hpt.progress import Reporter
    from hpt.runner import RunOptions, run_spec

    summary = run_spec(spec, RunOptions(sink=sink, workers=workers, device=device, force=force),
                       Reporter(quiet=quiet))
    sys.exit(summary.exit_code)


@main.command(epilog=EPILOG)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--sink", help="Results location to check for trials already done.")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, help="Trials to list.")
def plan(spec_path: str, sink: str | None, limit: int) -> None:
    """Print the trials SPEC would run, how many, and which periods.

    \b
    Example:
      hpt plan specs/lstm.json --limit 5
    """
    from hpt.spec import load_spec

    _print_plan(load_spec(spec_path), sink, limit)


def _print_plan(spec: Any, sink: str | None, limit: int) -> None:
    from hpt.progress import format_params
    from hpt.runner import results_location
    from hpt.search import expand
    from hpt.sinks import open_sink
    from hpt.store import ResultStore

    trials = expand(spec)
    s = spec.search
    click.echo(f"{spec.name}: {len(trials)} trials = {len(trials.configs)} configs x {len(trials.periods)} periods "
               f"({s.strategy} search, seed {s.seed}; {spec.architecture}, objective {spec.objective})")
    click.echo("periods:")
    for p in trials.periods:
        click.echo(f"  {p.label}")
    for name, axis in spec.parameters.items():
        shown = json.dumps(axis.to_json()) if hasattr(axis, "to_json") else json.dumps(list(axis))
        click.echo(f"tuned: {name} {shown}")
    location = results_location(spec, sink)
    done: set[str] = set()
    try:
        store = ResultStore(open_sink(location))
        done = store.done()
    except HptError:
        pass
    width = len(str(len(trials)))
    for i, t in enumerate(trials[:limit], 1):
        mark = "  (done)" if t.trial_id in done else ""
        click.echo(f"  {i:>{width}}  {t.trial_id}  {t.period.label}  {format_params(t.tuned_params)}{mark}")
    if len(trials) > limit:
        click.echo(f"  ... and {len(trials) - limit} more (--limit N to list more)")
    click.echo(f"results: {location}" + (f" ({len(done)} trials already done)" if done else ""))


@main.command(epilog=EPILOG)
@click.argument("spec_paths", metavar="SPEC...", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(spec_paths: tuple[str, ...]) -> None:
    """Check specs and their data without training; exit 0 when all are valid, 2 otherwise.

    Every problem is printed on its own line with its JSON path.

    \b
    Example:
      hpt validate specs/*.json
    """
    from hpt.spec import load_spec

    lines: list[str] = []
    for path in spec_paths:
        try:
            spec = load_spec(path)
        except SpecError as e:
            lines += e.lines()
            continue
        click.echo(f"{path}: ok ({spec.architecture}, {len(spec.periods)} periods)")
    if lines:
        raise _Exit(lines, 2)


@main.command(epilog=EPILOG)
@click.argument("names", nargs=-1)
def archs(names: tuple[str, ...]) -> None:
    """List the architectures, their hyperparameters, defaults and auto ranges.

    NAMES narrows the list; a user builder "package.module:function" is shown too.

    \b
    Examples:
      hpt archs
      hpt archs lstm cnn
    """
    from hpt.architectures import BUILTIN, get_architecture
    from hpt.hparams import TRAINING

    chosen = [get_architecture(n) for n in names] if names else list(BUILTIN.values())
    for arch in chosen:
        click.echo(f"{arch.name}: {arch.description}")
        for p in arch.hparams:
            click.echo(f"  {p.name:<13} default {json.dumps(p.default):<8} {p.describe()}")
        ranges = ", ".join(f"{k} {lo:g}..{hi:g}{' (log)' if scale == 'log' else ''}"
                           for k, (lo, hi, scale) in arch.auto_ranges.items())
        click.echo(f"  auto ranges: {ranges}")
    if not names:
        click.echo("training (any of these may also be tuned under \"parameters\"):")
        for p in TRAINING.values():
            click.echo(f"  {p.name:<13} default {json.dumps(p.default):<8} {p.help}")


@main.command(epilog=EPILOG)
@click.argument("uri")
@click.option("--metric", help="Column to rank by, lower is better [default: the run's objective, else val_mse].")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True, help="Configs to list (0: all).")
@click.option("--where", "where", metavar="EXPR", help="Only rows where EXPR holds (pandas syntax; parameters by name).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]), default="table",
              show_default=True, help="table for a terminal, markdown for a build summary, csv or json for scripts.")
@click.option("--compare", type=click.IntRange(min=0), default=3, show_default=True,
              help="Runners-up to test the best config against.")
@click.option("--plot", "plot_dir", metavar="DIR", help="Also write PNG plots to DIR (needs pip install 'hpt[plot]').")
def results(uri: str, metric: str | None, top: int, where: str | None, fmt: str, compare: int,
            plot_dir: str | None) -> None:
    """Rank the configs at a results location (a folder) across their periods.

    Per config: mean, median, worst and spread of the metric over its periods, its rank
    in each period and the periods it won; the best config tested against the runners-up
    (paired over shared periods); the metric per value of each tuned parameter; quick
    screening rows apart; failed, diverged and interrupted trials listed.

    \b
    Examples:
      hpt results hpt-results/lstm-demo
      hpt results hpt-results/lstm-demo --metric val_mae --top 5 --format json
      hpt results hpt-results/lstm-demo --where "lr <= 0.003 and hidden_size == 32"
      hpt results hpt-results/lstm-demo --format markdown --plot plots/
    """
    from hpt.results import default_metric, load_results, render, summarise

    if plot_dir:
        from hpt.plots import require_matplotlib

        require_matplotlib()
    frame = load_results(uri)
    summary = summarise(frame, metric or default_metric(uri), where=where, compare=compare, uri=uri)
    click.echo(render(summary, fmt, top), nl=False)
    if plot_dir:
        from hpt.plots import write_plots

        paths = write_plots(summary, frame, plot_dir, top=min(top or 5, 5))
        click.echo("plots: " + ", ".join(paths), err=fmt != "table")


@main.command(epilog=EPILOG)
@click.argument("uri")
@click.option("--metric", help="Column to rank by, lower is better [default: the run's objective, else val_mse].")
@click.option("--where", "where", metavar="EXPR", help="Only rows where EXPR holds (pandas syntax; parameters by name).")
def best(uri: str, metric: str | None, where: str | None) -> None:
    """Print the best config's parameters as JSON for the next spec's "parameters".

    The best config is the one with the lowest mean metric among those that ran every
    period. What it scored goes to stderr, so stdout is only the JSON.

    \b
    Examples:
      hpt best hpt-results/lstm-demo
      hpt best hpt-results/lstm-demo --metric val_mae > best.json
    """
    from hpt.results import best_params, default_metric, load_results, summarise

    summary = summarise(load_results(uri), metric or default_metric(uri), where=where, compare=0, uri=uri)
    params = best_params(summary)
    r = summary.main
    top = r.best
    assert top is not None  # best_params raised otherwise
    click.echo(f"best config {top['config_id']}: mean {summary.metric}={top['mean']:.4g} over {top['periods_run']} "
               f"period(s), won {top['periods_won']}" + ("; from screening rows" if r is summary.screening else ""), err=True)
    click.echo(json.dumps(params))


if __name__ == "__main__":
    main()
