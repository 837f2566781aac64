"""Nothing half-done: the files an import writes (sample sets) go to a staging folder beside
the synthetic sets and are moved in only once the database transaction has committed. A failed
import removes its staging folder; one killed midway leaves it behind, hidden (its name starts
with a dot, so ``list_sets`` never shows it), and the next import or store open settles it: the
files of a bundle the database holds are moved in, any other staging folder is removed."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from .. import paths
from ..store import Store

_PREFIX = ".import-"


def staging_dir(bundle_id: str) -> Path:
    """This process's staging folder for ``bundle_id`` (on the synthetic sets' file system, so
    moving a set in is one rename)."""
    return paths.synthetic_dir() / f"{_PREFIX}{bundle_id}-{os.getpid()}"


def stage_set(folder: Path, name: str, images: np.ndarray, labels: np.ndarray,
              card: dict) -> None:
    """Write set ``name`` into the staging ``folder``."""
    from ..synth.sets import write_set
    write_set(name, images, labels.reshape(-1, 1), card, root=folder)


def move_in(folder: Path) -> None:
    """Move every set staged in ``folder`` into the synthetic sets folder (a set already there
    holds the same images: ``_import`` checked its content hash) and remove ``folder``."""
    if folder.is_dir():
        target_root = paths.synthetic_dir()
        for staged in sorted(folder.iterdir()):
            target = target_root / staged.name
            if staged.is_dir() and not target.exists():
                os.rename(staged, target)
    discard(folder)


def discard(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def settle(store: Store) -> None:
    """Finish or undo what killed imports left: a staging folder of a bundle ``store`` holds
    is moved in, any other is removed; those of live processes are left alone."""
    root = paths.synthetic_dir()
    if not root.is_dir():
        return
    for folder in root.glob(f"{_PREFIX}*"):
        bundle_id, _, pid = folder.name[len(_PREFIX):].rpartition("-")
        if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
            continue
        if store.bundle_imported(bundle_id):
            move_in(folder)
            store.check_results_snapshot()  # killed before it published: drop a stale one
        else:
            discard(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
