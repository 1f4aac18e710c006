"""Assembles and runs ``serve``: store, pipeline, DICOM listener, worker and HTTP API in one process."""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinical_mm.audit.audit_record import AuditSink
from clinical_mm.connectors.fhir_client import FhirClient
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.extraction.vocabulary import Vocabulary
from clinical_mm.pipeline.audit_forwarding import SiteAuditLog
from clinical_mm.service.store import ServiceStore

if TYPE_CHECKING:
    from clinical_mm.core.config import PseudonymKey
    from clinical_mm.deid.vault import PseudonymVault
    from clinical_mm.model.base import ReportGenerator
    from clinical_mm.pipeline.vision_language_queries import VisionLanguageQueries
    from clinical_mm.service.auth import JwtVerifier
    from clinical_mm.service.dicom_listener import DicomListener
    from clinical_mm.service.egress import Egress
    from clinical_mm.service.pull import StudyPuller
    from clinical_mm.service.retention import Retention
    from clinical_mm.service.spool import Spool
    from clinical_mm.service.task_queue import TaskQueue
    from clinical_mm.service.worker import ServiceWorker

__all__ = ["ROLES", "ServeOptions", "run_server"]

#: what a ``serve`` process can run: the HTTP API, the DICOM listener, the worker
ROLES = frozenset({"api", "listener", "worker"})

_log = logging.getLogger(__name__)


@dataclass
class ServeOptions:
    """The command line's options of ``serve``: addresses, AE titles, allow-lists, quiet period, model."""

    host: str = "127.0.0.1"
    port: int = 8000
    dicom_port: int = 11112
    ae_title: str = "CLINICALMM"
    allowed_aets: list[str] = field(default_factory=list)
    callback_hosts: list[str] = field(default_factory=lambda: ["127.0.0.1", "localhost"])
    quiet_period_s: float = 2.0
    model_path: Path | None = None
    public_url: str | None = None  # how callback receivers reach the API (report_url); default http://host:port
    roles: frozenset[str] = ROLES  # what this process runs: all of them, or some beside other processes


def run_server(settings: Settings, options: ServeOptions) -> None:
    """Start the roles of ``options`` and serve until interrupted (SIGINT or SIGTERM); work left in the queue is
    picked up by the next start. All roles (the default): one process, its worker's own threads. Some: this process
    is one of several on one PostgreSQL (``api``: the HTTP API and the audit forwarding; ``listener``: the DICOM
    listener; ``worker``: procrastinate jobs of analysis, delivery and pull, and the retention policy)."""
    import uvicorn

    embedded = options.roles == ROLES
    if not embedded and settings.database_url is None:
        raise ConfigurationError("serve --role runs beside other processes: set CLINICAL_MM_DATABASE_URL (PostgreSQL)")
    svc = _Service.compose(settings, options, embedded)
    # uvicorn shuts down gracefully on SIGTERM and then raises it again; by default that would end the process
    # before the block below stops the worker and publishes the audit log's last checkpoint
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if "listener" in options.roles:
            svc.listener.start()
        if embedded:
            svc.worker.start()
        if "api" in options.roles:
            svc.audit_log.forwarder.start()
        if "worker" in options.roles:
            svc.retention.start()
        _log.info("serving %s (HTTP %s:%d, DICOM %s on %s:%d)", ", ".join(sorted(options.roles)), options.host,
                  options.port, options.ae_title, options.host, options.dicom_port)
        if "worker" in options.roles and not embedded:
            queue = svc.task_queue(settings)
            if "api" not in options.roles:
                queue.run_worker(options.quiet_period_s)  # until SIGINT or SIGTERM
                return
            threading.Thread(target=queue.run_worker, args=(options.quiet_period_s,),
                             kwargs={"install_signal_handlers": False}, daemon=True).start()
        if "api" in options.roles:
            uvicorn.run(svc.app, host=options.host, port=options.port, log_level="warning", access_log=False)
        else:
            threading.Event().wait()  # the listener's threads work until a signal ends the process
    finally:
        _log.info("stopping: %s", ", ".join(sorted(options.roles)))
        svc.close()


@dataclass
class _Service:
    """The parts of ``serve``, composed from the settings; which of them run is the roles' choice."""

    store: ServiceStore
    audit_log: SiteAuditLog
    worker: ServiceWorker
    listener: DicomListener
    retention: Retention
    app: Any
    clients: tuple[StudyPuller | None, list[Egress], PseudonymVault | None]

    @classmethod
    def compose(cls, settings: Settings, options: ServeOptions, embedded: bool) -> _Service:
        from clinical_mm.deid import DicomDeidentifier
        from clinical_mm.deid.vault import PseudonymVault
        from clinical_mm.model.generator_factory import input_gate_for, load_report_generator
        from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline
        from clinical_mm.service.dicom_listener import DicomListener
        from clinical_mm.service.retention import Retention, RetentionPolicy
        from clinical_mm.service.spool import Spool
        from clinical_mm.service.worker import ServiceWorker, WorkerConfig

        key = settings.load_key()
        store = ServiceStore(settings.service_database)
        audit_log = SiteAuditLog(settings, forwarding=True)
        audit = audit_log.log
        labeler = RadiologyReportLabeler()  # reads a BLIP-2 draft's flags, and every draft's statements
        generator = load_report_generator(options.model_path or settings.model_path, draft_reader=labeler)
        # a throwaway demo key has no vault (its pseudonyms are not meant to be re-linked), so no egress either
        vault = None if key.ephemeral else PseudonymVault(settings.vault_path, key)
        egress = _egress(settings, options, store, vault)
        spool = Spool(settings.data_dir / "spool", store, Pseudonymizer(key))
        puller = _puller(settings, options, spool, vault, audit)
        deidentifier = DicomDeidentifier(key, remember=vault is not None)
        pipeline = AnalysisPipeline(generator, deidentifier, audit, actor=settings.actor,
                                    pixel_limits=settings.pixel_limits, report_labeler=labeler,
                                    gate=input_gate_for(generator),
                                    on_deidentified=lambda study_key: store.set_state(study_key, "deidentified"))
        base_url = (options.public_url or f"http://{options.host}:{options.port}").rstrip("/")
        worker = ServiceWorker(store, pipeline, settings.data_dir / "results", audit=audit, actor=settings.actor,
                               model_id=generator.model_id, model_sha256=generator.model_sha256,
                               config=WorkerConfig(quiet_period_s=options.quiet_period_s, base_url=base_url),
                               callback_hosts=options.callback_hosts, pseudonymizer=deidentifier.pseudo, vault=vault,
                               egress=egress, puller=puller)
        listener = DicomListener(spool, ae_title=options.ae_title, host=options.host, port=options.dicom_port,
                                 allowed_aets=options.allowed_aets, audit=audit, actor=settings.actor)
        retention = Retention(RetentionPolicy.from_settings(settings), store, key, audit, vault=vault,
                              actor=settings.actor, period_s=settings.retention_check_seconds)
        app = _app(settings, options, store, audit, worker, spool, (key, generator, vault, puller),
                   ready=(lambda: worker.running) if embedded else (lambda: True))
        return cls(store, audit_log, worker, listener, retention, app, (puller, egress, vault))

    def task_queue(self, settings: Settings) -> TaskQueue:
        """procrastinate on the service's PostgreSQL, running this process's worker's analysis, delivery and pull."""
        from clinical_mm.service.task_queue import TaskQueue

        assert settings.database_url is not None
        queue = TaskQueue(settings.database_url.get_secret_value(), self.store)
        queue.apply_schema()
        worker, store = self.worker, self.store
        quiet = worker.config.quiet_period_s

        def analyze(study_key: str) -> None:
            if (job := store.claim_study(quiet, study_key=study_key)) is not None:
                _log.info("study %s claimed by worker process %d", job.study_key, os.getpid())
                worker.process(job.study_key, job.files)

        def deliver(event_id: str, subscriber_id: str) -> None:
            if (item := store.claim_delivery(key=(event_id, subscriber_id))) is not None:
                worker.deliver(item)

        def pull(pull_id: str) -> None:
            if (item := store.claim_pull(pull_id=pull_id)) is not None:
                worker.pull(item)

        queue.handle("analyze", analyze)
        queue.handle("deliver", deliver)
        queue.handle("pull", pull)
        return queue

    def close(self) -> None:
        self.listener.stop()
        self.worker.stop()
        self.retention.stop()
        self.store.close()
        self.audit_log.close()
        _close_clients(*self.clients)


def _app(settings: Settings, options: ServeOptions, store: ServiceStore, audit: AuditSink, worker: ServiceWorker,
         spool: Spool, parts: tuple[PseudonymKey, ReportGenerator, PseudonymVault | None, StudyPuller | None],
         ready: Any) -> Any:
    """The HTTP API over the service's parts."""
    from clinical_mm.deid import DicomDeidentifier
    from clinical_mm.pipeline.note_extraction import NoteExtraction
    from clinical_mm.pipeline.similar_cases import SimilarCases
    from clinical_mm.pipeline.study_preview import StudyPreview
    from clinical_mm.service.app import create_app
    from clinical_mm.service.identity_lookup import IdentityLookup
    from clinical_mm.service.monitoring import load_thresholds
    from clinical_mm.service.service_context import ServiceContext

    key, generator, vault, puller = parts
    preview = StudyPreview(DicomDeidentifier(key))
    vision_language = _vision_language(generator, key, settings, audit)
    similar = SimilarCases(settings.data_dir / "similar-cases", vision_language) if vision_language else None
    extraction = NoteExtraction(key, Vocabulary.load([settings.vocabulary] if settings.vocabulary else []),
                                settings.recognizers, settings.deid_terms, settings.deid_threshold)
    return create_app(ServiceContext(store, audit, options.callback_hosts, settings.data_dir / "results",
                                     preview.render, spool, _jwt_verifier(settings), ready=ready,
                                     on_signed=worker.queue_signed, puller=puller, extraction=extraction,
                                     monitor_thresholds=load_thresholds(settings.monitor_thresholds),
                                     identity=IdentityLookup(vault, store, settings.data_dir / "results", audit)
                                     if vault is not None else None, vision_language=vision_language,
                                     similar=similar))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _vision_language(generator: ReportGenerator, key: PseudonymKey, settings: Settings, audit: AuditSink
                     ) -> VisionLanguageQueries | None:
    """Questions, zero-shot findings and grounding for the review page, with our model (None for another)."""
    from clinical_mm.model.report_generator import ClinicalMMReportGenerator
    from clinical_mm.pipeline.vision_language_queries import VisionLanguageQueries

    if not isinstance(generator, ClinicalMMReportGenerator):
        return None
    return VisionLanguageQueries.from_settings(generator.loaded, key, settings, audit)


def _egress(settings: Settings, options: ServeOptions, store: ServiceStore, vault: PseudonymVault | None
            ) -> list[Egress]:
    """The hospital systems results go back to (the FHIR server, the PACS), as configured; both need the
    vault to re-identify results."""
    from clinical_mm.connectors.dimse_client import DicomDestination, DimseClient
    from clinical_mm.service.egress import FhirEgress, PacsEgress

    egress: list[Egress] = []
    if (settings.fhir_url or settings.sr_destination) and vault is None:
        raise ConfigurationError("sending results to FHIR or the PACS needs a pseudonymisation key (not a throwaway "
                                 "demo key)")
    if settings.fhir_url and vault is not None:
        egress.append(FhirEgress(FhirClient(settings.fhir_url, token=settings.fhir_token.get_secret_value()
                                            if settings.fhir_token else None), vault, store, settings.data_dir / "results"))
    if settings.sr_destination and vault is not None:
        egress.append(PacsEgress(DimseClient(DicomDestination.parse(settings.sr_destination),
                                             calling_ae_title=options.ae_title), vault, store,
                                 settings.data_dir / "results"))
    return egress


def _puller(settings: Settings, options: ServeOptions, spool: Spool, vault: PseudonymVault | None,
            audit: AuditSink) -> StudyPuller | None:
    """What pulls studies from the PACS: by DICOMweb, or by C-FIND/C-MOVE to our own listener (one of the
    two, with the vault); None when neither is configured."""
    from clinical_mm.connectors.dicomweb_client import DicomWebClient
    from clinical_mm.connectors.dimse_client import DicomDestination, DimseClient
    from clinical_mm.service.pull import StudyPuller

    if settings.dicomweb_url and settings.qr_pacs:
        raise ConfigurationError("set one pull route: CLINICAL_MM_DICOMWEB_URL (DICOMweb) or CLINICAL_MM_QR_PACS "
                                 "(C-FIND/C-MOVE), not both")
    if (settings.dicomweb_url or settings.qr_pacs) and vault is None:
        raise ConfigurationError("pulling from the PACS needs a pseudonymisation key (not a throwaway demo key)")
    if settings.dicomweb_url and vault is not None:
        return StudyPuller(DicomWebClient(settings.dicomweb_url, token=settings.dicomweb_token.get_secret_value()
                                          if settings.dicomweb_token else None), vault, spool, audit=audit,
                           actor=settings.actor)
    if settings.qr_pacs and vault is not None:  # the PACS moves studies to our own listener
        return StudyPuller(DimseClient(DicomDestination.parse(settings.qr_pacs), calling_ae_title=options.ae_title),
                           vault, spool, move_destination=options.ae_title, audit=audit, actor=settings.actor)
    return None


def _jwt_verifier(settings: Settings) -> JwtVerifier | None:
    """The OAuth2 bearer token verifier, when a JWT secret or public key is configured."""
    from clinical_mm.service.auth import JwtVerifier

    if settings.jwt_secret is None and settings.jwt_public_key_file is None:
        return None
    return JwtVerifier(secret=settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
                       public_key_file=settings.jwt_public_key_file, issuer=settings.jwt_issuer,
                       audience=settings.jwt_audience)


def _close_clients(puller: StudyPuller | None, egress: list[Egress], vault: PseudonymVault | None) -> None:
    """Close the PACS and FHIR clients and the vault at shutdown."""
    from clinical_mm.service.egress import FhirEgress

    if puller is not None:
        puller.client.close()
    for sender in egress:
        if isinstance(sender, FhirEgress):
            sender.client.close()
    if vault is not None:
        vault.close()
