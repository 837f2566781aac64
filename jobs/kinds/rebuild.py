"""rebuild: make a set again from its card (e.g. a shipped set whose images are not here) as a
generate job with the card's method, profile, seeds, count and generator overrides; the job's
summary says whether the content hash came out as the card's."""
from __future__ import annotations

import argparse

from synthmed_core.cli import options
from synthmed_core.operations.synth import check_generate, rebuild_request, rebuilt_verdict
from synthmed_core.store import Store

from .._context import JobContext
from . import generate
from ._plan import Plan, gpu


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="a set whose card is here (`synthmed_core synth list`)")
    options.add_device(p)


def plan(a: argparse.Namespace, store: Store) -> Plan:
    req, content_sha256 = rebuild_request(store, a.name)
    check_generate(req)
    generate.check_not_generating(store, a.name)
    return Plan(jobs=[{"kind": "rebuild", "label": f"{a.name} ({req.method} "
                       f"{req.profile} seed {req.seed})",
                       "spec": {"generate": req.to_dict(), "device": a.device,
                                "content_sha256": content_sha256},
                       "gpu": gpu(a.device), "priority": a.priority,
                       "max_attempts": a.max_attempts}])


def run(ctx: JobContext) -> str:
    summary = generate.run(ctx)
    _, line = rebuilt_verdict(ctx.spec["generate"]["name"], ctx.spec.get("content_sha256"))
    return f"{summary}; {line}"
