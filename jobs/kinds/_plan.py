"""What every kind shares: the plan a submit queues, the submit-time checks, a train job's row."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from synthmed_core import grid


@dataclass
class Plan:
    """What a submit queues: ``jobs`` (dicts for Store.add_jobs), an optional grid ``parent``,
    and a one-line ``message`` for the user (e.g. why nothing was queued)."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    parent: dict[str, Any] | None = None
    message: str = ""


def gpu(device: str) -> bool:
    return str(device).startswith("cuda")


def train_job(spec: grid.RunSpec, a: argparse.Namespace, force: bool = False,
               reproduce: bool = False) -> dict:
    label = f"{spec.cell.key} seed={spec.seed} {spec.recipe_label}"
    return {"kind": "train", "label": f"reproduce {label}" if reproduce else label,
            "spec": {"run": spec.to_dict(), "device": a.device, "force": force,
                     "reproduce": reproduce},
            "run_id": spec.run_id, "gpu": gpu(a.device), "priority": a.priority,
            "max_attempts": a.max_attempts}
