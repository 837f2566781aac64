"""The gallery's logic: pages of images by class, each synthetic image's nearest real training
image, and the figures of a set's card.

Distances are those of the memorisation check (``synth.quality``): pixel space is the RMS
difference per pixel on a 0..1 scale, feature space the Euclidean distance between domain
encoder features. A set whose card holds a memorisation result already names each image's
nearest train image (pixel space); otherwise, and for feature space, the neighbours of the
shown page only are computed on demand (a page of 32 against 4,708 train images: milliseconds).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
from PIL import Image

from ..data.real import IMAGE_SIZE
from ..errors import SpecError
from ..synth.copies import split_counts
from ..synth.distances import nearest, pixels

if TYPE_CHECKING:
    from ..synth.encoder import DomainEncoder

# Torch-free at import: a page that shows images and cards never loads torch; the encoder
# functions below import it when feature distances are asked for.

PAGE_SIZES = (8, 16, 32, 64)
SPACES = {"pixel": "RMS pixel difference (0..1)", "feature": "domain encoder feature distance"}


@dataclass(frozen=True)
class Neighbour:
    """A synthetic image's nearest real train image in one space; ``stored`` when the set's
    quality card named it, ``near_copy`` when it is within the card's near-copy threshold."""

    synthetic_row: int
    train_row: int
    distance: float
    space: str
    stored: bool
    near_copy: bool | None


def page_rows(labels: np.ndarray, cls: int | None, page: int, page_size: int
              ) -> tuple[np.ndarray, int, int]:
    """Rows of ``labels`` of class ``cls`` (all when None) on ``page`` (0-based, clamped to
    the last page); returns (rows, page actually shown, number of pages)."""
    if page_size < 1:
        raise SpecError(f"page size must be >= 1, got {page_size}")
    labels = np.asarray(labels).reshape(-1)
    rows = np.flatnonzero(labels == cls) if cls is not None else np.arange(len(labels))
    n_pages = max(1, math.ceil(len(rows) / page_size))
    page = min(max(0, int(page)), n_pages - 1)
    return rows[page * page_size:(page + 1) * page_size], page, n_pages


def enlarge(images: np.ndarray, size: int = 112) -> list[np.ndarray]:
    """Upscale uint8 images (N x H x W) to ``size`` px with nearest-neighbour, so 28 px pixels
    stay crisp on screen instead of being blurred by the browser."""
    return [np.asarray(Image.fromarray(np.asarray(im, np.uint8)).resize(
        (size, size), Image.Resampling.NEAREST)) for im in images]


# ---- nearest real train image -----------------------------------------------------------------


def _memorisation(card: dict) -> dict:
    return (card.get("quality") or {}).get("memorisation") or {}


def _threshold(card: dict, space: str) -> float | None:
    value = (_memorisation(card).get(space) or {}).get("threshold")
    return float(value) if value is not None else None


def stored_neighbours(card: dict) -> np.ndarray | None:
    """The nearest-train row of every image of the set, from its quality card (pixel space),
    or None when the card has none for all ``card['n']`` images."""
    idx = _memorisation(card).get("nearest_train_index")
    if idx is None or len(idx) != card.get("n"):
        return None
    return np.asarray(idx, dtype=np.int64)


def nearest_real(set_images: np.ndarray, rows: np.ndarray, card: dict, train_images: np.ndarray,
                 space: str = "pixel", encoder: "DomainEncoder | None" = None) -> list[Neighbour]:
    """The nearest real train image of each synthetic image in ``rows`` and the distance.

    Pixel space reuses the card's stored neighbours when present (their distances are
    recomputed for the pairs, cheaply) and otherwise searches all train images; feature space
    needs the set's domain ``encoder`` and always searches."""
    if space not in SPACES:
        raise SpecError(f"unknown distance space {space!r}; choose one of {list(SPACES)}")
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0:
        return []
    queries = np.asarray(set_images)[rows]
    stored = stored_neighbours(card) if space == "pixel" else None
    if stored is not None:
        idx = stored[rows]
        dist = np.linalg.norm(pixels(queries) - pixels(np.asarray(train_images)[idx]), axis=1)
    elif space == "pixel":
        dist, idx = nearest(pixels(queries), pixels(np.asarray(train_images)))
    else:
        if encoder is None:
            raise SpecError("feature-space distances need the set's domain encoder; it is not "
                            "cached (run `synth quality` on the set first)")
        dist, idx = nearest(encoder.features(queries), encoder.real_features("train"))
    threshold = _threshold(card, space)
    return [Neighbour(int(r), int(i), float(d), space, stored is not None,
                      None if threshold is None else bool(d <= threshold))
            for r, i, d in zip(rows, idx, dist)]


def real_partner(card: dict, row: int, set_images: np.ndarray, train_images: np.ndarray
                 ) -> tuple[int, str]:
    """The real train image to show beside synthetic image ``row``, and how they relate: the
    image a CycleGAN translated it from (the card's ``source_index``), else its nearest real
    train image in pixel space (stored by the quality card, or searched)."""
    source = card.get("source_index")
    if isinstance(source, list) and len(source) == card.get("n"):
        return int(source[row]), "its source"
    nb = nearest_real(set_images, np.array([row]), card, train_images, "pixel")[0]
    return nb.train_row, f"its nearest real, d={nb.distance:.3f}"


def encoder_file(card: dict) -> Path | None:
    """The cached domain encoder a set's quality was measured with, when it is on disk.

    Its path is rebuilt from the encoder's profile and config in the card, always inside the
    data root's encoder cache: a path written in a card is never opened (the card's sha256
    covers images.npz only, so anyone who can edit card.json could point it anywhere)."""
    feature = (card.get("quality") or {}).get("feature") or {}
    encoder = feature.get("encoder") or {}
    if feature.get("kind") != "domain":
        return None
    from ..synth.encoder_files import ClassifierConfig, encoder_dir, encoder_path
    try:
        path = encoder_path(ClassifierConfig(**encoder["config"]), str(encoder["profile"]))
    except (KeyError, TypeError):  # a card from before encoders were cached, or a bad one
        return None
    inside = path.parent == encoder_dir()  # a profile or arch holding "/" lands elsewhere
    return path if inside and path.is_file() else None


def load_encoder(path: Path) -> "DomainEncoder":
    """Load a cached domain encoder file as it is, without retraining: a page must never train
    (``synth.encoder.domain_encoder`` retrains a stale cache, which takes minutes)."""
    from ..synth.encoder import DomainEncoder
    from ..training import checkpoints as ck
    from ..training.loop import Preprocess
    from ..training.models import build_model, model_input_stats
    blob = ck.load(Path(path))
    arch = blob["config"]["arch"]
    model = build_model(arch, "scratch", IMAGE_SIZE, num_classes=2)
    model.load_state_dict(blob["model"])
    mean, std = model_input_stats(model)
    model.preprocess = Preprocess(mean, std, IMAGE_SIZE, channels_last=False)
    return DomainEncoder(model.eval(), blob["info"])


# ---- the card -----------------------------------------------------------------------------


def _get(d: dict, *keys: str) -> Any:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


# (label, getter on the quality dict, getter on its real-val baseline or None)
QUALITY_FIGURES: tuple[tuple[str, Callable[[dict], Any], Callable[[dict], Any] | None], ...] = (
    ("FID", lambda q: q.get("fid"), lambda q: _get(q, "baseline_real_val", "fid")),
    ("KID (mean)", lambda q: q.get("kid_mean"), lambda q: _get(q, "baseline_real_val", "kid_mean")),
    ("precision", lambda q: q.get("precision"), lambda q: _get(q, "baseline_real_val", "precision")),
    ("recall", lambda q: q.get("recall"), lambda q: _get(q, "baseline_real_val", "recall")),
    ("TSTR accuracy (real val)", lambda q: _get(q, "tstr", "accuracy"), None),
    ("TSTR AUROC (real val)", lambda q: _get(q, "tstr", "auroc"), None),
    ("near-copy share", lambda q: _get(q, "memorisation", "near_copy_share"), None),
    ("median pixel distance to train", lambda q: _get(q, "memorisation", "pixel", "median_distance"),
     lambda q: _get(q, "memorisation", "pixel", "val_median_distance")),
    ("median feature distance to train",
     lambda q: _get(q, "memorisation", "feature", "median_distance"),
     lambda q: _get(q, "memorisation", "feature", "val_median_distance")),
)


def card_facts(card: dict) -> dict[str, Any]:
    """How the set was made: method, source, seed, created, image count and class counts, and
    the copies of real val and test images found in it when it was written."""
    counts = card.get("counts") or {}
    return {"method": card.get("method"), "source": card.get("source"), "seed": card.get("seed"),
            "created": card.get("created_at"), "images": card.get("n"),
            **{f"{cls} images": n for cls, n in counts.items()},
            **({"parent set": _get(card, "parent", "name")} if card.get("parent") else {}),
            **{f"copies of real {split}": text for split, text in split_counts(card).items()}}


def quality_rows(card: dict) -> list[dict[str, Any]]:
    """The card's quality figures beside the real-val baseline in the same space; empty when
    the set's quality was never measured."""
    q = card.get("quality") or {}
    rows = []
    for label, ours, baseline in QUALITY_FIGURES:
        value = ours(q)
        if value is not None:
            rows.append({"figure": label, "this set": float(value),
                         "real val (baseline)": None if baseline is None else baseline(q)})
    return rows
