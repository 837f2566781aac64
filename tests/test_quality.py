"""Quality figures behave as metrics: FID/KID, precision/recall, memorisation, TSTR, and the
card/store round trip. The feature space is a tiny domain encoder trained for seconds
(``tiny_encoder``): enough to rank images, meaningless as an absolute number."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from synthmed_core.data.real import Split, load_real
from synthmed_core.errors import ModelError, SpecError
from synthmed_core.store import Store
from synthmed_core.synth.quality import (ClassifierConfig, fid_kid, measure_quality, memorisation,
                                         precision_recall, resolve_feature, tstr)
from synthmed_core.synth.sets import load_set, update_card

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_thread")]


@pytest.fixture
def images(shared_medmnist):
    """400 real train images (the reference), 400 held-out val images, and two bad sets."""
    rng = np.random.default_rng(0)
    train, val = load_real("train"), load_real("val")
    real = train.images[rng.choice(len(train.labels), 400, replace=False)]
    held_out = val.images[:400]
    noise = rng.integers(0, 256, held_out.shape, dtype=np.uint8)
    blurred = gaussian_filter(held_out.astype(np.float32), sigma=(0, 2, 2)).astype(np.uint8)
    return {"real": real, "val": held_out, "noise": noise, "blurred": blurred}


def test_fid_and_kid_are_near_zero_for_a_set_against_itself(images, tiny_encoder):
    same = fid_kid(images["real"], images["real"], tiny_encoder.feature, subsets=10)
    noise = fid_kid(images["real"], images["noise"], tiny_encoder.feature, subsets=10)
    assert abs(same["fid"]) < 1e-6 * noise["fid"] + 1e-6
    assert abs(same["kid_mean"]) < 0.01 * noise["kid_mean"]  # unbiased KID can dip below 0


def test_held_out_real_images_score_far_better_than_noise_or_blur(images, tiny_encoder):
    score = {k: fid_kid(images["real"], images[k], tiny_encoder.feature, subsets=10)
             for k in ("val", "noise", "blurred")}
    assert score["val"]["fid"] < score["blurred"]["fid"] / 3
    assert score["val"]["fid"] < score["noise"]["fid"] / 30
    assert score["val"]["kid_mean"] < score["blurred"]["kid_mean"] / 3
    assert score["blurred"]["fid"] < score["noise"]["fid"]


def test_precision_and_recall_of_feature_manifolds(images, tiny_encoder):
    f = {k: tiny_encoder.features(v) for k, v in images.items()}
    same = precision_recall(f["real"], f["real"])
    assert same["precision"] == 1.0 and same["recall"] == 1.0
    val, noise = precision_recall(f["real"], f["val"]), precision_recall(f["real"], f["noise"])
    assert val["precision"] > 0.7 and val["recall"] > 0.7
    assert noise["precision"] < 0.05  # noise lies outside the real manifold


def test_memorisation_flags_every_copied_training_image_and_few_validation_images(
        shared_medmnist, tiny_encoder):
    train, val = load_real("train"), load_real("val")
    tr = (train.images, tiny_encoder.real_features("train"))
    va = (val.images, tiny_encoder.real_features("val"))
    rows = np.random.default_rng(1).choice(len(train.labels), 300, replace=False)
    copies = memorisation((tr[0][rows], tr[1][rows]), tr, va)
    assert copies["near_copy_share"] == 1.0 and copies["pixel"]["exact_copy_share"] == 1.0
    # The nearest train image is the copied one (or an identical twin: train repeats a few).
    np.testing.assert_array_equal(train.images[copies["nearest_train_index"]], train.images[rows])
    held_out = memorisation(va, tr, va)
    assert held_out["near_copy_share"] < 0.06  # 1% by calibration + val's exact train copies
    assert held_out["pixel"]["val_exact_copies_of_train"] == 8  # PneumoniaMNIST's own overlap


def test_tstr_trains_on_the_synthetic_set_and_scores_real_val(shared_medmnist):
    train = load_real("train")
    rows = np.r_[np.flatnonzero(train.labels == 0)[:64], np.flatnonzero(train.labels == 1)[:64]]
    cfg = ClassifierConfig(epochs=1, batch_size=64, warmup_epochs=0)
    result = tstr(Split(train.images[rows], train.labels[rows]), load_real("val"), cfg, "cpu")
    assert result["split"] == "val" and result["n_train"] == 128
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["auroc"] <= 1


def test_measure_quality_writes_the_card_and_re_registers_the_set(synthetic_set, tiny_encoder):
    store = Store()
    quality = measure_quality(synthetic_set, "smoke", "domain", encoder=tiny_encoder, store=store)
    _, card = load_set(synthetic_set)
    assert card["quality"] == quality
    for key in ("fid", "kid_mean", "precision", "recall", "tstr", "memorisation",
                "baseline_real_val"):
        assert key in quality
    assert quality["tstr"]["split"] == "val" and quality["feature"]["kind"] == "domain"
    assert len(quality["memorisation"]["nearest_train_index"]) == card["n"]
    stored = store.synthetic_sets().set_index("name").loc[synthetic_set, "card_json"]
    assert '"quality"' in stored


def test_inception_without_local_weights_is_a_clear_error(real_data, tiny_encoder):
    assert resolve_feature("auto") == "domain"  # no weights here: the domain encoder
    with pytest.raises(SpecError, match="unknown feature space"):
        resolve_feature("clip")
    from synthmed_core.synth.quality import FEATURES
    with pytest.raises(ModelError, match="never downloads"):
        FEATURES["inception"](tiny_encoder)


def test_a_card_update_cannot_change_what_describes_the_data(synthetic_set):
    with pytest.raises(SpecError, match="describe the data"):
        update_card(synthetic_set, n=3)
    card = update_card(synthetic_set, note="checked")
    assert load_set(synthetic_set)[1]["note"] == "checked" == card["note"]
