"""presidio's e-mail recognizer with the public-suffix list bundled with ``tldextract``: nothing is downloaded."""

from __future__ import annotations

import tldextract

from clinical_mm.deid.text.presidio_loader import EmailRecognizer

__all__ = ["OfflineEmailRecognizer"]


class OfflineEmailRecognizer(EmailRecognizer):
    """E-mail addresses whose domain ends in a known public suffix, read from the bundled snapshot (presidio's
    own recognizer would fetch the current list from the network on first use)."""

    def __init__(self) -> None:
        super().__init__()
        self._domains = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def validate_result(self, pattern_text: str) -> bool:
        return bool(self._domains(pattern_text).fqdn)
