"""DICOMweb STOW-RS: a PACS or modality stores instances (role pacs)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from clinical_mm.service.api.multipart import read_parts, spool_parts
from clinical_mm.service.deps import ContextDep, Pacs
from clinical_mm.service.models import DicomAttributePublic, StowPublic

__all__ = ["DicomJSONResponse", "router"]

router = APIRouter(tags=["ingest"])
_FAILURE_CANNOT_UNDERSTAND = 0xC000


class DicomJSONResponse(JSONResponse):
    """A response in the DICOM JSON model (PS3.18 F.2)."""

    media_type = "application/dicom+json"


@router.post("/dicomweb/studies", response_model=StowPublic, response_class=DicomJSONResponse, responses={
    200: {"content": {"application/dicom+json": {}}, "description": "every instance stored"},
    202: {"description": "some instances stored"}, 400: {"description": "malformed multipart body"},
    409: {"description": "no instance stored"}, 413: {"description": "upload too large"},
    415: {"description": "not multipart/related"}, 503: {"description": "cannot store now; retry"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        'multipart/related; type="application/dicom"': {"schema": {"type": "string", "format": "binary"}}}}})
async def stow_rs(request: Request, ctx: ContextDep, _: Pacs) -> DicomJSONResponse:
    """DICOMweb STOW-RS (multipart/related; type="application/dicom"). The response's Referenced SOP
    Sequence names each stored instance by its pseudonymous SOP Instance UID."""
    parts = await read_parts(request)
    stored, failed = await run_in_threadpool(spool_parts, ctx.spool, parts, ctx.audit,
                                             getattr(request.state, "key_id", "anonymous"), "STOW-RS")  # fsyncs
    body = StowPublic(
        referenced_sops=DicomAttributePublic(vr="SQ", value=[{"00081155": {"vr": "UI", "Value": [sop]}}
                                                             for sop, _, _ in stored]) if stored else None,
        failed_sops=DicomAttributePublic(vr="SQ", value=[{"00081197": {"vr": "US", "Value": [_FAILURE_CANNOT_UNDERSTAND]}}
                                                         for _ in failed]) if failed else None)
    status = 200 if stored and not failed else 202 if stored else 409
    return DicomJSONResponse(body.model_dump(by_alias=True, exclude_none=True), status_code=status)
