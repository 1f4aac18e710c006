"""The embedded audit log: an append-only, hash-chained SQLite file (WAL mode), signed and anchored when a signing
key is configured (see :mod:`clinical_mm.audit.chain_log`). Triggers refuse UPDATE and DELETE;
:func:`verify_file` checks a log without writing to it, so edits made around the triggers (or to the file) show.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clinical_mm.audit.audit_record import AuditQuery
from clinical_mm.audit.chain_log import (
    COLUMNS,
    FIELDS,
    Anchoring,
    ChainedAuditLog,
    ChainReport,
    verify_rows,
)
from clinical_mm.audit.signing import Checkpoint
from clinical_mm.core.errors import AuditError

__all__ = ["Anchoring", "ChainReport", "SQLiteAuditSink", "read_records", "verify_file"]

# Write-ahead log with synchronous=FULL: each commit is durable with one fsync of the log (a rollback
# journal needs several), and readers do not block the writer.
_SCHEMA = f"""
PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    {", ".join(f"{f} TEXT NOT NULL" for f in FIELDS)},
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_signature (
    id INTEGER PRIMARY KEY,
    key_id TEXT NOT NULL,
    signature TEXT NOT NULL
);
{"".join(f"CREATE TRIGGER IF NOT EXISTS {table}_no_{change.lower()} BEFORE {change} ON {table} "
         f"BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;{chr(10)}"
         for table in ("audit", "audit_signature") for change in ("UPDATE", "DELETE"))}
CREATE TABLE IF NOT EXISTS audit_forwarded (
    destination TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
);
"""


class SQLiteAuditSink(ChainedAuditLog):
    """The embedded audit log in the SQLite file ``path`` (created with its folder if missing); several processes
    may append (``BEGIN IMMEDIATE`` serialises them). ``anchoring``: the signing key and anchors; none: the hash
    chain only."""

    def __init__(self, path: Path, anchoring: Anchoring | None = None) -> None:
        super().__init__(anchoring)
        self.path = path
        self.where = str(path)
        self._errors = (sqlite3.Error,)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise AuditError(f"{path}: cannot open audit log ({exc.__class__.__name__})") from None
        self._start_anchoring()

    def _begin(self) -> None:
        self._execute("BEGIN IMMEDIATE")


def verify_file(path: Path, public_key: Ed25519PublicKey | None = None,
                anchors: Sequence[tuple[str, Checkpoint]] = ()) -> ChainReport:
    """Check the audit log in ``path`` without writing to it: opened read-only, refused with
    :class:`AuditError` when it is no audit log (not SQLite, no ``audit`` table of this schema), its chain walked
    (a broken record named first), and refused when the append-only triggers are gone.

    With ``public_key``, every record must carry a valid signature of its chain hash by that key (a re-hashed,
    renumbered, forged or replaced record has none); with ``anchors`` (``(where, checkpoint)`` pairs, each signed by
    that key), the log must reach every anchored record with the anchored hash there (a cut or replaced log does
    not). A failure names the first record affected (:class:`AuditChainError`)."""
    db = _open_read_only(path)
    try:
        _check_columns(db, path)
        rows = _rows(db)
        triggers = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                                "AND tbl_name = 'audit'").fetchall()}
        signatures = _signatures(db) if public_key is not None else {}
    except sqlite3.Error as exc:
        raise AuditError(f"{path}: not an audit log ({exc.__class__.__name__})") from None
    finally:
        db.close()
    report = verify_rows(rows, {}, None)
    if not {"audit_no_update", "audit_no_delete"} <= triggers:
        raise AuditError(f"{path}: the chain holds but the audit log's append-only triggers are missing")
    return verify_rows(rows, signatures, public_key, anchors) if public_key is not None or anchors else report


def _signatures(db: sqlite3.Connection) -> dict[int, tuple[str, str]]:
    """Record id -> (key id, signature); none when the log was never signed (no table)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit_signature'").fetchone() is None:
        return {}
    return {int(r[0]): (str(r[1]), str(r[2])) for r in db.execute("SELECT id, key_id, signature FROM audit_signature")}


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
    if columns != COLUMNS:
        raise AuditError(f"{path}: not an audit log (no audit table of this schema)")


def _rows(db: sqlite3.Connection, action: str | None = None, since: str | None = None) -> list[dict[str, str | int]]:
    """The records of the audit table (all, or of ``action`` and from the ISO time ``since``), in id order, as
    dicts of their columns."""
    where, args = AuditQuery(since=since, action=action).where()
    cur = db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit WHERE {where} ORDER BY id", args)
    return [dict(zip(COLUMNS, row, strict=True)) for row in cur.fetchall()]
