"""FHIR R4 output, in the release :mod:`clinical_mm.core.fhir_release` chooses.

One analysed study becomes a transaction Bundle (conditional creates, so re-delivery makes no duplicates):

* ``DiagnosticReport`` — status ``preliminary``, security label AIAST (AI-asserted), the conclusion
  (impression) and the full draft as a text attachment, the study referenced by its pseudonymous UID;
* one ``Observation`` per triage flag — the calibrated probability, the operating threshold, raised or not;
* ``Device`` — the model, its version and checkpoint sha256;
* ``Provenance`` — the model device as author of all of the above.

After review, :func:`final_report` turns the draft's DiagnosticReport into the signed one (status
``final``, the radiologist's text, the signer as performer and results interpreter).

fhir.resources validates structure, not coded values; the codes we emit are checked here.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from clinical_mm.core.errors import OutputError
from clinical_mm.core.fhir_release import FHIR_RELEASE, Bundle, DiagnosticReport, validate_resource, validated
from clinical_mm.core.findings import FINDING_LABELS

__all__ = ["FHIR_RELEASE", "HospitalLinks", "ReportBundleBuilder", "accession_pseudonym", "extraction_bundle", "final_report", "final_for_hospital", "for_hospital", "report_identifier",
           "validate_resource"]

_AI_LABEL = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "AIAST",
             "display": "Artificial Intelligence asserted"}
_FLAG_SYSTEM = "urn:clinical-mm:triage-flag"
_ID_SYSTEM = "urn:clinical-mm:id"
_ACCESSION_PSEUDONYM = "urn:clinical-mm:accession-pseudonym"
_PROVENANCE_TAG = "urn:clinical-mm:provenance"
_STATUSES = {"DiagnosticReport": {"registered", "partial", "preliminary", "final", "amended", "corrected",
                                  "appended", "cancelled", "entered-in-error", "unknown"},
             "Observation": {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                             "entered-in-error", "unknown"},
             "Device": {"active", "inactive", "entered-in-error", "unknown"},
             "MedicationStatement": {"active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
                                     "unknown", "not-taken"},
             "FamilyMemberHistory": {"partial", "completed", "entered-in-error", "health-unknown"}}

# frequency code of the extraction attributes -> FHIR Timing.repeat (frequency per period periodUnit)
_FREQUENCY_TIMING: dict[str, dict[str, object]] = {
    "DAILY": {"frequency": 1, "period": 1, "periodUnit": "d"},
    "BID": {"frequency": 2, "period": 1, "periodUnit": "d"},
    "TID": {"frequency": 3, "period": 1, "periodUnit": "d"},
    "QID": {"frequency": 4, "period": 1, "periodUnit": "d"},
    "QHS": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["HS"]},
    "QAM": {"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN"]},
    "QOD": {"frequency": 1, "period": 2, "periodUnit": "d"},
    "WEEKLY": {"frequency": 1, "period": 1, "periodUnit": "wk"},
    "MONTHLY": {"frequency": 1, "period": 1, "periodUnit": "mo"},
    "ONCE": {"count": 1},
}


def _check_status(resource: dict[str, Any]) -> None:
    allowed = _STATUSES.get(resource["resourceType"])
    if allowed is not None and resource.get("status") not in allowed:
        raise OutputError(f"{resource['resourceType']}.status {resource.get('status')!r} is not a valid code")


@dataclass(frozen=True)
class HospitalLinks:
    """What a result is re-linked to at egress (to the hospital's own FHIR server, never elsewhere): the
    original accession and StudyInstanceUID (from the key vault) and the references of the order, imaging
    study and patient on that server (``{"reference": "Type/id"}``, None when the server has none)."""

    accession: str
    study_uid: str
    service_request: dict[str, str] | None = None
    imaging_study: dict[str, str] | None = None
    patient: dict[str, str] | None = None


_ACCESSION_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN",
                               "display": "Accession ID"}]}


def _relink(resource: dict[str, Any], links: HospitalLinks) -> dict[str, Any]:
    """One resource of ours with its pseudonymous study and accession replaced by the hospital's originals
    and references (subject, basedOn, imagingStudy / derivedFrom / entity)."""
    out = dict(resource)
    study: dict[str, Any] = links.imaging_study or {"type": "ImagingStudy", "identifier": {
        "system": "urn:dicom:uid", "value": f"urn:oid:{links.study_uid}"}}
    rtype = out["resourceType"]
    if rtype in ("DiagnosticReport", "Observation"):
        if links.patient is not None:
            out["subject"] = links.patient
        if links.service_request is not None:
            out["basedOn"] = [links.service_request]
    if rtype == "DiagnosticReport":
        out["imagingStudy"] = [study]
        ids = [i for i in out.get("identifier", []) if i.get("system") != _ACCESSION_PSEUDONYM]
        if links.accession:
            ids.append({"type": _ACCESSION_TYPE, "value": links.accession})
        out["identifier"] = ids
    elif rtype == "Observation":
        out["derivedFrom"] = [study]
    elif rtype == "Provenance":
        out["entity"] = [{"role": "source", "what": study}]
    return out


def for_hospital(draft_bundle: dict[str, Any], links: HospitalLinks) -> dict[str, Any]:
    """The draft's transaction Bundle re-linked for the hospital's FHIR server (see :class:`HospitalLinks`):
    the same resources and conditional creates, so a re-delivery makes no duplicates. Validated against R4."""
    bundle = dict(draft_bundle)
    bundle["entry"] = [{**e, "resource": _relink(e["resource"], links)} for e in draft_bundle.get("entry", [])]
    return validated(Bundle, bundle, "FHIR Bundle for the hospital")


def final_for_hospital(report: dict[str, Any], links: HospitalLinks) -> dict[str, Any]:
    """The signed DiagnosticReport (:func:`final_report`) re-linked like :func:`for_hospital`; its results
    (the AI flag Observations) are left to the draft's resources."""
    return validated(DiagnosticReport, _relink(report, links), "signed DiagnosticReport for the hospital")


def accession_pseudonym(draft_bundle: dict[str, Any]) -> str:
    """The accession pseudonym our draft's DiagnosticReport carries ("" when the study had no accession)."""
    return next((str(i["value"]) for e in draft_bundle.get("entry", [])
                 if e.get("resource", {}).get("resourceType") == "DiagnosticReport"
                 for i in e["resource"].get("identifier", []) if i.get("system") == _ACCESSION_PSEUDONYM), "")


def report_identifier(bundle_or_report: dict[str, Any]) -> str:
    """``system|value`` of our DiagnosticReport identifier (the key of conditional create and update)."""
    resources = [e.get("resource", {}) for e in bundle_or_report.get("entry", [])] or [bundle_or_report]
    for resource in resources:
        if resource.get("resourceType") == "DiagnosticReport":
            for ident in resource.get("identifier", []):
                if ident.get("system") == _ID_SYSTEM:
                    return f"{_ID_SYSTEM}|{ident['value']}"
    raise OutputError("no DiagnosticReport with a clinical-mm identifier")


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "clinical-mm:" + "|".join(parts)))


class ReportBundleBuilder:
    """Builds and validates the FHIR transaction Bundle of one analysed study.

    Parameters
    ----------
    model_id
        ``name@version`` of the model.
    model_sha256
        sha256 of the checkpoint weights.
    """

    def __init__(self, model_id: str, model_sha256: str) -> None:
        self.model_id = model_id
        self.model_sha256 = model_sha256

    def build(
        self, *, study_uid: str, accession: str, findings: str, impression: str, flags: dict[str, float],
        thresholds: dict[str, float], raised: list[str], priority: str, issued: dt.datetime | None = None,
        regions: dict[str, dict[str, Any]] | None = None, input_gate: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Return the Bundle as a JSON-ready dict (validated against the R4 structure).

        ``regions``: per raised flag its boxes on the image's 0-100 grid, written as components of the flag's
        Observation. ``input_gate``: the gate's reading; an image outside the validated domain is said so in
        an extension and in the draft's title (its priority is what the flags give, never lowered).
        """
        issued_s = (issued or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        key = f"{study_uid}|{self.model_sha256}"
        study_ref = {"type": "ImagingStudy", "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}}
        meta = {"security": [_AI_LABEL], "tag": [{"system": "urn:clinical-mm:tag", "code": "ai-draft",
                                                  "display": "AI-generated draft, not reviewed"}]}
        device_id, report_id = _uuid("device", self.model_sha256), _uuid("report", key)
        device: dict[str, Any] = {
            "resourceType": "Device", "status": "active",
            "identifier": [{"system": "urn:clinical-mm:model-sha256", "value": self.model_sha256}],
            "deviceName": [{"name": self.model_id, "type": "model-name"}],
            "version": [{"value": self.model_id.rpartition("@")[2] or "0"}],
            "note": [{"text": "clinical-mm multimodal model (ViT, Q-Former, causal LM); drafts need radiologist sign-off"}],
        }
        observations = [(_uuid("flag", key, name),
                         _flag_observation(name, prob, name in raised, thresholds.get(name, 0.5), meta, study_ref,
                                           device_id, issued_s, _uuid("flag", key, name),
                                           (regions or {}).get(name)))
                        for name, prob in flags.items()]
        draft = f"FINDINGS: {findings}\nIMPRESSION: {impression}\n"
        report: dict[str, Any] = {
            "resourceType": "DiagnosticReport", "status": "preliminary", "meta": meta,
            "identifier": [{"system": _ID_SYSTEM, "value": report_id}],
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD",
                                      "display": "Radiology"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4",
                                 "display": "Diagnostic imaging study"}],
                     "text": "Chest radiograph, AI-generated preliminary report"},
            "extension": [{"url": "urn:clinical-mm:triage-priority", "valueCode": priority}],
            "issued": issued_s,
            "performer": [{"reference": f"urn:uuid:{device_id}", "display": f"{self.model_id} (AI, not a clinician)"}],
            "imagingStudy": [study_ref],
            "result": [{"reference": f"urn:uuid:{oid}"} for oid, _ in observations],
            "presentedForm": [{"contentType": "text/plain; charset=utf-8", "language": "en",
                               "title": "AI-generated preliminary draft: not final until signed by a radiologist",
                               "data": base64.b64encode(draft.encode("utf-8")).decode("ascii")}],
        }
        if input_gate is not None:
            report["extension"].append(_gate_extension(input_gate))
            if not input_gate["in_domain"]:
                report["presentedForm"][0]["title"] += (
                    "; the image is outside the domain the model was validated on (read with extra care)")
        if impression.strip():
            report["conclusion"] = impression.strip()
        if accession:
            report["identifier"].append({"system": _ACCESSION_PSEUDONYM, "value": accession})
        provenance_id = _uuid("provenance", key)
        targets = [{"reference": f"urn:uuid:{report_id}"}] + [{"reference": f"urn:uuid:{o}"} for o, _ in observations]
        provenance = _provenance(provenance_id, targets, issued_s, device_id, self.model_id, ("author", "Author"),
                                 study_ref)
        entries: list[tuple[str, dict[str, Any], str | None]] = [(device_id, device, f"identifier=urn:clinical-mm:model-sha256|{self.model_sha256}"),
                   (report_id, report, f"identifier={_ID_SYSTEM}|{report_id}")]
        entries += [(oid, obs, f"identifier={_ID_SYSTEM}|{oid}") for oid, obs in observations]
        entries.append((provenance_id, provenance, f"_tag={_PROVENANCE_TAG}|{provenance_id}"))
        return _transaction(entries)


def _gate_extension(reading: dict[str, Any]) -> dict[str, Any]:
    """The input gate's reading as a DiagnosticReport extension."""
    return {"url": "urn:clinical-mm:input-gate", "extension": [
        {"url": "in-validated-domain", "valueBoolean": bool(reading["in_domain"])},
        {"url": "distance", "valueDecimal": float(reading["score"])},
        {"url": "threshold", "valueDecimal": float(reading["threshold"])},
        {"url": "chest-radiograph-probability", "valueDecimal": float(reading["chest_radiograph"])},
    ]}


def _region_components(region: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A flag's region as Observation components: the peak and each box on the image's 0-100 grid."""
    if not region:
        return []
    out = [{"code": {"text": "image point the model weighs most (x y, 0-100 grid of the image)"},
            "valueString": " ".join(f"{v:g}" for v in region["peak"])}]
    out += [{"code": {"text": "image region (x0 y0 x1 y1, 0-100 grid of the image)"},
             "valueString": " ".join(f"{v:g}" for v in box)} for box in region["boxes"]]
    return out


def _flag_observation(name: str, prob: float, raised: bool, threshold: float, meta: dict[str, Any],
                      study_ref: dict[str, Any], device_id: str, issued_s: str, obs_id: str,
                      region: dict[str, Any] | None = None) -> dict[str, Any]:
    """One triage flag as an Observation: its calibrated probability, operating threshold, positive or not,
    and (for a raised flag of a model that localises) where the model sees it."""
    label = FINDING_LABELS.get(name, name)
    return {
        "resourceType": "Observation", "status": "preliminary", "meta": meta,
        "identifier": [{"system": _ID_SYSTEM, "value": f"{obs_id}"}],
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "imaging", "display": "Imaging"}]}],
        "code": {"coding": [{"system": _FLAG_SYSTEM, "code": name, "display": label}],
                 "text": f"AI triage flag: {label}"},
        "valueQuantity": {"value": round(float(prob), 4), "unit": "probability",
                          "system": "http://unitsofmeasure.org", "code": "1"},
        "interpretation": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
            "code": "POS" if raised else "NEG",
            "display": "Positive" if raised else "Negative"}]}],
        "component": [{
            "code": {"text": "operating threshold"},
            "valueQuantity": {"value": round(float(threshold), 4), "unit": "probability",
                              "system": "http://unitsofmeasure.org", "code": "1"},
        }, *_region_components(region)],
        "derivedFrom": [study_ref],
        "device": {"reference": f"urn:uuid:{device_id}"},
        "issued": issued_s,
    }


def _provenance(provenance_id: str, targets: list[dict[str, str]], recorded: str, device_id: str, display: str,
                agent: tuple[str, str], source: dict[str, Any]) -> dict[str, Any]:
    """A Provenance: the Device ``device_id`` as ``agent`` (participant type code and display) of ``targets``,
    ``source`` what they came from. Provenance has no identifier: a tag of its own keys its conditional create
    (no duplicate on re-delivery)."""
    return {
        "resourceType": "Provenance", "meta": {"tag": [{"system": _PROVENANCE_TAG, "code": provenance_id}]},
        "target": targets, "recorded": recorded,
        "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                 "code": "CREATE", "display": "create"}]},
        "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                        "code": agent[0], "display": agent[1]}]},
                   "who": {"reference": f"urn:uuid:{device_id}", "display": display}}],
        "entity": [{"role": "source", "what": source}],
    }


def _transaction(entries: list[tuple[str, dict[str, Any], str | None]]) -> dict[str, Any]:
    """A validated transaction Bundle of conditional creates: (id, resource, ifNoneExist) each, status codes
    checked."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction", "entry": []}
    for rid, resource, if_none_exist in entries:
        _check_status(resource)
        request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
        if if_none_exist:
            request["ifNoneExist"] = if_none_exist
        bundle["entry"].append({"fullUrl": f"urn:uuid:{rid}", "resource": resource, "request": request})
    return validated(Bundle, bundle, "FHIR Bundle")


def final_report(draft_bundle: dict[str, Any], *, findings: str, impression: str, signer_name: str, signer_id: str,
                 issued: dt.datetime | None = None) -> dict[str, Any]:
    """The signed DiagnosticReport: the draft's report with status ``final``, the signed text, the signer
    (a Practitioner by identifier) as performer and results interpreter, and the model kept as a contributor
    in an extension. Validated against R4."""
    reports = [e["resource"] for e in draft_bundle.get("entry", [])
               if e.get("resource", {}).get("resourceType") == "DiagnosticReport"]
    if not reports:
        raise OutputError("the draft bundle holds no DiagnosticReport")
    report: dict[str, Any] = {k: v for k, v in reports[0].items() if k not in ("meta", "performer", "result")}
    issued_s = (issued or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    signer = {"identifier": {"system": "urn:clinical-mm:reviewer", "value": signer_id},
              "display": signer_name or signer_id}
    text = f"FINDINGS: {findings}\nIMPRESSION: {impression}\n"
    report.update({
        "status": "final", "issued": issued_s, "performer": [signer], "resultsInterpreter": [signer],
        "meta": {"tag": [{"system": "urn:clinical-mm:tag", "code": "ai-assisted-signed",
                          "display": "AI-assisted draft, reviewed and signed by a radiologist"}]},
        "code": {**report["code"], "text": "Chest radiograph report"},
        "presentedForm": [{"contentType": "text/plain; charset=utf-8", "language": "en", "title": "Signed report",
                           "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}],
    })
    report["extension"] = [*report.get("extension", []),
                           {"url": "urn:clinical-mm:ai-draft-model", "valueString": str(
                               next((p.get("display", "") for p in reports[0].get("performer", [])), ""))}]
    if impression.strip():
        report["conclusion"] = impression.strip()
    else:
        report.pop("conclusion", None)
    _check_status(report)
    return validated(DiagnosticReport, report, "signed DiagnosticReport")


# --- structured extraction -> Condition, FamilyMemberHistory, MedicationStatement, AllergyIntolerance,
#     Observation, Provenance

_ASSERTION_URL = "urn:clinical-mm:assertion"
_CONDITION_VERIFICATION = {"present": "confirmed", "historical": "confirmed", "possible": "unconfirmed",
                           "absent": "refuted"}
_CONDITION_CLINICAL = {"present": "active"}
_MEDICATION_STATUS = {"present": "active", "historical": "completed", "possible": "unknown", "absent": "not-taken"}
_UCUM = {"%": "%", "mmhg": "mm[Hg]", "bpm": "/min", "/min": "/min", "beats/min": "/min", "breaths/min": "/min",
         "c": "Cel", "°c": "Cel", "degc": "Cel", "f": "[degF]", "°f": "[degF]", "degf": "[degF]", "mg/dl": "mg/dL",
         "g/dl": "g/dL", "mmol/l": "mmol/L", "meq/l": "meq/L", "ng/ml": "ng/mL", "ng/dl": "ng/dL", "pg/ml": "pg/mL",
         "ng/l": "ng/L", "u/l": "U/L", "iu/l": "[IU]/L", "k/ul": "10*3/uL", "kg": "kg", "lb": "[lb_av]",
         "lbs": "[lb_av]", "cm": "cm", "mm": "mm", "in": "[in_i]", "kg/m2": "kg/m2", "mg/l": "mg/L", "mg": "mg",
         "mcg": "ug", "g": "g", "units": "[U]", "ml": "mL", "l": "L", "meq": "meq", "mmol": "mmol"}
_DURATION_UCUM = {"day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo",
                  "hour": "h", "hours": "h"}
_CATEGORY = {"vital": ("vital-signs", "Vital Signs"), "lab": ("laboratory", "Laboratory"),
             "measurement": ("exam", "Exam")}
#: the unit a vital sign is in when the text gives none
_VITAL_UNITS = {"8867-4": "/min", "9279-1": "/min", "59408-5": "%", "85354-9": "mmHg"}
_BP_PARTS = (("8480-6", "Systolic blood pressure"), ("8462-4", "Diastolic blood pressure"))


def _quantity(value: str, unit: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": float(value)}
    if unit:
        q["unit"] = unit
        code = _UCUM.get(unit.lower())
        if code:
            q.update(system="http://unitsofmeasure.org", code=code)
    return q


def _concept(entity: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": entity["text"]}
    if entity.get("code"):
        out["coding"] = [entity["code"]]
    return out


def _dosage(entity: dict[str, Any]) -> dict[str, Any]:
    parts = [entity.get(k) for k in ("dose", "route", "frequency", "duration")]
    dosage: dict[str, Any] = {"text": " ".join(str(p) for p in parts if p) or entity["text"]}
    frequency = entity.get("frequency")
    repeat: dict[str, Any] | None = None
    if frequency in _FREQUENCY_TIMING:
        repeat = dict(_FREQUENCY_TIMING[frequency])
    elif isinstance(frequency, str) and frequency.startswith("Q") and frequency.endswith("H"):
        hours = frequency[1:-1].split("-")
        repeat = {"frequency": 1, "period": float(hours[0]), "periodUnit": "h"}
        if len(hours) == 2:
            repeat["periodMax"] = float(hours[1])
    duration = entity.get("duration")
    if isinstance(duration, str):
        value, _, unit = duration.partition(" ")
        repeat = repeat or {}
        if unit in _DURATION_UCUM:
            repeat["boundsDuration"] = {"value": float(value), "unit": unit,
                                        "system": "http://unitsofmeasure.org", "code": _DURATION_UCUM[unit]}
        elif value.isdigit():  # "x 2 doses"
            repeat["count"] = int(value)
    if repeat:
        dosage["timing"] = {"repeat": repeat}
    if entity.get("as_needed"):
        reason = entity.get("as_needed_for")
        if reason:
            dosage["asNeededCodeableConcept"] = {"text": reason}
        else:
            dosage["asNeededBoolean"] = True
    if entity.get("route"):
        dosage["route"] = {"coding": [{"system": "urn:clinical-mm:route", "code": entity["route"]}],
                           "text": entity["route"]}
    dose = entity.get("dose")
    if isinstance(dose, str):
        value, _, unit = dose.partition(" ")
        if "-" in value:
            low, high = value.split("-", 1)
            dosage["doseAndRate"] = [{"doseRange": {"low": _quantity(low, unit), "high": _quantity(high, unit)}}]
        else:
            dosage["doseAndRate"] = [{"doseQuantity": _quantity(value, unit)}]
    return dosage


def extraction_bundle(document_id: str, text_sha256: str, entities: list[dict[str, Any]], tool: str,
                      issued: dt.datetime | None = None) -> dict[str, Any]:
    """The entities extracted from one document (``ClinicalExtractor.entities(...)[i].to_dict()``) as a FHIR R4
    transaction Bundle: a Condition per problem about the patient (verificationStatus from the assertion:
    refuted when absent, unconfirmed when possible), a FamilyMemberHistory per problem about a relative, a
    MedicationStatement per medication, an AllergyIntolerance per drug of an allergies section, an Observation
    per lab, vital sign and measurement with a value, and a Provenance naming the extractor and the source
    document (by hash).
    Hypothetical mentions are not facts and make no resource. Every resource carries the AIAST security label
    and its assertion; the subject is the source document's patient, by display only (the text is
    de-identified)."""
    issued_s = (issued or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
    device_id = _uuid("extractor", tool)
    about = _Extracted(subject={"type": "Patient", "display": f"patient of source document {document_id}"},
                       issued=issued_s, device_id=device_id)
    entries: list[tuple[str, dict[str, Any], str | None]] = []
    for e in entities:
        rid = _uuid("extracted", text_sha256, e["type"], str(e["start"]), str(e["end"]))
        resource = _entity_resource(e, rid, about)
        if resource is not None:
            entries.append((rid, resource, f"identifier={_ID_SYSTEM}|{rid}"))
    device, provenance_id, provenance = _extraction_device_and_provenance(document_id, text_sha256, tool, about,
                                                                          [rid for rid, _, _ in entries])
    return _transaction([(device_id, device, f"identifier=urn:clinical-mm:extractor|{tool}"), *entries,
                         (provenance_id, provenance, f"_tag={_PROVENANCE_TAG}|{provenance_id}")])


@dataclass(frozen=True)
class _Extracted:
    """What every resource of one extraction bundle shares: the subject, the time, the extractor device."""

    subject: dict[str, Any]
    issued: str
    device_id: str


def _entity_resource(e: dict[str, Any], rid: str, about: _Extracted) -> dict[str, Any] | None:
    """The R4 resource stating one extracted entity, or None where it states no fact."""
    assertion = e["assertion"]
    common: dict[str, Any] = {"meta": {"security": [_AI_LABEL]}, "identifier": [{"system": _ID_SYSTEM, "value": rid}],
                              "extension": [{"url": _ASSERTION_URL, "valueCode": assertion}]}
    if assertion == "hypothetical":
        return None
    if e["type"] == "problem" and assertion == "family":
        return {"resourceType": "FamilyMemberHistory", **common, "status": "partial",
                "patient": about.subject, "date": about.issued,
                "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                             "code": "FAMMEMB", "display": "family member"}]},
                "condition": [{"code": _concept(e)}]}
    if e["type"] == "problem":
        return _condition(e, common, about)
    if e["type"] == "medication" and e.get("section") == "allergies":
        return None if assertion in ("absent", "family") else _allergy(e, common, about)
    if e["type"] == "medication" and assertion != "family":
        return {"resourceType": "MedicationStatement", **common, "status": _MEDICATION_STATUS[assertion],
                "medicationCodeableConcept": _concept(e), "subject": about.subject, "dateAsserted": about.issued,
                "informationSource": {"reference": f"urn:uuid:{about.device_id}"}, "dosage": [_dosage(e)]}
    if e["type"] in _CATEGORY and "value" in e and assertion != "family":
        return _observation(e, common, about)
    return None


def _condition(e: dict[str, Any], common: dict[str, Any], about: _Extracted) -> dict[str, Any]:
    """A problem about the patient: verificationStatus from the assertion (refuted when absent, unconfirmed
    when possible)."""
    assertion = e["assertion"]
    resource = {"resourceType": "Condition", **common, "subject": about.subject, "code": _concept(e),
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": _CONDITION_VERIFICATION[assertion]}]},
                "recordedDate": about.issued}
    if assertion in _CONDITION_CLINICAL:
        resource["clinicalStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": _CONDITION_CLINICAL[assertion]}]}
    if e.get("laterality"):
        resource["bodySite"] = [{"text": e["laterality"]}]
    return resource


def _allergy(e: dict[str, Any], common: dict[str, Any], about: _Extracted) -> dict[str, Any]:
    """A drug of an allergies section ("no known allergy to penicillin" states none and makes no resource)."""
    return {"resourceType": "AllergyIntolerance", **common, "patient": about.subject, "recordedDate": about.issued,
            "type": "allergy", "category": ["medication"], "code": _concept(e),
            "clinicalStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "code": "active"}]},
            "verificationStatus": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "code": "unconfirmed" if e["assertion"] == "possible" else "confirmed"}]}}


def _observation(e: dict[str, Any], common: dict[str, Any], about: _Extracted) -> dict[str, Any]:
    """A lab, vital sign or measurement with its value: a quantity, a range, blood pressure components or a
    string."""
    code, display = _CATEGORY[e["type"]]
    resource: dict[str, Any] = {
        "resourceType": "Observation", **common, "status": "preliminary",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": code, "display": display}]}],
        "code": _concept(e) if e.get("code") else {"text": f"size of {e.get('of', e['text'])}"},
        "subject": about.subject, "issued": about.issued, "device": {"reference": f"urn:uuid:{about.device_id}"}}
    value, unit = str(e["value"]), e.get("unit")
    loinc = (e.get("code") or {}).get("code")
    if unit is None and e["type"] == "vital":
        unit = _VITAL_UNITS.get(loinc or "")
    comparator = value[:len(value) - len(value.lstrip("<>="))]  # "<0.01" is below 0.01, not 0.01
    numbers = value[len(comparator):].replace(" x ", "x").split("x")
    if loinc == "85354-9" and "/" in value:
        resource["component"] = [{"code": {"coding": [{"system": "http://loinc.org", "code": c, "display": d}]},
                                  "valueQuantity": _quantity(v, unit or "mmHg")}
                                 for (c, d), v in zip(_BP_PARTS, value.split("/", 1), strict=True)]
    elif all(n.replace(".", "", 1).isdigit() for n in numbers) and len(numbers) == 1:
        resource["valueQuantity"] = _quantity(numbers[0], unit)
        if comparator:
            resource["valueQuantity"]["comparator"] = comparator
    elif "-" in value and all(p.replace(".", "", 1).isdigit() for p in value.split("-", 1)):
        low, high = value.split("-", 1)
        resource["valueRange"] = {"low": _quantity(low, unit), "high": _quantity(high, unit)}
    else:
        resource["valueString"] = f"{value} {unit}" if unit else value
    if e.get("laterality"):
        resource["bodySite"] = {"text": e["laterality"]}
    return resource


def _extraction_device_and_provenance(document_id: str, text_sha256: str, tool: str, about: _Extracted,
                                      targets: list[str]) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """The extractor as a Device, and the Provenance naming it and the source document (by hash)."""
    device: dict[str, Any] = {"resourceType": "Device", "status": "active",
                              "deviceName": [{"name": tool, "type": "model-name"}],
                              "identifier": [{"system": "urn:clinical-mm:extractor", "value": tool}],
                              "note": [{"text": "clinical-mm structured extraction (rules and vocabulary); "
                                                "machine-extracted facts need clinical review"}]}
    source = {"identifier": {"system": "urn:clinical-mm:source-sha256", "value": text_sha256},
              "display": f"source document {document_id}"}
    provenance_id = _uuid("extraction-provenance", text_sha256, tool)
    provenance = _provenance(provenance_id, [{"reference": f"urn:uuid:{rid}"} for rid in targets]
                             or [{"reference": f"urn:uuid:{about.device_id}"}], about.issued, about.device_id, tool,
                             ("assembler", "Assembler"), source)
    return device, provenance_id, provenance
