"""The accuracy grid's panels: text readable on every colour of the scale, labels not cut."""
from __future__ import annotations

import pandas as pd
import pytest

from ui.grid_chart import LABEL_CHARS, LABELS_PX, panel, text_color


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
