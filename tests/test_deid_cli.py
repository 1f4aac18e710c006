"""`clinical-mm deid dicom` and `clinical-mm deid reidentify` end to end, with planted PHI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid import Option
from clinical_mm.deid.pixel_text import PixelTextCleaner
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.synth.study_synthesizer import StudySynthesizer

KEY_HEX = "5a" * 32
OTHER_HEX = "a5" * 32
PLANTED = {
    "PatientName": "QXDEID^MARGOT^Q", "PatientID": "QXDEIDPID01", "PatientBirthDate": "19270513",
    "AccessionNumber": "QXDEIDACC7", "InstitutionName": "QXDEID GENERAL", "ReferringPhysicianName": "QXREF^DOC",
    "OperatorsName": "QXOP^ERATOR", "StationName": "QXSTATION", "DeviceSerialNumber": "QXSERIAL0099",
    "StudyID": "QXSTUDY5", "ImageComments": "QXCOMMENT about QXDEID", "StudyDate": "20210913",
}


def _burn(ds: pydicom.Dataset) -> np.ndarray:
    """Burn a name and an MRN into the pixels on a black box, as modalities do; return the text's neighbourhood."""
    arr = ds.pixel_array.copy()
    img = Image.new("L", (arr.shape[1], arr.shape[0]), 0)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=16)
    draw.text((24, 30), "QXBURNED^ANNA  MRN 5512093", fill=255, font=font)
    x0, y0, x1, y1 = draw.textbbox((24, 30), "QXBURNED^ANNA  MRN 5512093", font=font)
    m1 = ds.PhotometricInterpretation == "MONOCHROME1"
    arr[y0 - 4:y1 + 4, x0 - 4:x1 + 4] = arr.max() if m1 else arr.min()
    arr[np.asarray(img) > 0] = arr.min() if m1 else arr.max()
    ds.PixelData = arr.tobytes()
    ds.BurnedInAnnotation = "YES"
    area = np.zeros(arr.shape, bool)
    area[max(0, y0 - 28):y1 + 28, max(0, x0 - 28):x1 + 28] = True  # OCR boxes are padded by a third of a line
    return area


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    for var in ("CLINICAL_MM_KEY", "CLINICAL_MM_KEY_FILE", "CLINICAL_MM_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    key = tmp_path / "key.hex"
    key.write_text(KEY_HEX + "\n")
    other = tmp_path / "other.hex"
    other.write_text(OTHER_HEX)
    src = tmp_path / "src"
    planted: list[str] = list(PLANTED.values())
    for i, study in enumerate(StudySynthesizer(41).make_study(j, src) for j in range(3)):
        for rel in study.files:
            ds = pydicom.dcmread(src / rel)
            planted += [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]
            planted += [v for v in study.phi.values() if isinstance(v, str) and len(v) > 3]
            if i == 0:  # the first study: canaries everywhere, nested and private too
                for k, v in PLANTED.items():
                    setattr(ds, k, v)
                nested = Dataset()
                nested.PatientName = "QXNESTED^PERSON"
                nested.AccessionNumber = PLANTED["AccessionNumber"]
                ds.RequestAttributesSequence = Sequence([nested])
                ds.private_block(0x0043, "QX VENDOR", create=True).add_new(0x01, "LO", "QXPRIVATE VALUE")
                ds.save_as(src / rel, enforce_file_format=True)
            if i == 1:  # the second study: a name and an MRN burned into the pixels
                np.save(tmp_path / "burned_area.npy", _burn(ds))
                ds.save_as(src / rel, enforce_file_format=True)
                burned_uid = str(ds.SOPInstanceUID)
    # pydicom's CT states no BurnedInAnnotation: OCR must check it first
    shutil.copyfile(str(get_testdata_file("CT_small.dcm")), src / "ct.dcm")
    # files to hold back: not DICOM at all; pixels that may hold text and cannot be decoded
    (src / "notes.txt").write_text("not a dicom file")
    broken = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    broken.BurnedInAnnotation = "YES"
    broken.PixelData = broken.PixelData[:64]
    broken.save_as(src / "broken_pixels.dcm")
    return {"src": src, "dst": tmp_path / "dst", "key": key, "other": other, "vault": tmp_path / "data" / "vault.sqlite",
            "planted": planted, "tmp": tmp_path, "burned": burned_uid}  # type: ignore[dict-item]


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def test_when_deid_dicom_runs_then_no_planted_value_remains_and_pixels_are_unchanged(env: dict[str, Path]) -> None:
    result = _run("deid", "dicom", str(env["src"]), str(env["dst"]), "--key-file", str(env["key"]))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    out_files = sorted(env["dst"].rglob("*.dcm"))
    assert len(out_files) >= 3
    blob = b"".join(p.read_bytes() for p in env["dst"].rglob("*") if p.is_file())
    source = b"".join(p.read_bytes() for p in env["src"].rglob("*.dcm"))
    assert all(v.encode() in source for v in [*PLANTED.values(), "QXNESTED^PERSON", "QXPRIVATE VALUE"])
    for value in env["planted"]:  # type: ignore[attr-defined]
        assert str(value).encode() not in blob, "a planted value survived"
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in env["src"].rglob("*.dcm")
                 if p.name != "broken_pixels.dcm"}
    pseudo = Pseudonymizer(PseudonymKey.from_hex(KEY_HEX, source="test"))
    for p in out_files:
        ds = pydicom.dcmread(p)  # a valid PS3.10 file (preamble, meta)
        assert ds.PatientIdentityRemoved == "YES" and ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        uid = next(u for u in originals if pseudo.uid(u) == ds.SOPInstanceUID)
        before = pydicom.dcmread(originals[uid])
        if uid != env["burned"]:
            assert ds.PixelData == before.PixelData
            continue
        # burned-in text: redacted, verified, and nothing changed outside the text's area
        changed = ds.pixel_array != before.pixel_array
        area = np.load(env["tmp"] / "burned_area.npy")
        assert changed.any() and not (changed & ~area).any()
        assert ds.BurnedInAnnotation == "NO"
        assert PixelTextCleaner().read_words(ds.pixel_array, ds) == []
    receipts = [json.loads(p.read_text()) for p in env["dst"].glob("*/receipt.json")]
    assert len(receipts) == 4  # three synthetic studies and the CT
    # the pixel cleaner ran where BurnedInAnnotation is not NO: the CT (unstated) and the burned study
    assert sum(r["action_counts"].get("pixel:frame-verified", 0) for r in receipts) == 2
    assert sum(r["action_counts"].get("pixel:text-region", 0) + r["action_counts"].get("pixel:ocr-box", 0)
               for r in receipts) >= 2
    assert all(r["key_id"] == PseudonymKey.from_hex(KEY_HEX, source="t").key_id and r["action_counts"]["X"] > 0
               and r["codes"][0]["code"] == "113100" for r in receipts)


def test_when_file_cannot_be_verified_then_it_is_quarantined_with_a_reason_and_the_batch_goes_on(env: dict[str, Path]) -> None:
    result = _run("deid", "dicom", str(env["src"]), str(env["dst"]), "--key-file", str(env["key"]))
    assert result.exit_code == 0
    quarantine = env["dst"].with_name("dst-quarantine")
    entries = {e["source"]: e for e in map(json.loads, (quarantine / "quarantine.jsonl").read_text().splitlines())}
    assert set(entries) == {"broken_pixels.dcm", "notes.txt"}
    assert "pixel data cannot be decoded" in entries["broken_pixels.dcm"]["reason"]
    assert entries["notes.txt"]["reason"] == "not a readable DICOM file"
    assert all((quarantine / e["file"]).is_file() for e in entries.values())
    ct = [pydicom.dcmread(p) for p in env["dst"].rglob("*.dcm") if pydicom.dcmread(p).Modality == "CT"]
    assert len(ct) == 1 and ct[0].BurnedInAnnotation == "NO"  # verified by OCR, then passed on


def test_when_key_holder_asks_then_pseudonym_maps_back_and_other_keys_get_nothing(env: dict[str, Path]) -> None:
    assert _run("deid", "dicom", str(env["src"]), str(env["dst"]), "--key-file", str(env["key"])).exit_code == 0
    pseudonym = Pseudonymizer(PseudonymKey.from_hex(KEY_HEX, source="t")).identifier("patient", PLANTED["PatientID"])
    ok = _run("deid", "reidentify", pseudonym, "--kind", "patient", "--key-file", str(env["key"]))
    assert ok.exit_code == 0 and ok.output.strip() == PLANTED["PatientID"]  # type: ignore[attr-defined]
    some = next(env["dst"].rglob("*.dcm"))
    study = str(pydicom.dcmread(some).StudyInstanceUID)
    back = _run("deid", "reidentify", study, "--kind", "uid", "--key-file", str(env["key"]))
    assert back.exit_code == 0 and back.output.strip() in env["planted"]  # type: ignore[attr-defined,operator]
    denied = _run("deid", "reidentify", pseudonym, "--kind", "patient", "--key-file", str(env["other"]))
    assert denied.exit_code == 1 and PLANTED["PatientID"] not in denied.output  # type: ignore[attr-defined]
    # the vault file alone holds no original value
    assert PLANTED["PatientID"].encode() not in env["vault"].read_bytes()


@pytest.mark.parametrize("option", list(Option))
def test_every_option_is_a_named_flag_that_reaches_the_output(env: dict[str, Path], option: Option) -> None:
    flag = "--" + option.name.lower().replace("_", "-")
    result = _run("deid", "dicom", str(env["src"]), str(env["dst"]), "--key-file", str(env["key"]), flag)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    receipts = [json.loads(p.read_text()) for p in env["dst"].glob("*/receipt.json")]
    assert len(receipts) == 4 and all(r["options"] == [option.value] for r in receipts)
    ds = pydicom.dcmread(next(env["dst"].rglob("*.dcm")))
    assert len(ds.DeidentificationMethodCodeSequence) == 2


def test_when_uids_retained_or_dates_shifted_then_output_shows_it(env: dict[str, Path]) -> None:
    first = env["src"] / sorted(p.relative_to(env["src"]) for p in env["src"].rglob("1.dcm"))[0]
    original = pydicom.dcmread(first)
    assert _run("deid", "dicom", str(first), str(env["dst"]), "--key-file", str(env["key"]), "--retain-uids",
                "--retain-long-modified-dates").exit_code == 0
    out = pydicom.dcmread(next(env["dst"].rglob("*.dcm")))
    assert out.StudyInstanceUID == original.StudyInstanceUID
    shift = Pseudonymizer(PseudonymKey.from_hex(KEY_HEX, source="t")).shift_date(original.StudyDate, original.PatientID)
    assert out.StudyDate == shift != original.StudyDate
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


def test_when_no_key_then_refused_and_conflicting_options_refused(env: dict[str, Path]) -> None:
    result = _run("deid", "dicom", str(env["src"]), str(env["dst"]))
    assert result.exit_code == 1 and "no pseudonymisation key" in result.output  # type: ignore[attr-defined]
    both = _run("deid", "dicom", str(env["src"]), str(env["dst"]), "--key-file", str(env["key"]),
                "--retain-long-full-dates", "--retain-long-modified-dates")
    assert both.exit_code == 1 and "mutually exclusive" in both.output  # type: ignore[attr-defined]
    assert not env["dst"].exists()


def test_when_safe_private_list_given_then_only_listed_private_attributes_survive_with_the_option(
        env: dict[str, Path]) -> None:
    src = env["src"] / "private.dcm"
    ds = pydicom.dcmread(next(env["src"].rglob("1.dcm")))
    block = ds.private_block(0x0019, "ACME SAFE 1", create=True)
    block.add_new(0x10, "DS", "1.25")  # listed: a vendor acquisition parameter
    block.add_new(0x11, "LO", "QXUNLISTED OPERATOR NOTE")
    ds.save_as(src, enforce_file_format=True)
    safe = env["tmp"] / "safe.json"  # type: ignore[operator]
    safe.write_text(json.dumps([{"creator": "ACME SAFE 1", "group": "0019", "element": "10", "name": "gain"}]))
    for flags, kept in (([], False), (["--retain-safe-private"], True)):
        dst = env["tmp"] / f"dst{len(flags)}"  # type: ignore[operator]
        result = _run("deid", "dicom", str(src), str(dst), "--key-file", str(env["key"]), "--safe-private-list",
                      str(safe), *flags)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        out = pydicom.dcmread(next(dst.rglob("*.dcm")))
        assert (0x00191010 in out) is kept and (0x00190010 in out) is kept
        if kept:
            assert out[0x00191010].value == 1.25 and out[0x00190010].value == "ACME SAFE 1"
        assert 0x00191011 not in out and b"QXUNLISTED" not in next(dst.rglob("*.dcm")).read_bytes()
        assert not any(int(e.tag) >> 16 == 0x0029 for e in out)  # the synthesizer's unlisted private block
    bad = env["tmp"] / "bad.json"  # type: ignore[operator]
    bad.write_text(json.dumps([{"creator": "X", "group": "0018", "element": "10"}]))
    refused = _run("deid", "dicom", str(src), str(env["dst"]), "--key-file", str(env["key"]), "--safe-private-list",
                   str(bad), "--retain-safe-private")
    assert refused.exit_code == 1 and "odd group" in refused.output  # type: ignore[attr-defined]


def test_when_run_with_one_or_two_workers_then_outputs_are_identical_and_the_audit_chain_holds(
        env: dict[str, Path]) -> None:
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink

    outputs = []
    for workers in ("1", "2"):
        dst = env["tmp"] / f"w{workers}"  # type: ignore[operator]
        result = _run("deid", "dicom", str(env["src"]), str(dst), "--key-file", str(env["key"]), "--workers", workers)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        outputs.append({str(p.relative_to(dst)): p.read_bytes() for p in dst.rglob("*") if p.is_file()})
    assert outputs[0] == outputs[1] and len(outputs[0]) >= 8
    sink = SQLiteAuditSink(env["tmp"] / "data" / "audit.sqlite")  # type: ignore[operator]
    assert sink.verify().records == 2 * (len(list((env["tmp"] / "w1").rglob("*.dcm"))) + 2)  # type: ignore[operator]
    sink.close()


def test_when_dates_are_shifted_then_each_patient_keeps_one_shift_and_no_original_date_remains(
        env: dict[str, Path]) -> None:
    import datetime as dt

    src = env["tmp"] / "patients"  # type: ignore[operator]
    studies = [StudySynthesizer(43).make_study(i, src) for i in range(4)]
    originals: dict[str, tuple[str, str]] = {}  # SOPInstanceUID -> (patient, StudyDate)
    dates: set[str] = set()
    for i, study in enumerate(studies):  # two patients with two studies each, on different days
        for rel in study.files:
            ds = pydicom.dcmread(src / rel)
            ds.PatientID = f"QXPAT{i % 2}"
            ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = f"202{i}0{i + 3}1{i}"
            originals[str(ds.SOPInstanceUID)] = (ds.PatientID, ds.StudyDate)
            dates |= {ds.StudyDate, str(ds.PatientBirthDate)}
            ds.save_as(src / rel, enforce_file_format=True)
    for flags in ([], ["--retain-long-modified-dates"]):
        dst = env["tmp"] / f"dates{len(flags)}"  # type: ignore[operator]
        result = _run("deid", "dicom", str(src), str(dst), "--key-file", str(env["key"]), *flags)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        blob = b"".join(p.read_bytes() for p in dst.rglob("*") if p.is_file())
        assert not any(d.encode() in blob for d in dates), "an original date survived"
        if not flags:
            continue
        pseudo = Pseudonymizer(PseudonymKey.from_hex(KEY_HEX, source="t"))
        shifts: dict[str, set[int]] = {}
        for p in dst.rglob("*.dcm"):
            out = pydicom.dcmread(p)
            patient, before = next(v for u, v in originals.items() if pseudo.uid(u) == out.SOPInstanceUID)
            day = lambda s: dt.datetime.strptime(s, "%Y%m%d").date()  # noqa: E731
            shifts.setdefault(patient, set()).add((day(out.StudyDate) - day(before)).days)
            assert out.StudyDate == out.SeriesDate == out.ContentDate
        assert all(len(s) == 1 and next(iter(s)) < 0 for s in shifts.values()) and len(shifts) == 2
        assert shifts["QXPAT0"] != shifts["QXPAT1"]


def test_when_instances_reference_each_other_then_references_still_match_after_remapping(env: dict[str, Path]) -> None:
    src = env["tmp"] / "refs"  # type: ignore[operator]
    study = StudySynthesizer(44).make_study(0, src)
    first = pydicom.dcmread(src / study.files[0])
    second = pydicom.dcmread(src / study.files[0])
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = first.SOPInstanceUID + ".2"
    second.SeriesInstanceUID = first.SeriesInstanceUID + ".2"
    ref = Dataset()  # an unlisted reference structure (recursed): UIDs inside follow the keyed mapping
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = first.SOPClassUID, first.SOPInstanceUID
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = first.SeriesInstanceUID
    series_ref.ReferencedInstanceSequence = Sequence([ref])
    second.ReferencedSeriesSequence = Sequence([series_ref])
    second.save_as(src / "second.dcm", enforce_file_format=True)
    dst = env["tmp"] / "refs-out"  # type: ignore[operator]
    assert _run("deid", "dicom", str(src), str(dst), "--key-file", str(env["key"])).exit_code == 0
    outs = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, dst.rglob("*.dcm"))}
    assert len(outs) == 2 and first.SOPInstanceUID not in outs
    referencing = next(d for d in outs.values() if "ReferencedSeriesSequence" in d)
    series = referencing.ReferencedSeriesSequence[0]
    target = outs[str(series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID)]  # points at the other output
    assert series.SeriesInstanceUID == target.SeriesInstanceUID != referencing.SeriesInstanceUID
    assert series.ReferencedInstanceSequence[0].ReferencedSOPClassUID == first.SOPClassUID  # a class: kept
    assert len({d.StudyInstanceUID for d in outs.values()}) == 1
