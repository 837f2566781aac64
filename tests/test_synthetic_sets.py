"""Synthetic sets: named, immutable, atomically written, validated on read."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from synthmed_core import paths
from synthmed_core.errors import DataError, SpecError
from synthmed_core.data.synthetic import list_sets, load_set, set_dir, write_set


def _arrays(n_normal=3, n_pneu=5, size=28, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n_normal + n_pneu, size, size), dtype=np.uint8)
    labels = np.r_[np.zeros(n_normal), np.ones(n_pneu)].astype(np.uint8).reshape(-1, 1)
    return images, labels


def _write(name="set-a", seed=0, **kw):
    images, labels = _arrays(seed=seed)
    card = {"method": "test", "source": "unit test", "parameters": {"steps": 1}, "seed": seed}
    return write_set(name, images, labels, card, **kw), images, labels


def _leftovers(base):
    return [p.name for p in base.iterdir() if p.name.startswith(".")]


def test_a_written_set_loads_back_identically_with_int64_labels(synth_data_root):
    path, images, labels = _write()
    assert path == paths.synthetic_dir() / "set-a"
    split, card = load_set("set-a")
    np.testing.assert_array_equal(split.images, images)
    assert split.labels.dtype == np.int64 and split.labels.tolist() == labels[:, 0].tolist()


def test_the_npz_has_the_medmnist_schema(synth_data_root):
    path, _, _ = _write()
    with np.load(path / "images.npz") as npz:
        assert sorted(npz.files) == ["images", "labels"]
        assert npz["images"].dtype == np.uint8 and npz["images"].shape == (8, 28, 28)
        assert npz["labels"].dtype == np.uint8 and npz["labels"].shape == (8, 1)


def test_the_card_records_how_the_set_was_made_and_its_checksum(synth_data_root):
    path, _, _ = _write()
    card = json.loads((path / "card.json").read_text())
    assert card["name"] == "set-a" and card["method"] == "test" and card["source"] == "unit test"
    assert card["n"] == 8 and card["counts"] == {"normal": 3, "pneumonia": 5}
    assert card["parameters"] == {"steps": 1} and card["seed"] == 0 and card["created_at"]
    assert card["sha256"] == hashlib.sha256((path / "images.npz").read_bytes()).hexdigest()


def test_caller_fields_are_kept_but_facts_come_from_the_data(synth_data_root, tmp_path):
    images, labels = _arrays()
    write_set("s", images, labels, {"method": "ddpm", "fid": 12.5, "n": 999}, root=tmp_path)
    _, card = load_set("s", root=tmp_path)
    assert card["fid"] == 12.5 and card["n"] == 8


def test_an_existing_name_is_refused(synth_data_root):
    _write()
    with pytest.raises(SpecError, match="already exists.*force"):
        _write(seed=1)


def test_force_replaces_a_set_atomically_and_leaves_no_temporary_folders(synth_data_root):
    _write()
    _, new_images, _ = _write(seed=1, force=True)
    split, card = load_set("set-a")
    np.testing.assert_array_equal(split.images, new_images)
    assert card["seed"] == 1 and _leftovers(paths.synthetic_dir()) == []


def test_a_failed_write_leaves_nothing_behind(synth_data_root):
    images, labels = _arrays()
    with pytest.raises(SpecError, match="method"):
        write_set("no-method", images, labels, {})
    with pytest.raises(DataError, match="0 \\(normal\\) or 1"):
        write_set("bad-labels", images, labels + 1, {"method": "test"})
    circular = {"method": "test"}
    circular["self"] = circular  # fails in json.dump, after the npz is already written
    with pytest.raises(ValueError, match="Circular"):
        write_set("half", images, labels, circular)
    base = paths.synthetic_dir()
    assert not base.exists() or list(base.iterdir()) == []


@pytest.mark.parametrize("name", ["", "../escape", "a/b", "a\\b", ".hidden", "-flag", "a b",
                                  "x" * 65, "naïve"])
def test_invalid_names_are_refused(synth_data_root, name):
    images, labels = _arrays()
    with pytest.raises(SpecError, match="invalid synthetic set name"):
        write_set(name, images, labels, {"method": "test"})


@pytest.mark.parametrize("name", ["a", "ddpm-quick", "cyclegan_v2.1", "X" * 64])
def test_valid_names_are_accepted(synth_data_root, name):
    assert set_dir(name).name == name


def test_images_must_be_uint8_n_by_h_by_w(synth_data_root):
    images, labels = _arrays()
    with pytest.raises(DataError, match="uint8 array N x H x W"):
        write_set("f", images.astype(np.float32), labels, {"method": "test"})


def test_list_sets_returns_cards_sorted_by_name(synth_data_root):
    _write("b-set")
    _write("a-set")
    (paths.synthetic_dir() / ".tmp-half-written").mkdir()
    assert [c["name"] for c in list_sets()] == ["a-set", "b-set"]


def test_list_sets_of_a_missing_folder_is_empty(synth_data_root):
    assert list_sets() == []


# ---- validation on read -------------------------------------------------------------------------


def test_a_missing_set_names_the_folder_and_the_known_sets(synth_data_root):
    _write("present")
    with pytest.raises(DataError) as err:
        load_set("absent")
    assert str(paths.synthetic_dir() / "absent") in str(err.value) and "present" in str(err.value)


def test_a_set_without_card_is_incomplete(synth_data_root):
    path, _, _ = _write()
    (path / "card.json").unlink()
    with pytest.raises(DataError, match="incomplete.*card.json is missing"):
        load_set("set-a")


def test_changed_images_are_caught_by_the_card_checksum(synth_data_root):
    path, images, labels = _write()
    np.savez_compressed(path / "images.npz", images=images[::-1].copy(), labels=labels)
    with pytest.raises(DataError, match="sha256"):
        load_set("set-a")


def test_a_card_whose_counts_do_not_match_is_an_error(synth_data_root):
    path, _, _ = _write()
    card = json.loads((path / "card.json").read_text())
    card.update(n=9, counts={"normal": 4, "pneumonia": 5})
    (path / "card.json").write_text(json.dumps(card))
    with pytest.raises(DataError, match="n: card says 9, data has 8"):
        load_set("set-a")


def test_a_truncated_npz_is_a_data_error(synth_data_root):
    path, _, _ = _write()
    blob = (path / "images.npz").read_bytes()
    (path / "images.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="not a readable npz"):
        load_set("set-a")


@pytest.mark.parametrize("arrays, message", [
    ({"pixels": np.zeros((2, 28, 28), np.uint8)}, "needs keys \\['images', 'labels'\\]"),
    ({"images": np.zeros((2, 28, 28), np.float32), "labels": np.zeros((2, 1), np.uint8)},
     "images is float32"),
    ({"images": np.zeros((2, 28, 28), np.uint8), "labels": np.zeros(2, np.uint8)},
     "labels is uint8 \\(2,\\); expected uint8 2 x 1"),
    ({"images": np.zeros((2, 28, 28), np.uint8), "labels": np.full((2, 1), 2, np.uint8)},
     "labels hold \\[2\\]; expected 0/1"),
])
def test_a_malformed_npz_is_a_data_error(synth_data_root, arrays, message):
    path, _, _ = _write()
    np.savez_compressed(path / "images.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_set("set-a")


def test_loaded_arrays_are_read_only_and_cards_are_fresh_copies(synth_data_root):
    _write()
    split, card = load_set("set-a")
    card["name"] = "changed"
    assert not split.images.flags.writeable and load_set("set-a")[1]["name"] == "set-a"
