"""Triage callback subscribers (role admin): register, list, remove, and read a subscriber's delivery log."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from clinical_mm.service.api.examples import ok
from clinical_mm.service.deps import Admin, ContextDep, StoreDep
from clinical_mm.service.models import DeliveryPublic, SubscriberCreatedPublic, SubscriberIn, SubscriberPublic
from clinical_mm.service.worker import callback_allowed

__all__ = ["router"]

router = APIRouter(prefix="/v1/subscribers", tags=["callbacks"])


@router.post("", status_code=201, response_model=SubscriberCreatedPublic, responses=ok(
    "subscriber", 201, errors={400: "callback URL not http(s) to an allow-listed host"}))
def add_subscriber(body: SubscriberIn, ctx: ContextDep, _: Admin) -> SubscriberCreatedPublic:
    """Register a triage callback receiver (the host must be on the allow-list)."""
    if not callback_allowed(body.url, ctx.callback_hosts):
        raise HTTPException(400, "callback URL must be http(s) to an allow-listed host")
    return SubscriberCreatedPublic(id=ctx.store.add_subscriber(body.url, body.secret, body.min_priority))


@router.get("", response_model=list[SubscriberPublic], responses=ok("subscribers"))
def list_subscribers(store: StoreDep, _: Admin) -> list[SubscriberPublic]:
    """Active subscribers (secrets are never returned)."""
    return [SubscriberPublic.model_validate(row) for row in store.subscribers()]


@router.delete("/{sub_id}", status_code=204, responses={404: {"description": "no such subscriber"}})
def remove_subscriber(sub_id: str, store: StoreDep, _: Admin) -> Response:
    """Remove a subscriber (its delivery log is kept)."""
    if not store.remove_subscriber(sub_id):
        raise HTTPException(404, "no such subscriber")
    return Response(status_code=204)


@router.get("/{sub_id}/deliveries", response_model=list[DeliveryPublic], responses=ok("deliveries"))
def deliveries(sub_id: str, store: StoreDep, _: Admin) -> list[DeliveryPublic]:
    """The delivery log of one subscriber: event, state (pending, delivered, dead), attempts, last status."""
    return [DeliveryPublic.model_validate(row) for row in store.deliveries(sub_id)]
