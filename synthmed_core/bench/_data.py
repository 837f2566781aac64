"""The images the benchmark trains on: the real PneumoniaMNIST train split read straight from
its npz (no medmnist package needed, e.g. on a bare GPU machine), else random images."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import paths

NATIVE_SIZE = 28


def bench_arrays(n: int, root: Path | None = None, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` uint8 28x28 images and int64 labels, repeated from the train split when ``n`` is
    larger than it, plus a note saying where they came from."""
    path = Path(root or paths.medmnist_root()) / "pneumoniamnist.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["train_images"], npz["train_labels"].reshape(-1)
        take = np.arange(n) % len(images)
        return (np.ascontiguousarray(images[take]), labels[take].astype(np.int64),
                f"PneumoniaMNIST train split ({path})")
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, NATIVE_SIZE, NATIVE_SIZE), dtype=np.uint8),
            rng.integers(0, 2, n).astype(np.int64), f"random images ({path} not found)")
