"""The Ray backend: ``python -m jobs worker --backend ray [--address ADDR]``.

This process is the head. It claims jobs from the store like any worker, runs each as a Ray
task with its resource request (``num_gpus=1`` when the job wants a GPU), and receives every
training event back through a Ray queue. It alone writes the store: the events go through the
same recorder (runs, epochs, predictions) and the same JobMonitor (progress rows, heartbeat,
cancel) as with a local worker, so the rows are the same. A cancel or a shutdown cancels the
task (it stops at once; its last epoch checkpoint stays for the resume).

On a real cluster every node needs this repository and its environment, and the data root
(``SYNTHMED_DATA``: checkpoints) on a shared filesystem, so a requeued run resumes anywhere.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import ray
from ray.util.queue import Queue

from synthmed_core import grid, paths
from synthmed_core.store import Store, yield_to_readers
from synthmed_core.training.events import Event, Finished, Started
from synthmed_core.operations.recorder import StoreRecorder

from . import _queue
from ._monitor import JobMonitor
from ._procs import workers_per_gpu
from ._sweep import Sweeper
from ._worker import STOPPED_STATUS, JobLog, event_logger, settle
from .kinds import REMOTE_KINDS, get_kind

_ENV = ("SYNTHMED_DATA", "SYNTHMED_MEDMNIST_ROOT", "SYNTHMED_OFFLINE", "SYNTHMED_WEIGHTS",
        "SYNTHMED_COMPILE")


# ---- what runs on a Ray worker: the kind's remote function; no store, events go back ------


@ray.remote
def run_remote(kind: str, spec: dict, device: str, threads: int, env: dict, queue: Queue,
               job_id: int) -> Any:
    """One job on a Ray worker: every event is put on ``queue`` as (job_id, event)."""
    os.environ.update(env)  # the head's data root and medmnist folder
    import torch
    torch.set_num_threads(threads)
    return get_kind(kind).remote(spec, device, lambda event: queue.put((job_id, event)))


# ---- the head: claims, dispatches, records ---------------------------------------------------


@dataclass
class _Running:
    job: dict
    ref: Any
    log: JobLog
    monitor: JobMonitor
    emit: Callable[[Event], None]
    started: list = field(default_factory=list)
    result: Any = None  # the RunResult of a train job's Finished event
    cancelled_task: bool = False


def _recorder(job: dict, store: Store) -> Callable[[Event], None] | None:
    return StoreRecorder(store, grid.RunSpec.from_dict(job["spec"]["run"])) \
        if job["kind"] == "train" else None


class RayHead:
    """Runs queued jobs as Ray tasks, at most ``max_inflight`` at once (default: the cluster's
    CPUs / ``threads``). ray must be initialised (``ray.init``) before ``run``."""

    def __init__(self, store: Store, max_inflight: int | None = None, threads: int = 1,
                 heartbeat_s: float = 5.0, stale_s: float = 30.0, poll_s: float = 0.1,
                 per_gpu: int = 1) -> None:
        resources = ray.cluster_resources()
        self.store, self.threads, self.poll_s = store, threads, poll_s
        self.gpu_share = 1.0 / max(1, per_gpu)  # a fractional GPU: per_gpu tasks share one
        self.heartbeat_s, self.stale_s = heartbeat_s, stale_s
        self.gpus = resources.get("GPU", 0) > 0
        self.max_inflight = max_inflight or max(1, int(resources.get("CPU", 1)) // threads)
        self.id = f"ray-{socket.gethostname()}-{os.getpid()}"
        self.queue = Queue()
        self.running: dict[int, _Running] = {}
        self.stopping = False
        self.env = {k: os.environ[k] for k in _ENV if k in os.environ} | {
            "SYNTHMED_DATA": str(paths.data_root()),
            "SYNTHMED_MEDMNIST_ROOT": str(paths.medmnist_root())}

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: cancel the tasks and give their jobs back to the queue."""
        def handler(signum, frame):
            self.stopping = True
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _start(self, job: dict) -> None:
        log = JobLog(job["log_path"])
        wants_gpu = job["gpu"] or (self.gpus and job["spec"].get("device") in (None, "auto"))
        device = "cpu" if job["spec"].get("device") == "cpu" or not wants_gpu else "cuda"
        log(f"=== job {job['id']} ({job['kind']}: {job['label']}), attempt {job['attempts']} of "
            f"{job['max_attempts']}, Ray head {self.id}, task on {device}")
        if job["kind"] == "train" and not self._prepare_train(job, log):
            return
        monitor = JobMonitor(self.store, job, self.id, heartbeat_s=self.heartbeat_s,
                             stale_s=self.stale_s, on_event=event_logger(log),
                             on_requeue=lambda: _queue.ring(self.store))
        ref = run_remote.options(num_cpus=self.threads, num_gpus=self.gpu_share if wants_gpu else 0).remote(
            job["kind"], job["spec"], device, self.threads, self.env, self.queue, job["id"])
        running = _Running(job, ref, log, monitor, monitor.emit)
        recorder = _recorder(job, self.store)

        def emit(event: Event) -> None:  # the same order as run_one: record, then report
            if isinstance(event, Started):
                running.started.append(event)
            elif isinstance(event, Finished):
                running.result = event.result
            if recorder is not None:
                recorder(event)
            monitor.emit(event)
        running.emit = emit
        self.running[job["id"]] = running

    def _prepare_train(self, job: dict, log: JobLog) -> bool:
        """As the local train kind does: --force starts over on the first attempt only; a run
        finished meanwhile is not trained again. False when there is nothing to run."""
        run_id = job["run_id"]
        if job["spec"].get("force") and job["attempts"] == 1:
            self.store.delete_run(run_id)
            shutil.rmtree(paths.run_dir(run_id), ignore_errors=True)
        elif run_id in self.store.finished_run_ids():
            log(f"finished: run {run_id} was already finished; nothing to do")
            self.store.finish_job(job["id"], self.id, "finished")
            return False
        return True

    def _drain(self) -> None:
        """Hand every event waiting in the queue to its job's recorder and monitor."""
        n = self.queue.size()
        for job_id, event in (self.queue.get_nowait_batch(n) if n else []):
            if job_id in self.running:
                self.running[job_id].emit(event)

    def _finish(self, r: _Running) -> None:
        self._drain()  # a task's puts all landed before it returned
        status, error, summary = "finished", None, ""
        try:
            summary = get_kind(r.job["kind"]).remote_done(r.job, self.store, ray.get(r.ref),
                                                         r.result)
        except Exception as exc:
            reason = r.monitor.stop_reason or ("shutdown" if self.stopping else None)
            if r.cancelled_task and reason is not None:
                status, error = STOPPED_STATUS[reason], f"stopped: {reason}"
                if r.started and r.job["kind"] == "train":
                    self.store.fail_run(r.job["run_id"], "interrupted: the job resumes from "
                                        "its last finished epoch when it runs again")
            else:
                status = "failed"
                cause = getattr(exc, "cause", None) or exc
                error = f"{type(cause).__name__}: {cause}".splitlines()[0][:500]
                r.log("failed:\n" + "".join(traceback.format_exception(exc)))
                if r.started and r.job["kind"] == "train":
                    self.store.fail_run(r.job["run_id"], str(exc))
        stats = r.monitor.close()
        settle(self.store, self.id, r.job, r.log, status, error, summary, stats)
        del self.running[r.job["id"]]

    def _tick(self) -> None:
        self._drain()
        for r in list(self.running.values()):
            if (r.monitor.stop_reason or self.stopping) and not r.cancelled_task:
                if self.stopping:
                    r.monitor.request_stop("shutdown")
                ray.cancel(r.ref)
                r.cancelled_task = True
        refs = [r.ref for r in self.running.values()]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=self.poll_s) if refs else ([], [])
        for r in [r for r in list(self.running.values()) if r.ref in done]:
            self._finish(r)

    def run(self, once: bool = False, idle_exit: float | None = None) -> int:
        """Claim and dispatch until stopped, idle for ``idle_exit`` s, or one job with ``once``.
        Returns the number of jobs it ran."""
        self.store.register_worker(self.id, socket.gethostname(), os.getpid(), "ray", "ray")
        bell, ran, idle_since, next_claim = _queue.Doorbell(self.store), 0, time.monotonic(), 0.0
        next_beat = 0.0
        sweeper = Sweeper(self.stale_s, grace_s=2 * self.heartbeat_s, at_once=True)
        try:
            while not (self.stopping and not self.running):
                now = time.monotonic()
                room = not self.stopping and len(self.running) < self.max_inflight and \
                    not (once and ran)
                if room and (bell.changed() or now >= next_claim):
                    job = self.store.claim_job(self.id, os.getpid(), self.gpus, REMOTE_KINDS)
                    next_claim = now + (0 if job else 5.0)
                    if job is not None:
                        self._start(job)
                        ran += 1
                        continue
                if self.running:
                    self._tick()
                    idle_since = time.monotonic()
                    continue
                if (once and ran) or (idle_exit is not None and now - idle_since >= idle_exit):
                    break
                if now >= next_beat:
                    self.store.heartbeat(self.id, None)
                    next_beat = now + self.heartbeat_s
                if sweeper.due():  # jobs of dead workers go back to the queue
                    if self.store.requeue_stale(self.stale_s):
                        _queue.ring(self.store)
                time.sleep(self.poll_s)
        finally:
            self.store.worker_stopped(self.id)
        return ran


def run_ray_head(a: argparse.Namespace) -> int:
    """The CLI: connect to (or start) Ray, then run the head until stopped."""
    if not ray.is_initialized():
        ray.init(address=a.address, runtime_env={"env_vars": {
            "PYTHONPATH": os.pathsep.join(p for p in (str(paths.REPO_ROOT),
                                                      os.environ.get("PYTHONPATH", "")) if p)}})
    yield_to_readers()  # a page's read goes before the head's next write
    head = RayHead(Store(), a.workers, a.threads or 1, a.heartbeat, a.stale_after,
                   per_gpu=workers_per_gpu(getattr(a, "per_gpu", None)))
    head.install_signal_handlers()
    n = head.run(once=a.once, idle_exit=a.idle_exit)
    print(f"ray head {head.id}: ran {n} job{'s' if n != 1 else ''}; exiting")
    return 0
