"""The audit log leaves the machine: each record forwarded as a FHIR ``AuditEvent`` (IHE BALP) to the FHIR server
and as an RFC 5424 message over TLS to the hospital's audit record repository (syslog), and signed checkpoints
anchored on the FHIR server.

A destination takes records in id order; how far each has got is kept beside the log (``audit_forwarded``), so a
destination that is down gets the records it missed when it is back, and forwarding again sends nothing twice
(the FHIR event's id comes from the record's chain hash: a repeat is an update to the same event).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.audit.chain_log import ChainedAuditLog
from clinical_mm.audit.signing import Checkpoint
from clinical_mm.connectors.fhir_client import FhirClient
from clinical_mm.connectors.syslog_client import SyslogClient, SyslogTarget, rfc5424
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import AuditError, ConfigurationError, ConnectorError, OutputError
from clinical_mm.outputs.fhir_audit_event import (
    ACTION_SYSTEM,
    CHECKPOINT_CODE,
    audit_event,
    checkpoint_event,
    checkpoint_from_event,
)

__all__ = ["AuditDestination", "AuditForwarder", "FhirAnchor", "FhirAuditDestination", "SyslogAuditDestination",
           "SiteAuditLog", "configured_destinations", "fhir_checkpoints", "fhir_client", "forward"]

_log = logging.getLogger(__name__)
#: the structured-data id of our syslog messages (32473: the private enterprise number RFC 5612 sets aside)
SD_ID = "clinical-mm@32473"


class AuditDestination(Protocol):
    """Where audit records are forwarded; ``send`` takes records in id order or raises."""

    name: str

    def send(self, records: Sequence[dict[str, Any]]) -> None: ...


class FhirAuditDestination:
    """Each record as an ``AuditEvent`` to the FHIR server (PUT by its chain-derived id)."""

    name = "fhir"

    def __init__(self, client: FhirClient, site: str = "clinical-mm") -> None:
        self.client, self.site = client, site

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            self.client.update(audit_event(record, self.site))


class SyslogAuditDestination:
    """Each record's ``AuditEvent`` (JSON) in an RFC 5424 message over TLS, the record's id and chain hash as
    structured data; one connection per batch."""

    name = "syslog"

    def __init__(self, client: SyslogClient, site: str = "clinical-mm") -> None:
        self.client, self.site = client, site

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        self.client.send(
            rfc5424(json.dumps(audit_event(record, self.site), separators=(",", ":")), msgid="AuditEvent",
                    app_name=self.site, timestamp=str(record["timestamp"]),
                    structured={SD_ID: {"record": str(record["id"]), "hash": str(record["hash"])}})
            for record in records)


def forward(sink: ChainedAuditLog, destination: AuditDestination, batch: int = 200) -> int:
    """Send ``destination`` every record it has not taken yet, a batch at a time; the number sent. A failed batch
    raises (:class:`ConnectorError`) and is sent again next time."""
    sent = 0
    while records := sink.records_after(sink.forwarded(destination.name), batch):
        destination.send(records)
        sink.mark_forwarded(destination.name, int(records[-1]["id"]))
        sent += len(records)
    return sent


class AuditForwarder:
    """Forwards the log to its destinations every ``period_s`` seconds in a thread of the service; a destination
    that is down is logged (no record content) and tried again."""

    def __init__(self, sink: ChainedAuditLog, destinations: Sequence[AuditDestination], period_s: float = 5.0) -> None:
        self.sink, self.destinations, self.period_s = sink, list(destinations), period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-forwarder", daemon=True)

    def start(self) -> None:
        if self.destinations:
            self._thread.start()

    def stop(self) -> None:
        """Stop, after a last round (what the service audited while stopping goes too)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.round()

    def round(self) -> None:
        for destination in self.destinations:
            try:
                forward(self.sink, destination)
            except (ConnectorError, OutputError, AuditError) as exc:
                _log.warning("audit forwarding to %s failed, will retry: %s", destination.name, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.round()


class FhirAnchor:
    """Signed checkpoints to the FHIR server, each its own ``AuditEvent`` (an anchor the database cannot edit)."""

    def __init__(self, client: FhirClient, site: str = "clinical-mm") -> None:
        self.client, self.site = client, site

    def publish(self, checkpoint: Checkpoint) -> None:
        try:
            self.client.create(checkpoint_event(checkpoint, self.site))
        except (ConnectorError, OutputError) as exc:
            raise AuditError(f"FHIR anchor: {exc}") from None


def fhir_checkpoints(client: FhirClient) -> list[tuple[str, Checkpoint]]:
    """The signed checkpoints anchored on the FHIR server, each with where it was read (``AuditEvent/id``)."""
    events = client.search("AuditEvent", {"subtype": f"{ACTION_SYSTEM}|{CHECKPOINT_CODE}", "_count": "200"})
    found = [(f"AuditEvent/{event.get('id')}", checkpoint_from_event(event)) for event in events]
    return sorted(((where, c) for where, c in found if c is not None), key=lambda item: item[1].records)


def fhir_client(settings: Settings) -> FhirClient:
    """The FHIR server of CLINICAL_MM_FHIR_URL (refused when none is set)."""
    if not settings.fhir_url:
        raise ConfigurationError("the audit log's FHIR forwarding and anchors need CLINICAL_MM_FHIR_URL")
    return FhirClient(settings.fhir_url, token=settings.fhir_token.get_secret_value() if settings.fhir_token else None)


def configured_destinations(settings: Settings, client: FhirClient | None = None) -> list[AuditDestination]:
    """The destinations the site configured (CLINICAL_MM_AUDIT_FORWARD_FHIR, CLINICAL_MM_AUDIT_SYSLOG), the FHIR one
    through ``client`` when given."""
    out: list[AuditDestination] = []
    if settings.audit_forward_fhir:
        out.append(FhirAuditDestination(client or fhir_client(settings), settings.actor))
    if settings.audit_syslog:
        target = SyslogTarget.parse(settings.audit_syslog, settings.audit_syslog_ca, settings.audit_syslog_cert,
                                    settings.audit_syslog_key)
        out.append(SyslogAuditDestination(SyslogClient(target), settings.actor))
    return out


class SiteAuditLog:
    """The site's audit log as the settings configure it (signed and anchored with a signing key, on the FHIR server
    too with CLINICAL_MM_AUDIT_ANCHOR_FHIR), with the FHIR client of its anchors and, with ``forwarding`` (``serve``),
    the forwarder to the configured destinations (not started here); :meth:`close` runs a last round of forwarding,
    then publishes the last checkpoint."""

    def __init__(self, settings: Settings, *, forwarding: bool = False) -> None:
        needs_fhir = settings.audit_anchor_fhir or (forwarding and settings.audit_forward_fhir)
        self.fhir = fhir_client(settings) if needs_fhir else None
        self.log = AuditLogSpec.from_settings(settings).open(
            [FhirAnchor(self.fhir, settings.actor)] if self.fhir is not None and settings.audit_anchor_fhir else [])
        self.forwarder = AuditForwarder(self.log, configured_destinations(settings, self.fhir) if forwarding else [])

    def close(self) -> None:
        self.forwarder.stop()
        self.log.close()
        if self.fhir is not None:
            self.fhir.close()
