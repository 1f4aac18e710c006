"""A DICOMweb client for pulling studies from a PACS: QIDO-RS to find a study by StudyInstanceUID or
accession number, WADO-RS to retrieve its instances (PS3.18).

Retries as the FHIR client does (:mod:`clinical_mm.connectors.http_retry`); a PACS that stays down is a
:class:`RemoteUnavailableError` (queued pulls try again later), a refusal or an answer that is not what
DICOMweb says is a :class:`RemoteRefusedError`. Errors name the interaction and the status, never a UID
or an accession number.
"""

from __future__ import annotations

from typing import Any

import httpx

from clinical_mm.connectors.http_retry import RetryPolicy
from clinical_mm.core.errors import RemoteRefusedError

__all__ = ["DicomWebClient", "NotMultipartError", "parse_multipart"]

_STUDY_UID_TAG = "0020000D"
_ACCEPT_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'


class NotMultipartError(ValueError):
    """The content type is not multipart with a boundary (as opposed to a malformed multipart body)."""


def parse_multipart(content_type: str, body: bytes) -> list[bytes]:
    """The payloads of a multipart body (multipart/related for STOW-RS and WADO-RS, multipart/form-data for
    uploads); :class:`NotMultipartError` when it is not multipart with a boundary, ValueError when malformed."""
    from email.parser import BytesParser
    from email.policy import HTTP

    if not content_type.lower().startswith("multipart/") or "boundary=" not in content_type.lower():
        raise NotMultipartError("not a multipart body with a boundary")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise ValueError("malformed multipart body")
    return [payload for part in message.iter_parts() if isinstance(payload := part.get_payload(decode=True), bytes)]


class DicomWebClient:
    """A DICOMweb service root (e.g. Orthanc's ``http://pacs:8042/dicom-web``)."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout_s: float = 60.0, retries: int = 3,
                 backoff_s: float = 0.5, max_wait_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.policy = RetryPolicy(retries, backoff_s, max_wait_s)
        self._http = httpx.Client(headers=headers, timeout=timeout_s, follow_redirects=False, trust_env=False,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DicomWebClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, what: str, **kwargs: Any) -> httpx.Response:
        response = self.policy.request(self._http, "GET", f"{self.base_url}/{path}", system="PACS (DICOMweb)",
                                       what=what, **kwargs)
        if response.status_code >= 400:
            raise RemoteRefusedError(f"PACS (DICOMweb) refused {what}: HTTP {response.status_code}",
                                     status=response.status_code)
        return response

    def find_studies(self, *, study_uid: str | None = None, accession: str | None = None) -> list[str]:
        """QIDO-RS: the StudyInstanceUIDs of the studies matching the UID or the accession number."""
        if (study_uid is None) == (accession is None):
            raise ValueError("give exactly one of study_uid and accession")
        params = {"StudyInstanceUID": study_uid} if study_uid else {"AccessionNumber": str(accession)}
        response = self._get("studies", "a study search (QIDO-RS)", params={**params, "includefield": _STUDY_UID_TAG},
                             headers={"Accept": "application/dicom+json"})
        if response.status_code == 204 or not response.content:
            return []
        try:
            rows = response.json()
            return [str(row[_STUDY_UID_TAG]["Value"][0]) for row in rows]
        except (ValueError, KeyError, IndexError, TypeError):
            raise RemoteRefusedError("PACS (DICOMweb) answered a study search with something that is not "
                                     "DICOM JSON with StudyInstanceUIDs") from None

    def retrieve_study(self, study_uid: str) -> list[bytes]:
        """WADO-RS: every instance of the study, as PS3.10 files."""
        response = self._get(f"studies/{study_uid}", "a study retrieval (WADO-RS)", headers={"Accept": _ACCEPT_DICOM})
        try:
            parts = parse_multipart(response.headers.get("content-type", ""), response.content)
        except ValueError as exc:
            raise RemoteRefusedError(f"PACS (DICOMweb) answered a study retrieval with {exc}") from None
        if not parts:
            raise RemoteRefusedError("PACS (DICOMweb) answered a study retrieval without any instance")
        return parts
