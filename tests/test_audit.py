"""Audit log: append-only, hash-chained, tamper evident."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.core.errors import AuditChainError


def _filled(path: Path, n: int = 5) -> SQLiteAuditSink:
    sink = SQLiteAuditSink(path)
    for i in range(n):
        sink.append(AuditRecord(actor="test", action="analyze", outcome="analyzed", study=f"2.25.{i}"))
    return sink


def test_when_untouched_then_chain_verifies(tmp_path: Path) -> None:
    sink = _filled(tmp_path / "a.sqlite")
    report = sink.verify()
    assert report.records == 5 and len(report.head) == 64


@pytest.mark.parametrize("statement", ["UPDATE audit SET outcome='x' WHERE id=2", "DELETE FROM audit WHERE id=2"])
def test_when_update_or_delete_then_refused_by_trigger(tmp_path: Path, statement: str) -> None:
    _filled(tmp_path / "a.sqlite").close()
    db = sqlite3.connect(tmp_path / "a.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(statement)


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        ("UPDATE audit SET outcome='refused' WHERE id=3", 3),
        ("UPDATE audit SET hash='00' WHERE id=2", 2),
        ("DELETE FROM audit WHERE id=4", 4),
        ("UPDATE audit SET study='2.25.999', hash=hash WHERE id=5", 5),
    ],
)
def test_when_tampered_around_triggers_then_first_broken_record_named(tmp_path: Path, tamper: str, broken: int) -> None:
    _filled(tmp_path / "a.sqlite").close()
    db = sqlite3.connect(tmp_path / "a.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute(tamper)
    db.commit()
    db.close()
    with pytest.raises(AuditChainError) as err:
        SQLiteAuditSink(tmp_path / "a.sqlite").verify()
    assert err.value.record_id == broken


def test_when_cli_verifies_a_broken_log_then_exit_1(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from clinical_mm.cli import cli

    _filled(tmp_path / "a.sqlite").close()
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--db", str(tmp_path / "a.sqlite")])
    assert ok.exit_code == 0 and "ok: 5 records" in ok.output
    db = sqlite3.connect(tmp_path / "a.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET detail='edited' WHERE id=2")
    db.commit()
    db.close()
    bad = runner.invoke(cli, ["audit", "verify", "--db", str(tmp_path / "a.sqlite")])
    assert bad.exit_code == 1 and "record 2" in bad.output


@pytest.mark.parametrize("content", [b"", b"not a database at all " * 50, None],
                         ids=["zero bytes", "not SQLite", "another SQLite file"])
def test_when_verify_is_given_a_file_that_is_no_audit_log_then_it_fails_and_leaves_the_file_unchanged(
        tmp_path: Path, content: bytes | None) -> None:
    from click.testing import CliRunner

    from clinical_mm.cli import cli

    path = tmp_path / "other.sqlite"
    if content is None:
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE patients (name TEXT)")
        db.commit()
        db.close()
    else:
        path.write_bytes(content)
    before, files = path.read_bytes(), sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(cli, ["audit", "verify", "--db", str(path)])
    assert result.exit_code == 1 and "ok:" not in result.output
    assert "not an audit log" in result.output or "cannot open" in result.output
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == files


def test_when_verify_checks_a_live_log_then_it_writes_nothing_and_names_missing_triggers(tmp_path: Path) -> None:
    from clinical_mm.audit.sqlite_sink import verify_file
    from clinical_mm.core.errors import AuditError

    sink = _filled(tmp_path / "a.sqlite")
    assert verify_file(tmp_path / "a.sqlite").records == 5  # while the service's sink holds it open
    sink.close()
    before, files = (tmp_path / "a.sqlite").read_bytes(), sorted(p.name for p in tmp_path.iterdir())
    assert verify_file(tmp_path / "a.sqlite").records == 5
    assert (tmp_path / "a.sqlite").read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == files
    db = sqlite3.connect(tmp_path / "a.sqlite")
    db.execute("DROP TRIGGER audit_no_delete")
    db.commit()
    db.close()
    with pytest.raises(AuditError, match="append-only triggers are missing"):
        verify_file(tmp_path / "a.sqlite")
