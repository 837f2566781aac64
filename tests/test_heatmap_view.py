"""The accuracy grid's data: one store query per grid, the paired test against base, one cell's
detail, and the scratch-store filler the benchmark uses."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import synthmed_core.store as store_mod
from synthmed_core.analysis.compare import CellKey, compare_cells
from synthmed_core.analysis.metrics import aggregate, mcnemar_p
from synthmed_core.analysis.seeds import SEED_AWARE_TEST
from synthmed_core.errors import SpecError
from synthmed_core.explorer.cell_detail import cell_detail, wrong_images
from synthmed_core.explorer.heatmap_view import (ONE_SEED_TEST, archs_by_seeds, cell_keys,
                                                 grid_cells, grid_csv)
from synthmed_core.store import Store
from synthmed_core.store._fill import fill_scratch_store

from grid_helpers import CONTRAST, add_run, fill_contrast, labels, probs_with_accuracy


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "grid.duckdb")


def row(cells, name):
    hit = cells[cells["cell"] == name]
    assert len(hit) == 1, (name, cells["cell"].tolist())
    return hit.iloc[0]


def test_a_cell_clearly_worse_than_base_is_marked_and_an_identical_one_is_not(contrast):
    store, names = contrast, CONTRAST
    cells = grid_cells(store, "accuracy")
    worse, same, base = (row(cells, names[k]) for k in ("worse", "same", "base"))
    assert worse["significant"] and worse["direction"] == "worse" and worse["p_value"] < 0.01
    assert worse["image_p"] < 1e-6  # three seeds, two degrees of freedom: seeds are the unit
    assert not same["significant"] and same["wins"] == 0 and same["losses"] == 0
    assert same["p_value"] == 1.0 and same["direction"] is None
    assert not base["significant"] and math.isnan(base["p_value"])


def test_the_grid_test_matches_the_core_paired_comparison_image_by_image(contrast):
    store, names = contrast, CONTRAST
    cell = row(grid_cells(store, "accuracy"), names["worse"])
    res = compare_cells(store, CellKey.parse("resnet50/scratch/synthetic_base/fake-set", "smoke"),
                        CellKey.parse("resnet50/scratch/base", "smoke"), n_boot=10)
    assert (cell["wins"], cell["losses"]) == (res["mcnemar"]["b"], res["mcnemar"]["c"])
    assert cell["paired_seeds"] == 3 and cell["test"] == SEED_AWARE_TEST
    seed = res["evidence"]["accuracy"]  # from per-image predictions, not from the store's sums
    assert cell[["diff", "diff_lo", "diff_hi", "p_value"]].tolist() == pytest.approx(
        [seed["diff"], seed["lo"], seed["hi"], seed["p"]])
    assert cell["image_p"] == pytest.approx(res["accuracy_diff"]["p"])  # the image-only test
    assert seed["diff"] == pytest.approx(res["accuracy_a"] - res["accuracy_b"])


def test_one_seed_is_marked_by_the_image_only_exact_mcnemar_named_so(store):
    names = fill_contrast(store, seeds=(0,))
    cell = row(grid_cells(store, "accuracy"), names["worse"])
    res = compare_cells(store, CellKey.parse("resnet50/scratch/synthetic_base/fake-set", "smoke"),
                        CellKey.parse("resnet50/scratch/base", "smoke"), n_boot=10)
    assert cell["test"] == ONE_SEED_TEST and cell["paired_seeds"] == 1
    assert cell["test"].startswith("image-only, 1 seed: these trained models")
    assert cell["p_value"] == pytest.approx(res["mcnemar"]["p_value"])


def test_repeating_a_seed_does_not_make_a_difference_more_significant(store):
    """Three copies of one seed are one seed's evidence: the image-level test gives them the
    p-value of one seed's paired t, where a McNemar pooled over seed x image pairs would
    shrink it; the seed-aware test sees no seed spread but only two degrees of freedom."""
    y = labels()
    base, cell = probs_with_accuracy(y, 0.80, 0), probs_with_accuracy(y, 0.74, 1)
    for seed in (0, 1, 2):
        add_run(store, "base", seed, base, y)
        add_run(store, "synthetic_base", seed, cell, y, synthetic="fake-set")
    three = row(grid_cells(store, "accuracy"), "resnet50/scratch/synthetic_base/fake-set (smoke)")
    d = ((cell >= 0.5) == y).astype(float) - ((base >= 0.5) == y).astype(float)
    one_seed_t = stats.ttest_1samp(d, 0.0).pvalue
    assert three["image_p"] == pytest.approx(one_seed_t)
    assert three["p_value"] > one_seed_t
    assert mcnemar_p(three["wins"], three["losses"]) < one_seed_t / 5  # pooled: optimistic


def test_seeds_that_disagree_leave_a_cell_unmarked_where_the_image_only_test_would_mark_it(
        store):
    """The same mean loss, once from seeds that agree and once from seeds that scatter: the
    image-only test sees the same images either way; the seed-aware one sees the scatter."""
    y = labels()
    for seed, acc in zip((0, 1, 2), (0.60, 0.78, 0.80)):
        add_run(store, "base", seed, probs_with_accuracy(y, 0.80, seed), y)
        add_run(store, "synthetic_base", seed, probs_with_accuracy(y, acc, 10 + seed), y,
                synthetic="scatter-set")
    cell = row(grid_cells(store, "accuracy"),
               "resnet50/scratch/synthetic_base/scatter-set (smoke)")
    assert cell["image_p"] < 0.05 and cell["p_value"] > 0.05
    assert not cell["significant"] and cell["diff_lo"] < 0 < cell["diff_hi"]


def test_each_cell_has_mean_interval_and_n_over_seeds_of_the_chosen_metric(contrast):
    store, names = contrast, CONTRAST
    runs = store.runs("finished")
    for metric in ("accuracy", "auroc", "sensitivity"):
        cell = row(grid_cells(store, metric), names["worse"])
        values = runs[runs["setting"] == "synthetic_base"][metric]
        want = aggregate(values)
        assert cell["n"] == 3
        assert cell[["mean", "lo", "hi"]].tolist() == pytest.approx(
            [want["mean"], want["lo"], want["hi"]])


def test_only_accuracy_carries_the_study_value_and_study_only_cells_can_be_added(contrast):
    store = contrast
    acc = grid_cells(store, "accuracy")
    assert row(acc, "resnet50/scratch/base (smoke)")["study"] == pytest.approx(0.83654, abs=1e-4)
    assert grid_cells(store, "auroc")["study"].isna().all()
    wide = grid_cells(store, "accuracy", with_study_only=True)
    study_only = wide[wide["n"] == 0]
    assert len(study_only) > 0 and set(study_only["arch"]) == {"resnet50"}
    assert study_only["study"].notna().all()


def test_the_studys_squares_sit_on_the_row_of_our_runs_of_that_setting(store):
    # Our deit_tiny synthetic_base on a set, scratch only: the study's imagenet and chestmnist
    # squares of synthetic_base go on that row, not on a set-less row of their own.
    y = labels()
    add_run(store, "synthetic_base", 0, probs_with_accuracy(y, 0.8, 0), y, arch="deit_tiny",
            synthetic="cg")
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 1), y, arch="deit_tiny")
    wide = grid_cells(store, "accuracy", with_study_only=True)
    synthetic_base = wide[wide["setting"] == "synthetic_base"]
    assert synthetic_base["row"].nunique() == 1
    assert sorted(synthetic_base["init"]) == ["chestmnist", "imagenet", "scratch"]
    assert set(synthetic_base["synthetic"]) == {"cg"}
    nobody = wide[wide["setting"] == "synthetic_ft"]  # a row nobody ran: the study's alone
    assert len(nobody) == 3 and nobody["synthetic"].isna().all() and nobody["n"].eq(0).all()


def test_a_profile_filter_and_an_unknown_metric(contrast):
    store = contrast
    assert grid_cells(store, "accuracy", profile="quick").empty
    assert len(grid_cells(store, "accuracy", profile="smoke")) == 3
    with pytest.raises(SpecError, match="unknown metric"):
        grid_cells(store, "loss")


def test_the_csv_has_one_line_per_cell(contrast):
    store = contrast
    cells = grid_cells(store, "f1")
    text = grid_csv(cells, "f1")
    assert len(text.strip().splitlines()) == 1 + len(cells)
    assert text.splitlines()[0].endswith(",metric")


def test_a_cells_detail_has_its_runs_curves_confusion_and_wrong_images(contrast):
    store, names = contrast, CONTRAST
    cells = grid_cells(store, "accuracy")
    detail = cell_detail(store, cell_keys(cells, names["worse"]))
    assert sorted(detail.runs["seed"]) == [0, 1, 2]
    assert len(detail.epochs) == 9 and set(detail.epochs["seed"]) == {0, 1, 2}
    assert detail.confusion.to_numpy().sum() == 3 * len(labels())
    right = np.trace(detail.confusion.to_numpy()) / detail.confusion.to_numpy().sum()
    assert right == pytest.approx(row(cells, names["worse"])["mean"])
    wrong = wrong_images(detail, limit=500)
    share = (wrong["seeds_wrong"] / wrong["seeds"]).tolist()
    assert len(wrong) > 0 and min(share) > 0 and share == sorted(share, reverse=True)
    assert (wrong["wrong"] == ((wrong["mean_prob"] >= 0.5).astype(int) != wrong["label"])).all()
    assert wrong["wrong"].iloc[0] and wrong["seeds"].eq(3).all()


def test_bits_are_rebuilt_for_runs_stored_before_the_migration(tmp_path):
    import duckdb
    path = tmp_path / "old.duckdb"
    store = Store(path)
    y = labels()
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    add_run(store, "synthetic_base", 0, probs_with_accuracy(y, 0.5, 1), y, synthetic="s")
    want = grid_cells(store, "accuracy")
    with duckdb.connect(str(path)) as con:  # the file as schema version 2 left it
        con.execute("DROP TABLE run_correct")
        for table in ("bundles", "replicates"):  # and without what version 4 added
            con.execute(f"DROP TABLE {table}")
        for table, column in (("runs", "origin"), ("runs", "context_json"),
                              ("synthetic_sets", "content_sha256"), ("synthetic_sets", "origin"),
                              ("runs", "recipe"), ("runs", "recipe_label")):  # and version 5
            con.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        con.execute("DELETE FROM schema_version WHERE version >= 3")
    migrated = grid_cells(Store(path), "accuracy")
    assert Store(path).schema_version() == store_mod.MIGRATIONS[-1][0]
    assert migrated["paired_seeds"].tolist() == [0, 1]
    assert migrated[["wins", "losses"]].equals(want[["wins", "losses"]])
    assert migrated["losses"].iloc[1] > migrated["wins"].iloc[1]


def test_the_scratch_store_is_consistent_with_its_own_predictions(tmp_path):
    store = Store(tmp_path / "bench.duckdb")
    counts = fill_scratch_store(store, n_runs=96, n_preds_per_run=40, seed=3)
    assert counts["runs"] == 96 and counts["predictions"] == 96 * 40
    cells = grid_cells(store, "accuracy")
    assert len(cells) == 48 and (cells["n"] == 2).all()
    one = cells.iloc[-1]
    detail = cell_detail(store, cell_keys(cells, one["cell"]))
    right = np.trace(detail.confusion.to_numpy()) / detail.confusion.to_numpy().sum()
    assert right == pytest.approx(one["mean"])
    assert len(detail.epochs) == 2 * 5
    again = Store(tmp_path / "again.duckdb")
    fill_scratch_store(again, n_runs=96, n_preds_per_run=40, seed=3)
    assert grid_cells(again, "auroc")["mean"].tolist() == pytest.approx(
        grid_cells(store, "auroc")["mean"].tolist())


def test_marks_read_p_adjusted_over_every_tested_cell_of_the_table(contrast):
    from synthmed_core.analysis.corrections import adjust_p
    store = contrast
    for correction in ("holm", "bh", "none"):
        cells = grid_cells(store, "accuracy", correction=correction)
        want = adjust_p(cells["p_value"].astype(float), correction)
        np.testing.assert_allclose(cells["p_adjusted"], want, equal_nan=True)
        assert (cells["significant"] == (cells["p_adjusted"] < 0.05)).all()
        assert (cells["p_adjusted"].dropna() >= cells["p_value"].dropna() - 1e-15).all()


def test_the_headline_arch_is_the_one_with_the_most_seeds_per_cell_then_the_most_runs():
    # grid order is alphabetical: deit_tiny (one seed per cell, four cells) would come first
    cells = pd.DataFrame({
        "arch": ["deit_tiny"] * 4 + ["resnet18"] * 2 + ["resnet50"] * 3 + ["vit_small"],
        "n": [1, 1, 1, 1, 3, 3, 3, 0, 0, 0]})  # n = 0: cells only the study ran
    assert archs_by_seeds(cells) == ["resnet18", "resnet50", "deit_tiny", "vit_small"]
