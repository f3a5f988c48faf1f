"""Training progress and the time budget: one Trainer callback.

* Steps done / ``max_steps``, elapsed and an ETA as a :class:`labkit.progress.Progress` line (in the notebook, and
  for ``labkit labs run``), so a 30-minute training cell shows where it is.
* ``TrainSettings.max_minutes > 0``: training stops after that many minutes of this run and saves the final model as if
  ``max_steps`` had been reached — how notebook 06's recipe experiment gives two recipes *the same training
  minutes* (the learning-rate schedule still spans ``max_steps``; give both arms the same schedule).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist
from transformers import TrainerCallback, TrainerControl, TrainerState

from labkit.progress import Progress


def any_rank(flag: bool, device: Any) -> bool:
    """True when ``flag`` is true on any rank (so every rank stops at the same step); the flag itself when not
    distributed."""
    if dist.is_available() and dist.is_initialized():
        t = torch.tensor([int(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())
    return flag


class TrainProgress(TrainerCallback):
    """Progress line + optional time budget (see the module docstring); ``budget_hit`` tells whether it stopped."""

    def __init__(self, max_minutes: float = 0.0):
        self.max_minutes = float(max_minutes or 0.0)
        self.progress: Progress | None = None
        self.start = time.perf_counter()
        self.budget_hit = False

    def on_train_begin(self, args: Any, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        self.start = time.perf_counter()
        if state.is_world_process_zero:
            self.progress = Progress(state.max_steps, "训练", unit="步", done_before=state.global_step)

    def on_step_end(self, args: Any, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if self.progress is not None:
            self.progress.update(state.global_step)
        if not self.max_minutes:
            return
        if any_rank(time.perf_counter() - self.start >= 60 * self.max_minutes, args.device):
            self.budget_hit = True
            control.should_training_stop = True

    def on_train_end(self, args: Any, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if self.progress is not None:
            self.progress.close()
