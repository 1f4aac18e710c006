"""Review of a study's draft (role radiologist): read and edit it, sign the final report or reject the draft,
read the signed report."""

from __future__ import annotations

import difflib
import json
import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, HTTPException

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.core.errors import ClinicalMMError
from clinical_mm.outputs.fhir_r4 import final_report
from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import ContextDep, Radiologist, StoreDep
from clinical_mm.service.models import (
    DiagnosticReportPublic,
    DraftIn,
    DraftPublic,
    RejectIn,
    ReviewPublic,
    SignedPublic,
    SignIn,
)
from clinical_mm.service.service_context import ServiceContext
from clinical_mm.service.store import ServiceStore

__all__ = ["router"]

_log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/studies/{study_id}", tags=["review"])
_FINAL = {404: "no such study", 409: "already signed or rejected"}


def _analysed(store: ServiceStore, study_id: str) -> dict[str, Any]:
    """The study's row; 404 when there is no such study, 409 when it has no draft yet."""
    found = store.study(study_id)
    if found is None:
        raise HTTPException(404, "no such study")
    if not found["result"]:
        raise HTTPException(409, "the study has no draft yet")
    return found


def _current_draft(store: ServiceStore, study_id: str, found: dict[str, Any]) -> tuple[str, str]:
    """The findings and impression under review: the radiologist's, or else the AI draft's."""
    review = store.review(study_id)
    if review is not None:
        return review["findings"], review["impression"]
    return str(found["result"].get("findings") or ""), str(found["result"].get("impression") or "")


@router.get("/draft", response_model=DraftPublic,
            responses=ok("draft", errors={404: "no such study", 409: "no draft yet"}))
def get_draft(study_id: str, store: StoreDep, _: Radiologist) -> DraftPublic:
    """The draft under review (the AI draft, or the radiologist's edit of it) and the review status."""
    found = _analysed(store, study_id)
    findings, impression = _current_draft(store, study_id, found)
    review = store.review(study_id)
    result = found["result"]
    return DraftPublic(study=study_id, findings=findings, impression=impression,
                       ai_findings=result.get("findings"), ai_impression=result.get("impression"),
                       status=review["status"] if review else "draft", flags=result.get("flags", {}),
                       raised=result.get("raised", []), priority=found["priority"],
                       regions=result.get("regions") or {}, ood=result.get("ood"))


@router.put("/draft", response_model=ReviewPublic, responses=ok("edited", errors=_FINAL))
def edit_draft(study_id: str, body: DraftIn, store: StoreDep, who: Radiologist) -> ReviewPublic:
    """Save the radiologist's edit of the draft (not final until signed)."""
    _analysed(store, study_id)
    if not store.save_review(study_id, status="edited", findings=body.findings, impression=body.impression,
                             reviewer=who.key_id):
        raise HTTPException(409, "the study is already signed or rejected")
    return ReviewPublic(study=study_id, status="edited")


@router.post("/sign", response_model=SignedPublic, responses=ok("signed", errors=_FINAL))
def sign(study_id: str, body: SignIn, ctx: ContextDep, who: Radiologist, background: BackgroundTasks) -> SignedPublic:
    """Sign the report: the final DiagnosticReport (status final, the signer as performer); the diff between
    the AI draft and the signed text is kept for evaluation."""
    found = _analysed(ctx.store, study_id)
    findings, impression = _current_draft(ctx.store, study_id, found)
    findings = body.findings if body.findings is not None else findings
    impression = body.impression if body.impression is not None else impression
    ai = f"FINDINGS: {found['result'].get('findings') or ''}\nIMPRESSION: {found['result'].get('impression') or ''}\n"
    signed = f"FINDINGS: {findings}\nIMPRESSION: {impression}\n"
    diff = "".join(difflib.unified_diff(ai.splitlines(True), signed.splitlines(True), "ai-draft", "signed"))
    try:
        draft_bundle = json.loads((ctx.results_dir / str(found["result"]["fhir"])).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        raise HTTPException(409, "the draft's FHIR bundle is not available") from None
    report = final_report(draft_bundle, findings=findings, impression=impression, signer_name=who.name,
                          signer_id=who.key_id)
    signed_against = {k: found["result"].get(k) for k in ("raised", "findings", "impression")}
    if not ctx.store.save_review(study_id, status="signed", findings=findings, impression=impression,
                                 reviewer=who.key_id, diff=diff, report=report, draft=signed_against):
        raise HTTPException(409, "the study is already signed or rejected")
    ctx.on_signed(study_id, report)
    # after the answer: embedding the image and de-identifying the report take seconds the signer need not wait
    background.add_task(_join_similar_cases, ctx, study_id, found, findings, impression)
    return SignedPublic(study=study_id, status="signed", report=DiagnosticReportPublic(report), diff=diff)


def _join_similar_cases(ctx: ServiceContext, study_id: str, found: dict[str, Any], findings: str,
                        impression: str) -> None:
    """The signed study joins the similar cases (run after the sign-off's answer); a failure is logged and audited,
    and the signature stands."""
    if ctx.similar is None:
        return
    try:
        ctx.similar.add(study_id, ctx.store.files_of(study_id), found["result"].get("image"), findings, impression)
    except (ClinicalMMError, OSError) as exc:
        _log.warning("signed study not added to the similar cases (%s)", exc.__class__.__name__)
        ctx.audit.append(AuditRecord(actor="clinical-mm", action="similar:add", outcome="failed", study=study_id,
                                     detail=f"not added to the similar cases ({exc.__class__.__name__})"))


@router.post("/reject", response_model=ReviewPublic, responses=ok("rejected", errors=_FINAL))
def reject(study_id: str, body: RejectIn, store: StoreDep, who: Radiologist) -> ReviewPublic:
    """Reject the AI draft with a reason (the case stays on the worklist for a human report)."""
    found = _analysed(store, study_id)
    findings, impression = _current_draft(store, study_id, found)
    if not store.save_review(study_id, status="rejected", findings=findings, impression=impression,
                             reviewer=who.key_id, reason=body.reason):
        raise HTTPException(409, "the study is already signed or rejected")
    return ReviewPublic(study=study_id, status="rejected")


@router.get("/report", response_model=DiagnosticReportPublic,
            responses=ok("report", errors={404: "not signed"}))
def get_report(study_id: str, store: StoreDep, _: Radiologist) -> DiagnosticReportPublic:
    """The signed (final) DiagnosticReport."""
    review = store.review(study_id)
    if review is None or review["status"] != "signed":
        raise HTTPException(404, "the study has no signed report")
    return DiagnosticReportPublic(review["report"])
