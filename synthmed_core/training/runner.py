"""Run specs end to end: build the data plan, train, record every event in the store.
Used inline by the CLI (``train``, ``grid``) and by job workers."""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Callable

from tqdm.auto import tqdm

from .. import paths
from ..cli.console import ConsoleProgress
from ..errors import SynthmedError
from ..grid import RunSpec
from ..store import Store
from .compose import build_plan
from .events import Emit, RunResult, Started
from .loop import Stopped
from .recorder import StoreRecorder, fan_out


def run_one(spec: RunSpec, store: Store | None = None, device: str | None = None,
            should_stop: Callable[[], bool] | None = None, emit: Emit | None = None,
            progress: bool = True, position: int = 0) -> RunResult:
    """Train one run and record it; resumes from the run's last checkpoint when there is one.
    A failure or an interrupt marks the run failed (with the reason) and re-raises."""
    from .train import train_run  # torch-heavy: imported only when a run actually trains

    store = store or Store()
    plan = build_plan(spec)
    started = []
    console = ConsoleProgress(spec.cell.key + f" seed={spec.seed}", position=position,
                              leave=position == 0, disable=None if progress else True)
    events = fan_out(lambda e: started.append(1) if isinstance(e, Started) else None,
                     StoreRecorder(store, spec), console, emit)
    try:
        return train_run(spec, plan, paths.run_dir(spec.run_id), events, device, should_stop)
    except (Stopped, KeyboardInterrupt):
        if started:
            store.fail_run(spec.run_id, "interrupted: run the same command again to resume "
                                        "from the last finished epoch")
        raise
    except Exception as exc:
        if started:
            store.fail_run(spec.run_id, "".join(traceback.format_exception(exc)))
        raise
    finally:
        console.close()


@dataclass
class GridSummary:
    trained: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def run_grid(specs: list[RunSpec], store: Store | None = None, device: str | None = None,
             progress: bool = True, keep_going: bool = True) -> GridSummary:
    """Train every spec not finished yet, one after another, with a progress bar over runs.
    Runs already finished in the store are skipped; an interrupted run resumes from its last
    epoch the next time. With ``keep_going`` a failing run is reported and the grid goes on."""
    store = store or Store()
    done = store.finished_run_ids()
    summary = GridSummary()
    todo = []
    for spec in specs:
        (summary.skipped if spec.run_id in done else todo).append(spec)
    summary.skipped = [s.run_id for s in summary.skipped]
    bar = tqdm(total=len(specs), initial=len(summary.skipped), unit="run", desc="grid",
               disable=not progress, position=0, dynamic_ncols=True)
    try:
        for spec in todo:
            bar.set_postfix_str(f"{spec.cell.key} seed={spec.seed}")
            try:
                run_one(spec, store, device, progress=progress, position=1)
                summary.trained.append(spec.run_id)
            except SynthmedError as exc:
                summary.failed[spec.run_id] = str(exc)
                if not keep_going:
                    raise
            except (KeyboardInterrupt, Stopped):
                raise
            except Exception as exc:  # recorded with its traceback by run_one
                summary.failed[spec.run_id] = f"{type(exc).__name__}: {exc}"
                if not keep_going:
                    raise
            bar.update(1)
    finally:
        bar.close()
    return summary
