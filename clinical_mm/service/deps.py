"""The HTTP API's dependencies, declared once as ``Annotated`` aliases: the service context, the store, the
caller (from ``Authorization: Bearer``: an API key or an OAuth2 JWT) and the role checks of the routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from clinical_mm.service.service_context import ServiceContext
from clinical_mm.service.store import ServiceStore

__all__ = ["Admin", "Auditor", "ContextDep", "CurrentPrincipal", "Pacs", "Principal", "Radiologist", "StoreDep",
           "get_context", "get_principal", "get_store", "require_role"]


class Principal(BaseModel):
    """The caller of a request."""

    key_id: str  # the API key id, or jwt:<sub>
    roles: frozenset[str]
    name: str = ""


async def get_context(request: Request) -> ServiceContext:
    """The app's :class:`ServiceContext` (async: nothing to wait for, so no worker thread)."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


async def get_store(ctx: ContextDep) -> ServiceStore:
    """The service database."""
    return ctx.store


StoreDep = Annotated[ServiceStore, Depends(get_store)]


def get_principal(request: Request, ctx: ContextDep) -> Principal:
    """The caller, from ``Authorization: Bearer <API key or JWT>``; 401 without a valid credential. Its id is
    kept on the request for the audit record."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    principal: Principal | None = None
    if scheme.lower() == "bearer" and token:
        if token.count(".") == 2 and ctx.jwt is not None:
            cred = ctx.jwt.verify(token)
            if cred is not None:
                principal = Principal(key_id=cred.actor, roles=cred.roles, name=cred.name)
        else:
            found = ctx.store.api_key_role(token)
            if found is not None:
                principal = Principal(key_id=found[0], roles=frozenset({found[1]}), name=found[2])
    if principal is None:
        raise HTTPException(401, "missing, invalid or expired credentials", headers={"WWW-Authenticate": "Bearer"})
    request.state.key_id = principal.key_id
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(*allowed: str) -> Callable[[Principal], Principal]:
    """A dependency that admits a caller holding one of ``allowed``; 403 otherwise."""
    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.roles & set(allowed):
            raise HTTPException(403, "this role may not use this route")
        return principal
    return check


Pacs = Annotated[Principal, Depends(require_role("pacs"))]
Radiologist = Annotated[Principal, Depends(require_role("radiologist"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]
Auditor = Annotated[Principal, Depends(require_role("auditor"))]
