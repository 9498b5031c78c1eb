"""Which backend a run uses: this machine's worker pool by default, or a Ray cluster."""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd

from hpt.backends import Backend
from hpt.backends.local import LocalBackend
from hpt.backends.slots import AutoPacker, Slot, choose_slots, requested_gpus
from hpt.errors import InputError
from hpt.runner.options import RunOptions
from hpt.spec import Spec


def local_backend(spec: Spec, frame: pd.DataFrame, options: RunOptions, say: Any,
                  slots: list[Slot] | None = None) -> LocalBackend:
    """The worker pool of this machine, as the options and the spec's resources ask; `frame` is the checked data."""
    resources = spec.resources
    per_gpu = options.trials_per_gpu or resources.get("trials_per_gpu") or 1
    only, only_from = requested_gpus(options.gpus, resources)
    if slots is None:
        slots = choose_slots(options.device, options.workers, only=only, per_gpu=1 if per_gpu == "auto" else int(per_gpu),
                             threads=options.threads or resources.get("threads"), only_from=only_from)
    gpus = list(dict.fromkeys(s.gpu for s in slots if s.gpu is not None))
    if not gpus:  # settings for GPUs, on the CPU: said, not silently passed over
        amp = str(spec.base_params.get("amp", "off"))
        tuned = spec.parameters.get("amp")
        amps = [f"training.amp {amp}"] if amp != "off" else []
        if isinstance(tuned, (list, tuple)) and any(v != "off" for v in tuned):  # tuned: configs that train alike
            amps = [f"parameters.amp {json.dumps(list(tuned))}"]
        unused = ([f"--trials-per-gpu {per_gpu}" if options.trials_per_gpu else f"resources.trials_per_gpu {per_gpu}"]
                  if per_gpu != 1 else []) + amps
        if unused:
            say(f"note: {' and '.join(unused)} {'do' if len(unused) > 1 else 'does'} nothing on the CPU (trials train "
                "in fp32, --workers of them at a time)")
    packer = AutoPacker(gpus, say, threads=slots[0].threads) if gpus and per_gpu == "auto" else None
    return LocalBackend(frame, slots, spec.objective, grow=packer)


def ray_backend(spec: Spec, frame: pd.DataFrame, options: RunOptions, say: Any) -> Backend:
    """Trials as Ray tasks on the cluster at --ray-address or $RAY_ADDRESS, else on a local Ray instance."""
    from hpt.backends.ray import RayBackend, connect, import_ray

    if options.gpus:
        raise InputError(f"--gpus {','.join(options.gpus)} picks GPUs of this machine; on Ray each node offers the "
                         "GPUs its `ray start` registered (CUDA_VISIBLE_DEVICES or --num-gpus there)")
    resources = spec.resources
    if resources.get("gpus"):
        say("resources.gpus picks GPUs of this machine for the local pool; on Ray it is ignored")
    address = options.ray_address or os.environ.get("RAY_ADDRESS") or None
    per_gpu = options.trials_per_gpu or resources.get("trials_per_gpu") or 1
    owned = connect(address)
    try:
        return RayBackend(frame, spec.objective, device=options.device, max_trials=options.workers, per_gpu=per_gpu,
                          address=address or "", say=say, shutdown=owned,
                          threads=options.threads or resources.get("threads"))
    except BaseException:
        if owned:
            import_ray().shutdown()
        raise


def make_backend(spec: Spec, frame: pd.DataFrame, options: RunOptions, say: Any,
                 slots: list[Slot] | None = None) -> Backend:
    """The backend the options (else the spec's resources.executor) name: the local pool by default, or Ray.

    `frame` is the spec's data as :func:`hpt.spec.check_data` returned it (read and checked once per run).
    """
    executor = options.executor or spec.resources.get("executor") or "local"
    if executor == "ray":
        return ray_backend(spec, frame, options, say)
    if options.ray_address:
        raise InputError("--ray-address needs --executor ray (or \"resources\": {\"executor\": \"ray\"} in the spec)")
    return local_backend(spec, frame, options, say, slots)
