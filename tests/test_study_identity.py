"""A study's identity for the radiologist (issue 22): the de-identifier files the original accession number and
patient name in the key vault under the study's pseudonymous UID, ``GET /v1/studies/{id}/identity`` re-links them
for the radiologist role only, and every read is an audit record that holds no value."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import jwt
import pydicom
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.connectors.fhir_client import StudyContext
from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import AuditError
from clinical_mm.deid import DicomDeidentifier, Option
from clinical_mm.deid.pseudonymizer import STUDY_ACCESSION, STUDY_PATIENT_NAME, Pseudonymizer
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.outputs.fhir_r4 import ReportBundleBuilder
from clinical_mm.pipeline.study_preview import StudyPreview
from clinical_mm.service.app import create_app
from clinical_mm.service.auth import JwtVerifier
from clinical_mm.service.egress import FhirEgress
from clinical_mm.service.identity_lookup import REIDENTIFY_ACTION, IdentityLookup
from clinical_mm.service.service_context import ServiceContext
from clinical_mm.service.spool import Spool
from clinical_mm.service.store import ROLES, ServiceStore
from clinical_mm.synth.study_synthesizer import StudySynthesizer

SECRET = "identity-test-secret-of-at-least-32-chars"
KEY = PseudonymKey(b"\x37" * 32)
NAME, ACCESSION, MRN = "QXCANARY^ZELDA^Q", "QXACC5566", "QXPID778899"
STUDY = "2.25.424242"


def _bearer(*roles: str) -> dict[str, str]:
    token = jwt.encode({"sub": "tester", "roles": list(roles), "aud": "clinical-mm", "exp": int(time.time()) + 600},
                       SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


class _BrokenSink:
    """An audit log that takes nothing."""

    def append(self, record: AuditRecord) -> int:
        raise OSError("disk full")


def _app(root: Path, *, vault: bool = True, audit: Any = None) -> FastAPI:
    store = ServiceStore(root / "service.sqlite")
    sink = audit or SQLiteAuditSink(root / "audit.sqlite")
    lookup = IdentityLookup(PseudonymVault(root / "vault.sqlite", KEY), store, root / "results", sink) if vault else None
    ctx = ServiceContext(store, sink, ["127.0.0.1"], root / "results", StudyPreview(DicomDeidentifier(KEY)).render,
                         Spool(root / "spool", store, Pseudonymizer(KEY)),
                         JwtVerifier(secret=SECRET, public_key_file=None, issuer=None, audience="clinical-mm"),
                         identity=lookup)
    return create_app(ctx)


def _add_study(app: FastAPI, study: str, root: Path, *, fhir_accession: str | None = None) -> None:
    store: ServiceStore = app.state.ctx.store
    store.add_instance(study + ".1", study, root / "x.dcm")
    result: dict[str, Any] = {"study": study, "flags": {}, "raised": [], "priority": "routine",
                              "impression": "No acute process."}
    if fhir_accession is not None:  # the draft's bundle, carrying the accession pseudonym, as the pipeline writes it
        (root / "results" / "fhir").mkdir(parents=True, exist_ok=True)
        bundle = ReportBundleBuilder("clinical-mm-cxr@1.0", "ab" * 32).build(
            study_uid=study, accession=fhir_accession, findings="Clear lungs.", impression="No acute process.",
            flags={"pneumothorax": 0.1}, thresholds={"pneumothorax": 0.5}, raised=[], priority="routine")
        (root / "results" / "fhir" / f"{study}.json").write_text(json.dumps(bundle))
        result["fhir"] = f"fhir/{study}.json"
    store.set_state(study, "analyzed", result=result, priority="routine")


def _records(root: Path) -> list[dict[str, Any]]:
    return [r for r in SQLiteAuditSink(root / "audit.sqlite").records() if r["action"] == REIDENTIFY_ACTION]


# ---------------------------------------------------------------------------------------------- de-identification
@pytest.fixture(scope="module")
def canary_study(tmp_path_factory: pytest.TempPathFactory) -> list[pydicom.Dataset]:
    root = tmp_path_factory.mktemp("identity-synth")
    study = StudySynthesizer(71).make_study(0, root)
    datasets = [pydicom.dcmread(root / f) for f in study.files]
    for ds in datasets:
        ds.PatientName, ds.AccessionNumber, ds.PatientID = NAME, ACCESSION, MRN
    return datasets


def test_when_a_remembering_deidentifier_reads_a_study_then_its_accession_and_name_are_filed_under_its_pseudonym(
        canary_study: list[pydicom.Dataset], tmp_path: Path) -> None:
    deid = DicomDeidentifier(KEY, remember=True)
    study = deid.deidentify_study([ds.copy() for ds in canary_study])
    issued = deid.pseudo.drain()
    assert (STUDY_PATIENT_NAME, study.study_uid, NAME) in issued
    assert (STUDY_ACCESSION, study.study_uid, ACCESSION) in issued
    vault = PseudonymVault(tmp_path / "vault.sqlite", KEY)
    vault.record(issued)
    assert vault.find(STUDY_PATIENT_NAME, study.study_uid) == NAME
    assert vault.find(STUDY_ACCESSION, study.study_uid) == ACCESSION
    assert vault.find(STUDY_PATIENT_NAME, "2.25.1") is None
    vault.close()
    raw = (tmp_path / "vault.sqlite").read_bytes()
    assert b"QXCANARY" not in raw and ACCESSION.encode() not in raw  # encrypted like every original


@pytest.mark.parametrize(("remember", "options", "filed"), [
    (False, (), False),  # nothing is remembered without a vault
    (True, (Option.RETAIN_UIDS,), False),  # a retained UID is no pseudonym to file the originals under
    (True, (), True),
])
def test_when_the_deidentifier_does_not_remember_or_keeps_the_uids_then_nothing_is_filed(
        canary_study: list[pydicom.Dataset], remember: bool, options: tuple[Option, ...], filed: bool) -> None:
    deid = DicomDeidentifier(KEY, options, remember=remember)
    deid.deidentify_study([ds.copy() for ds in canary_study])
    kinds = {kind for kind, _, _ in deid.pseudo.drain()}
    assert (STUDY_PATIENT_NAME in kinds) is filed and (STUDY_ACCESSION in kinds) is filed


# ---------------------------------------------------------------------------------------------- the API
def test_when_a_radiologist_asks_then_the_identity_comes_back_uncached_and_the_read_is_audited_without_values(
        tmp_path: Path) -> None:
    app = _app(tmp_path)
    _add_study(app, STUDY, tmp_path)
    app.state.ctx.identity.vault.record([(STUDY_ACCESSION, STUDY, ACCESSION), (STUDY_PATIENT_NAME, STUDY, NAME)])
    client = TestClient(app)
    r = client.get(f"/v1/studies/{STUDY}/identity", headers=_bearer("radiologist"))
    assert r.status_code == 200, r.text
    assert r.json() == {"study": STUDY, "accession": ACCESSION, "patient_name": NAME}
    assert r.headers["cache-control"] == "no-store"
    (record,) = _records(tmp_path)
    assert (record["actor"], record["study"], record["outcome"]) == ("jwt:tester", STUDY, "ok")
    assert record["detail"] == "re-linked: accession, patient name"
    audit = json.dumps(SQLiteAuditSink(tmp_path / "audit.sqlite").records())
    assert "QXCANARY" not in audit and ACCESSION not in audit and "ZELDA" not in audit


@pytest.mark.parametrize("roles", [["pacs"], ["auditor"], ["admin"], ["pacs", "auditor", "admin"]])
def test_when_another_role_asks_then_it_is_refused_and_nothing_is_read(tmp_path: Path, roles: list[str]) -> None:
    app = _app(tmp_path)
    _add_study(app, STUDY, tmp_path)
    app.state.ctx.identity.vault.record([(STUDY_ACCESSION, STUDY, ACCESSION), (STUDY_PATIENT_NAME, STUDY, NAME)])
    client = TestClient(app)
    r = client.get(f"/v1/studies/{STUDY}/identity", headers=_bearer(*roles))
    assert r.status_code == 403
    assert "QXCANARY" not in r.text and ACCESSION not in r.text
    assert client.get(f"/v1/studies/{STUDY}/identity").status_code == 401
    assert _records(tmp_path) == []  # no vault read, so no re-identification record (the request's own is there)
    assert [r["outcome"] for r in SQLiteAuditSink(tmp_path / "audit.sqlite").records()] == ["403", "401"]


def test_when_the_study_predates_the_filed_name_then_the_accession_comes_through_its_draft_and_the_name_is_null(
        tmp_path: Path) -> None:
    app = _app(tmp_path)
    pseudonym = Pseudonymizer(KEY).identifier("accession", ACCESSION)
    _add_study(app, STUDY, tmp_path, fhir_accession=pseudonym)
    app.state.ctx.identity.vault.record([("accession", pseudonym, ACCESSION)])
    _add_study(app, "2.25.7", tmp_path)  # analysed, nothing in the vault
    client = TestClient(app)
    old = client.get(f"/v1/studies/{STUDY}/identity", headers=_bearer("radiologist")).json()
    assert old == {"study": STUDY, "accession": ACCESSION, "patient_name": None}
    bare = client.get("/v1/studies/2.25.7/identity", headers=_bearer("radiologist")).json()
    assert bare == {"study": "2.25.7", "accession": None, "patient_name": None}
    assert [r["detail"] for r in _records(tmp_path)] == ["re-linked: accession; not recorded: patient name",
                                                         "not recorded: accession, patient name"]


def test_when_the_study_is_unknown_then_404_and_the_typed_id_is_not_recorded(tmp_path: Path) -> None:
    client = TestClient(_app(tmp_path))
    typed = "QXACC5566"  # a caller may type an accession where the study id goes
    assert client.get(f"/v1/studies/{typed}/identity", headers=_bearer("radiologist")).status_code == 404
    assert _records(tmp_path) == []
    assert typed not in json.dumps(SQLiteAuditSink(tmp_path / "audit.sqlite").records())


def test_when_there_is_no_vault_then_503(tmp_path: Path) -> None:
    app = _app(tmp_path, vault=False)
    _add_study(app, STUDY, tmp_path)
    r = TestClient(app).get(f"/v1/studies/{STUDY}/identity", headers=_bearer("radiologist"))
    assert r.status_code == 503 and "not configured" in r.json()["detail"]


def test_when_the_audit_log_takes_nothing_then_no_identity_is_returned(tmp_path: Path) -> None:
    app = _app(tmp_path, audit=_BrokenSink())
    _add_study(app, STUDY, tmp_path)
    app.state.ctx.identity.vault.record([(STUDY_ACCESSION, STUDY, ACCESSION), (STUDY_PATIENT_NAME, STUDY, NAME)])
    r = TestClient(app).get(f"/v1/studies/{STUDY}/identity", headers=_bearer("radiologist"))
    assert r.status_code == 503 and ACCESSION not in r.text and "QXCANARY" not in r.text
    with pytest.raises(AuditError):
        app.state.ctx.identity.identity(STUDY, "someone")


def test_when_a_vault_row_was_altered_then_409_and_the_refusal_is_audited(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _add_study(app, STUDY, tmp_path)
    vault: PseudonymVault = app.state.ctx.identity.vault
    vault.record([(STUDY_ACCESSION, STUDY, ACCESSION), (STUDY_PATIENT_NAME, STUDY, NAME),
                  (STUDY_PATIENT_NAME, "2.25.99", "QXOTHER^PATIENT")])
    with sqlite3.connect(tmp_path / "vault.sqlite") as db:  # another study's name moved onto this study's row
        other = db.execute("SELECT nonce, ciphertext FROM vault WHERE pseudonym = '2.25.99'").fetchone()
        db.execute("UPDATE vault SET nonce = ?, ciphertext = ? WHERE kind = ? AND pseudonym = ?",
                   (*other, STUDY_PATIENT_NAME, STUDY))
    r = TestClient(app).get(f"/v1/studies/{STUDY}/identity", headers=_bearer("radiologist"))
    assert r.status_code == 409 and "QXOTHER" not in r.text and ACCESSION not in r.text
    (record,) = _records(tmp_path)
    assert (record["outcome"], record["detail"]) == ("refused", "ReidentificationError")


def test_when_the_roles_are_listed_then_only_the_radiologist_is_admitted(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _add_study(app, STUDY, tmp_path)
    client = TestClient(app)
    admitted = {role for role in ROLES
                if client.get(f"/v1/studies/{STUDY}/identity", headers=_bearer(role)).status_code == 200}
    assert admitted == {"radiologist"}


class _FakeFhir:
    """The FHIR server as egress asks it: the order, imaging study and patient of an accession."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def study_context(self, accession: str, study_uid: str, documents: bool = True) -> StudyContext:
        self.asked.append((accession, study_uid))
        return StudyContext(service_request={"resourceType": "ServiceRequest", "id": "sr1"},
                            patient={"resourceType": "Patient", "id": "p1"})


def test_when_egress_links_a_draft_then_it_finds_the_order_by_the_original_accession(tmp_path: Path) -> None:
    app = _app(tmp_path)
    pseudonym = Pseudonymizer(KEY).identifier("accession", ACCESSION)
    _add_study(app, STUDY, tmp_path, fhir_accession=pseudonym)
    vault: PseudonymVault = app.state.ctx.identity.vault
    vault.record([("accession", pseudonym, ACCESSION), ("uid", STUDY, "1.2.3.4")])
    client = _FakeFhir()
    egress = FhirEgress(client, vault, app.state.ctx.store, tmp_path / "results")  # type: ignore[arg-type]
    bundle = json.loads((tmp_path / "results" / "fhir" / f"{STUDY}.json").read_text())
    links = egress.links(STUDY, bundle)
    assert client.asked == [(ACCESSION, "1.2.3.4")]
    assert (links.accession, links.study_uid, links.patient) == (ACCESSION, "1.2.3.4", {"reference": "Patient/p1"})
