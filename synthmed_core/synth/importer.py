"""Import an external image collection as a synthetic set, preprocessed the way MedMNIST was.

Two layouts: a folder with class sub-folders (``normal/`` and ``pneumonia/``, any case, nested
folders walked) or a CSV of ``path,label``. Every image, whatever its size, mode or format, is
turned into a 28x28 uint8 grayscale array: EXIF orientation applied, alpha composited onto
black, 16-bit scaled by its own min-max, centre-cropped to its short side, then resized.
Unreadable files are skipped and reported with the reason; non-image files are ignored and
listed. Nothing is dropped silently.
"""
from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from ..data.images import PREPROCESSING, SIZE, preprocess
from ..errors import DataError, SpecError
from .copies import CARD_KEY, check_eval_copies
from ..data.synthetic import CLASS_NAMES, set_dir, write_set

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})
# Folder names and CSV labels (lower-cased) -> class.
LABEL_ALIASES = {"normal": 0, "0": 0, "negative": 0, "no_pneumonia": 0, "no-pneumonia": 0,
                 "pneumonia": 1, "1": 1, "positive": 1}
CSV_PATH_COLUMNS = ("path", "file", "filename", "filepath", "image", "image_path")
CSV_LABEL_COLUMNS = ("label", "class", "target", "diagnosis")


class UnreadableImage(ValueError):
    """A file that cannot be an image at all (e.g. 0 bytes); its message is the reason."""


@dataclass
class ImportReport:
    """What an import did: images per class, files skipped (with why), files ignored."""

    source: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASS_NAMES, 0))
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the command line."""
        lines = [f"imported from {self.source}: " +
                 ", ".join(f"{n} {c}" for c, n in self.counts.items()),
                 f"skipped {len(self.skipped)} unreadable, ignored {len(self.ignored)} non-image"]
        lines += [f"  skipped {p}: {why}" for p, why in self.skipped]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def import_folder(src: str | Path, name: str, force: bool = False, root: Path | None = None,
                  progress: bool = True, allow_test_copies: bool = False
                  ) -> tuple[Path, ImportReport]:
    """Build set ``name`` from a folder with class sub-folders; return (set folder, report).

    Class folders are matched case-insensitively against LABEL_ALIASES (normal/pneumonia,
    0/1, negative/positive, no_pneumonia). Raises DataError when no class folder or no readable
    image is found; a single class is allowed and reported as a warning. Copies of real val
    and test images are counted into the card; any test copy is a SpecError unless
    ``allow_test_copies`` (``copies.check_eval_copies``).
    """
    src = Path(src).expanduser()
    if not src.is_dir():
        raise DataError(f"{src} is not a folder; import_folder needs a folder with class "
                        "sub-folders normal/ and pneumonia/ (use import_csv for a CSV)")
    _check_target(name, force, root)
    report = ImportReport(source=str(src.resolve()))
    items = _walk_class_folders(src, report)
    return _build(items, name, report, "folder", force, root, progress, allow_test_copies)


def import_csv(csv_path: str | Path, name: str, force: bool = False, root: Path | None = None,
               progress: bool = True, allow_test_copies: bool = False
               ) -> tuple[Path, ImportReport]:
    """Build set ``name`` from a CSV of ``path,label``; return (set folder, report).

    The header is optional (columns found by name, e.g. path/file and label/class); labels are
    0/1 or normal/pneumonia in any case; relative paths are resolved against the CSV's folder.
    Rows with a bad label or a missing file are skipped and reported with their line number.
    Copies of real eval images are checked as in ``import_folder``.
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise DataError(f"{csv_path} is not a file; import_csv needs a CSV of path,label rows")
    _check_target(name, force, root)
    report = ImportReport(source=str(csv_path.resolve()))
    items = _read_csv(csv_path, report)
    return _build(items, name, report, "csv", force, root, progress, allow_test_copies)


def load_image(path: str | Path) -> np.ndarray:
    """Read one image file as a 28x28 uint8 array; raises the reader's error if unreadable."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise UnreadableImage("empty file (0 bytes)")
    with warnings.catch_warnings():
        # Above MAX_IMAGE_PIXELS PIL only warns; treat it like its hard limit, as a bomb.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.load()
            return preprocess(ImageOps.exif_transpose(img))


# --------------------------------------------------------------------------------------------


def _check_target(name: str, force: bool, root: Path | None) -> None:
    # Fail before reading thousands of images, not after; write_set checks again.
    target = set_dir(name, root)
    if target.exists() and not force:
        raise SpecError(f"synthetic set {name!r} already exists at {target}; choose another "
                        "name or pass force=True (--force) to replace it")


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS


def _walk_class_folders(src: Path, report: ImportReport) -> list[tuple[Path, int]]:
    class_dirs = []
    for entry in sorted(src.iterdir()):
        label = LABEL_ALIASES.get(entry.name.lower()) if entry.is_dir() else None
        if label is None:
            report.ignored.append(str(entry))
        else:
            class_dirs.append((entry, label))
    if not class_dirs:
        # A common layout is split folders (train/, test/...) each holding the class folders.
        nested = sorted(str(d) for d in src.iterdir() if d.is_dir() and any(
            c.is_dir() and c.name.lower() in LABEL_ALIASES for c in d.iterdir()))
        hint = f"; these sub-folders hold class folders, import one of them: {nested}" if nested else ""
        raise DataError(f"no class sub-folders in {src}: expected normal/ and pneumonia/ (any "
                        f"case; also {sorted(set(LABEL_ALIASES) - {'normal', 'pneumonia'})}); "
                        f"found {sorted(e.name for e in src.iterdir()) or 'nothing'}{hint}")
    items = []
    for folder, label in class_dirs:
        for dirpath, dirnames, filenames in os.walk(folder):
            report.ignored.extend(str(Path(dirpath) / d) for d in dirnames if d.startswith("."))
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                path = Path(dirpath) / fn
                if _is_ignored(fn):
                    report.ignored.append(str(path))
                else:
                    items.append((path, label))
    return items


def _read_csv(csv_path: Path, report: ImportReport) -> list[tuple[Path, int]]:
    items, columns = [], None
    where = csv_path.name
    with open(csv_path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        for row in reader:
            line = reader.line_num
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            if columns is None:
                columns = _csv_columns(cells)
                if columns[2]:  # that first row was a header
                    continue
            pcol, lcol, _ = columns
            if len(cells) <= max(pcol, lcol):
                report.skipped.append((f"{where}:{line}", f"expected path,label, got {row!r}"))
                continue
            label = LABEL_ALIASES.get(cells[lcol].lower())
            if label is None:
                report.skipped.append((f"{where}:{line}", f"bad label {cells[lcol]!r} for "
                                       f"{cells[pcol]!r}: use 0/1 or normal/pneumonia"))
                continue
            path = Path(cells[pcol]).expanduser()
            path = path if path.is_absolute() else csv_path.parent / path
            if _is_ignored(path.name):
                report.ignored.append(str(path))
            elif not path.is_file():
                report.skipped.append((str(path), f"line {line}: file not found"))
            else:
                items.append((path, label))
    return items


def _csv_columns(first: list[str]) -> tuple[int, int, bool]:
    """(path column, label column, first row is a header)."""
    lower = [c.lower() for c in first]
    if len(first) >= 2 and lower[1] in LABEL_ALIASES:
        return 0, 1, False
    pcol = next((i for i, c in enumerate(lower) if c in CSV_PATH_COLUMNS), None)
    lcol = next((i for i, c in enumerate(lower) if c in CSV_LABEL_COLUMNS), None)
    if pcol is None and lcol is None:
        return 0, 1, False  # not a header: the row is data (and will be reported if bad)
    return (0 if pcol is None else pcol), (1 if lcol is None else lcol), True


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnreadableImage):
        return str(exc)
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"decompression bomb: {exc}"
    if isinstance(exc, UnidentifiedImageError):
        return "not a readable image (unknown format or corrupt header)"
    if isinstance(exc, OSError) and "truncated" in str(exc):
        return f"truncated: {exc}"
    return f"unreadable ({type(exc).__name__}: {exc})"


def _empty_message(report: ImportReport, kind: str) -> str:
    looked = ("in class sub-folders normal/ and pneumonia/" if kind == "folder"
              else "listed in the CSV with a label 0/1 or normal/pneumonia")
    exts = "/".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
    first = "; ".join(f"{p}: {why}" for p, why in report.skipped[:5])
    return (f"no readable images found in {report.source}: looked for {exts} files {looked}. "
            f"{len(report.skipped)} skipped as unreadable{' (' + first + ')' if first else ''}, "
            f"{len(report.ignored)} ignored as non-images.")


def _build(items, name, report, kind, force, root, progress, allow_test_copies
           ) -> tuple[Path, ImportReport]:
    images, labels = [], []
    for path, label in tqdm(items, desc=f"import {name}", unit="img", disable=not progress):
        try:
            images.append(load_image(path))
        except Exception as exc:  # one bad file must never abort an import of thousands
            report.skipped.append((str(path), _reason(exc)))
            continue
        labels.append(label)
        report.counts[CLASS_NAMES[label]] += 1
    if not images:
        raise DataError(_empty_message(report, kind))
    for cls, n in report.counts.items():
        if n == 0:
            report.warnings.append(f"no {cls} images: the set has a single class")
    images = np.stack(images)
    card = {"method": "import", "source": report.source, "source_kind": kind,
            "n_skipped": len(report.skipped), "n_ignored": len(report.ignored),
            "preprocessing": PREPROCESSING, "parameters": {"size": SIZE}, "seed": None,
            CARD_KEY: check_eval_copies(images, allow_test_copies)}
    path = write_set(name, images, np.asarray(labels, dtype=np.uint8), card, force=force,
                     root=root)
    return path, report
