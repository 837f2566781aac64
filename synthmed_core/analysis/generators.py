"""The generator as a source of variance: where a claim was checked on two or more synthetic sets
made by one method (the set card's ``method``, e.g. two CycleGANs trained with different
generator seeds), a claim about "CycleGAN images" has the set, not the classifier seed, as its
top-level random unit.

Per set g, d_g = the set's a - b averaged over its matched seeds. The test is the seed-aware
one with sets as the units (``seeds.seed_aware``: variance over sets, G - 1 degrees of freedom:
with two sets, one), plus what the sets share and the spread over sets cannot show: the same
test images (the image-sampling covariance of the sets' seed-averaged differences) and the same
``b`` runs (cell b, e.g. base, is one set of runs for every set: the covariance over their
common seeds of the sets' per-seed differences, divided by those seeds). Both are added to the
variance in full, which errs wide; with two sets the interval is wide, and that is the point.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import seeds
from .evidence import METRICS, Pair, Parts, evidence


def _shared_seed_cov(parts: list[Parts], pairs: list[Pair]) -> float:
    """Mean over set pairs of cov over their common seeds of the per-seed differences, over
    the number of those seeds (the b runs they share); 0 with fewer than two common seeds."""
    covs = []
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            common = sorted(set(pairs[i].seed_ids) & set(pairs[j].seed_ids))
            if len(common) < 2:
                continue
            di = [parts[i].d[pairs[i].seed_ids.index(s)] for s in common]
            dj = [parts[j].d[pairs[j].seed_ids.index(s)] for s in common]
            covs.append(np.cov(di, dj)[0, 1] / len(common))
    return max(float(np.mean(covs)), 0.0) if covs else 0.0


def method_units(name: str, pairs: list[Pair]) -> seeds.Units | None:
    """``seeds.Units`` of metric ``name`` with the sets of one method as units (module
    docstring); None when a set's runs lack what the metric needs."""
    parts = [METRICS[name].parts(pair) for pair in pairs]
    if any(p is None for p in parts):
        return None
    d = np.array([p.d.mean() for p in parts])
    averaged = [tuple(x.mean(axis=0) for x in p.influence) for p in parts]  # per set, per part
    image_cov = sum(np.atleast_2d(np.cov(np.stack([a[j] for a in averaged]))) / averaged[0][j].size
                    for j in range(len(averaged[0])))
    g = len(pairs)
    off = image_cov[~np.eye(g, dtype=bool)].mean()
    return seeds.Units(np.float64(d.mean()), np.float64(d.var(ddof=1)),
                       np.float64(off + _shared_seed_cov(parts, pairs)),
                       np.float64(image_cov.mean()), np.float64(METRICS[name].image_df(pairs[0])),
                       np.float64(g))


def method_evidence(name: str, pairs: list[Pair], sets: list[str]) -> dict[str, Any] | None:
    """The method-level evidence of metric ``name`` (as ``evidence.evidence``, the sets being
    the units) and ``note``: each set's a - b and, for two sets, how far their ``a`` cells
    differ (the seed-aware test of one set's cell against the other's, matched seeds)."""
    u = method_units(name, pairs)
    if u is None:
        return None
    res = {k: float(np.ravel(v)[0]) for k, v in seeds.seed_aware(u).items()}
    per_set = [METRICS[name].parts(p) for p in pairs]
    note = "per set a - b: " + ", ".join(f"{s} {p.d.mean():+.3f}" for s, p in zip(sets, per_set))
    if len(pairs) == 2:
        note += "; " + _between_sets(name, pairs, sets)
    return {"metric": name, "value_a": float(np.mean([p.value_a for p in per_set])),
            "value_b": float(np.mean([p.value_b for p in per_set])), **res,
            "test": f"generator-level t ({len(pairs)} sets as the unit, {len(pairs) - 1} df)",
            "image_p": float("nan"), "seed_sd": float(np.sqrt(u.unit_var)),
            "mdd": float(seeds.min_detectable(res["se"], res["df"])),
            "seeds": int(min(p.k for p in pairs)), "note": note}


def _between_sets(name: str, pairs: list[Pair], sets: list[str]) -> str:
    """``a on set 1 - a on set 2: +0.012 [-0.010, +0.034], p 0.21 (3 seeds)``."""
    one, two = pairs
    common = sorted(set(one.seed_ids) & set(two.seed_ids))
    if not common:
        return "the two sets' cells share no seed"
    rows = [[p.seed_ids.index(s) for s in common] for p in pairs]
    ta, tb = (None if p.thresholds_a is None else p.thresholds_a[r] for p, r in zip(pairs, rows))
    ev = evidence(name, Pair(one.labels, one.probs_a[rows[0]], two.probs_a[rows[1]], ta, tb,
                             tuple(common)))
    if ev is None:
        return "the two sets' cells cannot be compared on this metric"
    return (f"a on {sets[0]} - a on {sets[1]}: {ev['diff']:+.3f} [{ev['lo']:+.3f}, "
            f"{ev['hi']:+.3f}], p {ev['p']:.2g} ({len(common)} seed{'s' if len(common) > 1 else ''})")
