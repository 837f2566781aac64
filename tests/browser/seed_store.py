"""Fill a scratch SYNTHMED_DATA for the browser tests: python tests/browser/seed_store.py

Run as a subprocess by tests/browser/conftest.py with SYNTHMED_DATA (scratch), and
SYNTHMED_MEDMNIST_ROOT pointing at the shared real data, so nothing here touches the test
process's environment. It writes, through the public APIs only:
- a small synthetic set ``browser-synth`` (real train images blurred and noised), registered;
- fake finished runs of several cells (3 seeds each, fake but valid predictions, no
  checkpoint), so the accuracy grid has cells to draw and click;
- one REAL smoke run (resnet18, the smoke recipe as defined: 2 epochs on 256 images) with a
  checkpoint, for Grad-CAM and Predict.
Prints one JSON line: {"synthetic": ..., "trained_run": ..., "fake_runs": [...]}.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: synth_helpers

from synthmed_core.analysis.metrics import run_metrics  # noqa: E402
from synthmed_core.grid import RunSpec, make_run_spec  # noqa: E402
from synthmed_core.store import Store  # noqa: E402
from synthmed_core.training.events import RunResult  # noqa: E402

SYNTH = "browser-synth"
SEEDS = (0, 1, 2)
# (arch, init, setting, ratio) of the fake cells; synthetic settings use SYNTH.
FAKE_CELLS = [
    ("resnet50", init, setting, ratio)
    for init in ("scratch", "imagenet")
    for setting, ratio in (("base", None), ("synthetic_base", None), ("augment", 1.0),
                           ("synthetic_ft", None))
] + [("deit_tiny", init, "base", None) for init in ("scratch", "imagenet")]
# The real run: a cell the sidebar test does not launch (it trains seed 1 of this cell or
# another cell), so a job is always queued there. The plain smoke recipe, as the sidebar
# queues it: a cell is one recipe, so seed 1 joins this run's cell only then.
TRAINED = dict(arch="resnet18", init="scratch", setting="base", seed=0, profile="smoke")


def write_synthetic_set(store: Store) -> str:
    from synthmed_core.synth.sets import load_set

    from synth_helpers import write_blurred_real_set

    path = write_blurred_real_set(SYNTH, 40, "browser-test")
    _, card = load_set(SYNTH)
    store.register_synthetic_set(SYNTH, card, str(path))
    return SYNTH


def fake_predictions(seed: int, n: int, skill: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels at the test split's prevalence and a P(pneumonia) that ranks them with ``skill``."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.625).astype(np.int64)
    probs = np.clip(0.5 + skill * (labels - 0.5) + rng.normal(0, 0.25, n), 0, 1)
    return labels, probs


def record_fake_run(store: Store, spec: RunSpec, skill: float) -> str:
    store.start_run(spec, "cpu")
    store.add_epochs(spec.run_id, [{"phase": 0, "epoch": e, "train_loss": 0.6 - 0.1 * e,
                                    "val_loss": 0.55 - 0.05 * e, "val_accuracy": 0.75 + 0.05 * e,
                                    "val_auroc": 0.8 + 0.05 * e} for e in range(3)])
    test_y, test_p = fake_predictions(spec.seed, 624, skill)
    val_y, val_p = fake_predictions(1000 + spec.seed, 524, skill)
    # "best.pt" relative to nowhere: a fake run has no checkpoint a page could load
    store.finish_run(RunResult(spec.run_id, run_metrics(test_y, test_p), test_y, test_p, val_y,
                               val_p, best_epoch=2, best_phase=0, wall_s=3.0, device="cpu",
                               checkpoint="best.pt"))
    return spec.run_id


def main() -> None:
    from synthmed_core.operations.train import run_one

    store = Store()
    synth = write_synthetic_set(store)
    fake = []
    for i, (arch, init, setting, ratio) in enumerate(FAKE_CELLS):
        uses_synth = setting != "base"
        for seed in SEEDS:
            spec = make_run_spec(arch, init, setting, seed, "smoke", ratio,
                                 synth if uses_synth else None)
            fake.append(record_fake_run(store, spec, skill=0.2 + 0.03 * i))
    t = dict(TRAINED)
    spec = make_run_spec(t.pop("arch"), t.pop("init"), t.pop("setting"), t.pop("seed"),
                         t.pop("profile"), **t)
    run_one(spec, store, device="cpu", progress=False)
    print(json.dumps({"synthetic": synth, "trained_run": spec.run_id, "fake_runs": fake}))


if __name__ == "__main__":
    main()
