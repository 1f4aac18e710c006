"""The audit log a site configured: where it is (a SQLite file, or the deployment's PostgreSQL), and the signing key
and anchors that make it tamper-evident to an insider (``CLINICAL_MM_AUDIT_*``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clinical_mm.audit.chain_log import Anchoring, ChainedAuditLog, ChainReport, verify_rows
from clinical_mm.audit.postgres_sink import TRIGGERS, PostgresAuditSink, is_postgres_url
from clinical_mm.audit.signing import AnchorDestination, AuditSigner, Checkpoint, FileAnchor
from clinical_mm.audit.sqlite_sink import SQLiteAuditSink, read_records, verify_file
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import AuditError, ConfigurationError

__all__ = ["AuditLogSpec", "audit_target"]


def audit_target(settings: Settings) -> Path | str:
    """Where the audit log is: CLINICAL_MM_AUDIT_DB (a file) when set; else the deployment's PostgreSQL when
    CLINICAL_MM_DATABASE_URL is set (one log for every process of the service and the CLI); else
    DATA_DIR/audit.sqlite."""
    if settings.audit_db is None and settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return settings.audit_path


@dataclass(frozen=True)
class AuditLogSpec:
    """How to open the audit log (picklable: batch processes open their own).

    ``target``: a SQLite file or a ``postgresql://`` URL; ``signing_key``: the Ed25519 private key file;
    ``anchor_files``: files outside the data folder that signed checkpoints are appended to, one every
    ``every_records`` records or ``every_seconds`` seconds."""

    target: Path | str
    signing_key: Path | None = None
    anchor_files: tuple[Path, ...] = ()
    every_records: int = 100
    every_seconds: float = 300.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditLogSpec:
        """The site's audit log; the key and the anchor file are refused inside the data folder (a copy of the
        folder, or whoever can write it, would hold them) and anchors without a key (nothing would sign them)."""
        data = settings.data_dir.resolve()
        for name, path in (("CLINICAL_MM_AUDIT_SIGNING_KEY", settings.audit_signing_key),
                           ("CLINICAL_MM_AUDIT_ANCHOR_FILE", settings.audit_anchor_file)):
            if path is not None and path.resolve().is_relative_to(data):
                raise ConfigurationError(f"{name} is inside the data folder {settings.data_dir}; keep it outside, "
                                         "where the audit database's writers cannot reach it")
        if settings.audit_signing_key is None and (settings.audit_anchor_file is not None or settings.audit_anchor_fhir):
            raise ConfigurationError("audit anchors need CLINICAL_MM_AUDIT_SIGNING_KEY to sign them")
        return cls(audit_target(settings), settings.audit_signing_key,
                   (settings.audit_anchor_file,) if settings.audit_anchor_file is not None else (),
                   settings.audit_anchor_records, settings.audit_anchor_seconds)

    @property
    def where(self) -> str:
        """How messages name the log (never a database password)."""
        return "the PostgreSQL audit log" if is_postgres_url(self.target) else str(self.target)

    def open(self, destinations: Sequence[AnchorDestination] = ()) -> ChainedAuditLog:
        """The audit log, signing and anchoring when a key is set; ``destinations`` are anchors beyond the files
        (the FHIR server's)."""
        anchoring = None
        if self.signing_key is not None:
            anchoring = Anchoring(AuditSigner.from_file(self.signing_key),
                                  [*(FileAnchor(p) for p in self.anchor_files), *destinations],
                                  self.every_records, self.every_seconds)
        if is_postgres_url(self.target):
            return PostgresAuditSink(str(self.target), anchoring)
        return SQLiteAuditSink(Path(self.target), anchoring)

    def verify(self, public_key: Ed25519PublicKey | None = None,
               anchors: Sequence[tuple[str, Checkpoint]] = ()) -> ChainReport:
        """The log checked (chain; with the key, signatures; with anchors, its completeness): a file read-only, the
        PostgreSQL log with its append-only triggers checked too."""
        if not is_postgres_url(self.target):
            path = Path(self.target)
            if not path.is_file():
                raise AuditError(f"{path}: no audit log")
            return verify_file(path, public_key, anchors)
        log = PostgresAuditSink(str(self.target), read_only=True)
        try:
            rows, signatures, triggers = log.records(), log.signatures(), log.triggers()
        finally:
            log.close()
        report = verify_rows(rows, {}, None)
        if not TRIGGERS <= triggers:
            raise AuditError(f"{self.where}: the chain holds but the audit log's append-only triggers are missing")
        return verify_rows(rows, signatures, public_key, anchors) if public_key is not None or anchors else report

    def records(self, action: str | None = None, since: str | None = None) -> list[dict[str, str | int]]:
        """The records (of ``action``, from ``since``), read without writing."""
        if not is_postgres_url(self.target):
            return read_records(Path(self.target), action, since)
        log = PostgresAuditSink(str(self.target), read_only=True)
        try:
            return log.records(action, since)
        finally:
            log.close()
