"""Acceptance test of the queue under load: 4 worker processes train smoke jobs while a reader
process polls the store every 200 ms as the app does: the queue with its latest progress (the
sidebar and the Jobs page, ``Store.live_jobs``) every poll, the grid (its refresh when a job
ends, a database read under the lock) every GRID_EVERY-th. Nobody may see a lock error, every
progress event a worker received must be in the database, and the queue the reader saw must
have followed the jobs (it is a snapshot, not the database).

Runs for SYNTHMED_JOBS_LOAD_SECONDS (default 60; 10 is enough for a quick local check).
This file is also the reader: ``python tests/test_jobs_load.py DB OUT SECONDS``.
"""
from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from synthmed_core.store import Store

pytestmark = pytest.mark.load

SECONDS = float(os.environ.get("SYNTHMED_JOBS_LOAD_SECONDS", "60"))
WORKERS = 4
GRID_EVERY = 10
ROOT = Path(__file__).resolve().parents[1]


def _reader(db: str, out: str, seconds: str) -> None:
    """Poll the queue every ~200 ms and the grid every GRID_EVERY-th poll; time each read."""
    from synthmed_core.explorer import grid_view

    store, end = Store(Path(db)), time.time() + float(seconds)
    got: dict = {"reads": 0, "errors": [], "ms": [], "grid_ms": [], "finished_seen": 0,
                 "progress_seen": 0}
    while time.time() < end:
        t0 = time.perf_counter()
        try:
            queue = store.live_jobs(limit=200)
            got["finished_seen"] = max(got["finished_seen"],
                                       int((queue["status"] == "finished").sum()))
            got["progress_seen"] += int(queue["step"].notna().sum())
            got["reads"] += 1
        except Exception as exc:  # the point of the test: count them, never stop
            got["errors"].append(repr(exc))
        got["ms"].append((time.perf_counter() - t0) * 1000)
        if got["reads"] % GRID_EVERY == 0:
            t0 = time.perf_counter()
            try:
                grid_view.grid_cells(store, "accuracy", None)
            except Exception as exc:
                got["errors"].append(repr(exc))
            got["grid_ms"].append((time.perf_counter() - t0) * 1000)
        time.sleep(0.2)
    Path(out).write_text(json.dumps(got))


def test_four_workers_and_a_polling_reader_see_no_lock_error_and_lose_no_progress_event(
        real_data, tmp_path, capsys):
    from jobs_helpers import FAST, submit_train, wait_for, worker_output

    import jobs
    store = Store()
    seeds = iter(range(10_000))
    for _ in range(WORKERS + 2):
        submit_train(store, seed=next(seeds))
    procs = [jobs.start_worker([*FAST, "--heartbeat", "1", "--stale-after", "15",
                                "--idle-exit", "3"]) for _ in range(WORKERS)]
    reader = subprocess.Popen(
        [sys.executable, __file__, str(store.path), str(tmp_path / "reader.json"), str(SECONDS)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    end = time.time() + SECONDS
    while time.time() < end:  # keep every worker busy for the whole time
        if (store.jobs(status="queued", limit=10)).shape[0] < 3:
            submit_train(store, seed=next(seeds))
        time.sleep(1.0)
    assert reader.wait(timeout=120) == 0
    wait_for(lambda: store.jobs(status="queued").empty and store.jobs(status="running").empty,
             240, "every job to end", every=1.0)
    for proc in procs:
        assert proc.wait(timeout=60) == 0, worker_output(proc)

    got = json.loads((tmp_path / "reader.json").read_text())
    assert got["errors"] == [] and got["reads"] > 0
    assert got["finished_seen"] > 0 and got["progress_seen"] > 0, got  # the snapshot moved
    df = store.jobs()
    assert set(df["status"]) == {"finished"}, df[["id", "status", "error"]]
    events = rows = 0
    for job_id in df["id"]:
        job, progress = store.job(int(job_id)), store.job_progress(int(job_id))
        stats = job["stats"]
        assert progress["seq"].tolist() == list(range(1, len(progress) + 1)), job_id
        counts = progress["event"].value_counts().to_dict()
        assert stats["received"] == counts, (job_id, stats["received"], counts)
        assert (stats["unwritten"], stats["flush_errors"], stats["store_errors"]) == (0, 0, 0)
        events, rows = events + sum(stats["received"].values()), rows + len(progress)
    for proc in procs:
        assert "Error" not in worker_output(proc), worker_output(proc)
    ms, grid_ms = np.array(got["ms"]), np.array(got["grid_ms"] or [np.nan])
    with capsys.disabled():
        print(f"\n[jobs load {SECONDS:g}s] {WORKERS} workers finished {len(df)} jobs; progress "
              f"events received {events}, rows in the store {rows}; reader {got['reads']} queue "
              f"polls (median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max "
              f"{ms.max():.0f} ms), {len(got['grid_ms'])} grid reads (median "
              f"{np.median(grid_ms):.0f} ms, p95 {np.percentile(grid_ms, 95):.0f} ms), errors "
              f"{len(got['errors'])}; worker store errors 0.")


if __name__ == "__main__":
    _reader(*sys.argv[1:])
