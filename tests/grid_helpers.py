"""Shared by the grid tests: record finished runs with chosen per-image predictions, so a cell
can be made clearly different from its base, or identical to it. No model is trained."""
from __future__ import annotations

import numpy as np

from synthmed_core.analysis.metrics import run_metrics
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.records.events import RunResult

N_IMAGES = 200
# The cells fill_contrast writes, by role.
CONTRAST = {"base": "resnet50/scratch/base (smoke)",
            "same": "resnet50/scratch/augment@1/fake-set (smoke)",
            "worse": "resnet50/scratch/synthetic_base/fake-set (smoke)"}


def labels(n: int = N_IMAGES) -> np.ndarray:
    """Fixed test labels at roughly the test split's prevalence (62.5% pneumonia)."""
    return (np.random.default_rng(123).random(n) < 0.625).astype(np.int64)


def probs_with_accuracy(y: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """P(pneumonia) that classifies a random ``accuracy`` share of the images right."""
    rng = np.random.default_rng(seed)
    right = rng.permutation(y.size) < round(accuracy * y.size)
    conf = 0.5 + 0.45 * rng.random(y.size)
    return np.where(right == (y == 1), conf, 1 - conf)


def real_labels(split: str) -> np.ndarray:
    """The real split's labels (needs the ``real_data`` fixture): for runs a bundle carries,
    whose predictions must cover the real test and val splits."""
    from synthmed_core.data.real import load_real
    return np.asarray(load_real(split).labels).reshape(-1).astype(np.int64)


def add_run(store: Store, setting: str, seed: int, probs: np.ndarray, y: np.ndarray,
            arch: str = "resnet50", init: str = "scratch", ratio: float | None = None,
            synthetic: str | None = None, profile: str = "smoke",
            context: dict | None = None, val: tuple | None = None, **overrides) -> str:
    """A finished run of the cell with these test predictions (val = the same unless ``val``
    = (labels, probs)), computed in ``context`` (an execution context dict, None = not
    recorded), its profile overridden by ``overrides`` (e.g. epochs=8); its id."""
    spec = make_run_spec(arch, init, setting, seed=seed, profile=profile, ratio=ratio,
                         synthetic=synthetic, **overrides)
    store.start_run(spec, "cpu", context=context)
    store.add_epochs(spec.run_id, [{"phase": 0, "epoch": e, "train_loss": 0.7 - 0.2 * e,
                                    "val_accuracy": 0.7 + 0.05 * e, "val_auroc": 0.8}
                                   for e in range(3)])
    y_val, p_val = val if val is not None else (y, probs)
    store.finish_run(RunResult(spec.run_id, run_metrics(y, probs), y, probs, y_val, p_val,
                               best_epoch=2, best_phase=0, wall_s=1.0, device="cpu",
                               checkpoint="best.pt"))
    return spec.run_id


def fill_contrast(store: Store, seeds=(0, 1, 2), real: bool = False) -> dict[str, str]:
    """Three seeds each of: base (~80% right), augment@1 with the SAME predictions as base
    (no difference), and synthetic_base (~50% right: clearly worse). ``real``: on the real
    test and val labels (what a bundle must carry), else on ``labels()``. Returns cell names."""
    y = real_labels("test") if real else labels()
    y_val = real_labels("val") if real else None

    def val(seed):
        return (y_val, probs_with_accuracy(y_val, 0.8, seed)) if real else None
    for seed in seeds:
        p = probs_with_accuracy(y, 0.8, seed)
        add_run(store, "base", seed, p, y, val=val(seed))
        add_run(store, "augment", seed, p, y, ratio=1.0, synthetic="fake-set", val=val(seed))
        add_run(store, "synthetic_base", seed, probs_with_accuracy(y, 0.5, 100 + seed), y,
                synthetic="fake-set", val=val(50 + seed))
    return CONTRAST


def contrast_root(root) -> None:
    """A data root whose default store holds fill_contrast's nine runs (for ``prefilled``)."""
    fill_contrast(Store())
