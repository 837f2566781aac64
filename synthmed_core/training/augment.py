"""Batched, on-device image augmentation: no per-sample Python in the hot loop."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, generator: torch.Generator, max_degrees: float = 10.0,
                  max_shift_px: float = 2.0, padding_mode: str = "zeros",
                  draws: Sequence[int] | None = None) -> torch.Tensor:
    """Rotate each image by U(-max_degrees, max_degrees) and shift it by U(-max_shift_px,
    max_shift_px) pixels on both axes, the whole batch in one ``grid_sample`` call.

    Args:
        x: float tensor B x C x H x W (any device); 
        generator: a torch.Generator on ``x.device`` — the only source of randomness, so the
            result is reproducible from its state.
        padding_mode: what fills the border: "zeros" or "border" (edge pixels extended).
        draws: sizes of consecutive sub-batches whose random numbers are drawn one call each,
            in order (default: one call for the whole batch). A chunk of several training
            batches augmented at once then gets exactly the numbers each batch would have
            got on its own.
    """
    b, _, h, w = x.shape
    sizes = list(draws) if draws is not None else [b]
    if sum(sizes) != b:
        raise ValueError(f"draws {sizes} do not add up to the batch of {b}")
    u = torch.cat([torch.rand(n, 3, generator=generator, device=x.device, dtype=torch.float32)
                   for n in sizes]) * 2 - 1
    angle = u[:, 0] * math.radians(max_degrees)
    # affine_grid works in normalised coordinates where the image spans [-1, 1].
    tx = u[:, 1] * (2 * max_shift_px / w)
    ty = u[:, 2] * (2 * max_shift_px / h)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)
