"""What a finished run predicts for an image and where it looks: probabilities and CAM overlays.

A run's model is rebuilt from its stored spec and ``best.pt`` (``load_run_model``). CAMs come
from pytorch-grad-cam, one class per method in ``CAM_METHODS``; the target layer is the one
``cam.cam_target_layer`` picks for the run's input size (a map of at least 4x4, never
resnet50's 1x1 ``layer4`` at 28 px) and ViT tokens go through ``cam.cam_reshape_transform``.
Every result names its layer and map size and says when the map came out constant, so the app
never shows a blank overlay as if it meant something.
"""
from __future__ import annotations

import statistics
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytorch_grad_cam
import torch
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from .. import catalog
from ..data.real import CLASS_NAMES
from ..bundle import _weights as bundle_weights
from ..errors import BundleError, ModelError, SpecError
from ..grid import RunSpec
from ..training import checkpoints as ck
from ..training.loop import Preprocess, predict_logits
from ..training.models import build_model, model_input_stats
from .layers import cam_reshape_transform, cam_target_layer
from .overlays import DISPLAY_SIZE, CamResult, is_constant

# The catalog's CAM names -> pytorch-grad-cam classes (the names and targets live in catalog).
CAM_METHODS: dict[str, type] = {name: getattr(pytorch_grad_cam, cls)
                                for name, cls in catalog.CAM_METHODS.items()}
CAM_TARGETS = catalog.CAM_TARGETS
PNEUMONIA = CAM_TARGETS["pneumonia"]  # the app shows P(pneumonia) of every image

# Grad-CAM registers hooks on the model: one CAM at a time per model, even when the app shares
# a cached model between sessions.
_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


# ---- models -----------------------------------------------------------------------------------


def load_run_model(store, run_id: str, device: str = "cpu") -> nn.Module:
    """Rebuild a finished run's classifier from its stored spec and checkpoint, in eval mode.

    The architecture and input size come from the run's spec, the weights from the checkpoint
    path the store recorded (init files are not needed: the checkpoint holds every weight)
    or, when that is not here, from the weights a bundle brought (``bundle._weights``).
    ``model.synthmed`` gains ``run_id``, ``setting``, ``ratio``, ``synthetic``, ``seed`` and
    ``profile``. Raises SpecError for an unknown or unfinished run, DataError for a missing or
    unreadable checkpoint and ModelError when its weights do not fit the architecture.
    """
    run = store.run(run_id)
    if run is None:
        raise SpecError(f"run {run_id!r} is not in the store {store.path}")
    if run["status"] != "finished":
        raise SpecError(f"run {run_id} is {run['status']}: only finished runs have a checkpoint")
    spec = RunSpec.from_dict(run["spec"])
    path = Path(run.get("checkpoint") or "")
    if not path.is_file() and bundle_weights.weights_file(run_id) is not None:
        return _with_meta(_bundle_model(spec), spec, device)
    state = ck.load(path, map_location=device)
    if state.get("run_id") not in (None, run_id):
        raise ModelError(f"{path} belongs to run {state.get('run_id')}, not {run_id}")
    model = build_model(spec.cell.arch, "scratch", spec.profile.input_size, num_classes=2)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as exc:
        raise ModelError(f"checkpoint {path} does not fit {spec.cell.arch} at "
                         f"{spec.profile.input_size} px: {str(exc)[:600]}") from exc
    return _with_meta(model, spec, device)


def _bundle_model(spec: RunSpec) -> nn.Module:
    """A run's model from the weights a bundle brought (``bundle._weights.load_state``: hash,
    spec and, on the first use, fidelity checked); ModelError when they are refused."""
    try:
        model, record = bundle_weights.load_state(spec)
    except BundleError as exc:
        raise ModelError(f"the bundle weights of run {spec.run_id} cannot be used: {exc}") from exc
    model.synthmed["weights_from"] = f"bundle {record.get('bundle')}"
    return model


def _with_meta(model: nn.Module, spec: RunSpec, device: str) -> nn.Module:
    model.synthmed.update(run_id=spec.run_id, init=spec.cell.init, setting=spec.cell.setting,
                          ratio=spec.cell.ratio, synthetic=spec.cell.synthetic, seed=spec.seed,
                          profile=spec.profile.name, data_size=spec.profile.data_size)
    return model.to(device).eval()


def model_preprocess(model: nn.Module) -> Preprocess:
    """The evaluation preprocessing of a model built by ``models.build_model``: its timm
    mean/std and its input size (bilinear resize on the device, as in training)."""
    mean, std = model_input_stats(model)
    return Preprocess(mean, std, int(model.synthmed["input_size"]), channels_last=False)


def predict_proba(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """P(pneumonia) of each uint8 image (N x H x W, or one H x W) as float64 (N,)."""
    x = _batch(images, model)
    with _lock(model):
        logits = predict_logits(model, x, model_preprocess(model))
    return torch.softmax(logits, dim=1)[:, PNEUMONIA].double().numpy()


# ---- CAMs -------------------------------------------------------------------------------------


def cam_overlays(model: nn.Module, images: np.ndarray, method: str = "GradCAM",
                 target: str = "predicted", display_size: int = DISPLAY_SIZE) -> list[CamResult]:
    """CAMs of uint8 images (N x H x W or one H x W) with ``method`` (a key of CAM_METHODS)
    for the class ``target`` (a key of CAM_TARGETS), each overlaid on its image at
    ``display_size`` px."""
    cam_class = _method(method)
    if target not in CAM_TARGETS:
        raise SpecError(f"unknown CAM target {target!r}; choose one of {list(CAM_TARGETS)}")
    images = np.asarray(images)
    images = images[None] if images.ndim == 2 else images
    input_size = int(model.synthmed["input_size"])
    layer, name, side = _target_layer(model, input_size)
    x = model_preprocess(model)(_batch(images, model))
    fixed = CAM_TARGETS[target]
    targets = None if fixed is None else [ClassifierOutputTarget(fixed)] * len(images)
    with _lock(model), cam_class(model=model, target_layers=[layer],
                                 reshape_transform=cam_reshape_transform(model)) as cam:
        maps = cam(input_tensor=x, targets=targets)  # None: each image's predicted class
        probs = torch.softmax(cam.outputs.detach().float(), dim=1)[:, PNEUMONIA].cpu().numpy()
    model.zero_grad(set_to_none=True)  # gradient-based methods leave .grad on every weight
    explained = [CLASS_NAMES[int(p > 0.5) if fixed is None else fixed] for p in probs]
    return [CamResult(cam=m.astype(np.float32), image=np.asarray(img, np.uint8), layer=name,
                      map_side=int(side), prob=float(p), method=method, target=t,
                      constant=is_constant(m), display_size=display_size)
            for img, m, p, t in zip(images, maps, probs, explained)]


def cam_latency_ms(model: nn.Module, image: np.ndarray, method: str = "GradCAM", n: int = 10,
                   warmup: int = 1) -> float:
    """Median wall time in ms of one ``cam_overlays`` call on one image, over ``n`` calls
    after ``warmup`` untimed ones (the first call pays for lazy initialisation)."""
    times = []
    for i in range(warmup + max(1, n)):
        t0 = time.perf_counter()
        cam_overlays(model, image, method)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


# ---- helpers ----------------------------------------------------------------------------------


def _method(name: str) -> type:
    if name not in CAM_METHODS:
        raise SpecError(f"unknown CAM method {name!r}; choose one of {list(CAM_METHODS)}")
    return CAM_METHODS[name]


def _batch(images: np.ndarray, model: nn.Module) -> torch.Tensor:
    arr = np.asarray(images)
    arr = arr[None] if arr.ndim == 2 else arr
    if arr.dtype != np.uint8 or arr.ndim != 3 or len(arr) == 0:
        raise SpecError(f"images must be uint8 H x W or N x H x W, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(np.array(arr)).to(next(model.parameters()).device)


_TARGETS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _target_layer(model: nn.Module, input_size: int) -> tuple[nn.Module, str, int]:
    """``cam_target_layer`` once per model and input size: finding it costs a forward pass,
    which every CAM call paid again before (it is the same layer every time)."""
    with _LOCKS_GUARD:
        per_model = _TARGETS.setdefault(model, {})
    if input_size not in per_model:
        per_model[input_size] = cam_target_layer(model, input_size)
    return per_model[input_size]


def _lock(model: nn.Module) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(model, threading.Lock())


def library_cam_ms(model: nn.Module, image: np.ndarray, method: str = "GradCAM", n: int = 10,
                   warmup: int = 1) -> float:
    """Median ms of pytorch-grad-cam's own call on one image, as its README uses it (the CAM
    object built, called on a ready input tensor, released), on the same layer: the floor
    ``cam_overlays`` is measured against."""
    layer, _, _ = _target_layer(model, int(model.synthmed["input_size"]))
    x = model_preprocess(model)(_batch(image, model))
    times = []
    for i in range(warmup + max(1, n)):
        t0 = time.perf_counter()
        with _method(method)(model=model, target_layers=[layer],
                             reshape_transform=cam_reshape_transform(model)) as cam:
            cam(input_tensor=x, targets=None)
        model.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def cam_bench(archs: tuple[str, ...] = catalog.STUDY_ARCHS, input_size: int = 28,
              methods: tuple[str, ...] | None = None, n: int = 5, seed: int = 0
              ) -> list[dict]:
    """CAM latency per image on this machine's CPU for each arch and method: models built by
    ``models.build_model`` at ``input_size`` with random (seeded) weights, which cost the same
    as trained ones; one 28 px image, resized by the model's preprocessing. Returns
    ``bench_model``'s rows with ``arch`` and ``input_size``."""
    image = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    rows = []
    for arch in archs:
        torch.manual_seed(seed)
        model = build_model(arch, "scratch", input_size).eval()
        rows += [{"arch": arch, "input_size": input_size, **r}
                 for r in bench_model(model, image, methods, n)]
    return rows


def bench_model(model: nn.Module, image: np.ndarray, methods: tuple[str, ...] | None = None,
                n: int = 5) -> list[dict]:
    """Per method: layer, map_side, method, ms (``cam_overlays`` on ``image``, the median of
    ``n``), library_ms (pytorch-grad-cam's own call, ``library_cam_ms``) and their ratio; the
    two are timed in alternating rounds, side by side."""
    _, layer, side = _target_layer(model, int(model.synthmed["input_size"]))
    rows = []
    for method in methods or tuple(CAM_METHODS):
        ours, lib = [], []
        for _ in range(max(1, n)):  # alternating: both see the same machine load
            ours.append(cam_latency_ms(model, image, method, n=1))
            lib.append(library_cam_ms(model, image, method, n=1))
        ms, library_ms = statistics.median(ours), statistics.median(lib)
        rows.append({"layer": layer, "map_side": side, "method": method, "ms": ms,
                     "library_ms": library_ms, "ratio": ms / library_ms})
    return rows
