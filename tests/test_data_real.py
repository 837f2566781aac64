"""Real MedMNIST data: loaded through medmnist, validated first, cached, clear errors."""
from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from synthmed_core.data.real import check_real, load_real, load_real_labels
from synthmed_core.errors import DataError, SpecError

SHARED_SHA256 = "de8283efd5ef4657c4dc5aa15c0ee62185a7accd0cb88d51d35963e0db56ab47"
ROWS = {"train": 4708, "val": 524, "test": 624}
CHEST_ROWS = {"train": 78468, "val": 11219, "test": 22433}


def _arrays(rows: dict[str, int], label_cols: int = 1, size: int = 28) -> dict[str, np.ndarray]:
    out = {}
    for split, n in rows.items():
        out[f"{split}_images"] = np.zeros((n, size, size), np.uint8)
        out[f"{split}_labels"] = (np.arange(n * label_cols) % 2).astype(np.uint8).reshape(
            n, label_cols)
    return out


def _write(folder, flag="pneumoniamnist", **arrays):
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / f"{flag}.npz", **arrays)
    return folder


@pytest.fixture
def offline_root(tmp_path, monkeypatch):
    root = tmp_path / "medmnist"
    root.mkdir()
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(root))
    monkeypatch.setenv("SYNTHMED_OFFLINE", "1")
    return root


@pytest.fixture(scope="module")
def chest_root(tmp_path_factory):
    # ChestMNIST itself is not available here: a file of the official row counts (zeros
    # compress to ~90 kB) exercises the real medmnist loading code.
    return _write(tmp_path_factory.mktemp("chest"), "chestmnist", **_arrays(CHEST_ROWS, 14))


# ---- the shared real file ----------------------------------------------------------------


def test_pneumoniamnist_splits_have_the_official_rows_and_class_counts(shared_medmnist):
    counts = {"train": [1214, 3494], "val": [135, 389], "test": [234, 390]}
    for split, n in ROWS.items():
        data = load_real(split)
        assert data.images.shape == (n, 28, 28)
        assert np.bincount(data.labels).tolist() == counts[split]


def test_images_are_uint8_and_labels_int64_vectors(shared_medmnist):
    data = load_real("test")
    assert data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.labels.shape == (624,)


def test_splits_keep_the_file_order(shared_medmnist):
    with np.load(shared_medmnist / "pneumoniamnist.npz") as npz:
        np.testing.assert_array_equal(load_real("val").images, npz["val_images"])
        np.testing.assert_array_equal(load_real("val").labels, npz["val_labels"][:, 0])


def test_repeated_loads_reuse_cached_read_only_arrays(shared_medmnist):
    first, again = load_real("train"), load_real("train")
    assert first.images is again.images
    assert not first.images.flags.writeable and not first.labels.flags.writeable


def test_a_replaced_file_is_read_again(tmp_path, monkeypatch, shared_medmnist):
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(tmp_path))
    shutil.copy(shared_medmnist / "pneumoniamnist.npz", tmp_path / "pneumoniamnist.npz")
    assert not (load_real("test").images[0] == 7).all()  # now cached
    with np.load(shared_medmnist / "pneumoniamnist.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["test_images"][0] = 7
    np.savez(tmp_path / "pneumoniamnist.npz", **arrays)  # uncompressed: another size
    assert (load_real("test").images[0] == 7).all()


def test_an_existing_file_is_never_downloaded_even_online(shared_medmnist, monkeypatch, tmp_path):
    import medmnist

    # The shared file's md5 differs from medmnist's record, so download=True would try to
    # replace it; point the URL nowhere so that any attempt fails at once.
    monkeypatch.setitem(medmnist.INFO["pneumoniamnist"], "url", (tmp_path / "no.npz").as_uri())
    monkeypatch.setenv("SYNTHMED_OFFLINE", "0")
    assert load_real("val").images.shape == (524, 28, 28)


def test_check_real_summarises_path_sha256_rows_and_class_counts(shared_medmnist):
    summary = check_real()
    assert Path(summary["path"]).resolve() == (shared_medmnist / "pneumoniamnist.npz").resolve()
    assert summary["sha256"] == SHARED_SHA256
    assert {s: v["rows"] for s, v in summary["splits"].items()} == ROWS
    assert summary["splits"]["train"]["class_counts"] == {"normal": 1214, "pneumonia": 3494}


def test_labels_alone_are_the_same_labels_read_without_medmnists_dataset_class(shared_medmnist):
    for split in ROWS:
        assert np.array_equal(load_real_labels(split), load_real(split).labels)
    with pytest.raises(SpecError, match="unknown split 'training'"):
        load_real_labels("training")


def test_an_unknown_split_is_a_spec_error(shared_medmnist):
    with pytest.raises(SpecError, match="unknown split 'training'"):
        load_real("training")


# ---- missing, corrupt and malformed files --------------------------------------------------


def test_missing_file_offline_names_the_file_the_folder_and_the_env_var(offline_root):
    with pytest.raises(DataError) as err:
        load_real("train")
    msg = str(err.value)
    assert "pneumoniamnist.npz" in msg and str(offline_root) in msg
    assert "SYNTHMED_MEDMNIST_ROOT" in msg and "offline" in msg


def test_an_explicit_root_wins_over_the_environment(shared_medmnist, tmp_path):
    with pytest.raises(DataError, match=str(tmp_path)):
        load_real("train", root=tmp_path)


def test_a_truncated_npz_is_a_data_error(offline_root, shared_medmnist):
    blob = (shared_medmnist / "pneumoniamnist.npz").read_bytes()
    (offline_root / "pneumoniamnist.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated"):
        load_real("train", root=offline_root)


def test_corrupt_bytes_inside_the_npz_are_a_data_error(offline_root, shared_medmnist):
    blob = bytearray((shared_medmnist / "pneumoniamnist.npz").read_bytes())
    blob[200_000:200_400] = bytes(400)
    (offline_root / "pneumoniamnist.npz").write_bytes(bytes(blob))
    with pytest.raises(DataError, match="corrupt"):
        load_real("train", root=offline_root)


def test_a_file_that_is_not_an_npz_is_a_data_error(offline_root):
    (offline_root / "pneumoniamnist.npz").write_text("not an archive")
    with pytest.raises(DataError, match="is not an npz \\(zip\\) archive"):
        load_real("train")


def test_an_empty_file_is_a_data_error(offline_root):
    (offline_root / "pneumoniamnist.npz").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty \(0 bytes\)"):
        load_real("train")


def test_pickled_arrays_are_refused(offline_root):
    arrays = _arrays(ROWS)
    arrays["train_labels"] = np.array([{"label": 1}] * 4708, dtype=object)
    _write(offline_root, **arrays)
    with pytest.raises(DataError, match="pickled Python objects in 'train_labels'"):
        load_real("train")


def test_wrong_keys_list_what_is_missing_and_what_is_there(offline_root):
    _write(offline_root, images=np.zeros((3, 28, 28), np.uint8), labels=np.zeros((3, 1)))
    with pytest.raises(DataError) as err:
        load_real("train")
    msg = str(err.value)
    assert "'train_images'" in msg and "['images', 'labels']" in msg


def test_images_that_are_not_uint8_are_reported(offline_root):
    arrays = _arrays(ROWS)
    arrays["val_images"] = arrays["val_images"].astype(np.float32)
    _write(offline_root, **arrays)
    with pytest.raises(DataError, match=r"val_images is float32 \(524, 28, 28\); expected uint8"):
        load_real("val")


@pytest.mark.parametrize("load", [load_real, load_real_labels])  # labels alone: same checks
def test_labels_that_are_not_n_by_1_are_reported(offline_root, load):
    arrays = _arrays(ROWS)
    arrays["test_labels"] = arrays["test_labels"][:, 0]
    _write(offline_root, **arrays)
    with pytest.raises(DataError, match=r"test_labels is uint8 \(624,\); expected integers N x 1"):
        load("test")


def test_wrong_row_counts_are_reported_before_medmnist_asserts(offline_root):
    _write(offline_root, **_arrays({"train": 10, "val": 524, "test": 624}))
    expected = "train has 10 images and 10 labels; medmnist expects 4708 rows"
    with pytest.raises(DataError, match=expected):
        load_real("val")


# ---- ChestMNIST: 14 findings ------------------------------------------------------------------


def test_chestmnist_labels_are_n_by_14(chest_root):
    data = load_real("val", flag="chestmnist", root=chest_root)
    assert data.labels.shape == (11219, 14) and data.labels.dtype == np.int64
    assert data.images.shape == (11219, 28, 28)


def test_chestmnist_with_one_label_column_is_rejected(tmp_path):
    _write(tmp_path, "chestmnist", **_arrays({"train": 4, "val": 4, "test": 4}, 1))
    expected = r"train_labels is uint8 \(4, 1\); expected integers N x 14"
    with pytest.raises(DataError, match=expected):
        load_real("train", flag="chestmnist", root=tmp_path)


# ---- downloads (through medmnist, from a local URL: no network needed) -------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_http(shared_medmnist):
    """The shared folder served over HTTP on localhost: a real download with no network."""
    handler = functools.partial(_QuietHandler, directory=str(shared_medmnist))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_absent_file_is_downloaded_when_online(tmp_path, monkeypatch, shared_medmnist,
                                                  local_http):
    import medmnist

    source = shared_medmnist / "pneumoniamnist.npz"
    monkeypatch.setitem(medmnist.INFO["pneumoniamnist"], "url", f"{local_http}/{source.name}")
    monkeypatch.setitem(medmnist.INFO["pneumoniamnist"], "MD5",
                        hashlib.md5(source.read_bytes()).hexdigest())
    monkeypatch.setenv("SYNTHMED_OFFLINE", "0")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert load_real("test", root=tmp_path / "fresh").images.shape == (624, 28, 28)
    assert (tmp_path / "fresh" / "pneumoniamnist.npz").read_bytes() == source.read_bytes()


def test_a_failed_download_is_a_data_error_that_leaves_nothing_behind(tmp_path, monkeypatch):
    import medmnist

    monkeypatch.setitem(medmnist.INFO["pneumoniamnist"], "url",
                        (tmp_path / "nowhere.npz").as_uri())
    monkeypatch.setenv("SYNTHMED_OFFLINE", "0")
    with pytest.raises(DataError) as err:
        load_real("train", root=tmp_path / "fresh")
    msg = str(err.value)
    assert "the download failed" in msg
    assert "file://" not in msg  # the message names no download address
    assert str(tmp_path / "fresh") in msg and "SYNTHMED_MEDMNIST_ROOT" in msg
    assert list((tmp_path / "fresh").iterdir()) == []
