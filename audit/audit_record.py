"""The audit record and the sink protocol every stage writes through."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

__all__ = ["AuditRecord", "AuditSink", "sha256_file", "sha256_hex"]


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read a MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


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
