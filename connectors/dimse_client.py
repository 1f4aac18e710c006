"""DIMSE with the PACS (pynetdicom): C-FIND to find studies by StudyInstanceUID or accession number, C-MOVE
to have the PACS send a study to a Storage SCP (``serve``'s listener, or :class:`StoreReceiver` for
``clinical-mm fetch``), and C-STORE to send it an object (the draft SR).

An association that cannot be made (no connection, aborted, no answer) is tried again with backoff, then a
:class:`RemoteUnavailableError`; a rejected association, a failure status or a move the PACS could not
complete is a :class:`RemoteRefusedError`. Errors name the PACS's AE title, the operation and the status,
never a UID or an accession number.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from clinical_mm.core.errors import ConfigurationError, RemoteRefusedError, RemoteUnavailableError

__all__ = ["DicomDestination", "DimseClient", "MoveOutcome", "StoreReceiver"]

_SUCCESS = 0x0000
_PENDING = frozenset({0xFF00, 0xFF01})
_MOVE_DESTINATION_UNKNOWN = 0xA801
_CANNOT_UNDERSTAND = 0xC000
_OUT_OF_RESOURCES = 0xA700


@dataclass(frozen=True)
class DicomDestination:
    """A DICOM node: ``AET@host:port`` (e.g. ``ORTHANC@pacs.example.org:4242``)."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> DicomDestination:
        aet, at, address = text.partition("@")
        host, colon, port = address.rpartition(":")
        if not (at and colon and aet.strip() and host and port.isdigit()) or len(aet.strip()) > 16:
            raise ConfigurationError("a DICOM destination is AET@host:port (AE title of at most 16 characters)")
        return cls(aet.strip(), host.strip("[]"), int(port))


@dataclass(frozen=True)
class MoveOutcome:
    """The sub-operation counts of a finished C-MOVE."""

    completed: int
    failed: int
    warning: int


def _status_code(status: Any) -> int | None:
    return int(status.Status) if status is not None and "Status" in status else None


def _count(status: Any, keyword: str) -> int:
    value = status.get(keyword) if status is not None else None
    return int(value) if value not in (None, "") else 0


class DimseClient:
    """The PACS as a DIMSE peer; we call it as ``calling_ae_title``.

    Parameters
    ----------
    timeout_s
        ACSE, DIMSE and network timeout: the longest wait for any one message (a C-MOVE sends one pending
        response per instance, so a large study is not one wait).
    retries, backoff_s
        Association attempts after the first, with waits of ``backoff_s`` doubling.
    """

    def __init__(self, pacs: DicomDestination, *, calling_ae_title: str = "CLINICALMM", timeout_s: float = 30.0,
                 retries: int = 2, backoff_s: float = 1.0) -> None:
        self.pacs = pacs
        self.calling_ae_title = calling_ae_title
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s

    def close(self) -> None:
        """Nothing is held between operations (one association each)."""

    @contextmanager
    def _association(self, contexts: list[tuple[str, str | None]], what: str) -> Iterator[Any]:
        from pynetdicom import AE

        ae = AE(ae_title=self.calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout_s
        for sop_class, syntax in contexts:
            if syntax is None:
                ae.add_requested_context(sop_class)
            else:
                ae.add_requested_context(sop_class, syntax)
        pacs = self.pacs
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
            if assoc.is_established:
                break
            if assoc.is_rejected:
                raise RemoteRefusedError(f"PACS {pacs.ae_title} rejected the association for {what} (does it know "
                                         f"the AE title {self.calling_ae_title}?)")
        else:
            raise RemoteUnavailableError(f"PACS {pacs.ae_title} unavailable for {what} after {self.retries + 1} "
                                         "attempts (no association)")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _check_answered(self, assoc: Any, status: Any, what: str) -> int:
        code = _status_code(status)
        if code is None:
            raise RemoteUnavailableError(f"PACS {self.pacs.ae_title} gave no answer to {what} "
                                         f"({'aborted' if assoc.is_aborted else 'timed out'})")
        return code

    def find_studies(self, *, study_uid: str | None = None, accession: str | None = None) -> list[str]:
        """C-FIND (Study Root, STUDY level): the StudyInstanceUIDs matching the UID or the accession number."""
        from pydicom.dataset import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND  # type: ignore[attr-defined]

        if (study_uid is None) == (accession is None):
            raise ValueError("give exactly one of study_uid and accession")
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid or ""
        query.AccessionNumber = accession or ""
        what = "a study search (C-FIND)"
        uids: list[str] = []
        with self._association([(FIND, None)], what) as assoc:
            for status, identifier in assoc.send_c_find(query, FIND):
                code = self._check_answered(assoc, status, what)
                if code in _PENDING:
                    uid = str(identifier.get("StudyInstanceUID", "")) if identifier is not None else ""
                    if uid and uid not in uids:
                        uids.append(uid)
                elif code != _SUCCESS:
                    raise RemoteRefusedError(f"PACS {self.pacs.ae_title} refused {what}: status 0x{code:04X}")
        return uids

    def move_study(self, study_uid: str, destination_ae_title: str) -> MoveOutcome:
        """C-MOVE (Study Root, STUDY level) of one study to the Storage SCP the PACS knows as
        ``destination_ae_title``; returns when the PACS has sent every instance. A move that the PACS could
        not complete (destination unknown to it, instances refused by the destination) is refused."""
        from pydicom.dataset import Dataset
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE  # type: ignore[attr-defined]

        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        what = "a study retrieval (C-MOVE)"
        final: Any = None
        with self._association([(MOVE, None)], what) as assoc:
            for status, _ in assoc.send_c_move(query, destination_ae_title, MOVE):
                code = self._check_answered(assoc, status, what)
                if code not in _PENDING:
                    final = status
        final_code = _status_code(final)
        outcome = MoveOutcome(_count(final, "NumberOfCompletedSuboperations"),
                              _count(final, "NumberOfFailedSuboperations"),
                              _count(final, "NumberOfWarningSuboperations"))
        if final_code is None:
            raise RemoteUnavailableError(f"PACS {self.pacs.ae_title} gave no final answer to {what}")
        ok = final_code == _SUCCESS or 0xB000 <= final_code <= 0xBFFF
        tried = outcome.completed + outcome.failed + outcome.warning
        if final_code == _MOVE_DESTINATION_UNKNOWN or (not ok and not tried):
            # 0xA801 is the standard's answer to an unknown destination; some PACS (Orthanc) answer 0xC000 both to
            # that and to a destination that rejects their association
            raise RemoteRefusedError(f"PACS {self.pacs.ae_title} refused {what} to {destination_ae_title} before "
                                     f"sending any instance (status 0x{final_code:04X}): does it know "
                                     f"{destination_ae_title} as a DICOM modality, and does {destination_ae_title} "
                                     f"accept the PACS's AE title?")
        if outcome.failed or not ok:
            raise RemoteRefusedError(
                f"PACS {self.pacs.ae_title} could not complete {what} to {destination_ae_title}: status "
                f"0x{final_code:04X}, {outcome.failed} of {tried} instances failed (does {destination_ae_title} "
                "accept the PACS's AE title?)")
        return outcome

    def store(self, dataset: Any) -> str:
        """C-STORE of one dataset (with file meta); a short status for a delivery log."""
        what = "a C-STORE"
        with self._association([(str(dataset.SOPClassUID), str(dataset.file_meta.TransferSyntaxUID))],
                               what) as assoc:
            status = assoc.send_c_store(dataset)
            code = self._check_answered(assoc, status, what)
        if code == _SUCCESS or 0xB000 <= code <= 0xBFFF:  # success, or a warning (e.g. coerced elements)
            return f"stored (0x{code:04X})"
        raise RemoteRefusedError(f"PACS {self.pacs.ae_title} refused {what}: status 0x{code:04X}")


class StoreReceiver:
    """A Storage SCP for the life of a ``with`` block, taking instances from one calling AE title only (the
    PACS a C-MOVE was sent to) and handing each PS3.10 file to ``accept(study_uid, data)``; ``accept``
    returning False refuses the instance (e.g. a study that was not asked for)."""

    def __init__(self, ae_title: str, host: str, port: int, *, calling_ae_title: str,
                 accept: Callable[[str, bytes], bool]) -> None:
        self.ae_title, self.host, self.port = ae_title, host, port
        self.calling_ae_title = calling_ae_title
        self.accept = accept
        self.received = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._server: Any = None

    def __enter__(self) -> StoreReceiver:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = AllStoragePresentationContexts
        ae.require_calling_aet = [self.calling_ae_title]
        try:
            self._server = ae.start_server((self.host, self.port), block=False,
                                           evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        except OSError as exc:
            raise ConfigurationError(f"cannot listen for the PACS on {self.host}:{self.port} ({exc.strerror})") \
                from None
        self.port = self._server.server_address[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_store(self, event: Any) -> int:
        try:
            study_uid = str(event.dataset.StudyInstanceUID)
            data = event.encoded_dataset(include_meta=True)
        except Exception:  # noqa: BLE001 - a dataset pydicom cannot decode
            with self._lock:
                self.refused += 1
            return _CANNOT_UNDERSTAND
        with self._lock:
            try:
                ok = self.accept(study_uid, data)
            except OSError:
                self.refused += 1
                return _OUT_OF_RESOURCES
            if ok:
                self.received += 1
            else:
                self.refused += 1
        return _SUCCESS if ok else _CANNOT_UNDERSTAND
