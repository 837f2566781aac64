"""The accuracy grid's panels: text readable on every colour of the scale, labels not cut."""
from __future__ import annotations

import pandas as pd
import pytest

from ui.grid_chart import LABEL_CHARS, LABELS_PX, panel, text_color


@pytest.mark.parametrize("value, color", [
    (0.820, "white"),   # viridis' dark purple low end
    (0.840, "white"),   # its dark blue
    (0.880, "black"),   # its light green
    (0.900, "black"),   # its yellow high end
])
def test_cell_text_is_white_on_the_dark_end_of_viridis_and_black_on_its_light_end(value, color):
    assert text_color(value, (0.82, 0.90)) == color


@pytest.mark.parametrize("value, color", [
    (-0.04, "white"),  # dark orange: far below base
    (0.0, "black"),    # the neutral middle: as good as base
    (0.04, "white"),   # dark purple: far above base
])
def test_on_the_difference_scale_text_is_white_on_both_dark_ends_and_black_at_zero(value, color):
    assert text_color(value, (-0.04, 0.04), "vs_base") == color


def test_a_scale_of_one_value_or_a_missing_mean_gets_black_text():
    assert text_color(0.85, (0.85, 0.85)) == "black"
    assert text_color(float("nan"), (0.8, 0.9)) == "black"


def test_both_colourings_are_colour_blind_safe_and_neither_is_red_green():
    from ui.grid_chart import COLOURINGS
    assert {c.vega for c in COLOURINGS.values()} == {"viridis", "purpleorange"}
    assert {c.plotly for c in COLOURINGS.values()} == {"Viridis", "PuOr"}
    assert not any("green" in c.vega.lower() or "Gn" in c.plotly for c in COLOURINGS.values())


def _grid(means: dict[str, float], base: float | None = 0.85) -> pd.DataFrame:
    rows = ([] if base is None else [{**_cell("base", base), "setting": "base"}])
    rows += [{**_cell(row, mean), "setting": row} for row, mean in means.items()]
    cells = pd.DataFrame(rows)
    from synthmed_core.explorer.grid_view import vs_base
    cells["profile"], cells["recipe"] = "quick", "r1"
    cells["vs_base"] = vs_base(cells)
    return cells


def test_the_difference_from_base_is_each_cells_mean_minus_its_bases_and_zero_for_base():
    cells = _grid({"augment": 0.87, "synthetic_base": 0.80})
    assert cells["vs_base"].round(6).tolist() == [0.0, 0.02, -0.05]
    assert _grid({"augment": 0.87}, base=None)["vs_base"].isna().all()  # no base: no colour


def test_the_difference_scale_is_diverging_centred_on_zero_with_orange_below_base():
    from ui.grid_chart import altair_spec, color_range
    cells = _grid({"augment": 0.87, "synthetic_base": 0.80})
    lo, hi = color_range(cells, "vs_base")
    assert (lo, hi) == pytest.approx((-0.05, 0.05))  # symmetric: 0 is the neutral middle
    spec = altair_spec(cells, "resnet18", "accuracy", False, (lo, hi), "vs_base")
    scale = spec["layer"][0]["encoding"]["color"]["scale"]  # (the condition paints grey)
    assert scale["scheme"] == "purpleorange" and scale["reverse"] is True  # low end orange
    assert scale["domain"] == pytest.approx([-0.05, 0.05])
    data = {d["cell"]: d for d in next(iter(spec["datasets"].values()))}
    assert data["resnet18/scratch/synthetic_base"]["value"] == pytest.approx(-0.05)
    assert data["resnet18/scratch/synthetic_base"]["text"].startswith("Δ-0.050")
    assert data["resnet18/scratch/base"]["text"].startswith("0.850")  # base keeps its mean
    plain = altair_spec(cells, "resnet18", "accuracy", False, color_range(cells))
    assert plain["layer"][0]["encoding"]["color"]["scale"]["scheme"] == "viridis"


def test_plotly_draws_the_same_colourings():
    from ui.grid_chart import color_range
    cells = _grid({"augment": 0.87})
    fig = panel(cells, "resnet18", "accuracy", False, color_range(cells, "vs_base"), "vs_base")
    marker = fig.data[0].marker
    assert [round(c, 6) for c in marker.color] == [0.0, 0.02]
    assert marker.cmin == pytest.approx(-0.02) and marker.cmax == pytest.approx(0.02)
    assert marker.colorscale[0][1] == "rgb(127,59,8)"  # PuOr's orange at the low end


def _cell(row: str, mean: float) -> dict:
    nan = float("nan")
    return {"arch": "resnet18", "init": "scratch", "row": row, "cell": f"resnet18/scratch/{row}",
            "n": 1, "mean": mean, "direction": None, "study": nan, "lo": nan, "hi": nan,
            "p_value": nan, "significant": False}


def test_a_long_row_label_is_shortened_in_the_middle_and_the_panel_keeps_its_width():
    short = panel(pd.DataFrame([_cell("base", 0.85)]), "resnet18", "accuracy", False, (0.8, 0.9))
    long_row = "augment ×1 · a_synthetic_set_with_a_long_name_centroid"
    two = panel(pd.DataFrame([_cell("base", 0.85), _cell(long_row, 0.86)]), "resnet18",
                "accuracy", False, (0.8, 0.9))
    assert two.layout.width == short.layout.width and two.layout.margin.l == LABELS_PX
    assert list(two.layout.yaxis.tickvals) == ["base", long_row]  # the rows themselves
    base, shown = two.layout.yaxis.ticktext
    assert base == "base" and len(shown) == LABEL_CHARS
    assert shown.startswith("augment ×1 · ") and shown.endswith("_centroid") and "…" in shown


def test_the_altair_panel_draws_one_fixed_size_square_per_cell_and_a_click_selects_its_cell():
    from ui.grid_chart import (CELL_PX, SELECTION, STEP_X, STEP_Y, altair_panel,
                               altair_selected_cell)
    long_row = "augment ×1 · a_synthetic_set_with_a_long_name_centroid"
    cells = pd.DataFrame([_cell("base", 0.85), _cell(long_row, 0.86)])
    spec = altair_panel(cells, "resnet18", "accuracy", False, (0.8, 0.9)).to_dict()
    data = next(iter(spec["datasets"].values()))
    assert [d["cell"] for d in data] == ["resnet18/scratch/base", f"resnet18/scratch/{long_row}"]
    squares, texts = spec["layer"]
    assert squares["mark"]["size"] == CELL_PX ** 2 and texts["mark"]["type"] == "text"
    assert spec["height"] == {"step": STEP_Y} and spec["width"] == {"step": STEP_X}
    assert squares["encoding"]["y"]["sort"] == ["base", long_row]  # the rows themselves,
    assert str(LABEL_CHARS) in squares["encoding"]["y"]["axis"]["labelExpr"]  # shown shortened
    assert spec["params"][0]["name"] == SELECTION and spec["params"][0]["select"]["fields"] == [
        "cell"]
    assert altair_selected_cell({"selection": {SELECTION: [{"cell": "resnet18/scratch/base"}]}}
                                ) == "resnet18/scratch/base"
    assert altair_selected_cell({"selection": {SELECTION: []}}) is None


def test_the_grid_draws_with_the_renderer_the_environment_names_and_altair_by_default(
        monkeypatch):
    from ui import grid_chart
    drawn = []
    monkeypatch.setattr(grid_chart, "RENDERERS", {
        name: (lambda *a, name=name: drawn.append(name)) for name in grid_chart.RENDERERS})
    cells = pd.DataFrame([_cell("base", 0.85)])
    for env in (None, "plotly", "no-such-renderer"):
        if env is None:
            monkeypatch.delenv(grid_chart.RENDERER_ENV, raising=False)
        else:
            monkeypatch.setenv(grid_chart.RENDERER_ENV, env)
        grid_chart.draw(cells, "resnet18", "accuracy", False, (0.8, 0.9), key="k")
    assert drawn == ["altair", "plotly", "altair"]
