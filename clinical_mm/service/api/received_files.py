"""The received files of a study, for the routes that show or read its image."""

from __future__ import annotations

from pathlib import Path

from fastapi import HTTPException

from clinical_mm.service.service_context import ServiceContext

__all__ = ["GONE", "received_files"]

GONE = "the received images were removed by the retention policy: view the study in the PACS"


def received_files(ctx: ServiceContext, study_id: str) -> list[Path]:
    """The study's spooled files: 404 for no such study, 410 when the retention policy has removed them."""
    files = ctx.store.files_of(study_id)
    if not files:
        raise HTTPException(404, "no such study")
    if ctx.store.originals(study_id) in ("deleted", "encrypted"):
        raise HTTPException(410, GONE)
    return files
