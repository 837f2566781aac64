"""``python -m jobs worker``: pick the backend, the devices and the number of workers, then run
them (in this process, as supervised children, or detached in the background)."""
from __future__ import annotations

import argparse
from typing import Callable

from synthmed_core.store import Store, yield_to_readers

from ._errors import JobError
from ._procs import (check_nice, default_devices, default_threads, lower_priority,
                     start_worker, supervise, workers_per_gpu)


def _passed_on(a: argparse.Namespace, threads: int | None) -> list[str]:
    """The options every worker process of this command gets."""
    out = ["--heartbeat", str(a.heartbeat), "--stale-after", str(a.stale_after),
           "--backend", a.backend] + (["--threads", str(threads)] if threads else [])
    if a.nice:
        out += ["--nice", str(a.nice)]
    if a.once:
        out.append("--once")
    if a.idle_exit is not None:
        out += ["--idle-exit", str(a.idle_exit)]
    if a.address:
        out += ["--address", a.address]
    return out


def run_local(a: argparse.Namespace) -> int:
    """Workers on this machine: one in this process, or one child process per device."""
    per_gpu = workers_per_gpu(a.per_gpu)
    if a.device:
        devices = [a.device] * (a.workers or (per_gpu if a.device.startswith("cuda") else 1))
    else:
        devices = default_devices(a.workers, per_gpu)
    threads = a.threads or default_threads(devices)
    if len(devices) > 1:
        return supervise(devices, _passed_on(a, threads))
    import torch
    torch.set_num_threads(threads)
    # torch, timm, sklearn: imported once, not per job
    import synthmed_core.operations.train  # noqa: F401

    from ._worker import Worker
    yield_to_readers()  # a page's read goes before this worker's next write
    worker = Worker(Store(), devices[0], heartbeat_s=a.heartbeat, stale_s=a.stale_after)
    worker.install_signal_handlers()
    n = worker.run(once=a.once, idle_exit=a.idle_exit)
    print(f"worker {worker.id}: ran {n} job{'s' if n != 1 else ''}; exiting")
    return 0


def run_ray(a: argparse.Namespace) -> int:
    """Jobs as Ray tasks; this process alone writes the store (jobs/_ray.py)."""
    from ._ray import run_ray_head
    return run_ray_head(a)


BACKENDS: dict[str, Callable[[argparse.Namespace], int]] = {"local": run_local, "ray": run_ray}


def run_workers(a: argparse.Namespace) -> int:
    """Run the worker command: detach first when asked, then the chosen backend."""
    if a.backend not in BACKENDS:
        raise JobError(f"unknown worker backend {a.backend!r}; choose one of {list(BACKENDS)}")
    if a.workers is not None and a.workers < 1:
        raise JobError(f"--workers must be at least 1, got {a.workers}")
    if a.per_gpu is not None and a.per_gpu < 1:
        raise JobError(f"--per-gpu must be at least 1, got {a.per_gpu}")
    check_nice(a.nice)
    if a.detach:
        own = (["--workers", str(a.workers)] if a.workers else []) + (
            ["--device", a.device] if a.device else []) + (
            ["--per-gpu", str(a.per_gpu)] if a.per_gpu else [])
        proc = start_worker(own + _passed_on(a, a.threads))
        print(f"worker started in the background: pid {proc.pid}, output in {proc.log_path}")
        return 0
    lower_priority(a.nice)
    return BACKENDS[a.backend](a)
