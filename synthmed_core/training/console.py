"""Progress bars on the terminal for training events (tqdm)."""
from __future__ import annotations

import math
import sys

from tqdm.auto import tqdm

from .events import EpochEnd, Event, Finished, Progress, Started


class ConsoleProgress:
    """An ``emit`` callback that draws one bar per run: epochs, with step, loss and val AUROC.

    Off a terminal (a log file, nohup, CI) no bar is drawn; with ``disable=None`` one plain line
    per epoch goes to stderr instead, so a long run is never silent. ``disable=True`` is quiet.
    """

    def __init__(self, label: str = "", position: int = 0, leave: bool = True,
                 disable: bool | None = None) -> None:
        self.label, self.position, self.leave = label, position, leave
        self.disable = (not sys.stderr.isatty()) if disable is None else disable
        self.lines = disable is None and self.disable  # plain lines instead of a bar
        self._total = 0
        self.bar: tqdm | None = None
        self._postfix: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        if self.lines:
            self._line(event)
            return
        if isinstance(event, Started):
            done = 0 if event.resumed_from is None else event.resumed_from + 1
            self.bar = tqdm(total=event.total_epochs, initial=done, unit="epoch",
                            desc=self.label or event.run_id, position=self.position,
                            leave=self.leave, disable=self.disable, dynamic_ncols=True)
        elif self.bar is None:
            return
        elif isinstance(event, Progress):
            self._postfix.update(step=f"{event.step}/{event.steps}", loss=f"{event.loss:.3f}",
                                 ips=f"{event.images_per_s:.0f}")
            self.bar.set_postfix(self._postfix, refresh=True)
        elif isinstance(event, EpochEnd):
            if not math.isnan(event.val_auroc):
                self._postfix["val_auroc"] = f"{event.val_auroc:.3f}"
            self.bar.set_postfix(self._postfix, refresh=False)
            self.bar.update(1)
        elif isinstance(event, Finished):
            self.close()

    def _line(self, event: Event) -> None:
        if isinstance(event, Started):
            self._total = event.total_epochs
        elif isinstance(event, EpochEnd):
            auroc = "" if math.isnan(event.val_auroc) else f"  val AUROC {event.val_auroc:.3f}"
            print(f"{self.label}: epoch {event.epoch + 1}/{self._total}  train loss "
                  f"{event.train_loss:.3f}{auroc}  ({event.seconds:.1f} s)",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
