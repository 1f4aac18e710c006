"""The review page: static HTML and script, holding no data (every call it makes carries the user's
credential); left out of the OpenAPI document and of the audit log."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

__all__ = ["PAGE_PATHS", "router"]

router = APIRouter(tags=["review page"], include_in_schema=False)
#: the page's paths
PAGE_PATHS = ("/review", "/review.js")
_STATIC = Path(__file__).resolve().parents[2] / "static"
_HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; style-src 'self' 'unsafe-inline'; "
                                       "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@cache
def _static(name: str) -> str:
    return (_STATIC / name).read_text(encoding="utf-8")


@router.get("/review", response_class=HTMLResponse)
def review_page() -> HTMLResponse:
    """The review page (static, holds no data; every call it makes carries the user's credential)."""
    return HTMLResponse(_static("review.html"), headers=_HEADERS)


@router.get("/review.js")
def review_script() -> Response:
    """The review page's script."""
    return Response(_static("review.js"), media_type="text/javascript", headers=_HEADERS)
