"""``python -m jobs bench``: how long from ``submit`` until the job's first progress row can be
read, and what each progress event costs. Runs in a temporary data root (your database is
not touched) with one warm worker process, one smoke job at a time.

Reported per job: submit -> first row readable (the "started" row), submit -> first training
step row, and per event: the time ``emit`` takes in the training thread (queueing the row,
then the job's log line) and the write time per row (paid by the monitor thread, amortised
over its batch).
"""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import tempfile
import time

from synthmed_core import catalog, paths
from synthmed_core.store import Store

from ._errors import JobError
from ._procs import start_worker
from ._submit import submit

_JOB = ["--profile", "smoke", "--epochs", "1", "--train-limit", "128", "--batch-size", "32",
        "--device", "cpu"]


def _wait(check, timeout: float, every: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value is not None:
            return value
        time.sleep(every)
    raise TimeoutError(f"no answer within {timeout:g} s")


def _ended(store: Store, job_id: int) -> dict | None:
    """The job when it has ended; JobError when it ended any other way than finished (a bench
    that waited on a failed job's progress would wait forever)."""
    job = store.job(job_id)
    if job["status"] in catalog.ACTIVE_JOB_STATUSES:
        return None
    if job["status"] != "finished":  # the log goes with the bench's temporary data root
        raise JobError(f"bench job {job_id} {job['status']}: {job['error'] or 'no error text'}")
    return job


def _one(store: Store, seed: int) -> dict:
    t0 = time.time()
    job_id = submit("train", ["--seed", str(seed), *_JOB], store).ids[0]

    def first(event: str | None):
        rows = store.job_progress(job_id)
        rows = rows if event is None else rows[rows["event"] == event]
        if len(rows):
            return time.time() - t0
        _ended(store, job_id)  # raises when the job failed before emitting this event
        return None

    first_row = _wait(lambda: first(None), 300, 0.05)
    first_step = _wait(lambda: first("progress"), 300, 0.05)
    job = _wait(lambda: _ended(store, job_id), 300, 0.2)
    stats, n = job["stats"], max(1, job["stats"]["events"])
    return {"job": job_id, "status": job["status"], "first_row_s": first_row,
            "first_step_s": first_step, "events": stats["events"],
            "emit_us": 1e6 * stats["emit_s"] / n, "log_us": 1e6 * stats["log_s"] / n,
            "write_ms_per_row": 1e3 * stats["flush_s"] / max(1, stats["rows_written"])}


def _summary(name: str, values: list[float], unit: str) -> str:
    return (f"{name:<38} median {statistics.median(values):8.3f} {unit}   "
            f"max {max(values):8.3f} {unit}")


def bench(n_jobs: int = 10, threads: int = 1) -> int:
    """Submit ``n_jobs`` smoke jobs one after another (after one warm-up job) to one worker
    and print the latencies and per-event costs; returns the exit status."""
    medmnist = paths.medmnist_root()
    root = tempfile.mkdtemp(prefix="synthmed-bench-")
    saved = {k: os.environ.get(k) for k in ("SYNTHMED_DATA", "SYNTHMED_MEDMNIST_ROOT",
                                            "SYNTHMED_DB")}
    os.environ.update(SYNTHMED_DATA=root, SYNTHMED_MEDMNIST_ROOT=str(medmnist))
    os.environ.pop("SYNTHMED_DB", None)
    proc = None
    try:
        store = Store()
        proc = start_worker(["--threads", str(threads), "--idle-exit", "600"])
        t0 = time.time()
        _wait(lambda: True if not store.live_workers(60).empty else None, 300, 0.2)
        print(f"worker ready after {time.time() - t0:.1f} s (process start, imports)")
        warm = _one(store, 10_000)
        print(f"warm-up job (not counted): first row after {warm['first_row_s']:.2f} s")
        rows = []
        for seed in range(n_jobs):
            rows.append(_one(store, seed))
            r = rows[-1]
            print(f"job {r['job']:>3} {r['status']:<9} first row {r['first_row_s']:6.2f} s  "
                  f"first step {r['first_step_s']:6.2f} s  {r['events']:>3} events  emit "
                  f"{r['emit_us']:7.1f} us + log {r['log_us']:7.1f} us/event  write "
                  f"{r['write_ms_per_row']:6.1f} ms/row")
        print(f"\n{n_jobs} jobs, one warm worker on cpu ({threads} thread"
              f"{'s' if threads > 1 else ''}), load average {os.getloadavg()[0]:.2f}:")
        print(_summary("submit -> first progress row readable",
                       [r["first_row_s"] for r in rows], "s"))
        print(_summary("submit -> first training-step row", [r["first_step_s"] for r in rows], "s"))
        print(_summary("per event: queue a row (training thread)",
                       [r["emit_us"] / 1000 for r in rows], "ms"))
        print(_summary("per event: + its log line (training thread)",
                       [(r["emit_us"] + r["log_us"]) / 1000 for r in rows], "ms"))
        print(_summary("per event: database write (batched)",
                       [r["write_ms_per_row"] for r in rows], "ms"))
        return 0 if all(r["status"] == "finished" for r in rows) else 1
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        shutil.rmtree(root, ignore_errors=True)
