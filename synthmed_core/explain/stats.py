"""CAMs over many images, not one: where a run looks on average on real versus synthetic images
of one class, and how far two runs agree on the same images, each figure with its n and a 95%
interval over images.

- ``mean_maps``: the mean CAM (each map 0..1, at the model's input size) over N real test
  images of a class and over N synthetic images of that class; their spatial agreement is the
  Spearman correlation of the two mean maps, with a bootstrap interval over images.
- ``agreement``: per image, the Spearman correlation of two runs' maps and the overlap of their
  top 20% pixels (shared share of the top pixels); mean and t-interval over images.
Constant maps (no spatial information: ``overlays.is_constant``) are left out and counted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..analysis.metrics import aggregate
from ..data.real import CLASS_NAMES
from ..errors import SpecError

TOP_SHARE = 0.2  # "where a map looks": its top 20% pixels
N_BOOT = 1000


@dataclass(frozen=True)
class MeanMaps:
    """Mean CAMs of one run on real and on synthetic images of one class, and how alike."""

    real: np.ndarray  # mean map, input size
    synthetic: np.ndarray
    n_real: int  # images with a non-constant map
    n_synthetic: int
    left_out: int  # constant maps, both sides
    rho: float  # Spearman correlation of the two mean maps
    rho_lo: float  # bootstrap 95% interval over images
    rho_hi: float


def class_rows(labels: np.ndarray, cls: int, n: int) -> np.ndarray:
    """The first ``n`` rows of class ``cls``: a fixed choice, the same for every run."""
    if cls not in range(len(CLASS_NAMES)):
        raise SpecError(f"unknown class {cls!r}; 0 = normal, 1 = pneumonia")
    return np.flatnonzero(np.asarray(labels).reshape(-1) == cls)[:max(0, int(n))]


def cams(model, images: np.ndarray, method: str, target: str, batch: int = 64
         ) -> tuple[np.ndarray, np.ndarray]:
    """The 0..1 maps (N x S x S) of ``images`` under ``model`` and which are informative."""
    results = cam_results(model, images, method, target, batch)
    return (np.stack([r.cam for r in results]),
            np.asarray([not r.constant for r in results], dtype=bool))


def cam_results(model, images: np.ndarray, method: str, target: str, batch: int = 64) -> list:
    """``cams.cam_overlays`` of ``images`` in batches of ``batch``."""
    from .cams import cam_overlays
    return [r for start in range(0, len(images), batch)
            for r in cam_overlays(model, images[start:start + batch], method, target)]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.spearmanr(a.reshape(-1), b.reshape(-1)).statistic)


def mean_maps(model, real: np.ndarray, synthetic: np.ndarray, method: str = "GradCAM",
              target: str = "predicted", seed: int = 0, n_boot: int = N_BOOT) -> MeanMaps:
    """Mean CAM of ``model`` on the ``real`` and on the ``synthetic`` images (uint8 N x H x W,
    one class each), and the Spearman correlation of the two means with a bootstrap 95%
    interval (images resampled within each side)."""
    real_maps, real_ok = cams(model, real, method, target)
    syn_maps, syn_ok = cams(model, synthetic, method, target)
    a, b = real_maps[real_ok], syn_maps[syn_ok]
    if not len(a) or not len(b):
        raise SpecError("every map on one side came out constant: try another method (EigenCAM "
                        "needs no gradients) or class")
    rng = np.random.default_rng(seed)
    boot = [_spearman(a[rng.integers(0, len(a), len(a))].mean(0),
                      b[rng.integers(0, len(b), len(b))].mean(0)) for _ in range(n_boot)]
    lo, hi = np.nanpercentile(boot, [2.5, 97.5]) if n_boot else (np.nan, np.nan)
    return MeanMaps(a.mean(0), b.mean(0), len(a), len(b),
                    int((~real_ok).sum() + (~syn_ok).sum()), _spearman(a.mean(0), b.mean(0)),
                    float(lo), float(hi))


def top_overlap(a: np.ndarray, b: np.ndarray, share: float = TOP_SHARE) -> float:
    """The share of map ``a``'s top ``share`` pixels that are also among ``b``'s."""
    k = max(1, int(round(share * a.size)))
    top_a = set(np.argsort(a.reshape(-1), kind="stable")[-k:].tolist())
    top_b = set(np.argsort(b.reshape(-1), kind="stable")[-k:].tolist())
    return len(top_a & top_b) / k


def agreement(model_a, model_b, images: np.ndarray, method: str = "GradCAM",
              target: str = "predicted") -> dict[str, dict[str, float]]:
    """How far two runs' maps agree on the same images: ``spearman`` and ``top20`` (overlap of
    the top 20% pixels), each ``metrics.aggregate`` over images (mean, lo, hi, n), and
    ``left_out`` (images where either map is constant)."""
    maps_a, ok_a = cams(model_a, images, method, target)
    maps_b, ok_b = cams(model_b, images, method, target)
    if maps_a.shape != maps_b.shape:  # other input sizes: compare at the coarser one
        from PIL import Image
        side = min(maps_a.shape[1], maps_b.shape[1])
        resize = lambda m: np.stack([np.asarray(Image.fromarray(x, mode="F").resize(  # noqa: E731
            (side, side), Image.Resampling.BILINEAR)) for x in m])
        maps_a, maps_b = resize(maps_a), resize(maps_b)
    both = ok_a & ok_b
    rho = [_spearman(x, y) for x, y in zip(maps_a[both], maps_b[both])]
    top = [top_overlap(x, y) for x, y in zip(maps_a[both], maps_b[both])]
    return {"spearman": aggregate(rho), "top20": aggregate(top),
            "left_out": {"n": int((~both).sum())}}


def images_for(model, split_images: np.ndarray) -> np.ndarray:
    """Images at the data size ``model`` trained on (``synthmed["data_size"]``): as they are
    when they have it, else resized the importer's way."""
    from ..data.uploads import to_dataset_image
    size = int(model.synthmed.get("data_size", 28))
    if split_images.shape[1:] == (size, size):
        return split_images
    return np.stack([to_dataset_image(im, size) for im in split_images])


def mean_maps_png(result: MeanMaps, size: int = 224) -> bytes:
    """The two mean maps side by side (jet colours, 0..their common maximum) as a PNG."""
    import io

    import cv2
    from PIL import Image
    top = max(float(result.real.max()), float(result.synthetic.max()), 1e-9)
    tiles = []
    for m in (result.real, result.synthetic):
        scaled = Image.fromarray(np.asarray(m / top, np.float32), mode="F").resize(
            (size, size), Image.Resampling.BILINEAR)
        jet = cv2.applyColorMap(np.uint8(255 * np.clip(np.asarray(scaled), 0, 1)),
                                cv2.COLORMAP_JET)
        tiles += [cv2.cvtColor(jet, cv2.COLOR_BGR2RGB), np.full((size, 6, 3), 255, np.uint8)]
    out = io.BytesIO()
    Image.fromarray(np.concatenate(tiles[:-1], axis=1)).save(out, format="PNG")
    return out.getvalue()
