"""CAMs over many images: hand-checkable overlaps and row choices, a run agreeing with itself,
mean maps with n and intervals, and the CLI verb."""
from __future__ import annotations

import numpy as np
import pytest

from synthmed_core.data.real import load_real
from synthmed_core.errors import SpecError
from synthmed_core.explain import stats as cs

from explain_helpers import seeded_resnet18


def test_top_overlap_is_the_shared_share_of_the_top_pixels():
    a = np.arange(10, dtype=float)  # top 20% = pixels 8, 9
    assert cs.top_overlap(a, a) == 1.0
    assert cs.top_overlap(a, a[::-1].copy()) == 0.0
    b = a.copy()
    b[9] = -1  # b's top 2: pixels 7, 8
    assert cs.top_overlap(a, b) == 0.5


def test_class_rows_are_the_first_n_of_the_class_and_a_bad_class_is_refused():
    labels = np.array([1, 0, 1, 1, 0, 1])
    assert cs.class_rows(labels, 1, 3).tolist() == [0, 2, 3]
    assert cs.class_rows(labels, 0, 10).tolist() == [1, 4]
    with pytest.raises(SpecError, match="unknown class"):
        cs.class_rows(labels, 2, 3)


@pytest.fixture(scope="module")
def model():
    return seeded_resnet18()


def test_a_run_agrees_with_itself_on_every_image(model, shared_medmnist, one_thread):
    images = load_real("test").images[:6]
    ag = cs.agreement(model, model, images, "EigenCAM")
    assert ag["spearman"]["mean"] == pytest.approx(1.0) and ag["top20"]["mean"] == 1.0
    assert ag["spearman"]["n"] + ag["left_out"]["n"] == 6


def test_mean_maps_report_n_and_a_bootstrap_interval(model, shared_medmnist, one_thread):
    test = load_real("test")
    real = test.images[cs.class_rows(test.labels, 1, 8)]
    res = cs.mean_maps(model, real, real[::-1].copy(), "EigenCAM", n_boot=50)
    assert res.real.shape == (28, 28) and res.n_real + res.n_synthetic + res.left_out == 16
    assert res.rho == pytest.approx(1.0)  # the same images in another order
    assert res.rho_lo <= res.rho_hi <= 1.0  # resampled means: at most the identical ones
    png = cs.mean_maps_png(res, size=32)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_images_of_another_size_are_brought_to_the_runs_data_size(model):
    big = np.zeros((2, 64, 64), dtype=np.uint8)
    assert cs.images_for(model, big).shape == (2, 28, 28)
    small = np.zeros((2, 28, 28), dtype=np.uint8)
    assert cs.images_for(model, small) is small
