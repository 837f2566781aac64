"""One bad bundle never breaks the store (issue 27, cases 1, 2 and 4): a shipped one that fails
is skipped with one line and remembered until its files change; an import that fails or is
killed leaves the data root as it was; an imported bundle can be removed; the grid reads a
store whose runs were scored on test sets of different sizes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthmed_core import bundle as bd
from synthmed_core.cli import main as cli
from synthmed_core.store import Store
from synthmed_core.data.synthetic import list_sets

from bundle_helpers import SET, copy_bundle, edit, table
from grid_helpers import add_run, labels, probs_with_accuracy

REPO = Path(__file__).resolve().parents[1]


def _no_cell(runs):
    runs["spec_json"] = [json.dumps({k: v for k, v in json.loads(s).items() if k != "cell"})
                         for s in runs["spec_json"]]
    return runs


@pytest.fixture
def shipped(tiny_bundle, tmp_path, monkeypatch) -> Path:
    """A results/ folder with the genuine tiny bundle and a broken copy of it (specs without
    a cell, hashes recomputed), as a fresh data root's shipped folder."""
    folder = tmp_path / "results"
    folder.mkdir()
    shutil.move(str(tiny_bundle), folder / "good")
    edit(copy_bundle(folder / "good", folder / "broken"), "runs", _no_cell)
    monkeypatch.setenv("SYNTHMED_SHIPPED", str(folder))
    monkeypatch.delenv("SYNTHMED_DB", raising=False)
    return folder


def test_a_broken_shipped_bundle_is_skipped_with_one_line_and_the_store_opens(shipped, capsys):
    store = Store()  # the entry points (CLI, jobs, ui.serve, the app) import the shipped folder
    bd.import_shipped(store)  # before: KeyError: 'cell' from every open
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken" in lines[0] and "skipped" in lines[0]
    assert "not a valid run spec" in lines[0]
    assert store.store_counts()["finished_runs"] == 3  # the good one is in
    refused = bd.refused_shipped(store)
    assert [r["name"] for r in refused] == ["broken"] and "cell" in refused[0]["reason"]


def test_a_refused_shipped_bundle_is_not_checked_again_until_its_files_change(
        shipped, capsys, monkeypatch):
    bd.import_shipped(Store())
    capsys.readouterr()
    calls, real = [], bd._import.validate
    monkeypatch.setattr(bd._import, "validate", lambda b: calls.append(b.path))
    bd.import_shipped(Store())
    assert calls == [] and capsys.readouterr().err == ""
    shutil.rmtree(shipped / "broken")  # replaced by a sound copy: imported on the next open
    copy_bundle(shipped / "good", shipped / "broken")
    monkeypatch.setattr(bd._import, "validate", real)
    bd.import_shipped(Store())  # the same bundle as "good" (already in): no longer refused
    assert bd.refused_shipped(Store()) == [] and Store().store_counts()["finished_runs"] == 3


def test_the_cli_and_a_worker_open_with_a_broken_shipped_bundle(shipped, capsys):
    assert cli(["results", "list"]) == 0
    out = capsys.readouterr().out
    assert "shipped bundle broken" in out and "skipped" in out


def test_home_warns_of_a_skipped_shipped_bundle_and_still_draws_the_grid(shipped, data_root):
    from app_helpers import grid_panels, run_app, texts
    at = run_app()
    assert any("broken" in w and "skipped" in w for w in texts(at.warning))
    assert grid_panels(at)


# ---- case 4: nothing half-done ---------------------------------------------------------------

def test_an_import_that_fails_in_its_transaction_leaves_no_files(tiny_bundle, monkeypatch):
    store = Store()
    before = [c["name"] for c in list_sets()]

    def fail(plan):
        raise RuntimeError("the disk is full")
    monkeypatch.setattr(Store, "apply_import", lambda self, plan: fail(plan))
    with pytest.raises(RuntimeError):
        bd.import_bundle(store, tiny_bundle)
    assert [c["name"] for c in list_sets()] == before  # before: fake-set-sample was left
    assert not list(Path(os.environ["SYNTHMED_DATA"], "synthetic").glob(".import-*"))
    monkeypatch.undo()
    assert bd.import_bundle(store, tiny_bundle).samples == [f"{SET}-sample"]


# Where the import process kills itself with SIGKILL, and whether the transaction committed.
KILL_POINTS = {
    "after staging the sample": ("synthmed_core.bundle._import", "stage_set", False),
    "inside the transaction": ("synthmed_core.store._bundles", "add_val_threshold_metrics",
                               False),
    "after the commit": ("synthmed_core.bundle._import", "move_in", True),
}
_KILLER = """
import importlib, os, signal, sys
from synthmed_core.bundle import import_bundle
from synthmed_core.store import Store
module, name = sys.argv[2], sys.argv[3]
mod = importlib.import_module(module)
real = getattr(mod, name)
def killed(*a, **k):
    real(*a, **k) if name == "stage_set" else None
    os.kill(os.getpid(), signal.SIGKILL)
setattr(mod, name, killed)
import_bundle(Store(), sys.argv[1])
"""


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_an_import_killed_midway_leaves_the_data_root_as_it_was(tiny_bundle, point):
    store = Store()
    y = labels()
    add_run(store, "base", 5, probs_with_accuracy(y, 0.8, 5), y)  # a local run to keep
    before = (store.store_counts(), [c["name"] for c in list_sets()])
    module, name, committed = KILL_POINTS[point]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(tiny_bundle), module, name],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    store = Store()
    assert [c["name"] for c in list_sets()] == before[1]  # nothing half-written is visible
    if not committed:
        assert store.store_counts() == before[0] and store.bundles().empty
    report = bd.import_bundle(store, tiny_bundle)  # the genuine bundle imports (or is in)
    assert report.already_imported == committed
    assert f"{SET}-sample" in [c["name"] for c in list_sets()]
    assert store.store_counts()["finished_runs"] == 4
    assert not list(Path(os.environ["SYNTHMED_DATA"], "synthetic").glob(".import-*"))


# ---- case 2: undo, and a grid that reads a mixed store ---------------------------------------

def test_removing_a_bundle_leaves_local_runs_and_other_bundles(tiny_bundle, tmp_path, capsys):
    store = Store()
    y = labels()
    local = add_run(store, "base", 7, probs_with_accuracy(y, 0.8, 7), y)
    other = copy_bundle(tiny_bundle, tmp_path / "other")  # one of the same base runs
    keep = table(other, "runs").query("setting == 'base'")["run_id"].iloc[0]
    for name in ("runs", "predictions", "metrics", "epochs"):
        edit(other, name, lambda df: df[df["run_id"] == keep])
    for name in ("sets", "samples"):
        edit(other, name, lambda df: df.iloc[:0])
    first = bd.import_bundle(store, tiny_bundle)
    bd.import_bundle(store, other)
    assert cli(["results", "remove", first.bundle_id[:6]]) == 0
    assert "3 runs" in capsys.readouterr().out
    runs = store.runs()
    assert list(runs["run_id"]) == [local] and len(store.bundles()) == 1  # its run went too:
    # it came with the first bundle; the second found it "already here"
    assert f"{SET}-sample" not in [c["name"] for c in list_sets()]
    assert store.predictions(list(first.added)).empty
    assert bd.import_bundle(store, tiny_bundle).added  # and it can come back


def test_a_removed_shipped_bundle_stays_removed(shipped, capsys):
    store = Store()
    assert cli(["results", "remove", "tiny"]) == 0  # the name in its manifest
    assert Store().store_counts()["finished_runs"] == 0
    assert [r["name"] for r in bd.refused_shipped(Store())] == ["broken"]


def test_the_grid_reads_a_store_whose_runs_differ_in_test_size(real_data):
    from synthmed_core.explorer.heatmap_view import grid_cells, notes
    store = Store()
    y = labels()
    short = y[:150]  # seed 1 of both cells scored on 150 images only (an old import)
    for seed, yy in ((0, y), (1, short)):
        add_run(store, "base", seed, probs_with_accuracy(yy, 0.8, seed), yy)
        add_run(store, "synthetic_base", seed, probs_with_accuracy(yy, 0.7, 3 + seed), yy,
                synthetic="s")
    cells = grid_cells(store)  # before: StoreError "test sets of different sizes"
    assert len(cells) == 2
    assert notes(cells) and "different sizes (150 to 200 images)" in notes(cells)[0]
