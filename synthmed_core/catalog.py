"""Every name synthmed offers, defined once and importable without torch.

The CLI, the jobs, the sidebar, the pages and the store read their choices here; the registries
that hold code (``models``, ``explain``, ``synth.generators``, ``metrics.run_metrics``) are keyed
by these names, and ``tests/test_catalog.py`` walks the catalog to check that each name works
everywhere it is offered. Adding one:

- a metric: an entry in METRICS and its formula in ``metrics.run_metrics``;
- an architecture: an entry in ARCHS (any timm name also works without one);
- a generator: a name in GENERATOR_METHODS and its class in ``synth.generators`` (with a config
  for each of GENERATOR_PROFILES);
- a CAM method: an entry in CAM_METHODS (the pytorch-grad-cam class name);
- a profile, setting or init: ``grid`` (they shape the run specs; re-exported here).
"""
from __future__ import annotations

from dataclasses import dataclass

from .grid import INITS, PROFILE_HELP, PROFILES, SETTINGS

__all__ = ["ACTIVE_JOB_STATUSES", "ARCHS", "ArchInfo", "CAM_METHODS", "CAM_TARGETS", "GENERATOR_METHODS", "GENERATOR_PROFILES", "INITS",
           "JOB_STATUSES", "METRICS", "MetricInfo", "PROFILES", "PROFILE_HELP", "RUN_STATUSES",
           "SETTINGS", "STUDY_ARCHS", "TERMINAL_JOB_STATUSES", "THRESHOLD_METRICS"]


@dataclass(frozen=True)
class MetricInfo:
    label: str  # for people: axis titles, legends
    thresholded: bool  # depends on the decision threshold (accuracy...) or not (AUROC)


# Test metrics of every run, in the order pickers offer them (accuracy first: the study's).
METRICS: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("accuracy", True),
    "auroc": MetricInfo("AUROC", False),
    "f1": MetricInfo("F1", True),
    "sensitivity": MetricInfo("sensitivity (pneumonia recall)", True),
    "specificity": MetricInfo("specificity (normal recall)", True),
}
THRESHOLD_METRICS = tuple(m for m, info in METRICS.items() if info.thresholded)


@dataclass(frozen=True)
class ArchInfo:
    """One architecture: short name, timm name, family ("cnn" or "vit", see models.FAMILIES),
    Grad-CAM candidate layers deepest first (() = the family's default) and a ViT's patch."""

    name: str
    timm_name: str
    family: str = "cnn"
    cam_layers: tuple[str, ...] = ()
    default_patch: int = 16


_RESNET_CAM = ("layer4", "layer3", "layer2", "layer1")
# The study's architectures plus resnet18 (minutes on a CPU), by short name.
ARCHS: dict[str, ArchInfo] = {
    "resnet18": ArchInfo("resnet18", "resnet18", "cnn", _RESNET_CAM),
    "resnet50": ArchInfo("resnet50", "resnet50", "cnn", _RESNET_CAM),
    "deit_tiny": ArchInfo("deit_tiny", "deit_tiny_patch16_224", "vit"),
}


def catalog_arch(name: str) -> ArchInfo | None:
    """The entry for a short name or its timm name, None for any other name (which only timm
    can resolve: ``training.models.get_arch``)."""
    if name in ARCHS:
        return ARCHS[name]
    return next((info for info in ARCHS.values() if info.timm_name == name), None)


# The study's architectures: the default wherever a command covers "the study's archs".
STUDY_ARCHS = ("resnet50", "deit_tiny")

GENERATOR_METHODS = ("cyclegan", "ddpm")  # our own generators (synth.generators.GENERATORS)
# The sizes of every generator, domain encoder and quality measurement: the keys of each
# generator's ``PROFILES``, of ``synth.encoder.ENCODER_PROFILES`` and ``synth.quality.PROFILES``
# (tests/test_catalog.py checks that they agree). Not the training PROFILES.
GENERATOR_PROFILES = ("smoke", "quick", "paper")

# CAM methods by display name -> the pytorch-grad-cam class.
CAM_METHODS: dict[str, str] = {
    "GradCAM": "GradCAM",
    "GradCAM++": "GradCAMPlusPlus",
    "HiResCAM": "HiResCAM",
    "XGradCAM": "XGradCAM",
    "LayerCAM": "LayerCAM",
    "EigenCAM": "EigenCAM",  # gradient-free: first principal component of the activations
    "ScoreCAM": "ScoreCAM",  # gradient-free: one forward pass per activation channel (slow)
}
# Which class a CAM explains: the model's own decision by default (Grad-CAM of a class the model
# rejects is often all negative, i.e. blank after its ReLU), or a fixed class (1 = pneumonia).
CAM_TARGETS: dict[str, int | None] = {"predicted": None, "pneumonia": 1, "normal": 0}

RUN_STATUSES = ("running", "finished", "failed", "cancelled")
# A job is active (queued or running) until it reaches a terminal status.
ACTIVE_JOB_STATUSES = ("queued", "running")
TERMINAL_JOB_STATUSES = ("finished", "failed", "cancelled")
JOB_STATUSES = ACTIVE_JOB_STATUSES + TERMINAL_JOB_STATUSES
