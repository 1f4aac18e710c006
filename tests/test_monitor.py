"""`clinical-mm monitor` and `GET /v1/monitoring` on a service database and audit log filled by the test: two sites
(sending AE titles) over two ISO weeks, with a planted drift of the software version at one, a planted rise of
refusals at the other, signed reports that agree with the model's flags or not (some signed with edits), and
triage callbacks sent a planted time after arrival."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.pipeline.study_preview import StudyPreview
from clinical_mm.service import store as store_module
from clinical_mm.service.app import create_app
from clinical_mm.service.monitoring import MonitoringThresholds, iso_week, load_thresholds, monitoring_report
from clinical_mm.service.service_context import ServiceContext
from clinical_mm.service.spool import Spool
from clinical_mm.service.store import ServiceStore

_DRAFT = {"findings": "Lungs are clear.", "impression": "No acute cardiopulmonary process."}


def _monday(weeks_ago: int) -> float:
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - dt.timedelta(days=today.weekday(), weeks=weeks_ago)).timestamp()


def _study(store: ServiceStore, monkeypatch: pytest.MonkeyPatch, key: str, arrived: float, source: str,
           software: str, *, refused: bool = False, raised: tuple[str, ...] = ()) -> None:
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda: arrived))
    store.add_instance(f"{key}.1", key, Path(f"/spool/{key}/1.dcm"), source)
    store.set_inputs(key, {"manufacturer": "Acme Imaging", "model": "AcmeDR 500", "software": software,
                           "view": "PA", "modality": "DX"})
    if refused:
        store.retry_later(key, "not a chest radiograph (modality CT)", max_attempts=1, backoff_s=0)
    else:
        store.set_state(key, "analyzed", result={"raised": list(raised), "flags": {}, **_DRAFT}, priority="routine")
    monkeypatch.undo()


@pytest.fixture()
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """PACS_A: 20 studies a week, software 4.2.1, then half on 5.0 (drift 0.5); 20 of week 1 signed, pneumothorax
    raised on 10 of them, 8 of which the radiologist confirms, and 1 more the model missed (agreement 17/20), 5
    signed with edits; callbacks sent 4 s after arrival for 10 studies, 8 s for 10. PACS_B: 20 studies a week, no
    refusals, then 6 of 20 refused (30%)."""
    store = ServiceStore(tmp_path / "service.sqlite")
    audit = SQLiteAuditSink(tmp_path / "audit.sqlite")
    week1, week2 = _monday(2) + 3600, _monday(1) + 3600
    for i in range(20):
        _study(store, monkeypatch, f"A1-{i}", week1 + i, "PACS_A", "4.2.1",
               raised=("pneumothorax",) if i < 10 else ())
        _study(store, monkeypatch, f"A2-{i}", week2 + i, "PACS_A", "5.0" if i % 2 else "4.2.1")
        _study(store, monkeypatch, f"B1-{i}", week1 + i, "PACS_B", "7.1")
        _study(store, monkeypatch, f"B2-{i}", week2 + i, "PACS_B", "7.1", refused=i < 6)
    for i in range(20):
        pneumothorax = i < 8 or i == 15  # the radiologist's: 8 of the 10 raised, and 1 the model missed
        impression = "Small right pneumothorax." if pneumothorax else _DRAFT["impression"]
        if i in (16, 17, 18):  # edited, but not about a flag
            impression += " Old rib fracture."
        findings = _DRAFT["findings"] if i != 19 else "Lungs are clear. Mild degenerative change of the spine."
        store.save_review(f"A1-{i}", status="signed", findings=findings, impression=impression, reviewer="k_1",
                          diff="x")
    for i in range(20):
        for key, delay in ((f"A1-{i}", 4.0 if i < 10 else 8.0),):
            sent = dt.datetime.fromtimestamp(week1 + i + delay, dt.UTC).isoformat(timespec="microseconds")
            audit.append(AuditRecord("clinical-mm", "callback", "sent", study=key, detail="sub_1: HTTP 204",
                                     timestamp=sent))
    audit.close()
    store.close()
    return {"root": tmp_path, "week1": iso_week(week1), "week2": iso_week(week2)}


def _check(report: dict[str, Any], weeks: tuple[str, str]) -> None:
    assert report["studies"] == 80 and report["refused"] == 6 and report["signed"] == 20
    pneumothorax = report["concordance"]["by_flag"]["pneumothorax"]
    assert (pneumothorax["both_positive"], pneumothorax["ai_only"], pneumothorax["radiologist_only"],
            pneumothorax["both_negative"]) == (8, 2, 1, 9)
    assert pneumothorax["agreement"]["estimate"] == 0.85
    assert pneumothorax["sensitivity"]["estimate"] == round(8 / 9, 4) and pneumothorax["ppv"]["estimate"] == 0.8
    assert report["concordance"]["by_flag"]["pleural_effusion"]["agreement"]["estimate"] == 1.0
    # edited: the 9 whose impression now names a pneumothorax the draft did not, 3 rib fractures, 1 spine
    assert report["signed_with_edits"] == 13
    rows = {(r["site"], r["week"]): r for r in report["by_site_week"]}
    week1, week2 = weeks
    assert rows[("PACS_A", week1)]["baseline"] and rows[("PACS_A", week2)]["drift"]["software"] == 0.5
    assert rows[("PACS_A", week2)]["drift"]["manufacturer"] == 0.0
    assert rows[("PACS_B", week2)]["refusal_rate"]["estimate"] == 0.3
    assert rows[("PACS_B", week1)]["refusal_rate"]["estimate"] == 0.0
    assert rows[("PACS_A", week1)]["agreement"]["estimate"] == 0.85  # 17 of 20 studies agree on every flag
    kinds = sorted((a["site"], a["week"], a["kind"]) for a in report["alerts"])
    assert kinds == [("PACS_A", week2, "drift_software"), ("PACS_B", week2, "refusal_rate")]
    ttn = report["time_to_notification"]
    assert ttn["available"] and ttn["n"] == 20 and ttn["median_seconds"]["estimate"] == pytest.approx(6.0, abs=0.01)
    assert ttn["by_site"]["PACS_A"]["p90_seconds"] == pytest.approx(8.0, abs=0.01)


def test_monitor_reports_the_planted_concordance_drift_refusals_and_times(planted: dict[str, Any]) -> None:
    out = planted["root"] / "monitoring"
    res = CliRunner().invoke(cli, ["monitor", "--out", str(out)], env={"CLINICAL_MM_DATA_DIR": str(planted["root"])})
    assert res.exit_code == 0, res.output
    assert "2 alerts" in res.output and "PACS_B" in res.output
    report = json.loads((out / "monitoring.json").read_text())
    _check(report, (planted["week1"], planted["week2"]))
    html = (out / "monitoring.html").read_text()
    assert "drift_software" in html and 'id="plot-trends"' in html
    assert "A1-3" not in html and "A1-3" not in json.dumps(report)  # no study is named


def test_an_agreement_alert_fires_below_its_threshold(planted: dict[str, Any]) -> None:
    store = ServiceStore(planted["root"] / "service.sqlite")
    rows = store.monitoring_rows()
    store.close()
    strict = monitoring_report(rows, [], MonitoringThresholds(min_agreement=0.9))
    assert ("PACS_A", planted["week1"], "agreement") in {(a["site"], a["week"], a["kind"]) for a in strict["alerts"]}
    assert strict["time_to_notification"] == {"available": False,
                                              "reason": "no triage callback sent in the period (audit log)"}


def test_the_monitoring_api_is_for_the_admin_role(planted: dict[str, Any]) -> None:
    root = planted["root"]
    key = PseudonymKey(b"\x42" * 32)
    store = ServiceStore(root / "service.sqlite")
    ctx = ServiceContext(store, SQLiteAuditSink(root / "audit.sqlite"), ["127.0.0.1"], root / "results",
                         StudyPreview(DicomDeidentifier(key)).render, Spool(root / "spool", store, Pseudonymizer(key)))
    _, admin = store.create_api_key("admin", "ops")
    _, radiologist = store.create_api_key("radiologist", "Dr. R")
    with TestClient(create_app(ctx)) as client:
        assert client.get("/v1/monitoring").status_code == 401
        assert client.get("/v1/monitoring", headers={"Authorization": f"Bearer {radiologist}"}).status_code == 403
        res = client.get("/v1/monitoring", params={"weeks": 4}, headers={"Authorization": f"Bearer {admin}"})
    assert res.status_code == 200
    _check(res.json(), (planted["week1"], planted["week2"]))


def test_monitor_refuses_a_missing_database_and_reports_an_empty_one(tmp_path: Path) -> None:
    env = {"CLINICAL_MM_DATA_DIR": str(tmp_path / "data")}
    res = CliRunner().invoke(cli, ["monitor", "--out", str(tmp_path / "o")], env=env)
    assert res.exit_code == 1 and "ConfigurationError: no service database" in res.output
    assert not (tmp_path / "data" / "service.sqlite").exists()  # reading never creates one
    ServiceStore(tmp_path / "data" / "service.sqlite").close()
    res = CliRunner().invoke(cli, ["monitor", "--out", str(tmp_path / "o")], env=env)
    assert res.exit_code == 0 and "0 studies" in res.output, res.output
    report = json.loads((tmp_path / "o" / "monitoring.json").read_text())
    assert report["time_to_notification"] == {"available": False, "reason": "no audit log to read"}


def test_drift_waits_for_a_baseline_of_enough_studies_and_ignores_studies_without_inputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ServiceStore(tmp_path / "service.sqlite")
    weeks = [_monday(3) + 3600, _monday(2) + 3600, _monday(1) + 3600]
    _study(store, monkeypatch, "W0-0", weeks[0], "PACS", "1.0")  # one study in the first week: too few
    for w, when in enumerate(weeks[1:], start=1):
        for i in range(20):
            _study(store, monkeypatch, f"W{w}-{i}", when + i, "PACS", "1.0" if i % 2 else "2.0")
    for i in range(8):  # received, not analysed yet: no inputs recorded
        monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda i=i: weeks[2] + 100 + i))
        store.add_instance(f"Q-{i}.1", f"Q-{i}", Path(f"/spool/Q-{i}/1.dcm"), "PACS")
        monkeypatch.undo()
    # an analysed study whose callbacks were dead-lettered: a delivery failure, not a refusal
    store.set_state("W2-0", "failed")
    rows = store.monitoring_rows()
    store.close()
    report = monitoring_report(rows, [], MonitoringThresholds())
    assert report["baselines"]["PACS"] == {"weeks": [iso_week(weeks[0]), iso_week(weeks[1])], "studies": 21,
                                           "enough": True}
    last = next(r for r in report["by_site_week"] if r["week"] == iso_week(weeks[2]))
    assert last["studies"] == 28 and last["drift"]["software"] < 0.1 and last["drift"]["manufacturer"] == 0.0
    assert (last["refused"], last["delivery_failed"]) == (0, 1)
    assert report["alerts"] == []


def test_thresholds_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    for text in ("max_drift: 2\n", "min_studies: 0\n", "baseline_weeks: 2.5\n", "max_drift: true\n",
                 "max_refusal_rate: .nan\n", "speed: 1\n"):
        path.write_text(text)
        with pytest.raises(ConfigurationError):
            load_thresholds(path)
    path.write_bytes(b"max_drift: \xff\xfe\n")
    with pytest.raises(ConfigurationError):
        load_thresholds(path)
    path.write_text("max_drift: 0.2\nmin_studies: 5\n")
    assert load_thresholds(path) == MonitoringThresholds(max_drift=0.2, min_studies=5)


def test_concordance_uses_the_draft_that_was_signed_even_after_the_study_is_analysed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ServiceStore(tmp_path / "service.sqlite")
    _study(store, monkeypatch, "S-1", _monday(1) + 3600, "PACS", "1.0", raised=("pneumothorax",))
    draft = {"raised": ["pneumothorax"], **_DRAFT}
    store.save_review("S-1", status="signed", findings=_DRAFT["findings"], impression="Small right pneumothorax.",
                      reviewer="k_1", diff="x", draft=draft)
    # a new instance reopens the study; its new analysis raises nothing and words the draft otherwise
    store.set_state("S-1", "analyzed", result={"raised": [], "flags": {}, "findings": "Other.", "impression": "Other."})
    rows = store.monitoring_rows()
    store.close()
    pneumothorax = monitoring_report(rows, [], MonitoringThresholds())["concordance"]["by_flag"]["pneumothorax"]
    assert (pneumothorax["both_positive"], pneumothorax["ai_only"], pneumothorax["radiologist_only"]) == (1, 0, 0)
