"""The draft as a DICOM Comprehensive SR for the PACS: findings, impression and triage flags, marked
AI-generated and preliminary, in the ORIGINAL study (built at egress, after re-identification).

Structure (after TID 2000, Basic Diagnostic Imaging Report)::

    CONTAINER (18748-4, LN, "Diagnostic imaging report")
      HAS OBS CONTEXT  CODE  Observer Type = Device; UIDREF Device Observer UID; TEXT Device Observer Name
      CONTAINS CONTAINER Findings     > CONTAINS TEXT Finding
      CONTAINS CONTAINER Impressions  > CONTAINS TEXT Impression
      CONTAINS CONTAINER AI triage    > CONTAINS NUM  probability of each flag (UCUM "1"), CODE raised or not
                                           > INFERRED FROM SCOORD Image Region (POLYLINE box, a raised flag's
                                             region where the model sees it) > SELECTED FROM IMAGE (the image)
                                       > CONTAINS CODE triage priority
      CONTAINS TEXT  Comment: "AI-generated preliminary draft; not final until signed by a radiologist."

The document says it is preliminary three ways: PreliminaryFlag PRELIMINARY, VerificationFlag UNVERIFIED,
and the comment. The Series and SOP Instance UIDs are derived from the study and the model, so sending
the same draft again stores the same instance (no duplicate in the PACS).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence as Seq
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from clinical_mm.core.findings import FINDING_LABELS, PRIORITIES

__all__ = ["COMPREHENSIVE_SR", "build_report_sr"]

COMPREHENSIVE_SR = UID("1.2.840.10008.5.1.4.1.1.88.33")
_SCHEME = "99CLINMM"  # private coding scheme (the "99" prefix) of our flags and priorities
#: Patient and General Study module attributes copied from the original study
_COPIED = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
           "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription")


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning[:64]
    return item


def _item(relationship: str, value_type: str, concept: Dataset) -> Dataset:
    item = Dataset()
    item.RelationshipType, item.ValueType = relationship, value_type
    item.ConceptNameCodeSequence = Sequence([concept])
    return item


def _text(relationship: str, concept: Dataset, text: str) -> Dataset:
    item = _item(relationship, "TEXT", concept)
    item.TextValue = text
    return item


def _coded(relationship: str, concept: Dataset, value: Dataset) -> Dataset:
    item = _item(relationship, "CODE", concept)
    item.ConceptCodeSequence = Sequence([value])
    return item


def _container(relationship: str, concept: Dataset, children: list[Dataset]) -> Dataset:
    item = _item(relationship, "CONTAINER", concept)
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = Sequence(children)
    return item


def _uid(*parts: str) -> UID:
    return UID("2.25." + str(uuid.uuid5(uuid.NAMESPACE_OID, "clinical-mm-sr:" + "|".join(parts)).int))


def _image_regions(boxes: list[list[int]], image: Dataset) -> list[Dataset]:
    """A region's boxes as SCOORD POLYLINE items (closed rectangles in the image's pixel coordinates, column then
    row), each SELECTED FROM the image (TID 1500's image region)."""
    out = []
    for x0, y0, x1, y1 in boxes:
        scoord = _item("INFERRED FROM", "SCOORD", _code("111030", "DCM", "Image Region"))
        scoord.GraphicType = "POLYLINE"
        scoord.GraphicData = [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1, x0, y0)]
        ref = Dataset()  # the purpose of reference is the relationship: no concept name (type 1C)
        ref.RelationshipType, ref.ValueType = "SELECTED FROM", "IMAGE"
        sop = Dataset()
        sop.ReferencedSOPClassUID, sop.ReferencedSOPInstanceUID = image.SOPClassUID, image.SOPInstanceUID
        ref.ReferencedSOPSequence = Sequence([sop])
        scoord.ContentSequence = Sequence([ref])
        out.append(scoord)
    return out


def build_report_sr(original: Dataset, instances: Seq[Dataset], *, findings: str, impression: str,
                    flags: dict[str, float], thresholds: dict[str, float], raised: list[str], priority: str,
                    model_id: str, model_sha256: str, now: dt.datetime | None = None,
                    regions: dict[str, Any] | None = None, image: Dataset | None = None) -> Dataset:
    """The SR of one draft. ``original`` is an instance of the original study (its Patient and Study modules
    are copied), ``instances`` the study's instances the report is about (evidence). ``regions``: per raised
    flag its ``pixel_boxes`` in ``image``, the analysed image, written as image regions of the flag."""
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    now = now or dt.datetime.now(dt.UTC)
    study_uid = str(original.StudyInstanceUID)
    ds = Dataset()
    for keyword in _COPIED:
        ds.setdefault(keyword, original.get(keyword, ""))  # type 2: present, empty when the original has none
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.SOPInstanceUID = _uid(study_uid, model_sha256, "instance")
    ds.SeriesInstanceUID = _uid(study_uid, model_sha256, "series")
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "SR", 9901, 1
    ds.SeriesDescription = "AI preliminary report (clinical-mm, not signed)"
    ds.Manufacturer, ds.ManufacturerModelName = "clinical-mm", model_id[:64]
    ds.SoftwareVersions = model_id.rpartition("@")[2] or "0"
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.ReferencedPerformedProcedureStepSequence = Sequence([])
    ds.PerformedProcedureCodeSequence = Sequence([])
    ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag = "COMPLETE", "UNVERIFIED", "PRELIMINARY"
    by_series: dict[str, list[Dataset]] = {}
    for inst in instances:
        by_series.setdefault(str(inst.SeriesInstanceUID), []).append(inst)
    evidence = Dataset()
    evidence.StudyInstanceUID = study_uid
    evidence.ReferencedSeriesSequence = Sequence()
    for series_uid, members in by_series.items():
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        series.ReferencedSOPSequence = Sequence()
        for inst in members:
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = inst.SOPClassUID, inst.SOPInstanceUID
            series.ReferencedSOPSequence.append(ref)
        evidence.ReferencedSeriesSequence.append(series)
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])

    device_uid = _uid(model_sha256, "device")
    observer = [
        _coded("HAS OBS CONTEXT", _code("121005", "DCM", "Observer Type"), _code("121007", "DCM", "Device")),
        _item("HAS OBS CONTEXT", "UIDREF", _code("121012", "DCM", "Device Observer UID")),
        _text("HAS OBS CONTEXT", _code("121013", "DCM", "Device Observer Name"), model_id[:64]),
    ]
    observer[1].UID = device_uid
    flag_items: list[Dataset] = []
    for name, prob in flags.items():
        label = FINDING_LABELS.get(name, name)
        num = _item("CONTAINS", "NUM", _code(f"P-{name}"[:16], _SCHEME, f"AI probability: {label}"))
        measured = Dataset()
        measured.NumericValue = f"{float(prob):.4f}"
        measured.MeasurementUnitsCodeSequence = Sequence([_code("1", "UCUM", "no units")])
        num.MeasuredValueSequence = Sequence([measured])
        raised_code = _code("R-Y", _SCHEME, "Raised") if name in raised else _code("R-N", _SCHEME, "Not raised")
        state = _coded("HAS PROPERTIES", _code(f"F-{name}"[:16], _SCHEME, f"AI triage flag: {label}"), raised_code)
        threshold = _text("HAS PROPERTIES", _code("THRESH", _SCHEME, "Operating threshold"),
                          f"{float(thresholds.get(name, 0.5)):.4f}")
        region = (regions or {}).get(name) if name in raised and image is not None else None
        num.ContentSequence = Sequence([state, threshold, *(_image_regions(region["pixel_boxes"], image)
                                                            if region and image is not None else [])])
        flag_items.append(num)
    flag_items.append(_coded("CONTAINS", _code("PRIORITY", _SCHEME, "AI triage priority"),
                             _code(priority.upper()[:16], _SCHEME, priority)))
    content = [
        *observer,
        _container("CONTAINS", _code("121070", "DCM", "Findings"),
                   [_text("CONTAINS", _code("121071", "DCM", "Finding"), findings or "(none)")]),
        _container("CONTAINS", _code("121072", "DCM", "Impressions"),
                   [_text("CONTAINS", _code("121073", "DCM", "Impression"), impression or "(none)")]),
        _container("CONTAINS", _code("TRIAGE", _SCHEME, "AI triage flags"), flag_items),
        _text("CONTAINS", _code("121106", "DCM", "Comment"),
              "AI-generated preliminary draft; not final until signed by a radiologist."),
    ]
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic imaging report")])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = "DCMR", "2000"
    ds.ContentTemplateSequence = Sequence([template])
    ds.ContentSequence = Sequence(content)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names and text as the original had them

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds
