"""The classifier training loop. It trains one run (a cell + seed + profile) phase by phase,
picks the checkpoint on the REAL val split, scores the REAL test split, and reports through
events. It knows no database and no UI.

Checkpoint selection: among the epochs of the final phase (a two-phase setting is judged
after its second phase), the best val AUROC, ties broken by the lower val loss. The test split
is touched once, after training, with the chosen weights.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoints as ck
from .loop import (Preprocess, Stopped, Throttle, batch_slices, compile_model, make_ema,
                   make_loss, make_optimizer, predict_logits, resolve_device, to_device,
                   train_epoch, tune_backend)
from .progress import Eta, step_hook
from .context import execution_context
from ..data.real import TrainPlan
from ..errors import DataError, SpecError
from .events import EpochEnd, Emit, Finished, RunResult, Started, ignore
from ..grid import RunSpec
from ..analysis.metrics import run_metrics
from .models import build_model, chestmnist_checkpoint_path, model_input_stats

__all__ = ["train_run", "Stopped"]


def _build_model(spec: RunSpec) -> torch.nn.Module:
    cell, extra = spec.cell, dict(spec.extra)
    chest = extra.get("chestmnist_checkpoint")
    if cell.init == "chestmnist" and not chest:
        chest = str(chestmnist_checkpoint_path(cell.arch, spec.profile.input_size, spec.profile.name))
    return build_model(cell.arch, cell.init, spec.profile.input_size, num_classes=2,
                       imagenet_weights=extra.get("imagenet_weights"), chestmnist_checkpoint=chest)


def _load_resume_state(run_dir: Path, spec: RunSpec) -> dict[str, Any] | None:
    path = run_dir / ck.LAST
    if not path.is_file():
        return None
    state = ck.load(path)
    if state.get("run_id") != spec.run_id:
        raise DataError(f"{path} belongs to run {state.get('run_id')!r}, not {spec.run_id!r}; "
                        "move it away or delete the folder to start over")
    return state


def _score(val: dict[str, float]) -> tuple[float, float]:
    auroc = val["auroc"] if not math.isnan(val["auroc"]) else -1.0
    return (auroc, -val["loss"])


def _evaluate(model, images: torch.Tensor, labels: np.ndarray, prep: Preprocess) -> tuple[dict, np.ndarray]:
    logits = predict_logits(model, images, prep)
    probs = torch.softmax(logits, dim=1)[:, 1].numpy()
    metrics = run_metrics(labels, probs)
    metrics["loss"] = float(F.cross_entropy(logits, torch.from_numpy(labels.astype(np.int64))).item())
    return metrics, probs


def train_run(spec: RunSpec, plan: TrainPlan, run_dir: Path, emit: Emit = ignore,
              device: str | None = None, should_stop: Callable[[], bool] | None = None,
              compile: str | None = None) -> RunResult:
    """Train ``spec`` on ``plan``, resuming from ``run_dir/last.pt`` when it exists.

    Writes ``spec.json``, ``last.pt`` (every epoch) and ``best.pt`` (each new best on val) to
    ``run_dir``. Raises :class:`Stopped` when ``should_stop()`` turns true; the last completed
    epoch stays resumable. ``compile`` names a ``_loop.COMPILE_MODES`` entry (default
    ``$SYNTHMED_COMPILE``, else off). Returns the test metrics and per-image probabilities of
    the best checkpoint. ``wall_s`` of a resumed run includes the earlier attempts' time up to
    their last saved epoch.
    """
    t_start = time.time()
    dev = resolve_device(device)
    tune_backend(dev)
    prof, run_id = spec.profile, spec.run_id
    epochs = [p.epochs for p in plan.phases]
    if sum(epochs) <= 0:
        raise SpecError(f"run {run_id} has no epoch to train (profile {prof.name})")
    final_phase = max(i for i, e in enumerate(epochs) if e > 0)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(spec.to_json())

    torch.manual_seed(spec.seed)
    model = _build_model(spec).to(dev, memory_format=torch.channels_last)
    compile_model(model, compile)
    mean, std = model_input_stats(model)
    prep_train = Preprocess(mean, std, prof.input_size, augment=prof.augment)
    prep_eval = dataclasses.replace(prep_train, augment=False)
    gen = torch.Generator(device=dev)
    gen.manual_seed(spec.seed)
    val_x = to_device(plan.val.images, dev)
    loss_fn = make_loss(prof.label_smoothing)

    state = _load_resume_state(run_dir, spec)
    best = {"score": (-2.0, -math.inf), "epoch": -1, "phase": -1}
    history: list[dict[str, Any]] = []
    prior_s = 0.0  # wall seconds of earlier attempts, up to their last saved epoch
    if state is not None:
        model.load_state_dict(state["model"])
        ck.restore_rng(state["rng"], gen)
        best, history = state["best"], state["history"]
        prior_s = float(state.get("elapsed_s", sum(h["seconds"] for h in history)))
    done_epochs = len(history)
    emit(Started(run_id, spec.to_dict(), str(dev), sum(epochs),
                 resumed_from=done_epochs - 1 if state is not None else None,
                 context={**execution_context(str(dev)),
                          "synthetic_sha256": plan.synthetic_sha256}))

    steps_per_phase = [len(batch_slices(len(p.labels), prof.batch_size)) for p in plan.phases]
    eta = Eta(sum(s * e for s, e in zip(steps_per_phase, epochs)) -
              sum(steps_per_phase[h["phase"]] for h in history))
    throttle = Throttle(prof.progress_every_s)
    offset = 0
    for p_idx, phase in enumerate(plan.phases):
        first = max(0, done_epochs - offset)  # epochs of this phase already done (resume)
        if phase.epochs == 0 or first >= phase.epochs:
            offset += phase.epochs
            continue
        steps = steps_per_phase[p_idx]
        opt, sched = make_optimizer(model, prof.lr, prof.weight_decay, phase.epochs,
                                    phase.warmup_epochs, steps)
        ema = make_ema(model, prof.ema_decay)  # fresh each phase, like the optimizer
        if first > 0:
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            if ema is not None:
                ema.module.load_state_dict(state["ema"])
        judged = ema.module if ema is not None else model  # the weights val sees and best keeps
        x, y = to_device(phase.images, dev), to_device(phase.labels, dev)

        for e in range(first, phase.epochs):
            g_epoch, t_epoch = offset + e, time.time()

            on_step = step_hook(emit, run_id, p_idx, g_epoch, sum(epochs), eta, throttle,
                                prof.batch_size)
            loss = train_epoch(model, x, y, prep_train, loss_fn, opt, sched, e,
                               prof.batch_size, gen, on_step, should_stop, ema=ema)
            val, _ = _evaluate(judged, val_x, plan.val.labels, prep_eval)
            is_best = p_idx == final_phase and _score(val) > tuple(best["score"])
            if is_best:
                best = {"score": _score(val), "epoch": g_epoch, "phase": p_idx}
                ck.save({"run_id": run_id, "spec": spec.to_dict(), "epoch": g_epoch,
                         "model": judged.state_dict()}, run_dir / ck.BEST)
            row = {"phase": p_idx, "epoch": g_epoch, "train_loss": loss, "val_loss": val["loss"],
                   "val_accuracy": val["accuracy"], "val_auroc": val["auroc"],
                   "lr": opt.param_groups[0]["lr"], "seconds": time.time() - t_epoch}
            history.append(row)
            last = {"run_id": run_id, "spec": spec.to_dict(), "phase": p_idx, "epoch": g_epoch,
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "rng": ck.rng_state(gen), "best": best,
                    "history": history, "elapsed_s": prior_s + time.time() - t_start}
            if ema is not None:
                last["ema"] = ema.module.state_dict()
            ck.save(last, run_dir / ck.LAST)
            emit(EpochEnd(run_id, is_best=is_best, **row))
        offset += phase.epochs

    model.load_state_dict(ck.load(run_dir / ck.BEST, map_location=dev)["model"])
    test_m, test_p = _evaluate(model, to_device(plan.test.images, dev), plan.test.labels, prep_eval)
    _, val_p = _evaluate(model, val_x, plan.val.labels, prep_eval)
    test_m.pop("loss", None)
    result = RunResult(run_id=run_id, metrics=test_m, test_labels=plan.test.labels,
                       test_probs=test_p, val_labels=plan.val.labels, val_probs=val_p,
                       best_epoch=int(best["epoch"]), best_phase=int(best["phase"]),
                       wall_s=prior_s + time.time() - t_start, device=str(dev),
                       checkpoint=str(run_dir / ck.BEST), history=history)
    emit(Finished(run_id, result))
    return result
