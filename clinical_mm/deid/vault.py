"""The re-identification vault: pseudonym -> original value, readable only with the pseudonymisation key.

Each row holds one pseudonym the de-identifier issued (a PatientID or accession pseudonym, or a
remapped UID) and its original value, or one of a study's originals filed under the study's pseudonymous
UID (kinds ``study-accession`` and ``study-patient-name``: what the radiologist matches the case in the PACS
by), encrypted with AES-256-GCM under a key derived from the pseudonymisation key (HKDF-SHA256). The row's
key id, kind and pseudonym are the associated data, so a ciphertext cannot be moved to another row. Without
the key the table gives nothing back: pseudonyms are HMACs of the originals and the originals are ciphertext.
Rows are looked up by the key's public id, so a vault shared by several keys answers each key only for its
own pseudonyms.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import ConfigurationError, ReidentificationError

__all__ = ["PseudonymVault"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault (
    key_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (key_id, kind, pseudonym)
) WITHOUT ROWID
"""


class PseudonymVault:
    """An SQLite table of encrypted originals, keyed by (key id, kind, pseudonym).

    Parameters
    ----------
    path
        The SQLite file (created with its folder when missing).
    key
        The pseudonymisation key; a throwaway (demo) key is refused, its pseudonyms are meant to be unlinkable.
    """

    def __init__(self, path: Path, key: PseudonymKey) -> None:
        if key.ephemeral:
            raise ConfigurationError("a throwaway demo key has no vault: its pseudonyms are not meant to be re-linked")
        self.path, self.key_id = path, key.key_id
        self._lock = threading.Lock()
        self._aead = AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                                 info=b"clinical-mm re-identification vault").derive(key.secret))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False)  # shared by serve's threads, under _lock
            self._db.execute("PRAGMA journal_mode = WAL")  # durable commits with one fsync of the log
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute(_SCHEMA)
            if "created_at" not in {row[1] for row in self._db.execute("PRAGMA table_info(vault)")}:
                # added with the retention policy; rows of before count from the upgrade
                self._db.execute("ALTER TABLE vault ADD COLUMN created_at REAL NOT NULL DEFAULT 0")
                self._db.execute("UPDATE vault SET created_at = ?", (time.time(),))
            self._db.commit()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"{path}: cannot open the vault ({exc.__class__.__name__})") from None

    def _aad(self, kind: str, pseudonym: str) -> bytes:
        return f"{self.key_id}\x00{kind}\x00{pseudonym}".encode()

    def record(self, entries: Iterable[tuple[str, str, str]]) -> int:
        """Store (kind, pseudonym, original) triples in one transaction; rows already there stay. Returns rows added."""
        rows, now = [], time.time()
        for kind, pseudonym, original in entries:
            nonce = os.urandom(12)
            rows.append((self.key_id, kind, pseudonym, nonce,
                         self._aead.encrypt(nonce, original.encode("utf-8"), self._aad(kind, pseudonym)), now))
        with self._lock, self._db:
            before = self._db.total_changes
            self._db.executemany("INSERT OR IGNORE INTO vault (key_id, kind, pseudonym, nonce, ciphertext, created_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", rows)
            return self._db.total_changes - before

    def lookup(self, kind: str, pseudonym: str) -> str:
        """The original behind ``pseudonym``; :class:`ReidentificationError` when this key never issued it."""
        original = self.find(kind, pseudonym)
        if original is None:
            raise ReidentificationError(f"{self.path}: no {kind} pseudonym of that value under key {self.key_id}")
        return original

    def find(self, kind: str, pseudonym: str) -> str | None:
        """The original behind ``pseudonym``, or None when this key never recorded one; a row that does not
        authenticate is a :class:`ReidentificationError`."""
        with self._lock:
            try:
                row = self._db.execute("SELECT nonce, ciphertext FROM vault WHERE key_id = ? AND kind = ? AND "
                                       "pseudonym = ?", (self.key_id, kind, pseudonym.strip())).fetchone()
            except sqlite3.Error as exc:
                raise ReidentificationError(f"{self.path}: cannot read the vault ({exc.__class__.__name__})") from None
        if row is None:
            return None
        try:
            return self._aead.decrypt(row[0], row[1], self._aad(kind, pseudonym.strip())).decode("utf-8")
        except InvalidTag:
            raise ReidentificationError(f"{self.path}: the vault row does not authenticate (altered or moved)") from None

    def purge_older_than(self, age_s: float) -> int:
        """Remove this key's rows recorded more than ``age_s`` seconds ago (the retention policy); the rows removed.
        Their pseudonyms can no longer be linked back."""
        with self._lock, self._db:
            cur = self._db.execute("DELETE FROM vault WHERE key_id = ? AND created_at < ?",
                                   (self.key_id, time.time() - age_s))
            return int(cur.rowcount)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM vault WHERE key_id = ?", (self.key_id,)).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
