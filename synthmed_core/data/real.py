"""Real MedMNIST data, validated before use, and the training set of every phase of a run.

``load_real`` reads PneumoniaMNIST / ChestMNIST through the ``medmnist`` package after checking
the npz itself (medmnist answers a bad file with a bare AssertionError or a pickle error).
The composition of each setting's training data lives in ``compose``.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import paths
from ..errors import DataError, SpecError

SPLITS = ("train", "val", "test")
CLASS_NAMES = ("normal", "pneumonia")  # PneumoniaMNIST labels 0 and 1
IMAGE_SIZE = 28
# MedMNIST+ sizes: FLAG_64.npz, FLAG_128.npz, FLAG_224.npz beside the 28 px FLAG.npz.
SIZES = (28, 64, 128, 224)
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
    images: np.ndarray  # uint8 N x S x S, S = the run's data size (28 unless MedMNIST+)
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
    synthetic_sha256: str | None = None  # content hash of the synthetic set used, if any


# --------------------------------------------------------------------------------------------
# Real data


def load_real(split: str, flag: str = "pneumoniamnist", root: Path | None = None,
              size: int = IMAGE_SIZE) -> Split:
    """Load one split (train/val/test) of a medmnist file, validated and cached.

    The file is ``ROOT/FLAG.npz`` (28 px) or ``ROOT/FLAG_SIZE.npz`` (MedMNIST+ 64, 128, 224)
    with ROOT = ``root`` or ``paths.medmnist_root()``. It is downloaded by medmnist only when
    absent and not offline. Raises DataError with what is wrong, where, and what to do for a
    missing, corrupt or wrongly shaped file.
    """
    if split not in SPLITS:
        raise SpecError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    return _load_all(flag, root, size)[split]


def load_real_labels(split: str, flag: str = "pneumoniamnist", root: Path | None = None,
                     size: int = IMAGE_SIZE) -> np.ndarray:
    """One split's labels (N, or N x findings), from the same file ``load_real`` reads, checked
    the same way, without medmnist's dataset class: what a bundle's predictions are checked
    against, while the explorer's server starts, needs no torch (which that class imports)."""
    if split not in SPLITS:
        raise SpecError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
    return _labels_validated(*_file_version(flag, root, size))[split]


def data_file(flag: str = "pneumoniamnist", size: int = IMAGE_SIZE) -> str:
    """The file name medmnist gives a flag at a size: ``FLAG.npz``, ``FLAG_64.npz``..."""
    if size not in SIZES:
        raise SpecError(f"unknown MedMNIST image size {size!r}; choose one of {list(SIZES)}")
    return f"{flag}.npz" if size == IMAGE_SIZE else f"{flag}_{size}.npz"


def check_real(flag: str = "pneumoniamnist", root: Path | None = None,
               size: int = IMAGE_SIZE) -> dict:
    """Validate a real data file and summarise it for ``data check``.

    Returns ``{"flag", "path", "bytes", "sha256", "splits": {split: {"rows", "class_counts"}}}``;
    class counts are per class for binary flags and positives per finding for chestmnist.
    """
    path = _ensure_file(flag, root, size)
    splits = _load_all(flag, root, size)
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


def _load_all(flag: str, root: Path | None, size: int = IMAGE_SIZE) -> dict[str, Split]:
    return _read_validated(*_file_version(flag, root, size))


def _file_version(flag: str, root: Path | None, size: int) -> tuple:
    """The cached readers' key: resolved path + mtime + bytes (a replaced file is re-read, an
    unchanged one not), then what they read: flag, path, size."""
    path = _ensure_file(flag, root, size)
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size, flag, str(path), size


def _ensure_file(flag: str, root: Path | None, size: int = IMAGE_SIZE) -> Path:
    if flag not in FLAGS:
        raise SpecError(f"unsupported medmnist flag {flag!r}; choose one of {list(FLAGS)}")
    folder = Path(root).expanduser() if root is not None else paths.medmnist_root()
    path = folder / data_file(flag, size)
    if path.is_file():
        # Never download over an existing file: the shared PneumoniaMNIST file's md5 differs from
        # medmnist's record on purpose (train order), and download=True would try to replace it.
        return path
    if path.exists():
        raise DataError(f"{path} exists but is not a file; replace it with {path.name}")
    if paths.offline():
        raise DataError(_missing_message(flag, path, "offline mode (SYNTHMED_OFFLINE=1)"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _medmnist_class(flag)(split="train", root=str(folder), download=True, size=size)
    except Exception as exc:  # medmnist turns every download failure into a bare RuntimeError
        if path.is_file() and "download failed" not in str(exc).lower():
            return path  # downloaded, but medmnist choked on it: validation will say why
        path.unlink(missing_ok=True)  # a half-written download would later read as "corrupt"
        cause = exc.__context__ or exc  # the real reason hides behind medmnist's message
        why = f"the download failed ({type(cause).__name__}: {cause})"
        raise DataError(_missing_message(flag, path, why)) from exc
    return path


def _missing_message(flag: str, path: Path, why: str) -> str:
    return (f"{path.name} is missing: {path} does not exist and it was not downloaded ({why}). "
            f"Put the MedMNIST file {path.name} in {path.parent}/, or set "
            f"SYNTHMED_MEDMNIST_ROOT to the folder that already holds it.")


@functools.lru_cache(maxsize=4)
def _read_validated(key: str, mtime_ns: int, nbytes: int, flag: str, load_path: str,
                    size: int = IMAGE_SIZE) -> dict[str, Split]:
    # validated once (the labels' reader checks the whole file, and is cached with the same key)
    _labels_validated(key, mtime_ns, nbytes, flag, load_path, size)
    return _via_medmnist(flag, Path(load_path), size)


@functools.lru_cache(maxsize=4)
def _labels_validated(key: str, mtime_ns: int, nbytes: int, flag: str, load_path: str,
                      size: int = IMAGE_SIZE) -> dict[str, np.ndarray]:
    """Every split's labels of a file, after the whole file passed ``_check_schema``."""
    path = Path(load_path)
    arrays = _read_npz(path)
    _check_schema(arrays, flag, path, size)
    return {split: _as_labels(arrays[f"{split}_labels"], flag) for split in SPLITS}


def _as_labels(raw, flag: str) -> np.ndarray:
    """int64 labels, a vector for a one-label flag, read-only (shared by the caches)."""
    labels = np.asarray(raw).astype(np.int64)
    if FLAGS[flag] == 1:
        labels = labels.reshape(-1)
    labels.setflags(write=False)
    return labels


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


def _check_schema(arrays: dict[str, np.ndarray], flag: str, path: Path,
                  size: int = IMAGE_SIZE) -> None:
    expected = [f"{s}_{kind}" for s in SPLITS for kind in ("images", "labels")]
    missing = [k for k in expected if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks keys {missing}; it has {sorted(arrays)}. "
                        f"Replace it with the official {size}x{size} {flag} file {path.name}.")
    n_labels, rows = FLAGS[flag], _info(flag)["n_samples"]
    problems = []
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.shape[1:] != (size, size):
            problems.append(f"{split}_images is {images.dtype} {images.shape}; "
                            f"expected uint8 N x {size} x {size}" + _wrong_size_hint(images, size))
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
                        + f"\nReplace it with the official {size}x{size} {path.name}.")


def _wrong_size_hint(images: np.ndarray, size: int) -> str:
    """When a file of another MedMNIST size sits under this size's name, say so."""
    side = images.shape[1] if images.ndim == 3 and images.shape[1] == images.shape[2] else None
    if side in SIZES and side != size:
        return f" (these are {side} px images: the {side} px file under the {size} px name?)"
    return ""


def _via_medmnist(flag: str, path: Path, size: int = IMAGE_SIZE) -> dict[str, Split]:
    out = {}
    for split in SPLITS:
        try:
            ds = _medmnist_class(flag)(split=split, root=str(path.parent), download=False,
                                       size=size)
            len(ds)  # medmnist's own row-count assertion; already checked above
        except (RuntimeError, AssertionError, ValueError) as exc:
            raise DataError(f"medmnist could not load split {split!r} of {path}: "
                            f"{type(exc).__name__}: {exc}. Replace the file.") from exc
        images = np.array(ds.imgs, dtype=np.uint8)
        images.setflags(write=False)  # shared by the cache: nobody may edit them in place
        out[split] = Split(images, _as_labels(ds.labels, flag))
    return out


def _info(flag: str) -> dict:
    return _medmnist_info()[flag]


@functools.lru_cache(maxsize=1)
def _medmnist_info() -> dict:
    """``medmnist.INFO``. Importing the package imports torch, torchvision and scikit-learn
    (~3 s on the 2-core box) for what is a plain dict in its ``info`` module, so that module is
    read on its own unless medmnist is imported already (or cannot be found this way)."""
    if "medmnist" not in sys.modules:
        found = importlib.util.find_spec("medmnist")  # locates the package, runs nothing
        info = Path(found.submodule_search_locations[0]) / "info.py" if found else None
        if info is not None and info.is_file():
            spec = importlib.util.spec_from_file_location("_synthmed_medmnist_info", info)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module.INFO
    import medmnist
    return medmnist.INFO


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
