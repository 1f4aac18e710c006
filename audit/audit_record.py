"""The audit record and the sink protocol every stage writes through."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = ["AuditQuery", "AuditRecord", "AuditSink", "sha256_file", "sha256_hex", "utc_timestamp"]


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def utc_timestamp(when: dt.datetime) -> str:
    """A time in the form records carry (UTC, microseconds), so that records compare with it as text."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _now() -> str:
    return utc_timestamp(dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class AuditRecord:
    """One access or model decision. No PHI: hashes of inputs and outputs, pseudonymous ids, reasons."""

    actor: str
    action: str
    outcome: str
    input_hash: str = ""
    study: str = ""  # pseudonymous study id
    model_id: str = ""
    model_sha256: str = ""
    output_hash: str = ""
    detail: str = ""  # PHI-free reason or note
    timestamp: str = field(default_factory=_now)

    def canonical(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


class AuditSink(Protocol):
    """Where audit records go; stages receive one as a constructor argument."""

    def append(self, record: AuditRecord) -> int: ...


@dataclass(frozen=True)
class AuditQuery:
    """A filtered page of the log. ``since`` (inclusive) and ``until`` (exclusive) are record timestamps
    (:func:`utc_timestamp`); ``action`` matches exactly, or as a prefix when it ends in ``*``; the others exactly.
    With ``after_id``: the first ``limit`` matches after that record (paging forward); otherwise the last ``limit``
    matches before ``before_id`` (or the end). Either way in id order."""

    since: str | None = None
    until: str | None = None
    actor: str | None = None
    action: str | None = None
    study: str | None = None
    outcome: str | None = None
    after_id: int | None = None
    before_id: int | None = None
    limit: int = 100

    def where(self) -> tuple[str, tuple[str | int, ...]]:
        """The SQL condition (``?`` placeholders, always true when empty) and its arguments."""
        clauses: list[str] = []
        args: list[str | int] = []
        for sql, value in (("timestamp >= ?", self.since), ("timestamp < ?", self.until), ("actor = ?", self.actor),
                           ("study = ?", self.study), ("outcome = ?", self.outcome), ("id > ?", self.after_id),
                           ("id < ?", self.before_id)):
            if value is not None:
                clauses.append(sql)
                args.append(value)
        if self.action is not None:
            if self.action.endswith("*"):
                clauses.append("substr(action, 1, ?) = ?")
                args += [len(self.action) - 1, self.action[:-1]]
            else:
                clauses.append("action = ?")
                args.append(self.action)
        return " AND ".join(clauses) or "1 = 1", tuple(args)
