"""The companion of a running job: turns its training events into progress rows, writes them in
batches, keeps its heartbeat, and watches for a cancel — all from one small background thread,
so the training loop never waits on the database.

The training thread only appends to a buffer (``emit``) and reads a flag (``should_stop``).
The thread writes the buffer at most once per ``flush_s`` (the first event at once, so a new
job shows up immediately) in the same transaction as the heartbeat, writes a bare heartbeat
when nothing was written for ``heartbeat_s``, and looks for a cancel every ``poll_s``. Every
event gets a sequence number when it is received, so a lost batch would show as a gap; the
final events are flushed when the job ends.

A write opens the database and checkpoints it on close (~15 ms of CPU for a bare connect on
the 2-core box), and this thread competes with training for the cores. So writes are spaced
to keep their time under ``store_share`` of the wall time: after a write that took ``d``
seconds the next waits at least ``d / store_share`` (on a fast store, ``flush_s``), never
longer than ``heartbeat_s``, which always writes. The cancel flag is not read every ``poll_s`` either:
the thread looks at the queue's doorbell (a ``stat``), which ``jobs.cancel`` rings, and
reads the flags only when it rang; every write returns them too, so a cancel made without
the bell is still seen within ``heartbeat_s``.
"""
from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from synthmed_core.store import Store
from synthmed_core.records.events import EpochEnd, Event, Finished, Progress, Started

from ._queue import Doorbell
from ._sweep import Sweeper


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _started(e: Started) -> dict:
    return {"event": "started", "total_epochs": e.total_epochs,
            "epoch": 0 if e.resumed_from is None else e.resumed_from + 1,
            "metrics": {"device": e.device, "resumed_from": e.resumed_from}}


def _progress(e: Progress) -> dict:
    return {"event": "progress", "phase": e.phase, "epoch": e.epoch,
            "total_epochs": e.total_epochs, "step": e.step, "steps": e.steps,
            "loss": _num(e.loss), "images_per_s": _num(e.images_per_s), "eta_s": _num(e.eta_s)}


def _epoch(e: EpochEnd) -> dict:
    return {"event": "epoch", "phase": e.phase, "epoch": e.epoch, "loss": _num(e.train_loss),
            "metrics": {"val_loss": _num(e.val_loss), "val_accuracy": _num(e.val_accuracy),
                        "val_auroc": _num(e.val_auroc), "lr": _num(e.lr),
                        "seconds": _num(e.seconds), "is_best": e.is_best}}


def _finished(e: Finished) -> dict:
    r = e.result
    return {"event": "finished",
            "metrics": {k: _num(v) for k, v in r.metrics.items()} | {"best_epoch": r.best_epoch,
                                                                    "wall_s": _num(r.wall_s)}}


ROWS: dict[type, Callable[[Any], dict]] = {
    Started: _started, Progress: _progress, EpochEnd: _epoch, Finished: _finished}


@dataclass
class Pacing:
    """When the monitor writes and looks: arithmetic over a clock's readings and nothing else,
    so its timing is tested with a fake clock (``tests/test_jobs_queue.py``). ``action(now,
    buffered)`` says what is due: "write" (buffered rows after the flush spacing, or a heartbeat
    after ``heartbeat_s``), "look" (the doorbell after ``poll_s``) or None; ``next_due`` when
    to wake up; ``spent`` records a write's duration (failed or not: the next waits
    ``took / store_share``), ``wrote``/``looked`` what was done at ``now``."""

    flush_s: float
    poll_s: float
    heartbeat_s: float
    store_share: float
    last_flush: float = -math.inf  # the first event is written at once
    last_beat: float = 0.0
    last_look: float = 0.0
    gap: float = 0.0  # the last write's duration / store_share

    def start(self, now: float) -> None:
        self.last_beat = self.last_look = now  # the claim was a heartbeat and a look

    def flush_every(self) -> float:
        return max(self.flush_s, self.gap)

    def next_due(self, buffered: bool) -> float:
        due = [self.last_beat + self.heartbeat_s, self.last_look + self.poll_s]
        if buffered:
            due.append(self.last_flush + self.flush_every())
        return min(due)

    def action(self, now: float, buffered: bool) -> str | None:
        if (buffered and now - self.last_flush >= self.flush_every()) or \
                now - self.last_beat >= self.heartbeat_s:
            return "write"
        return "look" if now - self.last_look >= self.poll_s else None

    def spent(self, took: float) -> None:
        self.gap = took / self.store_share

    def wrote(self, now: float, rows: bool) -> None:
        """A write started at ``now`` succeeded (with buffered ``rows`` or as a bare heartbeat)."""
        if rows:
            self.last_flush = now
        self.last_beat = self.last_look = now

    def looked(self, now: float) -> None:
        self.last_look = now


class JobMonitor:
    """Progress batcher + heartbeat + cancel watcher of one claimed job (see the module doc).

    ``stop_reason`` becomes "cancel" (the user asked), "lost" (another worker owns the job now)
    or "shutdown" (this worker was told to stop); ``should_stop`` turns true with it."""

    def __init__(self, store: Store, job: dict, worker: str, flush_s: float = 1.0,
                 poll_s: float = 1.0, heartbeat_s: float = 5.0, stale_s: float = 30.0,
                 on_event: Callable[[Event], None] | None = None,
                 on_requeue: Callable[[], None] | None = None,
                 store_share: float = 0.02,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < store_share <= 1:
            raise ValueError(f"store_share must be in (0, 1], got {store_share!r}")
        self.store, self.job, self.worker = store, job, worker
        self.heartbeat_s, self.stale_s = heartbeat_s, stale_s
        self._clock = clock  # injected by tests; durations and due times both read it
        self._pacing = Pacing(flush_s, poll_s, heartbeat_s, store_share)
        self._bell = Doorbell(store)
        self.on_event, self.on_requeue = on_event, on_requeue
        self.stop_reason: str | None = None
        self._seq = int(job.get("next_seq", 1))
        self._buffer: list[dict] = []
        self._cond = threading.Condition()
        self._closed = False
        self._total_epochs: int | None = None
        self.received: Counter = Counter()
        self.stats = {"events": 0, "emit_s": 0.0, "log_s": 0.0, "rows_written": 0, "flushes": 0,
                      "flush_s": 0.0, "flush_errors": 0, "heartbeats": 0, "store_errors": 0,
                      "write_s": 0.0}  # write_s: time in writes (progress rows + heartbeat)
        self._thread = threading.Thread(target=self._loop, name=f"job-{job['id']}-monitor",
                                        daemon=True)
        self._thread.start()

    # ---- the training thread's side ---------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Queue one event as a progress row (cheap: no I/O here, but ``on_event``). Times
        both parts: ``emit_s`` (the row) and ``log_s`` (``on_event``, e.g. the log line)."""
        t0 = time.perf_counter()
        make = ROWS.get(type(event))
        if make is not None:
            row = make(event)
            if isinstance(event, Started):
                self._total_epochs = event.total_epochs
            row.setdefault("total_epochs", self._total_epochs)
            metrics = row.pop("metrics", None)
            row.update(job_id=self.job["id"], attempt=self.job["attempts"],
                       emitted_at=datetime.now(timezone.utc),
                       metrics_json=json.dumps(metrics) if metrics is not None else None)
            with self._cond:
                row["seq"] = self._seq
                self._seq += 1
                self._buffer.append(row)
                self.received[row["event"]] += 1
                self._cond.notify()
        t1 = time.perf_counter()
        if self.on_event is not None:
            self.on_event(event)
        self.stats["events"] += 1
        self.stats["emit_s"] += t1 - t0
        self.stats["log_s"] += time.perf_counter() - t1

    def should_stop(self) -> bool:
        """True once the job must stop (checked by the training loop at every step)."""
        return self.stop_reason is not None

    def request_stop(self, reason: str) -> None:
        """Ask the job to stop at its next step (first reason wins)."""
        if self.stop_reason is None:
            self.stop_reason = reason

    # ---- the background thread --------------------------------------------------------------
    def _loop(self) -> None:
        pacing = self._pacing
        pacing.start(self._clock())
        sweeper = Sweeper(self.stale_s, grace_s=2 * self.heartbeat_s)
        while True:
            with self._cond:
                due = min(pacing.next_due(bool(self._buffer)),
                          self._clock() + sweeper.seconds_left())
                wait = due - self._clock()
                if not self._closed and wait > 0:
                    self._cond.wait(timeout=wait)
                if self._closed:
                    return
            now = self._clock()
            try:
                action = pacing.action(now, bool(self._buffer))
                if action == "write":  # a write is a heartbeat and a look at the flags
                    pacing.wrote(now, self._sync())
                elif action == "look":
                    if self._bell.changed():  # a cancel or requeue rang: read the flags
                        self._react(*self.store.job_flags(self.job["id"], self.worker))
                    pacing.looked(now)
                if sweeper.due():
                    if self.store.requeue_stale(self.stale_s) and self.on_requeue is not None:
                        self.on_requeue()  # other workers' lost jobs: wake idle workers
            except Exception:  # a busy database: try again at the next tick, keep training
                self.stats["store_errors"] += 1
                pacing.looked(self._clock())

    def _react(self, owned: bool, cancel: bool) -> None:
        if cancel:
            self.request_stop("cancel")
        elif not owned:
            self.request_stop("lost")

    def _sync(self) -> bool:
        """One write: the buffered rows + the heartbeat; reacts to the flags it returns.
        True when it wrote rows."""
        with self._cond:
            rows, self._buffer = self._buffer, []
        t0 = self._clock()
        try:
            flags = self.store.heartbeat(self.worker, self.job["id"], rows)
        except Exception:
            with self._cond:  # keep them, in order, for the next try
                self._buffer[:0] = rows
            self.stats["flush_errors"] += 1
            raise
        finally:
            took = self._clock() - t0
            self.stats["write_s"] += took
            self._pacing.spent(took)  # spaces the next write, failed or not
        self.stats["heartbeats"] += 1
        if rows:
            self.stats["flush_s"] += took
            self.stats["flushes"] += 1
            self.stats["rows_written"] += len(rows)
        self._react(*flags)
        return bool(rows)

    def close(self, tries: int = 5) -> dict:
        """Stop the thread and write every event still buffered. Returns the stats, with the
        events received per kind and what is left unwritten (0 unless the store is down)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        for attempt in range(tries):
            try:
                if self._buffer:
                    self._sync()
                break
            except Exception:
                time.sleep(0.2 * (attempt + 1))
        return {**self.stats, "received": dict(self.received), "unwritten": len(self._buffer)}
