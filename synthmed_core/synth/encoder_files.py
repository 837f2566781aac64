"""Which domain encoder a config names and where it is cached: light (no torch), so a page can
find a set's encoder file without importing the training stack (``encoder`` trains and loads
them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import paths


@dataclass(frozen=True)
class ClassifierConfig:
    """How a measuring classifier is trained: the project's recipe (AdamW, warm-up + cosine)
    with a higher lr than ``quick`` because these schedules are a few epochs long."""

    arch: str = "resnet18"
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    train_limit: int | None = None  # class-stratified subset (smoke only)
    seed: int = 0


def encoder_dir() -> Path:
    """The folder of cached domain encoders."""
    return paths.data_root() / "encoders"


def encoder_path(cfg: ClassifierConfig, profile: str) -> Path:
    """Where the domain encoder of a profile and seed is cached."""
    return encoder_dir() / f"domain-{cfg.arch}-{profile}-seed{cfg.seed}.pt"
