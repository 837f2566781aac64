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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..analysis.metrics import run_metrics
from ..data.real import TrainPlan
from ..errors import DataError, SpecError
from ..grid import RunSpec
from . import checkpoints as ck
from ..records.context import execution_context
from .epochs import Fit, fit_epochs
from ..records.events import Emit, Finished, RunResult, Started, ignore
from .loop import (Preprocess, Throttle, batch_slices, compile_model, make_ema, make_loss,
                   make_optimizer, predict_logits, resolve_device, to_device, tune_backend)
from .models import build_model, chestmnist_checkpoint_path, model_input_stats
from .progress import Eta

__all__ = ["train_run"]


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


@dataclass
class _Setup:
    """A run's model and everything built once for it before the first epoch."""

    model: torch.nn.Module
    prep_train: Preprocess
    prep_eval: Preprocess
    gen: torch.Generator
    val_x: torch.Tensor
    loss_fn: Callable


@dataclass
class _Progress:
    """What a resume carries over: the best epoch so far, the history rows, the earlier
    attempts' wall seconds (up to their last saved epoch) and the last checkpoint's state."""

    best: dict = field(default_factory=lambda: {"score": (-2.0, -math.inf), "epoch": -1,
                                                "phase": -1})
    history: list = field(default_factory=list)
    prior_s: float = 0.0
    state: dict | None = None


def _setup(spec: RunSpec, plan: TrainPlan, dev: torch.device, compile: str | None) -> _Setup:
    torch.manual_seed(spec.seed)
    model = _build_model(spec).to(dev, memory_format=torch.channels_last)
    compile_model(model, compile)
    mean, std = model_input_stats(model)
    prep_train = Preprocess(mean, std, spec.profile.input_size, augment=spec.profile.augment)
    gen = torch.Generator(device=dev)
    gen.manual_seed(spec.seed)
    return _Setup(model, prep_train, dataclasses.replace(prep_train, augment=False), gen,
                  to_device(plan.val.images, dev), make_loss(spec.profile.label_smoothing))


def _resume(run_dir: Path, spec: RunSpec, run: _Setup) -> _Progress:
    state = _load_resume_state(run_dir, spec)
    if state is None:
        return _Progress()
    run.model.load_state_dict(state["model"])
    ck.restore_rng(state["rng"], run.gen)
    return _Progress(state["best"], state["history"],
                     float(state.get("elapsed_s", sum(h["seconds"] for h in state["history"]))),
                     state)


def _train_phase(spec: RunSpec, plan: TrainPlan, p_idx: int, offset: int, first: int,
                 run: _Setup, done: _Progress, fit: Fit, run_dir: Path, dev: torch.device,
                 t_start: float) -> None:
    """Epochs ``first``.. of phase ``p_idx`` (a fresh optimizer, schedule and EMA, restored
    from the last checkpoint when the phase is resumed half-way); updates ``done`` and saves
    ``last.pt`` every epoch and ``best.pt`` at each new best of the final phase."""
    prof, phase = spec.profile, plan.phases[p_idx]
    steps = len(batch_slices(len(phase.labels), prof.batch_size))
    opt, sched = make_optimizer(run.model, prof.lr, prof.weight_decay, phase.epochs,
                                phase.warmup_epochs, steps)
    ema = make_ema(run.model, prof.ema_decay)  # fresh each phase, like the optimizer
    if first > 0:
        opt.load_state_dict(done.state["optimizer"])
        sched.load_state_dict(done.state["scheduler"])
        if ema is not None:
            ema.module.load_state_dict(done.state["ema"])
    judged = ema.module if ema is not None else run.model  # what val sees and best keeps
    final = p_idx == max(i for i, p in enumerate(plan.phases) if p.epochs > 0)
    val = {}

    def evaluate() -> dict:
        val.update(_evaluate(judged, run.val_x, plan.val.labels, run.prep_eval)[0])
        return val

    x, y = to_device(phase.images, dev), to_device(phase.labels, dev)
    for row, is_best in fit_epochs(fit, run.model, x, y, run.prep_train, run.loss_fn, opt, sched,
                                   range(first, phase.epochs), run.gen, evaluate,
                                   lambda v: final and _score(v) > tuple(done.best["score"]),
                                   phase=p_idx, offset=offset, ema=ema):
        if is_best:
            done.best = {"score": _score(val), "epoch": row["epoch"], "phase": p_idx}
            ck.save({"run_id": spec.run_id, "spec": spec.to_dict(), "epoch": row["epoch"],
                     "model": judged.state_dict()}, run_dir / ck.BEST)
        done.history.append(row)
        last = {"run_id": spec.run_id, "spec": spec.to_dict(), "phase": p_idx,
                "epoch": row["epoch"], "model": run.model.state_dict(),
                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "rng": ck.rng_state(run.gen), "best": done.best, "history": done.history,
                "elapsed_s": done.prior_s + time.time() - t_start}
        if ema is not None:
            last["ema"] = ema.module.state_dict()
        ck.save(last, run_dir / ck.LAST)


def train_run(spec: RunSpec, plan: TrainPlan, run_dir: Path, emit: Emit = ignore,
              device: str | None = None, should_stop: Callable[[], bool] | None = None,
              compile: str | None = None) -> RunResult:
    """Train ``spec`` on ``plan``, resuming from ``run_dir/last.pt`` when it exists.

    Writes ``spec.json``, ``last.pt`` (every epoch) and ``best.pt`` (each new best on val) to
    ``run_dir``. Raises :class:`Stopped` when ``should_stop()`` turns true; the last completed
    epoch stays resumable. ``compile`` names a ``loop.COMPILE_MODES`` entry (default
    ``$SYNTHMED_COMPILE``, else off). Returns the test metrics and per-image probabilities of
    the best checkpoint. ``wall_s`` of a resumed run includes the earlier attempts' time up to
    their last saved epoch.
    """
    t_start = time.time()
    dev = resolve_device(device)
    tune_backend(dev)
    epochs = [p.epochs for p in plan.phases]
    if sum(epochs) <= 0:
        raise SpecError(f"run {spec.run_id} has no epoch to train (profile {spec.profile.name})")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "spec.json").write_text(spec.to_json())
    run = _setup(spec, plan, dev, compile)
    done = _resume(run_dir, spec, run)
    n_done = len(done.history)
    emit(Started(spec.run_id, spec.to_dict(), str(dev), sum(epochs),
                 resumed_from=n_done - 1 if done.state is not None else None,
                 context={**execution_context(str(dev)),
                          "synthetic_sha256": plan.synthetic_sha256}))

    steps = [len(batch_slices(len(p.labels), spec.profile.batch_size)) for p in plan.phases]
    eta = Eta(sum(s * e for s, e in zip(steps, epochs)) -
              sum(steps[h["phase"]] for h in done.history))
    fit = Fit(spec.run_id, emit, sum(epochs), spec.profile.batch_size, eta,
              Throttle(spec.profile.progress_every_s), should_stop)
    offset = 0
    for p_idx, phase in enumerate(plan.phases):
        first = max(0, n_done - offset)  # epochs of this phase already done (resume)
        if 0 < phase.epochs and first < phase.epochs:
            _train_phase(spec, plan, p_idx, offset, first, run, done, fit, run_dir, dev, t_start)
        offset += phase.epochs
    return _score_test(spec, plan, run, done, run_dir, dev, t_start, emit)


def _score_test(spec: RunSpec, plan: TrainPlan, run: _Setup, done: _Progress, run_dir: Path,
                dev: torch.device, t_start: float, emit: Emit) -> RunResult:
    """The best checkpoint scores the test split, once, and val again for its probabilities."""
    run.model.load_state_dict(ck.load(run_dir / ck.BEST, map_location=dev)["model"])
    test_m, test_p = _evaluate(run.model, to_device(plan.test.images, dev), plan.test.labels,
                               run.prep_eval)
    _, val_p = _evaluate(run.model, run.val_x, plan.val.labels, run.prep_eval)
    test_m.pop("loss", None)
    result = RunResult(run_id=spec.run_id, metrics=test_m, test_labels=plan.test.labels,
                       test_probs=test_p, val_labels=plan.val.labels, val_probs=val_p,
                       best_epoch=int(done.best["epoch"]), best_phase=int(done.best["phase"]),
                       wall_s=done.prior_s + time.time() - t_start, device=str(dev),
                       checkpoint=str(run_dir / ck.BEST), history=done.history)
    emit(Finished(spec.run_id, result))
    return result
