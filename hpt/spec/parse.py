"""A spec document, section by section, into a :class:`~hpt.spec.objects.Spec`; every problem is raised together."""

from __future__ import annotations

import contextlib
import logging
from datetime import date
from pathlib import Path
from typing import Any

from hpt.architectures import BUILTIN, Architecture, BuilderError, future_problem, get_architecture
from hpt.errors import InputError, Problem, SpecError, one_line, signals_put_off
from hpt.hparams import TRAINING
from hpt.periods import AutoPeriods, Period
from hpt.spec.checker import SECTIONS, Checker, type_text
from hpt.spec.data import parse_data
from hpt.spec.metrics import check_panel, check_quantile_metrics, parse_metrics, parse_objective
from hpt.spec.objects import Axis, DataSpec, Distribution, Spec
from hpt.spec.parameters import auto_axes, check_constraints, check_stopping_epochs, most_epochs, parse_parameters
from hpt.spec.periods import parse_periods, resolve_auto
from hpt.spec.run import name_problem, parse_resources, parse_sink, parse_tracking
from hpt.spec.search import STRATEGIES, SearchSpec, check_search, search_strategy
from hpt.spec.training import parse_repeats, parse_training
from hpt.spec.windowing import data_problems, quick_spec, unused_periods, window_extremes

__all__ = ["parse_search", "parse_spec"]

log = logging.getLogger("hpt")

_ALIASES = {"date-range": "date_ranges"}


def parse_spec(document: Any, source: str = "<spec>", base_dir: Path | None = None,
               default_name: str = "experiment", today: date | None = None, quick: bool = False) -> Spec:
    """Validate a spec document, its data included; every problem is raised together. `quick`: its quick screening
    variant (:func:`~hpt.spec.windowing.quick_spec`), without the notes about the periods the screen replaces."""
    if quick:
        with unused_periods():
            spec = parse_spec(document, source, base_dir, default_name, today)
        return quick_spec(spec)
    ck = Checker(source, base_dir, today or date.today())
    doc = _top_level(ck, document)
    name = _name(ck, doc, default_name)
    architecture = ck.string(doc, "architecture", "")
    arch = _architecture(ck, architecture)
    data = parse_data(ck, doc.get("data"))
    periods = parse_periods(ck, doc.get("date_ranges"))
    rule = periods if isinstance(periods, AutoPeriods) else None
    search = parse_search(ck, doc.get("search", {}))
    training = parse_training(ck, doc.get("training", {}), arch)
    repeats = parse_repeats(ck, doc.get("training"))
    parameters = _search_space(ck, doc.get("parameters", {}), arch, search, training)
    if arch is not None and data is not None and (problem := future_problem(arch, data.known_ahead)):
        ck.add("architecture", problem)
    metrics = parse_metrics(ck, doc.get("metrics", []))
    objective = parse_objective(ck, doc.get("objective", "val_mse"))
    check_quantile_metrics(ck, objective, metrics, parameters, training)
    if data is not None:
        check_panel(ck, data, objective, metrics)
    resources = parse_resources(ck, doc.get("resources", {}))
    tracking = parse_tracking(ck, doc.get("tracking", {}))
    sink = parse_sink(ck, doc.get("sink"))
    if data is not None and periods:  # the data's problems are reported with the rest; its notes (too few windows, the
        # months "fit" chose) only of a spec without problems: they would be of settings that are to change
        with unused_periods() if ck.problems else contextlib.nullcontext():
            periods, rule = _periods_in_data(ck, data, periods, parameters, training)
    if arch is not None and data is not None and not ck.problems and arch.name not in BUILTIN:
        _builds(ck, arch, data, parameters, training)
    if ck.problems:
        raise SpecError(source, ck.problems)
    assert data is not None and architecture
    assert isinstance(periods, tuple)
    return Spec(name=name, architecture=architecture, data=data, periods=periods, search=search,
                parameters=parameters, training=training, metrics=metrics, objective=objective,
                sink=sink, source=source, document=doc, period_rule=rule, today=ck.today,
                resources=resources, repeats=repeats, tracking=tracking,
                folder=str(base_dir.resolve()) if base_dir is not None else None)


def parse_search(ck: Checker, value: Any) -> SearchSpec:
    """The strategy says which keys it takes (see :mod:`hpt.spec.search`)."""
    if isinstance(value, str) and value in STRATEGIES:  # "search": "random"
        ck.add("search", f'expected an object such as {{"strategy": "{value}"}}, got "{value}"')
        ck.unsure.add("search")
        return SearchSpec()
    obj = ck.section(value, "search")
    if obj is None:
        return SearchSpec()
    strategy = search_strategy(obj, ck.add)
    if obj.get("strategy", "grid") not in STRATEGIES:
        ck.unsure.add("search")  # the strategy it meant is not known: what another strategy would take is not checked
    elsewhere = {key: [f'"{other.name}"' for other in STRATEGIES.values() if key in other.keys]
                 for key in obj if key not in strategy.valid}
    for key, names in elsewhere.items():
        if names:  # another strategy's key (tpe's startup_trials with grid): not a typo
            ck.add(f"search.{key}", f'only with strategy {" or ".join(names)} (this spec\'s is "{strategy.name}")')
    ck.unknown_keys({k: v for k, v in obj.items() if not elsewhere.get(k)}, strategy.valid, "search")
    return check_search(obj, strategy, ck.add, ck.folder)


def _top_level(ck: Checker, document: Any) -> dict[str, Any]:
    """The document's top-level object, its aliases under their keys."""
    if not isinstance(document, dict):
        raise SpecError(ck.source, [Problem("", f"expected a JSON object at the top, got {type_text(document)}")])
    doc = dict(document)
    for alias, key in _ALIASES.items():
        if alias in doc:
            if key in doc:
                ck.add(alias, f'"{alias}" and "{key}" are the same setting; keep one')
            doc[key] = doc.pop(alias)
    ck.unknown_keys(doc, SECTIONS[""], "")
    return doc


def _name(ck: Checker, doc: dict[str, Any], default_name: str) -> str:
    name = ck.string(doc, "name", "", default=default_name)
    if name and (problem := name_problem(name)):
        ck.add("name", problem + ("" if "name" in doc else ' (the name comes from the file name: set "name")'))
    return name


def _architecture(ck: Checker, architecture: str) -> Architecture | None:
    if not architecture:
        return None
    try:
        return get_architecture(architecture, ck.base_dir)
    except InputError as e:
        ck.add("architecture", str(e))
        return None


_FOR_LOSSES = {"huber_delta": ("huber",), "quantiles": ("quantile", "mdn"), "mdn_components": ("mdn",)}
"""Training settings that only some losses read."""


def _unused_by_the_loss(ck: Checker, parameters: dict[str, Axis], training: dict[str, Any]) -> None:
    """A warning for a setting only other losses read (``huber_delta`` with loss mse): it changes the config ids and
    nothing else."""
    axis = parameters.get("loss")
    losses = set(axis) if isinstance(axis, (list, tuple)) else {training.get("loss", "mse")}
    for name, readers in _FOR_LOSSES.items():
        if (name in training or name in parameters) and not losses & set(readers):
            where = "parameters" if name in parameters else "training"
            log.warning("%s: %s.%s is not used: only loss %s reads it, and this spec's loss is %s", ck.source, where,
                        name, " or ".join(readers), " or ".join(sorted(map(str, losses))))


def _search_space(ck: Checker, value: Any, arch: Architecture | None, search: SearchSpec,
                  training: dict[str, Any]) -> dict[str, Axis]:
    """The ``parameters`` section, checked against the architecture and the search; auto adds its ranges."""
    parameters = parse_parameters(ck, value, arch, search)
    for name in sorted(set(training) & set(parameters)):
        log.warning("%s: training.%s is not used: parameters.%s tunes it", ck.source, name, name)
    _unused_by_the_loss(ck, parameters, training)
    if arch is not None:
        check_constraints(ck, arch, value, parameters, training)
        for hp in arch.hparams:
            if hp.required and hp.name not in parameters and isinstance(value, dict) and hp.name not in value:
                ck.add("parameters", f'{arch.name} takes {hp.name} without a default: give its values here, such as '
                                     f'"{hp.name}": [...]')
    check_stopping_epochs(ck, search, parameters, training)
    if search.strategy == "auto" and arch is not None:
        # the architecture's built-in learning-rate ranges, unless the spec gives its own; a cosine
        # schedule ignores lr_decay and lr_patience, so drawing them would only train one config twice
        schedule = parameters.get("lr_schedule", (training.get("lr_schedule", "plateau"),))
        unused = ("lr_decay", "lr_patience") if schedule == ("cosine",) else ()
        axes = auto_axes(arch, most_epochs(parameters, training))
        parameters = {**{k: v for k, v in axes.items() if k not in unused}, **parameters}
    return parameters


def _builds(ck: Checker, arch: Architecture, data: DataSpec, parameters: dict[str, Axis],
            training: dict[str, Any]) -> None:
    """A builder of the user's, built once for the spec's first values (each list's first, a range's low end) and run
    on a batch of zeros, as each trial builds it: one that returns no module, or another shape than (batch,
    horizon), is a problem of the spec, said before any trial. One that raises is a warning: that may depend on the
    machine (a download, a GPU), and its trials say it where they run."""
    first = {k: (int(v.low) if v.kind == "int" else v.low) if isinstance(v, Distribution) else v[0]
             for k, v in parameters.items()}
    params = {**{k: h.default for k, h in TRAINING.items()}, **training, **first}
    lookback, horizon = int(params["lookback"]), int(params["horizon"])
    try:
        with signals_put_off():  # the threads torch starts for it inherit the block, as those of the module's import
            arch.build(len(data.read().frame.columns), lookback, horizon, params, horizon if data.known_ahead else 0)
    except BuilderError as e:
        ck.add("architecture", str(e))
    except Exception as e:  # a user's builder may raise anything
        own = {p.name: params.get(p.name, p.default) for p in arch.hparams}
        values = " ".join(f"{k}={v}" for k, v in {**own, "lookback": lookback, "horizon": horizon}.items())
        log.warning("%s: architecture: %s failed to build here with %s (the spec's first values): %s; its trials "
                    "will fail alike unless that depends on the machine", ck.source, arch.name, values, one_line(e))


def _periods_in_data(ck: Checker, data: DataSpec, periods: tuple[Period, ...] | AutoPeriods,
                     parameters: dict[str, Axis], training: dict[str, Any],
                     ) -> tuple[tuple[Period, ...], AutoPeriods | None]:
    """The periods (automatic ones drawn from the data), each checked for its windows in the data, and the rule
    that drew them (its months chosen, for ``"months": "fit"``)."""
    extremes = window_extremes(parameters, training)
    rule = None
    if isinstance(periods, AutoPeriods):
        periods, rule = resolve_auto(ck, data, periods, extremes)
    if periods:
        _, problems = data_problems(data, ck.period_places, extremes)
        ck.problems += problems
    return periods, rule
