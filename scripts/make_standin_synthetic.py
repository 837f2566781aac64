"""Write a folder of STAND-IN "synthetic" chest X-rays for trying the pipeline end to end
before a real generator (or the study's CycleGAN set) is available.

Each image blends two random real TRAIN images of the same class (weight 0.3-0.7), jitters
contrast and brightness, adds Gaussian noise, and is saved upscaled to 128x128 as RGB PNG, with
every 10th image a JPEG and every 10th+5 a 16-bit grayscale PNG, in ``normal/`` and
``pneumonia/`` sub-folders. It is not a generative model; results on it say nothing about real
synthetic data. Usage:

    python scripts/make_standin_synthetic.py OUT_FOLDER --normal 1300 --pneumonia 3700 [--seed 0]
    python -m synthmed_core synth import OUT_FOLDER --name standin
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthmed_core.data.real import load_real  # noqa: E402


def make_standin_folder(out: Path, n_normal: int, n_pneumonia: int, seed: int = 0,
                        size: int = 128) -> dict[str, int]:
    """Write the stand-in images to ``out/normal`` and ``out/pneumonia``; returns the counts."""
    train = load_real("train")
    rng = np.random.default_rng(seed)
    for label, name, n in ((0, "normal", n_normal), (1, "pneumonia", n_pneumonia)):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        pool = np.flatnonzero(train.labels == label)
        a, b = rng.choice(pool, n), rng.choice(pool, n)
        w = rng.uniform(0.3, 0.7, (n, 1, 1))
        img = w * train.images[a] + (1 - w) * train.images[b]
        img = img * rng.uniform(0.85, 1.15, (n, 1, 1)) + rng.uniform(-12, 12, (n, 1, 1))
        img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
        for i, arr in enumerate(img):
            pil = Image.fromarray(arr, "L").resize((size, size), Image.Resampling.BICUBIC)
            if i % 10 == 0:
                pil.convert("RGB").save(folder / f"{name}_{i:05d}.jpg", quality=95)
            elif i % 10 == 5:
                Image.fromarray(np.asarray(pil).astype(np.uint16) * 257).save(folder / f"{name}_{i:05d}.png")
            else:
                pil.convert("RGB").save(folder / f"{name}_{i:05d}.png")
    return {"normal": n_normal, "pneumonia": n_pneumonia}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--normal", type=int, default=1300)
    p.add_argument("--pneumonia", type=int, default=3700)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    print(make_standin_folder(a.out, a.normal, a.pneumonia, a.seed))


if __name__ == "__main__":
    main()
