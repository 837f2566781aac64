"""The evidence of one contrast (cell a against cell b, matched seeds, the same real test images)
on each metric a verdict reads: accuracy at 0.5, accuracy at each run's threshold picked on val,
and AUROC. Shared by ``claims`` and ``compare``.

With two or more matched seeds the test is ``seeds.seed_aware`` (the trained model is the unit:
a claim about the recipe); with one seed there is no seed-level test, and the evidence is the
image-only test, named as such (exact McNemar for accuracy, DeLong for AUROC: a statement
about these two trained models, not about the recipe).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import seeds
from .metrics import mcnemar_p


@dataclass(frozen=True)
class Pair:
    """Matched seeds of two cells on the same images: ``labels`` (n), ``probs_a`` / ``probs_b``
    (k x n, row s = seed s of each cell), each run's val-picked threshold (k each; None when a
    run has none) and the seed numbers (k)."""

    labels: np.ndarray
    probs_a: np.ndarray
    probs_b: np.ndarray
    thresholds_a: np.ndarray | None = None
    thresholds_b: np.ndarray | None = None
    seed_ids: tuple[int, ...] = ()

    @property
    def k(self) -> int:
        return int(self.probs_a.shape[0])


@dataclass(frozen=True)
class Parts:
    """One metric of a Pair, per seed: ``d`` (k) = a - b of each seed; ``influence`` = arrays
    (k x images of a class, or k x all images) whose covariances over their columns, divided
    by their column counts and added up, are the image-sampling covariance of the d's (per-image
    correctness differences for accuracy; DeLong's placement differences for AUROC); each side's
    seed-mean value; ``one_seed_p``: the exact image-only p with one seed (McNemar), or None."""

    d: np.ndarray
    influence: tuple[np.ndarray, ...]
    value_a: float
    value_b: float
    one_seed_p: float | None = None

    def image_cov(self) -> np.ndarray:
        return sum(np.atleast_2d(np.cov(x)) / x.shape[1] for x in self.influence)


@dataclass(frozen=True)
class Metric:
    """A verdict metric: its label, its Parts from a Pair (None when the runs lack what it
    needs, e.g. a val threshold), the degrees of freedom of its image-only test and the name of
    that test with one seed."""

    label: str
    parts: Callable[[Pair], Parts | None]
    image_df: Callable[[Pair], float]
    one_seed_test: str


def _accuracy_at(threshold_of: Callable[[Pair, str], Any]) -> Callable[[Pair], Parts | None]:
    """Accuracy at each run's threshold (``threshold_of(pair, "a"|"b")``: a number or one per
    seed): per image and seed, e = (a right) - (b right)."""
    def parts(pair: Pair) -> Parts | None:
        ta, tb = threshold_of(pair, "a"), threshold_of(pair, "b")
        if ta is None or tb is None:
            return None
        y = pair.labels.astype(bool)
        ok_a = (pair.probs_a >= np.reshape(ta, (-1, 1))) == y
        ok_b = (pair.probs_b >= np.reshape(tb, (-1, 1))) == y
        e = ok_a.astype(np.int64) - ok_b.astype(np.int64)
        exact = float(mcnemar_p((e == 1).sum(), (e == -1).sum())) if pair.k == 1 else None
        return Parts(e.mean(axis=1), (e.astype(np.float64),), float(ok_a.mean()),
                     float(ok_b.mean()), exact)
    return parts


def _val_threshold(pair: Pair, side: str) -> np.ndarray | None:
    t = pair.thresholds_a if side == "a" else pair.thresholds_b
    return None if t is None or np.isnan(t).any() else t


def _auroc(pair: Pair) -> Parts:
    """Per seed, AUROC(a) - AUROC(b); DeLong's placement differences as the influence."""
    from .delong import placements
    auc_a, v10_a, v01_a = placements(pair.labels, pair.probs_a)
    auc_b, v10_b, v01_b = placements(pair.labels, pair.probs_b)
    return Parts(auc_a - auc_b, (v10_a - v10_b, v01_a - v01_b), float(auc_a.mean()),
                 float(auc_b.mean()))


# name -> Metric, in the order tables show them (the CLI's --metric choices)
METRICS: dict[str, Metric] = {
    "accuracy": Metric("accuracy at 0.5", _accuracy_at(lambda pair, side: 0.5),
                       lambda pair: pair.labels.size - 1, "exact McNemar"),
    "accuracy_val": Metric("accuracy at val's threshold", _accuracy_at(_val_threshold),
                           lambda pair: pair.labels.size - 1, "exact McNemar"),
    "auroc": Metric("AUROC", _auroc, lambda pair: np.inf, "DeLong"),
}
ONE_SEED = "image-only, 1 seed: these trained models, not the recipe"


def units_of(name: str, pair: Pair) -> tuple[seeds.Units, Parts] | None:
    """The ``seeds.Units`` of metric ``name``'s a - b over the pair's seeds, and its Parts."""
    parts = METRICS[name].parts(pair)
    if parts is None:
        return None
    return seeds.from_influence(parts.d, parts.image_cov(), METRICS[name].image_df(pair)), parts


def evidence(name: str, pair: Pair) -> dict[str, Any] | None:
    """Metric ``name``'s evidence on a - b (None when the runs lack what it needs, e.g. a val
    threshold): value_a, value_b, diff, se, df, lo, hi (95%), p and the test they come from
    (seed-aware with k >= 2, else image-only and named so), image_p (the image-only test's p,
    always), seed_sd (sd over seeds of the per-seed difference), mdd (the minimal detectable
    difference at power 0.8, alpha 0.05, at these seeds; NaN with one seed) and seeds."""
    got = units_of(name, pair)
    if got is None:
        return None
    u, parts = got
    image = {k: float(np.ravel(v)[0]) for k, v in seeds.image_only(u).items()}
    if parts.one_seed_p is not None:
        image["p"] = parts.one_seed_p  # exact McNemar with one seed, as the grid marks it
    one = pair.k == 1
    out = image if one else {k: float(np.ravel(v)[0]) for k, v in seeds.seed_aware(u).items()}
    return {"metric": name, "value_a": parts.value_a, "value_b": parts.value_b, **out,
            "test": (f"{ONE_SEED} ({METRICS[name].one_seed_test})" if one
                     else seeds.SEED_AWARE_TEST),
            "image_p": image["p"], "seed_sd": float(np.sqrt(np.ravel(u.unit_var)[0])),
            "mdd": float("nan") if one else float(seeds.min_detectable(out["se"], out["df"])),
            "seeds": pair.k}


def all_evidence(pair: Pair) -> dict[str, dict[str, Any]]:
    """``evidence`` of every metric in METRICS that the pair allows."""
    return {name: ev for name in METRICS if (ev := evidence(name, pair)) is not None}
