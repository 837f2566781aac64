"""quality: FID/KID, precision/recall, TSTR and memorisation of a set (as `synth quality`)."""
from __future__ import annotations

import argparse

from synthmed_core.cli import options
from synthmed_core.operations.synth import check_quality, quality
from synthmed_core.store import Store

from .._context import JobContext
from .._errors import JobError
from ._plan import Plan, gpu

add_arguments = options.add_quality_args


def plan(a: argparse.Namespace, store: Store) -> Plan:
    from synthmed_core.synth.sets import set_dir
    active = store.active_generate_job(a.name)
    if active is not None and not set_dir(a.name).exists():
        raise JobError(f"synthetic set {a.name!r} does not exist yet: generate job {active} "
                       "makes it; submit its quality job once that one has finished. Nothing "
                       "was queued")
    check_quality(a.name, a.feature)
    spec = {"name": a.name, "profile": a.profile, "feature": a.feature, "seed": a.seed}
    return Plan(jobs=[{"kind": "quality", "label": f"{a.name} ({a.profile}, {a.feature})",
                       "spec": {"quality": spec, "device": a.device}, "gpu": gpu(a.device),
                       "priority": a.priority, "max_attempts": a.max_attempts}])


def run(ctx: JobContext) -> str:
    q = ctx.spec["quality"]
    return quality(q["name"], q["profile"], q["feature"], q["seed"], ctx.store,
                   ctx.device_for(ctx.spec.get("device")), ctx.should_stop, ctx.log).summary
