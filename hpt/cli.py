"""The ``hpt`` command: each command parses its arguments, calls one library function, prints.

Longer than hpt's ~450 lines on purpose: most of it is the commands' --help texts and option
declarations, which read best beside the few lines that call the library; what a command does
beyond parsing and printing lives in the library (hpt.runner, hpt.results, hpt.final, ...).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Mapping
from datetime import date
from typing import Any

import click

from hpt import __version__
from hpt.errors import (
    SIGNAL_EXIT,
    HptError,
    InputError,
    SpecError,
    check_folder,
    no_blas_threads,
    putting_signals_off,
    redact,
)
from hpt.fidelity import QUICK

__all__ = ["main"]

EPILOG = "Exit codes: 0 done (some trials may have failed), 1 the run failed, 2 bad input, 130/143 interrupted."
CHECK_EPILOG = "Exit codes: 0 fine, 2 bad input (every problem is listed, one line each)."


class _Int(click.IntRange):
    """A whole number option: click's IntRange, named as a user writes one (``'two' is not a valid integer``; click's
    own name, "integer range", reads as if a range were asked for)."""

    name = "integer"


class _Number(click.FloatRange):
    """A number option (click's FloatRange, named "number" for its errors, as :class:`_Int`)."""

    name = "number"


class _Interrupted(BaseException):
    """SIGTERM outside the trial loop (which handles signals itself), raised like KeyboardInterrupt."""


def _on_signal(signum: int, frame: Any) -> None:
    """Ctrl-C or SIGTERM outside the trial loop: raised, except while a user's module imports.

    An exception raised while a C extension imports (torch, numpy: a spec's builder module
    imports them at its top) breaks that import: an ImportError, or an abort from inside the
    extension. So there the signal is sent again 50 ms later, until the import is over
    (:func:`hpt.errors.signals_put_off`; not around hpt's own imports, where a signal sent
    again could meet a moment of ignored signals, e.g. a worker's start, and be lost).
    """
    if putting_signals_off():
        _send_again(signum)
        return
    _taken.append(signum)  # an import of a C extension may turn the interrupt into its own error: invoke says it
    raise _interrupt(signum)


_taken: list[int] = []
"""The signals :func:`_on_signal` raised in this command."""


def _interrupt(signum: int) -> BaseException:
    return _Interrupted() if signum == signal.SIGTERM else KeyboardInterrupt()


def _send_again(signum: int) -> None:
    """The signal sent to this process again 50 ms from now."""
    again = threading.Timer(0.05, os.kill, (os.getpid(), signum))
    again.daemon = True
    again.start()


def _unraisable(hook: Any, info: Any) -> None:
    """An interrupt :func:`_on_signal` raised where Python cannot raise (a weakref callback of an import's module
    lock, a ``__del__``) would be printed as "Exception ignored ... Traceback" and lost: send the signal again
    instead. Anything else goes to the `hook` there was (Python's, or a test runner's)."""
    if isinstance(info.exc_value, (KeyboardInterrupt, _Interrupted)):
        _send_again(signal.SIGTERM if isinstance(info.exc_value, _Interrupted) else signal.SIGINT)
        return
    hook(info)


def _stopping() -> None:
    """hpt is ending because of a signal: further ones (Ctrl-C pressed again, Jenkins' follow-up
    SIGTERM) are ignored while it winds down, so they neither print a traceback from whatever
    Python was doing nor replace the exit code with death by signal. SIGKILL still ends it."""
    for signum in SIGNAL_EXIT:
        signal.signal(signum, signal.SIG_IGN)
    # CPython 3.11 notes a KeyboardInterrupt that left code run by exec() (dataclasses build
    # their methods so, on import) and, at exit, kills the process with SIGINT even though
    # the interrupt was handled: the exit code would be "killed by signal", not 130. Running
    # exec() again clears that note.
    exec("")


def _restore(handlers: dict[signal.Signals, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


class _Exit(click.ClickException):
    """One or more one-line errors on stderr and an exit code, no traceback."""

    def __init__(self, lines: list[str], exit_code: int) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance

    def show(self, file: Any = None) -> None:
        for line in self.lines:
            click.echo(redact(f"hpt: error: {line}"), err=True)


class _Group(click.Group):
    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        """Every error as `hpt: error: ...` lines; Ctrl-C and SIGTERM exit 130 and 143 at any moment."""
        no_blas_threads()  # before numpy is imported
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        _taken.clear()  # this command's signals only (tests run several in one process)
        previous = {signum: signal.signal(signum, _on_signal) for signum in SIGNAL_EXIT}
        hook = sys.unraisablehook
        sys.unraisablehook = functools.partial(_unraisable, hook)
        try:
            try:
                try:
                    code = super().main(args, prog_name or "hpt", complete_var, standalone_mode=False, **extra)
                except click.UsageError as e:
                    hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
                    click.echo(redact(f"hpt: error: {e.format_message()}{hint}"), err=True)
                    code = e.exit_code
                except click.ClickException as e:
                    e.show()
                    code = e.exit_code
            except (click.Abort, KeyboardInterrupt, _Interrupted) as e:
                signum = signal.SIGTERM if isinstance(e, _Interrupted) else signal.SIGINT
                code = SIGNAL_EXIT[signum]
                _stopping()
                click.echo(f"hpt: interrupted ({signal.Signals(signum).name}); finished trials are kept", err=True)
            except SystemExit as e:  # a run that a signal stopped ends with 130 or 143 (sys.exit in the command)
                if e.code in SIGNAL_EXIT.values():
                    _stopping()
                else:
                    _restore(previous)
                raise
            else:
                _restore(previous)
            sys.exit(code if isinstance(code, int) else 0)
        finally:
            sys.unraisablehook = hook

    def invoke(self, ctx: click.Context) -> Any:
        try:
            from hpt.sinks import check_env

            check_env()  # a bad $HPT_CLAIM_LEASE and the like: exit 2 before anything runs
            return super().invoke(ctx)
        except SpecError as e:
            raise _Exit(e.lines(), e.exit_code) from None
        except HptError as e:
            raise _Exit(str(e).splitlines() or [type(e).__name__], e.exit_code) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt, SystemExit,
                BrokenPipeError):  # a reader that went away (`hpt results ... | head`): click stops quietly
            raise
        except Exception as e:
            if _taken:  # a Ctrl-C or SIGTERM broke what was running (numpy's import says "initialization failed")
                raise _interrupt(_taken[-1]) from None
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
      hpt run specs/lstm.json --quick     screen on one month of data, 20 epochs
      hpt auto --arch cnn                 tune the learning rate with built-in ranges
      hpt results hpt-results/lstm-demo   rank the configs
      hpt final hpt-results/lstm-demo --holdout 1M   retrain the best, test it on the last month
      hpt predict MODEL --data new.csv    forecast with a saved model
      hpt sync gs://bucket/hpt/lstm       deliver results an outage left behind
      hpt archs                           architectures and their hyperparameters
    """
    _log_to_stderr()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stderr as it is when a record comes (click's test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _Redacting(logging.Formatter):
    """Log lines without credentials (a URL's user and password, tokens: see :func:`hpt.errors.redact`); a
    warning's line says so (`hpt: warning: ...`), so that a search of a build log for "warning" finds it."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if record.levelno >= logging.WARNING and not record.getMessage().startswith("warning"):
            line = line.replace("hpt: ", "hpt: warning: ", 1)
        return redact(line)


def _log_to_stderr() -> None:
    """hpt's own notes as `hpt: ...` lines; other libraries' log records are not hpt's to print
    (torch logs "FakeTensor cache stats" at exit when its logging was not set up)."""
    log = logging.getLogger("hpt")
    log.setLevel(logging.INFO)
    if not any(isinstance(h, _Stderr) for h in log.handlers):
        handler = _Stderr()
        handler.setFormatter(_Redacting("hpt: %(message)s"))
        log.addHandler(handler)


def _today(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise click.BadParameter(f"expected a date such as 2026-11-01, got {value!r} ({e})") from None


_today_option = click.option(
    "--today", callback=_today, metavar="YYYY-MM-DD",
    help="Pretend it is this date: picks automatic periods and the --quick month [default: today].")
_quick_option = click.option("--quick", is_flag=True,
                             help=f"Screen: one period of the last whole month of data, at most {QUICK.max_epochs} epochs "
                                  "(with search.promote: its first stage alone).")


def _threads_option(whose: str, default_text: str, more: str = "", **kw: Any) -> Any:
    """--threads, alike wherever hpt trains or predicts."""
    return click.option("--threads", type=_Int(min=1), metavar="N", **kw,
                        help=f"Torch CPU threads of {whose} [default: {default_text}]; more help large models on an otherwise "
                             f"idle machine, and collapse small ones when another job shares the cores (hpt sets "
                             f"them itself: OMP_NUM_THREADS is not read){'; ' + more if more else ''}.")


def _run_options(f: Any) -> Any:
    """Options shared by every command that trains."""
    for option in reversed([
        click.option("--sink", help="Results location: a folder (relative to the current one), gs://bucket/prefix "
                                    "or s3://bucket/prefix; overrides the spec's sink (relative to the spec's folder) "
                                    "[default: hpt-results/<name> in the current folder]."),
        click.option("--workers", type=_Int(min=1),
                     help="CPU worker processes when there is no GPU [default: the usable CPUs (affinity, container "
                          "quota) / --threads]; on Ray: at most N trials at a time."),
        _threads_option("each worker (trial)", "1 on the CPU, 2 beside a GPU; spec: resources.threads",
                        "on Ray a CPU trial asks for N CPUs"),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
                     help="Where to train: every visible CUDA GPU, else the CPU."),
        click.option("--force", is_flag=True, help="Rerun trials that already have an ok row (a new ok row replaces it)."),
        click.option("-q", "--quiet", is_flag=True, help="No line per trial; only the start and the summary."),
        click.option("--gpus", callback=_gpu_list, metavar="0,2",
                     help="Use only these GPUs (of those CUDA_VISIBLE_DEVICES shows) [default: all; spec: resources.gpus]."),
        click.option("--trials-per-gpu", callback=_per_gpu, metavar="N|auto",
                     help="Trials side by side on each GPU; auto measures a first trial and fills the memory "
                          "[default: 1; spec: resources.trials_per_gpu]."),
        click.option("--grace", type=_Number(min=0), default=10.0, show_default=True, metavar="SECONDS",
                     help="On Ctrl-C/SIGTERM, how long running trials may take to finish before they are stopped."),
        click.option("--executor", type=click.Choice(["local", "ray"]),
                     help="Where trials run: local worker processes, or a Ray cluster (needs Ray: hpt's ray extra) "
                          "[default: local; spec: resources.executor]."),
        click.option("--ray-address", metavar="HOST:PORT",
                     help="With --executor ray: the cluster (HOST:PORT, ray://HOST:PORT or auto) "
                          "[default: $RAY_ADDRESS, else a local Ray instance for this run]."),
        click.option("--mlflow", metavar="URI",
                     help="Also log each trial to this MLflow tracking server or store, from a background thread "
                          "(needs pip install 'hpt[mlflow]') [spec: tracking.mlflow]."),
        click.option("--tensorboard", metavar="DIR",
                     help="Also write each trial to DIR as a TensorBoard run, its epochs as they arrive "
                          "(needs pip install 'hpt[tensorboard]') [spec: tracking.tensorboard]."),
    ]):
        f = option(f)
    return f


def _gpu_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    gpus = tuple(g.strip() for g in value.split(",") if g.strip())
    if not gpus or not all(g.isdigit() for g in gpus):
        raise click.BadParameter(f"expected GPU indices such as 0,2, got {value!r}")
    if len(set(gpus)) < len(gpus):  # as the spec's resources.gpus: --trials-per-gpu packs one GPU
        raise click.BadParameter(f"expected distinct GPU indices, got {value!r} (--trials-per-gpu N runs N trials on "
                                 "each)")
    return gpus


def _per_gpu(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"expected a number >= 1 or auto, got {value!r}")
    return int(value)


def _options_and_reporter(sink: str | None, workers: int | None, threads: int | None, device: str, force: bool,
                          quiet: bool, gpus: tuple[str, ...] | None, trials_per_gpu: int | str | None, grace: float,
                          executor: str | None, ray_address: str | None, mlflow: str | None = None,
                          tensorboard: str | None = None) -> Any:
    from hpt.progress import Reporter
    from hpt.runner import RunOptions

    options = RunOptions(sink=sink, workers=workers, threads=threads, device=device, force=force, gpus=gpus,
                         trials_per_gpu=trials_per_gpu, grace=grace, executor=executor, ray_address=ray_address,
                         mlflow=mlflow, tensorboard=tensorboard)
    return options, Reporter(quiet=quiet)


@main.command(epilog=EPILOG)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@_run_options
@_quick_option
@_today_option
@click.option("--dry-run", is_flag=True, help="Print the plan (as `hpt plan`) and run nothing.")
def run(spec_path: str, quick: bool, today: date | None, dry_run: bool, **run_options: Any) -> None:
    """Run the trials of SPEC, writing a row and a model per finished trial.

    Trials that already have an ok row at the results location are skipped, so an
    interrupted run resumes when the same command is run again. Runs may share a location:
    a trial that another live run is training is left to it (a claim with a lease, renewed
    while that run lives: $HPT_CLAIM_LEASE seconds, default 120), and an ok row is never
    replaced by another run's unfinished one.

    \b
    Examples:
      hpt run specs/lstm.json
      hpt run specs/cnn.json --sink /data/results/cnn --workers 2
      hpt run specs/big-lstm.json --workers 2 --threads 4   2 trials at a time, 4 threads each
      hpt run specs/lstm.json --quick          screen on one month, 20 epochs
      hpt run specs/lstm.json --dry-run
      hpt run specs/lstm.json --executor ray --ray-address head-node:6379
    """
    from hpt.runner import run_spec
    from hpt.spec import load_spec

    spec = load_spec(spec_path, today=today, quick=quick)
    if dry_run:
        _print_plan(spec, run_options["sink"], limit=20,
                    more=f"hpt plan {spec_path}{' --quick' if quick else ''} --limit N lists more")
        return
    summary = run_spec(spec, *_options_and_reporter(**run_options))
    sys.exit(summary.exit_code)


@main.command(epilog=CHECK_EPILOG)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--sink", help="Results location (folder, gs:// or s3://) to check for trials already done.")
@click.option("--limit", type=_Int(min=0), default=20, show_default=True, help="Trials to list.")
@_quick_option
@_today_option
def plan(spec_path: str, sink: str | None, limit: int, quick: bool, today: date | None) -> None:
    """Print the trials SPEC would run, how many, and which periods.

    \b
    Examples:
      hpt plan specs/lstm.json --limit 5
      hpt plan specs/lstm.json --quick --today 2014-06-01   the screen of May 2014
    """
    from hpt.spec import load_spec

    _print_plan(load_spec(spec_path, today=today, quick=quick), sink, limit, more="--limit N lists more")


@main.command(epilog=EPILOG)
@click.option("--arch", required=True, help="Architecture to tune (see hpt archs), or package.module:function.")
@click.option("--spec", "base_spec", type=click.Path(dir_okay=False),
              help="Base spec: its data, periods, training values and one-value parameters are kept.")
@click.option("--data", type=click.Path(dir_okay=False), help="CSV or Parquet file [default: the bundled demo data].")
@click.option("--target", help="With --data: the column to forecast.")
@click.option("--time-column", help="With --data: the column of the times.")
@click.option("--trials", type=_Int(min=2), default=12, show_default=True, help="Configs per round.")
@click.option("--rounds", type=_Int(min=1), default=3, show_default=True,
              help="At most this many rounds; a round follows when the best lr sits at an edge of its range.")
@click.option("--lr-range", type=(float, float), metavar="LOW HIGH",
              help="The first round's lr range instead of the architecture's built-in one.")
@click.option("--seed", type=_Int(min=0), default=0, show_default=True,
              help="Seed of the search: the lr_decay, lr_patience and patience values drawn (round N uses SEED+N-1).")
@click.option("--early-stopping", type=click.Choice(["asha", "hyperband", "median"]),
              help="Stop trials that are behind the other trials of their period (search.early_stopping).")
@_run_options
@_quick_option
@_today_option
@click.option("--dry-run", is_flag=True, help="Print the first round's plan and run nothing.")
def auto(arch: str, base_spec: str | None, data: str | None, target: str | None, time_column: str | None,
         trials: int, rounds: int, lr_range: tuple[float, float] | None, seed: int, early_stopping: str | None,
         quick: bool, today: date | None, dry_run: bool, **run_options: Any) -> None:
    """Tune the learning-rate family (lr, lr_decay, lr_patience, patience) with built-in ranges.

    Every other hyperparameter stays at the architecture's default (or the base spec's
    value); with a cosine lr_schedule (base spec's training or a one-value parameter),
    lr_decay and lr_patience are not drawn, as cosine does not use them. When a round's
    best lr sits in the outer tenth of its range, the next round moves the range that way.
    Periods: the base spec's, else 3 periods chosen from the current month (see --today), 2
    months long, or longer when the data's step needs it for 100 training windows each (daily
    data at lookback 48: 9), before the data's last month, which is held out for `hpt final`.
    `hpt archs` shows the ranges.

    \b
    Examples:
      hpt auto --arch cnn
      hpt auto --arch lstm --quick --trials 20
      hpt auto --arch cnn --early-stopping asha
      hpt auto --arch gru --data load.csv --target kw --time-column ts
      hpt auto --arch lstm --spec specs/lstm.json --sink /data/results/lstm-auto
    """
    from hpt.auto import AutoRequest, auto_spec, run_auto

    req = AutoRequest(arch=arch, base_spec=base_spec, data=data, target=target, time_column=time_column,
                      trials=trials, rounds=rounds, seed=seed, quick=quick, today=today, lr_range=lr_range,
                      early_stopping=early_stopping)
    if dry_run:
        from hpt.search import expand

        spec = auto_spec(req, lr_range)
        _print_plan(spec, run_options["sink"], limit=20, trials=expand(spec, tags={"round": 1}))
        click.echo(f"(round 1 of at most {rounds})")
        return
    summary = run_auto(req, *_options_and_reporter(**run_options))
    sys.exit(summary.exit_code)


@main.command("screen-check", epilog=EPILOG)
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--configs", type=_Int(min=2), default=12, show_default=True, help="Configs to run both ways.")
@click.option("--top", "top_k", type=_Int(min=1), default=3, show_default=True, help="k of the top-k overlap.")
@_run_options
@_today_option
def screen_check(spec_path: str, configs: int, top_k: int, today: date | None, **run_options: Any) -> None:
    """Check whether --quick screening ranks configs as the full run does, on your data.

    Runs the first CONFIGS configs of SPEC both quick and full (trials already done are
    reused) and prints the Spearman rank correlation of the two rankings, the top-k
    overlap and the cost ratio.

    \b
    Example:
      hpt screen-check specs/lstm.json --configs 12
    """
    from hpt.screening import screen_check as check
    from hpt.spec import load_spec

    spec = load_spec(spec_path, today=today)
    options, reporter = _options_and_reporter(**run_options)
    result = check(spec, configs, options, reporter, top_k)
    for line in result.lines(spec.objective):
        click.echo(line)
    sys.exit(result.exit_code)


def _where(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("empty expression; leave --where out to keep every row")
    return value


_where_option = click.option("--where", "where", metavar="EXPR", callback=_where,
                             help="Only rows where EXPR holds (pandas syntax; parameters by name).")


def _print_plan(spec: Any, sink: str | None, limit: int, trials: Any = None, more: str = "") -> None:
    """What `hpt plan` (and --dry-run) prints: the plan's shape, the trials with those already done marked, where
    results go. `more`: how to list the trials past `limit`, when the command has a way."""
    from hpt.fidelity import FULL
    from hpt.progress import plural
    from hpt.runner import results_location
    from hpt.scheduling.adaptive import stops_early
    from hpt.scheduling.plan import COUNT_LIMIT
    from hpt.search import expand
    from hpt.sinks import check_before_run
    from hpt.trial import waits

    location = results_location(spec, sink)
    check_before_run(location)  # a location that cannot be is bad input, said first, as the run says it
    adaptive = spec.search.strategy == "tpe" and trials is None  # configs chosen as results come in: none to list
    trials = None if adaptive else trials if trials is not None else expand(spec)
    screen = _print_shape(spec, trials)
    rows, unchecked = _rows_at(location)
    # a trial stopped at asha's first rung to wait for others of its period is not decided yet: the run goes on with it
    status = {tid: "waits" if waits(row) else str(row.get("status")) for tid, row in rows.items()}
    fidelity = {tid: str(row.get("fidelity") or FULL.name) for tid, row in rows.items()}
    if not stops_early(spec):  # an earlier run's pruned trials train again (rows_to_resume)
        status = {tid: "again" if st in ("pruned", "waits") else st for tid, st in status.items()}
    stopped = {str(row.get("config_id")) for tid, row in rows.items() if status[tid] == "pruned"}
    # an interrupted finalist stage: its configs (those with a finalist row) complete every period when the run goes on
    finalists = {str(row.get("config_id")) for row in rows.values() if row.get("finalist") == 1}
    # the trials of this plan (of its fidelity, when they are not listed ahead) that are done: not those of
    # another fidelity (--quick after a full run, or the other way round)
    mine = {t.trial_id for t in trials} if trials is not None and len(trials) <= COUNT_LIMIT else \
        {tid for tid, f in fidelity.items() if f == spec.fidelity.name}
    if screen is not None:  # promotion: its screen's trials are this run's too
        mine |= {t.trial_id for t in screen}
    done = {tid for tid, st in status.items() if st in ("ok", "pruned") and tid in mine}
    if trials is None:
        click.echo("trials: chosen as results come in, so none can be listed ahead")
    else:
        if screen is not None:  # the trials listed are the screen's: stage 2's are chosen by it
            trials = screen
            click.echo(f"stage 1 trials ({trials.fidelity.name}; stage 2's are chosen by the screen): trial id, period, "
                       "seed, tuned values")
        else:
            click.echo("trials: trial id, period, seed, tuned values")
        _print_trials(trials, status, stopped, limit, more, finalists)
    click.echo(f"results: {location}" + (f" ({plural(len(done), 'trial')} already done)" if done else "") + unchecked)


def _print_shape(spec: Any, trials: Any) -> Any:
    """The plan's size, periods, tuned parameters, adaptive outline and baselines (`trials` None: chosen as it
    goes); the screen's trials when the run promotes (search.promote), else None."""
    from hpt.baselines import RunBaselines
    from hpt.data import load_frame
    from hpt.fidelity import FULL, PERIODS
    from hpt.progress import plural
    from hpt.scheduling.adaptive import idle_warnings, outline
    from hpt.scheduling.pruning import max_epochs
    from hpt.search import expand

    s, f = spec.search, spec.fidelity
    n_configs = s.max_trials if trials is None else len(trials.configs)
    n_periods = len(spec.periods)
    shape = f"{plural(n_configs, 'config')} x {plural(n_periods, 'period')}"
    if trials is not None and trials.seeds > 1:
        shape += f" x {trials.seeds} seeds (training.repeats)"
    count = f"up to {plural(n_configs * n_periods, 'trial')}" if trials is None else plural(len(trials), "trial")
    promoting = s.promote is not None and f == FULL  # under --quick the run is the screen alone
    if promoting:
        from hpt.scheduling.promote import promote_text, promote_trials
        from hpt.spec import quick_spec

        quick = quick_spec(spec, "search.promote")
        first, second = promote_trials(spec, quick, n_configs)
        count, shape = f"up to {plural(first + second, 'trial')} in 2 stages", f"{first} screening, up to {second} full"
    click.echo(f"{spec.name}: {count} = {shape} "
               f"({s.strategy} search, seed {s.seed}; {spec.architecture}, objective {spec.objective})"
               + (f"; {f.name} {f.purpose}: at most {max_epochs(spec)} epochs" if f.max_epochs is not None else ""))
    rule = f" (auto: {json.dumps(spec.period_rule.to_json()['auto'])}, drawn for {spec.today:%Y-%m})" \
        if spec.period_rule and f.data == PERIODS else ""
    click.echo(f"periods{rule}:")
    for p in spec.periods:
        click.echo(f"  {p.label}")
    for name, axis in spec.parameters.items():
        one = not hasattr(axis, "to_json") and len(axis) == 1  # a one-value list: set, not tuned
        click.echo(f"{'fixed' if one else 'tuned'}: {name} {_axis_text(axis)}")
    if not promoting and (trials is None or s.early_stopping is not None or s.budget is not None or s.warm_start
                          or s.race):  # promotion's lines say how it stops early (inside the screen)
        for line in outline(spec, n_configs, n_periods):
            _echo_clauses(line)
    screen = None
    if promoting:
        for line in promote_text(spec, quick, n_configs):
            _echo_clauses(line)
        screen = expand(quick)
    for line in idle_warnings(spec, n_configs, racing=False):  # the race line says what racing can drop
        click.echo(line)  # a warning stays one line: a search of the log for "warning" finds all of it
    d = spec.data
    click.echo(RunBaselines(spec, load_frame(d.path, d.time_column, d.columns, d.options)).describe())
    return screen


def _echo_clauses(line: str, width: int = 120) -> None:
    """A plan line; one longer than `width` as its first clause, then each further clause ("; " outside brackets)
    on a line of its own, indented: a listing read in a terminal or a build log, not one 450-character line."""
    if len(line) <= width:
        click.echo(line)
        return
    clauses, depth, start = [], 0, 0
    for i, ch in enumerate(line):
        depth += (ch == "(") - (ch == ")")
        if ch == ";" and depth == 0 and line[i + 1:i + 2] == " ":
            clauses.append(line[start:i])
            start = i + 2
    clauses.append(line[start:])
    click.echo(clauses[0])
    for clause in clauses[1:]:
        click.echo(f"  {clause}")


def _rows_at(location: str) -> tuple[dict[str, Mapping[str, Any]], str]:
    """The trials' rows at the location (baselines left out), and a note when they could not be read."""
    from hpt.baselines import without_baselines
    from hpt.sinks import open_sink
    from hpt.store import ResultStore

    try:
        return without_baselines(ResultStore(open_sink(location)).rows()), ""
    except HptError as e:
        return {}, f" (could not check which trials are done: {str(e).splitlines()[0]})"


def _print_trials(trials: Any, status: dict[str, str], stopped: set[str], limit: int, more: str,
                  finalists: set[str] | frozenset[str] = frozenset()) -> None:
    """The first `limit` trials, one a line, those done or pruned at the location marked, and those of a config early
    stopping stopped in another period (not started, unless the config becomes a finalist); those of `finalists`
    (configs an interrupted finalist stage was completing) not done yet as what they are."""
    from hpt.progress import format_params

    width = len(str(len(trials)))
    for i, t in enumerate(trials[:limit], 1):
        st = status.get(t.trial_id)
        mark = {"ok": "  (done)", "pruned": "  (pruned)", "again": "  (pruned earlier; trains again)",
                "waits": "  (waits at the first rung: decided when the run goes on)"}.get(st or "", "")
        if t.config_id in finalists and st in (None, "pruned", "interrupted"):
            mark = "  (a finalist's: trained to its last epoch when the run goes on)"
        elif not mark and t.config_id in stopped:
            mark = "  (its config was stopped in another period)"
        click.echo(f"  {i:>{width}}  {t.trial_id}  {t.period.label}  seed {t.seed:<10}  "
                   f"{format_params(t.tuned_params)}{mark}")
    if len(trials) > limit:
        click.echo(f"  ... and {len(trials) - limit} more" + (f" ({more})" if more else ""))


def _axis_text(axis: Any, head: int = 5, tail: int = 2) -> str:
    """A distribution as in the spec; a long list as its first and last values and its length."""
    if hasattr(axis, "to_json"):
        return json.dumps(axis.to_json())
    if len(axis) <= head + tail + 1:
        return json.dumps(list(axis))
    shown = [json.dumps(v) for v in (*axis[:head], *axis[-tail:])]
    return f"[{', '.join(shown[:head])}, ..., {', '.join(shown[head:])}] ({len(axis)} values)"


@main.command(epilog=CHECK_EPILOG)
@click.argument("spec_paths", metavar="SPEC...", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(spec_paths: tuple[str, ...]) -> None:
    """Check specs and their data without training; exit 0 when all are valid, 2 otherwise.

    Every problem is printed on its own line with its JSON path; a valid spec gets one ok
    line with its architecture and periods (over many series, data.series, how many).

    \b
    Example:
      hpt validate specs/*.json
    """
    from hpt.panel import series_count
    from hpt.progress import plural
    from hpt.sinks import check_before_run
    from hpt.spec import load_spec, quick_spec

    lines: list[str] = []
    for path in spec_paths:
        try:
            spec = load_spec(path)
            if spec.search.promote is not None:  # its screen's month must fit the windows too, as the run checks
                quick_spec(spec, "search.promote")
        except SpecError as e:
            lines += e.lines()
            continue
        try:
            if spec.sink is not None:  # a folder the run can make (the form was checked with the spec)
                check_before_run(spec.sink)
        except InputError as e:
            lines.append(f"{path}: sink: {e}")
            continue
        panel = "" if spec.data.options.series is None else f", {series_count(spec.data.read().frame):,} series"
        click.echo(f"{path}: ok ({spec.architecture}, {plural(len(spec.periods), 'period')}{panel})")
    if lines:
        raise _Exit(lines, 2)


@main.command()
@click.argument("names", nargs=-1)
def archs(names: tuple[str, ...]) -> None:
    """List the architectures, their hyperparameters, defaults, inputs and auto ranges.

    NAMES narrows the list; a user builder "package.module:function" is shown too.
    "inputs" says how a model uses the target and the data's features; "known ahead" whether
    it takes data.calendar and data.future_features (fed for the forecast steps too). Any
    architecture takes every training.scaler ("window": per-window scaling, "robust": medians
    and IQRs) and every training.loss.

    \b
    Examples:
      hpt archs
      hpt archs lstm cnn
    """
    from hpt.architectures import BUILTIN, get_architecture
    from hpt.hparams import TRAINING

    here = pathlib.Path.cwd()  # a builder module in the working folder, as hpt auto finds one
    chosen = [get_architecture(n, here, "in the working folder") for n in names] if names else list(BUILTIN.values())
    for arch in chosen:
        click.echo(f"{arch.name}: {arch.description}" if arch.description else arch.name)
        _echo_columns([(p.name, "required" if p.required else f"default {json.dumps(p.default)}", p.describe())
                       for p in arch.hparams])
        ranges = ", ".join(f"{k} {lo:g}..{hi:g}{' (log)' if scale == 'log' else ''}"
                           for k, (lo, hi, scale) in arch.auto_ranges.items())
        if arch.inputs:
            click.echo(f"  inputs: {arch.inputs}")
        click.echo(f"  auto ranges: {ranges}")
        click.echo("  known ahead: " + ("data.calendar and data.future_features, for the input window and the "
                                        "forecast steps" if arch.future else "none (a spec giving data.calendar or "
                                        "data.future_features is refused)"))
    if not names:
        click.echo("training (any of these may also be tuned under \"parameters\"):")
        _echo_columns([(p.name, f"default {json.dumps(p.default)}", p.help) for p in TRAINING.values()])


def _echo_columns(lines: list[tuple[str, str, str]]) -> None:
    """Indented lines of a name, its default and what it is, the first two columns as wide as their widest."""
    name = max((len(n) for n, _, _ in lines), default=0)
    default = max((len(d) for _, d, _ in lines), default=0)
    for n, d, text in lines:
        click.echo(f"  {n:<{name}}  {d:<{default}}  {text}")


@main.command(epilog="Exit codes: 0 printed, 1 a gs:// or s3:// location did not answer (or --mlflow could not log "
                     "every trial), 2 bad input or no results there.")
@click.argument("uri")
@click.option("--metric", help="Column to rank by, lower is better [default: the run's objective, else val_mse].")
@click.option("--top", type=_Int(min=0), default=10, show_default=True, help="Configs to list (0: all).")
@_where_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "markdown"]), default="table",
              show_default=True, help="table for a terminal, markdown for a build summary, csv or json for scripts.")
@click.option("--compare", type=_Int(min=0), default=3, show_default=True,
              help="Configs after the best to list in \"Is the winner real?\" (the tests always cover every config).")
@click.option("--plot", "plot_dir", metavar="DIR", help="Also write PNG plots to DIR (needs matplotlib: hpt's plot extra).")
@click.option("--pareto", metavar="COLUMN",
              help="Instead, list the configs on the front of the metric and COLUMN (n_params, infer_ms, ...).")
@click.option("--tensorboard", "tensorboard_dir", metavar="DIR",
              help="Also write the trials as TensorBoard runs to DIR, those not written yet "
                   "(needs pip install 'hpt[tensorboard]').")
@click.option("--mlflow", "mlflow_uri", metavar="URI",
              help="Also log the trials to the MLflow tracking server or store URI, those not logged yet; "
                   "exit 1 when some could not be (needs pip install 'hpt[mlflow]').")
def results(uri: str, metric: str | None, top: int, where: str | None, fmt: str, compare: int,
            plot_dir: str | None, pareto: str | None, tensorboard_dir: str | None, mlflow_uri: str | None) -> None:
    """Rank the configs at a results location (a folder, gs://bucket/prefix or s3://bucket/prefix) across periods.

    Per config: mean, median, worst and spread of the metric over its periods (and across
    seeds, with training.repeats), its rank in each period and the periods it won, and how
    it compares with the better naive baseline (naive-last: the last value; naive-seasonal:
    the value one season earlier) on the same periods and validation windows: "-38%
    seasonal 3/3" is a mean 38% below seasonal naive's, below it in 3 of 3 periods; a
    "warning:" line says when the best config does not beat it. Then: is the winner real:
    the best config tested against every other one (Friedman, then Nemenyi; Wilcoxon for
    two configs), which configs are "tied with the best"; the metric per value of each
    tuned parameter; each fidelity (quick screening, ...) ranked apart; trials that did not
    finish ok listed. Baselines are never ranked.

    --pareto n_params (or infer_ms: milliseconds to forecast 1,000 windows) lists instead
    the configs that no other config beats on both the metric's mean and that column,
    from the smallest (in every --format).

    \b
    Examples:
      hpt results hpt-results/lstm-demo
      hpt results hpt-results/lstm-demo --metric val_mae --top 5 --format json
      hpt results hpt-results/lstm-demo --where "lr <= 0.003 and hidden_size == 32"
      hpt results hpt-results/lstm-demo --format markdown --plot plots/
      hpt results hpt-results/lstm-demo --pareto n_params
      hpt results gs://my-bucket/hpt/lstm-electricity
    """
    from hpt.results import (
        default_metric,
        load_results,
        pareto_front,
        planned_periods,
        recorded_runs,
        render,
        render_pareto,
        run_specs,
        summarise,
    )

    if plot_dir:
        from hpt.plots import require_matplotlib

        require_matplotlib()
        check_folder("--plot", plot_dir)
    if tensorboard_dir:
        check_folder("--tensorboard", tensorboard_dir)
    if tensorboard_dir or mlflow_uri:
        from hpt.tracking.export import check_exports

        check_exports(tensorboard_dir, mlflow_uri)
    _say_journal_waits(uri)  # before the rows: a location with none yet may have them waiting here
    frame = load_results(uri)
    runs = recorded_runs(uri)
    summary = summarise(frame, metric or default_metric(uri, runs), where=where, compare=compare, uri=uri,
                        planned=planned_periods(uri, frame, runs), specs=run_specs(runs))
    if pareto:
        click.echo(render_pareto(summary, pareto_front(frame, summary.main, pareto), fmt), nl=False)
    else:
        click.echo(render(summary, fmt, top), nl=False)
        if fmt == "csv" and summary.baseline_warning:  # the table and markdown print it, JSON holds it
            click.echo(f"warning: {summary.baseline_warning}", err=True)
    if plot_dir:
        from hpt.plots import write_plots

        paths = write_plots(summary, frame, plot_dir, top=min(top or 5, 5))
        click.echo("plots: " + (", ".join(paths) or "none (no ok trials to plot)"), err=fmt != "table")
    if tensorboard_dir or mlflow_uri:
        from hpt.tracking.export import export

        for line in export(uri, tensorboard_dir, mlflow_uri):
            click.echo(line, err=fmt != "table")


def _say_journal_waits(uri: str) -> None:
    """A note when finished trials of this (gs:// or s3://) location wait in this machine's local journal: a run
    that could not deliver them left them there, and the location does not have them yet."""
    from hpt.journal import Journal
    from hpt.progress import plural
    from hpt.sinks import open_sink

    sink = open_sink(uri)
    waiting = Journal(sink.uri).count_waiting() if getattr(sink, "remote", False) else 0
    if waiting:
        click.echo(f"note: {plural(waiting, 'finished trial')} of {sink.uri} {'waits' if waiting == 1 else 'wait'} in "
                   f"this machine's local journal (a run could not deliver {'it' if waiting == 1 else 'them'} all): "
                   f"hpt sync {sink.uri} delivers {'it' if waiting == 1 else 'them'}", err=True)


@main.command(epilog="Exit codes: 0 printed, 1 no config has run every period yet, 2 bad input.")
@click.argument("uri")
@click.option("--metric", help="Column to rank by, lower is better [default: the run's objective, else val_mse].")
@_where_option
def best(uri: str, metric: str | None, where: str | None) -> None:
    """Print the best config's parameters as JSON for the next spec's "parameters".

    The best config is the one with the lowest mean metric among those that ran every
    period: every period the runs' specs planned (their records in runs/ say which), so a
    config an interrupted run left with some of its periods is never named. What it scored
    goes to stderr (with a warning line when it does not beat the better naive baseline), so
    stdout is only the JSON.

    \b
    Examples:
      hpt best hpt-results/lstm-demo
      hpt best hpt-results/lstm-demo --metric val_mae > best.json
    """
    from hpt.fidelity import FULL, fidelity_named
    from hpt.progress import plural
    from hpt.results import (
        best_params,
        default_metric,
        load_results,
        planned_periods,
        recorded_runs,
        run_specs,
        summarise,
    )

    _say_journal_waits(uri)
    frame = load_results(uri)
    runs = recorded_runs(uri)
    summary = summarise(frame, metric or default_metric(uri, runs), where=where, compare=0, uri=uri,
                        planned=planned_periods(uri, frame, runs), specs=run_specs(runs))
    params = best_params(summary)
    if summary.alike:  # the parameters printed may be those of several configs, of specs that differ elsewhere
        click.echo(f"note: {summary.alike}", err=True)
    top = summary.best
    assert top is not None  # best_params raised otherwise
    fidelity = fidelity_named(top.fidelity)
    source = "" if fidelity == FULL else f"; from {fidelity.purpose or fidelity.name} rows"
    tied = summary.verdict.tied
    ties = f"; tied with {plural(len(tied), 'other config')} (hpt results says which)" if tied else ""
    main_ranking = summary.main
    others = int(main_ranking.table["partial"].astype(bool).sum()) + len(main_ranking.pruned)
    besides = f" ({plural(others, 'other')} partial or stopped early)" if others else ""
    alone = "" if (~main_ranking.table["partial"].astype(bool)).sum() > 1 else \
        f"; the only config that ran every period{besides}"
    click.echo(f"best config {top.named}: mean {summary.metric}={top.mean:.4g} over "
               f"{plural(top.periods_run, 'period')}, best in {top.periods_won}"
               f"{' of them' if top.periods_run > 1 else ''}{source}{ties}{alone}", err=True)
    if summary.baseline_warning:  # as hpt results and the run's summary say it
        click.echo(f"warning: {summary.baseline_warning}", err=True)
    click.echo(json.dumps(params))


@main.command(epilog="Exit codes: 0 done (or another final is training the same models now), 1 training or the location "
                     "failed, 130/143 interrupted by Ctrl-C/SIGTERM, 2 bad input (no hold-out, "
                     "a tuning period overlaps it, unknown config, ...).")
@click.argument("location")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False),
              help="The spec the location was tuned with [default: the one recorded in its runs/].")
@click.option("--config", "config_id", metavar="ID", help="Train this config instead of the best one (an id or its prefix).")
@click.option("--months", type=_Int(min=1),
              help="Train on the last N months before the hold-out [default: the length of one tuning period].")
@click.option("--holdout", metavar="LENGTH",
              help="Hold out the end of the data: 1M, 6W, 30D, 72h [default: the spec's date_ranges.auto.holdout].")
@click.option("--holdout-start", metavar="DATE", help="Hold out the data from DATE to its end.")
@click.option("--from-model", metavar="URI",
              help="Fine-tune this earlier final model (its weights as the start) instead of training from scratch.")
@click.option("--compare", is_flag=True, help="With --from-model: also train from scratch and report both.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train: a visible CUDA GPU, else the CPU (on Ray: a node's GPU, else a CPU).")
@click.option("--gpus", callback=_gpu_list, metavar="0,2",
              help="Train only on these GPUs (of those CUDA_VISIBLE_DEVICES shows) [default: all; spec: resources.gpus].")
@_threads_option("each model's worker", "1 on the CPU, like each worker of a run; 2 beside a GPU; spec: "
                 "resources.threads")
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Where the models train: a local worker process, or a Ray cluster (needs Ray: hpt's ray extra) "
                   "[default: local; spec: resources.executor].")
@click.option("--ray-address", metavar="HOST:PORT",
              help="With --executor ray: the cluster (HOST:PORT, ray://HOST:PORT or auto) "
                   "[default: $RAY_ADDRESS, else a local Ray instance].")
@click.option("--grace", type=_Number(min=0), default=10.0, show_default=True, metavar="SECONDS",
              help="On Ctrl-C/SIGTERM, how long the training may take to finish before it is stopped "
                   "(an interrupted final is recorded in its report.json; nothing else is written).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Also write report.json to this local file (for CI artifacts).")
@click.option("--mlflow", metavar="URI",
              help="Also log the report and the model to this MLflow tracking server or store, as one run; a failure "
                   "is one line, the exit code stays (needs pip install 'hpt[mlflow]') [spec: tracking.mlflow].")
def final(location: str, spec_path: str | None, config_id: str | None, months: int | None, holdout: str | None,
          holdout_start: str | None, from_model: str | None, compare: bool, device: str, gpus: tuple[str, ...] | None,
          threads: int | None, executor: str | None, ray_address: str | None, grace: float,
          report_path: str | None, mlflow: str | None = None) -> None:
    """Retrain the best config on the newest data and test it on a hold-out tuning never saw.

    LOCATION is a results location (folder, gs:// or s3://). The config (the one `hpt best`
    names, or --config) is trained on the newest data before the hold-out for the median
    best_epoch of its tuning trials, then scored on the hold-out in the data's units and
    standardised, beside the persistence and seasonal-naive forecasts on the same windows.
    The hold-out is the spec's date_ranges.auto.holdout months, or --holdout/--holdout-start;
    a tuning period that overlaps it is refused. The verdict says how many hold-out windows it
    rests on, with a warning below 30. Writes final/<id>/model.pt and report.json at LOCATION
    and adds a row to final/index.csv.

    Over many series (data.series) one model is trained across all of them and scored on
    every series' hold-out windows: each series in its own units, standardised by its own
    train part, and by MASE; the report adds on how many series it beats seasonal naive
    and its worst series by MASE (report.json: "panel", and each model's "series").

    The models train as a run's trials do: in a worker process on this machine's GPU or CPU,
    or on a Ray cluster (--executor ray). A final interrupted by Ctrl-C or SIGTERM (exit 130,
    143) or whose training failed (exit 1) is recorded in its report.json, with no model. Two
    finals of one config at once train it once: the second says which final trains it.

    \b
    Examples:
      hpt final gs://my-bucket/hpt/lstm    (its spec keeps date_ranges.auto.holdout months back)
      hpt final hpt-results/lstm-demo --holdout 1M --months 2
      hpt final gs://my-bucket/hpt/lstm --config 3f2a9c1d0b7e --holdout-start 2014-12-01
      hpt final hpt-results/lstm-demo --holdout 1M --from-model hpt-results/lstm-demo/final/<id>/model.pt --compare
    """
    from hpt.final import FinalRequest, run_final
    from hpt.tracking.mlflow import final_target  # mlflow itself only when it logs

    tracked = final_target(mlflow, location, spec_path)  # where to log: said wrong before anything trains
    req = FinalRequest(location=location, spec_path=spec_path, config_id=config_id, months=months, holdout=holdout,
                       holdout_start=holdout_start, from_model=from_model, compare=compare, device=device,
                       threads=threads, gpus=gpus, executor=executor, ray_address=ray_address, grace=grace)
    report = run_final(req)
    if report_path:
        with open(report_path, "w", encoding="utf-8") as f:
            json.dump(report.document, f, indent=1, default=str)
    for line in report.lines():
        click.echo(line)
    if tracked is not None and report.files:
        from hpt.errors import redact
        from hpt.tracking.mlflow import log_final

        click.echo(redact(log_final(*tracked, report.document, report.files)))
    if report.exit_code:
        sys.exit(report.exit_code)


@main.command(epilog="Exit codes: 0 forecasts written, 1 a gs:// or s3:// location did not answer, 2 bad input (no "
                     "such model, columns missing from the file, data at another step than the model's, fewer rows "
                     "than the lookback, --out in a missing folder or the --data file itself, a model with "
                     "data.future_features and no rows of them for the forecast steps, a model trained on many series "
                     "and a file without its series column, --series naming a series not in the file, a static series feature "
                     "not constant within a series).")
@click.argument("model_uri", metavar="MODEL")
@click.option("--data", "data_path", required=True, metavar="PATH",
              help="CSV or Parquet file (local, gs:// or s3://) with the model's columns and time column, a row every step "
                   "as in the data the model was trained on.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False),
              help="Write the CSV here (in a folder that exists; not the --data file) [default: stdout].")
@click.option("--last", is_flag=True, help="Only the window ending at the file's last row: the next HORIZON steps.")
@click.option("--time-column", metavar="NAME", help="The time column [default: the one the model was trained with; "
                                                   "models saved before hpt recorded it: the file's only other column].")
@click.option("--time-format", metavar="PATTERN",
              help='How the file writes its times, e.g. "%d.%m.%Y" [default: as the model\'s training data '
                   "(data.time_format), else as the file\'s first row].")
@click.option("--time-unit", type=click.Choice(["s", "ms"]),
              help="The times are numbers: seconds or milliseconds since 1970 [default: as the model's training data "
                   "(data.time_unit)].")
@click.option("--series", "series", multiple=True, metavar="ID",
              help="A model trained on many series (data.series): forecast only this series (repeatable) "
                   "[default: every series in the file].")
@_threads_option("this one process", "1, like each worker of a run", default=1)
def predict(model_uri: str, data_path: str, out_path: str | None, last: bool, time_column: str | None,
            time_format: str | None, time_unit: str | None, series: tuple[str, ...], threads: int) -> None:
    """Forecast every window of a data file with a saved model; CSV of timestamp, horizon_step, prediction.

    MODEL is a trial's models/<trial_id>.pt or a final/<id>/model.pt (a path, gs:// or
    s3:// URI). Every `lookback` consecutive rows without a missing step form a window;
    timestamp is the time each forecast step is for, prediction is in the target's units.
    A quantile model (training.loss "quantile", or "mdn": the quantiles of its mixture) adds
    one column per quantile (p10, p50, p90), in increasing order; its prediction is the median.
    A model with data.calendar takes the forecast steps' calendar from their times; one with
    data.future_features takes their values from the file's rows at the forecast steps' times
    (rows after the last target may hold only those, the target empty), and a window without
    them is left out (with --last: exit 2).

    A model trained on many series (data.series) needs the file in long format with its
    series column, and forecasts each series on its own: the CSV's first column, series,
    is the series id (series, timestamp, horizon_step, prediction). A series the model was trained
    on is scaled by its train part's statistics, stored in the model; one it never saw is
    forecast by the same global model, scaled by its own rows in the file, with a warning.
    A series that cannot be forecast (too few rows, gaps) is left out with a warning. A model
    with data.series_features reads each series' static columns from the file and encodes
    them as in training (numbers by the training series' mean and standard deviation, text
    one-hot over the training categories); a value missing (or the column) is taken as the
    training mean for a number and as no category (all-zero one-hot) for text, and a category
    not seen in training as no category, each with a warning line.

    \b
    Examples:
      hpt predict hpt-results/lstm-demo/final/<id>/model.pt --data new.csv --last
      hpt predict hpt-results/lstm-demo/models/3f2a9c1d0b7e.pt --data load.parquet --out forecasts.csv
      hpt predict gs://my-bucket/hpt/lstm/final/<id>/model.pt --data gs://my-bucket/data/load.csv
      hpt predict hpt-results/panel/final/<id>/model.pt --data stations.csv --last --series s01 --series s07
    """
    import torch

    from hpt.predict import check_out, forecast_file, open_model, write_csv
    from hpt.progress import plural

    if out_path:
        check_out(out_path, data_path)
    torch.set_num_threads(threads)
    model = open_model(model_uri)
    result = forecast_file(model, data_path, time_column, last, series or None, time_format, time_unit)
    write_csv(result.table, out_path or sys.stdout, result.step)
    skipped = f" ({result.skipped} left out: they span a missing step)" if result.skipped else ""
    where = out_path or "stdout"
    of = f" of {result.series} series" if model.series is not None else ""
    logging.getLogger("hpt").info(
        "%s of %d rows%s from %s%s: %s of %s every %s -> %s", plural(result.windows, "window"), model.lookback, of,
        data_path, skipped, plural(result.windows, "forecast"), plural(model.horizon, "step"),
        _step_text(result.step), where)


def _step_text(step: Any) -> str:
    from hpt.windows import step_text

    return str(step_text(step))


@main.command(epilog="Exit codes: 0 done, 1 the location did not answer, 2 bad input or nothing there.")
@click.argument("target", metavar="SPEC_OR_URI")
@click.option("--sink", help="With a SPEC: the results location it was run with, when not its own sink.")
def sync(target: str, sink: str | None) -> None:
    """Deliver results that a run left in the local journal, and repair results.csv.

    When a run ends while its gs:// or s3:// location is unreachable, finished trials stay
    in a local journal (~/.cache/hpt/journal, or $HPT_JOURNAL); this sends them, then adds to
    results.csv any row that rows/ holds but it lacks, and replaces its damaged lines (cut
    short, or text where a number belongs) with their rows. Running the same `hpt run` again
    does the same before it trains.

    \b
    Examples:
      hpt sync gs://my-bucket/hpt/lstm-electricity
      hpt sync specs/lstm.json
    """
    from hpt.runner import results_location
    from hpt.sinks import check_location, open_sink
    from hpt.store import ResultStore

    uri = target
    check_location(uri)  # s3//bucket: a mistyped bucket, not a missing folder
    if "://" not in target and (target.endswith(".json") or os.path.isfile(target)):
        from hpt.spec import load_spec

        uri = results_location(load_spec(target), sink)
    if "://" not in uri and not os.path.isdir(uri):
        raise InputError(f"{uri}: no such results folder")
    store = ResultStore(open_sink(uri))
    report = store.sync()
    if not (report.rows or report.delivered):
        raise InputError(f"{store.uri}: no results there and none waiting in the local journal for it")
    from hpt.claims import sweep_expired
    from hpt.progress import plural

    swept = sweep_expired(store.sink)  # left by runs killed, or away when their trial ended
    damaged = f" ({plural(report.damaged, 'damaged line')} replaced)" if report.damaged else ""
    claims = f"; {plural(swept, 'expired claim')} deleted" if swept else ""
    click.echo(f"{store.uri}: {plural(report.delivered, 'waiting result')} delivered from the local journal, "
               f"{plural(report.repaired, 'row')} added to results.csv{damaged}; it now has "
               f"{plural(report.rows, 'row')}{claims}")


if __name__ == "__main__":
    main()
