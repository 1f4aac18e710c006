"""HTTP with retries for the connectors (FHIR, DICOMweb): what is worth retrying is retried with exponential
backoff, everything else is the caller's to judge.

Retried: no connection, a timeout or another transport error, 429 and 5xx (``Retry-After`` in seconds
honoured up to the cap). After the last try a :class:`RemoteUnavailableError` names the system, the
interaction and the last failure, never a value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from clinical_mm.core.errors import RemoteUnavailableError

__all__ = ["RETRY_STATUS", "RetryPolicy"]

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` attempts after the first; waits of ``backoff_s`` doubling, at most ``max_wait_s``."""

    retries: int = 3
    backoff_s: float = 0.5
    max_wait_s: float = 10.0

    def wait(self, attempt: int, retry_after: str | None) -> float:
        wait = self.backoff_s * 2 ** (attempt - 1)
        if retry_after is not None and retry_after.strip().isdigit():
            wait = max(wait, float(retry_after))
        return float(min(wait, self.max_wait_s))

    def request(self, http: httpx.Client, method: str, url: str, *, system: str, what: str,
                **kwargs: Any) -> httpx.Response:
        """The first answer that is not worth retrying (the caller checks its status)."""
        last, retry_after = "", None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.wait(attempt, retry_after))
            retry_after = None
            try:
                response = http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:  # no connection, timeout, protocol error: worth another try
                last = exc.__class__.__name__
                continue
            if response.status_code in RETRY_STATUS:
                last, retry_after = f"HTTP {response.status_code}", response.headers.get("Retry-After")
                continue
            return response
        raise RemoteUnavailableError(f"{system} unavailable for {what} after {self.retries + 1} attempts ({last})")
