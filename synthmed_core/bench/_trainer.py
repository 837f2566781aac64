"""Our training path, timed two ways on the same model, optimizer and images:

- the TRAINER epoch: ``_loop.train_epoch`` exactly as ``train.train_run`` calls it (resident
  uint8 data, shuffling, on-device preprocessing and augmentation, the scheduler, the real
  per-step progress hook, a stop check every step);
- the PURE steps: forward + backward + optimizer step over batches preprocessed beforehand.

Their ratio is the trainer's overhead (1.00 = none). Passes alternate (pure, trainer, trainer,
pure, ...) so a load change on a shared machine hits both alike; the median ratio is reported.
"""
from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..catalog import PROFILES
from ..training.loop import (Preprocess, Throttle, batch_slices, compile_model, make_optimizer,
                             predict_logits, to_device, train_epoch, train_step, tune_backend)
from ..training.models import build_model, model_input_stats
from ..training.progress import Eta, step_hook
from ._measure import peak_memory, synchronize, timed, timed_both

RECIPE = PROFILES["paper"]  # lr and weight decay of the study (the batch size is the bench's)


@dataclass
class Rig:
    """One model set up as ``train_run`` sets it up, with ``images`` resident on the device."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: object
    prep: Preprocess
    x: torch.Tensor
    y: torch.Tensor
    gen: torch.Generator
    batch_size: int
    device: torch.device
    compile: str
    events: list = dataclasses.field(default_factory=list)

    @property
    def n(self) -> int:
        return int(self.x.shape[0])


def build_rig(arch: str, size: int, device: torch.device, images: np.ndarray,
              labels: np.ndarray, batch_size: int, augment: bool, compile: str = "off",
              seed: int = 0) -> Rig:
    """A scratch-init ``arch`` at ``size`` px on ``device`` (channels_last, compiled per
    ``compile``), AdamW + cosine schedule, and the images as one uint8 device tensor."""
    tune_backend(device)
    torch.manual_seed(seed)
    model = build_model(arch, "scratch", size).to(device, memory_format=torch.channels_last)
    mode = compile_model(model, compile)
    mean, std = model_input_stats(model)
    steps = len(batch_slices(len(labels), batch_size))
    opt, sched = make_optimizer(model, RECIPE.base_lr * batch_size / 512, RECIPE.weight_decay,
                                epochs=1000, warmup_epochs=0, steps_per_epoch=steps)
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return Rig(model, opt, sched, Preprocess(mean, std, size, augment=augment),
               to_device(images, device), to_device(labels, device), gen, batch_size, device, mode)


def trainer_pass(rig: Rig, epoch: int, limit: int | None = None) -> None:
    """One ``train_epoch`` over the rig's images (the first ``limit`` of them), with the same
    progress hook ``train_run`` installs; events go to ``rig.events``."""
    x, y = (rig.x, rig.y) if limit is None else (rig.x[:limit], rig.y[:limit])
    steps = len(batch_slices(len(y), rig.batch_size))
    hook = step_hook(rig.events.append, "bench", 0, epoch, 1000, Eta(steps * 1000),
                     Throttle(1.0), rig.batch_size)
    train_epoch(rig.model, x, y, rig.prep, F.cross_entropy, rig.opt, rig.sched, epoch,
                rig.batch_size, rig.gen, hook, should_stop=lambda: False)


def stage(rig: Rig) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The rig's batches preprocessed (and augmented) ahead of time, ready on the device."""
    with torch.no_grad():
        return [(rig.prep(rig.x[sl], rig.gen), rig.y[sl])
                for sl in batch_slices(rig.n, rig.batch_size)]


def pure_pass(rig: Rig, staged: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Forward, backward and optimizer step only: ``_loop.train_step``, as ``train_epoch``
    calls it."""
    rig.model.train()
    loss_sum = torch.zeros((), device=rig.device)
    for xb, yb in staged:
        loss_sum = train_step(rig.model, xb, yb, F.cross_entropy, rig.opt, rig.device, loss_sum)


def measure_training(rig: Rig, rounds: int, warmup_batches: int = 2) -> dict:
    """Warm up, then ``rounds`` pairs of pure and trainer passes in alternating order.
    Returns images/s of each (medians), the overhead (median of the per-round wall-time
    ratios), the ratio of the fastest passes, each round's ratio, the same median ratio of
    this process's CPU time (``overhead_cpu``), the warm-up seconds (compilation included)
    and the peak memory."""
    staged = stage(rig)
    t0 = time.perf_counter()
    trainer_pass(rig, 0, limit=warmup_batches * rig.batch_size)
    pure_pass(rig, staged[:warmup_batches])
    synchronize(rig.device)
    warmup_s = time.perf_counter() - t0
    gauge = peak_memory(rig.device)
    times: dict[str, list[tuple[float, float]]] = {"pure": [], "trainer": []}
    passes = {"pure": lambda: pure_pass(rig, staged), "trainer": lambda: trainer_pass(rig, 1)}
    for r in range(max(1, rounds)):
        for what in (("pure", "trainer") if r % 2 == 0 else ("trainer", "pure")):
            times[what].append(timed_both(passes[what], rig.device))
    (pure, pure_cpu), (trainer, trainer_cpu) = (zip(*times["pure"]), zip(*times["trainer"]))
    ratios = [t / p for t, p in zip(trainer, pure)]
    return {"train_ips": rig.n / statistics.median(trainer),
            "pure_ips": rig.n / statistics.median(pure),
            "overhead": statistics.median(ratios), "overhead_min": min(trainer) / min(pure),
            "overhead_rounds": ratios,
            "overhead_cpu": statistics.median(t / p for t, p in zip(trainer_cpu, pure_cpu)),
            "warmup_s": warmup_s, "peak_mem_mib": gauge.mib(), "peak_mem_kind": gauge.kind}


def measure_eval(rig: Rig, reps: int = 3, batch_size: int = 512) -> float:
    """Images/s of ``_loop.predict_logits`` over the rig's images (best of ``reps``)."""
    prep = dataclasses.replace(rig.prep, augment=False)
    predict_logits(rig.model, rig.x, prep, batch_size)  # warm-up (and compile)
    best = min(timed(lambda: predict_logits(rig.model, rig.x, prep, batch_size), rig.device)
               for _ in range(max(1, reps)))
    return rig.n / best
