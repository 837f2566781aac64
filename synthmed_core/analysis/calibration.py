"""How well a cell's probabilities are calibrated, and how its accuracy moves with the decision
threshold, on val and on test side by side.

The split matters here: val is 26% normal, test 37.5%. A model can rank test images well
(AUROC) and still lose accuracy at 0.5 when its probabilities shift between the splits; the
reliability diagram and the accuracy-vs-threshold curves of both splits show that at a glance.
Nothing here chooses a threshold on test.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..grid import VAL_THRESHOLD_RULES

N_BINS = 10
THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)


def reliability(labels: Any, probs: Any, n_bins: int = N_BINS) -> pd.DataFrame:
    """Equal-width bins of P(pneumonia): each non-empty bin's bounds, mean predicted
    probability, observed share of pneumonia and image count."""
    y = np.asarray(labels).reshape(-1).astype(float)
    p = np.asarray(probs, dtype=float).reshape(-1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1], right=False), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        mask = idx == b
        if mask.any():
            rows.append({"bin_lo": edges[b], "bin_hi": edges[b + 1],
                         "mean_prob": float(p[mask].mean()),
                         "frac_pneumonia": float(y[mask].mean()), "count": int(mask.sum())})
    return pd.DataFrame(rows, columns=["bin_lo", "bin_hi", "mean_prob", "frac_pneumonia",
                                       "count"])


def expected_calibration_error(table: pd.DataFrame) -> float:
    """ECE of a ``reliability`` table: the count-weighted mean gap between predicted
    probability and observed frequency (0 = perfectly calibrated)."""
    n = table["count"].sum()
    if not n:
        return float("nan")
    gap = (table["frac_pneumonia"] - table["mean_prob"]).abs()
    return float((table["count"] * gap).sum() / n)


def accuracy_by_threshold(labels: Any, probs: Any, thresholds: Any = THRESHOLDS) -> np.ndarray:
    """Accuracy when an image is called pneumonia at P >= t, for each threshold t."""
    y = np.asarray(labels).reshape(-1).astype(bool)
    p = np.asarray(probs, dtype=float).reshape(-1)
    t = np.asarray(thresholds, dtype=float)
    return ((p[None, :] >= t[:, None]) == y[None, :]).mean(axis=1)


def cell_calibration(preds: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame,
                                                             dict[str, float]]:
    """For prediction rows (run_id, idx, label, prob) per split, seeds pooled: the reliability
    rows (with ``split``), the accuracy-vs-threshold rows (split, threshold, accuracy) and
    the ECE per split."""
    bins, curves, ece = [], [], {}
    for split, df in preds.items():
        if df.empty:
            continue
        table = reliability(df["label"], df["prob"])
        ece[split] = expected_calibration_error(table)
        bins.append(table.assign(split=split))
        curves.append(pd.DataFrame({"split": split, "threshold": THRESHOLDS,
                                    "accuracy": accuracy_by_threshold(df["label"], df["prob"])}))
    empty_bins = pd.DataFrame(columns=["bin_lo", "bin_hi", "mean_prob", "frac_pneumonia",
                                       "count", "split"])
    return (pd.concat(bins, ignore_index=True) if bins else empty_bins,
            pd.concat(curves, ignore_index=True) if curves else
            pd.DataFrame(columns=["split", "threshold", "accuracy"]), ece)


# ---- a decision threshold chosen on val, reported beside the fixed 0.5 ------------------------


def youden_threshold(labels: Any, probs: Any) -> float:
    """The threshold that maximises sensitivity + specificity - 1 (Youden's J) on these
    images (val), the highest of equals: scikit-learn's ROC points."""
    from sklearn.metrics import roc_curve
    fpr, tpr, thresholds = roc_curve(np.asarray(labels).reshape(-1), np.asarray(probs).reshape(-1),
                                     drop_intermediate=False)
    finite = np.isfinite(thresholds)
    j = np.where(finite, tpr - fpr, -np.inf)
    best = np.flatnonzero(j >= j.max() - 1e-12)[0]  # ties: the highest threshold (first)
    return float(min(1.0, thresholds[best]))


def sensitivity_threshold(labels: Any, probs: Any, target: float = 0.95) -> float:
    """The highest threshold at which sensitivity on these images (val) reaches ``target``."""
    from sklearn.metrics import roc_curve
    _, tpr, thresholds = roc_curve(np.asarray(labels).reshape(-1), np.asarray(probs).reshape(-1),
                                   drop_intermediate=False)
    ok = (tpr >= target) & np.isfinite(thresholds)
    return float(min(1.0, thresholds[ok].max())) if ok.any() else 0.0


# name (Profile.val_threshold) -> (how to say it, the rule on val labels and probabilities);
# a name of grid.VAL_THRESHOLD_RULES without its rule here fails at import.
_RULES = {"youden": youden_threshold, "sens95": sensitivity_threshold}
THRESHOLD_RULES: dict[str, tuple[str, Any]] = {
    name: (label, _RULES[name]) for name, label in VAL_THRESHOLD_RULES.items()}
VAL_THRESHOLD_SPLIT = "test@val"  # run_metrics split of test metrics at the val-chosen threshold


def val_threshold_metrics(rule: str, val_labels: Any, val_probs: Any, test_labels: Any,
                          test_probs: Any) -> dict[str, float]:
    """Test metrics at the threshold ``rule`` picks on val, and that ``threshold``."""
    from .metrics import run_metrics
    threshold = THRESHOLD_RULES[rule][1](val_labels, val_probs)
    metrics = run_metrics(test_labels, test_probs, threshold=threshold)
    metrics.pop("auroc", None)  # threshold-free: the same as at 0.5
    return {**metrics, "threshold": threshold}


def at_half(probs: Any, threshold: float) -> np.ndarray:
    """``probs`` mapped piecewise-linearly so that ``threshold`` lands on 0.5, their order kept:
    the decisions at 0.5 of the result are those at ``threshold`` of the input, so the paired
    tests written for 0.5 compare runs at their own val-chosen thresholds."""
    p = np.asarray(probs, dtype=float)
    t = min(max(float(threshold), 1e-9), 1 - 1e-9)
    return np.where(p >= t, 0.5 + 0.5 * (p - t) / (1 - t), 0.5 * p / t)
