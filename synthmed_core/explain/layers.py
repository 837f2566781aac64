"""Grad-CAM support: where to look in a model and how to turn ViT tokens into a map.

The arch registry (catalog.ARCHS, models.FAMILIES) names candidate layers, deepest first; this
module picks the deepest one whose map is at least 4x4 at the run's input size, because a 1x1 map
(timm's resnet50 layer4 at 28 px) gives a constant CAM that pytorch-grad-cam normalises to zeros.
"""
from __future__ import annotations

import math
import re
from contextlib import contextmanager
from functools import partial
from typing import Callable, Iterator

import torch
from torch import nn

from ..training.models import FAMILIES, IN_CHANS, ArchInfo, cam_candidates, get_arch

MIN_CAM_SIDE = 4  # a 1x1 map gives a constant CAM, which grad-cam normalises to all zeros

def _arch_of(model: nn.Module) -> ArchInfo:
    meta = getattr(model, "synthmed", None)
    return get_arch(meta["arch"] if meta else model.pretrained_cfg["architecture"])


def _resolve(model: nn.Module, path: str) -> nn.Module:
    obj = model
    for part in path.split("."):
        name, index = re.fullmatch(r"(\w+)(?:\[(-?\d+)\])?", part).groups()
        obj = getattr(obj, name)
        obj = obj[int(index)] if index is not None else obj
    return obj


@contextmanager
def _recording_shapes(layers: dict[str, nn.Module]) -> Iterator[dict[str, torch.Size]]:
    shapes: dict[str, torch.Size] = {}

    def record(name: str, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        shapes[name] = out.shape  # returning anything else would replace the layer's output

    hooks = [m.register_forward_hook(partial(record, n)) for n, m in layers.items()]
    try:
        yield shapes
    finally:  # hooks left behind would fire on every later forward
        for h in hooks:
            h.remove()


def _map_side(shape: torch.Size, num_prefix_tokens: int) -> int:
    if len(shape) == 4:
        return int(min(shape[-2], shape[-1]))
    return math.isqrt(int(shape[1]) - num_prefix_tokens)  # (B, tokens, C)


def cam_target_layer(model: nn.Module, input_size: int) -> tuple[nn.Module, str, int]:
    """The deepest Grad-CAM candidate layer whose map is at least 4x4 at ``input_size``, found by
    one dummy forward with shape hooks: returns (module, candidate name, map side). ResNet-50 at
    28 px gets ``layer2`` (4x4) instead of its 1x1 ``layer4``; ViTs get the last block's norm1
    and the token grid side. If no candidate reaches 4x4 the largest map is returned."""
    info = _arch_of(model)
    names = cam_candidates(info) or tuple(f["module"] for f in reversed(model.feature_info))
    layers = {n: _resolve(model, n) for n in names}
    param = next(model.parameters())
    x = torch.zeros(1, IN_CHANS, input_size, input_size, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()  # BatchNorm refuses a batch of one 1x1 map in train mode
    try:
        with _recording_shapes(layers) as shapes, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    sides = {n: _map_side(shapes[n], getattr(model, "num_prefix_tokens", 0)) for n in names}
    name = next((n for n in names if sides[n] >= MIN_CAM_SIDE), max(names, key=sides.get))
    return layers[name], name, sides[name]


def cam_reshape_transform(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """pytorch-grad-cam ``reshape_transform`` for this model: a token-to-map function bound to
    its number of class/distillation tokens for ViTs, None for convnets."""
    reshape = FAMILIES[_arch_of(model).family].token_reshape
    return partial(reshape, num_prefix_tokens=model.num_prefix_tokens) if reshape else None
