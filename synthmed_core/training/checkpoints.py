"""Checkpoint files: weights + optimizer + the run's frozen spec, written atomically.

``last.pt`` holds everything needed to resume (model, optimizer, scheduler, RNG states, the
best-so-far record, the history); ``best.pt`` holds the weights chosen on val. Either file
alone says which run made it (``spec``), so a result can be rebuilt from it.

Every checkpoint is read weights-only (``torch.load(weights_only=True)``), the only way this
module loads one: unpickling anything else can run code, and checkpoint paths come from command
lines, job specs and cards. So a checkpoint holds tensors, plain containers and scalars only,
and :func:`save` refuses anything else before writing, rather than leave a file that cannot be
read back.
"""
from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import DataError

# Exact types (not subclasses: numpy.float64 is a float, an IntEnum an int, a namedtuple a tuple,
# and each pickles as a class that a weights-only load refuses).
_SCALARS = frozenset({str, bytes, int, float, bool, complex, type(None), torch.dtype,
                      torch.device, torch.Size})
_MAPPINGS = frozenset({dict, collections.OrderedDict})
_SEQUENCES = frozenset({list, tuple, set})

LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(DataError):
    """A checkpoint file that was not loaded; ``why`` says why without naming the file."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"checkpoint {path} {why}")
        self.why = why


def save(obj: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename: a crash mid-write never
    leaves a truncated checkpoint where a resume would find it."""
    check_plain(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save`, weights-only. A missing file is a DataError;
    an unreadable one a CheckpointError (a DataError), and so is one holding other Python
    objects, refused before any of them is built."""
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # a refused global, or not a pickle at all
        refused = _refused_globals(path)
        if refused:
            raise CheckpointError(
                path, f"holds Python objects a weights-only load refuses ({', '.join(refused[:5])}"
                "), so it was not loaded and none of its code ran. synthmed writes only tensors "
                "and plain values: this file was made elsewhere or altered") from None
        raise CheckpointError(path, f"is unreadable ({_reason(exc)}): it is damaged, or not a "
                              "checkpoint") from exc
    except Exception as exc:  # torch raises several types for a damaged zip
        raise CheckpointError(path, f"is unreadable ({_reason(exc)}): it is damaged, or not a "
                              "checkpoint") from exc


def check_plain(obj: Any, where: str = "") -> None:
    """TypeError naming the first value in ``obj`` that a weights-only load could not read
    (anything but tensors, dicts, lists, tuples, sets and plain scalars)."""
    kind = type(obj)
    if kind in _SCALARS or isinstance(obj, torch.Tensor):
        return
    if kind in _MAPPINGS:
        for key, value in obj.items():
            check_plain(key, f"{where} (a key)")
            check_plain(value, f"{where}[{key!r}]")
    elif kind in _SEQUENCES:
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
    else:
        raise TypeError(f"checkpoint value {where or '(the whole object)'} is a "
                        f"{kind.__module__}.{kind.__qualname__}, which a weights-only load cannot "
                        "read: store tensors, dicts, lists and plain scalars only (e.g. float(x), "
                        "x.tolist(), dataclasses.asdict(x))")


def _reason(exc: Exception) -> str:
    """What went wrong, without torch's advice around it (which suggests weights_only=False)."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation")[0]
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__}: cut short"


def _refused_globals(path: Path) -> list[str]:
    """The classes and functions a file's pickle names beyond the weights-only allow-list, read
    without unpickling it; empty when the file is no pickle at all."""
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip or not a pickle: the caller reports it as unreadable
        return []


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """The torch, data-order and (when present) CUDA RNG states: tensors, so weights-only."""
    state = {"torch": torch.get_rng_state(), "data": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
