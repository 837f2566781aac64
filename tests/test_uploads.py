"""decode_upload: every kind of good file becomes the right 8-bit grayscale image, every kind of
bad file an UploadError that says what is wrong. Files are made by the tests (PIL, pydicom)."""
from __future__ import annotations

import io
import struct
import tracemalloc
import zlib

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian,
                         SecondaryCaptureImageStorage, generate_uid)

from synthmed_core.data import uploads
from synthmed_core.data.uploads import (MAX_PIXELS, UploadError, decode_upload, read_upload,
                                        to_dataset_image)
from synthmed_core.errors import SynthmedError


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def gradient(h: int = 40, w: int = 60) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 251).astype(np.uint8)


def dicom_bytes(pixels: np.ndarray | None, photometric: str = "MONOCHROME2",
                slope: float = 1.0, intercept: float = 0.0,
                syntax: str = ExplicitVRLittleEndian) -> bytes:
    """A DICOM file of 16-bit ``pixels``: rows x columns, or frames x rows x columns."""
    ds = new_dataset(syntax)
    ds.Modality, ds.PatientName = "CR", "Test^Upload"
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if pixels.ndim == 3:
            ds.NumberOfFrames = len(pixels)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    return saved(ds)


def new_dataset(syntax: str) -> Dataset:
    """An empty secondary-capture dataset with its file meta, in transfer syntax ``syntax``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    return ds


def saved(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def deflated_dicom_bomb(frames: int = 3, rows: int = 2000, cols: int = 2000) -> bytes:
    """A Deflated-transfer-syntax DICOM declaring ``frames`` 8-bit frames of zeros, each under
    MAX_PIXELS: a few KB that inflate to frames x rows x cols bytes. Streamed through zlib, so
    the test never holds it inflated."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, cols, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    n = frames * rows * cols
    body.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, n))  # PixelData header
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zipped = [comp.compress(body.getvalue())]
    zeros = bytes(1 << 20)
    zipped += [comp.compress(zeros[:min(len(zeros), n - i)]) for i in range(0, n, len(zeros))]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    head.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    return head.getvalue() + b"".join(zipped) + comp.flush()


def png_bomb(side: int = 30_000) -> bytes:
    """A valid 1-bit PNG of side x side pixels (900 Mpx) that is only ~100 KB of zeros."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" * (1 + side // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row * 1000) for _ in range(side // 1000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ---- good files -------------------------------------------------------------------------------


def test_a_grayscale_png_decodes_to_its_exact_pixels():
    pixels = gradient()
    out = decode_upload("x.png", encode(Image.fromarray(pixels)))
    assert out.dtype == np.uint8 and np.array_equal(out, pixels)


def test_a_jpeg_decodes_to_grayscale_close_to_its_pixels():
    pixels = np.full((32, 48), 120, np.uint8)
    out = decode_upload("x.jpg", encode(Image.fromarray(pixels), "JPEG"))
    assert out.shape == (32, 48) and np.abs(out.astype(int) - 120).max() <= 2


def test_an_rgb_image_becomes_its_luminance():
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 200  # pure red: L = 0.299 * 200
    out = decode_upload("red.png", encode(Image.fromarray(rgb)))
    assert out.shape == (10, 10) and set(np.unique(out)) == {round(0.299 * 200)}


def test_an_rgba_image_is_composited_onto_black():
    rgba = np.full((10, 10, 4), 255, np.uint8)
    rgba[:5, :, 3] = 0  # transparent top half
    out = decode_upload("alpha.png", encode(Image.fromarray(rgba)))
    assert (out[:5] == 0).all() and (out[5:] == 255).all()


def test_a_16_bit_image_is_scaled_to_8_bit_by_its_own_range():
    pixels = np.linspace(1000, 3000, 64 * 64).reshape(64, 64).astype(np.uint16)
    out = decode_upload("deep.png", encode(Image.fromarray(pixels)))
    assert out.min() == 0 and out.max() == 255
    expected = np.rint((pixels - 1000.0) * 255.0 / 2000.0).astype(np.uint8)
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_a_dicom_is_rescaled_by_its_range_and_monochrome1_is_inverted():
    pixels = (np.arange(20 * 30).reshape(20, 30) * 4).astype(np.uint16)
    normal = decode_upload("scan", dicom_bytes(pixels, slope=2.0, intercept=-100.0))
    assert normal[0, 0] == 0 and normal[-1, -1] == 255
    assert np.all(np.diff(normal.reshape(-1).astype(int)) >= 0)  # order kept
    inverted = decode_upload("scan.dcm", dicom_bytes(pixels, "MONOCHROME1"))
    assert np.abs(inverted.astype(int) - (255 - normal.astype(int))).max() <= 1


def test_to_dataset_image_takes_the_centre_square_at_28_px():
    pixels = np.zeros((100, 300), np.uint8)
    pixels[:, 100:200] = 255  # the centre square is white, the sides black
    out = to_dataset_image(pixels)
    assert out.shape == (28, 28) and out.min() >= 250


# ---- bad files: each a clear UploadError ------------------------------------------------------

BAD = {
    "empty": ("empty.png", lambda: b"", "empty (0 bytes)"),
    "not an image": ("notes.png", lambda: b"patient notes, not pixels\n" * 20, "not an image"),
    "truncated png": ("cut.png", lambda: encode(Image.fromarray(gradient(200, 200)))[:400],
                      "truncated or corrupt"),
    "truncated jpeg": ("cut.jpg", lambda: encode(Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)), "JPEG")[:2000],
        "truncated or corrupt"),
    "decompression bomb": ("bomb.png", png_bomb, "decompression bomb"),
    "dicom without pixel data": ("report.dcm", lambda: dicom_bytes(None), "without pixel data"),
    "dicom with cut pixel data": ("cut.dcm", lambda: dicom_bytes(gradient().astype(np.uint16))[:-500],
                                  "cannot be decoded"),
    "deflated dicom": ("zipped.dcm",
                       lambda: dicom_bytes(gradient(), syntax=DeflatedExplicitVRLittleEndian),
                       "Deflated"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_file_raises_an_upload_error_that_names_the_problem(kind):
    name, make, words = BAD[kind]
    with pytest.raises(UploadError) as info:
        decode_upload(name, make())
    assert words in str(info.value) and name in str(info.value)
    assert isinstance(info.value, SynthmedError)  # the pages catch SynthmedError


def test_an_image_above_our_pixel_limit_is_refused_from_its_header_before_pil_would():
    side = 7_000  # 49 Mpx: under PIL's own bomb limit (~89 Mpx), over ours
    data = png_bomb(side)
    assert len(data) < 1_000_000 and MAX_PIXELS < side * side < Image.MAX_IMAGE_PIXELS
    with Image.open(io.BytesIO(data)) as img:  # PIL alone would accept and decode it
        assert img.size == (side, side)
    with pytest.raises(UploadError, match="decompression bomb"):
        decode_upload("big.png", data)


def test_a_good_file_decodes_after_bad_ones():
    for name, make, _ in BAD.values():
        with pytest.raises(UploadError):
            decode_upload(name, make())
    assert decode_upload("ok.png", encode(Image.fromarray(gradient()))).shape == (40, 60)


def test_pydicom_reads_what_the_test_writes():
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(gradient().astype(np.uint16))))
    assert ds.pixel_array.shape == (40, 60)


# ---- DICOM: sized from its header, never inflated, one frame decoded -------------------------


def peak_bytes(fn):
    """(result or exception, the peak of Python and numpy allocations while ``fn`` ran)."""
    tracemalloc.start()
    try:
        out = fn()
    except Exception as exc:  # returned, so the peak is read either way
        out = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, peak


def test_a_deflated_dicom_bomb_is_refused_before_it_is_inflated():
    data = deflated_dicom_bomb()  # 3 frames of 2000 x 2000, each under the limit: 12 MB inflated
    assert len(data) < 100_000
    out, peak = peak_bytes(lambda: decode_upload("bomb.dcm", data))
    assert isinstance(out, UploadError) and "Deflated" in str(out)
    assert peak < 2_000_000


@pytest.mark.parametrize("frames, samples", [(3, 1), (1, 3)])
def test_a_dicom_is_sized_by_rows_columns_frames_and_samples_before_decoding(monkeypatch, frames,
                                                                             samples):
    monkeypatch.setattr(uploads, "MAX_PIXELS", 1000)
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes(gradient(20, 20))))  # 400 px a frame
    ds.NumberOfFrames, ds.SamplesPerPixel = frames, samples
    if samples > 1:
        ds.PhotometricInterpretation, ds.PlanarConfiguration = "RGB", 0
    ds.PixelData = bytes(2 * 400 * frames * samples)
    buf = io.BytesIO()
    ds.save_as(buf)
    with pytest.raises(UploadError, match="decompression bomb") as info:
        decode_upload("many.dcm", buf.getvalue())
    assert "1,200 pixel values" in str(info.value)


def test_only_the_first_frame_of_a_multi_frame_dicom_is_decoded():
    frames = np.stack([gradient(256, 256).astype(np.uint16) * (k + 1) for k in range(64)])
    frames[0] = 4000 - frames[0]  # frame 0 differs in more than scale from the others
    data = dicom_bytes(frames)  # 8 MB of pixel data, 128 KB a frame
    image, peak = peak_bytes(lambda: decode_upload("cine.dcm", data))
    assert np.array_equal(image, decode_upload("one.dcm", dicom_bytes(frames[0])))
    assert peak < 1.5 * len(data)  # the file's bytes and one frame, not a copy of all 64


def test_a_multi_frame_upload_says_that_only_its_first_frame_is_used():
    upload = read_upload("cine.dcm", dicom_bytes(np.stack([gradient()] * 3)))
    assert upload.frames == 3 and "first of its 3 frames" in upload.note
    assert upload.image.shape == gradient().shape


def test_a_single_frame_upload_has_no_note():
    for name, data in (("x.png", encode(Image.fromarray(gradient()))),
                       ("x.dcm", dicom_bytes(gradient()))):
        upload = read_upload(name, data)
        assert upload.frames == 1 and upload.note == ""


# ---- compressed DICOM: the frame's own size, read before decoding (issue 27 case 9) -----------


def jpeg_dicom(frame: Image.Image, rows: int, cols: int) -> bytes:
    """A JPEG-baseline DICOM whose header says ``rows`` x ``cols`` and whose one encapsulated
    frame is ``frame`` saved as JPEG, whatever its size."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit
    ds = new_dataset(JPEGBaseline8Bit)
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([encode(frame, "JPEG")])
    ds["PixelData"].VR = "OB"
    return saved(ds)


def test_a_jpeg_dicom_whose_frame_matches_its_header_is_decoded():
    ramp = np.tile(np.linspace(0, 255, 64), (48, 1)).astype(np.uint8)  # smooth: little JPEG loss
    image = decode_upload("ok.dcm", jpeg_dicom(Image.fromarray(ramp), 48, 64))
    assert image.shape == (48, 64)
    assert np.abs(image.astype(int) - ramp).mean() < 3


def test_case_9_a_jpeg_dicom_holding_a_frame_larger_than_its_header_is_refused_undecoded(
        monkeypatch):
    data = jpeg_dicom(Image.new("L", (3000, 3000), 128), 64, 64)  # flat: tiny compressed
    assert len(data) < 200_000
    import pydicom.pixels

    def never(*args, **kwargs):
        raise AssertionError("the frame was decoded")

    monkeypatch.setattr(pydicom.pixels, "pixel_array", never)
    out, peak = peak_bytes(lambda: decode_upload("bomb.dcm", data))
    assert isinstance(out, UploadError), out
    assert "3000 x 3000 pixels" in str(out) and "header says 64 x 64" in str(out)
    assert peak < 5 * len(data)  # the file's bytes, not 9 MB of pixels


def test_a_jpeg_dicom_frame_above_the_cap_is_refused_from_its_stream(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_PIXELS", 1000)
    data = jpeg_dicom(Image.new("L", (300, 300), 90), 10, 10)  # the header is within the cap
    with pytest.raises(UploadError, match="90,000 pixel values.*decompression bomb"):
        decode_upload("big.dcm", data)


def test_a_compressed_frame_without_a_readable_size_is_refused():
    data = jpeg_dicom(Image.new("L", (64, 64), 90), 64, 64)
    start = data.index(b"\xff\xd8\xff")
    broken = data[:start] + b"\x00\x00" + data[start + 2:]  # no start-of-image marker
    with pytest.raises(UploadError, match="start-of-image marker.*refused"):
        decode_upload("broken.dcm", broken)


def test_pils_decompression_bomb_warning_is_an_error_on_the_dicom_path(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)  # 200 x 200 = 40,000: PIL only warns
    data = jpeg_dicom(Image.fromarray(gradient(200, 200)), 200, 200)
    with pytest.raises(UploadError, match="decompression bomb"):
        decode_upload("warned.dcm", data)
