"""gallery: paging by class, the nearest real train image in pixel and feature space (a set of
exact copies of known train rows must find those rows at distance 0), the stored neighbours of
a quality card, a cached encoder loaded as it is, and the card's figures."""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pytest

from synthmed_core.data.real import load_real
from synthmed_core.errors import SpecError
from synthmed_core.explorer import gallery
from synthmed_core.synth.encoder import ClassifierConfig, encoder_path
from synthmed_core.training import checkpoints as ck


@pytest.fixture
def copies(shared_medmnist):
    """Train images of rows ``rows`` (shuffled), as a synthetic set would hold them."""
    train = load_real("train")
    rows = np.random.default_rng(0).choice(len(train.labels), 12, replace=False)
    return train, rows, train.images[rows]


def test_page_rows_pages_one_class_and_clamps_past_the_end():
    labels = np.array([0, 1, 0, 0, 1, 0, 0])
    rows, page, n_pages = gallery.page_rows(labels, 0, 1, 2)
    assert (rows.tolist(), page, n_pages) == ([3, 5], 1, 3)
    rows, page, _ = gallery.page_rows(labels, 0, 99, 2)
    assert (rows.tolist(), page) == ([6], 2)
    assert gallery.page_rows(labels, None, 0, 10)[0].tolist() == list(range(7))
    with pytest.raises(SpecError):
        gallery.page_rows(labels, 0, 0, 0)


def test_exact_copies_find_their_train_rows_in_pixel_space(copies):
    train, rows, images = copies
    found = gallery.nearest_real(images, np.arange(12), {"n": 12}, train.images, "pixel")
    assert [nb.train_row for nb in found] == rows.tolist()
    assert all(nb.distance < 1e-6 and not nb.stored and nb.near_copy is None for nb in found)


@pytest.mark.train
def test_exact_copies_find_their_train_rows_in_feature_space(copies, tiny_encoder):
    train, rows, images = copies
    found = gallery.nearest_real(images, [0, 5], {"n": 12}, train.images, "feature",
                                 tiny_encoder)
    # Another train image can share features (PneumoniaMNIST holds duplicates): compare images.
    for nb, k in zip(found, (0, 5)):
        assert np.array_equal(train.images[nb.train_row], images[k]) and nb.distance < 1e-3


def test_feature_space_without_an_encoder_is_a_clear_error(copies):
    train, _, images = copies
    with pytest.raises(SpecError, match="encoder"):
        gallery.nearest_real(images, [0], {"n": 12}, train.images, "feature")


def test_stored_neighbours_are_used_with_their_pixel_distance_and_threshold(copies):
    train, rows, images = copies
    stored = [int(r) + 1 for r in rows]
    card = {"n": 12, "quality": {"memorisation": {"nearest_train_index": stored,
                                                  "pixel": {"threshold": 0.1}}}}
    found = gallery.nearest_real(images, [3], card, train.images, "pixel")
    d = np.sqrt(np.mean((images[3] / 255.0 - train.images[stored[3]] / 255.0) ** 2))
    assert found[0].train_row == stored[3] and found[0].stored
    assert found[0].distance == pytest.approx(d, rel=1e-5)
    assert d > 0.1 and found[0].near_copy is False
    near = gallery.nearest_real(images, [3], {"n": 12}, train.images, "pixel")[0]
    assert near.near_copy is None  # no threshold without a quality card
    card["n"] = 13  # a card for another version of the set is ignored
    assert gallery.stored_neighbours(card) is None


@pytest.mark.train
def test_a_cached_encoder_file_is_loaded_as_it_is(tiny_encoder, synth_data_root, copies):
    _, _, images = copies
    cfg = ClassifierConfig(epochs=1, batch_size=64, warmup_epochs=0, train_limit=512)
    path = encoder_path(cfg, "test")  # the cache in the data root, whatever a card says
    info = {"kind": "domain", "profile": "test", "config": asdict(cfg), "path": "/elsewhere.pt"}
    ck.save({"config": asdict(cfg), "info": info, "model": tiny_encoder.model.state_dict()}, path)
    card = {"quality": {"feature": {"kind": "domain", "encoder": info}}}
    assert gallery.encoder_file(card) == path
    loaded = gallery.load_encoder(gallery.encoder_file(card))
    assert np.allclose(loaded.features(images), tiny_encoder.features(images), atol=1e-4)
    assert gallery.encoder_file({"quality": {"feature": {"kind": "inception"}}}) is None


def test_quality_rows_list_present_figures_beside_the_real_val_baseline():
    card = {"quality": {"fid": 3.5, "baseline_real_val": {"fid": 1.25},
                        "tstr": {"accuracy": 0.8}}}
    rows = gallery.quality_rows(card)
    assert rows == [{"figure": "FID", "this set": 3.5, "real val (baseline)": 1.25},
                    {"figure": "TSTR accuracy (real val)", "this set": 0.8,
                     "real val (baseline)": None}]
    assert gallery.quality_rows({}) == []
    facts = gallery.card_facts({"method": "ddpm", "n": 4, "counts": {"normal": 1,
                                                                    "pneumonia": 3}})
    assert facts["method"] == "ddpm" and facts["pneumonia images"] == 3


def test_a_cyclegan_image_pairs_with_the_real_image_it_was_translated_from_others_with_the_nearest():
    from synthmed_core.explorer.gallery import real_partner
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
    images = train[[7, 3, 9]].copy()
    translated = {"n": 3, "source_index": [40, 41, 42]}
    assert real_partner(translated, 1, images, train) == (41, "its source")
    row, how = real_partner({"n": 3}, 1, images, train)
    assert row == 3 and how.startswith("its nearest real, d=0.000")
