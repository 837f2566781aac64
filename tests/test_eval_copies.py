"""Copies of real val and test images inside a set: counted per split when a set is written
(imported, generated, selected) and stored in its card; a set holding any test copy is refused
unless allowed, and runs on such a set are flagged in the grid and left out of the claims."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from synthmed_core.explorer.claims import check_claims
from synthmed_core.explorer.claims_text import format_claims
from synthmed_core.cli import main
from synthmed_core.data.real import load_real
from synthmed_core.errors import SpecError
from synthmed_core.explorer.heatmap_view import grid_cells
from synthmed_core.store import Store
from synthmed_core.synth import copies
from synthmed_core.synth.importer import import_folder
from synthmed_core.data.synthetic import list_sets, load_set, write_set

from grid_helpers import fill_contrast

pytestmark = pytest.mark.usefixtures("one_thread")


def png_folder(root, images, labels):
    """A folder to import: normal/ and pneumonia/ holding ``images`` as PNG files."""
    for i, (im, y) in enumerate(zip(images, labels)):
        folder = root / ("pneumonia" if y else "normal")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(folder / f"{i:03d}.png")
    return root


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf))


# ---- what counts as a copy ---------------------------------------------------------------


def test_exact_and_near_copies_are_counted_per_split(shared_medmnist):
    val, test = load_real("val").images, load_real("test").images
    brighter = np.clip(test[10:14].astype(int) + 20, 0, 255).astype(np.uint8)
    images = np.concatenate([test[:5], [jpeg(im) for im in test[5:10]], brighter, val[:3]])
    report = copies.count_eval_copies(images)
    assert (report["test"]["exact"], report["test"]["near"]) == (5, 9)
    assert (report["val"]["exact"], report["val"]["near"]) == (3, 0)
    assert report["test"]["examples"][:6] == [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 5]]


def test_real_train_images_are_no_copies_of_test_images(shared_medmnist):
    report = copies.count_eval_copies(load_real("train").images)
    assert report["test"]["exact"] == report["test"]["near"] == 0
    assert report["val"]["exact"] == 10  # PneumoniaMNIST's own duplicates: counted, not refused


def test_images_of_another_size_are_compared_at_28_px(shared_medmnist):
    test = load_real("test").images[:4]
    big = np.stack([np.asarray(Image.fromarray(im).resize((112, 112), Image.BICUBIC))
                    for im in test])
    report = copies.count_eval_copies(big)
    assert report["test"]["exact"] + report["test"]["near"] == 4


def test_lightly_edited_copies_of_test_images_are_caught_whatever_the_edit(shared_medmnist):
    from synthmed_core.synth.copy_edits import EDITS, edited_copy
    test = load_real("test").images
    rng = np.random.default_rng(7)
    rows = rng.choice(len(test), size=3 * len(EDITS), replace=False)
    edited = np.stack([edited_copy(test[r], family, rng) for r, family
                       in zip(rows, [f for f in EDITS for _ in range(3)])])
    report = copies.count_eval_copies(edited)["test"]
    assert report["exact"] + report["near"] == len(edited)  # each of the 9 families, 3 times
    assert [r for r, _ in report["examples"]] == list(range(10))
    assert [t for _, t in report["examples"]] == list(rows[:10])  # matched to its source


def test_a_sample_of_real_train_images_is_no_copy_of_any_test_image(shared_medmnist):
    train = load_real("train").images
    rows = np.random.default_rng(3).choice(len(train), size=300, replace=False)
    report = copies.count_eval_copies(train[rows])["test"]
    assert report["exact"] == report["near"] == 0


def _case_10_folder(root, images, labels):
    """Issue 27's case 10: real images enlarged, rotated a few degrees, ~10% brighter or
    darker, saved as JPEG files in class folders."""
    from synthmed_core.synth.copy_edits import EDITS
    rng = np.random.default_rng(10)
    for i, (im, y) in enumerate(zip(images, labels)):
        folder = root / ("pneumonia" if y else "normal")
        folder.mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(im).resize((224, 224), Image.BICUBIC)
        EDITS["case_10"](big, rng).convert("L").save(folder / f"{i:03d}.jpg", quality=85)
    return root


def test_case_10_a_folder_of_edited_test_images_is_refused_and_writes_nothing(real_data,
                                                                               tmp_path, capsys):
    test = load_real("test")
    src = _case_10_folder(tmp_path / "edited", test.images[100:112], test.labels[100:112])
    with pytest.raises(SpecError, match="12 copies of real TEST images \\(0 exact, 12 near"):
        import_folder(src, "edited", progress=False)
    assert main(["synth", "import", str(src), "--name", "edited", "--no-progress"]) == 2
    assert "12 copies of real TEST images" in capsys.readouterr().err
    assert list_sets() == []


def test_a_bundle_whose_sample_holds_edited_test_images_its_card_does_not_record_is_refused(
        real_data, tmp_path, monkeypatch):
    from synthmed_core import bundle as bd
    from synthmed_core.errors import BundleError
    from synthmed_core.synth.copy_edits import edited_copy
    from synthmed_core.data.synthetic import set_dir
    test = load_real("test")
    rng = np.random.default_rng(5)
    images = np.stack([edited_copy(im, "all", rng) for im in test.images[:8]])
    write_set("fake-set", images, test.labels[:8].reshape(-1, 1).astype(np.uint8),
              {"method": "import", "source": "written without the check"})
    source = Store(real_data / "source.duckdb")
    source.register_synthetic_set("fake-set", load_set("fake-set")[1], str(set_dir("fake-set")))
    fill_contrast(source, real=True)
    bd.export_bundle(source, tmp_path / "bundle")
    monkeypatch.setenv("SYNTHMED_DATA", str(tmp_path / "elsewhere"))
    target = Store(tmp_path / "elsewhere" / "synthmed.duckdb")
    with pytest.raises(BundleError, match="holds 8 copies of real TEST images.*records 0"):
        bd.import_bundle(target, tmp_path / "bundle")
    assert target.store_counts()["runs"] == 0 and list_sets() == []


# ---- refused at registration ---------------------------------------------------------------


def test_importing_real_test_images_is_refused_and_writes_nothing(real_data, tmp_path):
    test = load_real("test")
    src = png_folder(tmp_path / "leak", test.images[:20], test.labels[:20])
    with pytest.raises(SpecError, match="20 copies of real TEST images.*--allow-test-copies"):
        import_folder(src, "leaked", progress=False)
    assert list_sets() == []


def test_allowed_test_copies_are_written_and_counted_in_the_card(real_data, tmp_path):
    test = load_real("test")
    src = png_folder(tmp_path / "leak", test.images[:20], test.labels[:20])
    import_folder(src, "leaked", progress=False, allow_test_copies=True)
    _, card = load_set("leaked")
    assert card["eval_copies"]["test"]["exact"] == 20 and card["eval_copies"]["val"]["exact"] == 0
    assert card["eval_copies"]["test_copies_allowed"] is True
    assert copies.test_copies(card) == 20


@pytest.mark.train
def test_a_generated_set_is_checked_and_its_card_holds_the_counts(real_data):
    from synthmed_core.synth.generate import generate
    _, card = generate("cyclegan", "smoke", "cg", per_class=4, device="cpu")
    assert copies.test_copies(card) == 0 and card["eval_copies"]["val"]["exact"] == 0


@pytest.mark.train
def test_a_generator_that_outputs_test_images_is_refused(real_data, monkeypatch):
    from synthmed_core.synth.generate import generate
    from synthmed_core.synth.generators import CycleGAN, Samples
    test = load_real("test")
    monkeypatch.setattr(CycleGAN, "sample", lambda self, counts, seed, on_batch=None: Samples(
        np.array(test.images[:8]), np.array(test.labels[:8])))
    with pytest.raises(SpecError, match="8 copies of real TEST images"):
        generate("cyclegan", "smoke", "cg", per_class=4, device="cpu")
    assert list_sets() == []


@pytest.mark.train
def test_a_selection_from_a_set_holding_test_images_is_checked(real_data, tiny_encoder):
    from synthmed_core.synth.select import select
    test = load_real("test")
    write_set("old", test.images[:10], test.labels[:10].reshape(-1, 1).astype(np.uint8),
              {"method": "written before the check"})
    with pytest.raises(SpecError, match="copies of real TEST images"):
        select("old", "centroid", 0.5, "half", encoder=tiny_encoder)
    _, card = select("old", "centroid", 0.5, "half", encoder=tiny_encoder,
                     allow_test_copies=True)
    assert copies.test_copies(card) == card["n"] > 0


# ---- shown: synth import / show, the Gallery ------------------------------------------------


def test_synth_import_refuses_test_copies_and_show_prints_the_counts(real_data, tmp_path, capsys):
    test = load_real("test")
    src = png_folder(tmp_path / "leak", test.images[:6], test.labels[:6])
    assert main(["synth", "import", str(src), "--name", "leaked", "--no-progress"]) == 2
    assert "6 copies of real TEST images" in capsys.readouterr().err
    assert main(["synth", "import", str(src), "--name", "leaked", "--no-progress",
                 "--allow-test-copies"]) == 0
    assert "test 6 exact + 0 near" in capsys.readouterr().out
    assert main(["synth", "show", "leaked"]) == 0
    shown = capsys.readouterr()
    assert json.loads(shown.out)["eval_copies"]["test"]["exact"] == 6
    assert "copies of real images: val 0 exact + 0 near, test 6 exact + 0 near" in shown.err
    card = Store().synthetic_sets().set_index("name").loc["leaked", "card_json"]
    assert json.loads(card)["eval_copies"]["test"]["exact"] == 6  # registered with the card


def test_synth_copies_checks_a_set_written_before_the_check_and_registers_the_counts(real_data,
                                                                                    capsys):
    test = load_real("test")
    write_set("old", test.images[:4], test.labels[:4].reshape(-1, 1).astype(np.uint8),
              {"method": "written before the check"})
    assert copies.test_copies(load_set("old")[1]) is None
    assert main(["synth", "copies", "old"]) == 0
    assert "test 4 exact + 0 near" in capsys.readouterr().out
    assert copies.test_copies(load_set("old")[1]) == 4
    assert copies.sets_with_test_copies(Store().synthetic_sets()) == {"old": 4}


def test_the_gallery_card_lists_copies_per_split_and_says_when_a_set_is_unchecked():
    from synthmed_core.explorer import gallery
    card = {"eval_copies": {"val": {"exact": 8, "near": 1}, "test": {"exact": 0, "near": 2}}}
    facts = gallery.card_facts(card)
    assert facts["copies of real val"] == "8 exact + 1 near"
    assert facts["copies of real test"] == "0 exact + 2 near"
    assert gallery.card_facts({})["copies of real test"].startswith("not checked")


def test_the_gallery_warns_about_a_set_holding_test_images_and_lists_its_copies(real_data,
                                                                                tmp_path):
    from streamlit.testing.v1 import AppTest

    from synthmed_core.paths import REPO_ROOT
    test = load_real("test")
    src = png_folder(tmp_path / "leak", test.images[:6], test.labels[:6])
    path, _ = import_folder(src, "leaked", progress=False, allow_test_copies=True)
    Store().register_synthetic_set("leaked", load_set("leaked")[1], str(path))
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/gallery.py").run()
    assert not at.exception
    assert any("holds 6 copies of real TEST images" in e.value for e in at.error)
    facts = at.dataframe[0].value
    assert dict(zip(facts["field"], facts["value"]))["copies of real test"] == "6 exact + 0 near"


# ---- runs on such a set: flagged in the grid, left out of the claims ------------------------


def _register(store: Store, name: str, test_exact: int) -> None:
    card = {"name": name, "method": "import", "n": 10, "counts": {"normal": 5, "pneumonia": 5},
            "eval_copies": {"val": {"exact": 0, "near": 0},
                            "test": {"exact": test_exact, "near": 0}}}
    store.register_synthetic_set(name, card, "/nowhere")


def test_runs_on_a_set_holding_test_images_are_flagged_in_the_grid(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    fill_contrast(store)  # base, and augment and synthetic_base on "fake-set"
    _register(store, "fake-set", test_exact=3)
    grid = grid_cells(store).set_index("cell")
    leaky = grid.loc["resnet50/scratch/synthetic_base/fake-set (smoke)"]
    assert leaky["test_copies"] == 3 and leaky["row"].endswith(copies.GRID_FLAG)
    base = grid.loc["resnet50/scratch/base (smoke)"]
    assert base["test_copies"] == 0 and not base["row"].endswith(copies.GRID_FLAG)


def test_claims_leave_out_runs_on_a_set_holding_test_images(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    fill_contrast(store)
    _register(store, "fake-set", test_exact=0)
    assert "synthetic_only" in set(check_claims(store)["claim"])
    _register(store, "fake-set", test_exact=3)
    df = check_claims(store)
    assert df.empty and df.attrs["left_out_sets"] == ["fake-set"]
    assert "fake-set" in format_claims(df) and "test images" in format_claims(df)
