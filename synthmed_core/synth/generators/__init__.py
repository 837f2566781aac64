"""Our own synthetic-image generators, by name: ``GENERATORS[method]`` is a Generator class with
profiles ``smoke`` (seconds, tests), ``quick`` (under ~45 min on a 2-core CPU) and ``paper``
(a GPU). Every generator trains on the REAL train split only (``generate`` loads it) and shares
one interface: ``fit(train, emit, should_stop, checkpoint_path)``, ``sample(counts, seed)``,
``save(path)`` / ``load(path, train)``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ... import paths
from ...errors import SpecError
from ._base import Generator, Samples, fingerprint, read_generator_checkpoint
from .cyclegan import CycleGAN, CycleGANConfig
from .ddpm import DDPM, DDPMConfig

GENERATORS: dict[str, type[Generator]] = {"cyclegan": CycleGAN, "ddpm": DDPM}

__all__ = ["GENERATORS", "Generator", "Samples", "CycleGAN", "CycleGANConfig", "DDPM",
           "DDPMConfig", "get_generator_class", "generator_config", "make_generator",
           "default_checkpoint", "fingerprint", "read_generator_checkpoint"]


def get_generator_class(method: str) -> type[Generator]:
    """The generator class of ``method``; SpecError listing the known methods otherwise."""
    if method not in GENERATORS:
        raise SpecError(f"unknown generation method {method!r}; choose one of "
                        f"{sorted(GENERATORS)} (or `synth import` for an external folder)")
    return GENERATORS[method]


def generator_config(method: str, profile: str = "quick", seed: int = 0, **overrides: Any):
    """The config of a ``method`` generator under ``profile`` with ``seed`` and any config field
    overridden (e.g. ``epochs=2``), without building it: SpecError for an unknown method,
    profile or field, or a non-positive ``epochs``."""
    cls = get_generator_class(method)
    if profile not in cls.PROFILES:
        raise SpecError(f"unknown profile {profile!r} for {method}; choose one of "
                        f"{sorted(cls.PROFILES)}")
    base = cls.PROFILES[profile]
    known = {f.name for f in dataclasses.fields(base)} - {"profile", "seed"}
    bad = sorted(set(overrides) - known)
    if bad:
        raise SpecError(f"{method} has no setting(s) {bad}; it has {sorted(known)}")
    epochs = overrides.get("epochs")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise SpecError(f"epochs must be a positive whole number, got {epochs!r}")
    return dataclasses.replace(base, seed=int(seed), **overrides)


def make_generator(method: str, profile: str = "quick", seed: int = 0,
                   device: str | None = None, **overrides: Any) -> Generator:
    """A fresh, untrained generator of ``method`` with the config of ``profile``, ``seed`` and
    any config field overridden (e.g. ``epochs=2``). Raises SpecError for unknown names."""
    config = generator_config(method, profile, seed, **overrides)
    return get_generator_class(method)(config, device)


def default_checkpoint(method: str, profile: str, seed: int) -> Path:
    """Where ``generate`` keeps the generator of (method, profile, seed) for later sampling."""
    return paths.data_root() / "generators" / f"{method}-{profile}-seed{int(seed)}.pt"
