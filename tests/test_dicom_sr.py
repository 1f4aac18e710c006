"""The draft as a DICOM Comprehensive SR: parsed by dcmtk's dsrdump, preliminary and AI-generated, in the
original study with the study's instances as evidence, the same UIDs for the same draft; and the PACS
destination setting."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest

from clinical_mm.connectors.dimse_client import DicomDestination
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.outputs.dicom_sr import COMPREHENSIVE_SR, build_report_sr
from clinical_mm.synth.study_synthesizer import SynthStudy


def _sr(original: pydicom.Dataset, sha: str = "ab" * 32) -> pydicom.Dataset:
    return build_report_sr(original, [original], findings="Small right pleural effusion.",
                           impression="Right effusion.", flags={"effusion": 0.81, "pneumothorax": 0.04},
                           thresholds={"effusion": 0.5, "pneumothorax": 0.3}, raised=["effusion"], priority="urgent",
                           model_id="clinical-mm-cxr@1.2", model_sha256=sha,
                           now=dt.datetime(2031, 7, 22, 10, 30, tzinfo=dt.UTC))


def _content(ds: pydicom.Dataset) -> list[tuple[str, str, str]]:
    """(relationship, value type, concept meaning) of every content item, depth first."""
    out = []
    for item in ds.get("ContentSequence", []):
        concept = item.get("ConceptNameCodeSequence")
        out.append((item.RelationshipType, item.ValueType, concept[0].CodeMeaning if concept else ""))
        out += _content(item)
    return out


def test_when_a_draft_becomes_an_sr_then_it_is_valid_preliminary_and_in_the_original_study(
        synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path) -> None:
    root, studies = synth_dir
    original = pydicom.dcmread(root / studies[0].files[0], stop_before_pixels=True)
    sr = _sr(original)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    back = pydicom.dcmread(path)
    assert back.SOPClassUID == COMPREHENSIVE_SR and back.Modality == "SR"
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyInstanceUID", "AccessionNumber"):
        assert back[keyword].value == original[keyword].value
    assert (back.PreliminaryFlag, back.VerificationFlag, back.CompletionFlag) == ("PRELIMINARY", "UNVERIFIED", "COMPLETE")
    assert back.SeriesInstanceUID != original.SeriesInstanceUID and back.SOPInstanceUID.startswith("2.25.")
    ref = back.CurrentRequestedProcedureEvidenceSequence[0]
    assert ref.StudyInstanceUID == original.StudyInstanceUID
    assert ref.ReferencedSeriesSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    items = _content(back)
    assert ("HAS OBS CONTEXT", "CODE", "Observer Type") in items and ("CONTAINS", "TEXT", "Impression") in items
    assert ("CONTAINS", "NUM", "AI probability: effusion") in items
    assert ("CONTAINS", "CODE", "AI triage priority") in items
    texts = [i.TextValue for i in back.ContentSequence if i.ValueType == "TEXT"]
    assert texts == ["clinical-mm-cxr@1.2", "AI-generated preliminary draft; not final until signed by a radiologist."]

    # the same draft gives the same instance (a PACS stores it once); another model another one
    assert _sr(original).SOPInstanceUID == sr.SOPInstanceUID
    assert _sr(original, sha="cd" * 32).SOPInstanceUID != sr.SOPInstanceUID
    with pytest.raises(ValueError, match="priority"):
        build_report_sr(original, [original], findings="", impression="", flags={}, thresholds={}, raised=[],
                        priority="whenever", model_id="m@1", model_sha256="ab")

    if shutil.which("dsrdump") is None:
        pytest.skip("dcmtk (dsrdump) is installed by make test")
    dumped = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True)
    assert dumped.returncode == 0 and "E:" not in dumped.stderr, dumped.stderr
    assert "Comprehensive SR Document" in dumped.stdout and "PRELIMINARY" in dumped.stdout


@pytest.mark.parametrize(("text", "expected"), [
    ("ORTHANC@127.0.0.1:4242", DicomDestination("ORTHANC", "127.0.0.1", 4242)),
    ("PACS_MAIN@pacs.example.org:104", DicomDestination("PACS_MAIN", "pacs.example.org", 104)),
    ("ORTHANC@[::1]:4242", DicomDestination("ORTHANC", "::1", 4242)),
])
def test_when_a_pacs_destination_is_written_then_it_is_parsed(text: str, expected: DicomDestination) -> None:
    assert DicomDestination.parse(text) == expected


@pytest.mark.parametrize("text", ["127.0.0.1:4242", "ORTHANC@127.0.0.1", "ORTHANC@127.0.0.1:port",
                                  "AN_AE_TITLE_TOO_LONG@h:1", "@h:1"])
def test_when_a_pacs_destination_is_malformed_then_a_configuration_error_says_the_form(text: str) -> None:
    with pytest.raises(ConfigurationError, match="AET@host:port"):
        DicomDestination.parse(text)


def test_when_a_raised_flag_has_a_region_then_the_sr_holds_it_as_an_image_region_of_the_image(
        synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path) -> None:
    root, studies = synth_dir
    original = pydicom.dcmread(root / studies[0].files[0], stop_before_pixels=True)
    regions = {"effusion": {"peak": [30.0, 70.0], "boxes": [[10.0, 55.0, 45.0, 85.0]],
                            "pixel_peak": [150, 360], "pixel_boxes": [[51, 282, 230, 435], [300, 290, 420, 430]]},
               "pneumothorax": {"peak": [1.0, 1.0], "boxes": [[0.0, 0.0, 2.0, 2.0]],
                                "pixel_peak": [5, 5], "pixel_boxes": [[0, 0, 10, 10]]}}  # not raised: not written
    sr = build_report_sr(original, [original], findings="Effusion.", impression="Effusion.",
                         flags={"effusion": 0.81, "pneumothorax": 0.04}, thresholds={"effusion": 0.5, "pneumothorax": 0.3},
                         raised=["effusion"], priority="urgent", model_id="clinical-mm-cxr@1.2", model_sha256="ab" * 32,
                         regions=regions, image=original)
    items = _content(sr)
    scoords = [i for i in _walk(sr) if i.ValueType == "SCOORD"]
    assert len(scoords) == 2 and items.count(("INFERRED FROM", "SCOORD", "Image Region")) == 2
    assert [list(s.GraphicData) for s in scoords][0] == [51.0, 282.0, 230.0, 282.0, 230.0, 435.0, 51.0, 435.0, 51.0, 282.0]
    for s in scoords:
        assert s.GraphicType == "POLYLINE"
        (image,) = s.ContentSequence
        assert (image.RelationshipType, image.ValueType) == ("SELECTED FROM", "IMAGE")
        assert image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
    # without the image it refers to, no region is written
    bare = build_report_sr(original, [original], findings="", impression="", flags={"effusion": 0.81},
                           thresholds={"effusion": 0.5}, raised=["effusion"], priority="urgent", model_id="m@1",
                           model_sha256="ab" * 32, regions=regions)
    assert not [i for i in _walk(bare) if i.ValueType == "SCOORD"]
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    if shutil.which("dsrdump") is None:
        pytest.skip("dcmtk (dsrdump) is installed by make test")
    dumped = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True)
    complaints = [line for line in dumped.stderr.splitlines()
                  if line.startswith(("E:", "W:")) and "Specific Character Set" not in line]  # UTF-8: dcmtk's known note
    assert dumped.returncode == 0 and complaints == [], dumped.stderr
    assert "SCOORD" in dumped.stdout and "POLYLINE" in dumped.stdout


def _walk(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    out = []
    for item in ds.get("ContentSequence", []):
        out += [item, *_walk(item)]
    return out
