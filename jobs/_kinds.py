"""What each kind of job is: its submit options, its submit-time check and plan (what goes into
the queue), and what a worker does to run it. A registry, looked up by name.

Submit-time checks refuse a bad spec before anything is queued (unknown arch, bad ratio,
missing synthetic set). What cannot be known yet at submit time (a ChestMNIST checkpoint
that a queued pretrain job will produce) is left to the run, which fails with a clear error.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
from dataclasses import dataclass, field
from typing import Any, Callable

from synthmed_core import grid, paths
from synthmed_core.cli import _common as common
from synthmed_core.cli._runs import _add_cell  # the same cell options as `synthmed_core train`
from synthmed_core.errors import SpecError
from synthmed_core.store import Store

from ._context import JobContext
from ._errors import JobError


@dataclass
class Plan:
    """What a submit queues: ``jobs`` (dicts for Store.add_jobs), an optional grid ``parent``,
    and a one-line ``message`` for the user (e.g. why nothing was queued)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    parent: dict[str, Any] | None = None
    message: str = ""


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    plan: Callable[[argparse.Namespace, Store], Plan]
    run: Callable[[JobContext], str] | None  # returns a one-line summary for the log
    missing: str | None = None  # why this kind cannot be submitted yet


# ---- submit-time checks ------------------------------------------------------------------------


def _check_archs(archs: list[str]) -> None:
    from synthmed_core.models import get_arch  # timm: only when a spec is checked
    for arch in dict.fromkeys(archs):
        get_arch(arch)


def _check_synthetic(name: str | None) -> None:
    if name:
        from synthmed_core.synth.sets import load_set
        load_set(name)  # DataError naming the known sets when it is missing or damaged


def _gpu(device: str) -> bool:
    return str(device).startswith("cuda")


def _train_job(spec: grid.RunSpec, a: argparse.Namespace, force: bool = False) -> dict:
    return {"kind": "train", "label": f"{spec.cell.key} seed={spec.seed} {spec.profile.name}",
            "spec": {"run": spec.to_dict(), "device": a.device, "force": force},
            "run_id": spec.run_id, "gpu": _gpu(a.device), "priority": a.priority,
            "max_attempts": a.max_attempts}


# ---- train -------------------------------------------------------------------------------------


def _train_args(p: argparse.ArgumentParser) -> None:
    _add_cell(p, many=False)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="train again even if finished")
    common.add_profile(p), common.add_init_files(p), common.add_device(p)


def _plan_train(a: argparse.Namespace, store: Store) -> Plan:
    ratio = a.ratio
    if ratio is None and grid.SETTINGS[a.setting].ratio == "required":
        ratio = 1.0
    spec = grid.make_run_spec(a.arch, a.init, a.setting, a.seed, a.profile, ratio, a.synthetic,
                              extra=common.extra(a), **common.overrides(a))
    _check_archs([a.arch])
    _check_synthetic(spec.cell.synthetic)
    if not a.force and spec.run_id in store.finished_run_ids():
        return Plan(message=f"run {spec.run_id} ({spec.cell.key} seed={spec.seed}) is already "
                            "finished; --force trains it again")
    active = store.active_run_ids()
    if spec.run_id in active:
        return Plan(message=f"run {spec.run_id} is already queued or running as job "
                            f"{active[spec.run_id]}")
    return Plan(jobs=[_train_job(spec, a, a.force)])


def _run_train(ctx: JobContext) -> str:
    from synthmed_core.runner import run_one
    spec = grid.RunSpec.from_dict(ctx.spec["run"])
    if ctx.spec.get("force") and ctx.job["attempts"] == 1:
        # Only the first attempt starts over: a retry after a crash resumes its checkpoint.
        ctx.store.delete_run(spec.run_id)
        shutil.rmtree(paths.run_dir(spec.run_id), ignore_errors=True)
    elif spec.run_id in ctx.store.finished_run_ids():
        return f"run {spec.run_id} was already finished; nothing to do"
    result = run_one(spec, ctx.store, ctx.device_for(ctx.spec.get("device")),
                     should_stop=ctx.should_stop, emit=ctx.emit, progress=False)
    return train_summary(result)


def train_summary(result) -> str:
    """The log's last line for a finished run (a RunResult)."""
    m = result.metrics
    return (f"run {result.run_id} finished: test accuracy {m['accuracy']:.4f}, AUROC "
            f"{m['auroc']:.4f} (best epoch {result.best_epoch + 1}, {result.wall_s:.1f} s on "
            f"{result.device})")


# ---- grid: one train job per run ---------------------------------------------------------------


def _grid_args(p: argparse.ArgumentParser) -> None:
    _add_cell(p, many=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--dry-run", action="store_true", help="list the runs, queue nothing")
    common.add_profile(p), common.add_init_files(p), common.add_device(p)


def _plan_grid(a: argparse.Namespace, store: Store) -> Plan:
    specs = grid.expand_grid(a.arch, a.init, a.setting, a.ratio or [1.0], a.seeds, a.profile,
                             a.synthetic, **common.overrides(a))
    _check_archs(a.arch)
    _check_synthetic(next((s.cell.synthetic for s in specs if s.cell.synthetic), None))
    if common.extra(a):
        specs = [grid.RunSpec(s.cell, s.seed, s.profile, tuple(sorted(common.extra(a).items())))
                 for s in specs]
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
    return Plan(jobs=[_train_job(s, a) for s in todo], parent=parent, message=skipped)


# ---- pretrain chestmnist -----------------------------------------------------------------------


def _pretrain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["chestmnist"], help="what to pretrain on")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--profile", default="quick", choices=["paper", "quick", "smoke"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--input-size", type=int, help="default: the training profile's input size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="checkpoint path (default: where init chestmnist looks)")
    common.add_device(p)


def _plan_pretrain(a: argparse.Namespace, store: Store) -> Plan:
    from pathlib import Path

    from synthmed_core.pretrain import make_pretrain_spec
    spec = make_pretrain_spec(a.arch, a.profile, a.seed, a.epochs, a.input_size)
    _check_archs([a.arch])
    out = str(Path(a.out).expanduser().resolve()) if a.out else None
    return Plan(jobs=[{"kind": "pretrain", "label": f"pretrain chestmnist {a.arch} {a.profile}",
                       "spec": {"pretrain": dataclasses.asdict(spec), "out": out,
                                "device": a.device},
                       "gpu": _gpu(a.device), "priority": a.priority,
                       "max_attempts": a.max_attempts}])


def _run_pretrain(ctx: JobContext) -> str:
    from synthmed_core.pretrain import PretrainSpec, pretrain_chestmnist
    fields = {f.name for f in dataclasses.fields(PretrainSpec)}
    spec = PretrainSpec(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in ctx.spec["pretrain"].items() if k in fields})
    card = pretrain_chestmnist(spec, ctx.spec.get("out"), ctx.emit,
                               ctx.device_for(ctx.spec.get("device")),
                               should_stop=ctx.should_stop)
    from pathlib import Path
    ctx.store.register_pretrain(Path(card["path"]).stem, card, card["path"])
    return (f"saved {card['path']}: ChestMNIST val macro AUROC "
            f"{card['metrics']['val_macro_auroc']:.4f}")


# ---- kinds of issue 3, registered so that submitting them says why they are missing ---------


def _no_args(p: argparse.ArgumentParser) -> None:
    """Options come with issue 3; until then any are accepted and the submit is refused."""


def _not_yet(kind: str) -> Callable[[argparse.Namespace, Store], Plan]:
    def plan(a: argparse.Namespace, store: Store) -> Plan:
        raise JobError(f"job kind {kind!r} is not available yet: it needs issue 3 generators "
                       "(synthmed_core.synth generators and quality). Nothing was queued; "
                       "import a synthetic set with `python -m synthmed_core synth import` "
                       "meanwhile")
    return plan


KINDS: dict[str, Kind] = {
    "train": Kind("train", "train one run (same options as `synthmed_core train`)",
                  _train_args, _plan_train, _run_train),
    "grid": Kind("grid", "one train job per run of the chosen axes (as `synthmed_core grid`)",
                 _grid_args, _plan_grid, None),
    "pretrain": Kind("pretrain", "pretrain on ChestMNIST (as `synthmed_core pretrain`)",
                     _pretrain_args, _plan_pretrain, _run_pretrain),
    "generate": Kind("generate", "generate a synthetic set (not available yet: issue 3)",
                     _no_args, _not_yet("generate"), None, missing="issue 3"),
    "quality": Kind("quality", "score a synthetic set (not available yet: issue 3)",
                    _no_args, _not_yet("quality"), None, missing="issue 3"),
}


def get_kind(name: str) -> Kind:
    """The registry entry of a job kind; JobError naming the known kinds otherwise."""
    if name not in KINDS:
        raise JobError(f"unknown job kind {name!r}; choose one of {list(KINDS)}")
    return KINDS[name]


def runnable(name: str) -> Callable[[JobContext], str]:
    """What a worker calls to run a job of this kind (a grid is never run: its children are)."""
    kind = get_kind(name)
    if kind.run is None:
        raise SpecError(f"jobs of kind {name!r} are not run by a worker")
    return kind.run
