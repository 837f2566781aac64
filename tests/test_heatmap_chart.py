"""The accuracy grid's panels: text readable on every colour of the scale, labels not cut."""
from __future__ import annotations

import pandas as pd
import pytest

from ui.heatmap_chart import LABEL_CHARS, LABELS_PX, panel, text_color


@pytest.mark.parametrize("value, color", [
    (0.820, "white"),   # the dark red end
    (0.830, "white"),
    (0.845, "black"),   # the light yellow middle
    (0.880, "black"),
    (0.895, "white"),   # the dark green end
    (0.900, "white"),
])
def test_cell_text_is_white_on_the_dark_ends_of_the_scale_and_black_in_between(value, color):
    assert text_color(value, (0.82, 0.90)) == color


def test_a_scale_of_one_value_or_a_missing_mean_gets_black_text():
    assert text_color(0.85, (0.85, 0.85)) == "black"
    assert text_color(float("nan"), (0.8, 0.9)) == "black"


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
    from ui.heatmap_chart import (CELL_PX, SELECTION, STEP_X, STEP_Y, altair_panel,
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
    from ui import heatmap_chart
    drawn = []
    monkeypatch.setattr(heatmap_chart, "RENDERERS", {
        name: (lambda *a, name=name: drawn.append(name)) for name in heatmap_chart.RENDERERS})
    cells = pd.DataFrame([_cell("base", 0.85)])
    for env in (None, "plotly", "no-such-renderer"):
        if env is None:
            monkeypatch.delenv(heatmap_chart.RENDERER_ENV, raising=False)
        else:
            monkeypatch.setenv(heatmap_chart.RENDERER_ENV, env)
        heatmap_chart.draw(cells, "resnet18", "accuracy", False, (0.8, 0.9), key="k")
    assert drawn == ["altair", "plotly", "altair"]
