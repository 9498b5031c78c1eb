"""What this machine offers trials: slots (a share of the CPUs or a GPU, with its torch threads), the CPUs this
process may use (affinity and the container's quota), the GPUs it sees (without importing torch when it has none),
and ``--trials-per-gpu auto``'s packing after the first trial. The local pool runs its workers on these slots;
the Ray backend packs GPUs the same way.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hpt.errors import InputError
from hpt.trial import Status, TrialResult

__all__ = ["AutoPacker", "Slot", "choose_slots", "cpu_slots", "gpu_slots", "requested_gpus", "usable_cpus", "visible_gpus"]


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: a device string as the worker sees it, and its environment."""

    name: str  # for logs: "cpu-0", "gpu-2"
    device: str  # "cpu" or "cuda:0" (the worker sees only its own GPU)
    env: tuple[tuple[str, str], ...] = ()
    threads: int = 1

    @property
    def gpu(self) -> str | None:
        """The GPU this slot is pinned to (as the parent process numbers it), or None."""
        return dict(self.env).get("CUDA_VISIBLE_DEVICES") or None


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (or 0..n-1).

    On Linux without a GPU device node (NVIDIA's /dev/nvidiaN, WSL's /dev/dxg, AMD's /dev/kfd) there is none, and
    torch is not imported to say so (about 1.5 s a run that has nothing to train would spend).
    """
    if sys.platform.startswith("linux") and not _gpu_device_nodes():
        return []
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:
        return []
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


def _gpu_device_nodes() -> bool:
    """Whether this Linux machine has a GPU device node that CUDA (or ROCm) would open."""
    return any(os.path.exists(node) for node in ("/dev/kfd", "/dev/dxg")) or \
        any(re.fullmatch(r"nvidia\d+", name) for name in _listdir("/dev"))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def usable_cpus(affinity: set[int] | None = None, read: Callable[[str], str | None] = _read_text) -> int:
    """The CPUs this process may use: those its affinity allows (``taskset``, a cpuset), capped by
    its cgroup's CPU quota (a container's ``--cpus``: cgroup v2 ``cpu.max``, v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up; at least 1.

    ``os.cpu_count()`` counts the host's CPUs, all 64 of them in a container given 4.
    `affinity` and `read` (a path's text, None when missing) are for tests.
    """
    if affinity is None:
        affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cpus = max(1, len(affinity))
    own = next((line.split(":", 2)[2].strip() for line in (read("/proc/self/cgroup") or "").splitlines()
                if line.startswith("0::")), "/")  # cgroup v2: this process's group, e.g. /user.slice/x.scope
    for path in dict.fromkeys([f"/sys/fs/cgroup{own.rstrip('/')}/cpu.max", "/sys/fs/cgroup/cpu.max"]):
        text = read(path)  # "max 100000" (no quota) or "400000 100000" (4 CPUs)
        if text:
            quota, _, period = text.strip().partition(" ")
            return min(cpus, _quota_cpus(quota, period))
    for folder in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):  # cgroup v1; -1: no quota
        us = read(f"{folder}/cpu.cfs_quota_us")
        if us:
            return min(cpus, _quota_cpus(us.strip(), (read(f"{folder}/cpu.cfs_period_us") or "").strip()))
    return cpus


def _quota_cpus(quota: str, period: str) -> int:
    """CPUs a quota of `quota` microseconds per `period` allows (a huge number when there is none)."""
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return 1 << 30
    return -(-q // p) if q > 0 and p > 0 else 1 << 30


def gpu_slots(gpus: list[str], per_gpu: int = 1, first: int = 0, threads: int = 2) -> list[Slot]:
    """`per_gpu` slots on each GPU; each worker sees only its own GPU, as cuda:0, and has `threads`
    torch threads for its CPU-side work."""
    return [Slot(f"gpu{g}" + (f".{k}" if k else ""), "cuda:0", (("CUDA_VISIBLE_DEVICES", g),), threads)
            for g in gpus for k in range(first, first + per_gpu)]


def cpu_slots(workers: int | None = None, threads: int = 1, cpus: int | None = None) -> list[Slot]:
    """`workers` CPU slots of `threads` torch threads each; by default as many as fit the usable CPUs.

    One thread is the default even for one worker: small models gain nothing from a second
    thread and lose a lot when another process wants the core (measured on 2 cores: an mlp
    trial 17 ms with 1 thread, 330 ms with 2).
    """
    workers = workers or max(1, (cpus or usable_cpus()) // threads)
    return [Slot(f"cpu-{i}", "cpu", (("CUDA_VISIBLE_DEVICES", ""),), threads) for i in range(workers)]


def requested_gpus(option: tuple[str, ...] | None, resources: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, str]:
    """The GPUs a run is told to use (--gpus, else the spec's resources.gpus; None: all), and which of the two
    said so, for the messages."""
    if option:
        return option, "--gpus"
    spec = tuple(str(g) for g in resources.get("gpus", ()))
    return spec or None, "resources.gpus"


def choose_slots(device: str, workers: int | None, gpus: list[str] | None = None, only: tuple[str, ...] | None = None,
                 per_gpu: int = 1, threads: int | None = None, only_from: str = "--gpus") -> list[Slot]:
    """Worker slots: `per_gpu` on each GPU in use, or `workers` CPU workers (default: usable CPUs / `threads`).

    `threads`: torch threads per worker [default: 1 on the CPU, 2 beside a GPU]. `gpus` is the
    visible GPU list (found when None; tests inject it); `only` narrows it (`only_from` names where it came from:
    :func:`requested_gpus`).
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f'--device must be auto, cpu or cuda, got "{device}"')
    found = (visible_gpus() if gpus is None else gpus) if device != "cpu" else []
    if only:
        if not found:
            raise InputError(f"{only_from} {','.join(only)}: no CUDA GPU is visible to this process")
        missing = [g for g in only if g not in found]
        if missing:
            raise InputError(f"{only_from}: GPU {', '.join(missing)} is not visible; visible: {', '.join(found)}")
        found = [g for g in found if g in only]
    if device == "cuda" and not found:
        raise InputError("--device cuda: no CUDA GPU is visible to this process")
    if found:
        return gpu_slots(found, per_gpu, threads=threads or 2)
    return cpu_slots(workers, threads or 1)


class AutoPacker:
    """``--trials-per-gpu auto``: after the first finished trial, fill each GPU with as many
    trials as its memory holds with a safety margin (also bounded by CPU cores)."""

    CONTEXT_MB = 600.0  # a CUDA context and its kernels, not counted by the caching allocator
    MARGIN = 0.8  # of the GPU's memory
    CAP = 16

    def __init__(self, gpus: list[str], say: Callable[[str], None], cpus: int | None = None, threads: int = 2) -> None:
        self.gpus = gpus
        self.say = say
        self.threads = threads  # torch threads of each new worker, as those of the first ones
        self.cpus = cpus or usable_cpus()
        self.per_gpu: int | None = None

    def __call__(self, result: TrialResult) -> list[Slot]:
        reserved = result.metrics.get("gpu_mem_reserved_mb")
        total = result.metrics.get("gpu_mem_total_mb")
        if self.per_gpu is not None or result.status is not Status.OK or not reserved or not total:
            return []
        by_memory = int(total * self.MARGIN // (reserved + self.CONTEXT_MB))
        by_cpu = max(1, self.cpus // len(self.gpus))
        self.per_gpu = max(1, min(by_memory, by_cpu, self.CAP))
        limit = "GPU memory" if self.per_gpu == by_memory else "CPU cores" if self.per_gpu == by_cpu else "the cap"
        self.say(f"--trials-per-gpu auto: a trial peaked at {reserved:.0f} MB of {total / 1024:.0f} GB; "
                 f"packing {self.per_gpu} trials per GPU (limited by {limit})")
        return gpu_slots(self.gpus, self.per_gpu - 1, first=1, threads=self.threads)
