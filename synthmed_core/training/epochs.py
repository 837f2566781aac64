"""The epoch skeleton the classifier trainer and the ChestMNIST pretrainer share: train one epoch
with throttled progress, judge it on val, hand the caller its history row and whether it is
the best so far (the caller keeps its checkpoints then), and report the epoch's end."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from ..records.events import Emit, EpochEnd
from .loop import Preprocess, Throttle, train_epoch
from .progress import Eta, step_hook


@dataclass
class Fit:
    """What stays the same over every epoch of one run: who hears of it and how far along."""

    run_id: str
    emit: Emit
    total_epochs: int
    batch_size: int
    eta: Eta
    throttle: Throttle
    should_stop: Callable[[], bool] | None = None


def fit_epochs(fit: Fit, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
               prep: Preprocess, loss_fn: Callable, opt, sched, epochs: range,
               gen: torch.Generator, evaluate: Callable[[], dict], better: Callable[[dict], bool],
               phase: int = 0, offset: int = 0, ema=None, lr_at: str = "end"
               ) -> Iterator[tuple[dict, bool]]:
    """For each epoch ``e`` of ``epochs`` (``offset + e`` in the run): one pass over ``x``,
    then ``evaluate()`` (val: ``auroc``, optionally ``loss`` and ``accuracy``); yields the
    epoch's row and ``better(val)``, and once the caller is done with them (its checkpoints
    written), emits the EpochEnd. ``lr_at``: the row's lr as it was at the epoch's "start"
    (a schedule stepped per epoch) or its "end" (per update: the last update's)."""
    for e in epochs:
        t0, lr = time.time(), opt.param_groups[0]["lr"]
        g = offset + e
        on_step = step_hook(fit.emit, fit.run_id, phase, g, fit.total_epochs, fit.eta,
                            fit.throttle, fit.batch_size)
        loss = train_epoch(model, x, y, prep, loss_fn, opt, sched, e, fit.batch_size, gen,
                           on_step, fit.should_stop, ema=ema)
        val = evaluate()
        row = {"phase": phase, "epoch": g, "train_loss": loss,
               "val_loss": val.get("loss", float("nan")),
               "val_accuracy": val.get("accuracy", float("nan")), "val_auroc": val["auroc"],
               "lr": lr if lr_at == "start" else opt.param_groups[0]["lr"],
               "seconds": time.time() - t0}
        is_best = better(val)
        yield row, is_best
        fit.emit(EpochEnd(fit.run_id, is_best=is_best, **row))
