"""Post-deployment monitoring (role admin): concordance with the signed reports, input drift, refusals and time to
notification, per site and week, with alerts (clinical_mm.service.monitoring)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import Admin, ContextDep
from clinical_mm.service.models import MonitoringPublic
from clinical_mm.service.monitoring import weekly_monitoring

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/v1/monitoring", response_model=MonitoringPublic, responses=ok("monitoring"))
def monitoring(ctx: ContextDep, _: Admin, weeks: Annotated[int, Query(ge=1, le=520)] = 12) -> MonitoringPublic:
    """The monitoring of the last ``weeks`` weeks: concordance of the flags with the radiologists' signed reports,
    drift of the input metadata and of the refusal rate, time to notification, per site and ISO week, and the
    alerts its thresholds raise. Names no patient: sites are sending AE titles, studies are not listed."""
    records = getattr(ctx.audit, "records", None)
    callbacks = (lambda since: records(action="callback", since=since)) if callable(records) else None
    return MonitoringPublic(weekly_monitoring(ctx.store.monitoring_rows(), callbacks, ctx.monitor_thresholds, weeks))
