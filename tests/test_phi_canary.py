"""Canary PHI planted in every identifying header must appear in no output: results, FHIR, audit log, logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from clinical_mm.synth.study_synthesizer import StudySynthesizer

CANARIES = {
    "PatientName": "QXCANARY^ZELDA^Q", "PatientID": "QXPID778899", "PatientBirthDate": "19230317",
    "AccessionNumber": "QXACC5566", "InstitutionName": "QXCANARY MEMORIAL HOSPITAL",
    "InstitutionAddress": "77 QXCANARY LANE", "ReferringPhysicianName": "QXDOCTOR^HOUSE",
    "PerformingPhysicianName": "QXPERFORMER^ANN", "OperatorsName": "QXOPERATOR^BOB", "StationName": "QXSTATION9",
    "DeviceSerialNumber": "QXSERIAL4242", "StudyID": "QXSTUDY77", "OtherPatientIDs": "QXOTHERID11",
    "ImageComments": "QXCOMMENT patient is QXCANARY", "PatientComments": "QXPATIENT COMMENT",
    "PatientAddress": "12 QXSTREET", "PatientTelephoneNumbers": "555-QX0000", "StudyDate": "20190817",
}


def _plant(path: Path) -> list[str]:
    ds = pydicom.dcmread(path)
    originals = [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)]
    for key, value in CANARIES.items():
        setattr(ds, key, value)
    ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = CANARIES["StudyDate"]
    nested = Dataset()
    nested.PatientName = "QXNESTED^NAME"
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.1093.9999.1"
    inner.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    nested.ReferencedImageSequence = Sequence([inner])
    ds.RequestAttributesSequence = Sequence([nested])
    block = ds.private_block(0x0033, "QX PRIVATE", create=True)
    block.add_new(0x01, "LO", "QXPRIVATE PHI")
    ds.save_as(path, enforce_file_format=True)
    return originals + ["1.2.826.0.1.3680043.10.1093.9999.1"]


def test_when_canary_phi_is_planted_then_no_output_contains_it(tmp_path: Path) -> None:
    src = tmp_path / "in"
    studies = [StudySynthesizer(77).make_study(i, src) for i in range(2)]
    uids: list[str] = []
    for s in studies:
        uids += _plant(src / s.path)
    out = tmp_path / "out"
    env = {**os.environ, "CLINICAL_MM_KEY": "cd" * 32, "CLINICAL_MM_DATA_DIR": str(tmp_path / "data"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "clinical_mm.cli", "-v", "analyze", str(src), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "analysed" in proc.stderr + proc.stdout
    haystacks = {
        "stdout+stderr": (proc.stdout + proc.stderr).encode(),
        "results.jsonl": (out / "results.jsonl").read_bytes(),
        "audit": (tmp_path / "data" / "audit.sqlite").read_bytes(),
    }
    for bundle in (out / "fhir").glob("*.json"):
        haystacks[bundle.name] = bundle.read_bytes()
    assert len(haystacks) == 3 + len(studies)
    needles = [v for v in CANARIES.values()] + [v.split("^")[0] for v in CANARIES.values() if "^" in v] + uids
    needles += ["QXCANARY", "QXNESTED", "QXPRIVATE", "2019-08-17"]
    for where, data in haystacks.items():
        for needle in needles:
            assert needle.encode() not in data, f"planted value found in {where}"
