"""train: one run (as `synthmed_core train`); also what reproduce and grid queue."""
from __future__ import annotations

import argparse
import shutil
from typing import Any

from synthmed_core import grid, paths
from synthmed_core.cli import options
from synthmed_core.store import Store
from synthmed_core.training.events import Emit

from .._context import JobContext
from ._plan import Plan, check_archs, check_synthetic, train_job


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_cell(p, many=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="train again even if finished")
    options.add_profile(p), options.add_init_files(p), options.add_device(p)


def plan(a: argparse.Namespace, store: Store) -> Plan:
    spec = options.run_spec(a)
    check_archs([a.arch])
    check_synthetic(spec.cell.synthetic)
    if not a.force and spec.run_id in store.finished_run_ids():
        return Plan(message=f"run {spec.run_id} ({spec.cell.key} seed={spec.seed}) is already "
                            "finished; --force trains it again")
    active = store.active_run_ids()
    if spec.run_id in active:
        return Plan(message=f"run {spec.run_id} is already queued or running as job "
                            f"{active[spec.run_id]}")
    return Plan(jobs=[train_job(spec, a, a.force)])


def run(ctx: JobContext) -> str:
    from synthmed_core.training.runner import run_one
    spec = grid.RunSpec.from_dict(ctx.spec["run"])
    reproduce = bool(ctx.spec.get("reproduce"))
    # Only the first attempt starts over: a retry after a crash resumes its checkpoint.
    if (ctx.spec.get("force") or reproduce) and ctx.job["attempts"] == 1:
        if not reproduce:  # a reproduction keeps the record it replaces as a replicate
            ctx.store.delete_run(spec.run_id)
        shutil.rmtree(paths.run_dir(spec.run_id), ignore_errors=True)
    elif not reproduce and spec.run_id in ctx.store.finished_run_ids():
        return f"run {spec.run_id} was already finished; nothing to do"
    result = run_one(spec, ctx.store, ctx.device_for(ctx.spec.get("device")),
                     should_stop=ctx.should_stop, emit=ctx.emit, progress=False)
    if reproduce:
        from synthmed_core.bundle import reproduction
        return "; ".join([train_summary(result),
                          *reproduction(ctx.store.run(spec.run_id), ctx.store)])
    return train_summary(result)


def train_summary(result) -> str:
    """The log's last line for a finished run (a RunResult)."""
    m = result.metrics
    return (f"run {result.run_id} finished: test accuracy {m['accuracy']:.4f}, AUROC "
            f"{m['auroc']:.4f} (best epoch {result.best_epoch + 1}, {result.wall_s:.1f} s on "
            f"{result.device})")


def remote(spec: dict, device: str, emit: Emit) -> Any:
    """On a Ray worker (no store): train the run; its result travels as the Finished event."""
    from synthmed_core.training.compose import build_plan
    from synthmed_core.training.train import train_run
    run_spec = grid.RunSpec.from_dict(spec["run"])
    train_run(run_spec, build_plan(run_spec), paths.run_dir(run_spec.run_id), emit, device)
    return None


def remote_done(job: dict, store: Store, value: Any, result: Any) -> str:
    """On the Ray head, once the task returned: the log's last line."""
    return train_summary(result) + " (a Ray task)"
