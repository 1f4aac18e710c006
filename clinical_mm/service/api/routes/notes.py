"""Structured extraction from clinical notes (role radiologist)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import ContextDep, Radiologist
from clinical_mm.service.models import NoteIn, NoteOutputPublic

__all__ = ["router"]

router = APIRouter(tags=["extraction"])


@router.post("/v1/notes/extract", response_model=NoteOutputPublic, response_model_exclude_unset=True,
             responses=ok("extraction", errors={503: "extraction is not configured"}))
async def extract_note(body: NoteIn, ctx: ContextDep, who: Radiologist) -> NoteOutputPublic:
    """Structured facts from a clinical note or report: coded entities (problems, medications with dose,
    route and frequency, labs and vitals with values, measurements, procedures, devices, anatomy) and the
    targets asked for, each asserted (present, absent, possible, historical, family, hypothetical), or the
    same as a FHIR R4 Bundle. The text is de-identified first (PHI masked, offsets kept); audited (hashes
    and counts, no text)."""
    extraction = ctx.extraction
    if extraction is None:
        raise HTTPException(503, "extraction is not configured")
    targets = [t for t in body.targets if t.strip()]
    out = await run_in_threadpool(extraction.run, [(body.id, body.text, targets)], body.format,
                                  body.assume_deidentified, ctx.audit, who.key_id)
    return NoteOutputPublic.model_validate(out[0])
