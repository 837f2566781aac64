"""train: one run (as `synthmed_core train`); also what reproduce and grid queue."""
from __future__ import annotations

import argparse
from typing import Any

from synthmed_core import grid, paths
from synthmed_core.cli import options
from synthmed_core.operations.specs import check_run_spec
from synthmed_core.store import Store
from synthmed_core.training.events import Emit

from .._context import JobContext
from ._plan import Plan, train_job


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_cell(p, many=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="train again even if finished")
    options.add_profile(p), options.add_init_files(p), options.add_device(p)


def plan(a: argparse.Namespace, store: Store) -> Plan:
    spec = options.run_spec(a)
    check_run_spec(spec)
    if not a.force and spec.run_id in store.finished_run_ids():
        return Plan(message=f"run {spec.run_id} ({spec.cell.key} seed={spec.seed}) is already "
                            "finished; --force trains it again")
    active = store.active_run_ids()
    if spec.run_id in active:
        return Plan(message=f"run {spec.run_id} is already queued or running as job "
                            f"{active[spec.run_id]}")
    return Plan(jobs=[train_job(spec, a, a.force)])


def run(ctx: JobContext) -> str:
    from synthmed_core.operations import train as door
    spec = grid.RunSpec.from_dict(ctx.spec["run"])
    # Only the first attempt starts over: a retry after a crash resumes its checkpoint.
    first = ctx.job["attempts"] == 1
    device = ctx.device_for(ctx.spec.get("device"))
    if ctx.spec.get("reproduce"):
        outcome = door.reproduce(spec, ctx.store, device, fresh=first, emit=ctx.emit,
                                 should_stop=ctx.should_stop)
        return "; ".join(outcome.lines())
    outcome = door.train(spec, ctx.store, device, force=bool(ctx.spec.get("force")) and first,
                         emit=ctx.emit, should_stop=ctx.should_stop)
    return outcome.summary


def remote(spec: dict, device: str, emit: Emit) -> Any:
    """On a Ray worker (no store): train the run; its result travels as the Finished event."""
    from synthmed_core.training.compose import build_plan
    from synthmed_core.training.train import train_run
    run_spec = grid.RunSpec.from_dict(spec["run"])
    train_run(run_spec, build_plan(run_spec), paths.run_dir(run_spec.run_id), emit, device)
    return None


def remote_done(job: dict, store: Store, value: Any, result: Any) -> str:
    """On the Ray head, once the task returned: the log's last line."""
    from synthmed_core.operations.train import run_summary
    return run_summary(grid.RunSpec.from_dict(job["spec"]["run"]), result) + " (a Ray task)"
