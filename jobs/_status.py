"""What a person sees of the queue, shared by the CLI and the app: one line of progress per job,
its fraction done and ETA, the tail of its log, and cancel / retry with a message to show."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from synthmed_core import catalog
from synthmed_core.store import Store

from . import _queue
from ._errors import JobError

TERMINAL = catalog.TERMINAL_JOB_STATUSES
ACTIVE = catalog.ACTIVE_JOB_STATUSES


def _known(x) -> bool:
    return x is not None and x is not pd.NA and x == x


def eta_seconds(row) -> float | None:
    """The ETA of a job row of Store.jobs() in seconds (None when unknown)."""
    eta = row.get("eta_s")
    return float(eta) if _known(eta) and math.isfinite(eta) else None


def _eta(row) -> str:
    eta = eta_seconds(row)
    return f" eta {eta:.0f}s" if eta is not None else ""


# How the latest progress row of a job reads, by its event.
_PROGRESS_TEXT = {
    "started": lambda r, ep: f"started, {ep}",
    "progress": lambda r, ep: (f"{ep} step {int(r['step'])}/{int(r['steps'])} "
                               f"loss {r['loss']:.3f}{_eta(r)}"),
    "epoch": lambda r, ep: f"{ep} done",
    "finished": lambda r, ep: "finished",
}


def progress_text(row) -> str:
    """One line of progress for a job row of Store.jobs()."""
    if _known(row.get("children")) and row.get("children"):
        return (f"{int(row['children_finished'])}/{int(row['children'])} runs done, "
                f"{int(row['children_failed'])} failed")
    event, total, epoch = row.get("event"), row.get("total_epochs"), row.get("epoch")
    if event not in _PROGRESS_TEXT:
        return ""
    known = _known(epoch) and _known(total)
    ep = f"epoch {int(epoch) + 1}/{int(total)}" if known else ""
    if row.get("status") == "queued" and event != "finished" and known:
        # given back (worker stopped or lost): no live step or ETA; it resumes from its checkpoint
        return f"requeued {'after' if event == 'epoch' else 'in'} {ep}"
    return _PROGRESS_TEXT[event](row, ep)


def progress_fraction(row) -> float:
    """How far a job row of Store.jobs() is, 0..1: a grid by finished children, a run by
    epochs and steps of its latest progress row; 1 once finished, 0 while queued."""
    if row.get("status") == "finished":
        return 1.0
    if _known(row.get("children")) and row.get("children"):
        return float(row["children_finished"]) / float(row["children"])
    total, epoch, event = row.get("total_epochs"), row.get("epoch"), row.get("event")
    if not (_known(total) and _known(epoch)) or not total:
        return 0.0
    done = float(epoch)
    if event == "epoch":
        done += 1.0
    elif event == "progress" and _known(row.get("steps")) and row.get("steps"):
        done += float(row["step"]) / float(row["steps"])
    return max(0.0, min(1.0, done / float(total)))


QUEUE_COLUMNS = ("id", "kind", "status", "progress", "done", "label", "attempts", "parent_id",
                 "worker", "created_at", "finished_at", "error")


def queue_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Store.jobs() rows as the app's queue table: QUEUE_COLUMNS, with ``progress`` (one line,
    with "cancelling" while a cancel waits for the worker) and ``done`` (0..1)."""
    rows = jobs.to_dict("records")
    out = jobs.assign(
        progress=[("cancelling · " if r["cancel_requested"] and r["status"] == "running"
                   else "") + progress_text(r) for r in rows],
        done=[progress_fraction(r) for r in rows])
    return out.loc[:, list(QUEUE_COLUMNS)].reset_index(drop=True)


def get_job(job_id: int, store: Store) -> dict:
    """The job (Store.job), or a JobError that says how to find the jobs."""
    job = store.job(int(job_id))
    if job is None:
        raise JobError(f"no job {job_id} in {store.path}; `python -m jobs list` shows the jobs")
    return job


def log_tail(job_id: int, store: Store, max_bytes: int = 20_000) -> str:
    """The last ``max_bytes`` of a job's log (a grid's says which jobs hold its runs' logs)."""
    job = get_job(job_id, store)
    if job["kind"] == "grid":
        ids = sorted(store.jobs(parent_id=job_id)["id"].tolist())
        return f"job {job_id} is a grid: each of its runs has a log (jobs {ids})"
    path = Path(job["log_path"] or "")
    if not path.is_file():
        return f"job {job_id} has no log yet ({path}): it has not started"
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - max_bytes))
        return f.read().decode("utf-8", errors="replace")


def cancel(job_id: int, store: Store) -> str:
    """Cancel a job (a grid: all its active runs); returns what happened, in words."""
    job = get_job(job_id, store)
    touched = store.cancel_job(int(job_id))
    if not touched:
        return f"job {job_id} is {job['status']}: nothing to cancel"
    _queue.ring(store)  # running jobs' monitors read their cancel flag when the bell rings
    return "; ".join(f"job {jid}: {state}" + (" (stops at its next training step)"
                                              if state == "cancelling" else "")
                     for jid, state in touched)


def retry(job_id: int, store: Store) -> str:
    """Queue a failed or cancelled job (or a grid's failed/cancelled runs) again; JobError when
    there is nothing to retry. Returns what was queued, in words."""
    job = get_job(job_id, store)
    ids = store.retry_job(int(job_id))
    if not ids:
        raise JobError(f"job {job_id} is {job['status']}: only failed or cancelled jobs (or a "
                       "grid with such runs) can be retried")
    _queue.ring(store)
    return f"queued again: job{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"
