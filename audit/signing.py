"""Authenticity of the audit log: Ed25519 signatures made with a key the database does not hold, and signed
checkpoints of the chain head ("anchors") written where the machine's insider cannot rewrite them.

The hash chain alone proves order: anyone who can write the database can re-hash a suffix, append records with
correctly chained hashes, cut the last records or replace the file. With a signing key kept outside the data
folder (readable by the service's user only, or mounted from a secret store), every record's chain hash is signed
as it is appended, so a re-hashed, renumbered, appended or replaced record has no valid signature. What a signature
cannot show is a record that is missing from the end: that is what anchors are for. A checkpoint (the number of
records and the chain head, signed) is published every N records and every T seconds to append-only destinations
outside the database (a file outside the data folder, the hospital's FHIR server as an ``AuditEvent``); a log that
ends before an anchor's record, or whose record there has another hash, was cut or replaced.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clinical_mm.core.errors import AuditError, ConfigurationError

__all__ = ["AnchorDestination", "AuditSigner", "Checkpoint", "FileAnchor", "key_id", "load_private_key", "load_public_key",
           "read_anchors", "record_message", "verify_signature", "write_key_pair"]

_RECORD = "clinical-mm audit record"
_CHECKPOINT = "clinical-mm audit checkpoint"


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the sha256 of the raw public key: names the key in records and anchors."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def record_message(record_id: int, row_hash: str) -> bytes:
    """What a record's signature signs: its id and its chain hash (which covers its content and every record
    before it)."""
    return f"{_RECORD}\n{record_id}\n{row_hash}".encode("ascii")


def verify_signature(public_key: Ed25519PublicKey, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True


class AuditSigner:
    """Signs records and checkpoints with an Ed25519 private key read from a PEM file (PKCS#8, unencrypted).

    The file must not be readable by other users; keep it outside the data folder."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id(self.public_key)

    @classmethod
    def from_file(cls, path: Path) -> AuditSigner:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read the audit signing key ({exc.strerror})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(f"{path}: the audit signing key is readable by other users; chmod 600 it")
        return cls(load_private_key(path))

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self._key.sign(message)).decode("ascii")

    def checkpoint(self, records: int, head: str) -> Checkpoint:
        """The signed checkpoint of a chain of ``records`` records whose last hash is ``head``, timed now."""
        unsigned = Checkpoint(records, head, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), self.key_id, "")
        return Checkpoint(records, head, unsigned.time, self.key_id, self.sign(unsigned.message()))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key in PEM (PKCS#8); anything else is a :class:`ConfigurationError`."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise ConfigurationError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"{path}: the signing key must be Ed25519 (openssl genpkey -algorithm ed25519)")
    return key


def load_public_key(path: Path, *, private_will_do: bool = False) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (the one published with the deployment); with ``private_will_do``, a
    private key's public half."""
    try:
        data = path.read_bytes()
        key = serialization.load_pem_public_key(data)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the public key ({exc.strerror})") from None
    except (ValueError, TypeError):
        if not private_will_do:
            raise ConfigurationError(f"{path}: not a PEM public key") from None
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ConfigurationError(f"{path}: not a PEM public key") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigurationError(f"{path}: not an Ed25519 key") from None
        return private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError(f"{path}: not an Ed25519 public key")
    return key


def write_key_pair(private_path: Path, public_path: Path) -> str:
    """A new Ed25519 key pair: the private key to ``private_path`` (created with mode 600, never overwritten),
    the public key beside; returns the key id."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        private_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{private_path}: exists; a signing key is never overwritten") from None
    except OSError as exc:
        raise ConfigurationError(f"{private_path}: cannot write the signing key ({exc.strerror})") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_id(key.public_key())


@dataclass(frozen=True)
class Checkpoint:
    """The chain of the first ``records`` records ends in ``head``: signed at ``time`` by key ``key_id``."""

    records: int
    head: str
    time: str
    key_id: str
    signature: str

    def message(self) -> bytes:
        return f"{_CHECKPOINT}\n{self.records}\n{self.head}\n{self.time}\n{self.key_id}".encode("ascii")

    def verifies(self, public_key: Ed25519PublicKey) -> bool:
        return self.key_id == key_id(public_key) and verify_signature(public_key, self.message(), self.signature)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        return cls(int(data["records"]), str(data["head"]), str(data["time"]), str(data["key_id"]),
                   str(data["signature"]))


class AnchorDestination(Protocol):
    """Where signed checkpoints go: write-once, outside the database. ``publish`` raises :class:`AuditError`
    when the destination cannot take it (the log itself is not affected; the next checkpoint tries again)."""

    def publish(self, checkpoint: Checkpoint) -> None: ...


class FileAnchor:
    """Checkpoints appended as JSON lines to a file outside the data folder (a mount the service's user may only
    append to, e.g. ``chattr +a`` or a WORM share), each line flushed to disk."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def publish(self, checkpoint: Checkpoint) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, (checkpoint.to_json() + "\n").encode("ascii"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditError(f"{self.path}: cannot append the audit anchor ({exc.strerror})") from None


def read_anchors(paths: Iterable[Path]) -> list[tuple[str, Checkpoint]]:
    """The checkpoints in anchor files, each with where it was read (``FILE:LINE``); a line that is no checkpoint
    is an :class:`AuditError` (an anchor file is never edited)."""
    anchors: list[tuple[str, Checkpoint]] = []
    for path in paths:
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditError(f"{path}: cannot read the anchor file ({exc.__class__.__name__})") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                anchors.append((f"{path}:{number}", Checkpoint.from_json(line)))
            except (ValueError, KeyError, TypeError):
                raise AuditError(f"{path}:{number}: not an audit checkpoint") from None
    return anchors
