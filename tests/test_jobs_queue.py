"""The job queue without training: submit checks, grid expansion, atomic claims across
processes, stale requeue and its bound, cancel/retry, the progress batcher, worker processes
that are reaped."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import jobs
from jobs._cli import main as jobs_main
from jobs._monitor import JobMonitor, Pacing
from synthmed_core.paths import REPO_ROOT
from synthmed_core.store import Store
from synthmed_core.store._jobs import PUBLISH_PROGRESS_S
from synthmed_core.records.events import EpochEnd, Progress

from jobs_helpers import grid_job, smoke_job, wait_for


@pytest.fixture
def store(synth_data_root) -> Store:
    return Store()


def test_jobs_list_on_a_brand_new_store_says_there_are_none(synth_data_root, capsys):
    assert jobs_main(["list"]) == 0
    assert "no jobs yet" in capsys.readouterr().out
    assert Store().jobs().empty


@pytest.mark.parametrize("argv, message", [
    (["train", "--arch", "no_such_net"], "unknown arch 'no_such_net'"),
    (["train", "--setting", "augment", "--ratio", "-1", "--synthetic", "x"],
     "ratio must be a positive number"),
    (["train", "--setting", "augment", "--synthetic", "nowhere"],
     "synthetic set 'nowhere' not found"),
    (["grid", "--arch", "resnet18", "--setting", "base", "augment", "--synthetic", "nowhere"],
     "synthetic set 'nowhere' not found"),
    (["generate", "--method", "ddpm", "--name", "g", "--count", "0"],
     "count must be a positive whole number"),
    (["generate", "--method", "cyclegan", "--name", "g", "--per-class", "-2"],
     "per_class must be a positive whole number"),
    (["generate", "--method", "ddpm", "--name", "g", "--epochs", "0"],
     "epochs must be a positive whole number"),
    (["generate", "--method", "ddpm", "--name", "no/slash"], "invalid synthetic set name"),
    (["quality", "--name", "nowhere"], "synthetic set 'nowhere' not found"),
])
def test_a_bad_submit_is_refused_with_one_clear_line_and_nothing_is_queued(
        store, capsys, argv, message):
    assert jobs_main(["submit", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert store.jobs().empty


def test_a_grid_queues_one_job_per_run_and_skips_runs_already_queued(store, capsys):
    first = jobs.submit("train", smoke_job(seed=0), store)
    grid = jobs.submit("grid", grid_job([0, 1, 2]), store)
    parent, *children = grid.ids
    assert len(children) == 2 and "1 already queued or running" in grid.message
    df = store.jobs().set_index("id")
    assert df.loc[parent, "kind"] == "grid" and df.loc[parent, "status"] == "running"
    assert set(df.loc[children, "parent_id"]) == {parent}
    assert first.ids[0] not in children
    again = jobs.submit("grid", grid_job([0, 1, 2]), store)
    assert again.ids == [] and "nothing to queue" in again.message


def test_cancelling_a_grid_cancels_its_queued_runs_and_retry_queues_them_again(store):
    parent, *children = jobs.submit("grid", grid_job([0, 1]), store).ids
    assert {s for _, s in store.cancel_job(parent)} == {"cancelled"}
    assert store.job(parent)["status"] == "cancelled"
    assert set(store.jobs(parent_id=parent)["status"]) == {"cancelled"}
    assert sorted(store.retry_job(parent)) == children
    assert store.job(parent)["status"] == "running"
    assert set(store.jobs(parent_id=parent)["status"]) == {"queued"}


def test_a_job_whose_worker_went_silent_is_requeued_then_failed_after_max_attempts(store):
    job_id = jobs.submit("train", smoke_job() + ["--max-attempts", "2"], store).ids[0]
    for attempt in (1, 2):
        assert store.claim_job(f"w{attempt}", 1)["attempts"] == attempt
        time.sleep(0.05)
        expected = "queued" if attempt == 1 else "failed"
        assert store.requeue_stale(0.01) == [(job_id, expected)]
    job = store.job(job_id)
    assert job["status"] == "failed" and "stopped sending heartbeats" in job["error"]
    assert store.claim_job("w3", 1) is None


def test_dead_workers_are_looked_for_every_half_stale_period_but_not_on_waking_from_a_pause():
    from jobs._sweep import Sweeper
    clock = [1000.0]
    sweeper = Sweeper(stale_s=30, grace_s=10, at_once=True, clock=lambda: clock[0])

    def tick(after_s: float) -> bool:
        clock[0] += after_s
        return sweeper.due()

    assert tick(0) and not tick(1)  # a worker that starts sweeps at once, then waits
    assert [tick(1) for _ in range(15)].count(True) == 1  # every 15 s while it runs
    assert not tick(3600)  # it was stopped for an hour (SIGSTOP, a sleeping laptop): so were
    assert not tick(5)  # the others; they get `grace_s` to beat again
    assert tick(5)  # then it sweeps as usual
    assert not Sweeper(stale_s=30, grace_s=10, clock=lambda: clock[0]).due()  # a monitor: later


def test_a_worker_that_lost_its_job_cannot_finish_it(store):
    job_id = jobs.submit("train", smoke_job(), store).ids[0]
    store.claim_job("old", 1)
    time.sleep(0.05)
    store.requeue_stale(0.01)
    store.claim_job("new", 2)
    assert store.heartbeat("old", job_id) == (False, False)
    assert store.finish_job(job_id, "old", "finished") is False
    assert store.job(job_id)["worker"] == "new"


_CLAIMER = """
import json, sys
from synthmed_core.store import Store
store, got = Store(), []
while (job := store.claim_job(sys.argv[1], 0)) is not None:
    got.append(job["id"])
print(json.dumps(got))
"""


@pytest.mark.workers
def test_workers_claiming_at_once_from_several_processes_take_each_job_exactly_once(store):
    ids = store.add_jobs([{"kind": "train", "label": f"j{i}", "spec": {"i": i}}
                          for i in range(40)])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMER, f"w{i}"], env=env,
                              stdout=subprocess.PIPE, text=True) for i in range(4)]
    taken = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    flat = [j for got in taken for j in got]
    assert sorted(flat) == sorted(ids)  # every job once: none twice, none left
    assert sum(1 for got in taken if got) >= 2  # they really competed
    assert set(store.jobs()["status"]) == {"running"}


def test_the_progress_batcher_writes_every_event_in_order_in_few_writes(store):
    job_id = jobs.submit("train", smoke_job(), store).ids[0]
    job = store.claim_job("w", os.getpid())
    monitor = JobMonitor(store, job, "w", flush_s=1.0, poll_s=0.1)
    for i in range(200):
        monitor.emit(Progress("r", 0, 0, 1, i + 1, 200, 0.5, 100.0, 1.0))
    monitor.emit(EpochEnd("r", 0, 0, 0.5, 0.5, 0.5, 0.5, 1e-4, 1.0, True))
    stats = monitor.close()
    rows = store.job_progress(job_id)
    assert rows["seq"].tolist() == list(range(1, 202))
    assert rows["event"].tolist() == ["progress"] * 200 + ["epoch"]
    assert stats["received"] == {"progress": 200, "epoch": 1} and stats["unwritten"] == 0
    assert stats["flushes"] <= 3  # batched: at most one write per second, plus the last


def test_a_job_given_back_to_the_queue_shows_where_it_stopped_not_a_live_eta():
    row = {"event": "progress", "epoch": 2, "total_epochs": 20, "step": 61, "steps": 111,
           "loss": 0.286, "eta_s": 10021.0}
    assert jobs.progress_text({**row, "status": "running"}) == \
        "epoch 3/20 step 61/111 loss 0.286 eta 10021s"
    queued = jobs.progress_text({**row, "status": "queued"})
    assert queued == "requeued in epoch 3/20"
    after_epoch = {**row, "event": "epoch", "status": "queued"}
    assert jobs.progress_text(after_epoch) == "requeued after epoch 3/20"
    assert jobs.progress_text({"status": "queued", "event": None}) == ""  # never started


def _paced_writes(pacing: Pacing, seconds: float, write_s: float) -> list[float]:
    """When the monitor writes over ``seconds`` of a fake clock, with rows always buffered
    (an event every few ms) and writes that take ``write_s`` each: the monitor's own loop,
    minus the thread and the database (it sleeps until the next due time)."""
    now, writes = 0.0, []
    pacing.start(now)
    while now < seconds:
        action = pacing.action(now, buffered=True)
        if action == "write":
            writes.append(now)
            pacing.spent(write_s)
            pacing.wrote(now, rows=True)
            now += write_s
        else:
            if action == "look":
                pacing.looked(now)
            now = max(now + 1e-9, min(pacing.next_due(True), seconds))
    return writes


def test_slow_writes_are_spaced_out_to_keep_the_monitors_database_time_small():
    # writes costing 0.1 s (a busy CPU, a big database) with a 10% share: one per second,
    # not one per flush_s (0.05 s: 33 in 5 s), so writing takes 10% of the wall time
    writes = _paced_writes(Pacing(flush_s=0.05, poll_s=0.05, heartbeat_s=5.0, store_share=0.1),
                           seconds=5.0, write_s=0.1)
    assert writes == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=1e-6)
    # a fast store writes every flush_s, and a heartbeat_s shorter than the spacing wins
    fast = _paced_writes(Pacing(0.5, 1.0, 5.0, 0.02), seconds=2.0, write_s=0.001)
    assert fast == pytest.approx([0.0, 0.5, 1.0, 1.5], abs=1e-6)
    capped = _paced_writes(Pacing(0.05, 0.05, 2.0, 0.1), seconds=6.0, write_s=0.5)
    assert capped == pytest.approx([0.0, 2.0, 4.0], abs=1e-6)  # 0.5 / 0.1 = 5 s of spacing, capped at 2


def test_the_monitor_writes_every_event_it_received_through_a_slow_store(store, monkeypatch):
    job_id = jobs.submit("train", smoke_job(), store).ids[0]
    job = store.claim_job("w", os.getpid())
    real_heartbeat, ticks = store.heartbeat, []

    def slow_heartbeat(*args):  # a write costing 0.1 s, as on a busy CPU with a big database
        time.sleep(0.1)
        return real_heartbeat(*args)

    monkeypatch.setattr(store, "heartbeat", slow_heartbeat)

    def clock():  # the real clock, counted: the monitor reads time only through it
        ticks.append(time.monotonic())
        return ticks[-1]
    monitor = JobMonitor(store, job, "w", flush_s=0.05, poll_s=0.05, store_share=0.1,
                         clock=clock)
    for _ in range(100):
        monitor.emit(Progress("r", 0, 0, 1, 1, 200, 0.5, 100.0, 1.0))
        time.sleep(0.01)
    stats = monitor.close()
    assert ticks and stats["flushes"] >= 1 and stats["unwritten"] == 0
    assert len(store.job_progress(job_id)) == stats["received"]["progress"] == 100


def test_the_monitor_sees_a_cancel_within_a_second(store):
    job_id = jobs.submit("train", smoke_job(), store).ids[0]
    monitor = JobMonitor(store, store.claim_job("w", os.getpid()), "w", poll_s=0.2)
    try:
        assert not monitor.should_stop()
        assert "cancelling" in jobs.cancel(job_id, store)
        t0 = time.monotonic()
        wait_for(monitor.should_stop, 2.0, "the cancel flag", every=0.02)
        assert time.monotonic() - t0 < 1.0 and monitor.stop_reason == "cancel"
    finally:
        monitor.close()


def test_a_cancel_that_did_not_ring_the_bell_is_seen_at_the_next_heartbeat(store):
    job_id = jobs.submit("train", smoke_job(), store).ids[0]
    monitor = JobMonitor(store, store.claim_job("w", os.getpid()), "w", poll_s=0.05,
                         heartbeat_s=1.0)
    try:
        assert store.cancel_job(job_id) == [(job_id, "cancelling")]  # the store alone: no ring
        time.sleep(0.3)
        assert not monitor.should_stop()  # polls read the bell, not the database
        wait_for(monitor.should_stop, 3.0, "the heartbeat to see the cancel", every=0.02)
        assert monitor.stop_reason == "cancel"
    finally:
        monitor.close()


@pytest.mark.workers
def test_a_detached_worker_is_reaped_and_no_zombie_is_left(synth_data_root, store):
    proc = jobs.start_worker(["--backend", "no-such-backend"])  # exits at once, status 2
    wait_for(lambda: not jobs.reap_workers(), 60, "the worker to exit")
    assert proc.returncode == 2 and "unknown worker backend" in proc.log_path.read_text()
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)  # already collected: not a zombie


@pytest.mark.workers
def test_ensure_worker_starts_one_only_when_no_worker_is_alive(store):
    quick = ["--backend", "no-such-backend"]  # a worker process that leaves at once
    proc = jobs.ensure_worker(store, args=quick)
    assert proc is not None
    wait_for(lambda: not jobs.reap_workers(), 60, "the worker to exit")
    store.register_worker("elsewhere-1", "elsewhere", 1, "cpu", "local")
    assert jobs.ensure_worker(store, args=quick) is None  # a fresh heartbeat elsewhere


def test_a_ray_head_claims_only_the_kinds_a_ray_task_can_run(store):
    from jobs.kinds import KINDS, REMOTE_KINDS
    assert set(REMOTE_KINDS) == {"train", "pretrain"}  # generate and quality need the store
    assert all(KINDS[k].remote_done is not None for k in REMOTE_KINDS)
    store.add_jobs([{"kind": "quality", "label": "q", "spec": {"quality": {"name": "s"}},
                     "priority": 9}])
    train_id = jobs.submit("train", smoke_job(), store).ids[0]
    claimed = store.claim_job("ray-head", 1, kinds=REMOTE_KINDS)  # passes over the quality job
    assert claimed["id"] == train_id
    assert store.claim_job("local", 2)["kind"] == "quality"  # a local worker takes it


def _same_as_the_database(store: Store, status: str | None = None) -> None:
    import pandas as pd
    # dtypes may differ where DuckDB picks one by the rows' NULLs (int32 vs Int32): not values
    pd.testing.assert_frame_equal(store.live_jobs(status=status),
                                  store.jobs(status=status, limit=200), check_dtype=False)


def test_the_live_queue_is_a_snapshot_that_follows_every_change_to_the_queue(store):
    """The app's polls read the snapshot (no lock): after a submit, a claim, progress, a finish
    and a cancel it says what the database says, in the same columns."""
    first, second = (jobs.submit("train", smoke_job(seed=s), store).ids[0] for s in (0, 1))
    _same_as_the_database(store)
    store.claim_job("w", os.getpid())
    time.sleep(PUBLISH_PROGRESS_S)  # progress alone is published at most this often
    store.heartbeat("w", first, [_progress(first, 1, step=3)])
    live = store.live_jobs().set_index("id")
    assert live.loc[first, "status"] == "running" and live.loc[first, "step"] == 3
    _same_as_the_database(store, "running")
    store.finish_job(first, "w", "finished")
    store.cancel_job(second)
    assert store.live_jobs().set_index("id")["status"].to_dict() == {
        first: "finished", second: "cancelled"}
    _same_as_the_database(store)


def _progress(job_id: int, seq: int, step: int) -> dict:
    return {"job_id": job_id, "seq": seq, "attempt": 1, "event": "progress", "epoch": 0,
            "total_epochs": 2, "step": step, "steps": 9, "emitted_at": "2026-01-01T00:00:00Z"}


def test_an_idle_workers_claims_and_heartbeats_do_not_rewrite_the_snapshot(store):
    jobs.submit("train", smoke_job(), store)
    path = store.queue_snapshot_path
    before = path.stat().st_mtime_ns
    time.sleep(0.02)
    assert store.claim_job("w", 1, kinds=("generate",)) is None
    store.heartbeat("w")
    assert store.requeue_stale(3600) == []
    assert path.stat().st_mtime_ns == before


def test_progress_rewrites_the_snapshot_at_most_every_half_second_and_a_bare_heartbeat_never(
        store):
    """Workers write progress while holding the lock the app's reads wait for: progress alone
    is published when the snapshot is older than PUBLISH_PROGRESS_S (any publish carries every
    job's state), a state change always, a bare heartbeat never. Every row is in the database."""
    job_id = jobs.submit("train", smoke_job(), store).ids[0]
    store.claim_job("w", 1)  # a state change: published
    path = store.queue_snapshot_path
    claimed = path.stat().st_mtime_ns
    store.heartbeat("w", job_id, [_progress(job_id, 1, step=1)])  # too soon after the claim
    store.heartbeat("w", job_id)  # bare
    assert path.stat().st_mtime_ns == claimed and store.live_jobs()["step"].isna().all()
    time.sleep(PUBLISH_PROGRESS_S)
    store.heartbeat("w", job_id, [_progress(job_id, 2, step=2)])
    assert store.live_jobs()["step"].tolist() == [2]
    assert store.job_progress(job_id)["step"].tolist() == [1, 2]


@pytest.mark.parametrize("damage", ["missing", "truncated", "old"])
def test_a_missing_cut_short_or_old_snapshot_is_read_from_the_database_and_rewritten(
        store, damage):
    job_id = jobs.submit("train", smoke_job(), store).ids[0]
    path = store.queue_snapshot_path
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    else:  # older than SNAPSHOT_MAX_AGE_S, and the database changed behind it
        with store._connect(write=True) as con:
            con.execute("UPDATE jobs SET label = 'changed' WHERE id = ?", [job_id])
        old = time.time() - 60
        os.utime(path, (old, old))
    assert store.live_jobs()["label"].tolist() == (["changed"] if damage == "old"
                                                  else [store.job(job_id)["label"]])
    assert store._read_snapshot() is not None  # rewritten: the next poll is a file read
