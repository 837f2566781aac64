"""The study's conclusions (as its published grid reads: one run per cell), and questions it
left open, as paired contrasts checked on this store's runs.

A claim compares two cells of the same arch, init and profile (and the same synthetic set when
a cell uses one) on the same real test images: ``a`` is the cell the claim is about, ``b`` what
it is compared with. Its evidence is read on three metrics side by side (``evidence.METRICS``:
accuracy at 0.5, accuracy at each run's val-picked threshold, AUROC), each with the seed-aware
test (the trained model is the unit; ``seeds``), or with one seed the image-only test, named so.
p-values are adjusted across the claims within each metric (Holm by default). The verdict of
one metric reads the adjusted p and the sign of a - b against the claim's direction, at ALPHA:

- ``worse`` / ``better``: *supported* when a - b is significant on the claimed side,
  *contradicted* when significant on the other side, *inconclusive* otherwise (and the row says
  when a non-significant difference is shown equivalent to zero within the metric's margin);
- ``not better`` ("brings no clear gain"): *contradicted* by a significant gain; *supported*
  only when a TOST shows the difference inside +-MARGINS[metric] (or a significant loss shows
  there is no gain); *inconclusive* otherwise: absence of evidence is not evidence of no effect.

``overall`` says whether the metrics agree (robust) or which metric carries which verdict.
Where two or more sets of one generator method were checked, a row per method treats the set
as the random unit (``generators``). The study's own figures behind each claim come from its
published grid. Runs on a synthetic set that holds copies of real test images are left out
(``synth.copies``): a model that saw the images it is scored on proves nothing.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from ..catalog import SETTINGS
from ..grid import reference_rows
from ..store import Store
from ..synth.copies import sets_with_test_copies
from . import seeds as seed_tests
from .calibration import VAL_THRESHOLD_SPLIT
from .compare import CellKey, by_run, cell_runs, matched_seeds, pair_run_ids
from .corrections import DEFAULT_CORRECTION, adjust_p
from .evidence import METRICS, Pair, all_evidence
from .generators import method_evidence

EXPECTATIONS = ("worse", "better", "not better")
ALPHA = 0.05
VERDICTS = ("supported", "contradicted", "inconclusive")
# The equivalence margins, declared once: a difference inside +-margin is "no real difference"
# (TOST). Two points of accuracy are 12 of the 624 test images; AUROC moves less.
MARGINS = {"accuracy": 0.02, "accuracy_val": 0.02, "auroc": 0.01}


@dataclass(frozen=True)
class Claim:
    key: str
    statement: str
    a: tuple[str, float | None]  # (setting, ratio) of the cell the claim is about
    b: tuple[str, float | None]  # the cell it is compared with
    expect: str  # one of EXPECTATIONS: what a - b should be
    source: str = "study"  # "study": the study concluded it; "beyond": a question it did not ask


CLAIMS: tuple[Claim, ...] = (
    Claim("synthetic_only", "Training on synthetic images alone is worse than on real images",
          ("synthetic_base", None), ("base", None), "worse"),
    Claim("synthetic_ft", "Fine-tuning a real-trained model on synthetic images makes it worse",
          ("synthetic_ft", None), ("base", None), "worse"),
    *(Claim(f"augment_{r}", f"Adding synthetic images to the real ones (1:{r}) brings no clear "
            "gain", ("augment", float(r)), ("base", None), "not better") for r in (1, 2, 3)),
    Claim("more_synthetic", "From scratch, more synthetic images (1:3) beat fewer (1:1)",
          ("augment", 3.0), ("augment", 1.0), "better"),
    *(Claim(f"content_{r}", f"Synthetic images help more than as many re-drawn real images "
            f"(1:{r})", ("augment", float(r)), ("duplicate_control", float(r)), "better",
            "beyond") for r in (1, 2, 3)),
    Claim("synthetic_pretrain", "Pretraining on synthetic images, then fine-tuning on real, "
          "beats real only", ("synthetic_pretrain", None), ("base", None), "better", "beyond"),
)

COLUMNS = ["claim", "statement", "source", "expect", "arch", "init", "profile", "recipe",
           "synthetic", "unit", "a", "b", "seeds", "metric", "value_a", "value_b", "diff", "lo",
           "hi", "se", "df", "p", "p_adjusted", "test", "image_p", "seed_sd", "mdd", "margin",
           "tost_p", "tost_p_adjusted", "equivalent", "verdict", "overall", "note", "study"]
# Rows of one checked contrast (its metrics): the unit is "seed" (k >= 2 matched seeds),
# "model" (one seed: the image-only test) or "generator" (sets of one method as the unit).
GROUP = ["claim", "arch", "init", "profile", "recipe", "synthetic", "unit"]


def verdict(expect: str, diff: float, p: float, equivalent: bool = False,
            alpha: float = ALPHA) -> str:
    """Supported / contradicted / inconclusive from a - b, its (adjusted) p-value and whether a
    TOST showed it inside the metric's margin (module docstring)."""
    if expect not in EXPECTATIONS:
        raise ValueError(f"unknown expectation {expect!r}; choose one of {EXPECTATIONS}")
    side = ("better" if diff > 0 else "worse") if p < alpha else None
    if expect == "not better":
        if side == "better":
            return "contradicted"
        return "supported" if side == "worse" or equivalent else "inconclusive"
    return "inconclusive" if side is None else "supported" if side == expect else "contradicted"


def overall(verdicts: dict[str, str]) -> str:
    """``robust: supported`` when all three metrics give one verdict (``inconclusive on every
    metric`` when that verdict is inconclusive), else which metric carries which, e.g.
    ``contradicted on accuracy at 0.5; inconclusive on AUROC``."""
    if len(set(verdicts.values())) == 1 and len(verdicts) == len(METRICS):
        only = next(iter(verdicts.values()))
        return "inconclusive on every metric" if only == "inconclusive" else f"robust: {only}"
    by = {}
    for name, v in verdicts.items():
        by.setdefault(v, []).append(METRICS[name].label)
    return "; ".join(f"{v} on {', '.join(labels)}" for v, labels in by.items())


@functools.lru_cache(maxsize=1)
def _study_accuracy() -> dict[tuple, float]:
    return {(r.arch, r.init, r.setting, r.ratio): r.test_accuracy for r in reference_rows()}


def study_figures(claim: Claim) -> str:
    """The study's test accuracies of a and b per arch and init, e.g. ``resnet50 scratch 0.662
    vs 0.837``; empty when it did not run both."""
    acc = _study_accuracy()
    parts = []
    for (arch, init, setting, ratio), value in acc.items():
        if (setting, ratio) == claim.a and (arch, init, *claim.b) in acc:
            parts.append(f"{arch} {init} {value:.3f} vs {acc[(arch, init, *claim.b)]:.3f}")
    return "; ".join(parts)


def _label(setting: str, ratio: float | None) -> str:
    return setting + (f" ×{ratio:g}" if ratio is not None else "")


def _synthetic_sets(cells: pd.DataFrame, claim: Claim) -> list[str | None]:
    """The sets to check a claim on in one (arch, init, profile) group: those of its
    synthetic-using cell(s), or None when neither cell uses one."""
    users = [side for side in (claim.a, claim.b) if SETTINGS[side[0]].uses_synthetic]
    if not users:
        return [None]
    setting, ratio = users[0]
    hit = cells[(cells["setting"] == setting) & _same_ratio(cells["ratio"], ratio)]
    return sorted(set(hit["synthetic"].dropna()))


def _same_ratio(col: pd.Series, ratio: float | None) -> pd.Series:
    return col.isna() if ratio is None else col == ratio


def _key(group: tuple, side: tuple[str, float | None], synthetic: str | None) -> CellKey:
    arch, init, profile, recipe = group
    uses = SETTINGS[side[0]].uses_synthetic
    return CellKey(arch, init, side[0], side[1], synthetic if uses else None, profile, recipe)


def check_claims(store: Store, profile: str | None = None, archs: Iterable[str] | None = None,
                 claims: Iterable[Claim] = CLAIMS, origin: str | None = None,
                 correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """One row per claim, (arch, init, recipe, synthetic set or generator method) where both of
    its cells have finished runs with matching seeds, and metric (``evidence.METRICS``): the
    cells, seeds, each cell's seed-mean value, the evidence on a - b (``evidence.evidence``),
    p adjusted by ``correction`` across the claims of that metric, the TOST p against
    MARGINS (adjusted the same way), the metric's verdict, ``overall`` (do the metrics agree?)
    and the study's figures. Rows in claim order; empty (with COLUMNS) when nothing can be
    checked. ``attrs["left_out_sets"]`` names the sets whose runs were left out for holding
    copies of real test images."""
    runs, left_out = _without_test_copies(store, store.runs(status="finished"))
    if profile is not None:
        runs = runs[runs["profile"] == profile]
    if archs is not None:
        runs = runs[runs["arch"].isin(list(archs))]
    if origin is not None:  # the runs of one source (this machine, or one bundle)
        runs = runs[runs["origin"] == origin]
    pending = _pending(runs, claims)
    if not pending:
        return _noted(pd.DataFrame(columns=COLUMNS), left_out)
    pairs = _pairs(store, pending)
    rows = []
    for (claim, (arch, init, prof, _recipe), synthetic, ra, rb, seeds), pair in zip(pending, pairs):
        head = _head(claim, arch, init, prof, ra["recipe_label"].iloc[0], synthetic,
                     "seed" if len(seeds) > 1 else "model", len(seeds))
        rows += [{**head, **ev} for ev in all_evidence(pair).values()]
    rows += _method_rows(store, pending, pairs)
    df = _judged(pd.DataFrame(rows, columns=COLUMNS), correction)
    df.attrs["correction"] = correction
    return _noted(df, left_out)


def _pending(runs: pd.DataFrame, claims: Iterable[Claim]) -> list[tuple]:
    """(claim, group, set, runs of a, runs of b, matched seeds) of every checkable contrast."""
    pending = []
    for claim in claims:
        for group, cells in runs.groupby(["arch", "init", "profile", "recipe"], sort=True):
            for synthetic in _synthetic_sets(cells, claim):
                ka, kb = _key(group, claim.a, synthetic), _key(group, claim.b, synthetic)
                ra, rb = cell_runs(cells, ka), cell_runs(cells, kb)
                seeds = matched_seeds(ra, rb)
                if seeds:
                    pending.append((claim, group, synthetic, ra, rb, seeds))
    return pending


def _pairs(store: Store, pending: list[tuple]) -> list[Pair]:
    """The test predictions and val-picked thresholds of every pending contrast, read once."""
    ids = sorted({rid for *_, ra, rb, seeds in pending for rid in pair_run_ids(ra, rb, seeds)})
    preds = by_run(store.predictions(ids))
    thresholds = store.metric_of(ids, VAL_THRESHOLD_SPLIT, "threshold")
    out = []
    for *_, ra, rb, seeds in pending:
        ia, ib = ra.loc[seeds, "run_id"].tolist(), rb.loc[seeds, "run_id"].tolist()
        probs = [np.stack([preds[r]["prob"].to_numpy() for r in side]) for side in (ia, ib)]
        ts = [np.array([thresholds.get(r, np.nan) for r in side]) for side in (ia, ib)]
        out.append(Pair(preds[ia[0]]["label"].to_numpy(), *probs, *ts, tuple(seeds)))
    return out


def _head(claim: Claim, arch: str, init: str, profile: str, recipe: str, synthetic, unit: str,
          k: int) -> dict:
    return {"claim": claim.key, "statement": claim.statement, "source": claim.source,
            "expect": claim.expect, "arch": arch, "init": init, "profile": profile,
            "recipe": recipe, "synthetic": synthetic, "unit": unit, "a": _label(*claim.a),
            "b": _label(*claim.b), "seeds": k, "study": study_figures(claim)}


def _method_rows(store: Store, pending: list[tuple], pairs: list[Pair]) -> list[dict]:
    """Rows with the generator as the unit (``generators``): per claim and group, each method
    whose sets were checked on two or more sets."""
    sets = store.synthetic_sets()
    methods = dict(zip(sets["name"], sets["method"]))
    found: dict[tuple, list] = {}
    for (claim, group, synthetic, ra, *_), pair in zip(pending, pairs):
        if synthetic is not None and methods.get(synthetic):
            key = (claim, group, methods[synthetic], ra["recipe_label"].iloc[0])
            found.setdefault(key, []).append((synthetic, pair))
    rows = []
    for (claim, (arch, init, prof, _), method, recipe), sets in found.items():
        if len(sets) < 2:
            continue
        names, set_pairs = [s for s, _ in sets], [p for _, p in sets]
        head = _head(claim, arch, init, prof, recipe, f"{method} ({len(sets)} sets)",
                     "generator", min(p.k for p in set_pairs))
        for name in METRICS:
            ev = method_evidence(name, set_pairs, names)
            if ev is not None:
                rows.append({**head, **ev})
    return rows


def _judged(df: pd.DataFrame, correction: str) -> pd.DataFrame:
    """Adjusted p, TOST and verdict per metric (the family: every contrast of that metric),
    then ``overall`` per checked contrast; rows in claim, group, metric order."""
    if df.empty:
        return df
    df["margin"] = df["metric"].map(MARGINS)
    df["tost_p"] = seed_tests.tost(df["diff"], df["se"], df["df"], df["margin"])
    for _, idx in df.groupby("metric").groups.items():
        df.loc[idx, "p_adjusted"] = adjust_p(df.loc[idx, "p"].astype("float64"), correction)
        df.loc[idx, "tost_p_adjusted"] = adjust_p(df.loc[idx, "tost_p"].astype("float64"),
                                                  correction)
    df["equivalent"] = (df["tost_p_adjusted"].astype("float64") < ALPHA).astype(bool)
    df["verdict"] = [verdict(e, d, p, q) for e, d, p, q in
                     zip(df["expect"], df["diff"], df["p_adjusted"], df["equivalent"])]
    keys = [df[c].map(lambda v: "" if v is None or v != v else str(v)) for c in GROUP]
    groups = df.groupby(keys, sort=False)
    df["overall"] = groups["verdict"].transform(lambda v: overall(
        dict(zip(df.loc[v.index, "metric"], v))))
    order = {c.key: i for i, c in enumerate(CLAIMS)}
    rank = pd.DataFrame({"c": df["claim"].map(lambda k: order.get(k, len(order))),
                         "g": df["unit"].eq("generator")}, index=df.index)
    return df.loc[rank.sort_values(["c", "g"], kind="stable").index].reset_index(drop=True)


def _without_test_copies(store: Store, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``runs`` less those on a set holding copies of real test images, and those sets."""
    leaky = runs["synthetic"].isin(list(sets_with_test_copies(store.synthetic_sets())))
    return runs[~leaky], sorted(set(runs.loc[leaky, "synthetic"]))


def _noted(df: pd.DataFrame, left_out: list[str]) -> pd.DataFrame:
    df.attrs["left_out_sets"] = left_out
    return df
