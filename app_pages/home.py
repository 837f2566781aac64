"""synthmed's first page: what is in the store, the headline grid, our results table beside the
study's, the runs, and how to start.

Thin on purpose: every read goes through ui.readers (cached, keyed on the database path) over
synthmed_core; this file only lays out widgets.
"""
from __future__ import annotations

import streamlit as st

from synthmed_core.explorer import report
from synthmed_core.catalog import METRICS, RUN_STATUSES
from synthmed_core.errors import SynthmedError
from synthmed_core.explorer import heatmap_view
from synthmed_core.explorer import views
from synthmed_core.explorer.views import LOCAL_ORIGIN
from synthmed_core.text import md_literal
from ui import heatmap_chart
from ui import launch, readers

FIRST_RUN = ("python -m synthmed_core train --arch resnet18 --init scratch --setting base "
             "--seed 0 --profile smoke")

INTRO = """\
**Do synthetic chest X-rays help a pneumonia classifier — and when do they hurt?**
synthmed trains every cell of an experiment grid (architecture × initialisation × training
data: real, synthetic, real + synthetic, ...) on PneumoniaMNIST with several seeds, tests every
run on the real test split, and sets the results beside those of the student study it
reproduces."""

HOW_TO_START = f"""\
1. **From the sidebar** (any page): pick a cell and a profile (`smoke` takes seconds) and press
   **Queue**. A local worker starts by itself; the progress shows below the form, and the grid
   fills in when the run finishes.
2. **From a shell**, the same through the job queue or directly:

       python -m jobs submit grid --arch resnet18 --setting base augment --ratio 1 \\
           --synthetic SET --seeds 0 1 2 --profile quick
       python -m jobs worker --detach
       {FIRST_RUN}

3. **Browse**: *Accuracy grid* for every cell with intervals and tests against base, *Jobs* for
   the queue and logs, *Gallery* / *Grad-CAM* / *Predict* for images and models."""

RUNS_SHOWN = 500  # newest first; at 10,000 runs the whole list was 1.8 MB sent to every new tab
CELL_LEGEND = ("Each cell: mean ± standard deviation over seeds, [95% interval of the mean], "
               "n = finished runs; (study x) = the study's published single run. "
               "— = only the study ran this cell. The study published test accuracy only.")


def store_section(db: str) -> None:
    counts = readers.counts(db)
    cols = st.columns(4)
    cols[0].metric("Finished runs", counts["finished_runs"], help=f"{counts['runs']} in all")
    cols[1].metric("Synthetic sets", counts["synthetic_sets"])
    cols[2].metric("Jobs active", counts["active_jobs"], help=f"{counts['jobs']} in all")
    cols[3].metric("Test predictions", f"{counts['predictions']:,}")
    if not counts["runs"]:
        st.info("No runs in the store yet. Queue one from the sidebar (profile smoke: "
                "seconds), or train one from the repository root; meanwhile, below is the grid "
                "the study published.")
        st.code(FIRST_RUN, language="bash")


def sources_section(db: str) -> None:
    """Where the results come from: this machine, and each imported bundle with provenance
    (and a button to remove one); shipped bundles that were skipped, and why."""
    for r in readers.refused_bundles(db):
        st.warning(f"Shipped results bundle {md_literal(r['name'])} was skipped: "
                   f"{md_literal(r['reason'])}")
    sources = readers.sources(db)
    if sources.empty or (len(sources) == 1 and sources["origin"].iloc[0] == LOCAL_ORIGIN):
        return
    st.caption(f"Finished runs by source: {md_literal(views.sources_line(sources))}. Shipped "
               "results were measured by the synthmed project and came with this copy (each "
               "bundle below); `Reproduce here` in a cell's detail trains one again on this "
               "machine.")
    with st.expander("Results bundles imported (provenance)"):
        bundles = readers.bundles(db)
        st.dataframe(bundles, hide_index=True, placeholder="", key="home_bundles")
        remove_form(db, bundles)


def remove_form(db: str, bundles) -> None:
    """Undo an import: the bundle's runs, rows and the sets only it brought go."""
    if bundles.empty:
        return
    names = dict(zip(bundles["bundle_id"], bundles["name"]))
    left, right = st.columns([3, 1])
    which = left.selectbox("Remove an imported bundle", list(names), key="home_remove_bundle",
                           format_func=lambda b: f"{names[b]} ({b})",
                           help="Its runs with every row, the replicate records it added and "
                                "the synthetic sets only it brought; local runs and other "
                                "bundles stay. Same as `python -m synthmed_core results "
                                "remove ID`.")
    if right.button("Remove", key="home_remove"):
        try:
            message = launch.remove_bundle(which, readers.store(db))
        except SynthmedError as exc:
            st.error(md_literal(exc))
            return
        readers.refresh()
        st.success(md_literal(message))


def headline(db: str) -> None:
    st.header("Headline: test accuracy")
    profile = (readers.profiles(db) or [None])[0]
    cells = readers.grid_cells(db, "accuracy", profile, 0.05, True)
    if cells.empty:
        return
    st.caption(f"Profile {profile or '—'}; the arch with the most seeds per cell first; "
               "outlined = significantly different from base (details, other metrics and "
               "profiles: Accuracy grid).")
    scale = heatmap_chart.color_range(cells)
    first, *others = heatmap_view.archs_by_seeds(cells)
    heatmap_chart.draw(cells, first, "accuracy", True, scale, key=f"home_grid_{first}")
    with st.container(horizontal=True, wrap=True, gap="medium"):  # wraps when they do not fit
        for arch in others:
            heatmap_chart.draw(cells, arch, "accuracy", True, scale, key=f"home_grid_{arch}")
    for line in heatmap_view.notes(cells):
        st.caption(f"Note: {md_literal(line)}")


def results_section(db: str) -> None:
    st.header("Results beside the study")
    metric = st.selectbox("Metric (test split)", list(METRICS), key="metric")
    table = readers.report_table(db, metric)
    tables = report.pivot_tables(table, metric)
    if not tables:
        st.info(f"No finished run has a test {metric} yet, and the study published accuracy "
                "only: pick accuracy to see its table.")
        return
    st.caption(CELL_LEGEND)
    for title, pivot in tables:
        st.subheader(title)
        st.table(pivot)
        if pivot.attrs.get("runs"):
            st.caption(report.wall_line(pivot.attrs))
    st.download_button("Download this table (CSV)", report.format_table(table, "csv", metric),
                       file_name=f"synthmed-{metric}.csv", mime="text/csv",
                       key="download_report", on_click="ignore")


def runs_section(db: str) -> None:
    st.header("Runs")
    runs = readers.runs(db)
    if runs.empty:
        st.caption("None yet.")
        return
    status = st.selectbox("Status", ["all", *RUN_STATUSES], key="run_status")
    shown = views.runs_table(runs, None if status == "all" else status)
    if len(shown) > RUNS_SHOWN:
        which = "" if status == "all" else f" {status}"
        st.caption(f"The newest {RUNS_SHOWN} of {len(shown)}{which} runs ({len(runs)} in all); "
                   "every one: `python -m synthmed_core runs list`.")
        shown = shown.head(RUNS_SHOWN)
    else:
        st.caption(f"{len(shown)} of {len(runs)} runs, newest first.")
    st.dataframe(shown, hide_index=True, placeholder="", key="home_runs", column_config={
        "accuracy": st.column_config.NumberColumn(format="%.3f"),
        "auroc": st.column_config.NumberColumn(format="%.3f"),
        "wall_s": st.column_config.NumberColumn("wall (s)", format="%.0f"),
        "started_at": st.column_config.DatetimeColumn("started", format="YYYY-MM-DD HH:mm:ss"),
    })


def synthetic_sets_section(db: str) -> None:
    st.header("Synthetic sets")
    sets = readers.synthetic_sets(db)
    if sets.empty:
        st.caption("None registered yet. Import one with "
                   "`python -m synthmed_core synth import FOLDER --name NAME`.")
        return
    st.dataframe(views.synthetic_sets_table(sets), hide_index=True, placeholder="")


def main() -> None:
    st.title("synthmed")
    st.markdown(INTRO)
    db = readers.db()
    st.caption(f"Results database: `{db}` (set SYNTHMED_DATA or SYNTHMED_DB to use another)")
    try:
        store_section(db)
        sources_section(db)
        headline(db)
        results_section(db)
        runs_section(db)
        synthetic_sets_section(db)
    except SynthmedError as exc:
        # e.g. a writer holding the lock past the timeout: say so, never a traceback
        st.warning(f"The results database cannot be read right now: {md_literal(exc)}")
    st.header("How to start")
    st.markdown(HOW_TO_START)


main()
