"""Read-facing tables for the app: store frames cut down to what a page shows, ready to display.

Pure functions of the DataFrames ``Store`` returns, so pages stay free of pandas pipelines.
"""
from __future__ import annotations

import pandas as pd

from ..store import LOCAL_ORIGIN

RUN_COLUMNS = ("run_id", "arch", "init", "setting", "ratio", "synthetic", "seed", "profile",
               "status", "accuracy", "auroc", "wall_s", "started_at", "source")
LOCAL_SOURCE = "this machine"


def source_label(origin: object, bundle: object = None, shipped: object = False) -> str:
    """Where a run came from, for people: "this machine", "shipped: NAME" (a bundle that came
    with synthmed) or "bundle: NAME"."""
    if origin is None or origin == LOCAL_ORIGIN or origin != origin:
        return LOCAL_SOURCE
    name = bundle if isinstance(bundle, str) and bundle else str(origin)
    return f"{'shipped' if shipped is True else 'bundle'}: {name}"


def with_source(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (from ``Store.runs()``) with a ``source`` column (``source_label``)."""
    return runs.assign(source=[source_label(o, b, s) for o, b, s in
                               zip(runs["origin"], runs["bundle"], runs["shipped"])])
SYNTHETIC_SET_COLUMNS = ("name", "method", "n", "n_normal", "n_pneumonia", "created_at", "path")


def runs_table(runs: pd.DataFrame, status: str | None = None) -> pd.DataFrame:
    """The runs list of the app from ``Store.runs()``: newest first, only runs of ``status``
    when given, the columns of RUN_COLUMNS. Missing values (no ratio, no synthetic set, no
    metric yet) stay NaN/None; the page shows them blank."""
    runs = with_source(runs)
    if status is not None:
        runs = runs[runs["status"] == status]
    runs = runs.sort_values(["started_at", "run_id"], ascending=[False, True],
                            na_position="last")
    return runs.loc[:, list(RUN_COLUMNS)].reset_index(drop=True)


def synthetic_sets_table(sets: pd.DataFrame) -> pd.DataFrame:
    """The registered synthetic sets from ``Store.synthetic_sets()`` without their full card."""
    return sets.loc[:, list(SYNTHETIC_SET_COLUMNS)].reset_index(drop=True)


def sources_table(origins: pd.DataFrame) -> pd.DataFrame:
    """``Store.origins()`` for people: source (``source_label``), origin (the id a filter
    takes) and runs; this machine first."""
    names = [source_label(o, b, s) for o, b, s in
             zip(origins["origin"], origins["name"], origins["shipped"])]
    # A bundle exported again under its name (more runs) is another bundle: tell them apart.
    repeated = {name for name in names if names.count(name) > 1}
    labels = [f"{name} ({str(o)[:8]})" if name in repeated else name
              for name, o in zip(names, origins["origin"])]
    return pd.DataFrame({"source": labels, "origin": origins["origin"], "runs": origins["runs"],
                         "name": names})


SOURCES_NAMED = 4  # up to this many sources are named one by one; more are counted per kind


def sources_line(sources: pd.DataFrame) -> str:
    """``sources_table`` in a sentence, one part per source name: the versions of a bundle
    exported again under its name (a shipped one after each update) are counted together.
    Beyond ``SOURCES_NAMED`` names, one part per kind (this machine, shipped, bundle): a
    sentence naming fifteen bundles is read by no one (the provenance table lists them)."""
    if sources["name"].nunique() <= SOURCES_NAMED:
        named = sources.groupby("name", sort=False)["runs"].agg(["sum", "size"])
        return ", ".join(f"{runs} from {name}" + (f" ({n} versions)" if n > 1 else "")
                         for name, (runs, n) in named.iterrows())
    kind = sources["name"].str.split(": ", n=1).str[0]  # "shipped: NAME" -> "shipped"
    kinds = sources.groupby(kind, sort=False).agg(runs=("runs", "sum"), n=("name", "nunique"))
    return ", ".join(f"{row.runs} from {k}" + ("" if k == LOCAL_SOURCE else
                                               f" ({row.n} bundle{'s' if row.n > 1 else ''})")
                     for k, row in kinds.iterrows())


def bundles_table(bundles: pd.DataFrame) -> pd.DataFrame:
    """``Store.bundles()`` for people: name, shipped, the runs it brought and holds here, the
    bundle id, where it was imported from and when, and its manifest's provenance."""
    out = bundles.loc[:, ["name", "shipped", "runs", "runs_here", "computed_on", "created_at",
                          "commit", "bundle_id", "path", "imported_at"]].copy()
    out["commit"] = out["commit"].str.slice(0, 10)
    return out.reset_index(drop=True)
