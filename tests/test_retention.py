"""Retention: a delivered study's received originals (with their PHI) are deleted, or encrypted at rest, once the
window has passed; failed and recent ones stay; the vault's old rows go when configured; every purge is audited; and
after the service has delivered a canary study, no file under its data folder holds the canary PHI."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from support.canary import NEEDLES, plant_canaries
from support.serve_harness import KEY_HEX, Service, storescu, wait_for

from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import ReidentificationError
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.service.retention import ENCRYPTED_SUFFIX, Retention, RetentionPolicy, decrypt_original
from clinical_mm.service.spool import Spool
from clinical_mm.service.store import ServiceStore
from clinical_mm.synth.study_synthesizer import StudySynthesizer

KEY = PseudonymKey.from_hex(KEY_HEX, source="test")


@pytest.fixture()
def spooled(tmp_path: Path) -> Iterator[tuple[ServiceStore, Spool, list[str], dict[str, bytes]]]:
    """Two canary studies received into a spool: the first delivered, the second failed."""
    src = tmp_path / "in"
    studies = [StudySynthesizer(91).make_study(i, src) for i in range(2)]
    store = ServiceStore(tmp_path / "data" / "service.sqlite")
    spool = Spool(tmp_path / "data" / "spool", store, Pseudonymizer(KEY))
    keys, originals = [], {}
    for study in studies:
        for name in study.files:
            plant_canaries(src / name)
            data = (src / name).read_bytes()
            sop, key, _ = spool.put(data)
            originals[sop] = data
        keys.append(key)
    store.set_state(keys[0], "delivered")
    store.set_state(keys[1], "failed")
    yield store, spool, keys, originals
    store.close()


def _haystack(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_when_a_delivered_study_is_past_the_window_then_its_originals_are_deleted_and_the_purge_audited(
        tmp_path: Path, spooled: tuple[ServiceStore, Spool, list[str], dict[str, bytes]]) -> None:
    store, spool, (delivered, failed), originals = spooled
    audit = SQLiteAuditSink(tmp_path / "data" / "audit.sqlite")
    assert Retention(RetentionPolicy(window_s=3600), store, KEY, audit).run().studies == 0  # within the window
    assert all(b"QXCANARY" in f.read_bytes() for f in store.files_of(delivered))  # what the policy is about
    report = Retention(RetentionPolicy(window_s=0), store, KEY, audit).run()
    assert (report.studies, report.files) == (1, len(store.files_of(delivered)))
    assert not (spool.root / delivered).exists() and all(f.exists() for f in store.files_of(failed))
    assert (store.originals(delivered), store.originals(failed)) == ("deleted", "present")
    purge = [r for r in audit.records() if r["action"] == "purge"]
    assert len(purge) == 1 and purge[0]["study"] == delivered and "originals deleted" in str(purge[0]["detail"])
    # the PACS sends an instance of the purged study again: recorded once, not kept
    first = store.files_of(delivered)[0]
    sop = first.stem
    _, _, new = spool.put(originals[sop])
    assert not new and not first.exists()
    audit.close()


def test_when_originals_are_encrypted_then_no_plaintext_is_left_and_only_the_key_opens_them(
        tmp_path: Path, spooled: tuple[ServiceStore, Spool, list[str], dict[str, bytes]]) -> None:
    store, spool, (delivered, _), originals = spooled
    audit = SQLiteAuditSink(tmp_path / "data" / "audit.sqlite")
    Retention(RetentionPolicy(originals="encrypt", window_s=0), store, KEY, audit).run()
    sealed = sorted((spool.root / delivered).glob(f"*{ENCRYPTED_SUFFIX}"))
    assert sealed and not list((spool.root / delivered).glob("*.dcm"))
    assert store.originals(delivered) == "encrypted"
    for path in sealed:
        data = path.read_bytes()
        assert not any(needle.encode() in data for needle in NEEDLES)
        assert decrypt_original(KEY, path) == originals[path.name.removesuffix(".dcm" + ENCRYPTED_SUFFIX)]
    with pytest.raises(ReidentificationError):
        decrypt_original(PseudonymKey(b"\x01" * 32), sealed[0])
    moved = sealed[0].with_name("2.25.1.dcm" + ENCRYPTED_SUFFIX)
    shutil.copyfile(sealed[0], moved)
    with pytest.raises(ReidentificationError):  # bound to its study and name
        decrypt_original(KEY, moved)
    audit.close()


def test_when_vault_rows_are_older_than_the_policy_then_they_are_removed(tmp_path: Path) -> None:
    vault = PseudonymVault(tmp_path / "vault.sqlite", KEY)
    vault.record([("uid", "2.25.1", "1.2.3"), ("uid", "2.25.2", "1.2.4")])
    vault.close()
    with sqlite3.connect(tmp_path / "vault.sqlite") as db:
        db.execute("UPDATE vault SET created_at = ? WHERE pseudonym = '2.25.1'", (time.time() - 10 * 86400,))
    vault = PseudonymVault(tmp_path / "vault.sqlite", KEY)
    assert vault.purge_older_than(7 * 86400) == 1
    assert vault.find("uid", "2.25.1") is None and vault.find("uid", "2.25.2") == "1.2.4"
    vault.close()


def test_when_purge_and_restore_run_from_the_cli_then_they_apply_the_settings_and_are_audited(
        tmp_path: Path, spooled: tuple[ServiceStore, Spool, list[str], dict[str, bytes]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store, spool, (delivered, failed), originals = spooled
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLINICAL_MM_KEY", KEY_HEX)
    monkeypatch.setenv("CLINICAL_MM_RETENTION_ORIGINALS", "encrypt")
    monkeypatch.setenv("CLINICAL_MM_RETENTION_WINDOW_HOURS", "0")
    runner = CliRunner()
    purged = runner.invoke(cli, ["purge"])
    assert purged.exit_code == 0, purged.output
    assert "1 studies' originals encrypted" in purged.output
    restored = runner.invoke(cli, ["restore-originals", delivered, "--out", str(tmp_path / "hold")])
    assert restored.exit_code == 0, restored.output
    assert {p.read_bytes() for p in (tmp_path / "hold").iterdir()} == \
        {originals[p.stem] for p in (tmp_path / "hold").iterdir()}
    actions = [r["action"] for r in SQLiteAuditSink(tmp_path / "data" / "audit.sqlite").records()]
    assert actions.count("purge") == 1 and actions.count("restore-originals") == 1
    assert runner.invoke(cli, ["restore-originals", failed, "--out", str(tmp_path / "x")]).exit_code == 1


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk (storescu) is installed by make test")
def test_when_the_service_delivers_a_canary_study_then_after_the_window_no_file_holds_its_phi(tmp_path: Path) -> None:
    src = tmp_path / "in"
    study = StudySynthesizer(92).make_study(0, src)
    uids = [uid for name in study.files for uid in plant_canaries(src / name)]
    service = Service(tmp_path / "data")
    service.env.update({"CLINICAL_MM_RETENTION_WINDOW_HOURS": "0", "CLINICAL_MM_RETENTION_CHECK_SECONDS": "0.5"})
    radiologist = service.cli("keys", "create", "--role", "radiologist")
    headers = {"Authorization": f"Bearer {radiologist}"}
    try:
        service.start()
        assert storescu(service.dicom_port, [src / name for name in study.files]).returncode == 0
        done = wait_for(lambda: [w for w in httpx.get(f"{service.base}/v1/worklist", headers=headers).json()
                                 if w["state"] == "delivered"])
        study_id = done[0]["study_key"]
        gone = wait_for(lambda: (r := httpx.get(f"{service.base}/v1/studies/{study_id}/preview.png",
                                                headers=headers)).status_code == 410 and r)
        assert "retention policy" in gone.json()["detail"]
        assert httpx.get(f"{service.base}/v1/studies/{study_id}", headers=headers).json()["state"] == "delivered"
    finally:
        service.stop()
    files = _haystack(service.data_dir)
    assert any(name.startswith("results") for name in files) and "audit.sqlite" in files
    assert not list((service.data_dir / "spool").rglob("*.dcm"))
    for name, data in files.items():
        for needle in [*NEEDLES, *uids]:
            assert needle.encode() not in data, f"planted PHI left in {name}"
