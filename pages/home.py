"""synthmed's first page: our results table beside the study's, and the runs in the store.

Thin on purpose: every read goes through synthmed_core (Store, report, views); this file only
lays out widgets. Reads are cached for a few seconds and keyed on the database path, so a run
that finishes shows up on the next rerun and a page pointed at another database never sees
this one's rows. Start it with `bash scripts/app.sh`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from synthmed_core import paths, report, views
from synthmed_core.errors import SynthmedError
from synthmed_core.store import RUN_STATUSES, SUMMARY_METRICS, Store

if TYPE_CHECKING:
    import pandas as pd

FIRST_RUN = ("python -m synthmed_core train --arch resnet18 --init scratch --setting base "
             "--seed 0 --profile smoke")
CACHE_TTL_S = 5
LOCK_TIMEOUT_S = 10.0  # a busy database gives a warning within seconds, not a hung page

INTRO = """\
**Do synthetic chest X-rays help a pneumonia classifier — and when do they hurt?**
synthmed trains every cell of an experiment grid (architecture × initialisation × training
data: real, synthetic, real + synthetic, ...) on PneumoniaMNIST with several seeds, tests every
run on the real test split, and sets the results beside those of the student study it
reproduces. This page shows the results table and the runs in the store; the full explorer
comes later."""

CELL_LEGEND = ("Each cell: mean ± standard deviation over seeds, [95% interval of the mean], "
               "n = finished runs; (study x) = the study's published single run. "
               "— = only the study ran this cell. The study published test accuracy only.")


# ---- reads: cached, keyed on the database path ------------------------------------------------


@st.cache_resource(show_spinner=False)
def _store(db: str) -> Store:
    # One Store per database file and server: its constructor migrates, which needs a write.
    return Store(Path(db), lock_timeout=LOCK_TIMEOUT_S)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def load_runs(db: str) -> pd.DataFrame:
    return _store(db).runs()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def load_report(db: str, metric: str) -> pd.DataFrame:
    return report.report_table(_store(db), metric, every_study_arch=True)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def load_synthetic_sets(db: str) -> pd.DataFrame:
    return _store(db).synthetic_sets()


# ---- sections ---------------------------------------------------------------------------------


def results_section(db: str) -> None:
    st.header("Results")
    metric = st.selectbox("Metric (test split)", SUMMARY_METRICS, key="metric")
    table = load_report(db, metric)
    tables = report.pivot_tables(table, metric)
    if not tables:
        st.info(f"No finished run has a test {metric} yet, and the study published accuracy "
                "only: pick accuracy to see its table.")
        return
    st.caption(CELL_LEGEND)
    for title, pivot in tables:
        st.subheader(title)
        st.table(pivot)
    st.download_button("Download this table (CSV)", report.format_table(table, "csv", metric),
                       file_name=f"synthmed-{metric}.csv", mime="text/csv",
                       key="download_report", on_click="ignore")


def runs_section(runs: pd.DataFrame) -> None:
    st.header("Runs")
    if runs.empty:
        st.caption("None yet.")
        return
    status = st.selectbox("Status", ["all", *RUN_STATUSES], key="run_status")
    shown = views.runs_table(runs, None if status == "all" else status)
    st.caption(f"{len(shown)} of {len(runs)} runs, newest first.")
    st.dataframe(shown, hide_index=True, placeholder="", column_config={
        "accuracy": st.column_config.NumberColumn(format="%.3f"),
        "auroc": st.column_config.NumberColumn(format="%.3f"),
        "wall_s": st.column_config.NumberColumn("wall (s)", format="%.0f"),
        "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
    })


def synthetic_sets_section(sets: pd.DataFrame) -> None:
    st.header("Synthetic sets")
    if sets.empty:
        st.caption("None registered yet. Import one with "
                   "`python -m synthmed_core synth import FOLDER --name NAME`.")
        return
    st.dataframe(views.synthetic_sets_table(sets), hide_index=True, placeholder="")


def main() -> None:
    st.title("synthmed")
    st.markdown(INTRO)
    db = str(paths.db_path())
    st.caption(f"Results database: `{db}` (set SYNTHMED_DATA or SYNTHMED_DB to use another)")
    try:
        runs = load_runs(db)
        if runs.empty:
            st.info("No runs in the store yet. Train a first one (seconds, profile `smoke`) "
                    "from the repository root, then rerun this page (press R). Meanwhile, "
                    "below is the grid the study published.")
            st.code(FIRST_RUN, language="bash")
        results_section(db)
        runs_section(runs)
        synthetic_sets_section(load_synthetic_sets(db))
    except SynthmedError as exc:
        # e.g. a writer holding the lock past LOCK_TIMEOUT_S: say so, never a traceback
        st.warning(f"The results database cannot be read right now: {exc}")


main()
