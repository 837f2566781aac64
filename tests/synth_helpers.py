"""A small synthetic set for tests: real train images blurred and noised, so it differs from
the real split. Shared by the synthetic_set fixture and the browser tests' seeded store."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_blurred_real_set(name: str, per_class: int, method: str) -> Path:
    """Write set ``name`` of ``per_class`` images of each class; returns its folder."""
    from scipy.ndimage import gaussian_filter

    from synthmed_core.data.real import load_real
    from synthmed_core.data.synthetic import write_set

    train = load_real("train")
    rng = np.random.default_rng(0)
    rows = np.concatenate([rng.choice(np.flatnonzero(train.labels == c), per_class,
                                      replace=False) for c in (0, 1)])
    images = gaussian_filter(train.images[rows].astype(np.float32), sigma=(0, 0.8, 0.8))
    images = np.clip(images + rng.normal(0, 6, images.shape), 0, 255).astype(np.uint8)
    return write_set(name, images, train.labels[rows].reshape(-1, 1).astype(np.uint8),
                     {"method": method, "source": "real train, blurred + noised"})
