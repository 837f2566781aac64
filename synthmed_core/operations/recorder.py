"""Turns training events into store rows. The training loop emits; this records.

Writes are batched by nature: one row set per epoch and one bulk write (metrics + every
per-image prediction) when a run finishes, each a short locked transaction.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterable

from ..grid import RunSpec
from ..store import Store
from ..training.events import EpochEnd, Event, Finished, Started


class StoreRecorder:
    """An ``emit`` callback that persists Started/EpochEnd/Finished of one run."""

    def __init__(self, store: Store, spec: RunSpec) -> None:
        self.store, self.spec = store, spec
        self._handlers: dict[type, Callable] = {
            Started: self._started, EpochEnd: self._epoch, Finished: self._finished}

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _started(self, event: Started) -> None:
        # A fresh start drops epoch rows of an earlier attempt; a resume keeps those it resumes after.
        keep_until = -1 if event.resumed_from is None else event.resumed_from
        self.store.start_run(self.spec, event.device, discard_epochs_after=keep_until,
                             context=event.context)

    def _epoch(self, event: EpochEnd) -> None:
        row = dataclasses.asdict(event)
        for key in ("run_id", "is_best"):
            row.pop(key)
        self.store.add_epochs(event.run_id, [row])

    def _finished(self, event: Finished) -> None:
        self.store.finish_run(event.result)


def fan_out(*emitters: Callable[[Event], None] | None) -> Callable[[Event], None]:
    """One ``emit`` that forwards each event to every given emitter, in order."""
    targets: Iterable = [e for e in emitters if e is not None]

    def emit(event: Event) -> None:
        for target in targets:
            target(event)

    return emit
