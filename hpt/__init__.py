"""hpt: hyperparameter tuning for PyTorch time-series models, driven by JSON specs."""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

__all__ = ["__version__", "load_model", "load_results", "load_spec"]


def load_model(path: str) -> Any:
    """Load a saved model (``models/<trial_id>.pt``); see :mod:`hpt.model_io`."""
    from hpt.model_io import load_model as _load

    return _load(path)


def load_spec(path: str) -> Any:
    """Read and validate a spec file; see :mod:`hpt.spec`."""
    from hpt.spec import load_spec as _load

    return _load(path)


def load_results(uri: str) -> Any:
    """Every trial row at a results location as a DataFrame; see :mod:`hpt.results`."""
    from hpt.results import load_results as _load

    return _load(uri)
