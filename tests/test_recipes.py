"""A cell is one recipe: runs that override their profile (epochs, train limit, weights files)
are cells of their own everywhere, and paired tests pair runs of the same recipe and seed."""
from __future__ import annotations

import duckdb
import pytest

from synthmed_core.explorer.claims import check_claims
from synthmed_core.explorer.claims_text import format_claims
from synthmed_core.analysis.compare import CellKey, compare_cells
from synthmed_core.explorer.report import format_table, report_table
from synthmed_core.explorer.heatmap_view import grid_cells
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store

from grid_helpers import add_run, labels, probs_with_accuracy

OVERRIDE = {"epochs": 8, "train_limit": 624}


@pytest.fixture
def store(tmp_path) -> Store:
    """Seed-0 base runs of two recipes (smoke as defined, and smoke with 8 epochs on 624
    images), and a synthetic_base run with the overridden recipe that matches ITS base image
    for image, while the plain base (started first) is clearly different."""
    s = Store(tmp_path / "recipes.duckdb")
    y = labels()
    add_run(s, "base", 0, probs_with_accuracy(y, 0.6, 1), y)  # started first
    good = probs_with_accuracy(y, 0.9, 2)
    add_run(s, "base", 0, good, y, **OVERRIDE)
    add_run(s, "synthetic_base", 0, good, y, synthetic="set", **OVERRIDE)
    return s


def test_two_recipes_of_one_cell_are_two_cells_of_one_run_each(store):
    cells = grid_cells(store, "accuracy", profile="smoke")
    base = cells[cells["setting"] == "base"]
    assert sorted(base["n"]) == [1, 1]
    assert sorted(base["row"]) == ["base", "base [epochs=8 train_limit=624]"]
    assert len(set(base["cell"])) == 2


def test_a_cell_pairs_with_the_base_of_its_own_recipe(store):
    cells = grid_cells(store, "accuracy", profile="smoke").set_index("row")
    synthetic = cells.loc["synthetic_base · set [epochs=8 train_limit=624]"]
    assert synthetic["paired_seeds"] == 1
    assert synthetic["wins"] == 0 and synthetic["losses"] == 0  # the same predictions


def test_the_report_shows_each_recipe_as_its_own_row(store):
    text = format_table(report_table(store, archs=["resnet50"], profile="smoke"))
    assert "| base [epochs=8 train_limit=624] | 0.900 n=1" in text
    assert "| base | 0.600 n=1" in text


def test_compare_pairs_runs_of_one_recipe_and_seed(store):
    key = CellKey.parse("resnet50/scratch/synthetic_base/set", "smoke")
    res = compare_cells(store, key, CellKey.parse("resnet50/scratch/base", "smoke"), n_boot=50)
    assert res["accuracy_diff"]["diff"] == 0.0
    assert res["recipe"] == "smoke epochs=8 train_limit=624"


def test_claims_check_each_recipe_apart(store):
    df = check_claims(store, "smoke")
    row = df[df["claim"] == df["claim"].iloc[0]].iloc[0]
    assert row["recipe"] == "smoke epochs=8 train_limit=624" and row["diff"] == 0.0
    assert "smoke epochs=8 train_limit=624" in format_claims(df)


def test_an_existing_store_is_migrated_to_recipes(tmp_path):
    path = tmp_path / "old.duckdb"
    store = Store(path)
    y = labels()
    rid = add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y, **OVERRIDE)
    with duckdb.connect(str(path)) as con:  # as schema version 4 left it
        con.execute("ALTER TABLE runs DROP COLUMN recipe")
        con.execute("ALTER TABLE runs DROP COLUMN recipe_label")
        con.execute("DELETE FROM schema_version WHERE version >= 5")
    run = Store(path).runs().set_index("run_id").loc[rid]
    spec = make_run_spec("resnet50", "scratch", "base", 0, "smoke", **OVERRIDE)
    assert (run["recipe"], run["recipe_label"]) == (spec.recipe, spec.recipe_label)


def test_redefining_a_profile_relabels_its_runs_when_the_store_is_next_opened(tmp_path,
                                                                             monkeypatch):
    import dataclasses

    from synthmed_core import grid
    path = tmp_path / "s.duckdb"
    y = labels()
    rid = add_run(Store(path), "base", 0, probs_with_accuracy(y, 0.8, 0), y, epochs=8)
    assert Store(path).runs().set_index("run_id").loc[rid, "recipe_label"] == "smoke epochs=8"
    # the profile now trains 8 epochs itself: the run is that profile as defined, same id
    monkeypatch.setitem(grid.PROFILES, "smoke", dataclasses.replace(grid.PROFILES["smoke"],
                                                                     epochs=8))
    runs = Store(path).runs().set_index("run_id")
    assert runs.loc[rid, "recipe_label"] == "smoke"
