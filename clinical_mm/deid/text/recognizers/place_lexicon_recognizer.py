"""Cities and towns without an address: US place names where a place may stand."""

from __future__ import annotations

import re

from clinical_mm.deid.text.evidence import STRONG_RULE
from clinical_mm.deid.text.lexicons import (
    HOSPITAL_ROOMS,
    NAME_WORD,
    clinical_terms,
    place_gazetteer,
    term_places,
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

    def __init__(self) -> None:
        self.places = place_gazetteer()
        self.terms = clinical_terms() - term_places()  # "son in annapolis called": a place, not a term
        self.shape = name_likeness()
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
            out.extend(self._lower_place(m))
        for m in self._AFTER_INSTITUTION.finditer(text):
            # in parentheses or after "of" the institution's place: a strong cue, in UPPER CASE too ("VISITING NURSE
            # OF WESTERLY", "YORK HOSPITAL (DOVER-FOXCROFT)")
            strong = "," not in text[m.start():m.start(1)]
            out.extend(self._longest_place(m, 1, f"a known place of an institution, {STRONG_RULE}" if strong else ""))
        for m in self._IN_PARENTHESES.finditer(text):
            name = m.group(1)
            if name.lower() in self.places and not (" " not in name and self.shape.is_known_word(name)):
                out.append(RecognizerResult("LOCATION", m.start(1), m.end(1), 0.55))
        return out

    def _lower_place(self, m: re.Match[str]) -> list[RecognizerResult]:
        """The longest known place of the lower-case words after the cue, opening with no clinical term and not all
        of them English words ("in hagerstown", "from bel air"; not "in bath", "from home")."""
        words = list(re.finditer(r"[a-z]+", m.group(1)))
        for n in range(len(words), 0, -1):
            parts = [w.group(0) for w in words[:n]]
            if " ".join(parts) in self.places and parts[0] not in self.terms and parts[-1] not in _ROOMS_AND_KINDS \
                    and not all(self.shape.is_known_word(p) for p in parts):
                return [RecognizerResult("LOCATION", m.start(1), m.start(1) + words[n - 1].end(), 0.6)]
        return []

    def _longest_place(self, m: re.Match[str], group: int, rule: str = "") -> list[RecognizerResult]:
        """The longest known place the words of ``m.group(group)`` open with (none or one result)."""
        words = list(re.finditer(r"\S+", m.group(group)))
        for n in range(len(words), 0, -1):
            name = " ".join(w.group(0) for w in words[:n])
            if name.lower() in self.places or name.lower().replace("-", " ") in self.places:  # "Dover-Foxcroft"
                end = m.start(group) + words[n - 1].end()
                result = RecognizerResult("LOCATION", m.start(group), end, 0.6)
                # strong only where the place is all the cue holds ("(DOVER-FOXCROFT)"; not "(DRAIN CARE)",
                # "REHAB OF NORMAL GAIT")
                if rule and re.match(r"\s*(?:[).,;:\n]|$)", m.string[end:]):
                    result.analysis_explanation = AnalysisExplanation(
                        recognizer="PlaceLexiconRecognizer", original_score=0.6, pattern_name=rule, textual_explanation="")
                return [result]
        return []
