"""The HTTP API of ``serve`` (FastAPI).

Every route but ``/healthz``, ``/readyz`` and the static review page needs a credential in
``Authorization: Bearer``: an API key (only its hash is stored) or an OAuth2 JWT, whose role the route
allows: pacs (ingest), radiologist (worklist, review and sign, a study's identity), auditor (audit log), admin
(subscribers, jobs). Every request is audited (actor = key id, route template,
outcome = status code). Responses carry pseudonymous study ids and PHI-free results only, but one: a study's
identity (its accession number and patient name, re-linked through the key vault), for the radiologist role
only, each read audited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from clinical_mm.audit.audit_record import AuditRecord
from clinical_mm.service.api.main import api_router
from clinical_mm.service.api.routes.health import OPEN_PATHS
from clinical_mm.service.api.routes.review_page import PAGE_PATHS
from clinical_mm.service.service_context import ServiceContext

__all__ = ["create_app"]

#: routes left out of the audit log: health probes and the static review page
_UNAUDITED = (*OPEN_PATHS, *PAGE_PATHS)


def create_app(ctx: ServiceContext) -> FastAPI:
    """The FastAPI app of the service: its routers, the audit of every request, the OpenAPI document."""
    app = FastAPI(title="clinical-mm", version="1", description=__doc__, responses={
        401: {"description": "missing, invalid or expired credentials"},
        403: {"description": "the credential's role may not use this route"}})
    app.state.ctx = ctx
    app.middleware("http")(_audit_requests)
    app.include_router(api_router)
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        doc = base_openapi()
        for path in OPEN_PATHS:  # open routes: no credential, so no 401/403
            for op in doc["paths"][path].values():
                op["responses"].pop("401", None)
                op["responses"].pop("403", None)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _audit_requests(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Record every request but the unaudited ones (actor, method and route template, status code); a
    request the audit log cannot take is answered 503."""
    response = await call_next(request)
    route = request.scope.get("route")
    template = getattr(route, "path", "unmatched")
    if template not in _UNAUDITED:
        ctx: ServiceContext = request.app.state.ctx
        actor = getattr(request.state, "key_id", "anonymous")
        try:
            ctx.audit.append(AuditRecord(actor=actor, action=f"http {request.method} {template}",
                                         outcome=str(response.status_code)))
        except Exception:  # noqa: BLE001 - an unauditable request is refused
            return JSONResponse({"detail": "audit log unavailable"}, status_code=503)
    return response
