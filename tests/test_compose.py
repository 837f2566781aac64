"""Composition of each phase's training set: counts, which images, determinism, errors."""
from __future__ import annotations

import numpy as np
import pytest

from synthmed_core.data.real import Split, load_real
from synthmed_core.errors import DataError, SpecError
from synthmed_core.grid import SETTINGS, make_run_spec
from synthmed_core.data.synthetic import write_set
from synthmed_core.training.compose import (allocate, build_plan, compose,
                                            load_synthetic_for_training)

N_NORMAL, N_PNEU = 31, 90  # 121 real images: proportions that do not divide evenly
RATIOS = [1, 2, 3, 0.5]


def _smooth_images(n: int, rng: np.random.Generator) -> np.ndarray:
    # Blocky 7x7 noise upsampled to 28x28: structure a 2 px shift or 10 degree turn keeps.
    low = rng.integers(0, 256, (n, 7, 7), dtype=np.uint8)
    return np.repeat(np.repeat(low, 4, axis=1), 4, axis=2)


def _split(n_normal: int, n_pneu: int, seed: int, size: int = 28) -> Split:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.r_[np.zeros(n_normal), np.ones(n_pneu)]).astype(np.int64)
    images = _smooth_images(len(labels), rng)
    if size != 28:
        images = rng.integers(0, 256, (len(labels), size, size), dtype=np.uint8)
    return Split(images, labels)


@pytest.fixture(scope="module")
def real() -> Split:
    return _split(N_NORMAL, N_PNEU, seed=1)


@pytest.fixture(scope="module")
def synth() -> Split:
    return _split(300, 600, seed=2)


def _per_class(labels) -> list[int]:
    return np.bincount(labels, minlength=2).tolist()


def _assert_stratified_like_real(labels, ratio):
    total = round(ratio * (N_NORMAL + N_PNEU))
    counts = _per_class(labels)
    assert sum(counts) == total
    exact = [total * N_NORMAL / (N_NORMAL + N_PNEU), total * N_PNEU / (N_NORMAL + N_PNEU)]
    assert all(abs(c - e) < 1 for c, e in zip(counts, exact))


# ---- counts and contents per source ------------------------------------------------------------


def test_real_phase_is_the_real_train_split_exactly(real):
    phase = compose("real", real)
    np.testing.assert_array_equal(phase.images, real.images)
    np.testing.assert_array_equal(phase.labels, real.labels)
    assert (phase.origin == 0).all() and phase.index.tolist() == list(range(len(real.labels)))


@pytest.mark.parametrize("ratio", RATIOS)
def test_augment_adds_round_ratio_x_real_synthetic_images_stratified_like_real(real, synth, ratio):
    phase = compose("real+synthetic", real, synth, ratio=ratio, seed=0)
    is_real = phase.origin == 0
    np.testing.assert_array_equal(phase.images[is_real], real.images)
    _assert_stratified_like_real(phase.labels[phase.origin == 1], ratio)
    assert set(np.unique(phase.origin)) == {0, 1}


def test_augment_synthetic_part_is_unique_rows_of_the_set(real, synth):
    phase = compose("real+synthetic", real, synth, ratio=2, seed=0)
    idx = phase.index[phase.origin == 1]
    assert len(np.unique(idx)) == len(idx) and idx.min() >= 0 and idx.max() < len(synth.labels)
    np.testing.assert_array_equal(phase.images[phase.origin == 1], synth.images[idx])
    np.testing.assert_array_equal(phase.labels[phase.origin == 1], synth.labels[idx])


def test_synthetic_phase_without_ratio_is_the_whole_set(real, synth):
    phase = compose("synthetic", real, synth)
    np.testing.assert_array_equal(phase.images, synth.images)
    assert (phase.origin == 1).all() and phase.index.tolist() == list(range(len(synth.labels)))


@pytest.mark.parametrize("ratio", RATIOS)
def test_synthetic_phase_with_ratio_draws_stratified_like_real(real, synth, ratio):
    phase = compose("synthetic", real, synth, ratio=ratio, seed=0)
    _assert_stratified_like_real(phase.labels, ratio)
    assert len(np.unique(phase.index)) == len(phase.index)


@pytest.mark.parametrize("ratio", RATIOS)
def test_duplicate_control_adds_redrawn_real_images_stratified_like_real(real, ratio):
    phase = compose("real+duplicates", real, ratio=ratio, seed=0)
    dup = phase.origin == 2
    np.testing.assert_array_equal(phase.images[phase.origin == 0], real.images)
    _assert_stratified_like_real(phase.labels[dup], ratio)
    assert set(np.unique(phase.origin)) == {0, 2}
    idx = phase.index[dup]
    assert idx.min() >= 0 and idx.max() < len(real.labels)
    np.testing.assert_array_equal(phase.labels[dup], real.labels[idx])


def test_duplicates_are_lightly_augmented_not_byte_copies(real):
    phase = compose("real+duplicates", real, ratio=3, seed=0)
    dup = phase.origin == 2
    idx = phase.index[dup]
    images, sources = phase.images[dup].astype(int), real.images[idx].astype(int)
    assert not np.any(np.all(images == sources, axis=(1, 2)))
    # Light: each copy is closer to its own source than to another real image.
    own = np.abs(images - sources).mean(axis=(1, 2))
    others = real.images[(idx + 1) % len(real.labels)].astype(int)
    other = np.abs(images - others).mean(axis=(1, 2))
    assert (own < other).mean() > 0.95


def test_duplicate_draws_are_with_replacement(real):
    phase = compose("real+duplicates", real, ratio=3, seed=0)
    idx = phase.index[phase.origin == 2]
    assert len(np.unique(idx)) < len(idx)


SETTING_RATIOS = [(name, r) for name, info in SETTINGS.items()
                  for r in {"none": [None], "required": RATIOS, "optional": RATIOS + [None]}[
                      info.ratio]]


@pytest.mark.parametrize("setting, ratio", SETTING_RATIOS)
def test_every_setting_composes_each_phase_with_the_expected_counts(real, synth, setting, ratio):
    info = SETTINGS[setting]
    for phase_def in info.phases:
        phase = compose(phase_def.source, real, synth, ratio=ratio, seed=0)
        parts = {o: phase.labels[phase.origin == o] for o in np.unique(phase.origin)}
        if "real" in phase_def.source:
            assert _per_class(parts.pop(0)) == [N_NORMAL, N_PNEU]
        if phase_def.source == "synthetic" and ratio is None:
            assert _per_class(parts.pop(1)) == [300, 600]  # the whole set
        for drawn in parts.values():  # synthetic (1) or duplicates (2), ratio x real
            _assert_stratified_like_real(drawn, ratio)


# ---- determinism ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["real+synthetic", "real+duplicates", "synthetic"])
def test_same_seed_gives_identical_arrays(real, synth, source):
    a = compose(source, real, synth, ratio=1, seed=3)
    b = compose(source, real, synth, ratio=1, seed=3)
    for field in ("images", "labels", "origin", "index"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("source", ["real+synthetic", "real+duplicates"])
def test_another_seed_draws_differently(real, synth, source):
    a = compose(source, real, synth, ratio=1, seed=3)
    b = compose(source, real, synth, ratio=1, seed=4)
    assert not np.array_equal(a.index, b.index)


def test_allocate_splits_by_largest_remainder_and_sums_exactly():
    assert allocate(60, [31, 90]).tolist() == [15, 45]  # 15.37 / 44.63
    assert allocate(10, [1, 1, 1]).tolist() == [4, 3, 3]  # a tie goes to the lower class
    assert allocate(7, [0, 5]).tolist() == [0, 7]


# ---- train_limit -------------------------------------------------------------------------------


def test_train_limit_takes_a_seeded_class_stratified_subset_of_real(real):
    a = compose("real", real, train_limit=40, seed=0)
    assert _per_class(a.labels) == [10, 30]  # 10.25 / 29.75
    np.testing.assert_array_equal(a.images, real.images[a.index])
    assert np.all(np.diff(a.index) > 0)  # file order
    assert not np.array_equal(a.index, compose("real", real, train_limit=40, seed=1).index)


def test_train_limit_scales_synthetic_draws_with_the_real_count(real, synth):
    phase = compose("real+synthetic", real, synth, ratio=2, train_limit=40, seed=0)
    assert _per_class(phase.labels[phase.origin == 0]) == [10, 30]
    assert _per_class(phase.labels[phase.origin == 1]) == [20, 60]


def test_train_limit_caps_a_whole_synthetic_set_keeping_its_balance(real, synth):
    phase = compose("synthetic", real, synth, train_limit=40, seed=0)
    assert _per_class(phase.labels) == [13, 27]  # the set's own 1:2


# ---- errors -------------------------------------------------------------------------------------


def test_a_set_too_small_for_the_ratio_says_needed_had_and_largest_ratio(real):
    small = _split(20, 600, seed=5)
    with pytest.raises(SpecError) as err:
        compose("real+synthetic", real, small, ratio=1, seed=0, set_label="synthetic set 'tiny'")
    msg = str(err.value)
    assert "synthetic set 'tiny'" in msg and "31 normal" in msg and "20 normal" in msg
    assert "largest ratio it supports is 0.661" in msg
    compose("real+synthetic", real, small, ratio=0.661, seed=0)  # and that ratio does fit


def test_synthetic_images_of_another_size_are_rejected(real):
    with pytest.raises(DataError, match="re-import or regenerate"):
        compose("real+synthetic", real, _split(50, 50, seed=6, size=32), ratio=1)


def test_a_ratio_source_without_ratio_is_a_spec_error(real, synth):
    with pytest.raises(SpecError, match="needs a ratio"):
        compose("real+synthetic", real, synth)


def test_a_synthetic_source_without_a_set_is_a_spec_error(real):
    with pytest.raises(SpecError, match="needs a synthetic set"):
        compose("synthetic", real)


# ---- build_plan on the shared real data ----------------------------------------------------------


@pytest.fixture
def smoke_set(synth_data_root) -> str:
    s = _split(300, 600, seed=7)
    write_set("smoke-set", s.images, s.labels.astype(np.uint8), {"method": "test"})
    return "smoke-set"


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_val_and_test_are_the_real_splits_whatever_the_setting(shared_medmnist, smoke_set,
                                                                setting):
    info = SETTINGS[setting]
    spec = make_run_spec("resnet18", "scratch", setting, profile="smoke",
                         ratio=1 if info.ratio == "required" else None,
                         synthetic=smoke_set if info.uses_synthetic else None)
    plan = build_plan(spec)
    for name in ("val", "test"):
        split = getattr(plan, name)
        np.testing.assert_array_equal(split.images, load_real(name).images)
        np.testing.assert_array_equal(split.labels, load_real(name).labels)
    assert [p.source_name for p in plan.phases] == [p.source for p in info.phases]


def test_phase_epochs_and_warmup_come_from_the_profile(shared_medmnist, smoke_set):
    spec = make_run_spec("resnet18", "scratch", "synthetic_ft", profile="smoke",
                         synthetic=smoke_set, epochs=3, finetune_epochs=2)
    first, second = build_plan(spec).phases
    assert (first.epochs, first.warmup_epochs) == (3, spec.profile.warmup_epochs)
    assert (second.epochs, second.warmup_epochs) == (2, spec.profile.finetune_warmup_epochs)
    assert len(first.labels) == spec.profile.train_limit and (second.origin == 1).all()


def test_a_synthetic_set_that_is_not_28x28_is_an_error_at_load(synth_data_root):
    s = _split(5, 5, seed=8, size=32)
    write_set("big", s.images, s.labels.astype(np.uint8), {"method": "test"})
    with pytest.raises(DataError, match="32x32 images; training on the 28 px real data needs 28x28"):
        load_synthetic_for_training("big")
