"""Checkpoint files: weights + optimizer + the run's frozen spec, written atomically.

``last.pt`` holds everything needed to resume (model, optimizer, scheduler, RNG states, the
best-so-far record, the history); ``best.pt`` holds the weights chosen on val. Either file
alone says which run made it (``spec``), so a result can be rebuilt from it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .errors import DataError

LAST = "last.pt"
BEST = "best.pt"


def save(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: a crash mid-write never
    leaves a truncated checkpoint where a resume would find it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save`; a missing or unreadable file is a DataError."""
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        # Our own files hold numpy arrays and plain dicts besides tensors: not weights-only.
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # torch raises several types for a damaged zip/pickle
        raise DataError(f"checkpoint {path} is unreadable ({exc}); delete it to start over") from exc


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
