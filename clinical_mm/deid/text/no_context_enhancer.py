"""presidio's context step, switched off for the text de-identifier."""

from __future__ import annotations

from typing import Any

from clinical_mm.deid.text.presidio_loader import ContextAwareEnhancer

__all__ = ["NoContextEnhancer"]


class NoContextEnhancer(ContextAwareEnhancer):
    """Leaves scores as the recognizers gave them: the clinical recognizers carry their context in their
    expressions, and presidio's lemma-based boost would need spaCy's lemmatizer (switched off) and only
    costs time."""

    def __init__(self) -> None:
        super().__init__(0.0, 0.0, 0, 0)

    def enhance_using_context(self, text: str, raw_results: list[Any], nlp_artifacts: Any, recognizers: list[Any],
                              context: list[str] | None = None) -> list[Any]:
        return raw_results
