"""What a job's code gets from the worker that runs it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from synthmed_core.store import Store
from synthmed_core.records.events import Emit


@dataclass
class JobContext:
    """One attempt of one job: the job row (``spec`` decoded), the store, the worker's device,
    an ``emit`` for training events, ``should_stop`` (cancel, lost job or worker shutdown) and
    ``log`` (a line into the job's log file)."""

    job: dict[str, Any]
    store: Store
    device: str
    emit: Emit
    should_stop: Callable[[], bool]
    log: Callable[[str], None]

    @property
    def spec(self) -> dict[str, Any]:
        return self.job["spec"]

    def device_for(self, requested: str | None) -> str:
        """The device to train on: an explicit ``cpu`` stays on the CPU; ``auto`` or any
        ``cuda`` request runs on the worker's own device (a GPU job goes to a GPU worker)."""
        return "cpu" if requested == "cpu" else self.device
