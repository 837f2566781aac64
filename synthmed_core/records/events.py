"""Events the training loop emits. The loop knows no database and no UI: whoever runs it
passes a callback (``emit``) and decides what to do with each event (print, store, forward)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Started:
    run_id: str
    spec: dict[str, Any]
    device: str
    total_epochs: int
    resumed_from: int | None = None  # global epoch index resumed after, None for a fresh start
    context: dict[str, Any] = field(default_factory=dict)  # context.execution_context()


@dataclass(frozen=True)
class Progress:
    """Within-epoch progress; emitted at most every ``profile.progress_every_s`` seconds."""

    run_id: str
    phase: int  # index into the setting's phases
    epoch: int  # global epoch index over all phases, 0-based
    total_epochs: int
    step: int
    steps: int
    loss: float
    images_per_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochEnd:
    run_id: str
    phase: int
    epoch: int  # global, 0-based
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_auroc: float
    lr: float
    seconds: float
    is_best: bool


@dataclass(frozen=True)
class RunResult:
    """What a finished run produced. ``test_probs`` = P(pneumonia) for every test image, in
    the order of the official test split."""

    run_id: str
    metrics: dict[str, float]  # accuracy, auroc, f1, sensitivity, specificity, tn, fp, fn, tp
    test_labels: np.ndarray
    test_probs: np.ndarray
    val_labels: np.ndarray
    val_probs: np.ndarray
    best_epoch: int
    best_phase: int
    wall_s: float
    device: str
    checkpoint: str
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Finished:
    run_id: str
    result: RunResult


Event = Started | Progress | EpochEnd | Finished
Emit = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """An ``emit`` that drops every event."""
