"""The accuracy grid's panels: one per arch, rows = setting (x ratio, set), columns = init, one
square per cell coloured by the metric. Drawn with Vega-Lite (Altair, the default: Streamlit
ships Vega in its own bundle, and a point selection returns the clicked cell) or Plotly
(``SYNTHMED_GRID_CHART=plotly``; scripts/bench_explorer.py times both).

Plotly: a scatter of square markers, not a ``go.Heatmap``: Streamlit 1.67 returns no selected
points for a heatmap, and a click on a cell is how the page opens its detail. Each marker
carries its cell name in ``customdata[0]``; ``selected_cell`` reads it back from the chart's
event.

Colours are colour-blind safe (``COLOURINGS``): the metric itself on viridis (sequential), or
each cell's difference from its arch's base (same init and recipe) on purple-orange
(ColorBrewer PuOr, diverging, centred on 0: orange worse, purple better than base).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import pandas as pd
import plotly.colors as pcolors
import plotly.graph_objects as go
import streamlit as st

from synthmed_core.catalog import INITS

CELL_PX = 56  # marker side; the figure grows with the number of rows and columns
LABELS_PX = 190  # room for the row labels, e.g. "synthetic_pretrain · my-set"
LABEL_CHARS = 32  # what fits in LABELS_PX: longer labels are shortened in the middle
COLORBAR_PX = 60
ARROWS = {"better": " ▲", "worse": " ▼"}


@dataclass(frozen=True)
class Colouring:
    """What colours a panel's squares: a column of ``heatmap_view.grid_cells`` on a scale that
    Vega-Lite (``vega``, ``reverse``) and Plotly (``plotly``) draw alike."""

    field: str
    label: str  # for the picker and the legend
    short: str  # for the grid's options button: "colour: <short>"
    vega: str
    plotly: str
    reverse: bool = False  # Vega's scheme runs the other way from Plotly's scale
    diverging: bool = False  # centred on 0, its range symmetric


COLOURINGS = {
    "value": Colouring("mean", "the metric (viridis)", "value", "viridis", "Viridis"),
    "vs_base": Colouring("vs_base", "difference from the arch's base (purple-orange)",
                         "Δ base", "purpleorange", "PuOr", reverse=True, diverging=True),
}
DEFAULT_COLOURING = "value"


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def cell_text(row: dict, show_study: bool, colour: str = DEFAULT_COLOURING) -> str:
    """What a marker says: mean (or, coloured by the difference from base, that difference
    with a Δ; base keeps its mean) and ▲/▼ when significantly better/worse than base, n, and
    the study's value when asked."""
    if row["n"] == 0 or _missing(row["mean"]):
        text = "—"
    else:
        diff = row.get("vs_base")
        value = (f"Δ{diff:+.3f}" if COLOURINGS[colour].diverging and row.get("setting") != "base"
                 and not _missing(diff) else f"{row['mean']:.3f}")
        text = f"{value}{ARROWS.get(row['direction'], '')}<br>n={int(row['n'])}"
    if show_study and not _missing(row["study"]):
        text += f"<br>study {row['study']:.3f}"
    return text


def short_label(label: str, limit: int = LABEL_CHARS) -> str:
    """A row label that fits the panel's margin: long ones keep their start (the setting) and
    end (the set's suffix) around an ellipsis; the hover shows the whole cell name."""
    if len(label) <= limit:
        return label
    head = (limit - 1) // 2
    return f"{label[:head]}…{label[-(limit - 1 - head):]}"


def _luminance(rgb: str) -> float:
    """WCAG relative luminance of an ``rgb(r, g, b)`` colour."""
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = pcolors.unlabel_rgb(rgb)
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def text_color(value: float, color_range: tuple[float, float],
               colour: str = DEFAULT_COLOURING) -> str:
    """White or black, whichever contrasts more with the square's colour on the scale
    (WCAG: white below a relative luminance of 0.179)."""
    lo, hi = color_range
    t = 0.5 if hi <= lo or _missing(value) else min(1.0, max(0.0, (value - lo) / (hi - lo)))
    shade = pcolors.sample_colorscale(COLOURINGS[colour].plotly, [t])[0]
    return "white" if _luminance(shade) < 0.179 else "black"


def _hover(row: dict) -> str:
    lines = [row["cell"]]
    if row["n"]:
        lines.append(f"mean {row['mean']:.4f}, n={int(row['n'])}")
        if not _missing(row["lo"]):
            lines.append(f"95% interval [{row['lo']:.4f}, {row['hi']:.4f}]")
    if not _missing(row["p_value"]):
        seeds = int(row["paired_seeds"])
        lines.append(f"vs base ({seeds} paired seed{'s' if seeds > 1 else ''}): "
                     f"{int(row['wins'])} image results only this cell got right, "
                     f"{int(row['losses'])} only base")
        if seeds > 1:  # the interval of the recipe's difference: seeds are the unit
            lines.append(f"accuracy {row['diff']:+.3f}, seed-level 95% interval "
                         f"[{row['diff_lo']:+.3f}, {row['diff_hi']:+.3f}]; seed-aware "
                         f"p={row['p_value']:.3g}, adjusted {row['p_adjusted']:.3g}")
            lines.append(f"(image-only p={row['image_p']:.3g}: these trained models)")
        else:
            lines.append(f"accuracy {row['diff']:+.3f} [{row['diff_lo']:+.3f}, "
                         f"{row['diff_hi']:+.3f}]; 1 seed, no seed-level test: image-only "
                         f"exact McNemar p={row['p_value']:.3g}, adjusted "
                         f"{row['p_adjusted']:.3g}")
    if not _missing(row["study"]):
        lines.append(f"study (one run): {row['study']:.3f}")
    return "<br>".join(lines)


def _trace(rows: list[dict], show_study: bool, study_only: bool,
           color_range: tuple[float, float], metric: str,
           colour: str = DEFAULT_COLOURING) -> go.Scatter:
    how = COLOURINGS[colour]
    if study_only:  # cells only the study ran: grey squares with its value
        marker = {"symbol": "square", "size": CELL_PX, "color": "#e8e8e8"}
    else:
        marker = {"symbol": "square", "size": CELL_PX, "color": [r[how.field] for r in rows],
                  "colorscale": how.plotly, "cmin": color_range[0], "cmax": color_range[1],
                  "showscale": True, "colorbar": {"thickness": 10, "xpad": 6},
                  "line": {"color": ["black" if r["significant"] else "rgba(0,0,0,0)"
                                     for r in rows],
                           "width": [4 if r["significant"] else 0 for r in rows]}}
    return go.Scatter(
        x=[r["init"] for r in rows], y=[r["row"] for r in rows], mode="markers+text",
        name="study only" if study_only else metric,
        text=[cell_text(r, show_study, colour) for r in rows],
        textfont={"size": 10, "color": "#555" if study_only else
                  [text_color(r[how.field], color_range, colour) for r in rows]},
        customdata=[[r["cell"]] for r in rows], hovertext=[_hover(r) for r in rows],
        hoverinfo="text", marker=marker)


def panel(cells: pd.DataFrame, arch: str, metric: str, show_study: bool,
          color_range: tuple[float, float], colour: str = DEFAULT_COLOURING) -> go.Figure:
    """The figure of one arch from ``heatmap_view.grid_cells`` rows: trace 0 = our cells, trace 1
    (when ``show_study`` and there are any) = cells only the study ran."""
    records = cells[cells["arch"] == arch].to_dict("records")
    inits = [i for i in INITS if i in {r["init"] for r in records}]
    inits += [i for i in dict.fromkeys(r["init"] for r in records) if i not in inits]
    rows = list(dict.fromkeys(r["row"] for r in records))
    fig = go.Figure(_trace([r for r in records if r["n"] > 0], show_study, False, color_range,
                           metric, colour))
    study_only = [r for r in records if r["n"] == 0]
    if show_study and study_only:
        fig.add_trace(_trace(study_only, True, True, color_range, metric, colour))
    # A fixed size: squares are fixed in pixels, so a narrower plot would overlap them.
    fig.update_layout(
        title={"text": arch, "x": 0}, showlegend=False,
        height=110 + CELL_PX * 1.25 * max(1, len(rows)),
        width=LABELS_PX + CELL_PX * 1.3 * max(1, len(inits)) + COLORBAR_PX,
        margin={"l": LABELS_PX, "r": COLORBAR_PX, "t": 60, "b": 10, "autoexpand": False},
        plot_bgcolor="white",
        dragmode=False,
        xaxis={"categoryorder": "array", "categoryarray": inits, "side": "top",
               "fixedrange": True},
        yaxis={"categoryorder": "array", "categoryarray": rows, "autorange": "reversed",
               "fixedrange": True, "tickmode": "array", "tickvals": rows,
               "ticktext": [short_label(r) for r in rows]})
    return fig


def color_range(cells: pd.DataFrame, colour: str = DEFAULT_COLOURING) -> tuple[float, float]:
    """One colour scale for every panel: the range of the cell means (0..1 when none); for a
    diverging colouring, symmetric around 0 (so 0 is the scale's neutral middle)."""
    how = COLOURINGS[colour]
    values = cells[how.field].dropna() if how.field in cells else pd.Series(dtype=float)
    if how.diverging:
        reach = float(values.abs().max()) if len(values) else 0.0
        reach = max(reach, 0.005)  # an all-zero grid still gets a scale
        return (-reach, reach)
    if values.empty:
        return (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    return (lo, hi) if hi > lo else (lo - 0.01, hi + 0.01)


def selected_cell(event) -> str | None:
    """The cell name a click on a panel selected, from ``st.plotly_chart``'s return value."""
    try:
        points = event.selection.points
    except AttributeError:
        try:
            points = event["selection"]["points"]
        except (KeyError, TypeError):
            return None
    for point in points or []:
        data = point.get("customdata")
        if data:
            return data[0] if isinstance(data, (list, tuple)) else data
    return None


# ---- the same panel in Vega-Lite (Altair): Streamlit ships Vega in its own bundle ---------------
LEGEND_PX = 90  # the colour legend right of the squares
LINE_PX = 12  # between the lines of a square's text
STEP_X, STEP_Y = round(CELL_PX * 1.3), round(CELL_PX * 1.25)  # a column's and a row's pixels
SELECTION = "cell"  # the point selection's name: a click returns {"cell": <cell name>}


def altair_panel(cells: pd.DataFrame, arch: str, metric: str, show_study: bool,
                 color_range: tuple[float, float], colour: str = DEFAULT_COLOURING):
    """The panel of ``panel`` as an Altair chart: one square per cell (grey where only the
    study ran), its text in it, outlined when significant; a click selects its ``cell``."""
    import altair as alt

    how = COLOURINGS[colour]
    records = cells[cells["arch"] == arch].to_dict("records")
    if not show_study:
        records = [r for r in records if r["n"] > 0]
    inits = [i for i in INITS if i in {r["init"] for r in records}]
    inits += [i for i in dict.fromkeys(r["init"] for r in records) if i not in inits]
    rows = list(dict.fromkeys(r["row"] for r in records))
    data = pd.DataFrame([{
        "cell": r["cell"], "init": r["init"], "row": r["row"],
        # Vega-Lite drops a mark whose colour field is missing: a cell only the study ran (or
        # without a base, coloured by the difference) gets the scale's low end there, and
        # ``ran`` = False paints it grey instead
        "ran": bool(r["n"]) and not _missing(r.get(how.field)),
        "value": (color_range[0] if r["n"] == 0 or _missing(r.get(how.field))
                  else float(r[how.field])),
        "text": cell_text(r, show_study, colour).replace("<br>", "\n"),
        "ink": ("#555" if r["n"] == 0 or _missing(r.get(how.field))
                else text_color(r[how.field], color_range, colour)),
        "edge": 4 if r["n"] > 0 and r.get("significant") else 0,
        "about": _hover(r).split("<br>")} for r in records])
    # one text mark per line, centred on the square as a block (Vega starts a multi-line
    # text at the centre and runs it downwards, out of the square)
    lines = pd.DataFrame([
        {"init": d["init"], "row": d["row"], "ink": d["ink"], "line": line,
         "dy": STEP_Y / 2 + (k - (len(parts) - 1) / 2) * LINE_PX}  # from the band's top
        for d in data.to_dict("records") for parts in [d["text"].split("\n")]
        for k, line in enumerate(parts)])
    x = alt.X("init:N", sort=inits, title=None, axis=alt.Axis(orient="top", labelAngle=0))
    head = (LABEL_CHARS - 1) // 2
    y = alt.Y("row:N", sort=rows, title=None, axis=alt.Axis(
        labelLimit=LABELS_PX, labelExpr=(  # long labels keep their start and end (short_label)
            f"length(datum.label) > {LABEL_CHARS} ? slice(datum.label, 0, {head}) + '…' + "
            f"slice(datum.label, {head + 1 - LABEL_CHARS}) : datum.label")))
    pick = alt.selection_point(name=SELECTION, fields=["cell"], on="click")
    squares = alt.Chart(data).mark_square(size=CELL_PX ** 2, opacity=1, stroke="black").encode(
        x=x, y=y,
        color=alt.condition("!datum.ran", alt.value("#e8e8e8"),
                            alt.Color("value:Q", title=f"Δ {metric}" if how.diverging else metric,
                                      scale=alt.Scale(scheme=how.vega, reverse=how.reverse,
                                                      domain=list(color_range)),
                                legend=alt.Legend(gradientThickness=10, gradientLength=max(
                                    40, min(200, STEP_Y * len(rows) - 30))))),  # fits the panel
        strokeWidth=alt.StrokeWidth("edge:Q", scale=None),
        tooltip=alt.Tooltip("about:N", title=None)).add_params(pick)
    texts = alt.Chart(lines).mark_text(fontSize=10).encode(
        x=x, y=y, yOffset=alt.YOffset("dy:Q", scale=None), text="line:N",
        color=alt.Color("ink:N", scale=None))
    return (squares + texts).resolve_scale(color="independent").properties(
        title=alt.Title(arch, anchor="start"),
        # one step per row and column: squares never touch, whatever the number of rows
        width=alt.Step(STEP_X), height=alt.Step(STEP_Y)
    ).configure_view(strokeWidth=0)


def altair_width(cells: pd.DataFrame, arch: str, show_study: bool) -> int:
    """The panel's width in pixels (Streamlit sizes the element; Vega draws in it)."""
    shown = cells[cells["arch"] == arch]
    if not show_study:
        shown = shown[shown["n"] > 0]
    return int(LABELS_PX + STEP_X * max(1, shown["init"].nunique()) + LEGEND_PX)


def altair_selected_cell(event) -> str | None:
    """The cell a click selected, from ``st.altair_chart``'s return value."""
    try:
        points = event.selection[SELECTION]
    except (AttributeError, KeyError, TypeError):
        try:
            points = event["selection"][SELECTION]
        except (KeyError, TypeError):
            return None
    for point in points or []:
        if point.get("cell"):
            return point["cell"]
    return None


# ---- drawing a panel on the page ------------------------------------------------------------------
def _draw_plotly(cells, arch, metric, show_study, scale, key, selectable, colour
                 ) -> str | None:
    fig = panel(cells, arch, metric, show_study, scale, colour)
    opts = {"key": key, "width": "content", "config": {"displayModeBar": False}}
    if not selectable:
        st.plotly_chart(fig, **opts)
        return None
    return selected_cell(st.plotly_chart(fig, on_select="rerun", selection_mode="points", **opts))


def altair_spec(cells: pd.DataFrame, arch: str, metric: str, show_study: bool,
                color_range: tuple[float, float], colour: str = DEFAULT_COLOURING) -> dict:
    """``altair_panel`` as its Vega-Lite spec, data inline. Altair builds and validates a panel
    against the Vega-Lite schema in ~0.1 s; the page caches this per grid (see ``draw``), so
    reruns and new tabs send the same spec without building it again."""
    return altair_panel(cells, arch, metric, show_study, color_range, colour).to_dict()


def _draw_altair(cells, arch, metric, show_study, scale, key, selectable, colour
                 ) -> str | None:
    spec = _spec_cache()(cells, arch, metric, show_study, scale, colour)
    opts = {"key": key, "width": altair_width(cells, arch, show_study)}
    if not selectable:
        st.vega_lite_chart(spec, **opts)
        return None
    return altair_selected_cell(st.vega_lite_chart(spec, on_select="rerun",
                                                   selection_mode=SELECTION, **opts))


@functools.cache
def _spec_cache():
    """``altair_spec`` behind st.cache_data: one spec per grid, each call its own copy (Streamlit
    changes it as it sends it). Made on first use, in the server: made at import, it would warn
    in every process that imports this module outside Streamlit (tests, the bench)."""
    return st.cache_data(max_entries=64, show_spinner=False)(altair_spec)


def warm() -> None:
    """Import Altair and build one tiny panel, as ``ui.serve`` starts: the first build loads
    Vega-Lite's schema validator (with the import, 2.5 s on the loaded 2-core box), which the
    first page with a grid paid otherwise."""
    cells = pd.DataFrame([{"arch": "a", "init": "scratch", "setting": "base", "row": "base",
                           "cell": "a/scratch/base", "n": 1, "mean": 0.5, "vs_base": 0.0,
                           "direction": None, "study": math.nan, "lo": math.nan,
                           "hi": math.nan, "p_value": math.nan, "significant": False}])
    altair_spec(cells, "a", "accuracy", False, (0.0, 1.0))


RENDERERS = {"altair": _draw_altair, "plotly": _draw_plotly}
DEFAULT_RENDERER = "altair"
RENDERER_ENV = "SYNTHMED_GRID_CHART"  # plotly | altair: scripts/bench_explorer.py times both


def draw(cells: pd.DataFrame, arch: str, metric: str, show_study: bool,
         scale: tuple[float, float], key: str, selectable: bool = False,
         colour: str = DEFAULT_COLOURING) -> str | None:
    """Draw one arch's panel with the chosen renderer and colouring (a COLOURINGS key); the
    cell a click selected, if any."""
    import os
    name = os.environ.get(RENDERER_ENV, DEFAULT_RENDERER)
    if name not in RENDERERS:
        name = DEFAULT_RENDERER
    return RENDERERS[name](cells, arch, metric, show_study, scale, key, selectable, colour)
