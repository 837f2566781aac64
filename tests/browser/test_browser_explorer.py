"""The explorer in a real browser (Debian chromium + Playwright), one server for all tests."""
from __future__ import annotations

import io
import re

import numpy as np

from browser_helpers import (SHARED_DATA, assert_no_exception, choose, element_pixels, open_page,
                             shot)


def test_home_loads_with_its_title_and_no_exception(page, app_server):
    open_page(page, app_server.url)
    page.get_by_role("heading", name="synthmed").first.wait_for()
    assert_no_exception(page)
    shot(page, "home")


# ---- Grad-CAM ---------------------------------------------------------------------------------

CAM_CAPTION = '[data-testid="stImageCaption"]'
MAP_SIZE = re.compile(r"(\S+) \((\d+)x(\d+) map\)")


def _heat_spread(pixels: np.ndarray) -> float:
    """How much the colour of the heat map varies over an overlay. The X-ray under it is grey
    (R = G = B), so R - B is the heat map's contribution alone: constant for a flat CAM however
    much the X-ray varies."""
    return float((pixels[..., 0] - pixels[..., 2]).std())


def test_gradcam_shows_two_overlays_that_are_not_constant(page, app_server):
    open_page(page, app_server.url, "gradcam", timeout_ms=90_000)
    page.get_by_role("heading", name="Grad-CAM").first.wait_for()
    # EigenCAM, not the default GradCAM: the seeded run trained for seconds predicts nearly one
    # class, and GradCAM's ReLU'd map of such a model can be all zeros on an image (the page
    # then rightly warns instead of drawing). EigenCAM needs no gradients.
    choose(page, "CAM method", "EigenCAM")
    captions = page.locator(CAM_CAPTION).filter(has_text="EigenCAM")
    captions.nth(1).wait_for(timeout=90_000)  # the newest run: real image and synthetic image
    assert_no_exception(page)
    images = page.locator('[data-testid="stImage"]').filter(has=captions).locator("img")
    assert images.count() >= 2
    for k in range(2):
        text = captions.nth(k).inner_text()
        layer = MAP_SIZE.search(text)
        assert layer, f"the caption names no layer and map size: {text!r}"
        assert int(layer.group(2)) >= 4, f"degenerate map shown: {text!r}"
        pixels = element_pixels(images.nth(k))
        assert pixels.std() > 5, f"overlay {k} is a flat image"
        assert _heat_spread(pixels) > 5, f"overlay {k} has a constant heat map: {text!r}"
    shot(page, "gradcam")


# ---- Predict ----------------------------------------------------------------------------------

UPLOAD = '[data-testid="stFileUploaderDropzoneInput"]'
UPLOAD_ERROR = "Cannot use this file"


def _png_of_a_test_image() -> bytes:
    from PIL import Image

    with np.load(SHARED_DATA / "pneumoniamnist.npz") as npz:
        image = npz["test_images"][3]
    out = io.BytesIO()
    Image.fromarray(image).resize((128, 128)).save(out, format="PNG")
    return out.getvalue()


def test_a_bad_upload_shows_an_error_and_a_good_one_then_gets_probabilities(page, app_server):
    open_page(page, app_server.url, "predict", timeout_ms=60_000)
    page.get_by_role("heading", name="Predict").first.wait_for()
    page.locator(UPLOAD).set_input_files(
        {"name": "xray.png", "mimeType": "image/png", "buffer": b"not an image at all\n" * 8})
    error = page.locator('[data-testid="stAlert"]').filter(has_text=UPLOAD_ERROR)
    error.wait_for()
    assert_no_exception(page)
    shot(page, "predict-bad-upload")

    page.locator(UPLOAD).set_input_files(
        {"name": "xray.png", "mimeType": "image/png", "buffer": _png_of_a_test_image()})
    prob = page.locator('[data-testid="stMetric"]').filter(has_text="P(pneumonia)").first
    prob.wait_for(timeout=60_000)
    value = float(prob.locator('[data-testid="stMetricValue"]').inner_text())
    assert 0.0 <= value <= 1.0
    assert error.count() == 0, "the old error is still shown after a good upload"
    assert_no_exception(page)
    shot(page, "predict")
