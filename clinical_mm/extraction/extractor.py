"""Clinical text -> coded, asserted entities and asserted mentions of the terms asked for (targets).

Entities are the vocabulary's terms found in the text (:mod:`clinical_mm.extraction.vocabulary`): problems,
medications with their instructions, labs and vital signs with their values, measurements (sizes, ejection
fraction), procedures, devices and anatomy, each with its laterality where the text gives one. A lab or vital
sign counts only with a value after it ("K 5.8", "troponin negative"); a size ("8 mm") is a measurement of
the problem or anatomy it stands next to.

A target is found wherever its words occur as whole words (case and white space ignored).

Every entity and target occurrence is asserted by ConText within its sentence, with its section's default
(see :mod:`clinical_mm.extraction.context`). Offsets are into the text given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clinical_mm.extraction.attributes import find_sizes, laterality_near, parse_sig, parse_value
from clinical_mm.extraction.context import Assertion, ConText
from clinical_mm.extraction.text import Sentence, find_sections, split_sentences
from clinical_mm.extraction.vocabulary import Concept, EntityType, Vocabulary

__all__ = ["ClinicalExtractor", "Entity", "TargetMention"]

_DISTANCE = re.compile(r"\s*(?:above|below|beyond|from|proximal to|distal to|into|within|past|short of)\b", re.I)
_MEASURED = re.compile(r"[\s,]*(?:(?:which|that)\s+)?(?:measuring|measures|measured|sized|of|is|at)?\s*"
                       r"(?:approximately|about|up to|roughly|~)?\s*", re.I)
_SIG_VERB = re.compile(r"\s*(?:take|inhale|apply|inject|instill|use|give|place|dissolve|chew)\b", re.I)
_SIDED: frozenset[str] = frozenset({"problem", "anatomy", "device", "procedure", "measurement"})


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


@dataclass(frozen=True)
class Entity:
    """An entity found in the text: [start, end) of its name, its concept, assertion, section and deciding cues,
    and what the text says about it (``attributes``: a medication's dose, route, frequency, duration and
    as-needed reason; a lab's or vital's value and unit; a measurement's value, unit and what it measures;
    laterality)."""

    type: EntityType
    text: str
    start: int
    end: int
    concept: Concept | None
    assertion: Assertion
    section: str
    cues: tuple[str, ...]
    attributes: dict[str, object]

    def to_dict(self) -> dict[str, object]:
        return {"type": self.type, "text": self.text, "start": self.start, "end": self.end,
                "code": self.concept.coding() if self.concept else None,
                "concept": self.concept.display if self.concept else None,
                "assertion": self.assertion, "section": self.section, "cues": list(self.cues), **self.attributes}


def _target_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<![A-Za-z0-9])" + r"\s+".join(words) + r"(?![A-Za-z0-9])", re.I)


class ClinicalExtractor:
    def __init__(self, context: ConText | None = None, vocabulary: Vocabulary | None = None) -> None:
        self.context = context or ConText()
        self.vocabulary = vocabulary or Vocabulary.shipped()

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

    def document(self, ident: str, text: str, targets: list[str]) -> dict[str, object]:
        """One document's output: ``{"id", "entities", "targets"}``."""
        entities = [e.to_dict() for e in self.entities(text)]
        found = [m if isinstance(m, dict) else m.to_dict() for m in self.find_targets(text, targets)]
        return {"id": ident, "entities": entities, "targets": found}

    def entities(self, text: str) -> list[Entity]:
        """The vocabulary's entities in ``text`` with their attributes and assertions, in text order."""
        sentences = self.sentences(text)
        matches = self.vocabulary.match(text)

        def bounds(pos: int) -> tuple[int, int]:
            s = next((s for s in sentences if s.start <= pos < s.end), None)
            if s is not None:
                return s.start, s.end
            line_end = text.find("\n", pos)
            return text.rfind("\n", 0, pos) + 1, len(text) if line_end == -1 else line_end

        found: list[tuple[int, int, EntityType, Concept | None, dict[str, object]]] = []
        value_spans: list[tuple[int, int]] = []
        for i, m in enumerate(matches):
            kind = m.concept.type
            lo, hi = bounds(m.start)
            attrs: dict[str, object] = {}
            if kind == "medication":
                line_end = text.find("\n", m.end)
                line_end = len(text) if line_end == -1 else line_end
                nxt = next((n.start for n in matches[i + 1:] if n.concept.type == "medication"), line_end)
                # "Atorvastatin 40 mg tablet. Take 1 tablet by mouth at bedtime.": the instructions go on
                end = hi
                verb = _SIG_VERB.match(text, end)
                while end < line_end and verb is not None:
                    end = bounds(verb.end())[1]
                    verb = _SIG_VERB.match(text, end)
                limit = min(nxt, max(end, hi), line_end)
                attrs.update(parse_sig(text, m.end, limit).to_dict())
            elif kind in ("lab", "vital", "measurement"):
                nxt = next((n.start for n in matches[i + 1:]), hi)
                value = parse_value(text, m.end, min(nxt, hi))
                if value is None or (kind == "measurement" and not value.numeric):
                    continue  # a lab or vital named without a value is not a result
                attrs["value"] = value.value
                if value.unit:
                    attrs["unit"] = value.unit
                value_spans.append((value.start, value.end))
            if kind in _SIDED:
                side = laterality_near(text, m.start, m.end, lo, hi)
                if side:
                    attrs["laterality"] = side
            found.append((m.start, m.end, kind, m.concept, attrs))
        # sizes: a measurement of the problem or anatomy next to it ("8 mm nodule", "mass measuring 2 x 3 cm")
        for sentence in sentences:
            lo, hi = sentence.start, sentence.end
            for size in find_sizes(text, lo, hi):
                if any(a <= size.start < b for a, b in value_spans):
                    continue
                subjects = [f for f in found if f[2] in ("problem", "anatomy", "device") and lo <= f[0] < hi]
                # "4 cm above the carina" is a distance: it measures what stands before it (the tube)
                distance = _DISTANCE.match(text, size.end) is not None
                after = [f for f in subjects if f[0] >= size.end and len(text[size.end:f[0]].split()) <= 3
                         and not distance]
                before = [f for f in subjects if f[1] <= size.start and len(text[f[1]:size.start].split()) <= 6]
                # "a mass measuring 2 x 3 cm in the upper lobe" measures the mass, not the lobe
                named = [f for f in before if _MEASURED.fullmatch(text, f[1], size.start)]
                subject = named[-1] if named else after[0] if after else before[-1] if before else None
                attrs = {"value": " x ".join(size.dims), "unit": size.unit}
                if subject is not None:
                    attrs["of"] = text[subject[0]:subject[1]]
                    attrs["of_start"] = subject[0]
                found.append((size.start, size.end, "measurement", None, attrs))
        found.sort(key=lambda f: f[0])
        asserted = self.assert_spans(text, [(a, b) for a, b, *_ in found], sentences)
        return [Entity(kind, text[a:b], a, b, concept, assertion, section, cues, attrs)
                for (a, b, kind, concept, attrs), (assertion, section, cues) in zip(found, asserted, strict=True)]
