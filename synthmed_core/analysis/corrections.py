"""Many tests at once: the grid marks every cell against base and ``claims`` checks several
contrasts; uncorrected, about one in twenty null cells is marked at 0.05 by chance. A registry
of p-value adjustments, light to import (the CLI reads its names)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error): the k-th smallest of m p-values times
    (m - k + 1), made monotone, capped at 1."""
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), scipy's."""
    from scipy import stats  # ~0.5 s to import: only when it is used
    return stats.false_discovery_control(p, method="bh")


# name -> (how a legend says it, the adjustment of a vector of p-values without NaN)
CORRECTIONS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "holm": ("Holm (family-wise error rate)", _holm),
    "bh": ("Benjamini-Hochberg (false discovery rate)", _bh),
    "none": ("none (each test on its own)", lambda p: p),
}
DEFAULT_CORRECTION = "holm"


def adjust_p(p: Any, method: str = DEFAULT_CORRECTION) -> np.ndarray:
    """``p`` adjusted for testing them all at once by ``method`` (a CORRECTIONS name); NaN
    entries (nothing tested) stay NaN and do not count in the family."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose one of {list(CORRECTIONS)}")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if tested.any():
        out[tested] = CORRECTIONS[method][1](p[tested])
    return out
