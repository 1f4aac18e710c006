"""Pulls from the PACS (role pacs): request one, follow its state."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import ContextDep, Pacs, StoreDep
from clinical_mm.service.models import PullIn, PullPublic, PullRequestedPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/pulls", tags=["ingest"])


@router.post("", status_code=202, response_model=PullRequestedPublic, responses=ok(
    "pull", 202, errors={409: "no PACS DICOMweb source is configured"}))
def request_pull(body: PullIn, ctx: ContextDep, _: Pacs) -> PullRequestedPublic:
    """Pull a study from the PACS (QIDO-RS to find it, WADO-RS to retrieve it) and analyse it like a pushed
    one; by StudyInstanceUID or accession number (what Orthanc's stable-study script posts). Queued: the
    answer is the pull's id; the identifier itself is never echoed or stored in the clear."""
    if ctx.puller is None:
        raise HTTPException(409, "no PACS DICOMweb source is configured (CLINICAL_MM_DICOMWEB_URL)")
    kind, value = ("study", body.study_uid) if body.study_uid else ("accession", body.accession)
    return PullRequestedPublic(pull_id=ctx.puller.request(kind, str(value)), state="pending")


@router.get("/{pull_id}", response_model=PullPublic, responses=ok(
    "pull_state", errors={404: "no such pull"}))
def get_pull(pull_id: str, store: StoreDep, _: Pacs) -> PullPublic:
    """A pull's state (pending, done, failed), attempts, last status and the pseudonymous studies it brought."""
    found = store.pull(pull_id)
    if found is None:
        raise HTTPException(404, "no such pull")
    return PullPublic.model_validate(found)
