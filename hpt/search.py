"""Search strategies: a spec -> a lazy, seeded sequence of configs and of trials.

Nothing is materialised: a grid of 10^9 points has a length and an i-th element, computed
on demand. Grid order is a seeded pseudo-random permutation of the grid (a Feistel network
with cycle walking), so a run cut short has still sampled the whole space evenly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from hpt import __version__
from hpt.data import load_frame, period_fingerprint
from hpt.fidelity import FULL, Fidelity
from hpt.hparams import QUANTILE_LOSSES, WINDOW_KEYS, id_params
from hpt.memo import load_ids, save_ids
from hpt.periods import Period
from hpt.spec import Distribution, Spec
from hpt.trial import Trial

__all__ = ["AutoSearch", "GridSearch", "RandomSearch", "TrialPlan", "config_id", "data_identity", "digest", "expand",
           "trial_id", "trial_seed"]


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)  # json.dumps with these, made once


def digest(obj: Any) -> str:
    """A stable 12-hex-digit id of a JSON-able object (config, trial and baseline ids)."""
    text = _CANONICAL.encode(obj)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class _Digests:
    """:func:`digest` of objects alike but for one value (the slot): the JSON text around it is encoded once.

    Exactly the bytes :func:`digest` hashes, since JSON text is the text of its parts (the
    canonical encoder sorts the keys of each object by itself). A plan of 100,000 trials
    hashes their ids in a third of the time.
    """

    SLOT = "\0hpt-slot\0"

    def __init__(self, template: Any) -> None:
        head, *tail = _CANONICAL.encode(template).split(_CANONICAL.encode(self.SLOT))
        if len(tail) != 1:
            raise ValueError("a digest template has one slot")
        self.head, self.tail = head, tail[0]

    def __call__(self, value: Any) -> str:
        text = self.head + _CANONICAL.encode(value) + self.tail
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def data_identity(spec: Spec) -> dict[str, Any]:
    """What config ids (and the baselines' ids) say of the data: its file name, time column and columns
    (and calendar inputs, the columns known ahead, the series and the static series features, when it has
    any: ids without them are as before data.calendar, data.future_features and data.series existed)."""
    identity: dict[str, Any] = {"file": Path(spec.data.path).name, "time": spec.data.time_column,
                                "columns": spec.data.columns}
    if spec.data.calendar:
        identity["calendar"] = list(spec.data.calendar)
    if spec.data.known_ahead:  # fed for the forecast steps too (hpt.future)
        identity["known_ahead"] = list(spec.data.known_ahead)
    if spec.data.series is not None:  # many series (hpt.panel): which, and which of them
        identity["series"] = spec.data.series
        if spec.data.options.series_filter is not None:
            identity["series_filter"] = list(spec.data.options.series_filter)
        if spec.data.series_features:  # static per-series inputs (hpt.static)
            identity["series_features"] = list(spec.data.series_features)
    return identity


BASELINE_KEY = "baseline_key"
"""The row column that ties a trial to the naive baselines scored on its validation windows (both carry it)."""


def scored_quantiles(spec: Spec) -> tuple[float, ...] | None:
    """The quantiles the baselines are scored at: a spec whose configs train on a quantile loss gives them its
    quantiles (their rows get val_pinball and val_coverage); None otherwise."""
    return tuple(spec.base_params["quantiles"]) if set(QUANTILE_LOSSES) & set(spec.losses) else None


def baseline_key(spec: Spec, params: Mapping[str, Any], data: dict[str, Any] | None = None) -> str:
    """What a trial's rows share with the baseline rows scored for it: the data's identity (file, target, columns,
    series), the window setting, ``data.season`` and the quantiles the baselines are scored at. Every row carries
    it (:data:`BASELINE_KEY`), so a config is compared with its own baselines even where one location holds runs
    of other targets or horizons, which the tuned parameters alone do not tell apart."""
    key: dict[str, Any] = {"data": data or data_identity(spec), "window": {k: params[k] for k in WINDOW_KEYS}}
    if spec.data.season is not None:
        key["season"] = spec.data.season
    quantiles = scored_quantiles(spec)
    if quantiles:
        key["quantiles"] = list(quantiles)
    return digest(key)


def config_id(spec: Spec, params: dict[str, Any], data: dict[str, Any] | None = None) -> str:
    """Stable id of a config: the architecture, the data's identity and every hyperparameter
    (a newer training key at its default left out: :func:`hpt.hparams.id_params`).
    `data`: ``data_identity(spec)``, when the caller has it already."""
    return digest(_config_key(spec, id_params(params), data))


def _config_key(spec: Spec, params: Any, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"architecture": spec.architecture, "data": data_identity(spec) if data is None else data, "params": params}


def trial_id(config: str, period_label: str, fidelity: Fidelity = FULL, data: str = "", *, seed: int) -> str:
    """Stable id of a trial: its config, period, fidelity (its name) and training seed, and `data`, the period's
    fingerprint."""
    return digest(_trial_key(config, period_label, fidelity.name, data, seed))


def _trial_key(config: str, period_label: str, fidelity: str, data: str, seed: int) -> dict[str, Any]:
    return {"config": config, "period": period_label, "fidelity": fidelity, "data": data, "seed": seed}


def trial_seed(seed: int, period_label: str, repeat: int = 0) -> int:
    """The seed a trial trains with: derived from the config's `seed`, the period and the repeat.

    A config trained with one seed in every period would carry the same lucky (or unlucky)
    initialisation into every period, and its periods would not be independent evidence
    about its hyperparameters. Derived seeds differ per period and per repeat, and the same
    spec still gives the same seeds. Repeat 0's seed does not depend on how many repeats
    there are, so raising ``training.repeats`` keeps the trials already done.
    """
    h = hashlib.blake2b(f"{seed}:{period_label}:{repeat}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFF_FFFF  # fits every RNG's seed type


class _Permutation:
    """A seeded bijection of range(n) computed one index at a time."""

    ROUNDS = 4

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        bits = max(2, (n - 1).bit_length())
        self.half = (bits + 1) // 2
        self.mask = (1 << self.half) - 1
        self.seed = seed

    def _f(self, r: int, x: int) -> int:
        h = hashlib.blake2b(f"{self.seed}:{r}:{x}".encode(), digest_size=8).digest()
        return int.from_bytes(h, "little") & self.mask

    def __getitem__(self, i: int) -> int:
        x = i
        while True:  # cycle-walk until the image falls inside range(n)
            left, right = x >> self.half, x & self.mask
            for r in range(self.ROUNDS):
                left, right = right, left ^ self._f(r, right)
            x = (left << self.half) | right
            if x < self.n:
                return x


class _Space(Sequence[dict[str, Any]]):
    def __init__(self, n: int) -> None:
        self._n = n

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self._get(k) for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._get(i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._get(k) for k in range(self._n))

    def _get(self, i: int) -> dict[str, Any]:
        raise NotImplementedError


class GridSearch(_Space):
    """Every combination of the list-valued axes, in a seeded shuffled order, capped at max_trials."""

    def __init__(self, axes: Mapping[str, Sequence[Any]], seed: int = 0, max_trials: int | None = None) -> None:
        for name, values in axes.items():
            if isinstance(values, Distribution) or not len(values):
                raise ValueError(f"grid axis {name!r} needs a non-empty list of values")
        self.axes = {k: tuple(v) for k, v in axes.items()}
        from sklearn.model_selection import ParameterGrid  # a second's import that random and tpe searches skip

        self._grid = ParameterGrid({k: list(v) for k, v in self.axes.items()})  # lazy: indexable, sized
        self.size = len(self._grid)
        self._perm = _Permutation(self.size, seed)
        super().__init__(self.size if max_trials is None else min(self.size, max_trials))

    def memo_key(self) -> dict[str, Any]:
        """What the configs follow from (:meth:`TrialPlan.memo_key`)."""
        return {"search": "grid", "axes": [[k, list(v)] for k, v in self.axes.items()], "seed": self._perm.seed,
                "n": len(self)}

    def _get(self, i: int) -> dict[str, Any]:
        point = self._grid[self._perm[i]]
        return {name: point[name] for name in self.axes}  # the spec's order, for logs


class RandomSearch(_Space):
    """max_trials different configs, drawn at random; draw j depends only on (seed, j).

    Over a space of finitely many configs (lists and int ranges only) a draw can repeat an earlier
    config: it is passed over, and the next draw taken, so the search has max_trials different
    configs (all of them when the space has fewer), as scikit-learn's ParameterSampler draws
    from lists without replacement. The configs before the first repeat are the draws themselves,
    so a search that drew none keeps its configs. A space with a continuous axis draws no repeat
    (its configs are the draws, kept lazily).
    """

    def __init__(self, axes: dict[str, Sequence[Any] | Distribution], seed: int, max_trials: int) -> None:
        for name, axis in axes.items():
            if not isinstance(axis, Distribution) and not len(axis):
                raise ValueError(f"axis {name!r} needs a non-empty list of values")
        self.axes = dict(axes)
        self.seed = seed
        self.size = _finite_size(self.axes)  # configs the space has; None: infinitely many
        self._distinct: list[int] = []  # finite space: the draws that gave a new config, in order
        self._seen: set[tuple[Any, ...]] = set()
        super().__init__(max_trials if self.size is None else min(max_trials, self.size))

    def memo_key(self) -> dict[str, Any]:
        """What the configs follow from (:meth:`TrialPlan.memo_key`): the axes in order, as random draws take them."""
        return {"search": type(self).__name__, "seed": self.seed, "n": len(self), "distinct": True,
                "axes": [[k, v.to_json() if isinstance(v, Distribution) else list(v)] for k, v in self.axes.items()]}

    def _get(self, i: int) -> dict[str, Any]:
        if self.size is None:
            return self._draw(i)
        while len(self._distinct) <= i:  # the draws up to the i-th new config (a repeat is passed over)
            j = self._distinct[-1] + 1 if self._distinct else 0
            while (key := tuple(map(repr, self._draw(j).values()))) in self._seen:
                j += 1
            self._seen.add(key)
            self._distinct.append(j)
        return self._draw(self._distinct[i])

    def _draw(self, j: int) -> dict[str, Any]:
        # the words of [seed, j] as an array: what a list of them becomes, a quarter faster (a plan counts 50,000)
        rng = np.random.default_rng(np.array([self.seed, j], dtype=np.uint32) if self.seed < 2**32 else [self.seed, j])
        return {name: _draw(rng, axis) for name, axis in self.axes.items()}


def _finite_size(axes: Mapping[str, Sequence[Any] | Distribution]) -> int | None:
    """How many configs the axes give when each is a list or an int range; None when one is continuous."""
    size = 1
    for axis in axes.values():
        if not isinstance(axis, Distribution):
            size *= len(axis)
        elif axis.kind == "int":
            size *= int(axis.high) - int(axis.low) + 1
        else:
            return None
    return size


def _draw(rng: np.random.Generator, axis: Sequence[Any] | Distribution) -> Any:
    if not isinstance(axis, Distribution):
        return axis[int(rng.integers(len(axis)))]
    if axis.kind == "int":
        return int(rng.integers(int(axis.low), int(axis.high) + 1))
    if axis.kind == "loguniform":
        value = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high)))
    else:
        value = rng.uniform(axis.low, axis.high)
    return float(f"{value:.6g}")  # readable in logs and CSV, still fine-grained


class AutoSearch(RandomSearch):
    """Random search whose `lr` values are spread evenly over the log range, ends included.

    Evenly spread values show where the best learning rate lies in the range; when it sits
    at an end, `hpt auto` moves the range that way for the next round.
    """

    def __init__(self, axes: dict[str, Sequence[Any] | Distribution], seed: int, max_trials: int) -> None:
        super().__init__(axes, seed, max_trials)
        self._order = _Permutation(max_trials, seed)

    def _get(self, i: int) -> dict[str, Any]:
        point = super()._get(i)
        lr = self.axes.get("lr")
        if isinstance(lr, Distribution) and lr.kind == "loguniform":
            n = len(self)
            position = self._order[i] / (n - 1) if n > 1 else 0.5
            point["lr"] = float(f"{lr.low * (lr.high / lr.low) ** position:.6g}")
        return point


MEMO_SIZES = (20_000, 1_000_000)
"""Plans of these many trials (smallest, largest) keep their ids in the local cache (:meth:`TrialPlan.trial_ids`):
a smaller plan draws them in a moment; a larger one would keep a file of over 13 MB (a run counts a plan ahead only
up to :data:`hpt.scheduling.plan.COUNT_LIMIT` trials; hpt auto walks each round's)."""
MEMO_CHECKS = 16
"""Ids of the cache checked against trials built the usual way, spread over the plan."""


class TrialPlan(Sequence[Trial]):
    """The trials of a spec: each config once per period and seed, config-major (a config's trials together).

    With ``training.repeats: K`` each config trains K seeds in every period: trial i is
    config ``i // (P*K)``, repeat ``(i // P) % K``, period ``i % P`` (P periods), so a config
    has every period with its first seed before its second seed starts. Lazy like its
    configs: the i-th trial is built when asked for. `repeats` is True unless the configs are a
    grid's (a search's own list may repeat a config), so a walker must skip ids it has seen;
    `seeds` is K.
    """

    def __init__(self, spec: Spec, configs: Sequence[dict[str, Any]], tags: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.configs = configs
        self.periods = spec.periods
        self.fidelity = spec.fidelity
        self.tags = dict(tags or {})
        self.repeats = not isinstance(configs, GridSearch)
        self.seeds = spec.repeats
        self._base = spec.base_params
        self._tuned = tuple(spec.parameters)
        self._identity = data_identity(spec)
        self._baseline_keys: dict[tuple[str, ...], str] = {}
        # the static series features' inputs are data too; the frame without them keeps other specs' fingerprints
        frame = spec.data.read().frame if spec.data.series_features else \
            load_frame(spec.data.path, spec.data.time_column, spec.data.columns, spec.data.options)
        self._data = {p: period_fingerprint(frame, p) for p in self.periods}

    def __len__(self) -> int:
        return len(self.configs) * len(self.periods) * self.seeds

    @overload
    def __getitem__(self, i: int) -> Trial: ...
    @overload
    def __getitem__(self, i: slice) -> list[Trial]: ...

    def __getitem__(self, i: int | slice) -> Trial | list[Trial]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        c, rest = divmod(i, len(self.periods) * self.seeds)
        repeat, p = divmod(rest, len(self.periods))
        return self.trial(self.configs[c], self.periods[p], repeat)

    def trial(self, config: Mapping[str, Any], period: Period, repeat: int = 0) -> Trial:
        """The trial of one config (its tuned values), period and repeat: what any scheduler hands a backend."""
        params = {**self._base, **config}
        cid = config_id(self.spec, params, self._identity)  # the same config in quick and full runs
        if self.fidelity.max_epochs is not None:
            params["epochs"] = self.fidelity.epochs(int(params["epochs"]))
        seed = trial_seed(int(params["seed"]), period.label, repeat)
        return Trial(
            trial_id=trial_id(cid, period.label, self.fidelity, self._data[period], seed=seed),
            config_id=cid,
            architecture=self.spec.architecture,
            params=params,  # params["seed"] stays the config's seed; the trial trains with `seed`
            tuned=self._tuned,
            period=period,
            seed=seed,
            fidelity=self.fidelity,
            tags={**self.tags, BASELINE_KEY: self._baseline_key(params)},
        )

    def _baseline_key(self, params: Mapping[str, Any]) -> str:
        """:func:`baseline_key` of a trial's params, once per window setting."""
        setting = tuple(str(params[k]) for k in WINDOW_KEYS)
        key = self._baseline_keys.get(setting)
        if key is None:
            key = self._baseline_keys[setting] = baseline_key(self.spec, params, self._identity)
        return key

    def same_trial(self, trial: Trial, tags: Mapping[str, Any] | None = None) -> Trial:
        """`trial` (a trial of this spec: one config, period and training seed) at this plan's fidelity: its own id."""
        params = dict(trial.params)
        if self.fidelity.max_epochs is not None:
            params["epochs"] = self.fidelity.epochs(int(params["epochs"]))
        return dataclasses.replace(
            trial, trial_id=trial_id(trial.config_id, trial.period.label, self.fidelity, self._data[trial.period],
                                     seed=trial.seed),
            params=params, fidelity=self.fidelity, tags={**trial.tags, **(tags or {})})

    def __iter__(self) -> Iterator[Trial]:
        return (self[k] for k in range(len(self)))

    def trial_ids(self) -> Iterator[str]:
        """Every trial's id in plan order, without building the trials (cheaper than iterating).

        A plan of :data:`MEMO_SIZES` trials keeps its ids in the local cache (:mod:`hpt.memo`) under
        :meth:`memo_key`: a run of an unchanged spec reads them instead of drawing every config again,
        once some of them (:data:`MEMO_CHECKS`, the first and last among them) are the ids of trials built
        the usual way.
        """
        key = self.memo_key() if MEMO_SIZES[0] <= len(self) <= MEMO_SIZES[1] else None
        if key is None:
            return self._drawn_ids()
        ids = load_ids(key, len(self))
        if ids is None or not self._ids_hold(ids):
            ids = list(self._drawn_ids())
            save_ids(key, ids)
        return iter(ids)

    def memo_key(self) -> str | None:
        """The digest of everything the plan's ids follow from (None for configs other than hpt's searches):
        the configs' search, axes (in order: random draws follow it), seed and count; the architecture, the
        data's identity and base parameters; each period and its data's fingerprint; the fidelity; the seeds
        per config; and the versions of hpt and numpy (whose generators draw the configs)."""
        space = getattr(self.configs, "memo_key", None)
        if space is None:
            return None
        return hashlib.sha256(_CANONICAL.encode({
            "configs": space(), "architecture": self.spec.architecture, "data": self._identity, "base": self._base,
            "periods": [[p.label, self._data[p]] for p in self.periods], "fidelity": self.fidelity.name,
            "seeds": self.seeds, "hpt": __version__, "numpy": np.__version__}).encode()).hexdigest()[:32]

    def _ids_hold(self, ids: Sequence[str]) -> bool:
        """Whether `ids` are the ids of this plan's trials where checked: the first, the last and some between."""
        n = len(self)
        return all(ids[i] == self[i].trial_id for i in sorted({0, n - 1, *range(0, n, max(1, n // MEMO_CHECKS))}))

    def _drawn_ids(self) -> Iterator[str]:
        """:meth:`trial_ids`, each config drawn and each id hashed."""
        # config_id and trial_id with the text around the config's parameters and id encoded once
        config_digest = _Digests(_config_key(self.spec, _Digests.SLOT, self._identity))
        trial_digests: dict[tuple[int, str, int], _Digests] = {}  # a config's seed is mostly the spec's: one each
        base = id_params(self._base)  # the canonical text sorts the keys: a dict's order is no part of an id
        for config in self.configs:
            tuned = id_params(config)
            cid = config_digest({**{k: v for k, v in base.items() if k not in config}, **tuned}
                                if config.keys() & base.keys() else {**base, **tuned})
            for repeat in range(self.seeds):
                for period in self.periods:
                    key = (int(config.get("seed", self._base["seed"])), period.label, repeat)
                    trial_digest = trial_digests.get(key)
                    if trial_digest is None:
                        trial_digest = trial_digests[key] = _Digests(_trial_key(
                            _Digests.SLOT, period.label, self.fidelity.name, self._data[period], trial_seed(*key)))
                    yield trial_digest(cid)


def expand(spec: Spec, tags: dict[str, Any] | None = None) -> TrialPlan:
    """The spec's trials, lazily: grid, random or auto configs crossed with the periods and seeds.

    `tags` become extra columns of every row (e.g. the round of `hpt auto`).
    """
    s = spec.search
    configs: Sequence[dict[str, Any]]
    if s.strategy == "auto":
        configs = AutoSearch(dict(spec.parameters), seed=s.seed, max_trials=s.max_trials or 1)
    elif s.strategy == "random":
        configs = RandomSearch(dict(spec.parameters), seed=s.seed, max_trials=s.max_trials or 1)
    else:
        axes = {k: v for k, v in spec.parameters.items() if not isinstance(v, Distribution)}
        configs = GridSearch(axes, seed=s.seed, max_trials=s.max_trials)
    return TrialPlan(spec, configs, tags)
