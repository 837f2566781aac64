"""Our own ChestMNIST pretraining: the study's recipe, whose checkpoint becomes init
``chestmnist``. Multi-label (14 findings), BCE-with-logits, Adam lr 1e-3, batch 128, lr x0.1
after 50% and 75% of the epochs (epochs 50 and 75 of 100 in profile ``paper``). The
checkpoint is chosen on the ChestMNIST val split (macro AUROC); its test split is never used.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from ..data.real import Split, load_real
from ..errors import SpecError
from ..catalog import PROFILES
from . import checkpoints as ck
from .epochs import Fit, fit_epochs
from .events import Emit, Started, ignore
from .loop import Preprocess, Throttle, batch_slices, predict_logits, resolve_device, to_device
from .models import build_model, chestmnist_checkpoint_path, model_input_stats
from .progress import Eta

N_FINDINGS = 14


@dataclass(frozen=True)
class PretrainSpec:
    """Frozen spec of one pretraining; stored in the checkpoint it produces."""

    arch: str
    profile: str
    input_size: int
    epochs: int
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    decay_at: tuple[float, ...] = (0.5, 0.75)  # lr x decay_rate after these fractions of epochs
    decay_rate: float = 0.1
    train_limit: int | None = None  # first N train images (quick/smoke only)
    val_limit: int | None = None
    seed: int = 0

    @property
    def milestones(self) -> list[int]:
        """Epochs (1-based) after which the lr drops: [50, 75] for 100 epochs."""
        return [max(1, round(self.epochs * f)) for f in self.decay_at]

    @property
    def pretrain_id(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Epoch counts and subsets per profile; the input size follows the training profile of the
# same name, so a `quick` run finds a `quick` checkpoint of the right size.
_SCALE = {"paper": (100, None, None), "quick": (6, 20_000, 2_000), "strong": (6, 20_000, 2_000),
          "smoke": (1, 256, 256)}


def make_pretrain_spec(arch: str, profile: str = "quick", seed: int = 0,
                       epochs: int | None = None, input_size: int | None = None) -> PretrainSpec:
    """The pretraining spec for ``arch`` under ``profile`` (epochs/input size overridable)."""
    if profile not in _SCALE:
        raise SpecError(f"unknown profile {profile!r}; choose one of {sorted(_SCALE)}")
    n_epochs, train_limit, val_limit = _SCALE[profile]
    n_epochs = n_epochs if epochs is None else int(epochs)
    if n_epochs <= 0:
        raise SpecError(f"epochs must be positive, got {epochs!r}")
    size = input_size or PROFILES[profile].input_size
    return PretrainSpec(arch, profile, int(size), n_epochs, train_limit=train_limit,
                        val_limit=val_limit, seed=int(seed))


def _take(split: Split, limit: int | None) -> Split:
    return split if limit is None else Split(split.images[:limit], split.labels[:limit])


def macro_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUROC over the findings that have both classes in ``labels`` (NaN if none)."""
    keep = [j for j in range(labels.shape[1]) if 0 < labels[:, j].sum() < len(labels)]
    if not keep:
        return float("nan")
    return float(roc_auc_score(labels[:, keep], scores[:, keep], average="macro"))


def pretrain_chestmnist(spec: PretrainSpec, out: Path | None = None, emit: Emit = ignore,
                        device: str | None = None, root: Path | None = None,
                        should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Pretrain ``spec.arch`` on ChestMNIST and save the val-best weights to ``out``
    (default: the path init ``chestmnist`` looks for). Returns the checkpoint's card."""
    t0, dev = time.time(), resolve_device(device)
    out = Path(out) if out else chestmnist_checkpoint_path(spec.arch, spec.input_size, spec.profile)
    train = _take(load_real("train", flag="chestmnist", root=root), spec.train_limit)
    val = _take(load_real("val", flag="chestmnist", root=root), spec.val_limit)
    torch.manual_seed(spec.seed)
    model = build_model(spec.arch, "scratch", spec.input_size, num_classes=N_FINDINGS)
    model = model.to(dev, memory_format=torch.channels_last)
    mean, std = model_input_stats(model)
    prep = Preprocess(mean, std, spec.input_size)
    gen = torch.Generator(device=dev)
    gen.manual_seed(spec.seed)
    x, y = to_device(train.images, dev), to_device(train.labels.astype(np.float32), dev)
    val_x = to_device(val.images, dev)
    opt = create_optimizer_v2(model, spec.optimizer, lr=spec.lr, weight_decay=0.0)
    # timm's multistep applies milestone m from epoch index m - 1 (its documented convention,
    # unlike torch's MultiStepLR); +1 makes "after epoch m" mean epochs m, m+1... (0-based).
    sched, _ = create_scheduler_v2(opt, "multistep", num_epochs=spec.epochs,
                                   decay_milestones=[m + 1 for m in spec.milestones],
                                   decay_rate=spec.decay_rate)
    run_id = f"pretrain-{spec.pretrain_id}"
    emit(Started(run_id, dataclasses.asdict(spec), str(dev), spec.epochs))
    steps = len(batch_slices(len(x), spec.batch_size))
    fit = Fit(run_id, emit, spec.epochs, spec.batch_size, Eta(spec.epochs * steps),
              Throttle(1.0), should_stop)
    best, best_state, history = -1.0, None, []

    def evaluate() -> dict:
        scores = torch.sigmoid(predict_logits(model, val_x, prep)).numpy()
        return {"auroc": macro_auroc(val.labels, scores)}

    for row, is_best in fit_epochs(fit, model, x, y, prep, F.binary_cross_entropy_with_logits,
                                   opt, sched, range(spec.epochs), gen, evaluate,
                                   lambda v: v["auroc"] > best or best_state is None,
                                   lr_at="start"):  # the multistep schedule steps per epoch
        if is_best:
            best = row["val_auroc"]
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        history.append(row)
    card = {"name": out.stem, "arch": spec.arch, "input_size": spec.input_size,
            "profile": spec.profile, "spec": dataclasses.asdict(spec),
            "metrics": {"val_macro_auroc": best, "train_images": len(x), "val_images": len(val_x)},
            "wall_s": time.time() - t0, "device": str(dev), "history": history}
    info = getattr(model, "synthmed", {})
    ck.save({"arch": spec.arch, "timm_name": info.get("timm_name"), "input_size": spec.input_size,
             "model": best_state, "spec": card["spec"], "metrics": card["metrics"]}, out)
    card["path"] = str(out)
    return card
