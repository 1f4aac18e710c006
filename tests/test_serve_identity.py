"""The review page as a radiologist needs it (issue 22), end to end on `clinical-mm serve`: a study sent with dcmtk's
storescu is re-linked to its accession number and patient name through the key vault for the radiologist role only,
each read is audited without a value, no other role's response and no log line carries the planted PHI; the review
page shows the identity and where the model looks, and window/level and zoom change what its canvas shows (headless
Chromium)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.serve_harness import Service, files_of, storescu, wait_for

from clinical_mm.synth.study_synthesizer import SynthStudy

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")]
NO_BROWSER = shutil.which("chromedriver") is None or shutil.which("chromium") is None


@pytest.fixture()
def service(tmp_path: Path) -> Iterator[Service]:
    svc = Service(tmp_path / "data")
    yield svc
    svc.stop()


def _delivered(service: Service, study: SynthStudy, root: Path, headers: dict[str, str]) -> str:
    """Send the study and wait until it is analysed and delivered; its pseudonymous key."""
    assert storescu(service.dicom_port, files_of(root, study)).returncode == 0
    rows = wait_for(lambda: [w for w in httpx.get(f"{service.base}/v1/worklist", headers=headers).json()
                             if w["state"] == "delivered"])
    return str(rows[0]["study_key"])


def _planted(study: SynthStudy) -> list[str]:
    """The synthesiser's PHI, and the name's parts as the page writes them."""
    family, given, _ = study.phi["PatientName"].split("^")
    return [v for v in study.phi.values() if len(v) > 3] + [family, given, f"{family}, {given}"]


def test_when_roles_ask_for_a_studys_identity_then_only_the_radiologist_gets_it_and_each_read_is_audited(
        service: Service, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    root, studies = synth_dir
    study = studies[3]
    keys = {role: service.cli("keys", "create", "--role", role) for role in ("radiologist", "admin", "auditor", "pacs")}
    headers = {role: {"Authorization": f"Bearer {key}"} for role, key in keys.items()}
    service.start()
    sid = _delivered(service, study, root, headers["radiologist"])

    url = f"{service.base}/v1/studies/{sid}/identity"
    mine = httpx.get(url, headers=headers["radiologist"])
    assert mine.status_code == 200, mine.text
    assert mine.json() == {"study": sid, "accession": study.phi["AccessionNumber"],
                           "patient_name": study.phi["PatientName"]}
    assert mine.headers["cache-control"] == "no-store"
    assert httpx.get(url, headers=headers["radiologist"]).status_code == 200  # a second look: a second record

    # every other role is refused, and nothing any other role can read carries the planted PHI
    others: list[str] = []
    for role in ("admin", "auditor", "pacs"):
        refused = httpx.get(url, headers=headers[role])
        assert refused.status_code == 403, role
        others.append(refused.text)
    assert httpx.get(url).status_code == 401
    for path in ("/v1/jobs", "/v1/jobs?state=delivered", "/v1/monitoring", "/v1/subscribers"):
        r = httpx.get(f"{service.base}{path}", headers=headers["admin"])
        assert r.status_code == 200, path
        others.append(r.text)
    audit = httpx.get(f"{service.base}/v1/audit?limit=1000", headers=headers["auditor"])
    assert audit.status_code == 200
    others.append(audit.text)
    # nor do the radiologist's other responses, nor the service's log
    for path in ("/v1/worklist", f"/v1/studies/{sid}", f"/v1/studies/{sid}/draft"):
        others.append(httpx.get(f"{service.base}{path}", headers=headers["radiologist"]).text)
    others.append(service.log.read_text())
    for value in _planted(study):
        assert all(value not in text for text in others), "planted PHI leaked"

    reads = [r for r in audit.json() if r["action"] == "reidentify:study"]
    key_id = next(r["actor"] for r in audit.json() if r["action"] == "http GET /v1/studies/{study_id}/identity"
                  and r["outcome"] == "200")
    assert [(r["actor"], r["study"], r["outcome"], r["detail"]) for r in reads] == \
        [(key_id, sid, "ok", "re-linked: accession, patient name")] * 2
    refusals = [r for r in audit.json() if r["action"] == "http GET /v1/studies/{study_id}/identity"
                and r["outcome"] == "403"]
    assert len(refusals) == 3 and key_id not in {r["actor"] for r in refusals}
    # the vault holds the originals encrypted only
    vault = (service.data_dir / "vault.sqlite").read_bytes()
    assert study.phi["AccessionNumber"].encode() not in vault and study.phi["PatientName"].encode() not in vault


_CANVAS_STATE = """
const c = document.getElementById('preview');
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let sum = 0, hash = 0;
for (let i = 0; i < d.length; i += 4) { sum += d[i]; hash = (hash * 31 + d[i]) | 0; }
return [sum / (d.length / 4), hash];
"""

_BOX_TOP_PIXEL = """
const at = placement();
const b = Object.values(view.regions)[0].boxes[0];
const sx = view.windowed.width / 100, sy = view.windowed.height / 100;
const x = Math.round(at.x + (b[0] + b[2]) / 2 * sx * at.scale), y = Math.round(at.y + b[1] * sy * at.scale);
return Array.from(document.getElementById('preview').getContext('2d').getImageData(x, y, 1, 1).data);
"""


def _browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--window-size=1400,1100", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch a driver
    return webdriver.Chrome(options=options, service=DriverService(executable_path=shutil.which("chromedriver")))


def _connect(driver: Any, key: str, base: str | None = None) -> None:
    """Enter ``key`` and open the worklist (on a freshly loaded page when ``base`` is given)."""
    from selenium.webdriver.common.by import By

    if base is not None:
        driver.get(f"{base}/review")
    box = driver.find_element(By.ID, "token")
    box.clear()
    box.send_keys(key)
    driver.find_element(By.ID, "connect").click()


@pytest.mark.skipif(NO_BROWSER, reason="Debian chromium and chromium-driver are installed by make test")
def test_when_a_radiologist_opens_a_study_on_the_review_page_then_identity_window_level_and_zoom_work(
        service: Service, synth_dir: tuple[Path, list[SynthStudy]]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    root, studies = synth_dir
    study = studies[2]
    radiologist = service.cli("keys", "create", "--role", "radiologist", "--name", "Dr. Viewer")
    admin = service.cli("keys", "create", "--role", "admin")
    service.start()
    sid = _delivered(service, study, root, {"Authorization": f"Bearer {radiologist}"})
    family, given, middle = study.phi["PatientName"].split("^")

    driver = _browser(service.data_dir / "chromium-profile")
    try:
        wait = WebDriverWait(driver, 60)
        _connect(driver, radiologist, service.base)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.study"))
        driver.find_element(By.CSS_SELECTOR, "tr.study").click()
        wait.until(lambda d: d.find_element(By.ID, "accession").text)
        assert driver.find_element(By.ID, "accession").text == study.phi["AccessionNumber"]
        assert driver.find_element(By.ID, "patient-name").text == f"{family}, {given} {middle}"
        wait.until(lambda d: d.find_element(By.ID, "preview").get_attribute("data-study") == sid)
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "tr.study td.who").text)
        assert study.phi["AccessionNumber"] in driver.find_element(By.CSS_SELECTOR, "tr.study td.who").text

        # where the model looks: a legend line and boxes over the image per raised flag; the domain banner
        draft = httpx.get(f"{service.base}/v1/studies/{sid}/draft", headers={"Authorization": f"Bearer {radiologist}"}).json()
        assert draft["raised"] and set(draft["regions"]) == set(draft["raised"]), draft
        legend = driver.find_element(By.ID, "regions").text
        assert all(name.replace("_", " ") in legend for name in draft["raised"]), legend
        assert driver.find_element(By.ID, "ood").get_attribute("hidden") is not None  # a synthetic film: in domain
        with_boxes = driver.execute_script(_CANVAS_STATE)
        driver.find_element(By.ID, "show-regions").click()
        assert driver.execute_script(_CANVAS_STATE) != with_boxes  # the boxes were drawn over the image
        driver.find_element(By.ID, "show-regions").click()
        assert driver.execute_script(_CANVAS_STATE) == with_boxes
        colour = driver.execute_script(_BOX_TOP_PIXEL)  # the first box's top edge, placed from the draft's grid
        assert colour[0] > 200 and colour[1] < 130, colour  # the first region's colour (#ff5050), not the image
        # the banner of an image outside the validated domain (the page's own rendering of a draft's reading)
        driver.execute_script("showAnalysis(Object.assign({}, arguments[0], "
                              "{ood: {score: 30.1, threshold: 21.5, in_domain: false, chest_radiograph: 0.97}}));"
                              "draw();", draft)
        banner = driver.find_element(By.ID, "ood")
        assert banner.get_attribute("hidden") is None and "Outside the validated domain" in banner.text
        assert "never lowered" in banner.text
        driver.execute_script("showAnalysis(arguments[0]); draw();", draft)
        assert driver.find_element(By.ID, "ood").get_attribute("hidden") is not None

        states = [driver.execute_script(_CANVAS_STATE)]
        assert states[0][0] > 5  # the image is drawn, not a black canvas
        # window/level: the level slider, a preset, a drag on the image
        driver.execute_script("const s = document.getElementById('wl-center'); s.value = 40;"
                              "s.dispatchEvent(new Event('input'));")
        states.append(driver.execute_script(_CANVAS_STATE))
        assert states[-1][0] > states[-2][0] + 5  # a lower level shows the image brighter
        assert driver.find_element(By.ID, "wl-center-value").text == "40"
        assert driver.find_element(By.ID, "wl-preset").get_attribute("value") == "custom"
        Select(driver.find_element(By.ID, "wl-preset")).select_by_value("contrast")
        states.append(driver.execute_script(_CANVAS_STATE))
        assert driver.find_element(By.ID, "wl-width").get_attribute("value") == "96"
        canvas = driver.find_element(By.ID, "preview")
        ActionChains(driver).move_to_element(canvas).click_and_hold().move_by_offset(60, 40).release().perform()
        states.append(driver.execute_script(_CANVAS_STATE))
        assert driver.find_element(By.ID, "wl-width").get_attribute("value") != "96"
        # zoom: the button, then the wheel
        driver.find_element(By.ID, "zoom-in").click()
        assert driver.find_element(By.ID, "zoom-value").text == "125%"
        states.append(driver.execute_script(_CANVAS_STATE))
        ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(canvas, -150, -150), 0, -100).perform()
        assert driver.find_element(By.ID, "zoom-value").text == "156%"  # wheel up: zoom in, off centre
        states.append(driver.execute_script(_CANVAS_STATE))
        assert len({tuple(s) for s in states}) == len(states), states  # every step changed what is shown
        driver.find_element(By.ID, "view-reset").click()
        assert driver.execute_script(_CANVAS_STATE) == states[0]
        page_errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        assert page_errors == []

        # another credential on the same page: the patient is gone, and an admin sees no study and no identity
        _connect(driver, admin)  # no reload: the page itself must forget
        wait.until(lambda d: "403" in d.find_element(By.ID, "status").text)
        assert driver.find_element(By.ID, "identity").get_attribute("hidden") is not None
        assert driver.find_elements(By.CSS_SELECTOR, "tr.study") == []
        shown = driver.find_element(By.TAG_NAME, "body").text + driver.page_source
    finally:
        driver.quit()
    for value in _planted(study):
        assert value not in shown, "the admin's page shows the patient"
    assert study.phi["PatientName"] not in service.log.read_text()
    audit_db = json.dumps(_audit_rows(service))
    assert study.phi["AccessionNumber"] not in audit_db and family not in audit_db


def _audit_rows(service: Service) -> list[dict[str, Any]]:
    auditor = service.cli("keys", "create", "--role", "auditor")
    rows: list[dict[str, Any]] = httpx.get(f"{service.base}/v1/audit?limit=1000",
                                           headers={"Authorization": f"Bearer {auditor}"}).json()
    assert any(r["action"] == "reidentify:study" and r["outcome"] == "ok" for r in rows)
    return rows
