"""A fresh clone in a real browser: a brand-new data root with only the repository's shipped
results (results/, with the base model of results/quick-resnet18-models and the two models
trained on synthetic images of results/quick-resnet18-cyclegan_cpu_s1-seed-0). Grad-CAM opens
on maps of the shipped models on real and synthetic images with their faithfulness figures,
Predict on the shipped models' predictions of the preselected test image; nothing is trained."""
from __future__ import annotations

import os

import pytest

from browser_helpers import (IDLE, REPO_ROOT, SHARED_DATA, app_env, assert_no_exception,
                             running_app, shot)

IMAGES = '[data-testid="stImage"]'
SLOW_MS = 480_000  # the first visit loads torch and the model, checks its fidelity, draws maps
pytestmark = pytest.mark.timeout(1500)  # minutes of CPU on a loaded 2-core box


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


@pytest.fixture(scope="module")
def app_server(browser, explorer_data):
    """Overrides conftest's: the server imports every shipped bundle before it listens, which
    on a loaded 2-core box takes longer than conftest's start timeout."""
    root = explorer_data["root"]
    try:
        with running_app(app_env(root, SHARED_DATA), root.parent / "streamlit.log",
                         start_timeout_s=SLOW_MS / 1000) as server:
            server.data = explorer_data
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_gradcam_opens_on_the_shipped_model_with_faithfulness_figures(page, app_server):
    page.goto(f"{app_server.url}/gradcam", wait_until="domcontentloaded", timeout=SLOW_MS)
    page.get_by_role("heading", name="Grad-CAM").first.wait_for(timeout=SLOW_MS)
    captions = page.locator('[data-testid="stImageCaption"]').filter(has_text="map-kept change")
    captions.first.wait_for(timeout=SLOW_MS)
    page.wait_for_selector(IDLE, state="attached", timeout=SLOW_MS)  # every map is drawn
    assert_no_exception(page)
    text = page.locator("body").inner_text()
    assert "layer2 (4x4 map)" in text
    for title in ("real test #0", "real test #1", "cyclegan_cpu-sample #", "real train #",
                  "synthetic_base", "augment"):
        assert title in text, title
    assert "No model trained on synthetic images" not in text
    # the shipped base model and the two trained on synthetic images, 6 maps each (2 real, 2
    # synthetic, 2 sources): each drawn with its figures, or flat and said so (a model sure of
    # its answer, P near 0 or 1, can give a constant map)
    drawn, flat = captions.count(), text.count("came out constant")
    assert drawn + flat == 18 and drawn >= 12, (drawn, flat)
    assert text.count("ROAD ") >= drawn and page.locator(IMAGES).count() >= drawn
    shot(page, "gradcam-shipped")


def test_predict_opens_with_the_shipped_model_predicting_the_preselected_image(page,
                                                                               app_server):
    page.goto(f"{app_server.url}/predict", wait_until="domcontentloaded", timeout=SLOW_MS)
    page.get_by_role("heading", name="Predict").first.wait_for(timeout=SLOW_MS)
    page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text="at its val threshold").first.wait_for(timeout=SLOW_MS)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=SLOW_MS)
    page.wait_for_selector(IDLE, state="attached", timeout=SLOW_MS)  # the run has finished
    assert_no_exception(page)
    text = page.locator("body").inner_text()
    assert "P(pneumonia)" in text and "at 0.5:" in text and "test #0" in text
    assert page.locator('[data-testid="stMetric"]').count() == 3  # every shipped model
    shot(page, "predict-shipped")


def test_nothing_was_trained_on_the_fresh_root(app_server):
    from synthmed_core.store import Store
    root = app_server.data["root"]
    runs = Store(root / "synthmed.duckdb").runs()
    assert len(runs) and (runs["origin"] != "local").all()
    assert not (root / "runs").exists() or not any((root / "runs").iterdir())
    assert len(list((root / "models").glob("*.safetensors"))) == 3  # the shipped models
