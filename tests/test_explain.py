"""explain: a finished run's model is rebuilt from the store, predicts like the model that was
saved, and its CAMs come from a layer with a map of at least 4x4, are not flat, and are
reported as constant when they are. Models are random inits at 28 px (seconds on one core)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from synthmed_core.data.real import load_real
from synthmed_core.errors import DataError, SpecError
from synthmed_core.explain import cams as explain
from synthmed_core.explain import overlays
from synthmed_core.explain.layers import cam_target_layer
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.training.models import build_model

from explain_helpers import flatten_layer2, record_model_run

pytestmark = pytest.mark.train

REQUIRED_METHODS = ("GradCAM", "GradCAM++", "EigenCAM", "LayerCAM", "ScoreCAM")


@pytest.fixture
def store(real_data, one_thread) -> Store:
    return Store()


@pytest.fixture
def test_images(shared_medmnist) -> np.ndarray:
    return load_real("test").images[:3]


def test_the_method_registry_has_the_required_methods():
    assert set(REQUIRED_METHODS) <= set(explain.CAM_METHODS)


def test_a_loaded_run_predicts_exactly_like_the_saved_model(store, test_images):
    run_id, saved = record_model_run(store, "resnet18", seed=3)
    loaded = explain.load_run_model(store, run_id)
    assert loaded.synthmed["run_id"] == run_id and loaded.synthmed["setting"] == "base"
    with torch.no_grad():
        x = explain.model_preprocess(saved)(torch.from_numpy(np.array(test_images)))
        want = torch.softmax(saved(x), 1)[:, 1].double().numpy()
    got = explain.predict_proba(loaded, test_images)
    assert got.shape == (3,) and np.allclose(got, want, atol=1e-6)
    other = build_model("resnet18", "scratch", 28).eval()  # another init predicts otherwise
    assert not np.allclose(explain.predict_proba(other, test_images), got, atol=1e-4)


def test_an_unknown_or_unfinished_run_or_a_missing_checkpoint_is_a_clear_error(store, tmp_path):
    with pytest.raises(SpecError, match="not in the store"):
        explain.load_run_model(store, "nope")
    spec = make_run_spec("resnet18", "scratch", "base", seed=9, profile="smoke")
    store.start_run(spec, "cpu")
    with pytest.raises(SpecError, match="running"):
        explain.load_run_model(store, spec.run_id)
    run_id, _ = record_model_run(store, "resnet18", seed=4)
    (tmp_path / "synthmed-data" / "runs" / run_id / "best.pt").unlink()
    with pytest.raises(DataError, match="checkpoint not found"):
        explain.load_run_model(store, run_id)


@pytest.mark.parametrize("arch, layer, side", [("resnet50", "layer2", 4),
                                               ("deit_tiny", "blocks[-1].norm1", 7)])
def test_cams_use_a_layer_of_at_least_4x4_and_eigencam_is_not_flat(arch, layer, side,
                                                                    test_images, one_thread):
    # EigenCAM (first principal component of the activations) is informative even for an
    # untrained model; gradient-based CAMs of random weights may legitimately be flat.
    torch.manual_seed(0)
    model = build_model(arch, "scratch", 28).eval()
    assert cam_target_layer(model, 28)[1:] == (layer, side)
    results = explain.cam_overlays(model, test_images, "EigenCAM")
    assert len(results) == 3
    probs = explain.predict_proba(model, test_images)
    for r, p in zip(results, probs):
        assert (r.layer, r.map_side, r.method) == (layer, side, "EigenCAM")
        assert r.cam.shape == (28, 28) and r.overlay.shape == (224, 224, 3)
        assert r.overlay.dtype == np.uint8 and r.overlay.std() > 1
        assert not r.constant and r.cam.std() > 0.01
        assert r.prob == pytest.approx(p, abs=1e-5)
        assert r.target == ("pneumonia" if p > 0.5 else "normal")


@pytest.mark.parametrize("method", ["GradCAM", "GradCAM++", "LayerCAM", "ScoreCAM"])
def test_every_cam_is_flagged_constant_exactly_when_it_is_flat(method, test_images, one_thread):
    torch.manual_seed(1)
    model = build_model("resnet18", "scratch", 28).eval()
    for r in explain.cam_overlays(model, test_images, method, target="pneumonia"):
        assert r.target == "pneumonia" and r.layer == "layer2"
        flat = float(r.cam.max() - r.cam.min()) < 1e-6
        assert r.constant == flat
        assert flat or r.cam.max() == pytest.approx(1.0, abs=1e-3)  # scaled to 0..1


def test_a_flat_map_is_reported_as_constant(test_images, one_thread):
    torch.manual_seed(0)
    model = build_model("resnet18", "scratch", 28).eval()
    flatten_layer2(model)
    for method in ("GradCAM", "EigenCAM"):
        results = explain.cam_overlays(model, test_images[:1], method)
        assert results[0].constant and results[0].layer == "layer2"


def test_is_constant_tells_flat_from_informative_maps():
    assert overlays.is_constant(np.zeros((4, 4)))
    assert overlays.is_constant(np.full((4, 4), np.nan))
    assert not overlays.is_constant(np.eye(4))


def test_an_unknown_method_is_a_spec_error(test_images):
    with pytest.raises(SpecError, match="GradCAM"):
        explain.cam_overlays(build_model("resnet18", "scratch", 28), test_images, "MagicCAM")


def test_cam_latency_is_a_positive_number_of_ms(test_images, one_thread):
    model = build_model("resnet18", "scratch", 28).eval()
    ms = explain.cam_latency_ms(model, test_images[0], "GradCAM", n=2)
    assert 0 < ms < 60_000


def test_cam_hooks_are_released(test_images, one_thread):
    model = build_model("resnet18", "scratch", 28).eval()
    explain.cam_overlays(model, test_images[0], "GradCAM")
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_the_cam_bench_verb_prints_ms_per_image_for_each_arch_and_method(capsys, one_thread):
    from synthmed_core.cli import main

    assert main(["cam-bench", "--arch", "resnet18", "--methods", "GradCAM", "EigenCAM",
                 "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "random-init weights" in lines[0] and "input 28 px" in lines[0]
    rows = [line.split() for line in lines[2:]]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("resnet18", "layer2", "(4x4)", "GradCAM"), ("resnet18", "layer2", "(4x4)", "EigenCAM")]
    assert all(float(r[4]) > 0 for r in rows)
    # the library's own call beside ours, and their ratio (of the unrounded times: the printed
    # 0.1 ms of each, e.g. 8.3 / 6.8, moves it by up to ratio x (0.05/ours + 0.05/library))
    for r in rows:
        ours, library, ratio = float(r[4]), float(r[5]), float(r[6])
        slack = ours / library * (0.05 / ours + 0.05 / library) + 0.005
        assert library > 0 and ratio == pytest.approx(ours / library, abs=slack)


def test_the_cam_bench_verb_refuses_an_unknown_method(capsys):
    from synthmed_core.cli import main

    assert main(["cam-bench", "--methods", "MagicCAM"]) == 2
    assert "unknown CAM methods ['MagicCAM']" in capsys.readouterr().err


def test_an_overlay_keeps_the_xray_visible_and_its_opacity_runs_from_xray_to_heat_map(
        test_images):
    image = test_images[0]
    cam = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    xray = overlays.upscaled(image)
    assert np.array_equal(overlays.overlay(image, cam, opacity=0.0), xray)  # X-ray alone
    half = overlays.overlay(image, cam, opacity=0.45).astype(float)
    heat = overlays.overlay(image, cam, opacity=1.0).astype(float)
    assert 0 < np.abs(half - xray).mean() < np.abs(heat - xray).mean()
    with pytest.raises(SpecError, match="opacity"):
        overlays.overlay(image, cam, opacity=1.5)


def test_a_cam_is_shown_beside_its_image_and_a_panel_downloads_as_png(test_images):
    import io

    from PIL import Image
    model = build_model("resnet18", "scratch", 28).eval()
    result = explain.cam_overlays(model, test_images[0], "EigenCAM")[0]
    pair = overlays.beside(result, size=100, gap=4)
    assert pair.shape == (100, 204, 3)
    assert np.array_equal(pair[:, :100], overlays.upscaled(test_images[0], 100))
    png = overlays.panel_png([("run A", [("real", result), ("synthetic", result)]),
                             ("run B", [("real", result)])], size=64)
    panel = Image.open(io.BytesIO(png))
    assert panel.format == "PNG" and panel.width > 2 * 2 * 64 and panel.height > 2 * 64


def test_the_target_layer_is_found_once_per_model_not_once_per_cam(test_images, monkeypatch):
    from synthmed_core.explain import layers as cam_mod
    calls = []
    real = explain.cam_target_layer
    monkeypatch.setattr(explain, "cam_target_layer",
                        lambda m, s: calls.append(s) or real(m, s))
    model = build_model("resnet18", "scratch", 28).eval()
    for _ in range(3):
        explain.cam_overlays(model, test_images[0], "EigenCAM")
    assert calls == [28]  # one dummy forward, not one per call
    assert cam_mod.cam_target_layer is real
