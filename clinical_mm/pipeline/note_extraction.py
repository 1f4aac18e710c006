"""Extraction as the CLI and the service run it: de-identify the texts first (PHI masked in place, so offsets
stay those of the input), then extract, and record one audit entry (counts and hashes, never text)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.core import __version__
from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.extraction.extractor import ClinicalExtractor
from clinical_mm.extraction.vocabulary import Vocabulary
from clinical_mm.outputs.fhir_r4 import extraction_bundle

__all__ = ["NoteExtraction", "extraction_document"]


def extraction_document(extractor: ClinicalExtractor, ident: str, text: str, targets: list[str],
                        fmt: str = "json") -> dict[str, object]:
    """One document's output: ``{"id", "entities", "targets"}`` (``fmt`` json) or its FHIR R4 Bundle
    (``fmt`` fhir; targets are not facts and are left out)."""
    if fmt != "fhir":
        return extractor.document(ident, text, targets)
    entities = [e.to_dict() for e in extractor.entities(text)]
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return extraction_bundle(ident, digest, entities, f"clinical-mm-extract@{__version__}")


class NoteExtraction:
    """De-identify, extract, audit. ``key`` may be None only for callers that always pass
    ``assume_deidentified``. ``recognizers``, ``terms`` and ``threshold``: the site's PHI recognizer file, its
    allow/deny term file and its score threshold for the text de-identifier (``CLINICAL_MM_RECOGNIZERS``,
    ``CLINICAL_MM_DEID_TERMS``, ``CLINICAL_MM_DEID_THRESHOLD``). One run at a time (the service calls it from
    several threads; spaCy's pipeline and the de-identifier's caches are not shared safely)."""

    def __init__(self, key: PseudonymKey | None, vocabulary: Vocabulary | None = None,
                 recognizers: Path | None = None, terms: Path | None = None, threshold: float | None = None
                 ) -> None:
        self.key = key
        self.recognizers = recognizers
        self.site_terms: Any = None
        if terms is not None:  # read now: a bad term file is refused before the first run
            from clinical_mm.pipeline.text_deidentification import site_terms

            self.site_terms = site_terms(terms)
        self.threshold = threshold
        self.extractor = ClinicalExtractor(vocabulary=vocabulary)
        self._deid: Any = None
        self._lock = threading.Lock()

    def run(self, items: Sequence[tuple[str, str, list[str]]], fmt: str, assume_deidentified: bool,
            audit: AuditSink, actor: str) -> list[dict[str, Any]]:
        """One output per (id, text, targets): ``{"id", "entities", "targets"}`` or a FHIR Bundle (``fmt``)."""
        with self._lock:
            return self._run(items, fmt, assume_deidentified, audit, actor)

    def _run(self, items: Sequence[tuple[str, str, list[str]]], fmt: str, assume_deidentified: bool,
             audit: AuditSink, actor: str) -> list[dict[str, Any]]:
        texts = [text for _, text, _ in items]
        if not assume_deidentified:
            if self._deid is None:
                from clinical_mm.pipeline.text_deidentification import text_deidentifier

                if self.key is None:
                    raise ConfigurationError("de-identifying notes needs a pseudonymisation key")
                self._deid = text_deidentifier(self.key, self.extractor.vocabulary, self.recognizers,
                                               self.site_terms, self.threshold)
            texts = [self._deid.mask(t, spans) for t, spans in zip(texts, self._deid.find_many(texts), strict=True)]
        out = [extraction_document(self.extractor, ident, text, wanted, fmt)
               for (ident, _, wanted), text in zip(items, texts, strict=True)]
        audit.append(AuditRecord(actor, "extract", "ok",
                                 input_hash=sha256_hex("\x00".join(t for _, t, _ in items)),
                                 output_hash=sha256_hex("\n".join(json.dumps(o) for o in out)),
                                 detail=f"{len(items)} texts, {fmt}"
                                        + (", assumed de-identified" if assume_deidentified else ", de-identified")))
        return out
