"""The audit log (role auditor): filtered and paged."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response

from clinical_mm.audit.audit_record import AuditQuery, utc_timestamp
from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import Auditor, ContextDep
from clinical_mm.service.models import AuditRecordPublic

__all__ = ["router"]

router = APIRouter(tags=["audit"])
_MAX_ID = 2**63 - 1  # the largest record id either database holds


@router.get("/v1/audit", response_model=list[AuditRecordPublic],
            responses=ok("audit", errors={400: "after_id and before_id given together"}))
def audit(ctx: ContextDep, _: Auditor, request: Request, response: Response,
          limit: Annotated[int, Query(ge=1, le=1000, description="records per page")] = 100,
          since: Annotated[dt.datetime | None, Query(description="from this time (inclusive; no zone: UTC)")] = None,
          until: Annotated[dt.datetime | None, Query(description="before this time (exclusive)")] = None,
          actor: Annotated[str | None, Query(max_length=200)] = None,
          action: Annotated[str | None, Query(max_length=200, description="exact, or a prefix ending in *")] = None,
          study: Annotated[str | None, Query(max_length=128, description="pseudonymous study id")] = None,
          outcome: Annotated[str | None, Query(max_length=64)] = None,
          after_id: Annotated[int | None, Query(ge=0, le=_MAX_ID, description="page forward: records after this id")] = None,
          before_id: Annotated[int | None, Query(ge=1, le=_MAX_ID, description="page back: the last records before this id")] = None,
          ) -> list[AuditRecordPublic]:
    """Audit records (PHI-free by construction) in id order: the latest ``limit`` that match, or with ``after_id``
    the first ``limit`` after it. A full page carries a ``Link`` header to the next one (``rel="next"``: forward
    from the last record; ``rel="prev"``: back from the first)."""
    if after_id is not None and before_id is not None:
        raise HTTPException(400, "page with after_id or before_id, not both")
    query = getattr(ctx.audit, "query", None)
    if not callable(query):
        return []
    rows = query(AuditQuery(utc_timestamp(since) if since else None, utc_timestamp(until) if until else None,
                            actor, action, study, outcome, after_id, before_id, limit))
    if len(rows) == limit:
        forward = after_id is not None
        cursor = ("after_id", rows[-1]["id"]) if forward else ("before_id", rows[0]["id"])
        params = {k: v for k, v in request.query_params.items() if k not in ("after_id", "before_id")}
        url = request.url.replace_query_params(**params, **{cursor[0]: cursor[1]})
        response.headers["Link"] = f'<{url}>; rel="{"next" if forward else "prev"}"'
    return [AuditRecordPublic.model_validate(row) for row in rows]
