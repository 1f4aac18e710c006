"""Results back to the hospital's systems, re-identified at egress through the key vault.

The analysis runs on de-identified data, so a result names its study by pseudonyms. Only here, on the way
out to the hospital's own FHIR server, are the originals looked up in the vault (the accession and the
StudyInstanceUID; the pseudonymisation key decrypts them) and the order, imaging study and patient found
on that server by accession. What goes out:

* ``draft``: the draft's transaction Bundle (DiagnosticReport ``preliminary`` + Observations + Device +
  Provenance), linked to the ServiceRequest, ImagingStudy and Patient; conditional creates keyed by our
  identifiers, so a re-delivery makes no duplicates;
* ``final``: after sign-off, the signed DiagnosticReport (``final``) by conditional update of the same
  report (``PUT DiagnosticReport?identifier=...``).

Each send is a queued delivery of the study (subscriber id ``egress:fhir``) with the callbacks' retries and
backoff: a FHIR server that is down gets the results once it is back. Nothing is logged but pseudonyms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinical_mm.connectors.fhir_client import FhirClient, StudyContext
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.errors import ReidentificationError, RemoteRefusedError
from clinical_mm.outputs.fhir_r4 import HospitalLinks, final_for_hospital, for_hospital, report_identifier
from clinical_mm.service.store import ServiceStore

__all__ = ["FHIR_TARGET", "FhirEgress"]

#: the subscriber id of FHIR egress deliveries in the delivery queue
FHIR_TARGET = "egress:fhir"


class FhirEgress:
    """Sends a study's draft and signed report to the hospital's FHIR server."""

    def __init__(self, client: FhirClient, vault: PseudonymVault, store: ServiceStore, results_dir: Path) -> None:
        self.client = client
        self.vault = vault
        self.store = store
        self.results_dir = results_dir

    def _draft_bundle(self, study_key: str) -> dict[str, Any]:
        found = self.store.study(study_key)
        if found is None or not found.get("result") or "fhir" not in found["result"]:
            raise RemoteRefusedError("no analysed result to send for the study")
        bundle: dict[str, Any] = json.loads((self.results_dir / str(found["result"]["fhir"])).read_text(encoding="utf-8"))
        return bundle

    def links(self, study_key: str, draft_bundle: dict[str, Any]) -> HospitalLinks:
        """The originals from the vault and the order, imaging study and patient on the FHIR server."""
        pseudo_accession = next((i["value"] for e in draft_bundle.get("entry", [])
                                 if e["resource"]["resourceType"] == "DiagnosticReport"
                                 for i in e["resource"].get("identifier", [])
                                 if i.get("system") == "urn:clinical-mm:accession-pseudonym"), "")
        study_uid = self.vault.lookup("uid", study_key)
        if not pseudo_accession:
            raise ReidentificationError("the study has no accession number to find its order by")
        accession = self.vault.lookup("accession", pseudo_accession)
        ctx = self.client.study_context(accession, study_uid)
        return HospitalLinks(accession=accession, study_uid=study_uid,
                             service_request=StudyContext.reference(ctx.service_request),
                             imaging_study=StudyContext.reference(ctx.imaging_study),
                             patient=StudyContext.reference(ctx.patient))

    def send(self, kind: str, study_key: str) -> str:
        """Send the study's ``draft`` or ``final`` report; a short PHI-free status for the delivery log.
        Raises :class:`RemoteUnavailableError` (try again later), :class:`RemoteRefusedError` or
        :class:`ReidentificationError`."""
        draft = self._draft_bundle(study_key)
        links = self.links(study_key, draft)
        if kind == "draft":
            answers = self.client.send_transaction(for_hospital(draft, links))
            statuses = sorted({str(e.get("response", {}).get("status", "?")).split()[0] for e in answers})
            return "transaction " + "/".join(statuses)
        if kind == "final":
            review = self.store.review(study_key)
            if review is None or review["status"] != "signed" or not review.get("report"):
                raise RemoteRefusedError("the study has no signed report to send")
            report = final_for_hospital(review["report"], links)
            self.client.conditional_update(report, {"identifier": report_identifier(report)})
            return "final report updated"
        raise ValueError(f"unknown egress kind {kind!r}")
