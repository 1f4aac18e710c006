"""Burned-in pixel text: OCR (tesseract), redaction, verification, quarantine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont

from clinical_mm.core.errors import ConfigurationError, QuarantinedError
from clinical_mm.deid.pixel_text import KnownTextRegions, PixelTextCleaner
from clinical_mm.synth.study_synthesizer import StudySynthesizer

TEXT = [((20, 40), "QXSMITH^JOHN  MRN 4471234", 16), ((20, 452), "03/04/1961 RIVERTON GEN", 14)]


def _study(tmp_path: Path, seed: int = 5) -> pydicom.Dataset:
    study = StudySynthesizer(seed).make_study(0, tmp_path)
    return pydicom.dcmread(tmp_path / study.path)


def _burn(ds: pydicom.Dataset) -> np.ndarray:
    """Burn TEXT in, brightest on a black box (as modalities do); return the mask of the text's area."""
    arr = ds.pixel_array.copy()
    img = Image.new("L", (arr.shape[1], arr.shape[0]), 0)
    draw = ImageDraw.Draw(img)
    area = np.zeros(arr.shape, bool)
    boxes = np.zeros(arr.shape, bool)
    for (x, y), text, size in TEXT:
        font = ImageFont.load_default(size=size)
        draw.text((x, y), text, fill=255, font=font)
        x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
        boxes[y0 - 4:y1 + 4, x0 - 4:x1 + 4] = True
        area[max(0, y0 - 12):y1 + 12, max(0, x0 - 12):x1 + 12] = True
    ink = np.asarray(img) > 0
    m1 = ds.PhotometricInterpretation == "MONOCHROME1"
    arr[boxes] = arr.max() if m1 else arr.min()
    arr[ink] = arr.min() if m1 else arr.max()
    ds.PixelData = arr.tobytes()
    ds.BurnedInAnnotation = "YES"
    return area


def _words(ds: pydicom.Dataset) -> list[tuple[int, int, int, int]]:
    cleaner = PixelTextCleaner()
    return cleaner.read_words(ds.pixel_array, ds)


def test_when_text_is_burned_in_then_it_is_redacted_verified_and_nothing_else_changes(tmp_path: Path) -> None:
    ds = _study(tmp_path)
    original = ds.pixel_array.copy()
    area = _burn(ds)
    burned = ds.pixel_array.copy()
    assert len(_words(ds)) >= 5, "the planted text must be readable before redaction"
    counts = PixelTextCleaner().clean(ds)
    after = ds.pixel_array
    assert counts["pixel:text-region"] >= 2 and counts["pixel:frame-verified"] == 1
    assert ds.BurnedInAnnotation == "NO"
    assert _words(ds) == []
    changed = after != burned
    assert changed.any() and not (changed & ~area).any(), "pixels outside the text boxes must not change"
    assert (after[changed] == burned.min()).all()  # filled with black as displayed
    assert np.array_equal(after[~area], original[~area])


def test_when_multi_frame_then_every_frame_is_read_and_only_the_burned_one_changes(tmp_path: Path) -> None:
    ds = _study(tmp_path)
    clean = ds.pixel_array.copy()
    area = _burn(ds)
    burned = ds.pixel_array.copy()
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([clean, burned]).tobytes()
    counts = PixelTextCleaner().clean(ds)
    frames = ds.pixel_array
    assert frames.shape == (2, *clean.shape) and counts["pixel:frame-verified"] == 2
    assert np.array_equal(frames[0], clean)
    changed = frames[1] != burned
    assert changed.any() and not (changed & ~area).any()


def test_when_pixels_are_compressed_then_they_are_decoded_redacted_and_written_uncompressed(tmp_path: Path) -> None:
    from pydicom.uid import ExplicitVRLittleEndian, RLELossless

    ds = _study(tmp_path)
    area = _burn(ds)
    burned = ds.pixel_array.copy()
    ds.compress(RLELossless)
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    PixelTextCleaner().clean(ds)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    after = ds.pixel_array
    changed = after != burned
    assert changed.any() and not (changed & ~area).any()
    assert _words(ds) == []


def test_when_monochrome1_then_boxes_are_filled_with_its_black(tmp_path: Path) -> None:
    for seed in range(5, 60):  # find a study from the MONOCHROME1 site
        ds = _study(tmp_path / str(seed), seed)
        if ds.PhotometricInterpretation == "MONOCHROME1":
            break
    else:
        pytest.fail("no MONOCHROME1 study")
    _burn(ds)
    before = ds.pixel_array.copy()
    PixelTextCleaner().clean(ds)
    changed = ds.pixel_array != before
    assert changed.any() and (ds.pixel_array[changed] == before.max()).all()
    assert _words(ds) == []


@pytest.mark.parametrize("seed", range(5, 17))
def test_when_no_text_and_annotation_unknown_then_verified_and_unchanged(tmp_path: Path, seed: int) -> None:
    """Anatomy is not text: at the default confidence no radiograph without text loses a pixel."""
    ds = _study(tmp_path, seed)
    del ds.BurnedInAnnotation
    before = ds.pixel_array.copy()
    counts = PixelTextCleaner().clean(ds)
    assert counts["pixel:frame-verified"] == 1 and counts["pixel:text-region"] == 0
    assert np.array_equal(ds.pixel_array, before) and ds.BurnedInAnnotation == "NO"


def test_when_device_has_known_text_regions_then_they_are_redacted(tmp_path: Path) -> None:
    ds = _study(tmp_path)
    cfg = tmp_path / "regions.json"
    cfg.write_text(f'[{{"manufacturer": "{ds.Manufacturer}", "model": "{ds.ManufacturerModelName}", '
                   '"regions": [[0.0, 0.0, 0.25, 0.1]]}]')
    before = ds.pixel_array.copy()
    counts = PixelTextCleaner(KnownTextRegions.from_json(cfg)).clean(ds)  # BurnedInAnnotation NO: regions still apply
    h, w = before.shape
    assert counts["pixel:region"] == 1
    region = ds.pixel_array[: int(np.ceil(0.1 * h)), : int(np.ceil(0.25 * w))]
    assert (region == before.min()).all()
    assert np.array_equal(ds.pixel_array[int(np.ceil(0.1 * h)):], before[int(np.ceil(0.1 * h)):])
    cfg.write_text('[{"manufacturer": "A", "model": "B", "regions": [[0.5, 0.0, 0.2, 0.1]]}]')
    with pytest.raises(ConfigurationError, match="fractions"):
        KnownTextRegions.from_json(cfg)


def test_when_file_cannot_be_verified_then_quarantined(tmp_path: Path) -> None:
    ds = _study(tmp_path)
    ds.BurnedInAnnotation = "YES"
    with pytest.raises(QuarantinedError, match="tesseract"):
        PixelTextCleaner(tesseract="no-such-ocr-program").clean(ds)
    ds.PixelData = ds.PixelData[:100]  # truncated pixel data
    with pytest.raises(QuarantinedError, match="cannot be decoded"):
        PixelTextCleaner().clean(ds)


def test_when_a_study_is_deidentified_for_the_model_then_its_pixels_carry_no_legible_text(tmp_path: Path) -> None:
    """The PHI boundary type: what `analyze` hands the model has been through OCR and redaction."""
    from clinical_mm.core.config import PseudonymKey
    from clinical_mm.deid import DicomDeidentifier

    ds = _study(tmp_path)
    _burn(ds)
    study = DicomDeidentifier(PseudonymKey(b"\x07" * 32)).deidentify_study([ds])
    image = study.instances[0]
    assert image.BurnedInAnnotation == "NO" and _words(image) == []
    assert study.receipt.action_counts["pixel:text-region"] >= 2


def test_when_dataset_has_no_transfer_syntax_then_it_is_quarantined_not_crashed(tmp_path: Path) -> None:
    """Pixels that cannot be decoded (here: no file meta, so no transfer syntax) cannot be verified."""
    ds = _study(tmp_path)
    _burn(ds)
    del ds.file_meta
    with pytest.raises(QuarantinedError, match="cannot be decoded"):
        PixelTextCleaner().clean(ds)


def test_when_a_float_image_carries_burned_in_text_then_it_is_read_redacted_and_stays_float(tmp_path: Path) -> None:
    # Float Pixel Data was never read: a name burned into it stayed legible and BurnedInAnnotation YES
    ds = _study(tmp_path)
    area = _burn(ds)
    pixels = ds.pixel_array.astype("<f4") / 7.0  # float values, not integers
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32
    ds.FloatPixelData = pixels.tobytes()
    assert _words(ds)  # legible before
    counts = PixelTextCleaner().clean(ds)
    assert counts["pixel:text-region"] >= 1 and ds.BurnedInAnnotation == "NO"
    assert "PixelData" not in ds and len(ds.FloatPixelData) == pixels.size * 4
    assert _words(ds) == []
    assert np.array_equal(ds.pixel_array[~area], pixels[~area])  # nothing outside the text changed


def test_when_a_1_bit_image_is_cleaned_then_it_is_written_back_packed_and_unchanged() -> None:
    # 1-bit pixels were written back one byte a pixel (230,400 bytes where 28,800 belong)
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("liver_1frame.dcm"))
    before, size = ds.pixel_array.copy(), len(ds.PixelData)
    ds.pop("BurnedInAnnotation", None)  # unknown: cleaned and written back (YES with no text found is quarantined)
    PixelTextCleaner().clean(ds)
    assert len(ds.PixelData) == size
    ds2 = pydicom.dcmread(_saved(ds))
    assert np.array_equal(ds2.pixel_array, before)


def test_when_a_big_endian_colour_by_plane_file_is_cleaned_then_it_stays_big_endian_and_unchanged() -> None:
    # the redacted pixels were written little endian into a big endian file, which then could not be saved
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("ExplVR_BigEnd.dcm"))
    before = ds.pixel_array.copy()
    assert not ds.file_meta.TransferSyntaxUID.is_little_endian and ds.PlanarConfiguration == 1
    PixelTextCleaner().clean(ds)
    ds2 = pydicom.dcmread(_saved(ds))
    assert not ds2.file_meta.TransferSyntaxUID.is_little_endian
    assert np.array_equal(ds2.pixel_array, before) and ds2.BurnedInAnnotation == "NO"



@pytest.mark.parametrize("how", ["ocr always", "annotation absent"])
def test_when_an_odd_sized_big_endian_image_is_cleaned_then_it_still_decodes_to_the_same_shape(how: str) -> None:
    # 3 x 3 RGB, 8 bits: 27 bytes of pixels, padded to 28 in the file (PS3.5 8.1.1); written back unpadded, the
    # cleaned file could not be decoded ("buffer size must be a multiple of element size")
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("SC_rgb_small_odd_big_endian.dcm"))
    before = ds.pixel_array.copy()
    assert len(ds.PixelData) % 2 == 0 and before.size % 2 == 1
    ds.pop("BurnedInAnnotation", None)
    PixelTextCleaner(ocr="always" if how == "ocr always" else "auto").clean(ds)
    assert len(ds.PixelData) % 2 == 0
    ds2 = pydicom.dcmread(_saved(ds))
    assert not ds2.file_meta.TransferSyntaxUID.is_little_endian
    assert ds2.pixel_array.shape == before.shape and np.array_equal(ds2.pixel_array, before)

def _saved(ds: pydicom.Dataset) -> pydicom.filebase.DicomBytesIO:
    buffer = pydicom.filebase.DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return buffer


def _plain(ds: pydicom.Dataset) -> pydicom.Dataset:
    """``ds`` as a dataset with no read encoding of its own (so that pydicom writes it in any byte order)."""
    out = pydicom.Dataset()
    out.update(ds)
    out.file_meta = ds.file_meta
    out.preamble = b"\0" * 128
    return out


def _file(ds: pydicom.Dataset, path: Path) -> None:
    buffer = pydicom.filebase.DicomBytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    path.write_bytes(buffer.getvalue())


def _burned_float(tmp_path: Path) -> pydicom.Dataset:
    ds = _study(tmp_path, seed=6)
    _burn(ds)
    pixels = ds.pixel_array.astype("<f4") / 7.0
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32
    ds.FloatPixelData = pixels.tobytes()
    return ds


def _burned_one_bit(tmp_path: Path) -> pydicom.Dataset:
    from pydicom.pixels import pack_bits

    ds = _study(tmp_path, seed=7)
    area = _burn(ds)
    ink = ds.pixel_array == ds.pixel_array.max()
    bits = np.zeros(ink.shape, np.uint8)
    bits[area] = ink[area]  # white text on black, as a 1-bit overlay-like image carries it
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 1, 1, 0, 0
    for keyword in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.PixelData = pack_bits(bits)
    return ds


def _burned_big_endian(tmp_path: Path) -> pydicom.Dataset:
    from pydicom.uid import ExplicitVRBigEndian

    ds = _study(tmp_path, seed=8)
    _burn(ds)
    pixels = ds.pixel_array
    ds = _plain(ds)
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.PixelData = pixels.astype(">u2").tobytes()
    return ds


def test_when_float_1_bit_and_big_endian_images_carry_burned_in_text_then_deid_dicom_leaves_none_legible(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from clinical_mm.cli import cli

    src = tmp_path / "src"
    src.mkdir()
    for name, make in (("float", _burned_float), ("one-bit", _burned_one_bit), ("big-endian", _burned_big_endian)):
        ds = make(tmp_path / name)
        assert _words(ds), name  # legible before
        _file(_plain(ds) if name != "big-endian" else ds, src / f"{name}.dcm")
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["deid", "dicom", str(src), str(tmp_path / "dst")])
    assert result.exit_code == 0 and "quarantined" not in result.output, result.output
    written = [pydicom.dcmread(f) for f in (tmp_path / "dst").rglob("*.dcm")]
    assert sorted(int(ds.BitsAllocated) for ds in written) == [1, 16, 32]
    for ds in written:  # each in its own encoding, decodable, marked and verified clean
        assert ds.BurnedInAnnotation == "NO"
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        assert _words(ds) == []
    big = next(ds for ds in written if ds.BitsAllocated == 16)
    assert not big.file_meta.TransferSyntaxUID.is_little_endian
