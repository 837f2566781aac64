"""The study's conclusions (as its published grid reads: one run per cell), and questions it
left open, as paired contrasts checked on this store's runs.

A claim compares two cells of the same arch, init and profile (and the same synthetic set when
a cell uses one) on the same real test images: ``a`` is the cell the claim is about, ``b`` what
it is compared with. The evidence is the accuracy difference a - b over matched seeds, its 95%
interval and p from ``metrics.paired_accuracy_test`` (the test the accuracy grid marks cells
with: an image counts once however many seeds). The verdict reads p and the sign of a - b
against the claim's direction, at ``ALPHA``:

- ``worse`` / ``better``: *supported* when a - b is significant on the claimed side,
  *contradicted* when significant on the other side, *inconclusive* otherwise;
- ``not better``: *contradicted* only by a significant gain, else *supported* (no gain shown).

The study's own figures behind each claim come from its published grid (one run per cell).
Runs on a synthetic set that holds copies of real test images are left out (``synth.copies``):
a model that saw the images it is scored on proves nothing.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from ..grid import SETTINGS, reference_rows
from ..store import Store
from ..synth.copies import sets_with_test_copies
from .compare import CellKey, cell_runs, matched_seeds, pair_run_ids
from .corrections import CORRECTIONS, DEFAULT_CORRECTION, adjust_p
from .metrics import accuracy_compare

EXPECTATIONS = ("worse", "better", "not better")
ALPHA = 0.05
VERDICTS = ("supported", "contradicted", "inconclusive")


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
           "synthetic",
           "a", "b", "seeds", "accuracy_a", "accuracy_b", "diff", "lo", "hi", "p", "p_adjusted", "test",
           "verdict", "study"]


def verdict(expect: str, diff: float, p: float, alpha: float = ALPHA) -> str:
    """Supported / contradicted / inconclusive from a - b and its p-value."""
    if expect not in EXPECTATIONS:
        raise ValueError(f"unknown expectation {expect!r}; choose one of {EXPECTATIONS}")
    side = ("better" if diff > 0 else "worse") if p < alpha else None
    if expect == "not better":
        return "contradicted" if side == "better" else "supported"
    return "inconclusive" if side is None else "supported" if side == expect else "contradicted"


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
    """One row per claim and (arch, init, recipe, synthetic set) where both of its cells have
    finished runs with matching seeds: the cells, matched seeds, each cell's seed-mean
    accuracy, diff / lo / hi / p / test of a - b (``paired_accuracy_test``), the verdict and the
    study's figures. Rows in claim order; empty (with COLUMNS) when nothing can be checked.
    ``attrs["left_out_sets"]`` names the sets whose runs were left out for holding copies of
    real test images."""
    runs, left_out = _without_test_copies(store, store.runs(status="finished"))
    if profile is not None:
        runs = runs[runs["profile"] == profile]
    if archs is not None:
        runs = runs[runs["arch"].isin(list(archs))]
    if origin is not None:  # the runs of one source (this machine, or one bundle)
        runs = runs[runs["origin"] == origin]
    pending = []  # (claim, group, set, runs of a, runs of b, seeds)
    for claim in claims:
        for group, cells in runs.groupby(["arch", "init", "profile", "recipe"], sort=True):
            for synthetic in _synthetic_sets(cells, claim):
                ka, kb = _key(group, claim.a, synthetic), _key(group, claim.b, synthetic)
                ra, rb = cell_runs(cells, ka), cell_runs(cells, kb)
                seeds = matched_seeds(ra, rb)
                if seeds:
                    pending.append((claim, group, synthetic, ra, rb, seeds))
    if not pending:
        return _noted(pd.DataFrame(columns=COLUMNS), left_out)
    # accuracy at 0.5 needs only whether each image was right: the store's bits per run, not
    # the predictions (6 M rows at 10,000 runs)
    correct = store.correct_bits(sorted({rid for *_, ra, rb, seeds in pending
                                         for rid in pair_run_ids(ra, rb, seeds)}))
    rows = []
    for claim, (arch, init, prof, _recipe), synthetic, ra, rb, seeds in pending:
        res = accuracy_compare(*(np.stack([correct[rid] for rid in side.loc[seeds, "run_id"]])
                                 for side in (ra, rb)))
        acc = res["accuracy_diff"]
        rows.append({"claim": claim.key, "statement": claim.statement, "source": claim.source,
                     "expect": claim.expect, "arch": arch, "init": init, "profile": prof,
                     "recipe": ra["recipe_label"].iloc[0],
                     "synthetic": synthetic, "a": _label(*claim.a), "b": _label(*claim.b),
                     "seeds": len(seeds), "accuracy_a": res["accuracy_a"],
                     "accuracy_b": res["accuracy_b"], "diff": acc["diff"], "lo": acc["lo"],
                     "hi": acc["hi"], "p": acc["p"], "test": acc["test"],
                     "study": study_figures(claim)})
    df = pd.DataFrame(rows, columns=COLUMNS)
    # The family: every contrast checked here; verdicts read the adjusted p.
    df["p_adjusted"] = adjust_p(df["p"].astype("float64"), correction)
    df["verdict"] = [verdict(e, d, p) for e, d, p in zip(df["expect"], df["diff"],
                                                         df["p_adjusted"])]
    df.attrs["correction"] = correction
    return _noted(df, left_out)


def _without_test_copies(store: Store, runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``runs`` less those on a set holding copies of real test images, and those sets."""
    leaky = runs["synthetic"].isin(list(sets_with_test_copies(store.synthetic_sets())))
    return runs[~leaky], sorted(set(runs.loc[leaky, "synthetic"]))


def _noted(df: pd.DataFrame, left_out: list[str]) -> pd.DataFrame:
    df.attrs["left_out_sets"] = left_out
    return df


def format_claims(df: pd.DataFrame) -> str:
    """Markdown: per claim, its statement and the study's figures, then one line per checked
    group with our difference, interval, p, seeds and verdict; last, the sets whose runs were
    left out for holding test images."""
    left_out = df.attrs.get("left_out_sets")
    note = (f"\n\nLeft out: the runs on {', '.join(left_out)}, which hold copies of real test "
            "images (`synth show NAME`)." if left_out else "")
    if df.empty:
        return ("No claim can be checked yet: each needs finished runs of both its cells with "
                "matching seeds (e.g. base and synthetic_base of one arch, init and profile)."
                + note)
    correction = df.attrs.get("correction", DEFAULT_CORRECTION)
    out = [f"Verdicts read p adjusted for the {len(df)} contrasts checked together: "
           f"{CORRECTIONS[correction][0]}; p beside it is each test on its own, and the "
           "intervals are not adjusted.", ""]
    for key, rows in df.groupby("claim", sort=False):
        first = rows.iloc[0]
        tag = "" if first["source"] == "study" else " (beyond the study)"
        out += [f"**{first['statement']}**{tag}: {first['a']} vs {first['b']}, expected "
                f"{first['expect']}" + (f". Study: {first['study']}" if first["study"] else ""),
                "", "| arch | init | profile | set | seeds | a | b | a - b [95%] | p | "
                f"p ({correction}) | verdict |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows.itertuples():
            out.append(f"| {r.arch} | {r.init} | {r.recipe} | {r.synthetic or '—'} | {r.seeds} "
                       f"| {r.accuracy_a:.3f} | {r.accuracy_b:.3f} | {r.diff:+.3f} "
                       f"[{r.lo:+.3f}, {r.hi:+.3f}] | {r.p:.3g} | {r.p_adjusted:.3g} "
                       f"| {r.verdict} |")
        out.append("")
    return "\n".join(out).rstrip() + note
