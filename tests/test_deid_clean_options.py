"""The PS3.15 clean options: descriptors, structured content and graphics are cleaned, not dropped."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits
from pydicom.sequence import Sequence

from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.deid.confidentiality_profile import Option
from clinical_mm.deid.pixel_text import PixelTextCleaner
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.pipeline.text_deidentification import allowed_terms
from clinical_mm.synth.study_synthesizer import StudySynthesizer

KEY = PseudonymKey(b"\x2c" * 32)
PLANTED = ["PATEL", "Mary", "Jones", "4471234", "617-555-0143", "Alvarez", "SMITH", "JOHN", "07/22/2031", "7/22/2031"]
CLEAN = [Option.CLEAN_DESCRIPTORS, Option.CLEAN_STRUCTURED_CONTENT, Option.CLEAN_GRAPHICS]


def _overlay() -> np.ndarray:
    img = Image.new("L", (256, 256), 0)
    draw = ImageDraw.Draw(img)
    draw.text((10, 10), "SMITH JOHN 4471234", fill=255, font=ImageFont.load_default(size=16))
    draw.rectangle((100, 150, 200, 220), outline=255, width=3)  # an arrow-box a radiologist drew
    return (np.asarray(img) > 0).astype(np.uint8)


def _planted(tmp_path: Path) -> pydicom.Dataset:
    study = StudySynthesizer(5).make_study(0, tmp_path)
    ds = pydicom.dcmread(tmp_path / study.path)
    ds.StudyDescription = "CHEST PA - DR PATEL ORDERED 07/22/2031"
    ds.ImageComments = "Portable film for Mary Jones, MRN 4471234, call 617-555-0143"
    text_item, name_item = Dataset(), Dataset()
    text_item.ValueType, text_item.TextValue = "TEXT", "Discussed with Dr. Alvarez on 7/22/2031"
    name_item.ValueType, name_item.PersonName = "PNAME", "Jones^Mary"
    ds.ContentSequence = Sequence([text_item, name_item])
    text_obj, graphic = Dataset(), Dataset()
    text_obj.UnformattedTextValue = "Mary Jones 4471234"
    graphic.GraphicType, graphic.NumberOfGraphicPoints, graphic.GraphicData = "POLYLINE", 2, [1.0, 1.0, 20.0, 20.0]
    annotation = Dataset()
    annotation.GraphicLayer = "LAYER1"
    annotation.TextObjectSequence = Sequence([text_obj])
    annotation.GraphicObjectSequence = Sequence([graphic])
    ds.GraphicAnnotationSequence = Sequence([annotation])
    bits = _overlay()
    for elem, vr, value in [(0x0010, "US", 256), (0x0011, "US", 256), (0x0040, "CS", "G"), (0x0050, "SS", [1, 1]),
                            (0x0100, "US", 1), (0x0102, "US", 0), (0x3000, "OW", pack_bits(bits))]:
        ds.add_new(0x60000000 | elem, vr, value)
    return ds


def test_when_clean_options_are_on_then_text_is_cleaned_in_place_and_overlays_are_verified(tmp_path: Path) -> None:
    ds = _planted(tmp_path)
    patient = str(ds.PatientID)
    out, counts = DicomDeidentifier(KEY, CLEAN, allowed_terms=allowed_terms()).deidentify(ds)
    # descriptors: kept, cleaned by the text de-identifier
    assert out.StudyDescription.startswith("CHEST PA") and "PATEL" not in out.StudyDescription
    assert "Portable film" in out.ImageComments and "MRN" in out.ImageComments
    # structured content: text items cleaned, the date shifted by the patient's keyed offset
    shift = dt.timedelta(days=Pseudonymizer(KEY).date_shift_days(patient))
    shifted = (dt.datetime(2031, 7, 22) + shift).strftime("%m/%d/%Y").lstrip("0").replace("/0", "/")
    text_value = out.ContentSequence[0].TextValue
    assert text_value.startswith("Discussed with Dr. ") and "Alvarez" not in text_value
    assert any(d in text_value for d in (shifted, (dt.datetime(2031, 7, 22) + shift).strftime("%m/%d/%Y")))
    # graphics: annotation text cleaned, graphic data kept; overlay words cleared, drawing kept
    annotation = out.GraphicAnnotationSequence[0]
    assert "Jones" not in annotation.TextObjectSequence[0].UnformattedTextValue
    assert list(annotation.GraphicObjectSequence[0].GraphicData) == [1.0, 1.0, 20.0, 20.0]
    after, before = out.overlay_array(0x6000), _overlay()
    assert after[:40].sum() == 0 and before[:40].sum() > 0
    assert (after[100:] == before[100:]).all()
    assert PixelTextCleaner().read_words(after, Dataset()) == []
    assert counts["C:text"] >= 4 and counts["C:overlay-verified"] == 1 and counts["C:sequence"] >= 2
    written = tmp_path / "out.dcm"
    out.save_as(written, enforce_file_format=True)
    data = written.read_bytes()
    for value in PLANTED:
        assert value.encode() not in data, value


def test_when_clean_options_are_off_then_the_same_attributes_are_removed(tmp_path: Path) -> None:
    out, counts = DicomDeidentifier(KEY).deidentify(_planted(tmp_path))
    assert "StudyDescription" not in out and "ImageComments" not in out
    assert (0x6000, 0x3000) not in out
    assert "UnformattedTextValue" not in out.GraphicAnnotationSequence[0].TextObjectSequence[0]
    assert "C:text" not in counts


def test_when_overlay_cannot_be_verified_then_it_is_removed_and_the_file_goes_on(tmp_path: Path) -> None:
    ds = _planted(tmp_path)
    ds[0x60003000].value = b"\x00\x01"  # far too short for 256 x 256 bits
    out, counts = DicomDeidentifier(KEY, CLEAN, allowed_terms=allowed_terms()).deidentify(ds)
    assert (0x6000, 0x3000) not in out and counts["C:overlay-removed"] == 1


@pytest.mark.parametrize("flags", [[], ["--clean-descriptors", "--clean-structured-content", "--clean-graphics"]],
                         ids=["no clean options", "clean options"])
def test_when_deid_dicom_cli_runs_with_clean_options_then_no_planted_value_reaches_the_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "study").mkdir(parents=True)
    _planted(tmp_path / "gen").save_as(src / "study" / "1.dcm", enforce_file_format=True)
    key = tmp_path / "key"
    key.write_text("2c" * 32)
    result = CliRunner().invoke(cli, ["deid", "dicom", str(src), str(dst), "--key-file", str(key), *flags])
    assert result.exit_code == 0, result.output
    files = list(dst.rglob("*.dcm"))
    assert len(files) == 1
    data = files[0].read_bytes()
    for value in PLANTED:
        assert value.encode() not in data, value
    receipt = json.loads(next(dst.glob("*/receipt.json")).read_text())
    assert ("C:text" in receipt["action_counts"]) == bool(flags)
    out = pydicom.dcmread(files[0])
    assert ("StudyDescription" in out) == bool(flags)
