"""The whole loop against real systems on 127.0.0.1: Debian's Orthanc (the PACS, shipped configuration and
Lua script), `clinical-mm serve`, and a FHIR server (Medplum's engine in memory).

A study stored in Orthanc becomes stable -> Orthanc forwards it to serve by C-STORE -> serve analyses it ->
the triage callback fires, a preliminary DiagnosticReport linked to the accession's ServiceRequest and
ImagingStudy is on the FHIR server, and the draft SR is in Orthanc under the ORIGINAL patient and study ->
signing through the review API makes the FHIR report final. Sent twice, nothing is duplicated."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from support.fhir_harness import TOKEN, FhirServer
from support.orthanc_harness import Orthanc, orthanc_available
from support.serve_harness import Receiver, Service, files_of, wait_for

from clinical_mm.synth.study_synthesizer import SynthStudy

SECRET = "receiver-shared-secret-0123456789"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"

pytestmark = [pytest.mark.integration, pytest.mark.skipif(shutil.which("storescu") is None or not orthanc_available(),
                                reason="dcmtk, Debian orthanc and gcc are installed by make test")]


def _fhir_reports(fhir: FhirServer, accession: str) -> list[dict[str, Any]]:
    return [r for r in fhir.search("DiagnosticReport") if any(i.get("value") == accession for i in r.get("identifier", []))]


def _sr_instances(orthanc: Orthanc) -> list[dict[str, Any]]:
    return [i for i in orthanc.get("/instances?expand") if orthanc.get(f"/instances/{i['ID']}/tags?simplify")
            .get("SOPClassUID") == SR_CLASS]


def test_when_a_study_is_stored_in_orthanc_then_callback_fhir_report_and_sr_follow_and_sign_off_is_final(
        tmp_path: Path, fhir: FhirServer, receiver: Receiver, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    study = studies[3]
    original = pydicom.dcmread(root / study.files[0], stop_before_pixels=True)
    accession, study_uid = str(original.AccessionNumber), str(original.StudyInstanceUID)
    fhir.start()
    seeded = fhir.seed_order(accession, study_uid)

    service = Service(tmp_path / "data")
    orthanc = Orthanc(tmp_path, modalities={"clinicalmm": ["CLINICALMM", "127.0.0.1", service.dicom_port]})
    service.env.update({"CLINICAL_MM_FHIR_URL": fhir.base, "CLINICAL_MM_FHIR_TOKEN": TOKEN,
                        "CLINICAL_MM_SR_DESTINATION": f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"})
    admin = service.cli("keys", "create", "--role", "admin")
    radiologist = service.cli("keys", "create", "--role", "radiologist", "--name", "Dr. Loop Signer")
    h_admin, h_rad = {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {radiologist}"}
    try:
        service.start()
        httpx.post(f"{service.base}/v1/subscribers", headers=h_admin,
                   json={"url": receiver.url, "secret": SECRET, "min_priority": "routine"}).raise_for_status()
        orthanc.start()
        orthanc.storescu(files_of(root, study))

        # 1. the triage callback
        _, body = wait_for(lambda: receiver.events and receiver.events[0], 180)
        event = json.loads(body)
        study_key = event["study"]["id"]
        assert event["event"] == "study.analyzed" and study_key.startswith("2.25.")

        # 2. the preliminary report on the FHIR server, linked to the accession's order and imaging study
        report = wait_for(lambda: (found := _fhir_reports(fhir, accession)) and found[0], 120)
        assert report["status"] == "preliminary"
        assert report["basedOn"] == [{"reference": f"ServiceRequest/{seeded['order']['id']}"}]
        assert report["imagingStudy"] == [{"reference": f"ImagingStudy/{seeded['study']['id']}"}]

        # 3. the SR in Orthanc, in the original study of the original patient, marked AI-generated and preliminary
        srs = wait_for(lambda: _sr_instances(orthanc), 120)
        assert len(srs) == 1
        tags = orthanc.get(f"/instances/{srs[0]['ID']}/tags?simplify")
        assert tags["StudyInstanceUID"] == study_uid and tags["PatientID"] == str(original.PatientID)
        assert tags["AccessionNumber"] == accession and tags["PatientName"] == str(original.PatientName)
        assert tags["PreliminaryFlag"] == "PRELIMINARY" and tags["VerificationFlag"] == "UNVERIFIED"
        assert tags["Manufacturer"] == "clinical-mm"
        assert len(orthanc.get("/studies")) == 1 and len(orthanc.get("/patients")) == 1
        sr_file = tmp_path / "sr.dcm"
        sr_file.write_bytes(httpx.get(f"{orthanc.base}/instances/{srs[0]['ID']}/file").content)
        dumped = subprocess.run(["dsrdump", str(sr_file)], capture_output=True, text=True)
        assert dumped.returncode == 0 and "E:" not in dumped.stderr, dumped.stderr
        assert "AI-generated preliminary" in dumped.stdout and "Impression" in dumped.stdout
        evidence = pydicom.dcmread(sr_file).CurrentRequestedProcedureEvidenceSequence[0]
        assert evidence.StudyInstanceUID == study_uid
        assert {r.ReferencedSOPInstanceUID for s in evidence.ReferencedSeriesSequence for r in s.ReferencedSOPSequence} \
            == {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files_of(root, study)}

        wait_for(lambda: httpx.get(f"{service.base}/v1/studies/{study_key}", headers=h_rad).json()["state"]
                 == "delivered", 120)
        # each raised flag's region (TID 1500 image region) on the ORIGINAL frontal image, in its pixels
        raised = httpx.get(f"{service.base}/v1/studies/{study_key}", headers=h_rad).json()["result"]["raised"]
        scoords = [i for i in _items(pydicom.dcmread(sr_file)) if i.ValueType == "SCOORD"]
        assert bool(scoords) == bool(raised), raised
        assert {c.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in scoords for c in i.ContentSequence} \
            <= {str(original.SOPInstanceUID)}
        assert all(0 <= v <= max(original.Rows, original.Columns) for i in scoords for v in i.GraphicData)
        states = {target: [(d["state"], d["last_status"]) for d in httpx.get(
            f"{service.base}/v1/subscribers/{target}/deliveries", headers=h_admin).json()]
            for target in ("egress:fhir", "egress:pacs")}
        assert states == {"egress:fhir": [("delivered", "transaction 201")],
                          "egress:pacs": [("delivered", "SR stored (0x0000)")]}

        # 4. the same study sent again (Orthanc forwards it again when it becomes stable): nothing duplicated
        orthanc.storescu(files_of(root, study))
        time.sleep(6.0)  # stable age 1 s, quiet period 0.5 s: a duplicate would have been sent by now
        assert len(receiver.events) == 1 and len(_fhir_reports(fhir, accession)) == 1 and len(_sr_instances(orthanc)) == 1

        # 5. sign-off: the FHIR report becomes final (the same resource)
        signed = httpx.post(f"{service.base}/v1/studies/{study_key}/sign", headers=h_rad, json={})
        assert signed.status_code == 200, signed.text
        final = wait_for(lambda: (found := _fhir_reports(fhir, accession)) and found[0]["status"] == "final" and found)
        assert len(final) == 1 and final[0]["id"] == report["id"]
        assert final[0]["performer"][0]["display"] == "Dr. Loop Signer"

        # PHI went only to the hospital's own systems: not into serve's log or its API answers
        texts = [service.log.read_text(), body.decode(),
                 httpx.get(f"{service.base}/v1/studies/{study_key}", headers=h_rad).text,
                 json.dumps(states)]
        for value in [accession, study_uid, *(v for v in study.phi.values() if len(v) > 3)]:
            assert all(value not in t for t in texts), "PHI leaked"
    finally:
        orthanc.stop()
        service.stop()


def test_when_orthanc_announces_a_stable_study_then_serve_pulls_it_by_dicomweb_and_triages_it(
        tmp_path: Path, receiver: Receiver, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    """Route 2: the shipped notify script posts the stable study's UID to POST /v1/pulls; serve finds it by
    QIDO-RS and retrieves it by WADO-RS from Orthanc's DICOMweb plugin."""
    root, studies = synth_dir
    study = studies[4]
    service = Service(tmp_path / "data")
    admin = service.cli("keys", "create", "--role", "admin")
    pacs = service.cli("keys", "create", "--role", "pacs", "--name", "orthanc")
    radiologist = service.cli("keys", "create", "--role", "radiologist")
    orthanc = Orthanc(tmp_path, modalities={}, extra={
        "LuaScripts": [str(Path(__file__).resolve().parent.parent / "docker/orthanc/notify-stable-studies.lua")]},
        env={"CLINICALMM_URL": service.base, "CLINICALMM_API_KEY": pacs})
    service.env["CLINICAL_MM_DICOMWEB_URL"] = f"{orthanc.base}/dicom-web"
    try:
        service.start()
        httpx.post(f"{service.base}/v1/subscribers", headers={"Authorization": f"Bearer {admin}"},
                   json={"url": receiver.url, "secret": SECRET, "min_priority": "routine"}).raise_for_status()
        orthanc.start()
        orthanc.storescu(files_of(root, study))
        _, body = wait_for(lambda: receiver.events and receiver.events[0], 180)
        event = json.loads(body)
        assert event["event"] == "study.analyzed"
        found = httpx.get(f"{service.base}/v1/studies/{event['study']['id']}",
                          headers={"Authorization": f"Bearer {radiologist}"}).json()
        assert found["instances"] == len(study.files)  # every instance came back by WADO-RS
    finally:
        orthanc.stop()
        service.stop()


def test_when_orthanc_is_down_during_a_pull_then_the_pull_says_so_and_is_retried(
        tmp_path: Path, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    study = studies[5]
    study_uid = str(pydicom.dcmread(root / study.files[0], stop_before_pixels=True).StudyInstanceUID)
    service = Service(tmp_path / "data")
    pacs = service.cli("keys", "create", "--role", "pacs")
    admin = service.cli("keys", "create", "--role", "admin")
    orthanc = Orthanc(tmp_path, modalities={}, extra={"LuaScripts": []})
    service.env["CLINICAL_MM_DICOMWEB_URL"] = f"{orthanc.base}/dicom-web"
    h_pacs = {"Authorization": f"Bearer {pacs}"}
    try:
        orthanc.start()
        orthanc.storescu(files_of(root, study))
        orthanc.stop()  # the PACS holds the study, and is down
        service.start()
        r = httpx.post(f"{service.base}/v1/pulls", headers=h_pacs, json={"study_uid": study_uid})
        assert r.status_code == 202 and study_uid not in r.text
        pull_id = r.json()["pull_id"]
        failed = wait_for(lambda: (p := httpx.get(f"{service.base}/v1/pulls/{pull_id}", headers=h_pacs).json())
                          ["attempts"] >= 1 and p, 120)
        assert failed["state"] == "pending" and failed["studies"] == []
        assert failed["last_status"].startswith("RemoteUnavailableError: PACS (DICOMweb) unavailable for a study "
                                                "search (QIDO-RS)")
        assert study_uid not in json.dumps(failed)
        # the same request again while it is queued is the same pull
        assert httpx.post(f"{service.base}/v1/pulls", headers=h_pacs, json={"study_uid": study_uid}).json()["pull_id"] \
            == pull_id
        assert httpx.post(f"{service.base}/v1/pulls", headers=h_pacs, json={}).status_code == 422

        orthanc.start()  # back: the next try retrieves the study, which is analysed
        done = wait_for(lambda: (p := httpx.get(f"{service.base}/v1/pulls/{pull_id}", headers=h_pacs).json())
                        ["state"] == "done" and p, 180)
        assert done["attempts"] >= 2 and len(done["studies"]) == 1 and done["last_status"] == "1 study retrieved"
        wait_for(lambda: httpx.get(f"{service.base}/v1/jobs", headers={"Authorization": f"Bearer {admin}"},
                                   params={"state": "delivered"}).json(), 120)
        assert study_uid not in service.log.read_text()

        # the same PACS from the command line: clinical-mm fetch by accession, then with the PACS down
        accession = str(pydicom.dcmread(root / study.files[0], stop_before_pixels=True).AccessionNumber)
        fetch = [sys.executable, "-m", "clinical_mm.cli", "fetch", "--accession", accession, "--out",
                 str(tmp_path / "fetched"), "--dicomweb", f"{orthanc.base}/dicom-web"]
        done_cli = subprocess.run(fetch, env=service.env, capture_output=True, text=True, timeout=120)
        assert done_cli.returncode == 0, done_cli.stderr
        assert done_cli.stdout.strip() == f"fetched {len(study.files)} instances of 1 study into {tmp_path / 'fetched'}"
        fetched = sorted((tmp_path / "fetched" / "study-1").glob("*.dcm"))
        assert {str(pydicom.dcmread(f).SOPInstanceUID) for f in fetched} == \
            {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files_of(root, study)}
        orthanc.stop()
        down = subprocess.run(fetch, env=service.env, capture_output=True, text=True, timeout=120)
        assert down.returncode != 0 and "PACS (DICOMweb) unavailable for a study search" in down.stderr
        assert accession not in down.stderr + down.stdout
    finally:
        orthanc.stop()
        service.stop()


def _items(ds: pydicom.Dataset) -> list[pydicom.Dataset]:
    """Every content item of an SR, depth first."""
    out = []
    for item in ds.get("ContentSequence", []):
        out += [item, *_items(item)]
    return out
