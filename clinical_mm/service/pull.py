"""Pulling studies from the PACS by DICOMweb: the request is queued under pseudonyms, the pull finds the
study (QIDO-RS, by StudyInstanceUID or accession number) and retrieves it (WADO-RS) into the spool, where it
is analysed like a pushed study.

A pull request (``POST /v1/pulls``, e.g. from Orthanc's stable-study event: the second Orthanc route) names
the study by its original UID or accession. Only the keyed pseudonym goes into the queue; the original is
kept encrypted in the key vault, and read back by the pull worker. A PACS that is down fails the try with
a clear status; the pull is retried with backoff and fails for good after the last try (visible in
``GET /v1/pulls/{id}``).
"""

from __future__ import annotations

from clinical_mm.connectors.dicomweb_client import DicomWebClient
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.errors import DicomReadError, RemoteRefusedError
from clinical_mm.service.spool import Spool

__all__ = ["PULL_KINDS", "StudyPuller"]

#: pull kind -> the vault's kind of its pseudonym
PULL_KINDS = {"study": "uid", "accession": "accession"}


class StudyPuller:
    def __init__(self, client: DicomWebClient, vault: PseudonymVault, spool: Spool) -> None:
        self.client = client
        self.vault = vault
        self.spool = spool

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
            stored = 0
            for data in self.client.retrieve_study(uid):
                try:
                    _, study_key, _ = self.spool.put(data)
                except DicomReadError:
                    continue  # a part that is not DICOM: the rest of the study goes on
                stored += 1
                if study_key not in keys:
                    keys.append(study_key)
            if not stored:
                raise RemoteRefusedError("the PACS returned no readable instance of the study")
        self.spool.store.mark_complete(set(keys))
        return keys
