"""A study's identity for the radiologist who reads it: its original accession number and patient name,
re-linked through the key vault so that the case can be matched in the PACS. Every read is an audit record.

The de-identifier files both originals in the vault under the study's pseudonymous StudyInstanceUID (kinds
``study-accession`` and ``study-patient-name``). A study de-identified before it did so has its accession
found through the accession pseudonym of its draft (as egress finds it) and no name. The audit record
(action ``reidentify:study``) names the actor, the pseudonymous study and which fields were re-linked, never
a value nor a hash of one (an accession number is short enough to be found again from its hash). It is
written before anything is returned: a read the audit log cannot take returns nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinical_mm.audit.audit_record import AuditRecord, AuditSink
from clinical_mm.core.errors import AuditError, ReidentificationError
from clinical_mm.deid.pseudonymizer import STUDY_ACCESSION, STUDY_PATIENT_NAME
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.outputs.fhir_r4 import accession_pseudonym
from clinical_mm.service.store import ServiceStore

__all__ = ["REIDENTIFY_ACTION", "IdentityLookup", "StudyIdentity"]

#: the audit action of a study's re-identification for review
REIDENTIFY_ACTION = "reidentify:study"


@dataclass(frozen=True)
class StudyIdentity:
    """A study's originals; None where the vault holds none."""

    accession: str | None
    patient_name: str | None


class IdentityLookup:
    """Re-links studies to their accession number and patient name, auditing each read.

    Parameters
    ----------
    vault
        The key vault (the pseudonymisation key decrypts it).
    store
        The service database: only a study it holds is looked up.
    results_dir
        Where the drafts' FHIR bundles are (the accession pseudonym of a study filed before its accession was).
    audit
        Where each read is recorded.
    """

    def __init__(self, vault: PseudonymVault, store: ServiceStore, results_dir: Path, audit: AuditSink) -> None:
        self.vault = vault
        self.store = store
        self.results_dir = results_dir
        self.audit = audit

    def identity(self, study_key: str, actor: str) -> StudyIdentity | None:
        """The study's identity, its read audited first; None for a study the service does not hold (nothing read,
        and the unknown id, which a caller typed, is not recorded). Raises :class:`ReidentificationError` (a vault
        row that does not authenticate or cannot be read; audited as refused) or :class:`AuditError`."""
        row = self.store.study(study_key)
        if row is None:
            return None
        try:
            found = StudyIdentity(self._accession(study_key, row), self.vault.find(STUDY_PATIENT_NAME, study_key))
        except ReidentificationError as exc:
            self._record(actor, study_key, "refused", exc.__class__.__name__)
            raise
        fields = {"accession": found.accession, "patient name": found.patient_name}
        linked = [name for name, value in fields.items() if value is not None]
        missing = [name for name, value in fields.items() if value is None]
        detail = "; ".join(part for part in (("re-linked: " + ", ".join(linked)) if linked else "",
                                             ("not recorded: " + ", ".join(missing)) if missing else "") if part)
        self._record(actor, study_key, "ok", detail)
        return found

    def _accession(self, study_key: str, row: dict[str, Any]) -> str | None:
        """The accession filed under the study, else the one behind its draft's accession pseudonym."""
        kept = self.vault.find(STUDY_ACCESSION, study_key)
        if kept is not None:
            return kept
        result = row.get("result") or {}
        if "fhir" not in result:
            return None
        try:
            bundle = json.loads((self.results_dir / str(result["fhir"])).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        pseudonym = accession_pseudonym(bundle) if isinstance(bundle, dict) else ""
        return self.vault.find("accession", pseudonym) if pseudonym else None

    def _record(self, actor: str, study_key: str, outcome: str, detail: str) -> None:
        try:
            self.audit.append(AuditRecord(actor, REIDENTIFY_ACTION, outcome, study=study_key, detail=detail))
        except AuditError:
            raise
        except Exception as exc:  # noqa: BLE001 - any sink failure: nothing is returned unaudited
            raise AuditError(f"cannot append the re-identification record ({exc.__class__.__name__})") from None
