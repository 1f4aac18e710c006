"""The final say on each span the recognizers found: its words weighed against a clinical vocabulary, its
context against the shapes numbers take in ICU notes, and the site's allow-list.

Real ICU notes are written in shorthand ("GU", "MAE", "LEVO", "ABD SOFT") that name models and lexicons take
for names. A name or place found without a strong cue loses its words that are clinical terms
(:func:`~clinical_mm.deid.text.lexicons.clinical_terms`) or English words, unless they are common names or
given names ("Lee", "Mary" stay with the name they stand in), and is dropped when none is left or when what is
left is one short abbreviation or English word ("MAE", "BROWN"). What is left keeps its score where it is a
known name or place, or a word that looks like a name and is no misspelt term; otherwise it is scored down
(mostly misspellings: "UNRESONSIVE", "Diltizem"). Spans of a strong cue (:mod:`.recognizers.cue_recognizer`,
a pattern's title, credential or labelled field) and of the site's deny-list keep their score; languages,
states and countries are no identifiers. A number pair in a ventilator setting, a pain score, a murmur grade or
a lab pair ("PS 10/5", "8/10 pain", "+3/6", "12.9/21.9") is no date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from clinical_mm.deid.text.lexicons import (
    EPONYM_PHRASES,
    HOSPITAL_ROOMS,
    ICU_SHORTHAND,
    INSTITUTION_NAME_WORDS,
    ROLE_WORDS,
    clinical_terms,
    common_names,
    given_names,
    languages,
    large_places,
    misspelt_term,
    name_lexicon,
    place_gazetteer,
    stop_words,
    upper_case_note,
    us_states,
)
from clinical_mm.deid.text.name_likeness import name_likeness
from clinical_mm.deid.text.text_span import TextSpan

__all__ = ["INITIALS_OF_A_TERM", "INITIALS_RULE", "STRONG_RECOGNIZERS", "STRONG_RULE", "TERM_INITIALS", "UNKNOWN_WORDS_FACTOR",
           "UNKNOWN_WORDS_RULE", "Evidence", "typing_slip"]

#: recognizers whose spans carry their own strong cue and are not weighed again
STRONG_RECOGNIZERS = frozenset({"CueRecognizer", "PlaceLexiconRecognizer", "SiteTerms"})
#: how a recognizer's rule name ends when its context is a strong cue (a title, a credential, a labelled field)
STRONG_RULE = "after a strong cue"
#: the rule of initials that a role or credential marks, which may be a function word's letters ("Sonographer IN.")
INITIALS_RULE = "initials by a role or credential"
#: the rule and score of a role's letters that are a clinical term too ("Tech SC.": subcutaneous, or Sven Czarnecki's
#: initials): under the default threshold, raised to a name's where a name found in the note has them as its initials
TERM_INITIALS = "after a role, a clinical term too"
INITIALS_OF_A_TERM = 0.3
#: the score of a name or place left with only words no list knows is multiplied by this
UNKNOWN_WORDS_FACTOR = 0.55
#: what the rule of a span scored down for its unknown words says
UNKNOWN_WORDS_RULE = "only unknown words"
_NAME_TYPES = frozenset({"PERSON", "LOCATION", "HOSPITAL", "ORGANIZATION", "CITY", "NRP", "STREET"})
_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|')*")  # letters of any script, inner apostrophes
#: what precedes a number pair that is a setting or a score, not a date
_NOT_DATE_BEFORE = re.compile(r"(?<![A-Za-z])(?i:cpap|peep|ps|psv|bipap|ipap|epap|simv|imv|ac|vent|settings?|strength|grips?|"
                              r"motor|ratio|x|pap|pressure|support|cont|mask|tof|train\s+of\s+four|dtrs?|reflexes|pulses?|"
                              r"edema|gcs|braden|cpot|cam|cam-icu|rass|flexion|extension)[\s:=]*$")
_NOT_DATE_AFTER = re.compile(r"^\s*(?i:ns|nss|strength|str|tab|tabs|amp|peep|ps|cpap|bipap|psv|and\s+\d(?!\d*/)|sets?|bottles?|doses?|"
                             r"features|"
                             r"(?:(?:harsh|soft|loud|blowing|crescendo|decrescendo|holo|pan)\w*\s+)?"
                             r"(?:systolic|diastolic|holosystolic|sem|murmur|mrmr|sm|dm))\b")  # "2/6 systolic murmur"
#: words of a strength examination, which a list of strengths out of 5 follows
_STRENGTH = re.compile(r"(?i)\b(?:strength|grips?|motor|flexion|extension|dorsiflexion)\b")
#: a pain score's words ("8/10 pain", "c/o CP 4/10")
_PAIN = re.compile(r"(?i)\b(?:pain|cp|c/o|discomfort|scale|rated|rates|developed|experiencing|ha|headache)\b")
#: ventilator words: a number pair after one is a setting ("SIMV/PS, 500X10, 40%, & 5/8")
_VENT = re.compile(r"(?i)\b(?:cpap|peep|psv?|bipap|ipap|epap|simv|imv|ac|vent(?:ed|ilator)?|flowby|wean(?:ed)?|"
                   r"trach|fio2|mode)\b")
#: a ventilator mode or its settings right before three or four numbers: settings, not a whole date ("SIMV 12/5/10/5")
_VENT_MODE_BEFORE = re.compile(r"(?i)\b(?:cpap|peep|psv?|bipap|simv|imv|ac|vent|settings?)[\s:=]*$")
#: cultures, before the day they were sent ("BC 8/30", "blood cultures 10/1")
_CULTURES = re.compile(r"(?i)\b(?:bc|bcx|b/c|cultures?|cx|cxs)[\s:,]*$")
#: the word right before a span, and right after it, on the same line ("New" of "New Hampshire")
_WORD_BEFORE = re.compile(r"([A-Za-z]+)[ \t]+$")
_WORD_AFTER = re.compile(r"[ \t]+([A-Za-z]+)")
#: k of n, a count of bottles or sets ("1/2", "2/2", "3/4")
_COUNT = re.compile(r"([0-4])/([1-4])")
#: a month and a year of two digits that can be no day ("10/98")
_MONTH_YEAR = re.compile(r"(?:0?[1-9]|1[0-2])/(?:3[2-9]|[4-9]\d)")
_FRACTIONS = frozenset({"1/2", "1/3", "1/4", "2/3", "3/4", "5/5"})
#: words right before a number pair that make it a date, over a pain score, a fraction or a ventilator sentence
#: around it ("TRACH PLACED 12/5", "ON CPAP SINCE 12/3", "EXTUBATED 2/3", "tues 3/4"); not "to" ("WEANED TO 10/5" is a
#: setting), nor "sat" or "sun" (saturation, sundowning)
_DATE_CUE = re.compile(r"(?i:\b(?:on|since|from|until|till|thru|through|dated?|placed|started|begun|began|stopped|"
                       r"done|sent|drawn|used|seen|extubated|intubated|reintubated|admitted|admission|transferred|"
                       r"inserted|removed|changed|d/?c'?d|last|prior|as of|extubation|intubation|reintubation|surgery|"
                       r"discharge|appointment|appt|addendum|transcribed|dictated|signed|due|readmitted|here|cxr|"
                       r"trach|peg|cabg|cath|echo|tte|tee|mri|hosp|hospital|pod\s*#?\s*\d{1,2}\s*\(?|planned|scheduled|"
                       r"booked|monday|tue|tues|tuesday|wed|wednesday|thu|thur|thurs|thursday|fri|friday|saturday|"
                       r"sunday))[\s:,]*$")
#: the next visit or appointment the number pair is the day of, further back in its clause (an initial's or a title's
#: period inside): "your next visit with S. Dimitriou is 1/3", "NEXT APPT WITH DR. YI IS 1/3"
_VISIT_IS = re.compile(r"(?i)\bnext\s+(?:visit|appointment|appt)\b(?:[^.\n;]|(?<=\b[A-Za-z])\.|(?<=\b[A-Za-z]{2})\.){0,40}"
                       r"\b(?:is|on)\s*$")
#: a duration after a number pair: no date ("next visit with PT is 1/2 hour")
_DURATION_AFTER = re.compile(r"(?i)\s*(?:hrs?|hours?|wks?|weeks?|days?|mins?|minutes?|months?|mos?)\b")
#: pupils: a number pair after them is their size ("PERRLA, 3/3", "pupils 2/2")
_PUPILS = re.compile(r"(?i)\b(?:perrla?|perrl|pearla?|perla?|perl|pupils?|pupil\s+size)\b(?:[\s,]+(?:equal|eq|bilat|"
                     r"bilaterally|round|reactive|brisk|briskly|sluggish|and|r|l|&|=))*[\s:,=]*$")
_INSTITUTIONS = frozenset({"HOSPITAL", "ORGANIZATION", "STREET"})
#: words before an institution's kind that name no institution, beyond the stop words ("his hospital", "on
#: hospice"): "found in hospital", "prior hospital", "seen at local clinic"
_NOT_INSTITUTION_NAMES = frozenset("found previous prior outside local home long prolonged recent seen taken given gone "
                                   "left brought sent kept held inpatient outpatient residential acute subacute "
                                   "chronic".split())
#: the words of an institution's kind, not of its name ("Lakeside Medical Center", "Our Lady of Mercy Hospital")
_INSTITUTION_KINDS = frozenset("hospital hosp medical center centre health healthcare system clinic infirmary nursing "
                               "home rehab rehabilitation hospice care surgical group".split())
_STREET_WORDS = frozenset("st street ave avenue rd road blvd boulevard lane ln dr drive way ct court pl place terrace "
                          "ter pkwy parkway hwy highway circle cir sq square".split())
#: a capitalised word of five letters or more with a vowel: in a mixed-case note, how a name is written
_CAPITALISED = re.compile(r"[A-Z](?=[a-z]*[aeiouy])[a-z]{4,}")
_HYPHENATED = re.compile(r"[^\W\d_](?:[^\W\d_]|['\-])*")
_TITLE_WORD = re.compile(r"[A-Z][a-z]+")
#: prepositions that bring in a person ("by", "with"): the name lexicon's word after one opens a name
_PERSON_PREPOSITIONS = frozenset("by with from to for per and".split())
#: words that put an institution's name in a sentence ("FOUND UNRESPONSIVE IN ST MARY HOSPITAL"); not "and",
#: "of", "our" ("SOLDIERS AND SAILORS MEMORIAL", "OUR LADY OF MERCY")
_SENTENCE_WORDS = frozenset("at to in from on with by for is was had has have were been into via per".split())
_VOWEL = re.compile(r"[AEIOUaeiou]")
_RESIDENT_WORDS = frozenset("resident residents patient patients pt member staff".split())
_EPONYMS = re.compile(r"(?<![\w'])(?:" + "|".join(
    r"(?:'s|s')?[\s\-]+".join(re.escape(w) for w in p.split())
    + ("" if p.split()[-1] in ("sign", "test") else r"(?:'s|s|es)?")  # "Dr. Murphy signs off": a verb, no sign
    for p in sorted(EPONYM_PHRASES, key=len, reverse=True)) + r")(?![\w'])", re.IGNORECASE)
#: a title right before a span: a name there is a person's, whatever phrase it opens ("Dr. Blake drain the ...")
_AFTER_TITLE = re.compile(r"(?i)\b(?:dr|mr|mrs|ms|miss|prof)\.?\s{1,3}$")
_EPONYM_REACH = max(map(len, EPONYM_PHRASES)) * 2 + 8
_FUNCTION_WORDS = frozenset("per in on at to of and the with for by from as is was".split())


def typing_slip(word: str) -> bool:
    """A typing slip of a clinical term (a key beside the one meant, a letter of the same sound, one left out, added
    or swapped) whose letters look like no name ("TEARFULL", "NEUROSUGERY"; not "Chidi", "Bolat" or "Perpetua",
    one slip from "chide", "bloat" and "perpetual")."""
    return misspelt_term(word, typing=True) and name_likeness().score(word.lower()) < 0.5


class Evidence:
    """Weighs a span: keeps it, trims it to its name words, scores it down or drops it.

    Parameters
    ----------
    allowed
        Words (lower case) that are never PHI by themselves unless a strong cue says so: the vocabulary's words.
    site_allowed
        The site's allow-list: a term of one word is never PHI, whatever the cue; a term of several words allows
        a span that is exactly that phrase, not its words elsewhere ("Aldrete score" does not allow "Dr. Aldrete").
    """

    def __init__(self, allowed: Iterable[str] = (), site_allowed: Iterable[str] = ()) -> None:
        self.terms = clinical_terms()
        self.first, self.last = name_lexicon()
        self.places = place_gazetteer()
        self.common_names = common_names()
        self.languages, self.large_places, self.states = languages(), large_places(), us_states()
        self.shape = name_likeness()
        self.given = given_names()
        self.stop = stop_words()
        self.allowed = frozenset(allowed)
        site = [" ".join(t.lower().split()) for t in site_allowed]
        #: the site's allowed single words, and its allowed phrases (a phrase allows itself, not its words)
        self.site_allowed = frozenset(t for t in site if " " not in t)
        self.site_phrases = [(re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, t.split())) + r"(?!\w)", re.IGNORECASE),
                              len(t) * 2 + 8)  # how far the phrase reaches, its spaces written wider
                             for t in sorted({t for t in site if " " in t})]

    def weigh(self, text: str, span: TextSpan) -> list[TextSpan]:
        """``span`` as it stands, trimmed, scored down, or dropped (an empty list)."""
        if span.recognizer == "SiteTerms":
            return [span]
        words = list(_WORD.finditer(text, span.start, span.end))
        if not words:  # no word to weigh (a number, a date): its shape alone decides
            return [] if self._no_identifier(text, span, []) else [span]
        lower = [w.group(0).lower() for w in words]
        whole = " ".join(lower)
        if all(w in self.site_allowed for w in lower) or self.in_site_phrase(text, span):
            return []
        if span.rule.startswith(INITIALS_RULE):
            return [span]
        if span.entity_type == "PERSON" and words and all(w in self.stop or w in _FUNCTION_WORDS for w in lower) \
                and not text[max(0, span.start - 20):span.start].rstrip().endswith(":"):
            return []  # "REPORT GIVEN TO RN": no initials ("TRANSCRIPTIONIST: TO" are)
        if whole in self.states and (span.recognizer == "PlaceLexiconRecognizer" or re.search(
                r"(?i)\b(?:from|in|to|near|at|of)\s+$", text[max(0, span.start - 8):span.start])):
            return []  # "lives in California", "moving from Florida": a state, though towns and people share its name
        if self._part_of_large_place(text, span, whole):
            return []  # "North Carolina", "New Hampshire", "Rhode Island": a state of two words, not a name or a town
        if span.recognizer in STRONG_RECOGNIZERS and not (
                span.recognizer == "PlaceLexiconRecognizer" and upper_case_note(text)):
            return [span]  # a place in UPPER CASE ("ORAL", "DRAIN") is weighed like any other
        if span.rule.endswith(STRONG_RULE):
            return self._after_strong_cue(text, span, words, lower)
        if words and all(w in self.allowed for w in lower):
            return []
        if span.entity_type not in _NAME_TYPES:
            return [] if self._no_identifier(text, span, lower) else [span]
        if whole in self.languages or whole in self.large_places and (
                span.entity_type != "PERSON" or upper_case_note(text)
                or whole not in self.first and whole not in self.last):
            return []  # "ENGLISH", "Russian", "TEXAS", "EUROPE" (in UPPER CASE also where a model calls it a person)
        if span.entity_type in _INSTITUTIONS:
            return self._institution(text, span, words, lower)
        if span.entity_type != "PERSON" and whole in HOSPITAL_ROOMS:
            return []  # "AMBULATED IN HALL": a room, though a town shares its name
        if span.entity_type != "PERSON" and self._known_place(text[span.start:span.end]):
            return [span]  # a known place as a whole ("OLD TOWN", "Dover-Foxcroft")
        if span.entity_type == "LOCATION" and span.recognizer == "ClinicalPatternRecognizer":
            for first in range(len(words)):  # a town before its state's code, even a word's ("FROM LAUREL, MD")
                if _place_key(text[words[first].start():span.end]) in self.places:
                    return [TextSpan(words[first].start(), span.end, span.entity_type, span.score, span.recognizer,
                                     span.rule, span.context)]
        return self._name_words(text, span, words)

    def in_site_phrase(self, text: str, span: TextSpan) -> bool:
        """``span`` lies inside an occurrence of one of the site's allowed phrases ("Aldrete score") or of an
        eponymous device, sign or disease (:data:`EPONYM_PHRASES`: "BLAKE DRAIN", "Levine's sign")."""
        eponyms = () if _AFTER_TITLE.search(text, max(0, span.start - 8), span.start) else ((_EPONYMS, _EPONYM_REACH),)
        return any(m.start() <= span.start and span.end <= m.end()
                   for rx, reach in (*self.site_phrases, *eponyms)
                   for m in rx.finditer(text, max(0, span.start - reach), span.end + reach))

    def _part_of_large_place(self, text: str, span: TextSpan, whole: str) -> bool:
        """``span`` (``whole`` in lower case) and the word right before or after it make a state or a country of
        more words than the span ("New Hampshire", "North Carolina", "Rhode Island", "Puerto Rico")."""
        before = _WORD_BEFORE.search(text, max(0, span.start - 20), span.start)
        after = _WORD_AFTER.match(text, span.end)
        return bool(before and f"{before.group(1).lower()} {whole}" in self.large_places
                    or after and f"{whole} {after.group(1).lower()}" in self.large_places)

    def _after_strong_cue(self, text: str, span: TextSpan, words: list[re.Match[str]],
                          lower: list[str]) -> list[TextSpan]:
        """A name after a strong cue of a pattern: without the clinical words after it; none when it is only
        shorthand ("NGT", "WNL" after a credential, "D. Art") or a lone letter."""
        if span.entity_type != "PERSON":
            return [span]
        last = len(words)
        while last > 1 and self._term_only(words[last - 1].group(0)) \
                and text[words[last - 2].end():words[last - 1].start()].strip(" .") == "":
            last -= 1
        if span.recognizer == "ClinicalPatternRecognizer" and re.search(r"[:#]\s*$", text[max(0, span.start - 3):span.start]) \
                and self.shape.is_known_word(lower[0]) and lower[0] not in self.first and lower[0] not in self.last \
                and lower[0] not in self.given:
            return []  # after a label, a sentence: "FELLOW: NEW LINE TODAY", "CC: SOB, CP"
        if span.recognizer == "ClinicalPatternRecognizer" and "/" not in text[span.start:span.end]:
            names = [w for w in lower[:last] if len(w) > 1]
            if not names and last == 1 or names and all(len(w) >= 3 and (self._term_only(w) or w in ROLE_WORDS)
                                                          for w in names):
                return []  # "CONTACT: SISTER 555-0142": a relation, not a name
        return [span] if last == len(words) else [
            TextSpan(span.start, words[last - 1].end(), span.entity_type, span.score, span.recognizer, span.rule,
                     span.context)]

    def _no_identifier(self, text: str, span: TextSpan, lower: list[str]) -> bool:
        """A date that is a setting or a fraction, an "address" that is a number and words, an "IP address"
        that is a blood gas."""
        if span.entity_type == "DATE":
            return self._not_a_date(text, span)
        street = min((i for i, w in enumerate(lower) if w in _STREET_WORDS), default=len(lower))
        if span.entity_type == "ADDRESS":
            return any(w in _FUNCTION_WORDS for w in lower[:street])  # "120 PER DR", "0 TRACH IN PLACE"
        if span.entity_type == "IP_ADDRESS":
            first = text[span.start:span.end].split(".")[0]
            return first.isdigit() and int(first) < 10  # "7.45.34.7", a blood gas; IPv6 stays
        return False

    def _institution(self, text: str, span: TextSpan, words: list[re.Match[str]], lower: list[str]) -> list[TextSpan]:
        """An institution's words are its name ("Good Samaritan Hospital"); in UPPER CASE it starts after the last
        function word ("RAVENSWORTH AT HARBORVIEW MEDICAL CENTER")."""
        lead = max((i + 1 for i, w in enumerate(lower[:-1]) if w in _SENTENCE_WORDS),
                   default=0) if upper_case_note(text) else 0
        if len(lower) > 2 and lower[lead] in _RESIDENT_WORDS and lower[lead + 1] == "of":
            lead += 2  # "A RESIDENT OF PINE GROVE NURSING HOME": the home's name after "resident of"
        if span.entity_type == "HOSPITAL" and not any(self._institution_name(w) for w in lower[lead:]
                                                      if w not in _INSTITUTION_KINDS):
            return []  # "ROAMING HOSPITAL HALLS", "Remains on hospice", "PROLONGED HOSPITAL": no name
        return [TextSpan(words[lead].start(), span.end, span.entity_type, span.score, span.recognizer, span.rule,
                         span.context)] if lead else [span]

    def _institution_name(self, word: str) -> bool:
        """A word that can name an institution: not a function word, a short clinical abbreviation or a known verb
        form in -ed or -ing ("SEEN ROAMING HOSPITAL HALLS", "PROLONGED HOSPITAL STAY", "PT NURSING HOME";
        "Cornerstone", "Northwestern", "Memorial" can)."""
        if word in self.stop or word in _NOT_INSTITUTION_NAMES or word in ICU_SHORTHAND:
            return False
        if word in INSTITUTION_NAME_WORDS or word in self.places or word in self.first or word in self.last:
            return True
        return not (len(word) <= 3 and word in self.terms) and not (  # "PT NURSING HOME"
            word.endswith(("ed", "ing")) and self.shape.is_known_word(word))

    def _name_words(self, text: str, span: TextSpan, words: list[re.Match[str]]) -> list[TextSpan]:
        """A name or place without its clinical and function words, one span a line ("BS PRESENT \n PLAN: ...");
        none when only terms are left; scored down when only words no list knows and none looks like a name are
        left."""
        upper = upper_case_note(text)
        if span.entity_type != "PERSON":  # a place: hyphenated words whole ("Dover-Foxcroft"), known words trimmed
            kept = [w for w in _HYPHENATED.finditer(text, span.start, span.end)
                    if not _slashed(text, w) and w.group(0).lower() not in ROLE_WORDS
                    and not all(self._term_only(p) and (self.shape.is_known_word(p.lower()) or p.lower() in ICU_SHORTHAND)
                                for p in w.group(0).split("-"))]
        else:
            relation = [c for c in _HYPHENATED.finditer(text, span.start, span.end)
                        if "-" in c.group(0) and any(p.lower() in ROLE_WORDS for p in c.group(0).split("-"))]
            kept = [w for w in words if not self._term_only(w.group(0)) and w.group(0).lower() not in ROLE_WORDS
                    and w.group(0).lower() not in self.stop  # "DAUGHTER ANNE IN TO SEE": "in" is a given name too
                    and not any(c.start() <= w.start() < c.end() for c in relation)  # "SISTER-IN-LAWS"
                    and not _clinical_beside(text, w, upper) and not _slashed(text, w)]  # "AMBER URINE", "s/p MI"
            if kept and not upper:
                kept = self._with_name_pair(text, words, kept)
            if kept:
                kept = self._with_lexicon_neighbour(text, words, kept)
        lines: list[list[re.Match[str]]] = []
        for w in kept:
            if lines and "\n" not in text[lines[-1][-1].end():w.start()] \
                    and not self._role_or_term_between(text, words, lines[-1][-1].end(), w.start()):
                lines[-1].append(w)
            else:  # a new line, or a role, clinical or shorthand word between ("CONTACT PERSON MARTA", "Sam s/p MI")
                lines.append([w])
        return [s for line in lines for s in self._name_line(text, span, line, upper)]

    def _role_or_term_between(self, text: str, words: list[re.Match[str]], start: int, end: int) -> bool:
        """A role word, a clinical word of three letters or more or slashed shorthand ("s/p") lies between ``start``
        and ``end``, not joined by a hyphen (function words and hyphenated parts do not part a name: "Grace of
        Reisterstown", "Maria de la Cruz", "Hae-won Lee")."""
        return any(start <= w.start() and w.end() <= end and "-" not in text[w.start() - 1:w.end() + 1] and (
            w.group(0).lower() in ROLE_WORDS or len(w.group(0)) >= 3 and self._term_only(w.group(0))
            or _slashed(text, w)) for w in words)

    def _name_line(self, text: str, span: TextSpan, kept: list[re.Match[str]], upper: bool) -> list[TextSpan]:
        """The name words of one line of a span, weighed: none when only an English word or a short term is
        left, alone or in UPPER CASE; scored down when they are words no list knows that look like no name."""
        if all(w.group(0).lower() in self.terms and (len(w.group(0)) <= 4 or self.shape.is_known_word(w.group(0).lower()))
               for w in kept) and (len(kept) == 1 or upper):
            return []  # "BROWN", "MAE": an English word or a short abbreviation and a name, alone, without a cue
        if span.recognizer == "SpacyRecognizer" and all(w.group(0).islower() and w.group(0) not in self.given
                                                         for w in kept):
            return []  # spaCy's lower-case "names" are shorthand and misspellings ("gu-qsuo", "yankar"), not given names
        name_like = not (upper and span.recognizer == "SpacyRecognizer")  # spaCy reads UPPER CASE title-cased
        # a word no list knows is a name when it is no misspelt term and looks like one by its letters, or is
        # capitalised in a mixed-case note ("Gwilym restless"; not "Diltizem", "Recieved")
        known = all(self._known_name(w.group(0)) or not misspelt_term(w.group(0)) and (
            name_like and self.looks_like_name(w.group(0)) or not upper and _CAPITALISED.fullmatch(w.group(0)))
            for w in kept)
        if not known and all(not self._known_name(w.group(0)) and typing_slip(w.group(0)) for w in kept):
            return []  # a typing slip of a clinical word that looks like no name ("WIFE TEARFULL", "DTR ANXIUOS")
        score = span.score if known else span.score * UNKNOWN_WORDS_FACTOR
        why = span.rule if known else f"{span.rule}; {UNKNOWN_WORDS_RULE}: score x{UNKNOWN_WORDS_FACTOR}"
        return [TextSpan(kept[0].start(), kept[-1].end(), span.entity_type, score, span.recognizer, why, span.context)]

    def _term_only(self, word: str) -> bool:
        """ICU shorthand, or a clinical term that is no common name ("levo", "abd", "PEARL"; not "lee", "brown",
        "mary": those are terms and names both, and stay with the name they are part of)."""
        w = word.lower().strip("'-")
        return w in ICU_SHORTHAND or (w in self.terms or self.shape.is_known_word(w)) and w not in self.common_names \
            and w not in self.given

    @staticmethod
    def _with_name_pair(text: str, words: list[re.Match[str]], kept: list[re.Match[str]]) -> list[re.Match[str]]:
        """``kept`` and a capitalised word right before its first word or after its last one, in a mixed-case
        note: the given name or surname of a pair ("Dov Frobisher", "Hope Llewellyn")."""
        i, j = words.index(kept[0]), words.index(kept[-1])
        if i > 0 and _TITLE_WORD.fullmatch(words[i - 1].group(0)) and text[words[i - 1].end():kept[0].start()] == " " \
                and words[i - 1].group(0).lower() not in ROLE_WORDS:
            kept = [words[i - 1], *kept]
        if j + 1 < len(words) and _TITLE_WORD.fullmatch(words[j + 1].group(0)) \
                and text[kept[-1].end():words[j + 1].start()] == " " and words[j + 1].group(0).lower() not in ROLE_WORDS:
            kept = [*kept, words[j + 1]]
        return kept

    def _with_lexicon_neighbour(self, text: str, words: list[re.Match[str]],
                                kept: list[re.Match[str]]) -> list[re.Match[str]]:
        """``kept`` and a word of the name lexicon that is no clinical term right before its first word, after a
        preposition that brings in a person, in any case: the English-word given name of a pair ("BY JUNIPER
        ACHEBE"; not "READER SHANICE TRAN")."""
        i = words.index(kept[0])
        if i == 0 or text[words[i - 1].end():kept[0].start()] != " ":
            return kept
        lw = words[i - 1].group(0).lower()
        before = text[max(0, words[i - 1].start() - 6):words[i - 1].start()].lower().split()
        if (lw in self.first or lw in self.last) and lw not in self.terms and lw not in self.stop \
                and lw not in ROLE_WORDS and before[-1:] and before[-1] in _PERSON_PREPOSITIONS:
            return [words[i - 1], *kept]
        return kept

    def looks_like_name(self, word: str) -> bool:
        """A word no list knows that looks like a name by its letters ("Haruki", "Etemadi"; not "DRNG", "CSRU",
        "UNRESONSIVE"): with a vowel, and the name-likeness model's yes."""
        return bool(_VOWEL.search(word)) and self.shape.looks_like_name(word.capitalize())

    def _known_place(self, name: str) -> bool:
        """A place of the gazetteer that is no English or clinical word ("Old Town", "Claremont"; not "ORAL",
        "DRAIN")."""
        key = _place_key(name)
        return key in self.places and (" " in key or not (key in self.terms and (
            self.shape.is_known_word(key) or key in ICU_SHORTHAND)))

    def _known_name(self, word: str) -> bool:
        if self._known_place(word):
            return True
        w = word.lower().strip("'-")
        if w.endswith("'s"):
            w = w[:-2]
        return w in self.first or w in self.last or w in self.places

    @staticmethod
    def _not_a_date(text: str, span: TextSpan) -> bool:
        """A number pair that is a setting, a score, a strength, a fraction or two lab values, by what stands
        around it: "PS 10/5", "8/10 pain", "+3/6 SEM", "HCT 12.9/21.9", "12/5/40%"."""
        value = text[span.start:span.end].strip()
        if "/" not in value:
            return False
        if _VENT.search(value):
            return True  # "Cpap 5/5"
        before, after = text[max(0, span.start - 16):span.start], text[span.end:span.end + 30]
        if re.search(r"(?:[\d'/+#]|(?<![A-Za-z])\.)$", before) or re.match(r"(?:\.\d|/\.\d|%|/\d+%|')", after):
            return True  # part of a number, a grade, a score or a setting written around it (a period after a
            # word ends its sentence: "moved to the floor.8/31")
        if value.count("/") > 1 and _VENT_MODE_BEFORE.search(before):
            return True  # "SIMV 12/5/10/5": settings (not "edema 03/12/2019")
        if value.count("/") > 1:  # a whole date, unless its year is none ("CO/CI/SVR 3/2/1400")
            year = value.rsplit("/", 1)[1]
            return len(year) == 4 and year.isdigit() and not 1800 <= int(year) < 2300
        if after.startswith("/"):
            return True  # "STAYS ON 10/5/ WITH MV 7.5": a setting written on
        if _NOT_DATE_AFTER.match(after) and not _MONTH_YEAR.fullmatch(value):
            return True  # "1/2 NS", "5/5 STRENGTH", "2/6 SYSTOLIC MURMUR"; not "HOSPITALIZED 10/98 AND 1/99"
        if _CULTURES.search(before):
            count = _COUNT.fullmatch(value)
            return bool(count and int(count.group(1)) <= int(count.group(2)))  # "BC 1/2 POSITIVE": one bottle of two;
            # "BC 8/30 PENDING", "blood cultures 10/1": the day they were sent
        if _DATE_CUE.search(before) or _VISIT_IS.search(text[max(0, span.start - 60):span.start]) \
                and not _DURATION_AFTER.match(after):
            return False  # a word that dates it stands right before it ("C/O CP SINCE 12/10", "EXTUBATED 2/3")
        if value in _FRACTIONS and not re.match(r"\s?-\s?\d{1,2}/\d{1,2}(?![\d/])", after):  # "PRBC 3/4-3/5": dates
            return True
        if value.endswith("/10") and (_PAIN.search(text[max(0, span.start - 30):span.start])
                                      or _PAIN.match(text[span.end:span.end + 20].lstrip(" ,")) is not None):
            return True
        if _NOT_DATE_BEFORE.search(before) or _PUPILS.search(text[max(0, span.start - 20):span.start]):
            return True
        if re.fullmatch(r"[0-5]/5", value) and _STRENGTH.search(text[max(0, span.start - 40):span.start]):
            return True  # "STRENGTH 4/5 BUE, 3/5 BLE": the second of a list of strengths
        # in a ventilator sentence a number pair is a setting ("FLOWBY 6/3", "WEAN DOWN TO 10/5")
        return bool(_VENT.search(text[max(0, span.start - 40):span.start]))


#: names that are clinical words too, and the words right before or after them that make them clinical: amber
#: urine, sinus brady, the Quinton (dialysis) and Swan-Ganz catheters, acute myocardial infarction
_CLINICAL_NEIGHBOURS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    word: (re.compile(rf"(?i)(?:^|\W)(?:{before})\W*$"), re.compile(rf"(?i)^\W*(?:{after})\b"))
    for spellings, before, after in (
        ("amber", r"yellow|dark|clear|cloudy|->", r"urine|colou?r(?:ed)?|drainage|fluid|sputum|secretions|uo|uop"),
        ("brady", r"sinus|sb|junctional|nsr|st|bradycardic", r"to|down|into|\d"),
        ("quinton quintin", r"r\.?|l\.?|right|left|femoral|fem|ij|sc|subclavian|hd|dialysis", r"cath|catheter|line"),
        ("swan swann", r"d/?c|d/cing|dc'?d|remove[d]?|pull(?:ed)?|place[d]?|float(?:ed)?|wedge[d]?|via",
         r"ganz|cath|catheter"),
        ("ami", r"r/o|ri|r/i|s/p|an|acute|lg|large|inferior|anterior|lateral|posterior|old|recent|nstemi|stemi|w|with",
         r"s/p|with|w/|complicated|\d"),
    ) for word in spellings.split()}


def _slashed(text: str, word: re.Match[str]) -> bool:
    """A word of one or two letters joined to another by a slash: shorthand ("s/p", "c/o", "w/o"), no name."""
    return len(word.group(0)) <= 2 and (text[word.end():word.end() + 1] == "/" or text[word.start() - 1:word.start()] == "/")


def _clinical_beside(text: str, word: re.Match[str], upper: bool) -> bool:
    """``word`` is a name that is a clinical word too, standing beside a word that makes it clinical ("AMBER URINE",
    "SINUS BRADY", "R FEMORAL QUINTON CATHETER", "d/c Swann", "R/O AMI"); "AMI" in capitals in a mixed-case note
    (``upper``: the note is in UPPER CASE)."""
    w = word.group(0)
    neighbours = _CLINICAL_NEIGHBOURS.get(w.lower())
    if neighbours is None:
        return False
    if w == "AMI" and not upper:
        return True
    before, after = neighbours
    return bool(before.search(text[max(0, word.start() - 20):word.start()]) or after.match(text[word.end():word.end() + 20]))


def _place_key(text: str) -> str:
    """A place name as the gazetteer holds it: lower case, hyphens as spaces ("Dover-Foxcroft")."""
    return " ".join(text.lower().replace("-", " ").split())
