"""The study's conclusions as paired contrasts: which cells each claim compares, the verdict read
from the 95% interval of the image-level paired test, and the study's figures beside it."""
from __future__ import annotations

import pytest

from synthmed_core.analysis.claims import (CLAIMS, COLUMNS, check_claims, format_claims,
                                           study_figures, verdict)
from synthmed_core.analysis.compare import CellKey, compare_cells
from synthmed_core.cli import main as cli
from synthmed_core.explorer.grid_view import grid_cells
from synthmed_core.store import Store

from grid_helpers import add_run, fill_contrast, labels, probs_with_accuracy


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "claims.duckdb")


def claim_rows(df, key):
    return df[df["claim"] == key]


@pytest.mark.parametrize("expect,diff,p,want", [
    ("worse", -0.03, 0.01, "supported"), ("worse", 0.03, 0.01, "contradicted"),
    ("worse", -0.03, 0.20, "inconclusive"),
    ("better", 0.03, 0.01, "supported"), ("better", -0.03, 0.01, "contradicted"),
    ("better", 0.03, 0.20, "inconclusive"),
    ("not better", 0.03, 0.20, "supported"), ("not better", -0.03, 0.01, "supported"),
    ("not better", 0.03, 0.01, "contradicted"),
])
def test_the_verdict_reads_significance_and_sign_against_the_claimed_direction(expect, diff, p,
                                                                                  want):
    assert verdict(expect, diff, p) == want


def test_an_unknown_expectation_is_refused():
    with pytest.raises(ValueError, match="unknown expectation"):
        verdict("sideways", 0.0, 0.5)


def test_a_clearly_worse_synthetic_only_cell_supports_the_studys_claim(store):
    fill_contrast(store)  # synthetic_base ~50% right vs base ~80%, augment@1 = base exactly
    df = check_claims(store)
    only = claim_rows(df, "synthetic_only").iloc[0]
    res = compare_cells(store, CellKey.parse("resnet50/scratch/synthetic_base/fake-set", "smoke"),
                        CellKey.parse("resnet50/scratch/base", "smoke"), n_boot=0)
    assert only["verdict"] == "supported" and only["seeds"] == 3
    assert only["synthetic"] == "fake-set" and (only["a"], only["b"]) == ("synthetic_base", "base")
    assert [only["diff"], only["lo"], only["hi"], only["p"]] == pytest.approx(
        [res["accuracy_diff"][k] for k in ("diff", "lo", "hi", "p")])
    grid = grid_cells(store, "accuracy")  # the same test as the grid's mark of that cell
    cell = grid[grid["cell"] == "resnet50/scratch/synthetic_base/fake-set (smoke)"].iloc[0]
    assert only["p"] == pytest.approx(cell["p_value"]) and only["test"] == cell["test"]
    same = claim_rows(df, "augment_1").iloc[0]  # identical predictions: no gain, claim holds
    assert same["diff"] == 0 and same["verdict"] == "supported"


def test_a_synthetic_only_cell_better_than_base_contradicts_it(store):
    y = labels()
    for seed in (0, 1, 2):
        add_run(store, "base", seed, probs_with_accuracy(y, 0.70, seed), y)
        add_run(store, "synthetic_base", seed, probs_with_accuracy(y, 0.95, 50 + seed), y,
                synthetic="good-set")
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


def test_the_cli_prints_the_claims_as_markdown(data_root, capsys):
    fill_contrast(Store())
    assert cli(["claims", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "**Training on synthetic images alone is worse than on real images**" in out
    assert "| resnet50 | scratch | smoke | fake-set | 3 |" in out and "supported" in out


def test_with_one_seed_the_verdict_follows_the_grids_exact_mcnemar(store):
    fill_contrast(store, seeds=(0,))
    only = claim_rows(check_claims(store), "synthetic_only").iloc[0]
    grid = grid_cells(store, "accuracy")
    cell = grid[grid["cell"] == "resnet50/scratch/synthetic_base/fake-set (smoke)"].iloc[0]
    assert only["test"] == cell["test"] == "exact McNemar (1 seed)"
    assert only["p"] == pytest.approx(cell["p_value"])
