"""The results snapshot: the grid's reads never take the lock, and what they read is what the
database says after every write that changes results."""
from __future__ import annotations

import shutil
import threading
import time

import pandas as pd
import pytest

from grid_helpers import add_run, fill_contrast, labels, probs_with_accuracy
from synthmed_core.store import Store
from synthmed_core.store._heatmap import CELL_KEYS
from test_store import result, spec


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "results.duckdb")


def _from_database(store: Store, read):
    """``read`` on the database itself, as a store without a snapshot reads it."""
    with store._connect() as con:
        return read(con)


def _grid_both_ways(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    from synthmed_core.store._heatmap import _cell_stats
    snap = store.grid_cell_stats("accuracy")
    db = _from_database(store, lambda con: _cell_stats(con, "accuracy", "test", None, None))
    return snap, db


def _by_cell(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells in one order whatever order the query gave them (every key, not only some)."""
    return cells.sort_values(list(CELL_KEYS), na_position="first").reset_index(drop=True)


def _assert_snapshot_is_the_database(store: Store) -> None:
    snap, db = _grid_both_ways(store)
    pd.testing.assert_frame_equal(_by_cell(snap), _by_cell(db), check_dtype=False)


def test_a_new_store_publishes_a_snapshot_and_the_grid_reads_it_without_the_lock(store):
    fill_contrast(store, seeds=(0, 1))
    assert store.results_generation() is not None
    _assert_snapshot_is_the_database(store)
    cells = store.grid_cell_stats("accuracy")
    assert len(cells) == 3 and cells["paired_seeds"].max() == 2
    store._lock.acquire()  # another process writing: the grid does not wait for it
    try:
        got: dict = {}
        reader = threading.Thread(target=lambda: got.update(
            cells=Store.grid_cell_stats(store, "accuracy"), version=store.results_version()))
        t0 = time.monotonic()
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "the grid read waited for the lock"
        assert time.monotonic() - t0 < 5
        pd.testing.assert_frame_equal(_by_cell(got["cells"]), _by_cell(cells))
        assert got["version"] == f"snapshot:{store.results_generation()}"
    finally:
        store._lock.release()


@pytest.mark.parametrize("write", ["start", "finish", "fail", "cancel", "delete",
                                   "register set", "register pretrain"])
def test_every_write_that_changes_results_publishes_a_new_generation(store, write):
    y = labels()
    finished = add_run(store, "base", 0, probs_with_accuracy(y, 0.8, 0), y)
    running = spec(seed=5)
    store.start_run(running, device="cpu")
    before = store.results_version()
    {"start": lambda: store.start_run(spec(seed=7), device="cpu"),
     "finish": lambda: store.finish_run(result(running.run_id)),
     "fail": lambda: store.fail_run(running.run_id, "boom"),
     "cancel": lambda: store.cancel_run(running.run_id, "stop"),
     "delete": lambda: store.delete_run(finished),
     "register set": lambda: store.register_synthetic_set(
         "s", {"method": "x", "n": 2, "counts": {"normal": 1, "pneumonia": 1}}, None),
     "register pretrain": lambda: store.register_pretrain("p", {}, "p.pt")}[write]()
    assert store.results_version() != before
    _assert_snapshot_is_the_database(store)
    snap_sets = store._read_results(lambda con: con.execute(
        "SELECT name FROM synthetic_sets").fetchall())
    assert snap_sets == _from_database(store, lambda con: con.execute(
        "SELECT name FROM synthetic_sets").fetchall())


def test_progress_and_epochs_of_a_running_job_leave_the_generation_alone(store):
    running = spec(seed=5)
    store.start_run(running, device="cpu")
    before = store.results_generation()
    store.add_epochs(running.run_id, [{"phase": 0, "epoch": 0, "train_loss": 1.0}])
    assert store.results_generation() == before


def test_a_generation_gone_under_the_reader_is_read_from_the_database(store):
    fill_contrast(store, seeds=(0,))
    expected = _by_cell(store.grid_cell_stats("accuracy"))
    shutil.rmtree(store.results_snapshot_dir / store.results_generation())
    pd.testing.assert_frame_equal(_by_cell(store.grid_cell_stats("accuracy")), expected,
                                  check_dtype=False)
    (store.results_snapshot_dir / "current").unlink()
    pd.testing.assert_frame_equal(_by_cell(store.grid_cell_stats("accuracy")), expected,
                                  check_dtype=False)
    assert not store.results_version().startswith("snapshot:")


def test_a_publish_that_fails_leaves_no_stale_generation_current(store, monkeypatch):
    from synthmed_core.store import _snapshot
    fill_contrast(store, seeds=(0,))
    monkeypatch.setitem(_snapshot.SNAPSHOT_TABLES, "runs", "SELECT * FROM no_such_table")
    y = labels()
    add_run(store, "base", 9, probs_with_accuracy(y, 0.9, 9), y)  # its publish fails
    assert store.results_generation() is None
    monkeypatch.undo()
    _assert_snapshot_is_the_database(store)  # read from the database: the new run is there
    assert store.grid_cell_stats("accuracy")["n"].max() == 2


def test_old_generations_are_pruned(store):
    y = labels()
    for seed in range(4):
        add_run(store, "base", seed, probs_with_accuracy(y, 0.8, seed), y)
    folders = [p for p in store.results_snapshot_dir.iterdir() if p.is_dir()]
    assert len(folders) == 2 and store.results_generation() in {p.name for p in folders}


def test_a_snapshot_left_behind_by_a_writer_that_does_not_publish_is_dropped(store):
    """A worker still running older code writes results without publishing: the check finds
    the database moved on, drops the snapshot, and reads (and the version) come from the
    database until the next publish."""
    fill_contrast(store, seeds=(0,))
    assert store.check_results_snapshot()
    before = store.results_version()
    with store._connect(write=True) as con:  # as an older writer would: no publish
        con.execute("UPDATE runs SET status = 'failed' WHERE setting = 'synthetic_base'")
    assert store.grid_cell_stats("accuracy")["setting"].eq("synthetic_base").any()  # stale
    assert not store.check_results_snapshot()
    assert store.results_generation() is None and store.results_version() != before
    assert not store.grid_cell_stats("accuracy")["setting"].eq("synthetic_base").any()
    y = labels()
    add_run(store, "base", 5, probs_with_accuracy(y, 0.9, 5), y)  # the next publish
    assert store.check_results_snapshot()
    _assert_snapshot_is_the_database(store)


def test_correct_bits_are_each_images_rightness_at_one_half_in_image_order(store):
    y = labels()
    ids = [add_run(store, "base", seed, probs_with_accuracy(y, 0.7, seed), y)
           for seed in (0, 1)]
    bits = store.correct_bits(ids + ["no-such-run"])
    assert sorted(bits) == sorted(ids)
    preds = store.predictions(ids)
    for rid in ids:
        rows = preds[preds["run_id"] == rid]
        assert bits[rid].tolist() == ((rows["prob"] >= 0.5) == (rows["label"] == 1)).tolist()
