"""Where val and test differ: each cell's sensitivity (pneumonia recall) and specificity
(normal recall) on val and on test, at 0.5 and at each run's threshold picked on val.

Val is 26% normal and test 37.5%, but prevalence alone changes neither rate: a model whose
test specificity falls far below its val specificity meets normal images on test that look
unlike val's. This table shows which class the val-to-test gap is in.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..store import Store
from ..analysis.calibration import VAL_THRESHOLD_SPLIT

COLUMNS = ["threshold", "split", "sensitivity", "specificity", "accuracy", "normal_share", "runs"]
THRESHOLDS = ("0.5", "val's")


def _rates(labels: np.ndarray, probs: np.ndarray, threshold: float) -> tuple[float, float, float]:
    y, called = labels.astype(bool), probs >= threshold
    return float(called[y].mean()), float((~called[~y]).mean()), float((called == y).mean())


def rates_by_split(preds: dict[str, pd.DataFrame], thresholds: dict[str, float]) -> pd.DataFrame:
    """From prediction rows (run_id, idx, label, prob) per split ("val", "test") and each run's
    val-picked threshold: per threshold (0.5, val's) and split, the mean over runs of
    sensitivity, specificity and accuracy, the split's share of normal images and the runs
    counted (runs without a val threshold count only at 0.5)."""
    rows = []
    for name in THRESHOLDS:
        for split in ("val", "test"):
            df = preds.get(split)
            if df is None or df.empty:
                continue
            got = [_rates(g["label"].to_numpy(), g["prob"].to_numpy(),
                          0.5 if name == "0.5" else thresholds[rid])
                   for rid, g in df.groupby("run_id", sort=True)
                   if name == "0.5" or rid in thresholds]
            if got:
                sens, spec, acc = np.mean(got, axis=0)
                normal = float((df.drop_duplicates("idx")["label"] == 0).mean())
                rows.append({"threshold": name, "split": split, "sensitivity": sens,
                             "specificity": spec, "accuracy": acc, "normal_share": normal,
                             "runs": len(got)})
    return pd.DataFrame(rows, columns=COLUMNS)


def cell_rates(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """``rates_by_split`` of these runs (one cell's seeds), read from the store."""
    preds = {split: store.predictions(run_ids, split=split) for split in ("val", "test")}
    return rates_by_split(preds, store.metric_of(run_ids, VAL_THRESHOLD_SPLIT, "threshold"))


def shift_table(store: Store, profile: str | None = None, arch: str | None = None) -> str:
    """Markdown: per cell of finished runs (of ``profile`` and ``arch``), sensitivity and
    specificity on val and on test, at 0.5 and at the val-picked threshold, means over seeds."""
    from .heatmap_view import cell_name
    runs = store.runs(status="finished")
    if profile is not None:
        runs = runs[runs["profile"] == profile]
    if arch is not None:
        runs = runs[runs["arch"] == arch]
    head = ["| cell | seeds | threshold | val sensitivity | val specificity | test sensitivity | "
            "test specificity | val accuracy | test accuracy |", "|---" * 9 + "|"]
    lines = []
    keys = ["arch", "init", "setting", "ratio", "synthetic", "profile", "recipe"]
    for _, cell in runs.groupby(keys, dropna=False, sort=True):
        table = cell_rates(store, cell["run_id"].tolist()).set_index(["threshold", "split"])
        name = cell_name(cell.iloc[0].to_dict())
        for t in THRESHOLDS:
            if (t, "val") in table.index and (t, "test") in table.index:
                v, s = table.loc[(t, "val")], table.loc[(t, "test")]
                lines.append(f"| {name} | {int(s['runs'])} | {t} | {v['sensitivity']:.3f} | "
                             f"{v['specificity']:.3f} | {s['sensitivity']:.3f} | "
                             f"{s['specificity']:.3f} | {v['accuracy']:.3f} | {s['accuracy']:.3f} |")
    if not lines:
        return "No finished runs with val and test predictions."
    return "\n".join(head + lines)
