"""Malformed and unusual DICOM through analyze: a typed refusal with a reason and an audit record for each bad
study, never a traceback, and the valid study after them analysed (issue 18)."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import UnsupportedStudyError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.deid.dicom_deidentifier import DicomDeidentifier
from clinical_mm.model.base import DraftReport
from clinical_mm.model.preprocessing import ChestXrayPreprocessor
from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline
from clinical_mm.synth.study_synthesizer import SynthStudy


def _text_value(ds: Dataset, keyword: str, value: str) -> None:
    """Set ``keyword`` to a raw string pydicom would refuse to parse (a value a PACS may hold)."""
    ds[keyword]._value = value


def _short_voi_lut(ds: Dataset) -> None:
    item = Dataset()
    item.LUTDescriptor = [4096, 0, 16]
    item.add_new(0x00283006, "US", [0] * 10)  # LUT Data: 10 entries where the descriptor says 4096
    ds.VOILUTSequence = Sequence([item])


def _thin(ds: Dataset) -> None:
    ds.Rows, ds.Columns = 1, 20000
    ds.PixelData = np.zeros((1, 20000), dtype=np.uint16).tobytes()


#: name -> (what is done to a valid chest radiograph, refused (True) or analysed with a fallback (False))
MUTATIONS: dict[str, tuple[Callable[[Dataset], None], bool]] = {
    "window width 0": (lambda ds: (setattr(ds, "WindowCenter", 100), setattr(ds, "WindowWidth", 0)), False),
    "window centre abc": (lambda ds: _text_value(ds, "WindowCenter", "abc"), False),
    "VOI LUT shorter than its descriptor": (_short_voi_lut, False),
    "rescale slope abc": (lambda ds: (setattr(ds, "RescaleIntercept", 0), setattr(ds, "RescaleSlope", 1),
                                      _text_value(ds, "RescaleSlope", "abc")), True),
    "rescale slope 1e308": (lambda ds: (setattr(ds, "RescaleIntercept", 0), setattr(ds, "RescaleSlope", "1e308")),
                            True),
    "rescale slope 0": (lambda ds: (setattr(ds, "RescaleIntercept", 0), setattr(ds, "RescaleSlope", 0)), True),
    "1 x 20000 image": (_thin, True),
}


@pytest.fixture(scope="module")
def valid(synth_dir: tuple[Path, list[SynthStudy]]) -> Dataset:
    src, studies = synth_dir
    return pydicom.dcmread(src / studies[0].path)


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_when_a_header_or_pixel_attribute_is_malformed_then_preprocessing_refuses_or_falls_back(
        valid: Dataset, name: str) -> None:
    mutate, refused = MUTATIONS[name]
    ds = copy.deepcopy(valid)
    mutate(ds)
    pre = ChestXrayPreprocessor()
    if refused:
        with pytest.raises(UnsupportedStudyError) as caught:
            pre(ds)
        assert "abc" not in str(caught.value) and "1e308" not in str(caught.value)  # the attribute, not its value
    else:
        out = pre(ds)
        assert out.shape == (1, 128, 128) and np.isfinite(out).all()


def test_when_malformed_studies_come_before_a_valid_one_then_each_is_refused_and_audited_and_the_valid_one_analysed(
        valid: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for n, (name, (mutate, _)) in enumerate(MUTATIONS.items()):
        ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_bytes(valid)))
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        mutate(ds)
        ds.save_as(src / f"{n:02d} {name}.dcm")
    (src / "99 valid.dcm").write_bytes(_bytes(valid))
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["analyze", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = {line["source"]: line for line in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())}
    assert len(lines) == len(MUTATIONS) + 1
    assert "error" not in lines["99 valid.dcm"] and lines["99 valid.dcm"]["priority"]
    for n, (name, (_, refused)) in enumerate(MUTATIONS.items()):
        line = lines[f"{n:02d} {name}.dcm"]
        assert ("error" in line) == refused, (name, line)
    db = sqlite3.connect(tmp_path / "data" / "audit.sqlite")
    outcomes = [row[0] for row in db.execute("SELECT outcome FROM audit WHERE action = 'analyze'")]
    db.close()
    assert sorted(outcomes) == sorted(["refused" if r else "analyzed" for _, r in MUTATIONS.values()] + ["analyzed"])


def _bytes(ds: Dataset) -> bytes:
    buffer = pydicom.filebase.DicomBytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


class _FlakyModel:
    """A report generator that fails the way a bug or an unforeseen pixel format would, on its first study."""

    model_id, model_sha256 = "fake@1", "0" * 64

    def __init__(self) -> None:
        self.calls = 0

    def analyze(self, study: object, index: int) -> DraftReport:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("ZZCANARY Doe, Jane")  # a message that may quote PHI
        flags = dict.fromkeys(FINDINGS, 0.1)
        return DraftReport("No acute findings.", "Normal chest.", flags, dict.fromkeys(FINDINGS, 0.5), [], "routine")


class _Records:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    def append(self, record: AuditRecord) -> int:
        self.records.append(record)
        return len(self.records)


def test_when_a_stage_raises_an_unforeseen_error_then_that_study_is_refused_audited_without_its_message_and_the_batch_goes_on(
        synth_dir: tuple[Path, list[SynthStudy]], tmp_path: Path) -> None:
    src, studies = synth_dir
    audit = _Records()
    pipeline = AnalysisPipeline(_FlakyModel(), DicomDeidentifier(PseudonymKey(b"\x05" * 32)), audit)
    results = pipeline.run(src / "studies", tmp_path / "out")
    assert len(results) == len(studies)
    assert results[0].error == "internal error while analysing the study (RuntimeError)"
    assert all(r.error is None for r in results[1:])
    assert [r.outcome for r in audit.records] == ["refused"] + ["analyzed"] * (len(studies) - 1)
    written = (tmp_path / "out" / "results.jsonl").read_text() + "".join(r.canonical() for r in audit.records)
    assert "ZZCANARY" not in written and "Jane" not in written


def _native_under_jpeg_syntax() -> bytes:
    """CT_small's native pixels in a file whose meta claims JPEG Baseline (pydicom itself refuses to write it)."""
    from pydicom.data import get_testdata_file
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import JPEGBaseline8Bit

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    meta = copy.deepcopy(ds.file_meta)
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    head = pydicom.filebase.DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(head, meta, enforce_standard=True)
    body = pydicom.filebase.DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    return head.getvalue() + body.getvalue()


def _no_transfer_syntax(valid: Dataset) -> bytes:
    ds = copy.deepcopy(valid)
    ds.BurnedInAnnotation = "YES"
    del ds.file_meta.TransferSyntaxUID
    buffer = pydicom.filebase.DicomBytesIO()
    ds.save_as(buffer, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def test_when_deid_dicom_meets_odd_encodings_then_each_is_written_validly_or_quarantined_and_the_batch_goes_on(
        valid: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.data import get_testdata_file

    src = tmp_path / "src"
    src.mkdir()
    (src / "a big endian.dcm").write_bytes(Path(get_testdata_file("ExplVR_BigEnd.dcm")).read_bytes())
    (src / "b native under jpeg.dcm").write_bytes(_native_under_jpeg_syntax())
    (src / "c no transfer syntax.dcm").write_bytes(_no_transfer_syntax(valid))
    (src / "d one bit.dcm").write_bytes(Path(get_testdata_file("liver_1frame.dcm")).read_bytes())
    (src / "z valid.dcm").write_bytes(_bytes(valid))
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["deid", "dicom", str(src), str(tmp_path / "dst")])
    assert result.exit_code == 0, result.output
    quarantined = {json.loads(line)["source"]: json.loads(line)
                   for line in (tmp_path / "dst-quarantine" / "quarantine.jsonl").read_text().splitlines()}
    assert set(quarantined) == {"b native under jpeg.dcm", "c no transfer syntax.dcm"}
    assert all(entry["reason"] for entry in quarantined.values())
    written = [pydicom.dcmread(f) for f in (tmp_path / "dst").rglob("*.dcm")]
    assert len(written) == 3
    for ds in written:  # each decodes as the file says it is encoded, and its burned-in text was verified
        assert ds.pixel_array.size == ds.Rows * ds.Columns * int(ds.get("SamplesPerPixel", 1))
        assert ds.BurnedInAnnotation == "NO"
    db = sqlite3.connect(tmp_path / "data" / "audit.sqlite")
    outcomes = sorted(row[0] for row in db.execute("SELECT outcome FROM audit WHERE action = 'deidentify'"))
    db.close()
    assert outcomes == ["ok", "ok", "ok", "quarantined", "quarantined"]


def _bomb(valid: Dataset) -> bytes:
    """A 2 KiB file that claims a 32768 x 32768 RLE image: decoding it first would fill 1 GiB."""
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    ds = copy.deepcopy(valid)
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = RLELossless
    ds.Rows = ds.Columns = 32768
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    header = (1).to_bytes(4, "little") + (64).to_bytes(4, "little") + bytes(56)  # one RLE segment
    ds.PixelData = encapsulate([header + bytes([0x81, 0]) * 16])
    return _bytes(ds)


def test_when_a_file_claims_a_huge_image_then_analyze_and_deid_dicom_refuse_it_from_the_header(
        valid: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    bomb = _bomb(valid)
    assert len(bomb) < 4096
    (src / "bomb.dcm").write_bytes(bomb)
    (src / "z valid.dcm").write_bytes(_bytes(valid))
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["analyze", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = {line["source"]: line for line in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())}
    assert "over the limit of 256 MiB an instance" in lines["bomb.dcm"]["error"]
    assert "error" not in lines["z valid.dcm"]
    result = CliRunner().invoke(cli, ["deid", "dicom", str(src), str(tmp_path / "dst")])
    assert result.exit_code == 0, result.output
    entry = json.loads((tmp_path / "dst-quarantine" / "quarantine.jsonl").read_text())
    assert entry["source"] == "bomb.dcm" and "1,024 MiB" in entry["reason"]


def test_when_the_site_lowers_the_pixel_limits_then_a_study_over_them_is_refused(
        valid: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "valid.dcm").write_bytes(_bytes(valid))
    monkeypatch.setenv("CLINICAL_MM_KEY", "ab" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLINICAL_MM_MAX_STUDY_PIXEL_BYTES", "1000")
    result = CliRunner().invoke(cli, ["analyze", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (line,) = map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())
    assert "a study (CLINICAL_MM_MAX_STUDY_PIXEL_BYTES)" in line["error"]


def test_when_the_listener_receives_a_dataset_it_cannot_read_then_it_refuses_it_and_records_why(
        tmp_path: Path) -> None:
    from clinical_mm.service.dicom_listener import DicomListener

    class _Unreadable:
        @property
        def dataset(self) -> Dataset:
            raise ValueError("ZZCANARY^PATIENT")  # as pydicom fails on a malformed dataset, quoting a value

    audit = _Records()
    listener = DicomListener(None, ae_title="CLINICALMM", host="127.0.0.1", port=0,  # type: ignore[arg-type]
                             allowed_aets=["PACS"], audit=audit)
    assert listener._on_store(_Unreadable()) == 0xC000  # Cannot Understand: the PACS keeps it and can retry
    (record,) = audit.records
    assert (record.action, record.outcome) == ("receive", "refused") and "ZZCANARY" not in record.canonical()


def test_when_stow_rs_parts_cannot_be_read_then_each_is_refused_with_its_reason_and_recorded(tmp_path: Path) -> None:
    from clinical_mm.core.errors import DicomReadError
    from clinical_mm.service.api.multipart import spool_parts

    class _Spool:
        def put(self, data: bytes, *, source: str = "") -> tuple[str, str, bool]:
            if data.startswith(b"bad"):
                raise DicomReadError("not DICOM: ZZCANARY", reason="malformed DICOM")
            return "2.25.1", "2.25.2", True

    audit = _Records()
    stored, failed = spool_parts(_Spool(), [b"good", b"bad ZZCANARY", b"bad"], audit, "pacs-key", "STOW-RS")  # type: ignore[arg-type]
    assert len(stored) == 1 and failed == [(1, "malformed DICOM"), (2, "malformed DICOM")]
    assert [(r.actor, r.action, r.outcome, r.detail) for r in audit.records] == [
        ("pacs-key", "receive", "refused", "STOW-RS part 1: malformed DICOM"),
        ("pacs-key", "receive", "refused", "STOW-RS part 2: malformed DICOM")]
    assert "ZZCANARY" not in "".join(r.canonical() for r in audit.records)


def test_when_a_dicomweb_pull_returns_a_part_that_is_no_dicom_then_it_is_skipped_recorded_and_the_study_goes_on(
        tmp_path: Path) -> None:
    from clinical_mm.connectors.dicomweb_client import DicomWebClient
    from clinical_mm.core.errors import DicomReadError
    from clinical_mm.service.pull import StudyPuller

    class _Client(DicomWebClient):
        def __init__(self) -> None:
            pass

        def retrieve_study(self, uid: str) -> list[bytes]:  # type: ignore[override]
            return [b"ZZCANARY not dicom", b"a valid instance"]

    class _Spool:
        class pseudo:  # noqa: N801 - the spool's pseudonymiser, as the puller reads it
            @staticmethod
            def uid(uid: str) -> str:
                return "2.25.7"

        def put(self, data: bytes, *, source: str = "") -> tuple[str, str, bool]:
            if data.startswith(b"ZZCANARY"):
                raise DicomReadError("not DICOM: ZZCANARY", reason="malformed DICOM")
            return "2.25.8", "2.25.7", True

    audit = _Records()
    puller = StudyPuller(_Client(), None, _Spool(), audit=audit)  # type: ignore[arg-type]
    assert puller._retrieve("1.2.3") == "2.25.7"
    (record,) = audit.records
    assert (record.action, record.outcome, record.detail) == ("receive", "refused", "DICOMweb retrieve part: malformed DICOM")
    assert "ZZCANARY" not in record.canonical()
