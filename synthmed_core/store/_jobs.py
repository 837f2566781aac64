"""The job queue: jobs, their progress stream, and the workers that run them.

Every claim and state change is one transaction inside the store's cross-process lock, so two
workers can never take the same job: the lock serialises every access to the file, and the
select-then-mark of a claim happens inside one locked transaction.
"""
from __future__ import annotations

import json
import math
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import catalog, paths
from ._base import StoreBase
from ._schema import now as _now

JOB_STATUSES = catalog.JOB_STATUSES
ACTIVE = catalog.ACTIVE_JOB_STATUSES
# "Is active", parameterised: put ``*ACTIVE`` in the parameters where this text stands.
ACTIVE_SQL = f"status IN ({', '.join('?' for _ in ACTIVE)})"
PROGRESS_COLUMNS = ("job_id", "seq", "attempt", "emitted_at", "event", "phase", "epoch",
                    "total_epochs", "step", "steps", "loss", "images_per_s", "eta_s",
                    "metrics_json")
_INT_COLUMNS = ("job_id", "seq", "attempt", "phase", "epoch", "total_epochs", "step", "steps")
_JOB_INSERT = ("kind", "label", "spec_json", "status", "priority", "max_attempts", "gpu", "run_id",
               "parent_id")
# The newest progress row of each job, joined onto job listings.
_LATEST = """(SELECT job_id, event, phase, epoch, total_epochs, step, steps, loss, eta_s,
                     emitted_at AS progress_at FROM job_progress
              QUALIFY row_number() OVER (PARTITION BY job_id ORDER BY seq DESC) = 1)"""
_CHILDREN = f"""(SELECT parent_id, count(*) AS children,
                       count(*) FILTER (WHERE status = 'finished') AS children_finished,
                       count(*) FILTER (WHERE status = 'failed') AS children_failed,
                       count(*) FILTER (WHERE {ACTIVE_SQL}) AS children_active
                FROM jobs WHERE parent_id IS NOT NULL GROUP BY parent_id)"""


# The queue snapshot (``JobsMixin.live_jobs``): every active job and the newest ones.
SNAPSHOT_NEWEST = 500
SNAPSHOT_MAX_AGE_S = 10.0  # older than this, a reader refreshes it from the database
PUBLISH_PROGRESS_S = 0.5  # progress alone rewrites a snapshot older than this, not a newer one
_SNAPSHOT_WHERE = [f"(j.{ACTIVE_SQL} OR j.id IN "
                   f"(SELECT id FROM jobs ORDER BY id DESC LIMIT {SNAPSHOT_NEWEST}))"]


def _listing_sql(where: list[str], limit: bool = False) -> str:
    """Jobs joined with their latest progress and, for a grid, counts of its children. Its
    parameters start with ``*ACTIVE`` (the children's count), then those of ``where``."""
    return f"""SELECT j.id, j.kind, j.label, j.status, j.priority, j.attempts, j.max_attempts,
                      j.gpu, j.worker, j.pid, j.heartbeat_at, j.created_at, j.started_at,
                      j.finished_at, j.error, j.run_id, j.parent_id, j.cancel_requested,
                      j.log_path, p.event, p.phase, p.epoch, p.total_epochs, p.step, p.steps,
                      p.loss, p.eta_s, p.progress_at, c.children, c.children_finished,
                      c.children_failed, c.children_active
               FROM jobs j LEFT JOIN {_LATEST} p ON p.job_id = j.id
                    LEFT JOIN {_CHILDREN} c ON c.parent_id = j.id
               {"WHERE " + " AND ".join(where) if where else ""}
               ORDER BY j.id DESC {"LIMIT ?" if limit else ""}"""


def _progress_frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{c: r.get(c) for c in PROGRESS_COLUMNS} for r in rows])
    df = df.astype({c: "Int64" for c in _INT_COLUMNS})
    df = df.astype({c: "float64" for c in ("loss", "images_per_s", "eta_s")})
    df["emitted_at"] = pd.to_datetime(df["emitted_at"], utc=True)
    return df.astype({"event": "string", "metrics_json": "string"})


def _settle_parent(con, parent_id: int | None) -> None:
    """A grid job ends when its last child does: failed if any failed, else cancelled if any
    was, else finished. While a child is queued or running it stays running."""
    if parent_id is None:
        return
    active, failed, cancelled, n = con.execute(
        f"""SELECT count(*) FILTER (WHERE {ACTIVE_SQL}),
                   count(*) FILTER (WHERE status = 'failed'),
                   count(*) FILTER (WHERE status = 'cancelled'), count(*)
            FROM jobs WHERE parent_id = ?""", [*ACTIVE, parent_id]).fetchone()
    if active:
        con.execute("UPDATE jobs SET status = 'running', finished_at = NULL WHERE id = ?",
                    [parent_id])
        return
    status = "failed" if failed else "cancelled" if cancelled else "finished"
    error = f"{failed} of {n} runs failed" if failed else None
    con.execute("UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                [status, _now(), error, parent_id])


class _Publish:
    """The ``then`` of a queue transaction: rewrites the snapshot after the commit unless the
    body found nothing to change (an idle worker's claim, heartbeat or stale check)."""

    def __init__(self, store: "JobsMixin"):
        self.store, self.skip = store, False

    def __call__(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.skip:
            self.store._publish_queue(con)


class JobsMixin(StoreBase):
    """Jobs: submit, claim, heartbeat, progress, finish, cancel, retry; and their readers."""

    # ---- submitting -------------------------------------------------------------------------
    def add_jobs(self, jobs: list[dict[str, Any]], parent: dict[str, Any] | None = None
                 ) -> list[int]:
        """Insert ``jobs`` (dicts with kind, label, spec (dict), and optionally priority,
        max_attempts, gpu, run_id, status) in one transaction, after ``parent`` when given
        (a grid: its children point to it; it stays running until its last child ends).
        Returns the new ids, parent first. Each job's log path is ``paths.job_log(id)``."""
        created, ids = _now(), []
        with self._transaction(then=self._publish_queue) as con:
            parent_id = None
            for i, job in enumerate(([parent] if parent else []) + list(jobs)):
                values = {"status": "queued", "priority": 0, "max_attempts": 3, "gpu": False,
                          "run_id": None, "label": None, **job}
                values["spec_json"] = json.dumps(values.pop("spec"), sort_keys=True)
                values["parent_id"] = parent_id
                cols = ", ".join(_JOB_INSERT)  # constants, not input
                job_id = con.execute(
                    f"INSERT INTO jobs ({cols}, created_at) VALUES "
                    f"({', '.join('?' * len(_JOB_INSERT))}, ?) RETURNING id",
                    [values[c] for c in _JOB_INSERT] + [created]).fetchone()[0]
                con.execute("UPDATE jobs SET log_path = ? WHERE id = ?",
                            [str(paths.job_log(job_id)), job_id])
                if parent and i == 0:
                    parent_id = job_id
                ids.append(job_id)
            if parent:
                _settle_parent(con, parent_id)
        return ids

    def active_run_ids(self) -> dict[str, int]:
        """Run id -> job id of every queued or running job that trains a run."""
        with self._connect() as con:
            rows = con.execute("SELECT run_id, id FROM jobs WHERE run_id IS NOT NULL AND "
                               f"{ACTIVE_SQL} ORDER BY id", list(ACTIVE)).fetchall()
        return {r: i for r, i in rows}

    def active_generate_job(self, name: str) -> int | None:
        """The queued or running generate job that makes synthetic set ``name``, if any."""
        with self._connect() as con:
            row = con.execute(
                f"""SELECT id FROM jobs WHERE kind IN ('generate', 'rebuild')
                    AND {ACTIVE_SQL}
                    AND json_extract_string(spec_json, '$.generate.name') = ?
                    ORDER BY id LIMIT 1""", [*ACTIVE, name]).fetchone()
        return int(row[0]) if row else None

    # ---- the worker's side ------------------------------------------------------------------
    def claim_job(self, worker: str, pid: int, gpu: bool = False,
                  kinds: tuple[str, ...] | None = None) -> dict | None:
        """Atomically take the oldest queued job of the highest priority (GPU jobs only when
        ``gpu``; only jobs of ``kinds`` when given), mark it running for ``worker`` and count
        the attempt. Returns the job (a dict with ``spec`` decoded and ``next_seq``, the next
        progress sequence number) or None."""
        t, publish = _now(), _Publish(self)
        with self._transaction(then=publish) as con:
            row = con.execute(
                """SELECT id FROM jobs WHERE status = 'queued' AND (NOT gpu OR ?)
                   AND (? OR list_contains(?::VARCHAR[], kind))
                   ORDER BY priority DESC, id LIMIT 1""",
                [gpu, kinds is None, list(kinds or [])]).fetchone()
            if row is None:
                publish.skip = True
                return None
            cur = con.execute(
                """UPDATE jobs SET status = 'running', worker = ?, pid = ?, attempts = attempts + 1,
                       started_at = ?, heartbeat_at = ?, error = NULL WHERE id = ? RETURNING *""",
                [worker, pid, t, t, row[0]])
            job = dict(zip([d[0] for d in cur.description], cur.fetchone()))
            job["next_seq"] = 1 + con.execute(
                "SELECT coalesce(max(seq), 0) FROM job_progress WHERE job_id = ?",
                [row[0]]).fetchone()[0]
            con.execute("UPDATE workers SET job_id = ?, status = 'busy', heartbeat_at = ? "
                        "WHERE id = ?", [row[0], t, worker])
        job["spec"] = json.loads(job.pop("spec_json"))
        return job

    def heartbeat(self, worker: str, job_id: int | None = None,
                  progress: list[dict] | None = None) -> tuple[bool, bool]:
        """In one transaction: append ``progress`` rows (keys of PROGRESS_COLUMNS; a re-sent
        (job_id, seq) replaces the old row) and record that ``worker`` and its job are alive.
        Returns (the worker still owns the job, cancel requested): a worker that lost its job
        (requeued as stale) must stop it. One write per call: the progress batch is the
        heartbeat, so a training job costs one write per flush, not two."""
        t, frame = _now(), _progress_frame(progress) if progress else None
        publish = _Publish(self)
        # A bare heartbeat changes nothing the app shows; progress is published at most every
        # PUBLISH_PROGRESS_S by all workers together (any publish carries every job's state):
        # this runs while the worker holds the lock that the app's reads wait for.
        publish.skip = frame is None or self._snapshot_age() < PUBLISH_PROGRESS_S
        with self._transaction(then=publish) as con:  # the frame is built first: a short lock
            if frame is not None:
                con.register("progress_rows", frame)
                cols = ", ".join(PROGRESS_COLUMNS)  # constants, not input
                con.execute(f"INSERT OR REPLACE INTO job_progress ({cols}) "
                            f"SELECT {cols} FROM progress_rows")
            con.execute("UPDATE workers SET heartbeat_at = ?, job_id = ?, status = ? WHERE id = ?",
                        [t, job_id, "busy" if job_id else "idle", worker])
            if job_id is None:
                return False, False
            row = con.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND worker = ? AND "
                              "status = 'running' RETURNING cancel_requested",
                              [t, job_id, worker]).fetchone()
        return (row is not None, bool(row and row[0]))

    def job_flags(self, job_id: int, worker: str) -> tuple[bool, bool]:
        """(``worker`` still owns the running job, cancel requested): a cheap read."""
        with self._connect() as con:
            row = con.execute("SELECT worker = ? AND status = 'running', cancel_requested "
                              "FROM jobs WHERE id = ?", [worker, job_id]).fetchone()
        return (bool(row and row[0]), bool(row and row[1]))

    def finish_job(self, job_id: int, worker: str, status: str, error: str | None = None,
                   stats: dict | None = None) -> bool:
        """End ``worker``'s running job with ``status`` (finished, failed, cancelled) or give it
        back (``queued``: the attempt does not count). False when the worker no longer owned it."""
        t = _now()
        with self._transaction(then=self._publish_queue) as con:
            row = con.execute(
                """UPDATE jobs SET status = ?, error = ?, stats_json = ?, heartbeat_at = NULL,
                       finished_at = CASE WHEN ? = 'queued' THEN NULL ELSE ? END,
                       attempts = attempts - CASE WHEN ? = 'queued' THEN 1 ELSE 0 END,
                       worker = CASE WHEN ? = 'queued' THEN NULL ELSE worker END
                   WHERE id = ? AND worker = ? AND status = 'running' RETURNING parent_id""",
                [status, error, json.dumps(stats) if stats else None, status, t, status, status,
                 job_id, worker]).fetchone()
            con.execute("UPDATE workers SET job_id = NULL, status = 'idle', heartbeat_at = ? "
                        "WHERE id = ?", [t, worker])
            if row is not None:
                _settle_parent(con, row[0])
        return row is not None

    def requeue_stale(self, stale_s: float) -> list[tuple[int, str]]:
        """Running jobs whose heartbeat is older than ``stale_s``: back to queued (the next claim
        resumes from the run's last epoch), or failed once they used their ``max_attempts``, or
        cancelled if a cancel was pending. Returns (job id, new status) for each."""
        cutoff = _now() - timedelta(seconds=stale_s)
        out, publish = [], _Publish(self)
        with self._transaction(then=publish) as con:
            stale = con.execute("SELECT id, attempts, max_attempts, cancel_requested, parent_id "
                                "FROM jobs WHERE status = 'running' AND heartbeat_at < ?",
                                [cutoff]).fetchall()
            publish.skip = not stale
            for job_id, attempts, max_attempts, cancel, parent_id in stale:
                status = ("cancelled" if cancel else "failed" if attempts >= max_attempts
                          else "queued")
                error = (f"its worker stopped sending heartbeats (attempt {attempts} of "
                         f"{max_attempts})")
                con.execute("""UPDATE jobs SET status = ?, error = ?, worker = NULL,
                                   heartbeat_at = NULL, finished_at = ? WHERE id = ?""",
                            [status, error, None if status == "queued" else _now(), job_id])
                _settle_parent(con, parent_id)
                out.append((job_id, status))
        return out

    # ---- the user's side --------------------------------------------------------------------
    def cancel_job(self, job_id: int) -> list[tuple[int, str]]:
        """Cancel a job and, for a grid, its children: queued ones at once, running ones by
        flag (their worker stops them within a training step). Returns (id, state) per job
        touched: ``cancelled`` or ``cancelling``; empty when nothing was active."""
        out, parents = [], set()
        with self._transaction(then=self._publish_queue) as con:
            rows = con.execute("SELECT id, kind, status, parent_id FROM jobs WHERE (id = ? OR "
                               f"parent_id = ?) AND {ACTIVE_SQL} ORDER BY id",
                               [job_id, job_id, *ACTIVE]).fetchall()
            for jid, kind, status, parent_id in rows:
                if kind == "grid":  # a grid ends with its children (_settle_parent)
                    parents.add(jid)
                    continue
                if status == "queued":
                    con.execute("UPDATE jobs SET status = 'cancelled', finished_at = ?, "
                                "cancel_requested = true WHERE id = ?", [_now(), jid])
                else:
                    con.execute("UPDATE jobs SET cancel_requested = true WHERE id = ?", [jid])
                out.append((jid, "cancelled" if status == "queued" else "cancelling"))
                parents.add(parent_id)
            for parent_id in parents - {None}:
                _settle_parent(con, parent_id)
        return out

    def retry_job(self, job_id: int) -> list[int]:
        """Queue a failed or cancelled job again with fresh attempts (a grid: its failed and
        cancelled children). Returns the ids requeued; a run resumes from its checkpoint."""
        with self._transaction(then=self._publish_queue) as con:
            rows = con.execute(
                """SELECT id, parent_id FROM jobs WHERE (id = ? OR parent_id = ?)
                   AND kind <> 'grid' AND status IN ('failed', 'cancelled') ORDER BY id""",
                [job_id, job_id]).fetchall()
            for jid, _ in rows:
                con.execute("""UPDATE jobs SET status = 'queued', attempts = 0, error = NULL,
                                   cancel_requested = false, worker = NULL, finished_at = NULL
                               WHERE id = ?""", [jid])
            for parent_id in {p for _, p in rows} - {None}:
                _settle_parent(con, parent_id)
        return [jid for jid, _ in rows]

    def jobs(self, status: str | None = None, parent_id: int | None = None,
             limit: int | None = None) -> pd.DataFrame:
        """Jobs, newest first, with their latest progress (event, epoch, step, eta_s...) and,
        for a grid, counts of its children. Filter by status or parent; ``limit`` rows."""
        where, params = [], [*ACTIVE]
        if status is not None:
            where.append("j.status = ?"), params.append(status)
        if parent_id is not None:
            where.append("j.parent_id = ?"), params.append(parent_id)
        if limit:
            params.append(int(limit))
        with self._connect() as con:
            return con.execute(_listing_sql(where, limit=bool(limit)), params).df()

    def job(self, job_id: int) -> dict | None:
        """One job: its columns, ``spec`` and ``stats`` decoded; None when the id is unknown."""
        with self._connect() as con:
            cur = con.execute("SELECT * FROM jobs WHERE id = ?", [job_id])
            row, cols = cur.fetchone(), [d[0] for d in cur.description]
        if row is None:
            return None
        out = dict(zip(cols, row))
        out["spec"] = json.loads(out.pop("spec_json"))
        out["stats"] = json.loads(out.pop("stats_json") or "null")
        return out

    def job_progress(self, job_id: int, after_seq: int = 0) -> pd.DataFrame:
        """The job's progress rows after ``after_seq``, in order."""
        with self._connect() as con:
            return con.execute("SELECT * FROM job_progress WHERE job_id = ? AND seq > ? "
                               "ORDER BY seq", [job_id, after_seq]).df()

    # ---- the live view: a snapshot readers take without the lock ----------------------------
    @property
    def queue_snapshot_path(self) -> Path:
        return Path(str(self.path) + ".queue.parquet")

    def live_jobs(self, status: str | None = None, limit: int = 200) -> pd.DataFrame:
        """What ``jobs(status, limit=limit)`` returns, read from the queue snapshot: a Parquet
        file every change to the queue rewrites (atomically, inside the lock, after its commit),
        so the app's polls never wait for the lock while workers write. The snapshot holds every
        active job and the SNAPSHOT_NEWEST newest; an older one (SNAPSHOT_MAX_AGE_S), a missing
        or unreadable one, or a larger ``limit`` is read from the database (and republished)."""
        df = self._read_snapshot() if limit <= SNAPSHOT_NEWEST else None
        if df is None:
            with self._connect() as con:
                df = self._publish_queue(con)
        if status is not None:
            df = df[df["status"] == status]
        return df.head(limit).reset_index(drop=True)

    def _snapshot_age(self) -> float:
        try:
            return time.time() - self.queue_snapshot_path.stat().st_mtime
        except OSError:
            return math.inf

    def _read_snapshot(self) -> pd.DataFrame | None:
        if self._snapshot_age() > SNAPSHOT_MAX_AGE_S:  # missing, or nobody wrote for a while
            return None
        try:
            return pq.read_table(self.queue_snapshot_path).to_pandas()
        except (OSError, pa.ArrowException):  # gone, or cut short: read the database instead
            return None

    def _publish_queue(self, con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
        """Rewrite the queue snapshot from ``con`` (inside the lock) and return it. Written from
        pandas, so a read gives back the same dtypes as ``jobs()``. A data root that cannot be
        written to keeps no snapshot: its readers read the database."""
        df = con.execute(_listing_sql(_SNAPSHOT_WHERE), [*ACTIVE, *ACTIVE]).df()
        path = self.queue_snapshot_path
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
        return df

    # ---- workers ----------------------------------------------------------------------------
    def register_worker(self, worker: str, host: str, pid: int, device: str,
                        backend: str) -> None:
        """Announce a worker (idle, heartbeat now)."""
        t = _now()
        with self._connect(write=True) as con:
            con.execute("INSERT OR REPLACE INTO workers (id, host, pid, device, backend, status, "
                        "job_id, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [worker, host, pid, device, backend, "idle", None, t, t])

    def worker_stopped(self, worker: str) -> None:
        """Mark a worker stopped (it exited cleanly)."""
        with self._connect(write=True) as con:
            con.execute("UPDATE workers SET status = 'stopped', job_id = NULL WHERE id = ?",
                        [worker])

    def live_workers(self, stale_s: float) -> pd.DataFrame:
        """Workers not stopped whose heartbeat is younger than ``stale_s`` seconds."""
        cutoff = _now() - timedelta(seconds=stale_s)
        with self._connect() as con:
            return con.execute("SELECT * FROM workers WHERE status <> 'stopped' AND "
                               "heartbeat_at >= ? ORDER BY started_at", [cutoff]).df()
