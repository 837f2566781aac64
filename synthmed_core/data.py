"""Real MedMNIST data, validated before use, and the training set of every phase of a run.

``load_real`` reads PneumoniaMNIST / ChestMNIST through the ``medmnist`` package after checking
the npz itself (medmnist answers a bad file with a bare AssertionError or a pickle error).
``compose`` is the pure heart of the experiment: from the real train split and a synthetic set
it builds exactly the images one phase trains on; ``build_plan`` loads the files and calls it.
Val and test are always the real splits: synthetic images never reach them.
"""
from __future__ import annotations

import functools
import hashlib
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import paths
from .errors import DataError, SpecError
from .grid import SETTINGS, RunSpec

SPLITS = ("train", "val", "test")
CLASS_NAMES = ("normal", "pneumonia")  # PneumoniaMNIST labels 0 and 1
IMAGE_SIZE = 28
# Label columns per supported medmnist flag: 1 = binary (N x 1 in the file), 14 = multi-label.
FLAGS: dict[str, int] = {"pneumoniamnist": 1, "chestmnist": 14}


@dataclass(frozen=True)
class Split:
    """One array pair, always in the file's order. Arrays from ``load_real`` are read-only."""

    images: np.ndarray  # uint8, N x H x W
    labels: np.ndarray  # int64, (N,) for binary (0 normal, 1 pneumonia); N x 14 for chestmnist


@dataclass(frozen=True)
class PhaseData:
    """The training data of one phase of a setting (not shuffled: the trainer shuffles)."""

    source_name: str
    images: np.ndarray  # uint8 N x 28 x 28
    labels: np.ndarray  # int64 (N,)
    origin: np.ndarray  # int8 (N,): 0 real, 1 synthetic, 2 duplicate (re-drawn real)
    index: np.ndarray  # int64 (N,): row in the real train split / in the synthetic set
    epochs: int
    warmup_epochs: int


@dataclass(frozen=True)
class TrainPlan:
    phases: tuple[PhaseData, ...]
    val: Split  # always the REAL val split
    test: Split  # always the REAL test split


# --------------------------------------------------------------------------------------------
# Real data


def load_real(split: str, flag: str = "pneumoniamnist", root: Path | None = None) -> Split:
    """Load one split (train/val/test) of a medmnist 28x28 file, validated and cached.

    The file is ``ROOT/FLAG.npz`` with ROOT = ``root`` or ``paths.medmnist_root()``. It is
    downloaded by medmnist only when absent and not offline. Raises DataError with what is wrong,
    where, and what to do for a missing, corrupt or wrongly shaped file.
    """
    if split not in SPLITS:
        raise SpecError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    return _load_all(flag, root)[split]


def check_real(flag: str = "pneumoniamnist", root: Path | None = None) -> dict:
    """Validate a real data file and summarise it for ``data check``.

    Returns ``{"flag", "path", "bytes", "sha256", "splits": {split: {"rows", "class_counts"}}}``;
    class counts are per class for binary flags and positives per finding for chestmnist.
    """
    path = _ensure_file(flag, root)
    splits = _load_all(flag, root)
    names = _label_names(flag)
    summary: dict = {"flag": flag, "path": str(path), "bytes": path.stat().st_size,
                     "sha256": _sha256(path), "splits": {}}
    for name, split in splits.items():
        if split.labels.ndim == 1:
            counts = np.bincount(split.labels, minlength=len(names))
        else:
            counts = split.labels.sum(axis=0)
        summary["splits"][name] = {
            "rows": int(len(split.labels)),
            "class_counts": {names[i]: int(c) for i, c in enumerate(counts)}}
    return summary


def _load_all(flag: str, root: Path | None) -> dict[str, Split]:
    path = _ensure_file(flag, root)
    st = path.stat()
    return _read_validated(str(path.resolve()), st.st_mtime_ns, st.st_size, flag, str(path))


def _ensure_file(flag: str, root: Path | None) -> Path:
    if flag not in FLAGS:
        raise SpecError(f"unsupported medmnist flag {flag!r}; choose one of {list(FLAGS)}")
    folder = Path(root).expanduser() if root is not None else paths.medmnist_root()
    path = folder / f"{flag}.npz"
    if path.is_file():
        # Never download over an existing file: the shared PneumoniaMNIST file's md5 differs from
        # medmnist's record on purpose (train order), and download=True would try to replace it.
        return path
    if path.exists():
        raise DataError(f"{path} exists but is not a file; replace it with {flag}.npz")
    if paths.offline():
        raise DataError(_missing_message(flag, path, "offline mode (SYNTHMED_OFFLINE=1)"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _medmnist_class(flag)(split="train", root=str(folder), download=True, size=IMAGE_SIZE)
    except Exception as exc:  # medmnist turns every download failure into a bare RuntimeError
        if path.is_file() and "download failed" not in str(exc).lower():
            return path  # downloaded, but medmnist choked on it: validation will say why
        path.unlink(missing_ok=True)  # a half-written download would later read as "corrupt"
        cause = exc.__context__ or exc  # the real reason hides behind medmnist's message
        why = f"download from {_info(flag).get('url')} failed: {type(cause).__name__}: {cause}"
        raise DataError(_missing_message(flag, path, why)) from exc
    return path


def _missing_message(flag: str, path: Path, why: str) -> str:
    return (f"{path.name} is missing: {path} does not exist and it was not downloaded ({why}). "
            f"Put the MedMNIST 28x28 file {path.name} in {path.parent}/, or set "
            f"SYNTHMED_MEDMNIST_ROOT to the folder that already holds it.")


@functools.lru_cache(maxsize=4)
def _read_validated(key: str, mtime_ns: int, size: int, flag: str, load_path: str
                    ) -> dict[str, Split]:
    # Keyed on resolved path + mtime + size: a replaced file is re-read, an unchanged one is not.
    path = Path(load_path)
    _check_schema(_read_npz(path), flag, path)
    return _via_medmnist(flag, path)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    fix = f"Replace {path} with a fresh copy of {path.name}."
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04":  # every npz is a zip archive
        what = "is empty (0 bytes)" if not head else "is not an npz (zip) archive"
        raise DataError(f"{path} {what}; it is truncated or another kind of file. {fix}")
    key = None
    try:
        npz = np.load(path, allow_pickle=False)  # never unpickle what a file claims to hold
        with npz:
            arrays = {}
            for key in npz.files:
                arrays[key] = npz[key]
            return arrays
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path} holds pickled Python objects in {key!r}; synthmed never "
                            f"unpickles data files. {fix}") from exc
        raise DataError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}). {fix}"
                        ) from exc
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}). {fix}"
                        ) from exc


def _check_schema(arrays: dict[str, np.ndarray], flag: str, path: Path) -> None:
    expected = [f"{s}_{kind}" for s in SPLITS for kind in ("images", "labels")]
    missing = [k for k in expected if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks keys {missing}; it has {sorted(arrays)}. "
                        f"Replace it with the official 28x28 {flag} file {path.name}.")
    n_labels, rows = FLAGS[flag], _info(flag)["n_samples"]
    problems = []
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            problems.append(f"{split}_images is {images.dtype} {images.shape}; "
                            f"expected uint8 N x {IMAGE_SIZE} x {IMAGE_SIZE}")
        if not np.issubdtype(labels.dtype, np.integer) or labels.shape[1:] != (n_labels,):
            problems.append(f"{split}_labels is {labels.dtype} {labels.shape}; "
                            f"expected integers N x {n_labels}")
        elif labels.size and (labels.min() < 0 or labels.max() > 1):
            problems.append(f"{split}_labels has values outside 0/1 "
                            f"({int(labels.min())}..{int(labels.max())})")
        n_img, n_lab = (a.shape[0] if a.ndim else 0 for a in (images, labels))
        if n_img != rows[split] or n_lab != rows[split]:
            problems.append(f"{split} has {n_img} images and {n_lab} labels; "
                            f"medmnist expects {rows[split]} rows")
    if problems:
        raise DataError(f"{path} is not a valid {flag} file:\n  - " + "\n  - ".join(problems)
                        + f"\nReplace it with the official 28x28 {path.name}.")


def _via_medmnist(flag: str, path: Path) -> dict[str, Split]:
    out = {}
    for split in SPLITS:
        try:
            ds = _medmnist_class(flag)(split=split, root=str(path.parent), download=False,
                                       size=IMAGE_SIZE)
            len(ds)  # medmnist's own row-count assertion; already checked above
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise DataError(f"medmnist could not load split {split!r} of {path}: "
                            f"{type(exc).__name__}: {exc}. Replace the file.") from exc
        images = np.array(ds.imgs, dtype=np.uint8)
        labels = np.asarray(ds.labels).astype(np.int64)
        if FLAGS[flag] == 1:
            labels = labels.reshape(-1)
        images.setflags(write=False)  # shared by the cache: nobody may edit them in place
        labels.setflags(write=False)
        out[split] = Split(images, labels)
    return out


def _info(flag: str) -> dict:
    import medmnist  # imports torch: keep it off the import path of the CLI

    return medmnist.INFO[flag]


def _medmnist_class(flag: str):
    import medmnist

    return getattr(medmnist, medmnist.INFO[flag]["python_class"])


def _label_names(flag: str) -> list[str]:
    labels = _info(flag)["label"]
    return [labels[str(i)] for i in range(len(labels))]


@functools.lru_cache(maxsize=8)
def _sha256_cached(key: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(key, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


# --------------------------------------------------------------------------------------------
# Composition

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
    extended), vectorised over the batch and deterministic by ``rng``. A row that comes out
    byte-identical to its source (a near-zero draw) is drawn again, so duplicates are never
    plain copies (a constant image is the only exception)."""
    out = images.copy()
    todo = np.arange(len(images))
    for _attempt in range(4):
        for start in range(0, len(todo), chunk):
            rows = todo[start:start + chunk]
            out[rows] = _warp(images[rows], rng)
        todo = todo[np.all(out[todo] == images[todo], axis=(1, 2))]
        if not todo.size:
            break
    return out


def _warp(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage

    n, h, w = images.shape
    angle = np.deg2rad(rng.uniform(-10.0, 10.0, n))[:, None, None]
    shift = rng.uniform(-2.0, 2.0, (n, 2))
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    dy, dx = yy - shift[:, :1, None], xx - shift[:, 1:, None]
    src_y = np.cos(angle) * dy - np.sin(angle) * dx + cy
    src_x = np.sin(angle) * dy + np.cos(angle) * dx + cx
    src_n = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None], src_y.shape)
    # The batch axis is sampled at exact integers, so order=1 never mixes two images.
    warped = ndimage.map_coordinates(images.astype(np.float32), np.stack([src_n, src_y, src_x]),
                                     order=1, mode="nearest")
    return np.clip(np.rint(warped), 0, 255).astype(np.uint8)

# --------------------------------------------------------------------------------------------
# Plans


def build_plan(spec: RunSpec) -> TrainPlan:
    """Load the real splits and the spec's synthetic set and compose every phase of the run.

    Epochs come from the profile field each PhaseDef names; warm-up is ``warmup_epochs`` for
    phase 0 and ``finetune_warmup_epochs`` after. Val and test are the real splits, untouched.
    """
    info = SETTINGS[spec.cell.setting]
    real = load_real("train")
    synthetic, set_label = None, "the synthetic set"
    if info.uses_synthetic:
        synthetic = load_synthetic_for_training(spec.cell.synthetic)
        set_label = f"synthetic set {spec.cell.synthetic!r}"
    phases = []
    for i, phase in enumerate(info.phases):
        warmup = spec.profile.warmup_epochs if i == 0 else spec.profile.finetune_warmup_epochs
        phases.append(compose(phase.source, real, synthetic, ratio=spec.cell.ratio,
                              seed=spec.seed, train_limit=spec.profile.train_limit,
                              epochs=int(getattr(spec.profile, phase.epochs_field)),
                              warmup_epochs=int(warmup), set_label=set_label))
    return TrainPlan(tuple(phases), val=load_real("val"), test=load_real("test"))


def load_synthetic_for_training(name: str | None, root: Path | None = None) -> Split:
    """A validated synthetic set whose images are 28x28 (what training on MedMNIST needs)."""
    from .synth.sets import load_set  # sets imports Split from here: import late, no cycle

    if not name:
        raise SpecError("this setting needs a synthetic set (--synthetic NAME)")
    split, _card = load_set(name, root=root)
    if split.images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        h, w = split.images.shape[1:]
        raise DataError(f"synthetic set {name!r} has {h}x{w} images; training needs "
                        f"{IMAGE_SIZE}x{IMAGE_SIZE}. Re-import it (the importer resizes to "
                        f"{IMAGE_SIZE}x{IMAGE_SIZE}) or regenerate it at that size.")
    return split
