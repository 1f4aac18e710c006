"""Audit records as FHIR R4 ``AuditEvent`` resources, in the shape of IHE BALP (Basic Audit Log Patterns).

An HTTP request of our API (``http METHOD /route``) is a RESTful interaction: ``type`` rest, ``subtype`` the
interaction (create, read, update, delete, search-type) and ``meta.profile`` the BALP basic pattern it follows. Our
other actions (receiving and pulling studies, de-identification, the model's decisions, callbacks, re-linking
pseudonyms) carry the DICOM audit event type closest to them (Import, Export, Patient Record, Application Activity)
and our action as a subtype of ``urn:clinical-mm:audit-action``. The study is an entity by its pseudonymous Study
Instance UID; hashes, the model and the reason are entity details; the record's id and chain hash are an entity of
their own, so a repository can match the event back to the signed log. No PHI: the record holds none.

A signed checkpoint of the chain (an anchor) is an ``AuditEvent`` of subtype ``audit-checkpoint`` whose entity
details carry the checkpoint; :func:`checkpoint_from_event` reads it back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from clinical_mm.audit.signing import Checkpoint
from clinical_mm.core.fhir_release import validate_resource

__all__ = ["ACTION_SYSTEM", "CHECKPOINT_CODE", "audit_event", "checkpoint_event", "checkpoint_from_event"]

ACTION_SYSTEM = "urn:clinical-mm:audit-action"
CHECKPOINT_CODE = "audit-checkpoint"
_BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_REST = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
         "display": "Restful Operation"}
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
# HTTP method -> (restful interaction, AuditEvent.action, BALP pattern)
_METHODS = {"POST": ("create", "C", "Create"), "PUT": ("update", "U", "Update"), "PATCH": ("patch", "U", "Update"),
            "DELETE": ("delete", "D", "Delete")}
# our action (its first word) -> (DICOM audit event type code, display, AuditEvent.action)
_ACTIONS = {"receive": ("110107", "Import", "C"), "fetch": ("110107", "Import", "C"),
            "callback": ("110106", "Export", "R"), "deliver": ("110106", "Export", "R"),
            "reidentify": ("110110", "Patient Record", "R"), "purge": ("110110", "Patient Record", "D")}
_APPLICATION = ("110100", "Application Activity", "E")
_NAMESPACE = uuid.UUID("5b0a3f4e-2d1c-4c7e-9a51-6f1f8f2b9c01")


def _outcome(outcome: str) -> str:
    """AuditEvent.outcome: 0 success, 4 minor failure (a refusal), 8 serious failure; an HTTP status by its class."""
    if outcome.isdigit():
        status = int(outcome)
        return "0" if status < 400 else "4" if status < 500 else "8"
    return {"refused": "4", "quarantined": "4", "failed": "8", "error": "8"}.get(outcome, "0")


def _type_and_profile(action: str) -> tuple[dict[str, Any], dict[str, Any], str, str | None]:
    """(type, subtype, action code, BALP profile or None) of one of our actions."""
    if action.startswith("http "):
        _, method, *route = action.split(" ", 2)
        path = route[0] if route else ""
        if method in _METHODS:
            interaction, code, pattern = _METHODS[method]
        elif path.rstrip("/").endswith("}"):
            interaction, code, pattern = "read", "R", "Read"
        else:
            interaction, code, pattern = "search-type", "E", "Query"
        return _REST, {"system": _INTERACTION, "code": interaction}, code, _BALP + pattern
    dcm, display, code = _ACTIONS.get(action.split(":", 1)[0], _APPLICATION)
    return {"system": _DCM, "code": dcm, "display": display}, {"system": ACTION_SYSTEM, "code": action}, code, None


def _details(pairs: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"type": name, "valueString": value} for name, value in pairs.items() if value]


def audit_event(record: Mapping[str, Any], site: str = "clinical-mm") -> dict[str, Any]:
    """One audit record (a row of the log: id, its fields, prev_hash, hash) as a validated R4 ``AuditEvent``; its id is
    derived from the chain hash, so sending it twice names the same event."""
    event_type, subtype, code, profile = _type_and_profile(str(record["action"]))
    entities: list[dict[str, Any]] = [{
        "what": {"identifier": {"system": ACTION_SYSTEM + ":record", "value": str(record["id"])}},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                 "display": "System Object"},
        "description": "clinical-mm audit log record",
        "detail": _details({"hash": str(record["hash"]), "prev_hash": str(record["prev_hash"])}),
    }]
    if record.get("study"):
        entities.append({
            "what": {"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{record['study']}"}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                     "display": "System Object"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "3", "display": "Report"},
            "description": "pseudonymous Study Instance UID",
            "detail": _details({k: str(record.get(k) or "") for k in ("input_hash", "output_hash", "model_id",
                                                                      "model_sha256", "detail")}),
        })
    elif any(record.get(k) for k in ("input_hash", "output_hash", "model_id", "model_sha256", "detail")):
        entities[0]["detail"] += _details({k: str(record.get(k) or "") for k in ("input_hash", "output_hash",
                                                                                 "model_id", "model_sha256", "detail")})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(uuid.uuid5(_NAMESPACE, str(record["hash"]))),
        "type": event_type, "subtype": [subtype], "action": code, "recorded": str(record["timestamp"]),
        "outcome": _outcome(str(record["outcome"])), "outcomeDesc": str(record["outcome"])[:200],
        "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type",
                                        "code": "humanuser" if record["actor"] != site else "dataprocessor"}]},
                   "who": {"identifier": {"system": ACTION_SYSTEM + ":actor", "value": str(record["actor"])}},
                   "requestor": True}],
        "source": {"observer": {"display": site},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                             "display": "Application Server"}]},
        "entity": entities,
    }
    if profile is not None:
        event["meta"] = {"profile": [profile]}
    return validate_resource(event, "audit event")


def checkpoint_event(checkpoint: Checkpoint, site: str = "clinical-mm") -> dict[str, Any]:
    """A signed checkpoint of the audit chain as an ``AuditEvent`` (an anchor on the FHIR server)."""
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": _DCM, "code": "110100", "display": "Application Activity"},
        "subtype": [{"system": ACTION_SYSTEM, "code": CHECKPOINT_CODE}],
        "action": "E", "recorded": checkpoint.time, "outcome": "0",
        "agent": [{"who": {"display": site}, "requestor": False}],
        "source": {"observer": {"display": site},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                             "display": "Application Server"}]},
        "entity": [{"what": {"identifier": {"system": ACTION_SYSTEM + ":checkpoint", "value": checkpoint.head}},
                    "description": "signed checkpoint of the clinical-mm audit chain",
                    "detail": _details({"records": str(checkpoint.records), "head": checkpoint.head,
                                        "time": checkpoint.time, "key_id": checkpoint.key_id,
                                        "signature": checkpoint.signature})}],
    }
    return validate_resource(event, "audit checkpoint")


def checkpoint_from_event(event: Mapping[str, Any]) -> Checkpoint | None:
    """The checkpoint an ``AuditEvent`` of :func:`checkpoint_event` carries; None for any other event."""
    if not any(s.get("system") == ACTION_SYSTEM and s.get("code") == CHECKPOINT_CODE for s in event.get("subtype", [])):
        return None
    details = {d.get("type"): d.get("valueString") for e in event.get("entity", []) for d in e.get("detail", [])}
    try:
        return Checkpoint(int(details["records"] or ""), str(details["head"]), str(details["time"]),
                          str(details["key_id"]), str(details["signature"]))
    except (KeyError, ValueError):
        return None
