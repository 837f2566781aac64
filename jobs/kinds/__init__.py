"""What each kind of job is, one module per kind behind one registry (used by the local workers
and the Ray head alike): its submit options, its submit-time check and plan (what goes into
the queue), what a local worker does to run it (``run``, with the store) and, for the kinds a
Ray cluster runs, what a Ray task does without the store (``remote``) and what the head then
records (``remote_done``).

Submit-time checks refuse a bad spec before anything is queued (unknown arch, bad ratio,
missing synthetic set, a set name already taken, a bad image count). What cannot be known yet
at submit time (a ChestMNIST checkpoint that a queued pretrain job will produce, a generator
checkpoint that does not match) is left to the run, which fails with a clear error.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

from synthmed_core.errors import SpecError
from synthmed_core.store import Store
from synthmed_core.training.events import Emit

from .._context import JobContext
from .._errors import JobError
from . import generate, grid, pretrain, quality, rebuild, reproduce, train
from ._plan import Plan


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    plan: Callable[[argparse.Namespace, Store], Plan]
    run: Callable[[JobContext], str] | None  # returns a one-line summary for the log
    remote: Callable[[dict, str, Emit], Any] | None = None  # a Ray task: no store
    remote_done: Callable[[dict, Store, Any, Any], str] | None = None  # (job, store, value, result)


KINDS: dict[str, Kind] = {
    "train": Kind("train", "train one run (same options as `synthmed_core train`)",
                  train.add_arguments, train.plan, train.run, train.remote, train.remote_done),
    "reproduce": Kind("reproduce", "train a recorded run (e.g. a shipped one) again on this "
                      "machine from its frozen spec; its earlier record is kept as a replicate "
                      "and compared", reproduce.add_arguments, reproduce.plan, None),  # a train job
    "grid": Kind("grid", "one train job per run of the chosen axes (as `synthmed_core grid`)",
                 grid.add_arguments, grid.plan, None),
    "pretrain": Kind("pretrain", "pretrain on ChestMNIST (as `synthmed_core pretrain`)",
                     pretrain.add_arguments, pretrain.plan, pretrain.run, pretrain.remote,
                     pretrain.remote_done),
    "generate": Kind("generate", "train a generator and sample a synthetic set (as "
                     "`synthmed_core synth generate`)", generate.add_arguments, generate.plan,
                     generate.run),
    "rebuild": Kind("rebuild", "make a synthetic set again from its card (method, profile, "
                    "seeds, count, generator settings) and check its content hash",
                    rebuild.add_arguments, rebuild.plan, rebuild.run),
    "quality": Kind("quality", "measure a synthetic set: FID, KID, precision/recall, TSTR, "
                    "memorisation (as `synthmed_core synth quality`)", quality.add_arguments,
                    quality.plan, quality.run),
}
# The kinds a Ray head claims: the others stay in the queue for a local worker.
REMOTE_KINDS = tuple(name for name, kind in KINDS.items() if kind.remote is not None)


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


__all__ = ["KINDS", "REMOTE_KINDS", "Kind", "Plan", "get_kind", "runnable"]
