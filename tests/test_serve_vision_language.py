"""Questions, zero-shot findings and grounding on a study's image over the HTTP API (issue 22), end to end on
`clinical-mm serve`: a study sent with storescu, then asked about by the radiologist; what the radiologist types is
de-identified before the model reads it, each request is audited with the text's hash only, other roles are refused,
and no response, audit record or log line carries the planted PHI."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.serve_harness import Service, files_of, storescu, wait_for

from clinical_mm.synth.study_synthesizer import SynthStudy

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")]


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "data")
    yield svc
    svc.stop()


@pytest.mark.skipif(shutil.which("chromedriver") is None or shutil.which("chromium") is None,
                    reason="Debian chromium and chromium-driver are installed by make test")
def test_when_the_radiologist_asks_scores_locates_and_compares_a_study_then_the_model_answers_without_phi(
        service: Service, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    """The API (questions, zero-shot findings, a phrase located, similar signed cases) and the review page's
    question box and similar cases, on one service run."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_serve_identity import _browser, _connect

    root, studies = synth_dir
    keys = {role: service.cli("keys", "create", "--role", role, "--name", f"Dr. {role.title()}")
            for role in ("radiologist", "admin", "auditor")}
    headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    service.start()
    for study in studies[:2]:
        assert storescu(service.dicom_port, files_of(root, study)).returncode == 0

    def delivered() -> list[dict[str, object]] | None:
        done = [w for w in httpx.get(f"{service.base}/v1/worklist", headers=headers["radiologist"]).json()
                if w["state"] == "delivered"]
        return done if len(done) == 2 else None

    first, second = (str(r["study_key"]) for r in wait_for(delivered, timeout=300))
    planted = [v for s in studies[:2] for v in s.phi.values() if len(v) > 3]
    family = studies[0].phi["PatientName"].split("^")[0].title()
    base = f"{service.base}/v1/studies/{second}"

    asked = httpx.post(f"{base}/ask", json={"question": f"Does {family} have a pneumothorax?"},
                       headers=headers["radiologist"], timeout=120)
    assert asked.status_code == 200, asked.text
    body = asked.json()
    assert body["study"] == second and body["answer"] and "pneumothorax" in body["question"]
    assert family not in body["question"]  # the model never read the name
    assert body["ood"]["in_domain"] in (True, False)
    scored = httpx.post(f"{base}/zero-shot", json={"findings": ["pleural effusion", "central venous catheter"]},
                        headers=headers["radiologist"], timeout=120)
    assert scored.status_code == 200, scored.text
    assert [s["finding"] for s in scored.json()["zero_shot"]] == ["pleural effusion", "central venous catheter"]
    assert all(0 <= s["probability"] <= 1 for s in scored.json()["zero_shot"])
    grounded = httpx.post(f"{base}/ground", json={"phrase": "heart"}, headers=headers["radiologist"], timeout=120)
    assert grounded.status_code == 200, grounded.text
    assert all(0 <= v <= 100 for box in grounded.json()["region"]["boxes"] for v in box)
    # refusals: another role, an unknown study, an empty or overlong text, an unknown field
    assert httpx.post(f"{base}/ask", json={"question": "Is there an effusion?"}, headers=headers["admin"]).status_code == 403
    assert httpx.post(f"{service.base}/v1/studies/nope/ask", json={"question": "Is there an effusion?"},
                      headers=headers["radiologist"]).status_code == 404
    for bad in ({"question": ""}, {"question": "x" * 500}, {"question": "ok?", "patient": family}):
        assert httpx.post(f"{base}/ask", json=bad, headers=headers["radiologist"]).status_code == 422, bad
    assert httpx.post(f"{base}/zero-shot", json={"findings": []}, headers=headers["radiologist"]).status_code == 422

    # similar signed cases: the first study, signed with a name typed into it, is the second's; never its own
    signed = httpx.post(f"{service.base}/v1/studies/{first}/sign", headers=headers["radiologist"], timeout=120, json={
        "impression": "Small right pneumothorax.", "findings": f"Discussed with {family} on the ward. No effusion."})
    assert signed.status_code == 200, signed.text
    own = httpx.get(f"{service.base}/v1/studies/{first}/similar", headers=headers["radiologist"], timeout=120)
    assert own.json()["similar"] == []
    found = wait_for(lambda: (got := httpx.get(f"{base}/similar?k=3", headers=headers["radiologist"], timeout=120)
                              .json())["similar"] and got)  # the signed case joins after the sign-off's answer
    assert [c["study"] for c in found["similar"]] == [first]
    assert "pneumothorax" in found["similar"][0]["report"] and family not in found["similar"][0]["report"]
    assert httpx.get(f"{base}/similar", headers=headers["admin"]).status_code == 403

    driver = _browser(service.data_dir / "chromium-profile")
    try:
        wait = WebDriverWait(driver, 90)
        _connect(driver, keys["radiologist"], service.base)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.study")) == 2)
        row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "tr.study") if second[:14] in r.text)
        row.click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#similar li"))
        cases = driver.find_element(By.ID, "similar").text
        assert "Small right pneumothorax." in cases and family not in cases
        driver.find_element(By.ID, "question").send_keys("Is there a pleural effusion?")
        driver.find_element(By.ID, "ask").click()
        wait.until(lambda d: d.find_element(By.ID, "answer").text.startswith("Q: "))
        answer = driver.find_element(By.ID, "answer").text
        assert "pleural effusion" in answer and " A: " in answer
        before = driver.execute_script("return Object.keys(view.regions).length")
        driver.find_element(By.ID, "phrase").send_keys("heart")
        driver.find_element(By.ID, "locate").click()
        wait.until(lambda d: d.execute_script("return Object.keys(view.regions).length") == before + 1)
        assert driver.execute_script("return Object.keys(view.regions).some((k) => k.includes('heart'))")
        driver.find_element(By.ID, "zs-findings").send_keys("pleural effusion; endotracheal tube")
        driver.find_element(By.ID, "score").click()
        wait.until(lambda d: "endotracheal tube" in d.find_element(By.ID, "zero-shot").text)
        assert "pleural effusion 0." in driver.find_element(By.ID, "zero-shot").text or \
            "pleural effusion 1.00" in driver.find_element(By.ID, "zero-shot").text
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        assert errors == []
    finally:
        driver.quit()

    audit = httpx.get(f"{service.base}/v1/audit?limit=1000", headers=headers["auditor"]).json()
    answered = [(r["action"], r["study"]) for r in audit if r["outcome"] == "answered"]
    assert answered[:3] == [("ask", second), ("zero-shot", second), ("ground", second)]
    assert ("similar", second) in answered and ("ask", second) in answered[3:]  # the page's question too
    assert ("ground", second) in answered[3:] and ("zero-shot", second) in answered[3:]  # and its other tools
    assert all(r["input_hash"] for r in audit if r["outcome"] == "answered" and r["action"] != "similar")
    assert all("pneumothorax" not in str(r["detail"]) for r in audit if r["action"] == "ask")
    texts = [asked.text, scored.text, grounded.text, json.dumps(found), str(audit), service.log.read_text()]
    for value in planted + [family]:
        assert all(value not in t for t in texts), "planted PHI leaked"
