"""What each kind of job is: its submit options, its submit-time check and plan (what goes into
the queue), and what a worker does to run it. A registry, looked up by name.

Submit-time checks refuse a bad spec before anything is queued (unknown arch, bad ratio,
missing synthetic set, a set name already taken, a bad image count). What cannot be known yet
at submit time (a ChestMNIST checkpoint that a queued pretrain job will produce, a generator
checkpoint that does not match) is left to the run, which fails with a clear error.
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from synthmed_core import grid, paths
from synthmed_core.cli import _common as common
from synthmed_core.cli import _synth  # the same options as `synthmed_core synth generate|quality`
from synthmed_core.errors import SpecError, SynthmedError
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


def _train_job(spec: grid.RunSpec, a: argparse.Namespace, force: bool = False,
               reproduce: bool = False) -> dict:
    label = f"{spec.cell.key} seed={spec.seed} {spec.recipe_label}"
    return {"kind": "train", "label": f"reproduce {label}" if reproduce else label,
            "spec": {"run": spec.to_dict(), "device": a.device, "force": force,
                     "reproduce": reproduce},
            "run_id": spec.run_id, "gpu": _gpu(a.device), "priority": a.priority,
            "max_attempts": a.max_attempts}


# ---- train -------------------------------------------------------------------------------------


def _train_args(p: argparse.ArgumentParser) -> None:
    common.add_cell(p, many=False)
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
        return "; ".join([train_summary(result), *reproduction(ctx.store.run(spec.run_id))])
    return train_summary(result)


def train_summary(result) -> str:
    """The log's last line for a finished run (a RunResult)."""
    m = result.metrics
    return (f"run {result.run_id} finished: test accuracy {m['accuracy']:.4f}, AUROC "
            f"{m['auroc']:.4f} (best epoch {result.best_epoch + 1}, {result.wall_s:.1f} s on "
            f"{result.device})")


# ---- reproduce: train a recorded run (e.g. a shipped one) again here ---------------------------


def _reproduce_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_id", help="run id (a unique prefix is enough)")
    common.add_device(p)


def _plan_reproduce(a: argparse.Namespace, store: Store) -> Plan:
    spec = grid.RunSpec.from_dict(store.run(store.resolve_run_id(a.run_id))["spec"])
    try:
        _check_synthetic(spec.cell.synthetic)
    except SynthmedError as exc:
        from synthmed_core.bundle import rebuild_hint
        raise SpecError(f"run {spec.run_id} trained on synthetic set "
                        f"{spec.cell.synthetic!r}, which is not on this machine: "
                        f"{rebuild_hint(store, spec.cell.synthetic)}") from exc
    active = store.active_run_ids()
    if spec.run_id in active:
        return Plan(message=f"run {spec.run_id} is already queued or running as job "
                            f"{active[spec.run_id]}")
    return Plan(jobs=[_train_job(spec, a, reproduce=True)])


# ---- grid: one train job per run ---------------------------------------------------------------


def _grid_args(p: argparse.ArgumentParser) -> None:
    common.add_cell(p, many=True)
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
    common.add_profile_name(p, "quick", "the training profile whose input size and scale to use")
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


# ---- generate: train (or reuse) a generator, sample a synthetic set --------------------------


def _active_generate(store: Store, name: str) -> int | None:
    """The queued or running generate job that makes set ``name``, if any."""
    df = store.jobs()
    df = df[(df["kind"] == "generate") & df["status"].isin(["queued", "running"])]
    for job_id in sorted(df["id"].tolist()):
        job = store.job(int(job_id))
        if job is not None and job["spec"]["generate"]["name"] == name:
            return int(job_id)
    return None


def _plan_generate(a: argparse.Namespace, store: Store) -> Plan:
    from pathlib import Path

    from synthmed_core.synth.generate import check_request
    check_request(a.method, a.profile, a.name, count=a.count, per_class=a.per_class,
                  seed=a.seed, force=a.force, overrides=_synth.generate_overrides(a))
    active = _active_generate(store, a.name)
    if active is not None:
        raise JobError(f"synthetic set {a.name!r} is already being generated by job {active} "
                       "(queued or running); nothing was queued")
    spec = {"method": a.method, "profile": a.profile, "name": a.name, "count": a.count,
            "per_class": a.per_class, "seed": a.seed, "sample_seed": a.sample_seed,
            "overrides": _synth.generate_overrides(a), "retrain": a.retrain, "force": a.force,
            "allow_test_copies": a.allow_test_copies,
            "checkpoint": str(Path(a.checkpoint).expanduser().resolve()) if a.checkpoint
            else None}
    return Plan(jobs=[{"kind": "generate", "label": f"{a.method} {a.profile} -> {a.name}",
                       "spec": {"generate": spec, "device": a.device}, "gpu": _gpu(a.device),
                       "priority": a.priority, "max_attempts": a.max_attempts}])


def _sampling_log(log: Callable[[str], None], name: str, every_s: float = 10.0
                  ) -> Callable[[int, int], None]:
    """``on_batch`` for sampling: a log line at the first batch, every ``every_s``, the last."""
    last = [float("-inf")]

    def on_batch(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= every_s:
            last[0] = now
            log(f"sampling {name}: {done}/{total} images")
    return on_batch


def _run_generate(ctx: JobContext) -> str:
    from synthmed_core.synth.generate import generate
    g = ctx.spec["generate"]
    # Only the first attempt discards the checkpoint: a retry after a crash resumes it.
    retrain = bool(g["retrain"]) and ctx.job["attempts"] == 1
    path, card = generate(g["method"], g["profile"], g["name"], count=g["count"],
                          per_class=g["per_class"], seed=g["seed"], sample_seed=g["sample_seed"],
                          force=g["force"], retrain=retrain, checkpoint=g["checkpoint"],
                          overrides=g["overrides"], device=ctx.device_for(ctx.spec.get("device")),
                          emit=ctx.emit, should_stop=ctx.should_stop,
                          on_batch=_sampling_log(ctx.log, g["name"]), store=ctx.store,
                          allow_test_copies=bool(g.get("allow_test_copies")))
    gen, sampling = card["generator"], card["sampling"]
    how = ("reused checkpoint" if gen["reused"] else f"trained {gen['steps']} steps, "
           f"{card['training_time_s']:.1f} s on {gen['device']}, checkpoint")
    return (f"registered synthetic set {g['name']!r} at {path}: {card['n']} images "
            f"{card['counts']} ({how} {gen['checkpoint']}; sampled at "
            f"{sampling['images_per_s']} images/s)")


# ---- quality: FID/KID, precision/recall, TSTR, memorisation of a set ---------------------------


def _plan_quality(a: argparse.Namespace, store: Store) -> Plan:
    from synthmed_core.synth.quality import check_feature
    from synthmed_core.synth.sets import set_dir
    active = _active_generate(store, a.name)
    if active is not None and not set_dir(a.name).exists():
        raise JobError(f"synthetic set {a.name!r} does not exist yet: generate job {active} "
                       "makes it; submit its quality job once that one has finished. Nothing "
                       "was queued")
    _check_synthetic(a.name)
    check_feature(a.feature)
    spec = {"name": a.name, "profile": a.profile, "feature": a.feature, "seed": a.seed}
    return Plan(jobs=[{"kind": "quality", "label": f"{a.name} ({a.profile}, {a.feature})",
                       "spec": {"quality": spec, "device": a.device}, "gpu": _gpu(a.device),
                       "priority": a.priority, "max_attempts": a.max_attempts}])


def _run_quality(ctx: JobContext) -> str:
    from synthmed_core._loop import Stopped
    from synthmed_core.synth.quality import measure_quality
    q = ctx.spec["quality"]
    if ctx.should_stop():  # measure_quality itself cannot be stopped half-way
        raise Stopped()
    ctx.log(f"measuring the quality of {q['name']!r} against real train (profile "
            f"{q['profile']}, features {q['feature']}); no progress events until it ends")
    r = measure_quality(q["name"], q["profile"], q["feature"], q["seed"],
                        ctx.device_for(ctx.spec.get("device")), store=ctx.store)
    base, t = r["baseline_real_val"], r["tstr"]
    return (f"quality of {q['name']!r} in {r['feature']['kind']} features ({r['wall_s']:.0f} s), "
            f"stored in its card: FID {r['fid']:.2f} (real val {base['fid']:.2f}), KID "
            f"{r['kid_mean']:.4f}, precision {r['precision']:.3f}, recall {r['recall']:.3f}, "
            f"TSTR accuracy {t['accuracy']:.4f} AUROC {t['auroc']:.4f}, near-copies "
            f"{r['memorisation']['near_copy_share']:.1%}")


KINDS: dict[str, Kind] = {
    "train": Kind("train", "train one run (same options as `synthmed_core train`)",
                  _train_args, _plan_train, _run_train),
    "reproduce": Kind("reproduce", "train a recorded run (e.g. a shipped one) again on this "
                      "machine from its frozen spec; its earlier record is kept as a replicate "
                      "and compared", _reproduce_args, _plan_reproduce, None),  # a train job
    "grid": Kind("grid", "one train job per run of the chosen axes (as `synthmed_core grid`)",
                 _grid_args, _plan_grid, None),
    "pretrain": Kind("pretrain", "pretrain on ChestMNIST (as `synthmed_core pretrain`)",
                     _pretrain_args, _plan_pretrain, _run_pretrain),
    "generate": Kind("generate", "train a generator and sample a synthetic set (as "
                     "`synthmed_core synth generate`)", _synth.add_generate_args,
                     _plan_generate, _run_generate),
    "quality": Kind("quality", "measure a synthetic set: FID, KID, precision/recall, TSTR, "
                    "memorisation (as `synthmed_core synth quality`)", _synth.add_quality_args,
                    _plan_quality, _run_quality),
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
