"""One image file's pixels the way MedMNIST made its own: grayscale, centre square, 28 px
bicubic. Shared by the synthetic-set importer, the uploads of the Predict page and the resizing
of a synthetic set of another size for training."""
from __future__ import annotations

import numpy as np
from PIL import Image

SIZE = 28
# MedMNIST v2 describes its resize as cubic interpolation; PIL's BICUBIC is the closest PIL
# filter (and it antialiases when shrinking, which large X-rays need).
RESAMPLE = Image.Resampling.BICUBIC
PREPROCESSING = {
    "orientation": "EXIF orientation applied (ImageOps.exif_transpose)",
    "grayscale": "alpha composited onto black; 16-bit/32-bit scaled by the image's own min-max; "
                 "then PIL convert('L')",
    "crop": "centre square of the short side",
    "resize": f"{SIZE}x{SIZE}, PIL BICUBIC",
}
_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


def preprocess(img: Image.Image, size: int = SIZE) -> np.ndarray:
    """Grayscale, centre-crop to the short side, resize to ``size`` (see PREPROCESSING)."""
    gray = to_gray(img)
    w, h = gray.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    square = gray.crop((left, top, left + s, top + s))
    return np.asarray(square.resize((size, size), RESAMPLE), dtype=np.uint8)


def to_gray(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit 'L': transparency over black, high bit depth by own min-max."""
    if img.mode in _HIGH_DEPTH_MODES:
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("L")
    return img.convert("L")
