"""Sections and sentences of clinical notes and radiology reports, as offsets into the text.

Sections: a header in colon style (``Past Medical History:``, ``IMPRESSION: ...`` with text after it on
the same line) when its name is a known section, or a line that is a header on its own (upper case, or
any known name alone on its line, with or without the colon). Known names map to one canonical section
(``hpi``, ``pmh``, ``medications``, ``allergies``, ``family_history``, ``findings``, ``impression``,
``assessment_plan``, ...); an unknown upper-case header is ``other``.

Sentences: ends at ``.``, ``!`` or ``?`` followed by a space and a word that starts a sentence (not after
an abbreviation such as ``Dr.`` or ``b.i.d.``, not inside a number), at ``;`` never (a clause, not a
sentence), at a blank line, at a section header, and at a line break unless the next line carries on
in lower case (a wrapped line). List items on their own lines are sentences of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SECTION_NAMES", "Section", "Sentence", "find_sections", "split_sentences"]

#: canonical section -> the header names that mean it (lower case, without the colon)
SECTION_NAMES: dict[str, tuple[str, ...]] = {
    "chief_complaint": ("chief complaint", "cc", "reason for visit", "reason for admission"),
    "hpi": ("history of present illness", "hpi", "present illness", "history of the present illness",
            "interval history", "subjective"),
    "pmh": ("past medical history", "pmh", "pmhx", "medical history", "past history", "past medical hx",
            "problem list", "active problems", "past medical and surgical history"),
    "psh": ("past surgical history", "psh", "surgical history", "prior surgeries"),
    "medications": ("medications", "meds", "current medications", "home medications", "outpatient medications",
                    "medications on admission", "admission medications", "discharge medications",
                    "current outpatient medications", "medication list", "inpatient medications"),
    "allergies": ("allergies", "allergy", "drug allergies", "allergies and adverse reactions", "adverse reactions"),
    "family_history": ("family history", "fh", "fhx", "family hx", "family medical history"),
    "social_history": ("social history", "sh", "social hx", "shx"),
    "ros": ("review of systems", "ros"),
    "physical_exam": ("physical exam", "physical examination", "exam", "examination", "pe", "objective"),
    "vitals": ("vital signs", "vitals"),
    "labs": ("labs", "laboratory", "laboratory data", "lab results", "pertinent results", "laboratory results",
             "data"),
    "indication": ("indication", "clinical indication", "clinical history", "reason for exam", "reason for study",
                   "history"),
    "technique": ("technique", "procedure"),
    "comparison": ("comparison", "comparisons", "prior studies"),
    "findings": ("findings", "finding", "report"),
    "impression": ("impression", "impressions", "conclusion", "conclusions", "summary", "opinion"),
    "assessment_plan": ("assessment and plan", "assessment & plan", "assessment/plan", "a/p", "a&p", "assessment",
                        "plan", "impression and plan", "impression/plan", "recommendations"),
    "hospital_course": ("hospital course", "brief hospital course", "course"),
    "discharge_instructions": ("discharge instructions", "instructions", "patient instructions", "followup",
                               "follow-up", "follow up", "return precautions"),
}
_NAME_TO_SECTION: dict[str, str] = {}
for _section, _names in SECTION_NAMES.items():
    for _name in _names:
        _NAME_TO_SECTION.setdefault(_name, _section)

_LINE = re.compile(r"^.*$", re.M)
_HEADER_NAME = re.compile(r"[ \t]*(?:#+[ \t]*)?([A-Za-z][A-Za-z &/()'-]{0,48})[ \t]*$")
_ABBREVIATIONS = frozenset({
    "dr", "mr", "mrs", "ms", "drs", "prof", "st", "vs", "e.g", "i.e", "approx", "etc", "no", "fig", "pt", "pts",
    "b.i.d", "t.i.d", "q.i.d", "q.d", "p.o", "p.r", "q.h.s", "h.s", "a.m", "p.m", "mg", "mcg", "ml", "cm", "mm",
    "yr", "yrs", "wk", "wks", "hr", "hrs", "min", "sec", "dx", "hx", "tx", "sx", "rx", "fx", "h/o", "s/p", "c/o",
    "inc", "co", "jr", "sr", "u.s", "q", "cf", "viz", "al", "ca", "ext", "lt", "rt", "bilat", "appt", "dept",
})
_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z./]*)$")
_LIST_MARKER = re.compile(r"\s*(?:[-*\u2022]|\d{1,2}[.)]|[a-z][.)])(?=\s|$)")


@dataclass(frozen=True)
class Section:
    """A section: its canonical name, the header as written, and [start, end) of its body in the text."""

    name: str
    header: str
    start: int
    end: int


@dataclass(frozen=True)
class Sentence:
    """[start, end) of a sentence in the text (surrounding white space left out) and its section's name."""

    start: int
    end: int
    section: str


def _canonical(name: str) -> str | None:
    key = re.sub(r"\s+", " ", name.strip().lower()).rstrip(" .")
    return _NAME_TO_SECTION.get(key)


def _headers(text: str) -> list[tuple[int, int, str, str]]:
    """(line start, body start, canonical section, header) for each header line."""
    out = []
    for line in _LINE.finditer(text):
        before, colon, rest = line.group().partition(":")
        m = _HEADER_NAME.fullmatch(before)
        if m is None:
            continue
        name, alone = m.group(1).strip(), not rest.strip()
        canonical = _canonical(name)
        letters = re.sub(r"[^A-Za-z]", "", name)
        if canonical is None and alone and letters.isupper() and len(letters) > 3 and (colon or " " in name):
            canonical = "other"  # an unknown upper-case header alone on its line
        if canonical is None or not (colon or alone):
            continue
        body = line.end() if alone else line.start() + len(before) + 1
        out.append((line.start(), body, canonical, name))
    return out


def find_sections(text: str) -> list[Section]:
    """The sections of ``text`` in order; text before the first header is section ``none``."""
    headers = _headers(text)
    sections: list[Section] = []
    if not headers or headers[0][0] > 0 and text[:headers[0][0]].strip():
        sections.append(Section("none", "", 0, headers[0][0] if headers else len(text)))
    for i, (_, body, name, header) in enumerate(headers):
        end = headers[i + 1][0] if i + 1 < len(headers) else len(text)
        sections.append(Section(name, header, body, end))
    return sections


def _is_sentence_end(text: str, dot: int, after: int) -> bool:
    """Whether the punctuation at ``dot`` (followed by white space up to ``after``) ends a sentence."""
    line_start = text.rfind("\n", 0, dot) + 1
    if text[dot] == "." and _LIST_MARKER.fullmatch(text[line_start:dot + 1]):
        return False  # "1." or "a." opening a list item
    if text[dot] == ".":
        word = _WORD_BEFORE.search(text, max(0, dot - 12), dot)
        if word and word.group(1).lower().rstrip(".") in _ABBREVIATIONS and not (text[dot - 1:dot].isdigit()):
            nxt = text[after:after + 1]
            if not (nxt.isupper() and word.group(1).lower() in ("etc", "al")):
                return False
    nxt = text[after:after + 1]
    return not nxt or not nxt.islower()


def _split_block(text: str, start: int, end: int, section: str) -> list[Sentence]:
    """Sentences in text[start:end] (one section's body)."""
    cuts: list[int] = []
    # line breaks: a blank line, a list item, or a next line that does not carry on in lower case
    pos = start
    while (nl := text.find("\n", pos, end)) != -1:
        line_after_start = nl + 1
        line_after = text[line_after_start:text.find("\n", line_after_start, end) if text.find(
            "\n", line_after_start, end) != -1 else end]
        stripped = line_after.lstrip()
        if not stripped or _LIST_MARKER.match(line_after) or not stripped[:1].islower() \
                or not text[pos:nl].strip():
            cuts.append(line_after_start)
        pos = line_after_start
    for m in _END.finditer(text, start, end):
        after = m.end()
        while after < end and text[after] in " \t":
            after += 1
        if after < end and text[after] != "\n" and _is_sentence_end(text, m.start(), after):
            cuts.append(after)
    out = []
    bounds = [start, *sorted(set(cuts)), end]
    for a, b in zip(bounds, bounds[1:], strict=False):
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            out.append(Sentence(a, b, section))
    return out


def split_sentences(text: str, sections: list[Section] | None = None) -> list[Sentence]:
    """The sentences of ``text``, each tagged with its section; a header line is not a sentence."""
    sentences: list[Sentence] = []
    for section in sections if sections is not None else find_sections(text):
        sentences.extend(_split_block(text, section.start, section.end, section.name))
    return sentences
