"""Native MedMNIST+ sizes: a pneumoniamnist_64.npz beside the 28 px file trains natively at 64 px
(the spec records it), files of the wrong size, shape, count or keys are clear errors, a
synthetic set of another size is refused or resized the importer's way, and the image pages
hand each run the real image of its own size. No MedMNIST+ file exists on these machines: the
tests make a 64 px one from the real 28 px data (official row counts, bicubic upscaling)."""
from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import SHARED_DATA
from PIL import Image

from synthmed_core.data.real import data_file, load_real
from synthmed_core.errors import DataError, SpecError
from synthmed_core.grid import RunSpec, make_run_spec
from synthmed_core.training.compose import build_plan, load_synthetic_for_training


def _upscaled(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC))
                     for im in images])


def _write(path, arrays: dict) -> None:
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def real28() -> dict:
    with np.load(SHARED_DATA / "pneumoniamnist.npz") as npz:
        return {k: npz[k] for k in npz.files}


@pytest.fixture
def medmnist_plus(tmp_path, monkeypatch, real28):
    """A medmnist folder with the real 28 px file and a 64 px one made from it."""
    root = tmp_path / "medmnist"
    root.mkdir()
    os.symlink(SHARED_DATA / "pneumoniamnist.npz", root / "pneumoniamnist.npz")
    _write(root / "pneumoniamnist_64.npz",
           {k: _upscaled(v, 64) if k.endswith("images") else v for k, v in real28.items()})
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(root))
    monkeypatch.setenv("SYNTHMED_OFFLINE", "1")
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "data"))
    return root


def test_medmnist_plus_files_are_named_as_medmnist_names_them():
    assert data_file("pneumoniamnist", 28) == "pneumoniamnist.npz"
    assert data_file("pneumoniamnist", 224) == "pneumoniamnist_224.npz"
    with pytest.raises(SpecError, match="unknown MedMNIST image size"):
        data_file("pneumoniamnist", 32)


def test_the_64_px_file_loads_with_the_official_splits(medmnist_plus):
    test = load_real("test", size=64)
    assert test.images.shape == (624, 64, 64) and test.labels.shape == (624,)
    assert load_real("test").images.shape == (624, 28, 28)  # the 28 px file, beside it


def test_a_missing_size_says_where_to_put_its_file(medmnist_plus):
    with pytest.raises(DataError, match="pneumoniamnist_128.npz is missing.*medmnist"):
        load_real("train", size=128)


def test_a_28_px_file_under_the_224_name_is_named_as_such(medmnist_plus, real28):
    _write(medmnist_plus / "pneumoniamnist_224.npz", real28)
    with pytest.raises(DataError, match="these are 28 px images: the 28 px file under the 224 px"):
        load_real("train", size=224)


@pytest.mark.parametrize("damage,message", [
    (lambda a: {**a, "train_images": a["train_images"][:100], "train_labels":
                a["train_labels"][:100]}, "train has 100 images and 100 labels; medmnist "
                                          "expects 4708"),
    (lambda a: {k: v for k, v in a.items() if k != "val_labels"}, "lacks keys \\['val_labels'\\]"),
    (lambda a: {**a, "test_images": a["test_images"][:, :, :60]}, "test_images is uint8 "
                                                                  "\\(624, 64, 60\\)"),
])
def test_a_damaged_64_px_file_is_a_clear_error(medmnist_plus, real28, damage, message):
    good = {k: _upscaled(v, 64) if k.endswith("images") else v for k, v in real28.items()}
    _write(medmnist_plus / "pneumoniamnist_64.npz", damage(good))
    with pytest.raises(DataError, match=message):
        load_real("train", size=64)


def test_a_run_at_data_size_64_trains_natively_on_the_64_px_file(medmnist_plus):
    spec = make_run_spec("resnet18", "scratch", "base", 0, "smoke", data_size=64)
    assert spec.profile.data_size == 64 and spec.profile.input_size == 64  # native, recorded
    assert spec.to_dict()["profile"]["data_size"] == 64
    plan = build_plan(spec)
    assert plan.phases[0].images.shape[1:] == (64, 64)
    assert plan.test.images.shape == (624, 64, 64) and plan.val.images.shape == (524, 64, 64)
    assert RunSpec.from_dict(spec.to_dict()).run_id == spec.run_id


def test_the_28_px_default_leaves_every_earlier_run_id_unchanged():
    spec = make_run_spec("resnet18", "scratch", "base", 0, "quick")
    assert "data_size" not in spec.to_dict()["profile"]
    assert "resize_synthetic" not in spec.to_dict()["profile"]
    with pytest.raises(SpecError, match="data_size must be a MedMNIST size"):
        make_run_spec("resnet18", "scratch", "base", 0, "quick", data_size=32)


def test_a_synthetic_set_of_another_size_is_refused_or_resized_as_the_importer_does(
        medmnist_plus):
    from synth_helpers import write_blurred_real_set
    write_blurred_real_set("s28", 10, "a 28 px set")
    with pytest.raises(DataError, match="--resize-synthetic"):
        load_synthetic_for_training("s28", size=64)
    resized = load_synthetic_for_training("s28", size=64, resize=True)
    assert resized.images.shape == (20, 64, 64) and resized.labels.shape == (20,)
    spec = make_run_spec("resnet18", "scratch", "augment", 0, "smoke", ratio=0.01,
                         synthetic="s28", data_size=64, resize_synthetic=True)
    assert build_plan(spec).phases[0].images.shape[1:] == (64, 64)


def test_each_run_sees_a_real_image_in_the_file_of_its_own_size(medmnist_plus):
    from ui.readers import RealImage, at_data_size
    ref = RealImage("test", 5)
    np.testing.assert_array_equal(at_data_size(ref, 64), load_real("test", size=64).images[5])
    np.testing.assert_array_equal(at_data_size(ref, 28), load_real("test").images[5])
    upload = np.full((300, 200), 128, dtype=np.uint8)  # any other image: the importer's way
    assert at_data_size(upload, 64).shape == (64, 64)
