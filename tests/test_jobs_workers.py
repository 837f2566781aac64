"""Workers as real processes on a real database file, training real smoke runs: a worker
killed with SIGKILL mid-run, a cancel, a job that raises. (The load test is in
test_jobs_load.py.) Each worker uses one CPU thread and leaves once the queue is empty."""
from __future__ import annotations

import os
import signal
import time

import pytest

from jobs_helpers import (accounted, smoke_job, status, submit_train, wait_for, worker,
                          worker_output)
from synthmed_core.store import Store

import jobs
from jobs._cli import main as jobs_main

pytestmark = pytest.mark.workers


def test_a_worker_killed_mid_run_is_detected_and_its_job_resumes_from_the_last_epoch(real_data):
    store = Store()
    job_id = submit_train(store, epochs=3, train_limit=256)
    run_id = store.job(job_id)["run_id"]
    first = worker(idle_exit=30)
    assert os.getsid(first.pid) == first.pid != os.getsid(0)  # its own session: outlives ours
    wait_for(lambda: status(store, job_id) == "running", 120, "the first worker to claim it")
    second = worker(idle_exit=60)  # idle beside it: the one to notice the silence
    wait_for(lambda: len(store.epochs(run_id)) >= 1, 180, "the first epoch row")
    os.kill(first.pid, signal.SIGKILL)  # mid-run: no goodbye, no chance to clean up
    first.wait(timeout=30)
    assert status(store, job_id) == "running"  # nobody knows yet

    wait_for(lambda: status(store, job_id) in ("finished", "failed"), 240, "the job to end")
    second.send_signal(signal.SIGTERM)  # a clean stop of an idle worker
    assert second.wait(timeout=60) == 0, worker_output(second)

    job = store.job(job_id)
    assert job["status"] == "finished", job["error"]
    assert job["attempts"] == 2 and job["pid"] == second.pid
    log = open(job["log_path"]).read()
    assert "attempt 2 of 3" in log and "resumed from epoch" in log, log
    resumed = [line for line in log.splitlines() if "resumed from epoch" in line][0]
    assert int(resumed.split("resumed from epoch ")[1].split()[0]) >= 1  # not from zero
    assert store.epochs(run_id)["epoch"].tolist() == [0, 1, 2]  # no duplicate epoch rows
    assert store.run(run_id)["status"] == "finished"


def test_workers_paused_together_longer_than_stale_after_keep_their_job_and_its_attempt(
        real_data):
    """What a suspended laptop or a frozen VM does: every worker stops for longer than
    --stale-after (3 s here) and resumes, one a little before the other. Nobody died: the job
    keeps its worker and its attempt (it used to be requeued, and three pauses failed it)."""
    store = Store()
    job_id = submit_train(store, epochs=3, train_limit=256)
    run_id = store.job(job_id)["run_id"]
    first = worker(idle_exit=30)
    wait_for(lambda: status(store, job_id) == "running", 120, "the first worker to claim it")
    second = worker(idle_exit=30)  # idle beside it: the one that looks for dead workers
    wait_for(lambda: len(store.live_workers(3.0)) == 2, 60, "both workers to beat")
    wait_for(lambda: len(store.epochs(run_id)) >= 1, 180, "the first epoch row")
    for proc in (first, second):
        os.killpg(proc.pid, signal.SIGSTOP)
    time.sleep(8)
    os.killpg(second.pid, signal.SIGCONT)  # the sweeper wakes first
    time.sleep(0.5)
    os.killpg(first.pid, signal.SIGCONT)

    wait_for(lambda: status(store, job_id) in ("finished", "failed", "queued"), 240,
             "the job to end")
    job = store.job(job_id)
    assert (job["status"], job["attempts"], job["pid"]) == ("finished", 1, first.pid), (
        job["error"], worker_output(second))
    for proc in (first, second):
        proc.wait(timeout=60)


def test_a_cancelled_job_stops_within_seconds_and_keeps_its_epochs_marked_cancelled(real_data):
    store = Store()
    job_id = submit_train(store, epochs=30, train_limit=256)
    run_id = store.job(job_id)["run_id"]
    proc = worker(idle_exit=2)
    wait_for(lambda: len(store.epochs(run_id)) >= 1, 180, "the first epoch row")
    t0 = time.monotonic()
    assert jobs_main(["cancel", str(job_id)]) == 0
    wait_for(lambda: status(store, job_id) == "cancelled", 20, "the cancel", every=0.1)
    took = time.monotonic() - t0
    proc.wait(timeout=60)

    assert took < 5, f"cancel took {took:.1f} s"
    run = store.run(run_id)
    assert run["status"] == "cancelled" and "cancelled by the user" in run["error"]
    assert 1 <= len(run["epochs"]) < 30  # the partial epochs stay
    assert "cancelled by the user" in open(store.job(job_id)["log_path"]).read()
    received, rows = accounted(store, job_id)
    assert received == rows


def test_a_job_that_raises_is_failed_with_its_traceback_and_the_worker_runs_the_next(real_data):
    store = Store()
    # No ChestMNIST checkpoint exists: known only when the run builds its model.
    bad = jobs.submit("train", smoke_job(seed=1) + ["--init", "chestmnist"], store).ids[0]
    good = submit_train(store, seed=2)
    proc = worker(idle_exit=2)
    wait_for(lambda: status(store, good) in ("finished", "failed"), 240, "the second job")
    proc.wait(timeout=60)

    failed, done = store.job(bad), store.job(good)
    assert failed["status"] == "failed" and "chestmnist" in failed["error"].lower()
    log = open(failed["log_path"]).read()
    assert "Traceback (most recent call last)" in log and "ModelError" in log
    assert done["status"] == "finished" and done["worker"] == failed["worker"]
    assert proc.returncode == 0, worker_output(proc)


def test_jobs_bench_ends_with_the_error_of_a_failed_job_and_stops_its_worker(tmp_path,
                                                                               monkeypatch):
    import time

    from jobs import JobError
    from jobs import _latency, _procs
    monkeypatch.setenv("SYNTHMED_MEDMNIST_ROOT", str(tmp_path / "no-data-here"))
    monkeypatch.setenv("SYNTHMED_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(JobError, match="failed: DataError"):
        _latency.bench(n_jobs=1)
    assert time.monotonic() - t0 < 120
    assert all(p.poll() is not None for p in _procs._STARTED)


def _nice_and_group(pid: int) -> tuple[int, str]:
    """A process's niceness (field 19 of /proc/PID/stat) and its autogroup line."""
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    group = open(f"/proc/{pid}/autogroup").read() if os.path.exists(f"/proc/{pid}/autogroup") \
        else ""
    return int(stat[16]), group


@pytest.mark.skipif(not os.path.exists("/proc/self/stat") or os.nice(0) > 7,
                    reason="reads /proc (Linux); a process can only lower its priority")
def test_a_detached_worker_started_nice_runs_at_that_priority_with_its_session(real_data):
    proc = worker(3.0, "--nice", "7")
    nice, group = wait_for(lambda: (lambda n: n if n[0] == 7 else None)(
        _nice_and_group(proc.pid)), 60, "the worker to lower its priority")
    assert nice == 7
    if group:  # where the kernel has autogroups, the worker's session yields too
        assert group.strip().endswith("nice 7"), group
    proc.wait(timeout=120)
    assert proc.returncode == 0, worker_output(proc)


def test_a_niceness_out_of_range_is_refused_before_any_worker_starts(real_data, capsys):
    assert jobs_main(["worker", "--nice", "25", "--detach"]) == 2
    assert "--nice must be 0-19" in capsys.readouterr().err
    assert not jobs.reap_workers()
