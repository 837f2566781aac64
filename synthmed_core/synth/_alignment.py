"""The alignment search of the copy guard (``copies``): how well each image, rotated, flipped
and shifted into place, correlates with the nearest of a set of real images.

A cheap first look (``spectrum``: low-frequency magnitude spectra, which ignore shifts and
flips) picks ``CANDIDATES`` real images per query; each is then aligned in full, its window
correlated at every pose and shift (``aligned_ncc``). The real images' side of the search is
computed once per process (``_reference_windows``).
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np

from ..data.real import IMAGE_SIZE

ANGLES = tuple(float(a) for a in np.arange(-6.0, 6.01, 1.5))  # degrees, both flips searched
MAX_SHIFT = 2  # pixels each axis, whole pixels plus a sub-pixel peak fit
CANDIDATES = 8  # real images nearest by spectrum, then aligned one by one
MARGIN = 4  # the compared window leaves this many pixels of each side: fill from edits
_FREQS = 10  # low spatial frequencies per axis in the spectrum
_SPECTRUM_ANGLES = (-3.0, 0.0, 3.0)  # of ANGLES: the references' spectra are taken at these
_FINE_SHIFT = MAX_SHIFT + 1  # so that a shift of MAX_SHIFT px still gets its parabola fit
_CHUNK = 128


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
        windows = torch.from_numpy(_shifted_windows(q, MARGIN, _FINE_SHIFT))  # Q x w*w x S
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
    m, (dy, dx) = MARGIN // 2, offset
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
    """The reference side of a search, once per process and set of images: the spectra of each
    image at a few poses (V x R x d), and the centre window of each of its T poses (zero mean,
    unit norm) as an R x T x w*w tensor."""
    import torch

    images = np.frombuffer(images_bytes, np.uint8).reshape(n, IMAGE_SIZE, IMAGE_SIZE)
    poses = _rotations(images).numpy()
    t = poses.shape[1]
    # A shifted or rotated copy's spectrum changes too (its borders, its directions): each
    # reference is seen at a few angles and shifts, and a query takes the nearest of them.
    spectra = np.stack([spectrum(poses[:, ANGLES.index(a)], (dy, dx)) for a in _SPECTRUM_ANGLES
                        for dy in (-1, 1) for dx in (-1, 1)])
    fine = _centre(poses.reshape(n * t, IMAGE_SIZE, IMAGE_SIZE), MARGIN).reshape(n, t, -1)
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
