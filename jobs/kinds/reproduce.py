"""reproduce: train a recorded run (e.g. a shipped one) again here, from its frozen spec."""
from __future__ import annotations

import argparse

from synthmed_core import grid
from synthmed_core.cli import options
from synthmed_core.operations.specs import check_reproducible
from synthmed_core.store import Store

from ._plan import Plan, train_job


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", help="run id (a unique prefix is enough)")
    options.add_device(p)


def plan(a: argparse.Namespace, store: Store) -> Plan:
    spec = grid.RunSpec.from_dict(store.run(store.resolve_run_id(a.run_id))["spec"])
    check_reproducible(spec, store)
    active = store.active_run_ids()
    if spec.run_id in active:
        return Plan(message=f"run {spec.run_id} is already queued or running as job "
                            f"{active[spec.run_id]}")
    return Plan(jobs=[train_job(spec, a, reproduce=True)])
