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
``spectrum``) picks the ``CANDIDATES`` nearest real images, and only those are aligned.
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
import functools
import hashlib
import json
import time
from typing import Any

import numpy as np
from PIL import Image

from ..data.real import IMAGE_SIZE, load_real
from ..errors import SpecError
from .sets import load_set, set_dir, update_card

CARD_KEY = "eval_copies"
GRID_FLAG = " ⚠ test copies"  # appended to a grid row whose set holds test images
EVAL_SPLITS = ("val", "test")
# An image is an edited copy of a real one when, aligned, their normalised cross-correlation
# reaches this. Calibrated by scripts/bench_copies.py on the real splits (docs/synthetic.md):
# the nearest REAL train image of a test image reaches 0.977 at most, edited copies 0.98+.
MATCH_NCC = 0.98
ANGLES = tuple(float(a) for a in np.arange(-6.0, 6.01, 1.5))  # degrees, both flips searched
MAX_SHIFT = 2  # pixels each axis, whole pixels plus a sub-pixel peak fit
CANDIDATES = 8  # real images nearest by spectrum, then aligned one by one
_MARGIN = 4  # the compared window leaves this many pixels of each side: fill from edits
_FREQS = 10  # low spatial frequencies per axis in the spectrum
_SPECTRUM_ANGLES = (-3.0, 0.0, 3.0)  # of ANGLES: the references' spectra are taken at these
_FINE_SHIFT = MAX_SHIFT + 1  # so that a shift of MAX_SHIFT px still gets its parabola fit
_EXAMPLES = 10  # set rows kept per split in the card, to find the copies
_CHUNK = 128
METHOD = (f"exact: identical pixels; near (exact ones not counted again): normalised "
          f"cross-correlation >= {MATCH_NCC:g} with a real image of the split on the central "
          f"{IMAGE_SIZE - 2 * _MARGIN} px, at the best of rotations {ANGLES[0]:g}..{ANGLES[-1]:g}"
          f" degrees, left-right flips and shifts up to {MAX_SHIFT} px (sub-pixel peak fit), "
          f"searched among the {CANDIDATES} real images nearest by low-frequency spectrum")


def aligned_ncc(queries: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the best normalised cross-correlation with any of ``refs`` (both
    uint8 N x 28 x 28) after aligning it by rotation, flip and shift, and the row of that
    reference. Only the ``CANDIDATES`` references nearest by ``spectrum`` are aligned."""
    import torch

    spectra, fine = _reference_windows(*_key(refs))  # V x R x d; R x T x w*w
    best, row = [], []
    for i in range(0, len(queries), _CHUNK):
        q = np.asarray(queries[i:i + _CHUNK], np.float32)
        cands = _candidates(q, spectra)  # Q x K
        windows = torch.from_numpy(_shifted_windows(q, _MARGIN, _FINE_SHIFT))  # Q x w*w x S
        theirs = fine[torch.from_numpy(cands)].reshape(len(q), -1, windows.shape[1])
        side = 2 * _FINE_SHIFT + 1
        maps = torch.bmm(theirs, windows).reshape(len(q), -1, side, side)  # Q x K*T x S x S
        ncc = _peak(maps).reshape(len(q), cands.shape[1], -1).amax(dim=2)
        best.append(ncc.max(dim=1).values.numpy())
        row.append(cands[np.arange(len(q)), ncc.argmax(dim=1).numpy()])
    if not best:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    return np.concatenate(best), np.concatenate(row)


def _centre(images: np.ndarray, margin: int) -> np.ndarray:
    """float32 centres (``margin`` px off each side), each minus its mean over its norm."""
    size = images.shape[-1]
    x = np.asarray(images, dtype=np.float32)[:, margin:size - margin, margin:size - margin]
    x = x - x.mean(axis=(1, 2), keepdims=True)
    return x / (np.sqrt((x * x).sum(axis=(1, 2), keepdims=True)) + 1e-6)


def _shifted_windows(images: np.ndarray, margin: int, shift: int) -> np.ndarray:
    """float32 Q x w*w x S: each image's centre window (``margin`` px off each side) moved by
    each of the S shifts (row-major over -shift..shift both ways), minus its mean over its
    norm."""
    size = images.shape[-1]
    w, side, lo = size - 2 * margin, 2 * shift + 1, margin - shift
    x = np.asarray(images, dtype=np.float32)[:, lo:size - lo, lo:size - lo]
    views = np.lib.stride_tricks.sliding_window_view(x, (w, w), axis=(1, 2))  # Q x S x S x w x w
    views = views.reshape(len(x), side * side, w * w)
    views = views - views.mean(axis=2, keepdims=True)
    views /= np.linalg.norm(views, axis=2, keepdims=True) + 1e-6
    return np.ascontiguousarray(views.transpose(0, 2, 1))


def spectrum(images: np.ndarray, offset: tuple[int, int] = (0, 0)) -> np.ndarray:
    """float32 N x d unit rows: the log magnitude of the low spatial frequencies of each
    image's Hann-windowed centre (moved by ``offset`` px), averaged with its mirror image's.
    The magnitude ignores where things are, and the rest is unchanged by a flip and by
    brightness or contrast, little changed by a few degrees, resizing and JPEG: a cheap first
    look at every reference, to pick the candidates the alignment search checks."""
    size = images.shape[-1]
    m, (dy, dx) = _MARGIN // 2, offset
    w = size - 2 * m
    x = np.asarray(images, np.float32)[:, m + dy:m + dy + w, m + dx:m + dx + w]
    x = x - x.mean(axis=(1, 2), keepdims=True)
    mag = np.abs(np.fft.fft2(x * np.outer(np.hanning(w), np.hanning(w)).astype(np.float32)))
    mag = 0.5 * (mag + np.roll(mag[:, :, ::-1], 1, axis=2))  # |F(u, -v)|: the mirror image's
    k = _FREQS
    f = np.log1p(np.concatenate([mag[:, :k, :k], mag[:, -k + 1:, :k]], axis=1))
    f = f.reshape(len(f), -1)
    f[:, 0] = 0.0  # the mean: zero
    f -= f.mean(axis=1, keepdims=True)
    return (f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-6)).astype(np.float32)


def _candidates(queries: np.ndarray, spectra: np.ndarray) -> np.ndarray:
    """Q x K rows of the references whose spectrum (best of its shifted variants, V x R x d)
    lies nearest each query's: one matrix product against them all."""
    v, r, d = spectra.shape
    k = min(CANDIDATES, r)
    sims = (spectrum(queries) @ spectra.reshape(v * r, d).T).reshape(len(queries), v, r)
    sims = sims.max(axis=1)
    return np.argpartition(-sims, k - 1, axis=1)[:, :k]


@functools.lru_cache(maxsize=4)
def _reference_windows(digest: str, images_bytes: bytes, n: int):
    """The reference side of a search, once per process and set of images: the centre window
    of each pose of each image (zero mean, unit norm) as R x T x w*w tensors, at half and at
    full resolution."""
    import torch

    images = np.frombuffer(images_bytes, np.uint8).reshape(n, IMAGE_SIZE, IMAGE_SIZE)
    poses = _rotations(images).numpy()
    t = poses.shape[1]
    # A shifted or rotated copy's spectrum changes too (its borders, its directions): each
    # reference is seen at a few angles and shifts, and a query takes the nearest of them.
    spectra = np.stack([spectrum(poses[:, ANGLES.index(a)], (dy, dx)) for a in _SPECTRUM_ANGLES
                        for dy in (-1, 1) for dx in (-1, 1)])
    fine = _centre(poses.reshape(n * t, IMAGE_SIZE, IMAGE_SIZE), _MARGIN).reshape(n, t, -1)
    return spectra, torch.from_numpy(fine)


def _key(refs: np.ndarray) -> tuple[str, bytes, int]:
    data = np.ascontiguousarray(refs, np.uint8).tobytes()
    return hashlib.sha1(data).hexdigest(), data, len(refs)


def _rotations(images: np.ndarray):
    """float32 tensor R x T x 28 x 28: each image under every angle of ANGLES, unflipped then
    flipped left-right (bilinear, edges repeated)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(images, np.float32))[:, None]
    out = []
    for flipped in (x, torch.flip(x, dims=[3])):
        for angle in np.deg2rad(ANGLES):
            theta = torch.tensor([[np.cos(angle), -np.sin(angle), 0.0],
                                  [np.sin(angle), np.cos(angle), 0.0]], dtype=torch.float32)
            grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
            out.append(F.grid_sample(flipped, grid, mode="bilinear", padding_mode="border",
                                     align_corners=False)[:, 0])
    return torch.stack(out, dim=1)


def _peak(maps):
    """N x M x S x S correlation maps -> N x M peak values, each refined by a parabola along
    rows and columns through its best whole shift (unrefined on the maps' edges): a copy
    shifted by half a pixel sits between two whole shifts."""
    import torch

    n, m, s, _ = maps.shape
    flat = maps.reshape(n, m, s * s)
    best, at = flat.max(dim=2)
    gain = torch.zeros_like(best)
    for pos, step in ((at // s, s), (at % s, 1)):
        inner = (pos > 0) & (pos < s - 1)
        lo = flat.gather(2, (at - step * inner).unsqueeze(2)).squeeze(2)
        hi = flat.gather(2, (at + step * inner).unsqueeze(2)).squeeze(2)
        curve = lo - 2 * best + hi
        ok = inner & (curve < 0)
        gain += torch.where(ok, -(hi - lo) ** 2 / (8 * curve.where(ok, -torch.ones_like(curve))),
                            torch.zeros_like(best))
    return (best + gain).clamp(max=1.0)


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
