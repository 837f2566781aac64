"""Named, immutable synthetic sets: ``SYNTHETIC_DIR/NAME/images.npz`` + ``card.json``.

The npz has the medmnist schema (``images`` uint8 N x H x W, ``labels`` uint8 N x 1, 0 normal,
1 pneumonia); the card says how the set was made and carries the npz's sha256, so a set that
changed on disk is caught when it is read. Sets are written atomically (a temporary folder
beside the target, fsync, rename) so a crash never leaves half a set under a valid name.
Registering a set in the results store is the caller's job.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .. import paths
from .real import CLASS_NAMES, Split
from ..errors import DataError, SpecError

IMAGES_FILE, CARD_FILE = "images.npz", "card.json"
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid set name, else raise SpecError saying why.

    Valid: 1-64 letters, digits, ``.``, ``_`` or ``-``, not starting with ``.`` or ``-``
    (hidden folders and command-line flags), so a name is always one plain folder.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise SpecError(f"invalid synthetic set name {name!r}: use 1-64 letters, digits, '.', "
                        "'_' or '-', not starting with '.' or '-' (e.g. ddpm-quick or cyclegan_v2)")
    return name


def set_dir(name: str, root: Path | None = None) -> Path:
    """The folder of set ``name`` (``root`` defaults to ``paths.synthetic_dir()``)."""
    return _base(root) / validate_name(name)


def write_set(name: str, images: np.ndarray, labels: np.ndarray, card: dict,
              force: bool = False, root: Path | None = None) -> Path:
    """Write a synthetic set atomically and return its folder.

    ``card`` must name the ``method`` (e.g. "import", "ddpm"); ``source``, ``parameters`` and
    ``seed`` default to None/{}/None, anything else is kept. ``name``, ``n``, ``counts``,
    ``image_size``, ``sha256`` and (unless given) ``created_at`` are filled in from the data.
    An existing name raises SpecError unless ``force``, which replaces the set atomically.
    """
    validate_name(name)
    images, labels = _checked_arrays(images, labels)
    if not isinstance(card, dict) or not card.get("method"):
        raise SpecError("a synthetic set's card needs a 'method' (e.g. 'import', 'ddpm', "
                        "'cyclegan') saying how the images were made")
    base = _base(root)
    target = base / name
    if target.exists() and not force:
        raise SpecError(_exists_message(name, target))
    base.mkdir(parents=True, exist_ok=True)
    # Same parent as the target, so the final rename never crosses a file system. The leading
    # dot keeps it out of list_sets and away from valid names.
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=base))
    try:
        os.chmod(tmp, 0o755)
        npz_path = tmp / IMAGES_FILE
        with open(npz_path, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=labels)
            fh.flush()
            os.fsync(fh.fileno())
        full_card = _full_card(name, images, labels, card, _sha256(npz_path))
        with open(tmp / CARD_FILE, "w", encoding="utf-8") as fh:
            json.dump(full_card, fh, indent=2, sort_keys=True, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
        _swap_in(tmp, target, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def load_set(name: str, root: Path | None = None) -> tuple[Split, dict]:
    """Read and validate a synthetic set: ``(Split(images uint8, labels int64 (N,)), card)``.

    Checks the npz keys, dtypes, shapes and labels (0/1) and that the card's n, counts and
    sha256 match the data; any mismatch is a DataError naming the file. Arrays are read-only
    and cached per file version; the card is a fresh dict on every call.
    """
    folder = set_dir(name, root)
    if not folder.is_dir():
        known = [c.get("name") for c in list_sets(root)]
        raise DataError(f"synthetic set {name!r} not found: {folder} does not exist. Known sets: "
                        f"{known or 'none'}. Create one with `python -m synthmed_core synth "
                        f"import` or a generator, or check SYNTHMED_DATA.")
    npz_path, card_path = folder / IMAGES_FILE, folder / CARD_FILE
    for p in (npz_path, card_path):
        if not p.is_file():
            raise DataError(f"synthetic set {name!r} is incomplete: {p} is missing. Re-create "
                            f"the set (write it again with force) or delete {folder}.")
    n_st, c_st = npz_path.stat(), card_path.stat()
    split, card_text = _read_set(str(npz_path.resolve()), n_st.st_mtime_ns, n_st.st_size,
                                 str(card_path.resolve()), c_st.st_mtime_ns, c_st.st_size)
    return split, json.loads(card_text)


def list_sets(root: Path | None = None) -> list[dict]:
    """The cards of every set under ``root``, sorted by name (without reading the images).

    A folder whose card cannot be read is listed as ``{"name": ..., "error": ...}``.
    """
    base = _base(root)
    if not base.is_dir():
        return []
    cards = []
    for folder in sorted(base.iterdir()):
        if not folder.is_dir() or not _NAME_RE.fullmatch(folder.name):
            continue  # temporary folders of writes in progress start with a dot
        try:
            card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
            if not isinstance(card, dict):
                raise ValueError("card is not a JSON object")
        except (OSError, ValueError) as exc:
            card = {"name": folder.name, "error": f"{folder / CARD_FILE}: {exc}"}
        cards.append(card)
    return cards


def update_card(name: str, root: Path | None = None, **fields) -> dict:
    """Add or replace card fields that describe a set without changing it (e.g. ``quality``)
    and return the new card. The card file is replaced atomically; the fields derived from the
    data (name, n, counts, image_size, sha256, method) cannot be changed this way."""
    fixed = sorted(set(fields) & {"name", "n", "counts", "image_size", "sha256",
                                  "content_sha256", "method"})
    if fixed:
        raise SpecError(f"card fields {fixed} describe the data and cannot be updated; "
                        "write a new set instead")
    _, card = load_set(name, root)  # validates the set first: never annotate a damaged one
    card.update(fields)
    path = set_dir(name, root) / CARD_FILE
    tmp = path.with_name(f".{CARD_FILE}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(card, fh, indent=2, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)
    return card


def class_counts(labels: np.ndarray) -> dict[str, int]:
    """``{"normal": n0, "pneumonia": n1}`` of 0/1 labels of any shape."""
    counts = np.bincount(np.asarray(labels).reshape(-1).astype(np.int64),
                         minlength=len(CLASS_NAMES))
    return {c: int(n) for c, n in zip(CLASS_NAMES, counts)}


# --------------------------------------------------------------------------------------------


def _base(root: Path | None) -> Path:
    return Path(root).expanduser() if root is not None else paths.synthetic_dir()


def _exists_message(name: str, target: Path) -> str:
    return (f"synthetic set {name!r} already exists at {target}; sets are immutable. Choose "
            "another name, or replace it with force=True (--force on the command line).")


def _checked_arrays(images, labels) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) == 0:
        raise DataError(f"synthetic images must be a non-empty uint8 array N x H x W, got "
                        f"{images.dtype} {images.shape}")
    if labels.shape not in ((len(images),), (len(images), 1)):
        raise DataError(f"synthetic labels must be N or N x 1 with N = {len(images)}, got "
                        f"{labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise DataError(f"synthetic labels must be 0 (normal) or 1 (pneumonia), got values "
                        f"{sorted(set(np.unique(labels).tolist()))}")
    return np.ascontiguousarray(images), labels.reshape(-1, 1).astype(np.uint8)


def _full_card(name: str, images: np.ndarray, labels: np.ndarray, card: dict, sha: str) -> dict:
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    out = {"source": None, "parameters": {}, "seed": None, "created_at": now}
    out.update(card)
    out.update(name=name, n=int(len(images)), counts=class_counts(labels),
               image_size=[int(images.shape[1]), int(images.shape[2])], sha256=sha,
               content_sha256=content_sha256(images, labels))
    return out


def content_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    """A hash of what a set holds (shapes, pixels and labels), not of its file: the npz's own
    sha256 changes with zip timestamps, this one only when an image or a label does. Bundles
    use it to tell two sets that share a name apart."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.ascontiguousarray(np.asarray(labels).reshape(-1), dtype=np.uint8)
    digest = hashlib.sha256(f"uint8 {list(images.shape)} labels {len(labels)}\n".encode())
    digest.update(images.tobytes())
    digest.update(labels.tobytes())
    return digest.hexdigest()


def _swap_in(tmp: Path, target: Path, force: bool) -> None:
    if not target.exists():
        try:
            os.rename(tmp, target)
        except OSError:
            if target.exists():  # another writer got there first
                raise SpecError(_exists_message(target.name, target)) from None
            raise
    elif not force:
        raise SpecError(_exists_message(target.name, target))
    else:
        # POSIX cannot rename a folder over a non-empty one: move the old set aside first.
        old = target.parent / f".old-{target.name}-{uuid.uuid4().hex[:8]}"
        os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _read_set(npz_key: str, n_mtime: int, n_size: int, card_key: str, c_mtime: int, c_size: int
              ) -> tuple[Split, str]:
    npz_path, card_path = Path(npz_key), Path(card_key)
    try:
        card_text = card_path.read_text(encoding="utf-8")
        card = json.loads(card_text)
        if not isinstance(card, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        raise DataError(f"{card_path} is not a readable card ({exc}); re-create the set") from exc
    images, labels = _read_arrays(npz_path)
    _check_card(card, images, labels, _sha256(npz_path), card_path)
    if "content_sha256" not in card:  # a set written before cards carried it
        card["content_sha256"] = content_sha256(images, labels)
        card_text = json.dumps(card, indent=2, sort_keys=True)
    images.setflags(write=False)
    ints = labels.reshape(-1).astype(np.int64)
    ints.setflags(write=False)
    return Split(images, ints), card_text


def _read_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    fix = f"Re-create the set (it may be truncated or corrupt): {path}"
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = sorted(npz.files)
            if "images" not in found or "labels" not in found:
                raise DataError(f"{path} needs keys ['images', 'labels'] but has {found}. {fix}")
            images, labels = npz["images"], npz["labels"]
    except (ValueError, OSError, EOFError, TypeError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a readable npz ({type(exc).__name__}: {exc}). {fix}"
                        ) from exc
    problems = []
    if images.dtype != np.uint8 or images.ndim != 3:
        problems.append(f"images is {images.dtype} {images.shape}; expected uint8 N x H x W")
    if labels.dtype != np.uint8 or labels.shape != (len(images), 1):
        problems.append(f"labels is {labels.dtype} {labels.shape}; expected uint8 "
                        f"{len(images)} x 1")
    elif not np.isin(labels, (0, 1)).all():
        problems.append(f"labels hold {sorted(set(np.unique(labels).tolist()))}; expected 0/1")
    if problems:
        raise DataError(f"{path} is not a valid synthetic set:\n  - " + "\n  - ".join(problems)
                        + f"\n{fix}")
    return images, labels


def _check_card(card: dict, images, labels, sha: str, card_path: Path) -> None:
    expected = {"n": int(len(images)), "counts": class_counts(labels), "sha256": sha}
    if "content_sha256" in card:
        expected["content_sha256"] = content_sha256(images, labels)
    wrong = [f"{k}: card says {card.get(k)!r}, data has {v!r}" for k, v in expected.items()
             if card.get(k) != v]
    if wrong:
        raise DataError(f"{card_path} does not match its images.npz (the set was changed after "
                        "it was written):\n  - " + "\n  - ".join(wrong)
                        + "\nSets are immutable: re-create it under a new name or with force.")
