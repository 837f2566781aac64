"""What every operation returns: one line for a log, the lines a person reads beneath it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """``summary``: one line (a job log's last line, the last line the CLI prints);
    ``details``: lines shown before it (the CLI prints them, a job logs them); ``value``: what
    the operation made (a RunResult, a set card, a pretrain card), None when it did nothing."""

    summary: str
    details: list[str] = field(default_factory=list)
    value: Any = None

    def lines(self) -> list[str]:
        return [*self.details, self.summary]
