"""Pull by DIMSE against Debian's Orthanc on 127.0.0.1: C-FIND finds the study, C-MOVE has Orthanc send it.

`serve` with CLINICAL_MM_QR_PACS pulls into its own Storage SCP (POST /v1/pulls -> triage callback, and the
pull and callback in the audit log); `clinical-mm fetch --pacs` pulls into a folder through a Storage SCP of
its own. A move destination the PACS does not know and a PACS that is down are clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pydicom
import pytest
from support.orthanc_harness import Orthanc, orthanc_available
from support.serve_harness import Receiver, Service, files_of, free_port, wait_for

from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.synth.study_synthesizer import SynthStudy

SECRET = "receiver-shared-secret-0123456789"

pytestmark = [pytest.mark.integration, pytest.mark.skipif(shutil.which("storescu") is None or not orthanc_available(),
                                reason="dcmtk, Debian orthanc and gcc are installed by make test")]


def _sop_uids(files: list[Path]) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}


def test_when_serve_pulls_by_c_move_then_the_study_reaches_its_listener_is_triaged_and_audited(
        tmp_path: Path, receiver: Receiver, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    study = studies[1]
    first = pydicom.dcmread(root / study.files[0], stop_before_pixels=True)
    accession = str(first.AccessionNumber)
    service = Service(tmp_path / "data")
    admin = service.cli("keys", "create", "--role", "admin")
    pacs = service.cli("keys", "create", "--role", "pacs")
    auditor = service.cli("keys", "create", "--role", "auditor")
    radiologist = service.cli("keys", "create", "--role", "radiologist")
    # no forwarding script: the study reaches serve only by the C-MOVE it asks for
    orthanc = Orthanc(tmp_path, modalities={"clinicalmm": ["CLINICALMM", "127.0.0.1", service.dicom_port]},
                      extra={"LuaScripts": []})
    service.env["CLINICAL_MM_QR_PACS"] = f"ORTHANC@127.0.0.1:{orthanc.dicom_port}"
    try:
        orthanc.start()
        orthanc.storescu(files_of(root, study))
        service.start()
        httpx.post(f"{service.base}/v1/subscribers", headers={"Authorization": f"Bearer {admin}"},
                   json={"url": receiver.url, "secret": SECRET, "min_priority": "routine"}).raise_for_status()
        h_pacs = {"Authorization": f"Bearer {pacs}"}
        r = httpx.post(f"{service.base}/v1/pulls", headers=h_pacs, json={"accession": accession})
        assert r.status_code == 202, r.text
        pull_id = r.json()["pull_id"]
        done = wait_for(lambda: (p := httpx.get(f"{service.base}/v1/pulls/{pull_id}", headers=h_pacs).json())
                        ["state"] == "done" and p, 180)
        assert done["last_status"] == "1 study retrieved" and len(done["studies"]) == 1
        study_key = done["studies"][0]

        _, body = wait_for(lambda: receiver.events and receiver.events[0], 180)
        assert json.loads(body)["study"]["id"] == study_key
        found = httpx.get(f"{service.base}/v1/studies/{study_key}",
                          headers={"Authorization": f"Bearer {radiologist}"}).json()
        assert found["instances"] == len(study.files)  # every instance came by C-MOVE into serve's spool

        def audited() -> list[dict[str, str]]:
            return [r for r in httpx.get(f"{service.base}/v1/audit", headers={"Authorization": f"Bearer {auditor}"},
                                         params={"limit": 1000}).json() if r["study"] == study_key]
        records = wait_for(lambda: (rs := audited()) and any(r["action"] == "callback" for r in rs) and rs, 60)
        assert {(r["action"], r["outcome"]) for r in records} >= {("pull", "retrieved"), ("analyze", "analyzed"),
                                                                   ("callback", "sent")}
        texts = [service.log.read_text(), json.dumps(done), json.dumps(records), body.decode()]
        for value in [accession, str(first.StudyInstanceUID), *(v for v in study.phi.values() if len(v) > 3)]:
            assert all(value not in t for t in texts), "PHI leaked"
    finally:
        orthanc.stop()
        service.stop()


def test_when_fetch_uses_c_move_then_every_instance_lands_and_unknown_destination_or_a_down_pacs_fail_clearly(
        tmp_path: Path, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    study = studies[2]
    first = pydicom.dcmread(root / study.files[0], stop_before_pixels=True)
    accession = str(first.AccessionNumber)
    store_port = free_port()
    # a PACS that answers queries from any AE title, so that an unknown move destination is the move's failure
    orthanc = Orthanc(tmp_path, modalities={"fetcher": ["FETCHSCU", "127.0.0.1", store_port]},
                      extra={"LuaScripts": [], "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True})
    data = tmp_path / "data"
    env = {**Service(data).env}

    def fetch(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "clinical_mm.cli", "fetch", "--pacs",
                               f"ORTHANC@127.0.0.1:{orthanc.dicom_port}", "--store-host", "127.0.0.1", "--store-port",
                               str(store_port), *args], env=env, capture_output=True, text=True, timeout=180)
    try:
        orthanc.start()
        orthanc.storescu(files_of(root, study))
        out = tmp_path / "fetched"
        done = fetch("--accession", accession, "--aet", "FETCHSCU", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"fetched {len(study.files)} instances of 1 study into {out}"
        assert _sop_uids(sorted((out / "study-1").glob("*.dcm"))) == _sop_uids(files_of(root, study))

        unknown = fetch("--accession", accession, "--aet", "NOBODY", "--out", str(tmp_path / "none"))
        assert unknown.returncode != 0
        assert "PACS ORTHANC refused a study retrieval (C-MOVE) to NOBODY before sending any instance" in unknown.stderr
        assert "does it know NOBODY as a DICOM modality" in unknown.stderr

        # fetch's Storage SCP takes instances only from the AE title it queried: called as OTHERPACS, Orthanc's
        # store association (calling AE ORTHANC) is rejected and the move fails
        other = subprocess.run([sys.executable, "-m", "clinical_mm.cli", "fetch", "--pacs",
                                f"OTHERPACS@127.0.0.1:{orthanc.dicom_port}", "--store-host", "127.0.0.1",
                                "--store-port", str(store_port), "--accession", accession, "--aet", "FETCHSCU",
                                "--out", str(tmp_path / "other")], env=env, capture_output=True, text=True, timeout=180)
        assert other.returncode != 0
        assert "PACS OTHERPACS refused a study retrieval (C-MOVE) to FETCHSCU before sending any instance" \
            in other.stderr, other.stderr
        assert not list((tmp_path / "other").rglob("*.dcm"))

        orthanc.stop()
        down = fetch("--study-uid", str(first.StudyInstanceUID), "--aet", "FETCHSCU", "--out", str(tmp_path / "down"))
        assert down.returncode != 0
        assert "PACS ORTHANC unavailable for a study search (C-FIND) after 3 attempts" in down.stderr
        for result in (done, unknown, other, down):
            assert accession not in result.stderr + result.stdout
            assert str(first.StudyInstanceUID) not in result.stderr + result.stdout

        sink = SQLiteAuditSink(data / "audit.sqlite")
        try:
            outcomes = [(r["action"], r["outcome"], r["detail"]) for r in sink.records()]
        finally:
            sink.close()
        assert outcomes == [("fetch", "ok", f"1 studies, {len(study.files)} instances"),
                            ("fetch", "failed", "RemoteRefusedError"), ("fetch", "failed", "RemoteRefusedError"),
                            ("fetch", "failed", "RemoteUnavailableError")]
    finally:
        orthanc.stop()
