"""The first page (app.py), run headless with AppTest against a store in tmp_path: the results
table beside the study's, the metric picker, the runs list and its status filter, the empty
store, and a database that cannot be read. No model is trained: runs are recorded through the
Store with fake but valid per-image predictions."""
from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from synthmed_core.events import RunResult
from synthmed_core.grid import make_run_spec
from synthmed_core.metrics import aggregate, run_metrics
from synthmed_core.paths import REPO_ROOT
from synthmed_core.store import Store

APP = str(REPO_ROOT / "app.py")
FIRST_RUN = ("python -m synthmed_core train --arch resnet18 --init scratch --setting base "
             "--seed 0 --profile smoke")
OURS = "resnet50 (profile smoke): test {}"


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty SYNTHMED_DATA for the app (and the default Store) to use."""
    root = tmp_path / "data"
    monkeypatch.setenv("SYNTHMED_DATA", str(root))
    monkeypatch.delenv("SYNTHMED_DB", raising=False)
    return root


def fake_predictions(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels at the test split's prevalence and a P(pneumonia) that ranks them imperfectly."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.625).astype(np.int64)
    probs = np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.25, n), 0, 1)
    return labels, probs


def record_run(store: Store, seed: int, outcome: str) -> tuple[str, dict]:
    """A resnet50/scratch/base smoke run that ends ``finished``, ``failed`` or stays ``running``;
    returns its id and (when finished) its test metrics."""
    spec = make_run_spec("resnet50", "scratch", "base", seed=seed, profile="smoke")
    store.start_run(spec, "cpu")
    store.add_epochs(spec.run_id, [{"phase": 0, "epoch": e, "train_loss": 0.6 - 0.1 * e,
                                    "val_accuracy": 0.8, "val_auroc": 0.85} for e in range(2)])
    metrics = {}
    if outcome == "finished":
        test_y, test_p = fake_predictions(seed, 624)
        val_y, val_p = fake_predictions(1000 + seed, 524)
        metrics = run_metrics(test_y, test_p)
        store.finish_run(RunResult(spec.run_id, metrics, test_y, test_p, val_y, val_p,
                                   best_epoch=1, best_phase=0, wall_s=3.0 + seed, device="cpu",
                                   checkpoint="best.pt"))
    elif outcome == "failed":
        store.fail_run(spec.run_id, "RuntimeError: out of memory")
    return spec.run_id, metrics


@pytest.fixture
def runs(data_root) -> dict:
    """Three finished seeds of one cell, then one failed and one still running, in that order."""
    store = Store()
    finished = [record_run(store, seed, "finished") for seed in (0, 1, 2)]
    failed, _ = record_run(store, 3, "failed")
    running, _ = record_run(store, 4, "running")
    return {"finished": [rid for rid, _ in finished], "metrics": [m for _, m in finished],
            "failed": failed, "running": running}


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table(at: AppTest, title: str):
    """The setting x init table shown under ``title``."""
    titles = [s.value for s in at.subheader]
    assert title in titles, titles
    return at.table[titles.index(title)].value


def shown_run_ids(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["run_id"])


def test_an_empty_store_says_how_to_train_a_first_run_and_shows_the_study(data_root):
    at = run_app()
    assert at.title[0].value == "synthmed"
    assert any("No runs in the store yet" in i.value for i in at.info)
    assert [c.value for c in at.code] == [FIRST_RUN]
    study = table(at, "resnet50 (study only): test accuracy")
    assert study.loc["base", "imagenet"] == "— (study 0.875)"
    assert table(at, "deit_tiny (study only): test accuracy").shape == (6, 3)


def test_the_table_shows_our_mean_and_n_beside_the_study_and_lists_the_runs(runs):
    at = run_app()
    assert not any("No runs in the store yet" in i.value for i in at.info)
    mean = aggregate([m["accuracy"] for m in runs["metrics"]])["mean"]
    cell = table(at, OURS.format("accuracy")).loc["base", "scratch"]
    assert cell.startswith(f"{mean:.3f} ± ") and "n=3" in cell
    assert cell.endswith("(study 0.837)")
    # newest first: the running run was started last, the first finished seed first
    assert shown_run_ids(at) == [runs["running"], runs["failed"], *reversed(runs["finished"])]
    assert at.download_button[0].label == "Download this table (CSV)"


def test_switching_the_metric_to_auroc_shows_our_auroc_without_a_study_value(runs):
    at = run_app()
    at.selectbox(key="metric").set_value("auroc").run()
    assert not at.exception
    mean = aggregate([m["auroc"] for m in runs["metrics"]])["mean"]
    cell = table(at, OURS.format("auroc")).loc["base", "scratch"]
    assert cell.startswith(f"{mean:.3f} ± ") and "n=3" in cell and "study" not in cell
    assert "resnet50 (study only): test auroc" not in [s.value for s in at.subheader]


@pytest.mark.parametrize("status", ["finished", "failed", "running"])
def test_the_status_filter_keeps_only_runs_of_that_status(runs, status):
    at = run_app()
    at.selectbox(key="run_status").set_value(status).run()
    assert not at.exception
    want = runs[status] if status == "finished" else [runs[status]]
    assert sorted(shown_run_ids(at)) == sorted(want)
    assert set(at.dataframe[0].value["status"]) == {status}


def test_a_database_that_cannot_be_read_is_a_warning_not_a_traceback(tmp_path, monkeypatch):
    bad = tmp_path / "not-a-database.duckdb"
    bad.write_text("this is not a DuckDB file\n")
    monkeypatch.setenv("SYNTHMED_DB", str(bad))
    at = run_app()
    assert "cannot be read right now" in at.warning[0].value
    assert str(bad) in at.warning[0].value
