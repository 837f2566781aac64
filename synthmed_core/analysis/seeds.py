"""Seed-aware inference: the trained model (seed) is the unit of a claim about a recipe.

Comparing two cells on the same test images is the multi-reader multi-case problem of
radiology: the seeds are the readers, the test images the cases. For one contrast with k
matched seeds, let d_s be seed s's difference of the metric (a - b) and C the image-sampling
covariance between two different seeds' differences (how much they move together when the
test images are drawn again; estimated over the images, see ``accuracy_units`` and
``auroc_units``). The Obuchowski-Rockette model with Hillis's corrections (Obuchowski &
Rockette 1995; Hillis, Statistics in Medicine 2007) gives

    Var(mean d) = [var_s(d_s) + k * max(C, 0)] / k,
    Hillis's df = [var_s(d_s) + k * max(C, 0)]^2 / (var_s(d_s)^2 / (k - 1))   (>= k - 1),

and a Student t; at the few seeds a cell has, Hillis's df lets through too many false positives
in our simulation, so the t gets its lower bound, k - 1 (``DF_RULES``). var_s(d_s) carries the
seed-to-seed spread and the part of the image noise that differs between seeds; k * C puts
back the part they share.
This is ``seed_aware``. The *conservative* variant (``conservative``: image SE^2 + seed SE^2,
Welch-Satterthwaite df) counts the image noise twice; ``image_only`` holds the models fixed
(it answers "these trained models", not "this recipe"). ``tests/test_seeds.py`` checks all
three by simulation; docs/statistics.md says why ``seed_aware`` is the one verdicts read.

Every function is element-wise over arrays of contrasts, so a whole grid is one call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

SEED_AWARE_TEST = "seed-aware t (Obuchowski-Rockette variance, k-1 df)"
IMAGE_ONLY = "image-only"  # prefix of every test that holds the trained models fixed
POWER = 0.8  # the minimal detectable difference: found 80% of the time at alpha 0.05


@dataclass(frozen=True)
class Units:
    """What the tests need of contrasts (arrays, element-wise): ``diff`` = mean over units
    (seeds, or generators) of the per-unit difference, ``unit_var`` = its variance over units
    (ddof 1), ``cross_cov`` = C, the mean image-sampling covariance of two different units'
    differences, ``image_var`` = the variance of ``diff`` from image sampling alone (units
    fixed), ``image_df`` = the degrees of freedom of that (images - 1 for accuracy, inf for
    DeLong's normal AUROC test), ``k`` = units."""

    diff: np.ndarray
    unit_var: np.ndarray
    cross_cov: np.ndarray
    image_var: np.ndarray
    image_df: np.ndarray
    k: np.ndarray


def _floats(*values: Any) -> list[np.ndarray]:
    return [np.asarray(v, dtype=np.float64) for v in values]


def t_test(diff: Any, var: Any, df: Any, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Two-sided Student t of ``diff`` with variance ``var`` on ``df`` degrees of freedom
    (inf = normal), element-wise: diff, se, df, lo, hi (``confidence`` interval) and p. With no
    spread at all, p is 1 when diff is 0 and 0 otherwise, and the interval is the point."""
    diff, var, df = _floats(diff, var, df)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(np.maximum(var, 0.0))
        p = np.where(se > 0, 2 * special.stdtr(df, -np.abs(diff) / se),
                     np.where(diff == 0, 1.0, 0.0))
        half = np.where(se > 0, special.stdtrit(df, 0.5 + confidence / 2) * se, 0.0)
    nan = np.isnan(var) | np.isnan(df) | np.isnan(diff)
    p, half = np.where(nan, np.nan, p), np.where(nan, np.nan, half)
    return {"diff": diff, "se": se, "df": df, "lo": diff - half, "hi": diff + half, "p": p}


def _hillis_df(u: Units, num: np.ndarray, k: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(u.unit_var > 0, num ** 2 / (u.unit_var ** 2 / (k - 1)), np.inf)


# How many degrees of freedom the seed-aware t gets: Hillis's estimate, or its lower bound k - 1.
# Hillis's is liberal at few seeds in our simulation (tests/test_seeds.py: 0.08-0.09 false
# positives at 2 seeds, up to 0.066 at 3); k - 1 stays under 0.05 at 2, 3 and 5 seeds and loses
# little power at 5 (docs/statistics.md), so verdicts use k - 1.
DF_RULES = {"k-1": lambda u, num, k: k - 1, "hillis": _hillis_df}
DEFAULT_DF = "k-1"


def seed_aware(u: Units, confidence: float = 0.95, df_rule: str = DEFAULT_DF
               ) -> dict[str, np.ndarray]:
    """The Obuchowski-Rockette variance [var_s(d_s) + k max(C, 0)] / k and a t on ``df_rule``'s
    degrees of freedom (DF_RULES); NaN where k < 2: with one seed there is no seed-level test."""
    k = np.where(u.k >= 2, u.k, np.nan)
    num = u.unit_var + k * np.maximum(u.cross_cov, 0.0)
    df = DF_RULES[df_rule](u, num, k)
    return t_test(u.diff, num / k, np.where(np.isnan(k), np.nan, df), confidence)


def conservative(u: Units, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """The issue's first wording: image SE^2 + seed SE^2 with Welch-Satterthwaite df. It counts
    the image noise twice (var_s(d_s) holds most of it already): valid, but less power."""
    k = np.where(u.k >= 2, u.k, np.nan)
    seed = u.unit_var / k
    var = u.image_var + seed
    with np.errstate(invalid="ignore", divide="ignore"):
        df = var ** 2 / (u.image_var ** 2 / u.image_df + seed ** 2 / (k - 1))
    return t_test(u.diff, var, df, confidence)


def image_only(u: Units, confidence: float = 0.95) -> dict[str, np.ndarray]:
    """The test that holds the trained models fixed: only the test images vary."""
    return t_test(u.diff, u.image_var, u.image_df, confidence)


def min_detectable(se: Any, df: Any, alpha: float = 0.05, power: float = POWER) -> np.ndarray:
    """The smallest true difference that the two-sided t test at ``alpha`` finds with
    probability ``power``, at this standard error and these degrees of freedom: solved on the
    noncentral t (``scipy.special.nctdtr``) by bisection, element-wise; NaN where se or df is."""
    se, df = _floats(se, df)
    crit = special.stdtrit(df, 1 - alpha / 2)

    def found(nc: np.ndarray) -> np.ndarray:  # P(|T| > crit) when T is noncentral t(df, nc)
        return 1 - special.nctdtr(df, nc, crit) + special.nctdtr(df, nc, -crit)

    lo, hi = np.zeros_like(se), np.full_like(se, 100.0)
    for _ in range(60):  # 100 / 2^60: far below any figure printed
        mid = (lo + hi) / 2
        short = found(mid) < power
        lo, hi = np.where(short, mid, lo), np.where(short, hi, mid)
    return np.where(np.isnan(se) | np.isnan(df), np.nan, (lo + hi) / 2 * se)


def tost(diff: Any, se: Any, df: Any, margin: Any) -> np.ndarray:
    """Schuirmann's two one-sided tests of equivalence: p that the difference lies inside
    (-margin, +margin), i.e. the larger of the p of H0: diff <= -margin and of H0: diff >=
    +margin (equivalent at alpha when the 1 - 2 alpha interval is inside the margin)."""
    diff, se, df, margin = _floats(diff, se, df, margin)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = special.stdtr(df, -(diff + margin) / se)  # P(T >= (diff + m) / se)
        upper = special.stdtr(df, (diff - margin) / se)
        p = np.maximum(lower, upper)
    inside = np.abs(diff) < margin
    return np.where(se > 0, p, np.where(inside, 0.0, 1.0))


# ---- the inputs from the data -----------------------------------------------------------------


def accuracy_units(wins: Any, losses: Any, q: Any, seed_sq: Any, k: Any, n: Any) -> Units:
    """``Units`` of accuracy differences from counts over k matched seeds and n images, with
    e = (a right) - (b right) per seed and image: ``wins`` / ``losses`` = pairs with e = +1 /
    -1, ``q`` = sum over images of (sum over seeds of e)^2 and ``seed_sq`` = sum over seeds of
    (sum over images of e)^2. The grid's store query sums these in one numpy pass; the cross-
    seed covariance comes out of them without any k x k product: the off-diagonal sum of
    e_s . e_s' is q - wins - losses."""
    w, l_, q, ss, k, n = _floats(wins, losses, q, seed_sq, k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (w - l_) / (k * n)
        unit_var = np.where(k > 1, (ss / n ** 2 - k * diff ** 2) / (k - 1), np.nan)
        cross = np.where(k > 1, ((q - w - l_) - ((w - l_) ** 2 - ss) / n)
                         / (n * (n - 1) * k * (k - 1)), np.nan)
        image_var = np.maximum(q / k ** 2 - n * diff ** 2, 0.0) / (n - 1) / n
    return Units(diff, np.maximum(unit_var, 0.0), cross, image_var, n - 1, k)


def correct_sums(ok_a: Any, ok_b: Any) -> tuple[np.ndarray, ...]:
    """(wins, losses, q, seed_sq, k, n) of ``accuracy_units`` from (..., k, n) booleans of
    matched seeds (image classified right by a / by b); leading axes are separate contrasts."""
    e = np.asarray(ok_a).astype(np.int64) - np.asarray(ok_b).astype(np.int64)
    e = e[None] if e.ndim == 1 else e
    per_image, per_seed = e.sum(axis=-2), e.sum(axis=-1)
    k, n = e.shape[-2:]
    return ((e == 1).sum(axis=(-2, -1)), (e == -1).sum(axis=(-2, -1)),
            (per_image ** 2).sum(axis=-1), (per_seed ** 2).sum(axis=-1), np.float64(k),
            np.float64(n))


def _batch_cov(x: np.ndarray) -> np.ndarray:
    """Covariance (ddof 1) between the rows of the last two axes: (..., k, n) -> (..., k, k)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    return xc @ np.swapaxes(xc, -1, -2) / (x.shape[-1] - 1)


def from_influence(d: np.ndarray, cov: np.ndarray, image_df: float) -> Units:
    """``Units`` from per-unit differences ``d`` (..., k) and their image-sampling covariance
    matrices ``cov`` (..., k, k); leading axes are separate contrasts."""
    k = d.shape[-1]
    off = ~np.eye(k, dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit_var = d.var(axis=-1, ddof=1) if k > 1 else np.full(d.shape[:-1], np.nan)
        cross = cov[..., off].mean(axis=-1) if k > 1 else np.full(d.shape[:-1], np.nan)
    return Units(d.mean(axis=-1), unit_var, cross, cov.mean(axis=(-2, -1)), np.float64(image_df),
                 np.float64(k))


def auroc_units(labels: Any, probs_a: Any, probs_b: Any) -> Units:
    """``Units`` of AUROC differences of k matched seeds ((..., k, n) scores each, the same n
    labels; leading axes are separate contrasts): per seed, AUROC(a) - AUROC(b); their
    covariance over images from DeLong's placement values of each seed's two models
    (``delong``; the covariance of a difference is that of its placement differences);
    image_df inf (DeLong's test is a normal one)."""
    from .delong import placements
    pa, pb = np.asarray(probs_a, dtype=np.float64), np.asarray(probs_b, dtype=np.float64)
    pa, pb = (p[None] if p.ndim == 1 else p for p in (pa, pb))
    n = pa.shape[-1]
    auc_a, v10_a, v01_a = placements(labels, pa.reshape(-1, n))
    auc_b, v10_b, v01_b = placements(labels, pb.reshape(-1, n))
    lead = pa.shape[:-1]
    d10, d01 = ((x - y).reshape(*lead, -1) for x, y in ((v10_a, v10_b), (v01_a, v01_b)))
    cov = _batch_cov(d10) / d10.shape[-1] + _batch_cov(d01) / d01.shape[-1]
    return from_influence((auc_a - auc_b).reshape(lead), cov, np.inf)
