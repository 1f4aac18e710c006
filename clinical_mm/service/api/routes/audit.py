"""The audit log (role auditor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import Auditor, ContextDep
from clinical_mm.service.models import AuditRecordPublic

__all__ = ["router"]

router = APIRouter(tags=["audit"])


@router.get("/v1/audit", response_model=list[AuditRecordPublic], responses=ok("audit"))
def audit(ctx: ContextDep, _: Auditor, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditRecordPublic]:
    """The latest audit records (PHI-free by construction)."""
    records = getattr(ctx.audit, "records", None)
    rows = records() if callable(records) else []
    return [AuditRecordPublic.model_validate(row) for row in rows[-limit:]]
