"""The service's durable state: spooled instances, the study job queue, API keys, callback subscribers and
deliveries, and pulls from the PACS, in one database (every change its own transaction).

A study moves received -> deidentified -> analyzed -> delivered, or to failed after its last retry.
The database is SQLite (a file in WAL mode, the embedded default) or PostgreSQL (a ``postgresql://`` URL). Studies are
keyed by their pseudonymous StudyInstanceUID (the keyed UID the de-identifier issues), so the
database holds no original identifier; the original files live only in the spool until analysed.
Idempotency: an instance is recorded once per SOPInstanceUID; a study's job runs until delivered and is
not queued again by instances it already has. Work is claimed with a lease, so a process killed
mid-job leaves the study to be claimed again after the lease runs out (at-least-once).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinical_mm.core.errors import ConfigurationError, OutputError
from clinical_mm.core.findings import PRIORITIES

__all__ = ["INPUT_FIELDS", "ORIGINALS", "ROLES", "STATES", "ServiceStore", "StudyJob"]

#: job states, in order; "failed" is the dead end after the last retry
STATES = ("received", "deidentified", "analyzed", "delivered", "failed")
#: roles an API key or token can hold
ROLES = ("pacs", "radiologist", "auditor", "admin")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_key TEXT PRIMARY KEY, study_key TEXT NOT NULL, path TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS instances_study ON instances (study_key);
CREATE TABLE IF NOT EXISTS studies (
    study_key TEXT PRIMARY KEY, state TEXT NOT NULL, arrived_at DOUBLE PRECISION NOT NULL, last_instance_at DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0, lease_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    error TEXT, result TEXT, priority TEXT, priority_rank INTEGER NOT NULL DEFAULT 0, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0, name TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS reviews (
    study_key TEXT PRIMARY KEY, status TEXT NOT NULL, findings TEXT NOT NULL, impression TEXT NOT NULL,
    reviewer TEXT NOT NULL, reason TEXT, diff TEXT, report TEXT, updated_at DOUBLE PRECISION NOT NULL);
CREATE TABLE IF NOT EXISTS subscribers (
    id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, min_priority TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, active INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS deliveries (
    event_id TEXT NOT NULL, subscriber_id TEXT NOT NULL, study_key TEXT NOT NULL, body TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0, last_status TEXT, created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (event_id, subscriber_id));
CREATE TABLE IF NOT EXISTS pulls (
    pull_id TEXT PRIMARY KEY, kind TEXT NOT NULL, pseudonym TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    lease_until DOUBLE PRECISION NOT NULL DEFAULT 0, last_status TEXT, studies TEXT,
    created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS studies_arrived ON studies (arrived_at);
CREATE TABLE IF NOT EXISTS signed_drafts (
    study_key TEXT PRIMARY KEY, draft TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS study_inputs (
    study_key TEXT PRIMARY KEY, source TEXT NOT NULL DEFAULT '', manufacturer TEXT, model TEXT, software TEXT,
    view TEXT, modality TEXT, updated_at DOUBLE PRECISION NOT NULL);
"""

#: columns added after a table was first released (added to an existing database when it is opened): where a
#: study's received originals are (``present`` in the spool, ``purging``, ``deleted`` or ``encrypted`` by the
#: retention policy)
_ADDED_COLUMNS = (("studies", "originals", "TEXT NOT NULL DEFAULT 'present'"),)
#: what the retention policy leaves of a study's originals
ORIGINALS = ("present", "purging", "deleted", "encrypted")

#: the coarse acquisition metadata kept per study for monitoring (never a patient's value)
INPUT_FIELDS = ("manufacturer", "model", "software", "view", "modality")


@dataclass(frozen=True)
class StudyJob:
    """A claimed study: its pseudonymous key, state, attempt count and spooled files."""

    study_key: str
    state: str
    attempts: int
    files: list[Path]


def _hash_key(key: str) -> str:
    return hashlib.sha256(b"clinical-mm api key\x00" + key.encode()).hexdigest()


class _Connection:
    """One database connection in autocommit mode, SQLite or PostgreSQL, with ``?`` placeholders and rows
    as dicts; ``begin()`` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite; on PostgreSQL row
    locks are taken by the claims' ``FOR UPDATE SKIP LOCKED``)."""

    def __init__(self, target: Path | str) -> None:
        self.postgres = isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))
        self.errors: tuple[type[Exception], ...]
        if self.postgres:
            import psycopg
            from psycopg.rows import dict_row

            self.errors = (psycopg.Error,)
            self.db: Any = psycopg.connect(str(target), autocommit=True, row_factory=dict_row, connect_timeout=10)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self.db.execute(statement)
            for table, column, kind in _ADDED_COLUMNS:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        else:
            path = Path(target)
            self.errors = (sqlite3.Error,)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SCHEMA)
            for table, column, kind in _ADDED_COLUMNS:
                if column not in {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            self.db.row_factory = sqlite3.Row

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        return self.db.execute(sql.replace("?", "%s") if self.postgres else sql, args)

    def begin(self) -> None:
        self.db.execute("BEGIN" if self.postgres else "BEGIN IMMEDIATE")

    @property
    def skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.postgres else ""


class ServiceStore:
    """Thread-safe access to the service database: SQLite (a file path, the embedded default) or
    PostgreSQL (a ``postgresql://`` URL, for deployments). One connection, one lock per process; the
    database serialises writers across processes."""

    def __init__(self, target: Path | str) -> None:
        self.path = target if isinstance(target, Path) else Path("postgresql") if "://" in target else Path(target)
        self._where = "PostgreSQL" if isinstance(target, str) and "://" in target else str(target)
        self._lock = threading.Lock()
        try:
            self._db = _Connection(target)
        except Exception as exc:  # noqa: BLE001 - driver errors of either database; never echo the URL
            raise ConfigurationError(f"{self._where}: cannot open the service database ({exc.__class__.__name__})") from None

    @classmethod
    def existing(cls, target: Path | str) -> ServiceStore:
        """The service database at ``target`` for a command that reads or maintains it: an SQLite file that is
        not there is refused (opening would create an empty one), not created."""
        if isinstance(target, Path) and not target.is_file():
            raise ConfigurationError(f"no service database at {target} (CLINICAL_MM_DATA_DIR or "
                                     "CLINICAL_MM_DATABASE_URL)")
        return cls(target)

    def close(self) -> None:
        self._db.db.close()

    def _tx(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            try:
                return self._db.execute(sql, args)
            except self._db.errors as exc:
                raise OutputError(f"{self._where}: service database write failed ({exc.__class__.__name__})") from None

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                return [dict(r) for r in self._db.execute(sql, args).fetchall()]
            except self._db.errors as exc:
                raise OutputError(f"{self._where}: service database read failed ({exc.__class__.__name__})") from None

    @contextmanager
    def _transaction(self, what: str) -> Iterator[_Connection]:
        """One write transaction under the lock: committed when the block ends, rolled back on a database error
        (raised as :class:`OutputError` naming ``what``)."""
        with self._lock:
            try:
                self._db.begin()
                yield self._db
                self._db.execute("COMMIT")
            except self._db.errors as exc:
                try:
                    self._db.execute("ROLLBACK")
                except self._db.errors:
                    pass
                raise OutputError(f"{self._where}: cannot {what} ({exc.__class__.__name__})") from None

    # ------------------------------------------------------------------ instances and jobs
    def add_instance(self, sop_key: str, study_key: str, path: Path, source: str = "") -> bool:
        """Record a spooled instance (after its file is on disk); False when this instance was already here.
        A new instance of a study that is not being worked on (re)opens its job. ``source`` names where a study
        came from (a calling AE title, ``stow-rs``, ``pull``): the monitoring's site; its first is kept."""
        now = time.time()
        with self._transaction("record an instance") as db:
            cur = db.execute("INSERT INTO instances VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (sop_key, study_key, str(path), now))
            new = bool(cur.rowcount == 1)
            if new:
                db.execute(
                    "INSERT INTO studies (study_key, state, arrived_at, last_instance_at, updated_at) "
                    "VALUES (?, 'received', ?, ?, ?) ON CONFLICT (study_key) DO UPDATE SET "
                    "last_instance_at = excluded.last_instance_at, updated_at = excluded.updated_at, "
                    "state = CASE WHEN studies.state IN ('delivered', 'failed') THEN 'received' ELSE studies.state END, "
                    "attempts = CASE WHEN studies.state IN ('delivered', 'failed') THEN 0 ELSE studies.attempts END, "
                    "originals = 'present'",
                    (study_key, now, now, now))
                if source:
                    db.execute("INSERT INTO study_inputs (study_key, source, updated_at) VALUES (?, ?, ?) "
                               "ON CONFLICT (study_key) DO NOTHING", (study_key, source[:64], now))
        return new

    def set_inputs(self, study_key: str, inputs: dict[str, str]) -> None:
        """A study's coarse acquisition metadata (:data:`INPUT_FIELDS`: device maker and model, software version,
        view, modality), read from its headers when it is analysed, for drift monitoring."""
        values = tuple(str(inputs.get(k) or "")[:64] for k in INPUT_FIELDS)
        self._tx("INSERT INTO study_inputs (study_key, manufacturer, model, software, view, modality, updated_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (study_key) DO UPDATE SET manufacturer = excluded.manufacturer, "
                 "model = excluded.model, software = excluded.software, view = excluded.view, "
                 "modality = excluded.modality, updated_at = excluded.updated_at", (study_key, *values, time.time()))

    def monitoring_rows(self) -> list[dict[str, Any]]:
        """Every study (a site's drift baseline is its first weeks): its state, refusal reason, result, inputs,
        review and the draft signed, for ``clinical-mm monitor`` and ``GET /v1/monitoring``."""
        rows = self._rows(
            "SELECT s.study_key, s.state, s.arrived_at, s.error, s.result, i.source, i.manufacturer, i.model, "
            "i.software, i.view, i.modality, r.status AS review, r.findings AS signed_findings, "
            "r.impression AS signed_impression, d.draft AS signed_draft FROM studies s "
            "LEFT JOIN study_inputs i ON i.study_key = s.study_key LEFT JOIN reviews r ON r.study_key = s.study_key "
            "LEFT JOIN signed_drafts d ON d.study_key = s.study_key ORDER BY s.arrived_at")
        for row in rows:
            row["result"] = json.loads(row["result"]) if row["result"] else None
            row["signed_draft"] = json.loads(row["signed_draft"]) if row["signed_draft"] else None
        return rows

    def recover(self) -> None:
        """At start-up (one ``serve`` owns the database): leases of a killed process are void, and a study
        killed between its analysis and the queueing of its callbacks is analysed again (same event ids)."""
        self._tx("UPDATE studies SET lease_until = 0")
        self._tx("UPDATE deliveries SET lease_until = 0")
        self._tx("UPDATE pulls SET lease_until = 0")
        self._tx("UPDATE studies SET originals = 'present' WHERE originals = 'purging'")
        self._tx("UPDATE studies SET state = 'received' WHERE state = 'analyzed' AND NOT EXISTS "
                 "(SELECT 1 FROM deliveries d WHERE d.study_key = studies.study_key)")

    def due_work(self, quiet_s: float, limit: int = 100) -> tuple[list[str], list[tuple[str, str]], list[str]]:
        """What is due and not leased: study keys, deliveries (event id, subscriber id) and pull ids, oldest first."""
        now = time.time()
        studies = self._rows("SELECT study_key FROM studies WHERE state IN ('received', 'deidentified') AND "
                             "last_instance_at <= ? AND next_attempt_at <= ? AND lease_until <= ? ORDER BY arrived_at "
                             "LIMIT ?", (now - quiet_s, now, now, limit))
        deliveries = self._rows("SELECT event_id, subscriber_id FROM deliveries WHERE state = 'pending' AND "
                                "next_attempt_at <= ? AND lease_until <= ? ORDER BY created_at LIMIT ?", (now, now, limit))
        pulls = self._rows("SELECT pull_id FROM pulls WHERE state = 'pending' AND next_attempt_at <= ? AND "
                           "lease_until <= ? ORDER BY created_at LIMIT ?", (now, now, limit))
        return ([r["study_key"] for r in studies], [(r["event_id"], r["subscriber_id"]) for r in deliveries],
                [r["pull_id"] for r in pulls])

    def release_lease(self, kind: str, key: tuple[str, ...]) -> None:
        """Void the lease of a study, delivery or pull whose worker died (its job is retried at once)."""
        where = {"study": ("studies", "study_key = ?"), "delivery": ("deliveries", "event_id = ? AND subscriber_id = ?"),
                 "pull": ("pulls", "pull_id = ?")}[kind]
        self._tx(f"UPDATE {where[0]} SET lease_until = 0 WHERE {where[1]}", key)

    def mark_complete(self, study_keys: set[str]) -> None:
        """Studies whose sender has finished (association released): due now, without the quiet period."""
        for key in study_keys:
            self._tx("UPDATE studies SET last_instance_at = 0 WHERE study_key = ? AND state = 'received'", (key,))

    def claim_study(self, quiet_s: float, lease_s: float = 300.0, study_key: str | None = None) -> StudyJob | None:
        """The oldest study (or the study ``study_key``) whose quiet period is over and that is due and not leased;
        leased to the caller."""
        now = time.time()
        only, args = ("AND study_key = ? ", (study_key,)) if study_key is not None else ("", ())
        with self._transaction("claim a study") as db:
            row = db.execute(
                "SELECT study_key, state, attempts FROM studies WHERE state IN ('received', 'deidentified') "
                f"AND last_instance_at <= ? AND next_attempt_at <= ? AND lease_until <= ? {only}ORDER BY arrived_at "
                "LIMIT 1" + db.skip_locked, (now - quiet_s, now, now, *args)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE studies SET lease_until = ?, updated_at = ? WHERE study_key = ?",
                       (now + lease_s, now, row["study_key"]))
            files = [Path(r["path"]) for r in db.execute(
                "SELECT path FROM instances WHERE study_key = ? ORDER BY received_at", (row["study_key"],))]
        return StudyJob(row["study_key"], row["state"], row["attempts"], files)

    def set_state(self, study_key: str, state: str, *, result: dict[str, Any] | None = None,
                  priority: str | None = None) -> None:
        if state not in STATES:
            raise ValueError(f"unknown state {state}")
        sets, args = ["state = ?", "updated_at = ?"], [state, time.time()]
        if result is not None:
            sets.append("result = ?")
            args.append(json.dumps(result))
        if priority is not None:
            sets += ["priority = ?", "priority_rank = ?"]
            args += [priority, PRIORITIES.index(priority)]
        if state in ("delivered", "failed"):
            sets.append("lease_until = 0")
        self._tx(f"UPDATE studies SET {', '.join(sets)} WHERE study_key = ?", (*args, study_key))

    def retry_later(self, study_key: str, reason: str, *, max_attempts: int, backoff_s: float) -> str:
        """Count a failed attempt: back off exponentially, or fail the job after ``max_attempts``."""
        row = self._rows("SELECT attempts FROM studies WHERE study_key = ?", (study_key,))
        attempts = (row[0]["attempts"] if row else 0) + 1
        now = time.time()
        if attempts >= max_attempts:
            self._tx("UPDATE studies SET attempts = ?, state = 'failed', error = ?, lease_until = 0, updated_at = ? "
                     "WHERE study_key = ?", (attempts, reason, now, study_key))
            return "failed"
        self._tx("UPDATE studies SET attempts = ?, error = ?, next_attempt_at = ?, lease_until = 0, updated_at = ? "
                 "WHERE study_key = ?", (attempts, reason, now + backoff_s * 2 ** (attempts - 1), now, study_key))
        return "retry"

    def retry_now(self, study_key: str) -> bool:
        """Put a failed study back in the queue (an operator's retry); its dead-lettered callbacks are tried
        again."""
        self._tx("UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE study_key = ? "
                 "AND state = 'dead' AND EXISTS (SELECT 1 FROM studies WHERE study_key = ? AND state = 'failed')",
                 (study_key, study_key))
        cur = self._tx("UPDATE studies SET state = 'received', attempts = 0, next_attempt_at = 0, lease_until = 0, "
                       "error = NULL, updated_at = ? WHERE study_key = ? AND state = 'failed'", (time.time(), study_key))
        return bool(cur.rowcount == 1)

    def study(self, study_key: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT study_key, state, arrived_at, attempts, error, result, priority, updated_at, "
                          "(SELECT COUNT(*) FROM instances i WHERE i.study_key = s.study_key) AS instances, "
                          "(SELECT status FROM reviews r WHERE r.study_key = s.study_key) AS review "
                          "FROM studies s WHERE study_key = ?", (study_key,))
        if not rows:
            return None
        row = rows[0]
        row["result"] = json.loads(row["result"]) if row["result"] else None
        return row

    def studies(self, state: str | None = None) -> list[dict[str, Any]]:
        """Every study, highest priority first, then by arrival (a flag only ever moves a study up)."""
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        return self._rows(f"SELECT study_key, state, arrived_at, attempts, error, priority, updated_at, "
                          f"(SELECT status FROM reviews r WHERE r.study_key = s.study_key) AS review FROM studies s "
                          f"{where} ORDER BY priority_rank DESC, arrived_at ASC", args)

    def files_of(self, study_key: str) -> list[Path]:
        return [Path(r["path"]) for r in self._rows("SELECT path FROM instances WHERE study_key = ?", (study_key,))]

    # ------------------------------------------------------------------ retention
    def claim_expired_originals(self, window_s: float, now: float | None = None) -> tuple[str, list[Path]] | None:
        """A delivered study whose originals are still in the spool ``window_s`` seconds after its last change, marked
        ``purging`` for the caller (a study no other process is purging): (study key, its spooled files)."""
        now = time.time() if now is None else now
        with self._transaction("claim expired originals") as db:
            row = db.execute("SELECT study_key FROM studies WHERE state = 'delivered' AND originals = 'present' AND "
                             "updated_at <= ? ORDER BY updated_at LIMIT 1" + db.skip_locked, (now - window_s,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE studies SET originals = 'purging' WHERE study_key = ?", (row["study_key"],))
            files = [Path(r["path"]) for r in db.execute("SELECT path FROM instances WHERE study_key = ?",
                                                          (row["study_key"],))]
        return row["study_key"], files

    def set_originals(self, study_key: str, state: str) -> None:
        """Where a study's originals are now (:data:`ORIGINALS`); a study that took a new instance meanwhile (its
        originals ``present`` again) keeps that."""
        if state not in ORIGINALS:
            raise ValueError(f"unknown originals state {state}")
        self._tx("UPDATE studies SET originals = ? WHERE study_key = ? AND originals = 'purging'", (state, study_key))

    def originals(self, study_key: str) -> str | None:
        """Where a study's originals are (:data:`ORIGINALS`); None for an unknown study."""
        rows = self._rows("SELECT originals FROM studies WHERE study_key = ?", (study_key,))
        return str(rows[0]["originals"]) if rows else None

    # ------------------------------------------------------------------ API keys
    def create_api_key(self, role: str, name: str = "") -> tuple[str, str]:
        """A new API key for ``role`` held by ``name`` (a staff member or system, shown as the signer of the
        reports it signs): (key id, key). Only the key's hash is stored; the key is shown once."""
        if role not in ROLES:
            raise ConfigurationError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        key_id = "k_" + secrets.token_hex(6)
        key = f"cmm_{key_id[2:]}_{secrets.token_urlsafe(32)}"
        self._tx("INSERT INTO api_keys VALUES (?, ?, ?, ?, 0, ?)", (key_id, _hash_key(key), role, time.time(), name))
        return key_id, key

    def api_key_role(self, key: str) -> tuple[str, str, str] | None:
        """(key id, role, holder's name) of a valid, unrevoked key; None otherwise."""
        rows = self._rows("SELECT key_id, role, name FROM api_keys WHERE key_hash = ? AND revoked = 0",
                          (_hash_key(key),))
        return (rows[0]["key_id"], rows[0]["role"], rows[0]["name"]) if rows else None

    def revoke_api_key(self, key_id: str) -> bool:
        return bool(self._tx("UPDATE api_keys SET revoked = 1 WHERE key_id = ?", (key_id,)).rowcount == 1)

    # ------------------------------------------------------------------ review
    def review(self, study_key: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM reviews WHERE study_key = ?", (study_key,))
        if not rows:
            return None
        row = rows[0]
        row["report"] = json.loads(row["report"]) if row["report"] else None
        return row

    def save_review(self, study_key: str, *, status: str, findings: str, impression: str, reviewer: str,
                    reason: str | None = None, diff: str | None = None, report: dict[str, Any] | None = None,
                    draft: dict[str, Any] | None = None) -> bool:
        """Write a study's review; False when it is already signed or rejected (final: never overwritten).
        ``draft``: the AI result the review was made against (its raised flags and text), kept beside it, so that
        the monitoring compares the signed report with what the radiologist saw even if the study is analysed
        again later (a new instance reopens it)."""
        with self._transaction("save a review") as db:
            row = db.execute("SELECT status FROM reviews WHERE study_key = ?" + db.skip_locked, (study_key,)).fetchone()
            if row is not None and row["status"] in ("signed", "rejected"):
                return False
            db.execute(
                "INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (study_key) DO UPDATE SET "
                "status = excluded.status, findings = excluded.findings, impression = excluded.impression, "
                "reviewer = excluded.reviewer, reason = excluded.reason, diff = excluded.diff, "
                "report = excluded.report, updated_at = excluded.updated_at",
                (study_key, status, findings, impression, reviewer, reason, diff,
                 json.dumps(report) if report is not None else None, time.time()))
            if draft is not None and status in ("signed", "rejected"):
                db.execute("INSERT INTO signed_drafts VALUES (?, ?) ON CONFLICT (study_key) DO NOTHING",
                           (study_key, json.dumps(draft)))
        return True

    # ------------------------------------------------------------------ subscribers and deliveries
    def add_subscriber(self, url: str, secret: str, min_priority: str) -> str:
        sub_id = "sub_" + secrets.token_hex(6)
        self._tx("INSERT INTO subscribers VALUES (?, ?, ?, ?, ?, 1)", (sub_id, url, secret, min_priority, time.time()))
        return sub_id

    def subscribers(self, *, with_secret: bool = False) -> list[dict[str, Any]]:
        cols = "id, url, min_priority, created_at, active" + (", secret" if with_secret else "")
        return self._rows(f"SELECT {cols} FROM subscribers WHERE active = 1 ORDER BY created_at")

    def remove_subscriber(self, sub_id: str) -> bool:
        return bool(self._tx("UPDATE subscribers SET active = 0 WHERE id = ? AND active = 1", (sub_id,)).rowcount == 1)

    def enqueue_delivery(self, event_id: str, subscriber_id: str, study_key: str, body: str) -> None:
        """Queue an event for a subscriber once (the same event id again is ignored)."""
        now = time.time()
        self._tx("INSERT INTO deliveries (event_id, subscriber_id, study_key, body, state, created_at, updated_at) "
                 "VALUES (?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT DO NOTHING",
                 (event_id, subscriber_id, study_key, body, now, now))

    def claim_delivery(self, lease_s: float = 60.0, key: tuple[str, str] | None = None) -> dict[str, Any] | None:
        """The oldest due delivery (or the one of ``key``: event id, subscriber id) not leased; leased to the caller."""
        now = time.time()
        only, args = ("AND d.event_id = ? AND d.subscriber_id = ? ", key) if key is not None else ("", ())
        with self._transaction("claim a delivery") as db:
            row = db.execute(
                "SELECT d.event_id, d.subscriber_id, d.body, d.attempts, s.url, s.secret FROM deliveries d "
                "LEFT JOIN subscribers s ON s.id = d.subscriber_id WHERE d.state = 'pending' AND d.next_attempt_at <= ? "
                f"AND d.lease_until <= ? {only}ORDER BY d.created_at LIMIT 1" + (" FOR UPDATE OF d SKIP LOCKED"
                                                                                 if db.postgres else ""),
                (now, now, *args)).fetchone()
            if row is not None:
                db.execute("UPDATE deliveries SET lease_until = ? WHERE event_id = ? AND subscriber_id = ?",
                           (now + lease_s, row["event_id"], row["subscriber_id"]))
        return dict(row) if row is not None else None

    def delivery_done(self, event_id: str, subscriber_id: str, status: str) -> None:
        self._tx("UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, last_status = ?, lease_until = 0, "
                 "updated_at = ? WHERE event_id = ? AND subscriber_id = ?", (status, time.time(), event_id, subscriber_id))

    def delivery_failed(self, event_id: str, subscriber_id: str, status: str, *, max_attempts: int,
                        backoff_s: float) -> str:
        return self._failed_try("deliveries", "event_id = ? AND subscriber_id = ?", (event_id, subscriber_id), status,
                                last_state="dead", max_attempts=max_attempts, backoff_s=backoff_s)

    def _failed_try(self, table: str, where: str, key: tuple[str, ...], status: str, *, last_state: str,
                    max_attempts: int, backoff_s: float) -> str:
        """Count a failed try of a queued delivery or pull (``table`` and ``where`` are ours, never input):
        pending again after an exponential backoff capped at 5 minutes, or ``last_state`` after the last try.
        Returns the state."""
        rows = self._rows(f"SELECT attempts FROM {table} WHERE {where}", key)
        attempts = (rows[0]["attempts"] if rows else 0) + 1
        state = last_state if attempts >= max_attempts else "pending"
        now = time.time()
        self._tx(f"UPDATE {table} SET state = ?, attempts = ?, last_status = ?, lease_until = 0, next_attempt_at = ?, "
                 f"updated_at = ? WHERE {where}",
                 (state, attempts, status, now + min(backoff_s * 2 ** (attempts - 1), 300.0), now, *key))
        return state

    def deliveries(self, subscriber_id: str) -> list[dict[str, Any]]:
        """The delivery log of one subscriber, oldest first."""
        return self._rows("SELECT event_id, subscriber_id, study_key, state, attempts, last_status, created_at, "
                          "updated_at FROM deliveries WHERE subscriber_id = ? ORDER BY created_at", (subscriber_id,))

    def delivery_states(self, study_key: str) -> dict[str, int]:
        """How many of a study's callback deliveries are in each state (pending, delivered, dead)."""
        return {r["state"]: int(r["n"]) for r in self._rows(
            "SELECT state, COUNT(*) AS n FROM deliveries WHERE study_key = ? GROUP BY state", (study_key,))}

    # ------------------------------------------------------------------ pulls from the PACS
    def add_pull(self, kind: str, pseudonym: str) -> str:
        """Queue a pull of a study (``kind`` ``study``: a pseudonymous StudyInstanceUID) or of an accession's
        studies (``accession``: its pseudonym); the originals are in the vault. The same request while one is
        queued is that one; after it finished, it is queued again."""
        pull_id = "pull_" + hashlib.sha256(f"{kind}|{pseudonym}".encode()).hexdigest()[:24]
        now = time.time()
        self._tx("INSERT INTO pulls (pull_id, kind, pseudonym, state, created_at, updated_at) "
                 "VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT (pull_id) DO UPDATE SET state = 'pending', "
                 "attempts = 0, next_attempt_at = 0, updated_at = excluded.updated_at WHERE pulls.state <> 'pending'",
                 (pull_id, kind, pseudonym, now, now))
        return pull_id

    def claim_pull(self, lease_s: float = 300.0, pull_id: str | None = None) -> dict[str, Any] | None:
        now = time.time()
        only, args = ("AND pull_id = ? ", (pull_id,)) if pull_id is not None else ("", ())
        with self._transaction("claim a pull") as db:
            row = db.execute("SELECT pull_id, kind, pseudonym, attempts FROM pulls WHERE state = 'pending' AND "
                             f"next_attempt_at <= ? AND lease_until <= ? {only}ORDER BY created_at LIMIT 1"
                             + (" FOR UPDATE SKIP LOCKED" if db.postgres else ""), (now, now, *args)).fetchone()
            if row is not None:
                db.execute("UPDATE pulls SET lease_until = ? WHERE pull_id = ?", (now + lease_s, row["pull_id"]))
        return dict(row) if row is not None else None

    def pull_done(self, pull_id: str, status: str, studies: list[str]) -> None:
        self._tx("UPDATE pulls SET state = 'done', attempts = attempts + 1, last_status = ?, studies = ?, "
                 "lease_until = 0, updated_at = ? WHERE pull_id = ?", (status, json.dumps(studies), time.time(), pull_id))

    def pull_failed(self, pull_id: str, status: str, *, max_attempts: int, backoff_s: float) -> str:
        """A failed try: pending again after the backoff, or failed after the last try. Returns the state."""
        return self._failed_try("pulls", "pull_id = ?", (pull_id,), status, last_state="failed",
                                max_attempts=max_attempts, backoff_s=backoff_s)

    def pull(self, pull_id: str) -> dict[str, Any] | None:
        """A pull's state, attempts, last status and the (pseudonymous) studies it brought."""
        rows = self._rows("SELECT pull_id, kind, state, attempts, last_status, studies, created_at, updated_at "
                          "FROM pulls WHERE pull_id = ?", (pull_id,))
        if not rows:
            return None
        row = rows[0]
        row["studies"] = json.loads(row["studies"]) if row["studies"] else []
        return row
