"""A study's image beyond its draft (role radiologist): a question answered, findings named in words scored
zero-shot, a phrase located, and the signed studies most like it. The image is the one the model analysed, de-identified again from the spool and
gated; what the radiologist types is de-identified before the model reads it; each request is audited with the
hash of the text, never the text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from clinical_mm.core.errors import AuditError, InputError
from clinical_mm.pipeline.vision_language_queries import StudyImage, VisionLanguageQueries
from clinical_mm.service.api.examples import ok
from clinical_mm.service.api.received_files import received_files
from clinical_mm.service.deps import ContextDep, Radiologist
from clinical_mm.service.models import (
    AnswerPublic,
    GroundedPublic,
    PhraseIn,
    QuestionIn,
    SimilarPublic,
    ZeroShotIn,
    ZeroShotPublic,
)
from clinical_mm.service.service_context import ServiceContext

__all__ = ["router"]

router = APIRouter(prefix="/v1/studies/{study_id}", tags=["review"])
_ERRORS = {404: "no such study", 410: "the received images were removed by the retention policy", 422: "the image cannot be used (refused by the scope check or the input gate), or "
                                      "the text cannot", 503: "not configured (no vision-language model), or the "
                                                             "audit log is unavailable"}


def _image(ctx: ServiceContext, study_id: str, action: str) -> tuple[VisionLanguageQueries, StudyImage]:
    if ctx.vision_language is None:
        raise HTTPException(503, "questions, zero-shot findings and grounding are not configured")
    files = received_files(ctx, study_id)
    found = ctx.store.study(study_id) or {}
    image = ctx.vision_language.study_image(files, (found.get("result") or {}).get("image"), action)
    if image.error is not None:
        raise HTTPException(422, f"the study's image cannot be used: {image.error}")
    return ctx.vision_language, image


def _answer(ctx: ServiceContext, study_id: str, action: str,
            answer: Callable[[VisionLanguageQueries, StudyImage], dict[str, Any]]) -> dict[str, Any]:
    """``answer`` on the study's image: its result with the study and the gate's reading; 422 for what cannot be
    used, 503 when the audit log cannot be written."""
    try:
        queries, image = _image(ctx, study_id, action)
        return {"study": study_id, "ood": image.ood, **answer(queries, image)}
    except InputError as exc:
        raise HTTPException(422, exc.reason) from None
    except AuditError:
        raise HTTPException(503, "audit log unavailable") from None


def _typed(queries: VisionLanguageQueries, text: str, what: str) -> str:
    """What the radiologist typed, de-identified; :class:`InputError` when nothing is left."""
    cleaned = queries.clean_text(text)
    if not cleaned:
        raise InputError(f"the {what} is empty")
    return cleaned


@router.post("/ask", response_model=AnswerPublic, responses=ok("answer", errors=_ERRORS))
def ask(study_id: str, body: QuestionIn, ctx: ContextDep, _: Radiologist) -> dict[str, Any]:
    """Answer a question about the study's image (presence, side, size, location, count of findings): a
    preliminary reading, like the draft."""
    return _answer(ctx, study_id, "ask", lambda q, image: q.ask_image(image, _typed(q, body.question, "question")))


@router.post("/zero-shot", response_model=ZeroShotPublic, responses=ok("zero_shot", errors=_ERRORS))
def zero_shot(study_id: str, body: ZeroShotIn, ctx: ContextDep, _: Radiologist) -> dict[str, Any]:
    """Score findings named in words on the study's image through the contrastive head (prompt ensembles);
    it changes no priority."""
    return _answer(ctx, study_id, "zero-shot",
                   lambda q, image: q.zero_shot_image(image, q.findings_in_words(body.findings)))


@router.post("/ground", response_model=GroundedPublic, responses=ok("grounded", errors=_ERRORS))
def ground(study_id: str, body: PhraseIn, ctx: ContextDep, _: Radiologist) -> dict[str, Any]:
    """Locate a phrase on the study's image (occlusion sensitivity of the image's similarity to it)."""
    return _answer(ctx, study_id, "ground", lambda q, image: q.ground_image(image, _typed(q, body.phrase, "phrase")))


@router.get("/similar", response_model=SimilarPublic, responses=ok("similar", errors=_ERRORS))
def similar(study_id: str, ctx: ContextDep, _: Radiologist, k: int = Query(5, ge=1, le=20)) -> dict[str, Any]:
    """The signed studies whose reports best match this study's image (image -> report retrieval over the signed
    cases, never the study itself): their pseudonymous ids and de-identified signed reports."""
    if ctx.similar is None:
        raise HTTPException(503, "similar cases are not configured")
    files = received_files(ctx, study_id)
    found = ctx.store.study(study_id) or {}
    try:
        cases = ctx.similar.similar(study_id, files, (found.get("result") or {}).get("image"), k)
    except InputError as exc:
        raise HTTPException(422, exc.reason) from None
    except AuditError:
        raise HTTPException(503, "audit log unavailable") from None
    return {"study": study_id, "similar": cases}
