"""The training data of every phase of a run, composed from the real train split and a
synthetic set. ``compose`` is the pure heart of the experiment: from arrays alone it builds
exactly the images one phase trains on, deterministic by seed; ``build_plan`` loads the files
and calls it for each phase of the spec's setting. Val and test are always the real splits:
synthetic images never reach them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..data.real import CLASS_NAMES, IMAGE_SIZE, PhaseData, Split, TrainPlan, load_real
from ..errors import DataError, SpecError
from ..catalog import SETTINGS
from ..grid import RunSpec
from .augment import random_affine

ORIGINS = {"real": 0, "synthetic": 1, "duplicate": 2}  # PhaseData.origin codes
# One salt per purpose: the draws of one seed are independent of each other, and a new purpose
# never changes an existing draw.
_SALTS = {"train_limit": 7411, "synthetic": 5347, "duplicates": 3109, "augment": 4051}


class _Part(NamedTuple):
    images: np.ndarray
    labels: np.ndarray
    origin: int
    index: np.ndarray


def compose(source: str, real: Split, synthetic: Split | None = None, *,
            ratio: float | None = None, seed: int = 0, train_limit: int | None = None,
            epochs: int = 0, warmup_epochs: int = 0, set_label: str = "the synthetic set"
            ) -> PhaseData:
    """Build the training data of one phase from arrays alone (no files; deterministic by seed).

    ``source`` is a PhaseDef.source: "real" (the real train split, or a class-stratified seeded
    subset of ``train_limit`` rows), "synthetic" (the whole set, or round(ratio x n_real) images),
    "real+synthetic" (real + round(ratio x n_real) synthetic) or "real+duplicates" (real +
    round(ratio x n_real) real images re-drawn with replacement and lightly augmented). Drawn
    counts per class follow the real train class proportions (largest remainder). Raises
    SpecError when the set has too few images of a class for the ratio.
    """
    if source not in _SOURCES:
        raise SpecError(f"unknown phase source {source!r}; choose one of {list(_SOURCES)}")
    if real.labels.ndim != 1:
        raise SpecError("phases are composed from binary labels (N,), e.g. PneumoniaMNIST; "
                        f"got labels of shape {real.labels.shape}")
    if "synthetic" in source:
        if synthetic is None:
            raise SpecError(f"phase source {source!r} needs a synthetic set (--synthetic NAME)")
        if synthetic.images.shape[1:] != real.images.shape[1:]:
            raise DataError(f"{set_label} has images of {synthetic.images.shape[1:]}, the real "
                            f"split {real.images.shape[1:]}; re-import or regenerate the set")
    if source in ("real+synthetic", "real+duplicates") and ratio is None:
        raise SpecError(f"phase source {source!r} needs a ratio (e.g. 1, 2 or 3)")
    if train_limit is not None and train_limit <= 0:
        raise SpecError(f"train_limit must be a positive number of images, got {train_limit}")
    rows = real_subset(real.labels, train_limit, seed)
    parts = _SOURCES[source](real, rows, synthetic, ratio, seed, train_limit, set_label)
    return PhaseData(
        source_name=source,
        images=np.concatenate([p.images for p in parts]).astype(np.uint8, copy=False),
        labels=np.concatenate([p.labels for p in parts]).astype(np.int64),
        origin=np.concatenate([np.full(len(p.index), p.origin, np.int8) for p in parts]),
        index=np.concatenate([p.index for p in parts]).astype(np.int64),
        epochs=int(epochs), warmup_epochs=int(warmup_epochs))


def allocate(total: int, weights) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` by largest remainder: they sum
    to ``total`` exactly; a tie in remainders goes to the lower class."""
    w = np.asarray(weights, dtype=np.float64)
    if total <= 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def real_subset(labels: np.ndarray, train_limit: int | None, seed: int) -> np.ndarray:
    """Rows of the real train split a run trains on: all of them, or ``train_limit`` rows drawn
    class-stratified with the seed (sorted, so the phase order stays the file's order)."""
    n = len(labels)
    if train_limit is None or train_limit >= n:
        return np.arange(n, dtype=np.int64)
    return _pick(labels, allocate(train_limit, _counts(labels)), _rng(seed, "train_limit"))


def _rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), _SALTS[purpose]])


def _counts(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=len(CLASS_NAMES))


def _pick(labels: np.ndarray, per_class, rng: np.random.Generator, replace: bool = False
          ) -> np.ndarray:
    # Without replacement: the first k of a seeded permutation per class, so a larger ratio
    # extends the draw of a smaller one. Sorted: deterministic order, the trainer shuffles.
    parts = []
    for cls, k in enumerate(per_class):
        rows = np.flatnonzero(labels == cls)
        if replace:
            parts.append(rng.choice(rows, size=int(k), replace=True) if k else rows[:0])
        else:
            parts.append(rows[rng.permutation(len(rows))[: int(k)]])
    return np.sort(np.concatenate(parts)).astype(np.int64)


def _real(real, rows, synthetic, ratio, seed, limit, set_label) -> list[_Part]:
    return [_Part(real.images[rows], real.labels[rows], ORIGINS["real"], rows)]


def _synthetic(real, rows, synthetic, ratio, seed, limit, set_label) -> list[_Part]:
    have = _counts(synthetic.labels)
    if ratio is None:
        if limit is None or limit >= len(synthetic.labels):
            idx = np.arange(len(synthetic.labels), dtype=np.int64)
            return [_Part(synthetic.images[idx], synthetic.labels[idx], ORIGINS["synthetic"], idx)]
        # Smoke runs: the train limit caps the whole set too, keeping the set's class balance.
        per_class = allocate(limit, have)
    else:
        real_counts = _counts(real.labels[rows])
        per_class = allocate(round(ratio * len(rows)), real_counts)
        if np.any(per_class > have):
            raise SpecError(_too_small(set_label, ratio, per_class, have, real_counts))
    idx = _pick(synthetic.labels, per_class, _rng(seed, "synthetic"))
    return [_Part(synthetic.images[idx], synthetic.labels[idx], ORIGINS["synthetic"], idx)]


def _real_synthetic(*args) -> list[_Part]:
    return _real(*args) + _synthetic(*args)


def _real_duplicates(real, rows, synthetic, ratio, seed, limit, set_label) -> list[_Part]:
    real_labels = real.labels[rows]
    per_class = allocate(round(ratio * len(rows)), _counts(real_labels))
    src = rows[_pick(real_labels, per_class, _rng(seed, "duplicates"), replace=True)]
    images = light_augment(real.images[src], _rng(seed, "augment"))
    return (_real(real, rows, synthetic, ratio, seed, limit, set_label)
            + [_Part(images, real.labels[src], ORIGINS["duplicate"], src)])


_SOURCES = {"real": _real, "synthetic": _synthetic, "real+synthetic": _real_synthetic,
            "real+duplicates": _real_duplicates}


def _too_small(set_label, ratio, need, have, real_counts) -> str:
    n_real = int(real_counts.sum())
    # Largest total whose class-stratified split fits the set; start just above the bound.
    n_max = min(int(math.ceil((have[c] + 1) * n_real / real_counts[c]))
                for c in range(len(real_counts)) if real_counts[c] > 0)
    while n_max > 0 and np.any(allocate(n_max, real_counts) > have):
        n_max -= 1
    max_ratio = math.floor(n_max / n_real * 1000) / 1000
    fmt = lambda counts: ", ".join(f"{n} {c}" for c, n in zip(CLASS_NAMES, counts))  # noqa: E731
    return (f"{set_label} is too small for ratio {ratio:g}: {int(need.sum())} synthetic images "
            f"stratified like the {n_real} real training images need {fmt(need)}, but the set "
            f"has {fmt(have)}. The largest ratio it supports is {max_ratio:g}; use a smaller "
            f"ratio or a larger set.")


def light_augment(images: np.ndarray, rng: np.random.Generator, chunk: int = 2048) -> np.ndarray:
    """Rotate each image by up to +-10 degrees and shift it by up to +-2 px (bilinear, edge pixels
    extended): the same batched transform as training-time augmentation, seeded from ``rng``.
    A row that comes out byte-identical to its source (a near-zero draw) is drawn again, so
    duplicates are never plain copies (a constant image is the only exception)."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    out = images.copy()
    todo = np.arange(len(images))
    for _attempt in range(4):
        for start in range(0, len(todo), chunk):
            rows = todo[start:start + chunk]
            x = torch.from_numpy(images[rows].astype(np.float32)).unsqueeze(1)
            warped = random_affine(x, gen, padding_mode="border").squeeze(1)
            out[rows] = warped.round_().clamp_(0, 255).to(torch.uint8).numpy()
        todo = todo[np.all(out[todo] == images[todo], axis=(1, 2))]
        if not todo.size:
            break
    return out


# --------------------------------------------------------------------------------------------
# Plans


def build_plan(spec: RunSpec) -> TrainPlan:
    """Load the real splits and the spec's synthetic set and compose every phase of the run.

    Epochs come from the profile field each PhaseDef names; warm-up is ``warmup_epochs`` for
    phase 0 and ``finetune_warmup_epochs`` after. Val and test are the real splits, untouched.
    """
    info = SETTINGS[spec.cell.setting]
    size = spec.profile.data_size
    synthetic, set_label, set_hash = None, "the synthetic set", None
    if info.uses_synthetic:  # first: a missing set is reported before the real data loads
        synthetic, set_hash = load_synthetic_for_training(
            spec.cell.synthetic, with_hash=True, size=size,
            resize=spec.profile.resize_synthetic)
        set_label = f"synthetic set {spec.cell.synthetic!r}"
    real = load_real("train", size=size)
    phases = []
    for i, phase in enumerate(info.phases):
        warmup = spec.profile.warmup_epochs if i == 0 else spec.profile.finetune_warmup_epochs
        phases.append(compose(phase.source, real, synthetic, ratio=spec.cell.ratio,
                              seed=spec.seed, train_limit=spec.profile.train_limit,
                              epochs=int(getattr(spec.profile, phase.epochs_field)),
                              warmup_epochs=int(warmup), set_label=set_label))
    return TrainPlan(tuple(phases), val=load_real("val", size=size),
                     test=load_real("test", size=size), synthetic_sha256=set_hash)


def load_synthetic_for_training(name: str | None, root: Path | None = None,
                                with_hash: bool = False, size: int = IMAGE_SIZE,
                                resize: bool = False):
    """A validated synthetic set whose images have the side ``size`` of the real data trained
    on; a set of another size is resized the importer's way when ``resize``, else refused.
    With ``with_hash``, (split, the content hash of its card: of the set as stored)."""
    from ..synth.sets import load_set  # sets imports Split from here: import late, no cycle

    if not name:
        raise SpecError("this setting needs a synthetic set (--synthetic NAME)")
    split, card = load_set(name, root=root)
    if split.images.shape[1:] != (size, size):
        h, w = split.images.shape[1:]
        if not resize:
            raise DataError(f"synthetic set {name!r} has {h}x{w} images; training on the "
                            f"{size} px real data needs {size}x{size}. Resize it as the importer "
                            "does with --resize-synthetic (the run's spec records it), or "
                            f"import or generate it at {size} px.")
        split = Split(_resized(split.images, size), split.labels)
    return (split, card.get("content_sha256")) if with_hash else split


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    from ..synth.importer import preprocess
    return np.stack([preprocess(Image.fromarray(im), size) for im in images])
