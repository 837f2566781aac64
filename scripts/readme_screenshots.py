"""The README's screenshots, from real runs at 1440 px as a user sees them, into docs/img/.

    python scripts/readme_screenshots.py [--data data] [--out data/screenshots/readme]

Starts the explorer on ``--data`` (default: this machine's data root, whose runs have their
weights here, so Grad-CAM and Predict can use them), then shoots: the filled Accuracy grid; a
cell's detail on its Calibration tab; the Grad-CAM page (a real test image, a synthetic image
and its real partner); Predict with an uploaded DICOM made from a real test image. Each is
cropped to the main area, scaled to at most 1000 px wide and palette-compressed into docs/img/
(tens of KB each); the sidebar's live job progress comes from the browser tests' screenshot
when they have run. Needs chromium (scripts/setup_browser.sh).
"""
from __future__ import annotations

import argparse
import io
import os
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from browser_helpers import (GRID_SQUARES, app_env, assert_no_exception,  # noqa: E402
                             chromium_browser, click_square, open_page, running_app)

WIDTH, HEIGHT = 1440, 1000
MAIN = 300  # px of the sidebar at 1440: the README shows the main area
TARGET = REPO / "docs" / "img"
UPLOAD = '[data-testid="stFileUploaderDropzoneInput"]'


def dicom_of_a_test_image(medmnist: Path, index: int = 3) -> bytes:
    """A 16-bit MONOCHROME2 DICOM (256 x 256) of a real PneumoniaMNIST test image."""
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    with np.load(medmnist / "pneumoniamnist.npz") as npz:
        image = np.asarray(Image.fromarray(npz["test_images"][index]).resize((256, 256)))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = (SecondaryCaptureImageStorage,
                                                                     generate_uid())
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName = "CR", "Anonymous"
    ds.Rows, ds.Columns = image.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (image.astype(np.uint16) * 16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def publish(shot: Path, name: str, box: tuple[int, int, int, int] | None = None,
            width: int = 1000) -> None:
    """Crop ``shot`` to ``box`` (default: the main area, whole height), scale it to at most
    ``width`` px and save it palette-compressed as docs/img/``name``."""
    image = Image.open(shot).convert("RGB")
    image = image.crop(box or (MAIN, 0, image.width, image.height))
    if image.width > width:
        image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    TARGET.mkdir(parents=True, exist_ok=True)
    image.save(TARGET / name, optimize=True)
    print(f"{TARGET / name}: {image.width}x{image.height}, {(TARGET / name).stat().st_size // 1024} KB")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO / "data")
    p.add_argument("--out", type=Path, default=REPO / "data" / "screenshots" / "readme")
    a = p.parse_args()
    medmnist = Path(os.environ.get("SYNTHMED_MEDMNIST_ROOT") or REPO.parent / "shared" / "data")
    env = app_env(a.data.resolve(), medmnist)
    env.pop("SYNTHMED_DB", None)
    a.out.mkdir(parents=True, exist_ok=True)
    with running_app(env, a.out / "streamlit.log") as app, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})

        open_page(page, app.url, "accuracy_grid", timeout_ms=120_000)
        chart = page.locator(".st-key-grid_chart_resnet18")
        chart.wait_for()
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        page.screenshot(path=str(a.out / "grid.png"))
        publish(a.out / "grid.png", "explorer-grid.png")

        click_square(page, chart.locator(GRID_SQUARES).nth(1))  # the 2nd square
        heading = page.get_by_role("heading", name=re.compile(r"^Cell resnet18\b"))
        heading.wait_for(timeout=60_000)
        page.get_by_role("tab", name="Calibration").click()
        page.wait_for_timeout(2500)
        assert_no_exception(page)
        page.get_by_role("tabpanel").locator(".js-plotly-plot").last.scroll_into_view_if_needed()
        page.screenshot(path=str(a.out / "cell-detail.png"), full_page=True)
        publish(a.out / "cell-detail.png", "explorer-cell-detail.png")

        open_page(page, app.url, "gradcam", timeout_ms=180_000)
        page.get_by_role("heading", name="Grad-CAM").first.wait_for()
        page.locator('[data-testid="stImageCaption"]').nth(2).wait_for(timeout=180_000)
        page.wait_for_timeout(1500)
        assert_no_exception(page)
        page.screenshot(path=str(a.out / "gradcam.png"), full_page=True)
        publish(a.out / "gradcam.png", "explorer-gradcam.png")

        open_page(page, app.url, "predict", timeout_ms=120_000)
        page.get_by_role("heading", name="Predict").first.wait_for()
        page.get_by_text("Upload a file", exact=True).click()  # it opens on a test image
        page.locator(UPLOAD).wait_for(state="attached", timeout=60_000)
        page.locator(UPLOAD).set_input_files({"name": "chest.dcm", "mimeType": "application/dicom",
                                              "buffer": dicom_of_a_test_image(medmnist)})
        prob = page.locator('[data-testid="stMetric"]').filter(has_text="P(pneumonia)").first
        prob.wait_for(timeout=120_000)
        page.wait_for_timeout(2000)
        prob.scroll_into_view_if_needed()  # the predictions and their CAMs, under the upload
        assert_no_exception(page)
        page.screenshot(path=str(a.out / "predict.png"), full_page=True)
        publish(a.out / "predict.png", "explorer-predict.png")
    # The sidebar's live job progress is shot by the browser tests (a job queued and run).
    job = REPO / "data" / "screenshots" / "job-progress.png"
    if job.is_file():
        publish(job, "explorer-sidebar-job.png", (0, 600, 300, 1000), 300)
    return 0


if __name__ == "__main__":
    sys.exit(main())
