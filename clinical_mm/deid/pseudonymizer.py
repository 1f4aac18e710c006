"""Keyed pseudonyms: HMAC-SHA256 under the pseudonymisation key.

The same key maps the same input to the same output across runs, files and studies; another key gives
another mapping; without the key the mapping cannot be computed or inverted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from clinical_mm.config import PseudonymKey

__all__ = ["Pseudonymizer"]


class Pseudonymizer:
    """Derives UIDs, identifiers and date shifts from a :class:`PseudonymKey`."""

    def __init__(self, key: PseudonymKey) -> None:
        self.key = key

    def _digest(self, domain: str, value: str) -> bytes:
        return hmac.new(self.key.secret, domain.encode() + b"\x00" + value.encode("utf-8"), hashlib.sha256).digest()

    def uid(self, uid: str) -> str:
        """Map a DICOM UID to a ``2.25.<decimal>`` UID (a 128-bit number; at most 44 characters)."""
        return "2.25." + str(int.from_bytes(self._digest("uid", uid.strip())[:16], "big"))

    def identifier(self, kind: str, value: str, length: int = 16) -> str:
        """A pseudonym for an identifier such as PatientID (``kind`` separates the name spaces)."""
        return self._digest(kind, value.strip()).hex().upper()[:length]

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
