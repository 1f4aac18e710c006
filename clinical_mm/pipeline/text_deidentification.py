"""The text de-identifier as the pipeline composes it: the extraction vocabulary's words on its allow-list, the
site's PHI recognizers in its registry, the site's term file and score threshold.

Words of the vocabulary's terms (drugs and brands, problems, procedures, devices, anatomy, labs) are what the
de-identifier's models take for names or places ("Glipizide", "Biopsy", "FEVER") and what extraction must
still see. deid does not import extraction, so the words reach the de-identifier here: those of the shipped
vocabulary with the site's file on top (``CLINICAL_MM_VOCABULARY``), the same for every command that
de-identifies text. The site's recognizer file (``CLINICAL_MM_RECOGNIZERS``), its allow/deny term file
(``CLINICAL_MM_DEID_TERMS``) and its score threshold (``CLINICAL_MM_DEID_THRESHOLD``) are passed through likewise.
"""

from __future__ import annotations

from pathlib import Path

from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid.text.site_terms import SiteTerms
from clinical_mm.deid.text.text_deidentifier import DEFAULT_THRESHOLD, TextDeidentifier
from clinical_mm.extraction.vocabulary import Vocabulary

__all__ = ["allowed_terms", "site_terms", "site_vocabulary", "text_deidentifier"]


def site_vocabulary(extra: Path | None = None) -> Vocabulary:
    """The shipped vocabulary with a site's vocabulary file (``CLINICAL_MM_VOCABULARY``) on top, when given."""
    return Vocabulary.load([extra] if extra else [])


def allowed_terms(vocabulary: Vocabulary | None = None) -> frozenset[str]:
    """The words of ``vocabulary``'s terms (default: the shipped vocabulary), for the de-identifier's
    ``allowed_terms`` (a :class:`~clinical_mm.deid.dicom_deidentifier.DicomDeidentifier`'s too)."""
    return (vocabulary or Vocabulary.shipped()).words()


def site_terms(terms: Path | SiteTerms | None) -> SiteTerms | None:
    """The site's allow/deny terms: read from the term file (``CLINICAL_MM_DEID_TERMS``) when ``terms`` is a path
    (:class:`~clinical_mm.core.errors.ConfigurationError` says what is wrong with it), else ``terms`` itself."""
    return SiteTerms.from_file(terms) if isinstance(terms, Path) else terms


def text_deidentifier(key: PseudonymKey, vocabulary: Vocabulary | None = None, recognizers: Path | None = None,
                      terms: Path | SiteTerms | None = None, threshold: float | None = None) -> TextDeidentifier:
    """The text de-identifier with ``key``, the words of ``vocabulary`` (default: the shipped one) allowed, the
    site's ``recognizers`` file applied to its registry, the site's ``terms`` (its term file, or the terms read
    from it already) and the score ``threshold`` (None: the de-identifier's default)."""
    return TextDeidentifier(key, allowed_terms=allowed_terms(vocabulary), recognizers=recognizers,
                            site_terms=site_terms(terms),
                            threshold=DEFAULT_THRESHOLD if threshold is None else threshold)
