"""Paired comparison of two cells on the same real test images.

A cell is named like ``CellSpec.key``: ``arch/init/setting[@ratio][/synthetic]`` (e.g.
``resnet18/scratch/augment@1/standin``), plus a profile. Runs of the two cells are matched by
seed; the statistics themselves live in ``metrics.paired_compare``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import SpecError
from ..catalog import SETTINGS
from .calibration import VAL_THRESHOLD_SPLIT, at_half
from .evidence import METRICS, Pair, all_evidence
from .metrics import paired_compare


@dataclass(frozen=True)
class CellKey:
    arch: str
    init: str
    setting: str
    ratio: float | None
    synthetic: str | None
    profile: str
    recipe: str | None = None  # RunSpec.recipe; None: the recipe both cells share (compare)

    @classmethod
    def parse(cls, text: str, profile: str) -> "CellKey":
        """``arch/init/setting[@ratio][/synthetic]`` -> CellKey (the format of CellSpec.key)."""
        parts = text.strip().split("/")
        if len(parts) not in (3, 4) or not all(parts):
            raise SpecError(f"cannot read cell {text!r}: write arch/init/setting[@ratio][/synthetic], "
                            "e.g. resnet18/scratch/augment@1/my-set")
        setting, _, ratio = parts[2].partition("@")
        if setting not in SETTINGS:
            raise SpecError(f"unknown setting {setting!r} in {text!r}; choose from {list(SETTINGS)}")
        try:
            value = float(ratio) if ratio else None
        except ValueError:
            raise SpecError(f"ratio {ratio!r} in {text!r} is not a number") from None
        return cls(parts[0], parts[1], setting, value, parts[3] if len(parts) == 4 else None, profile)

    @property
    def label(self) -> str:
        ratio = f"@{self.ratio:g}" if self.ratio is not None else ""
        synth = f"/{self.synthetic}" if self.synthetic else ""
        return f"{self.arch}/{self.init}/{self.setting}{ratio}{synth} ({self.profile})"

    def with_recipe(self, recipe: str) -> "CellKey":
        return dataclasses.replace(self, recipe=recipe)


def _in_cell(runs: pd.DataFrame, key: CellKey) -> pd.DataFrame:
    """The finished runs of cell ``key`` among ``runs`` (``Store.runs``), every recipe."""
    def same(col: str, value: Any) -> pd.Series:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return runs[col].isna()
        return runs[col] == value

    mask = (same("arch", key.arch) & same("init", key.init) & same("setting", key.setting)
            & same("ratio", key.ratio) & same("synthetic", key.synthetic)
            & same("profile", key.profile) & (runs["status"] == "finished"))
    return runs[mask]


def cell_runs(runs: pd.DataFrame, key: CellKey) -> pd.DataFrame:
    """The finished runs of cell ``key`` among ``runs`` (``Store.runs``), one per seed, by
    seed: those of ``key.recipe``; SpecError when it is None and the cell has several."""
    found = _in_cell(runs, key)
    if key.recipe is not None:
        found = found[found["recipe"] == key.recipe]
    elif found["recipe"].nunique() > 1:
        raise SpecError(f"{key.label} has runs of {found['recipe'].nunique()} recipes "
                        f"({', '.join(sorted(set(found['recipe_label'])))}); name one")
    return found.drop_duplicates("seed").set_index("seed")


def shared_recipe(runs: pd.DataFrame, a: CellKey, b: CellKey) -> str:
    """The recipe to pair cells ``a`` and ``b`` in: the one given, else the one both have
    runs of with the most matched seeds (a cell is one recipe: seeds pair within one)."""
    if a.recipe is not None or b.recipe is not None:
        return a.recipe or b.recipe
    seeds_a, seeds_b = ({r: set(g["seed"]) for r, g in _in_cell(runs, k).groupby("recipe")}
                        for k in (a, b))
    common = {r: len(seeds_a[r] & seeds_b[r]) for r in sorted(set(seeds_a) & set(seeds_b))}
    if not any(common.values()):
        raise SpecError(f"no finished runs with matching seeds in one recipe: {a.label} has "
                        f"seeds {sorted(set().union(*seeds_a.values()))}, {b.label} has "
                        f"{sorted(set().union(*seeds_b.values()))}")
    return max(common, key=common.get)


def compare_cells(store, a: CellKey, b: CellKey, n_boot: int = 2000) -> dict[str, Any]:
    """Cells ``a`` and ``b`` on the real test images both were scored on: ``evidence`` (per
    metric of ``evidence.METRICS``: the seed-aware test, or with one seed the image-only one,
    with the minimal detectable difference), and the image-only figures beside it: the
    accuracy difference with the paired t over images (``metrics.paired_accuracy_test``),
    McNemar (pooled over matched seeds, and per seed) and a bootstrap interval of the AUROC
    difference of the seed-mean scores."""
    runs = store.runs(status="finished")
    recipe = shared_recipe(runs, a, b)
    a, b = a.with_recipe(recipe), b.with_recipe(recipe)
    ra, rb = cell_runs(runs, a), cell_runs(runs, b)
    seeds = matched_seeds(ra, rb)
    if not seeds:
        raise SpecError(f"no finished runs with matching seeds: {a.label} has seeds "
                        f"{sorted(ra.index)}, {b.label} has {sorted(rb.index)}")
    ids = pair_run_ids(ra, rb, seeds)
    preds = by_run(store.predictions(ids))
    out = paired_on(preds, ra, rb, seeds, n_boot=n_boot)
    out.update(a=a.label, b=b.label, seeds=seeds,
               recipe=runs.loc[runs["recipe"] == recipe, "recipe_label"].iloc[0])
    thresholds = store.metric_of(ids, VAL_THRESHOLD_SPLIT, "threshold")
    if len(thresholds) == len(ids):  # beside the 0.5 figures, never instead of them
        moved = {rid: df.assign(prob=at_half(df["prob"], thresholds[rid]))
                 for rid, df in preds.items()}
        out["val_threshold"] = {**paired_on(moved, ra, rb, seeds, n_boot=0),
                                "thresholds": [thresholds[rid] for rid in ids]}
    k = len(seeds)
    ts = np.array([thresholds.get(rid, np.nan) for rid in ids])
    out["evidence"] = all_evidence(Pair(
        preds[ids[0]]["label"].to_numpy(), *(np.stack([preds[r]["prob"].to_numpy() for r in side])
                                             for side in (ids[:k], ids[k:])),
        ts[:k], ts[k:], tuple(seeds)))
    return out


def matched_seeds(ra: pd.DataFrame, rb: pd.DataFrame) -> list[int]:
    return sorted(set(ra.index) & set(rb.index))


def pair_run_ids(ra: pd.DataFrame, rb: pd.DataFrame, seeds: list[int]) -> list[str]:
    """The run ids of ``seeds`` in ``ra``, then in ``rb`` (one lookup per cell, not per seed)."""
    return ra.loc[seeds, "run_id"].tolist() + rb.loc[seeds, "run_id"].tolist()


def by_run(preds: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``Store.predictions`` rows split per run, in image order. They arrive ordered by run,
    then image: slicing at the run boundaries costs ~0.1 s for 10,000 runs where a groupby
    that sorts each group cost 2.5 s. Rows in another order are sorted once first."""
    starts, ordered = _run_starts(preds)
    if not ordered:
        preds = preds.sort_values(["run_id", "idx"], kind="stable")
        starts, _ = _run_starts(preds)
    ids = preds["run_id"].to_numpy()
    ends = np.r_[starts[1:], len(ids)]
    return {ids[a]: preds.iloc[a:b] for a, b in zip(starts, ends)}


def _run_starts(preds: pd.DataFrame) -> tuple[np.ndarray, bool]:
    """Where each run's block of rows starts, and whether every run is one block with its
    images in increasing order."""
    ids, idx = preds["run_id"].to_numpy(), preds["idx"].to_numpy()
    same = ids[1:] == ids[:-1]
    starts = np.r_[0, np.flatnonzero(~same) + 1] if len(ids) else np.zeros(0, dtype=int)
    ordered = len(set(ids[starts])) == len(starts) and bool(np.all(idx[1:][same] > idx[:-1][same]))
    return starts, ordered


def paired_on(preds: dict[str, pd.DataFrame], ra: pd.DataFrame, rb: pd.DataFrame,
              seeds: list[int], n_boot: int = 2000) -> dict[str, Any]:
    """``metrics.paired_compare`` of the matched seeds' test predictions (``by_run``)."""
    ids_a, ids_b = ra.loc[seeds, "run_id"].tolist(), rb.loc[seeds, "run_id"].tolist()
    labels = preds[ids_a[0]]["label"].to_numpy()
    pa = np.stack([preds[rid]["prob"].to_numpy() for rid in ids_a])
    pb = np.stack([preds[rid]["prob"].to_numpy() for rid in ids_b])
    return paired_compare(labels, pa, pb, n_boot=n_boot)


def format_comparison(res: dict[str, Any]) -> str:
    """A few plain lines a person can read."""
    mc, au, ac = res["mcnemar"], res["auroc"], res["accuracy_diff"]
    pooled = "; optimistic: images repeat across seeds" if len(res["seeds"]) > 1 else ""
    return "\n".join([
        f"A = {res['a']}", f"B = {res['b']}",
        *([f"recipe {res['recipe']}"] if " " in str(res.get("recipe", "")) else []),
        f"matched seeds {res['seeds']} on {res['n_images']} real test images",
        *_evidence_lines(res),
        "image-only figures (the trained models held fixed: about these models, not the recipe):",
        f"accuracy  A {res['accuracy_a']:.4f}  B {res['accuracy_b']:.4f}  "
        f"(mean over seeds, threshold 0.5)  difference {ac['diff']:+.4f}  95% interval "
        f"[{ac['lo']:+.4f}, {ac['hi']:+.4f}]  p = {ac['p']:.3g} ({ac['test']})",
        f"McNemar (exact, pooled over seeds{pooled}): A right/B wrong {mc['b']}, A wrong/B "
        f"right {mc['c']}, p = {mc['p_value']:.4g}; per seed p = "
        + ", ".join(f"{p:.3g}" for p in res["per_seed_p"]),
        *_val_threshold_line(res),
        f"AUROC of seed-mean scores  A {res['auroc_a']:.4f}  B {res['auroc_b']:.4f}  "
        f"difference {au['diff']:+.4f}  95% bootstrap interval [{au['lo']:+.4f}, {au['hi']:+.4f}]"
        f"  {bootstrap_p_text(au)}",
    ])


def _evidence_lines(res: dict[str, Any]) -> list[str]:
    """The verdict tests: per metric, a - b with its interval and p, by the seed-aware test
    (or the image-only one, named so, with one seed), and the minimal detectable difference."""
    ev = res.get("evidence") or {}
    k = len(res["seeds"])
    head = (f"seed-aware tests (the trained model is the unit: {k} matched seeds, "
            f"Obuchowski-Rockette variance, {k - 1} df):" if k > 1 else
            "one matched seed: no seed-level test; image-only tests (these trained models, not "
            "the recipe):")
    lines = [head]
    for name, e in ev.items():
        mdd = "" if e["mdd"] != e["mdd"] else f"  minimal detectable difference {e['mdd']:.4f}"
        lines.append(f"  {METRICS[name].label:<28} A {e['value_a']:.4f}  B {e['value_b']:.4f}  "
                     f"difference {e['diff']:+.4f}  95% interval [{e['lo']:+.4f}, "
                     f"{e['hi']:+.4f}]  p = {e['p']:.3g}{mdd}"
                     + (f"  (seed sd of the difference {e['seed_sd']:.4f})" if k > 1 else ""))
    return lines


def _val_threshold_line(res: dict[str, Any]) -> list[str]:
    vt = res.get("val_threshold")
    if not vt:
        return []
    ac, ts = vt["accuracy_diff"], vt["thresholds"]
    return [f"at each run's threshold picked on val ({min(ts):.3f}-{max(ts):.3f}): accuracy  "
            f"A {vt['accuracy_a']:.4f}  B {vt['accuracy_b']:.4f}  difference "
            f"{ac['diff']:+.4f}  95% interval [{ac['lo']:+.4f}, {ac['hi']:+.4f}]  "
            f"p = {ac['p']:.3g} ({ac['test']})"]


def bootstrap_p_text(au: dict[str, Any]) -> str:
    """The bootstrap p as text: none of ``n_boot`` resampled differences on the other side of
    0 reads ``p < 1/n_boot`` (the resolution of the resampling), not ``p = 0``."""
    if au["p"] == 0 and au.get("n_boot"):
        return f"p < {1 / au['n_boot']:.2g} (none of {au['n_boot']} resamples crossed 0)"
    return f"p = {au['p']:.3g}"
