"""`serve` sends results to the hospital's FHIR server (Medplum's FHIR engine on 127.0.0.1): storescu -> serve
-> a preliminary DiagnosticReport linked to the accession's ServiceRequest, ImagingStudy and Patient (the
originals re-identified through the key vault) -> sign-off makes it final; with the FHIR server down the
results wait in the queue and arrive once it is back. serve's own log and API keep no PHI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from support.fhir_harness import TOKEN, FhirServer
from support.serve_harness import Service, files_of, storescu, wait_for

from clinical_mm.synth.study_synthesizer import SynthStudy

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")]


@pytest.fixture()
def service(tmp_path: Path, fhir: FhirServer) -> Iterator[Service]:
    svc = Service(tmp_path / "data")
    svc.env.update({"CLINICAL_MM_FHIR_URL": fhir.base, "CLINICAL_MM_FHIR_TOKEN": TOKEN})
    yield svc
    svc.stop()


def _original(root: Path, study: SynthStudy) -> tuple[str, str]:
    ds = pydicom.dcmread(root / study.files[0], stop_before_pixels=True)
    return str(ds.AccessionNumber), str(ds.StudyInstanceUID)


def _reports(fhir: FhirServer, accession: str) -> list[dict[str, Any]]:
    return [r for r in fhir.search("DiagnosticReport")
            if any(i.get("value") == accession for i in r.get("identifier", []))]


def test_when_serve_analyses_a_study_then_the_fhir_server_gets_a_linked_draft_and_sign_off_makes_it_final(
        service: Service, fhir: FhirServer, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    accession, study_uid = _original(root, studies[1])
    fhir.start()
    seeded = fhir.seed_order(accession, study_uid, family=studies[1].phi["PatientName"].split("^")[0])
    admin = service.cli("keys", "create", "--role", "admin")
    radiologist = service.cli("keys", "create", "--role", "radiologist", "--name", "Dr. Final Signer")
    service.start()
    h_admin, h_rad = {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {radiologist}"}

    assert storescu(service.dicom_port, files_of(root, studies[1])).returncode == 0
    report = wait_for(lambda: (found := _reports(fhir, accession)) and found[0])
    assert report["status"] == "preliminary"
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{seeded['order']['id']}"}]
    assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{seeded['study']['id']}"}]
    assert report["subject"] == {"reference": f"Patient/{seeded['patient']['id']}"}
    assert report["meta"]["security"][0]["code"] == "AIAST"
    observations = fhir.search("Observation", subject=f"Patient/{seeded['patient']['id']}")
    assert len(observations) == len(report["result"]) > 0
    assert len(fhir.search("Provenance", target=f"DiagnosticReport/{report['id']}")) == 1

    study_key = wait_for(lambda: (jobs := httpx.get(f"{service.base}/v1/jobs", headers=h_admin,
                                                    params={"state": "delivered"}).json()) and jobs[0]["study_key"])
    log = httpx.get(f"{service.base}/v1/subscribers/egress:fhir/deliveries", headers=h_admin).json()
    assert [(d["state"], d["last_status"]) for d in log] == [("delivered", "transaction 201")]

    # the same study again: nothing new on the FHIR server
    assert storescu(service.dicom_port, files_of(root, studies[1])).returncode == 0
    signed = httpx.post(f"{service.base}/v1/studies/{study_key}/sign", headers=h_rad,
                        json={"impression": "Signed impression."})
    assert signed.status_code == 200, signed.text
    final = wait_for(lambda: (found := _reports(fhir, accession)) and found[0]["status"] == "final" and found)
    assert len(final) == 1 and final[0]["id"] == report["id"]
    assert final[0]["conclusion"] == "Signed impression." and final[0]["performer"][0]["display"] == "Dr. Final Signer"
    assert final[0]["basedOn"] == report["basedOn"] and final[0]["imagingStudy"] == report["imagingStudy"]
    assert len(fhir.search("Observation", subject=f"Patient/{seeded['patient']['id']}")) == len(observations)
    log = httpx.get(f"{service.base}/v1/subscribers/egress:fhir/deliveries", headers=h_admin).json()
    assert [d["state"] for d in log] == ["delivered", "delivered"]

    # the originals went to the hospital's FHIR server only: not into serve's log, database answers or API
    phi = [accession, study_uid, *(v for v in studies[1].phi.values() if len(v) > 3)]
    texts = [service.log.read_text(), json.dumps(log),
             httpx.get(f"{service.base}/v1/studies/{study_key}", headers=h_rad).text,
             httpx.get(f"{service.base}/v1/jobs", headers=h_admin).text]
    for value in phi:
        assert all(value not in t for t in texts), "PHI leaked"


def test_when_the_fhir_server_is_down_then_results_wait_and_arrive_once_it_is_back(
        service: Service, fhir: FhirServer, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    accession, study_uid = _original(root, studies[2])
    admin = service.cli("keys", "create", "--role", "admin")
    service.start()
    h_admin = {"Authorization": f"Bearer {admin}"}
    assert storescu(service.dicom_port, files_of(root, studies[2])).returncode == 0

    # analysed, but the FHIR delivery fails and stays pending (the study is not delivered)
    failed = wait_for(lambda: (log := httpx.get(f"{service.base}/v1/subscribers/egress:fhir/deliveries",
                                                headers=h_admin).json()) and log[0]["attempts"] >= 1 and log[0])
    assert failed["state"] == "pending" and failed["last_status"].startswith("RemoteUnavailableError")
    assert accession not in failed["last_status"]
    assert httpx.get(f"{service.base}/v1/jobs", headers=h_admin, params={"state": "analyzed"}).json()

    fhir.start()
    seeded = fhir.seed_order(accession, study_uid)
    report = wait_for(lambda: (found := _reports(fhir, accession)) and found[0], timeout=180)
    assert report["basedOn"] == [{"reference": f"ServiceRequest/{seeded['order']['id']}"}]
    wait_for(lambda: httpx.get(f"{service.base}/v1/jobs", headers=h_admin, params={"state": "delivered"}).json())
    log = httpx.get(f"{service.base}/v1/subscribers/egress:fhir/deliveries", headers=h_admin).json()
    assert len(log) == 1 and log[0]["state"] == "delivered" and log[0]["attempts"] >= 2
