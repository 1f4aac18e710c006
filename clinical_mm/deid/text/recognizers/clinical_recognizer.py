"""The base of the clinical recognizers: a presidio recognizer that reads the note as written."""

from __future__ import annotations

from clinical_mm.deid.text.presidio_loader import EntityRecognizer

__all__ = ["ClinicalRecognizer"]


class ClinicalRecognizer(EntityRecognizer):
    """A PHI recognizer that reads the note as written and whose spans are PHI as found.

    The text de-identifier runs presidio's general-purpose recognizers (spaCy's NER, e-mail, URL, ...) on the
    view its NER reads (UPPER CASE notes in title case) and filters what they find (minimum score,
    allow-list, names made only of known words). A clinical recognizer carries its context in its own
    expressions and word lists, so it reads the original text and its spans are kept as they are. A site
    recognizer subclasses it to be treated the same way; any other recognizer of the registry is run and
    filtered as presidio's own are.
    """

    def load(self) -> None:
        """Nothing to load: a clinical recognizer reads its expressions and lists in its constructor."""
