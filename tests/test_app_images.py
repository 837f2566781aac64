"""The image pages (Gallery, Grad-CAM, Predict) headless with AppTest, through app.py's
navigation, on a store in tmp_path: finished runs whose checkpoints are seeded random inits
(saved through synthmed_core.training.checkpoints), a synthetic set of exact copies of known
real train images, and the real PneumoniaMNIST test split."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_uploads import BAD, dicom_bytes

from synthmed_core.data.real import load_real
from synthmed_core.explain import cams as explain
from synthmed_core.paths import REPO_ROOT
from synthmed_core.store import Store
from synthmed_core.data.synthetic import set_dir, update_card, write_set

from app_helpers import texts
from explain_helpers import flatten_layer2, record_model_run

pytestmark = pytest.mark.train

APP = str(REPO_ROOT / "app.py")
SET = "copies"


@pytest.fixture
def explorer(real_data, one_thread) -> dict:
    """Three finished runs (resnet18, deit_tiny, and a resnet18 whose CAM layer is flat) and a
    registered set whose image k is an exact copy of real train row ``rows[k]``."""
    store = Store()
    resnet, resnet_model = record_model_run(store, "resnet18", seed=0)
    deit, _ = record_model_run(store, "deit_tiny", seed=0)
    flat, _ = record_model_run(store, "resnet18", seed=1, alter=flatten_layer2)
    train = load_real("train")
    rows = np.concatenate([np.flatnonzero(train.labels == c)[5:25:2] for c in (0, 1)])
    write_set(SET, train.images[rows], train.labels[rows].reshape(-1, 1).astype(np.uint8),
              {"method": "test-copies", "parameters": {"rows": "10 per class"}})
    store.register_synthetic_set(SET, update_card(SET), str(set_dir(SET)))
    return {"store": store, "resnet": resnet, "deit": deit, "flat": flat, "rows": rows,
            "resnet_model": resnet_model, "train": train}


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def captions(at: AppTest) -> list[str]:
    return [c for img in at.image for c in img.captions]


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


# ---- Grad-CAM -----------------------------------------------------------------------------


def test_gradcam_shows_a_real_and_a_synthetic_overlay_per_run_with_layer_and_map_size(explorer):
    at = open_page("gradcam")
    at.multiselect(key="cam_runs").set_value([explorer["resnet"], explorer["deit"]])
    at.selectbox(key="cam_method").set_value("EigenCAM")  # informative even for random weights
    at.text_input(key="cam_test_rows").set_value("7")
    at.text_input(key="cam_synth_rows").set_value("0")  # (the page opens on one per class)
    at.run()
    assert not at.exception and not at.warning and not at.error
    shown = captions(at)
    assert len(shown) == 6, shown  # 2 runs x (real, synthetic, its real partner)
    assert sum("real test #7" in c for c in shown) == 2
    assert sum(f"{SET} #0" in c for c in shown) == 2
    assert sum("real train #" in c and "its nearest real" in c for c in shown) == 2
    assert sum("on layer layer2 (4x4 map)" in c for c in shown) == 3
    assert sum("on layer blocks[-1].norm1 (7x7 map)" in c for c in shown) == 3
    test = load_real("test")
    p = explain.predict_proba(explorer["resnet_model"], test.images[7])[0]
    assert any("real test #7" in c and f"P(pneumonia) = {p:.3f}" in c for c in shown)


def test_gradcam_is_a_runs_by_images_panel_with_same_method_and_class_for_all(explorer):
    at = open_page("gradcam")
    at.multiselect(key="cam_runs").set_value([explorer["resnet"]])
    at.selectbox(key="cam_method").set_value("EigenCAM")
    at.text_input(key="cam_test_rows").set_value("7 12")
    at.text_input(key="cam_synth_rows").set_value("0-1")
    at.run()
    assert not at.exception and not at.error
    shown = captions(at)
    assert len(shown) == 6  # 2 real + 2 synthetic, each synthetic with its real partner
    assert all("EigenCAM of class" in c for c in shown)
    at.text_input(key="cam_test_rows").set_value("7 seven").run()
    assert any("cannot read 'seven'" in e for e in texts(at.error))


def test_gradcam_says_a_constant_map_is_constant_instead_of_drawing_it(explorer):
    at = open_page("gradcam")
    at.multiselect(key="cam_runs").set_value([explorer["flat"]])
    at.text_input(key="cam_test_rows").set_value("7")  # (the page opens on one per class)
    at.text_input(key="cam_synth_rows").set_value("0")
    at.run()
    assert not at.exception and not at.image
    assert len(at.warning) == 3  # real, synthetic and its real partner
    assert all("came out constant" in w.value and "layer2" in w.value for w in at.warning)


def test_gradcam_with_no_finished_run_says_how_to_get_one(real_data):
    at = open_page("gradcam")
    assert any("No finished run" in i.value for i in at.info)


# ---- Predict -------------------------------------------------------------------------------


def test_predict_gives_the_same_probability_for_an_upload_and_the_test_image(explorer):
    test = load_real("test")
    expected = explain.predict_proba(explorer["resnet_model"], test.images[11])[0]
    at = open_page("predict")
    at.multiselect(key="predict_runs").set_value([explorer["resnet"]])
    at.radio(key="predict_source").set_value("Upload a file").run()
    at.file_uploader(key="predict_upload").set_value(("xray.png", png(test.images[11]),
                                                      "image/png"))
    at.run()
    assert not at.exception and not at.error
    assert [m.value for m in at.metric] == [f"{expected:.3f}"]
    at.radio(key="predict_source").set_value("A test image").run()
    at.number_input(key="predict_test_index").set_value(11)
    at.run()
    assert [m.value for m in at.metric] == [f"{expected:.3f}"]


def test_every_bad_upload_gets_a_clear_error_and_a_good_one_still_works(explorer):
    at = open_page("predict")
    at.multiselect(key="predict_runs").set_value([explorer["resnet"], explorer["deit"]])
    at.radio(key="predict_source").set_value("Upload a file").run()
    for kind, (name, make, words) in BAD.items():
        at.file_uploader(key="predict_upload").set_value((name, make(), "application/octet-stream"))
        at.run()
        assert not at.exception, kind
        shown = texts(at.error)
        assert len(shown) == 1 and words in shown[0] and name in shown[0], kind
        assert not at.metric, kind
    rgb = np.stack([load_real("test").images[3]] * 3, axis=-1)  # an RGB file works too
    at.file_uploader(key="predict_upload").set_value(("ok.png", png(rgb), "image/png"))
    at.run()
    assert not at.exception and not at.error
    assert len(at.metric) == 2


def test_predict_says_that_only_the_first_frame_of_a_multi_frame_dicom_is_used(real_data):
    frames = np.stack([load_real("test").images[k].astype(np.uint16) for k in range(3)])
    at = open_page("predict")
    at.radio(key="predict_source").set_value("Upload a file").run()
    at.file_uploader(key="predict_upload").set_value(("cine.dcm", dicom_bytes(frames),
                                                      "application/dicom"))
    at.run()
    assert not at.exception and not at.error
    assert [i for i in texts(at.info) if "cine.dcm" in i] == [
        "cine.dcm: only the first of its 3 frames is used."]
    assert "only the first frame is decoded" in at.caption[0].value
    assert any("each run sees it at its own data size" in c for c in captions(at))


# ---- Gallery -------------------------------------------------------------------------------


def test_gallery_shows_each_synthetic_image_beside_its_nearest_real_train_image(explorer):
    at = open_page("gallery")
    at.selectbox(key="gallery_page_size").set_value(8)
    at.run()
    rows = explorer["rows"]
    shown = captions(at)
    for k in range(8):  # normal class, page 1: the set's rows 0..7 are copies of rows[0..7]
        assert f"synthetic #{k}" in shown
        assert f"train #{rows[k]} · d=0.000" in shown, shown
    assert any("computed for this page" in c.value for c in at.caption)
    card = at.dataframe[0].value
    assert dict(zip(card["field"], card["value"]))["method"] == "test-copies"


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def test_gallery_shows_the_images_first_and_the_sets_card_folded_below_them(explorer):
    at = open_page("gallery")
    shown = list(_walk(at.main))
    first_image = next(i for i, n in enumerate(shown) if n.type == "image")
    card = next(i for i, n in enumerate(shown)
                if n.type == "expander" and n.label.startswith("Card of set"))
    assert first_image < card
    assert not shown[card].proto.expanded


def test_gallery_pages_forward_and_filters_by_class(explorer):
    at = open_page("gallery")
    at.selectbox(key="gallery_page_size").set_value(8).run()
    at.button(key="gallery_next").click().run()
    shown = captions(at)
    assert "synthetic #8" in shown and "synthetic #0" not in shown
    assert f"train #{explorer['rows'][9]} · d=0.000" in shown
    assert any("Page **2** of 2" in m.value for m in at.markdown)
    at.radio(key="gallery_class").set_value("pneumonia").run()  # back to page 1 of that class
    shown = captions(at)
    assert "synthetic #10" in shown and f"train #{explorer['rows'][10]} · d=0.000" in shown


def test_gallery_uses_the_neighbours_stored_in_the_quality_card(explorer):
    rows, train = explorer["rows"], explorer["train"]
    stored = [int(r) + 1 for r in rows]  # deliberately not the true nearest image
    card = update_card(SET, quality={"memorisation": {"nearest_train_index": stored,
                                                      "pixel": {"threshold": 0.5}},
                                     "fid": 12.5})
    explorer["store"].register_synthetic_set(SET, card, str(set_dir(SET)))
    at = open_page("gallery")
    at.selectbox(key="gallery_page_size").set_value(8).run()
    d = np.sqrt(np.mean((train.images[rows[0]] / 255.0 - train.images[stored[0]] / 255.0) ** 2))
    assert f"train #{stored[0]} · d={d:.3f} · near-copy" in captions(at)
    assert any("stored by the quality run" in c.value for c in at.caption)
    quality = at.dataframe[1].value
    assert list(quality["figure"]) == ["FID"] and quality["this set"][0] == 12.5


def test_runs_whose_weights_are_not_here_are_offered_for_reproduction_instead(explorer,
                                                                             workers_started):
    # e.g. shipped results, or a database copied from a GPU machine without its checkpoints
    Path(explorer["store"].run(explorer["flat"])["checkpoint"]).unlink()
    for page, key, preselected in (("predict", "predict_runs", 2), ("gradcam", "cam_runs", 2)):
        at = open_page(page)
        picker = at.multiselect(key=key)
        offered = " ".join(picker.options)  # the labels, which end in the run id's first 8
        assert explorer["flat"][:8] not in offered
        assert explorer["resnet"][:8] in offered and explorer["deit"][:8] in offered
        assert len(picker.value) == preselected and explorer["flat"] not in picker.value
        assert "1 finished runs have no weights" in at.expander[0].label, page
        assert [explorer["flat"][:8] in o for o in at.selectbox(key=f"{key}_away").options] \
            == [True]
    at.button(key="cam_runs_reproduce").click().run()
    queued = explorer["store"].jobs()
    assert list(queued["run_id"]) == [explorer["flat"]]
    assert queued["label"].iloc[0].startswith("reproduce ") and workers_started


def test_gradcam_over_many_images_shows_mean_maps_and_two_runs_agreement(explorer):
    at = open_page("gradcam")
    at.multiselect(key="cam_runs").set_value([explorer["resnet"], explorer["deit"]])
    at.selectbox(key="cam_method").set_value("EigenCAM")
    at.run()
    at.slider(key="cam_many_n").set_value(8)
    at.button(key="cam_many_go").click().run()
    assert not at.exception and not at.error
    text = " ".join(m.value for m in at.markdown)
    assert "Spearman correlation of the two mean maps" in text
    assert "Agreement of" in text and "top-20% pixels shared" in text
