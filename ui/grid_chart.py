"""The accuracy grid as Plotly figures: one panel per arch, rows = setting (x ratio, set),
columns = init, one square marker per cell coloured by the metric.

A scatter of square markers, not a ``go.Heatmap``: Streamlit 1.67 returns no selected points
for a heatmap, and a click on a cell is how the page opens its detail. Each marker carries its
cell name in ``customdata[0]``; ``selected_cell`` reads it back from the chart's event.
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from synthmed_core.grid import INITS

CELL_PX = 56  # marker side; the figure grows with the number of rows and columns
LABELS_PX = 190  # room for the row labels, e.g. "synthetic_pretrain · my-set"
LABEL_CHARS = 32  # what fits in LABELS_PX: longer labels are shortened in the middle
COLORBAR_PX = 60
ARROWS = {"better": " ▲", "worse": " ▼"}


def _missing(x) -> bool:
    return x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x))


def cell_text(row: dict, show_study: bool) -> str:
    """What a marker says: mean (and ▲/▼ when significantly better/worse than base), n, and
    the study's value when asked."""
    if row["n"] == 0 or _missing(row["mean"]):
        text = "—"
    else:
        text = f"{row['mean']:.3f}{ARROWS.get(row['direction'], '')}<br>n={int(row['n'])}"
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


def text_color(value: float, color_range: tuple[float, float]) -> str:
    """Black on the scale's light middle, white on its dark red and dark green ends."""
    lo, hi = color_range
    t = 0.5 if hi <= lo or _missing(value) else (value - lo) / (hi - lo)
    return "white" if t < 0.15 or t > 0.85 else "black"


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
        lines.append(f"accuracy {row['diff']:+.3f} [{row['diff_lo']:+.3f}, "
                     f"{row['diff_hi']:+.3f}]; {row['test']} p={row['p_value']:.3g}, "
                     f"adjusted {row['p_adjusted']:.3g}")
    if not _missing(row["study"]):
        lines.append(f"study (one run): {row['study']:.3f}")
    return "<br>".join(lines)


def _trace(rows: list[dict], show_study: bool, study_only: bool,
           color_range: tuple[float, float], metric: str) -> go.Scatter:
    if study_only:  # cells only the study ran: grey squares with its value
        marker = {"symbol": "square", "size": CELL_PX, "color": "#e8e8e8"}
    else:
        marker = {"symbol": "square", "size": CELL_PX, "color": [r["mean"] for r in rows],
                  "colorscale": "RdYlGn", "cmin": color_range[0], "cmax": color_range[1],
                  "showscale": True, "colorbar": {"thickness": 10, "xpad": 6},
                  "line": {"color": ["black" if r["significant"] else "rgba(0,0,0,0)"
                                     for r in rows],
                           "width": [4 if r["significant"] else 0 for r in rows]}}
    return go.Scatter(
        x=[r["init"] for r in rows], y=[r["row"] for r in rows], mode="markers+text",
        name="study only" if study_only else metric,
        text=[cell_text(r, show_study) for r in rows],
        textfont={"size": 10, "color": "#555" if study_only else
                  [text_color(r["mean"], color_range) for r in rows]},
        customdata=[[r["cell"]] for r in rows], hovertext=[_hover(r) for r in rows],
        hoverinfo="text", marker=marker)


def panel(cells: pd.DataFrame, arch: str, metric: str, show_study: bool,
          color_range: tuple[float, float]) -> go.Figure:
    """The figure of one arch from ``grid_view.grid_cells`` rows: trace 0 = our cells, trace 1
    (when ``show_study`` and there are any) = cells only the study ran."""
    records = cells[cells["arch"] == arch].to_dict("records")
    inits = [i for i in INITS if i in {r["init"] for r in records}]
    inits += [i for i in dict.fromkeys(r["init"] for r in records) if i not in inits]
    rows = list(dict.fromkeys(r["row"] for r in records))
    fig = go.Figure(_trace([r for r in records if r["n"] > 0], show_study, False, color_range,
                           metric))
    study_only = [r for r in records if r["n"] == 0]
    if show_study and study_only:
        fig.add_trace(_trace(study_only, True, True, color_range, metric))
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


def color_range(cells: pd.DataFrame) -> tuple[float, float]:
    """One colour scale for every panel: the range of the cell means (0..1 when none)."""
    means = cells["mean"].dropna()
    if means.empty:
        return (0.0, 1.0)
    lo, hi = float(means.min()), float(means.max())
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
