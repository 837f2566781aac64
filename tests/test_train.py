"""The training loop: a smoke run end to end, determinism, resume, checkpoint selection."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from synthmed_core.grid import make_run_spec
from synthmed_core.training import checkpoints as ck
from synthmed_core.training.compose import build_plan
from synthmed_core.records.events import EpochEnd, Finished, Progress, Started
from synthmed_core.errors import Stopped
from synthmed_core.training.train import train_run

pytestmark = pytest.mark.train


def _spec(**kw):
    base = dict(arch="resnet18", init="scratch", setting="base", seed=0, profile="smoke",
                epochs=2, train_limit=128)
    base.update(kw)
    return make_run_spec(**base)


def test_smoke_run_scores_every_test_image_and_writes_checkpoints(real_data, tmp_path):
    spec = _spec()
    events = []
    result = train_run(spec, build_plan(spec), tmp_path, events.append, device="cpu")
    assert result.test_probs.shape == (624,) and result.val_probs.shape == (524,)
    assert np.all((result.test_probs >= 0) & (result.test_probs <= 1))
    assert set(result.metrics) >= {"accuracy", "auroc", "f1", "sensitivity", "specificity",
                                   "tn", "fp", "fn", "tp"}
    assert result.metrics["tn"] + result.metrics["fp"] + result.metrics["fn"] + result.metrics["tp"] == 624
    assert (tmp_path / ck.LAST).is_file() and (tmp_path / ck.BEST).is_file()
    assert (tmp_path / "spec.json").is_file()
    kinds = [type(e) for e in events]
    assert kinds[0] is Started and kinds[-1] is Finished
    context = events[0].context  # where the numbers were computed, stored with the run
    assert context["device_type"] == "cpu" and context["threads"] == torch.get_num_threads()
    assert context["torch"] == torch.__version__ and context["synthetic_sha256"] is None
    assert "commit" in context and context["device_name"]
    assert kinds.count(EpochEnd) == 2
    assert all(isinstance(e, Progress) for e in events if type(e) not in (Started, EpochEnd, Finished))


def test_same_seed_same_profile_gives_identical_metrics_on_cpu(real_data, tmp_path):
    spec = _spec()
    a = train_run(spec, build_plan(spec), tmp_path / "a", device="cpu")
    b = train_run(spec, build_plan(spec), tmp_path / "b", device="cpu")
    np.testing.assert_array_equal(a.test_probs, b.test_probs)
    assert a.metrics == b.metrics


@pytest.mark.parametrize("recipe", [{}, {"label_smoothing": 0.1, "ema_decay": 0.9}],
                         ids=["plain", "label-smoothing+ema"])
def test_interrupted_run_resumes_from_its_last_epoch_and_matches_an_uninterrupted_one(
        real_data, tmp_path, recipe):
    spec = _spec(epochs=3, **recipe)
    plan = build_plan(spec)
    full = train_run(spec, plan, tmp_path / "full", device="cpu")

    seen: list[EpochEnd] = []
    with pytest.raises(Stopped):
        train_run(spec, plan, tmp_path / "cut", lambda e: seen.append(e) if isinstance(e, EpochEnd) else None,
                  device="cpu", should_stop=lambda: len(seen) >= 1)
    assert len(seen) == 1
    first = ck.load(tmp_path / "cut" / ck.LAST)
    assert first["epoch"] == 0 and first["elapsed_s"] > 0

    events = []
    t0 = time.time()
    resumed = train_run(spec, plan, tmp_path / "cut", events.append, device="cpu")
    this_attempt = time.time() - t0
    started = [e for e in events if isinstance(e, Started)][0]
    assert started.resumed_from == 0  # carried on after epoch 0, did not start from zero
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2]
    np.testing.assert_array_equal(resumed.test_probs, full.test_probs)
    assert len(resumed.history) == 3
    # the run's wall time counts the first attempt too, not only the one that finished it
    assert resumed.wall_s == pytest.approx(first["elapsed_s"] + this_attempt, abs=0.5 * first["elapsed_s"])


def test_two_phase_setting_chooses_its_checkpoint_in_the_final_phase(real_data, synthetic_set, tmp_path):
    spec = _spec(setting="synthetic_ft", synthetic=synthetic_set, epochs=2, finetune_epochs=1)
    result = train_run(spec, build_plan(spec), tmp_path, device="cpu")
    assert [h["phase"] for h in result.history] == [0, 0, 1]
    assert result.best_phase == 1 and result.best_epoch == 2


def test_preprocess_upsamples_normalises_and_augments_on_the_batch():
    from synthmed_core.training.loop import Preprocess
    images = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
    prep = Preprocess(mean=0.5, std=0.25, input_size=64, augment=True)
    plain = prep(images)
    assert plain.shape == (8, 1, 64, 64)
    assert torch.allclose(plain.mean(), ((images.float() / 255 - 0.5) / 0.25).mean(), atol=0.05)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    a, b = prep(images, g1), prep(images, g2)
    assert torch.equal(a, b) and not torch.equal(a, plain)


def test_upsampled_run_trains_and_scores_at_the_profile_input_size(real_data, tmp_path):
    spec = _spec(input_size=32, epochs=1, train_limit=64)
    result = train_run(spec, build_plan(spec), tmp_path, device="cpu")
    assert ck.load(tmp_path / ck.BEST)["spec"]["profile"]["input_size"] == 32
    assert result.test_probs.shape == (624,)


def test_ema_run_keeps_the_averaged_weights_val_chose_not_the_last_raw_ones(real_data, tmp_path):
    spec = _spec(epochs=2, ema_decay=0.9, label_smoothing=0.1)
    assert spec.profile.ema_decay == 0.9 and spec.profile.label_smoothing == 0.1
    result = train_run(spec, build_plan(spec), tmp_path, device="cpu")
    last, best = ck.load(tmp_path / ck.LAST), ck.load(tmp_path / ck.BEST)
    assert set(last["ema"]) == set(last["model"])  # the average is saved for a resume
    if best["epoch"] == last["epoch"]:  # the best checkpoint holds the EMA, not the raw weights
        key = "fc.weight"
        assert torch.equal(best["model"][key], last["ema"][key])
        assert not torch.equal(best["model"][key], last["model"][key])
    assert 0.0 <= result.metrics["accuracy"] <= 1.0


def test_strong_ingredients_are_part_of_the_recipe_and_leave_older_run_ids_alone():
    plain, smoothed = _spec(), _spec(label_smoothing=0.1)
    assert plain.run_id != smoothed.run_id
    assert "label_smoothing" not in plain.profile.to_dict()  # off: out of the spec, same id as before
    assert smoothed.profile.to_dict()["label_smoothing"] == 0.1
    with pytest.raises(Exception, match="ema_decay must be in"):
        _spec(ema_decay=1.5)
