"""A final's training: one trial per model (:class:`hpt.trial.Refit`), run by the runner's loop on
the backend ``hpt run`` would use (this machine's worker pool or a Ray cluster), under claims.

Each trial trains the chosen config for its fixed epochs on the training span and scores the
hold-out in its worker; its model file comes back in the result. The trials' ids are derived
from what they train, so that two finals of one config at once claim the same trials and
only one of them trains them; a signal stops them as it stops a run's trials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpt.backends import Backend
from hpt.backends.slots import Slot, choose_slots, requested_gpus
from hpt.claims import Claims, Holder
from hpt.final.prepare import FinalRequest, Setup
from hpt.progress import Reporter, format_duration, format_value, plural
from hpt.runner import ClaimGate, RunOptions, drive, make_backend
from hpt.scheduling import DONE, Scheduler, Suggestion
from hpt.search import trial_seed
from hpt.store import ResultStore
from hpt.trial import Refit, Status, Trial, TrialResult

__all__ = ["Training", "final_trials", "train"]


def _weights(model: Any) -> bytes:
    """The weights of --from-model's model, to start fine-tuning from."""
    import torch

    buf = io.BytesIO()
    torch.save(model.module.state_dict(), buf)
    return buf.getvalue()


def final_trials(s: Setup, final_id: str) -> list[Trial]:
    """The final's trials, one per model (:attr:`Setup.modes`), the first of them model.pt's."""
    c = s.choice
    params = {**c.params, "epochs": c.epochs}
    info = {"kind": "final", "final_id": final_id, "config_id": c.config_id,
            "train": [s.train.start_text, s.train.end_text],
            "holdout": [s.holdout.period.start_text, s.holdout.period.end_text], "epochs": c.epochs,
            "from_model": s.from_model or ""}
    what = json.dumps([c.config_id, c.architecture, params, s.window.label, s.holdout.start.isoformat(),
                       s.from_model or "", s.modes], sort_keys=True, default=str)
    trials = []
    for mode in s.modes:
        refit = Refit(split=s.holdout, start_from=_weights(s.start_model) if mode == "fine-tune" else None,
                      model_id=final_id, model_period=(s.train.start_text, s.holdout.period.start_text),
                      info={**info, "mode": mode})
        digest = hashlib.sha256(f"{what} {mode}".encode()).hexdigest()[:12]
        trials.append(Trial(f"final-{c.config_id[:12]}-{mode}-{digest}", c.config_id, c.architecture, params,
                            tuple(k for k in c.tuned if k in params), s.window,
                            trial_seed(int(c.params.get("seed", 0)), f"final:{s.train.label}"),
                            tags={"mode": mode}, refit=refit))
    return trials


class _Listed(Scheduler):
    """The given trials, each once."""

    exact = True

    def __init__(self, trials: list[Trial]) -> None:
        self.todo = list(trials)

    def describe(self) -> str:
        return plural(len(self.todo), "model")

    def suggest(self) -> Trial | Suggestion:
        return self.todo.pop(0) if self.todo else DONE

    def remaining(self) -> int:
        return len(self.todo)


class _Say(Reporter):
    """The runner's progress as the final's stage lines: one per trained model."""

    def __init__(self, say: Callable[[str], None]) -> None:
        super().__init__(out=io.StringIO(), bar=False, quiet=True)
        self.say = say

    def line(self, text: str) -> None:
        self.say(text)

    def trial_done(self, result: TrialResult, done: int, total: int, objective: str) -> None:
        mode, m = result.trial.tags.get("mode", ""), result.metrics
        if result.status is Status.OK:
            what = "fine-tuned" if mode == "fine-tune" else "trained from scratch"
            self.say(f"{what} in {format_duration(m['train_time_s'])} (last epoch's loss "
                     f"{m['train_loss']:.4g}); hold-out mse={format_value(m['holdout_mse'])} "
                     f"({format_value(m['holdout_std_mse'])} standardised)")
        else:
            what = "fine-tuning" if mode == "fine-tune" else "training from scratch"
            self.say(f"{what}: {result.status.value}" + (f": {result.error}" if result.error else ""))


def _local_slots(req: FinalRequest, s: Setup, n: int) -> list[Slot]:
    """`n` worker slots of this machine (a GPU each while there are GPUs enough), named as the
    report says where a final trained: ``cpu``, ``cuda:0``."""
    resources = s.spec.resources
    only, only_from = requested_gpus(req.gpus, resources)
    slots = choose_slots(req.device, n, only=only, per_gpu=n, threads=req.threads or resources.get("threads"),
                         only_from=only_from)
    slots = sorted(slots, key=lambda slot: "." in slot.name)[:n]  # gpu0, gpu1, then gpu0.1
    return [dataclasses.replace(slot, name=f"cuda:{slot.gpu}" if slot.gpu is not None else "cpu") for slot in slots]


def final_backend(req: FinalRequest, s: Setup, n: int, say: Callable[[str], None]) -> tuple[Backend, int]:
    """The backend for `n` trials, as ``hpt run`` chooses it; and the torch threads of a CPU worker."""
    options = RunOptions(workers=n, threads=req.threads, device=req.device, gpus=req.gpus, trials_per_gpu=1,
                         grace=req.grace, executor=req.executor, ray_address=req.ray_address)
    local = (req.executor or s.spec.resources.get("executor") or "local") == "local"
    slots = _local_slots(req, s, n) if local else None
    threads = slots[0].threads if slots else int(req.threads or s.spec.resources.get("threads") or 1)
    return make_backend(s.spec, s.frame, options, say, slots), threads


@dataclass
class Training:
    """How a final's training went: each trial's result (in the trials' order), the runner's exit
    code, the trials another final trains, and where its models trained."""

    results: list[TrialResult] = field(default_factory=list)
    exit_code: int = 0
    elsewhere: dict[str, Holder] = field(default_factory=dict)
    device: str = ""
    claims: Claims | None = None  # held until the final's files are written: close() releases them


def train(req: FinalRequest, s: Setup, trials: list[Trial], final_id: str, say: Callable[[str], None]) -> Training:
    """Train the trials on the backend, holding their claims; the caller closes ``claims`` once it has written."""
    backend, threads = final_backend(req, s, len(trials), say)
    out = Training(claims=Claims(s.sink, final_id))
    assert out.claims is not None
    gate = ClaimGate(out.claims, ResultStore(s.sink), final_id, force=False)
    c = s.choice
    say(f"training on {s.train} ({s.length}): {plural(s.train_rows, 'row')}, "
        f"{plural(len(s.windows.x_train), 'window')}; {plural(c.epochs, 'epoch')} ({c.epochs_from}); on "
        f"{backend.describe()}")
    got: dict[str, TrialResult] = {}
    out.claims.start()
    try:
        out.exit_code = drive(_Listed(trials), backend, lambda r: got.__setitem__(r.trial.trial_id, r), _Say(say),
                              "val_mse", req.grace, gate)
    except BaseException:
        out.claims.close()
        raise
    out.results = [got[t.trial_id] for t in trials if t.trial_id in got]
    out.elsewhere = {tid: holder for tid, (_, holder) in gate.held.items()}
    if out.results:
        where = out.results[0].device
        out.device = f"cpu ({plural(threads, 'torch thread')})" if where == "cpu" else where
    return out
