"""Canary PHI planted in a DICOM file's identifying headers, nested sequences and a private block."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

__all__ = ["CANARIES", "NEEDLES", "plant_canaries"]

CANARIES = {
    "PatientName": "QXCANARY^ZELDA^Q", "PatientID": "QXPID778899", "PatientBirthDate": "19230317",
    "AccessionNumber": "QXACC5566", "InstitutionName": "QXCANARY MEMORIAL HOSPITAL",
    "InstitutionAddress": "77 QXCANARY LANE", "ReferringPhysicianName": "QXDOCTOR^HOUSE",
    "PerformingPhysicianName": "QXPERFORMER^ANN", "OperatorsName": "QXOPERATOR^BOB", "StationName": "QXSTATION9",
    "DeviceSerialNumber": "QXSERIAL4242", "StudyID": "QXSTUDY77", "OtherPatientIDs": "QXOTHERID11",
    "ImageComments": "QXCOMMENT patient is QXCANARY", "PatientComments": "QXPATIENT COMMENT",
    "PatientAddress": "12 QXSTREET", "PatientTelephoneNumbers": "555-QX0000", "StudyDate": "20190817",
}


def plant_canaries(path: Path) -> list[str]:
    """Canary PHI in every identifying header of the file at ``path`` (rewritten in place); its original UIDs and the
    planted nested one, which must not appear anywhere either."""
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


#: what must appear nowhere: every planted value, the family names alone, and the markers of the nested and private ones
NEEDLES = [*CANARIES.values(), *(v.split("^")[0] for v in CANARIES.values() if "^" in v), "QXCANARY", "QXNESTED",
           "QXPRIVATE", "2019-08-17"]
