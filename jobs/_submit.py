"""Submitting jobs: parse a kind's options, check and plan them, queue them, ring the bell.
The CLI and the app both come through here, so a bad spec is refused the same way."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from synthmed_core.store import Store

from . import _queue
from .kinds import KINDS, get_kind


@dataclass
class Submitted:
    """What a submit did: the ids queued (a grid's parent first) and a message for the user."""

    ids: list[int] = field(default_factory=list)
    message: str = ""


def add_submit_options(p: argparse.ArgumentParser) -> None:
    """Queue options shared by every kind."""
    g = p.add_argument_group("queue")
    g.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    g.add_argument("--max-attempts", type=int, default=3,
                   help="attempts before a job whose worker keeps dying is failed (default 3)")


def kind_parser(kind: str, prog: str = "python -m jobs submit") -> argparse.ArgumentParser:
    """The option parser of one kind, as `python -m jobs submit KIND` uses it."""
    k = get_kind(kind)
    p = argparse.ArgumentParser(prog=f"{prog} {kind}", description=k.help)
    k.add_arguments(p)
    add_submit_options(p)
    return p


def submit_args(kind: str, args: argparse.Namespace, store: Store | None = None) -> Submitted:
    """Check, plan and queue a job of ``kind`` from parsed options. A bad spec raises a
    SynthmedError before anything is queued."""
    from ._errors import JobError
    if getattr(args, "max_attempts", 1) < 1:
        raise JobError(f"--max-attempts must be at least 1, got {args.max_attempts}")
    store = store or Store()
    plan = get_kind(kind).plan(args, store)
    if not plan.jobs:
        return Submitted(message=plan.message)
    ids = store.add_jobs(plan.jobs, plan.parent)
    _queue.ring(store)
    if plan.parent:
        text = (f"queued grid job {ids[0]}: {len(ids) - 1} train jobs ({ids[1]}-{ids[-1]}); "
                f"{plan.message}")
    else:
        text = f"queued job {ids[0]}: {plan.jobs[0]['kind']} {plan.jobs[0]['label']}"
    return Submitted(ids, text)


def submit(kind: str, argv: list[str] | None = None, store: Store | None = None) -> Submitted:
    """Submit a job from command-line style options, e.g.
    ``submit("train", ["--arch", "resnet18", "--profile", "smoke"])``."""
    return submit_args(kind, kind_parser(kind).parse_args(argv or []), store)


__all__ = ["KINDS", "Submitted", "submit", "submit_args", "kind_parser", "add_submit_options"]
