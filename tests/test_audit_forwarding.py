"""The audit log leaves the machine: IHE BALP AuditEvents to a real FHIR server and RFC 5424 syslog over TLS to a real
rsyslog, signed checkpoints anchored on the FHIR server; and a log made by the service, tampered with every way an
insider can, caught by ``audit verify`` with the public key and the anchors."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from support import fhir_harness
from support.audit_tampering import TAMPERINGS
from support.fhir_harness import FhirServer
from support.serve_harness import Service, free_port, wait_for
from support.syslog_harness import RSYSLOGD, Rsyslog

from clinical_mm.audit.signing import AuditSigner, load_public_key, read_anchors, write_key_pair
from clinical_mm.audit.sqlite_sink import verify_file
from clinical_mm.cli import cli
from clinical_mm.core.errors import AuditChainError
from clinical_mm.core.fhir_release import validate_resource
from clinical_mm.outputs.fhir_audit_event import audit_event, checkpoint_event, checkpoint_from_event

needs_rsyslog = pytest.mark.skipif(not Path(RSYSLOGD).exists(), reason="rsyslog (Debian) is installed by make test")
RFC5424 = re.compile(r'^<85>1 \S+ \S+ clinical-mm - AuditEvent \[clinical-mm@32473 record="(\d+)" hash="([0-9a-f]{64})"\] '
                     "\ufeff(.*)$")


def _record(**fields: str | int) -> dict[str, str | int]:
    base: dict[str, str | int] = {"id": 1, "actor": "clinical-mm", "action": "analyze", "outcome": "analyzed",
                                  "input_hash": "", "study": "", "model_id": "", "model_sha256": "",
                                  "output_hash": "", "detail": "", "timestamp": "2026-12-07T09:00:00.000001+00:00",
                                  "prev_hash": "0" * 64, "hash": "1" * 64}
    return {**base, **fields}


@pytest.mark.parametrize(("action", "outcome", "type_code", "subtype", "code", "result", "profile"), [
    ("http GET /v1/studies/{study_id}", "200", "rest", "read", "R", "0", "Read"),
    ("http GET /v1/worklist", "200", "rest", "search-type", "E", "0", "Query"),
    ("http POST /v1/studies/{study_id}/sign", "403", "rest", "create", "C", "4", "Create"),
    ("http PUT /v1/studies/{study_id}/draft", "500", "rest", "update", "U", "8", "Update"),
    ("analyze", "analyzed", "110100", "analyze", "E", "0", None),
    ("receive", "refused", "110107", "receive", "C", "4", None),
    ("callback", "failed", "110106", "callback", "R", "8", None),
    ("reidentify:accession", "ok", "110110", "reidentify:accession", "R", "0", None),
])
def test_when_a_record_becomes_an_audit_event_then_it_is_valid_r4_in_the_balp_shape(
        action: str, outcome: str, type_code: str, subtype: str, code: str, result: str, profile: str | None) -> None:
    event = audit_event(_record(action=action, outcome=outcome, study="2.25.42", input_hash="ab" * 32))
    assert validate_resource(event) == event
    assert (event["type"]["code"], event["subtype"][0]["code"], event["action"], event["outcome"]) == \
        (type_code, subtype, code, result)
    assert event.get("meta", {}).get("profile") == (
        [f"https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.{profile}"] if profile else None)
    study = next(e for e in event["entity"] if e["what"]["identifier"]["system"] == "urn:dicom:uid")
    assert study["what"]["identifier"]["value"] == "urn:oid:2.25.42"
    assert {"type": "input_hash", "valueString": "ab" * 32} in study["detail"]
    assert audit_event(_record(action=action, outcome=outcome))["id"] == event["id"]  # from the chain hash


def test_when_a_checkpoint_is_an_audit_event_then_it_reads_back_and_still_verifies(tmp_path: Path) -> None:
    write_key_pair(tmp_path / "k.pem", tmp_path / "k.pub.pem")
    checkpoint = AuditSigner.from_file(tmp_path / "k.pem").checkpoint(12, "ab" * 32)
    event = checkpoint_event(checkpoint)
    back = checkpoint_from_event(json.loads(json.dumps(event)))
    assert back == checkpoint and back.verifies(load_public_key(tmp_path / "k.pub.pem"))
    assert checkpoint_from_event(audit_event(_record())) is None


@pytest.fixture()
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    daemon = Rsyslog(tmp_path / "rsyslog", free_port())
    yield daemon
    daemon.stop()


@needs_rsyslog
@pytest.mark.integration
def test_when_forwarded_then_fhir_and_syslog_take_every_record_once_and_a_daemon_that_was_down_catches_up(
        tmp_path: Path, fhir: FhirServer, rsyslog: Rsyslog, monkeypatch: pytest.MonkeyPatch) -> None:
    fhir.start()
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLINICAL_MM_FHIR_URL", fhir.base)
    monkeypatch.setenv("CLINICAL_MM_FHIR_TOKEN", fhir_harness.TOKEN)
    monkeypatch.setenv("CLINICAL_MM_AUDIT_FORWARD_FHIR", "true")
    monkeypatch.setenv("CLINICAL_MM_AUDIT_SYSLOG", f"127.0.0.1:{rsyslog.port}")
    monkeypatch.setenv("CLINICAL_MM_AUDIT_SYSLOG_CA", str(rsyslog.ca))
    runner = CliRunner()
    reports = tmp_path / "reports.txt"
    reports.write_text("No pneumothorax.")
    for _ in range(3):
        assert runner.invoke(cli, ["label-report", str(reports)]).exit_code == 0
    down = runner.invoke(cli, ["audit", "forward"])  # the syslog daemon is not running yet
    assert down.exit_code == 1 and "fhir: 3 records sent" in down.output and "syslog: not sent" in down.output
    rsyslog.start()
    assert runner.invoke(cli, ["label-report", str(reports)]).exit_code == 0
    caught_up = runner.invoke(cli, ["audit", "forward"])
    assert caught_up.exit_code == 0, caught_up.output
    assert "fhir: 1 records sent" in caught_up.output and "syslog: 4 records sent" in caught_up.output
    assert "fhir: 0 records sent" in runner.invoke(cli, ["audit", "forward"]).output

    events = [e for e in fhir.search("AuditEvent") if e["subtype"][0]["code"] == "label-report"]
    assert len(events) == 4 and all(validate_resource(e)["resourceType"] == "AuditEvent" for e in events)
    lines = rsyslog.messages(4)
    parsed = [RFC5424.match(line) for line in lines]
    assert len(lines) == 4 and all(parsed)
    assert [m.group(1) for m in parsed if m] == ["1", "2", "3", "4"]
    sent = [json.loads(m.group(3)) for m in parsed if m]
    assert {e["id"] for e in sent} == {e["id"] for e in events}

    exported = runner.invoke(cli, ["audit", "export", "--out", str(tmp_path / "audit.ndjson")])
    assert exported.exit_code == 0 and "4 AuditEvents" in exported.output
    assert [json.loads(line)["id"] for line in (tmp_path / "audit.ndjson").read_text().splitlines()] == \
        [e["id"] for e in sent]


@needs_rsyslog
@pytest.mark.integration
@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is installed by make test")
def test_when_the_service_signs_anchors_and_forwards_then_every_tampering_of_its_log_is_caught(
        tmp_path: Path, fhir: FhirServer, rsyslog: Rsyslog) -> None:
    fhir.start()
    rsyslog.start()
    service = Service(tmp_path / "data")
    private, anchors = tmp_path / "secrets" / "audit.pem", tmp_path / "worm" / "anchors.jsonl"
    service.cli("audit", "keygen", "--out", str(private))
    service.env.update({
        "CLINICAL_MM_AUDIT_SIGNING_KEY": str(private), "CLINICAL_MM_AUDIT_ANCHOR_FILE": str(anchors),
        "CLINICAL_MM_AUDIT_ANCHOR_RECORDS": "3", "CLINICAL_MM_AUDIT_ANCHOR_FHIR": "true",
        "CLINICAL_MM_AUDIT_FORWARD_FHIR": "true", "CLINICAL_MM_FHIR_URL": fhir.base,
        "CLINICAL_MM_FHIR_TOKEN": fhir_harness.TOKEN, "CLINICAL_MM_AUDIT_SYSLOG": f"127.0.0.1:{rsyslog.port}",
        "CLINICAL_MM_AUDIT_SYSLOG_CA": str(rsyslog.ca)})
    radiologist = service.cli("keys", "create", "--role", "radiologist")
    log = service.data_dir / "audit.sqlite"
    try:
        service.start()
        for _ in range(4):  # every request is audited
            assert httpx.get(f"{service.base}/v1/worklist", headers={"Authorization": f"Bearer {radiologist}"}
                             ).status_code == 200
        wait_for(lambda: anchors.exists() and anchors.read_text().strip())
        with sqlite3.connect(log) as live, sqlite3.connect(log.with_name(log.name + ".early")) as early:
            live.backup(early)  # an earlier genuine copy, for the roll-back
        for _ in range(4):
            httpx.get(f"{service.base}/v1/worklist", headers={"Authorization": f"Bearer {radiologist}"})
    finally:
        service.stop()
    public = private.with_name("audit.pub.pem")
    ok = service.cli("audit", "verify", "--public-key", str(public), "--anchors", str(anchors))
    records = int(re.search(r"ok: (\d+) records", ok).group(1))  # type: ignore[union-attr]
    assert records >= 8 and "0 later records not yet anchored" in ok
    service.cli("audit", "anchors", "--out", str(tmp_path / "fhir-anchors.jsonl"))
    from_fhir = read_anchors([tmp_path / "fhir-anchors.jsonl"])
    assert from_fhir and max(c.records for _, c in from_fhir) == records
    forwarded = [e for e in fhir.search("AuditEvent") if e["subtype"][0]["code"] != "audit-checkpoint"]
    assert len(forwarded) == records and len(rsyslog.messages(records)) == records

    key, both = load_public_key(public), read_anchors([anchors]) + from_fhir
    for name, (tamper, _) in TAMPERINGS.items():
        copy = tmp_path / "tampered" / name / "audit.sqlite"
        copy.parent.mkdir(parents=True)
        with sqlite3.connect(log) as original, sqlite3.connect(copy) as target:
            original.backup(target)
        shutil.copyfile(log.with_name(log.name + ".early"), copy.with_name(copy.name + ".early"))
        tamper(copy)
        with pytest.raises(AuditChainError):
            verify_file(copy, key, both)
