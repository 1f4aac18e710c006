"""The audit log against an insider who can write its database but does not hold the signing key: signed records
and anchored checkpoints show every tampering; the hash chain alone shows only edits and deletions inside."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.audit_tampering import TAMPERINGS

from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.audit.signing import (
    AuditSigner,
    Checkpoint,
    FileAnchor,
    load_public_key,
    read_anchors,
    write_key_pair,
)
from clinical_mm.audit.sqlite_sink import Anchoring, SQLiteAuditSink, verify_file
from clinical_mm.cli import cli
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import AuditChainError, AuditError, ConfigurationError


@pytest.fixture()
def keys(tmp_path: Path) -> tuple[Path, Path]:
    private, public = tmp_path / "keys" / "audit.pem", tmp_path / "keys" / "audit.pub.pem"
    write_key_pair(private, public)
    return private, public


def _signed_log(tmp_path: Path, private: Path, n: int = 8, every: int = 3) -> tuple[Path, Path]:
    """A signed log of ``n`` records, anchored every ``every`` records and at close; an early copy saved beside it
    after the first anchor."""
    path, anchor = tmp_path / "data" / "audit.sqlite", tmp_path / "anchors" / "audit-anchors.jsonl"
    sink = SQLiteAuditSink(path, Anchoring(AuditSigner.from_file(private), [FileAnchor(anchor)], every_records=every))
    for i in range(n):
        sink.append(AuditRecord(actor="clinical-mm", action="analyze", outcome="analyzed", study=f"2.25.{i}"))
        if i + 1 == every:  # a consistent copy of the file (its write-ahead log included)
            with sqlite3.connect(path) as live, sqlite3.connect(path.with_name(path.name + ".early")) as early:
                live.backup(early)
    sink.close()
    return path, anchor


def test_when_signed_and_anchored_then_every_record_is_signed_and_checkpoints_cover_the_end(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path, anchor = _signed_log(tmp_path, keys[0])
    anchors = read_anchors([anchor])
    assert [c.records for _, c in anchors] == [3, 6, 8]  # every 3 records, and the last at close
    report = verify_file(path, load_public_key(keys[1]), anchors)
    assert (report.records, report.signed, report.anchors, report.anchored_records) == (8, 8, 3, 8)
    assert report.head == anchors[-1][1].head


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_when_an_insider_tampers_then_signatures_and_anchors_show_it(
        tmp_path: Path, keys: tuple[Path, Path], name: str) -> None:
    path, anchor = _signed_log(tmp_path, keys[0])
    tamper, chain_shows_it = TAMPERINGS[name]
    tamper(path)
    with pytest.raises(AuditChainError):
        verify_file(path, load_public_key(keys[1]), read_anchors([anchor]))
    # without the key, only the chain: what it shows and what it does not (the README's table)
    if chain_shows_it:
        with pytest.raises(AuditChainError):
            verify_file(path)
    else:
        assert verify_file(path).records > 0


def test_when_an_anchor_is_forged_or_the_key_is_another_then_verify_refuses(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    path, anchor = _signed_log(tmp_path, keys[0])
    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub.pem"
    write_key_pair(other_private, other_public)
    with pytest.raises(AuditChainError, match="record 1: its signature does not verify"):
        verify_file(path, load_public_key(other_public))
    last = read_anchors([anchor])[-1][1]
    forged = Checkpoint(last.records + 5, "ab" * 32, last.time, last.key_id, last.signature)
    FileAnchor(anchor).publish(forged)
    with pytest.raises(AuditError, match="anchor's signature does not verify"):
        verify_file(path, load_public_key(keys[1]), read_anchors([anchor]))


def test_when_a_log_was_never_signed_then_verify_with_a_key_says_so(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    sink = SQLiteAuditSink(tmp_path / "plain.sqlite")
    sink.append(AuditRecord(actor="a", action="b", outcome="c"))
    sink.close()
    with pytest.raises(AuditChainError, match="record 1 is not signed"):
        verify_file(tmp_path / "plain.sqlite", load_public_key(keys[1]))


def test_when_an_anchor_cannot_be_written_then_the_record_is_kept_and_the_next_checkpoint_retries(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the anchor folder should be")
    anchor = blocked / "anchors.jsonl"
    sink = SQLiteAuditSink(tmp_path / "a.sqlite", Anchoring(AuditSigner.from_file(keys[0]), [FileAnchor(anchor)],
                                                            every_records=1))
    assert sink.append(AuditRecord(actor="a", action="b", outcome="c")) == 1
    blocked.unlink()
    assert sink.append(AuditRecord(actor="a", action="b", outcome="c")) == 2
    sink.close()
    assert [c.records for _, c in read_anchors([anchor])] == [2]
    assert verify_file(tmp_path / "a.sqlite", load_public_key(keys[1]), read_anchors([anchor])).records == 2


def test_when_the_key_is_readable_by_others_or_inside_the_data_folder_then_it_is_refused(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    keys[0].chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by other users"):
        AuditSigner.from_file(keys[0])
    keys[0].chmod(0o600)
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600
    inside = Settings(data_dir=tmp_path / "keys", audit_signing_key=keys[0])
    with pytest.raises(ConfigurationError, match="inside the data folder"):
        AuditLogSpec.from_settings(inside)
    with pytest.raises(ConfigurationError, match="need CLINICAL_MM_AUDIT_SIGNING_KEY"):
        AuditLogSpec.from_settings(Settings(data_dir=tmp_path / "d", audit_anchor_file=tmp_path / "a.jsonl"))
    with pytest.raises(ConfigurationError, match="never overwritten"):
        write_key_pair(keys[0], tmp_path / "x.pub.pem")


def test_when_the_cli_makes_a_key_and_analyses_then_verify_reports_signatures_and_anchors(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    made = runner.invoke(cli, ["audit", "keygen", "--out", str(tmp_path / "secrets" / "audit.pem")])
    assert made.exit_code == 0, made.output
    anchor = tmp_path / "worm" / "anchors.jsonl"
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CLINICAL_MM_AUDIT_SIGNING_KEY", str(tmp_path / "secrets" / "audit.pem"))
    monkeypatch.setenv("CLINICAL_MM_AUDIT_ANCHOR_FILE", str(anchor))
    monkeypatch.setenv("CLINICAL_MM_MODE", "demo")
    reports = tmp_path / "reports.txt"
    reports.write_text("No pneumothorax. Small left pleural effusion.")
    for _ in range(3):  # three audited commands, three records
        labelled = runner.invoke(cli, ["label-report", str(reports)])
        assert labelled.exit_code == 0, labelled.output
    public = str(tmp_path / "secrets" / "audit.pub.pem")
    ok = runner.invoke(cli, ["audit", "verify", "--public-key", public, "--anchors", str(anchor)])
    assert ok.exit_code == 0, ok.output
    assert "signatures valid" in ok.output and "0 later records not yet anchored" in ok.output
    TAMPERINGS["truncate"][0](tmp_path / "data" / "audit.sqlite")
    chain_only = runner.invoke(cli, ["audit", "verify"])
    anchored = runner.invoke(cli, ["audit", "verify", "--public-key", public, "--anchors", str(anchor)])
    assert chain_only.exit_code == 0 and anchored.exit_code == 1 and "removed from its end" in anchored.output
    assert runner.invoke(cli, ["audit", "verify", "--anchors", str(anchor)]).exit_code == 2
