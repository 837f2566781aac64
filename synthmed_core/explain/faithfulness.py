"""Are the maps evidence? pytorch-grad-cam's own faithfulness metrics, per map and over many
images.

- ``road``: ROAD combined (``pytorch_grad_cam.metrics.road.ROADCombined``, Rong et al. 2022):
  the pixels a map ranks lowest are removed (filled in by noisy linear imputation from their
  neighbours) and the pixels it ranks highest are removed, at each percentile of ROAD_PERCENTILES;
  the score is half the mean of (confidence change when the least relevant go) minus
  (confidence change when the most relevant go). Positive: removing what the map highlights
  hurts the prediction more than removing the rest, so the map points at what the model uses;
  near 0: no better than any other ranking.
- ``confidence_change``: ``CamMultImageConfidenceChange``: the image multiplied by its map
  (only the highlighted region kept), the change of the explained class's probability.
  Near 0 or positive: the highlighted region alone carries the decision; strongly negative: the
  model needed what the map dims.
Both are changes of the softmax probability of the class the map explains (-1..1).

Limits at 28 px: a 4x4 map upsampled to 28x28 ranks 16 blocks, not pixels, so each percentile
step removes whole blocks; the imputer fills a removed block from a few neighbouring pixels,
which at this size is a large part of a lung; and the model never saw imputed or darkened images
in training, so part of any drop is the shift itself. Compare scores between images, models and
real vs synthetic at this size, not with figures published at 224 px.
"""
from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy import stats

from ..analysis.metrics import aggregate
from ..data.real import CLASS_NAMES
from .cams import _batch, _lock, model_preprocess
from .overlays import CamResult

# The library's default is every 10th percentile; at 28 px a 4x4 map ranks 16 blocks, so steps
# of 20% (about 3 blocks each) lose little and halve the cost (~0.1 s per imputation here).
ROAD_PERCENTILES = (20, 40, 60, 80)
METRICS = {"road": "ROAD combined", "confidence_change": "confidence change (map kept)"}
BATCH = 64


def faithfulness(model, results: list[CamResult], seed: int = 0) -> list[dict[str, float]]:
    """ROAD combined and the confidence change of each CAM in ``results`` (from
    ``cams.cam_overlays`` on ``model``), for the class each map explains; NaN for a constant
    map. ROAD's imputation noise is seeded: the same maps give the same scores."""
    nan = {"road": float("nan"), "confidence_change": float("nan")}
    out = [dict(nan) for _ in results]
    todo = [i for i, r in enumerate(results) if not r.constant]  # a flat map ranks nothing
    for start in range(0, len(todo), BATCH):
        chunk = [results[i] for i in todo[start:start + BATCH]]
        x = model_preprocess(model)(_batch(np.stack([r.image for r in chunk]), model))
        maps = np.stack([r.cam for r in chunk]).astype(np.float32)
        targets = [ClassifierOutputSoftmaxTarget(CLASS_NAMES.index(r.target)) for r in chunk]
        with _lock(model), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            road = ROADCombined(percentiles=list(ROAD_PERCENTILES))(x, maps, targets, model)
            kept = CamMultImageConfidenceChange()(x, maps, targets, model)
        for i, a, b in zip(todo[start:start + BATCH], np.ravel(road), np.ravel(kept)):
            out[i] = {"road": float(a), "confidence_change": float(b)}
    return out


def summary(real: list[dict], synthetic: list[dict]) -> dict[str, dict]:
    """Per metric: ``real`` and ``synthetic`` (``metrics.aggregate`` over images: mean, 95%
    interval, n; constant maps left out) and ``difference`` (real minus synthetic, mean and
    Welch 95% interval)."""
    out = {}
    for name in METRICS:
        a = np.array([s[name] for s in real], float)
        b = np.array([s[name] for s in synthetic], float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        out[name] = {"real": aggregate(a), "synthetic": aggregate(b),
                     "difference": _welch(a, b)}
    return out


def _welch(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    if len(a) < 2 or len(b) < 2:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan")}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = float(np.sqrt(va + vb))
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se else 1.0
    half = float(stats.t.ppf(0.975, df)) * se
    diff = float(a.mean() - b.mean())
    return {"mean": diff, "lo": diff - half, "hi": diff + half}


def over_images(model, real: np.ndarray, synthetic: np.ndarray, method: str = "GradCAM",
                target: str = "predicted") -> dict[str, dict]:
    """``summary`` of the maps of ``model`` on ``real`` vs ``synthetic`` uint8 images."""
    from .stats import cam_results
    return summary(faithfulness(model, cam_results(model, real, method, target)),
                   faithfulness(model, cam_results(model, synthetic, method, target)))


def summary_lines(res: dict[str, dict]) -> list[str]:
    """One line per metric: real and synthetic mean [95% interval] (n), and their difference."""
    def ci(d: dict) -> str:
        return f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"
    return [f"{METRICS[name]}: real {ci(r['real'])} (n={r['real']['n']}), synthetic "
            f"{ci(r['synthetic'])} (n={r['synthetic']['n']}); real - synthetic "
            f"{ci(r['difference'])}" for name, r in res.items()]
