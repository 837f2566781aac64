"""Predict: P(pneumonia) from chosen finished runs for a test image (one is picked when the page
opens) or an uploaded image, each with its decision at 0.5 and at its val threshold, and its
CAM. Every run whose weights are here (shipped or trained here) is chosen at first. Uploads are decoded by synthmed_core.data.uploads (PNG, JPEG, DICOM); a file that
cannot be used gets one clear error and the page keeps working."""
from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from synthmed_core.catalog import CAM_METHODS, CAM_TARGETS
from synthmed_core.data.uploads import FORMATS, MAX_UPLOAD_BYTES, read_upload
from synthmed_core.errors import SynthmedError
from synthmed_core.text import md_literal
from ui import images as ux
from ui import readers

if TYPE_CHECKING:
    import numpy as np

SOURCES = ("A test image", "Upload a file")
MAX_RUNS = 4  # preselected: every model here, up to this many
INTRO = ("Pick an image of the real test split or upload a chest X-ray ({formats}, up to {mb} "
         "MB). It is converted the way MedMNIST images were made (grayscale, centre square, "
         "28x28), then each run resizes it to its own input size as in training. Colour images "
         "are converted to grayscale and 16-bit images scaled by their range; of a multi-frame "
         "file only the first frame is decoded and used. These are research models, not a "
         "diagnosis.")


def upload_limit_mb() -> int:
    """The smaller of the server's upload limit and the decoder's own."""
    return min(int(st.get_option("server.maxUploadSize")), MAX_UPLOAD_BYTES // 2**20)


def image_from_upload(name: str, data: bytes) -> np.ndarray | None:
    """The decoded grayscale image of an uploaded file (each run resizes it to its data size
    the importer's way), or None after showing why it cannot be used."""
    try:
        upload = read_upload(name, data)
    except SynthmedError as exc:
        st.error(f"Cannot use this file: {md_literal(exc)}")
        return None
    if upload.note:
        st.info(f"{md_literal(name)}: {md_literal(upload.note)}.")
    return upload.image


def pick_image() -> tuple[str, np.ndarray | None]:
    source = st.radio("Image", SOURCES, horizontal=True, key="predict_source")
    if source == "Upload a file":
        upload = st.file_uploader(f"{FORMATS} file", key="predict_upload")
        if upload is None:
            st.info("Upload an image to see the runs' predictions.")
            return "", None
        return upload.name, image_from_upload(upload.name, upload.getvalue())
    test = readers.real_split("test")
    i = st.number_input(f"Test image (0-{len(test.labels) - 1})", 0, len(test.labels) - 1, 0,
                        key="predict_test_index")
    label = ux.class_caption(test.labels[i])
    return f"test #{i} (label: {label})", readers.RealImage("test", int(i))


def pick_runs(db: str) -> list[str]:
    return ux.pick_runs(db, "predict_runs", MAX_RUNS, "No finished run in the store yet: "
                        "train one (profile `smoke` takes seconds).")


def show_predictions(db: str, run_ids: list[str], title: str, image: np.ndarray,
                     method: str, target: str, opacity: float) -> None:
    st.subheader("Predictions")
    labels = {r["run_id"]: ux.run_label(r) for r in readers.finished_runs(db).to_dict("records")}
    thresholds = readers.val_thresholds(db)
    for col, run_id in zip(st.columns(max(1, len(run_ids))), run_ids):
        with col:
            st.markdown(f"**{md_literal(labels.get(run_id, run_id))}**")
            try:
                version = readers.finished_at(db, run_id)
                result = readers.cams(db, run_id, version, method, target, (image,))[0]
            except SynthmedError as exc:
                st.error(f"This run cannot predict: {md_literal(exc)}")
                continue
            st.metric("P(pneumonia)", f"{result.prob:.3f}")
            st.markdown(ux.decisions(result.prob, thresholds.get(run_id)))
            ux.show_cam(result, title, opacity)


def main() -> None:
    st.title("Predict")
    st.caption(INTRO.format(formats=FORMATS, mb=upload_limit_mb()))
    db = readers.db()
    try:
        run_ids = pick_runs(db)
        left, right = st.columns(2)
        method = left.selectbox("CAM method", list(CAM_METHODS), key="predict_method")
        target = right.selectbox("Class explained", list(CAM_TARGETS), key="predict_target")
        title, image = pick_image()
    except SynthmedError as exc:
        st.error(f"Cannot read the runs or the test images: {md_literal(exc)}")
        return
    if image is None:
        return
    ux.image_tile(readers.at_data_size(image, 28), f"{title} at 28x28 (each run sees it at its "
                  "own data size)", width=168)
    if run_ids:
        show_predictions(db, run_ids, title, image, method, target,
                         ux.opacity_slider("predict_opacity"))


main()
