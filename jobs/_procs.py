"""Worker processes: started detached so they outlive the page or shell that started them,
reaped so none lingers as a zombie, and supervised when one command asks for several.

A detached worker runs in its own session (``start_new_session``): closing the terminal or
stopping the Streamlit server does not kill it. Its parent must still ``poll()`` it, or a
finished worker stays a zombie until that parent exits; ``reap_workers`` does that for every
worker this process started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime

from synthmed_core import paths
from synthmed_core.store import Store

# Every worker this process started and has not reaped yet.
_STARTED: list[subprocess.Popen] = []
DEFAULT_STALE_S = 30.0


def reap_workers() -> list[subprocess.Popen]:
    """Collect the exit status of finished workers (no zombies); returns those still running."""
    _STARTED[:] = [p for p in _STARTED if p.poll() is None]
    return list(_STARTED)


def _env() -> dict[str, str]:
    # The worker runs `python -m jobs` from the repository root, whatever our cwd is.
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(paths.REPO_ROOT), path) if p)}


def start_worker(args: list[str] | None = None, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    """Start ``python -m jobs worker ARGS`` detached (extra ``env`` on top of ours), its
    output in ``paths.worker_log_dir()/worker-<time>-<pid>-<n>.log``. The handle is kept and
    reaped later; returns it (``.log_path`` says where its output goes)."""
    reap_workers()
    log_dir = paths.worker_log_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}-{len(_STARTED)}.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jobs", "worker", *(args or [])],
                                cwd=paths.REPO_ROOT, env={**_env(), **(env or {})},
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    proc.log_path = log_path  # type: ignore[attr-defined]
    _STARTED.append(proc)
    return proc


def ensure_worker(store: Store | None = None, stale_s: float = DEFAULT_STALE_S,
                  args: list[str] | None = None) -> subprocess.Popen | None:
    """Start a worker unless one is alive: a worker heartbeat younger than ``stale_s`` in the
    store, or a worker this process started that is still starting up. Returns the new
    worker's handle, or None when one was alive. For the app's "run in background" button."""
    if reap_workers():
        return None
    store = store or Store()
    if not store.live_workers(stale_s).empty:
        return None
    return start_worker(args)


MAX_NICE = 19


def check_nice(nice: int) -> None:
    """JobError unless ``nice`` is a niceness a worker may take (0-19)."""
    if not 0 <= nice <= MAX_NICE:
        from ._errors import JobError
        raise JobError(f"--nice must be 0-{MAX_NICE} (19 yields most), got {nice}")


def lower_priority(nice: int) -> int:
    """Run this process at niceness ``nice`` (0-19; never raised back: a process may only lower
    its own priority) and return it. Nice alone does not reach far on Linux: the scheduler
    first shares the CPU between sessions ("autogroups"), then by nice inside each, so a
    detached worker (its own session) at nice 10 still took as much CPU as a test run in a
    terminal. A worker that leads its own session lowers its autogroup too, where the kernel
    offers it (``/proc/self/autogroup``)."""
    check_nice(nice)
    current = os.nice(0)
    if nice > current:
        os.nice(nice - current)
    if nice and os.getsid(0) == os.getpid():
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(nice))
        except OSError:  # not Linux, or autogroups off: nice alone
            pass
    return os.nice(0)


PER_GPU_ENV = "SYNTHMED_WORKERS_PER_GPU"


def workers_per_gpu(value: int | None = None) -> int:
    """Worker processes per GPU: ``value``, else ``$SYNTHMED_WORKERS_PER_GPU``, else 1. Small
    models (28 px) leave a GPU mostly idle with one process: several processes overlap their
    Python and kernel-launch time; `python -m synthmed_core bench --concurrent 1 2 4 8` says
    how many pay off."""
    n = value if value is not None else int(os.environ.get(PER_GPU_ENV) or 1)
    if n < 1:
        raise ValueError(f"workers per GPU must be at least 1, got {n}")
    return n


def default_devices(count: int | None = None, per_gpu: int | None = None) -> list[str]:
    """One device per worker: ``per_gpu`` workers (``workers_per_gpu``) on each visible GPU,
    else one on the CPU; ``count`` overrides how many (GPUs are then shared round-robin)."""
    import torch
    gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    n = count if count is not None else max(1, len(gpus) * workers_per_gpu(per_gpu))
    return [gpus[i % len(gpus)] if gpus else "cpu" for i in range(n)]


def default_threads(devices: list[str]) -> int:
    """CPU threads per worker: the cores shared out among the workers, at least one. More
    threads than cores makes every worker crawl (PyTorch threads spin while they wait)."""
    return max(1, (os.cpu_count() or 1) // max(1, len(devices)))


def supervise(devices: list[str], worker_args: list[str]) -> int:
    """Run one worker process per device (children of this one, same session) and wait for
    them; SIGTERM/SIGINT here is passed on, so each gives its job back to the queue."""
    children = [subprocess.Popen([sys.executable, "-m", "jobs", "worker", "--workers", "1",
                                  "--device", d, *worker_args], cwd=paths.REPO_ROOT, env=_env())
                for d in devices]

    def forward(signum, frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while any(c.poll() is None for c in children):
        time.sleep(0.5)
    return max(c.returncode or 0 for c in children)
