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
