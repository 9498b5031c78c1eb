"""The architecture registry: a name -> a builder and the hyperparameters it takes.

A builder is called as ``builder(n_features=..., lookback=..., horizon=..., **hyperparameters)``
and returns a ``torch.nn.Module`` mapping a batch ``(B, lookback, n_features)`` to
``(B, horizon)``. Built-in builders live in :mod:`hpt.architectures.models` and are imported
only when a model is built, so validating and planning never import torch. A user's own
builder is named ``"package.module:function"``; its keyword arguments with defaults are its
hyperparameters. Its module is imported from ``sys.path``, else from the spec's folder.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpt.errors import InputError, did_you_mean, signals_put_off
from hpt.future import FUTURE_ARG, known_text
from hpt.hparams import Constraint, HParam, quantiles_of

__all__ = ["Architecture", "BUILTIN", "BUILDER_ARGS", "BuilderError", "future_problem", "get_architecture"]

BUILDER_ARGS = ("n_features", "lookback", "horizon")


class BuilderError(ValueError):
    """A builder returned no module, or one whose output is not ``(batch, horizon)``."""


@dataclass(frozen=True)
class Architecture:
    """A model family: how to build it and which hyperparameters it takes."""

    name: str
    builder_ref: str  # "module:function"
    hparams: tuple[HParam, ...]
    description: str = ""
    # Built-in learning-rate ranges for `hpt auto`: name -> (low, high, scale).
    auto_ranges: dict[str, tuple[float, float, str]] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()  # rules across hyperparameters, checked by the spec
    inputs: str = ""  # how the model uses the input columns (the target and any features)
    future: bool = False  # takes inputs known ahead: its builder has a `future_rows` argument (hpt.future)

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.hparams}

    def hparam(self, name: str) -> HParam | None:
        return next((p for p in self.hparams if p.name == name), None)

    def builder(self) -> Callable[..., Any]:
        return _resolve(self.builder_ref)

    def build(self, n_features: int, lookback: int, horizon: int, params: dict[str, Any], future_rows: int = 0) -> Any:
        """The module for these hyperparameters; with ``training.loss`` "quantile" built for
        horizon x quantiles outputs and reshaped to ``(B, horizon, quantiles)``, sorted; with "mdn"
        for horizon x mdn_components x 3, a mixture of Gaussians per step (its quantiles evaluating); with
        ``training.scaler`` "window" or "robust" wrapped in that scaling, whatever the family
        (:mod:`hpt.architectures.heads`). A robust scaler learns its medians from the train part
        (:func:`hpt.architectures.heads.fit_scalers`) or from a saved model's weights. With inputs known
        ahead the builder gets `future_rows` and the input has that many rows after the lookback (:mod:`hpt.future`)."""
        missing = [p.name for p in self.hparams if p.required and p.name not in params]
        if missing:  # a saved model of a builder that has a new argument without a default since
            raise BuilderError(f"{self.name} takes {', '.join(missing)} without a default, "
                               f"and the parameters give no value for {'them' if len(missing) > 1 else 'it'}")
        kwargs = {p.name: params.get(p.name, p.default) for p in self.hparams}
        if future_rows:
            kwargs["future_rows"] = future_rows
        quantiles = quantiles_of(params)
        components = int(params.get("mdn_components", 3)) if params.get("loss") == "mdn" else 0
        outputs = horizon * components * 3 if components else horizon * len(quantiles) if quantiles else horizon
        module = self.builder()(n_features=n_features, lookback=lookback, horizon=outputs, **kwargs)
        _check_outputs(self.name, module, (lookback + future_rows, n_features), outputs)
        if components:
            from hpt.architectures.heads import Mixture

            module = Mixture(module, horizon, components, quantiles or ())
        elif quantiles:
            from hpt.architectures.heads import Quantiles

            module = Quantiles(module, horizon, len(quantiles))
        scaler = params.get("scaler", "standard")
        if scaler == "window":
            from hpt.architectures.heads import WindowScaled

            module = WindowScaled(module, lookback)
        elif scaler == "robust":
            from hpt.architectures.heads import RobustScaled

            module = RobustScaled(module, n_features)
        return module


def _check_outputs(name: str, module: Any, inputs: tuple[int, int], outputs: int) -> None:
    """A built model maps ``(batch, *inputs)`` to ``(batch, outputs)``: checked on a batch of two zeros, as training
    would otherwise broadcast a wrong shape against its targets and score it. Its modules are in eval mode meanwhile
    (no batch statistics move), set by their flags, not by ``train()``/``eval()``, which a model may have made its own."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise BuilderError(f"{name} returned {type(module).__name__}, not a torch.nn.Module")
    modes = [(m, m.training) for m in module.modules()]
    for m, _ in modes:
        m.training = False
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, *inputs))
    finally:
        for m, mode in modes:
            m.training = mode
    shape = tuple(getattr(out, "shape", ()))
    if shape != (2, outputs):
        got = f"({', '.join(['batch', *map(str, shape[1:])])})" if len(shape) and shape[0] == 2 else str(shape)
        raise BuilderError(f"{name} built with horizon={outputs} returns {got} for an input of (batch, {inputs[0]}, "
                         f"{inputs[1]}): it must return (batch, horizon), here (batch, {outputs})")


def _p(name: str, default: Any, kind: str, **kw: Any) -> HParam:
    return HParam(name, default, kind, **kw)


def _dropout() -> HParam:
    return _p("dropout", 0.1, "float", low=0, high=1, high_open=True, help="dropout probability")


def _layers(default: int = 1) -> HParam:
    return _p("num_layers", default, "int", low=1, high=8, help="stacked layers")


def _heads_divide_d_model(p: dict[str, Any]) -> str | None:
    d_model, heads = p["d_model"], p["num_heads"]
    if d_model % heads:
        return f"d_model {d_model} is not a multiple of num_heads {heads} (each head takes d_model / num_heads)"
    return None


def _encoder(d_model: int) -> tuple[HParam, ...]:
    """A Transformer encoder's arguments (attention, patchtst)."""
    return (_p("d_model", d_model, "int", low=1, help="embedding size (a multiple of num_heads)"),
            _p("num_heads", 4, "int", low=1, help="attention heads"), _layers(2), _dropout())


_HEADS = (Constraint(("d_model", "num_heads"), _heads_divide_d_model),)


_FLAT = "flattened: every column (target first, then features) of every step, into the first layer"
_STEPS = "every column at each step"
_CHANNELS = "every column as an input channel"

_LR_RANGES = {
    "lr": (1e-4, 1e-2, "log"),
    "lr_decay": (0.1, 0.9, "linear"),
    "lr_patience": (1, 8, "int"),
    "patience": (3, 15, "int"),
}
_LR_RANGES_3E4 = {**_LR_RANGES, "lr": (3e-4, 3e-2, "log")}  # convolutional and linear families: a higher lr range

BUILTIN: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture(
            "mlp", "hpt.architectures.models:build_mlp",
            (_p("hidden_size", 64, "int", low=1, help="units per hidden layer"), _layers(2), _dropout()),
            "fully connected network on the flattened window",
            dict(_LR_RANGES_3E4),
            future=True, inputs=_FLAT,
        ),
        Architecture(
            "lstm", "hpt.architectures.models:build_lstm",
            (_p("hidden_size", 64, "int", low=1, help="LSTM state size"), _layers(1), _dropout()),
            "LSTM over the window, linear head on the last state",
            dict(_LR_RANGES),
            future=True, inputs=_STEPS,
        ),
        Architecture(
            "gru", "hpt.architectures.models:build_gru",
            (_p("hidden_size", 64, "int", low=1, help="GRU state size"), _layers(1), _dropout()),
            "GRU over the window, linear head on the last state",
            dict(_LR_RANGES),
            future=True, inputs=_STEPS,
        ),
        Architecture(
            "cnn", "hpt.architectures.models:build_cnn",
            (
                _p("channels", 32, "int", low=1, help="channels per convolution"),
                _p("kernel_size", 3, "int", low=1, high=64, help="temporal kernel width"),
                _layers(3),
                _dropout(),
            ),
            "stack of causal dilated 1-D convolutions (dilation doubles per layer); it sees only the last "
            "1 + (kernel_size - 1) * (2**num_layers - 1) steps (15 with the defaults), whatever the lookback: "
            "tcn covers the whole lookback",
            dict(_LR_RANGES_3E4),
            inputs=_CHANNELS,
        ),
        Architecture(
            "attention", "hpt.architectures.models:build_attention",
            _encoder(32),
            "small transformer encoder with learned positions",
            {**_LR_RANGES, "lr": (3e-5, 3e-3, "log")},
            _HEADS,
            future=True, inputs=_STEPS + " (one token per step)",
        ),
        Architecture(
            "lstm-attention", "hpt.architectures.models:build_lstm_attention",
            (_p("hidden_size", 64, "int", low=1, help="LSTM state size"), _layers(1), _dropout()),
            "LSTM whose states are pooled by learned attention",
            dict(_LR_RANGES),
            future=True, inputs=_STEPS,
        ),
        Architecture(
            "linear", "hpt.architectures.models:build_linear", (),
            "one linear map from the lookback to the horizon (Zeng et al. 2023)",
            dict(_LR_RANGES_3E4),
            future=True, inputs=_FLAT,
        ),
        Architecture(
            "nlinear", "hpt.architectures.models:build_nlinear", (),
            "NLinear: each column minus its last value, one linear map, the last target value added back "
            "(Zeng et al. 2023)",
            dict(_LR_RANGES_3E4),
            future=True, inputs=_FLAT,
        ),
        Architecture(
            "dlinear", "hpt.architectures.models:build_dlinear",
            (_p("kernel_size", 25, "int", low=1, help="moving-average steps of the trend (capped at the lookback)"),),
            "DLinear: trend (moving average) and remainder, one linear map each, summed (Zeng et al. 2023)",
            dict(_LR_RANGES_3E4),
            future=True, inputs=_FLAT + "; each column decomposed on its own",
        ),
        Architecture(
            "nhits", "hpt.architectures.models:build_nhits",
            (
                _p("hidden_size", 128, "int", low=1, help="units per MLP layer"),
                _p("num_stacks", 3, "int", low=1, high=8, help="stacks, coarse to fine (one block each)"),
                _layers(2),
                _p("pool_rate", 2, "int", low=1, high=16,
                   help="stack i of S pools the input and thins the forecast by pool_rate**(S-1-i)"),
                _p("dropout", 0.0, "float", low=0, high=1, high_open=True, help="dropout probability"),
            ),
            "N-HiTS: stacks of MLP blocks with multi-rate pooling and hierarchical interpolation "
            "(Challu et al. 2023)",
            dict(_LR_RANGES),
            inputs="flattened after pooling: the target's residual (each block takes what the blocks before it "
                   "left) and the features as they are",
        ),
        Architecture(
            "patchtst", "hpt.architectures.models:build_patchtst",
            (
                _p("patch_len", 16, "int", low=1, help="steps per patch (a token; capped at the lookback)"),
                _p("stride", 8, "int", low=1, help="steps between patch starts"),
                *_encoder(64),
            ),
            "PatchTST: patches of the lookback as tokens of a Transformer encoder (Nie et al. 2023)",
            {**_LR_RANGES, "lr": (3e-5, 3e-3, "log")},
            _HEADS,
            inputs="channel-independent: each column encoded on its own (shared weights); the head reads them all",
        ),
        Architecture(
            "tcn", "hpt.architectures.models:build_tcn",
            (
                _p("channels", 32, "int", low=1, help="channels per convolution"),
                _p("kernel_size", 3, "int", low=2, high=64, help="temporal kernel width (the levels follow)"),
                _dropout(),
            ),
            "temporal convolutional network: residual levels of dilated causal convolutions, as many levels as "
            "make the receptive field 1 + 2 * (kernel_size - 1) * (2**levels - 1) cover the lookback",
            dict(_LR_RANGES_3E4),
            future=True, inputs=_CHANNELS,
        ),
    )
}


def _resolve(ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    with signals_put_off():  # the user's module may import torch at its top
        module = importlib.import_module(module_name)
    obj = getattr(module, attr)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable")
    return obj  # type: ignore[no-any-return]


def _kind_of(default: Any) -> str:
    # Numbers are not split into int and float: a user's `dropout=0` still takes 0.2.
    for t, kind in ((bool, "bool"), (int, "float"), (float, "float"), (str, "str")):
        if isinstance(default, t):
            return kind
    return "any"


def get_architecture(name: str, folder: Path | None = None, place: str = "next to the spec") -> Architecture:
    """A built-in architecture by name, or a user builder named ``package.module:function``.

    A builder's module that is not importable is looked for in `folder` (the spec's, or the working folder for a
    command without a spec), which then stays on ``sys.path``, so the worker processes, spawned later, import it too.
    `place` says where that is in the error when the module is in neither.
    """
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        known = ", ".join(BUILTIN)
        raise InputError(f'unknown architecture "{name}"; known: {known}, or "package.module:function"')
    module_name = name.partition(":")[0]
    try:
        try:
            fn = _resolve(name)
        except ModuleNotFoundError as e:
            if folder is None or not _is_own_module(e, module_name) or str(folder) in sys.path:
                raise
            sys.path.append(str(folder))  # appended: the folder's files never shadow installed modules
            fn = _resolve(name)
    except ModuleNotFoundError as e:
        if not _is_own_module(e, module_name):
            raise InputError(f'cannot import module "{e.name}" for builder "{name}" (is it installed?)') from None
        absent = str(e.name)
        where = f"{absent.replace('.', '/')}.py" if absent == module_name else f"the package {absent.replace('.', '/')}/"
        raise InputError(f'cannot import module "{absent}" for builder "{name}": put {where} {place} '
                         "or on PYTHONPATH") from None
    except AttributeError:
        module, _, attr = name.partition(":")
        functions = [k for k, v in vars(sys.modules[module]).items() if callable(v) and not k.startswith("_")] \
            if module in sys.modules else []
        if not attr:
            raise InputError(f'builder "{name}": no function named after the ":" (e.g. "{module}:build")') from None
        raise InputError(f'builder "{name}": no function "{attr}" in module {module}'
                         f'{did_you_mean(attr, functions)}') from None
    except Exception as e:  # a user's module may raise anything on import
        raise InputError(f'builder "{name}": importing it failed: {type(e).__name__}: {e}') from None
    params = inspect.signature(fn).parameters
    missing = [a for a in BUILDER_ARGS if a not in params and not _takes_var_kwargs(params)]
    if missing:
        raise InputError(f'builder "{name}" must accept the keyword arguments {", ".join(BUILDER_ARGS)}; it lacks '
                         f'{", ".join(missing)}')
    hparams = tuple(
        HParam(p.name, p.default, _kind_of(p.default), help="user builder argument") if p.default is not p.empty else
        HParam(p.name, None, "any", required=True, help="user builder argument without a default")
        for p in params.values()
        if p.name not in (*BUILDER_ARGS, FUTURE_ARG)
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )
    return Architecture(name, name, hparams, (inspect.getdoc(fn) or "").split("\n")[0], dict(_LR_RANGES),
                        future=FUTURE_ARG in params)


def _is_own_module(e: ModuleNotFoundError, module_name: str) -> bool:
    """Whether the builder's module (or a package above it) is what is missing, not one it imports."""
    return e.name is not None and (module_name == e.name or module_name.startswith(e.name + "."))


def _takes_var_kwargs(params: Any) -> bool:
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def future_problem(arch: Architecture, known: tuple[str, ...]) -> str | None:
    """Why `arch` cannot take these inputs known ahead (:mod:`hpt.future`), naming both; None when it can
    (or there are none)."""
    if not known or arch.future:
        return None
    able = ", ".join(a.name for a in BUILTIN.values() if a.future)
    how = (f'its builder takes no "{FUTURE_ARG}" argument' if ":" in arch.name
           else "it cannot use inputs for the forecast steps")
    return (f'architecture "{arch.name}" cannot take inputs known ahead ({known_text(known)}): {how}; use one that '
            f"can ({able}) or drop them")
