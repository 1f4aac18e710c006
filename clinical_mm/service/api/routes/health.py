"""Liveness and readiness (no credential: for load balancers and orchestrators)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import ContextDep
from clinical_mm.service.models import HealthPublic, ReadinessPublic

__all__ = ["OPEN_PATHS", "router"]

router = APIRouter(tags=["health"])
#: the routes that take no credential (their OpenAPI operations document no 401 or 403)
OPEN_PATHS = ("/healthz", "/readyz")


@router.get("/healthz", response_model=HealthPublic, responses=ok("health"))
def healthz() -> HealthPublic:
    """Liveness: the process answers."""
    return HealthPublic(status="ok")


@router.get("/readyz", response_model=ReadinessPublic,
            responses={**ok("ready"), 503: {"description": "not ready", "model": ReadinessPublic}})
def readyz(ctx: ContextDep) -> JSONResponse:
    """Readiness: database, model, DICOM listener and worker are up."""
    ready = ctx.ready()
    body = ReadinessPublic(status="ready" if ready else "not ready")
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
