"""The one door of ``pretrain`` (the verb and the job kind call it): check the spec, pretrain on
ChestMNIST with progress and a stop flag, register the checkpoint, summarise."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..store import Store
from ..training.console import ConsoleProgress
from ..training.events import Emit
from ._outcome import Outcome
from .recorder import fan_out
from .specs import check_archs

if TYPE_CHECKING:  # torch: imported when a pretraining runs
    from ..training.pretrain import PretrainSpec


def pretrain(spec: PretrainSpec, store: Store, out: Path | str | None = None,
             device: str | None = None, emit: Emit | None = None,
             should_stop: Callable[[], bool] | None = None, progress: bool = False) -> Outcome:
    """The ``pretrain`` operation: pretrain ``spec.arch`` on ChestMNIST (the val-best weights to
    ``out``, default where init ``chestmnist`` looks), events to ``emit`` and (``progress``)
    the terminal, then register the checkpoint in the store."""
    from ..training.pretrain import pretrain_chestmnist
    check_archs([spec.arch])
    console = ConsoleProgress(f"pretrain {spec.arch}", disable=None if progress else True)
    try:
        card = pretrain_chestmnist(spec, Path(out).expanduser().resolve() if out else None,
                                   fan_out(console, emit), device, should_stop=should_stop)
    finally:
        console.close()
    return register_pretrain(store, card)


def register_pretrain(store: Store, card: dict[str, Any]) -> Outcome:
    """Register a pretraining checkpoint (its card) in the store and say where it went; also
    what a Ray task's pretraining comes back to."""
    store.register_pretrain(Path(card["path"]).stem, card, card["path"])
    m = card["metrics"]
    return Outcome(f"saved {card['path']}: ChestMNIST val macro AUROC "
                   f"{m['val_macro_auroc']:.4f} after {card['spec']['epochs']} epochs on "
                   f"{m['train_images']} images ({card['wall_s']:.1f} s on {card['device']})",
                   value=card)
