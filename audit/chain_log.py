"""The hash-chained, signed and anchored audit log, whatever database holds it.

Each row stores the SHA-256 of its id, the previous row's hash and its own canonical content; the database refuses
UPDATE and DELETE. With an :class:`Anchoring` (a signing key outside the database), each record's chain hash is
signed in the same transaction (table ``audit_signature``) and signed checkpoints of the head are published to
anchors outside the database (see :mod:`clinical_mm.audit.signing`). :class:`ChainedAuditLog` holds what does not
depend on the database; :class:`~clinical_mm.audit.sqlite_sink.SQLiteAuditSink` (the embedded default) and
:class:`~clinical_mm.audit.postgres_sink.PostgresAuditSink` (one chain for several service processes) hold the rest.
:func:`verify_rows` checks a log read from either.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clinical_mm.audit.audit_record import AuditQuery, AuditRecord, sha256_hex
from clinical_mm.audit.signing import (
    AnchorDestination,
    AuditSigner,
    Checkpoint,
    key_id,
    record_message,
    verify_signature,
)
from clinical_mm.core.errors import AuditChainError, AuditError

__all__ = ["COLUMNS", "FIELDS", "GENESIS", "Anchoring", "ChainReport", "ChainedAuditLog", "row_hash", "verify_rows"]

_log = logging.getLogger(__name__)

GENESIS = "0" * 64
FIELDS = ("timestamp", "actor", "action", "input_hash", "study", "model_id", "model_sha256", "output_hash",
          "outcome", "detail")
#: the audit table's columns, in order
COLUMNS = ("id", *FIELDS, "prev_hash", "hash")
Row = dict[str, Any]


def row_hash(record_id: int, prev_hash: str, canonical: str) -> str:
    return sha256_hex(f"{record_id}\n{prev_hash}\n{canonical}")


@dataclass(frozen=True)
class ChainReport:
    """A chain that holds: its length and head; with a public key, how many records were signed; with anchors,
    how many checkpoints were checked and the last record they cover (records after it could be cut unseen)."""

    records: int
    head: str
    signed: int = 0
    anchors: int = 0
    anchored_records: int = 0


@dataclass(frozen=True)
class Anchoring:
    """Authenticity for an audit log: ``signer`` signs every record, and a checkpoint of the chain head goes to each
    of ``destinations`` once ``every_records`` records or ``every_seconds`` seconds have passed since the last one
    (and when the log is closed)."""

    signer: AuditSigner
    destinations: Sequence[AnchorDestination] = ()
    every_records: int = 100
    every_seconds: float = 300.0


class ChainedAuditLog(ABC):
    """The audit log over one database connection (a subclass opens it). Thread-safe; every append is its own
    transaction, serialised with every other writer of the database, so the chain stays one.

    Subclasses set ``_db`` (a DB-API connection in autocommit mode), ``_errors`` (its exception classes),
    ``where`` (how errors name the log; never a password) and implement :meth:`_begin`."""

    _db: Any
    _errors: tuple[type[Exception], ...]
    _placeholder = "?"
    where: str

    def __init__(self, anchoring: Anchoring | None) -> None:
        self.anchoring = anchoring
        self._lock = threading.Lock()
        self._anchored = (0, time.monotonic())  # (records covered by the last published checkpoint, when)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _start_anchoring(self) -> None:
        if self.anchoring is not None and self.anchoring.destinations:
            self._ticker = threading.Thread(target=self._tick, name="audit-anchor", daemon=True)
            self._ticker.start()

    # ------------------------------------------------------------------ database
    @abstractmethod
    def _begin(self) -> None:
        """Open a write transaction that excludes every other writer until COMMIT."""

    def _execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self._db.execute(sql if self._placeholder == "?" else sql.replace("?", self._placeholder), args)

    def _select(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        with self._lock:
            try:
                return [dict(zip(COLUMNS, row, strict=True)) for row in self._execute(sql, args).fetchall()]
            except self._errors as exc:
                raise AuditError(f"{self.where}: cannot read audit log ({exc.__class__.__name__})") from None

    # ------------------------------------------------------------------ writing
    def close(self) -> None:
        """Publish a last checkpoint when records were added since the last one, and close the database."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.anchor(force=False)
        self._db.close()

    def append(self, record: AuditRecord) -> int:
        canonical = record.canonical()
        values = json.loads(canonical)
        with self._lock:
            try:
                self._begin()
                last = self._execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
                record_id, prev = (int(last[0]) + 1, str(last[1])) if last else (1, GENESIS)
                digest = row_hash(record_id, prev, canonical)
                self._execute(f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                              (record_id, *(str(values[f]) for f in FIELDS), prev, digest))
                if self.anchoring is not None:
                    signer = self.anchoring.signer
                    self._execute("INSERT INTO audit_signature (id, key_id, signature) VALUES (?, ?, ?)",
                                  (record_id, signer.key_id, signer.sign(record_message(record_id, digest))))
                self._execute("COMMIT")
            except self._errors as exc:
                try:
                    self._execute("ROLLBACK")
                except self._errors:
                    pass
                raise AuditError(f"{self.where}: cannot append audit record ({exc.__class__.__name__})") from None
        if self.anchoring is not None and record_id - self._anchored[0] >= self.anchoring.every_records:
            self.anchor()
        return record_id

    def anchor(self, force: bool = True) -> Checkpoint | None:
        """Publish a signed checkpoint of the chain head to every destination; with ``force`` False only when
        records were added since the last one. A destination that fails is logged (never with a record's content)
        and tried again at the next checkpoint; the log itself is unaffected."""
        if self.anchoring is None or not self.anchoring.destinations:
            return None
        with self._lock:
            try:
                last = self._execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            except self._errors as exc:
                raise AuditError(f"{self.where}: cannot read audit log ({exc.__class__.__name__})") from None
        records, head = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        if records == 0 or (not force and records <= self._anchored[0]):
            return None
        checkpoint = self.anchoring.signer.checkpoint(records, head)
        published = 0
        for destination in self.anchoring.destinations:
            try:
                destination.publish(checkpoint)
                published += 1
            except AuditError as exc:
                _log.warning("audit anchor not published: %s", exc)
        if published == len(self.anchoring.destinations):
            self._anchored = (records, time.monotonic())
        return checkpoint

    def _tick(self) -> None:
        """Publish a checkpoint every ``every_seconds`` while records come in, until :meth:`close`."""
        assert self.anchoring is not None
        period = self.anchoring.every_seconds
        while not self._stop.wait(min(period, 5.0)):
            if time.monotonic() - self._anchored[1] >= period:
                try:
                    self.anchor(force=False)
                except AuditError as exc:
                    _log.warning("audit anchor not published: %s", exc)

    # ------------------------------------------------------------------ reading
    def records(self, action: str | None = None, since: str | None = None) -> list[Row]:
        """The records in id order; only those of ``action`` and from ``since`` (an ISO 8601 UTC time) when given."""
        where, args = AuditQuery(since=since, action=action).where()
        return self._select(f"SELECT {', '.join(COLUMNS)} FROM audit WHERE {where} ORDER BY id", args)

    def query(self, query: AuditQuery) -> list[Row]:
        """A filtered page of records, in id order (see :class:`AuditQuery`), read with the table's index on id."""
        where, args = query.where()
        forward = query.after_id is not None
        rows = self._select(f"SELECT {', '.join(COLUMNS)} FROM audit WHERE {where} "
                            f"ORDER BY id {'ASC' if forward else 'DESC'} LIMIT ?", (*args, query.limit))
        return rows if forward else rows[::-1]

    def records_after(self, last_id: int, limit: int = 500) -> list[Row]:
        """At most ``limit`` records after record ``last_id``, in id order (what a forwarder sends next)."""
        return self._select(f"SELECT {', '.join(COLUMNS)} FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                            (last_id, limit))

    def signatures(self) -> dict[int, tuple[str, str]]:
        """Record id -> (key id, signature)."""
        with self._lock:
            try:
                rows = self._execute("SELECT id, key_id, signature FROM audit_signature").fetchall()
            except self._errors as exc:
                raise AuditError(f"{self.where}: cannot read audit log ({exc.__class__.__name__})") from None
        return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}

    def forwarded(self, destination: str) -> int:
        """The last record ``destination`` has taken (0: none)."""
        with self._lock:
            row = self._execute("SELECT last_id FROM audit_forwarded WHERE destination = ?", (destination,)).fetchone()
        return int(row[0]) if row else 0

    def mark_forwarded(self, destination: str, last_id: int) -> None:
        """Record that ``destination`` has taken every record up to ``last_id``."""
        with self._lock:
            try:
                self._execute("INSERT INTO audit_forwarded (destination, last_id) VALUES (?, ?) "
                              "ON CONFLICT (destination) DO UPDATE SET last_id = excluded.last_id",
                              (destination, last_id))
            except self._errors as exc:
                raise AuditError(f"{self.where}: cannot record forwarding ({exc.__class__.__name__})") from None

    def verify(self, public_key: Ed25519PublicKey | None = None,
               anchors: Sequence[tuple[str, Checkpoint]] = ()) -> ChainReport:
        """Walk the chain (and with ``public_key`` the signatures, with ``anchors`` the checkpoints); raise
        :class:`AuditChainError` naming the first broken record."""
        return verify_rows(self.records(), self.signatures() if public_key is not None else {}, public_key, anchors)


def verify_rows(rows: list[Row], signatures: dict[int, tuple[str, str]], public_key: Ed25519PublicKey | None,
                anchors: Sequence[tuple[str, Checkpoint]] = ()) -> ChainReport:
    """The chain of ``rows`` (in id order) recomputed; with ``public_key`` every record's signature in
    ``signatures`` checked; with ``anchors`` (each signed by that key) the log must reach every anchored record with
    the anchored hash there. :class:`AuditChainError` names the first record affected."""
    report, hashes = _walk(rows)
    if public_key is None:
        if anchors:
            raise AuditError("anchors are checked with the public key that signed them")
        return report
    _check_signatures(hashes, signatures, public_key)
    anchored = _check_anchors(hashes, anchors, public_key)
    return ChainReport(report.records, report.head, signed=len(hashes), anchors=len(anchors),
                       anchored_records=anchored)


def _walk(rows: list[Row]) -> tuple[ChainReport, list[str]]:
    prev, expected_id = GENESIS, 1
    hashes: list[str] = []
    for row in rows:
        rid = int(row["id"])
        if rid != expected_id:
            raise AuditChainError(f"record {expected_id} is missing (next present is {rid})", expected_id)
        if row["prev_hash"] != prev:
            raise AuditChainError(f"record {rid}: link to the previous record is broken", rid)
        rec = AuditRecord(**{f: str(row[f]) for f in FIELDS})
        if row_hash(rid, prev, rec.canonical()) != row["hash"]:
            raise AuditChainError(f"record {rid}: content does not match its hash", rid)
        prev, expected_id = str(row["hash"]), rid + 1
        hashes.append(prev)
    return ChainReport(records=len(rows), head=prev), hashes


def _check_signatures(hashes: list[str], signatures: dict[int, tuple[str, str]],
                      public_key: Ed25519PublicKey) -> None:
    expected = key_id(public_key)
    for record_id, digest in enumerate(hashes, 1):
        signed = signatures.get(record_id)
        if signed is None:
            raise AuditChainError(f"record {record_id} is not signed", record_id)
        if signed[0] != expected or not verify_signature(public_key, record_message(record_id, digest), signed[1]):
            raise AuditChainError(f"record {record_id}: its signature does not verify with this public key "
                                  "(re-hashed, forged or replaced)", record_id)


def _check_anchors(hashes: list[str], anchors: Sequence[tuple[str, Checkpoint]],
                   public_key: Ed25519PublicKey) -> int:
    """The last record the anchors cover, once each is shown signed by ``public_key`` and matched by the log."""
    covered = 0
    for where, checkpoint in anchors:
        if not checkpoint.verifies(public_key):
            raise AuditError(f"{where}: the anchor's signature does not verify with this public key")
        if checkpoint.records > len(hashes):
            raise AuditChainError(f"the log ends at record {len(hashes)} but the anchor of {checkpoint.time} ({where}) "
                                  f"covers {checkpoint.records}: records were removed from its end, or the log "
                                  "was replaced", len(hashes) + 1)
        if checkpoint.records > 0 and hashes[checkpoint.records - 1] != checkpoint.head:
            raise AuditChainError(f"record {checkpoint.records} differs from the anchor of {checkpoint.time} ({where}): "
                                  "the log was rewritten or replaced", checkpoint.records)
        covered = max(covered, checkpoint.records)
    return covered
