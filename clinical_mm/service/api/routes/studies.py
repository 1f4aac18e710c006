"""Studies: upload (role pacs), the worklist, a study's state and analysis, its preview image and its identity
(accession number and patient name, re-linked through the key vault; role radiologist)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from clinical_mm.core.errors import AuditError, DeidentificationError, InputError, ReidentificationError
from clinical_mm.service.api.examples import EXAMPLES, ok
from clinical_mm.service.api.multipart import read_parts, spool_parts
from clinical_mm.service.api.received_files import received_files
from clinical_mm.service.deps import ContextDep, Pacs, Radiologist, StoreDep
from clinical_mm.service.models import (
    FailedPartPublic,
    StudyIdentityPublic,
    StudyPublic,
    StudySummaryPublic,
    UploadPublic,
)

__all__ = ["router"]

router = APIRouter()


@router.post("/v1/studies", tags=["ingest"], status_code=200, response_model=UploadPublic, responses={
    200: {"content": {"application/json": {"example": EXAMPLES["upload"]}}},
    400: {"description": "malformed multipart body"}, 409: {"description": "no instance stored", "model": UploadPublic},
    413: {"description": "upload too large"}, 415: {"description": "not multipart"},
    503: {"description": "cannot store now; retry"}},
    openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}}},
        "required": ["file"]}}}}})
async def upload(request: Request, ctx: ContextDep, _: Pacs) -> JSONResponse:
    """Upload DICOM files (multipart/form-data, one file per part); studies are queued like C-STORE ones."""
    parts = await read_parts(request)
    stored, failed = await run_in_threadpool(spool_parts, ctx.spool, parts, ctx.audit,
                                             getattr(request.state, "key_id", "anonymous"), "upload")  # fsyncs
    body = UploadPublic(stored=sum(new for _, _, new in stored), duplicates=sum(not new for _, _, new in stored),
                        studies=sorted({study for _, study, _ in stored}),
                        failed=[FailedPartPublic(part=i, reason=reason) for i, reason in failed])
    return JSONResponse(body.model_dump(), status_code=200 if stored else 409)


@router.get("/v1/worklist", tags=["review"], response_model=list[StudySummaryPublic], responses=ok("worklist"))
def worklist(store: StoreDep, _: Radiologist) -> list[StudySummaryPublic]:
    """Every study, highest priority first, then by arrival; no case is ever hidden."""
    return [StudySummaryPublic.model_validate(row) for row in store.studies()]


@router.get("/v1/studies/{study_id}", tags=["review"], response_model=StudyPublic, response_model_exclude_unset=True,
            responses=ok("study", errors={404: "no such study"}))
def get_study(study_id: str, store: StoreDep, _: Radiologist) -> StudyPublic:
    """A study's state and draft (pseudonymous id, PHI-free findings, impression and flags)."""
    found = store.study(study_id)
    if found is None:
        raise HTTPException(404, "no such study")
    return StudyPublic.model_validate(found)


@router.get("/v1/studies/{study_id}/preview.png", tags=["review"], response_class=Response,
            responses={200: {"content": {"image/png": {}}}, 404: {"description": "no such study"},
                       410: {"description": "the received images were removed by the retention policy"},
                       422: {"description": "no image to show"}})
def preview(study_id: str, ctx: ContextDep, _: Radiologist) -> Response:
    """The de-identified frontal image the model analysed (burned-in text redacted), 8-bit PNG, at most 512 pixels
    a side."""
    files = received_files(ctx, study_id)
    found = ctx.store.study(study_id) or {}
    try:
        png = ctx.preview(files, (found.get("result") or {}).get("image"))
    except (InputError, DeidentificationError) as exc:
        raise HTTPException(422, f"no preview ({exc.__class__.__name__})") from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/v1/studies/{study_id}/identity", tags=["review"], response_model=StudyIdentityPublic,
            responses=ok("identity", errors={
                404: "no such study", 409: "the key vault's record of the study cannot be read (altered or moved)",
                503: "no key vault (re-identification is not configured), or the audit log is unavailable"}))
def identity(study_id: str, ctx: ContextDep, who: Radiologist, response: Response) -> StudyIdentityPublic:
    """PHI, for the radiologist only: the study's original accession number and patient name, re-linked through
    the key vault, to match the case in the PACS. Each read is an audit record (action ``reidentify:study``:
    the reader, the pseudonymous study, which fields were re-linked; no value), written before the answer;
    the answer is not cached."""
    if ctx.identity is None:
        raise HTTPException(503, "re-identification is not configured (no key vault)")
    try:
        found = ctx.identity.identity(study_id, who.key_id)
    except ReidentificationError:
        raise HTTPException(409, "the key vault's record of the study cannot be read") from None
    except AuditError:
        raise HTTPException(503, "audit log unavailable") from None
    if found is None:
        raise HTTPException(404, "no such study")
    response.headers["Cache-Control"] = "no-store"
    return StudyIdentityPublic(study=study_id, accession=found.accession, patient_name=found.patient_name)
