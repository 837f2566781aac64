"""Run metrics, aggregation over seeds, and paired tests between cells.

Class 1 is pneumonia, class 0 normal; a prediction is pneumonia when P(pneumonia) >= threshold.
The threshold stays 0.5 unless a caller has a reason: val and test differ in prevalence (26% vs
37.5% normal), so a threshold tuned on val does not transfer (shared/reference/README.md).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special  # the distributions scipy.stats wraps, without its ~0.5 s import


def _binary(labels: Any, probs: Any) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if labels.shape != probs.shape or labels.size == 0:
        raise ValueError(f"need matching, non-empty labels and probs; got {labels.size} labels "
                         f"and {probs.size} probs")
    return labels, probs


def run_metrics(labels: Any, probs: Any, threshold: float = 0.5) -> dict[str, float]:
    """Test metrics of one run from its per-image P(pneumonia): accuracy, auroc (NaN when only
    one class is present), f1, sensitivity (pneumonia recall), specificity (normal recall), and
    the confusion counts tn, fp, fn, tp. A recall with no images of its class is NaN."""
    # scikit-learn takes seconds to import: only writers of run metrics pay for it
    from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, recall_score,
                                 roc_auc_score)
    y, p = _binary(labels, probs)
    pred = (p >= threshold).astype(np.int64)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "auroc": float(roc_auc_score(y, p)) if np.unique(y).size == 2 else float("nan"),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "sensitivity": float(recall_score(y, pred, pos_label=1, zero_division=np.nan)),
        "specificity": float(recall_score(y, pred, pos_label=0, zero_division=np.nan)),
        "tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp),
    }


def aggregate(values: Any, confidence: float = 0.95) -> dict[str, float]:
    """Summary of one cell over seeds: mean, std (ddof=1; NaN for one value), lo/hi = the
    Student-t ``confidence`` interval of the mean (NaN for fewer than two values), and n.
    NaN values (e.g. an undefined AUROC) are left out and not counted."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[~np.isnan(v)]
    n = int(v.size)
    nan = float("nan")
    if n == 0:
        return {"mean": nan, "std": nan, "lo": nan, "hi": nan, "n": 0}
    mean = float(v.mean())
    if n == 1:
        return {"mean": mean, "std": nan, "lo": nan, "hi": nan, "n": 1}
    std = float(v.std(ddof=1))
    if std == 0.0:  # scipy returns NaN for a zero scale; the interval is the point itself
        return {"mean": mean, "std": 0.0, "lo": mean, "hi": mean, "n": n}
    half = float(special.stdtrit(n - 1, 0.5 + confidence / 2)) * std / np.sqrt(n)  # t.interval
    return {"mean": mean, "std": std, "lo": mean - half, "hi": mean + half, "n": n}


def mcnemar(correct_a: Any, correct_b: Any) -> dict[str, float]:
    """Exact McNemar test on matched predictions: ``correct_*`` say, pair by pair, whether model
    a / b got the image right (arrays of any shape, e.g. seeds x images, flattened). b = pairs
    only a got right, c = pairs only b got right; p_value = two-sided binomial test of b out of
    b + c at 0.5 (1.0 when no pair is discordant). n = number of pairs."""
    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b_ = np.asarray(correct_b, dtype=bool).reshape(-1)
    if a.shape != b_.shape:
        raise ValueError(f"McNemar needs matched pairs; got {a.size} and {b_.size} predictions")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    return {"b": b, "c": c, "n": int(a.size), "p_value": float(mcnemar_p(b, c))}


def mcnemar_p(b: Any, c: Any) -> np.ndarray:
    """Exact two-sided McNemar p-values from discordant counts, element-wise: the binomial test
    of b out of b + c at 0.5 (``scipy.stats.binomtest``'s two-sided p: at 0.5 the binomial is
    symmetric, so it is twice the smaller tail, at most 1), 1.0 where b + c = 0, NaN where a
    count is missing. One vectorised call for many pairs: a binomtest each costs ~0.6 ms."""
    b = np.asarray(b, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    n = b + c
    smaller = np.nan_to_num(np.minimum(b, c)).astype(np.int64)
    p = np.minimum(1.0, 2.0 * special.bdtr(smaller, np.nan_to_num(n).astype(np.int64), 0.5))
    return np.where(n == 0, 1.0, np.where(np.isnan(n), np.nan, p))


def image_paired_test(sum_d: Any, sum_d2: Any, n_images: Any,
                      confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Paired test of an accuracy difference with the IMAGE as the unit, for any number of
    matched seeds. Per image, d = (a right) - (b right) averaged over the seeds, so mean(d) is
    the difference of seed-mean accuracies; images are independent draws, the seeds of one
    image are not, which is why this is honest where a McNemar pooled over seed x image pairs
    is optimistic. Student t on the n images, from the sums ``sum_d`` = sum of d and
    ``sum_d2`` = sum of d squared (element-wise, so a whole grid is one call). Returns arrays
    diff, lo, hi (``confidence`` interval of the difference) and p (two-sided); with no spread
    at all, p is 1 when diff is 0 and 0 otherwise."""
    s1, s2, n = (np.asarray(v, dtype=np.float64) for v in (sum_d, sum_d2, n_images))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.maximum(s2 - n * mean ** 2, 0.0) / (n - 1)
        se = np.sqrt(var / n)
        t = np.abs(mean) / se
        p = np.where(se > 0, 2 * special.stdtr(n - 1, -t), np.where(mean == 0, 1.0, 0.0))
        half = np.where(se > 0, special.stdtrit(n - 1, 0.5 + confidence / 2) * se, 0.0)
    return {"diff": mean, "lo": mean - half, "hi": mean + half, "p": np.where(n > 1, p, np.nan)}


MCNEMAR_TEST, IMAGE_T_TEST = "exact McNemar (1 seed)", "paired t over images (seeds averaged)"


def paired_accuracy_test(wins: Any, losses: Any, q: Any, seeds: Any, n_images: Any,
                         confidence: float = 0.95) -> dict[str, np.ndarray]:
    """The accuracy test of a cell against another on the same images, shared by the grid,
    ``compare`` and ``claims``, from counts over k matched seeds (element-wise): ``wins`` /
    ``losses`` = seed x image pairs only a / only b got right, ``q`` = sum over images of
    (sum over seeds of +1 win / -1 loss) squared. Returns diff, lo, hi (``image_paired_test``)
    and p: exact McNemar with one seed, the image-level t-test with several; ``one_seed`` says
    which (NaN p where k is 0 or missing)."""
    wins, losses, q, k, n = (np.asarray(v, dtype=np.float64)
                             for v in (wins, losses, q, seeds, n_images))
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(k > 0, k, np.nan)
        img = image_paired_test((wins - losses) / k, q / k ** 2, n)
    one = k == 1
    p = np.where(one, mcnemar_p(np.nan_to_num(wins), np.nan_to_num(losses)), img["p"])
    return {**img, "p": np.where(np.isnan(k), np.nan, p), "one_seed": one}


def auroc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of every row of ``scores`` against the same row of ``labels`` (both R x n), by the
    Mann-Whitney rank formula with average ranks for ties; NaN where a row has one class only.
    Vectorised so that thousands of bootstrap resamples cost one ``rankdata`` call."""
    from scipy import stats  # ~0.5 s to import: only where it is used
    ranks = stats.rankdata(scores, axis=-1)
    pos = labels.astype(bool)
    n1 = pos.sum(axis=-1)
    n0 = labels.shape[-1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * pos).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)
    return np.where((n1 > 0) & (n0 > 0), auc, np.nan)


def bootstrap_auroc_diff(labels: Any, probs_a: Any, probs_b: Any, n_boot: int = 2000,
                         seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """Paired bootstrap of AUROC(a) - AUROC(b) on the same images: resample images with
    replacement ``n_boot`` times (numpy Generator seeded by ``seed``), both models on the same
    resample. Returns diff (on all images), lo/hi (percentile interval), p (two-sided: twice
    the smaller share of resampled differences on either side of 0, at most 1) and n_boot
    (resamples with both classes, the ones used)."""
    y, pa = _binary(labels, probs_a)
    _, pb = _binary(labels, probs_b)
    if pa.shape != pb.shape:
        raise ValueError("probs_a and probs_b must score the same images")
    idx = np.random.default_rng(seed).integers(0, y.size, size=(n_boot, y.size))
    diffs = auroc_rows(y[idx], pa[idx]) - auroc_rows(y[idx], pb[idx])
    diffs = diffs[~np.isnan(diffs)]
    full = auroc_rows(y[None], pa[None])[0] - auroc_rows(y[None], pb[None])[0]
    if diffs.size == 0:
        return {"diff": float(full), "lo": float("nan"), "hi": float("nan"), "p": float("nan"),
                "n_boot": 0}
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(diffs, [tail, 100 - tail])
    p = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)))
    return {"diff": float(full), "lo": float(lo), "hi": float(hi), "p": float(p),
            "n_boot": int(diffs.size)}


def paired_compare(labels: Any, probs_a: Any, probs_b: Any, threshold: float = 0.5,
                   n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Compare two cells on the same test images. ``probs_a``/``probs_b`` are (n_seeds,
    n_images) P(pneumonia) of MATCHED seeds (row i of a and of b share a seed); 1-D means
    one seed. What is pooled, exactly:
      - ``mcnemar``: one exact McNemar over all seed x image pairs stacked together. Images
        repeat across seeds, so its p-value treats n_seeds x n_images pairs as independent
        and is optimistic; ``per_seed_p`` gives the test of each seed alone as a check.
      - ``auroc``: the bootstrap of AUROC(a) - AUROC(b) on each cell's SEED-MEAN probability
        per image (one ensemble score per cell), resampling images.
      - ``accuracy_diff``: the difference of seed-mean accuracies with its 95% interval, p and
        the test used (``paired_accuracy_test``: images are the unit, honest for several seeds).
    Also returns each cell's accuracy (mean over seeds) and AUROC of the seed-mean scores."""
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    pa = np.atleast_2d(np.asarray(probs_a, dtype=np.float64))
    pb = np.atleast_2d(np.asarray(probs_b, dtype=np.float64))
    if pa.shape != pb.shape or pa.shape[1] != y.size:
        raise ValueError(f"need matched (n_seeds, n_images) arrays for {y.size} images; got "
                         f"{pa.shape} and {pb.shape}")
    ok_a = (pa >= threshold) == y
    ok_b = (pb >= threshold) == y
    mean_a, mean_b = pa.mean(axis=0), pb.mean(axis=0)
    return {
        "n_seeds": int(pa.shape[0]), "n_images": int(y.size),
        **accuracy_compare(ok_a, ok_b),
        "auroc_a": float(auroc_rows(y[None], mean_a[None])[0]),
        "auroc_b": float(auroc_rows(y[None], mean_b[None])[0]),
        "mcnemar": mcnemar(ok_a, ok_b),
        "per_seed_p": mcnemar_p((ok_a & ~ok_b).sum(axis=1), (~ok_a & ok_b).sum(axis=1)).tolist(),
        "auroc": bootstrap_auroc_diff(y, mean_a, mean_b, n_boot=n_boot, seed=seed),
    }


def accuracy_compare(ok_a: Any, ok_b: Any) -> dict[str, Any]:
    """The accuracy part of ``paired_compare`` from correctness alone: ``ok_a``/``ok_b`` are
    (n_seeds, n_images) booleans of MATCHED seeds (image right at the threshold). Each
    cell's accuracy (mean over seeds) and ``accuracy_diff``: ``paired_accuracy_test`` of
    the difference (diff, lo, hi, p and the test used)."""
    ok_a, ok_b = np.atleast_2d(ok_a), np.atleast_2d(ok_b)
    e = ok_a.astype(np.int64) - ok_b.astype(np.int64)  # +1 only a right, -1 only b right
    res = paired_accuracy_test((e == 1).sum(), (e == -1).sum(), (e.sum(axis=0) ** 2).sum(),
                               e.shape[0], e.shape[1])
    diff = {k: float(res[k]) for k in ("diff", "lo", "hi", "p")}
    return {"accuracy_a": float(ok_a.mean()), "accuracy_b": float(ok_b.mean()),
            "accuracy_diff": {**diff, "test": MCNEMAR_TEST if bool(res["one_seed"])
                              else IMAGE_T_TEST}}

