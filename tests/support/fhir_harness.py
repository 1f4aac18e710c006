"""A FHIR R4 server for the tests: Medplum's FHIR engine in memory (tests/support/fhir_server/server.mjs) on
127.0.0.1, started and stopped by the test. Node 22 and the engine come from npm (``make test`` installs
them into tests/support/fhir_server/node_modules from the lock file)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

SERVER_DIR = Path(__file__).resolve().parent / "fhir_server"
NODE = SERVER_DIR / "node_modules" / ".bin" / "node"
TOKEN = "fhir-test-token-0123456789"


class FhirServer:
    """``start()`` on a port (the same one again after ``stop()``: a server that was down and is back, empty)."""

    def __init__(self, port: int, log: Path) -> None:
        if not NODE.exists():
            raise RuntimeError("the test FHIR server is not installed: run `make test` (npm ci in tests/support/fhir_server)")
        self.port, self.log = port, log
        self.base = f"http://127.0.0.1:{port}/fhir/R4"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> FhirServer:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen([str(NODE), str(SERVER_DIR / "server.mjs"), str(self.port), TOKEN],
                                         cwd=SERVER_DIR, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.base}/metadata", headers=self.headers, timeout=2).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.2)
        raise AssertionError("the FHIR server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/fhir+json"}

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(f"{self.base}/{resource['resourceType']}", headers=self.headers, json=resource, timeout=10)
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.base}/{resource_type}", headers=self.headers, params={"_count": "1000", **params},
                      timeout=10)
        assert r.status_code == 200, r.text
        return [e["resource"] for e in r.json().get("entry", [])]

    def seed_order(self, accession: str, study_uid: str, *, family: str = "Testpatient") -> dict[str, dict[str, Any]]:
        """A Patient, the ServiceRequest of an accession and its ImagingStudy, as a RIS/PACS would hold them."""
        acsn = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}
        patient = self.create({"resourceType": "Patient", "name": [{"family": family, "given": ["Canary"]}],
                               "identifier": [{"system": "urn:hospital:mrn", "value": f"MRN-{accession}"}]})
        order = self.create({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                             "subject": {"reference": f"Patient/{patient['id']}"},
                             "code": {"text": "XR chest 2 views"},
                             "identifier": [{"type": acsn, "system": "urn:hospital:accession", "value": accession}]})
        study = self.create({"resourceType": "ImagingStudy", "status": "available",
                             "subject": {"reference": f"Patient/{patient['id']}"},
                             "basedOn": [{"reference": f"ServiceRequest/{order['id']}"}],
                             "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"},
                                            {"type": acsn, "value": accession}]})
        note = self.create({"resourceType": "DocumentReference", "status": "current",
                            "subject": {"reference": f"Patient/{patient['id']}"},
                            "content": [{"attachment": {"contentType": "text/plain", "data": "Q291Z2guIFIvTyBQTkEu"}}]})
        return {"patient": patient, "order": order, "study": study, "note": note}
