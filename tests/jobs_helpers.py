"""Shared by the job tests: submit smoke jobs, start real worker processes, wait on the store."""
from __future__ import annotations

import json
import time
from typing import Callable

from jobs import start_worker, submit
from synthmed_core.store import Store

# Frugal on a 2-core box: one thread per worker, quick heartbeats so a dead worker is noticed
# in seconds, and workers that leave by themselves once the queue is empty.
FAST = ["--threads", "1", "--heartbeat", "0.5", "--stale-after", "3"]


def smoke_opts(epochs: int = 2, train_limit: int = 128, batch: int = 32, **extra) -> list[str]:
    """Profile options of a run that takes seconds on one CPU thread (no seed)."""
    argv = ["--profile", "smoke", "--epochs", str(epochs), "--train-limit", str(train_limit),
            "--batch-size", str(batch), "--device", "cpu"]
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def smoke_job(seed: int = 0, **kw) -> list[str]:
    """Options of a smoke train job."""
    return ["--seed", str(seed), *smoke_opts(**kw)]


def grid_job(seeds: list[int], **kw) -> list[str]:
    """Options of a smoke grid job over ``seeds``."""
    return ["--seeds", *map(str, seeds), *smoke_opts(**kw)]


def submit_train(store: Store, **kw) -> int:
    """Queue one smoke train job; returns its id."""
    return submit("train", smoke_job(**kw), store).ids[0]


def worker(idle_exit: float = 4.0, *extra: str):
    """A detached real worker process (its handle, reaped by jobs' registry)."""
    return start_worker([*FAST, "--idle-exit", str(idle_exit), *extra])


def wait_for(check: Callable[[], object], timeout: float, what: str, every: float = 0.2):
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def status(store: Store, job_id: int) -> str:
    return store.job(job_id)["status"]


def worker_output(proc) -> str:
    return proc.log_path.read_text(errors="replace")


def accounted(store: Store, job_id: int) -> tuple[dict, dict]:
    """(events the worker received per kind, progress rows per kind) of a finished job, after
    checking that the sequence numbers run 1..n without a gap."""
    job = store.job(job_id)
    rows = store.job_progress(job_id)
    assert rows["seq"].tolist() == list(range(1, len(rows) + 1)), (job_id, rows["seq"].tolist())
    return job["stats"]["received"], json.loads(rows["event"].value_counts().to_json())
