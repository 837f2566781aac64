"""Distances between images, shared by the quality card and the gallery: the RMS pixel space
and the exact nearest neighbour. Importable without torch (a page that only reads a card's
stored neighbours never loads it); ``nearest`` imports torch when it is called."""
from __future__ import annotations

import numpy as np


def pixels(images: np.ndarray) -> np.ndarray:
    """Images as rows in the RMS pixel space: L2 / sqrt(H x W) on 0..1 values, so a distance
    reads the same whatever the image size."""
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return flat / np.sqrt(flat.shape[1])


def nearest(queries: np.ndarray, refs: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance to, and row of, each query's nearest reference row (2-D arrays).
    In float64: cdist's matrix-product form leaves float32 copies ~1e-3 apart, not 0."""
    import torch  # torch.cdist: the fast exact search; loaded only when a search is needed

    q = torch.from_numpy(np.asarray(queries, np.float64))
    r = torch.from_numpy(np.asarray(refs, np.float64))
    dist, idx = [], []
    for i in range(0, len(q), chunk):
        best = torch.cdist(q[i:i + chunk], r).min(dim=1)
        dist.append(best.values.clamp_min(0))
        idx.append(best.indices)
    return torch.cat(dist).numpy(), torch.cat(idx).numpy()
