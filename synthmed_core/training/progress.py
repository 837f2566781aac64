"""The per-step progress hook of the trainer: ETA bookkeeping and throttled Progress events.
Shared by ``train.train_run`` and the benchmark, so the benchmark times the hook real runs use.

The hook does host-only work at every step (a clock read, a counter); it reads the running loss
off the device (a synchronisation) only when a Progress event is due, at most once per
``Throttle`` period.
"""
from __future__ import annotations

import time

import torch

from ..records.events import Emit, Progress
from .loop import StepHook, Throttle


class Eta:
    """Remaining time from the steps done so far in this process (a resume restarts it)."""

    def __init__(self, total_steps: int) -> None:
        self.total, self.done, self.t0 = total_steps, 0, time.monotonic()

    def step(self) -> tuple[float, float]:
        self.done += 1
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        rate = self.done / elapsed
        return rate, (self.total - self.done) / rate if rate > 0 else float("nan")


def step_hook(emit: Emit, run_id: str, phase: int, epoch: int, total_epochs: int, eta: Eta,
              throttle: Throttle, batch_size: int) -> StepHook:
    """The ``on_step`` callback of ``_loop.train_epoch`` for one epoch of one run."""
    def on_step(step: int, steps: int, loss_sum: torch.Tensor) -> None:
        rate, left = eta.step()
        if throttle():
            emit(Progress(run_id, phase, epoch, total_epochs, step, steps,
                          float(loss_sum.item()) / step, rate * batch_size, left))
    return on_step
