"""The results table: each cell's metric over seeds beside the study's published number.

``report_table`` builds a tidy DataFrame (one row per cell); ``pivot_tables`` turns it into one
setting x init table of cell text per arch and profile (what the app shows); ``format_table``
renders those as markdown or LaTeX, or the tidy rows as CSV.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import pandas as pd

from ..errors import SynthmedError
from ..explorer.grid_view import recipe_tag, row_label
from ..catalog import INITS, SETTINGS
from ..store import Store
from .calibration import VAL_THRESHOLD_SPLIT
from .metrics import aggregate

# How a table title names a split's metrics (the fixed 0.5 threshold says nothing).
SPLIT_TITLES = {"test": "test {metric}",
                VAL_THRESHOLD_SPLIT: "test {metric} at the threshold picked on val",
                "val": "val {metric} at the chosen checkpoint (what recipes are chosen on; "
                       "not a test result)"}
THRESHOLD_NAMES = {"test": "0.5", VAL_THRESHOLD_SPLIT: "val", "val": "0.5"}  # the csv's column
COLUMNS = ["arch", "setting", "ratio", "init", "synthetic", "profile", "recipe", "recipe_label",
           "mean", "std", "lo", "hi", "n", "study", "wall_s"]


def _ratio_key(ratio: object) -> float | None:
    return None if ratio is None or pd.isna(ratio) else float(ratio)


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def report_table(store: Store, metric: str = "accuracy", archs: Iterable[str] | None = None,
                 profile: str | None = None, every_study_arch: bool = False,
                 synthetic: Iterable[str] | None = None, split: str = "test") -> pd.DataFrame:
    """One row per cell (arch, setting, ratio, init, synthetic set, profile) of FINISHED runs,
    with mean, std, lo, hi (95% t-interval) and n of ``metric`` over seeds, ``wall_s`` (the
    seeds' run wall times added up) and ``study``: the study's published value for that
    arch+setting+init+ratio (accuracy only; NaN otherwise). ``synthetic`` keeps only cells on
    those synthetic sets (cells without one, such as base, stay).
    For accuracy, study cells nobody has run are added with n=0 for the archs present (or,
    with no runs at all or with ``every_study_arch``, for every arch of the study), so the
    whole published grid shows."""
    runs = store.cell_values(metric, split)
    archs = list(archs) if archs is not None else None
    if archs is not None:
        runs = runs[runs["arch"].isin(archs)]
    if profile is not None:
        runs = runs[runs["profile"] == profile]
    if synthetic is not None:
        runs = runs[runs["synthetic"].isna() | runs["synthetic"].isin(list(synthetic))]
    study = {}
    if metric == "accuracy" and split == "test":  # the study's figures are at its own cut-off
        ref = store.reference()
        study = {(r.arch, r.setting, r.init, _ratio_key(r.ratio)): float(r.test_accuracy)
                 for r in ref.itertuples()}
    rows, matched = [], set()
    keys = ["arch", "setting", "ratio", "init", "synthetic", "profile", "recipe"]
    for key, group in runs.groupby(keys, dropna=False, sort=False):
        cell = {**dict(zip(keys, key)), "recipe_label": group["recipe_label"].iloc[0]}
        skey = (cell["arch"], cell["setting"], cell["init"], _ratio_key(cell["ratio"]))
        matched.add(skey)
        rows.append({**cell, **aggregate(group["value"]), "study": study.get(skey, math.nan),
                     "wall_s": float(group["wall_s"].sum())})
    shown_archs = archs if archs is not None else (sorted(set(runs["arch"])) or None)
    if every_study_arch and shown_archs is not None:
        shown_archs = sorted(set(shown_archs) | {k[0] for k in study})
    for skey, value in study.items():
        if skey not in matched and (shown_archs is None or skey[0] in shown_archs):
            arch, setting, init, ratio = skey
            rows.append({"arch": arch, "setting": setting, "ratio": ratio, "init": init,
                         "synthetic": None, "profile": None, **aggregate([]), "study": value,
                         "wall_s": math.nan})
    df = _ordered(pd.DataFrame(rows, columns=COLUMNS))
    df.attrs["split"] = split
    return df


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Sort by arch, then the grid's setting order, ratio, init order, synthetic set, profile."""
    setting_rank = {s: i for i, s in enumerate(SETTINGS)}
    init_rank = {s: i for i, s in enumerate(INITS)}
    df = df.assign(_s=df["setting"].map(lambda s: setting_rank.get(s, len(setting_rank))),
                   _i=df["init"].map(lambda s: init_rank.get(s, len(init_rank))),
                   _r=df["ratio"].astype("float64").fillna(-1.0),
                   _y=df["synthetic"].map(lambda s: "" if _missing(s) else str(s)),
                   _p=df["profile"].map(lambda s: "" if _missing(s) else str(s)),
                   _q=df["recipe_label"].map(lambda s: "" if _missing(s) else str(s)))
    df = df.sort_values(["arch", "_s", "_r", "_i", "_y", "_p", "_q"], kind="stable")
    return df.drop(columns=["_s", "_i", "_r", "_y", "_p", "_q"]).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Rendering


def cell_text(row: pd.Series, digits: int = 3) -> str:
    """One cell, e.g. ``0.861 ± 0.012 [0.840, 0.880] n=3 (study 0.837)``; a single run shows
    no interval; a cell only the study has shows ``— (study 0.837)``."""
    n, d = int(row["n"]), digits
    if n == 0:
        text = "—"
    elif n == 1:
        text = f"{row['mean']:.{d}f} n=1"
    else:
        text = (f"{row['mean']:.{d}f} ± {row['std']:.{d}f} [{row['lo']:.{d}f}, "
                f"{row['hi']:.{d}f}] n={n}")
    if not _missing(row["study"]):
        text += f" (study {row['study']:.3f})"
    return text


def _row_label(row: pd.Series, with_set: bool) -> str:
    return row_label(row["setting"], row["ratio"], row["synthetic"] if with_set else None,
                     recipe_tag(row))


def pivot_tables(df: pd.DataFrame, metric: str = "accuracy") -> list[tuple[str, pd.DataFrame]]:
    """``report_table`` output as one setting x init table per (arch, profile): a list of
    (title, table) where the table's index is the row label (setting, ×ratio, · set), its
    columns the inits in INITS order, and each value ``cell_text`` ("" where no cell).
    Study-only rows of an arch appear in each of its tables. One synthetic set goes in the
    title, several in the row labels. The title ends with the split's SPLIT_TITLES entry
    (": test <metric>" for test). Each table's
    ``attrs`` hold ``runs`` (runs behind it) and ``wall_s`` (their run wall times added up)."""
    tables, split = [], df.attrs.get("split", "test")
    for arch, block in df.groupby("arch", sort=False):
        study_only = block[block["profile"].map(_missing)]
        profiles = [p for p in block["profile"].unique() if not _missing(p)] or [None]
        for prof in profiles:
            part = block if prof is None else pd.concat(
                [block[block["profile"] == prof], study_only])
            part = _ordered(part)
            inits = [i for i in INITS if i in set(part["init"])]
            inits += [i for i in part["init"].unique() if i not in inits]
            sets = sorted({str(y) for y in part["synthetic"] if not _missing(y)})
            with_set = len(sets) > 1
            labels = list(dict.fromkeys(_row_label(r, with_set) for _, r in part.iterrows()))
            text = {(_row_label(r, with_set), r["init"]): cell_text(r, df.attrs.get("digits", 3))
                    for _, r in part.iterrows()}
            title = f"{arch} (profile {prof})" if prof else f"{arch} (study only)"
            if len(sets) == 1:
                title += f", synthetic set {sets[0]}"
            table = pd.DataFrame([[text.get((lab, i), "") for i in inits] for lab in labels],
                                 index=pd.Index(labels, name="setting"), columns=inits)
            table.attrs.update(runs=int(part["n"].sum()), wall_s=float(part["wall_s"].sum()))
            tables.append((f"{title}: {SPLIT_TITLES[split].format(metric=metric)}", table))
    return tables


def _markdown(df: pd.DataFrame, metric: str) -> str:
    out = []
    for title, table in pivot_tables(df, metric):
        out += [f"### {title}", "", "| setting | " + " | ".join(table.columns) + " |",
                "|---" * (len(table.columns) + 1) + "|"]
        for lab, texts in zip(table.index, table.to_numpy()):
            out.append(f"| {lab} | " + " | ".join(texts) + " |")
        out += ["", wall_line(table.attrs), ""]
    return "\n".join(out)


def wall_line(attrs: dict) -> str:
    """``27 runs; run wall time 7.9 h in all (17.6 min per run)``: what a table's runs cost
    (wall time of each run added up, so workers running side by side count once each)."""
    runs, wall = int(attrs.get("runs", 0)), float(attrs.get("wall_s", 0.0))
    if runs == 0:
        return "no runs yet"
    return (f"{runs} run{'s' if runs != 1 else ''}; run wall time {_duration(wall)} in all "
            f"({_duration(wall / runs)} per run)")


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _latex_escape(text: str) -> str:
    # Backslash and $ first: later replacements insert both on purpose.
    for a, b in (("\\", r"\textbackslash{}"), ("$", r"\$"), ("_", r"\_"), ("%", r"\%"),
                 ("&", r"\&"), ("#", r"\#"), ("×", r"$\times$"), ("·", r"$\cdot$"), ("—", "--"),
                 ("±", r"$\pm$")):
        text = text.replace(a, b)
    return text


def _latex(df: pd.DataFrame, metric: str) -> str:
    out = []
    for title, table in pivot_tables(df, metric):
        inits = list(table.columns)
        out += [f"% {title}", r"\begin{tabular}{l" + "l" * len(inits) + "}",
                r"\hline", " & ".join(["setting", *map(_latex_escape, inits)]) + r" \\", r"\hline"]
        for lab, texts in zip(table.index, table.to_numpy()):
            out.append(" & ".join([_latex_escape(lab), *map(_latex_escape, texts)]) + r" \\")
        out += [r"\hline", r"\end{tabular}", ""]
    return "\n".join(out)


def _csv(df: pd.DataFrame, metric: str) -> str:
    threshold = THRESHOLD_NAMES.get(df.attrs.get("split", "test"), "0.5")
    return df.assign(metric=metric, threshold=threshold).to_csv(index=False)


FORMATS: dict[str, Callable[[pd.DataFrame, str], str]] = {
    "markdown": _markdown, "latex": _latex, "csv": _csv}


def format_table(df: pd.DataFrame, fmt: str = "markdown", metric: str = "accuracy") -> str:
    """Render ``report_table`` output: ``markdown`` or ``latex`` give one setting x init table per
    arch (and profile), rows in the grid's setting order, columns in INITS order; ``csv`` gives
    the tidy rows with a ``metric`` column."""
    if fmt not in FORMATS:
        raise SynthmedError(f"unknown table format {fmt!r}; choose one of {list(FORMATS)}")
    return FORMATS[fmt](df, metric)


def quality_table(sets: pd.DataFrame) -> str:
    """The synthetic sets (rows of ``Store.synthetic_sets``, shipped samples left out) and their
    quality cards as a markdown table: FID and KID against real train in the card's feature
    space (with real val's own FID beside it, the floor), precision/recall, the share of
    near-copies of a real train image, and a classifier trained on the set alone (TSTR) scored
    on real val."""
    import json

    def fmt(x, spec: str) -> str:
        return "—" if x is None or _missing(x) else format(x, spec)

    head = ("| set | method | images (normal / pneumonia) | FID (real val) | KID | precision "
            "| recall | near-copies | TSTR val accuracy / AUROC | content |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in sets.sort_values("name").to_dict("records"):
        if row["method"] == "sample":
            continue
        card = json.loads(row["card_json"] if isinstance(row["card_json"], str) else "{}")
        q = card.get("quality") or {}
        base = q.get("baseline_real_val") or {}
        tstr = q.get("tstr") or {}
        copies = (q.get("memorisation") or {}).get("near_copy_share")
        fid = (f"{fmt(q.get('fid'), '.2f')} ({fmt(base.get('fid'), '.2f')})" if q else "—")
        near = "—" if copies is None else f"{100 * copies:.1f}%"
        sha = row["content_sha256"]
        lines.append(
            f"| {row['name']} | {row['method']} | {row['n']} ({row['n_normal']} / "
            f"{row['n_pneumonia']}) | {fid} | {fmt(q.get('kid_mean'), '.4f')} | "
            f"{fmt(q.get('precision'), '.3f')} | {fmt(q.get('recall'), '.3f')} | {near} | "
            f"{fmt(tstr.get('accuracy'), '.3f')} / {fmt(tstr.get('auroc'), '.3f')} | "
            f"{'—' if _missing(sha) else f'`{sha[:12]}`'} |")
    return "\n".join(lines)
