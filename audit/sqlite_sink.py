"""Append-only, hash-chained audit log in SQLite.

Each row stores the SHA-256 of the previous row's hash and its own canonical content; triggers refuse
UPDATE and DELETE. :meth:`SQLiteAuditSink.verify` recomputes the chain and names the first record
whose content, link or position is wrong, so edits made around the triggers (or to the file) show.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from clinical_mm.audit.audit_record import AuditRecord, sha256_hex
from clinical_mm.core.errors import AuditChainError, AuditError

__all__ = ["ChainReport", "SQLiteAuditSink", "read_records", "verify_file"]

GENESIS = "0" * 64
_FIELDS = ("timestamp", "actor", "action", "input_hash", "study", "model_id", "model_sha256", "output_hash",
           "outcome", "detail")
#: the audit table's columns, in order
_COLUMNS = ("id", *_FIELDS, "prev_hash", "hash")
# Write-ahead log with synchronous=FULL: each commit is durable with one fsync of the log (a rollback
# journal needs several), and readers do not block the writer.
_SCHEMA = f"""
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{f} TEXT NOT NULL" for f in _FIELDS)},
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


def _row_hash(record_id: int, prev_hash: str, canonical: str) -> str:
    return sha256_hex(f"{record_id}\n{prev_hash}\n{canonical}")


@dataclass(frozen=True)
class ChainReport:
    records: int
    head: str


class SQLiteAuditSink:
    """The embedded audit log. Thread-safe; every append is its own transaction.

    Parameters
    ----------
    path
        SQLite file (created with its folder if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"{path}: cannot open audit log ({exc.__class__.__name__})") from None

    def close(self) -> None:
        self._db.close()

    def append(self, record: AuditRecord) -> int:
        canonical = record.canonical()
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                last = self._db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
                record_id, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
                digest = _row_hash(record_id, prev, canonical)
                values = json.loads(canonical)
                self._db.execute(
                    f"INSERT INTO audit (id, {', '.join(_FIELDS)}, prev_hash, hash) "
                    f"VALUES (?, {', '.join('?' for _ in _FIELDS)}, ?, ?)",
                    (record_id, *(str(values[f]) for f in _FIELDS), prev, digest),
                )
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK")
                raise AuditError(f"{self.path}: cannot append audit record ({exc.__class__.__name__})") from None
        return record_id

    def records(self, action: str | None = None, since: str | None = None) -> list[dict[str, str | int]]:
        """The records in id order; only those of ``action`` and from ``since`` (an ISO 8601 UTC time) when given."""
        return _rows(self._db, action, since)

    def verify(self) -> ChainReport:
        """Walk the chain; raise :class:`AuditChainError` naming the first broken record."""
        try:
            rows = self.records()
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: cannot read audit log ({exc.__class__.__name__})") from None
        return _walk(rows)


def verify_file(path: Path) -> ChainReport:
    """Check the audit log in ``path`` without writing to it: opened read-only, refused with
    :class:`AuditError` when it is no audit log (not SQLite, no ``audit`` table of this schema), its chain walked
    as :meth:`SQLiteAuditSink.verify` does, and refused when the append-only triggers are gone."""
    db = _open_read_only(path)
    try:
        _check_columns(db, path)
        rows = _rows(db)
        triggers = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                                "AND tbl_name = 'audit'").fetchall()}
    except sqlite3.Error as exc:
        raise AuditError(f"{path}: not an audit log ({exc.__class__.__name__})") from None
    finally:
        db.close()
    report = _walk(rows)  # a broken record is named first; then the triggers that keep the log append-only
    if not {"audit_no_update", "audit_no_delete"} <= triggers:
        raise AuditError(f"{path}: the chain holds but the audit log's append-only triggers are missing")
    return report


def _open_read_only(path: Path) -> sqlite3.Connection:
    """The audit log in ``path`` opened read-only: through its write-ahead log when one is beside it (a writer may
    be live; its side files exist already), else as immutable, so that SQLite makes no side files either."""
    live = any(path.with_name(path.name + suffix).exists() for suffix in ("-wal", "-shm"))
    try:
        uri = f"file:{quote(path.resolve().as_posix())}?mode=ro{'' if live else '&immutable=1'}"
        return sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise AuditError(f"{path}: cannot open audit log read-only ({exc.__class__.__name__})") from None


def read_records(path: Path, action: str | None = None, since: str | None = None) -> list[dict[str, str | int]]:
    """The records of the audit log in ``path`` (of ``action``, from ``since`` when given), read without writing to
    it (``clinical-mm monitor``)."""
    if not path.is_file():
        raise AuditError(f"{path}: no audit log")
    db = _open_read_only(path)
    try:
        _check_columns(db, path)
        return _rows(db, action, since)
    except sqlite3.Error as exc:
        raise AuditError(f"{path}: not an audit log ({exc.__class__.__name__})") from None
    finally:
        db.close()


def _check_columns(db: sqlite3.Connection, path: Path) -> None:
    """:class:`AuditError` unless ``db`` holds the audit table with its columns."""
    columns = tuple(row[1] for row in db.execute("PRAGMA table_info(audit)").fetchall())
    if columns != _COLUMNS:
        raise AuditError(f"{path}: not an audit log (no audit table of this schema)")


def _rows(db: sqlite3.Connection, action: str | None = None, since: str | None = None) -> list[dict[str, str | int]]:
    """The records of the audit table (all, or of ``action`` and from the ISO time ``since``), in id order, as
    dicts of their columns."""
    where = " AND ".join(w for w, v in (("action = ?", action), ("timestamp >= ?", since)) if v is not None)
    args = tuple(v for v in (action, since) if v is not None)
    cur = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit {'WHERE ' + where if where else ''} ORDER BY id", args)
    return [dict(zip(_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def _walk(rows: list[dict[str, str | int]]) -> ChainReport:
    """The chain of ``rows`` (in id order) recomputed; :class:`AuditChainError` naming the first broken record."""
    prev, expected_id = GENESIS, 1
    for row in rows:
        rid = int(row["id"])
        if rid != expected_id:
            raise AuditChainError(f"record {expected_id} is missing (next present is {rid})", expected_id)
        if row["prev_hash"] != prev:
            raise AuditChainError(f"record {rid}: link to the previous record is broken", rid)
        rec = AuditRecord(**{f: str(row[f]) for f in _FIELDS})
        if _row_hash(rid, prev, rec.canonical()) != row["hash"]:
            raise AuditChainError(f"record {rid}: content does not match its hash", rid)
        prev, expected_id = str(row["hash"]), rid + 1
    return ChainReport(records=len(rows), head=prev)
