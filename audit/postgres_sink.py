"""The audit log in PostgreSQL: one chain for every process of a deployment (API, DICOM listener, workers on
several machines), appends serialised by a transaction-scoped advisory lock; a trigger refuses UPDATE, DELETE and
TRUNCATE."""

from __future__ import annotations

from typing import Any

from clinical_mm.audit.chain_log import FIELDS, Anchoring, ChainedAuditLog
from clinical_mm.core.errors import AuditError

__all__ = ["PostgresAuditSink", "is_postgres_url"]

#: the advisory lock keys of audit appends and of the schema's creation (fixed numbers, ours alone in the database)
_APPEND_LOCK = 0x636D6D6175646974  # "cmmaudit" in ASCII
_SCHEMA_LOCK = _APPEND_LOCK + 1
_SCHEMA = [
    f"CREATE TABLE IF NOT EXISTS audit (id BIGINT PRIMARY KEY, {', '.join(f'{f} TEXT NOT NULL' for f in FIELDS)}, "
    "prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_signature (id BIGINT PRIMARY KEY, key_id TEXT NOT NULL, signature TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_forwarded (destination TEXT PRIMARY KEY, last_id BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_timestamp ON audit (timestamp)",
    "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
    *(f"CREATE OR REPLACE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
      "FOR EACH ROW EXECUTE FUNCTION audit_append_only()" for table in ("audit", "audit_signature")),
    *(f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
      "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()" for table in ("audit", "audit_signature")),
]
TRIGGERS = frozenset({"audit_no_change", "audit_no_truncate", "audit_signature_no_change",
                      "audit_signature_no_truncate"})


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class PostgresAuditSink(ChainedAuditLog):
    """The audit log in the PostgreSQL database of ``url`` (the service's own, by default).

    Several processes may append at once: each append takes ``pg_advisory_xact_lock`` before reading the head, so
    they form one chain."""

    _placeholder = "%s"

    def __init__(self, url: str, anchoring: Anchoring | None = None, *, read_only: bool = False) -> None:
        import psycopg

        super().__init__(anchoring)
        self.where = "the PostgreSQL audit log"
        self._errors = (psycopg.Error,)
        try:
            self._db = psycopg.connect(url, autocommit=True, connect_timeout=10)
            if read_only:  # a check changes nothing, triggers an insider dropped included
                self._db.execute("SET default_transaction_read_only = on")
            else:
                self._db.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))  # one process creates the schema
                try:
                    for statement in _SCHEMA:
                        self._db.execute(statement)
                finally:
                    self._db.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))
        except psycopg.Error as exc:  # never echo the URL: it may hold a password
            raise AuditError(f"{self.where}: cannot open ({exc.__class__.__name__})") from None
        if not read_only:
            self._start_anchoring()

    def _begin(self) -> None:
        self._execute("BEGIN")
        self._execute("SELECT pg_advisory_xact_lock(?)", (_APPEND_LOCK,))

    def triggers(self) -> set[str]:
        """The append-only triggers present and enabled on the audit tables."""
        with self._lock:
            try:
                rows: list[Any] = self._execute(
                    "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' AND tgrelid IN "
                    "(to_regclass('audit'), to_regclass('audit_signature'))").fetchall()
            except self._errors as exc:
                raise AuditError(f"{self.where}: cannot read its triggers ({exc.__class__.__name__})") from None
        return {str(r[0]) for r in rows}

