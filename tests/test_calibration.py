"""Calibration of a cell on val and test: hand-checkable reliability bins, ECE, accuracy by
threshold, and the page's tab."""
from __future__ import annotations

import numpy as np
import pytest

from synthmed_core.analysis.calibration import (accuracy_by_threshold, cell_calibration,
                                                expected_calibration_error, reliability)


def test_reliability_bins_hold_mean_prediction_observed_share_and_count():
    table = reliability([0, 1, 1, 1], [0.05, 0.05, 0.95, 0.95], n_bins=10)
    assert table["count"].tolist() == [2, 2]
    assert table["mean_prob"].tolist() == pytest.approx([0.05, 0.95])
    assert table["frac_pneumonia"].tolist() == pytest.approx([0.5, 1.0])


def test_ece_is_the_count_weighted_gap_and_zero_when_calibrated():
    table = reliability([0, 1, 1, 1], [0.05, 0.05, 0.95, 0.95], n_bins=10)
    assert expected_calibration_error(table) == pytest.approx((2 * 0.45 + 2 * 0.05) / 4)
    y = np.array([0] * 8 + [1] * 2 + [0] * 2 + [1] * 8)
    p = np.array([0.2] * 10 + [0.8] * 10)
    assert expected_calibration_error(reliability(y, p)) == pytest.approx(0.0)


def test_accuracy_by_threshold_counts_pneumonia_at_or_above_the_threshold():
    acc = accuracy_by_threshold([0, 1, 1], [0.2, 0.5, 0.9], [0.0, 0.5, 0.6, 1.0])
    assert acc.tolist() == pytest.approx([2 / 3, 1.0, 2 / 3, 1 / 3])


def test_a_probability_of_one_falls_in_the_last_bin():
    assert reliability([1], [1.0], n_bins=10)["bin_lo"].tolist() == [pytest.approx(0.9)]


def test_the_cell_detail_has_calibration_for_val_and_test(data_root):
    from synthmed_core.explorer.cell_detail import cell_detail
    from synthmed_core.explorer.heatmap_view import cell_keys, grid_cells
    from synthmed_core.store import Store

    from grid_helpers import fill_contrast
    store = Store()
    names = fill_contrast(store)
    detail = cell_detail(store, cell_keys(grid_cells(store), names["base"]))
    assert set(detail.reliability["split"]) == {"val", "test"}
    assert set(detail.ece) == {"val", "test"} and 0 <= detail.ece["test"] <= 1
    at_half = detail.thresholds[(detail.thresholds["split"] == "test")
                                & (detail.thresholds["threshold"] == 0.5)]
    assert at_half["accuracy"].iloc[0] == pytest.approx(detail.runs["accuracy"].mean())


def test_empty_predictions_give_empty_tables():
    import pandas as pd
    bins, curves, ece = cell_calibration({"test": pd.DataFrame(columns=["label", "prob"])})
    assert bins.empty and curves.empty and ece == {}


def test_youden_picks_the_threshold_that_separates_the_classes_best():
    from synthmed_core.analysis.calibration import youden_threshold
    y = [0, 0, 0, 1, 1, 1]
    p = [0.1, 0.2, 0.35, 0.3, 0.8, 0.9]
    t = youden_threshold(y, p)
    assert t == pytest.approx(0.8)  # J = 2/3 - 0 at 0.8, the best (0.3 gives 1 - 1/3 too;
    # roc_curve lists the higher first, so ties go to the stricter threshold)


def test_the_sensitivity_rule_keeps_the_highest_threshold_that_reaches_the_target():
    from synthmed_core.analysis.calibration import sensitivity_threshold
    y = [1] * 20 + [0] * 5
    p = list(np.linspace(0.3, 0.99, 20)) + [0.1] * 5
    t = sensitivity_threshold(y, p, 0.95)
    assert ((np.array(p[:20]) >= t).mean()) >= 0.95
    assert ((np.array(p[:20]) >= np.nextafter(t, 1)).mean()) < 0.95


def test_at_half_keeps_order_and_moves_the_decisions_of_a_threshold_to_half():
    from synthmed_core.analysis.calibration import at_half
    p = np.array([0.05, 0.2, 0.3, 0.31, 0.9])
    q = at_half(p, 0.3)
    assert np.all(np.diff(q) > 0) and ((q >= 0.5) == (p >= 0.3)).all()
    assert q[2] == pytest.approx(0.5)


def test_a_finished_run_stores_test_metrics_at_its_val_threshold_beside_those_at_half(tmp_path):
    from synthmed_core.analysis.calibration import VAL_THRESHOLD_SPLIT
    from synthmed_core.analysis.metrics import run_metrics
    from synthmed_core.store import Store

    from grid_helpers import add_run, labels, probs_with_accuracy
    store = Store(tmp_path / "t.duckdb")
    y = labels()
    p = probs_with_accuracy(y, 0.8, 3)
    rid = add_run(store, "base", 0, p, y)
    t = store.metric_of([rid], VAL_THRESHOLD_SPLIT, "threshold")[rid]
    acc = store.metric_of([rid], VAL_THRESHOLD_SPLIT, "accuracy")[rid]
    assert acc == pytest.approx(run_metrics(y, p, threshold=t)["accuracy"])
    assert store.run(rid)["metrics"]["accuracy"] == pytest.approx(run_metrics(y, p)["accuracy"])


def test_the_new_profile_field_leaves_every_earlier_run_id_unchanged():
    from synthmed_core.grid import RunSpec, make_run_spec
    spec = make_run_spec("resnet18", "scratch", "base", 0, "quick")
    earlier = spec.to_dict()  # as a spec was written before val_threshold existed
    assert "val_threshold" not in earlier["profile"]
    assert RunSpec.from_dict(earlier).run_id == spec.run_id
    assert RunSpec.from_dict(earlier).profile.val_threshold == "youden"
    other = make_run_spec("resnet18", "scratch", "base", 0, "quick", val_threshold="sens95")
    assert other.run_id != spec.run_id and other.recipe_label == "quick val_threshold=sens95"


def test_sensitivity_and_specificity_on_val_and_test_show_which_class_the_gap_is_in():
    import pandas as pd

    from synthmed_core.explorer.shift import rates_by_split

    def rows(run, labels, probs):
        return pd.DataFrame({"run_id": run, "idx": range(len(labels)), "label": labels,
                             "prob": probs})
    # val: every image right at 0.5; test: the same pneumonia images, but half the normal
    # images scored 0.6 (called pneumonia): only specificity falls
    val = rows("r", [1, 1, 1, 0], [0.9, 0.8, 0.7, 0.2])
    test = rows("r", [1, 1, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.6])
    out = rates_by_split({"val": val, "test": test}, {"r": 0.65}).set_index(
        ["threshold", "split"])
    assert out.loc[("0.5", "val"), ["sensitivity", "specificity"]].tolist() == [1.0, 1.0]
    assert out.loc[("0.5", "test"), ["sensitivity", "specificity"]].tolist() == [1.0, 0.5]
    assert out.loc[("val's", "test"), ["sensitivity", "specificity"]].tolist() == [1.0, 1.0]
    assert out.loc[("0.5", "test"), "normal_share"] == pytest.approx(0.4)


def test_report_prints_each_cells_sensitivity_and_specificity_on_val_and_test(data_root,
                                                                              capsys):
    from grid_helpers import fill_contrast

    from synthmed_core.cli import main as cli
    from synthmed_core.store import Store
    fill_contrast(Store())
    assert cli(["report", "--sens-spec", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "| cell | seeds | threshold | val sensitivity | val specificity | test sensitivity |" \
        in out
    assert "| resnet50/scratch/base (smoke) | 3 | 0.5 |" in out
    assert "| resnet50/scratch/base (smoke) | 3 | val's |" in out


def test_a_cells_detail_carries_its_val_and_test_rates_at_both_thresholds(tmp_path):
    from grid_helpers import fill_contrast

    from synthmed_core.explorer.cell_detail import cell_detail
    from synthmed_core.store import Store
    store = Store(tmp_path / "r.duckdb")
    fill_contrast(store)
    detail = cell_detail(store, {"arch": "resnet50", "init": "scratch", "setting": "base",
                                 "ratio": None, "synthetic": None, "profile": "smoke",
                                 "recipe": store.runs()["recipe"].iloc[0]})
    assert detail.rates[["threshold", "split"]].values.tolist() == [
        ["0.5", "val"], ["0.5", "test"], ["val's", "val"], ["val's", "test"]]
    assert (detail.rates["runs"] == 3).all()
