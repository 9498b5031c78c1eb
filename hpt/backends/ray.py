"""The Ray backend: each trial is one Ray task; Ray picks the node.

How it works, and why:

- **Data once.** The data frame goes into Ray's object store once per run (``ray.put``);
  each task gets a reference to it. A worker process keeps the frame and its
  :class:`~hpt.train.TrainContext` (with the windows of each period) between the trials
  it runs, so a CPU worker that Ray reuses pays for neither twice.
- **Resources.** A trial asks Ray for 1 CPU and one torch thread, or ``1/N`` of a GPU
  (``--trials-per-gpu N``; ``auto`` measures the first trial and packs as the local pool
  does) and 1 CPU. The backend keeps at most as many trials in flight as the cluster's
  resources hold (re-read every few seconds, so nodes that join are used and nodes that
  die stop counting), or ``--workers`` when that is lower; Ray decides where each one runs.
  Ray starts a fresh worker process for every GPU task (its default: a reused process
  could keep another task's GPU), so a GPU trial pays torch's import and a CUDA context.
- **Progress and stops** travel through one small actor per run, the *hub*, placed on the
  driver's node. After every epoch the task sends ``hub.report(trial, epoch, metrics)``,
  whose answer is the reason to stop once the scheduler has asked for one: the progress
  goes up and the stop comes down on the same call. The task does not wait for each
  answer (a round trip costs more than a tiny epoch); it looks at the answers that have
  arrived by the end of each epoch, so a stop is obeyed one or two epochs after it reaches
  the hub (the local pool: at the end of the next epoch). The driver drains the hub on
  every poll (``hub.take``) and hands a stop to it (``hub.stop``). A task waits for all its
  reports before it returns, so a trial's last Progress always comes before its Finished
  event.
- **Faults.** Ray's retries are off (``max_retries=0``): a task whose worker or node dies,
  or that Ray kills for lack of memory, comes back as a ``failed`` result with Ray's cause,
  and the run goes on; running the same command again is the retry.
- **Closing** (end of the run, Ctrl-C, SIGTERM) cancels the running tasks (their worker
  processes are killed) and returns them as ``interrupted`` results. A Ray instance that
  this backend started (no address given) is shut down with it.

Connecting (an address checked in seconds, a local instance started) is :mod:`hpt.backends.ray_connect`.
Ray is an optional extra (``pip install 'hpt[ray]'``) and is imported only there and here.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hpt.backends.ray_connect import CONNECT_TIMEOUT, connect, import_ray, one_line
from hpt.errors import HptError, InputError
from hpt.progress import plural
from hpt.trial import Event, Finished, Progress, Started, Status, Trial, TrialResult, utcnow

__all__ = ["CONNECT_TIMEOUT", "RayBackend", "capacity", "connect", "import_ray", "trial_request"]

RESOURCES_TTL = 2.0  # seconds between reads of the cluster's resources

log = logging.getLogger("hpt")


def _user_paths() -> list[str]:
    """The driver's import folders that are not the Python installation's: the working folder,
    PYTHONPATH, the spec's folder of a builder module. Tasks add those that exist on their node."""
    roots = tuple(os.path.realpath(p) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})
    return [p for p in sys.path if p and os.path.isdir(p) and not os.path.realpath(p).startswith(roots)]


# --- what runs on the nodes --------------------------------------------------------------

_CONTEXT: dict[str, Any] = {}  # per worker process: one run's TrainContext, kept between its trials


def _train(box: list[Any], trial: Trial, hub: Any, objective: str, threads: int, paths: list[str]) -> TrialResult:
    """Train one trial in a Ray worker, reporting each epoch to the hub and obeying its answer."""
    import ray
    import torch

    from hpt.train import TrainContext

    sys.path.extend(p for p in paths if p not in sys.path and os.path.isdir(p))
    torch.set_num_threads(threads)
    gpus = ray.get_gpu_ids()
    node = ray.get_runtime_context().get_node_id()
    where = f"{socket.gethostname()}/{node[:8]}/" + (f"gpu{gpus[0]}" if gpus else "cpu")
    ray.get(hub.started.remote(trial.trial_id, where))  # waited for: a trial whose worker dies still names its node
    key = f"{box[0].hex()} {where}"
    context = _CONTEXT.get(key)
    if context is None:
        _CONTEXT.clear()  # another run's data
        context = _CONTEXT[key] = TrainContext(ray.get(box[0]), "cuda:0" if gpus else "cpu", objective, slot=where)

    # Reports are not waited for one by one (a round trip per epoch would cost more than a
    # tiny epoch): each epoch sends its report, and takes the stop from the answers that
    # have come back by then, so a stop is obeyed one or two epochs after the hub has it.
    pending: list[Any] = []
    stop: list[str] = []

    def on_epoch(epoch: int, metrics: dict[str, float]) -> str | None:
        pending.append(hub.report.remote(trial.trial_id, epoch, metrics))
        answered, waiting = ray.wait(pending, num_returns=len(pending), timeout=0, fetch_local=True)
        stop.extend(reason for reason in ray.get(answered) if reason)
        pending[:] = waiting
        return stop[0] if stop else None

    try:
        return context.run(trial, on_epoch)
    finally:
        ray.get(pending)  # every report is at the hub before the result: a trial's progress comes before its end


class _Hub:
    """One per run, on the driver's node: progress from the tasks, stops to them."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, ...]] = []
        self.stops: dict[str, str] = {}

    def started(self, trial_id: str, where: str) -> None:
        self.messages.append(("started", trial_id, where))

    def report(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> str | None:
        self.messages.append(("progress", trial_id, epoch, metrics))
        return self.stops.get(trial_id)

    def stop(self, trial_id: str, reason: str) -> None:
        self.stops[trial_id] = reason

    def take(self, ended: list[str]) -> list[tuple[Any, ...]]:
        """The messages since the last take; forgets the stops of the `ended` trials."""
        for trial_id in ended:
            self.stops.pop(trial_id, None)
        out, self.messages = self.messages, []
        return out


# --- the driver's side ----------------------------------------------------------------------


def trial_request(use_gpu: bool, per_gpu: int, threads: int = 1) -> tuple[float, float]:
    """(num_cpus, num_gpus) that one trial asks Ray for: 1 CPU and 1/per_gpu of a GPU, or `threads` CPUs."""
    return (1.0, round(1.0 / per_gpu, 4)) if use_gpu else (float(threads), 0.0)


def capacity(cpus: float, gpus: float, request: tuple[float, float], per_gpu: int, max_trials: int | None) -> int:
    """How many trials asking `request` a cluster of `cpus` and `gpus` holds at once, at most
    `max_trials`; at least 1 (a cluster that lost its nodes queues one until they come back)."""
    n = int(cpus // request[0] + 1e-9)
    if request[1]:
        n = min(n, int(gpus * per_gpu + 1e-9))
    if max_trials:
        n = min(n, max_trials)
    return max(n, 1)


def _near_driver() -> dict[str, Any]:
    """Actor options that place it on the driver's node when the driver is on one (not so with ray://)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        here = ray.get_runtime_context().get_node_id()
    except Exception:
        return {}
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=True)} if here else {}


@dataclass
class _Running:
    trial: Trial
    ref: Any  # the task's ObjectRef
    started_at: str
    where: str | None = None  # set when the task tells the hub it started


class RayBackend:
    """Trains trials as Ray tasks on the cluster this process is connected to (see :func:`connect`)."""

    def __init__(self, frame: pd.DataFrame, objective: str = "val_mse", device: str = "auto",
                 max_trials: int | None = None, per_gpu: int | str = 1, address: str = "",
                 say: Callable[[str], None] | None = None, shutdown: bool = False, threads: int | None = None) -> None:
        """`max_trials` caps the trials in flight (default: as many as the cluster holds);
        `threads`: torch threads of each trial (default 1; on the CPU a trial asks Ray for as many CPUs);
        `shutdown`: disconnect from Ray (and stop a local instance) on :meth:`close`."""
        if device not in ("auto", "cpu", "cuda"):
            raise InputError(f'--device must be auto, cpu or cuda, got "{device}"')
        self._ray = ray = import_ray()
        self.objective = objective
        self._address = address
        self.address = address or "a local Ray instance"
        self.max_trials = max_trials
        self.say = say or (lambda text: None)
        self._shutdown = shutdown
        self._checked = -RESOURCES_TTL
        self._cpus = self._gpus = 0.0
        self._resources()
        if device == "cuda" and not self._gpus:
            raise InputError(f"--device cuda: the Ray cluster at {self.address} has no GPU")
        self.use_gpu = device != "cpu" and self._gpus > 0
        if not self._cpus:
            raise InputError(f"the Ray cluster at {self.address} has no CPU to run trials on")
        self.per_gpu = 1 if per_gpu == "auto" else int(per_gpu)
        self._packer: Any = None
        if self.use_gpu and per_gpu == "auto":
            from hpt.backends.slots import AutoPacker

            self._packer = AutoPacker([str(i) for i in range(int(self._gpus))], self.say, cpus=int(self._cpus))
        self._threads = threads or 1
        if not self.use_gpu:  # a CPU trial asks one node for a CPU per thread: one no node has would wait for good
            largest = max((float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")),
                          default=0.0)
            if largest and self._threads > largest:
                raise InputError(f"--threads {self._threads}: no node of the Ray cluster at {self.address} has "
                                 f"{self._threads} CPUs (the largest has {largest:g}), and a trial on the CPU asks one "
                                 f"node for a CPU per thread: give --threads {int(largest)} or fewer")
        self._paths = _user_paths()
        self._frame = [ray.put(frame)]  # in a list: tasks get the reference and keep what it holds
        self._hub = ray.remote(num_cpus=0, max_restarts=0, max_task_retries=0)(_Hub).options(**_near_driver()).remote()
        task = ray.remote(max_retries=0, retry_exceptions=False, **({"num_gpus": 1} if self.use_gpu else {}))
        self._task = task(_train)
        self._running: dict[str, _Running] = {}
        self._ended: list[str] = []
        self._events: list[Event] = []

    def _resources(self) -> None:
        now = time.monotonic()
        if now - self._checked >= RESOURCES_TTL:
            total = self._ray.cluster_resources()
            self._cpus, self._gpus = float(total.get("CPU", 0.0)), float(total.get("GPU", 0.0))
            self._checked = now

    def _request(self) -> tuple[float, float]:
        """(num_cpus, num_gpus) of one trial."""
        return trial_request(self.use_gpu, self.per_gpu, self._threads)

    def capacity(self) -> int:
        """How many trials the cluster holds at once now (at least 1: a cluster that lost
        its nodes queues one trial until they come back)."""
        self._resources()
        return capacity(self._cpus, self._gpus, self._request(), self.per_gpu, self.max_trials)

    def describe(self) -> str:
        nodes = [n for n in self._ray.nodes() if n.get("Alive")]
        cluster = f"{plural(len(nodes), 'node')}, {self._cpus:g} CPUs, " + \
            (plural(int(self._gpus), "GPU") if self._gpus else "no GPU")
        cpus, gpus = self._request()
        if self.use_gpu:
            share = "trials per GPU: auto" if self._packer is not None else plural(self.per_gpu, "trial") + " per GPU"
            each = f"{share}, {cpus:g} CPU each"
        else:
            each = f"{cpus:g} CPU{'' if cpus == 1 else 's'} and {plural(self._threads, 'torch thread')} each"
        where = f"the Ray cluster at {self.address}" if self._address else self.address
        return f"{where} ({cluster}): up to {plural(self.capacity(), 'trial')} at a time, {each}"

    def slot_names(self) -> Sequence[str]:
        """The cluster's nodes, ``host/node id``."""
        return [f"{n.get('NodeManagerHostname', '?')}/{n['NodeID'][:8]}" for n in self._ray.nodes() if n.get("Alive")]

    def free(self) -> int:
        return max(0, self.capacity() - len(self._running))

    def submit(self, trial: Trial) -> None:
        if trial.trial_id in self._running:
            raise RuntimeError(f"trial {trial.trial_id} is already running")
        cpus, gpus = self._request()
        options: dict[str, Any] = {"num_cpus": cpus, "name": f"hpt {trial.trial_id}"}
        if self.use_gpu:
            options["num_gpus"] = gpus
        ref = self._task.options(**options).remote(self._frame, trial, self._hub, self.objective, self._threads,
                                                   self._paths)
        self._running[trial.trial_id] = _Running(trial, ref, utcnow())

    def stop(self, trial_id: str, reason: str) -> None:
        if trial_id in self._running:
            self._hub.stop.remote(trial_id, reason)

    def poll(self, timeout: float) -> list[Event]:
        ray = self._ray
        refs = [r.ref for r in self._running.values()]
        if refs and not self._events:
            ray.wait(refs, num_returns=1, timeout=timeout, fetch_local=False)
        ready = set(ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)[0]) if refs else set()
        events, self._events = self._events, []
        # Drained after the ready tasks were found: each reported its last epoch before it returned.
        ended, self._ended = self._ended, []
        try:
            messages = ray.get(self._hub.take.remote(ended))
        except ray.exceptions.RayActorError as e:  # its process was killed (out of memory?) or its node died
            raise HptError(f"the Ray actor that relays this run's progress and stops died ({one_line(e, 200)}); "
                           "finished trials are kept: run the same command again to train the rest") from None
        for message in messages:
            r = self._running.get(message[1])
            if r is None:
                continue
            if message[0] == "started":
                r.where = message[2]
                r.started_at = utcnow()
                events.append(Started(r.trial, r.where))
            else:
                events.append(Progress(r.trial, message[2], message[3]))
        for trial_id, r in list(self._running.items()):
            if r.ref not in ready:
                continue
            del self._running[trial_id]
            self._ended.append(trial_id)
            if r.where is None:
                events.append(Started(r.trial, "ray"))
            result = self._result(r)
            events.append(Finished(result))
            if self._packer is not None and self._packer.per_gpu is None:
                self._packer(result)
                if self._packer.per_gpu is not None:
                    self.per_gpu = self._packer.per_gpu
        return events

    def _result(self, r: _Running) -> TrialResult:
        ray = self._ray
        try:
            return ray.get(r.ref)  # type: ignore[no-any-return]
        except ray.exceptions.RayError as e:
            on = f" on {r.where}" if r.where else ""
            return TrialResult(r.trial, Status.FAILED, error=f"Ray task{on} failed: {one_line(e)}",
                               started_at=r.started_at, finished_at=utcnow(), device=r.where or "ray")

    def close(self) -> list[TrialResult]:
        ray = self._ray
        interrupted = []
        for r in self._running.values():
            try:
                ray.cancel(r.ref, force=True)
            except Exception as e:  # an ended task or a lost connection: nothing more to stop from here
                log.debug("could not cancel trial %s: %s", r.trial.trial_id, e)
            interrupted.append(TrialResult(r.trial, Status.INTERRUPTED, error="run interrupted before the trial "
                                           "finished", started_at=r.started_at, finished_at=utcnow(),
                                           device=r.where or "ray"))
        self._running.clear()
        try:
            ray.kill(self._hub)
        except Exception as e:
            log.debug("could not stop the hub actor: %s", e)
        if self._shutdown:
            ray.shutdown()
            self._shutdown = False
        return interrupted
