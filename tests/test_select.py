"""Selective filtering: the kept fraction per class, the parent link, and that centroid
selection keeps real-looking images over noise. Uses the tiny domain encoder."""
from __future__ import annotations

import numpy as np
import pytest

from synthmed_core.data.real import load_real
from synthmed_core.errors import SpecError
from synthmed_core.store import Store
from synthmed_core.synth.select import keep_rows, select
from synthmed_core.synth.sets import load_set, write_set

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_thread")]


def test_keep_rows_keeps_the_best_fraction_of_each_class():
    scores = np.array([0.1, 0.9, 0.5, 0.2, 0.8, 0.3, 0.7, 0.4])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(keep_rows(scores, labels, 0.5), [1, 2, 4, 6])
    assert len(keep_rows(scores, labels, 1.0)) == 8


@pytest.mark.parametrize("by", ["centroid", "confidence"])
def test_selection_keeps_the_fraction_and_points_at_its_parent(synthetic_set, tiny_encoder, by):
    store = Store()
    _, card = select(synthetic_set, by, 0.5, "half", encoder=tiny_encoder, store=store)
    parent, parent_card = load_set(synthetic_set)
    child, _ = load_set("half")
    assert card["counts"] == {"normal": 30, "pneumonia": 30}
    assert card["parent"]["name"] == synthetic_set
    assert card["parent"]["sha256"] == parent_card["sha256"]
    assert card["parameters"]["by"] == by and card["parameters"]["keep"] == 0.5
    kept, dropped = card["parent_index"], card["dropped_index"]
    assert sorted(kept + dropped) == list(range(parent_card["n"]))
    assert card["dropped_counts"] == {"normal": 30, "pneumonia": 30}
    np.testing.assert_array_equal(child.images, parent.images[kept])
    assert "half" in set(store.synthetic_sets()["name"])


def test_centroid_selection_keeps_real_looking_images_over_noise(real_data, tiny_encoder):
    train = load_real("train")
    rng = np.random.default_rng(0)
    rows = np.r_[np.flatnonzero(train.labels == 0)[:20], np.flatnonzero(train.labels == 1)[:20]]
    noise = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    images = np.concatenate([train.images[rows], noise])
    labels = np.concatenate([train.labels[rows], train.labels[rows]]).reshape(-1, 1)
    write_set("mixed", images, labels.astype(np.uint8), {"method": "test"})
    _, card = select("mixed", "centroid", 0.5, "mixed-real", encoder=tiny_encoder)
    assert np.mean(np.asarray(card["parent_index"]) < 40) > 0.75  # mostly the real half (chance: 0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"by": "random"}, "unknown selection 'random'"),
    ({"keep": 0}, r"fraction in \(0, 1\]"),
    ({"keep": 1.5}, r"fraction in \(0, 1\]"),
    ({"out": "test-synth"}, "must differ"),
    ({"out": None}, "give it a name"),
])
def test_bad_selection_requests_are_clear_errors(synthetic_set, tiny_encoder, kwargs, message):
    args = {"by": "centroid", "keep": 0.5, "out": "new", **kwargs}
    with pytest.raises(SpecError, match=message):
        select(synthetic_set, args["by"], args["keep"], args["out"], encoder=tiny_encoder)


def test_an_existing_output_name_needs_force(synthetic_set, tiny_encoder):
    select(synthetic_set, "confidence", 0.5, "kept", encoder=tiny_encoder)
    with pytest.raises(SpecError, match="already exists"):
        select(synthetic_set, "centroid", 0.25, "kept", encoder=tiny_encoder)
    _, card = select(synthetic_set, "centroid", 0.25, "kept", encoder=tiny_encoder, force=True)
    assert card["n"] == 30
