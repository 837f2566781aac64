"""Training progress on the console: a bar on a terminal, one plain line per epoch elsewhere
(log files, nohup, CI), nothing when asked to be quiet."""
from __future__ import annotations

from synthmed_core.training.console import ConsoleProgress
from synthmed_core.training.events import EpochEnd, Started


def _events(n: int = 2):
    yield Started("r1", {}, "cpu", total_epochs=n)
    for e in range(n):
        yield EpochEnd("r1", 0, e, train_loss=0.5 - 0.1 * e, val_loss=0.4, val_accuracy=0.8,
                       val_auroc=0.9 + 0.01 * e, lr=1e-3, seconds=1.5, is_best=True)


def test_off_a_terminal_one_line_per_epoch(capsys):
    progress = ConsoleProgress("resnet18/scratch/base seed=0")  # pytest's stderr is no tty
    for event in _events():
        progress(event)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "resnet18/scratch/base seed=0: epoch 1/2  train loss 0.500  val AUROC 0.900  (1.5 s)",
        "resnet18/scratch/base seed=0: epoch 2/2  train loss 0.400  val AUROC 0.910  (1.5 s)",
    ]


def test_disabled_is_quiet(capsys):
    progress = ConsoleProgress("quiet", disable=True)
    for event in _events():
        progress(event)
    assert capsys.readouterr().err == ""
