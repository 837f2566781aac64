"""``python -m jobs VERB``: submit, list, show, logs, cancel, retry, worker, workers, bench.
User errors (SynthmedError) print one line and exit with status 2."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from synthmed_core.catalog import JOB_STATUSES
from synthmed_core.store import Store

from ._status import TERMINAL, cancel, get_job, progress_text, retry
from ._submit import add_submit_options, submit_args
from .kinds import KINDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs", description="Background jobs: a queue in the results database, "
        "worker processes that outlive the shell, live progress, cancel and retry.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = sub.add_parser("submit", help="queue a job", description="Queue a job; a worker runs it.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind in KINDS.values():
        kp = kinds.add_parser(kind.name, help=kind.help, description=kind.help)
        kind.add_arguments(kp)
        add_submit_options(kp)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("list", help="the jobs, newest first")
    p.add_argument("--status", choices=JOB_STATUSES)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_list)
    for verb, func, text in (("show", cmd_show, "a job: spec, state, latest progress"),
                             ("cancel", cmd_cancel, "cancel a job (a grid: all its runs)"),
                             ("retry", cmd_retry, "queue a failed or cancelled job again")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("id", type=int)
        p.set_defaults(func=func)
    p = sub.add_parser("logs", help="a job's log file")
    p.add_argument("id", type=int)
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("worker", help="run jobs (default: one worker per GPU, else one on CPU)")
    add_worker_options(p)
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("workers", help="the live workers")
    p.set_defaults(func=cmd_workers)
    p = sub.add_parser("bench", help="latency from submit to first progress, per-event cost")
    p.add_argument("--jobs", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_bench)
    return parser


def add_worker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int,
                   help="worker processes (default: --per-gpu per GPU, else 1)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: one per GPU, else cpu)")
    p.add_argument("--per-gpu", type=int, metavar="K",
                   help="worker processes per GPU (default $SYNTHMED_WORKERS_PER_GPU or 1; "
                        "`python -m synthmed_core bench --concurrent 1 2 4 8` measures it)")
    p.add_argument("--backend", default="local", help="local (this machine) or ray (a cluster)")
    p.add_argument("--address", help="ray: the cluster address (default: start a local one)")
    p.add_argument("--once", action="store_true", help="run at most one job, then exit")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS",
                   help="exit after this long with nothing to do")
    p.add_argument("--threads", type=int, help="CPU threads per worker (default: cores/workers)")
    p.add_argument("--heartbeat", type=float, default=5.0, metavar="SECONDS")
    p.add_argument("--stale-after", type=float, default=30.0, metavar="SECONDS",
                   help="a running job without a heartbeat this long is requeued (default 30)")
    p.add_argument("--detach", action="store_true",
                   help="start in the background (own session, survives this shell) and return")
    p.add_argument("--nice", type=int, default=0, metavar="N",
                   help="run at lower CPU priority, 0-19 (default 0): background training that "
                        "yields to the app and to your shell; a detached worker lowers its "
                        "session's share too (Linux autogroups), where plain nice does little")


def _age(ts) -> str:
    if ts is None or ts != ts:
        return ""
    s = time.time() - ts.timestamp()
    return f"{s:.0f}s" if s < 120 else f"{s / 60:.0f}m" if s < 7200 else f"{s / 3600:.0f}h"


def cmd_submit(a: argparse.Namespace) -> int:
    done = submit_args(a.kind, a)
    print(done.message)
    if done.ids and Store().live_workers(30.0).empty:
        print("no worker is running: start one with `python -m jobs worker --detach`")
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    df = Store().jobs(status=a.status, limit=a.limit)
    if df.empty:
        print("no jobs yet: `python -m jobs submit train --profile smoke`, then "
              "`python -m jobs worker`")
        return 0
    for row in df.to_dict("records"):
        parent = f" <{int(row['parent_id'])}" if row["parent_id"] == row["parent_id"] and \
            row["parent_id"] is not None else ""
        flag = " (cancelling)" if row["cancel_requested"] and row["status"] == "running" else ""
        print(f"{row['id']:>5} {row['kind']:<8} {row['status'] + flag:<22} "
              f"{progress_text(row):<42} {row['label'] or ''}{parent}  {_age(row['created_at'])}")
    return 0


def cmd_show(a: argparse.Namespace) -> int:
    store = Store()
    job = get_job(a.id, store)
    job["progress"] = store.job_progress(a.id).tail(5).to_dict("records")
    job["children"] = store.jobs(parent_id=a.id)[["id", "status", "label"]].to_dict("records")
    print(json.dumps(job, indent=2, default=str))
    return 0


def cmd_logs(a: argparse.Namespace) -> int:
    store = Store()
    job = get_job(a.id, store)
    if job["kind"] == "grid":
        ids = store.jobs(parent_id=a.id)["id"].tolist()
        print(f"job {a.id} is a grid: each of its runs has a log (jobs {sorted(ids)})")
        return 0
    path = Path(job["log_path"])
    pos = 0
    while True:
        if path.is_file():
            with path.open("r", encoding="utf-8", errors="replace") as f:
                f.seek(pos)
                sys.stdout.write(f.read())
                pos = f.tell()
            sys.stdout.flush()
        elif not a.follow:
            print(f"job {a.id} has no log yet ({path}): it has not started")
        if not a.follow or (get_job(a.id, store)["status"] in TERMINAL
                            and path.stat().st_size <= pos):
            return 0
        time.sleep(1.0)


def cmd_cancel(a: argparse.Namespace) -> int:
    print(cancel(a.id, Store()))
    return 0


def cmd_retry(a: argparse.Namespace) -> int:
    print(retry(a.id, Store()))
    return 0


def cmd_worker(a: argparse.Namespace) -> int:
    from ._run import run_workers
    return run_workers(a)


def cmd_workers(a: argparse.Namespace) -> int:
    df = Store().live_workers(30.0)
    if df.empty:
        print("no live worker: `python -m jobs worker --detach` starts one")
    for w in df.to_dict("records"):
        job = f"job {int(w['job_id'])}" if w["job_id"] == w["job_id"] and w["job_id"] else "idle"
        print(f"{w['id']:<32} {w['backend']:<6} {w['device']:<8} {job:<10} "
              f"heartbeat {_age(w['heartbeat_at'])} ago")
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from ._latency import bench
    return bench(a.jobs, a.threads)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m jobs``."""
    from synthmed_core.cli import run_verb
    return run_verb(build_parser().parse_args(argv))
