"""The GPU path's device-agnostic parts, on CPU tensors: on-device augmentation, no per-step
host synchronisation, the compile option, backend tuning, and workers per GPU."""
from __future__ import annotations

import pytest
import torch

from synthmed_core.errors import SpecError
from synthmed_core.training import loop as _loop
from synthmed_core.training.augment import random_affine
from synthmed_core.training.progress import Eta, step_hook


def _batch(n=16, side=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, side, side, generator=g)


def test_device_augmentation_keeps_shape_and_range_and_changes_every_image():
    x = _batch()
    out = random_affine(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.min() >= 0 and out.max() <= 1  # bilinear + zero padding stay in the input range
    assert all(not torch.allclose(a, b) for a, b in zip(out, x))


def test_device_augmentation_is_reproducible_from_the_generator_and_differs_across_draws():
    x = _batch()
    a = random_affine(x, torch.Generator().manual_seed(3))
    b = random_affine(x, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    first, second = random_affine(x, g), random_affine(x, g)
    assert torch.equal(a, b) and not torch.equal(first, second)


def test_preprocess_augments_only_with_a_generator_and_returns_channels_last():
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    prep = _loop.Preprocess(mean=0.5, std=0.25, input_size=28, augment=True)
    plain, aug = prep(images), prep(images, torch.Generator().manual_seed(0))
    assert plain.shape == aug.shape == (4, 1, 28, 28)
    assert plain.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(plain, aug)


class _CountingLoss:
    """Stands in for the device-side running loss: counts reads to the host."""

    def __init__(self):
        self.reads = 0

    def item(self):
        self.reads += 1
        return 1.0


def test_progress_hook_reads_the_loss_to_the_host_only_when_an_event_is_due():
    events, loss = [], _CountingLoss()
    never = type("Never", (), {"__call__": lambda self: False})()
    hook = step_hook(events.append, "run", 0, 0, 1, Eta(100), never, 128)
    for step in range(1, 51):
        hook(step, 100, loss)
    assert loss.reads == 0 and events == []
    hook = step_hook(events.append, "run", 0, 0, 1, Eta(100), _loop.Throttle(3600), 128)
    for step in range(1, 51):
        hook(step, 100, loss)
    assert loss.reads == 1 and len(events) == 1


def test_compile_mode_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(_loop.COMPILE_ENV, raising=False)
    assert _loop.compile_mode() == "off"
    monkeypatch.setenv(_loop.COMPILE_ENV, "reduce-overhead")
    assert _loop.compile_mode() == "reduce-overhead"
    assert _loop.compile_mode("default") == "default"
    with pytest.raises(SpecError, match="unknown compile mode"):
        _loop.compile_mode("fastest")


def test_compile_model_compiles_in_place_and_keeps_checkpoint_keys(monkeypatch):
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    keys = list(model.state_dict())
    assert _loop.compile_model(model, "off") == "off" and model._compiled_call_impl is None
    assert _loop.compile_model(model, "default") == "default"  # lazy: compiles on first call
    assert model._compiled_call_impl is not None and list(model.state_dict()) == keys


def test_backend_tuning_leaves_cpu_settings_alone():
    before = torch.backends.cudnn.benchmark
    _loop.tune_backend(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark == before


def test_workers_per_gpu_repeat_each_gpu_and_leave_cpu_at_one(monkeypatch):
    from jobs import _procs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _procs.default_devices(per_gpu=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    monkeypatch.setenv(_procs.PER_GPU_ENV, "3")
    assert len(_procs.default_devices()) == 6
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert _procs.default_devices(per_gpu=4) == ["cpu"]
    with pytest.raises(ValueError):
        _procs.workers_per_gpu(0)


def test_augmenting_batches_together_draws_what_each_batch_would_draw_alone():
    a, b = _batch(5, seed=1), _batch(7, seed=2)
    g = torch.Generator().manual_seed(9)
    alone = torch.cat([random_affine(a, g), random_affine(b, g)])
    together = random_affine(torch.cat([a, b]), torch.Generator().manual_seed(9), draws=[5, 7])
    assert torch.equal(alone, together)


def _one_epoch(prep_chunk: int):
    from synthmed_core.training.models import build_model
    torch.manual_seed(0)
    model = build_model("resnet18", "scratch", 28).to(memory_format=torch.channels_last)
    opt, sched = _loop.make_optimizer(model, 1e-3, 0.05, epochs=2, warmup_epochs=0,
                                      steps_per_epoch=4)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 28, 28), dtype=torch.uint8, generator=g)
    targets = torch.randint(0, 2, (30,), generator=g)
    prep = _loop.Preprocess(0.5, 0.25, 28, augment=True)
    loss = _loop.train_epoch(model, images, targets, prep, torch.nn.functional.cross_entropy,
                             opt, sched, 0, 8, g, prep_chunk=prep_chunk)
    return loss, model.state_dict()


@pytest.mark.train  # two one-epoch trainings
def test_a_gpu_style_chunked_epoch_trains_bit_for_bit_like_one_batch_at_a_time():
    loss_1, state_1 = _one_epoch(prep_chunk=1)  # the CPU default
    loss_3, state_3 = _one_epoch(prep_chunk=3)  # batches preprocessed together, as on CUDA
    assert loss_1 == loss_3
    assert all(torch.equal(state_1[k], state_3[k]) for k in state_1)


def test_a_throttle_lets_its_first_event_through_on_a_machine_booted_seconds_ago(monkeypatch):
    monkeypatch.setattr(_loop.time, "monotonic", lambda: 5.0)  # up for 5 s: the clock is small
    throttle = _loop.Throttle(3600)
    assert throttle() is True and throttle() is False
