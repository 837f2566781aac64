"""pretrain: the study's ChestMNIST pretraining (as `synthmed_core pretrain chestmnist`)."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from synthmed_core.cli import options
from synthmed_core.operations.specs import check_archs
from synthmed_core.store import Store
from synthmed_core.training.events import Emit

from .._context import JobContext
from ._plan import Plan, gpu


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("what", choices=["chestmnist"], help="what to pretrain on")
    p.add_argument("--arch", default="resnet18")
    options.add_profile_name(p, "quick", "the training profile whose input size and scale to use")
    p.add_argument("--epochs", type=int)
    p.add_argument("--input-size", type=int, help="default: the training profile's input size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="checkpoint path (default: where init chestmnist looks)")
    options.add_device(p)


def plan(a: argparse.Namespace, store: Store) -> Plan:
    from synthmed_core.training.pretrain import make_pretrain_spec
    spec = make_pretrain_spec(a.arch, a.profile, a.seed, a.epochs, a.input_size)
    check_archs([a.arch])  # before the job is queued; the operation checks it again
    out = str(Path(a.out).expanduser().resolve()) if a.out else None
    return Plan(jobs=[{"kind": "pretrain", "label": f"pretrain chestmnist {a.arch} {a.profile}",
                       "spec": {"pretrain": dataclasses.asdict(spec), "out": out,
                                "device": a.device},
                       "gpu": gpu(a.device), "priority": a.priority,
                       "max_attempts": a.max_attempts}])


def run(ctx: JobContext) -> str:
    from synthmed_core.operations.pretrain import pretrain
    return pretrain(_spec(ctx.spec), ctx.store, ctx.spec.get("out"),
                    ctx.device_for(ctx.spec.get("device")), ctx.emit, ctx.should_stop).summary


def _spec(spec: dict):
    from synthmed_core.training.pretrain import PretrainSpec
    fields = {f.name for f in dataclasses.fields(PretrainSpec)}
    return PretrainSpec(**{k: tuple(v) if isinstance(v, list) else v
                           for k, v in spec["pretrain"].items() if k in fields})


def remote(spec: dict, device: str, emit: Emit) -> Any:
    """On a Ray worker (no store): pretrain; the card comes back as the task's value."""
    from synthmed_core.training.pretrain import pretrain_chestmnist
    return pretrain_chestmnist(_spec(spec), spec.get("out"), emit, device)


def remote_done(job: dict, store: Store, card: Any, result: Any) -> str:
    """Register the checkpoint (its card) and say where it went."""
    from synthmed_core.operations.pretrain import register_pretrain
    return register_pretrain(store, card).summary
