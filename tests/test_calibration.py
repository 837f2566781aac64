"""Calibration of a cell on val and test: hand-checkable reliability bins, ECE, accuracy by
threshold, and the page's tab."""
from __future__ import annotations

import numpy as np
import pytest

from synthmed_core.calibration import (accuracy_by_threshold, cell_calibration,
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
    from synthmed_core.cell_detail import cell_detail
    from synthmed_core.store import Store

    from grid_helpers import fill_contrast
    from synthmed_core.grid_view import cell_keys, grid_cells
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
