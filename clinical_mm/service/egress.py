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

and to the PACS (:class:`PacsEgress`, subscriber ``egress:pacs``): the draft as a DICOM Comprehensive SR in
the original study (:mod:`clinical_mm.outputs.dicom_sr`), by C-STORE.

Each send is a queued delivery of the study (subscriber id ``egress:fhir`` or ``egress:pacs``) with the
callbacks' retries and backoff: a server that is down gets the results once it is back. Nothing is logged
but pseudonyms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Protocol

from clinical_mm.connectors.dimse_client import DimseClient
from clinical_mm.connectors.fhir_client import FhirClient, StudyContext
from clinical_mm.core.errors import ReidentificationError, RemoteRefusedError
from clinical_mm.deid.vault import PseudonymVault
from clinical_mm.outputs.fhir_r4 import (
    HospitalLinks,
    accession_pseudonym,
    final_for_hospital,
    for_hospital,
    report_identifier,
)
from clinical_mm.service.store import ServiceStore

__all__ = ["Egress", "FhirEgress", "PacsEgress"]


class Egress(Protocol):
    """A hospital system results go back to: its subscriber id in the delivery queue, the kinds it takes
    (``draft``, ``final``), and the send (a short PHI-free status, or a :class:`ClinicalMMError`)."""

    target: ClassVar[str]
    kinds: ClassVar[frozenset[str]]

    def send(self, kind: str, study_key: str) -> str: ...


def _analysed(store: ServiceStore, results_dir: Path, study_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The study's row and its draft's FHIR bundle."""
    found = store.study(study_key)
    if found is None or not found.get("result") or "fhir" not in found["result"]:
        raise RemoteRefusedError("no analysed result to send for the study")
    bundle: dict[str, Any] = json.loads((results_dir / str(found["result"]["fhir"])).read_text(encoding="utf-8"))
    return found, bundle


class FhirEgress:
    """Sends a study's draft and signed report to the hospital's FHIR server."""

    target: ClassVar[str] = "egress:fhir"
    kinds: ClassVar[frozenset[str]] = frozenset({"draft", "final"})

    def __init__(self, client: FhirClient, vault: PseudonymVault, store: ServiceStore, results_dir: Path) -> None:
        self.client = client
        self.vault = vault
        self.store = store
        self.results_dir = results_dir

    def links(self, study_key: str, draft_bundle: dict[str, Any]) -> HospitalLinks:
        """The originals from the vault and the order, imaging study and patient on the FHIR server."""
        pseudo_accession = accession_pseudonym(draft_bundle)
        study_uid = self.vault.lookup("uid", study_key)
        if not pseudo_accession:
            raise ReidentificationError("the study has no accession number to find its order by")
        accession = self.vault.lookup("accession", pseudo_accession)
        ctx = self.client.study_context(accession, study_uid, documents=False)
        return HospitalLinks(accession=accession, study_uid=study_uid,
                             service_request=StudyContext.reference(ctx.service_request),
                             imaging_study=StudyContext.reference(ctx.imaging_study),
                             patient=StudyContext.reference(ctx.patient))

    def send(self, kind: str, study_key: str) -> str:
        """Send the study's ``draft`` or ``final`` report; a short PHI-free status for the delivery log.
        Raises :class:`RemoteUnavailableError` (try again later), :class:`RemoteRefusedError` or
        :class:`ReidentificationError`."""
        _, draft = _analysed(self.store, self.results_dir, study_key)
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


class PacsEgress:
    """Sends a study's draft to the PACS as a DICOM Comprehensive SR in the original study, by C-STORE.

    The original Patient and Study modules come from the study's instances in the spool (where serve keeps
    what it received); their StudyInstanceUID must be the one the vault gives back for the study's pseudonym.
    """

    target: ClassVar[str] = "egress:pacs"
    kinds: ClassVar[frozenset[str]] = frozenset({"draft"})

    def __init__(self, client: DimseClient, vault: PseudonymVault, store: ServiceStore, results_dir: Path) -> None:
        self.client = client
        self.vault = vault
        self.store = store
        self.results_dir = results_dir

    def build(self, study_key: str) -> Any:
        """The SR dataset of the study's draft."""
        import pydicom

        from clinical_mm.outputs.dicom_sr import build_report_sr

        found, draft = _analysed(self.store, self.results_dir, study_key)
        result = found["result"]
        study_uid = self.vault.lookup("uid", study_key)
        originals = []
        for path in self.store.files_of(study_key):
            try:
                originals.append(pydicom.dcmread(path, stop_before_pixels=True))
            except Exception as exc:  # noqa: BLE001 - pydicom raises many types
                raise RemoteRefusedError(f"a spooled instance of the study cannot be read ({exc.__class__.__name__})") \
                    from None
        originals = [ds for ds in originals if str(ds.get("StudyInstanceUID", "")) == study_uid]
        if not originals:
            raise ReidentificationError("the spool holds no instance of the study the vault names")
        device = next(e["resource"] for e in draft["entry"] if e["resource"]["resourceType"] == "Device")
        image_uid = self.vault.find("uid", str(result["image"])) if result.get("image") else None
        image = next((ds for ds in originals if str(ds.get("SOPInstanceUID", "")) == image_uid), None)
        return build_report_sr(originals[0], originals, findings=str(result.get("findings") or ""),
                               impression=str(result.get("impression") or ""), flags=result.get("flags", {}),
                               thresholds=result.get("thresholds", {}), raised=list(result.get("raised", [])),
                               priority=str(found.get("priority") or "routine"),
                               model_id=str(device["deviceName"][0]["name"]),
                               model_sha256=str(device["identifier"][0]["value"]),
                               regions=result.get("regions") or {}, image=image)

    def send(self, kind: str, study_key: str) -> str:
        if kind != "draft":
            raise ValueError(f"the PACS takes drafts only, not {kind!r}")
        return "SR " + self.client.store(self.build(study_key))
