"""The HTTP API's routers, gathered in one :data:`api_router`."""

from __future__ import annotations

from fastapi import APIRouter

from clinical_mm.service.api.routes import (
    audit,
    dicomweb,
    health,
    jobs,
    monitoring,
    notes,
    pulls,
    review_page,
    reviews,
    studies,
    subscribers,
    vision_language,
)

__all__ = ["api_router"]

api_router = APIRouter()
for _routes in (review_page, health, dicomweb, studies, vision_language, pulls, reviews, notes, jobs, subscribers,
                audit, monitoring):
    api_router.include_router(_routes.router)
