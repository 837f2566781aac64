"""Importing external image folders and CSVs as synthetic sets, on real files made with PIL."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, features

from synthmed_core.errors import DataError, SpecError
from synthmed_core.synth.importer import import_csv, import_folder, load_image
from synthmed_core.data.synthetic import load_set

# Every import counts copies of the real val and test images: the shared real file, never a
# download.
pytestmark = pytest.mark.usefixtures("shared_medmnist")


def _noise(w: int, h: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _rgb(w=300, h=200, seed=0) -> Image.Image:
    return Image.fromarray(np.stack([_noise(w, h, seed + i) for i in range(3)], axis=-1))


def _gray(w=64, h=48, seed=0) -> Image.Image:
    return Image.fromarray(_noise(w, h, seed))


def _truncated_png(path):
    _rgb(120, 120, seed=9).save(path)
    blob = path.read_bytes()
    path.write_bytes(blob[: int(len(blob) * 0.6)])


@pytest.fixture
def folder(tmp_path):
    """normal/ with one image per PIL mode, PNEUMONIA/ with other formats and broken files."""
    src = tmp_path / "collection"
    normal, pneu = src / "normal", src / "PNEUMONIA"
    (normal / "nested" / "deeper").mkdir(parents=True)
    pneu.mkdir()
    _rgb().save(normal / "rgb_300x200.png")
    _rgb(200, 300).convert("RGBA").save(normal / "rgba.png")
    _gray().convert("LA").save(normal / "la.png")
    Image.fromarray((_noise(50, 40).astype(np.uint16) * 200)).save(normal / "gray16.png")
    Image.fromarray(_noise(40, 40).astype(np.int32) * 1000).save(normal / "int32.tif")
    _rgb(60, 60).convert("P").save(normal / "palette.png")
    _gray().convert("1").save(normal / "bilevel.png")
    _rgb(80, 60).convert("CMYK").save(normal / "cmyk.jpg")
    _rgb(90, 70).save(normal / "nested" / "deeper" / "photo.JPG")
    _gray(30, 30).save(pneu / "gray.bmp")
    _gray(33, 44).save(pneu / "gray.tiff")
    if features.check("webp"):
        _rgb(50, 50).save(pneu / "image.webp")
    _truncated_png(pneu / "truncated.png")
    (pneu / "empty.png").write_bytes(b"")
    (pneu / "fake.jpg").write_text("not really a jpeg")
    (normal / "notes.txt").write_text("hello")
    (normal / ".DS_Store").write_bytes(b"\0\0")
    (pneu / "Thumbs.db").write_bytes(b"\0")
    return src


def _by_name(pairs):
    return {p.rsplit("/", 1)[-1]: why for p, why in pairs}


# ---- folders -------------------------------------------------------------------------------------


def test_folder_import_counts_each_class_and_writes_a_valid_set(folder, tmp_path):
    path, report = import_folder(folder, "imported", root=tmp_path / "sets", progress=False)
    n_pneu = 3 if features.check("webp") else 2
    assert report.counts == {"normal": 9, "pneumonia": n_pneu}
    split, card = load_set("imported", root=tmp_path / "sets")
    assert split.images.shape == (9 + n_pneu, 28, 28) and split.images.dtype == np.uint8
    assert np.bincount(split.labels).tolist() == [9, n_pneu]
    assert path == tmp_path / "sets" / "imported"


def test_nested_folders_and_class_folder_case_do_not_matter(folder, tmp_path):
    _, report = import_folder(folder, "nested", root=tmp_path / "sets", progress=False)
    assert report.counts["pneumonia"] >= 2  # PNEUMONIA/ in capitals
    names = [p for p, _ in report.skipped] + report.ignored
    assert not any("photo.JPG" in n for n in names)  # found in normal/nested/deeper


def test_unreadable_files_are_skipped_and_reported_with_the_reason(folder, tmp_path):
    _, report = import_folder(folder, "s", root=tmp_path / "sets", progress=False)
    skipped = _by_name(report.skipped)
    assert set(skipped) == {"truncated.png", "empty.png", "fake.jpg"}
    assert "truncated" in skipped["truncated.png"]
    assert skipped["empty.png"] == "empty file (0 bytes)"
    assert "not a readable image" in skipped["fake.jpg"]


def test_non_image_files_are_ignored_and_listed(folder, tmp_path):
    _, report = import_folder(folder, "s", root=tmp_path / "sets", progress=False)
    assert sorted(p.rsplit("/", 1)[-1] for p in report.ignored) == [
        ".DS_Store", "Thumbs.db", "notes.txt"]


def test_the_card_records_source_counts_skipped_and_preprocessing(folder, tmp_path):
    path, report = import_folder(folder, "s", root=tmp_path / "sets", progress=False)
    card = json.loads((path / "card.json").read_text())
    assert card["method"] == "import" and card["source"] == str(folder.resolve())
    assert card["counts"] == report.counts and card["n_skipped"] == 3 and card["n_ignored"] == 3
    assert "BICUBIC" in card["preprocessing"]["resize"]


def test_a_single_class_folder_is_imported_with_a_warning(tmp_path):
    (tmp_path / "src" / "Normal").mkdir(parents=True)
    _gray().save(tmp_path / "src" / "Normal" / "a.png")
    _, report = import_folder(tmp_path / "src", "one", root=tmp_path / "sets", progress=False)
    assert report.counts == {"normal": 1, "pneumonia": 0}
    assert report.warnings == ["no pneumonia images: the set has a single class"]


def test_numeric_and_negative_positive_folder_names_are_aliases(tmp_path):
    for name in ("0", "positive"):
        (tmp_path / "src" / name).mkdir(parents=True)
        _gray().save(tmp_path / "src" / name / "a.png")
    _, report = import_folder(tmp_path / "src", "alias", root=tmp_path / "sets", progress=False)
    assert report.counts == {"normal": 1, "pneumonia": 1}


def test_a_folder_without_class_folders_is_a_data_error(tmp_path):
    (tmp_path / "src" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no class sub-folders in .*src.*found \['images'\]"):
        import_folder(tmp_path / "src", "x", root=tmp_path / "sets", progress=False)


def test_class_folders_without_readable_images_are_a_data_error(tmp_path):
    (tmp_path / "src" / "normal").mkdir(parents=True)
    (tmp_path / "src" / "normal" / "readme.txt").write_text("no images here")
    (tmp_path / "src" / "normal" / "broken.png").write_bytes(b"")
    with pytest.raises(DataError) as err:
        import_folder(tmp_path / "src", "x", root=tmp_path / "sets", progress=False)
    msg = str(err.value)
    assert "no readable images found in" in msg and str(tmp_path / "src") in msg
    assert "png" in msg and "normal/" in msg and "1 skipped" in msg and "1 ignored" in msg


def test_an_existing_set_name_is_refused_before_any_image_is_read(folder, tmp_path):
    import_folder(folder, "dup", root=tmp_path / "sets", progress=False)
    with pytest.raises(SpecError, match="already exists"):
        import_folder(folder, "dup", root=tmp_path / "sets", progress=False)
    _, report = import_folder(folder, "dup", root=tmp_path / "sets", progress=False, force=True)
    assert report.counts["normal"] == 9


def test_the_progress_bar_can_be_turned_off(folder, tmp_path, capsys):
    import_folder(folder, "quiet", root=tmp_path / "sets", progress=False)
    assert "import quiet" not in capsys.readouterr().err
    import_folder(folder, "loud", root=tmp_path / "sets", progress=True)
    assert "import loud" in capsys.readouterr().err


# ---- one image -----------------------------------------------------------------------------------


def test_images_are_centre_cropped_to_the_short_side_before_resizing(tmp_path):
    a = np.zeros((200, 300), np.uint8)
    a[:, :50] = a[:, 250:] = 255  # bands outside the centred 200 x 200 square
    Image.fromarray(a).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png")
    assert out.shape == (28, 28) and out.dtype == np.uint8 and out.max() == 0


def test_transparent_pixels_are_composited_onto_black(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:20, :, 3] = 255  # top half opaque white, bottom half transparent white
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    out = load_image(tmp_path / "alpha.png")
    assert out[:12].min() == 255 and out[16:].max() == 0


def test_16_bit_images_are_scaled_by_their_own_min_max(tmp_path):
    two_tone = np.full((56, 56), 1000, np.uint16)
    two_tone[:, 28:] = 3000  # a plain >> 8 would give 3 and 11
    Image.fromarray(two_tone).save(tmp_path / "two_tone16.png")
    out = load_image(tmp_path / "two_tone16.png")
    assert out[:, :10].max() == 0 and out[:, -10:].min() == 255


def test_exif_orientation_is_honoured(tmp_path):
    a = np.zeros((56, 56), np.uint8)
    a[:28] = 255  # stored with the top half bright
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the top goes to the right
    img.save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    out = load_image(tmp_path / "rotated.jpg").astype(int)
    assert out[:, -10:].mean() > 240 and out[:, :10].mean() < 15


def test_decompression_bombs_are_skipped_with_the_reason(tmp_path, monkeypatch):
    (tmp_path / "src" / "normal").mkdir(parents=True)
    _gray(100, 100).save(tmp_path / "src" / "normal" / "bomb.png")  # 10,000 px
    _gray(40, 40).save(tmp_path / "src" / "normal" / "big.png")  # 1,600 px: PIL only warns
    _gray(20, 20).save(tmp_path / "src" / "normal" / "ok.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    _, report = import_folder(tmp_path / "src", "b", root=tmp_path / "sets", progress=False)
    skipped = _by_name(report.skipped)
    assert set(skipped) == {"bomb.png", "big.png"}
    assert all(why.startswith("decompression bomb") for why in skipped.values())
    assert report.counts["normal"] == 1


# ---- CSV -----------------------------------------------------------------------------------------


def _csv_images(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        _gray(seed=i).save(tmp_path / "imgs" / f"{i}.png")


def test_csv_with_header_resolves_relative_paths_and_reports_bad_labels_by_line(tmp_path):
    _csv_images(tmp_path)
    (tmp_path / "list.csv").write_text(
        "path,label\nimgs/0.png,Normal\nimgs/1.png,PNEUMONIA\nimgs/2.png,maybe\n"
        "imgs/missing.png,1\nimgs/notes.txt,0\n")
    _, report = import_csv(tmp_path / "list.csv", "c", root=tmp_path / "sets", progress=False)
    assert report.counts == {"normal": 1, "pneumonia": 1}
    skipped = dict(report.skipped)
    assert "bad label 'maybe'" in skipped["list.csv:4"]
    assert skipped[str(tmp_path / "imgs" / "missing.png")] == "line 5: file not found"
    assert report.ignored == [str(tmp_path / "imgs" / "notes.txt")]


def test_csv_without_header_with_numeric_labels_and_absolute_paths(tmp_path):
    _csv_images(tmp_path)
    rows = [f"{tmp_path / 'imgs' / f'{i}.png'},{i % 2}" for i in range(3)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    _, report = import_csv(tmp_path / "list.csv", "c", root=tmp_path / "sets", progress=False)
    assert report.counts == {"normal": 2, "pneumonia": 1} and report.skipped == []


def test_csv_header_columns_are_found_by_name(tmp_path):
    _csv_images(tmp_path)
    (tmp_path / "list.csv").write_text("class,id,file\n0,a,imgs/0.png\npneumonia,b,imgs/1.png\n")
    _, report = import_csv(tmp_path / "list.csv", "c", root=tmp_path / "sets", progress=False)
    assert report.counts == {"normal": 1, "pneumonia": 1}


def test_csv_with_only_bad_rows_is_a_data_error(tmp_path):
    (tmp_path / "list.csv").write_text("a.png,cat\n")
    with pytest.raises(DataError, match="no readable images.*list.csv:1: bad label 'cat'"):
        import_csv(tmp_path / "list.csv", "c", root=tmp_path / "sets", progress=False)


def test_a_folder_of_split_folders_points_at_the_ones_holding_class_folders(tmp_path, synth_data_root):
    for split in ("train", "test"):
        (tmp_path / "chest_xray" / split / "NORMAL").mkdir(parents=True)
    with pytest.raises(DataError, match=r"import one of them: .*chest_xray/test"):
        import_folder(tmp_path / "chest_xray", "nested")
