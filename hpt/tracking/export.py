"""``hpt results LOCATION --tensorboard DIR --mlflow URI``: a finished location written to the trackers."""

from __future__ import annotations

from collections.abc import Iterator

from hpt.errors import redact
from hpt.tracking import need

__all__ = ["check_exports", "export"]


def check_exports(tensorboard_dir: str | None, mlflow_uri: str | None) -> None:
    """InputError with the install line when a tracker's package is missing, or when MLflow cannot track to the URI
    (before anything is read)."""
    if tensorboard_dir:
        need("tensorboard", "--tensorboard", "tensorboard")
    if mlflow_uri:
        from hpt.tracking.mlflow import check_store, ready

        ready()  # its settings (no INFO lines of its own in hpt's output) before the import
        check_store(mlflow_uri)


def export(uri: str, tensorboard_dir: str | None, mlflow_uri: str | None) -> Iterator[str]:
    """Write the trials at `uri` that each tracker lacks; a line per tracker saying what was done, as each is done.

    HptError (exit 1) when MLflow could not take every trial: logging them is all this asked for.
    """
    if tensorboard_dir:
        from hpt.tracking.tensorboard import write_tensorboard

        yield write_tensorboard(uri, tensorboard_dir).line()
    if mlflow_uri:
        from hpt.tracking.mlflow import log_location

        yield redact(log_location(uri, mlflow_uri))  # a tracking URI may hold a user and password
