"""The results database: migrations, runs round trip, upserts, bulk predictions, registries."""
from __future__ import annotations

import subprocess
import sys
import threading

import filelock
import numpy as np
import pytest

from synthmed_core import store as store_mod
from synthmed_core.analysis.metrics import run_metrics
from synthmed_core.errors import SpecError, StoreError
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.records.events import RunResult


def spec(seed=0, setting="base", **kw):
    return make_run_spec("resnet18", "scratch", setting, seed=seed, profile="smoke", **kw)


def epoch_row(epoch, phase=0, loss=1.0):
    return {"phase": phase, "epoch": epoch, "train_loss": loss, "val_loss": loss + 0.1,
            "val_accuracy": 0.8, "val_auroc": 0.9, "lr": 1e-4, "seconds": 2.0}


def result(run_id, n_test=20, n_val=10, seed=0):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 2, n_test), rng.random(n_test)
    vy, vp = rng.integers(0, 2, n_val), rng.random(n_val)
    return RunResult(run_id=run_id, metrics=run_metrics(y, p), test_labels=y, test_probs=p,
                     val_labels=vy, val_probs=vp, best_epoch=1, best_phase=0, wall_s=3.5,
                     device="cpu", checkpoint="runs/x/best.pt")


@pytest.fixture
def db(tmp_path):
    return tmp_path / "sub" / "results.duckdb"


def test_new_database_is_created_with_its_parent_folder_at_the_latest_version(db):
    s = Store(db)
    assert db.exists()
    assert s.schema_version() == store_mod.MIGRATIONS[-1][0]


def test_migrations_are_applied_once_and_reopening_is_idempotent(db, monkeypatch):
    calls = []
    extra = (store_mod.MIGRATIONS[-1][0] + 1, [lambda con: calls.append(1)])
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, extra])
    Store(db)
    Store(db)
    assert calls == [1]
    assert Store(db).schema_version() == extra[0]
    assert len(Store(db).reference()) == 36


def test_an_older_database_is_migrated_on_open(db, monkeypatch):
    Store(db)  # at the current version
    new = store_mod.MIGRATIONS[-1][0] + 1
    monkeypatch.setattr(store_mod, "MIGRATIONS",
                        [*store_mod.MIGRATIONS, (new, ["CREATE TABLE probe (x INTEGER)"])])
    assert Store(db).schema_version() == new


def test_a_failed_migration_rolls_back_and_says_so(db, monkeypatch):
    Store(db)
    old = store_mod.MIGRATIONS[-1][0]
    bad = (old + 1, ["CREATE TABLE probe (x INTEGER)", "THIS IS NOT SQL"])
    monkeypatch.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, bad])
    with pytest.raises(StoreError, match="migration .* rolled back"):
        Store(db)
    monkeypatch.undo()
    assert Store(db).schema_version() == old


def test_a_database_from_newer_code_is_refused(db, monkeypatch):
    newer = store_mod.MIGRATIONS[-1][0] + 1
    with monkeypatch.context() as m:
        m.setattr(store_mod, "MIGRATIONS", [*store_mod.MIGRATIONS, (newer, [])])
        Store(db)
    with pytest.raises(StoreError, match=f"schema version {newer}, newer than this code"):
        Store(db)


def test_a_file_that_is_not_a_database_gives_a_store_error(tmp_path):
    bad = tmp_path / "junk.duckdb"
    bad.write_text("not a database")
    with pytest.raises(StoreError, match=str(bad)):
        Store(bad)


def test_reference_holds_the_studys_36_rows_and_stays_out_of_runs(db):
    s = Store(db)
    ref = s.reference()
    assert len(ref) == 36
    assert set(ref["source"]) == {"study"}
    assert sorted(ref.loc[ref["setting"] == "augment", "ratio"].unique()) == [1.0, 2.0, 3.0]
    assert ref.loc[ref["setting"] != "augment", "ratio"].isna().all()
    assert s.runs().empty


def test_start_add_epochs_finish_round_trip(db):
    s = Store(db)
    sp = spec(ratio=1.0, setting="augment", synthetic="cg")
    s.start_run(sp, "cpu")
    assert s.runs(status="running")["run_id"].tolist() == [sp.run_id]
    s.add_epochs(sp.run_id, [epoch_row(0), epoch_row(1, loss=0.5)])
    res = result(sp.run_id)
    s.finish_run(res)
    row = s.runs().iloc[0]
    assert (row["status"], row["arch"], row["setting"], row["ratio"], row["synthetic"]) == (
        "finished", "resnet18", "augment", 1.0, "cg")
    assert row["accuracy"] == pytest.approx(res.metrics["accuracy"])
    assert row["wall_s"] == 3.5 and row["best_epoch"] == 1
    run = s.run(sp.run_id)
    assert run["spec"] == sp.to_dict()
    assert run["metrics"] == pytest.approx(res.metrics)
    assert run["val_metrics"]["accuracy"] == pytest.approx(
        run_metrics(res.val_labels, res.val_probs)["accuracy"])
    assert [e["train_loss"] for e in run["epochs"]] == [1.0, 0.5]
    assert s.finished_run_ids() == {sp.run_id}


def test_run_of_an_unknown_id_is_none(db):
    assert Store(db).run("nope") is None


def test_finishing_a_run_never_started_is_an_error(db):
    s = Store(db)
    with pytest.raises(StoreError, match="never started"):
        s.finish_run(result("abc"))
    assert s.predictions(["abc"]).empty


def test_re_added_epochs_after_a_resume_leave_one_row_per_epoch(db):
    s = Store(db)
    sp = spec()
    s.start_run(sp, "cpu")
    s.add_epochs(sp.run_id, [epoch_row(e) for e in range(4)])
    s.start_run(sp, "cpu", discard_epochs_after=1)  # resumed after epoch 1: 2, 3 re-trained
    assert s.epochs(sp.run_id)["epoch"].tolist() == [0, 1]
    s.add_epochs(sp.run_id, [epoch_row(e, loss=0.1) for e in range(1, 4)])
    s.add_epochs(sp.run_id, [epoch_row(3, loss=0.2), epoch_row(3, loss=0.3)])
    ep = s.epochs(sp.run_id)
    assert ep["epoch"].tolist() == [0, 1, 2, 3]
    assert ep["train_loss"].tolist() == [1.0, 0.1, 0.1, 0.3]


def test_restarting_a_run_keeps_its_epochs_unless_told(db):
    s = Store(db)
    sp = spec()
    s.start_run(sp, "cpu")
    s.add_epochs(sp.run_id, [epoch_row(0)])
    s.fail_run(sp.run_id, "boom")
    assert s.run(sp.run_id)["error"] == "boom"
    s.start_run(sp, "cuda")
    run = s.run(sp.run_id)
    assert (run["status"], run["error"], run["device"], len(run["epochs"])) == (
        "running", None, "cuda", 1)
    s.start_run(sp, "cuda", discard_epochs_after=-1)
    assert s.epochs(sp.run_id).empty


def test_epoch_rows_without_an_epoch_index_are_refused(db):
    with pytest.raises(StoreError, match="'phase' and 'epoch'"):
        Store(db).add_epochs("x", [{"train_loss": 1.0}])


def test_predictions_are_bulk_written_and_read_back_in_image_order(db):
    s = Store(db)
    specs = [spec(seed) for seed in (0, 1)]
    results = []
    for sp in specs:
        s.start_run(sp, "cpu")
        results.append(result(sp.run_id, n_test=624, seed=sp.seed))
        s.finish_run(results[-1])
    ids = [sp.run_id for sp in specs]
    test = s.predictions(ids)
    assert len(test) == 2 * 624
    for rid, res in zip(ids, results):
        mine = test[test["run_id"] == rid]
        assert mine["idx"].tolist() == list(range(624))
        np.testing.assert_array_equal(mine["label"], res.test_labels)
        np.testing.assert_allclose(mine["prob"], res.test_probs)
    assert len(s.predictions(ids[:1], split="val")) == 10


def test_finishing_a_run_twice_replaces_its_predictions(db):
    s = Store(db)
    sp = spec()
    s.start_run(sp, "cpu")
    s.finish_run(result(sp.run_id, seed=1))
    again = result(sp.run_id, seed=2)
    s.finish_run(again)
    got = s.predictions([sp.run_id])
    np.testing.assert_allclose(got["prob"], again.test_probs)


def test_delete_run_removes_every_row_of_the_run(db):
    s = Store(db)
    sp = spec()
    s.start_run(sp, "cpu")
    s.add_epochs(sp.run_id, [epoch_row(0)])
    s.finish_run(result(sp.run_id))
    s.delete_run(sp.run_id)
    assert s.runs().empty and s.epochs(sp.run_id).empty
    assert s.predictions([sp.run_id]).empty and s.run(sp.run_id) is None


def test_cell_values_has_one_row_per_finished_run(db):
    s = Store(db)
    done, running = spec(0), spec(1)
    for sp in (done, running):
        s.start_run(sp, "cpu")
    res = result(done.run_id)
    s.finish_run(res)
    cv = s.cell_values("auroc")
    assert cv["run_id"].tolist() == [done.run_id]
    assert cv["value"].iloc[0] == pytest.approx(res.metrics["auroc"])
    assert list(cv.columns) == ["run_id", "arch", "init", "setting", "ratio", "synthetic",
                                "seed", "profile", "recipe", "recipe_label", "value", "wall_s"]
    assert cv["wall_s"].iloc[0] == pytest.approx(res.wall_s)


def test_runs_rejects_an_unknown_status(db):
    with pytest.raises(StoreError, match="unknown run status"):
        Store(db).runs(status="done")


def test_synthetic_sets_are_registered_and_re_registering_replaces(db):
    s = Store(db)
    card = {"method": "ddpm", "n": 10, "counts": {"normal": 4, "pneumonia": 6}}
    s.register_synthetic_set("ddpm-a", card, "data/synthetic/ddpm-a")
    s.register_synthetic_set("ddpm-a", {**card, "n": 12}, "data/synthetic/ddpm-a")
    s.register_synthetic_set("cg", {"method": "cyclegan"}, "data/synthetic/cg")
    sets = s.synthetic_sets()
    assert sets["name"].tolist() == ["cg", "ddpm-a"]
    row = sets.iloc[1]
    assert (row["method"], row["n"], row["n_normal"], row["n_pneumonia"]) == ("ddpm", 12, 4, 6)
    assert '"n": 12' in row["card_json"]


def test_pretrains_are_registered(db):
    s = Store(db)
    s.register_pretrain("chest-quick", {"epochs": 3}, "data/pretrained/chest-quick.pt")
    got = s.pretrains()
    assert got["name"].tolist() == ["chest-quick"]
    assert got["path"].iloc[0] == "data/pretrained/chest-quick.pt"


def test_a_held_lock_times_out_with_a_store_error_naming_the_file(db):
    s = Store(db, lock_timeout=0.2)
    holder = filelock.FileLock(str(db) + ".lock", thread_local=False)
    acquired, release = threading.Event(), threading.Event()

    def hold():  # another thread = another lock file handle, as another process would have
        with holder:
            acquired.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    acquired.wait(5)
    try:
        with pytest.raises(StoreError, match=r"results\.duckdb is busy: another process"):
            s.runs()
    finally:
        release.set()
        t.join()
    assert s.runs().empty


def _outsider(db, hold_s):
    """A process that opens the file read-write with plain duckdb, ignoring our lock."""
    code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('open', flush=True);"
            " time.sleep(float(sys.argv[2])); c.close()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(db), str(hold_s)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    return proc


def test_a_brief_outside_connection_is_waited_out_by_retrying(db):
    s = Store(db)
    proc = _outsider(db, 0.2)
    try:
        assert s.runs().empty
    finally:
        proc.wait(10)


def test_an_outside_connection_held_open_gives_a_store_error(db):
    s = Store(db)
    proc = _outsider(db, 30)
    try:
        with pytest.raises(StoreError, match="held open by a process outside synthmed"):
            s.runs()
    finally:
        proc.kill()
        proc.wait(10)


def test_a_run_resumed_in_another_context_is_marked_mixed(db):
    store = Store(db)
    s = spec()
    one = {"device_type": "cpu", "device_name": "X", "threads": 1, "torch": "t", "timm": "m",
           "commit": "c"}
    store.start_run(s, "cpu", context=one)
    store.start_run(s, "cpu", discard_epochs_after=0, context={**one, "threads": 2})
    ctx = store.run(s.run_id)["context"]
    assert ctx["mixed"] is True and ctx["earlier"]["threads"] == 1
    store.start_run(s, "cpu", discard_epochs_after=-1, context=one)  # a fresh start: one context
    assert "mixed" not in store.run(s.run_id)["context"]


def test_a_run_is_found_by_a_unique_prefix_and_otherwise_named_in_the_error(db):
    store = Store(db)
    ids = [spec(seed=s).run_id for s in range(3)]
    for s in range(3):
        store.start_run(spec(seed=s), "cpu")
    assert store.resolve_run_id(ids[0]) == ids[0]
    assert store.resolve_run_id(ids[1][:8]) == ids[1]
    with pytest.raises(SpecError, match="no run matches 'zzz'"):
        store.resolve_run_id("zzz")
    with pytest.raises(SpecError, match="no finished run matches"):
        store.resolve_run_id(ids[2], status="finished")  # it is running
