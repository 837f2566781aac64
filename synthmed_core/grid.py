"""The experiment grid as data: settings, profiles, frozen cell/run specs, the study's numbers.

One *cell* = (arch, init, setting, ratio, synthetic set). One *run* = a cell trained with one
seed under one profile. A run's id is a hash of its fully resolved spec, so the same request
always maps to the same run and a changed recipe is a different run.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from .errors import SpecError

# --------------------------------------------------------------------------------------------
# Settings: what a run trains on, phase by phase. Each phase names its data source and which
# profile field gives its epoch count. Sources: "real", "synthetic", "real+synthetic",
# "real+duplicates" (re-drawn, augmented real images: the control arm for "augment").


@dataclass(frozen=True)
class PhaseDef:
    source: str
    epochs_field: str  # "epochs" or "finetune_epochs" (a Profile attribute)


@dataclass(frozen=True)
class SettingInfo:
    phases: tuple[PhaseDef, ...]
    ratio: str  # "none" | "required" | "optional" (optional: None = the whole synthetic set)
    description: str

    @property
    def uses_synthetic(self) -> bool:
        return any("synthetic" in p.source for p in self.phases)


_MAIN = "epochs"
_FT = "finetune_epochs"

SETTINGS: dict[str, SettingInfo] = {
    "base": SettingInfo((PhaseDef("real", _MAIN),), "none", "real images only"),
    "synthetic_base": SettingInfo(
        (PhaseDef("synthetic", _MAIN),), "optional", "synthetic images only"),
    "augment": SettingInfo(
        (PhaseDef("real+synthetic", _MAIN),), "required",
        "real + round(ratio x real count) synthetic images, class-stratified"),
    "synthetic_ft": SettingInfo(
        (PhaseDef("real", _MAIN), PhaseDef("synthetic", _FT)), "optional",
        "train on real, then fine-tune on synthetic"),
    "duplicate_control": SettingInfo(
        (PhaseDef("real+duplicates", _MAIN),), "required",
        "real + round(ratio x real count) re-drawn, augmented REAL images (control for augment)"),
    "synthetic_pretrain": SettingInfo(
        (PhaseDef("synthetic", _MAIN), PhaseDef("real", _FT)), "optional",
        "train on synthetic, then fine-tune on real"),
}

STUDY_SETTINGS = ("base", "synthetic_base", "augment", "synthetic_ft")

# How val may pick the decision threshold reported beside 0.5 (Profile.val_threshold): name ->
# how to say it. Each rule's code is analysis.calibration.THRESHOLD_RULES, keyed by these.
VAL_THRESHOLD_RULES: dict[str, str] = {
    "youden": "Youden's J on val",
    "sens95": "sensitivity >= 0.95 on val",
}
INITS = ("scratch", "imagenet", "chestmnist")


# --------------------------------------------------------------------------------------------
# Profiles: the study's recipe (paper) and scaled-down versions of it.


@dataclass(frozen=True)
class Profile:
    """Hyperparameters of one training recipe. lr = base_lr x batch_size / 512."""

    name: str
    epochs: int
    finetune_epochs: int
    batch_size: int = 128
    base_lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: int = 5
    finetune_warmup_epochs: int = 1
    input_size: int = 28
    augment: bool = False  # light on-device affine augmentation of every training batch
    train_limit: int | None = None  # class-stratified subset of the real train split (smoke)
    select_on: str = "val_auroc"  # checkpoint selection metric, always on val
    progress_every_s: float = 1.0
    # How the val split picks the decision threshold reported BESIDE the fixed 0.5 (never
    # instead of it): a VAL_THRESHOLD_RULES name, fixed before training.
    val_threshold: str = "youden"
    # The side of the real MedMNIST images trained on: 28 (pneumoniamnist.npz) or a MedMNIST+
    # size (pneumoniamnist_64.npz ...). A synthetic set of another size is refused unless
    # resize_synthetic, which resizes it the importer's way (data.images.preprocess).
    data_size: int = 28
    resize_synthetic: bool = False
    # timm's LabelSmoothingCrossEntropy on training batches (0 = plain cross-entropy); val and
    # test losses stay plain cross-entropy, so checkpoint selection compares like with like.
    label_smoothing: float = 0.0
    # timm's ModelEmaV3 of the weights, fresh each phase (0 = off). When on, val picks among
    # the EMA weights and the checkpoint holds them.
    ema_decay: float = 0.0

    @property
    def lr(self) -> float:
        return self.base_lr * self.batch_size / 512

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key, default in _LATER_FIELDS.items():
            if d.get(key) == default:
                d.pop(key)
        return d


# Fields added after runs were recorded: left out of a spec (and so of its hash) at their
# default, so every earlier run keeps its id and reads as that default.
_LATER_FIELDS = {"val_threshold": "youden", "data_size": 28, "resize_synthetic": False,
                 "label_smoothing": 0.0, "ema_decay": 0.0}


PROFILES: dict[str, Profile] = {
    # Seconds: tests and CI only. Results mean nothing.
    "smoke": Profile("smoke", epochs=2, finetune_epochs=1, batch_size=64, warmup_epochs=1,
                     finetune_warmup_epochs=0, input_size=28, train_limit=256),
    # The study's recipe, scaled to minutes per resnet18 run on a 2-core CPU (native 28 px).
    "quick": Profile("quick", epochs=20, finetune_epochs=10, warmup_epochs=2,
                     finetune_warmup_epochs=1, input_size=28),
    # A strong baseline at 28 px, chosen on val only (README: the ablation): quick plus light
    # on-device augmentation, a longer schedule and label smoothing. An EMA of the weights
    # (--ema-decay) lowered val AUROC in the ablation and is left out.
    "strong": Profile("strong", epochs=30, finetune_epochs=10, warmup_epochs=2,
                      finetune_warmup_epochs=1, input_size=28, augment=True,
                      label_smoothing=0.1),
    # The study: batch 128, 50 epochs, AdamW lr 0.0005*128/512, wd 0.05, 5 warm-up, cosine.
    # The study trained DeiT at 224; resnet50 likewise runs upsampled to 224 here.
    "paper": Profile("paper", epochs=50, finetune_epochs=50, warmup_epochs=5,
                     finetune_warmup_epochs=5, input_size=224),
}
# One line per profile for --help and the sidebar, cheapest first like PROFILES.
PROFILE_HELP: dict[str, str] = {
    "smoke": "seconds (tests; results mean nothing)",
    "quick": "the study's recipe scaled to minutes on a CPU",
    "strong": "quick + augmentation, 30 epochs, label smoothing (a strong baseline)",
    "paper": "the study's recipe exactly (224 px, 50 epochs)",
}

PROFILE_OVERRIDABLE = ("epochs", "finetune_epochs", "batch_size", "input_size", "augment",
                       "train_limit", "val_threshold", "data_size", "resize_synthetic",
                       "label_smoothing", "ema_decay")


def get_profile(name: str, **overrides: Any) -> Profile:
    """Look up a profile by name, optionally overriding some of its fields (kept in the spec)."""
    if name not in PROFILES:
        raise SpecError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    bad = set(overrides) - set(PROFILE_OVERRIDABLE)
    if bad:
        raise SpecError(f"profile fields {sorted(bad)} cannot be overridden; "
                        f"allowed: {list(PROFILE_OVERRIDABLE)}")
    clean = {k: v for k, v in overrides.items() if v is not None}
    for key in ("epochs", "batch_size", "input_size"):
        if key in clean and int(clean[key]) <= 0:
            raise SpecError(f"{key} must be a positive integer, got {clean[key]!r}")
    if "val_threshold" in clean:
        if clean["val_threshold"] not in VAL_THRESHOLD_RULES:
            raise SpecError(f"unknown val threshold rule {clean['val_threshold']!r}; choose one "
                            f"of {list(VAL_THRESHOLD_RULES)}")
    if "data_size" in clean:
        from .data.real import SIZES
        if int(clean["data_size"]) not in SIZES:
            raise SpecError(f"data_size must be a MedMNIST size {list(SIZES)}, got "
                            f"{clean['data_size']!r}")
        # Trained natively at that size unless an input size was asked for.
        clean.setdefault("input_size", max(PROFILES[name].input_size, int(clean["data_size"])))
    for key in ("label_smoothing", "ema_decay"):
        if key in clean and not 0.0 <= float(clean[key]) < 1.0:
            raise SpecError(f"{key} must be in [0, 1), got {clean[key]!r}")
        if key in clean:
            clean[key] = float(clean[key])
    if "finetune_epochs" in clean and int(clean["finetune_epochs"]) < 0:
        raise SpecError(f"finetune_epochs must be >= 0, got {clean['finetune_epochs']!r}")
    return dataclasses.replace(PROFILES[name], **clean)


# --------------------------------------------------------------------------------------------
# Specs


@dataclass(frozen=True)
class CellSpec:
    """One cell of the grid. ``ratio`` is None where the setting takes none."""

    arch: str
    init: str
    setting: str
    ratio: float | None = None
    synthetic: str | None = None  # name of a registered synthetic set

    def __post_init__(self) -> None:
        validate_cell(self)

    @property
    def key(self) -> str:
        """Human-readable cell key, e.g. ``resnet18/scratch/augment@1/ddpm-quick``."""
        s = f"{self.arch}/{self.init}/{self.setting}"
        if self.ratio is not None:
            s += f"@{self.ratio:g}"
        if self.synthetic:
            s += f"/{self.synthetic}"
        return s


def validate_cell(cell: CellSpec) -> None:
    """Raise SpecError with a clear message when a cell cannot be trained as specified."""
    if not cell.arch or not isinstance(cell.arch, str):
        raise SpecError("arch must be a model name, e.g. resnet18, resnet50, deit_tiny")
    if cell.init not in INITS:
        raise SpecError(f"unknown init {cell.init!r}; choose one of {list(INITS)}")
    if cell.setting not in SETTINGS:
        raise SpecError(f"unknown setting {cell.setting!r}; choose one of {list(SETTINGS)}")
    info = SETTINGS[cell.setting]
    if info.ratio == "none" and cell.ratio is not None:
        raise SpecError(f"setting {cell.setting!r} takes no ratio (got {cell.ratio})")
    if info.ratio == "required" and cell.ratio is None:
        raise SpecError(f"setting {cell.setting!r} needs a ratio (e.g. 1, 2 or 3)")
    if cell.ratio is not None:
        try:
            ratio = float(cell.ratio)
        except (TypeError, ValueError):
            raise SpecError(f"ratio must be a number, got {cell.ratio!r}") from None
        if not ratio > 0 or ratio != ratio or ratio == float("inf"):
            raise SpecError(f"ratio must be a positive number, got {cell.ratio!r}")
    if info.uses_synthetic and not cell.synthetic:
        raise SpecError(f"setting {cell.setting!r} needs a synthetic set (--synthetic NAME); "
                        "list them with `python -m synthmed_core synth list`")
    if not info.uses_synthetic and cell.synthetic:
        raise SpecError(f"setting {cell.setting!r} uses no synthetic set (got {cell.synthetic!r})")


@dataclass(frozen=True)
class RunSpec:
    """A cell + seed + fully resolved profile: everything needed to rebuild the run."""

    cell: CellSpec
    seed: int
    profile: Profile
    extra: tuple[tuple[str, Any], ...] = field(default=())  # e.g. (("imagenet_weights", path),)

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"cell": dataclasses.asdict(self.cell), "seed": int(self.seed),
                "profile": self.profile.to_dict(), "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        cell = CellSpec(**d["cell"])
        return cls(cell=cell, seed=int(d["seed"]), profile=Profile(**d["profile"]),
                   extra=tuple(sorted(d.get("extra", {}).items())))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @property
    def recipe(self) -> str:
        """The resolved training recipe as a key: a hash of the profile's every field and the
        extra inputs (weights files). Runs of one cell with one recipe differ only by seed."""
        blob = json.dumps({"profile": self.profile.to_dict(), "extra": dict(self.extra)},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    @property
    def recipe_label(self) -> str:
        """The recipe for people: the profile's name and what differs from that profile as
        this code defines it, e.g. ``smoke`` or ``smoke epochs=8 train_limit=624``."""
        prof = dataclasses.asdict(self.profile)  # every field: an override back to 0 shows too
        known = PROFILES.get(self.profile.name)
        diffs = [f"{k}={v}" for k, v in prof.items()
                 if k != "name" and (known is None or getattr(known, k, None) != v)]
        diffs += [f"{k}={Path(str(v)).name}" for k, v in sorted(self.extra)]
        return " ".join([self.profile.name, *diffs])


def make_run_spec(arch: str, init: str, setting: str, seed: int = 0, profile: str = "quick",
                  ratio: float | None = None, synthetic: str | None = None,
                  extra: dict[str, Any] | None = None, **profile_overrides: Any) -> RunSpec:
    """Build and validate a RunSpec from plain values (what the CLI and the app pass)."""
    if ratio is not None:
        try:
            ratio = float(ratio)
        except (TypeError, ValueError):
            raise SpecError(f"ratio must be a number, got {ratio!r}") from None
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise SpecError(f"seed must be an integer, got {seed!r}") from None
    if seed < 0:
        raise SpecError(f"seed must be >= 0, got {seed}")
    cell = CellSpec(arch=arch, init=init, setting=setting, ratio=ratio, synthetic=synthetic)
    prof = get_profile(profile, **profile_overrides)
    return RunSpec(cell=cell, seed=seed, profile=prof,
                   extra=tuple(sorted((extra or {}).items())))


def expand_grid(archs: Iterable[str], inits: Iterable[str], settings: Iterable[str],
                ratios: Iterable[float], seeds: Iterable[int], profile: str,
                synthetic: str | None = None, **profile_overrides: Any) -> list[RunSpec]:
    """Every run of the chosen axes. Ratios apply only to settings that take one; settings that
    use no synthetic set ignore ``synthetic``. Optional-ratio settings use the whole set."""
    ratios = list(ratios) or [1.0]
    specs: list[RunSpec] = []
    for arch in archs:
        for init in inits:
            for setting in settings:
                if setting not in SETTINGS:
                    raise SpecError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
                info = SETTINGS[setting]
                cell_ratios = ratios if info.ratio == "required" else [None]
                synth = synthetic if info.uses_synthetic else None
                for ratio in cell_ratios:
                    for seed in seeds:
                        specs.append(make_run_spec(arch, init, setting, seed, profile, ratio,
                                                   synth, **profile_overrides))
    return specs


# --------------------------------------------------------------------------------------------
# The study's published numbers (a single run per cell, test accuracy only).


@dataclass(frozen=True)
class ReferenceRow:
    arch: str
    setting: str
    init: str
    ratio: float | None
    train_size: str
    test_accuracy: float


def reference_rows() -> list[ReferenceRow]:
    """The 36 test accuracies published by the study (copied from shared/reference)."""
    text = resources.files(__package__).joinpath("reference/seed_results.csv").read_text()
    rows = []
    for r in csv.DictReader(text.splitlines()):
        ratio = float(r["synthetic_parts"]) if r["setting"] == "augment" else None
        rows.append(ReferenceRow(r["arch"], r["setting"], r["init"], ratio, r["train_size"],
                                 float(r["test_accuracy"])))
    return rows
