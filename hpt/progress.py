"""What a run prints: one line per event that reads well in a Jenkins log, and a progress
bar on top when stdout is a terminal."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import IO, Any

from hpt.errors import redact
from hpt.trial import Status, Trial, TrialResult

__all__ = ["Reporter", "format_duration", "format_params", "format_value", "plural"]


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 or word.endswith('series') else 's'}"


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in params.items()) or "(defaults)"


class Reporter:
    """Prints run progress to `out` (stdout by default)."""

    def __init__(self, out: IO[str] | None = None, bar: bool | None = None, quiet: bool = False) -> None:
        self.out = out or sys.stdout
        self.quiet = quiet
        self.use_bar = self.out.isatty() if bar is None else bar
        self._bar: Any = None
        self._t0 = time.monotonic()
        self._width = 1
        self._running: dict[str, str] = {}  # trial id -> "slot: params", shown beside the bar
        self._stopping = False  # after a signal: no ETA, the rest will not run
        self._slots = 1  # trials that run at once
        self._trained: list[float] = []  # the training seconds of each trial that reported them
        self._wave_end: float | None = None  # when the first `slots` trials had ended (worker start-up behind)
        self._total: int | None = None  # the run's first count of its trials (start)
        self._moved = False  # an estimate: an adaptive search's, or one that changed since (early stopping, racing, ...)
        self.seeds = False  # several seeds per config and period (training.repeats): a trial's line says its seed

    def line(self, text: str) -> None:
        text = redact(text)
        if self._bar is not None:
            self._bar.write(text, file=self.out)
            return
        try:
            print(text, file=self.out, flush=True)
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        """The reader of stdout went away (``hpt run spec.json | head``): the run goes on, its trials are stored as
        ever; its lines go nowhere (stdout's descriptor now leads to the null device, so what is buffered drains
        there, at exit too), and stderr says so once."""
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self.out.fileno())
        except (OSError, ValueError):  # not a file descriptor's stream: nothing is buffered for one
            self.out = open(os.devnull, "w")  # for the rest of the process
        finally:
            os.close(null)  # the descriptor dup2 made stays; this one is not needed
        logging.getLogger("hpt").warning("stdout's reader went away (a closed pipe); the run goes on, storing every "
                                         "trial, without printing its progress")

    def start(self, total: int, slots: int = 1, estimate: bool = False) -> None:
        """The run starts with `total` trials to run (`estimate`: a count the search moves, marked `~`) on `slots`."""
        self._t0 = time.monotonic()
        self._slots = max(1, slots)
        self._width = len(str(total))
        self._total, self._moved = total, estimate
        if self.use_bar and total and not self.quiet:
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=self.out, unit="trial", dynamic_ncols=True, leave=False)

    def trial_started(self, trial: Trial, where: str) -> None:
        """On a terminal, the bar shows what each worker slot is training."""
        if self._bar is not None:
            self._running[trial.trial_id] = f"{where}: {format_params(trial.tuned_params)}"
            self._bar.set_postfix_str(" | ".join(self._running.values()), refresh=True)

    def interrupted(self, text: str) -> None:
        """A signal stopped new launches: say so at once, and stop promising an ETA."""
        self._stopping = True
        self.line(text)

    def trial_done(self, result: TrialResult, done: int, total: int, objective: str) -> None:
        if self._bar is not None:
            self._running.pop(result.trial.trial_id, None)
            self._bar.set_postfix_str(" | ".join(self._running.values()), refresh=False)
            self._bar.update(1)
        if self.quiet:
            return
        t = result.trial
        eta = self._eta(result, done, total)
        status = result.status.value
        if result.status in (Status.OK, Status.PRUNED) and objective in result.metrics:
            score = f"{objective}={format_value(result.metrics.get(objective))}"
            took = format_duration(float(result.metrics.get("train_time_s", 0.0)))
            epochs = f"  epochs={result.metrics['epochs']}" if "epochs" in result.metrics else ""  # a data rung's stop: none
            detail = f"{score}{epochs}  {took}"
            if result.status is Status.PRUNED:
                detail = f"{result.error}  {detail}"
        else:
            detail = result.error
        eta_text = f"  ETA {format_duration(eta)}" if done < total and not self._stopping else ""
        share = f" {t.fidelity.name}" if t.fidelity.share < 1 else ""  # a rung of early stopping on data
        self._moved = self._moved or (self._total is not None and total != self._total)
        count = f"~{total}" if self._moved and done < total else str(total)  # it ends at [N/N]
        seed = f"  seed {t.seed}" if self.seeds else ""  # as hpt plan lists it: the repeats of a trial apart
        self.line(f"[{done:>{self._width}}/{count}] {status:<11} {t.period.label}{share}{seed}  "
                  f"{format_params(t.tuned_params)}  {detail}{eta_text}")

    def _eta(self, result: TrialResult, done: int, total: int) -> float:
        """Seconds until the last of `total` trials ends, `done` having ended. The first trials' wall time
        includes starting the workers (importing torch, reading the data), so until `slots` have ended it
        is the trials' own mean training time per slot; after that, also the pace since then (which
        includes every per-trial cost), whichever is longer."""
        now = time.monotonic()
        if "train_time_s" in result.metrics:
            self._trained.append(float(result.metrics["train_time_s"]))
        left = total - done
        by_training = sum(self._trained) / len(self._trained) * left / self._slots if self._trained else 0.0
        if done <= self._slots:
            if done == self._slots:
                self._wave_end = now
            return by_training if self._trained else (now - self._t0) / done * left
        if self._wave_end is None:
            return by_training
        return max(by_training, (now - self._wave_end) / (done - self._slots) * left)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
