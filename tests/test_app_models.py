"""Grad-CAM and Predict open on an answer: every model whose weights are here (the shipped ones
first) on preselected real and synthetic images with each map's faithfulness, and a prediction
of a preselected test image with its decisions at 0.5 and at the val threshold; on a fresh data
root with only shipped results, nothing trained."""
from __future__ import annotations

import shutil

from synthmed_core.store import Store

from test_app_images import captions, explorer, open_page  # noqa: F401 - fixture
from test_bundle_weights import trained  # noqa: F401 - fixture


def test_gradcam_opens_on_every_model_real_and_synthetic_with_faithfulness(explorer):
    at = open_page("gradcam")  # no click
    assert not at.exception and not at.error
    shown = captions(at)
    assert sorted(at.multiselect(key="cam_runs").value) == sorted(
        [explorer["resnet"], explorer["deit"], explorer["flat"]])
    # one normal and one pneumonia real image, two synthetic ones, each beside its real partner
    assert at.text_input(key="cam_test_rows").value == "0 1"
    for title in ("real test #0", "real test #1", "copies #0", "copies #10", "real train #"):
        assert any(c.startswith(title) for c in shown), title
    assert all("ROAD " in c and "map-kept change" in c for c in shown)
    assert any("layer2 (4x4 map)" in c for c in shown)
    assert any("not shipped yet" in c.value for c in at.caption)


def test_predict_opens_with_every_model_predicting_a_test_image(explorer):
    at = open_page("predict")  # no click
    assert not at.exception and not at.error
    assert at.radio(key="predict_source").value == "A test image"
    assert len(at.metric) == 3  # the three runs with weights here
    decisions = [m.value for m in at.markdown if m.value.startswith("at 0.5:")]
    assert len(decisions) == 3 and all("at its val threshold" in d for d in decisions)


def test_a_fresh_root_with_only_shipped_results_shows_maps_and_predictions(
        trained, tmp_path, monkeypatch, shared_medmnist, one_thread):
    bundle, run_id = trained
    shipped = tmp_path / "results"
    shutil.copytree(bundle, shipped / bundle.name)
    monkeypatch.setenv("SYNTHMED_SHIPPED", str(shipped))
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "fresh"))
    at = open_page("gradcam")
    assert not at.exception and not at.error
    assert at.multiselect(key="cam_runs").value == [run_id]
    assert any("ROAD " in c for c in captions(at))
    at.switch_page("app_pages/predict.py").run()
    assert not at.exception and not at.error
    assert len(at.metric) == 1
    runs = Store().runs()
    assert list(runs["run_id"]) == [run_id] and (runs["origin"] != "local").all()
