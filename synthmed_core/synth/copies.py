"""Copies of the real evaluation images (val, test) inside a set: the check every set passes
before it is written (imported, generated or selected), stored in its card as ``eval_copies``.

A set image is an *exact* copy of a real image when their pixels are identical, and a *near*
copy (exact ones not counted again) when it lies closer to one than half the smallest distance
between any real TRAIN image and any image of that split: closer than two different real
images ever get, by a wide margin. Distances are RMS differences after 2x2 average pooling and
per-image standardisation, so a copy stays a copy through brightness and contrast changes,
re-saving and small-noise or resizing round trips. Measured on the 624 test images, it flags
every copy re-saved as PNG, JPEG at quality >= 75, with +20 brightness, 0.8 contrast, Gaussian
noise of sd 3, or enlarged to 224 px and imported back; 99.5% at JPEG quality 50 and 94% with
noise of sd 6. It does not see geometric changes (crops, shifts, flips). PneumoniaMNIST's own
val split holds 8 exact copies of train images; its test split none.

A set with any copy of a TEST image is refused unless the caller allows it: a model trained on
it has seen the images it is scored on. Runs on such a set are flagged in the accuracy grid and
left out of ``claims`` (``sets_with_test_copies``).
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Any

import numpy as np
from PIL import Image

from ..data.real import IMAGE_SIZE, load_real
from ..errors import SpecError
from ..data.synthetic import load_set, set_dir, update_card

CARD_KEY = "eval_copies"
GRID_FLAG = " ⚠ test copies"  # appended to a grid row whose set holds test images
EVAL_SPLITS = ("val", "test")
NEAR_FRACTION = 0.5  # of the smallest real train -> split distance: the near-copy threshold
_POOL = 2
_EXAMPLES = 10  # set rows kept per split in the card, to find the copies
_CHUNK = 2048
METHOD = (f"exact: identical pixels; near (exact ones not counted again): closer than "
          f"{NEAR_FRACTION:g} x the smallest real train -> split distance, RMS after {_POOL}x"
          f"{_POOL} pooling and per-image standardisation")


def descriptor(images: np.ndarray) -> np.ndarray:
    """float32 N x d rows of unit RMS: each image 2x2 average-pooled, minus its mean, over its
    standard deviation (a flat image stays all zeros)."""
    x = np.asarray(images, dtype=np.float32)
    n, h, w = x.shape
    x = x[:, :h - h % _POOL, :w - w % _POOL]
    x = x.reshape(n, h // _POOL, _POOL, w // _POOL, _POOL).mean(axis=(2, 4)).reshape(n, -1)
    x -= x.mean(axis=1, keepdims=True)
    x /= x.std(axis=1, keepdims=True) + 1e-6
    return x / np.sqrt(x.shape[1])


def nearest(queries: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to, and row of, each query's nearest reference (rows of ``descriptor``)."""
    ref_sq = np.einsum("ij,ij->i", refs, refs)
    dist, idx = [], []
    for i in range(0, len(queries), _CHUNK):
        q = queries[i:i + _CHUNK]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + ref_sq[None, :] - 2.0 * (q @ refs.T)
        j = d2.argmin(axis=1)
        idx.append(j)
        dist.append(np.sqrt(np.maximum(d2[np.arange(len(q)), j], 0.0)))
    if not dist:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.concatenate(dist), np.concatenate(idx)


def count_eval_copies(images: np.ndarray) -> dict[str, Any]:
    """Exact and near copies of each real eval split in ``images`` (uint8 N x H x W; resized
    to the real 28 px when they differ). Returns the card's ``eval_copies`` record: per split
    ``exact``, ``near``, ``threshold`` and up to 10 ``examples`` [set row, split row]; then
    ``method``, ``wall_s`` and ``checked_at``."""
    t0 = time.perf_counter()
    images = _real_size(np.asarray(images))
    ours = descriptor(images)
    train_images = load_real("train").images
    train = descriptor(train_images)
    out: dict[str, Any] = {}
    for split in EVAL_SPLITS:
        real = load_real(split).images
        ref = descriptor(real)
        gaps, _ = nearest(train, ref)
        # PneumoniaMNIST repeats some images across splits (val holds 8 train images): only
        # pairs of different images calibrate what "closer than real images get" means. By
        # bytes, not distance: in float32 two identical rows come out ~3e-4 apart, not 0.
        threshold = NEAR_FRACTION * float(gaps[_exact_rows(train_images, real) < 0].min())
        exact = _exact_rows(images, real)
        dist, idx = nearest(ours, ref)
        near = (dist <= threshold) & (exact < 0)
        hits = np.flatnonzero((exact >= 0) | near)[:_EXAMPLES]
        out[split] = {"exact": int((exact >= 0).sum()), "near": int(near.sum()),
                      "threshold": round(threshold, 6),
                      "examples": [[int(r), int(exact[r] if exact[r] >= 0 else idx[r])]
                                   for r in hits]}
    out["method"] = METHOD
    out["wall_s"] = round(time.perf_counter() - t0, 2)
    out["checked_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return out


def check_eval_copies(images: np.ndarray, allow_test_copies: bool = False) -> dict[str, Any]:
    """``count_eval_copies``, refusing (SpecError) a set that holds any copy of a real test
    image unless ``allow_test_copies``; the record notes ``test_copies_allowed``."""
    report = count_eval_copies(images)
    n = report["test"]["exact"] + report["test"]["near"]
    if n and not allow_test_copies:
        rows = [r for r, _ in report["test"]["examples"]]
        raise SpecError(
            f"this set holds {n} copies of real TEST images ({report['test']['exact']} exact, "
            f"{report['test']['near']} near; set rows {rows}...): a model trained on it would be "
            "scored on images it has seen, so it was not written. Remove them, or pass "
            "--allow-test-copies (allow_test_copies=True) to keep it anyway: its runs are then "
            "flagged in the grid and left out of `claims`.")
    report["test_copies_allowed"] = bool(n)
    return report


def record_eval_copies(name: str, store=None) -> dict[str, Any]:
    """Count the copies in set ``name``, written before this check, into its card (and, with
    ``store``, its registration); return the record. Nothing is refused: the set exists, and
    a set with test copies gets its runs flagged like one written with them allowed."""
    split, _ = load_set(name)
    record = count_eval_copies(split.images)
    record["test_copies_allowed"] = bool(record["test"]["exact"] + record["test"]["near"])
    card = update_card(name, **{CARD_KEY: record})
    if store is not None:
        store.register_synthetic_set(name, card, str(set_dir(name)))
    return record


def test_copies(card: dict) -> int | None:
    """Copies of real test images a set's card records (exact + near); None when the set was
    written before the check."""
    record = (card or {}).get(CARD_KEY) or {}
    test = record.get("test")
    return None if not isinstance(test, dict) else int(test.get("exact", 0)) + int(
        test.get("near", 0))


def split_counts(card: dict) -> dict[str, str]:
    """Per eval split, the copies a card records as people read them (``8 exact + 0 near``),
    or ``not checked`` for a set written before the check (``record_eval_copies``)."""
    record = (card or {}).get(CARD_KEY) or {}
    return {split: (f"{record[split]['exact']} exact + {record[split]['near']} near"
                    if isinstance(record.get(split), dict) else "not checked (`synth copies`)")
            for split in EVAL_SPLITS}


def summary(card: dict) -> str:
    """One line for people: the copies of each eval split the card records."""
    return "copies of real images: " + ", ".join(f"{split} {text}" for split, text
                                                 in split_counts(card).items())


def sets_with_test_copies(sets) -> dict[str, int]:
    """Name -> test copies of each registered set whose card records any, from a
    ``Store.synthetic_sets()`` frame (its ``name`` and ``card_json`` columns)."""
    out = {}
    for name, text in zip(sets["name"], sets["card_json"]):
        try:
            n = test_copies(json.loads(text)) if isinstance(text, str) else None
        except ValueError:  # an unreadable card records nothing
            n = None
        if n:
            out[str(name)] = n
    return out


def _exact_rows(images: np.ndarray, real: np.ndarray) -> np.ndarray:
    """For each image, the row of a pixel-identical real image, else -1."""
    index = {im.tobytes(): i for i, im in enumerate(np.ascontiguousarray(real))}
    return np.array([index.get(im.tobytes(), -1) for im in np.ascontiguousarray(images)],
                    dtype=np.int64)


def _real_size(images: np.ndarray) -> np.ndarray:
    if images.shape[1:] == (IMAGE_SIZE, IMAGE_SIZE):
        return images
    return np.stack([np.asarray(Image.fromarray(np.asarray(im, np.uint8)).resize(
        (IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)) for im in images])
