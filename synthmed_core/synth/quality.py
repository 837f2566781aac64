"""How good, how useful and how private a synthetic set is, measured against real images.

- FID and KID (torchmetrics) in the feature space of a ``feature=`` module: the domain
  encoder by default (a classifier trained on real train, see ``encoder``), Inception v3 when
  torch-fidelity and its weights file are present locally (never downloaded).
- Precision and recall of the feature manifolds (Kynkäänniemi et al. 2019, k-NN balls).
- TSTR: a small classifier trained on the synthetic set, scored on the real VAL split.
- Memorisation: each synthetic image's distance to its nearest real TRAIN image, in pixel and
  feature space; a near-copy is closer than the 1st percentile of real val -> train distances.
The reference is always the real train split; real val against it is reported beside every
figure (``baseline_real_val``): what "as good as real" looks like in the same feature space.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from .. import paths
from ..data.real import Split, load_real
from ..errors import ModelError, SpecError
from .distances import nearest, pixels
from .encoder import (ClassifierConfig, DomainEncoder, domain_encoder, evaluate_classifier,
                      train_classifier)
from ..data.synthetic import load_set, set_dir, update_card

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"  # torch-fidelity's FID Inception weights


@dataclass(frozen=True)
class QualityProfile:
    tstr: ClassifierConfig
    reference_limit: int | None = None  # real images used as reference (smoke only)
    kid_subsets: int = 50
    k: int = 3  # neighbours for precision/recall (Kynkäänniemi et al.'s default)
    copy_quantile: float = 0.01  # near-copy threshold: this quantile of real val -> train


PROFILES: dict[str, QualityProfile] = {
    "smoke": QualityProfile(ClassifierConfig(epochs=1, batch_size=64, warmup_epochs=0,
                                             train_limit=256), reference_limit=512, kid_subsets=5),
    "quick": QualityProfile(ClassifierConfig(epochs=10)),
    "paper": QualityProfile(ClassifierConfig(epochs=30, warmup_epochs=3)),
}


# ---- feature extractors: name -> builder(domain encoder) -> nn.Module ---------------------


def inception_weights() -> Path | None:
    """The local Inception weights file when torch-fidelity can use it, else None."""
    path = paths.weights_dir() / INCEPTION_FILE
    try:
        import torch_fidelity  # noqa: F401  (torchmetrics' Inception needs it)
    except ImportError:
        return None
    return path if path.is_file() else None


class InceptionFeatures(nn.Module):
    """Grayscale uint8 N x H x W -> torchmetrics' FID Inception v3 pool features (N x 2048)."""

    def __init__(self, weights: Path) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3
        self.net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                      feature_extractor_weights_path=str(weights))
        self.num_features = 2048

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()  # it resizes to 299 itself
        return self.net(x).reshape(len(x), -1)


def _inception_weights_or_fail() -> Path:
    weights = inception_weights()
    if weights is None:
        raise ModelError(f"Inception features need torch-fidelity installed and its weights "
                         f"file {paths.weights_dir() / INCEPTION_FILE} (synthmed never downloads). "
                         "Use --feature domain (the default when they are absent).")
    return weights


def _inception(encoder: DomainEncoder) -> nn.Module:
    return InceptionFeatures(_inception_weights_or_fail()).to(encoder.device)


FEATURES: dict[str, Callable[[DomainEncoder], nn.Module]] = {
    "domain": lambda encoder: encoder.feature,
    "inception": _inception,
}


def resolve_feature(name: str) -> str:
    """``auto`` -> ``inception`` when its weights are present locally, else ``domain``."""
    if name == "auto":
        return "inception" if inception_weights() is not None else "domain"
    if name not in FEATURES:
        raise SpecError(f"unknown feature space {name!r}; choose auto or one of {sorted(FEATURES)}")
    return name


def check_feature(name: str) -> str:
    """``resolve_feature``, and for ``inception`` the ModelError of missing weights now rather
    than after the domain encoder is trained (a job queue calls it at submit time)."""
    kind = resolve_feature(name)
    if kind == "inception":
        _inception_weights_or_fail()
    return kind


# ---- the metrics ---------------------------------------------------------------------------


def _batches(images: np.ndarray, device, size: int = 512):
    for i in range(0, len(images), size):
        yield torch.from_numpy(np.array(images[i:i + size])).to(device)  # a writable copy


def fid_kid(real: np.ndarray, fake: np.ndarray, feature: nn.Module, subsets: int = 50,
            seed: int = 0) -> dict[str, float]:
    """FID and KID (mean, std over ``subsets`` subsets of up to 1,000) between two sets of uint8
    images N x H x W, with torchmetrics and ``feature`` as the feature extractor."""
    if len(real) < 2 or len(fake) < 2:
        raise SpecError(f"FID/KID need at least 2 images per side, got {len(real)} and {len(fake)}")
    device = next(feature.parameters()).device
    fid = FrechetInceptionDistance(feature=feature).to(device)
    with warnings.catch_warnings():  # "KID keeps every feature in memory": ours are small
        warnings.simplefilter("ignore", UserWarning)
        kid = KernelInceptionDistance(feature=feature, subsets=subsets,
                                      subset_size=min(1000, len(real), len(fake))).to(device)
    for images, is_real in ((real, True), (fake, False)):
        for batch in _batches(images, device):
            fid.update(batch, real=is_real)
            kid.update(batch, real=is_real)
    torch.manual_seed(seed)  # KID draws its subsets from the global RNG
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid_mean": float(kid_mean), "kid_std": float(kid_std)}


def _kth_radius(feats: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    out = []
    for i in range(0, len(feats), chunk):
        d = torch.cdist(feats[i:i + chunk], feats)
        out.append(d.kthvalue(min(k + 1, len(feats)), dim=1).values)  # +1: itself at distance 0
    return torch.cat(out)


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int = 1024
            ) -> torch.Tensor:
    out = []
    for i in range(0, len(points), chunk):
        d = torch.cdist(points[i:i + chunk], centres)
        out.append((d <= radii[None, :]).any(dim=1))
    return torch.cat(out)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict[str, float]:
    """k-NN precision (share of fake features inside the real manifold: a union of balls
    reaching each real point's k-th neighbour) and recall (share of real inside the fake one)."""
    r, f = torch.from_numpy(np.asarray(real, np.float32)), torch.from_numpy(np.asarray(fake, np.float32))
    precision = _inside(f, r, _kth_radius(r, k)).float().mean()
    recall = _inside(r, f, _kth_radius(f, k)).float().mean()
    return {"precision": float(precision), "recall": float(recall), "k": k}


_ROUNDING = 1e-6  # float64 distances between identical rows are ~1e-7, not exactly 0


def memorisation(synthetic: tuple[np.ndarray, np.ndarray], train: tuple[np.ndarray, np.ndarray],
                 val: tuple[np.ndarray, np.ndarray], quantile: float = 0.01) -> dict:
    """Nearest real TRAIN image of every synthetic image, in pixel space (RMS per pixel, 0-1)
    and feature space; each argument is an (images uint8, features) pair.

    A synthetic image is a near-copy in a space when it is at most as far from real train as
    the closest ``quantile`` of real VAL images are. Val images that are exact copies of train
    images (PneumoniaMNIST val holds 8) are left out of that calibration: they are not held
    out, and would pull the threshold to 0. ``near_copy_share`` counts images flagged in either
    space (the cautious reading); ``nearest_train_index`` is in pixel space.
    """
    out = {"calibration": f"{quantile:.0%} quantile of real val -> nearest real train "
                          "distance, val images identical to a train image left out"}
    flags = []
    for space, pick in (("pixel", lambda p: pixels(p[0])), ("feature", lambda p: p[1])):
        d_val, _ = nearest(pick(val), pick(train))
        d_syn, idx = nearest(pick(synthetic), pick(train))
        held_out = d_val[d_val > _ROUNDING]
        threshold = float(np.quantile(held_out if len(held_out) else d_val, quantile))
        flagged = d_syn <= threshold
        flags.append(flagged)
        out[space] = {"threshold": threshold, "near_copy_share": float(flagged.mean()),
                      "exact_copy_share": float((d_syn <= _ROUNDING).mean()),
                      "median_distance": float(np.median(d_syn)),
                      "val_median_distance": float(np.median(d_val)),
                      "val_exact_copies_of_train": int((d_val <= _ROUNDING).sum())}
        if space == "pixel":
            out["nearest_train_index"] = [int(i) for i in idx]
    out["near_copy_share"] = float(np.logical_or(*flags).mean())
    return out


def tstr(synthetic: Split, val: Split, cfg: ClassifierConfig, device: str | None = None) -> dict:
    """Train on synthetic, test on real: a classifier trained on the set, scored on real val."""
    model = train_classifier(synthetic.images, synthetic.labels, cfg, device)
    m = evaluate_classifier(model, val)
    return {"accuracy": m["accuracy"], "auroc": m["auroc"], "f1": m["f1"],
            "n_train": int(len(synthetic.labels)), "split": "val", "config": dataclasses.asdict(cfg)}


# ---- everything for one set ----------------------------------------------------------------


def measure_quality(name: str, profile: str = "quick", feature: str = "auto", seed: int = 0,
                    device: str | None = None, encoder: DomainEncoder | None = None,
                    store=None) -> dict:
    """Every quality figure of set ``name`` against the real train split (TSTR on real val),
    written into the set's card under ``quality`` and, with ``store``, re-registered.
    Returns the ``quality`` dict. ``encoder`` defaults to the cached domain encoder."""
    if profile not in PROFILES:
        raise SpecError(f"unknown profile {profile!r}; choose one of {sorted(PROFILES)}")
    t0, prof = time.time(), PROFILES[profile]
    synthetic, card = load_set(name)
    kind = check_feature(feature)  # before the encoder trains
    encoder = encoder or domain_encoder(profile, seed, device)
    extractor = FEATURES[kind](encoder)
    train, val = load_real("train"), load_real("val")
    sets = {"train": train, "val": val, "synthetic": synthetic}
    feats = {k: encoder.real_features(k) if kind == "domain" and k != "synthetic"
             else _features(extractor, s.images) for k, s in sets.items()}
    pairs = {k: (s.images, feats[k]) for k, s in sets.items()}
    # FID/KID run the extractor inside torchmetrics: a smoke profile caps the real reference.
    ref = _limit(train, prof.reference_limit, np.random.default_rng(seed)).images
    quality = {"reference": "real train split", "profile": profile, "seed": seed,
               "feature": {"kind": kind, **({"encoder": encoder.info} if kind == "domain" else {})},
               **fid_kid(ref, synthetic.images, extractor, prof.kid_subsets, seed),
               **precision_recall(feats["train"], feats["synthetic"], prof.k),
               "tstr": tstr(synthetic, val, dataclasses.replace(prof.tstr, seed=seed), device),
               "memorisation": memorisation(pairs["synthetic"], pairs["train"], pairs["val"],
                                            prof.copy_quantile),
               "baseline_real_val": {**fid_kid(ref, val.images, extractor, prof.kid_subsets, seed),
                                     **precision_recall(feats["train"], feats["val"], prof.k)},
               "n_reference": int(len(ref)),
               "computed_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    quality["wall_s"] = round(time.time() - t0, 1)
    new_card = update_card(name, quality=quality)
    if store is not None:
        store.register_synthetic_set(name, new_card, str(set_dir(name)))
    return quality


def _limit(split: Split, limit: int | None, rng: np.random.Generator) -> Split:
    if limit is None or limit >= len(split.labels):
        return split
    rows = np.sort(rng.choice(len(split.labels), limit, replace=False))
    return Split(split.images[rows], split.labels[rows])


def _features(extractor: nn.Module, images: np.ndarray) -> np.ndarray:
    device = next(extractor.parameters()).device
    return torch.cat([extractor(b).cpu() for b in _batches(images, device)]).numpy()
