"""Grad-CAM and Predict open on an answer: every model whose weights are here (the shipped ones
first) on preselected real and synthetic images with each map's faithfulness, and a prediction
of a preselected test image with its decisions at 0.5 and at the val threshold; on a fresh data
root with only shipped results, nothing trained."""
from __future__ import annotations

import shutil

from streamlit.testing.v1 import AppTest

from synthmed_core.store import Store

from test_app_images import APP, captions, explorer  # noqa: F401 - fixture


def open_page(page: str) -> AppTest:
    """As test_app_images.open_page, with room for the CAMs and faithfulness figures of every
    model, which the page computes on its first run (minutes on a loaded 2-core box)."""
    at = AppTest.from_file(APP, default_timeout=500).run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


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
    assert any("No model trained on synthetic images has its weights here" in c.value
               for c in at.caption)  # none of the three was trained on synthetic images


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


def test_a_gradcam_link_opens_the_same_runs_images_and_method(explorer):
    """The page's runs, images, set and method live in the URL: a link opens that view, the
    view is written back, and a run or set that is not here is dropped, not an error."""
    from app_helpers import HARNESS, REPO_ROOT
    at = AppTest.from_string(HARNESS.format(page=str(REPO_ROOT / "app_pages/gradcam.py")),
                             default_timeout=500)
    at.query_params.update({"runs": f"{explorer['resnet']},no-such-run", "test": "5 9",
                            "method": "HiResCAM", "set": "no-such-set", "synthetic": "3"})
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    assert at.multiselect(key="cam_runs").value == [explorer["resnet"]]
    assert at.text_input(key="cam_test_rows").value == "5 9"
    assert at.selectbox(key="cam_method").value == "HiResCAM"
    assert at.selectbox(key="cam_set").value != "no-such-set"  # the page's default instead
    shown = captions(at)
    assert any(c.startswith("real test #5") for c in shown)
    assert any("HiResCAM" in c for c in shown)  # (a map that comes out constant is said, not drawn)
    url = {k: at.query_params[k] for k in ("runs", "test", "method")}
    assert {k: v if isinstance(v, str) else v[0] for k, v in url.items()} == {
        "runs": explorer["resnet"], "test": "5 9", "method": "HiResCAM"}


def test_the_shipped_base_model_leads_the_shipped_synthetic_trained_ones(monkeypatch):
    """On a fresh clone the comparison reads from the reference: base first, then the models
    trained on synthetic images (newest first), then those trained here."""
    from ui import images
    runs = [{"run_id": run_id, "setting": setting} for run_id, setting in [  # oldest first
        ("old-local", "base"), ("ship-base", "base"), ("ship-synth", "synthetic_base"),
        ("ship-aug", "augment"), ("new-local", "augment")]]
    monkeypatch.setattr(images, "runs_with_weights", lambda db: (runs, []))
    monkeypatch.setattr(images, "shipped_model_ids",
                        lambda db: ["ship-base", "ship-synth", "ship-aug"])
    monkeypatch.setattr(images, "run_label", lambda r: r["run_id"])
    picked = {}
    monkeypatch.setattr(images.st, "multiselect", lambda label, ids, default=None, **kw:
                        picked.update(ids=ids, default=default))
    images.pick_runs("db", "cam_runs_test", 3, "empty")
    assert picked["ids"] == ["ship-base", "ship-aug", "ship-synth", "new-local", "old-local"]
    assert picked["default"] == ["ship-base", "ship-aug", "ship-synth"]
