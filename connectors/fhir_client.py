"""A FHIR R4 REST client for the hospital's FHIR server: orders, studies, patients and notes in; reports out.

httpx under the hood, with a bearer token, paging (``next`` links, same server only), and retries with
exponential backoff on what is worth retrying (:mod:`clinical_mm.connectors.http_retry`: no connection, a
timeout, 429 and 5xx). After the last try a :class:`RemoteUnavailableError` says the server is down, so
queued work tries again later; a refusal (other 4xx) or an answer that is not valid R4 is a
:class:`RemoteRefusedError`, not retried. Every resource read is validated with ``fhir.resources.R4B``
(through :func:`clinical_mm.core.fhir_release.validate_resource`). Errors name the interaction and the
status, never an identifier or a value from the answer (an OperationOutcome's text may quote PHI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from clinical_mm.connectors.http_retry import RetryPolicy
from clinical_mm.core.errors import OutputError, RemoteRefusedError
from clinical_mm.core.fhir_release import validate_resource

__all__ = ["ACCESSION_TYPE", "FhirClient", "StudyContext"]

#: the identifier type of an accession number (HL7 v2 table 0203)
ACCESSION_TYPE = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
_FHIR_JSON = "application/fhir+json"


@dataclass
class StudyContext:
    """What the FHIR server knows about one accession: the order, the imaging study, the patient and the
    patient's notes (DocumentReference). Resources are validated R4 JSON; any may be missing but the order."""

    service_request: dict[str, Any]
    imaging_study: dict[str, Any] | None = None
    patient: dict[str, Any] | None = None
    documents: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def reference(resource: dict[str, Any] | None) -> dict[str, str] | None:
        """``{"reference": "Type/id"}`` of a resource read from the server (None for None)."""
        if resource is None:
            return None
        return {"reference": f"{resource['resourceType']}/{resource['id']}"}


class FhirClient:
    """A FHIR R4 server at ``base_url`` (e.g. ``https://fhir.example.org/fhir/R4``).

    Parameters
    ----------
    token
        Bearer token sent as ``Authorization: Bearer ...`` (none: no header).
    retries
        Attempts after the first for a retryable failure.
    backoff_s
        First wait between attempts; doubles each time, capped at ``max_wait_s``.
    max_pages
        Search pages followed at most (a server that pages forever is refused).
    max_transaction_entries
        Larger transactions are sent in steps (:meth:`send_transaction`).
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 10.0, retries: int = 3,
                 backoff_s: float = 0.5, max_wait_s: float = 10.0, max_pages: int = 50,
                 max_transaction_entries: int = 8, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": _FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.policy = RetryPolicy(retries, backoff_s, max_wait_s)
        self.max_pages = max_pages
        self.max_transaction_entries = max_transaction_entries
        self._origin = urlsplit(self.base_url)[:2]
        self._http = httpx.Client(headers=headers, timeout=timeout_s, follow_redirects=False, trust_env=False,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP
    def _request(self, method: str, url: str, what: str, *, json: Any = None,
                 params: dict[str, str] | None = None, headers: dict[str, str] | None = None) -> Any:
        """One interaction with retries; the parsed JSON answer."""
        if not url.startswith("http"):
            url = f"{self.base_url}/{url.lstrip('/')}"
        send_headers = dict(headers or {})
        if json is not None:
            send_headers["Content-Type"] = _FHIR_JSON
        response = self.policy.request(self._http, method, url, system="FHIR server", what=what, json=json,
                                       params=params, headers=send_headers)
        if response.status_code >= 400:
            raise RemoteRefusedError(f"FHIR server refused {what}: HTTP {response.status_code}"
                                     f"{_issue_code(response)}", status=response.status_code)
        try:
            return response.json() if response.content else None
        except ValueError:
            raise RemoteRefusedError(f"FHIR server answered {what} with something that is not JSON",
                                     status=response.status_code) from None

    @staticmethod
    def _resource(body: Any, what: str, expect: str | None = None) -> dict[str, Any]:
        try:
            resource = validate_resource(body, what)
        except OutputError as exc:
            raise RemoteRefusedError(f"FHIR server answered {what} with invalid R4: {exc}") from None
        if expect is not None and resource.get("resourceType") != expect:
            raise RemoteRefusedError(f"FHIR server answered {what} with a {resource.get('resourceType')}, "
                                     f"not a {expect}")
        return resource

    # ------------------------------------------------------------------ interactions
    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """GET ``Type/id``, validated."""
        return self._resource(self._request("GET", f"{resource_type}/{resource_id}", f"read {resource_type}"),
                              f"read {resource_type}", resource_type)

    def read_reference(self, reference: dict[str, Any] | None) -> dict[str, Any] | None:
        """The resource a relative reference (``Type/id``) points to; None for no or another kind of reference."""
        ref = (reference or {}).get("reference", "")
        parts = ref.split("/")
        if len(parts) != 2 or not all(parts):
            return None
        return self.read(parts[0], parts[1])

    def search(self, resource_type: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every matching resource of ``resource_type`` (``search.mode`` match), following ``next`` links on
        the same server; each validated."""
        what = f"search {resource_type}"
        url, out = f"{self.base_url}/{resource_type}", []
        query: dict[str, str] | None = dict(params)
        for _ in range(self.max_pages):
            bundle = self._resource(self._request("GET", url, what, params=query), what, "Bundle")
            for entry in bundle.get("entry", []):
                resource = entry.get("resource")
                if resource and resource.get("resourceType") == resource_type and \
                        entry.get("search", {}).get("mode", "match") == "match":
                    out.append(resource)
            nxt = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
            if nxt is None:
                return out
            if urlsplit(nxt)[:2] != self._origin:
                raise RemoteRefusedError(f"FHIR server paged {what} to another server")
            url, query = nxt, None
        raise RemoteRefusedError(f"FHIR server paged {what} past {self.max_pages} pages")

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction Bundle; the validated ``transaction-response``."""
        response = self._resource(self._request("POST", self.base_url, "transaction", json=bundle),
                                  "transaction", "Bundle")
        if response.get("type") != "transaction-response":
            raise RemoteRefusedError("FHIR server answered the transaction with a Bundle that is not a "
                                     "transaction-response")
        return response

    def send_transaction(self, bundle: dict[str, Any]) -> list[dict[str, Any]]:
        """Send a transaction Bundle whole when it has at most ``max_transaction_entries`` entries, else in steps:
        entries in the order of their ``urn:uuid`` references (what is referenced goes first), at most that many
        per transaction, references to earlier steps rewritten to the ids the server gave. Every step is its own
        transaction; with conditional creates a retry after a failed step matches what the earlier steps wrote.
        (Medplum's FHIR engine refuses a transaction of conditional creates with more than 8 entries.)
        Returns the transaction-response entries in the order of ``bundle``'s entries."""
        entries = bundle.get("entry", [])
        if len(entries) <= self.max_transaction_entries:
            return list(self.transaction(bundle).get("entry", []))
        placeholders = {e["fullUrl"] for e in entries if str(e.get("fullUrl", "")).startswith("urn:uuid:")}
        needs = [{p for p in placeholders if p != e.get("fullUrl") and _mentions(e.get("resource"), p)} for e in entries]
        resolved: dict[str, str] = {}
        results: list[dict[str, Any] | None] = [None] * len(entries)
        while any(r is None for r in results):  # every placeholder entry resolves when its step is answered
            ready = [i for i, e in enumerate(entries) if results[i] is None and needs[i] <= resolved.keys()]
            if not ready:
                raise RemoteRefusedError("the transaction's references go round in a circle: it cannot be sent in steps")
            for start in range(0, len(ready), self.max_transaction_entries):
                step = ready[start:start + self.max_transaction_entries]
                answer = self.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
                    _rewrite(entries[i], resolved) for i in step]})
                got = answer.get("entry", [])
                if len(got) != len(step):
                    raise RemoteRefusedError("FHIR server answered a transaction step with the wrong number of entries")
                for i, result in zip(step, got, strict=True):
                    results[i] = result
                    location = str(result.get("response", {}).get("location", "")).split("/_history")[0]
                    if entries[i].get("fullUrl") in placeholders:
                        if location.count("/") != 1:
                            raise RemoteRefusedError("FHIR server answered a transaction step without a location")
                        resolved[entries[i]["fullUrl"]] = location
        return [r for r in results if r is not None]

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        """POST ``Type`` (the server names it); the validated resource as created."""
        rtype = resource["resourceType"]
        what = f"create of {rtype}"
        answer = self._request("POST", f"{self.base_url}/{rtype}", what, json=resource,
                               headers={"Prefer": "return=representation"})
        return self._resource(answer, what, rtype)

    def update(self, resource: dict[str, Any]) -> dict[str, Any]:
        """PUT ``Type/id`` (update, or create with that id: sending the same resource twice makes one); the
        validated resource."""
        rtype, rid = resource["resourceType"], resource["id"]
        what = f"update of {rtype}"
        answer = self._request("PUT", f"{self.base_url}/{rtype}/{rid}", what, json=resource,
                               headers={"Prefer": "return=representation"})
        return self._resource(answer, what, rtype)

    def conditional_update(self, resource: dict[str, Any], search: dict[str, str]) -> dict[str, Any]:
        """PUT ``Type?search`` (update the one match, create when none); the validated resource."""
        rtype = resource["resourceType"]
        body = {k: v for k, v in resource.items() if k != "id"}
        what = f"conditional update of {rtype}"
        answer = self._request("PUT", f"{self.base_url}/{rtype}", what, json=body, params=search,
                               headers={"Prefer": "return=representation"})
        return self._resource(answer, what, rtype)

    # ------------------------------------------------------------------ the study's context
    def study_context(self, accession: str, study_uid: str | None = None, *, documents: bool = True) -> StudyContext:
        """The order (ServiceRequest by accession identifier), its ImagingStudy (by StudyInstanceUID when given,
        else by accession or ``basedon``), the patient (the order's subject) and, with ``documents``, the
        patient's notes (egress links results and needs no notes: it leaves them on the server).

        :class:`RemoteRefusedError` when no order or more than one carries the accession."""
        orders = self.search("ServiceRequest", {"identifier": accession})
        if len(orders) > 1:  # prefer the ones typed as an accession number
            orders = [o for o in orders if any(_is_accession(i, accession) for i in o.get("identifier", []))]
        if len(orders) != 1:
            raise RemoteRefusedError(f"FHIR server holds {len(orders) or 'no'} ServiceRequest"
                                     f"{'s' if len(orders) != 1 else ''} for the accession")
        order = orders[0]
        studies: list[dict[str, Any]] = []
        if study_uid:
            studies = self.search("ImagingStudy", {"identifier": f"urn:dicom:uid|urn:oid:{study_uid}"})
        if not studies:
            studies = self.search("ImagingStudy", {"basedon": f"ServiceRequest/{order['id']}"})
        if not studies:
            studies = self.search("ImagingStudy", {"identifier": accession})
        patient = self.read_reference(order.get("subject"))
        if patient is not None and patient["resourceType"] != "Patient":
            patient = None
        notes = self.search("DocumentReference", {"subject": f"Patient/{patient['id']}"}) if patient and documents else []
        return StudyContext(service_request=order, imaging_study=studies[0] if len(studies) == 1 else None,
                            patient=patient, documents=notes)



def _mentions(value: Any, placeholder: str) -> bool:
    if isinstance(value, dict):
        return any(_mentions(v, placeholder) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, placeholder) for v in value)
    return bool(value == placeholder)


def _rewrite(value: Any, resolved: dict[str, str]) -> Any:
    """``value`` with every reference to a resolved placeholder replaced by the server's ``Type/id``."""
    if isinstance(value, dict):
        return {k: _rewrite(v, resolved) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, resolved) for v in value]
    return resolved.get(value, value) if isinstance(value, str) else value


def _is_accession(identifier: dict[str, Any], accession: str) -> bool:
    codings = (identifier.get("type") or {}).get("coding", [])
    return identifier.get("value") == accession and any(c.get("code") == ACCESSION_TYPE["code"] for c in codings)


def _issue_code(response: httpx.Response) -> str:
    """`` (issue code: X)`` from an OperationOutcome answer: the code only, its text may quote a value."""
    try:
        body = response.json()
        code = body["issue"][0]["code"]
    except (ValueError, KeyError, IndexError, TypeError):
        return ""
    return f" (issue code: {code})" if isinstance(code, str) and code.isascii() and len(code) < 40 else ""
