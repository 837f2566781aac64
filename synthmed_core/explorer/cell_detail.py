"""One grid cell in detail: its runs, their training curves, the confusion matrix pooled over
seeds, and the real test images it gets wrong.

Classification uses threshold 0.5 (``metrics.run_metrics``' default, what every stored test
metric used); the test split is never used to choose a threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.calibration import VAL_THRESHOLD_SPLIT, cell_calibration
from ..explorer.shift import rates_by_split
from ..bundle import reproduction
from ..data.real import CLASS_NAMES
from ..store import Store
from .views import source_label

THRESHOLD = 0.5


@dataclass(frozen=True)
class CellDetail:
    """``runs`` (one row per finished run: seed, metrics, source, whether its weights are on
    this machine...), ``epochs`` (their epoch rows,
    with ``seed``), ``confusion`` (2x2 counts summed over runs, rows = true normal/pneumonia,
    columns = predicted) and ``images`` (one row per test image: idx, label, mean_prob over
    seeds, seeds_wrong, wrong = the seed-mean probability is on the wrong side of 0.5);
    ``reliability``, ``thresholds`` and ``ece``: calibration on val and test, seeds pooled
    (``calibration.cell_calibration``); ``rates``: sensitivity and specificity on val and on
    test, at 0.5 and at each run's val-picked threshold (``shift.rates_by_split``)."""

    runs: pd.DataFrame
    epochs: pd.DataFrame
    confusion: pd.DataFrame
    images: pd.DataFrame
    replicates: tuple[str, ...] = ()  # "run id: how its records compare", one per comparison
    reliability: pd.DataFrame | None = None  # calibration.cell_calibration, val and test
    thresholds: pd.DataFrame | None = None
    ece: dict[str, float] | None = None
    rates: pd.DataFrame | None = None  # shift.rates_by_split: sens/spec on val and test


def confusion(labels: np.ndarray, probs: np.ndarray, threshold: float = THRESHOLD
              ) -> pd.DataFrame:
    """2x2 counts of true class (rows) by predicted class (columns), named by CLASS_NAMES."""
    pred = (np.asarray(probs) >= threshold).astype(np.int64)
    y = np.asarray(labels).astype(np.int64)
    counts = [[int(np.sum((y == t) & (pred == p))) for p in (0, 1)] for t in (0, 1)]
    return pd.DataFrame(counts, index=pd.Index([f"true {c}" for c in CLASS_NAMES]),
                        columns=[f"predicted {c}" for c in CLASS_NAMES])


def per_image(preds: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """From prediction rows (run_id, idx, label, prob): one row per image with its label,
    mean_prob over runs, seeds_wrong (runs that got it wrong) of seeds, and ``wrong`` (the
    mean probability is on the wrong side of ``threshold``). Most often wrong first, then
    the most confidently wrong."""
    if preds.empty:
        return pd.DataFrame(columns=["idx", "label", "mean_prob", "seeds_wrong", "seeds", "wrong"])
    ok = (preds["prob"] >= threshold).astype(int) == preds["label"]
    g = preds.assign(bad=~ok).groupby("idx", sort=True)
    out = pd.DataFrame({"label": g["label"].first(), "mean_prob": g["prob"].mean(),
                        "seeds_wrong": g["bad"].sum().astype(int),
                        "seeds": g["prob"].size()}).reset_index()
    out["wrong"] = (out["mean_prob"] >= threshold).astype(int) != out["label"]
    miss = (out["mean_prob"] - out["label"]).abs()  # how far from the right answer
    share = out["seeds_wrong"] / out["seeds"]
    return (out.assign(_s=share, _m=miss)
            .sort_values(["_s", "_m"], ascending=[False, False], kind="stable")
            .drop(columns=["_s", "_m"]).reset_index(drop=True))


def cell_detail(store: Store, cell: dict) -> CellDetail:
    """Everything the grid shows for one cell (a dict of CELL_KEYS), from the store: its
    finished runs, their epochs and test predictions."""
    runs = store.cell_runs(cell)
    runs["source"] = [source_label(o, b, s) for o, b, s in
                      zip(runs["origin"], runs["bundle"], runs["shipped"])]
    runs["weights_here"] = [isinstance(c, str) and Path(c).is_file() for c in runs["checkpoint"]]
    ids = runs["run_id"].tolist()
    picked = {}
    for name, column in (("threshold", "val_threshold"), ("accuracy", "accuracy_at_val_threshold")):
        picked[name] = store.metric_of(ids, VAL_THRESHOLD_SPLIT, name)  # beside the 0.5 figures
        runs[column] = [picked[name].get(rid, float("nan")) for rid in ids]
    seeds = dict(zip(runs["run_id"], runs["seed"]))
    epochs = store.epochs_of(ids)
    epochs.insert(1, "seed", epochs["run_id"].map(seeds))
    preds = store.predictions(ids)
    by_split = {"val": store.predictions(ids, split="val"), "test": preds}
    reliability, thresholds, ece = cell_calibration(by_split)
    replicated = [rid for rid, n in zip(runs["run_id"], runs["replicates"]) if n]
    lines = tuple(f"{rid} (seed {seeds[rid]}): {line}" for rid in replicated
                  for line in reproduction(store.run(rid), store))
    shown = runs.drop(columns=["origin", "bundle", "shipped", "checkpoint"])
    return CellDetail(runs=shown, epochs=epochs,
                      confusion=confusion(preds["label"].to_numpy(), preds["prob"].to_numpy()),
                      images=per_image(preds), replicates=lines, reliability=reliability,
                      thresholds=thresholds, ece=ece,
                      rates=rates_by_split(by_split, picked["threshold"]))


def wrong_images(detail: CellDetail, limit: int = 24) -> pd.DataFrame:
    """Up to ``limit`` test images that at least one of the cell's runs gets wrong, the most
    often wrong first (then the most confidently wrong on the seed-mean probability)."""
    images = detail.images
    return images[images["seeds_wrong"] > 0].head(limit).reset_index(drop=True)


def image_caption(row: dict | pd.Series) -> str:
    """``#12 true pneumonia · p=0.21 · wrong in 3/3``."""
    return (f"#{int(row['idx'])} true {CLASS_NAMES[int(row['label'])]} · "
            f"p={row['mean_prob']:.2f} · wrong in {int(row['seeds_wrong'])}/{int(row['seeds'])}")


def summary(detail: CellDetail) -> str:
    """``37 of 624 test images are wrong on the seed-mean probability, 80 in at least one run``."""
    images = detail.images
    return (f"{int(images['wrong'].sum())} of {len(images)} test images are wrong on the "
            f"seed-mean probability at 0.5, {int((images['seeds_wrong'] > 0).sum())} in at "
            "least one run")
