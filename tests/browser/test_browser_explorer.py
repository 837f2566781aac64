"""The explorer in a real browser (Debian chromium + Playwright), one server for all tests."""
from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlencode, urlparse

import numpy as np
import pytest

from browser_helpers import (GRID_SQUARES, GRID_TEXTS, IDLE, SHARED_DATA, assert_no_exception,
                             choose, click_square, element_pixels, open_page, shot)

pytestmark = pytest.mark.browser


def test_home_loads_with_its_title_and_no_exception(page, app_server):
    open_page(page, app_server.url)
    page.get_by_role("heading", name="synthmed").first.wait_for()
    page.locator(GRID_SQUARES).first.wait_for()  # the headline grid of the seeded runs
    assert_no_exception(page)
    shot(page, "home")


def test_a_page_opened_by_its_url_on_a_fresh_server_has_the_sidebar(app_server):
    """A bookmark of /accuracy_grid must get the whole app (sidebar, wide layout). Streamlit
    1.67 runs app_pages/<name>.py by itself, without app.py, when a folder named `pages` sits
    beside the entry script and no session has run st.navigation yet
    (PagesManager.uses_pages_directory): the fix is a page folder with another name."""
    assert app_server.first_visit_sidebar, (
        "the first visit to /accuracy_grid on a fresh server had no sidebar: Streamlit ran "
        "app_pages/accuracy_grid.py without app.py; rename app_pages/ (e.g. app_pages/)")



# ---- Accuracy grid ----------------------------------------------------------------------------

CHART = '[data-testid="stPlotlyChart"]'  # curves, calibration: Plotly
GRID_CHART = '[data-testid="stVegaLiteChart"]'  # the grid's panels: Vega-Lite (Altair)


def panel_markers(page, arch: str):
    """The squares of one arch's panel (the chart's key is grid_chart_<arch>)."""
    return page.locator(f".st-key-grid_chart_{arch} {GRID_SQUARES}")


def test_the_accuracy_grid_renders_one_panel_per_arch(page, app_server):
    open_page(page, app_server.url, "accuracy_grid")
    page.get_by_role("heading", name="Accuracy grid").first.wait_for()
    for arch in ("deit_tiny", "resnet18", "resnet50"):  # seed_store.py's cells
        panel_markers(page, arch).first.wait_for(state="visible")
    assert page.locator(GRID_CHART).count() >= 3
    # 8 resnet50 cells ran (2 inits x 4 settings); the study-only cells are extra markers
    assert panel_markers(page, "resnet50").count() >= 8
    assert_no_exception(page)
    shot(page, "accuracy-grid")


# The boxes of every square and every square's text, read from the rendered SVG, per panel.
_BOXES = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')].map(t => {
    const box = e => { const r = e.getBoundingClientRect();
                       return [r.left, r.top, r.right, r.bottom]; };
    return {points: [...t.querySelectorAll('g.mark-symbol.role-mark path')].map(box),
            texts: [...t.querySelectorAll('g.mark-text.role-mark text')].map(box)};
})"""


def _overlap(a, b, tol=0.5) -> bool:
    return min(a[2], b[2]) - max(a[0], b[0]) > tol and min(a[3], b[3]) - max(a[1], b[1]) > tol


@pytest.mark.parametrize("width", [1280, 1920])
def test_grid_squares_never_overlap_and_their_labels_stay_inside_at_any_width(
        browser, app_server, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        open_page(page, app_server.url, "accuracy_grid")
        page.locator(GRID_SQUARES).first.wait_for(state="visible")
        page.wait_for_timeout(500)  # every panel drawn
        traces = page.evaluate(_BOXES)
        squares = [b for t in traces for b in t["points"]]
        assert len(squares) >= 8
        clashes = [(a, b) for i, a in enumerate(squares) for b in squares[i + 1:]
                   if _overlap(a, b)]
        assert not clashes, f"{len(clashes)} pairs of squares overlap at {width} px: {clashes[:3]}"
        for t in traces:  # every line of text lies whole inside one square
            for text in t["texts"]:
                cx, cy = (text[0] + text[2]) / 2, (text[1] + text[3]) / 2
                home = [q for q in t["points"] if q[0] <= cx <= q[2] and q[1] <= cy <= q[3]]
                assert len(home) == 1, f"a label {text} is in {len(home)} squares at {width} px"
                square = home[0]
                inside = (text[0] >= square[0] - 1 and text[2] <= square[2] + 1
                          and text[1] >= square[1] - 1 and text[3] <= square[3] + 1)
                assert inside, f"a label {text} leaves its square {square} at {width} px"
        assert_no_exception(page)
        shot(page, f"accuracy-grid-{width}")
    finally:
        context.close()


def test_clicking_a_grid_cell_opens_its_detail(page, app_server):
    open_page(page, app_server.url, "accuracy_grid")
    first = panel_markers(page, "resnet50").first
    first.wait_for(state="visible")
    click_square(page, first)
    heading = page.get_by_role("heading", name=re.compile(r"^Cell resnet50\b"))
    heading.wait_for()
    name = heading.inner_text().removeprefix("Cell ").strip()
    assert page.get_by_role("combobox", name=re.compile("^Cell detail")).input_value() == name
    # its runs, training curves and confusion matrix, each in a tab below the grid
    page.get_by_role("tabpanel").locator('[data-testid="stDataFrame"]').first.wait_for()
    page.get_by_role("tab", name="Training curves").click()
    page.locator(f".st-key-cell_curves {CHART}").wait_for()
    page.get_by_role("tab", name="Confusion matrix").click()
    page.locator('[data-testid="stTable"]').filter(has_text="pneumonia").first.wait_for()
    page.get_by_role("tab", name="Runs").click()
    assert_no_exception(page)
    heading.scroll_into_view_if_needed()
    shot(page, "cell-detail")


def test_the_claims_and_the_grid_table_are_drawn_when_their_expander_opens(page, app_server):
    open_page(page, app_server.url, "accuracy_grid")
    panel_markers(page, "resnet50").first.wait_for(state="visible")
    tables = page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]')
    assert tables.count() == 0  # a new tab draws the grid, not its tables
    for label in ("The study's conclusions, checked on these runs", "The grid as a table"):
        page.locator('[data-testid="stExpander"] summary').filter(has_text=label).click()
        page.wait_for_selector(IDLE, state="attached")
    tables.nth(1).wait_for()
    assert tables.count() == 2
    assert_no_exception(page)
    tables.first.scroll_into_view_if_needed()
    shot(page, "grid-claims-open")


def _query(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def _shows_the_view(page, view: dict[str, str]) -> None:
    """The grid page shows ``view`` (the link's parameters) in its widgets and its charts."""
    main = page.locator('[data-testid="stMain"]')
    heading = page.get_by_role("heading", name=f"Cell {view['cell']}", exact=True)
    heading.wait_for()
    assert main.get_by_role("combobox", name="Metric (test split)").input_value() == "auroc"
    assert main.get_by_role("combobox", name="Profile", exact=True).input_value() == "smoke"
    # the finer options: summed up on the popover's button, drawn in it once it opens
    button = main.get_by_role("button", name=re.compile("α 0.01"))
    assert "study hidden · α 0.01 · Benjamini-Hochberg · colour: Δ base" in button.inner_text()
    button.click()
    alpha = page.get_by_role("combobox", name="α")  # the popover's body is outside stMain
    alpha.wait_for()
    assert alpha.input_value() == "0.01"
    assert page.get_by_role("combobox", name="Correction").input_value() == "Benjamini-Hochberg"
    assert page.get_by_role("radio", name=re.compile("^difference from the arch's base")
                            ).is_checked()
    assert not page.get_by_label("Show the study's values").is_checked()  # a toggle
    page.keyboard.press("Escape")
    # coloured by the difference from base: the squares say Δ; no study-only grey squares
    texts = page.locator(f".st-key-grid_chart_resnet50 {GRID_TEXTS}")
    texts.filter(has_text="Δ").first.wait_for()
    assert texts.filter(has_text="study").count() == 0
    assert {k: v[0] for k, v in _query(page).items()} == view  # the URL keeps the view
    assert_no_exception(page)


def test_a_grid_url_with_parameters_reopens_the_same_view(browser, app_server):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(90_000)  # first visits on the loaded 2-core box: up to ~90 s
    try:
        page = context.new_page()
        open_page(page, app_server.url, "accuracy_grid?profile=smoke", timeout_ms=180_000)
        square = panel_markers(page, "resnet50").first
        square.wait_for(state="visible")
        click_square(page, square)  # a click puts the cell in the URL
        heading = page.get_by_role("heading", name=re.compile(r"^Cell resnet50\b"))
        heading.wait_for()
        name = heading.inner_text().removeprefix("Cell ").strip()
        page.wait_for_function("() => location.search.includes('cell=')")
        assert _query(page)["cell"] == [name] and _query(page)["profile"] == ["smoke"]

        view = {"metric": "auroc", "profile": "smoke", "study": "0", "alpha": "0.01",
                "correction": "bh", "colour": "vs_base", "cell": name}
        shared = context.new_page()  # the link opened in a new tab: a new session
        open_page(shared, app_server.url, "accuracy_grid?" + urlencode(view), timeout_ms=180_000)
        _shows_the_view(shared, view)
        shot(shared, "accuracy-grid-from-url")
        shared.reload(wait_until="domcontentloaded")  # and reloaded
        shared.wait_for_selector(IDLE, state="attached", timeout=180_000)
        _shows_the_view(shared, view)
    finally:
        context.close()


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
    boxes = [images.nth(k).bounding_box() for k in range(images.count())]
    for i, a in enumerate(boxes):  # side by side in their columns, never over each other
        for b in boxes[i + 1:]:
            overlap_x = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
            overlap_y = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
            assert overlap_x <= 1 or overlap_y <= 1, f"two CAM images overlap: {a} {b}"
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
    page.get_by_text("Upload a file", exact=True).click()  # the page opens on a test image
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


# ---- a job from the sidebar -------------------------------------------------------------------

SIDEBAR = '[data-testid="stSidebar"]'


def test_a_smoke_job_from_the_sidebar_shows_progress_then_lands_in_the_grid(page, app_server):
    """resnet18/scratch/base has one seeded run (seed 0); queueing seed 1 must move its square
    from n=1 to n=2 while the page stays open: no reload, no click."""
    open_page(page, app_server.url, "accuracy_grid")
    square = page.locator(f".st-key-grid_chart_resnet18 {GRID_TEXTS}")
    square.filter(has_text="n=1").first.wait_for()
    sidebar = page.locator(SIDEBAR)
    sidebar.locator('[data-testid="stExpander"] summary').filter(has_text="Train a cell").click()
    sidebar.get_by_text("Architecture").wait_for()  # the form is built when its expander opens
    for label, value in (("Architecture", "resnet18"), ("Initialisation", "scratch"),
                         ("Setting", "base"),
                         ("Profile", "smoke: a seconds-long try of the form")):
        choose(page, label, value, within=sidebar)
    sidebar.get_by_role("textbox", name="Seeds", exact=True).fill("1")
    sidebar.get_by_role("button", name="Queue").click()
    sidebar.locator('[data-testid="stAlert"]').filter(has_text="queued job").wait_for()
    progress = sidebar.locator('[data-testid="stProgress"]').filter(has_text="resnet18")
    progress.first.wait_for(timeout=30_000)  # queued, then running: the bar polls by itself
    progress.filter(has_text=re.compile(r"epoch \d+/\d+")).first.wait_for(timeout=120_000)
    shot(page, "job-progress")

    square.filter(has_text="n=2").first.wait_for(timeout=240_000)
    sidebar.get_by_text("Nothing queued or running").wait_for(timeout=30_000)
    assert_no_exception(page)
    shot(page, "job-done")
