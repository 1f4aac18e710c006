"""What an insider who can write the audit database (but does not hold the signing key) can do to it: each
function rewrites the log at ``path`` in place, around the append-only triggers, keeping the hash chain consistent
wherever the public algorithm lets them."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.audit.chain_log import COLUMNS, FIELDS, GENESIS, row_hash
from clinical_mm.audit.sqlite_sink import SQLiteAuditSink

__all__ = ["TAMPERINGS"]


def _rows(db: sqlite3.Connection) -> list[dict[str, object]]:
    return [dict(zip(COLUMNS, r, strict=True)) for r in db.execute(f"SELECT {', '.join(COLUMNS)} FROM audit "
                                                                    "ORDER BY id")]


def _rewrite(path: Path, change: Callable[[list[dict[str, object]]], list[dict[str, object]]],
             rechain: bool) -> None:
    """The audit table replaced by ``change(rows)``; with ``rechain``, ids renumbered from 1 and every hash
    recomputed (what anyone can do: the algorithm is public and unkeyed). Signatures are left as they were."""
    db = sqlite3.connect(path)
    for trigger in ("audit_no_update", "audit_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    rows = change(_rows(db))
    if rechain:
        prev = GENESIS
        for number, row in enumerate(rows, 1):
            record = AuditRecord(**{f: str(row[f]) for f in FIELDS})
            row.update(id=number, prev_hash=prev, hash=row_hash(number, prev, record.canonical()))
            prev = str(row["hash"])
    db.execute("DELETE FROM audit")
    db.executemany(f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                   [tuple(row[c] for c in COLUMNS) for row in rows])
    db.executescript("""
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
    """)
    db.commit()
    db.close()


def edit(path: Path) -> None:
    """An outcome changed in place (the hash left as it was)."""
    _rewrite(path, lambda rows: [dict(r, outcome="refused") if r["id"] == 2 else r for r in rows], rechain=False)


def edit_and_rehash(path: Path) -> None:
    """An outcome changed and the chain re-hashed from there on."""
    _rewrite(path, lambda rows: [dict(r, outcome="refused") if r["id"] == 2 else r for r in rows], rechain=True)


def delete(path: Path) -> None:
    """A record removed from the middle."""
    _rewrite(path, lambda rows: [r for r in rows if r["id"] != 3], rechain=False)


def delete_and_renumber(path: Path) -> None:
    """A record removed from the middle, the rest renumbered and re-hashed."""
    _rewrite(path, lambda rows: [r for r in rows if r["id"] != 3], rechain=True)


def reorder(path: Path) -> None:
    """Two records swapped and the chain re-hashed."""
    _rewrite(path, lambda rows: [rows[0], rows[2], rows[1], *rows[3:]], rechain=True)


def truncate(path: Path) -> None:
    """The last two records removed (the chain that is left is intact)."""
    _rewrite(path, lambda rows: rows[:-2], rechain=False)


def forge(path: Path) -> None:
    """A record appended with a correctly chained hash, written without the service."""
    forged = AuditRecord(actor="radiologist", action="sign", outcome="signed", study="2.25.1")
    _rewrite(path, lambda rows: [*rows, {**{f: getattr(forged, f) for f in FIELDS}}], rechain=True)


def replace(path: Path) -> None:
    """The file replaced by a new log of made-up records written with the public code (no key)."""
    path.unlink()
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    sink = SQLiteAuditSink(path)
    for n in range(4):
        sink.append(AuditRecord(actor="clinical-mm", action="analyze", outcome="analyzed", study=f"2.25.{n}"))
    sink.close()


def roll_back(path: Path) -> None:
    """The file replaced by an earlier genuine copy of itself (``PATH.early``, saved by the test)."""
    shutil.copyfile(path.with_name(path.name + ".early"), path)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


#: name -> (tampering, whether the hash chain alone shows it)
TAMPERINGS: dict[str, tuple[Callable[[Path], None], bool]] = {
    "edit": (edit, True),
    "edit and re-hash": (edit_and_rehash, False),
    "delete": (delete, True),
    "delete and renumber": (delete_and_renumber, False),
    "reorder": (reorder, False),
    "truncate": (truncate, False),
    "forge": (forge, False),
    "replace": (replace, False),
    "roll back": (roll_back, False),
}
