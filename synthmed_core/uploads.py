"""Decode an uploaded file (PNG, JPEG or DICOM) into the 8-bit grayscale image a run expects.

``decode_upload`` turns bytes into a uint8 H x W array at the file's own resolution, or raises
:class:`UploadError` with a message a user can act on: an empty file, something that is not an
image, a truncated image, a decompression bomb, a DICOM without pixel data. Colour, alpha and
16-bit images are converted the way the importer converts them (``synth.importer.to_gray``:
alpha over black, high bit depth scaled by its own range). ``to_dataset_image`` then makes the
28x28 image MedMNIST would have made (centre square, bicubic); each run's own preprocessing
resizes that to its input size exactly as in training.
"""
from __future__ import annotations

import io
import warnings
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import SynthmedError
from .synth.importer import SIZE, preprocess, to_gray

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# A 4k x 4k DICOM is 16 Mpx; anything above this is refused from its header, before decoding.
MAX_PIXELS = 40_000_000
FORMATS = "PNG, JPEG or DICOM"
_DICOM_MAGIC_OFFSET = 128  # "DICM" follows a 128-byte preamble in a DICOM Part 10 file


class UploadError(SynthmedError):
    """An uploaded file that cannot be used as an image; the message says why and what to do."""


def decode_upload(name: str, data: bytes) -> np.ndarray:
    """Decode an uploaded file into a uint8 H x W grayscale array (the file's own resolution).

    DICOM is recognised by its ``DICM`` marker or a ``.dcm``/``.dicom`` name; everything else
    goes to PIL (PNG, JPEG and the other formats it reads). Raises UploadError for an empty,
    oversized, unrecognised, truncated or bomb-sized file and a DICOM without pixel data.
    """
    if not data:
        raise UploadError(f"{name} is empty (0 bytes): upload a {FORMATS} image.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{name} is {len(data) / 2**20:.0f} MiB; the limit is "
                          f"{MAX_UPLOAD_BYTES // 2**20} MiB.")
    decoder = _decoder_for(name, data)
    return decoder(name, data)


def to_dataset_image(gray: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The ``size`` x ``size`` uint8 image MedMNIST would make of ``gray``: centre square of
    the short side, PIL bicubic (the importer's preprocessing). Runs resize it further to
    their input size with their own preprocessing, as in training."""
    return preprocess(Image.fromarray(np.asarray(gray, dtype=np.uint8), mode="L"), size)


# ---- decoders: (name, bytes) -> uint8 H x W ---------------------------------------------------


def _is_dicom(name: str, data: bytes) -> bool:
    magic = data[_DICOM_MAGIC_OFFSET:_DICOM_MAGIC_OFFSET + 4] == b"DICM"
    return magic or name.lower().endswith((".dcm", ".dicom"))


def _decoder_for(name: str, data: bytes) -> Callable[[str, bytes], np.ndarray]:
    return _decode_dicom if _is_dicom(name, data) else _decode_pil


def _check_pixels(name: str, width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise UploadError(f"{name} claims {width} x {height} pixels ({width * height / 1e6:.0f} "
                          f"Mpx), above the {MAX_PIXELS / 1e6:.0f} Mpx limit: refused as a "
                          "possible decompression bomb. Downscale it first.")
    if width < 1 or height < 1:
        raise UploadError(f"{name} has no pixels ({width} x {height}).")


def _decode_pil(name: str, data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        # PIL only warns between MAX_IMAGE_PIXELS and twice that: treat the warning as a bomb.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                _check_pixels(name, *img.size)  # from the header: nothing decoded yet
                img.load()
                gray = to_gray(ImageOps.exif_transpose(img))
        except UploadError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UploadError(f"{name} was refused as a decompression bomb: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise UploadError(f"{name} is not an image PIL can read: upload a {FORMATS} "
                              "file.") from exc
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            # PIL reports a cut-off file as OSError("image file is truncated ...") or a broken
            # PNG/JPEG stream as SyntaxError/ValueError, depending on where the data ends.
            raise UploadError(f"{name} is truncated or corrupt ({type(exc).__name__}: {exc}); "
                              "upload the complete file.") from exc
    return np.asarray(gray, dtype=np.uint8)


def _decode_dicom(name: str, data: bytes) -> np.ndarray:
    import pydicom  # heavy; only DICOM uploads need it
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise UploadError(f"{name} is not a readable DICOM file ({type(exc).__name__}: "
                          f"{exc}).") from exc
    if "PixelData" not in ds:
        raise UploadError(f"{name} is a DICOM file without pixel data (e.g. a structured "
                          "report or a header-only file): upload an image DICOM.")
    _check_pixels(name, int(ds.get("Columns", 0)), int(ds.get("Rows", 0)))
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom raises many types: missing codec, short data, bad tags
        raise UploadError(f"{name}: the DICOM pixel data cannot be decoded ({type(exc).__name__}"
                          f": {exc}). It may be truncated or use a compression this "
                          "installation cannot decode; export it as PNG.") from exc
    return _dicom_to_gray(ds, pixels, apply_modality_lut)


def _dicom_to_gray(ds, pixels: np.ndarray, modality_lut) -> np.ndarray:
    samples = int(ds.get("SamplesPerPixel", 1))
    frame = pixels[0] if pixels.ndim == (4 if samples > 1 else 3) else pixels  # first frame
    if samples > 1:  # colour DICOM: let PIL do the luminance conversion
        return np.asarray(Image.fromarray(np.asarray(frame, np.uint8)).convert("L"))
    values = np.asarray(modality_lut(frame, ds), dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":  # 0 = white: invert to X-ray look
        scaled = 255.0 - scaled
    return np.rint(scaled).astype(np.uint8)
