"""Pulling studies from the PACS: the request is queued under pseudonyms, the pull finds the study (by
StudyInstanceUID or accession number) and retrieves it into the spool, where it is analysed like a pushed
study. Two routes, whichever the PACS offers:

* DICOMweb: QIDO-RS finds the study, WADO-RS retrieves it, and the pull puts its instances in the spool;
* DIMSE: C-FIND finds the study, C-MOVE has the PACS send it to ``serve``'s own Storage SCP (the PACS must
  know our AE title and address, and ``serve`` must allow the PACS's AE title), which spools it as it spools
  any push; the pull then checks that the spool holds the study.

A pull request (``POST /v1/pulls``, e.g. from Orthanc's stable-study event: the second Orthanc route) names
the study by its original UID or accession. Only the keyed pseudonym goes into the queue; the original is
kept encrypted in the key vault, and read back by the pull worker. A PACS that is down fails the try with
a clear status; the pull is retried with backoff and fails for good after the last try (visible in
``GET /v1/pulls/{id}``).
"""

from __future__ import annotations

from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.connectors.dicomweb_client import DicomWebClient
from clinical_mm.connectors.dimse_client import DimseClient
from clinical_mm.core.errors import DicomReadError, RemoteRefusedError
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.service.spool import Spool

__all__ = ["PULL_KINDS", "StudyPuller"]

#: pull kind -> the vault's kind of its pseudonym
PULL_KINDS = {"study": "uid", "accession": "accession"}


class StudyPuller:
    """Pulls by DICOMweb (``client`` a :class:`DicomWebClient`) or by C-FIND/C-MOVE (a :class:`DimseClient`,
    with ``move_destination`` the AE title under which the PACS knows serve's listener). A retrieved part that
    is no readable DICOM is skipped and recorded in ``audit`` (its hash and reason), the rest of the study goes on."""

    def __init__(self, client: DicomWebClient | DimseClient, vault: PseudonymVault, spool: Spool, *,
                 move_destination: str | None = None, audit: AuditSink | None = None,
                 actor: str = "clinical-mm") -> None:
        if isinstance(client, DimseClient) and not move_destination:
            raise ValueError("a C-MOVE pull needs the move destination (serve's AE title)")
        self.client = client
        self.vault = vault
        self.spool = spool
        self.move_destination = move_destination
        self.audit, self.actor = audit, actor

    def request(self, kind: str, original: str) -> str:
        """Queue a pull; the pull id. The original goes to the vault, its pseudonym to the queue."""
        value = original.strip()
        if kind == "study":
            pseudonym = self.spool.pseudo.uid(value)
        elif kind == "accession":
            pseudonym = self.spool.pseudo.identifier("accession", value, 16)
        else:
            raise ValueError(f"unknown pull kind {kind!r}")
        self.vault.record([(PULL_KINDS[kind], pseudonym, value)])
        return self.spool.store.add_pull(kind, pseudonym)

    def pull(self, kind: str, pseudonym: str) -> list[str]:
        """Find and retrieve the study or studies; the pseudonymous study keys now in the spool."""
        original = self.vault.lookup(PULL_KINDS[kind], pseudonym)
        uids = (self.client.find_studies(study_uid=original) if kind == "study"
                else self.client.find_studies(accession=original))
        if not uids:
            raise RemoteRefusedError("the PACS holds no study for this pull")
        keys: list[str] = []
        for uid in uids:
            key = self._retrieve(uid)
            if key not in keys:
                keys.append(key)
        self.spool.store.mark_complete(set(keys))
        return keys

    def _retrieve(self, uid: str) -> str:
        """Retrieve one study into the spool; its pseudonymous study key."""
        key = self.spool.pseudo.uid(uid)
        if isinstance(self.client, DimseClient):
            assert self.move_destination is not None
            outcome = self.client.move_study(uid, self.move_destination)
            if not self.spool.store.files_of(key):  # the PACS sent the study somewhere, but not to us
                raise RemoteRefusedError(f"the PACS reports {outcome.completed} instances moved to "
                                         f"{self.move_destination}, but none reached serve (does the PACS have "
                                         "serve's address for that AE title?)")
            return key
        stored = 0
        for data in self.client.retrieve_study(uid):
            try:
                self.spool.put(data, source="pull")
            except DicomReadError as exc:  # a part that is not DICOM: recorded, the rest of the study goes on
                if self.audit is not None:
                    self.audit.append(AuditRecord(self.actor, "receive", "refused", input_hash=sha256_hex(data),
                                                  detail=f"DICOMweb retrieve part: {exc.reason}"))
                continue
            stored += 1
        if not stored:
            raise RemoteRefusedError("the PACS returned no readable instance of the study")
        return key
