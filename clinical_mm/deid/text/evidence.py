"""The final say on each span the recognizers found: its words weighed against a clinical vocabulary, its
context against the shapes numbers take in ICU notes, and the site's allow-list.

Real ICU notes are written in shorthand ("GU", "MAE", "LEVO", "ABD SOFT") that name models and lexicons take
for names. A name or place found without a strong cue loses the words of it that are clinical terms
(:func:`~clinical_mm.deid.text.lexicons.clinical_terms`) and is dropped when none is left; what is left keeps
its score where it is a known name or place, and is scored down where only unknown words are left (in notes,
mostly misspellings: "UNRESONSIVE", "SOMNULENT"). Spans of a strong cue (:mod:`.recognizers.cue_recognizer`)
and of the site's deny-list keep their score. A date in a ventilator setting or a strength ("PS 10/5",
"5/5 strength", "1/2 NS") is no date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from clinical_mm.deid.text.lexicons import (
    clinical_terms,
    common_names,
    given_names,
    name_lexicon,
    place_gazetteer,
    stop_words,
    upper_case_note,
)
from clinical_mm.deid.text.text_span import TextSpan

__all__ = ["STRONG_RECOGNIZERS", "STRONG_RULE", "UNKNOWN_WORDS_FACTOR", "Evidence"]

#: recognizers whose spans carry their own strong cue and are not weighed again
STRONG_RECOGNIZERS = frozenset({"CueRecognizer", "PlaceLexiconRecognizer", "SiteTerms"})
#: how a recognizer's rule name ends when its context is a strong cue (a title, a credential, a labelled field)
STRONG_RULE = "after a strong cue"
#: the score of a name or place left with only words no list knows is multiplied by this
UNKNOWN_WORDS_FACTOR = 0.55
_NAME_TYPES = frozenset({"PERSON", "LOCATION", "HOSPITAL", "ORGANIZATION", "CITY", "NRP", "STREET"})
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")
#: what precedes a number pair that is a setting or a score, not a date
_NOT_DATE_BEFORE = re.compile(r"(?<![A-Za-z])(?i:cpap|peep|ps|psv|bipap|ipap|epap|simv|imv|ac|vent|settings?|strength|grips?|"
                              r"motor|ratio|x|pap|pressure|support|cont|mask)[\s:=]*$")
_NOT_DATE_AFTER = re.compile(r"^\s*(?i:ns|nss|strength|str|tab|tabs|amp|peep|ps|cpap|bipap|psv|and\s+\d)\b")
_FRACTIONS = frozenset({"1/2", "1/3", "1/4", "2/3", "3/4", "5/5"})
_INSTITUTIONS = frozenset({"HOSPITAL", "ORGANIZATION", "STREET"})
_FUNCTION_WORDS = frozenset("per in on at to of and the with for by from as is was".split())


class Evidence:
    """Weighs a span: keeps it, trims it to its name words, scores it down or drops it.

    Parameters
    ----------
    allowed
        Words (lower case) that are never PHI by themselves unless a strong cue says so: the vocabulary's words.
    site_allowed
        The site's allow-list (lower case words): never PHI, whatever the cue.
    """

    def __init__(self, allowed: Iterable[str] = (), site_allowed: Iterable[str] = ()) -> None:
        self.terms = clinical_terms()
        self.first, self.last = name_lexicon()
        self.places = place_gazetteer()
        self.common_names = common_names()
        self.given = given_names()
        self.stop = stop_words()
        self.allowed = frozenset(allowed)
        self.site_allowed = frozenset(site_allowed)

    def weigh(self, text: str, span: TextSpan) -> list[TextSpan]:
        """``span`` as it stands, trimmed, scored down, or dropped (an empty list)."""
        if span.recognizer == "SiteTerms":
            return [span]
        words = list(_WORD.finditer(text, span.start, span.end))
        lower = [w.group(0).lower() for w in words]
        if words and all(w in self.site_allowed for w in lower):
            return []
        if span.entity_type == "PERSON" and words and all(w in self.stop or w in _FUNCTION_WORDS for w in lower):
            return []  # "REPORT GIVEN TO RN": no initials
        if span.recognizer in STRONG_RECOGNIZERS:
            return [span]
        if span.rule.endswith(STRONG_RULE):  # the name after the cue, without the clinical words after it
            last = len(words)
            while last > 1 and self._term_only(words[last - 1].group(0)) and span.entity_type == "PERSON" \
                    and text[words[last - 2].end():words[last - 1].start()].strip(" .") == "":
                last -= 1
            return [span] if last == len(words) else [TextSpan(span.start, words[last - 1].end(), span.entity_type,
                                                               span.score, span.recognizer, span.rule, span.context)]
        if words and all(w in self.allowed for w in lower):
            return []
        if span.entity_type == "DATE":
            return [] if self._not_a_date(text, span) else [span]
        if span.entity_type == "ADDRESS" and any(w in _FUNCTION_WORDS for w in lower):
            return []  # "120 PER DR", "0 TRACH IN PLACE": a number and words, no street
        if span.entity_type == "IP_ADDRESS" and int(text[span.start:span.end].split(".")[0]) < 10:
            return []  # "7.45.34.7": a blood gas
        if span.entity_type not in _NAME_TYPES:
            return [span]
        if span.entity_type in _INSTITUTIONS:  # "Good Samaritan Hospital": the institution's words are its name
            # "RAVENSWORTH AT HARBORVIEW MEDICAL CENTER": the name starts after the last function word
            lead = max((i + 1 for i, w in enumerate(lower[:-1]) if w in self.stop and w not in ("of", "the")),
                       default=0) if upper_case_note(text) else 0
            return [TextSpan(words[lead].start(), span.end, span.entity_type, span.score, span.recognizer, span.rule,
                             span.context)] if lead else [span]
        kept = [w for w in words if not self._term_only(w.group(0))]
        if not kept:
            return []
        start, end = kept[0].start(), kept[-1].end()
        if all(w.group(0).lower() in self.terms for w in kept) and (len(kept) == 1 or upper_case_note(text)):
            return []  # "BROWN", "Will": a term and a name, alone or in UPPER CASE, without a strong cue
        known = all(self._known_name(w.group(0)) for w in kept)
        score = span.score if known else span.score * UNKNOWN_WORDS_FACTOR
        why = span.rule if known else f"{span.rule}; only unknown words: score x{UNKNOWN_WORDS_FACTOR}"
        return [TextSpan(start, end, span.entity_type, score, span.recognizer, why, span.context)]

    def _term_only(self, word: str) -> bool:
        """A clinical term that is no common name ("levo", "abd"; not "lee", "brown", "mary": those are
        terms and names both, and stay with the name they are part of)."""
        w = word.lower().strip("'-")
        return w in self.terms and w not in self.common_names and w not in self.given

    def _known_name(self, word: str) -> bool:
        w = word.lower().strip("'-")
        if w.endswith("'s"):
            w = w[:-2]
        return w in self.first or w in self.last or w in self.places

    @staticmethod
    def _not_a_date(text: str, span: TextSpan) -> bool:
        """A number pair that is a setting, a strength or a fraction, by what stands around it."""
        value = text[span.start:span.end].strip()
        if "/" not in value or value.count("/") > 1:
            return False
        before, after = text[max(0, span.start - 12):span.start], text[span.end:span.end + 12]
        if value in _FRACTIONS and not re.search(r"(?i:on|since|dated?|from|until|of)\s*$", before):
            return True
        return bool(_NOT_DATE_BEFORE.search(before) or _NOT_DATE_AFTER.match(after))
