"""Light edits that leave an image a copy: what the copy guard (``copies``) must see through.

Each family is a function (PIL image at the enlarged size, random generator) -> PIL image,
applied the way a person with an image editor would: the 28 px image is enlarged first (to
56-224 px, bicubic), edited there, saved as PNG or JPEG and read back through the importer's
own preprocessing (``importer.preprocess``: centre square, bicubic to 28 px). ``edited_copy``
makes one; ``scripts/bench_copies.py`` and the tests draw them from the real test split.
"""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from .importer import preprocess

Edit = Callable[[Image.Image, np.random.Generator], Image.Image]
MAX_ROTATION = 5.0  # degrees
MAX_SHIFT = 2.0  # pixels of the 28 px image
_SIZES = (56, 112, 224)


def _rotate(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    angle = rng.uniform(1.0, MAX_ROTATION) * rng.choice((-1, 1))
    return img.rotate(angle, resample=Image.Resampling.BICUBIC)  # corners filled black


def _shift(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    scale = img.size[0] / 28
    dx, dy = (rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * scale).round()
    return img.transform(img.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy),
                         resample=Image.Resampling.BICUBIC)


def _brightness(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(1 + rng.uniform(0.05, 0.15) * rng.choice((-1, 1)))


def _contrast(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageEnhance.Contrast(img).enhance(1 + rng.uniform(0.1, 0.25) * rng.choice((-1, 1)))


def _flip(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(img)


def _jpeg(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(50, 91)))
    return Image.open(buf)


def _resize(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    return img  # the enlargement every edited copy gets, and the importer's reduction, alone


def _case_10(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Issue 27's case 10: enlarged, rotated a few degrees, ~10% brighter or darker, JPEG."""
    img = img.rotate(rng.uniform(2.0, 4.0) * rng.choice((-1, 1)),
                     resample=Image.Resampling.BICUBIC)
    img = ImageEnhance.Brightness(img).enhance(1 + 0.1 * rng.choice((-1, 1)))
    return _jpeg(img, rng)


def _all(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    for edit in (_rotate, _shift, _brightness, _contrast):
        img = edit(img, rng)
    if rng.random() < 0.5:
        img = _flip(img, rng)
    return _jpeg(img, rng)


EDITS: dict[str, Edit] = {
    "resize": _resize, "rotate": _rotate, "shift": _shift, "brightness": _brightness,
    "contrast": _contrast, "flip": _flip, "jpeg": _jpeg, "case_10": _case_10, "all": _all,
}
DESCRIPTION = (f"each enlarged to 56-224 px (bicubic) and read back at 28 px as the importer "
               f"does; resize: that alone; rotate: 1-{MAX_ROTATION:g} degrees either way; "
               f"shift: up to {MAX_SHIFT:g} px each axis; brightness: +-5-15%; contrast: "
               "+-10-25%; flip: left-right mirror; jpeg: quality 50-90; case_10: rotated 2-4 "
               "degrees, 10% brighter or darker, JPEG; all: rotate, shift, brightness, contrast, "
               "a flip half the time and JPEG together")


def edited_copy(image: np.ndarray, family: str, rng: np.random.Generator) -> np.ndarray:
    """The 28 px uint8 image the importer would make of ``image`` after edit ``family``."""
    size = int(rng.choice(_SIZES))
    big = Image.fromarray(np.asarray(image, np.uint8)).resize((size, size),
                                                              Image.Resampling.BICUBIC)
    return preprocess(EDITS[family](big, rng))
