"""grid: one train job per run of the chosen axes (as `synthmed_core grid`); a parent row
follows their progress and is never run itself."""
from __future__ import annotations

import argparse

from synthmed_core.cli import options
from synthmed_core.store import Store

from ._plan import Plan, train_job


def add_arguments(p: argparse.ArgumentParser) -> None:
    options.add_cell(p, many=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--dry-run", action="store_true", help="list the runs, queue nothing")
    options.add_profile(p), options.add_init_files(p), options.add_device(p)


def plan(a: argparse.Namespace, store: Store) -> Plan:
    specs = options.grid_run_specs(a)
    done, active = store.finished_run_ids(), store.active_run_ids()
    todo = [s for s in specs if s.run_id not in done and s.run_id not in active]
    skipped = (f"{len(specs)} runs: {sum(s.run_id in done for s in specs)} already finished, "
               f"{sum(s.run_id in active for s in specs)} already queued or running")
    if a.dry_run:
        lines = [f"  {s.run_id}  {'todo' if s in todo else 'skip'}  {s.cell.key} seed={s.seed}"
                 for s in specs]
        return Plan(message="\n".join([skipped + " (dry run: nothing queued)", *lines]))
    if not todo:
        return Plan(message=skipped + "; nothing to queue")
    parent = {"kind": "grid", "label": f"grid of {len(todo)} runs ({', '.join(a.arch)}; "
                                       f"{', '.join(a.setting)}; {a.profile})",
              "spec": {"runs": [s.run_id for s in todo], "skipped": len(specs) - len(todo)},
              "status": "running", "priority": a.priority}
    return Plan(jobs=[train_job(s, a) for s in todo], parent=parent, message=skipped)
