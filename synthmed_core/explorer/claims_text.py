"""``check_claims`` as markdown: every metric side by side per checked contrast (the full view),
or one metric with all its figures (``metric``: the compact view)."""
from __future__ import annotations

import pandas as pd

from .claims import MARGINS
from ..analysis.corrections import CORRECTIONS, DEFAULT_CORRECTION
from ..analysis.evidence import METRICS

ONE_SEED_MARK = "†"
NO_CLAIM = ("No claim can be checked yet: each needs finished runs of both its cells with "
            "matching seeds (e.g. base and synthetic_base of one arch, init and profile).")


def _fmt(x: float, spec: str) -> str:
    return "—" if x is None or x != x else format(x, spec)


def _verdict(r: dict) -> str:
    """A metric's verdict, with the equivalence it rests on or adds, and † for one seed."""
    v = r["verdict"] + (f" (≡ 0 within ±{r['margin']:g})" if r["equivalent"] else "")
    return v + (ONE_SEED_MARK if r["unit"] == "model" else "")


def _cell(r: dict) -> str:
    """One metric in the side-by-side view: ``+0.051 [+0.012, +0.090] p 0.03 (holm 0.2),
    MDD 0.040: contradicted``."""
    return (f"{r['diff']:+.3f} [{r['lo']:+.3f}, {r['hi']:+.3f}] p {_fmt(r['p'], '.2g')} "
            f"(adj. {_fmt(r['p_adjusted'], '.2g')}), MDD {_fmt(r['mdd'], '.3f')}: {_verdict(r)}")


def _where(r: dict) -> str:
    return f"| {r['arch']} | {r['init']} | {r['recipe']} | {r['synthetic'] or '—'} | {r['seeds']} "


def _side_by_side(rows: pd.DataFrame) -> list[str]:
    names = [m for m in METRICS if m in set(rows["metric"])]
    out = ["| arch | init | profile | set | seeds | "
           + " | ".join(f"{METRICS[m].label} (a - b)" for m in names) + " | verdict |",
           "|---" * (6 + len(names)) + "|"]
    for _, g in rows.groupby(["arch", "init", "recipe", "synthetic", "unit"], sort=False,
                             dropna=False):
        by = {r["metric"]: r for r in g.to_dict("records")}
        first = next(iter(by.values()))
        out.append(_where(first) + "| " + " | ".join(_cell(by[m]) if m in by else "—"
                                                     for m in names)
                   + f" | {first['overall']} |")
    return out


def _one_metric(rows: pd.DataFrame, correction: str) -> list[str]:
    out = ["| arch | init | profile | set | seeds | a | b | a - b [95%] | p | "
           f"p ({correction}) | image-only p | MDD | TOST ±margin p ({correction}) | verdict |",
           "|---" * 14 + "|"]
    for r in rows.to_dict("records"):
        out.append(_where(r) + f"| {r['value_a']:.3f} | {r['value_b']:.3f} | {r['diff']:+.3f} "
                   f"[{r['lo']:+.3f}, {r['hi']:+.3f}] | {_fmt(r['p'], '.3g')} | "
                   f"{_fmt(r['p_adjusted'], '.3g')} | {_fmt(r['image_p'], '.3g')} | "
                   f"{_fmt(r['mdd'], '.3f')} | ±{r['margin']:g}: "
                   f"{_fmt(r['tost_p_adjusted'], '.3g')} | {_verdict(r)} |")
    return out


def _intro(df: pd.DataFrame, correction: str, metric: str | None) -> list[str]:
    shown = [metric] if metric else list(METRICS)
    margins = ", ".join(f"±{MARGINS[m]:g} {METRICS[m].label}" for m in shown)
    return [f"Each metric's p is adjusted across the claims checked on it "
            f"({CORRECTIONS[correction][0]}); the intervals are not. Tests: the trained model "
            "(seed) is the unit (seed-aware t: Obuchowski-Rockette variance, seeds - 1 df); "
            f"{ONE_SEED_MARK} one seed: no seed-level test, the image-only one (exact McNemar; "
            "DeLong for AUROC) speaks of these trained models, not the recipe. MDD: the "
            "smallest true difference found 4 times in 5 at these seeds. \"No clear gain\" is "
            f"supported only when a TOST puts a - b inside its margin ({margins}); ≡ 0 marks a "
            "difference shown equivalent to zero.", ""]


def format_claims(df: pd.DataFrame, metric: str | None = None) -> str:
    """Markdown: per claim, its statement and the study's figures, then one line per checked
    contrast with every metric side by side and the overall verdict (or, with ``metric``, that
    metric's figures: a, b, a - b, p, adjusted p, image-only p, MDD, TOST, verdict); generator-
    level rows add their per-set figures below; last, the sets left out for holding test images."""
    left_out = df.attrs.get("left_out_sets")
    note = (f"\n\nLeft out: the runs on {', '.join(left_out)}, which hold copies of real test "
            "images (`synth show NAME`)." if left_out else "")
    if metric is not None:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
        df = df[df["metric"] == metric]
    if df.empty:
        return NO_CLAIM + note
    correction = df.attrs.get("correction", DEFAULT_CORRECTION)
    out = _intro(df, correction, metric)
    for _, rows in df.groupby("claim", sort=False):
        first = rows.iloc[0]
        tag = "" if first["source"] == "study" else " (beyond the study)"
        out += [f"**{first['statement']}**{tag}: {first['a']} vs {first['b']}, expected "
                f"{first['expect']}" + (f". Study: {first['study']}" if first["study"] else ""),
                ""]
        out += _one_metric(rows, correction) if metric else _side_by_side(rows)
        notes = rows.loc[rows["unit"] == "generator"].drop_duplicates(["arch", "init", "recipe",
                                                                       "synthetic", "metric"])
        out += [""] + [f"- {r['synthetic']} ({r['arch']} {r['init']} {r['recipe']}, "
                       f"{METRICS[r['metric']].label}): {r['note']}"
                       for r in notes.to_dict("records")]
        out.append("")
    return "\n".join(line for i, line in enumerate(out) if line or out[i - 1]).rstrip() + note


def claims_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per checked contrast for a page: statement (with a vs b), set, seeds, arch,
    init, one text column per metric (``_cell``: a - b, interval, p, adjusted p, MDD and its
    verdict), ``verdict`` (do the metrics agree: ``overall``) and the study's figures."""
    rows = []
    for _, g in df.groupby(["claim", "arch", "init", "recipe", "synthetic", "unit"], sort=False,
                           dropna=False):
        by = {r["metric"]: r for r in g.to_dict("records")}
        first = next(iter(by.values()))
        rows.append({"statement": f"{first['statement']} ({first['a']} vs {first['b']})"
                     + (" · beyond" if first["source"] != "study" else ""),
                     "synthetic": first["synthetic"], "seeds": first["seeds"],
                     "arch": first["arch"], "init": first["init"],
                     **{m: _cell(by[m]) if m in by else "—" for m in METRICS},
                     "verdict": first["overall"], "study": first["study"]})
    return pd.DataFrame(rows, columns=["statement", "synthetic", "seeds", "arch", "init",
                                       *METRICS, "verdict", "study"])
