"""DeLong's nonparametric covariance of correlated AUROCs (DeLong, DeLong & Clarke-Pearson,
Biometrics 1988), by the fast midrank algorithm of Sun & Xu (IEEE Signal Processing Letters
2014): O(n log n) per model instead of the O(m x n) pairwise kernel.

Each image gets a *placement value*: for a pneumonia image, the share of normal images scored
below it (ties count one half); for a normal image, the share of pneumonia images scored above
it. A model's AUROC is the mean placement of either class, and the covariance of two AUROCs on
the same images is the covariance of their placements over the pneumonia images divided by
their count, plus the same over the normal images. That per-image split is what the
seed-aware tests (``seeds``) need: it says how much two models' AUROC differences move
together when the test images are drawn again.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special


def placements(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUROC and placement values of every row of ``scores`` (R x n, or n) on the same
    ``labels`` (n; 1 = positive): ``auc`` (R,), ``v10`` (R x positives: share of negatives
    below each positive, ties one half) and ``v01`` (R x negatives: share of positives above
    each negative). Sun & Xu's midranks: ranks in the pooled row minus ranks within the class."""
    from scipy import stats  # ~0.5 s to import: only where it is used
    y = np.asarray(labels).reshape(-1).astype(bool)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0 or s.shape[-1] != y.size:
        raise ValueError(f"need both classes and one score per label; got {m} positives, "
                         f"{n} negatives and rows of {s.shape[-1]} scores")
    pos, neg = s[:, y], s[:, ~y]
    pooled = stats.rankdata(np.concatenate([pos, neg], axis=1), axis=1)  # midranks
    within_pos, within_neg = stats.rankdata(pos, axis=1), stats.rankdata(neg, axis=1)
    v10 = (pooled[:, :m] - within_pos) / n
    v01 = 1.0 - (pooled[:, m:] - within_neg) / m
    return v10.mean(axis=1), v10, v01


def covariance(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    """DeLong's covariance matrix (R x R) of R AUROC estimates (or of any linear combination
    of them, e.g. differences, given their placements) from their placement rows."""
    m, n = v10.shape[-1], v01.shape[-1]
    return np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n


def delong_test(labels: Any, scores_a: Any, scores_b: Any) -> dict[str, float]:
    """DeLong's test of two correlated AUROCs (two models scored on the same images):
    auc_a, auc_b, diff (a - b), se, z and the two-sided normal p (1 when both models rank
    every pair alike)."""
    auc, v10, v01 = placements(labels, np.stack([np.ravel(scores_a), np.ravel(scores_b)]))
    s = covariance(v10, v01)
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    diff = float(auc[0] - auc[1])
    se = float(np.sqrt(max(var, 0.0)))
    z = diff / se if se > 0 else 0.0
    return {"auc_a": float(auc[0]), "auc_b": float(auc[1]), "diff": diff, "se": se,
            "z": z, "p": float(2 * special.ndtr(-abs(z))) if se > 0 else 1.0}
