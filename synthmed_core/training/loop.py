"""Primitives shared by the classifier trainer and the ChestMNIST pretrainer: device-resident
data, batched preprocessing, one training epoch, batched prediction. Nothing here knows about
settings, runs or storage."""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SpecError, Stopped
from .augment import random_affine


def resolve_device(device: str | None) -> torch.device:
    """``None``/"auto" -> cuda when available, else cpu."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _tune_cuda(device: torch.device) -> None:
    # Shapes are fixed within a run, so cuDNN's per-shape algorithm search pays off at once.
    # CUDA results are not bit-reproducible anyway (atomics); CPU ones are and stay so.
    torch.backends.cudnn.benchmark = True


# What each device type needs set once per process before training on it.
BACKEND_TUNING: dict[str, Callable[[torch.device], None]] = {"cuda": _tune_cuda}


def tune_backend(device: torch.device) -> None:
    """Per-device backend settings for training speed (none on CPU)."""
    BACKEND_TUNING.get(device.type, lambda d: None)(device)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full precision on CPU, where it keeps runs bit-reproducible."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


# torch.compile, by name. An execution option like the device: results mean the same, so it is
# not part of a run's spec. SYNTHMED_COMPILE picks it for every run of a process (and so for job
# workers); off by default because compiling costs 10-60 s per model and gained nothing on CPU at
# 28 px (measured). `python -m synthmed_core bench --compile off default` measures it.
COMPILE_MODES: dict[str, dict | None] = {
    "off": None,
    "default": {},
    "reduce-overhead": {"mode": "reduce-overhead"},  # CUDA graphs: one launch per graph
    "max-autotune": {"mode": "max-autotune-no-cudagraphs"},
}
COMPILE_ENV = "SYNTHMED_COMPILE"


def compile_mode(mode: str | None = None) -> str:
    """``mode``, else ``$SYNTHMED_COMPILE``, else "off"; SpecError for an unknown name."""
    mode = mode or os.environ.get(COMPILE_ENV) or "off"
    if mode not in COMPILE_MODES:
        raise SpecError(f"unknown compile mode {mode!r} ({COMPILE_ENV}); choose one of "
                        f"{list(COMPILE_MODES)}")
    return mode


def compile_model(model: torch.nn.Module, mode: str | None = None) -> str:
    """Compile ``model`` in place (``nn.Module.compile``: its state_dict keys stay the same, so
    checkpoints do not change) unless the mode is "off". Returns the mode used."""
    mode = compile_mode(mode)
    kwargs = COMPILE_MODES[mode]
    if kwargs is not None:
        model.compile(**kwargs)
    return mode


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Move a whole array to the device once; batches are then slices of it (no DataLoader)."""
    array = np.ascontiguousarray(array)
    if not array.flags.writeable:  # cached read-only arrays: torch wants to own writable memory
        array = array.copy()
    return torch.from_numpy(array).to(device)


@dataclass(frozen=True)
class Preprocess:
    """uint8 N x H x W images -> the normalised float batch the model expects."""

    mean: float
    std: float
    input_size: int
    augment: bool = False
    channels_last: bool = True

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None,
                 draws: list[int] | None = None) -> torch.Tensor:
        x = images.unsqueeze(1).float().div_(255.0)
        if self.augment and generator is not None:
            x = random_affine(x, generator, draws=draws)
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False)
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def make_loss(label_smoothing: float = 0.0) -> Callable:
    """The training loss: cross-entropy, label-smoothed by timm when ``label_smoothing`` > 0."""
    if label_smoothing > 0:
        from timm.loss import LabelSmoothingCrossEntropy
        return LabelSmoothingCrossEntropy(smoothing=label_smoothing)
    return F.cross_entropy


def make_ema(model: torch.nn.Module, decay: float):
    """timm's ModelEmaV3 of ``model`` (its first update copies the weights), or None at 0."""
    if decay <= 0:
        return None
    from timm.utils import ModelEmaV3
    return ModelEmaV3(model, decay=decay)


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, epochs: int,
                   warmup_epochs: int, steps_per_epoch: int):
    """AdamW and a per-update cosine schedule with linear warm-up (timm), as the study's
    recipe: returns (optimizer, scheduler)."""
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    opt = create_optimizer_v2(model, "adamw", lr=lr, weight_decay=weight_decay)
    sched, _ = create_scheduler_v2(opt, "cosine", num_epochs=epochs, warmup_epochs=warmup_epochs,
                                   warmup_lr=1e-6, min_lr=1e-6, step_on_epochs=False,
                                   updates_per_epoch=steps_per_epoch)
    return opt, sched


StepHook = Callable[[int, int, torch.Tensor], None]  # (step, steps, running loss sum tensor)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Slices covering 0..n; a trailing batch of one is dropped (BatchNorm cannot train on it)."""
    out = [slice(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]
    if out and out[-1].stop - out[-1].start < 2 and len(out) > 1:
        out.pop()
    return out


# Training batches preprocessed (and augmented) per call, by device type. On a GPU at 28 px a
# step is bound by kernel launches, and preprocessing is ~20 tiny kernels: 16 batches per call
# make those 16x fewer. The random numbers are drawn batch by batch either way
# (``random_affine(draws=...)``), so results do not depend on it. CPU: one batch per call.
PREP_CHUNK: dict[str, int] = {"cuda": 16}


def _chunks(slices: list[slice], size: int) -> list[list[slice]]:
    return [slices[i:i + size] for i in range(0, len(slices), max(1, size))]


def train_epoch(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor,
                preprocess: Preprocess, loss_fn: Callable, optimizer: torch.optim.Optimizer,
                scheduler, epoch: int, batch_size: int, generator: torch.Generator,
                on_step: StepHook | None = None,
                should_stop: Callable[[], bool] | None = None,
                prep_chunk: int | None = None, ema=None) -> float:
    """One pass over ``images`` in a random order drawn from ``generator``. The scheduler is
    stepped per update (timm ``step_update``), and ``ema`` (a timm ModelEmaV3) updated after
    each. ``prep_chunk`` batches are preprocessed per call (default ``PREP_CHUNK`` of the
    device type, else 1). Returns the mean training loss."""
    model.train()
    device = images.device
    order = torch.randperm(images.shape[0], generator=generator, device=device)
    slices = batch_slices(images.shape[0], batch_size)
    steps = len(slices)
    loss_sum = torch.zeros((), device=device)
    chunk = prep_chunk or PREP_CHUNK.get(device.type, 1)
    step = 0
    for group in _chunks(slices, chunk):
        lo, hi = group[0].start, group[-1].stop
        idx = order[lo:hi]
        xs = preprocess(images[idx], generator, draws=[s.stop - s.start for s in group])
        ys = targets[idx]
        for sl in group:
            if should_stop is not None and should_stop():
                raise Stopped()
            x, y = xs[sl.start - lo:sl.stop - lo], ys[sl.start - lo:sl.stop - lo]
            loss_sum = train_step(model, x, y, loss_fn, optimizer, device, loss_sum)
            scheduler.step_update(num_updates=epoch * steps + step + 1)
            if ema is not None:
                ema.update(model, step=epoch * steps + step + 1)
            step += 1
            if on_step is not None:
                on_step(step, steps, loss_sum)
    scheduler.step(epoch + 1)
    return float(loss_sum.item()) / max(steps, 1)


def train_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable,
                optimizer: torch.optim.Optimizer, device: torch.device,
                loss_sum: torch.Tensor) -> torch.Tensor:
    """Forward, backward, optimizer step; returns ``loss_sum`` plus this loss (on the device:
    no synchronisation)."""
    with autocast(device):
        loss = loss_fn(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss_sum + loss.detach().float()


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, preprocess: Preprocess,
                   batch_size: int = 512) -> torch.Tensor:
    """Logits for every image, in order, as float32 on the CPU."""
    model.eval()
    outs = []
    for i in range(0, images.shape[0], batch_size):
        with autocast(images.device):
            outs.append(model(preprocess(images[i:i + batch_size])).float())
    return torch.cat(outs).cpu()


class Throttle:
    """True at most once every ``seconds`` (progress events, not a flood of them)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # -inf, not 0.0: monotonic() counts from boot, so 0.0 would hold back the first event
        # on a machine up for less than ``seconds``.
        self._last = float("-inf")

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.seconds:
            self._last = now
            return True
        return False
