"""The audit log on PostgreSQL: one chain for several writing processes, append-only in the database, and the same
insider tamperings caught as on the embedded log."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.audit.chain_log import FIELDS, GENESIS, row_hash
from clinical_mm.audit.signing import load_public_key, read_anchors, write_key_pair
from clinical_mm.cli import cli
from clinical_mm.core.errors import AuditChainError, AuditError

pytestmark = pytest.mark.integration


@pytest.fixture()
def database(postgres_url: str) -> Iterator[str]:
    """A database of its own on the test server."""
    name = f"audit_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"


def _append(spec: AuditLogSpec, writer: int, n: int) -> None:
    log = spec.open()
    try:
        for i in range(n):
            log.append(AuditRecord(actor=f"worker-{writer}", action="analyze", outcome="analyzed", study=f"2.25.{i}"))
    finally:
        log.close()


def _spec(database: str, tmp_path: Path, every: int = 10) -> AuditLogSpec:
    if not (tmp_path / "keys" / "audit.pem").exists():
        write_key_pair(tmp_path / "keys" / "audit.pem", tmp_path / "keys" / "audit.pub.pem")
    return AuditLogSpec(database, tmp_path / "keys" / "audit.pem", (tmp_path / "worm" / "anchors.jsonl",), every)


_WRITER = """
import sys
from pathlib import Path
from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.audit.audit_record import AuditRecord
url, key, anchors, writer, n = sys.argv[1:]
log = AuditLogSpec(url, Path(key), (Path(anchors),), 10).open()
for i in range(int(n)):
    log.append(AuditRecord(actor=f"worker-{writer}", action="analyze", outcome="analyzed", study=f"2.25.{i}"))
log.close()
"""


def test_when_four_processes_append_at_once_then_they_make_one_signed_chain(database: str, tmp_path: Path) -> None:
    spec = _spec(database, tmp_path)
    spec.open().close()  # the schema, once
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, database, str(spec.signing_key), str(spec.anchor_files[0]),
                                 str(w), "25"], stderr=subprocess.PIPE) for w in range(4)]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    report = spec.verify(load_public_key(tmp_path / "keys" / "audit.pub.pem"),
                         read_anchors([tmp_path / "worm" / "anchors.jsonl"]))
    assert (report.records, report.signed, report.anchored_records) == (100, 100, 100)
    assert {r["actor"] for r in spec.records()} == {f"worker-{w}" for w in range(4)}


@pytest.mark.parametrize("statement", ["UPDATE audit SET outcome = 'x' WHERE id = 2", "DELETE FROM audit WHERE id = 2",
                                       "TRUNCATE audit", "DELETE FROM audit_signature"])
def test_when_a_writer_updates_deletes_or_truncates_then_the_database_refuses(
        database: str, tmp_path: Path, statement: str) -> None:
    _append(_spec(database, tmp_path), 0, 3)
    with psycopg.connect(database, autocommit=True) as db, pytest.raises(psycopg.errors.RaiseException,
                                                                         match="append-only"):
        db.execute(statement)


def _rehash_from(db: psycopg.Connection, start: int) -> None:
    """What the public algorithm lets anyone do: every hash from record ``start`` on recomputed."""
    rows = db.execute(f"SELECT id, {', '.join(FIELDS)}, prev_hash FROM audit ORDER BY id").fetchall()
    prev = GENESIS
    for row in rows:
        record = AuditRecord(**dict(zip(FIELDS, row[1:-1], strict=True)))
        digest = row_hash(row[0], prev, record.canonical())
        if row[0] >= start:
            db.execute("UPDATE audit SET prev_hash = %s, hash = %s WHERE id = %s", (prev, digest, row[0]))
        prev = db.execute("SELECT hash FROM audit WHERE id = %s", (row[0],)).fetchone()[0]  # type: ignore[index]


def _insert(db: psycopg.Connection, records: list[AuditRecord]) -> None:
    """Records appended after the last one with correctly chained hashes, as the public code would (no key)."""
    last = db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    record_id, prev = (last[0], last[1]) if last else (0, GENESIS)
    for record in records:
        record_id += 1
        digest = row_hash(record_id, prev, record.canonical())
        db.execute(f"INSERT INTO audit (id, {', '.join(FIELDS)}, prev_hash, hash) VALUES "
                   f"(%s, {', '.join('%s' for _ in FIELDS)}, %s, %s)",
                   (record_id, *(getattr(record, f) for f in FIELDS), prev, digest))
        prev = digest


def _replace(db: psycopg.Connection) -> None:
    db.execute("DELETE FROM audit_signature")
    db.execute("DELETE FROM audit")
    _insert(db, [AuditRecord(actor="clinical-mm", action="analyze", outcome="analyzed") for _ in range(20)])


TAMPERINGS = {
    "edit": lambda db: db.execute("UPDATE audit SET outcome = 'refused' WHERE id = 4"),
    "edit and re-hash": lambda db: (db.execute("UPDATE audit SET outcome = 'refused' WHERE id = 4"), _rehash_from(db, 4)),
    "truncate": lambda db: db.execute("DELETE FROM audit WHERE id > 17"),
    "forge": lambda db: _insert(db, [AuditRecord(actor="radiologist", action="sign", outcome="signed", study="2.25.1")]),
    "replace": _replace,
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_when_an_insider_with_the_database_tampers_then_verify_with_the_key_and_anchors_catches_it(
        database: str, tmp_path: Path, name: str) -> None:
    spec = _spec(database, tmp_path)
    _append(spec, 0, 20)
    with psycopg.connect(database, autocommit=True) as db:
        for table in ("audit", "audit_signature"):
            db.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        TAMPERINGS[name](db)
        for table in ("audit", "audit_signature"):
            db.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    with pytest.raises(AuditChainError):
        spec.verify(load_public_key(tmp_path / "keys" / "audit.pub.pem"),
                    read_anchors([tmp_path / "worm" / "anchors.jsonl"]))


def test_when_the_triggers_are_left_disabled_then_verify_says_so_and_changes_nothing(
        database: str, tmp_path: Path) -> None:
    spec = _spec(database, tmp_path)
    _append(spec, 0, 3)
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("ALTER TABLE audit DISABLE TRIGGER audit_no_change")
    with pytest.raises(AuditError, match="triggers are missing"):
        spec.verify()
    with psycopg.connect(database, autocommit=True) as db:  # verify did not quietly put them back
        assert db.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_no_change'").fetchone() == ("D",)


def test_when_the_deployment_runs_on_postgresql_then_the_cli_audits_there_and_verifies_it(
        database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLINICAL_MM_DATABASE_URL", database)
    reports = tmp_path / "reports.txt"
    reports.write_text("No pneumothorax.")
    runner = CliRunner()
    for _ in range(2):
        assert runner.invoke(cli, ["label-report", str(reports)]).exit_code == 0
    assert not (tmp_path / "data" / "audit.sqlite").exists()
    verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0 and "ok: 2 records" in verified.output
    with psycopg.connect(database, autocommit=True) as db:
        db.execute("ALTER TABLE audit DISABLE TRIGGER USER")
        db.execute("UPDATE audit SET detail = 'edited' WHERE id = 1")
        db.execute("ALTER TABLE audit ENABLE TRIGGER USER")
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN at record 1" in broken.output
