"""The Jobs page, run headless with AppTest on a store with queued, running and failed jobs: the
queue and its status filter, progress, a job's log, and the Cancel and Retry buttons acting on
the store through jobs' public functions. No worker runs: the tests play the worker's part."""
from __future__ import annotations

import pytest

from synthmed_core import paths
from synthmed_core.store import Store

from app_helpers import assert_ok, run_app, texts

PAGE = "app_pages/jobs.py"


@pytest.fixture
def queue(data_root) -> dict[str, int]:
    """Jobs 1-3 queued, then job 1 running (halfway through epoch 2 of 4, a log written) and
    job 2 failed by its worker."""
    store = Store()
    ids = store.add_jobs([{"kind": "train", "label": f"resnet18/scratch/base seed={i} smoke",
                           "spec": {}} for i in range(3)])
    store.claim_job("w1", 11)
    store.heartbeat("w1", ids[0], [{"job_id": ids[0], "seq": 1, "attempt": 1, "event": "progress",
                                    "phase": 0, "epoch": 1, "total_epochs": 4, "step": 5,
                                    "steps": 10, "loss": 0.5, "eta_s": 42.0}])
    log = paths.job_log(ids[0])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("attempt 1 on cpu\nepoch 1/4 done\n")
    store.claim_job("w2", 12)
    store.finish_job(ids[1], "w2", "failed", error="RuntimeError: out of memory")
    return {"running": ids[0], "failed": ids[1], "queued": ids[2]}


def pick(at, job_id: int):
    at.selectbox(key="jobs_pick").set_value(job_id).run()
    assert_ok(at)
    return at


def status(job_id: int) -> str:
    return Store().job(job_id)["status"]


def test_the_queue_lists_every_job_newest_first_with_progress(queue):
    at = run_app(PAGE)
    table = at.dataframe[0].value.set_index("id")
    assert table.index.tolist() == [queue["queued"], queue["failed"], queue["running"]]
    assert table.loc[queue["running"], "done"] == pytest.approx(1.5 / 4)
    assert "epoch 2/4 step 5/10" in table.loc[queue["running"], "progress"]
    assert "eta 42s" in table.loc[queue["running"], "progress"]


def test_the_status_filter_keeps_only_jobs_of_that_status(queue):
    at = run_app(PAGE)
    at.selectbox(key="jobs_status").set_value("failed").run()
    assert_ok(at)
    assert at.dataframe[0].value["id"].tolist() == [queue["failed"]]
    at.selectbox(key="jobs_status").set_value("cancelled").run()
    assert any("No jobs cancelled yet" in i for i in texts(at.info))


def test_a_job_shows_its_progress_error_and_the_tail_of_its_log(queue):
    at = pick(run_app(PAGE), queue["running"])
    assert at.code[-1].value.strip() == "attempt 1 on cpu\nepoch 1/4 done"
    at = pick(at, queue["failed"])
    assert "RuntimeError: out of memory" in texts(at.error)
    assert "has no log yet" in at.code[-1].value


def test_cancel_cancels_a_queued_job_and_retry_queues_it_again(queue):
    at = pick(run_app(PAGE), queue["queued"])
    assert at.button(key="job_retry").disabled and not at.button(key="job_cancel").disabled
    at.button(key="job_cancel").click().run()
    assert_ok(at)
    assert status(queue["queued"]) == "cancelled"
    assert f"job {queue['queued']}: cancelled" in texts(at.success)
    assert not at.button(key="job_retry").disabled and at.button(key="job_cancel").disabled
    at.button(key="job_retry").click().run()
    assert_ok(at)
    assert status(queue["queued"]) == "queued"
    assert f"queued again: job {queue['queued']}" in texts(at.success)


def test_cancel_asks_a_running_job_to_stop_at_its_next_step(queue):
    at = pick(run_app(PAGE), queue["running"])
    at.button(key="job_cancel").click().run()
    assert_ok(at)
    job = Store().job(queue["running"])
    assert job["status"] == "running" and job["cancel_requested"]
    assert any("cancelling" in s for s in texts(at.success))


def test_retry_requeues_a_failed_job(queue):
    at = pick(run_app(PAGE), queue["failed"])
    at.button(key="job_retry").click().run()
    assert_ok(at)
    assert status(queue["failed"]) == "queued"


def test_an_empty_queue_says_how_to_start(data_root):
    at = run_app(PAGE)
    assert any("No jobs yet" in i for i in texts(at.info))
    assert any("python -m jobs worker" in m for m in texts(at.markdown))
