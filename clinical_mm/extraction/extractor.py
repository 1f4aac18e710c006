"""Clinical text -> asserted mentions of the terms asked for (targets), with sections and sentences.

A target is found wherever its words occur as whole words (case and white space ignored); each occurrence
is asserted by ConText within its sentence, with its section's default (see
:mod:`clinical_mm.extraction.context`). Offsets are into the text given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clinical_mm.extraction.context import Assertion, ConText
from clinical_mm.extraction.text import Sentence, find_sections, split_sentences

__all__ = ["ClinicalExtractor", "TargetMention"]


@dataclass(frozen=True)
class TargetMention:
    """One occurrence of a target: [start, end) in the text, its assertion, section and the deciding cues."""

    target: str
    start: int
    end: int
    assertion: Assertion
    section: str
    cues: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"target": self.target, "found": True, "start": self.start, "end": self.end,
                "assertion": self.assertion, "section": self.section, "cues": list(self.cues)}


def _target_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<![A-Za-z0-9])" + r"\s+".join(words) + r"(?![A-Za-z0-9])", re.I)


class ClinicalExtractor:
    def __init__(self, context: ConText | None = None) -> None:
        self.context = context or ConText()

    def sentences(self, text: str) -> list[Sentence]:
        return split_sentences(text, find_sections(text))

    def assert_spans(self, text: str, spans: list[tuple[int, int]], sentences: list[Sentence] | None = None
                     ) -> list[tuple[Assertion, str, tuple[str, ...]]]:
        """(assertion, section, cues) of each span [start, end) of ``text``."""
        sentences = sentences if sentences is not None else self.sentences(text)
        out: list[tuple[Assertion, str, tuple[str, ...]]] = []
        for start, end in spans:
            sentence = next((s for s in sentences if s.start <= start < s.end), None)
            if sentence is None:  # inside a header line: assert it on its own line
                line_start = text.rfind("\n", 0, start) + 1
                line_end = text.find("\n", end)
                sentence = Sentence(line_start, len(text) if line_end == -1 else line_end, "none")
            local = [(max(a, sentence.start) - sentence.start, min(b, sentence.end) - sentence.start)
                     for a, b in [(start, end)]]
            (assertion, triggers), = self.context.assert_mentions(text[sentence.start:sentence.end], local,
                                                                 sentence.section)
            cues = tuple(text[sentence.start + t.start:sentence.start + t.end] for t in triggers)
            out.append((assertion, sentence.section, cues))
        return out

    def find_targets(self, text: str, targets: list[str]) -> list[TargetMention | dict[str, object]]:
        """Each occurrence of each target, asserted; a target not in the text gives ``{"target", "found":
        False}``."""
        sentences = self.sentences(text)
        out: list[TargetMention | dict[str, object]] = []
        for target in targets:
            spans = [(m.start(), m.end()) for m in _target_pattern(target).finditer(text)] if target.strip() else []
            if not spans:
                out.append({"target": target, "found": False})
                continue
            for (start, end), (assertion, section, cues) in zip(spans, self.assert_spans(text, spans, sentences),
                                                                  strict=True):
                out.append(TargetMention(target, start, end, assertion, section, cues))
        return out
