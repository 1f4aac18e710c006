"""A PHI span the text de-identifier found, with why it was taken."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TextSpan"]


@dataclass(frozen=True)
class TextSpan:
    """A PHI span in the original text: [start, end), its type and score, and why it was taken: the recognizer,
    its rule, and the context words (the cue, never PHI itself) that decided it."""

    start: int
    end: int
    entity_type: str
    score: float
    recognizer: str = ""
    rule: str = ""
    context: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "score": round(self.score, 3)}

    def explain(self) -> dict[str, object]:
        """:meth:`to_dict` with the recognizer, the rule and the context words (for ``deid text --explain``)."""
        return {**self.to_dict(), "recognizer": self.recognizer, "rule": self.rule, "context": list(self.context)}
