"""Copies of the real evaluation images (val, test) inside a set: the check every set passes
before it is written (imported, generated, selected, or brought as a bundle's sample), stored
in its card as ``eval_copies``.

A set image is an *exact* copy of a real image when their pixels are identical, and a *near*
copy (exact ones not counted again) when, aligned with it, the two correlate as only an image
and its lightly edited self do: normalised cross-correlation >= ``MATCH_NCC`` on the central
20 x 20 px, at the best of rotations up to 6 degrees either way, a left-right flip and shifts
up to 2 px (sub-pixel). Normalising removes brightness and contrast; the 4 px margin left out
holds what rotating or shifting fills in. Searching every pose of every real image is too slow
on a CPU, so a shift- and flip-invariant first look (the low-frequency magnitude spectrum,
``_alignment.spectrum``) picks the ``CANDIDATES`` nearest real images, and only those are
aligned (``_alignment.aligned_ncc``).
``scripts/bench_copies.py`` measures it on the real splits (figures in docs/synthetic.md):
edited copies of test images (enlarged, rotated, shifted, brighter or darker, higher or lower
contrast, flipped, JPEG, all at once) are caught, real train images are not. It does not see
crops of part of an image, larger rotations or shifts, or non-linear intensity changes.
PneumoniaMNIST's own val split holds 8 exact copies of train images; its test split none.

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
from ._alignment import ANGLES, CANDIDATES, MARGIN, MAX_SHIFT, aligned_ncc

CARD_KEY = "eval_copies"
GRID_FLAG = " ⚠ test copies"  # appended to a grid row whose set holds test images
EVAL_SPLITS = ("val", "test")
# An image is an edited copy of a real one when, aligned, their normalised cross-correlation
# reaches this. Calibrated by scripts/bench_copies.py on the real splits (docs/synthetic.md):
# no REAL train image reaches 0.972 with any test image; 99% of edited copies reach 0.983.
MATCH_NCC = 0.98
_EXAMPLES = 10  # set rows kept per split in the card, to find the copies
METHOD = (f"exact: identical pixels; near (exact ones not counted again): normalised "
          f"cross-correlation >= {MATCH_NCC:g} with a real image of the split on the central "
          f"{IMAGE_SIZE - 2 * MARGIN} px, at the best of rotations {ANGLES[0]:g}..{ANGLES[-1]:g}"
          f" degrees, left-right flips and shifts up to {MAX_SHIFT} px (sub-pixel peak fit), "
          f"searched among the {CANDIDATES} real images nearest by low-frequency spectrum")


def count_eval_copies(images: np.ndarray) -> dict[str, Any]:
    """Exact and near copies of each real eval split in ``images`` (uint8 N x H x W; resized
    to the real 28 px when they differ). Returns the card's ``eval_copies`` record: per split
    ``exact``, ``near``, ``threshold`` and up to 10 ``examples`` [set row, split row]; then
    ``method``, ``wall_s`` and ``checked_at``."""
    t0 = time.perf_counter()
    images = _real_size(np.asarray(images))
    out: dict[str, Any] = {}
    for split in EVAL_SPLITS:
        real = load_real(split).images
        exact = _exact_rows(images, real)
        ncc, idx = aligned_ncc(images, real)
        near = (ncc >= MATCH_NCC) & (exact < 0)
        hits = np.flatnonzero((exact >= 0) | near)[:_EXAMPLES]
        out[split] = {"exact": int((exact >= 0).sum()), "near": int(near.sum()),
                      "threshold": MATCH_NCC,
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
