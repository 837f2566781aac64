"""Training runs end to end, the one door of ``train`` and ``reproduce`` (the CLI verbs and the
job kinds call these): check the spec, build its data plan, train, record every event in the
store, summarise. ``run_grid`` trains many specs inline (the ``grid`` verb)."""
from __future__ import annotations

import shutil
import traceback
from dataclasses import dataclass, field
from typing import Callable

from tqdm.auto import tqdm

from .. import paths
from ..errors import Stopped, SynthmedError
from ..grid import RunSpec
from ..store import Store
from ..training.console import ConsoleProgress
from ..records.events import Emit, RunResult, Started
from ._outcome import Outcome
from .recorder import StoreRecorder, fan_out
from .specs import check_reproducible, check_run_spec


def run_one(spec: RunSpec, store: Store | None = None, device: str | None = None,
            should_stop: Callable[[], bool] | None = None, emit: Emit | None = None,
            progress: bool = True, position: int = 0) -> RunResult:
    """Train one run and record it; resumes from the run's last checkpoint when there is one.
    A failure or an interrupt marks the run failed (with the reason) and re-raises."""
    from ..training.compose import build_plan  # torch: only when a run actually trains
    from ..training.train import train_run

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


def train(spec: RunSpec, store: Store, device: str | None = None, force: bool = False,
          emit: Emit | None = None, should_stop: Callable[[], bool] | None = None,
          progress: bool = False) -> Outcome:
    """The ``train`` operation: check ``spec``; skip it when the store has it finished (unless
    ``force``, which deletes its record and files and trains it from zero); else train it,
    resuming its last checkpoint, with events to the store, ``emit`` and (``progress``) the
    terminal, stopping when ``should_stop`` says so."""
    check_run_spec(spec)
    if force:
        store.delete_run(spec.run_id)
        shutil.rmtree(paths.run_dir(spec.run_id), ignore_errors=True)
    elif spec.run_id in store.finished_run_ids():
        return Outcome(f"run {spec.run_id} ({spec.cell.key} seed={spec.seed}) is already "
                       "finished; --force trains it again")
    result = run_one(spec, store, device, should_stop, emit, progress)
    return Outcome(run_summary(spec, result), value=result)


def reproduce(spec: RunSpec, store: Store, device: str | None = None, fresh: bool = True,
              emit: Emit | None = None, should_stop: Callable[[], bool] | None = None,
              progress: bool = False) -> Outcome:
    """The ``reproduce`` operation: train a recorded run again here from its frozen ``spec``
    (from zero when ``fresh``; a retried job resumes), keeping the record it replaces as a
    replicate, and compare the new figures with the earlier ones (``bundle.reproduction``)."""
    from ..bundle import reproduction
    check_reproducible(spec, store)
    if fresh:
        shutil.rmtree(paths.run_dir(spec.run_id), ignore_errors=True)
    result = run_one(spec, store, device, should_stop, emit, progress)
    lines = reproduction(store.run(spec.run_id), store)
    return Outcome(run_summary(spec, result), lines or
                   ["no earlier record of this run to compare with"], result)


def run_summary(spec: RunSpec, result: RunResult) -> str:
    """One line for a finished run: its test figures, best epoch, time and device."""
    m = result.metrics
    return (f"run {spec.run_id} {spec.cell.key} seed={spec.seed} profile={spec.profile.name}: "
            f"test accuracy {m['accuracy']:.4f}  AUROC {m['auroc']:.4f}  F1 {m['f1']:.4f}  "
            f"sensitivity {m['sensitivity']:.4f}  specificity {m['specificity']:.4f}  "
            f"(best epoch {result.best_epoch + 1}, {result.wall_s:.1f} s on {result.device})")


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
