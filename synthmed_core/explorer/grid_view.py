"""The explorer's accuracy grid as one tidy table: every cell's metric over seeds (mean, 95%
interval, n), its paired test against ``base`` of the same arch and init, and the study's
published value.

The test is on per-image correctness at threshold 0.5 on the real test split. With two or more
matched seeds it is the seed-aware test (``analysis.seeds.seed_aware``: the trained model is
the unit, as in ``claims`` and ``compare``); with one, there is no seed-level test and the mark
comes from the image-only exact McNemar, named so (it speaks of these trained models, not the
recipe). ``image_p`` keeps the image-only test's p of every cell (with several seeds: the
paired t over images of the seed-averaged difference). All of it comes from counts the store
sums in one numpy pass over the bit strings, so the whole grid is one query however many runs
there are.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
from scipy import special

from .. import catalog
from ..analysis import seeds
from ..analysis.corrections import DEFAULT_CORRECTION, adjust_p
from ..analysis.evidence import ONE_SEED
from ..analysis.metrics import paired_accuracy_test
from ..catalog import INITS, SETTINGS
from ..grid import reference_rows
from ..store import CELL_KEYS, Store
from ..synth.copies import GRID_FLAG, sets_with_test_copies

METRICS = tuple(catalog.METRICS)
ALPHA = 0.05
ONE_SEED_TEST = f"{ONE_SEED} (exact McNemar)"  # the grid's mark with one matched seed
COLUMNS = [*CELL_KEYS, "recipe_label", "row", "cell", "mean", "std", "lo", "hi", "n", "runs",
           "paired_seeds", "wins", "losses", "diff", "diff_lo", "diff_hi", "test", "p_value",
           "p_adjusted", "significant", "direction", "image_p", "study", "test_copies",
           "vs_base", "note"]
BASE_KEYS = ("arch", "init", "profile", "recipe")  # a cell's base: same arch, init and recipe


def _missing(x: object) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def row_label(setting: str, ratio: object, synthetic: object, recipe: str = "") -> str:
    """A grid row: ``augment ×2 · my-set``, ``base``; a recipe that overrides its profile
    gets its own row, ``base [epochs=8]``."""
    label = str(setting)
    if not _missing(ratio):
        label += f" ×{float(ratio):g}"
    if not _missing(synthetic):
        label += f" · {synthetic}"
    return label + (f" [{recipe}]" if recipe else "")


def recipe_tag(row: dict | pd.Series) -> str:
    """What a cell's recipe changes in its profile (``epochs=8 train_limit=624``), "" when
    it is the profile as defined."""
    label, profile = row.get("recipe_label"), row.get("profile")
    if _missing(label) or _missing(profile):
        return ""
    return str(label)[len(str(profile)):].strip()


def cell_name(row: dict | pd.Series) -> str:
    """A cell's name, unique in a grid: ``arch/init/setting[@ratio][/set] (recipe)``, the
    format of ``CellSpec.key`` that ``compare.CellKey.parse`` reads, plus the recipe (the
    profile, and what it overrides)."""
    key = f"{row['arch']}/{row['init']}/{row['setting']}"
    if not _missing(row["ratio"]):
        key += f"@{float(row['ratio']):g}"
    if not _missing(row["synthetic"]):
        key += f"/{row['synthetic']}"
    recipe = row.get("recipe_label")
    recipe = row["profile"] if _missing(recipe) else recipe
    return f"{key} ({recipe})" if not _missing(recipe) else key


def _intervals(mean: pd.Series, std: pd.Series, n: pd.Series, confidence: float = 0.95):
    """Student-t interval of the mean, as ``metrics.aggregate`` (NaN below two values; the
    point itself when std is 0)."""
    n = n.astype("float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        half = special.stdtrit(n - 1, 0.5 + confidence / 2) * std / np.sqrt(n)  # t.ppf
    half = np.where(n < 2, np.nan, np.where(std == 0, 0.0, half))
    return mean - half, mean + half


@functools.lru_cache(maxsize=1)
def _study_values() -> dict[tuple, float]:
    """The study's published accuracies by (arch, setting, init, ratio); the same rows the
    store's ``reference`` table holds, read from the package (no query)."""
    return {(r.arch, r.setting, r.init, None if r.ratio is None else float(r.ratio)):
            r.test_accuracy for r in reference_rows()}


def _study_key(row: dict) -> tuple:
    return (row["arch"], row["setting"], row["init"],
            None if _missing(row["ratio"]) else float(row["ratio"]))


def _study_only(study: dict[tuple, float], records: list[dict], archs: set[str] | None
                ) -> list[dict]:
    """The study's cells nobody has run, each on the row of the runs of its arch, setting and
    ratio: once per synthetic set those runs used (a square beside ours, not a row of its own
    with the set left out), or on a set-less row when nobody ran the row."""
    have = {_study_key(r) for r in records}
    sets: dict[tuple, set] = {}
    for r in records:
        arch, setting, _, ratio = _study_key(r)
        sets.setdefault((arch, setting, ratio), set()).add(
            None if _missing(r["synthetic"]) else r["synthetic"])
    rows = []
    for (arch, setting, init, ratio), value in study.items():
        if (arch, setting, init, ratio) in have or (archs is not None and arch not in archs):
            continue
        for synthetic in sorted(sets.get((arch, setting, ratio), {None}), key=str):
            rows.append({"arch": arch, "init": init, "setting": setting, "ratio": ratio,
                         "synthetic": synthetic, "profile": None, "n": 0, "runs": 0,
                         "study": value})
    return rows


def grid_cells(store: Store, metric: str = "accuracy", profile: str | None = None,
               alpha: float = ALPHA, with_study_only: bool = False,
               origin: str | None = None,
               correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """Every cell of finished runs (of ``profile``, or all; of one ``origin``, or every
    source), one row each, in grid order
    (arch, setting, ratio, set, init): its keys, ``row`` (the grid row label), ``cell`` (its
    name), mean, std, lo/hi (95% t-interval over seeds), n (runs with a value), runs, and
    against base of the same arch/init/profile matched by seed: paired_seeds, wins (images
    only this cell got right, summed over seeds), losses, diff/diff_lo/diff_hi (accuracy
    difference and its 95% interval: seed-aware with two or more seeds), test (which one),
    image_p (the image-only test's p), p_value (uncorrected) and p_adjusted
    (by ``correction`` over every tested cell of the table), significant (p_adjusted <
    ``alpha``) and
    direction (``better``/``worse`` than base, None when not significant). ``study`` is the
    study's published accuracy of the arch/setting/init/ratio (NaN for other metrics).
    ``with_study_only`` adds, for accuracy, the study's cells nobody has run (n = 0).
    ``test_copies`` counts the copies of real test images in the cell's synthetic set; the row
    label of such a cell ends in ``copies.GRID_FLAG``: its runs saw the images they are
    scored on. ``note`` says why a cell is not compared with its base though it has one
    (e.g. its runs were scored on test sets of different sizes), else None."""
    if metric not in METRICS:
        from ..errors import SpecError
        raise SpecError(f"unknown metric {metric!r}; choose one of {list(METRICS)}")
    df, sets = store.grid_inputs(metric, profile=profile, origin=origin)
    study = _study_values() if metric == "accuracy" else {}
    if not df.empty:
        df["lo"], df["hi"] = _intervals(df["mean"], df["std"], df["n"])
        _paired_test(df)
        df["study"] = [study.get(_study_key(r), math.nan) for r in df.to_dict("records")]
    if with_study_only and study:
        archs = set(df["arch"]) if not df.empty else None
        extra = pd.DataFrame(_study_only(study, df.to_dict("records"), archs))
        df = extra if df.empty else pd.concat([df, extra], ignore_index=True)
    df = df.reindex(columns=COLUMNS)
    if df.empty:
        return df
    # The family: every cell of this table tested against its base (all archs shown).
    df["p_adjusted"] = adjust_p(df["p_value"].astype("float64"), correction)
    df["significant"] = (df["p_adjusted"] < alpha).fillna(False).astype(bool)
    df["direction"] = pd.Series([("better" if w > lo else "worse") if sig else None
                                 for sig, w, lo in zip(df["significant"], df["wins"],
                                                       df["losses"])], dtype=object)
    records = df.to_dict("records")
    df["row"] = [row_label(r["setting"], r["ratio"], r["synthetic"], recipe_tag(r))
                 for r in records]
    df["cell"] = [cell_name(r) for r in records]
    _flag_test_copies(df, sets)
    df["vs_base"] = vs_base(df)
    return _ordered(df)


def vs_base(df: pd.DataFrame) -> np.ndarray:
    """Each cell's mean minus the mean of its base (same arch, init and recipe): 0 for base
    itself, NaN where that base has no run. What a reader compares, so the grid can colour
    by it."""
    keys = list(BASE_KEYS)
    base = (df.loc[(df["setting"] == "base") & (df["n"].fillna(0) > 0), [*keys, "mean"]]
            .drop_duplicates(keys).rename(columns={"mean": "base_mean"}))
    base = base[base[keys].notna().all(axis=1)]
    means = df[keys].merge(base, on=keys, how="left")["base_mean"]
    return df["mean"].astype("float64").to_numpy() - means.astype("float64").to_numpy()


def _flag_test_copies(df: pd.DataFrame, sets: pd.DataFrame) -> None:
    leaky = sets_with_test_copies(sets)
    df["test_copies"] = [0 if _missing(s) else leaky.get(s, 0) for s in df["synthetic"]]
    df["row"] = [row + GRID_FLAG if n else row for row, n in zip(df["row"], df["test_copies"])]


def _paired_test(df: pd.DataFrame) -> None:
    """Columns diff, diff_lo, diff_hi (cell minus base accuracy on the paired seeds, 95%
    interval of the seed-aware test; the image-only one with one seed), test, p_value and
    image_p from the store's counts; NaN/None where nothing is paired."""
    wins, losses, q, seed_sq, k, pairs = (df[c].astype("float64") for c in (
        "wins", "losses", "q", "seed_sq", "paired_seeds", "pairs"))
    with np.errstate(invalid="ignore", divide="ignore"):
        n = pairs / k
    image = paired_accuracy_test(wins, losses, q, k, n)
    seed = seeds.seed_aware(seeds.accuracy_units(wins, losses, q, seed_sq, k, n))
    one = image["one_seed"]
    df["diff"] = image["diff"]
    for col, key in (("diff_lo", "lo"), ("diff_hi", "hi"), ("p_value", "p")):
        df[col] = np.where(one, image[key], seed[key])
    df["image_p"] = image["p"]
    df["test"] = pd.Series(np.where(one, ONE_SEED_TEST, np.where(
        np.isnan(df["p_value"]), None, seeds.SEED_AWARE_TEST)), index=df.index, dtype=object)


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    setting_rank = {s: i for i, s in enumerate(SETTINGS)}
    init_rank = {s: i for i, s in enumerate(INITS)}
    keys = pd.DataFrame({
        "a": df["arch"].astype(str),
        "s": df["setting"].map(lambda s: setting_rank.get(s, len(setting_rank))),
        "r": df["ratio"].astype("float64").fillna(-1.0),
        "y": df["synthetic"].map(lambda s: "" if _missing(s) else str(s)),
        "i": df["init"].map(lambda s: init_rank.get(s, len(init_rank))),
        "p": df["profile"].map(lambda s: "" if _missing(s) else str(s)),
        "q": df["recipe_label"].map(lambda s: "" if _missing(s) else str(s))})
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return df.loc[order].reset_index(drop=True)


def profiles(store: Store) -> list[str]:
    """Profiles that have finished runs, the most used first (a grid shows one at a time:
    smoke and paper results side by side would mislead)."""
    return store.profile_counts()["profile"].tolist()


def grid_csv(cells: pd.DataFrame, metric: str) -> str:
    """The grid table as CSV (one row per cell, with a ``metric`` column)."""
    return cells.assign(metric=metric).to_csv(index=False)


def notes(cells: pd.DataFrame) -> list[str]:
    """One line per cell with a ``note`` (e.g. not compared with its base: why)."""
    if "note" not in cells:
        return []
    return [f"{cell}: {note}" for cell, note in zip(cells["cell"], cells["note"])
            if isinstance(note, str)]


def cell_names(cells: pd.DataFrame) -> list[str]:
    """Names of the cells that have runs, in grid order (what a cell picker offers)."""
    return cells.loc[cells["runs"] > 0, "cell"].tolist()


def archs(cells: pd.DataFrame) -> list[str]:
    """The archs of a grid table, one panel each, in order."""
    return list(dict.fromkeys(cells["arch"]))


def archs_by_seeds(cells: pd.DataFrame) -> list[str]:
    """The archs of a grid table, the most complete evidence first: by the mean number of
    seeds per cell that ran, then by the number of runs (ties keep grid order). Cells only
    the study ran count for nothing. A headline shows the first one above the others."""
    ran = cells[cells["n"].fillna(0) > 0]
    seeds = ran.groupby("arch", sort=False)["n"].agg(["mean", "sum"])
    order = archs(cells)
    return sorted(order, key=lambda a: (-seeds["mean"].get(a, 0.0), -seeds["sum"].get(a, 0.0),
                                        order.index(a)))


def cell_keys(cells: pd.DataFrame, name: str) -> dict | None:
    """The CELL_KEYS of the cell called ``name`` in a ``grid_cells`` table (None if absent)."""
    hit = cells[cells["cell"] == name]
    if hit.empty:
        return None
    row = hit.iloc[0]
    return {k: (None if _missing(row[k]) else row[k]) for k in CELL_KEYS}
