"""Models: a registry of architectures and a registry of initialisations, both built on timm.

An *arch* entry says which timm model a short name means, how to size it for an input size,
and where Grad-CAM should look; any other timm model name gets a generic entry. An *init*
(`scratch`, `imagenet`, `chestmnist`) says where the starting weights come from. Inputs are
always grayscale (``in_chans=1``); preprocessing statistics come from the model's timm config.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import timm
import torch
from timm.models import clean_state_dict, get_pretrained_cfg, model_entrypoint
from torch import nn

from .. import paths
from ..catalog import ARCHS, ArchInfo, catalog_arch
from ..errors import ModelError, SpecError

IN_CHANS = 1  # grayscale X-rays: timm sums the RGB filters of pretrained first convs
MIN_VIT_GRID = 7  # deit at 28 px with patch 4 gives 7x7 tokens; a coarser grid loses the lungs


# --------------------------------------------------------------------------------------------
# Families: how a kind of network is sized and how its activations become a CAM map.


def vit_tokens_to_map(tokens: torch.Tensor, num_prefix_tokens: int = 1) -> torch.Tensor:
    """Turn ViT tokens (B, N, C) into a map (B, C, side, side) for Grad-CAM: drop the
    class/distillation tokens, then lay the patch tokens out on their square grid."""
    patches = tokens[:, num_prefix_tokens:, :]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"{patches.shape[1]} patch tokens do not form a square grid")
    return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


def vit_patch_size(input_size: int, default_patch: int = 16) -> int:
    """The largest of (default, 8, 4) that divides the input size and leaves a token grid of at
    least 7x7: 224 -> 16 (14x14), 64 -> 8 (8x8), 28 -> 4 (7x7)."""
    for patch in (p for p in (default_patch, 8, 4) if p <= default_patch):
        if input_size % patch == 0 and input_size // patch >= MIN_VIT_GRID:
            return patch
    raise ModelError(f"a ViT cannot tile a {input_size} px input into at least "
                     f"{MIN_VIT_GRID}x{MIN_VIT_GRID} patches; use an input size that is a "
                     f"multiple of 4 and at least {4 * MIN_VIT_GRID} (e.g. 28 or 224)")


@dataclass(frozen=True)
class Family:
    size_kwargs: Callable[["ArchInfo", int], dict]  # extra timm.create_model kwargs for a size
    cam_layers: tuple[str, ...]  # default Grad-CAM candidates, deepest first; () = feature_info
    token_reshape: Callable[..., torch.Tensor] | None  # tokens -> map, for pytorch-grad-cam


FAMILIES: dict[str, Family] = {
    "cnn": Family(lambda info, size: {}, (), None),
    "vit": Family(lambda info, size: {"img_size": size,
                                      "patch_size": vit_patch_size(size, info.default_patch)},
                  ("blocks[-1].norm1",), vit_tokens_to_map),
}
_VIT_MODULES = ("timm.models.vision_transformer", "timm.models.deit")


def cam_candidates(info: ArchInfo) -> tuple[str, ...]:
    """Grad-CAM candidate layers of an arch, deepest first: its own, else its family's."""
    return info.cam_layers or FAMILIES[info.family].cam_layers


def get_arch(name: str) -> ArchInfo:
    """The registry entry for a short name or a timm model name (``resnet50``, ``deit_tiny``,
    ``convnext_atto``, ``resnet50.tv_in1k``...). Raises SpecError with suggestions otherwise."""
    info = catalog_arch(name)
    if info is not None:
        return info
    base, _, tag = name.partition(".")
    if not timm.is_model(base) or (tag and not timm.list_pretrained(name)):
        text = base.lower().replace("-", "_")
        similar = timm.list_models(f"*{text}*")[:12]
        raise SpecError(f"unknown arch {name!r}. Known short names: {', '.join(ARCHS)}; any timm "
                        f"model name also works. timm names containing {text!r}: "
                        f"{', '.join(similar) or 'none'} (see timm.list_models('*{text}*')).")
    vit = model_entrypoint(base).__module__ in _VIT_MODULES
    patch = re.search(r"patch(\d+)", base)
    return ArchInfo(name, name, "vit" if vit else "cnn",
                    default_patch=int(patch.group(1)) if patch else 16)


# --------------------------------------------------------------------------------------------
# Inits: each returns (model, where its weights came from).


@dataclass(frozen=True)
class BuildRequest:
    arch: ArchInfo
    input_size: int
    num_classes: int
    imagenet_weights: str | None = None
    chestmnist_checkpoint: str | None = None

    @property
    def timm_kwargs(self) -> dict:
        family = FAMILIES[self.arch.family]
        return {"in_chans": IN_CHANS, **family.size_kwargs(self.arch, self.input_size)}


def _create(req: BuildRequest, num_classes: int | None = None, **kwargs) -> nn.Module:
    n, size_kwargs = req.num_classes if num_classes is None else num_classes, req.timm_kwargs
    try:
        return timm.create_model(req.arch.timm_name, num_classes=n, **size_kwargs, **kwargs)
    except Exception as e:  # timm raises plain exceptions for bad sizes/kwargs/files
        raise ModelError(f"timm cannot build {req.arch.timm_name} at {req.input_size} px "
                         f"({size_kwargs}): {e}") from e


def _init_scratch(req: BuildRequest) -> tuple[nn.Module, str | None]:
    return _create(req), None


def _weight_stems(timm_name: str) -> list[str]:
    cfg = get_pretrained_cfg(timm_name)  # its tag names the default weights, e.g. a1_in1k
    tagged = cfg and cfg.tag and "." not in timm_name
    return [f"{timm_name}.{cfg.tag}", timm_name] if tagged else [timm_name]


def imagenet_weight_files(timm_name: str) -> list[Path]:
    """Files in ``paths.weights_dir()`` that init ``imagenet`` accepts for a timm model, in the
    order they are tried: ``<name>[.<default tag>].(safetensors|pth|pt|bin)``, or a hub
    snapshot folder of that name holding ``model.safetensors`` / ``pytorch_model.bin``."""
    stems, root = _weight_stems(timm_name), paths.weights_dir()
    files = [root / f"{s}{ext}" for s in stems for ext in (".safetensors", ".pth", ".pt", ".bin")]
    return files + [root / s / f for s in stems for f in ("model.safetensors", "pytorch_model.bin")]


def _hub_cached_file(timm_name: str) -> Path | None:
    """A copy timm downloaded earlier (hub or torch-hub cache); never touches the network."""
    cfg = get_pretrained_cfg(timm_name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        for fname in filter(None, (cfg.hf_hub_filename, "model.safetensors", "pytorch_model.bin")):
            hit = try_to_load_from_cache(cfg.hf_hub_id, fname)
            if isinstance(hit, str):
                return Path(hit)
    if cfg.url:
        hit = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(cfg.url).path).name
        return hit if hit.is_file() else None
    return None


def _imagenet_source(req: BuildRequest) -> Path:
    name = req.arch.timm_name
    if req.imagenet_weights:
        path = Path(req.imagenet_weights).expanduser()
        if not path.is_file():
            raise ModelError(f"ImageNet weights file not found: {path}. Pass an existing "
                             f".safetensors/.pth/.bin state dict of timm model {name}.")
        return path
    found = next((p for p in imagenet_weight_files(name) if p.is_file()), None)
    found = found or _hub_cached_file(name)
    if found is None:
        names = " or ".join(f"{stem}.safetensors" for stem in _weight_stems(name))
        cfg = get_pretrained_cfg(name)
        repo = cfg.hf_hub_id if cfg else None
        hub = f"; e.g. model.safetensors of hub repo {repo}" if repo else ""
        raise ModelError(
            f"ImageNet weights for {name} are unavailable offline (synthmed never downloads; "
            f"SYNTHMED_OFFLINE={int(paths.offline())}): not in {paths.weights_dir()}, not in the "
            f"hub cache. Put {names} (.pth/.pt/.bin work too{hub}) in "
            f"{paths.weights_dir()} (SYNTHMED_WEIGHTS sets that folder), or pass "
            f"--imagenet-weights PATH. No silent scratch start.")
    return found


def _init_imagenet(req: BuildRequest) -> tuple[nn.Module, str | None]:
    path = _imagenet_source(req)
    cfg = get_pretrained_cfg(req.arch.timm_name)
    # Build with the checkpoint's own head size so timm loads strictly (it drops strictness when
    # it discards a head): any missing/unexpected key is an error, never a silent random init.
    # timm's loader still adapts the first conv to 1 channel and resamples ViT patch/pos embeds.
    try:
        model = _create(req, pretrained=True, pretrained_cfg_overlay={"file": str(path)},
                        num_classes=cfg.num_classes if cfg else 1000)
    except ModelError as e:
        raise ModelError(f"cannot load ImageNet weights from {path}: it must be a state dict of "
                         f"timm model {req.arch.timm_name}. timm says: {e.__cause__ or e}"[:1200]
                         ) from e
    model.reset_classifier(req.num_classes)
    return model, str(path)


def chestmnist_checkpoint_path(arch: str, input_size: int, profile: str) -> Path:
    """Where ``python -m synthmed_core pretrain chestmnist`` saves, and init ``chestmnist``
    looks for, the checkpoint of one arch, input size and profile."""
    name = f"chestmnist-{get_arch(arch).name}-{int(input_size)}-{profile}.pt"
    return paths.pretrained_dir() / name


def _chestmnist_source(req: BuildRequest) -> Path:
    hint = (f"run `python -m synthmed_core pretrain chestmnist --arch {req.arch.name} --profile P` "
            f"(it saves {chestmnist_checkpoint_path(req.arch.name, req.input_size, 'P')})")
    if req.chestmnist_checkpoint:
        path = Path(req.chestmnist_checkpoint).expanduser()
        if not path.is_file():
            raise ModelError(f"ChestMNIST checkpoint not found: {path}. To make it, {hint}.")
        return path
    pattern = chestmnist_checkpoint_path(req.arch.name, req.input_size, "*").name
    found = sorted(paths.pretrained_dir().glob(pattern))
    if len(found) != 1:
        what = "none" if not found else f"several ({', '.join(p.name for p in found)})"
        raise ModelError(f"init 'chestmnist' needs a pretraining checkpoint; found {what} matching "
                         f"{paths.pretrained_dir() / pattern}. Pass chestmnist_checkpoint="
                         f"chestmnist_checkpoint_path(arch, input_size, profile), or {hint}.")
    return found[0]


def _read_chestmnist(path: Path, req: BuildRequest) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelError(f"cannot read ChestMNIST checkpoint {path}: {e}. It must be a torch.save "
                         "dict of tensors and plain values ('spec' as a dict).") from e
    missing = {"arch", "input_size", "model"} - set(ckpt if isinstance(ckpt, dict) else ())
    if missing:
        raise ModelError(f"{path} is not a ChestMNIST checkpoint: missing keys {sorted(missing)}")
    got_timm = ckpt.get("timm_name") or getattr(ARCHS.get(ckpt["arch"]), "timm_name", ckpt["arch"])
    if (got_timm.partition(".")[0] != req.arch.timm_name.partition(".")[0]
            or int(ckpt["input_size"]) != req.input_size):
        raise ModelError(
            f"ChestMNIST checkpoint {path} was pretrained for arch {ckpt['arch']} ({got_timm}) at "
            f"input size {ckpt['input_size']}, but this run needs arch {req.arch.name} "
            f"({req.arch.timm_name}) at input size {req.input_size}. Pretrain a matching one: "
            f"`python -m synthmed_core pretrain chestmnist --arch {req.arch.name} --profile P`.")
    return ckpt


def _head_keys(model: nn.Module) -> set[str]:
    heads = model.get_classifier()
    heads = heads if isinstance(heads, tuple) else (heads,)
    names = {n for n, m in model.named_modules() if any(m is h for h in heads)}
    return {k for k in model.state_dict() if any(k.startswith(n + ".") for n in names)}


def _init_chestmnist(req: BuildRequest) -> tuple[nn.Module, str | None]:
    path = _chestmnist_source(req)
    state = clean_state_dict(_read_chestmnist(path, req)["model"])
    model = _create(req)
    head = _head_keys(model)  # the 14-finding head is replaced by a fresh num_classes one
    try:
        result = model.load_state_dict({k: v for k, v in state.items() if k not in head},
                                       strict=False)
    except RuntimeError as e:  # shape mismatches raise even when strict=False
        raise ModelError(f"ChestMNIST checkpoint {path} does not fit {req.arch.timm_name}: {e}"
                         [:1500]) from e
    missing = [k for k in result.missing_keys if k not in head]
    if missing or result.unexpected_keys:
        raise ModelError(f"ChestMNIST checkpoint {path} does not match {req.arch.timm_name}: "
                         f"missing {missing[:8]}, unexpected {result.unexpected_keys[:8]}")
    return model, str(path)


INITS: dict[str, Callable[[BuildRequest], tuple[nn.Module, str | None]]] = {
    "scratch": _init_scratch,
    "imagenet": _init_imagenet,
    "chestmnist": _init_chestmnist,
}


def build_model(arch: str, init: str, input_size: int, num_classes: int = 2,
                imagenet_weights: str | None = None,
                chestmnist_checkpoint: str | None = None) -> nn.Module:
    """Build a grayscale (1-channel) timm classifier for ``input_size`` px and initialise it.

    ``init`` is ``scratch`` (random), ``imagenet`` (timm weights from ``imagenet_weights``, a
    file in ``paths.weights_dir()`` or the hub cache; never downloaded, never silently skipped)
    or ``chestmnist`` (our pretraining checkpoint minus its head). The model carries
    ``model.synthmed``: arch, timm name, init, input size, patch size / token grid for ViTs,
    number of classes and the weights file used. Raises SpecError/ModelError with a fix.
    """
    info = get_arch(arch)
    if init not in INITS:
        raise SpecError(f"unknown init {init!r}; choose one of {list(INITS)}")
    if int(input_size) < 8 or int(num_classes) < 1:
        raise SpecError(f"input_size must be >= 8 and num_classes >= 1, got {input_size}, "
                        f"{num_classes}")
    req = BuildRequest(info, int(input_size), int(num_classes), imagenet_weights,
                       chestmnist_checkpoint)
    model, source = INITS[init](req)
    grid = getattr(getattr(model, "patch_embed", None), "grid_size", None)
    model.synthmed = {
        "arch": info.name, "timm_name": info.timm_name, "family": info.family, "init": init,
        "input_size": req.input_size, "in_chans": IN_CHANS, "num_classes": req.num_classes,
        "patch_size": req.timm_kwargs.get("patch_size"), "token_grid": grid[0] if grid else None,
        "weights": source,
    }
    return model


def model_input_stats(model: nn.Module) -> tuple[float, float]:
    """Grayscale (mean, std) for normalising inputs: the mean over RGB of the model's timm
    ``pretrained_cfg`` mean and std (the stats its weights, if any, were trained with)."""
    cfg = model.pretrained_cfg
    return (float(sum(cfg["mean"]) / len(cfg["mean"])), float(sum(cfg["std"]) / len(cfg["std"])))
