"""Run metrics, seed aggregation and paired tests on hand-checkable cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from synthmed_core.analysis.metrics import (aggregate, auroc_rows, bootstrap_auroc_diff,
                                            image_paired_test, mcnemar, paired_compare, run_metrics)


def test_a_perfect_classifier_scores_one_everywhere():
    m = run_metrics([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert {k: m[k] for k in ("accuracy", "auroc", "f1", "sensitivity", "specificity")} == {
        "accuracy": 1.0, "auroc": 1.0, "f1": 1.0, "sensitivity": 1.0, "specificity": 1.0}
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (2, 0, 0, 2)


def test_a_known_confusion_matrix_gives_its_rates():
    # 4 normal (3 right, 1 called pneumonia), 6 pneumonia (4 right, 2 missed)
    labels = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    probs = [0.1, 0.2, 0.3, 0.7, 0.9, 0.8, 0.6, 0.55, 0.4, 0.2]
    m = run_metrics(labels, probs)
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (3, 1, 2, 4)
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["sensitivity"] == pytest.approx(4 / 6)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))


def test_the_threshold_decides_pneumonia_at_or_above_it():
    m = run_metrics([0, 1], [0.5, 0.7], threshold=0.7)
    assert (m["tn"], m["tp"]) == (1, 1)
    assert run_metrics([0, 1], [0.5, 0.7])["fp"] == 1


def test_auroc_is_nan_when_only_one_class_is_present():
    m = run_metrics([1, 1, 1], [0.2, 0.6, 0.9])
    assert math.isnan(m["auroc"]) and math.isnan(m["specificity"])
    assert m["sensitivity"] == pytest.approx(2 / 3)


def test_mismatched_labels_and_probs_are_refused():
    with pytest.raises(ValueError, match="matching"):
        run_metrics([0, 1, 1], [0.2, 0.6])


def test_aggregate_of_one_two_three_uses_the_student_t_interval():
    a = aggregate([1, 2, 3])
    lo, hi = stats.t.interval(0.95, df=2, loc=2.0, scale=1.0 / math.sqrt(3))
    assert (a["mean"], a["std"], a["n"]) == (2.0, 1.0, 3)
    assert (a["lo"], a["hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert a["hi"] - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)


def test_aggregate_of_one_value_has_no_spread_or_interval():
    a = aggregate([0.8])
    assert a["mean"] == 0.8 and a["n"] == 1
    assert all(math.isnan(a[k]) for k in ("std", "lo", "hi"))


def test_aggregate_of_identical_values_has_a_zero_width_interval():
    assert aggregate([0.5, 0.5, 0.5]) == {"mean": 0.5, "std": 0.0, "lo": 0.5, "hi": 0.5, "n": 3}


def test_aggregate_leaves_out_nan_and_handles_no_values():
    assert aggregate([0.7, float("nan"), 0.9])["n"] == 2
    assert aggregate([])["n"] == 0 and math.isnan(aggregate([])["mean"])


def test_mcnemar_with_ten_discordant_pairs_all_one_way():
    a = np.array([True] * 10 + [True] * 5 + [False] * 3)
    b = np.array([False] * 10 + [True] * 5 + [False] * 3)
    r = mcnemar(a, b)
    assert (r["b"], r["c"], r["n"]) == (10, 0, 18)
    assert r["p_value"] == pytest.approx(2 * 0.5 ** 10)


def test_mcnemar_without_discordant_pairs_has_p_one():
    same = np.array([True, False, True])
    assert mcnemar(same, same) == {"b": 0, "c": 0, "n": 3, "p_value": 1.0}


def test_vectorised_auroc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (5, 60))
    s = np.round(rng.random((5, 60)), 1)  # many ties
    got = auroc_rows(y, s)
    want = [roc_auc_score(y[i], s[i]) for i in range(5)]
    np.testing.assert_allclose(got, want)
    assert math.isnan(auroc_rows(np.ones((1, 4)), np.zeros((1, 4)))[0])


def test_bootstrap_of_a_model_against_itself_is_zero():
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 2, 100), rng.random(100)
    r = bootstrap_auroc_diff(y, p, p, n_boot=200)
    assert (r["diff"], r["lo"], r["hi"], r["p"]) == (0.0, 0.0, 0.0, 1.0)


def test_bootstrap_finds_a_clearly_better_model_and_is_reproducible():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    good = np.clip(y * 0.5 + rng.random(300) * 0.6, 0, 1)
    noise = rng.random(300)
    r = bootstrap_auroc_diff(y, good, noise, n_boot=500, seed=3)
    assert r["diff"] == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, noise))
    assert 0 < r["lo"] < r["diff"] < r["hi"]
    assert r["p"] < 0.01 and r["n_boot"] == 500
    assert bootstrap_auroc_diff(y, good, noise, n_boot=500, seed=3) == r


def test_paired_compare_pools_mcnemar_over_matched_seeds():
    y = np.array([0, 0, 1, 1, 1])
    a = np.array([[0.1, 0.2, 0.9, 0.9, 0.9],    # seed 0: all right
                  [0.1, 0.2, 0.9, 0.9, 0.9]])   # seed 1: all right
    b = np.array([[0.9, 0.2, 0.9, 0.1, 0.9],    # seed 0: 2 wrong
                  [0.1, 0.2, 0.9, 0.1, 0.9]])   # seed 1: 1 wrong
    r = paired_compare(y, a, b, n_boot=100)
    assert (r["n_seeds"], r["n_images"]) == (2, 5)
    assert (r["mcnemar"]["b"], r["mcnemar"]["c"], r["mcnemar"]["n"]) == (3, 0, 10)
    assert r["mcnemar"]["p_value"] == pytest.approx(2 * 0.5 ** 3)
    assert r["per_seed_p"] == pytest.approx([2 * 0.5 ** 2, 1.0])
    assert (r["accuracy_a"], r["accuracy_b"]) == (1.0, pytest.approx(0.7))
    mean_b = b.mean(axis=0)
    assert r["auroc_b"] == pytest.approx(roc_auc_score(y, mean_b))
    assert r["auroc"]["diff"] == pytest.approx(1.0 - roc_auc_score(y, mean_b))


def test_the_image_level_test_is_a_t_test_on_seed_averaged_per_image_differences():
    right_a = np.array([[1, 1, 1, 0, 1, 1, 0, 1],   # seed 0
                        [1, 1, 0, 0, 1, 1, 1, 1]])  # seed 1
    right_b = np.array([[1, 0, 1, 0, 0, 1, 0, 1],
                        [0, 0, 1, 0, 1, 1, 0, 1]])
    d = (right_a - right_b).mean(axis=0)  # per image, seed-averaged
    assert d.tolist() == [0.5, 1.0, -0.5, 0.0, 0.5, 0.0, 0.5, 0.0]
    r = image_paired_test(d.sum(), (d ** 2).sum(), d.size)
    want = stats.ttest_1samp(d, 0.0)
    assert float(r["diff"]) == pytest.approx(d.mean()) == pytest.approx(
        right_a.mean() - right_b.mean())
    assert float(r["p"]) == pytest.approx(want.pvalue)
    ci = want.confidence_interval(0.95)
    assert [float(r["lo"]), float(r["hi"])] == pytest.approx([ci.low, ci.high])


def test_the_image_level_test_without_spread():
    same = image_paired_test(0.0, 0.0, 50)
    assert float(same["p"]) == 1.0 and float(same["lo"]) == float(same["hi"]) == 0.0
    every = image_paired_test(50.0, 50.0, 50)  # b wrong on every image a gets right
    assert float(every["p"]) == 0.0 and float(every["diff"]) == 1.0


def test_paired_compare_gives_the_accuracy_difference_with_images_as_the_unit():
    y = np.array([0, 0, 1, 1, 1])
    a = np.array([[0.1, 0.2, 0.9, 0.9, 0.9], [0.1, 0.2, 0.9, 0.9, 0.9]])
    b = np.array([[0.9, 0.2, 0.9, 0.1, 0.9], [0.1, 0.2, 0.9, 0.1, 0.9]])
    acc = paired_compare(y, a, b, n_boot=50)["accuracy_diff"]
    d = np.array([0.5, 0.0, 0.0, 1.0, 0.0])  # per image, a right minus b right, seed-averaged
    assert acc["diff"] == pytest.approx(0.3)
    assert acc["p"] == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)


def test_paired_compare_refuses_unmatched_shapes():
    with pytest.raises(ValueError, match="matched"):
        paired_compare([0, 1], np.zeros((2, 2)), np.zeros((3, 2)))


def test_holm_multiplies_the_kth_smallest_p_by_m_minus_k_plus_one_and_stays_monotone():
    from synthmed_core.analysis.corrections import adjust_p
    got = adjust_p([0.01, 0.04, 0.03, 0.005], "holm")
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert got.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_benjamini_hochberg_scales_by_m_over_rank_from_the_largest_down():
    from synthmed_core.analysis.corrections import adjust_p
    got = adjust_p([0.01, 0.04, 0.03, 0.005], "bh")
    assert got.tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_untested_cells_stay_nan_and_are_not_counted_in_the_family():
    from synthmed_core.analysis.corrections import adjust_p
    got = adjust_p([0.01, float("nan"), 0.02], "holm")
    assert np.isnan(got[1]) and got[[0, 2]].tolist() == pytest.approx([0.02, 0.02])
    assert adjust_p([0.2, float("nan")], "none")[0] == 0.2
    with pytest.raises(ValueError, match="unknown correction"):
        adjust_p([0.1], "bonferroni-ish")


def test_the_vectorised_mcnemar_p_is_scipys_exact_binomial_test_at_one_half():
    from scipy import stats

    from synthmed_core.analysis.metrics import mcnemar_p
    b, c = np.meshgrid(np.arange(0, 40, 3), np.arange(0, 40, 4))
    want = [stats.binomtest(int(x), int(x + y), 0.5).pvalue if x + y else 1.0
            for x, y in zip(b.ravel(), c.ravel())]
    np.testing.assert_allclose(mcnemar_p(b.ravel(), c.ravel()), want, rtol=1e-12)


# ---- DeLong's covariance of correlated AUROCs (Sun & Xu's midrank algorithm) -----------------


def _slow_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong 1988 as written: the pairwise kernel psi(x, y) = 1 if x > y, 1/2 if equal, over
    every positive x negative pair (O(m x n)), its structural components and their covariance."""
    pos, neg = scores[:, y == 1], scores[:, y == 0]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    cov = np.cov(v10) / pos.shape[1] + np.cov(v01) / neg.shape[1]
    return psi.mean(axis=(1, 2)), cov


def test_the_midrank_delong_equals_the_pairwise_kernel_with_ties():
    from synthmed_core.analysis.delong import covariance, placements
    rng = np.random.default_rng(5)
    y = (rng.random(150) < 0.6).astype(int)
    scores = np.round(np.stack([y + rng.normal(0, s, y.size) for s in (0.8, 1.2, 2.0)]), 1)
    auc, v10, v01 = placements(y, scores)  # rounded to one decimal: many ties
    slow_auc, slow_cov = _slow_delong(y, scores)
    assert auc == pytest.approx(slow_auc)
    assert covariance(v10, v01) == pytest.approx(slow_cov)
    assert auc == pytest.approx([roc_auc_score(y, s) for s in scores])


def test_delong_reproduces_hanley_and_mcneils_ct_ratings_area():
    """Hanley & McNeil (Radiology 1982), table 1: 109 CT images rated 1 (definitely normal)
    to 5 (definitely abnormal); the area they publish is 0.893."""
    from synthmed_core.analysis.delong import placements
    normal, abnormal = [33, 6, 6, 11, 2], [3, 2, 2, 11, 33]
    ratings = np.r_[np.repeat(np.arange(1, 6), abnormal), np.repeat(np.arange(1, 6), normal)]
    y = np.r_[np.ones(51), np.zeros(58)]
    assert placements(y, ratings)[0][0] == pytest.approx(0.893, abs=5e-4)


def test_delong_variance_of_a_yes_no_test_is_that_of_the_mean_of_sensitivity_and_specificity():
    """With 0/1 scores the AUROC is (sensitivity + specificity) / 2 and each placement takes
    two values half a unit apart: the variance is [se(1-se)/(m-1) + sp(1-sp)/(n-1)] / 4."""
    from synthmed_core.analysis.delong import covariance, placements
    y = np.r_[np.ones(40), np.zeros(60)]
    called = np.r_[np.ones(30), np.zeros(10), np.ones(12), np.zeros(48)]  # se 0.75, sp 0.8
    auc, v10, v01 = placements(y, called)
    assert auc[0] == pytest.approx((0.75 + 0.8) / 2)
    want = (0.75 * 0.25 / 39 + 0.8 * 0.2 / 59) / 4
    assert covariance(v10, v01)[0, 0] == pytest.approx(want)


def test_delong_test_of_a_model_against_itself_is_zero_with_p_one():
    from synthmed_core.analysis.delong import delong_test
    y = np.r_[np.ones(30), np.zeros(20)]
    p = np.linspace(0.1, 0.9, 50)
    res = delong_test(y, p, p)
    assert res["diff"] == 0 and res["p"] == 1.0
