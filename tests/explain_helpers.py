"""Finished runs with real checkpoints, made in milliseconds: a randomly initialised model saved
through synthmed_core.training.checkpoints and recorded in the store as finished (the test
predictions are fake; the tests that use these runs read the checkpoint, not the metrics)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from synthmed_core import paths
from synthmed_core.analysis.metrics import run_metrics
from synthmed_core.grid import make_run_spec
from synthmed_core.store import Store
from synthmed_core.training import checkpoints as ck
from synthmed_core.records.events import RunResult
from synthmed_core.training.models import build_model


def record_model_run(store: Store, arch: str, seed: int = 0, setting: str = "base",
                     alter: Callable[[nn.Module], None] | None = None) -> tuple[str, nn.Module]:
    """A finished smoke run of ``arch`` whose best.pt holds a random init (seeded), changed by
    ``alter`` when given; returns (run id, the model as saved, in eval mode)."""
    spec = make_run_spec(arch, "scratch", setting, seed=seed, profile="smoke")
    torch.manual_seed(seed)
    model = build_model(arch, "scratch", spec.profile.input_size).eval()
    if alter is not None:
        alter(model)
    path = paths.run_dir(spec.run_id) / ck.BEST
    ck.save({"run_id": spec.run_id, "spec": spec.to_dict(), "epoch": 0,
             "model": model.state_dict()}, path)
    store.start_run(spec, "cpu")
    rng = np.random.default_rng(seed)
    test_y, val_y = rng.integers(0, 2, 624), rng.integers(0, 2, 524)
    test_p, val_p = rng.random(624), rng.random(524)
    store.finish_run(RunResult(spec.run_id, run_metrics(test_y, test_p), test_y, test_p, val_y,
                               val_p, best_epoch=0, best_phase=0, wall_s=1.0, device="cpu",
                               checkpoint=str(path)))
    return spec.run_id, model


def flatten_layer2(model: nn.Module) -> None:
    """Zero every weight of a ResNet's layer2 (its CAM layer at 28 px): its output is 0
    everywhere, so any CAM of it is constant."""
    with torch.no_grad():
        for p in model.layer2.parameters():
            p.zero_()


def seeded_resnet18() -> nn.Module:
    """A resnet18 at 28 px with seeded random weights, in eval mode, as a run's model (data
    size 28)."""
    torch.manual_seed(0)
    model = build_model("resnet18", "scratch", 28).eval()
    model.synthmed["data_size"] = 28
    return model
