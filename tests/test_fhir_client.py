"""The FHIR client against a real FHIR engine (Medplum's, in memory, on 127.0.0.1): reading an accession's
order, study, patient and notes; paging; transaction bundles with conditional create (no duplicates on
re-delivery); conditional update to final; and its errors (server down, refused, invalid answers), which
carry no value."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.fhir_harness import TOKEN, FhirServer
from support.serve_harness import free_port

from clinical_mm.connectors.fhir_client import FhirClient
from clinical_mm.core.errors import RemoteRefusedError, RemoteUnavailableError
from clinical_mm.outputs.fhir_r4 import (
    HospitalLinks,
    ReportBundleBuilder,
    final_for_hospital,
    final_report,
    for_hospital,
    report_identifier,
)

ACCESSION = "ACC-CANARY-7731"
STUDY_UID = "1.2.826.0.1.3680043.8.498.77310001"


@pytest.fixture(scope="module")
def fhir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    server = FhirServer(free_port(), tmp_path_factory.mktemp("fhir") / "fhir.log").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seeded(fhir: FhirServer) -> dict[str, dict[str, Any]]:
    return fhir.seed_order(ACCESSION, STUDY_UID)


def _client(fhir: FhirServer, **kw: Any) -> FhirClient:
    return FhirClient(fhir.base, token=TOKEN, backoff_s=0.01, **kw)


def _draft(study_uid: str = "2.25.1234") -> dict[str, Any]:
    return ReportBundleBuilder("clinical-mm-cxr@1.0", "ab" * 32).build(
        study_uid=study_uid, accession="PSEUDOACC0000001", findings="No focal consolidation.",
        impression="No acute disease.", flags={"pneumothorax": 0.12, "effusion": 0.71},
        thresholds={"pneumothorax": 0.5, "effusion": 0.5}, raised=["effusion"], priority="urgent",
        issued=dt.datetime(2031, 7, 22, tzinfo=dt.UTC))


@pytest.mark.integration
def test_when_an_accession_is_asked_for_then_its_order_study_patient_and_notes_are_read(
        fhir: FhirServer, seeded: dict[str, dict[str, Any]]) -> None:
    with _client(fhir) as client:
        ctx = client.study_context(ACCESSION, STUDY_UID)
        assert ctx.service_request["id"] == seeded["order"]["id"]
        assert ctx.imaging_study is not None and ctx.imaging_study["id"] == seeded["study"]["id"]
        assert ctx.patient is not None and ctx.patient["id"] == seeded["patient"]["id"]
        assert [d["id"] for d in ctx.documents] == [seeded["note"]["id"]]
        assert client.study_context(ACCESSION, STUDY_UID, documents=False).documents == []
        # without the UID the study is found through the order it is based on
        assert client.study_context(ACCESSION).imaging_study["id"] == seeded["study"]["id"]  # type: ignore[index]
        with pytest.raises(RemoteRefusedError) as refused:
            client.study_context("ACC-NOT-THERE-55")
        assert "no ServiceRequest" in str(refused.value) and "ACC-NOT-THERE-55" not in str(refused.value)


@pytest.mark.integration
def test_when_a_search_has_many_pages_then_every_page_is_followed(fhir: FhirServer) -> None:
    patient = fhir.create({"resourceType": "Patient", "name": [{"family": "Pager"}]})
    for i in range(23):
        fhir.create({"resourceType": "DocumentReference", "status": "current", "description": f"note {i}",
                     "subject": {"reference": f"Patient/{patient['id']}"},
                     "content": [{"attachment": {"contentType": "text/plain", "data": "eA=="}}]})
    with _client(fhir) as client:
        found = client.search("DocumentReference", {"subject": f"Patient/{patient['id']}", "_count": "5"})
        assert sorted(d["description"] for d in found) == sorted(f"note {i}" for i in range(23))
        with pytest.raises(RemoteRefusedError, match="past 3 pages"):
            FhirClient(fhir.base, token=TOKEN, max_pages=3).search(
                "DocumentReference", {"subject": f"Patient/{patient['id']}", "_count": "5"})


@pytest.mark.integration
def test_when_the_same_results_are_sent_twice_then_the_server_holds_them_once_and_sign_off_makes_them_final(
        fhir: FhirServer, seeded: dict[str, dict[str, Any]]) -> None:
    draft = _draft()
    links = HospitalLinks(accession=ACCESSION, study_uid=STUDY_UID,
                          service_request={"reference": f"ServiceRequest/{seeded['order']['id']}"},
                          imaging_study={"reference": f"ImagingStudy/{seeded['study']['id']}"},
                          patient={"reference": f"Patient/{seeded['patient']['id']}"})
    bundle = for_hospital(draft, links)
    with _client(fhir) as client:
        first = client.transaction(bundle)
        again = client.transaction(for_hospital(draft, links))
        assert {e["response"]["status"][:3] for e in first["entry"]} == {"201"}
        # every entry is a conditional create: the second time each matches what is there
        assert {e["response"]["status"][:3] for e in again["entry"]} == {"200"}
        assert [e["response"]["location"] for e in again["entry"]] == [e["response"]["location"] for e in first["entry"]]
    reports = fhir.search("DiagnosticReport", identifier=report_identifier(draft))
    assert len(reports) == 1
    report = reports[0]
    assert len(fhir.search("Provenance", target=f"DiagnosticReport/{report['id']}")) == 1
    assert report["status"] == "preliminary"
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{seeded['order']['id']}"}]
    assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{seeded['study']['id']}"}]
    assert report["subject"] == {"reference": f"Patient/{seeded['patient']['id']}"}
    assert {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN",
                                 "display": "Accession ID"}]}, "value": ACCESSION} in report["identifier"]
    assert not any(i.get("system") == "urn:clinical-mm:accession-pseudonym" for i in report["identifier"])
    observations = [fhir.search("Observation", _id=r["reference"].split("/")[1])[0] for r in report["result"]]
    assert {o["code"]["coding"][0]["code"] for o in observations} == {"pneumothorax", "effusion"}
    assert all(o["basedOn"] == report["basedOn"] and o["subject"] == report["subject"] for o in observations)

    signed = final_report(draft, findings="No focal consolidation.", impression="Small left effusion.",
                          signer_name="Dr. Signer", signer_id="key_rad1")
    with _client(fhir) as client:
        updated = client.conditional_update(final_for_hospital(signed, links),
                                            {"identifier": report_identifier(signed)})
    assert updated["id"] == report["id"] and updated["status"] == "final"
    final = fhir.search("DiagnosticReport", identifier=report_identifier(draft))
    assert len(final) == 1 and final[0]["status"] == "final" and final[0]["conclusion"] == "Small left effusion."
    assert final[0]["basedOn"] == report["basedOn"] and final[0]["performer"][0]["display"] == "Dr. Signer"


@pytest.mark.integration
def test_when_the_server_is_down_or_refuses_then_typed_errors_say_so_without_values(
        fhir: FhirServer, tmp_path: Path) -> None:
    down = FhirClient(f"http://127.0.0.1:{free_port()}/fhir/R4", token=TOKEN, retries=2, backoff_s=0.01)
    with pytest.raises(RemoteUnavailableError, match=r"unavailable for search ServiceRequest after 3 attempts"):
        down.study_context(ACCESSION)
    with pytest.raises(RemoteRefusedError) as refused:
        FhirClient(fhir.base, token="wrong-token").read("Patient", "x")
    assert refused.value.status == 401 and "wrong-token" not in str(refused.value)
    with _client(fhir) as client, pytest.raises(RemoteRefusedError, match="HTTP 404"):
        client.read("Patient", "no-such-patient")
    with _client(fhir) as client, pytest.raises(RemoteRefusedError, match="HTTP 400"):
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient", "name": [{"family": "Canaryname"}]},
             "request": {"method": "DELETE"}}]})


def test_when_the_server_is_busy_then_the_client_retries_and_an_invalid_answer_is_refused() -> None:
    calls: list[str] = []

    def busy_twice(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["authorization"])
        if len(calls) <= 2:
            return httpx.Response(503, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1", "gender": "female"})

    client = FhirClient("http://fhir.invalid/R4", token="t0k", backoff_s=0.01, transport=httpx.MockTransport(busy_twice))
    assert client.read("Patient", "p1")["gender"] == "female"
    assert calls == ["Bearer t0k"] * 3

    def invalid(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceType": "Patient", "id": "p1", "gender": ["Canaryvalue"]})

    client = FhirClient("http://fhir.invalid/R4", transport=httpx.MockTransport(invalid))
    with pytest.raises(RemoteRefusedError, match=r"invalid R4.*at gender") as refused:
        client.read("Patient", "p1")
    assert "Canaryvalue" not in str(refused.value)

    def other_server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset", "link": [
            {"relation": "next", "url": "http://elsewhere.invalid/R4/Patient?page=2"}]})

    client = FhirClient("http://fhir.invalid/R4", transport=httpx.MockTransport(other_server))
    with pytest.raises(RemoteRefusedError, match="another server"):
        client.search("Patient", {"name": "x"})


@pytest.mark.integration
def test_when_a_transaction_is_larger_than_the_server_takes_then_it_goes_in_steps_in_reference_order(
        fhir: FhirServer) -> None:
    draft = _draft("2.25.98765")  # Device, report, 2 observations, Provenance: 5 entries
    links = HospitalLinks(accession="ACC-STEPS-1", study_uid="1.2.3.4")
    with _client(fhir, max_transaction_entries=2) as client:
        first = client.send_transaction(for_hospital(draft, links))
        again = client.send_transaction(for_hospital(draft, links))
    # the model's Device is there from the tests before (same checkpoint): matched, not created again
    assert [e["response"]["status"][:3] for e in first] == ["200"] + ["201"] * 4
    assert [e["response"]["status"][:3] for e in again] == ["200"] * 5
    report = fhir.search("DiagnosticReport", identifier=report_identifier(draft))
    assert len(report) == 1
    device = fhir.search("Device", identifier=f"urn:clinical-mm:model-sha256|{'ab' * 32}")
    assert len(device) == 1 and report[0]["performer"][0]["reference"] == f"Device/{device[0]['id']}"
    observations = [fhir.search("Observation", _id=r["reference"].split("/")[1])[0] for r in report[0]["result"]]
    assert len(observations) == 2 and all(o["device"]["reference"] == f"Device/{device[0]['id']}" for o in observations)
    provenance = fhir.search("Provenance", target=f"DiagnosticReport/{report[0]['id']}")
    assert len(provenance) == 1 and provenance[0]["agent"][0]["who"]["reference"] == f"Device/{device[0]['id']}"
