"""Our own generators (CycleGAN, DDPM) end to end at profile smoke: sets, cards, checkpoint
reuse and mismatch, interruption, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from synthmed_core.cli import main
from synthmed_core.data.real import Split, load_real
from synthmed_core.errors import ModelError, SpecError
from synthmed_core.store import Store
from synthmed_core.synth import generators as G
from synthmed_core.synth.generate import generate, plan_counts
from synthmed_core.synth.generators import _base
from synthmed_core.data.synthetic import list_sets, load_set
from synthmed_core.training import checkpoints as ck
from synthmed_core.records.events import EpochEnd, Progress, Started
from synthmed_core.errors import Stopped

pytestmark = [pytest.mark.train, pytest.mark.usefixtures("one_thread")]


@pytest.mark.parametrize("method", sorted(G.GENERATORS))
def test_smoke_generation_writes_a_valid_set_with_its_card(real_data, method):
    path, card = generate(method, "smoke", f"{method}-s", per_class=6, seed=1, device="cpu")
    split, on_disk = load_set(f"{method}-s")
    assert on_disk == card and path.name == f"{method}-s"
    assert split.images.shape == (12, 28, 28) and split.images.dtype == np.uint8
    assert card["counts"] == {"normal": 6, "pneumonia": 6}
    assert card["method"] == method and card["seed"] == 1 and card["source_split"] == "train"
    assert card["parameters"]["profile"] == "smoke" and card["training_time_s"] >= 0
    assert card["generator"]["reused"] is False and card["generator"]["steps"] > 0
    assert split.images.std() > 0  # not a blank image


@pytest.mark.parametrize("method", sorted(G.GENERATORS))
def test_generating_again_from_scratch_with_the_same_seed_gives_the_same_content_hash(
        real_data, method):
    _, first = generate(method, "smoke", f"{method}-1", count=16, seed=3, device="cpu")
    _, again = generate(method, "smoke", f"{method}-2", count=16, seed=3, device="cpu",
                        retrain=True)  # the generator trained anew, not reused
    assert not again["generator"]["reused"]
    assert again["content_sha256"] == first["content_sha256"]


def test_cyclegan_images_take_the_class_they_were_translated_into(real_data):
    _, card = generate("cyclegan", "smoke", "cg", count=20, device="cpu")
    split, _ = load_set("cg")
    train = load_real("train")
    source = np.asarray(card["source_index"])
    assert len(source) == card["n"] == 20
    np.testing.assert_array_equal(train.labels[source], 1 - split.labels)


def test_a_matching_checkpoint_is_reused_for_sampling_without_retraining(real_data):
    generate("ddpm", "smoke", "first", per_class=4, device="cpu")
    events = []
    _, again = generate("ddpm", "smoke", "same-seed", per_class=4, device="cpu", emit=events.append)
    _, more = generate("ddpm", "smoke", "more", per_class=4, sample_seed=7, device="cpu")
    assert not [e for e in events if isinstance(e, (Started, Progress))]  # no training at all
    assert again["generator"]["reused"] and more["generator"]["reused"]
    first, same, other = (load_set(n)[0].images for n in ("first", "same-seed", "more"))
    np.testing.assert_array_equal(first, same)  # same weights, same sampling seed
    assert not np.array_equal(first, other)  # another sampling seed: more, different images


def test_a_checkpoint_that_does_not_match_is_a_clear_error_and_retrain_replaces_it(real_data):
    generate("ddpm", "smoke", "a", per_class=2, device="cpu")
    with pytest.raises(ModelError, match=r"epochs: checkpoint 1, requested 2.*--retrain"):
        generate("ddpm", "smoke", "b", per_class=2, overrides={"epochs": 2}, device="cpu")
    assert [c["name"] for c in list_sets()] == ["a"]
    _, card = generate("ddpm", "smoke", "b", per_class=2, overrides={"epochs": 2}, retrain=True,
                       device="cpu")
    assert card["generator"]["epochs"] == 2 and not card["generator"]["reused"]


def test_a_checkpoint_of_another_method_is_refused(real_data, tmp_path):
    ckpt = tmp_path / "gen.pt"
    generate("cyclegan", "smoke", "c", per_class=2, checkpoint=ckpt, device="cpu")
    with pytest.raises(ModelError, match="holds a 'cyclegan' generator, not 'ddpm'"):
        generate("ddpm", "smoke", "d", per_class=2, checkpoint=ckpt, device="cpu")


# What --checkpoint may point at by mistake: none of it is a generator checkpoint of ours.
NOT_A_GENERATOR = {
    "a text file": lambda p: p.write_text("precious notes\n"),
    "a run's checkpoint": lambda p: ck.save({"run_id": "r", "model": {}}, p),
    "an empty file": lambda p: p.write_bytes(b""),
}


@pytest.mark.parametrize("kind", list(NOT_A_GENERATOR))
def test_retrain_refuses_a_file_that_is_not_a_generator_checkpoint_and_leaves_it_alone(
        real_data, tmp_path, kind):
    victim = tmp_path / "victim.txt"
    NOT_A_GENERATOR[kind](victim)
    before = victim.read_bytes()
    with pytest.raises(ModelError, match="not a synthmed generator checkpoint"):
        generate("cyclegan", "smoke", "cg3", checkpoint=victim, retrain=True, device="cpu")
    assert victim.read_bytes() == before and list_sets() == []


def test_a_folder_given_as_checkpoint_is_refused_before_training(real_data, tmp_path):
    events = []
    with pytest.raises(SpecError, match="not a file"):
        generate("cyclegan", "smoke", "cg3", checkpoint=tmp_path, retrain=True, device="cpu",
                 emit=events.append)
    assert tmp_path.is_dir() and events == []


@pytest.mark.parametrize("kind", list(NOT_A_GENERATOR))
def test_without_retrain_a_file_that_is_not_a_checkpoint_is_never_advised_for_deletion(
        real_data, tmp_path, kind, capsys):
    victim = tmp_path / "victim.txt"
    NOT_A_GENERATOR[kind](victim)
    assert main(["synth", "generate", "--method", "cyclegan", "--profile", "smoke", "--name",
                 "cg2", "--checkpoint", str(victim), "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not a synthmed generator checkpoint" in err and "path of its own" in err
    assert "delete" not in err and "--retrain" not in err


def test_retrain_replaces_a_generator_checkpoint_of_ours(real_data, tmp_path):
    ckpt = tmp_path / "gen.pt"
    generate("cyclegan", "smoke", "c", per_class=2, checkpoint=ckpt, device="cpu")
    _, card = generate("cyclegan", "smoke", "d", per_class=2, checkpoint=ckpt, retrain=True,
                       device="cpu")
    assert not card["generator"]["reused"]
    assert G.read_generator_checkpoint(ckpt)["state"]["complete"]


def test_an_interrupted_generation_registers_nothing_and_the_next_call_resumes(real_data,
                                                                            monkeypatch):
    monkeypatch.setattr(_base, "CHECKPOINT_EVERY_S", 0.0)  # a checkpoint after every epoch
    store = Store()
    ends = []
    with pytest.raises(Stopped):
        generate("cyclegan", "smoke", "cut", per_class=2, overrides={"epochs": 3}, device="cpu",
                 emit=lambda e: ends.append(e) if isinstance(e, EpochEnd) else None,
                 should_stop=lambda: len(ends) >= 1, store=store)
    assert list_sets() == [] and store.synthetic_sets().empty
    assert not any(real_data.joinpath("synthetic").glob(".tmp-*"))
    events = []
    _, card = generate("cyclegan", "smoke", "cut", per_class=2, overrides={"epochs": 3},
                       device="cpu", emit=events.append, store=store)
    assert [e.resumed_from for e in events if isinstance(e, Started)] == [0]
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    assert card["generator"]["resumed_from_epoch"] == 1
    assert list(store.synthetic_sets()["name"]) == ["cut"]


def test_a_failure_while_sampling_leaves_no_set_behind(real_data, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("out of memory while sampling")
    monkeypatch.setattr(G.DDPM, "sample", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        generate("ddpm", "smoke", "broken", per_class=2, device="cpu", store=Store())
    assert list_sets() == [] and Store().synthetic_sets().empty


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "gan"}, "unknown generation method 'gan'"),
    ({"count": 0}, "count must be a positive"),
    ({"per_class": -3}, "per_class must be a positive"),
    ({"count": 4, "per_class": 2}, "either count"),
    ({"profile": "huge"}, "unknown profile 'huge'"),
    ({"name": "-flag"}, "invalid synthetic set name"),
    ({"overrides": {"wings": 2}}, "has no setting"),
])
def test_bad_input_is_a_clear_error(real_data, kwargs, message):
    args = {"method": "ddpm", "profile": "smoke", "name": "x", **kwargs}
    with pytest.raises(SpecError, match=message):
        generate(args.pop("method"), args.pop("profile"), args.pop("name"), device="cpu", **args)
    assert not (real_data / "generators").exists()  # refused before any training


def test_an_existing_name_needs_force_and_is_refused_before_training(real_data):
    generate("cyclegan", "smoke", "taken", per_class=2, device="cpu")
    before = list((real_data / "generators").iterdir())
    with pytest.raises(SpecError, match="already exists.*--force"):
        generate("ddpm", "smoke", "taken", per_class=2, device="cpu")
    assert list((real_data / "generators").iterdir()) == before  # no ddpm was trained
    _, card = generate("ddpm", "smoke", "taken", per_class=2, device="cpu", force=True)
    assert card["method"] == "ddpm"


def test_default_counts_follow_the_real_train_classes():
    labels = np.array([0] * 26 + [1] * 74)
    assert plan_counts(labels, count=50) == {0: 13, 1: 37}
    assert plan_counts(labels, per_class=5) == {0: 5, 1: 5}
    assert plan_counts(labels, profile="quick") == {0: 26, 1: 74}  # as many as real train


@pytest.mark.parametrize("method", sorted(G.GENERATORS))
def test_every_generator_trains_and_samples_on_tiny_data_with_finite_losses(method):
    torch.manual_seed(0)
    gen = G.make_generator(method, "smoke", device="cpu")
    rng = np.random.default_rng(0)
    tiny = Split(rng.integers(0, 256, (16, 28, 28), dtype=np.uint8), np.array([0, 1] * 8))
    info = gen.fit(tiny)
    assert info["history"] and all(np.isfinite(v) for v in info["history"][-1].values())
    out = gen.sample({0: 3, 1: 2}, seed=0)
    assert out.images.shape == (5, 28, 28) and list(out.labels) == [0, 0, 0, 1, 1]


def test_cli_generate_registers_the_set(real_data, capsys):
    assert main(["synth", "generate", "--method", "cyclegan", "--profile", "smoke", "--name",
                 "cli-set", "--per-class", "3", "--device", "cpu", "--no-progress"]) == 0
    assert "registered synthetic set 'cli-set'" in capsys.readouterr().out
    row = Store().synthetic_sets().set_index("name").loc["cli-set"]
    assert row["method"] == "cyclegan" and row["n"] == 6
    assert main(["synth", "generate", "--method", "ddpm", "--profile", "smoke", "--name",
                 "cli-set", "--device", "cpu", "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    png = real_data / "cli-set.png"
    assert main(["synth", "show", "cli-set", "--grid", str(png)]) == 0
    assert Image.open(png).size == (8 * 28 * 3, 8 * 28 * 3)


def test_cli_generate_off_a_terminal_prints_a_line_per_epoch_and_per_tenth_sampled(real_data,
                                                                                     capsys):
    # a log file, nohup or CI: no bar is drawn, so plain lines say how far it got
    assert main(["synth", "generate", "--method", "ddpm", "--profile", "smoke", "--name",
                 "logged", "--per-class", "40", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "train ddpm smoke: epoch 1/1" in err
    sampled = [line for line in err.splitlines() if line.startswith("sample logged: ")]
    assert sampled and sampled[-1].startswith("sample logged: 80/80 images (")


def test_a_set_known_only_by_its_card_is_rebuilt_with_the_same_content(real_data, capsys):
    import shutil

    from synthmed_core.data.synthetic import set_dir
    _, card = generate("cyclegan", "smoke", "shipped-cg", count=16, seed=3, device="cpu")
    shutil.rmtree(set_dir("shipped-cg"))  # as on a fresh clone: the card came in a bundle,
    G.default_checkpoint("cyclegan", "smoke", 3).unlink()  # no images, no generator
    Store().register_synthetic_set("shipped-cg", card, None, origin="0123456789abcdef")
    assert main(["synth", "rebuild", "shipped-cg", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "rebuilding 'shipped-cg': cyclegan smoke seed 3, 16 images" in out
    assert "trained" in out  # a new generator, not a reused checkpoint
    assert f"content hash {card['content_sha256'][:12]}: the same images" in out
