"""The extraction vocabulary: terms -> coded concepts (ICD-10-CM problems, RxNorm drugs, LOINC labs and vitals;
procedures, devices and anatomy by name), and the matcher that finds them in text.

The shipped vocabulary is ``clinical_mm/data/vocabulary.tsv`` (licences in ``VOCABULARY.md`` beside it); a site
adds or overrides terms with files of the same form (``--vocabulary FILE``, ``CLINICAL_MM_VOCABULARY``): a term a
later file lists takes that file's concept.

Matching is by words: a term matches where its words occur in order separated only by white space or hyphens
("ground-glass opacity" = "ground glass opacity"), case ignored, the last word allowed a plural ending; a term
written ``=TERM`` matches in that exact case only (``=PE`` is pulmonary embolism, "pe" is not). The longest
term at a position wins and matches do not overlap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from clinical_mm.core.errors import ConfigurationError

__all__ = ["CODE_SYSTEMS", "Concept", "ConceptMatch", "ENTITY_TYPES", "Vocabulary"]

EntityType = Literal["problem", "medication", "lab", "vital", "measurement", "procedure", "device", "anatomy"]
ENTITY_TYPES: tuple[EntityType, ...] = ("problem", "medication", "lab", "vital", "measurement", "procedure",
                                        "device", "anatomy")

#: the vocabulary's system names -> their FHIR system URIs
CODE_SYSTEMS: dict[str, str] = {
    "ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "RxNorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "LOINC": "http://loinc.org",
}
_CODE_FORMS = {
    "ICD-10-CM": re.compile(r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"),
    "RxNorm": re.compile(r"[1-9][0-9]{0,8}"),
    "LOINC": re.compile(r"[1-9][0-9]{0,6}-[0-9]"),
}
_WORD = re.compile(r"[A-Za-z0-9]+")
_JOINER = re.compile(r"[ \t\-]*")  # what may stand between two words of one term (not a line break)


@dataclass(frozen=True)
class Concept:
    """A coded (or named) concept: its entity type, code system (None: no code), code and display."""

    type: EntityType
    system: str | None
    code: str | None
    display: str

    def coding(self) -> dict[str, str] | None:
        if self.system is None or self.code is None:
            return None
        return {"system": CODE_SYSTEMS[self.system], "code": self.code, "display": self.display}


@dataclass(frozen=True)
class ConceptMatch:
    start: int
    end: int
    concept: Concept


def _plural_stems(word: str) -> list[str]:
    out = []
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.append(word[:-2])
    if word.endswith("s") and len(word) > 3:
        out.append(word[:-1])
    return out


class Vocabulary:
    """Terms -> concepts, and the word matcher (see the module's text)."""

    def __init__(self, entries: Iterable[tuple[str, Concept]]) -> None:
        self._folded: dict[tuple[str, ...], Concept] = {}
        self._exact: dict[tuple[str, ...], Concept] = {}
        self.concepts: list[Concept] = []
        seen: set[Concept] = set()
        for term, concept in entries:
            exact = term.startswith("=")
            words = tuple(_WORD.findall(term[1:] if exact else term))
            if not words:
                continue
            if exact:
                self._exact[words] = concept
            else:
                self._folded[tuple(w.lower() for w in words)] = concept
            if concept not in seen:
                seen.add(concept)
                self.concepts.append(concept)
        self._longest = max((len(k) for k in (*self._folded, *self._exact)), default=0)

    def words(self) -> frozenset[str]:
        """Every word (lower case) of the terms matched regardless of case ("=PE" style terms are left out)."""
        return frozenset(w for key in self._folded for w in key)

    @classmethod
    def shipped(cls) -> Vocabulary:
        return cls.load(())

    @classmethod
    def load(cls, extra_files: Iterable[Path]) -> Vocabulary:
        """The shipped vocabulary, then each file in ``extra_files`` (same form) on top of it."""
        shipped = resources.files("clinical_mm").joinpath("data/vocabulary.tsv").read_text("utf-8")
        entries = list(_parse(shipped, "the shipped vocabulary"))
        for path in extra_files:
            try:
                text = Path(path).read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"vocabulary file {path}: cannot read it ({type(exc).__name__})") from None
            entries.extend(_parse(text, f"vocabulary file {path}"))
        return cls(entries)

    def match(self, text: str) -> list[ConceptMatch]:
        """The terms in ``text``, left to right, longest first at each position, not overlapping."""
        words = list(_WORD.finditer(text))
        # joined[k]: words k and k + 1 may belong to one term
        joined = [_JOINER.fullmatch(text, a.end(), b.start()) is not None
                  for a, b in zip(words, words[1:], strict=False)]
        out: list[ConceptMatch] = []
        i = 0
        while i < len(words):
            found = None
            for n in range(min(self._longest, len(words) - i), 0, -1):
                if not all(joined[i:i + n - 1]):
                    continue
                span = words[i:i + n]
                found = self._lookup([w.group() for w in span])
                if found is not None:
                    out.append(ConceptMatch(span[0].start(), span[-1].end(), found))
                    i += n
                    break
            if found is None:
                i += 1
        return out

    def _lookup(self, words: list[str]) -> Concept | None:
        concept = self._exact.get(tuple(words))
        if concept is not None:
            return concept
        folded = [w.lower() for w in words]
        concept = self._folded.get(tuple(folded))
        if concept is not None:
            return concept
        for stem in _plural_stems(folded[-1]):
            concept = self._folded.get((*folded[:-1], stem))
            if concept is not None:
                return concept
        return None


def _parse(text: str, source: str) -> Iterable[tuple[str, Concept]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise ConfigurationError(f"{source}, line {number}: expected 5 tab-separated fields "
                                     f"(type, system, code, display, terms), found {len(fields)}")
        kind, system, code, display, terms = (f.strip() for f in fields)
        if kind not in ENTITY_TYPES:
            raise ConfigurationError(f"{source}, line {number}: unknown type {kind!r}; one of {', '.join(ENTITY_TYPES)}")
        if system == "-":
            concept = Concept(kind, None, None, display)
        elif system in _CODE_FORMS:
            if not _CODE_FORMS[system].fullmatch(code):
                raise ConfigurationError(f"{source}, line {number}: {code!r} is not a {system} code")
            concept = Concept(kind, system, code, display)
        else:
            raise ConfigurationError(f"{source}, line {number}: unknown code system {system!r}; one of "
                                     f"{', '.join(CODE_SYSTEMS)} or -")
        for term in [display, *terms.split("|")]:
            if term.strip():
                yield term.strip(), concept
