"""The DICOM Storage SCP of ``serve`` (pynetdicom): C-ECHO and C-STORE for every storage SOP class.

Calling AE titles are allow-listed (an association from any other is rejected). Each instance is put in
the spool (fsynced, recorded) before C-STORE success goes back: an instance acknowledged to the PACS is
never lost. A study is complete when the association that sent it is released, or else (an aborted or
slow sender) when no instance of it has arrived for the quiet period.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from clinical_mm.audit.audit_record import AuditRecord, AuditSink
from clinical_mm.core.errors import ClinicalMMError
from clinical_mm.outputs.dicom_sr import COMPREHENSIVE_SR
from clinical_mm.service.spool import Spool

__all__ = ["DicomListener"]

_log = logging.getLogger(__name__)

_SUCCESS = 0x0000
_OUT_OF_RESOURCES = 0xA700
_CANNOT_UNDERSTAND = 0xC000


class DicomListener:
    """A Storage SCP bound to ``host:port`` that puts every instance in the ``spool``.

    Parameters
    ----------
    allowed_aets
        Calling AE titles allowed to associate; empty allows none.
    audit
        Where an instance refused at reception is recorded (with the PHI-free reason; None: not recorded).
    actor
        The audit log's actor.
    """

    def __init__(self, spool: Spool, *, ae_title: str, host: str, port: int, allowed_aets: list[str],
                 audit: AuditSink | None = None, actor: str = "clinical-mm") -> None:
        self.spool = spool
        self.audit, self.actor = audit, actor
        self.host, self.port = host, port
        self.ae = AE(ae_title=ae_title)
        self.ae.supported_contexts = AllStoragePresentationContexts
        self.ae.add_supported_context(Verification)
        self.ae.require_calling_aet = list(allowed_aets) or ["\x00-none-allowed"]
        self.ae.maximum_associations = 32
        self._server: Any = None
        self._lock = threading.Lock()
        self._studies: dict[int, set[str]] = {}  # association -> pseudonymous studies it sent

    def start(self) -> None:
        """Start serving in a background thread (``port`` 0: a free port, read back into ``port``)."""
        self.spool.root.mkdir(parents=True, exist_ok=True)
        self._server = self.ae.start_server((self.host, self.port), block=False,
                                            evt_handlers=[(evt.EVT_C_STORE, self._on_store),
                                                          (evt.EVT_RELEASED, self._on_released),
                                                          (evt.EVT_ABORTED, self._on_aborted)])
        if self.port == 0:
            self.port = self._server.server_address[1]

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_store(self, event: Any) -> int:
        try:
            ds = event.dataset
            sop_uid, study_uid = str(ds.SOPInstanceUID), str(ds.StudyInstanceUID)
        except Exception:  # noqa: BLE001 - a dataset pydicom cannot decode or without UIDs
            _log.warning("C-STORE refused: dataset without readable SOP/Study Instance UIDs")
            self._record_refusal("dataset without readable SOP/Study Instance UIDs")
            return _CANNOT_UNDERSTAND
        if str(ds.get("SOPClassUID", "")) == COMPREHENSIVE_SR and ds.get("Manufacturer") == "clinical-mm":
            # our own draft SR, echoed back by a PACS that forwards whole studies: stored there, not analysed here
            _log.info("C-STORE of clinical-mm's own SR acknowledged, not spooled")
            return _SUCCESS
        try:
            calling = str(event.assoc.requestor.ae_title).strip() or "unknown AE"
            _, study_key, _ = self.spool.put(event.encoded_dataset(include_meta=True), sop_uid, study_uid,
                                             source=calling)
        except (OSError, ClinicalMMError) as exc:
            _log.error("C-STORE not spooled (%s)", exc.__class__.__name__)
            return _OUT_OF_RESOURCES
        with self._lock:
            self._studies.setdefault(id(event.assoc), set()).add(study_key)
        return _SUCCESS

    def _record_refusal(self, reason: str) -> None:
        """An instance refused at reception, in the audit log; one that cannot take it is logged."""
        if self.audit is None:
            return
        try:
            self.audit.append(AuditRecord(self.actor, "receive", "refused", detail=f"C-STORE: {reason}"))
        except ClinicalMMError as exc:
            _log.error("audit record of a refused C-STORE not written (%s)", exc.__class__.__name__)

    def _on_released(self, event: Any) -> None:
        """A released association has sent its studies: they need not wait out the quiet period."""
        with self._lock:
            studies = self._studies.pop(id(event.assoc), set())
        if studies:
            try:
                self.spool.store.mark_complete(studies)
            except ClinicalMMError as exc:
                _log.error("cannot mark studies complete (%s)", exc.__class__.__name__)

    def _on_aborted(self, event: Any) -> None:
        with self._lock:  # an aborted sender may resend: its studies wait out the quiet period
            self._studies.pop(id(event.assoc), None)
