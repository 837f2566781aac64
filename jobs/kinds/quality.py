"""quality: FID/KID, precision/recall, TSTR and memorisation of a set (as `synth quality`)."""
from __future__ import annotations

import argparse

from synthmed_core.cli import options
from synthmed_core.store import Store

from .._context import JobContext
from .._errors import JobError
from ._plan import Plan, check_synthetic, gpu

add_arguments = options.add_quality_args


def plan(a: argparse.Namespace, store: Store) -> Plan:
    from synthmed_core.synth.quality import check_feature
    from synthmed_core.synth.sets import set_dir
    active = store.active_generate_job(a.name)
    if active is not None and not set_dir(a.name).exists():
        raise JobError(f"synthetic set {a.name!r} does not exist yet: generate job {active} "
                       "makes it; submit its quality job once that one has finished. Nothing "
                       "was queued")
    check_synthetic(a.name)
    check_feature(a.feature)
    spec = {"name": a.name, "profile": a.profile, "feature": a.feature, "seed": a.seed}
    return Plan(jobs=[{"kind": "quality", "label": f"{a.name} ({a.profile}, {a.feature})",
                       "spec": {"quality": spec, "device": a.device}, "gpu": gpu(a.device),
                       "priority": a.priority, "max_attempts": a.max_attempts}])


def run(ctx: JobContext) -> str:
    from synthmed_core.synth.quality import measure_quality
    from synthmed_core.training.loop import Stopped
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
