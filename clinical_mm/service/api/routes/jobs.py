"""The job queue (role admin): list jobs, retry a failed one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import Admin, StoreDep
from clinical_mm.service.models import JobState, RetriedPublic, StudySummaryPublic

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["operations"])


@router.get("", response_model=list[StudySummaryPublic], responses=ok("worklist"))
def jobs(store: StoreDep, _: Admin, state: JobState | None = None) -> list[StudySummaryPublic]:
    """Jobs (studies) in the queue, optionally of one state."""
    return [StudySummaryPublic.model_validate(row) for row in store.studies(state)]


@router.post("/{study_id}/retry", response_model=RetriedPublic,
             responses=ok("retried", errors={409: "not failed"}))
def retry(study_id: str, store: StoreDep, _: Admin) -> RetriedPublic:
    """Queue a failed study again."""
    if not store.retry_now(study_id):
        raise HTTPException(409, "only a failed study can be retried")
    return RetriedPublic(study=study_id, state="received")
