"""A corpus of hostile DICOM files made from pydicom's test files and one synthetic chest study: the originals
(odd transfer syntaxes and pixel formats), truncations, seeded byte flips, attribute mutations and a
decompression bomb. Deterministic: the same seed makes the same bytes."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.uid import RLELossless, generate_uid

#: pydicom's files: big and little endian, RLE, JPEG, JPEG 2000, JPEG-LS, deflate, 1-bit, multi-frame, RGB,
#: YBR, planar colour, odd sizes, a dose grid, a truncated file
SOURCES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "ExplVR_BigEnd.dcm",
           "liver_1frame.dcm", "emri_small.dcm", "SC_rgb_small_odd.dcm", "SC_ybr_full_422_uncompressed.dcm",
           "SC_rgb_rle.dcm", "JPEG-lossy.dcm", "rtdose.dcm", "US1_UNCR.dcm", "MR_small_jpeg_ls_lossless.dcm",
           "image_dfl.dcm", "MR_truncated.dcm", "emri_small_big_endian.dcm")
#: header attributes set to values a standard reader does not expect
MUTATIONS: tuple[tuple[str, object], ...] = (
    ("Rows", 0), ("Columns", 65535), ("BitsAllocated", 7), ("BitsStored", 40), ("SamplesPerPixel", 4),
    ("NumberOfFrames", "100000"), ("PhotometricInterpretation", "PALETTE COLOR"), ("PixelRepresentation", 5),
    ("WindowWidth", "0"), ("RescaleSlope", "1e308"), ("PlanarConfiguration", 7), ("Modality", "CR"),
)


def _encode(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def _renamed(ds: Dataset) -> Dataset:
    """The dataset as a study of its own (so that one file's refusal is one study's)."""
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    if getattr(ds, "file_meta", None) is not None:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def _bomb(chest: Dataset) -> bytes:
    ds = _renamed(copy.deepcopy(chest))
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows = ds.Columns = 32768
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + bytes(56)
    ds.PixelData = encapsulate([header + bytes([0x81, 0]) * 16])
    return _encode(ds)


def build(chest: Path, out: Path, seed: int = 18) -> list[Path]:
    """Write the corpus to ``out`` (one file per study); the valid chest study is not among them."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    valid = pydicom.dcmread(chest)
    written: dict[str, bytes] = {}
    for name in SOURCES:
        data = Path(get_testdata_file(name, download=False)).read_bytes()
        written[f"orig-{name}"] = data
        for fraction in (0.3, 0.9):
            written[f"trunc{int(fraction * 100)}-{name}"] = data[: int(len(data) * fraction)]
        flipped = bytearray(data)
        for _ in range(8):
            flipped[rng.randrange(132, len(flipped))] ^= 1 << rng.randrange(8)
        written[f"flip-{name}"] = bytes(flipped)
    chest_bytes = chest.read_bytes()
    for keyword, value in MUTATIONS:
        ds = _renamed(copy.deepcopy(valid))
        setattr(ds, keyword, value)
        try:
            written[f"mut-{keyword}.dcm"] = _encode(ds)
        except (ValueError, TypeError, OverflowError):  # a value pydicom will not write is no test case
            continue
    written["trunc-chest.dcm"] = chest_bytes[: len(chest_bytes) // 2]
    written["bomb-rle-32768.dcm"] = _bomb(valid)
    paths = []
    for name, data in written.items():
        path = out / (name if name.endswith(".dcm") else f"{name}.dcm")
        path.write_bytes(data)
        paths.append(path)
    return paths
