"""What one run is asked to do beyond its spec (:class:`RunOptions`), and where its results go."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from hpt.sinks import check_uri
from hpt.spec import Spec

log = logging.getLogger("hpt")


@dataclass(frozen=True)
class RunOptions:
    sink: str | None = None  # overrides the spec's sink
    workers: int | None = None  # CPU worker processes (default: usable CPUs / threads)
    threads: int | None = None  # torch threads per worker (overrides resources.threads; default 1 on the CPU, 2 with a GPU)
    device: str = "auto"  # auto | cpu | cuda
    force: bool = False  # rerun trials that already have an ok row
    gpus: tuple[str, ...] | None = None  # narrows the visible GPUs (overrides the spec's resources.gpus)
    trials_per_gpu: int | str | None = None  # N or "auto" (overrides resources.trials_per_gpu)
    grace: float = 10.0  # seconds running trials get to finish after SIGINT/SIGTERM
    executor: str | None = None  # "local" or "ray" (overrides resources.executor; default local)
    ray_address: str | None = None  # with executor ray: HOST:PORT, ray://HOST:PORT or auto (else $RAY_ADDRESS)
    mlflow: str | None = None  # --mlflow URI: log each trial there (overrides the spec's tracking.mlflow)
    tensorboard: str | None = None  # --tensorboard DIR: write each trial there (overrides tracking.tensorboard)


def results_location(spec: Spec, override: str | None = None) -> str:
    """Where results go: --sink (a folder relative to the current one), else the spec's sink (a folder relative
    to the spec's, see :func:`hpt.spec.parse_spec`), else hpt-results/<name> in the current folder.

    A folder comes back as an absolute path, so that what is printed says which folder it is.
    """
    location = override or spec.sink or os.path.join("hpt-results", spec.name)
    check_uri(location)
    if "://" in location:
        return location
    location = os.path.abspath(os.path.expanduser(location))
    if not override:
        _say_old_place(spec, location)
    return location


def _say_old_place(spec: Spec, location: str) -> None:
    """hpt up to 0.2 took a spec's relative sink from the current folder: results left there are named, not ignored."""
    written = spec.document.get("sink")
    if not isinstance(written, str) or "://" in written or os.path.isabs(os.path.expanduser(written)):
        return
    old = os.path.abspath(os.path.expanduser(written))
    if old != location and os.path.isdir(os.path.join(old, "rows")) and not os.path.isdir(os.path.join(location, "rows")):
        log.warning("warning: results at %s are not used: the spec's sink %s is relative to the spec's folder, "
                    "%s (earlier versions of hpt took it from the current folder); move them there, or give --sink %s",
                    old, json.dumps(written), location, old)
