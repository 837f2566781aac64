"""What every generator shares: a frozen config per profile, the training loop with progress
events and resumable checkpoints, and the check that a checkpoint matches its config.

A generator subclass supplies ``build`` (its networks, optimizers, lr schedulers, EMA: any
object with ``state_dict``/``load_state_dict``), ``prepare`` (the train split onto the device),
``train_step`` and ``sample``. This class owns everything else, so each method reads as its
model and losses only.
"""
from __future__ import annotations

import abc
import dataclasses
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ...data.real import Split
from ...errors import ModelError, Stopped
from ...training import checkpoints as ck
from ...records.events import Emit, EpochEnd, Progress, Started, ignore
from ...training.loop import Throttle, resolve_device

CHECKPOINT_EVERY_S = 60.0  # a crash loses at most about a minute of generator training


def sampling_field(default: Any) -> Any:
    """A config field that only affects sampling: a checkpoint made with another value of it
    is still reused (guidance scale, DDIM steps...)."""
    return dataclasses.field(default=default, metadata={"sampling": True})


@dataclass(frozen=True)
class Samples:
    """What ``sample`` returns: uint8 images N x 28 x 28, labels (N,) 0/1, and for translation
    methods the real TRAIN row each image was made from (else None)."""

    images: np.ndarray
    labels: np.ndarray
    source_index: np.ndarray | None = None
    notes: dict = dataclasses.field(default_factory=dict)


def fingerprint(split: Split) -> str:
    """A short hash of a split's images and labels: a checkpoint remembers what it saw."""
    digest = hashlib.sha256(np.ascontiguousarray(split.images).tobytes())
    digest.update(np.ascontiguousarray(split.labels).astype(np.int64).tobytes())
    return digest.hexdigest()[:16]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W -> float N x 1 x H x W in [-1, 1] (the range tanh / diffusion use)."""
    return images.unsqueeze(1).float().div(127.5).sub(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float N x 1 x H x W in [-1, 1] -> uint8 N x H x W on the CPU."""
    return x.float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)[:, 0].cpu().numpy()


class Generator(abc.ABC):
    """Base class. ``config`` is the subclass's frozen Config (profile, seed, sizes, steps)."""

    method: ClassVar[str]
    PROFILES: ClassVar[dict[str, Any]]  # profile name -> Config (seed 0)

    def __init__(self, config, device: str | None = None) -> None:
        self.config = config
        self.device = resolve_device(device)
        torch.manual_seed(config.seed)
        self.parts: dict[str, Any] = self.build()
        self.train: Split | None = None
        self.state = {"epoch": 0, "complete": False, "train_wall_s": 0.0, "history": []}

    # ---- what a subclass provides -------------------------------------------------------------
    @abc.abstractmethod
    def build(self) -> dict[str, Any]:
        ...

    @abc.abstractmethod
    def prepare(self, train: Split) -> int:
        """Put ``train`` on the device; return the optimisation steps of one epoch."""
        ...

    @abc.abstractmethod
    def train_step(self, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """One optimisation step; returns detached scalar losses, the first one shown."""
        ...

    @abc.abstractmethod
    def sample(self, counts: dict[int, int], seed: int,
               on_batch: Callable[[int, int], None] | None = None) -> Samples:
        """``counts[label]`` images of each label, reproducible from ``seed``; ``on_batch(done,
        total)`` after each batch (a progress bar)."""
        ...

    def end_epoch(self) -> None:
        """Called after every epoch (per-epoch lr schedules)."""

    # ---- shared -------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return f"generate-{self.method}-{self.config.profile}-seed{self.config.seed}"

    def training_config(self) -> dict[str, Any]:
        """The config fields a checkpoint must match (sampling-only fields left out)."""
        return {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)
                if not f.metadata.get("sampling")}

    def fit(self, train: Split, emit: Emit = ignore, should_stop: Callable[[], bool] | None = None,
            checkpoint_path: Path | None = None) -> dict[str, Any]:
        """Train on ``train`` (the REAL train split), resuming or reusing ``checkpoint_path``.

        A complete checkpoint with the same training config and data is loaded, not retrained
        (``reused`` True); an incomplete one resumes after its last saved epoch; a mismatching
        one is a ModelError. The checkpoint is saved about every minute and at the end, so a
        stop (``should_stop`` -> :class:`Stopped`) or crash loses little. Returns the training
        record (epochs, steps, train_wall_s, device, history, reused, resumed_from).
        """
        resumed_from, reused = None, False
        if checkpoint_path is not None and Path(checkpoint_path).is_file():
            self.load(checkpoint_path, train)
            reused = self.state["complete"]
            resumed_from = None if reused else self.state["epoch"]
        self.train = train
        if not reused:
            self._train(train, emit, should_stop, checkpoint_path, resumed_from)
        return {"epochs": self.config.epochs, "steps": self.state.get("steps"),
                "train_wall_s": self.state["train_wall_s"],
                "device": self.state.get("device", str(self.device)),
                "history": self.state["history"], "reused": reused, "resumed_from": resumed_from}

    def _train(self, train, emit, should_stop, checkpoint_path, resumed_from) -> None:
        steps = self.prepare(train)
        cfg, epochs = self.config, self.config.epochs
        gen = torch.Generator(device=self.device)
        gen.manual_seed(cfg.seed)
        if "rng" in self.state:
            gen.set_state(self.state["rng"])
        emit(Started(self.run_id, dataclasses.asdict(cfg), str(self.device), epochs,
                     resumed_from=None if resumed_from is None else resumed_from - 1))
        throttle, last_save, t0 = Throttle(1.0), time.monotonic(), time.monotonic()
        wall0, done, todo = self.state["train_wall_s"], 0, (epochs - self.state["epoch"]) * steps
        for epoch in range(self.state["epoch"], epochs):
            t_epoch, sums = time.monotonic(), {}
            for step in range(steps):
                if should_stop is not None and should_stop():
                    raise Stopped()
                for k, v in self.train_step(gen).items():
                    sums[k] = sums.get(k, 0.0) + v
                done += 1
                if throttle():
                    rate = done / max(time.monotonic() - t0, 1e-9)
                    first = next(iter(sums))
                    emit(Progress(self.run_id, 0, epoch, epochs, step + 1, steps,
                                  float(sums[first]) / (step + 1), rate * cfg.batch_size,
                                  (todo - done) / rate))
            self.end_epoch()
            means = {k: float(v) / steps for k, v in sums.items()}
            self.state["history"].append({"epoch": epoch, **means})
            self.state.update(epoch=epoch + 1, complete=epoch + 1 == epochs, steps=epochs * steps,
                              rng=gen.get_state(), device=str(self.device),
                              train_wall_s=wall0 + time.monotonic() - t0)
            emit(EpochEnd(self.run_id, 0, epoch, next(iter(means.values())), math.nan, math.nan,
                          math.nan, self._lr(), time.monotonic() - t_epoch, False))
            if checkpoint_path is not None and (self.state["complete"] or
                                                time.monotonic() - last_save >= CHECKPOINT_EVERY_S):
                self.save(checkpoint_path)
                last_save = time.monotonic()

    def _lr(self) -> float:
        opt = next((p for p in self.parts.values() if isinstance(p, torch.optim.Optimizer)), None)
        return float(opt.param_groups[0]["lr"]) if opt is not None else math.nan

    def save(self, path: Path) -> None:
        """Write weights, optimizer/EMA state, config and training record atomically."""
        ck.save({"method": self.method, "config": dataclasses.asdict(self.config),
                 "training_config": self.training_config(), "data": self._data_print,
                 "parts": {k: p.state_dict() for k, p in self.parts.items()},
                 "state": self.state}, Path(path))

    def load(self, path: Path, train: Split) -> None:
        """Restore a checkpoint made for the same method, training config and train data;
        anything else is a ModelError that says what differs and what to do."""
        path = Path(path)
        blob = read_generator_checkpoint(path)
        wanted = {"method": self.method, "training_config": self.training_config(),
                  "data": fingerprint(train)}
        diffs = _differences(blob, wanted)
        if diffs:
            raise ModelError(
                f"generator checkpoint {path} does not match this request ({'; '.join(diffs)}), "
                "so it cannot be reused or resumed. Pass --retrain (retrain=True) to train a new "
                "one in its place, or --checkpoint PATH (checkpoint=...) to keep both.")
        for name, part in self.parts.items():
            part.load_state_dict(blob["parts"][name])
        self.state = blob["state"]
        self.train = train

    @property
    def _data_print(self) -> str | None:
        return fingerprint(self.train) if self.train is not None else None


# What every generator checkpoint holds (``Generator.save``): how a file is known to be one.
CHECKPOINT_KEYS = frozenset({"method", "config", "training_config", "data", "parts", "state"})


def read_generator_checkpoint(path: Path) -> dict:
    """The contents of a generator checkpoint written by ``Generator.save`` (weights-only).
    Anything else at ``path`` (another file, another kind of checkpoint, a damaged one) is a
    ModelError that says synthmed will neither read nor replace it."""
    try:
        blob = ck.load(Path(path))
    except ck.CheckpointError as exc:
        raise ModelError(_not_a_generator(path, f"it {exc.why}")) from None
    missing = CHECKPOINT_KEYS - set(blob) if isinstance(blob, dict) else CHECKPOINT_KEYS
    if missing:
        raise ModelError(_not_a_generator(path, f"it lacks {sorted(missing)}"))
    return blob


def _not_a_generator(path: Path, why: str) -> str:
    return (f"{path} is not a synthmed generator checkpoint: {why}. synthmed neither reads nor "
            "replaces such a file: give --checkpoint (checkpoint=...) a path of its own, or "
            "leave it out for the default under data/generators.")


def _differences(blob: dict, wanted: dict) -> list[str]:
    if blob.get("method") != wanted["method"]:
        return [f"it holds a {blob.get('method')!r} generator, not {wanted['method']!r}"]
    out = []
    have = blob.get("training_config") or {}
    for key in sorted(set(have) | set(wanted["training_config"])):
        a, b = have.get(key, "<absent>"), wanted["training_config"].get(key, "<absent>")
        if _norm(a) != _norm(b):
            out.append(f"{key}: checkpoint {a!r}, requested {b!r}")
    if blob.get("data") != wanted["data"]:
        out.append(f"train data: checkpoint saw {blob.get('data')}, this split is "
                   f"{wanted['data']} (the real train file changed)")
    return out


def _norm(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
