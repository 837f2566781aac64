"""The Home page and the sidebar, run headless with AppTest against a store in tmp_path.

Home: what is in the store, the headline grid, the results table beside the study's, the runs
list and its status filter, an empty store, a database that cannot be read. Sidebar: the launch
form refuses bad input before queueing anything and queues exactly one job for good input,
then asks for a worker (a stand-in here: no process starts). No model is trained: runs are
recorded through the Store with fake but valid per-image predictions."""
from __future__ import annotations

import numpy as np
import pytest

from synthmed_core.analysis.metrics import aggregate, run_metrics
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.records.events import RunResult
from ui import sidebar

from app_helpers import assert_ok, grid_panels, opened, run_app, run_entry, texts

FIRST_RUN = ("python -m synthmed_core train --arch resnet18 --init scratch --setting base "
             "--seed 0 --profile smoke")
OURS = "resnet50 (profile smoke): test {}"


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


def table(at, title: str):
    """The setting x init table shown under ``title``."""
    titles = texts(at.subheader)
    assert title in titles, titles
    return at.table[titles.index(title)].value


def shown_run_ids(at) -> list[str]:
    return list(at.dataframe[0].value["run_id"])


def metric(at, label: str):
    return {m.label: m.value for m in at.metric}[label]


def charts(at) -> list:
    return grid_panels(at)


# ---- Home ---------------------------------------------------------------------------------------


def test_the_entry_point_draws_the_sidebar_and_opens_on_home(data_root):
    at = run_entry()
    assert at.title[0].value == "synthmed"
    assert [e.label for e in at.sidebar.expander] == ["Train a cell"]
    assert "Nothing queued or running." in texts(at.sidebar.caption)


def test_an_empty_store_says_how_to_train_a_first_run_and_shows_the_study(data_root):
    at = run_app()
    assert at.title[0].value == "synthmed"
    assert any("No runs in the store yet" in i for i in texts(at.info))
    assert texts(at.code) == [FIRST_RUN]
    assert metric(at, "Finished runs") == "0"
    study = table(at, "resnet50 (study only): test accuracy")
    assert study.loc["base", "imagenet"] == "— (study 0.875)"
    assert table(at, "deit_tiny (study only): test accuracy").shape == (6, 3)
    assert len(charts(at)) == 2  # the study's headline grid: one panel per arch
    assert "How to start" in texts(at.header)


def test_home_counts_what_the_store_holds_and_draws_the_headline_grid_of_our_arch(runs):
    at = run_app()
    assert metric(at, "Finished runs") == "3"
    assert metric(at, "Test predictions") == f"{3 * 624:,}"
    assert len(charts(at)) == 1  # resnet50 only: the archs we ran
    assert '"resnet50"' in charts(at)[0].proto.spec  # the panel's title


def test_the_table_shows_our_mean_and_n_beside_the_study_and_lists_the_runs(runs):
    at = run_app()
    assert not any("No runs in the store yet" in i for i in texts(at.info))
    mean = aggregate([m["accuracy"] for m in runs["metrics"]])["mean"]
    cell = table(at, OURS.format("accuracy")).loc["base", "scratch"]
    assert cell.startswith(f"{mean:.3f} ± ") and "n=3" in cell
    assert cell.endswith("(study 0.837)")
    assert "3 runs; run wall time 12 s in all (4 s per run)" in texts(at.caption)  # 3 + 4 + 5 s
    # newest first: the running run was started last, the first finished seed first
    assert shown_run_ids(at) == [runs["running"], runs["failed"], *reversed(runs["finished"])]
    assert at.download_button[0].label == "Download this table (CSV)"


def test_switching_the_metric_to_auroc_shows_our_auroc_without_a_study_value(runs):
    at = run_app()
    at.selectbox(key="metric").set_value("auroc").run()
    assert_ok(at)
    mean = aggregate([m["auroc"] for m in runs["metrics"]])["mean"]
    cell = table(at, OURS.format("auroc")).loc["base", "scratch"]
    assert cell.startswith(f"{mean:.3f} ± ") and "n=3" in cell and "study" not in cell
    assert "resnet50 (study only): test auroc" not in texts(at.subheader)


@pytest.mark.parametrize("status", ["finished", "failed", "running"])
def test_the_status_filter_keeps_only_runs_of_that_status(runs, status):
    at = run_app()
    at.selectbox(key="run_status").set_value(status).run()
    assert_ok(at)
    want = runs[status] if status == "finished" else [runs[status]]
    assert sorted(shown_run_ids(at)) == sorted(want)
    assert set(at.dataframe[0].value["status"]) == {status}


def test_a_store_of_thousands_of_runs_lists_the_newest_and_says_where_the_rest_are(data_root):
    from synthmed_core.store._fill import fill_scratch_store
    store = Store()
    fill_scratch_store(store, n_runs=1200, n_preds_per_run=4)
    at = run_app()
    listed = at.dataframe[0].value
    assert len(listed) == 500
    newest = store.runs().sort_values("started_at", ascending=False)["started_at"].head(500)
    assert listed["started_at"].min() == newest.min()
    assert any("The newest 500 of 1200 runs (1200 in all)" in c and "runs list" in c
               for c in texts(at.caption))


def test_a_database_that_cannot_be_read_is_a_warning_not_a_traceback(tmp_path, monkeypatch):
    bad = tmp_path / "not-a-database.duckdb"
    bad.write_text("this is not a DuckDB file\n")
    monkeypatch.setenv("SYNTHMED_DB", str(bad))
    at = run_app()
    shown = texts(at.warning)[0]
    assert "cannot be read right now" in shown and str(bad) in shown


# ---- Sidebar: the launch form -------------------------------------------------------------------


WIDGETS = {"seeds": "text_input", "arch_other": "text_input", "ratio": "number_input"}


def with_form(at):
    """``at`` after a click on the sidebar's collapsed "Train a cell", which builds the form."""
    return opened(at, sidebar.LAUNCH_OPEN)


def test_the_launch_form_is_built_when_its_expander_opens_and_stays_open(data_root):
    at = run_app()
    assert [e.label for e in at.sidebar.expander] == ["Train a cell"]
    assert not at.sidebar.selectbox and "Queue" not in [b.label for b in at.sidebar.button]
    assert "Nothing queued or running." in texts(at.sidebar.caption)  # the jobs, at once
    with_form(at)
    assert at.selectbox(key="launch_arch").value == "resnet18"
    at.run()
    assert "Queue" in [b.label for b in at.sidebar.button]


def queue(at, **values):
    """Fill the sidebar's launch form (keys without the ``launch_`` prefix), opened, and press
    Queue."""
    with_form(at)
    for key, value in values.items():
        getattr(at, WIDGETS.get(key, "selectbox"))(key=f"launch_{key}").set_value(value)
    at.sidebar.button(key="launch_queue").click().run()
    assert_ok(at)
    return at


def active_jobs(at) -> list[str]:
    return [p.proto.text for p in at.sidebar.get("progress")]


def test_the_launch_form_defaults_to_quick_and_says_smoke_is_a_seconds_long_try(data_root):
    at = with_form(run_app())
    profile = at.selectbox(key="launch_profile")
    assert profile.value == "quick"
    assert "smoke: a seconds-long try of the form" in profile.options


def test_before_queueing_the_form_estimates_the_chosen_cell_from_epochs_trained_here(
        data_root, monkeypatch):
    from test_estimate import _local_run

    from synthmed_core.bench.estimate import real_count
    from ui import readers
    monkeypatch.setattr(readers, "FRESH_CHECK_S", 0.0)  # the next rerun sees the new run at once
    at = with_form(run_app())  # nothing trained here yet: it offers to measure instead
    assert any("No resnet18 run was trained here yet" in c for c in texts(at.sidebar.caption))
    assert "Measure resnet18 here (a short run)" in [b.label for b in at.sidebar.button]
    _local_run(Store(), "resnet18", "base", epoch_s=real_count() * 0.002)  # 2 ms an image
    at = with_form(run_app())
    estimate = [c for c in texts(at.sidebar.caption) if c.startswith("About")]
    assert estimate == ["About **3 min** a run here, from the finished epochs of 1 resnet18 "
                        "run phase trained here."]  # quick: 20 epochs x 4708 x 2 ms = 188 s
    at.selectbox(key="launch_profile").set_value("smoke")
    at.text_input(key="launch_seeds").set_value("0 1 2").run()
    assert [c for c in texts(at.sidebar.caption) if c.startswith("About")] == [
        "About **1 s** a run here (3 runs: 3 s one after another), from the finished epochs "
        "of 1 resnet18 run phase trained here."]


@pytest.mark.parametrize("values, message", [
    ({"seeds": "zero"}, "seeds must be whole numbers"),
    ({"seeds": ""}, "at least one seed"),
    ({"seeds": "0-100"}, "must go upwards and stay within"),
    ({"setting": "augment"}, "needs a synthetic set"),
    ({"setting": "augment", "ratio": 0.0}, "needs a ratio"),
    ({"arch_other": "resnet50; rm -rf /"}, "arch must be a timm model name"),
])
def test_bad_launch_input_shows_an_error_and_queues_nothing(data_root, workers_started,
                                                            values, message):
    at = queue(run_app(), **values)
    errors = texts(at.sidebar.error)
    assert len(errors) == 1 and errors[0].startswith("Nothing queued") and message in errors[0]
    assert Store().jobs().empty
    assert workers_started == []
    assert active_jobs(at) == []


def test_an_arch_timm_does_not_know_is_refused_by_the_jobs_check(data_root, workers_started):
    at = queue(run_app(), arch_other="no_such_model_anywhere")
    assert "unknown arch 'no_such_model_anywhere'" in texts(at.sidebar.error)[0]
    assert Store().jobs().empty and workers_started == []


def test_a_good_launch_queues_exactly_one_job_starts_a_worker_and_shows_it(data_root,
                                                                         workers_started):
    at = queue(run_app(), arch="resnet18", seeds="7", profile="smoke")
    queued = Store().jobs()
    assert len(queued) == 1
    job = queued.iloc[0]
    assert (job["kind"], job["status"]) == ("train", "queued")
    assert "resnet18/scratch/base seed=7 smoke" in job["label"]
    assert len(workers_started) == 1
    assert f"queued job {job['id']}" in texts(at.sidebar.success)[0]
    assert active_jobs(at) and active_jobs(at)[0].startswith(f"#{job['id']} ")


def test_several_seeds_queue_one_grid_of_that_many_runs(data_root, workers_started):
    queue(run_app(), seeds="0 1, 2", profile="quick")
    queued = Store().jobs()
    assert sorted(queued["kind"]) == ["grid", "train", "train", "train"]
    assert len(workers_started) == 1


def test_relaunching_a_queued_run_queues_nothing_more_and_says_so(data_root, workers_started):
    at = queue(run_app(), seeds="3")
    queue(at)
    assert len(Store().jobs()) == 1
    assert "already queued or running" in texts(at.sidebar.info)[0]
    assert len(workers_started) == 1
