"""Cached reads for the pages, keyed on the database path so a page pointed at another database
never sees this one's rows. Short TTLs keep data fresh; ``refresh()`` drops every cached read
at once (the sidebar calls it when a job finishes, so new results show without a reload)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from synthmed_core import claims as claims_mod
from synthmed_core import grid_view, paths, report, views
from synthmed_core.corrections import DEFAULT_CORRECTION
from synthmed_core.cell_detail import CellDetail, cell_detail
from synthmed_core.store import Store

CACHE_TTL_S = 30  # results change only when a job finishes, and refresh() runs then
LIVE_TTL_S = 1  # the queue: the sidebar polls it every couple of seconds
LOCK_TIMEOUT_S = 10.0  # a busy database gives a warning within seconds, not a hung page


def db() -> str:
    """The database path the app reads (SYNTHMED_DB / SYNTHMED_DATA), as a cache key."""
    return str(paths.db_path())


@st.cache_resource(show_spinner=False)
def store(db: str) -> Store:
    """One Store per database file and server: its constructor migrates, which needs a write."""
    return Store(Path(db), lock_timeout=LOCK_TIMEOUT_S)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def grid_cells(db: str, metric: str, profile: str | None, alpha: float,
               with_study_only: bool = False, origin: str | None = None,
               correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    return grid_view.grid_cells(store(db), metric, profile, alpha, with_study_only, origin,
                                correction)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def claims(db: str, profile: str | None, origin: str | None = None,
           correction: str = DEFAULT_CORRECTION) -> pd.DataFrame:
    """The study's conclusions checked on the runs of ``profile`` (``claims.check_claims``)."""
    return claims_mod.check_claims(store(db), profile, origin=origin, correction=correction)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def sources(db: str) -> pd.DataFrame:
    """Finished runs per source (``views.sources_table`` of ``Store.origins``)."""
    return views.sources_table(store(db).origins())


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def bundles(db: str) -> pd.DataFrame:
    """The result bundles imported into the store, with their provenance."""
    return views.bundles_table(store(db).bundles())


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def profiles(db: str) -> list[str]:
    """Profiles with finished runs, the most used first."""
    return grid_view.profiles(store(db))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=32)
def detail(db: str, cell: tuple) -> CellDetail:
    """One cell's detail; ``cell`` is a tuple of (key, value) pairs (hashable)."""
    return cell_detail(store(db), dict(cell))


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def report_table(db: str, metric: str) -> pd.DataFrame:
    """The results table (every cell, every profile) beside the study's grid."""
    return report.report_table(store(db), metric, every_study_arch=True)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def runs(db: str) -> pd.DataFrame:
    return store(db).runs()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def counts(db: str) -> dict[str, int]:
    return store(db).store_counts()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def synthetic_sets(db: str) -> pd.DataFrame:
    return store(db).synthetic_sets()


@st.cache_data(ttl=LIVE_TTL_S, show_spinner=False)
def jobs(db: str, status: str | None = None, limit: int | None = 200) -> pd.DataFrame:
    return store(db).jobs(status=status, limit=limit)


@st.cache_resource(show_spinner=False)
def test_images(medmnist_root: str) -> np.ndarray:
    """The real PneumoniaMNIST test images (uint8 N x 28 x 28), read once per server."""
    from synthmed_core.data import load_real
    return load_real("test", root=Path(medmnist_root)).images


def refresh() -> None:
    """Drop every cached result read (not the Store handles or the images)."""
    for reader in (grid_cells, claims, sources, bundles, profiles, detail, report_table, runs,
                   counts, synthetic_sets, jobs):
        reader.clear()
