"""Generate a synthetic set with one of our own generators, end to end: train on the REAL
train split (or reuse / resume the generator checkpoint of the same method, profile and seed),
sample, and write the set atomically with its card.

Nothing half-made is ever visible: the set appears under its name only after the last image
is written (``write_set``), and it is registered in the store only after that. An interrupted
generation leaves at most a generator checkpoint, which the next call resumes or reuses.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..catalog import GENERATOR_METHODS
from ..data.real import CLASS_NAMES, load_real
from ..errors import SpecError, Stopped
from ..training.compose import allocate
from ..records.events import Emit, ignore
from .copies import CARD_KEY, check_eval_copies
from .generators import (default_checkpoint, generator_config, make_generator,
                         read_generator_checkpoint)
from ..data.synthetic import load_set, set_dir, validate_name, write_set

# Images per set when neither count nor per_class is given. None = as many as the real train
# split, class-stratified like it: exactly what `augment` at ratio 1 draws.
DEFAULT_COUNT: dict[str, int | None] = {"smoke": 32, "quick": None, "paper": None}


def check_counts(count: int | None = None, per_class: int | None = None) -> None:
    """SpecError unless at most one of ``count`` / ``per_class`` is given, and it is > 0."""
    if count is not None and per_class is not None:
        raise SpecError("give either count (split like the real train classes) or per_class, "
                        "not both")
    for label, value in (("count", count), ("per_class", per_class)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value <= 0):
            raise SpecError(f"{label} must be a positive whole number of images, got {value!r}")


def plan_counts(train_labels: np.ndarray, count: int | None = None,
                per_class: int | None = None, profile: str = "quick") -> dict[int, int]:
    """Images per label: ``per_class`` of each, or ``count`` split like the real train classes
    (largest remainder), or the profile's default. SpecError for counts <= 0 or both given."""
    check_counts(count, per_class)
    if per_class is not None:
        return {c: int(per_class) for c in range(len(CLASS_NAMES))}
    if count is None:
        count = DEFAULT_COUNT.get(profile) or len(train_labels)
    weights = np.bincount(np.asarray(train_labels), minlength=len(CLASS_NAMES))
    return {c: int(n) for c, n in enumerate(allocate(int(count), weights))}


def check_request(method: str, profile: str, name: str, *, count: int | None = None,
                  per_class: int | None = None, seed: int = 0, force: bool = False,
                  overrides: dict[str, Any] | None = None) -> None:
    """Everything ``generate`` refuses before loading data or training anything (SpecError):
    an unknown method or profile, a bad override or count, an invalid set name, or the name
    of an existing set without ``force``. A job queue calls it at submit time."""
    generator_config(method, profile, seed, **(overrides or {}))
    validate_name(name)
    check_counts(count, per_class)
    target = set_dir(name)
    if target.exists() and not force:  # refuse before a long training, not after
        raise SpecError(f"synthetic set {name!r} already exists at {target}; sets are immutable. "
                        "Choose another --name, or pass --force (force=True) to replace it.")


def check_checkpoint_path(ckpt: Path, retrain: bool = False) -> None:
    """Refuse, before anything trains, a checkpoint path that is not a file, and with
    ``retrain`` an existing file that is not one of our generator checkpoints (ModelError from
    ``read_generator_checkpoint``): retrain deletes the file, and synthmed deletes only what
    it wrote."""
    if ckpt.exists() and not ckpt.is_file():
        raise SpecError(f"generator checkpoint {ckpt} is not a file (a folder?): give "
                        "--checkpoint (checkpoint=...) the path of a .pt file")
    if retrain and ckpt.is_file():
        read_generator_checkpoint(ckpt)


def generate(method: str, profile: str, name: str, *, count: int | None = None,
             per_class: int | None = None, seed: int = 0, sample_seed: int | None = None,
             force: bool = False, retrain: bool = False, checkpoint: str | Path | None = None,
             overrides: dict[str, Any] | None = None, device: str | None = None,
             emit: Emit = ignore, should_stop: Callable[[], bool] | None = None,
             on_batch: Callable[[int, int], None] | None = None, store=None,
             allow_test_copies: bool = False) -> tuple[Path, dict]:
    """Make synthetic set ``name`` with generator ``method`` under ``profile``; return
    (set folder, card).

    The generator trains with ``seed`` on the real train split, or is reused from its
    checkpoint (``checkpoint`` or ``data/generators/METHOD-PROFILE-seedS.pt``) when that holds
    the same config and data; ``retrain`` discards that checkpoint first. Images are sampled
    with ``sample_seed`` (default ``seed``: pass another one to sample *more*, different
    images from the same generator). With ``store`` the set is registered once written.
    Copies of real val and test images are counted into the card; a set with any test copy
    is refused (SpecError) unless ``allow_test_copies``.
    Raises SpecError (unknown method/profile, bad counts, existing name without ``force``),
    ModelError (a checkpoint that does not match, or a file that is not a generator
    checkpoint, which is left as it is) or Stopped (``should_stop``).
    """
    check_request(method, profile, name, count=count, per_class=per_class, seed=seed,
                  force=force, overrides=overrides)
    ckpt = Path(checkpoint).expanduser() if checkpoint else default_checkpoint(method, profile, seed)
    check_checkpoint_path(ckpt, retrain)
    train = load_real("train")  # the REAL train split only: never val or test
    counts = plan_counts(train.labels, count, per_class, profile)
    gen = make_generator(method, profile, seed, device, **(overrides or {}))
    if retrain:
        ckpt.unlink(missing_ok=True)  # checked above: only ever a generator checkpoint
    info = gen.fit(train, emit, should_stop, ckpt)
    if should_stop is not None and should_stop():
        raise Stopped()
    t0 = time.monotonic()
    s_seed = seed if sample_seed is None else int(sample_seed)
    samples = gen.sample(counts, s_seed, on_batch)
    sample_s = time.monotonic() - t0
    card = _card(gen, info, ckpt, counts, s_seed, sample_s, samples)
    card[CARD_KEY] = check_eval_copies(samples.images, allow_test_copies)
    path = write_set(name, samples.images, samples.labels.reshape(-1, 1).astype(np.uint8), card,
                     force=force)
    _, card = load_set(name)
    if store is not None:
        store.register_synthetic_set(name, card, str(path))
    return path, card


def _card(gen, info: dict, ckpt: Path, counts: dict[int, int], sample_seed: int,
          sample_s: float, samples) -> dict:
    cfg = dataclasses.asdict(gen.config)
    n = len(samples.labels)
    card = {"method": gen.method, "source": "real PneumoniaMNIST train split",
            "source_split": "train", "seed": cfg["seed"],
            "parameters": {**cfg, "sample_seed": sample_seed,
                           "requested_counts": {CLASS_NAMES[c]: k for c, k in counts.items()}},
            "training_time_s": round(info["train_wall_s"], 1),
            "generator": {"checkpoint": str(ckpt), "reused": info["reused"],
                          "resumed_from_epoch": info["resumed_from"], "epochs": info["epochs"],
                          "steps": info["steps"], "device": info["device"],
                          "final_losses": info["history"][-1] if info["history"] else None},
            "sampling": {"wall_s": round(sample_s, 2),
                         "images_per_s": round(n / sample_s, 1) if sample_s > 0 else None,
                         **samples.notes}}
    if samples.source_index is not None:
        # Row i of the set was translated from real TRAIN row source_index[i].
        card["source_index"] = [int(i) for i in samples.source_index]
    return card


def rebuild_request(card: dict) -> dict:
    """The ``generate`` arguments that make a set again from its card: method, profile, seed,
    sample seed, count (split like the real train classes, as it was) and the config fields its
    generator changed from its profile. SpecError for a set no generator of ours made."""
    method = card.get("method")
    params = dict(card.get("parameters") or {})
    if method not in GENERATOR_METHODS or "profile" not in params:
        raise SpecError(f"synthetic set {card.get('name')!r} was not made by a synthmed generator "
                        f"(method {method!r}): import it again from its source instead")
    profile, seed = params.pop("profile"), int(params.pop("seed", card.get("seed") or 0))
    sample_seed = params.pop("sample_seed", None)
    base = dataclasses.asdict(generator_config(method, profile, seed))
    overrides = {k: v for k, v in params.items() if k in base and base[k] != v
                 and k not in ("profile", "seed")}
    return {"method": method, "profile": profile, "seed": seed, "sample_seed": sample_seed,
            "count": int(card["n"]), "overrides": overrides or None}
