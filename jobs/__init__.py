"""Background jobs: a durable queue in the results database, local workers, live progress,
crash recovery. ``python -m jobs --help`` for the command line.

A job is a kind (train, grid, pretrain, generate, quality) plus a frozen spec. Workers claim
jobs atomically, run them through ``synthmed_core`` (the training loop knows nothing of jobs),
stream progress in batches, keep a heartbeat, and resume a job from its last epoch (or
generator) checkpoint when the worker that ran it died.
"""
from ._errors import JobError
from ._procs import ensure_worker, reap_workers, start_worker
from ._status import (ACTIVE, TERMINAL, cancel, eta_seconds, get_job, log_tail, progress_fraction,
                      progress_text, queue_table, retry)
from ._submit import Submitted, submit, submit_args
from .kinds import KINDS

__all__ = ["KINDS", "JobError", "Submitted", "submit", "submit_args", "start_worker",
           "ensure_worker", "reap_workers", "ACTIVE", "TERMINAL", "progress_text",
           "progress_fraction", "eta_seconds", "get_job", "log_tail", "cancel", "retry",
           "queue_table"]
