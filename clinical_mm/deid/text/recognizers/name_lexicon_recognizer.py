"""Names without context: lexicon names, and words that look like names where a name may stand."""

from __future__ import annotations

import re

from clinical_mm.deid.text.evidence import STRONG_RULE
from clinical_mm.deid.text.lexicons import (
    ICU_SHORTHAND,
    NAME_WORD,
    PREFIXES,
    ROLE_WORDS,
    VOWELS,
    clinical_terms,
    is_common_word,
    name_lexicon,
    word_given_names,
)
from clinical_mm.deid.text.name_likeness import name_likeness
from clinical_mm.deid.text.presidio_loader import AnalysisExplanation, NlpArtifacts, RecognizerResult
from clinical_mm.deid.text.recognizers.clinical_recognizer import ClinicalRecognizer

__all__ = ["NameLexiconRecognizer"]


class NameLexiconRecognizer(ClinicalRecognizer):
    """Names without context: a known given name followed by a capitalised word ("Gustavo Novak slept") or a
    capitalised word followed by a known surname ("Hae-won Quintero"), a
    capitalised word, a comma and a known given name ("Novak, Gustavo"), or, in mixed-case text, a known
    given name capitalised inside a sentence ("per Gustavo and family").

    In UPPER CASE text, where capitals say nothing, a pair needs a lexicon name and not two known words, and
    a lone lexicon given name counts anywhere when it is no English, clinical or drug word ("WOULD LIKE
    HARUTO PRESENT"). Common words never count as names.

    A word no lexicon holds counts as a name where a lexicon name would when it looks like one
    (:mod:`clinical_mm.deid.text.name_likeness`: not a known English or clinical word, letters typical of names):
    a lone word at a clause opening or inside a sentence, either word of a pair whose other word is a lexicon
    name, both words of a capitalised pair in mixed case, the given name of "Surname, Given".
    """

    _PAIR = re.compile(rf"(?<![A-Za-z'\-])(?=({NAME_WORD})\s+({NAME_WORD})(?![A-Za-z'\-]))")  # overlapping pairs
    _LAST_FIRST = re.compile(rf"(?<![A-Za-z'\-])({NAME_WORD}),\s+({NAME_WORD})(?![A-Za-z'\-])")
    #: a capitalised word inside a sentence (after a lower-case word or a comma), for a lone given name
    _INNER = re.compile(r"(?<=[a-z,/]\s)([A-Z][a-z]+(?:-[A-Za-z]+)?)(?![A-Za-z'\-])")  # "/": "w/ Taini"
    #: a capitalised word opening a sentence or clause and followed by a lower-case word ("Ingeborg asked",
    #: "Instructions: Ezekiel, call ...")
    _OPENING = re.compile(r"(?:^|(?<=[.;:!?]\s)|(?<=\n))([A-Z][a-z]+(?:-[A-Za-z]+)?)(?=,?\s+[a-z])")
    #: in UPPER CASE, a word opening a sentence or clause and followed by another word ("ANNIKA AMBULATED")
    _OPENING_UPPER = re.compile(r"(?:^|(?<=[.;:!?]\s)|(?<=\n))([A-Z]+(?:-[A-Z]+)?)(?=,?\s+[A-Z])")
    _UPPER_WORD = re.compile(r"(?<![A-Za-z'\-])([A-Z]+(?:-[A-Z]+)?)(?![A-Za-z'\-])")
    _POSSESSIVE = re.compile(r"(?<![A-Za-z'\-])([A-Z][A-Za-z]+(?:-[A-Za-z]+)?)'[sS]\b")
    #: a word right before "at" and a telephone number ("Called Hope at 447.788.4096", "reach Dov at (617) ...")
    _BEFORE_PHONE = re.compile(rf"(?<![A-Za-z'\-])({NAME_WORD})\s+(?i:(?:can|may|could)\s+be\s+reached\s+)?(?i:at|@|on)\s+(?=(?:\+?1[-.\s]?)?(?:\(\d{{3}}\)\s*|\d{{3}}[-.\s])"
                               rf"\d{{3}}[-.\s]\d{{4}}(?!\d))")

    def __init__(self) -> None:
        self.first, self.last = name_lexicon()
        self.shape = name_likeness()
        super().__init__(supported_entities=["PERSON"], name="NameLexiconRecognizer", supported_language="en")

    def _looks_like_name(self, word: str) -> bool:
        """A word no lexicon holds that looks like a name: by its letters (every part of a hyphenated one), or a
        hyphenated given name whose parts are too short for their letters to say much ("Jin-soo", "Hae-won"):
        a first part of three letters or more that no word list knows and is no prefix ("Pre-op", "Peri-hilar"),
        and no known word of four letters or more after it ("Hemo-dynamically")."""
        if is_common_word(word):
            return False
        parts = word.split("-")
        if all(self.shape.looks_like_name(part) for part in parts):
            return True
        return (len(parts) == 2 and len(parts[0]) >= 3 and parts[0].lower() not in PREFIXES
                and not self.shape.is_known_word(parts[0]) and not is_common_word(parts[0])
                and not (len(parts[1]) >= 4 and self.shape.is_known_word(parts[1])))

    def _unknown_short_name(self, word: str, upper: bool) -> bool:
        """A word of three letters or more with a vowel, capitalised (in mixed case), that no word list knows."""
        return (len(word) >= 3 and VOWELS.search(word) is not None and (upper or word[1:].islower())
                and not self.shape.is_known_word(word) and not is_common_word(word))

    def _name_word(self, word: str, upper: bool) -> bool:
        """A lexicon given name or surname, a word that looks like a name, or a short word no list knows."""
        return (word.lower() in self.first or word.lower() in self.last or self._looks_like_name(word)
                or self._unknown_short_name(word, upper))

    def _given(self, word: str) -> bool:
        return word.lower() in self.first or self._looks_like_name(word)

    def _family(self, word: str) -> bool:
        return word.lower() in self.last or self._looks_like_name(word)

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        upper = text.upper() == text
        out = []
        for m in self._PAIR.finditer(text):
            given, family = m.group(1), m.group(2)
            if is_common_word(family) or is_common_word(given):
                continue
            if upper:
                if self.shape.is_known_word(given) and self.shape.is_known_word(family):
                    continue  # "COLON CANCER": where capitals say nothing, two words of the word lists are words
                known_given, known_family = given.lower() in self.first, family.lower() in self.last
                # one in the lexicon and the other in it too or looking like a name ("BRONISLAW HARGROVE"), or a
                # lexicon given name before a surname no word list knows ("SOLVEIG ETXEBERRIA")
                if not (known_given and (self._family(family) or self._unknown_short_name(family, upper))
                        or known_family and self._given(given)):
                    continue
            elif given.lower() not in self.first:
                if not (given[1:].islower() and family[1:].islower()):
                    continue
                if family.lower() in self.last:
                    # an unknown capitalised word before a known capitalised surname ("Hae-won Quintero"), not
                    # a phrase of common words ("Daughter-in-law Lamar")
                    if any(is_common_word(part) for part in re.split(r"['\-]", given)):
                        continue
                elif not (self._looks_like_name(given) and self._looks_like_name(family)):
                    continue
            elif not (family[0].isupper() and family[1:].islower() or family.lower() in self.last):
                continue
            out.append(RecognizerResult("PERSON", m.start(1), m.end(2), 0.6))
        for m in self._LAST_FIRST.finditer(text):
            family, given = m.group(1), m.group(2)
            # the given name is a lexicon one, or after a lexicon surname a word that looks like one or, too short
            # for its letters to say much, any word the word lists do not know ("Paquette, Dov"; not "Tran, SW")
            if family.lower() in ROLE_WORDS or family.lower() in ICU_SHORTHAND or given.lower() in ICU_SHORTHAND \
                    or len(given) > 4 and given.lower() in clinical_terms() and given.lower() not in self.first:
                continue  # "Daughter, Ruth" is a relation and a name; "GRAY, DIAPHORETIC", "PEARL, MAE" clinical words
            if is_common_word(family) or not (given.lower() in self.first or family.lower() in self.last and (
                    self._looks_like_name(given) or self._unknown_short_name(given, upper))):
                continue
            if upper and (family.lower() not in self.last
                          or self.shape.is_known_word(family) and given.lower() not in self.first):
                continue  # "SMOKER, EX-ETOH": in UPPER CASE a surname that is a word needs a known given name
            if not upper and not family[1:].islower():
                continue
            out.append(RecognizerResult("PERSON", m.start(1), m.end(2), 0.6, analysis_explanation=AnalysisExplanation(
                recognizer="NameLexiconRecognizer", original_score=0.6, pattern_name=f"'Surname, Given', {STRONG_RULE}")))
        for rx in ((self._OPENING_UPPER,) if upper else (self._INNER, self._OPENING)):
            for m in rx.finditer(text):
                # the lexicon holds no common words; a given name that is also a word stays a name here
                # ("Precious ambulated"; "Trace left effusion" is the price)
                if self._given(m.group(1)):
                    out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.5))
        for m in self._POSSESSIVE.finditer(text):
            # a capitalised word with "'s" that no word list knows, or a lexicon name ("Fenella's pastor"; not
            # "Parkinson's", "Patient's")
            word = m.group(1)
            if not self.shape.is_known_word(word) and not is_common_word(word) and self._name_word(word, upper):
                out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.5))
        for m in self._BEFORE_PHONE.finditer(text):
            # a name of the lexicon, a given name that is also a word, or a word no word list knows
            word = m.group(1)
            if word.lower() in ROLE_WORDS:
                continue  # "CALLED SON AT 617-555-1234": the relation, not a name
            if self._name_word(word, upper) or word.lower() in word_given_names():
                out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.5, analysis_explanation=AnalysisExplanation(
                    recognizer="NameLexiconRecognizer", original_score=0.5, pattern_name=f"name before a phone number, {STRONG_RULE}")))
        if upper:
            # anywhere else in UPPER CASE, a lexicon given name that is no English, clinical or drug word
            # ("WOULD LIKE HARUTO PRESENT"; not "MAE", moves all extremities, which the word lists know), or a
            # word with two vowels or more that looks like a name ("PER RADOMIR"; not an acronym, "MRSA")
            for m in self._UPPER_WORD.finditer(text):
                word = m.group(1)
                if len(word) >= 4 and (word.lower() in self.first or len(VOWELS.findall(word)) >= 2
                                       and self._looks_like_name(word)) \
                        and not self.shape.is_known_word(word) and not is_common_word(word):
                    out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.45))
        return out
