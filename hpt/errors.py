"""The errors hpt raises on purpose: bad input (exit 2) and a failed run (exit 1)."""

from __future__ import annotations

import difflib
import json
import os
import re
import signal
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DataError", "HptError", "InputError", "Problem", "SIGNAL_EXIT", "SpecError", "check_folder", "close_matches",
           "did_you_mean", "install_hint", "json_error", "no_blas_threads", "one_line", "putting_signals_off", "redact", "show",
           "signals_put_off"]

_putting_off = 0  # > 0 while user code that may import C extensions runs (see signals_put_off)


@contextmanager
def signals_put_off() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block ends: blocked in this thread meanwhile, and taken at its end (should
    another thread take one meanwhile, the CLI's handler sends it again 50 ms later).

    For importing a user's module: an exception raised while it imports a C extension (torch,
    numpy) breaks that import, which ends in an ImportError or an abort instead of 130/143. The
    threads such a library starts inherit the block, so they never take a signal meant for hpt
    (:func:`no_blas_threads`).
    """
    global _putting_off
    _putting_off += 1
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set(SIGNAL_EXIT)) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        _putting_off -= 1  # first: a signal held meanwhile is handled as soon as it is unblocked, not sent again
        if before is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)


def putting_signals_off() -> bool:
    return _putting_off > 0


def no_blas_threads() -> None:
    """This process's BLAS libraries (numpy's, scipy's: each loads its own) start no threads of their own, unless
    ``OPENBLAS_NUM_THREADS`` says otherwise: hpt's main process does no heavy linear algebra, and such a thread,
    which does not block SIGINT and SIGTERM, would take a Ctrl-C or a Jenkins abort sent while the main thread
    blocks them and hpt ignores them (a worker's start, :mod:`hpt.backends.local`) and drop it: the run would go
    on. Call it before numpy is imported. Workers inherit the setting, in keeping with one thread per worker (torch's
    threads are set apart, ``--threads``)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


# The exit code of a run stopped by a signal: Ctrl-C (130) or Jenkins' abort (143).
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class HptError(Exception):
    """A fatal error with a message fit for the user; the run stops with exit code 1."""

    exit_code = 1


class InputError(HptError):
    """Bad input (spec, data, arguments): reported before anything trains, exit code 2."""

    exit_code = 2


class DataError(InputError):
    """A problem with the data, tied to the spec key it comes from (e.g. ``data.target``); `others`: more of the
    same kind found at once (every column a spec names that the file lacks), as (key, message) pairs."""

    def __init__(self, json_path: str, message: str, others: tuple[tuple[str, str], ...] = ()) -> None:
        self.json_path = json_path
        self.message = message
        self.others = others
        super().__init__("\n".join(f"{p}: {m}" for p, m in self.found))

    @property
    def found(self) -> tuple[tuple[str, str], ...]:
        """Every problem it holds, the first one's too, as (key, message) pairs."""
        return ((self.json_path, self.message), *self.others)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, at a JSON path such as ``parameters.lr[2]``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(InputError):
    """Every problem found in one spec, reported together, one line each."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{p}" for p in self.problems]


_HPT_CODE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def one_line(e: BaseException) -> str:
    """The exception and where it came from, on one line: the last place outside hpt (the user's builder, torch),
    else hpt's own, except for an error hpt raised on purpose (its own class: the message says what is wrong)."""
    frames = traceback.extract_tb(e.__traceback__)
    inside = [os.path.abspath(f.filename).startswith(_HPT_CODE) for f in frames]
    start = inside.index(True) if True in inside else 0  # from hpt's first frame down: not its caller's
    outside = [f for f, own in zip(frames[start:], inside[start:], strict=True) if not own]
    at = outside[-1] if outside else None if type(e).__module__.split(".")[0] == "hpt" else \
        frames[-1] if frames else None
    where = f" (at {at.filename.rsplit('/', 1)[-1]}:{at.lineno})" if at is not None else ""
    text = f"{type(e).__name__}: {e}".replace("\n", " ")
    return (text[:500] + where) if text else type(e).__name__


def show(value: Any) -> str:
    """A value as it looks in JSON, shortened for a one-line message."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


DID_YOU_MEAN = 0.65
"""How alike a name must be to be suggested (difflib's ratio): 0.6 offered "precipitation" for "station"; "temp"
still suggests "temp_min" (0.67)."""


def close_matches(name: str, valid: Iterable[str]) -> list[str]:
    """The valid names closest to `name` (difflib's ratio, at least :data:`DID_YOU_MEAN`), those as close as the
    closest, sorted; [] when none is close."""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=DID_YOU_MEAN)
    if not close:
        return []

    def ratio(other: str) -> float:
        return difflib.SequenceMatcher(None, name, other).ratio()

    best = ratio(close[0])
    return sorted(c for c in close if ratio(c) >= best - 1e-9)


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """' (did you mean "x"?)' when a close valid name exists, else ''; names as close as the closest are named too
    (' (did you mean "temp_min" or "temp_max"?)' for "temp")."""
    close = close_matches(name, valid)
    return " (did you mean " + " or ".join(f'"{c}"' for c in close) + "?)" if close else ""


_SECRET_PATTERNS = [
    # user and password in a URL: http://user:secret@host (an endpoint such as AWS_ENDPOINT_URL, a proxy)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@"), r"\1<redacted>@"),
    (re.compile(r"(?i)(x-amz-(?:signature|credential|security-token)|signature|access_token|token|"
                r"upload_id|googleaccessid|x-goog-(?:signature|credential))=[^&\s'\"]+"), r"\1=<redacted>"),
    (re.compile(r"(?i)(authorization|x-amz-security-token)(['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+"), r"\1\2<redacted>"),
    (re.compile(r"\bya29\.[A-Za-z0-9._-]+"), "<redacted>"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{12,}\b"), r"\1<redacted>"),
]


def json_error(e: json.JSONDecodeError) -> str:
    """What is wrong with a JSON text, and where: Python's message, or for the usual slips of hand-written JSON (a
    comma after the last item, single quotes) what they are, at the character to change."""
    before = e.doc[:e.pos].rstrip()
    at = e.doc[e.pos:e.pos + 1]
    if e.msg in ("Expecting property name enclosed in double quotes", "Expecting value") and before.endswith(",") \
            and at in ("}", "]"):
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1)
        return f"invalid JSON at line {line}, column {column}: a comma after the last item (JSON allows none before {at})"
    if at == "'" and e.msg.startswith("Expecting"):
        return f"invalid JSON at line {e.lineno}, column {e.colno}: a single quote (JSON strings and keys need double quotes)"
    return f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"


def redact(text: str) -> str:
    """`text` with anything that looks like a credential replaced: the user and password in a
    URL, tokens, URL signatures, access keys, the value of AWS_SECRET_ACCESS_KEY.

    Every line hpt prints goes through it: its error lines, its log lines and a run's progress.
    """
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if secret and len(secret) >= 8:
        text = text.replace(secret, "<redacted>")
    return text


def check_folder(option: str, path: str) -> None:
    """InputError when an output folder option (--plot DIR, --tensorboard DIR) names a file or a bucket: said
    before anything is read or printed."""
    if "://" in path:
        raise InputError(f"{option} {path}: expected a local folder")
    if os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{option} {path}: is a file, not a folder")


def install_hint(extra: str) -> str:
    """The pip command that adds hpt's optional `extra` (plot, ray, ...) to this installation of hpt.

    ``pip install 'hpt[plot]'`` for a package from an index; for hpt installed from a folder
    (``pip install -e .`` in a clone, as ``make`` does) or run from a clone without installing,
    the same folder: ``pip install -e '.[plot]'`` (the folder's path when it is not the current one).
    """
    import importlib.metadata
    from urllib.parse import unquote, urlparse

    try:
        text = importlib.metadata.distribution("hpt").read_text("direct_url.json")
        info = json.loads(text) if text else {}
    except importlib.metadata.PackageNotFoundError:
        clone = Path(__file__).resolve().parents[1]
        info = {"url": clone.as_uri(), "dir_info": {"editable": True}} if (clone / "pyproject.toml").is_file() else {}
    except ValueError:
        info = {}
    url = info.get("url", "") if isinstance(info, dict) else ""
    if not (url.startswith("file://") and isinstance(info.get("dir_info"), dict)):
        return f"pip install 'hpt[{extra}]'"
    folder = Path(unquote(urlparse(url).path))
    where = "." if folder.resolve() == Path.cwd().resolve() else str(folder)
    editable = "-e " if info["dir_info"].get("editable") else ""
    return f"pip install {editable}'{where}[{extra}]'"
