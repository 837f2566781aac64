"""The study's conclusions as paired contrasts: which cells each claim compares, the evidence on
accuracy at 0.5, accuracy at the val-picked threshold and AUROC side by side (seed-aware with
several seeds, image-only and named so with one), Holm within each metric, TOST against the
declared margins for "no gain" claims, whether the metrics agree, and the generator as the unit
where two sets of one method were checked."""
from __future__ import annotations

import json

import numpy as np
import pytest

from synthmed_core.explorer.claims import (CLAIMS, COLUMNS, MARGINS, check_claims, overall,
                                           study_figures, verdict)
from synthmed_core.explorer.claims_text import claims_table, format_claims
from synthmed_core.analysis.compare import CellKey, compare_cells
from synthmed_core.analysis.corrections import adjust_p
from synthmed_core.cli import main as cli
from synthmed_core.explorer.heatmap_view import grid_cells
from synthmed_core.store import Store

from grid_helpers import (CONTRAST, add_run, contrast_root, fill_contrast, labels,
                          probs_with_accuracy)

METRICS = ["accuracy", "accuracy_val", "auroc"]


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "claims.duckdb")


def add_seeds(store: Store, setting: str, accuracy: float, offset: int, **cell) -> None:
    """Seeds 0-2 of a cell whose runs each get ``accuracy`` of the images right (drawn with
    seeds offset + 0..2)."""
    y = labels()
    for seed in (0, 1, 2):
        add_run(store, setting, seed, probs_with_accuracy(y, accuracy, offset + seed), y, **cell)


def claim_rows(df, key, metric="accuracy"):
    return df[(df["claim"] == key) & (df["metric"] == metric)]


@pytest.mark.parametrize("expect,diff,p,equivalent,want", [
    ("worse", -0.03, 0.01, False, "supported"), ("worse", 0.03, 0.01, False, "contradicted"),
    ("worse", -0.03, 0.20, False, "inconclusive"), ("worse", 0.001, 0.8, True, "inconclusive"),
    ("better", 0.03, 0.01, False, "supported"), ("better", -0.03, 0.01, False, "contradicted"),
    ("better", 0.03, 0.20, False, "inconclusive"),
    ("not better", 0.03, 0.20, False, "inconclusive"),  # no gain shown is not "no gain"
    ("not better", 0.003, 0.60, True, "supported"),  # TOST: inside the margin
    ("not better", -0.03, 0.01, False, "supported"),  # a significant loss is no gain
    ("not better", 0.03, 0.01, False, "contradicted"),
])
def test_the_verdict_reads_significance_sign_and_equivalence_against_the_claimed_direction(
        expect, diff, p, equivalent, want):
    assert verdict(expect, diff, p, equivalent) == want


def test_an_unknown_expectation_is_refused():
    with pytest.raises(ValueError, match="unknown expectation"):
        verdict("sideways", 0.0, 0.5)


def test_the_overall_verdict_says_robust_or_which_metric_carries_it():
    assert overall(dict.fromkeys(METRICS, "supported")) == "robust: supported"
    assert overall(dict.fromkeys(METRICS, "inconclusive")) == "inconclusive on every metric"
    mixed = overall({"accuracy": "contradicted", "accuracy_val": "inconclusive",
                     "auroc": "inconclusive"})
    assert mixed == ("contradicted on accuracy at 0.5; inconclusive on accuracy at val's "
                     "threshold, AUROC")


def test_margins_are_declared_once_for_every_verdict_metric():
    assert MARGINS == {"accuracy": 0.02, "accuracy_val": 0.02, "auroc": 0.01}


def test_each_contrast_is_checked_on_the_three_metrics_with_seeds_as_the_unit(contrast):
    store = contrast  # synthetic_base ~50% right vs base ~80%, augment@1 = base exactly
    df = check_claims(store)
    only = df[df["claim"] == "synthetic_only"]
    assert only["metric"].tolist() == METRICS and set(only["unit"]) == {"seed"}
    assert set(only["test"]) == {"seed-aware t (Obuchowski-Rockette variance, k-1 df)"}
    assert (only["df"] == 2).all() and (only["mdd"] > 0).all()
    # a model at chance picks wildly different thresholds on val from seed to seed: that
    # spread leaves the val-threshold metric inconclusive at three seeds
    assert only["verdict"].tolist() == ["supported", "inconclusive", "supported"]
    assert set(only["overall"]) == {
        "supported on accuracy at 0.5, AUROC; inconclusive on accuracy at val's threshold"}


def test_the_accuracy_evidence_is_compares_and_the_grids_seed_aware_test(contrast):
    store = contrast
    only = claim_rows(check_claims(store), "synthetic_only").iloc[0]
    res = compare_cells(store, CellKey.parse("resnet50/scratch/synthetic_base/fake-set", "smoke"),
                        CellKey.parse("resnet50/scratch/base", "smoke"), n_boot=0)
    ev = res["evidence"]["accuracy"]
    assert [only[k] for k in ("diff", "lo", "hi", "p", "mdd")] == pytest.approx(
        [ev[k] for k in ("diff", "lo", "hi", "p", "mdd")])
    grid = grid_cells(store, "accuracy")  # the same test marks that cell of the grid
    cell = grid[grid["cell"] == "resnet50/scratch/synthetic_base/fake-set (smoke)"].iloc[0]
    assert only["p"] == pytest.approx(cell["p_value"]) and only["test"] == cell["test"]
    assert [only["lo"], only["hi"]] == pytest.approx([cell["diff_lo"], cell["diff_hi"]])


def test_an_identical_cell_shows_no_gain_by_equivalence(contrast):
    store = contrast
    same = check_claims(store)
    same = same[same["claim"] == "augment_1"]
    assert (same["diff"] == 0).all() and same["equivalent"].all()
    assert set(same["verdict"]) == {"supported"}


def test_no_gain_without_equivalence_is_inconclusive_not_supported(store):
    """A noisy augment cell: its difference is not significant, and its interval is far wider
    than the margin, so "no clear gain" is not shown."""
    y = labels()
    for seed in (0, 1, 2):
        add_run(store, "base", seed, probs_with_accuracy(y, 0.80, seed), y)
        acc = (0.72, 0.80, 0.88)[seed]  # a seed-to-seed spread of 8 points
        add_run(store, "augment", seed, probs_with_accuracy(y, acc, 40 + seed), y, ratio=1.0,
                synthetic="noisy-set")
    row = claim_rows(check_claims(store), "augment_1").iloc[0]
    assert row["p_adjusted"] > 0.05 and not row["equivalent"]
    assert row["hi"] - row["lo"] > 2 * MARGINS["accuracy"]
    assert row["verdict"] == "inconclusive"


def test_holm_adjusts_across_the_claims_within_each_metric(contrast):
    store = contrast
    df = check_claims(store)
    for metric in METRICS:
        part = df[df["metric"] == metric]
        assert part["p_adjusted"].tolist() == pytest.approx(
            adjust_p(part["p"].to_numpy(), "holm").tolist(), nan_ok=True)


def test_a_verdict_carried_by_one_metric_says_so(store):
    """Cell a ranks every image as base does (same AUROC) but its probabilities are cubed: at
    0.5 it calls many pneumonia images normal; at its own val-picked threshold it does not."""
    y = labels()
    for seed in (0, 1, 2):
        p = probs_with_accuracy(y, 0.85, seed)
        add_run(store, "base", seed, p, y)
        add_run(store, "synthetic_ft", seed, p ** 3, y, synthetic="a-set")
    rows = check_claims(store)
    rows = rows[rows["claim"] == "synthetic_ft"].set_index("metric")
    assert rows.loc["accuracy", "verdict"] == "supported"  # worse at 0.5
    assert rows.loc["auroc", "diff"] == pytest.approx(0.0)
    assert rows.loc["auroc", "verdict"] == "inconclusive" and rows.loc["auroc", "equivalent"]
    assert rows["overall"].iloc[0].startswith("supported on accuracy at 0.5; inconclusive on")


def test_a_synthetic_only_cell_better_than_base_contradicts_it(store):
    add_seeds(store, "base", 0.70, 0)
    add_seeds(store, "synthetic_base", 0.95, 50, synthetic="good-set")
    only = claim_rows(check_claims(store), "synthetic_only").iloc[0]
    assert only["verdict"] == "contradicted" and only["lo"] > 0


def test_claims_are_checked_only_where_both_cells_share_seeds_and_set(store):
    y = labels()
    add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    add_run(store, "synthetic_base", 1, probs_with_accuracy(y, 0.6, 1), y, synthetic="a-set")
    add_run(store, "augment", 0, probs_with_accuracy(y, 0.8, 2), y, ratio=3.0, synthetic="a-set")
    add_run(store, "augment", 0, probs_with_accuracy(y, 0.8, 3), y, ratio=1.0, synthetic="b-set")
    df = check_claims(store)
    assert claim_rows(df, "synthetic_only").empty  # seed 1 against seed 0: nothing matched
    assert claim_rows(df, "more_synthetic").empty  # x3 and x1 exist, but on different sets
    assert claim_rows(df, "augment_3")["synthetic"].tolist() == ["a-set"]
    assert claim_rows(df, "augment_3")["seeds"].tolist() == [1]


def test_an_empty_store_has_no_rows_and_says_what_is_needed(store):
    df = check_claims(store)
    assert df.empty and list(df.columns) == COLUMNS
    assert "No claim can be checked yet" in format_claims(df)


def test_each_study_claim_carries_the_studys_own_figures():
    only = next(c for c in CLAIMS if c.key == "synthetic_only")
    assert "resnet50 scratch 0.662 vs 0.837" in study_figures(only)
    assert "deit_tiny scratch 0.367 vs 0.832" in study_figures(only)
    beyond = [c for c in CLAIMS if c.source == "beyond"]
    assert beyond and all(study_figures(c) == "" for c in beyond)  # the study has no such cells


def test_the_cli_prints_every_metric_side_by_side_with_the_margins(data_root, prefilled, capsys):
    prefilled(contrast_root, data_root)
    assert cli(["claims", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "**Training on synthetic images alone is worse than on real images**" in out
    assert ("| arch | init | profile | set | seeds | accuracy at 0.5 (a - b) | accuracy at "
            "val's threshold (a - b) | AUROC (a - b) | verdict |") in out
    assert "| resnet50 | scratch | smoke | fake-set | 3 |" in out
    assert "| supported on accuracy at 0.5, AUROC; inconclusive on accuracy at val's" in out
    assert "±0.02 accuracy at 0.5" in out and "±0.01 AUROC" in out


def test_the_cli_compact_view_shows_one_metric_and_json_keeps_working(data_root, prefilled, capsys):
    prefilled(contrast_root, data_root)
    assert cli(["claims", "--profile", "smoke", "--metric", "auroc"]) == 0
    out = capsys.readouterr().out
    assert "image-only p | MDD | TOST ±margin p (holm) | verdict |" in out
    assert "accuracy at 0.5 (a - b)" not in out and "±0.01 AUROC" in out
    assert cli(["claims", "--profile", "smoke", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["metric"] for r in rows} == set(METRICS)


def test_with_one_seed_the_image_only_test_is_shown_and_named_so(store):
    fill_contrast(store, seeds=(0,))
    df = check_claims(store)
    only = claim_rows(df, "synthetic_only").iloc[0]
    grid = grid_cells(store, "accuracy")
    cell = grid[grid["cell"] == "resnet50/scratch/synthetic_base/fake-set (smoke)"].iloc[0]
    assert only["unit"] == "model" and np.isnan(only["mdd"])
    assert only["test"] == cell["test"]
    assert only["test"].startswith("image-only, 1 seed: these trained models, not the recipe")
    assert only["p"] == pytest.approx(cell["p_value"])
    assert "† one seed: no seed-level test" in format_claims(df)
    assert "supported†" in format_claims(df)


def _register(store: Store, name: str, method: str) -> None:
    store.register_synthetic_set(name, {"name": name, "method": method, "n": 10,
                                        "counts": {"normal": 5, "pneumonia": 5}}, "/nowhere")


def test_two_sets_of_one_generator_method_add_a_row_with_the_set_as_the_unit(store):
    add_seeds(store, "base", 0.80, 0)
    add_seeds(store, "synthetic_base", 0.70, 10, synthetic="gan-a")
    add_seeds(store, "synthetic_base", 0.76, 20, synthetic="gan-b")
    _register(store, "gan-a", "cyclegan")
    _register(store, "gan-b", "cyclegan")
    df = check_claims(store)
    rows = df[(df["claim"] == "synthetic_only") & (df["unit"] == "generator")]
    assert rows["metric"].tolist() == METRICS
    row = rows.iloc[0]
    per_set = claim_rows(df, "synthetic_only")
    per_set = per_set[per_set["unit"] == "seed"].set_index("synthetic")
    assert row["synthetic"] == "cyclegan (2 sets)" and row["df"] == 1  # two sets: one df
    assert row["diff"] == pytest.approx(per_set["diff"].mean())
    # the spread between the sets is the point: the interval is wider than either set's own
    assert row["hi"] - row["lo"] > (per_set["hi"] - per_set["lo"]).max()
    assert "per set a - b: gan-a" in row["note"] and "a on gan-a - a on gan-b:" in row["note"]
    assert "- cyclegan (2 sets) (resnet50 scratch smoke, accuracy at 0.5): per set" in \
        format_claims(df)


def test_sets_of_different_methods_are_not_pooled(contrast):
    store = contrast
    add_seeds(store, "synthetic_base", 0.6, 30, synthetic="other-set")
    _register(store, "fake-set", "cyclegan")
    _register(store, "other-set", "ddpm")
    assert "generator" not in set(check_claims(store)["unit"])


def test_the_pages_table_has_one_row_per_contrast_and_a_column_per_metric(contrast):
    store = contrast
    table = claims_table(check_claims(store))
    only = table[table["statement"].str.startswith("Training on synthetic images alone")]
    assert len(only) == 1 and only["verdict"].iloc[0].startswith("supported on accuracy at 0.5")
    assert only["auroc"].iloc[0].endswith(": supported")
    assert only["accuracy_val"].iloc[0].endswith(": inconclusive")
