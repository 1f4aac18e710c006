"""The service's background work: analyse complete studies from the queue, and deliver signed triage
callbacks to subscribers.

A study is complete when no instance has arrived for the quiet period; it is then claimed (leased),
analysed by the pipeline (de-identified first), and one event per matching subscriber is queued. A
callback is a POST of the event JSON with ``X-ClinicalMM-Timestamp`` and ``X-ClinicalMM-Signature:
sha256=<hex HMAC-SHA256 of timestamp + "." + body>`` keyed with the subscriber's secret; a failed POST is
retried with exponential backoff and dead-lettered after the last try. Event ids are derived from the
study and its result, so a re-run after a crash queues nothing twice.

With egress configured, the same queue carries the study's results to the hospital's systems (see
:mod:`clinical_mm.service.egress`): the FHIR server (subscriber ``egress:fhir``: the draft once analysed,
the signed report once signed) and the PACS (``egress:pacs``: the draft as a DICOM SR). The pseudonyms the
analysis issued are kept in the key vault first, so egress can re-identify the study.

Every disclosure is in the audit log: each callback, egress send and pull, with its outcome (pseudonymous
study, target, PHI-free status). A success is recorded before the delivery or pull counts as done, so one
the log could not take is tried again (egress and pulls are idempotent; a callback carries its event id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydicom.multival import MultiValue

from clinical_mm.audit.audit_record import AuditRecord, AuditSink
from clinical_mm.connectors.file_source import SourceStudy, first_header
from clinical_mm.core.errors import ClinicalMMError, ConfigurationError
from clinical_mm.core.findings import PRIORITIES
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline
from clinical_mm.service.egress import Egress
from clinical_mm.service.pull import StudyPuller
from clinical_mm.service.store import ServiceStore

__all__ = ["ServiceWorker", "WorkerConfig", "acquisition_inputs", "callback_allowed", "sign"]

_log = logging.getLogger(__name__)


def acquisition_inputs(files: list[Path]) -> dict[str, str]:
    """The coarse acquisition metadata of a study (device maker and model, software version, view, modality) from
    the first readable header among ``files``: the drift monitoring's inputs, never a patient's value."""
    ds = first_header(files, ["Manufacturer", "ManufacturerModelName", "SoftwareVersions", "ViewPosition", "Modality"])
    if ds is None:
        return {}
    software = ds.get("SoftwareVersions", "")
    software = "/".join(str(v) for v in software) if isinstance(software, MultiValue) else str(software or "")
    return {"manufacturer": str(ds.get("Manufacturer", "") or "").strip(),
            "model": str(ds.get("ManufacturerModelName", "") or "").strip(), "software": software.strip(),
            "view": str(ds.get("ViewPosition", "") or "").strip().upper(),
            "modality": str(ds.get("Modality", "") or "").strip().upper()}


@dataclass(frozen=True)
class WorkerConfig:
    """The worker's periods, retries and backoff, and the API's base URL for callback events."""

    quiet_period_s: float = 2.0
    max_attempts: int = 5
    backoff_s: float = 1.0
    callback_attempts: int = 20  # with backoff capped at 5 min: a receiver may be down for about an hour
    callback_backoff_s: float = 0.5
    callback_timeout_s: float = 5.0
    base_url: str = "http://127.0.0.1:8000"
    poll_s: float = 0.1


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-ClinicalMM-Signature`` value of a callback."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def callback_allowed(url: str, allowed_hosts: list[str]) -> bool:
    """A callback URL is http(s) to an allow-listed host (no requests to arbitrary addresses)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and (parts.hostname or "") in allowed_hosts and not parts.username


def _status(exc: Exception) -> str:
    """A failure for a delivery or pull log: our own errors with their message (PHI-free by design), any
    other only by its class (a third-party message may quote a value)."""
    if isinstance(exc, ClinicalMMError):
        return f"{exc.__class__.__name__}: {exc}"[:300]
    return f"internal error ({exc.__class__.__name__})"


class ServiceWorker:
    """Runs the analysis loop and the delivery loop (and the pull loop, with a puller) in threads until
    :meth:`stop`.

    Parameters
    ----------
    store
        The service database (the queue).
    pipeline
        Analyses a claimed study; built with ``on_deidentified`` marking the study ``deidentified`` in the store.
    results_dir
        Where the analyses' results and FHIR bundles go.
    audit
        Where each callback, egress send and pull is recorded.
    model_id, model_sha256
        The model the analyses run, named in each callback event.
    callback_hosts
        The hosts a callback may go to.
    config
        Periods, retries and backoff (default :class:`WorkerConfig`).
    actor
        The audit log's actor.
    pseudonymizer
        The de-identifier's pseudonymiser: the pseudonyms it issued for a study are kept in ``vault`` before
        any result of the study leaves. Egress needs one that remembers them.
    vault
        The key vault (None: no re-identification, so no egress).
    egress
        The hospital systems results go back to.
    puller
        Pulls studies from the PACS (None: no pull loop).
    """

    def __init__(self, store: ServiceStore, pipeline: AnalysisPipeline, results_dir: Path, *, audit: AuditSink,
                 model_id: str, model_sha256: str, callback_hosts: list[str], config: WorkerConfig | None = None,
                 actor: str = "clinical-mm", pseudonymizer: Pseudonymizer | None = None,
                 vault: PseudonymVault | None = None, egress: list[Egress] | None = None,
                 puller: StudyPuller | None = None) -> None:
        if egress and (vault is None or pseudonymizer is None or not pseudonymizer.remember):
            raise ConfigurationError("egress needs the key vault and a de-identifier that remembers pseudonyms")
        self.store = store
        self.vault = vault
        self.egress = {e.target: e for e in egress or []}
        self.puller = puller
        self.pipeline = pipeline
        self.results_dir = results_dir
        self.audit = audit
        self.actor = actor
        self.model_id, self.model_sha256 = model_id, model_sha256
        self.pseudonymizer = pseudonymizer
        self.config = config = config or WorkerConfig()
        self.callback_hosts = callback_hosts
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client = httpx.Client(timeout=config.callback_timeout_s, follow_redirects=False, trust_env=False)

    def start(self) -> None:
        """Recover leases of a killed process, then start the loops."""
        self.store.recover()
        loops: list[tuple[Callable[[], Any], Callable[[Any], None], str]] = [
            (lambda: self.store.claim_study(self.config.quiet_period_s),
             lambda job: self.process(job.study_key, job.files), "cmm-analysis"),
            (self.store.claim_delivery, self.deliver, "cmm-delivery")]
        if self.puller is not None:
            loops.append((self.store.claim_pull, self.pull, "cmm-pull"))
        for claim, handle, name in loops:
            thread = threading.Thread(target=self._loop, args=(claim, handle), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self, claim: Callable[[], Any], handle: Callable[[Any], None]) -> None:
        """Claim the next piece of work and handle it, until stopped; poll when there is none."""
        while not self._stop.is_set():
            try:
                item = claim()
            except ClinicalMMError:
                item = None
            if item is None:
                self._stop.wait(self.config.poll_s)
                continue
            handle(item)

    def stop(self) -> None:
        """Stop the loops (each finishes the item in hand) and close the callback client."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._client.close()

    @property
    def running(self) -> bool:
        """Every loop is alive (readiness)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    # ------------------------------------------------------------------ analysis
    def process(self, study_key: str, files: list[Path]) -> None:
        """Analyse one claimed study and queue its callbacks; failures are retried or failed, never lost."""
        files = [f for f in files if f.exists()]  # a reopened study whose first originals the retention policy removed
        item = SourceStudy(key=study_key, files=files, sources=[f.name for f in files])
        try:
            self.store.set_inputs(study_key, acquisition_inputs(files))
        except ClinicalMMError as exc:  # monitoring metadata only: the analysis goes on without it
            _log.warning("study %s: inputs not recorded (%s)", study_key, exc.__class__.__name__)
        try:
            results = self.pipeline.analyze_within_boundary(item, self.results_dir)
            issued = self.pseudonymizer.drain() if self.pseudonymizer is not None else []
            if self.vault is not None:  # before any result leaves: egress re-identifies through the vault
                self.vault.record(issued)
        except ClinicalMMError as exc:  # audit or output failure: transient, try again later
            outcome = self.store.retry_later(study_key, exc.__class__.__name__, max_attempts=self.config.max_attempts,
                                             backoff_s=self.config.backoff_s)
            _log.warning("study %s: %s (%s)", study_key, exc.__class__.__name__, outcome)
            return
        except Exception as exc:  # noqa: BLE001 - keep the loop alive; the job stays visible and retryable
            outcome = self.store.retry_later(study_key, f"internal error ({exc.__class__.__name__})",
                                             max_attempts=self.config.max_attempts, backoff_s=self.config.backoff_s)
            _log.error("study %s: internal error %s (%s)", study_key, exc.__class__.__name__, outcome)  # no traceback:
            # a third-party message may quote a value
            return
        done = [r for r in results if r.error is None]
        if not done:  # refused (not a chest radiograph, unreadable): permanent, reason kept, retryable by hand
            reasons = "; ".join(sorted({str(r.error) for r in results})) or "no instances"
            self.store.retry_later(study_key, reasons, max_attempts=1, backoff_s=0)
            return
        result = done[0]
        body = result.to_json()
        body.pop("source", None)
        priority = result.priority or "routine"
        self.store.set_state(study_key, "analyzed", result=body, priority=priority)
        self._queue_events(study_key, result.accession or "", body, priority)
        self._settle(study_key)

    def _queue_events(self, study_key: str, accession: str, result: dict[str, object], priority: str) -> None:
        digest = hashlib.sha256(json.dumps(result, sort_keys=True).encode()).hexdigest()
        for sub in self.store.subscribers():
            if PRIORITIES.index(priority) < PRIORITIES.index(sub["min_priority"]):
                continue
            event_id = "evt_" + hashlib.sha256(f"{study_key}|{digest}|{sub['id']}".encode()).hexdigest()[:32]
            event = {
                "event_id": event_id, "event": "study.analyzed",
                "study": {"id": study_key, "accession": accession},
                "priority": priority, "flags": result.get("flags", {}), "raised": result.get("raised", []),
                "report_url": f"{self.config.base_url}/v1/studies/{study_key}",
                "model": {"id": self.model_id, "sha256": self.model_sha256},
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            self.store.enqueue_delivery(event_id, sub["id"], study_key, json.dumps(event, separators=(",", ":")))
        self._queue_egress("draft", study_key, digest)

    def _queue_egress(self, kind: str, study_key: str, digest: str) -> None:
        for target, sender in self.egress.items():
            if kind not in sender.kinds:
                continue
            event_id = f"{target.partition(':')[2]}_{kind}_" + \
                hashlib.sha256(f"{study_key}|{digest}".encode()).hexdigest()[:32]
            self.store.enqueue_delivery(event_id, target, study_key, json.dumps(
                {"event_id": event_id, "event": f"{target}.{kind}", "kind": kind, "study": {"id": study_key}}))

    def queue_signed(self, study_key: str, report: dict[str, object]) -> None:
        """Queue the signed report for the targets that take it (the FHIR server)."""
        self._queue_egress("final", study_key, hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest())

    def _settle(self, study_key: str) -> None:
        """A study whose callbacks are all done is delivered (failed when one was dead-lettered)."""
        states = self.store.delivery_states(study_key)
        if states.get("pending"):
            return
        if states.get("dead"):
            self.store.retry_later(study_key, f"{states['dead']} callback deliveries dead-lettered", max_attempts=1,
                                   backoff_s=0)
        else:
            self.store.set_state(study_key, "delivered")

    # ------------------------------------------------------------------ callbacks
    def deliver(self, item: dict[str, str]) -> None:
        """Deliver one claimed callback or egress send; a failed one is retried later or dead-lettered."""
        body = item["body"].encode()
        event = json.loads(item["body"])
        if item["subscriber_id"].startswith("egress:"):
            self._deliver_egress(item, event)
            return
        try:
            if not callback_allowed(item["url"], self.callback_hosts):
                raise ConfigurationError("callback host not allow-listed")
            ts = str(int(time.time()))
            response = self._client.post(item["url"], content=body, headers={
                "Content-Type": "application/json", "X-ClinicalMM-Timestamp": ts,
                "X-ClinicalMM-Signature": sign(item["secret"], ts, body), "X-ClinicalMM-Event-Id": item["event_id"]})
            status = str(response.status_code)
            ok = 200 <= response.status_code < 300
            if ok:
                self._audit("callback", "sent", event["study"]["id"], f"{item['subscriber_id']}: HTTP {status}")
        except (httpx.HTTPError, ClinicalMMError) as exc:
            status, ok = exc.__class__.__name__, False
        if ok:
            self.store.delivery_done(item["event_id"], item["subscriber_id"], status)
        else:
            state = self.store.delivery_failed(item["event_id"], item["subscriber_id"], status,
                                               max_attempts=self.config.callback_attempts,
                                               backoff_s=self.config.callback_backoff_s)
            self._audit_failure("callback", event["study"]["id"], f"{item['subscriber_id']}: {status}")
            _log.info("callback %s not delivered (%s): %s", item["event_id"], status, state)
        self._settle(event["study"]["id"])

    def _deliver_egress(self, item: dict[str, str], event: dict[str, Any]) -> None:
        study_key, target = event["study"]["id"], item["subscriber_id"]
        try:
            sender = self.egress.get(target)
            if sender is None:
                raise ConfigurationError(f"{target} is not configured")
            status = sender.send(event["kind"], study_key)
            self._audit(target, "sent", study_key, f"{event['kind']}: {status}")
        except Exception as exc:  # noqa: BLE001 - keep the loop alive; the delivery stays visible and retried
            status = _status(exc)
            state = self.store.delivery_failed(item["event_id"], target, status,
                                               max_attempts=self.config.callback_attempts,
                                               backoff_s=self.config.callback_backoff_s)
            self._audit_failure(target, study_key, f"{event['kind']}: {status}")
            _log.info("%s %s of study %s not delivered (%s): %s", target, event["kind"], study_key,
                      exc.__class__.__name__, state)
        else:
            self.store.delivery_done(item["event_id"], target, status)
        self._settle(study_key)

    # ------------------------------------------------------------------ pulls
    def pull(self, item: dict[str, Any]) -> None:
        """Run one claimed pull; a failed one is retried later or failed for good."""
        assert self.puller is not None
        try:
            keys = self.puller.pull(item["kind"], item["pseudonym"])
            status = f"{len(keys)} stud{'y' if len(keys) == 1 else 'ies'} retrieved"
            for key in keys:
                self._audit("pull", "retrieved", key, f"{item['pull_id']} ({item['kind']})")
        except Exception as exc:  # noqa: BLE001 - keep the loop alive; the pull stays visible and retried
            status = _status(exc)
            state = self.store.pull_failed(item["pull_id"], status, max_attempts=self.config.callback_attempts,
                                           backoff_s=self.config.callback_backoff_s)
            self._audit_failure("pull", "", f"{item['pull_id']} ({item['kind']}): {status}")
            _log.warning("pull %s failed (%s): %s", item["pull_id"], exc.__class__.__name__, state)
        else:
            self.store.pull_done(item["pull_id"], status, keys)

    # ------------------------------------------------------------------ audit
    def _audit(self, action: str, outcome: str, study_key: str, detail: str) -> None:
        """One disclosure or retrieval in the audit log (raises :class:`AuditError` when it cannot be written)."""
        self.audit.append(AuditRecord(actor=self.actor, action=action, outcome=outcome, study=study_key,
                                      detail=detail[:300]))

    def _audit_failure(self, action: str, study_key: str, detail: str) -> None:
        """A failed try in the audit log; an audit log that cannot take it is logged, the try stays failed."""
        try:
            self._audit(action, "failed", study_key, detail)
        except ClinicalMMError as exc:
            _log.error("audit record of a failed %s not written (%s)", action, exc.__class__.__name__)
