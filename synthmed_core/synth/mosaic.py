"""A picture of a set: a seeded grid of its images, normal rows above pneumonia rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..data.synthetic import load_set


def image_grid(images: np.ndarray, labels: np.ndarray, side: int = 8, seed: int = 0,
               scale: int = 3) -> Image.Image:
    """``side`` x ``side`` images drawn with ``seed``: the top half normal, the bottom half
    pneumonia (a class with too few images leaves black tiles), each upscaled ``scale`` x
    with nearest neighbour so pixels stay pixels."""
    rng = np.random.default_rng(seed)
    h, w = images.shape[1:]
    canvas = np.zeros((side * h, side * w), np.uint8)
    per_class = side * side // 2
    for c in (0, 1):
        rows = np.flatnonzero(labels == c)
        pick = rng.choice(rows, min(per_class, len(rows)), replace=False) if len(rows) else []
        for k, row in enumerate(pick):
            r, col = divmod(k + c * per_class, side)
            canvas[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[row]
    img = Image.fromarray(canvas, mode="L")
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def save_grid(name: str, path: str | Path, side: int = 8, seed: int = 0) -> Path:
    """Save the grid of set ``name`` as a PNG at ``path``; returns the path."""
    split, _ = load_set(name)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(split.images, split.labels, side, seed).save(path)
    return path
