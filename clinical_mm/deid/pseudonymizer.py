"""Keyed pseudonyms: HMAC-SHA256 under the pseudonymisation key.

The same key maps the same input to the same output across runs, files and studies; another key gives
another mapping; without the key the mapping cannot be computed or inverted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from clinical_mm.core.config import PseudonymKey

__all__ = ["STUDY_ACCESSION", "STUDY_PATIENT_NAME", "Pseudonymizer"]

#: vault kinds of a study's originals kept under its pseudonymous StudyInstanceUID (no pseudonym of their own):
#: what a radiologist needs to match the case in the PACS
STUDY_ACCESSION = "study-accession"
STUDY_PATIENT_NAME = "study-patient-name"


class Pseudonymizer:
    """Derives UIDs, identifiers and date shifts from a :class:`PseudonymKey`.

    With ``remember`` every pseudonym issued is kept with its original until :meth:`drain` hands them to
    the re-identification vault.
    """

    def __init__(self, key: PseudonymKey, *, remember: bool = False) -> None:
        self.key = key
        self.remember = remember
        self._issued: dict[tuple[str, str], str] = {}

    def drain(self) -> list[tuple[str, str, str]]:
        """The (kind, pseudonym, original) triples issued since the last call."""
        out = [(kind, pseudonym, original) for (kind, pseudonym), original in self._issued.items()]
        self._issued.clear()
        return out

    def keep(self, kind: str, pseudonym: str, original: str) -> None:
        """With ``remember``, keep ``original`` for the vault under a pseudonym issued for something else (a study's
        patient name under the study's pseudonymous UID); the first value kept for a pseudonym stays."""
        if self.remember and original.strip():
            self._issued.setdefault((kind, pseudonym), original.strip())

    def _digest(self, domain: str, value: str) -> bytes:
        return hmac.new(self.key.secret, domain.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()

    def uid(self, uid: str) -> str:
        """Map a DICOM UID to a ``2.25.<decimal>`` UID (a 128-bit number; at most 44 characters)."""
        new = "2.25." + str(int.from_bytes(self._digest("uid", uid.strip())[:16], "big"))
        if self.remember:
            self._issued[("uid", new)] = uid.strip()
        return new

    def identifier(self, kind: str, value: str, length: int = 16) -> str:
        """A pseudonym for an identifier such as PatientID (``kind`` separates the name spaces)."""
        new = self._digest(kind, value.strip()).hex().upper()[:length]
        if self.remember:
            self._issued[(kind, new)] = value.strip()
        return new

    def date_shift_days(self, patient: str) -> int:
        """A per-patient shift into the past, between 30 and 1,094 days, the same for every file of that patient."""
        return -(30 + int.from_bytes(self._digest("date-shift", patient.strip())[:4], "big") % 1065)

    def shift_date(self, value: str, patient: str) -> str:
        """Shift a DA value (YYYYMMDD) by the patient's offset; an unparseable value is emptied."""
        try:
            day = dt.datetime.strptime(value.strip()[:8], "%Y%m%d").date()
        except ValueError:
            return ""
        return (day + dt.timedelta(days=self.date_shift_days(patient))).strftime("%Y%m%d")
