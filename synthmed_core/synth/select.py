"""Selective filtering of a synthetic set into a new one (HistoDiffusion's "selective" idea).

- ``centroid``: keep the images whose domain-encoder features lie closest to the centroid of
  their class among the REAL train images (typical-looking images of that class).
- ``confidence``: keep the images a classifier trained on real train images assigns to their
  own label most confidently (the domain encoder's softmax).
The same fraction is kept within each class, so the class balance of the parent is kept. The
new set's card points at its parent and lists what was kept and what was dropped.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.real import CLASS_NAMES, Split, load_real
from ..errors import SpecError
from .copies import CARD_KEY, check_eval_copies
from .encoder import DomainEncoder, domain_encoder
from ..data.synthetic import class_counts, load_set, set_dir, validate_name, write_set

Scorer = Callable[[DomainEncoder, Split], np.ndarray]  # higher = more worth keeping


def centroid_scores(encoder: DomainEncoder, synthetic: Split) -> np.ndarray:
    """Minus the distance of each image's features to its class centroid of real train."""
    train = load_real("train")
    real = encoder.real_features("train")
    centroids = np.stack([real[train.labels == c].mean(axis=0) for c in range(len(CLASS_NAMES))])
    feats = encoder.features(synthetic.images)
    return -np.linalg.norm(feats - centroids[synthetic.labels], axis=1)


def confidence_scores(encoder: DomainEncoder, synthetic: Split) -> np.ndarray:
    """The real-trained classifier's probability of each image's own label."""
    probs = encoder.probs(synthetic.images)
    return probs[np.arange(len(synthetic.labels)), synthetic.labels]


SELECTORS: dict[str, Scorer] = {"centroid": centroid_scores, "confidence": confidence_scores}


def keep_rows(scores: np.ndarray, labels: np.ndarray, keep: float) -> np.ndarray:
    """Sorted rows of the ``ceil(keep x n_c)`` best-scoring images of each class c (ties go to
    the earlier row, so the choice is deterministic)."""
    rows = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = members[np.argsort(-scores[members], kind="stable")]
        rows.append(order[:math.ceil(keep * len(members))])
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0, np.int64)


def select(name: str, by: str = "centroid", keep: float = 0.5, out: str | None = None, *,
           profile: str = "quick", seed: int = 0, force: bool = False, device: str | None = None,
           encoder: DomainEncoder | None = None, store=None,
           allow_test_copies: bool = False) -> tuple[Path, dict]:
    """Write set ``out`` with the fraction ``keep`` (0 < keep <= 1, per class) of set ``name``
    chosen ``by`` "centroid" or "confidence"; return (folder, card). ``encoder`` defaults to
    the cached domain encoder of ``profile``. With ``store`` the new set is registered.
    Raises SpecError for an unknown method, a bad fraction or an existing ``out``, and for a
    selection holding a copy of a real test image unless ``allow_test_copies``."""
    if by not in SELECTORS:
        raise SpecError(f"unknown selection {by!r}; choose one of {sorted(SELECTORS)}")
    if not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise SpecError(f"keep must be a fraction in (0, 1], e.g. 0.5, got {keep!r}")
    if not out:
        raise SpecError("selection writes a new set: give it a name (--out NEW)")
    validate_name(out)
    if out == name:
        raise SpecError(f"--out must differ from --name {name!r}: sets are immutable")
    if set_dir(out).exists() and not force:
        raise SpecError(f"synthetic set {out!r} already exists at {set_dir(out)}; choose another "
                        "--out or pass --force to replace it")
    parent, parent_card = load_set(name)
    encoder = encoder or domain_encoder(profile, seed, device)
    scores = SELECTORS[by](encoder, parent)
    kept = keep_rows(scores, parent.labels, float(keep))
    dropped = np.setdiff1d(np.arange(len(parent.labels)), kept)
    card = {"method": "select", "source": f"synthetic set {name}", "seed": seed,
            "source_split": parent_card.get("source_split"),
            "parent": {k: parent_card.get(k) for k in ("name", "method", "n", "counts", "sha256")},
            "parameters": {"by": by, "keep": float(keep), "profile": profile,
                           "encoder": encoder.info},
            "parent_index": kept.tolist(), "dropped_index": dropped.tolist(),
            "dropped_counts": class_counts(parent.labels[dropped]),
            "score_cutoff": {CLASS_NAMES[c]: float(scores[kept][parent.labels[kept] == c].min())
                             for c in np.unique(parent.labels[kept])}}
    if "source_index" in parent_card:  # translations: keep pointing at their real train rows
        card["source_index"] = [parent_card["source_index"][i] for i in kept]
    card[CARD_KEY] = check_eval_copies(parent.images[kept], allow_test_copies)
    path = write_set(out, parent.images[kept], parent.labels[kept].reshape(-1, 1).astype(np.uint8),
                     card, force=force)
    _, card = load_set(out)
    if store is not None:
        store.register_synthetic_set(out, card, str(path))
    return path, card
