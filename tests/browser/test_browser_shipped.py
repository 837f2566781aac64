"""A fresh clone in a real browser: a brand-new data root with only the repository's shipped
results (results/, with the models of results/quick-resnet18-models). Grad-CAM opens on maps of
the shipped model on real and synthetic images with their faithfulness figures, Predict on the
shipped model's prediction of the preselected test image; nothing is trained."""
from __future__ import annotations

import os

import pytest

from browser_helpers import REPO_ROOT, assert_no_exception, open_page, shot

IMAGES = '[data-testid="stImage"]'
SLOW_MS = 240_000  # the first visit imports the shipped bundles, loads torch and the model


@pytest.fixture(scope="module")
def explorer_data(tmp_path_factory):
    """Overrides conftest's seeded store: an empty data root, and the shipped results on
    (the tests' conftest turns them off for every other test)."""
    root = tmp_path_factory.mktemp("fresh-clone") / "data"
    before = os.environ.get("SYNTHMED_SHIPPED")
    os.environ["SYNTHMED_SHIPPED"] = str(REPO_ROOT / "results")
    try:
        yield {"root": root}
    finally:
        if before is None:
            os.environ.pop("SYNTHMED_SHIPPED", None)
        else:
            os.environ["SYNTHMED_SHIPPED"] = before


def test_gradcam_opens_on_the_shipped_model_with_faithfulness_figures(page, app_server):
    open_page(page, app_server.url, "gradcam", timeout_ms=SLOW_MS)
    page.get_by_role("heading", name="Grad-CAM").first.wait_for()
    page.get_by_text("map-kept change").first.wait_for(timeout=SLOW_MS)
    assert_no_exception(page)
    text = page.locator("body").inner_text()
    assert "layer2 (4x4 map)" in text
    for title in ("real test #0", "real test #1", "cyclegan_cpu-sample #", "real train #"):
        assert title in text, title
    assert text.count("ROAD ") >= 6  # one per map: 2 real, 2 synthetic, 2 sources
    assert "not shipped yet" in text
    assert page.locator(IMAGES).count() >= 6
    shot(page, "gradcam-shipped")


def test_predict_opens_with_the_shipped_model_predicting_the_preselected_image(page,
                                                                               app_server):
    open_page(page, app_server.url, "predict", timeout_ms=SLOW_MS)
    page.get_by_role("heading", name="Predict").first.wait_for()
    page.get_by_text("at its val threshold").first.wait_for(timeout=SLOW_MS)
    assert_no_exception(page)
    text = page.locator("body").inner_text()
    assert "P(pneumonia)" in text and "at 0.5:" in text and "test #0" in text
    assert page.locator('[data-testid="stMetric"]').count() == 1  # the one shipped model
    shot(page, "predict-shipped")


def test_nothing_was_trained_on_the_fresh_root(app_server):
    from synthmed_core.store import Store
    root = app_server.data["root"]
    runs = Store(root / "synthmed.duckdb").runs()
    assert len(runs) and (runs["origin"] != "local").all()
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())
    assert list((root / "models").glob("f12cb873a549-*.safetensors"))
