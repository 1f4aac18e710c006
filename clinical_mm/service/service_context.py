"""What the HTTP API's routes share: the store, the audit sink and the service's other collaborators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinical_mm.audit.audit_record import AuditSink
from clinical_mm.pipeline.note_extraction import NoteExtraction
from clinical_mm.service.auth import JwtVerifier
from clinical_mm.service.identity_lookup import IdentityLookup
from clinical_mm.service.monitoring import MonitoringThresholds
from clinical_mm.service.pull import StudyPuller
from clinical_mm.service.spool import Spool
from clinical_mm.service.store import ServiceStore

if TYPE_CHECKING:
    from clinical_mm.pipeline.similar_cases import SimilarCases
    from clinical_mm.pipeline.vision_language_queries import VisionLanguageQueries

__all__ = ["ServiceContext"]


def _always_ready() -> bool:
    return True


def _ignore_signed(study_key: str, report: dict[str, Any]) -> None:
    return None


class ServiceContext:
    """The collaborators of the routes, held by the app (``app.state.ctx``) and given to routes by
    :data:`clinical_mm.service.deps.ContextDep`.

    Parameters
    ----------
    store
        The service database.
    audit
        Where every request is recorded.
    callback_hosts
        The hosts a subscriber's callback URL may name.
    results_dir
        Where the analyses' FHIR bundles are.
    preview
        Renders a study's de-identified preview PNG from its spooled files (and the pseudonymous SOP Instance UID
        of the image analysed, when there is one).
    spool
        Where uploaded instances go.
    jwt
        Verifies OAuth2 bearer tokens (None: API keys only).
    ready
        Readiness of the database, model, DICOM listener and worker.
    on_signed
        Queues a signed report for the hospital's FHIR server.
    puller
        Pulls from the PACS (None: no pull route configured).
    extraction
        De-identifies and extracts notes for ``POST /v1/notes/extract`` (None: not configured).
    monitor_thresholds
        When ``GET /v1/monitoring`` raises an alert (default: :class:`MonitoringThresholds`' defaults).
    identity
        Re-links a study to its accession number and patient name through the key vault, for
        ``GET /v1/studies/{id}/identity`` (None: no vault, so no re-identification).
    vision_language
        Questions, zero-shot findings and grounding on a study's image (None: not configured, as with a model
        folder that is not ours).
    similar
        The signed cases, for ``GET /v1/studies/{id}/similar``; each signed study joins them (None: not configured).
    """

    def __init__(self, store: ServiceStore, audit: AuditSink, callback_hosts: list[str], results_dir: Path,
                 preview: Callable[[list[Path], str | None], bytes], spool: Spool, jwt: JwtVerifier | None = None,
                 ready: Callable[[], bool] = _always_ready,
                 on_signed: Callable[[str, dict[str, Any]], None] = _ignore_signed,
                 puller: StudyPuller | None = None, extraction: NoteExtraction | None = None,
                 monitor_thresholds: MonitoringThresholds | None = None, identity: IdentityLookup | None = None,
                 vision_language: VisionLanguageQueries | None = None, similar: SimilarCases | None = None) -> None:
        self.vision_language = vision_language
        self.similar = similar
        self.identity = identity
        self.monitor_thresholds = monitor_thresholds or MonitoringThresholds()
        self.extraction = extraction
        self.puller = puller
        self.jwt = jwt
        self.on_signed = on_signed
        self.spool = spool
        self.store = store
        self.audit = audit
        self.callback_hosts = callback_hosts
        self.results_dir = results_dir
        self.preview = preview
        self.ready = ready
