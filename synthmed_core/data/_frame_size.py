"""The size a compressed DICOM frame will decode to, read from its codec's own header before
anything is decoded: a DICOM header's Rows x Columns binds nothing, the codec decodes whatever
size its stream declares (a 64 x 64 header can hold a 13000 x 13000 JPEG).

One reader per codec family, looked up by transfer syntax: JPEG (baseline, extended, lossless)
and JPEG-LS from the start-of-frame marker, JPEG 2000 from the SIZ marker. RLE needs none: its
decoder fills the header's Rows x Columns and no more.
"""
from __future__ import annotations

import struct
from typing import Callable

from pydicom.uid import (JPEG2000TransferSyntaxes, JPEGLSTransferSyntaxes,
                         JPEGTransferSyntaxes, RLETransferSyntaxes)

# Start-of-frame markers: SOF0-3, 5-7, 9-11, 13-15 (JPEG) and SOF55 (JPEG-LS). C4, C8 and CC
# are DHT, JPG and DAC, not frames.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                  0xCF, 0xF7})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field
_SOS, _SOI = 0xDA, 0xD8
_J2K_SIZ = b"\xff\x4f\xff\x51"  # SOC then SIZ: the start of a JPEG 2000 codestream
_SEARCH = 4096  # bytes of a JP2 wrapper searched for the codestream


class FrameSizeError(ValueError):
    """The frame's stream declares no readable size; the message says what was wrong."""


def jpeg_size(frame: bytes) -> tuple[int, int, int]:
    """(width, height, components) from a JPEG or JPEG-LS stream's start-of-frame marker."""
    if frame[:2] != b"\xff\xd8":
        raise FrameSizeError("the frame does not start with a JPEG start-of-image marker")
    i = 2
    while i + 4 <= len(frame):
        if frame[i] != 0xFF:
            raise FrameSizeError(f"no JPEG marker at byte {i} before the start of frame")
        marker = frame[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE or marker == _SOI:
            i += 2
            continue
        if marker == _SOS:
            break
        (length,) = struct.unpack(">H", frame[i + 2:i + 4])
        if marker in _SOF:
            if i + 10 > len(frame):
                break
            height, width = struct.unpack(">HH", frame[i + 5:i + 9])
            if height == 0:  # the height would come later, in a DNL marker
                raise FrameSizeError("the JPEG frame leaves its height to a later DNL marker")
            return width, height, frame[i + 9]
        i += 2 + length
    raise FrameSizeError("no JPEG start-of-frame marker before the image data")


def j2k_size(frame: bytes) -> tuple[int, int, int]:
    """(width, height, components) from a JPEG 2000 codestream's SIZ marker."""
    at = frame.find(_J2K_SIZ, 0, _SEARCH)
    if at < 0 or at + 42 > len(frame):
        raise FrameSizeError("no JPEG 2000 SIZ marker at the start of the frame")
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", frame[at + 8:at + 24])
    (components,) = struct.unpack(">H", frame[at + 40:at + 42])
    if xsiz <= xosiz or ysiz <= yosiz:
        raise FrameSizeError(f"the JPEG 2000 SIZ marker declares an empty image ({xsiz} x "
                             f"{ysiz} from {xosiz}, {yosiz})")
    return xsiz - xosiz, ysiz - yosiz, components


def _none(frame: bytes) -> None:
    return None


Reader = Callable[[bytes], "tuple[int, int, int] | None"]
READERS: dict[str, Reader] = {
    **{str(uid): jpeg_size for uid in (*JPEGTransferSyntaxes, *JPEGLSTransferSyntaxes)},
    **{str(uid): j2k_size for uid in JPEG2000TransferSyntaxes},
    **{str(uid): _none for uid in RLETransferSyntaxes},
}


def frame_size(syntax: str, frame: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) a compressed frame of transfer syntax ``syntax`` decodes
    to, or None where its decoder is bound by the DICOM header (RLE). FrameSizeError when the
    stream declares no readable size or the syntax has no reader here."""
    reader = READERS.get(str(syntax))
    if reader is None:
        raise FrameSizeError(f"synthmed cannot size a frame of transfer syntax {syntax} "
                             "before decoding it")
    return reader(frame)
