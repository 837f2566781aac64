"""Small classifiers trained with the project's own primitives, for measuring synthetic sets.

The *domain encoder* is a classifier trained on the REAL train split; its penultimate
features are the space in which FID/KID, precision/recall, memorisation and centroid
selection are measured (Inception weights cannot be downloaded here), and its softmax is the
"real-trained classifier" that confirms synthetic images. It is cached under
``data/encoders/`` per (arch, profile, seed) and retrained when its config or the real train
data changed. ``train_classifier`` is also what TSTR trains on a synthetic set.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from torch import nn

from ..analysis.metrics import run_metrics
from ..data.real import IMAGE_SIZE, Split, load_real
from ..errors import SpecError
from ..training import checkpoints as ck
from ..training.compose import real_subset
from ..training.loop import Preprocess, predict_logits, resolve_device, to_device, train_epoch
from ..training.models import build_model, model_input_stats
from .encoder_files import ClassifierConfig, encoder_path
from .generators import fingerprint


ENCODER_PROFILES: dict[str, ClassifierConfig] = {
    "smoke": ClassifierConfig(epochs=1, batch_size=64, warmup_epochs=0, train_limit=256),
    "quick": ClassifierConfig(epochs=8),
    "paper": ClassifierConfig(epochs=30, warmup_epochs=3),
}


def train_classifier(images: np.ndarray, labels: np.ndarray, cfg: ClassifierConfig,
                     device: str | None = None,
                     should_stop: Callable[[], bool] | None = None) -> nn.Module:
    """Train a 28 px, 1-channel timm classifier (``cfg.arch``, scratch) on uint8 images and 0/1
    labels with the shared training primitives; returns it in eval mode, with ``.preprocess``."""
    if len(images) < 2:
        raise SpecError(f"a classifier needs at least 2 training images, got {len(images)}")
    dev = resolve_device(device)
    rows = real_subset(np.asarray(labels), cfg.train_limit, cfg.seed)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.arch, "scratch", IMAGE_SIZE, num_classes=2)
    model = model.to(dev, memory_format=torch.channels_last)
    mean, std = model_input_stats(model)
    model.preprocess = Preprocess(mean, std, IMAGE_SIZE)
    x, y = to_device(images[rows], dev), to_device(np.asarray(labels)[rows].astype(np.int64), dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(cfg.seed)
    steps = max(1, -(-len(rows) // cfg.batch_size))
    opt = create_optimizer_v2(model, "adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched, _ = create_scheduler_v2(opt, "cosine", num_epochs=cfg.epochs,
                                   warmup_epochs=cfg.warmup_epochs, warmup_lr=1e-6, min_lr=1e-6,
                                   step_on_epochs=False, updates_per_epoch=steps)
    for epoch in range(cfg.epochs):
        train_epoch(model, x, y, model.preprocess, F.cross_entropy, opt, sched, epoch,
                    cfg.batch_size, gen, should_stop=should_stop)
    return model.eval()


def evaluate_classifier(model: nn.Module, split: Split) -> dict[str, float]:
    """Accuracy, AUROC, F1, sensitivity, specificity of ``model`` on a real split."""
    dev = next(model.parameters()).device
    logits = predict_logits(model, to_device(split.images, dev), model.preprocess)
    return run_metrics(split.labels, torch.softmax(logits, 1)[:, 1].numpy())


class FeatureModule(nn.Module):
    """uint8 images (N x H x W) -> penultimate features (N x d): the ``feature=`` module that
    torchmetrics' FID/KID call, and what every feature-space figure uses."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_features = int(model.num_features)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.model.preprocess(images.to(next(self.model.parameters()).device))
        out = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        return out.float().flatten(1)


class DomainEncoder:
    """A real-trained classifier and its feature space (see the module docstring)."""

    def __init__(self, model: nn.Module, info: dict) -> None:
        self.model, self.info = model.eval(), info
        self.feature = FeatureModule(model)
        self._real: dict[tuple[str, str], np.ndarray] = {}

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def features(self, images: np.ndarray, batch: int = 512) -> np.ndarray:
        """Penultimate features of uint8 images, float32 N x d."""
        x = to_device(images, self.device)
        return torch.cat([self.feature(x[i:i + batch]).cpu() for i in range(0, len(x), batch)]
                         ).numpy() if len(x) else np.zeros((0, self.feature.num_features), np.float32)

    def real_features(self, split: str) -> np.ndarray:
        """Features of a real split ("train", "val"), computed once per encoder and file."""
        data = load_real(split)
        key = (split, fingerprint(data))
        if key not in self._real:
            self._real[key] = self.features(data.images)
        return self._real[key]

    def probs(self, images: np.ndarray) -> np.ndarray:
        """Softmax over (normal, pneumonia), N x 2."""
        logits = predict_logits(self.model, to_device(images, self.device), self.model.preprocess)
        return torch.softmax(logits, 1).numpy()


def domain_encoder(profile: str = "quick", seed: int = 0, device: str | None = None,
                   cfg: ClassifierConfig | None = None, cache: bool = True) -> DomainEncoder:
    """The domain encoder of ``profile`` (or ``cfg``) trained on the real train split: loaded
    from its cache when config and data match, else trained (seconds to a minute on a CPU),
    scored on the real val split and cached. Its info (config, val metrics) goes in cards."""
    if cfg is None:
        if profile not in ENCODER_PROFILES:
            raise SpecError(f"unknown profile {profile!r}; choose one of {sorted(ENCODER_PROFILES)}")
        cfg = dataclasses.replace(ENCODER_PROFILES[profile], seed=int(seed))
    train = load_real("train")  # never val or test: the encoder only ever learns real train
    data, path = fingerprint(train), encoder_path(cfg, profile)
    want = dataclasses.asdict(cfg)
    if cache and path.is_file():
        blob = ck.load(path)
        if blob.get("config") == want and blob.get("data") == data:
            model = build_model(cfg.arch, "scratch", IMAGE_SIZE, num_classes=2)
            model.load_state_dict(blob["model"])
            model = model.to(resolve_device(device), memory_format=torch.channels_last)
            mean, std = model_input_stats(model)
            model.preprocess = Preprocess(mean, std, IMAGE_SIZE)
            return DomainEncoder(model, blob["info"])
        # A stale cache is derived data: retrain it rather than stop the user.
    model = train_classifier(train.images, train.labels, cfg, device)
    val = evaluate_classifier(model, load_real("val"))
    info = {"kind": "domain", "arch": cfg.arch, "profile": profile, "config": want,
            "train_data": data, "val_accuracy": val["accuracy"], "val_auroc": val["auroc"],
            "path": str(path) if cache else None}
    if cache:
        ck.save({"config": want, "data": data, "info": info,
                 "model": {k: v.cpu() for k, v in model.state_dict().items()}}, path)
    return DomainEncoder(model, info)
