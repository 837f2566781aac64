"""A built model's P(pneumonia) on uint8 images, with its own evaluation preprocessing: what
Grad-CAM, Predict and a bundle's weights fidelity check all call (one definition)."""
from __future__ import annotations

import threading
import weakref

import numpy as np
import torch
from torch import nn

from .. import catalog
from ..errors import SpecError
from .loop import Preprocess, predict_logits
from .models import model_input_stats

PNEUMONIA = catalog.CAM_TARGETS["pneumonia"]  # the class whose probability is shown

# Grad-CAM registers hooks on the model: one forward at a time per model, even when the app
# shares a cached model between sessions.
_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_preprocess(model: nn.Module) -> Preprocess:
    """The evaluation preprocessing of a model built by ``models.build_model``: its timm
    mean/std and its input size (bilinear resize on the device, as in training)."""
    mean, std = model_input_stats(model)
    return Preprocess(mean, std, int(model.synthmed["input_size"]), channels_last=False)


def predict_proba(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """P(pneumonia) of each uint8 image (N x H x W, or one H x W) as float64 (N,)."""
    x = as_batch(images, model)
    with model_lock(model):
        logits = predict_logits(model, x, model_preprocess(model))
    return torch.softmax(logits, dim=1)[:, PNEUMONIA].double().numpy()


def as_batch(images: np.ndarray, model: nn.Module) -> torch.Tensor:
    """uint8 H x W or N x H x W images as a tensor on the model's device."""
    arr = np.asarray(images)
    arr = arr[None] if arr.ndim == 2 else arr
    if arr.dtype != np.uint8 or arr.ndim != 3 or len(arr) == 0:
        raise SpecError(f"images must be uint8 H x W or N x H x W, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.array(arr)).to(next(model.parameters()).device)


def model_lock(model: nn.Module) -> threading.Lock:
    """The one lock of ``model``: hold it for any forward pass that may meet CAM hooks."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(model, threading.Lock())
