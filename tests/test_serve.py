"""`clinical-mm serve` end to end: dcmtk's storescu sends studies to the DICOM listener, the queue analyses
them, a signed callback reaches a receiver on 127.0.0.1, the worklist and roles hold, and no PHI leaks."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.serve_harness import (
    JWT_SECRET,
    Receiver,
    Service,
    files_of,
    storescu,
    wait_for,
)

from clinical_mm.synth.study_synthesizer import SynthStudy

SECRET = "receiver-shared-secret-0123456789"

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")]


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "data")
    yield svc
    svc.stop()


def test_when_storescu_sends_a_study_then_a_signed_callback_arrives_and_the_worklist_shows_it(
        service: Service, receiver: Receiver, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    admin = service.cli("keys", "create", "--role", "admin")
    radiologist = service.cli("keys", "create", "--role", "radiologist", "--name", "Dr. Reviewer (staff)")
    service.start()
    h_admin, h_rad = {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {radiologist}"}
    r = httpx.post(f"{service.base}/v1/subscribers", headers=h_admin,
                   json={"url": receiver.url, "secret": SECRET, "min_priority": "routine"})
    assert r.status_code == 201, r.text
    sub_id = r.json()["id"]

    sent = storescu(service.dicom_port, files_of(root, studies[0]))
    assert sent.returncode == 0, sent.stderr.decode()
    headers, body = wait_for(lambda: receiver.events and receiver.events[0])
    expected = "sha256=" + hmac.new(SECRET.encode(), headers["x-clinicalmm-timestamp"].encode() + b"." + body,
                                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-clinicalmm-signature"], expected)
    event = json.loads(body)
    assert set(event) == {"event_id", "event", "study", "priority", "flags", "raised", "report_url", "model", "created"}
    assert event["priority"] in ("routine", "urgent", "critical") and event["study"]["id"].startswith("2.25.")

    study = wait_for(lambda: (s := httpx.get(event["report_url"], headers=h_rad).json())["state"] == "delivered" and s)
    assert study["result"]["impression"] and study["instances"] == len(studies[0].files)
    assert study["result"]["study"] == event["study"]["id"]  # the queue's key is the pipeline's pseudonymous UID
    worklist = httpx.get(f"{service.base}/v1/worklist", headers=h_rad).json()
    assert [w["study_key"] for w in worklist] == [event["study"]["id"]]
    log = httpx.get(f"{service.base}/v1/subscribers/{sub_id}/deliveries", headers=h_admin).json()
    assert [(d["event_id"], d["state"]) for d in log] == [(event["event_id"], "delivered")]

    # the same study again: instances already held, nothing queued, no second callback
    assert storescu(service.dicom_port, files_of(root, studies[0])).returncode == 0
    time.sleep(2.0)
    assert len(receiver.events) == 1

    # review: read the draft, see the de-identified preview, edit, sign; a signed report is final
    sid = event["study"]["id"]
    draft = httpx.get(f"{service.base}/v1/studies/{sid}/draft", headers=h_rad).json()
    assert draft["status"] == "draft" and draft["impression"] == study["result"]["impression"]
    png = httpx.get(f"{service.base}/v1/studies/{sid}/preview.png", headers=h_rad)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    edited = {"findings": draft["findings"] + " Reviewed.", "impression": "Radiologist impression."}
    assert httpx.put(f"{service.base}/v1/studies/{sid}/draft", headers=h_rad, json=edited).status_code == 200
    signed = httpx.post(f"{service.base}/v1/studies/{sid}/sign", headers=h_rad, json={}).json()
    report = signed["report"]
    assert report["resourceType"] == "DiagnosticReport" and report["status"] == "final"
    assert report["performer"][0]["display"] == "Dr. Reviewer (staff)" and report["conclusion"] == "Radiologist impression."
    assert "+IMPRESSION: Radiologist impression." in signed["diff"]
    assert httpx.get(f"{service.base}/v1/studies/{sid}/report", headers=h_rad).json() == report
    assert httpx.post(f"{service.base}/v1/studies/{sid}/sign", headers=h_rad, json={}).status_code == 409
    assert httpx.post(f"{service.base}/v1/studies/{sid}/reject", headers=h_rad,
                      json={"reason": "too late"}).status_code == 409
    assert httpx.put(f"{service.base}/v1/studies/{sid}/draft", headers=h_rad, json=edited).status_code == 409
    assert httpx.get(f"{service.base}/v1/worklist", headers=h_rad).json()[0]["review"] == "signed"

    # monitoring (admin): the study's site is the sending AE title, its inputs are read from its header, the
    # signed report is compared with the flags, the callback is timed from the audit log
    assert httpx.get(f"{service.base}/v1/monitoring", headers=h_rad).status_code == 403
    monitoring = httpx.get(f"{service.base}/v1/monitoring", headers=h_admin).json()
    (week,) = monitoring["by_site_week"]
    assert (week["site"], week["studies"], week["signed"], week["signed_with_edits"]) == ("TESTPACS", 1, 1, 1)
    assert week["inputs"]["manufacturer"] == {studies[0].manufacturer: 1} and week["inputs"]["software"] == {"4.2.1": 1}
    assert monitoring["concordance"]["by_flag"]["pneumothorax"]["signed"] == 1
    assert monitoring["time_to_notification"]["n"] == 1

    # PHI planted by the synthesiser appears in no response, callback or log line
    phi = [v for v in studies[0].phi.values() if len(v) > 3]
    texts = [body.decode(), json.dumps(study), json.dumps(worklist), json.dumps(signed), json.dumps(monitoring),
             service.log.read_text()]
    for value in phi:
        assert all(value not in t for t in texts), "planted PHI leaked"


def test_when_credentials_are_missing_wrong_or_of_another_role_then_requests_are_refused(
        service: Service, receiver: Receiver) -> None:
    pacs = service.cli("keys", "create", "--role", "pacs")
    admin = service.cli("keys", "create", "--role", "admin")
    service.start()
    assert httpx.get(f"{service.base}/healthz").status_code == 200
    for path in ("/v1/worklist", "/v1/jobs", "/v1/subscribers", "/v1/audit", "/v1/studies/2.25.1"):
        assert httpx.get(f"{service.base}{path}").status_code == 401
        assert httpx.get(f"{service.base}{path}", headers={"Authorization": "Bearer cmm_wrong"}).status_code == 401
        assert httpx.get(f"{service.base}{path}", headers={"Authorization": f"Bearer {pacs}"}).status_code == 403
    h_admin = {"Authorization": f"Bearer {admin}"}
    for url in ("http://10.0.0.5/hook", "http://169.254.169.254/latest", "file:///etc/passwd", "http://user@127.0.0.1/x"):
        r = httpx.post(f"{service.base}/v1/subscribers", headers=h_admin, json={"url": url, "secret": SECRET})
        assert r.status_code in (400, 422), url  # refused by the allow-list or by the schema
    assert httpx.get(f"{service.base}/v1/subscribers", headers=h_admin).json() == []
    auditor = service.cli("keys", "create", "--role", "auditor")
    audit = httpx.get(f"{service.base}/v1/audit?limit=1000", headers={"Authorization": f"Bearer {auditor}"}).json()
    seen = {(r["actor"], r["action"], r["outcome"]) for r in audit}
    assert ("anonymous", "http GET /v1/worklist", "401") in seen  # refused requests are audited too
    assert any(a.startswith("k_") and act == "http POST /v1/subscribers" and out == "400" for a, act, out in seen)
    revoke_id = subprocess.run([sys.executable, "-m", "clinical_mm.cli", "keys", "create", "--role", "admin"],
                               env=service.env, capture_output=True, check=True)
    new_key = revoke_id.stdout.decode().strip()
    new_id = revoke_id.stderr.decode().split()[2]
    assert httpx.get(f"{service.base}/v1/jobs", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    service.cli("keys", "revoke", new_id)
    assert httpx.get(f"{service.base}/v1/jobs", headers={"Authorization": f"Bearer {new_key}"}).status_code == 401

    # OAuth2 bearer JWTs: signature, expiry, audience, issuer and role are all checked
    import jwt

    now = int(time.time())
    good = {"sub": "u123", "name": "Dr. Token", "roles": ["radiologist"], "aud": "clinical-mm",
            "iss": "https://idp.test", "iat": now, "exp": now + 300}

    def status(claims: dict[str, Any], secret: str = JWT_SECRET) -> int:
        token = jwt.encode(claims, secret, algorithm="HS256")
        return httpx.get(f"{service.base}/v1/worklist", headers={"Authorization": f"Bearer {token}"}).status_code

    assert status(good) == 200
    assert status({**good, "exp": now - 120}) == 401  # expired
    assert status({**good, "aud": "someone-else"}) == 401
    assert status({**good, "iss": "https://evil.test"}) == 401
    assert status(good, secret="another-secret-of-at-least-32-characters") == 401
    assert status({k: v for k, v in good.items() if k != "exp"}) == 401  # no expiry
    assert status({**good, "roles": ["pacs"]}) == 403
    assert status({**good, "roles": ["superuser"]}) == 401  # no role we know
    unsigned = jwt.encode(good, "", algorithm="none") if "none" in jwt.algorithms.get_default_algorithms() else None
    if unsigned is not None:
        assert httpx.get(f"{service.base}/v1/worklist",
                         headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401


def test_when_an_unlisted_ae_title_calls_then_the_association_is_rejected(
        service: Service, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    service.start()
    sent = storescu(service.dicom_port, files_of(root, studies[1]), aet="ROGUE")
    assert sent.returncode != 0
    assert not (service.data_dir / "spool").exists() or not any((service.data_dir / "spool").rglob("*.dcm"))


def test_when_the_receiver_is_down_or_serve_is_killed_then_every_study_is_delivered_once(
        service: Service, receiver: Receiver, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    admin = service.cli("keys", "create", "--role", "admin")
    service.start()
    h_admin = {"Authorization": f"Bearer {admin}"}
    httpx.post(f"{service.base}/v1/subscribers", headers=h_admin,
               json={"url": receiver.url, "secret": SECRET, "min_priority": "routine"}).raise_for_status()
    receiver.down = True
    for study in studies[:3]:
        assert storescu(service.dicom_port, files_of(root, study)).returncode == 0
    wait_for(lambda: len(httpx.get(f"{service.base}/v1/jobs?state=analyzed", headers=h_admin).json()) >= 1)
    service.kill()  # SIGKILL mid-queue: spooled instances and queued events survive
    receiver.down = False
    service.start()
    wait_for(lambda: len(httpx.get(f"{service.base}/v1/jobs?state=delivered", headers=h_admin).json()) == 3, 180)
    ids = [json.loads(body)["event_id"] for _, body in receiver.events]
    assert len(ids) == len(set(ids)) == 3


def _multipart(parts: list[bytes], subtype: str) -> tuple[str, bytes]:
    boundary = "cmm-test-boundary-7d1f"
    body = b""
    for i, data in enumerate(parts):
        head = ("Content-Type: application/dicom\r\n" if subtype == "related" else
                f'Content-Disposition: form-data; name="file"; filename="{i}.dcm"\r\nContent-Type: application/dicom\r\n')
        body += f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    ctype = (f'multipart/related; type="application/dicom"; boundary={boundary}' if subtype == "related"
             else f"multipart/form-data; boundary={boundary}")
    return ctype, body


def test_when_a_client_uploads_by_stow_rs_or_multipart_then_studies_are_queued_and_bad_parts_reported(
        service: Service, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    pacs = service.cli("keys", "create", "--role", "pacs")
    radiologist = service.cli("keys", "create", "--role", "radiologist")
    service.start()
    h_pacs, h_rad = {"Authorization": f"Bearer {pacs}"}, {"Authorization": f"Bearer {radiologist}"}

    ctype, body = _multipart([p.read_bytes() for p in files_of(root, studies[2])] + [b"not a dicom file"], "related")
    r = httpx.post(f"{service.base}/dicomweb/studies", headers={**h_pacs, "Content-Type": ctype}, content=body)
    assert r.status_code == 202 and r.headers["content-type"].startswith("application/dicom+json")
    assert len(r.json()["00081199"]["Value"]) == len(studies[2].files) and len(r.json()["00081198"]["Value"]) == 1
    assert str(studies[2].files[0]) not in r.text

    ctype, body = _multipart([p.read_bytes() for p in files_of(root, studies[3])], "form-data")
    r = httpx.post(f"{service.base}/v1/studies", headers={**h_pacs, "Content-Type": ctype}, content=body)
    assert r.status_code == 200 and r.json()["stored"] == len(studies[3].files) and len(r.json()["studies"]) == 1
    again = httpx.post(f"{service.base}/v1/studies", headers={**h_pacs, "Content-Type": ctype}, content=body).json()
    assert again["stored"] == 0 and again["duplicates"] == len(studies[3].files)

    assert httpx.post(f"{service.base}/v1/studies", headers={**h_rad, "Content-Type": ctype},
                      content=body).status_code == 403
    assert httpx.post(f"{service.base}/v1/studies", headers={**h_pacs, "Content-Type": "application/json"},
                      content=b"{}").status_code == 415
    def all_delivered() -> bool:
        worklist = httpx.get(f"{service.base}/v1/worklist", headers=h_rad).json()
        return len(worklist) == 2 and all(w["state"] == "delivered" for w in worklist)

    wait_for(all_delivered)


def test_when_20_associations_send_2_studies_each_at_once_then_none_is_lost(service: Service, tmp_path: Path) -> None:
    """20 simultaneous associations; a burst of 200 studies is ``benchmarks/serve_latency.py --associations 20``."""
    from clinical_mm.synth.study_synthesizer import StudySynthesizer

    studies = StudySynthesizer(45).write(40, tmp_path / "many", progress=False, workers=2)
    admin = service.cli("keys", "create", "--role", "admin")
    service.start()
    groups = [studies[i::20] for i in range(20)]
    senders = [subprocess.Popen(["storescu", "-aet", "TESTPACS", "-aec", "CLINICALMM", "127.0.0.1",
                                 str(service.dicom_port), *[str(tmp_path / "many" / f) for s in group for f in s.files]],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for group in groups]
    assert [p.wait(timeout=300) for p in senders] == [0] * 20
    h_admin = {"Authorization": f"Bearer {admin}"}

    def delivered() -> list[dict[str, Any]] | None:
        jobs = httpx.get(f"{service.base}/v1/jobs", headers=h_admin).json()
        return jobs if len(jobs) == 40 and all(j["state"] == "delivered" for j in jobs) else None

    jobs = wait_for(delivered, 600)
    assert len({j["study_key"] for j in jobs}) == 40
    spooled = list((service.data_dir / "spool").rglob("*.dcm"))
    assert len(spooled) == sum(len(s.files) for s in studies)


@pytest.mark.skipif(shutil.which("chromedriver") is None or shutil.which("chromium") is None,
                    reason="Debian chromium and chromium-driver are installed by make test")
def test_when_a_radiologist_signs_through_the_review_page_then_the_report_is_final(
        service: Service, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    root, studies = synth_dir
    radiologist = service.cli("keys", "create", "--role", "radiologist", "--name", "Dr. Browser")
    service.start()
    assert storescu(service.dicom_port, files_of(root, studies[4])).returncode == 0
    h_rad = {"Authorization": f"Bearer {radiologist}"}
    wait_for(lambda: [w for w in httpx.get(f"{service.base}/v1/worklist", headers=h_rad).json() if w["state"] == "delivered"])

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                f"--user-data-dir={service.data_dir / 'chromium-profile'}"):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch a driver
    driver = webdriver.Chrome(options=options, service=DriverService(executable_path=shutil.which("chromedriver")))
    try:
        wait = WebDriverWait(driver, 60)
        driver.get(f"{service.base}/review")
        driver.find_element(By.ID, "token").send_keys(radiologist)
        driver.find_element(By.ID, "connect").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.study"))
        driver.find_element(By.CSS_SELECTOR, "tr.study").click()
        wait.until(lambda d: d.find_element(By.ID, "impression").get_attribute("value"))
        wait.until(lambda d: d.find_element(By.ID, "preview").get_attribute("data-study"))  # the image is drawn
        box = driver.find_element(By.ID, "impression")
        box.clear()
        box.send_keys("Signed through the review page.")
        driver.find_element(By.ID, "sign").click()
        wait.until(lambda d: "signed" in d.find_element(By.ID, "status").text)
    finally:
        driver.quit()
    sid = httpx.get(f"{service.base}/v1/worklist", headers=h_rad).json()[0]["study_key"]
    report = httpx.get(f"{service.base}/v1/studies/{sid}/report", headers=h_rad).json()
    assert report["status"] == "final" and report["conclusion"] == "Signed through the review page."
    assert report["performer"][0]["display"] == "Dr. Browser"


@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")
def test_when_serve_runs_on_postgresql_then_a_study_is_analysed_and_delivered(
        postgres_url: str, tmp_path: Path, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    svc = Service(tmp_path / "data")
    svc.env["CLINICAL_MM_DATABASE_URL"] = postgres_url
    admin = svc.cli("keys", "create", "--role", "admin")
    svc.start()
    try:
        assert storescu(svc.dicom_port, files_of(root, studies[5])).returncode == 0
        h = {"Authorization": f"Bearer {admin}"}
        jobs = wait_for(lambda: [j for j in httpx.get(f"{svc.base}/v1/jobs?state=delivered", headers=h).json()])
        assert len(jobs) == 1
    finally:
        svc.stop()
    assert not (tmp_path / "data" / "service.sqlite").exists()  # the state lives in PostgreSQL


def test_when_a_radiologist_posts_a_note_then_entities_come_back_de_identified_and_audited(service: Service) -> None:
    radiologist = service.cli("keys", "create", "--role", "radiologist")
    pacs = service.cli("keys", "create", "--role", "pacs")
    auditor = service.cli("keys", "create", "--role", "auditor")
    service.start()
    note = ("Seen by Dr. Halvorsen on 07/22/2031, MRN 4417820.\nHPI: Denies chest pain.\n"
            "Meds: lisinopril 10 mg PO daily.\nIMPRESSION: No pneumothorax. Small left pleural effusion.")
    url = f"{service.base}/v1/notes/extract"
    body = {"id": "n1", "text": note, "targets": ["pneumothorax"]}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {pacs}"}).status_code == 403
    h = {"Authorization": f"Bearer {radiologist}"}
    r = httpx.post(url, json=body, headers=h, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "n1" and out["targets"][0]["assertion"] == "absent"
    by_text = {e["text"]: e for e in out["entities"]}
    assert note[by_text["lisinopril"]["start"]:by_text["lisinopril"]["end"]] == "lisinopril"
    assert by_text["lisinopril"]["dose"] == "10 mg" and by_text["lisinopril"]["code"]["code"] == "29046"
    assert by_text["chest pain"]["assertion"] == "absent"
    assert by_text["pleural effusion"]["laterality"] == "left"
    fhir = httpx.post(url, json={**body, "format": "fhir"}, headers=h, timeout=120)
    assert fhir.status_code == 200 and fhir.json()["resourceType"] == "Bundle"
    for text in (r.text, fhir.text):
        assert "Halvorsen" not in text and "07/22/2031" not in text and "4417820" not in text
    too_long = httpx.post(url, json={"text": "x" * 200_001}, headers=h)
    assert too_long.status_code == 422
    audit = httpx.get(f"{service.base}/v1/audit?limit=1000", headers={"Authorization": f"Bearer {auditor}"}).json()
    extracts = [a for a in audit if a["action"] == "extract"]
    assert [a["detail"] for a in extracts] == ["1 texts, json, de-identified", "1 texts, fhir, de-identified"]
    assert all(a["actor"].startswith("k_") for a in extracts)
    assert "Halvorsen" not in json.dumps(audit) and "Halvorsen" not in service.log.read_text()
