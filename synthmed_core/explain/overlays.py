"""What a CAM looks like on screen: the X-ray enlarged smoothly, the heat map over it at an
adjustable opacity, image and overlay side by side, and a panel of them as a PNG.

Numpy, PIL and OpenCV only (no torch): the pages draw with it and import it at no cost;
``explain`` computes the maps.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import SpecError

DISPLAY_SIZE = 224
DEFAULT_OPACITY = 0.45  # of the heat map over the X-ray: both stay visible
_FLAT = 1e-6  # pytorch-grad-cam scales each map to 0..1; a constant map comes back all zeros


@dataclass(frozen=True)
class CamResult:
    """One image's CAM under one model.

    ``overlay`` is RGB uint8 at the display size (default opacity), drawn on access; ``cam`` the 0..1 map at
    the model's input size, ``image`` what the model was given (``overlay`` redraws them at any
    opacity); ``layer`` and ``map_side`` the target layer and the side of its (square) map;
    ``target`` the class explained; ``constant`` is True when the map carries no information
    (pytorch-grad-cam then returns all zeros)."""

    cam: np.ndarray
    image: np.ndarray  # the uint8 image the model was given, before its own resizing
    layer: str
    map_side: int
    prob: float
    method: str
    target: str
    constant: bool
    display_size: int = DISPLAY_SIZE

    @property
    def overlay(self) -> np.ndarray:
        """Drawn when asked (the pages redraw at their opacity, benchmarks never draw)."""
        return overlay(self.image, self.cam, self.display_size)


def is_constant(cam: np.ndarray) -> bool:
    """True when a CAM carries no spatial information (flat, or not finite anywhere)."""
    cam = np.asarray(cam, dtype=np.float64)
    finite = cam[np.isfinite(cam)]
    return finite.size == 0 or float(finite.max() - finite.min()) < _FLAT


def upscaled(image: np.ndarray, size: int = DISPLAY_SIZE) -> np.ndarray:
    """A grayscale image enlarged smoothly (bicubic) to ``size`` px for display, as RGB uint8
    (the model saw it at its own input size; this is for eyes only)."""
    gray = Image.fromarray(np.asarray(image, np.uint8)).resize((size, size),
                                                               Image.Resampling.BICUBIC)
    return np.repeat(np.asarray(gray)[..., None], 3, axis=2)


def overlay(image: np.ndarray, cam: np.ndarray, size: int = DISPLAY_SIZE,
            opacity: float = DEFAULT_OPACITY) -> np.ndarray:
    """RGB uint8 ``size`` x ``size``: the image enlarged smoothly with the 0..1 ``cam`` as a
    heat map on top at ``opacity`` (0 = the X-ray alone, 1 = the heat map alone), coloured
    as pytorch-grad-cam colours it."""
    if not 0.0 <= opacity <= 1.0:
        raise SpecError(f"opacity must be between 0 and 1, got {opacity}")
    import cv2  # pytorch-grad-cam's own colouring (OpenCV's jet)
    rgb = upscaled(image, size).astype(np.float32)
    heat = Image.fromarray(np.asarray(cam, np.float32), mode="F").resize(
        (size, size), Image.Resampling.BILINEAR)
    jet = cv2.applyColorMap(np.uint8(255 * np.clip(np.asarray(heat), 0, 1)), cv2.COLORMAP_JET)
    jet = cv2.cvtColor(jet, cv2.COLOR_BGR2RGB).astype(np.float32)
    # Blended as is: show_cam_on_image rescales the blend to its maximum, which brightens the
    # X-ray and hides how dark it really is.
    return np.clip((1.0 - opacity) * rgb + opacity * jet, 0, 255).round().astype(np.uint8)


def beside(result: CamResult, opacity: float = DEFAULT_OPACITY, size: int = DISPLAY_SIZE,
           gap: int = 6) -> np.ndarray:
    """The image and its CAM overlay side by side (RGB uint8), a white gap between."""
    parts = [upscaled(result.image, size), np.full((size, gap, 3), 255, np.uint8),
             overlay(result.image, result.cam, size, opacity)]
    return np.concatenate(parts, axis=1)


def panel_png(rows: list[tuple[str, list[tuple[str, CamResult]]]],
              opacity: float = DEFAULT_OPACITY, size: int = 160) -> bytes:
    """A PNG of a CAM panel: one row per run (its label above), one image-and-overlay pair
    per picture (its title above), as the Grad-CAM page shows them."""
    from PIL import ImageDraw
    cols = max((len(r[1]) for r in rows), default=1)
    cell_w, title_h, pad = 2 * size + 6, 14, 10
    width = pad + cols * (cell_w + pad)
    height = pad + len(rows) * (2 * title_h + size + pad)
    canvas = Image.new("RGB", (width, max(height, 1)), "white")
    draw = ImageDraw.Draw(canvas)
    y = pad
    for label, cells in rows:
        draw.text((pad, y), label, fill="black")
        for c, (title, result) in enumerate(cells):
            x = pad + c * (cell_w + pad)
            draw.text((x, y + title_h), f"{title} · P(pneumonia) {result.prob:.3f}",
                      fill="black")
            canvas.paste(Image.fromarray(beside(result, opacity, size)), (x, y + 2 * title_h))
        y += 2 * title_h + size + pad
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
