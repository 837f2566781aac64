"""Argument groups shared by several verbs and by the jobs of the same kinds (`python -m jobs
submit train|grid|generate|quality` take the options of `synthmed_core train|grid|synth
generate|synth quality`): written once, here."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import catalog, grid, paths
from ..operations.specs import grid_specs, train_spec
from ..operations.synth import GenerateRequest

OVERRIDES = grid.PROFILE_OVERRIDABLE


def add_cell(p: argparse.ArgumentParser, many: bool) -> None:
    """The cell options (arch, init, setting, ratio, synthetic) of `train` (one each) and
    `grid` (``many``: several each), and of the jobs of those kinds."""
    n = "+" if many else None
    p.add_argument("--arch", nargs=n, default=["resnet18"] if many else "resnet18",
                   help="resnet18, resnet50, deit_tiny or any timm model name")
    p.add_argument("--init", nargs=n, default=["scratch"] if many else "scratch",
                   choices=list(catalog.INITS))
    p.add_argument("--setting", nargs=n, default=["base"] if many else "base",
                   choices=list(catalog.SETTINGS))
    p.add_argument("--ratio", type=float, nargs=n, default=None,
                   help="synthetic:real ratio for augment / duplicate_control (default 1); "
                        "optional for the other synthetic settings (default: the whole set)")
    p.add_argument("--synthetic", metavar="NAME", help="synthetic set (see `synth list`)")


def add_profile(p: argparse.ArgumentParser, default: str = "quick") -> None:
    add_profile_name(p, default, "training recipe")
    g = p.add_argument_group("profile overrides (recorded in each run's spec)")
    g.add_argument("--epochs", type=int, help="epochs of the main phase")
    g.add_argument("--finetune-epochs", type=int, help="epochs of the second phase")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--input-size", type=int,
                   help="model input side in px: 28 native; 64 or 224 upsampled on the device")
    g.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="light on-device rotation/shift of every training batch")
    g.add_argument("--train-limit", type=int, help="class-stratified subset of the real train split")
    g.add_argument("--data-size", type=int, metavar="PX",
                   help="train natively on the MedMNIST+ file of this size (64, 128, 224: "
                        "pneumoniamnist_64.npz ... in the medmnist folder; default 28)")
    g.add_argument("--resize-synthetic", action=argparse.BooleanOptionalAction, default=None,
                   help="resize a synthetic set of another size to --data-size, as the importer "
                        "resizes (else such a set is refused)")
    g.add_argument("--val-threshold", metavar="RULE",
                   help="how val picks the decision threshold reported beside 0.5 (default: "
                        "Youden's J; an unknown rule is refused with the list)")
    g.add_argument("--label-smoothing", type=float, metavar="EPS",
                   help="label smoothing of the training loss, in [0, 1) (0 = off)")
    g.add_argument("--ema-decay", type=float, metavar="D",
                   help="EMA of the weights (timm ModelEmaV3), in [0, 1) (0 = off)")


def add_profile_name(p: argparse.ArgumentParser, default: str = "quick",
                     what: str = "training recipe") -> None:
    """--profile, its choices and help read from catalog.PROFILES (one place for the names)."""
    names = "; ".join(f"{k} = {v}" for k, v in catalog.PROFILE_HELP.items())
    p.add_argument("--profile", default=default, choices=list(catalog.PROFILES),
                   help=f"{what}: {names} (default {default})")


def overrides(a: argparse.Namespace) -> dict:
    return {k: getattr(a, k) for k in OVERRIDES if getattr(a, k, None) is not None}


def run_spec(a: argparse.Namespace) -> grid.RunSpec:
    """The run spec of `train` options (``operations.specs.train_spec``)."""
    return train_spec(a.arch, a.init, a.setting, a.seed, a.profile, a.ratio, a.synthetic,
                      extra(a), **overrides(a))


def grid_run_specs(a: argparse.Namespace) -> list[grid.RunSpec]:
    """The checked run specs of `grid` options (``operations.specs.grid_specs``)."""
    return grid_specs(a.arch, a.init, a.setting, a.ratio, a.seeds, a.profile, a.synthetic,
                      extra(a), **overrides(a))


def add_init_files(p: argparse.ArgumentParser) -> None:
    p.add_argument("--imagenet-weights", metavar="PATH",
                   help=f"local timm checkpoint for init imagenet (default: look in {paths.weights_dir()})")
    p.add_argument("--chestmnist-checkpoint", metavar="PATH",
                   help="checkpoint made by `pretrain chestmnist` (default: the one for this "
                        "arch, input size and profile)")


def extra(a: argparse.Namespace) -> dict:
    out = {}
    if getattr(a, "imagenet_weights", None):
        out["imagenet_weights"] = str(Path(a.imagenet_weights).resolve())
    if getattr(a, "chestmnist_checkpoint", None):
        out["chestmnist_checkpoint"] = str(Path(a.chestmnist_checkpoint).resolve())
    return out


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:1")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def print_json(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


# ---- synthetic sets --------------------------------------------------------------------------

ALLOW_TEST_COPIES = ("keep the set even if it holds copies of real TEST images (refused "
                     "otherwise): its runs are flagged in the grid and left out of `claims`")


def add_generate_args(p: argparse.ArgumentParser) -> None:
    """Options of `synth generate` (and of a `generate` job)."""
    p.add_argument("--method", required=True, choices=list(catalog.GENERATOR_METHODS))
    p.add_argument("--profile", default="quick", choices=list(catalog.GENERATOR_PROFILES),
                   help="smoke = seconds (tests), quick = under ~45 min on a 2-core CPU, "
                        "paper = GPU")
    p.add_argument("--name", required=True, help="name of the new set")
    n = p.add_mutually_exclusive_group()
    n.add_argument("--count", type=int, help="images in all, split like the real train classes")
    n.add_argument("--per-class", type=int, help="images of each class")
    p.add_argument("--seed", type=int, default=0, help="training seed (and sampling seed)")
    p.add_argument("--sample-seed", type=int,
                   help="another sampling seed: more, different images from the same generator")
    p.add_argument("--epochs", type=int, help="override the profile's training epochs")
    p.add_argument("--checkpoint", type=Path, help="generator checkpoint file (default: "
                   "data/generators/METHOD-PROFILE-seedS.pt)")
    p.add_argument("--retrain", action="store_true", help="discard the checkpoint and train anew "
                   "(only a generator checkpoint synthmed wrote: any other file is refused)")
    p.add_argument("--force", action="store_true", help="replace a set of the same name")
    p.add_argument("--allow-test-copies", action="store_true", help=ALLOW_TEST_COPIES)
    add_device(p)


def generate_request(a: argparse.Namespace) -> GenerateRequest:
    """The request of `synth generate` options (and of a `generate` job)."""
    return GenerateRequest(
        a.method, a.profile, a.name, count=a.count, per_class=a.per_class, seed=a.seed,
        sample_seed=a.sample_seed, overrides={"epochs": a.epochs} if a.epochs is not None else None,
        retrain=a.retrain, force=a.force, allow_test_copies=a.allow_test_copies,
        checkpoint=str(Path(a.checkpoint).expanduser().resolve()) if a.checkpoint else None)


def add_quality_args(p: argparse.ArgumentParser) -> None:
    """Options of `synth quality` (and of a `quality` job)."""
    p.add_argument("--name", required=True, help="the set to measure (see `synth list`)")
    p.add_argument("--profile", default="quick", choices=list(catalog.GENERATOR_PROFILES),
                   help="size of the domain encoder and TSTR training")
    p.add_argument("--feature", default="auto", choices=["auto", "domain", "inception"],
                   help="feature space: auto = Inception when its weights are local, else domain")
    p.add_argument("--seed", type=int, default=0)
    add_device(p)
