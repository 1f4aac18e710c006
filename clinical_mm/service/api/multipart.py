"""Multipart request bodies of the ingest routes (STOW-RS and uploads): read within the size limit, parsed,
and each part put in the spool."""

from __future__ import annotations

from fastapi import HTTPException, Request

from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.connectors.dicomweb_client import NotMultipartError, parse_multipart
from clinical_mm.core.errors import ClinicalMMError, InputError
from clinical_mm.service.spool import Spool

__all__ = ["MAX_UPLOAD", "read_parts", "spool_parts"]

#: the largest request body accepted, in bytes
MAX_UPLOAD = 512 * 1024 * 1024


async def read_parts(request: Request) -> list[bytes]:
    """The bodies of a multipart request (multipart/related for STOW-RS, multipart/form-data for uploads);
    413 over :data:`MAX_UPLOAD`, 415 without a boundary, 400 when malformed."""
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD:
        raise HTTPException(413, "upload too large")
    body = await request.body()
    if len(body) > MAX_UPLOAD:
        raise HTTPException(413, "upload too large")
    try:
        return parse_multipart(request.headers.get("content-type", ""), body)
    except NotMultipartError:
        raise HTTPException(415, "expected a multipart body with a boundary") from None
    except ValueError:
        raise HTTPException(400, "malformed multipart body") from None


def spool_parts(spool: Spool, parts: list[bytes], audit: AuditSink | None = None, actor: str = "clinical-mm",
                route: str = "upload") -> tuple[list[tuple[str, str, bool]], list[tuple[int, str]]]:
    """Put each part in the spool (fsynced: call it off the event loop): the stored parts (pseudonymous SOP
    and study UIDs, new) and the refused ones (index, reason), each refused part also in ``audit`` (its hash
    and PHI-free reason); 503 when the spool cannot store."""
    stored, failed = [], []
    for i, data in enumerate(parts):
        try:
            stored.append(spool.put(data, source="stow-rs"))
        except InputError as exc:
            failed.append((i, exc.reason))
        except (OSError, ClinicalMMError):
            raise HTTPException(503, "instances cannot be stored now; retry") from None
    if audit is not None:
        try:
            for i, reason in failed:
                audit.append(AuditRecord(actor, "receive", "refused", input_hash=sha256_hex(parts[i]),
                                         detail=f"{route} part {i}: {reason}"))
        except ClinicalMMError:
            raise HTTPException(503, "the audit log cannot take the refused parts; retry") from None
    return stored, failed
