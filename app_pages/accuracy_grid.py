"""Accuracy grid: setting (x ratio, set) by init, one panel per arch, for one metric and
profile; mean, interval and n over seeds per cell; cells that differ significantly from base
are outlined; click a cell (or pick it below) for its runs, curves, confusion and mistakes.
The choices and the selected cell live in the URL (``VIEW``): a link opens the same view."""
from __future__ import annotations

import streamlit as st

from synthmed_core.explorer.claims import MARGINS
from synthmed_core.explorer.claims_text import claims_table
from synthmed_core.analysis.corrections import CORRECTIONS, DEFAULT_CORRECTION
from synthmed_core.analysis.evidence import METRICS as CLAIM_METRICS
from synthmed_core.errors import SynthmedError
from synthmed_core.explorer import heatmap_view
from synthmed_core.text import md_literal
from ui import cell_view, heatmap_chart, readers
from ui.url_state import Param, flag, publish, restore

ALPHAS = (0.05, 0.01, 0.001)
VIEW = (  # what a link to this page keeps: ?metric=auroc&profile=quick&cell=...
    Param("metric", "grid_metric", options=lambda: heatmap_view.METRICS),
    Param("profile", "grid_profile"),
    Param("source", "grid_source"),
    Param("study", "grid_study", parse=flag, dump=lambda v: "1" if v else "0"),
    Param("alpha", "grid_alpha", parse=float, dump=lambda a: f"{a:g}", options=lambda: ALPHAS),
    Param("correction", "grid_correction", options=lambda: CORRECTIONS),
    Param("colour", "grid_colour", options=lambda: heatmap_chart.COLOURINGS),
    Param("cell", "grid_cell"),
)
LEGEND = ("Each square: mean over seeds and n (hover for the 95% interval). A black outline "
          "and ▲/▼ mark a cell significantly better/worse than `base` of the same arch and "
          "init, on per-image correctness at 0.5 on the real test split, with the trained "
          "model as the unit: for two or more matched seeds, the seed-aware test (the "
          "difference's seed-to-seed spread plus the image noise the seeds share; the hover "
          "shows its seed-level interval and the image-only p beside it); for one seed there "
          "is no seed-level test, and the mark is the image-only exact McNemar (about these "
          "trained models, not the recipe). The study published one run per cell, test "
          "accuracy only. A row ending in ⚠ test copies trained on a set that holds copies of "
          "real test images (left out of the claims); [...] after a row names what its recipe "
          "overrides in the profile.")


OPTIONS_OPEN = "grid_options_open"  # the options popover: built while open, not sent otherwise
OPTION_DEFAULTS = {  # the finer choices, under the popover; their values outlive its widgets
    "grid_source": None,  # all sources
    "grid_study": True,
    "grid_alpha": ALPHAS[0],
    "grid_correction": DEFAULT_CORRECTION,
    "grid_colour": heatmap_chart.DEFAULT_COLOURING,
}
ALL_SOURCES = ""  # the Source picker's "all sources" (a selectbox shows None as no choice)


def _kept(key: str, blank: str | None = None) -> dict:
    """The widget arguments for the option ``key``, whose value lives under ``key`` (what the
    URL and the page read) and outlives its widget: a widget's own state is dropped on a run
    that does not draw it, and the popover draws its widgets only while open. ``blank`` is
    what the widget shows for None."""
    widget = f"{key}__widget"
    value = st.session_state[key]
    st.session_state[widget] = blank if value is None else value
    return {"key": widget, "on_change": _keep, "args": (key, blank)}


def _keep(key: str, blank: str | None) -> None:
    value = st.session_state[f"{key}__widget"]
    st.session_state[key] = None if value == blank else value


def correction_name(key: str) -> str:
    """``holm`` -> "Holm": the correction's name without its gloss."""
    return CORRECTIONS[key][0].split(" (")[0]


def options_label(labels: dict, origin: str | None, study: bool, alpha: float,
                  correction: str, colour: str) -> str:
    """The popover's button says what its choices are while it is closed."""
    return " · ".join([labels.get(origin, "all sources"),
                       "study shown" if study else "study hidden", f"α {alpha:g}",
                       correction_name(correction),
                       f"colour: {heatmap_chart.COLOURINGS[colour].short}"])


def options(labels: dict) -> None:
    """Source, the study's values, α, correction and colouring, in a popover whose button sums
    them up and whose widgets are built only while it is open: the first screen has one row of
    controls. (It did not make a new tab load faster: docs/explorer.md, "Where the rest goes".)"""
    state = st.session_state
    pop = st.popover(options_label(labels, state["grid_source"], state["grid_study"],
                                   state["grid_alpha"], state["grid_correction"],
                                   state["grid_colour"]),
                     icon=":material/tune:", key=OPTIONS_OPEN, on_change="rerun",
                     help="source, the study's values, α, correction, colouring")
    if not pop.open:
        return
    pop.selectbox("Source", [ALL_SOURCES, *labels],
                  format_func=lambda o: labels.get(o, "all sources"),
                  help="where the runs were computed: this machine, or an imported results "
                       "bundle (shipped ones came with synthmed)",
                  **_kept("grid_source", blank=ALL_SOURCES))
    pop.toggle("Show the study's values", **_kept("grid_study"))
    pop.selectbox("α", ALPHAS, **_kept("grid_alpha"))
    pop.selectbox("Correction", list(CORRECTIONS),
                  format_func=correction_name,
                  help="for testing every cell shown against its base at once: Holm controls "
                       "the family-wise error rate, Benjamini-Hochberg the false discovery rate",
                  **_kept("grid_correction"))
    pop.radio("Colour by", list(heatmap_chart.COLOURINGS),
              format_func=lambda c: heatmap_chart.COLOURINGS[c].label,
              help="both scales read for colour-blind eyes; the difference is each cell's mean "
                   "minus that of base of its arch, init and recipe (orange: below base, "
                   "purple: above)", **_kept("grid_colour"))


def controls(db: str) -> tuple[str, str | None, str | None, bool, float, str, str]:
    for key, default in OPTION_DEFAULTS.items():  # here, not value=: a link may set them
        st.session_state.setdefault(key, default)
    left, mid, right = st.columns([1, 1, 2], vertical_alignment="bottom")
    metric = left.selectbox("Metric (test split)", heatmap_view.METRICS, key="grid_metric")
    profiles = readers.profiles(db)
    if st.session_state.get("grid_profile") not in profiles:  # e.g. the first run finished
        st.session_state.pop("grid_profile", None)
    profile = mid.selectbox("Profile", profiles or [None], key="grid_profile",
                            format_func=lambda p: p or "—")
    sources = readers.sources(db)
    labels = dict(zip(sources["origin"], sources["source"]))
    if st.session_state["grid_source"] not in [None, *labels]:  # a bundle was removed
        st.session_state["grid_source"] = None
    with right:
        options(labels)
    state = st.session_state
    return (metric, profile, state["grid_source"], state["grid_study"], state["grid_alpha"],
            state["grid_correction"], state["grid_colour"])


def panels(cells, metric: str, study: bool, colour: str) -> str | None:
    """One chart per arch; returns the cell a click selected, if any."""
    clicked = None
    scale = heatmap_chart.color_range(cells, colour)
    # Side by side while they fit, wrapped below otherwise: a panel has a fixed pixel size
    # (squares are markers in pixels), so squeezing it into a column would overlap them.
    with st.container(horizontal=True, wrap=True, gap="medium"):
        for arch in heatmap_view.archs_by_seeds(cells):  # the most complete evidence first
            clicked = heatmap_chart.draw(cells, arch, metric, study, scale,
                                      key=f"grid_chart_{arch}", selectable=True,
                                      colour=colour) or clicked
    return clicked


def cell_picker(cells, clicked: str | None) -> str | None:
    names = heatmap_view.cell_names(cells)
    if not names:
        return None
    # A new click selects its cell; the picker works without a click (and in tests).
    if clicked in names and clicked != st.session_state.get("_grid_clicked"):
        st.session_state["grid_cell"] = clicked
    st.session_state["_grid_clicked"] = clicked
    if st.session_state.get("grid_cell") not in names:
        st.session_state.pop("grid_cell", None)
    return st.selectbox("Cell detail (or click a square)", names, key="grid_cell", index=None,
                        placeholder="pick a cell")


CLAIM_COLUMNS = {
    "statement": st.column_config.TextColumn("Claim (a vs b)", width="large"),
    "verdict": st.column_config.TextColumn("Here", help="whether the three metrics agree "
                                                        "(robust) or which carries which verdict"),
    **{name: st.column_config.TextColumn(f"{metric.label}: a - b [95%]", width="medium",
                                         help="p (each test on its own), adjusted p (for every "
                                              "claim on this metric, the correction picked "
                                              "above: verdicts read this one), minimal "
                                              "detectable difference, verdict")
       for name, metric in CLAIM_METRICS.items()},
    "synthetic": st.column_config.TextColumn("Set"),
    "seeds": st.column_config.NumberColumn("Seeds"),
    "arch": st.column_config.TextColumn("Arch"),
    "init": st.column_config.TextColumn("Init"),
    "study": st.column_config.TextColumn("The study's grid (a vs b)", width="large"),
}


def claims_section(db: str, profile: str | None, origin: str | None, correction: str) -> None:
    """The study's conclusions as paired contrasts, with our verdicts on every metric."""
    claims = st.expander("The study's conclusions, checked on these runs", key="grid_claims_open",
                         on_change="rerun")
    if not claims.open:  # computed and drawn when opened: a new tab has less to draw
        return
    with claims:
        st.caption("Each claim compares two cells of one arch and init on the real test images, "
                   "on accuracy at 0.5, accuracy at each run's val-picked threshold and AUROC "
                   "side by side: a - b over matched seeds with its 95% interval and p from the "
                   "seed-aware test (the trained model is the unit; † one seed: the image-only "
                   "test, about these trained models). Supported / contradicted when a - b is "
                   "significant on the claimed / other side after the correction; 'no clear "
                   "gain' is supported only when a TOST puts a - b inside its margin (≡ 0: "
                   f"{', '.join(f'±{m:g} {CLAIM_METRICS[k].label}' for k, m in MARGINS.items())});"
                   " inconclusive otherwise. MDD: the smallest difference these seeds would find "
                   "4 times in 5. Claims marked beyond ask what the study did not.")
        table = readers.claims(db, profile, origin, correction)
        left_out = table.attrs.get("left_out_sets")
        if left_out:
            st.warning(f"Left out: the runs on {md_literal(', '.join(left_out))}, whose sets hold copies "
                       "of real test images.")
        if table.empty:
            st.info("No claim can be checked yet: each needs both of its cells with matching "
                    "seeds, e.g. base and synthetic_base of one arch and init.")
            return
        st.dataframe(claims_table(table)[list(CLAIM_COLUMNS)], hide_index=True,
                     column_config=CLAIM_COLUMNS, key="grid_claims")


def main() -> None:
    st.title("Accuracy grid")
    db = readers.db()
    restore(VIEW, "grid")
    try:
        metric, profile, origin, study, alpha, correction, colour = controls(db)
        cells = readers.grid_cells(db, metric, profile, alpha, study and metric == "accuracy",
                                   origin, correction)
    except SynthmedError as exc:
        st.warning(f"The results database cannot be read right now: {md_literal(exc)}")
        return
    if not heatmap_view.cell_names(cells):
        st.info("No finished runs yet: queue one from the sidebar (profile smoke takes "
                "seconds) and the grid fills in when it finishes."
                + (" Meanwhile, the study's published grid:" if len(cells) else ""))
    if cells.empty:
        publish(VIEW)
        return
    tested = int(cells["p_value"].notna().sum())
    st.caption(LEGEND + (f" p-values adjusted for the {tested} cells tested at once with "
                         f"{CORRECTIONS[correction][0]}; the uncorrected p is in the hover and "
                         "the table." if tested else ""))
    for line in heatmap_view.notes(cells):
        st.caption(f"Note: {md_literal(line)}")
    clicked = panels(cells, metric, study, colour)
    st.download_button("Download the grid (CSV)", heatmap_view.grid_csv(cells, metric),
                       file_name=f"synthmed-grid-{metric}-{profile}.csv", mime="text/csv",
                       key="grid_csv", on_click="ignore")
    table = st.expander("The grid as a table", key="grid_table_open", on_change="rerun")
    if table.open:
        table.dataframe(cells, hide_index=True, key="grid_table")
    claims_section(db, profile, origin, correction)
    name = cell_picker(cells, clicked)
    publish(VIEW)
    if name:
        cell_view.render(db, name, heatmap_view.cell_keys(cells, name))


main()
