"""A worker: claims jobs from the queue one at a time and runs them in this process through
the kind registry (each kind calls its operation in ``synthmed_core.operations``: ``train``
goes through ``operations.train.train``, ``generate`` through ``operations.synth.generate``), with a JobMonitor beside each. One worker =
one device. Between jobs it keeps its own heartbeat, requeues jobs whose worker died, and waits
for the queue's doorbell.
"""
from __future__ import annotations

import math
import os
import signal
import socket
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

from synthmed_core.errors import SynthmedError
from synthmed_core.store import Store
from synthmed_core.training.events import EpochEnd, Event, Finished, Started

from . import _queue
from ._context import JobContext
from ._monitor import JobMonitor
from ._sweep import Sweeper
from .kinds import runnable

# What a stopped job becomes, by why it stopped: a user's cancel ends it; a worker shutdown
# gives it back to the queue (the attempt does not count); a lost job belongs to another worker.
STOPPED_STATUS = {"cancel": "cancelled", "shutdown": "queued", "lost": None}


class JobLog:
    """Appends timestamped lines to one job's log file (every attempt of the job)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, text: str) -> None:
        stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        with self.path.open("a", encoding="utf-8") as f:
            for line in str(text).rstrip("\n").splitlines() or [""]:
                f.write(f"{stamp} {line}\n")


def event_logger(log: JobLog):
    """Log lines for the events a person wants in a job log (not every progress tick)."""
    def on_event(event: Event) -> None:
        if isinstance(event, Started):
            how = ("fresh start" if event.resumed_from is None else
                   f"resumed from epoch {event.resumed_from + 1} of {event.total_epochs} "
                   "(its last checkpoint), not from zero")
            log(f"started {event.run_id} on {event.device}: {how}")
        elif isinstance(event, EpochEnd):
            val = "" if math.isnan(event.val_auroc) else f", val AUROC {event.val_auroc:.4f}"
            log(f"epoch {event.epoch + 1} (phase {event.phase}): train loss "
                f"{event.train_loss:.4f}{val}{' (best)' if event.is_best else ''}, "
                f"{event.seconds:.1f} s")  # a generator has no val AUROC
        elif isinstance(event, Finished):
            log(f"finished {event.run_id}: best epoch {event.result.best_epoch + 1}")
    return on_event


class Worker:
    """Runs queued jobs on ``device`` until told to stop (SIGTERM/SIGINT), or when idle for
    ``idle_exit`` seconds, or after one job with ``once``. Timings are in seconds."""

    def __init__(self, store: Store, device: str = "cpu", worker_id: str | None = None,
                 heartbeat_s: float = 5.0, stale_s: float = 30.0, poll_s: float = 0.2,
                 claim_every_s: float = 5.0, backend: str = "local") -> None:
        self.store, self.device, self.backend = store, device, backend
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.heartbeat_s, self.stale_s, self.poll_s = heartbeat_s, stale_s, poll_s
        self.claim_every_s = claim_every_s
        self.gpu = str(device).startswith("cuda")
        self.stopping = False
        self.monitor: JobMonitor | None = None
        self.bell = _queue.Doorbell(store)
        self._next_beat = self._next_claim = 0.0
        self._sweeper = Sweeper(stale_s, grace_s=2 * heartbeat_s, at_once=True)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT: finish gracefully — the running job goes back to the queue."""
        def handler(signum, frame):
            self.stopping = True
            if self.monitor is not None:
                self.monitor.request_stop("shutdown")
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self, once: bool = False, idle_exit: float | None = None) -> int:
        """The worker loop. Returns the number of jobs it ran."""
        self.store.register_worker(self.id, socket.gethostname(), os.getpid(), self.device,
                                   self.backend)
        ran, idle_since = 0, time.monotonic()
        try:
            while not self.stopping:
                now = time.monotonic()
                try:
                    job = self._idle_step(now)
                except SynthmedError as exc:  # a database busy for minutes: wait, go on
                    print(f"worker {self.id}: {exc}", file=sys.stderr, flush=True)
                    time.sleep(1.0)
                    continue
                if job is not None:
                    self.run_job(job)
                    ran, idle_since, self._next_claim = ran + 1, time.monotonic(), 0.0
                    if once:
                        break
                    continue
                if once or (idle_exit is not None and now - idle_since >= idle_exit):
                    break
                time.sleep(self.poll_s)
        finally:
            self.store.worker_stopped(self.id)
        return ran

    def _idle_step(self, now: float) -> dict | None:
        """Heartbeat, requeue dead workers' jobs, and claim a job when the doorbell rang or
        the claim interval passed; the claimed job or None."""
        if now >= self._next_beat:
            self.store.heartbeat(self.id, None)
            self._next_beat = now + self.heartbeat_s
        if self._sweeper.due():  # jobs of dead workers go back to the queue
            if self.store.requeue_stale(self.stale_s):
                _queue.ring(self.store)
        if not (self.bell.changed() or now >= self._next_claim):
            return None
        self._next_claim = now + self.claim_every_s
        return self.store.claim_job(self.id, os.getpid(), self.gpu)

    def run_job(self, job: dict) -> str:
        """Run one claimed job to its end; returns its final status (or "lost")."""
        log = JobLog(job["log_path"])
        log(f"=== job {job['id']} ({job['kind']}: {job['label']}), attempt {job['attempts']} of "
            f"{job['max_attempts']}, worker {self.id} on {self.device}")
        monitor = JobMonitor(self.store, job, self.id, heartbeat_s=self.heartbeat_s,
                             stale_s=self.stale_s, on_event=event_logger(log),
                             on_requeue=lambda: _queue.ring(self.store))
        self.monitor = monitor
        if self.stopping:
            monitor.request_stop("shutdown")
        ctx = JobContext(job, self.store, self.device, monitor.emit, monitor.should_stop, log)
        status, error, summary = "finished", None, ""
        try:
            summary = runnable(job["kind"])(ctx)
        except BaseException as exc:
            reason = monitor.stop_reason
            if reason is not None:
                status, error = STOPPED_STATUS[reason], f"stopped: {reason}"
            else:
                status = "failed"
                error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
                log("failed:\n" + "".join(traceback.format_exception(exc)))
            if not isinstance(exc, Exception) and monitor.stop_reason is None:
                raise  # KeyboardInterrupt outside our signal handler, SystemExit: let it go
        finally:
            self.monitor = None
            stats = monitor.close()
        return settle(self.store, self.id, job, log, status, error, summary, stats)


def settle(store: Store, worker: str, job: dict, log: JobLog, status: str | None,
           error: str | None, summary: str, stats: dict) -> str:
    """Log how a job attempt ended and record it: finished, failed, cancelled (its run marked
    cancelled too), queued again (a shutdown), or nothing at all when this worker lost the job.
    Returns the final status ("lost" when another worker owns the job)."""
    received = ", ".join(f"{k} {v}" for k, v in sorted(stats["received"].items()))
    log(f"progress events received: {sum(stats['received'].values())} ({received}); "
        f"rows written {stats['rows_written']} in {stats['flushes']} writes; unwritten "
        f"{stats['unwritten']}")
    if status is None:
        log("stopped: another worker took this job over (this worker missed heartbeats)")
        return "lost"
    if status == "cancelled" and job.get("run_id"):
        store.cancel_run(job["run_id"], f"cancelled by the user (job {job['id']}); its epochs "
                         "so far are kept; retry the job to resume")
    if status == "queued":
        _queue.ring(store)
    log({"finished": f"finished: {summary}", "failed": f"failed: {error}",
         "cancelled": "cancelled by the user",
         "queued": "worker shut down: job back in the queue; it resumes from its last "
                   "epoch"}[status])
    owned = store.finish_job(job["id"], worker, status, error, stats)
    return status if owned else "lost"
