"""Cities and towns without an address: US place names where a place may stand."""

from __future__ import annotations

import re

from clinical_mm.deid.text.evidence import STRONG_RULE
from clinical_mm.deid.text.lexicons import (
    HOSPITAL_ROOMS,
    NAME_WORD,
    US_STATE_CODES,
    clinical_terms,
    expand_place_shorthand,
    large_places,
    place_gazetteer,
    term_places,
    us_states,
)
from clinical_mm.deid.text.name_likeness import name_likeness
from clinical_mm.deid.text.presidio_loader import AnalysisExplanation, NlpArtifacts, RecognizerResult
from clinical_mm.deid.text.recognizers.clinical_recognizer import ClinicalRecognizer

__all__ = ["PlaceLexiconRecognizer"]


#: last words that make a lower-case phrase a room or a kind of place, not a town ("in the hall", "from nursing home")
_ROOMS_AND_KINDS = HOSPITAL_ROOMS | frozenset("home hospital hosp rehab unit floor center clinic".split())


class PlaceLexiconRecognizer(ClinicalRecognizer):
    """Cities and towns without an address: a known US place name after "in", "from", "near", "to", "at",
    "outside" or "visiting" ("stay with her mother in Leominster", "MOVED FROM REVERE"), right after an
    institution ("Mid Coast Hospital (Bath)", "Visiting Nurse of Laconia"), or alone in parentheses ("home
    (Massena)"). Up to three words, the longest known name wins; a single word must not be a common word."""

    _PLACE = re.compile(rf"(?=\b((?i:in|from|near|to|at|outside|visiting))\s+({NAME_WORD}(?:\s+{NAME_WORD}){{0,2}}))")  # overlapping
    #: a known place that is all a pair of parentheses holds ("brought in slippers from home (Massena)"), unless a
    #: single word of the word lists ("(Normal)")
    _IN_PARENTHESES = re.compile(rf"\(\s*({NAME_WORD}(?:\s+{NAME_WORD}){{0,2}})\s*\)")
    #: a place right after an institution, in parentheses or after a comma ("Mid Coast Hospital (Bath)",
    #: "SNF (Seacoast Community Hospital), Amherst", "Visiting Nurse of Laconia")
    _AFTER_INSTITUTION = re.compile(
        rf"(?i:hospital|center|centre|clinic|infirmary|nursing home|hospice|rehab|snf|visiting nurses?)\)?"
        rf"(?:\s*\(\s*|,\s*|\s+(?i:of)\s+)({NAME_WORD}(?:\s+{NAME_WORD}){{0,2}})")

    #: a place written in lower case after "in", "from", "near" or "visiting" ("cardiologist in annapolis")
    _LOWER_PLACE = re.compile(r"(?=\b(?:in|from|frm|near|visiting)[ \t]+([a-z]+(?:[ \t][a-z]+){0,2})\b)")
    #: a verb of living right before the cue: a place of English words is a place there ("lives in mount airy")
    _LIVING_BEFORE = re.compile(r"(?i)\b(?:lives?|living|resides?|residing|moved)[ \t]+$")
    #: a town before its state, the state's postal code or name after a comma ("LIVES IN LYNN,MA", "res: attleboro, MA",
    #: "from Salem, New Hampshire")
    _BEFORE_STATE = re.compile(r"(?<![A-Za-z'\-])([A-Za-z][A-Za-z'\-]*(?:[ \t]+[A-Za-z][A-Za-z'\-]*){0,2})[ \t]*,[ \t]*"
                               rf"(?:(?:{US_STATE_CODES})(?![A-Za-z])|(?P<state>[A-Z][a-z]+"
                               r"(?:[ \t][A-Z][a-z]+)?|[A-Z]+(?:[ \t][A-Z]+)?)\b)")
    #: a second place joined to a place found ("in hagerstown and cumberland", "FROM LYNN OR SAUGUS")
    _JOINED = re.compile(r"[ \t]*(?:,|(?i:and|or)\b|&|/)[ \t]*([A-Za-z][A-Za-z'\-]*(?:[ \t]+[A-Za-z][A-Za-z'\-]*){0,2})")

    def __init__(self) -> None:
        self.places = place_gazetteer()
        self.terms = clinical_terms() - term_places()  # "son in annapolis called": a place, not a term
        self.shape = name_likeness()
        self.states = us_states()
        self.large = large_places()
        super().__init__(supported_entities=["LOCATION"], name="PlaceLexiconRecognizer", supported_language="en")

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        upper = text.upper() == text
        out: list[RecognizerResult] = []
        for m in self._PLACE.finditer(text):
            if upper and m.group(1).lower() == "to":
                continue  # "TO MONITOR", "TO ADVANCE": in UPPER CASE a verb follows "to" more often than a place
            out.extend(r for r in self._longest_place(m, 2)  # not "AMBULATED IN HALL", "FAMILY IN CHAPEL"
                       if text[r.start:r.end].lower() not in HOSPITAL_ROOMS)
        for m in self._LOWER_PLACE.finditer(text):
            out.extend(self._lower_place(m, self._LIVING_BEFORE.search(text, max(0, m.start() - 12), m.start()) is not None))
        for m in self._AFTER_INSTITUTION.finditer(text):
            # in parentheses or after "of" the institution's place: a strong cue, in UPPER CASE too ("VISITING NURSE
            # OF WESTERLY", "YORK HOSPITAL (DOVER-FOXCROFT)")
            strong = "," not in text[m.start():m.start(1)]
            out.extend(self._longest_place(m, 1, f"a known place of an institution, {STRONG_RULE}" if strong else ""))
        for m in self._IN_PARENTHESES.finditer(text):
            name = m.group(1)
            if name.lower() in self.places and not (" " not in name and self.shape.is_known_word(name)):
                out.append(RecognizerResult("LOCATION", m.start(1), m.end(1), 0.55))
        out.extend(self._before_state(text))
        return out + self._joined(text, out)

    def _before_state(self, text: str) -> list[RecognizerResult]:
        """The longest known place that closes the words before a state ("LYNN,MA", "attleboro, MA"), a single word no
        clinical term (unless the term list holds it as a place), not all its words English ones ("CUT OFF, MD"); beyond the pattern of
        :mod:`clinical_pattern_recognizer` (a capitalised word before a code that is no English word), as the town
        is known: in lower case, and before "MA", "MD", "PA" followed by more words."""
        out = []
        for m in self._BEFORE_STATE.finditer(text):
            if m.group("state") is not None and m.group("state").lower() not in self.states:
                continue
            words = list(re.finditer(r"\S+", m.group(1)))
            for n in range(len(words), 0, -1):
                parts = [w.group(0).lower() for w in words[-n:]]
                if _known_place(" ".join(parts), self.places) and not (n == 1 and parts[0] in self.terms) \
                        and not all(self.shape.is_known_word(p) for p in parts):  # not "TF CUT OFF, MD AWARE"
                    out.append(RecognizerResult("LOCATION", m.start(1) + words[-n].start(), m.end(1), 0.7))
                    break
        return out

    def _joined(self, text: str, found: list[RecognizerResult]) -> list[RecognizerResult]:
        """A known place joined by "and", "or" or a comma to a place found, not all its words English ones and no
        state or country ("in hagerstown and cumberland"; not "in Lynn and stable", "from Montreal, Canada")."""
        out = []
        for r in found:
            m = self._JOINED.match(text, r.end)
            if m is None:
                continue
            words = list(re.finditer(r"\S+", m.group(1)))
            for n in range(len(words), 0, -1):
                parts = [w.group(0).lower() for w in words[:n]]
                if _known_place(" ".join(parts), self.places) and parts[-1] not in _ROOMS_AND_KINDS \
                        and " ".join(parts) not in self.large and not all(self.shape.is_known_word(p) for p in parts):
                    out.append(RecognizerResult("LOCATION", m.start(1), m.start(1) + words[n - 1].end(), 0.6))
                    break
        return out

    def _lower_place(self, m: re.Match[str], living: bool = False) -> list[RecognizerResult]:
        """The longest known place of the lower-case words after the cue, opening with no clinical term and not all
        of them English words unless two or more after a verb of living ("in hagerstown", "from bel air", "lives in
        mount airy"; not "in bath", "from home")."""
        words = list(re.finditer(r"[a-z]+", m.group(1)))
        for n in range(len(words), 0, -1):
            parts = [w.group(0) for w in words[:n]]
            if _known_place(" ".join(parts), self.places) and parts[-1] not in _ROOMS_AND_KINDS and (
                    living and n > 1 or parts[0] not in self.terms and not all(self.shape.is_known_word(p) for p in parts)):
                return [RecognizerResult("LOCATION", m.start(1), m.start(1) + words[n - 1].end(), 0.6)]
        return []

    def _longest_place(self, m: re.Match[str], group: int, rule: str = "") -> list[RecognizerResult]:
        """The longest known place the words of ``m.group(group)`` open with (none or one result)."""
        words = list(re.finditer(r"\S+", m.group(group)))
        for n in range(len(words), 0, -1):
            name = " ".join(w.group(0) for w in words[:n])
            if _known_place(name.lower(), self.places) or name.lower().replace("-", " ") in self.places:  # "Dover-Foxcroft"
                end = m.start(group) + words[n - 1].end()
                result = RecognizerResult("LOCATION", m.start(group), end, 0.6)
                # strong only where the place is all the cue holds ("(DOVER-FOXCROFT)"; not "(DRAIN CARE)",
                # "REHAB OF NORMAL GAIT")
                if rule and re.match(r"\s*(?:[).,;:\n]|$)", m.string[end:]):
                    result.analysis_explanation = AnalysisExplanation(
                        recognizer="PlaceLexiconRecognizer", original_score=0.6, pattern_name=rule, textual_explanation="")
                return [result]
        return []


def _known_place(name: str, places: frozenset[str]) -> bool:
    """``name`` (lower case) is a place of ``places``, "mt" and "ft" read as "mount" and "fort" ("MT AIRY")."""
    return name in places or expand_place_shorthand(name) in places
