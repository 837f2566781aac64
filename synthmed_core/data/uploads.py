"""Decode an uploaded file (PNG, JPEG or DICOM) into the 8-bit grayscale image a run expects.

``decode_upload`` turns bytes into a uint8 H x W array at the file's own resolution, or raises
:class:`UploadError` with a message a user can act on: an empty file, something that is not an
image, a truncated image, a decompression bomb, a DICOM without pixel data. A file's size is
read from its header before anything is decoded: a DICOM's rows x columns x frames x samples
must fit ``MAX_PIXELS``, a Deflated-transfer-syntax DICOM is refused before pydicom would
inflate it whole, a compressed (JPEG, JPEG-LS, JPEG 2000) frame must declare in its own stream
the size the header does, read before decoding (``_frame_size``), PIL's decompression-bomb
warning is an error on every path, and only the first frame of a multi-frame file is decoded
(``read_upload`` says how many it held). Colour, alpha and
16-bit images are converted the way the importer converts them (``synth.importer.to_gray``:
alpha over black, high bit depth scaled by its own range). ``to_dataset_image`` then makes the
28x28 image MedMNIST would have made (centre square, bicubic); each run's own preprocessing
resizes that to its input size exactly as in training.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import SynthmedError
from ..synth.importer import SIZE, preprocess, to_gray

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
# A 4k x 4k DICOM is 16 Mpx; a file declaring more pixel values than this (all its frames and
# samples counted) is refused from its header, before decoding.
MAX_PIXELS = 40_000_000
FORMATS = "PNG, JPEG or DICOM"
_DICOM_MAGIC_OFFSET = 128  # "DICM" follows a 128-byte preamble in a DICOM Part 10 file
_DEFLATED = "1.2.840.10008.1.2.1.99"  # Deflated Explicit VR Little Endian


class UploadError(SynthmedError):
    """An uploaded file that cannot be used as an image; the message says why and what to do."""


@dataclass(frozen=True)
class Upload:
    """A decoded upload: the uint8 H x W image of its first frame, and how many frames the
    file held (only the first is ever decoded)."""

    image: np.ndarray
    frames: int = 1

    @property
    def note(self) -> str:
        """What a user should know about the decoding ('' when nothing)."""
        return f"only the first of its {self.frames} frames is used" if self.frames > 1 else ""


def read_upload(name: str, data: bytes) -> Upload:
    """Decode an uploaded file into a uint8 H x W grayscale image (the file's own resolution)
    and its frame count.

    DICOM is recognised by its ``DICM`` marker or a ``.dcm``/``.dicom`` name; everything else
    goes to PIL (PNG, JPEG and the other formats it reads). Raises UploadError for an empty,
    oversized, unrecognised, truncated or bomb-sized file, a deflated DICOM and a DICOM
    without pixel data.
    """
    if not data:
        raise UploadError(f"{name} is empty (0 bytes): upload a {FORMATS} image.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{name} is {len(data) / 2**20:.0f} MiB; the limit is "
                          f"{MAX_UPLOAD_BYTES // 2**20} MiB.")
    decoder = _decoder_for(name, data)
    return decoder(name, data)


def decode_upload(name: str, data: bytes) -> np.ndarray:
    """The uint8 H x W grayscale image of an uploaded file (``read_upload(...).image``)."""
    return read_upload(name, data).image


def to_dataset_image(gray: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The ``size`` x ``size`` uint8 image MedMNIST would make of ``gray``: centre square of
    the short side, PIL bicubic (the importer's preprocessing). Runs resize it further to
    their input size with their own preprocessing, as in training."""
    return preprocess(Image.fromarray(np.asarray(gray, dtype=np.uint8), mode="L"), size)


# ---- decoders: (name, bytes) -> uint8 H x W ---------------------------------------------------


def _is_dicom(name: str, data: bytes) -> bool:
    magic = data[_DICOM_MAGIC_OFFSET:_DICOM_MAGIC_OFFSET + 4] == b"DICM"
    return magic or name.lower().endswith((".dcm", ".dicom"))


def _decoder_for(name: str, data: bytes) -> Callable[[str, bytes], Upload]:
    return _decode_dicom if _is_dicom(name, data) else _decode_pil


def _check_pixels(name: str, width: int, height: int, frames: int = 1, samples: int = 1) -> None:
    total = width * height * frames * samples
    if total > MAX_PIXELS:
        size = f"{width} x {height} pixels" + (f" x {frames} frames" if frames > 1 else "") + (
            f" x {samples} samples" if samples > 1 else "")
        raise UploadError(f"{name} claims {size} ({total:,} pixel values), above the "
                          f"{MAX_PIXELS:,} limit: refused as a possible decompression bomb. "
                          "Downscale it first" + (", or export one frame." if frames > 1 else "."))
    if width < 1 or height < 1:
        raise UploadError(f"{name} has no pixels ({width} x {height}).")


def _decode_pil(name: str, data: bytes) -> np.ndarray:
    with warnings.catch_warnings():
        # PIL only warns between MAX_IMAGE_PIXELS and twice that: treat the warning as a bomb.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as img:
                _check_pixels(name, *img.size)  # from the header: nothing decoded yet
                img.load()  # the first frame of an animated or multi-page file only
                gray = to_gray(ImageOps.exif_transpose(img))
                frames = int(getattr(img, "n_frames", 1))
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
    return Upload(np.asarray(gray, dtype=np.uint8), frames)


def _decode_dicom(name: str, data: bytes) -> Upload:
    import pydicom  # heavy; only DICOM uploads need it
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, pixel_array

    _refuse_deflated(name, data)
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise UploadError(f"{name} is not a readable DICOM file ({type(exc).__name__}: "
                          f"{exc}).") from exc
    if "PixelData" not in ds:
        raise UploadError(f"{name} is a DICOM file without pixel data (e.g. a structured "
                          "report or a header-only file): upload an image DICOM.")
    frames, samples = (_header_count(name, ds, key) for key in ("NumberOfFrames",
                                                                 "SamplesPerPixel"))
    columns, rows = _header_count(name, ds, "Columns", 0), _header_count(name, ds, "Rows", 0)
    _check_pixels(name, columns, rows, frames, samples)
    _check_compressed_frame(name, ds, columns, rows, frames, samples)
    with warnings.catch_warnings():
        # pydicom decodes JPEG and JPEG 2000 with PIL, which only warns below twice its
        # MAX_IMAGE_PIXELS: a bomb here as on the PNG/JPEG path.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            pixels = pixel_array(ds, index=0)  # the first frame only, whatever the file holds
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise UploadError(f"{name} was refused as a decompression bomb: {exc}") from exc
        except Exception as exc:  # pydicom raises many types: missing codec, short data, tags
            raise UploadError(f"{name}: the DICOM pixel data cannot be decoded ("
                              f"{type(exc).__name__}: {exc}). It may be truncated or use a "
                              "compression this installation cannot decode; export it as "
                              "PNG.") from exc
    if pixels.shape[:2] != (rows, columns):  # a codec without a readable size (RLE) lied
        raise UploadError(f"{name}: its frame decoded to {pixels.shape[1]} x {pixels.shape[0]}"
                          f" pixels, but its header says {columns} x {rows}.")
    return Upload(_dicom_to_gray(ds, pixels, apply_modality_lut), frames)


def _check_compressed_frame(name: str, ds, columns: int, rows: int, frames: int,
                            samples: int) -> None:
    """UploadError unless the first compressed frame's own stream declares the size the DICOM
    header does, read before decoding (``_frame_size``): a codec decodes what its stream
    declares, whatever Rows x Columns say."""
    from pydicom.encaps import get_frame

    from ._frame_size import FrameSizeError, frame_size

    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if syntax is None or not syntax.is_compressed:
        return
    try:
        size = frame_size(syntax, get_frame(ds.PixelData, 0, number_of_frames=frames))
    except FrameSizeError as exc:
        raise UploadError(f"{name}: {exc}; a compressed frame whose size cannot be read before "
                          "decoding is refused. Export it as PNG.") from exc
    except Exception as exc:  # pydicom's fragment parser: a damaged encapsulation
        raise UploadError(f"{name}: its compressed pixel data cannot be split into frames "
                          f"({type(exc).__name__}: {exc}).") from exc
    if size is None:
        return
    width, height, components = size
    _check_pixels(name, width, height, 1, components)
    if (width, height, components) != (columns, rows, samples):
        raise UploadError(
            f"{name}: its compressed frame holds {width} x {height} pixels x {components} "
            f"samples, but its DICOM header says {columns} x {rows} x {samples}: refused "
            "before decoding, as a file whose pixels are not what it declares (a possible "
            "decompression bomb).")


def _refuse_deflated(name: str, data: bytes) -> None:
    """UploadError for a Deflated-transfer-syntax file, read from its file meta only: dcmread
    inflates the whole dataset in memory before anything could check its size."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    fp = io.BytesIO(data)
    try:
        read_preamble(fp, True)
        # pydicom has no public reader of the meta group from a file object; dcmread calls
        # this same function first, so a file it cannot parse fails dcmread too.
        syntax = _read_file_meta_info(fp).get("TransferSyntaxUID")
    except Exception:  # no readable meta group: dcmread will say so
        return
    if syntax == _DEFLATED:
        raise UploadError(f"{name} uses the Deflated transfer syntax, which synthmed does not "
                          "read: a few hundred KB of it can inflate to gigabytes before its "
                          "size is known. Export it uncompressed, or as PNG.")


def _header_count(name: str, ds, key: str, default: int = 1) -> int:
    try:
        value = int(ds.get(key, default))
    except (TypeError, ValueError) as exc:
        raise UploadError(f"{name}: the DICOM header's {key} is not a number "
                          f"({ds.get(key)!r}).") from exc
    if value < 0 or (key in ("NumberOfFrames", "SamplesPerPixel") and value < 1):
        raise UploadError(f"{name}: the DICOM header declares {key} = {value}.")
    return value


def _dicom_to_gray(ds, frame: np.ndarray, modality_lut) -> np.ndarray:
    if int(ds.get("SamplesPerPixel", 1)) > 1:  # colour DICOM: let PIL do the luminance
        return np.asarray(Image.fromarray(np.asarray(frame, np.uint8)).convert("L"))
    values = np.asarray(modality_lut(frame, ds), dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    if ds.get("PhotometricInterpretation") == "MONOCHROME1":  # 0 = white: invert to X-ray look
        scaled = 255.0 - scaled
    return np.rint(scaled).astype(np.uint8)
