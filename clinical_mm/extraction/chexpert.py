"""Radiology report labeler: each of the 14 CheXpert observations and each triage flag as positive, negative,
uncertain or not mentioned, and the triage reading of the report (which flags it states).

The report is read as ``clinical-mm extract`` reads notes: sections and sentences, then ConText asserts every
mention of every observation in its sentence (so "no pneumothorax", "cannot exclude pneumonia" and "the
previously seen effusion has resolved" are labelled as a radiologist means them). Sentences of the indication,
history, technique and comparison sections are not read: "rule out pneumonia" there is the question, not the
answer. Mentions are phrase patterns per observation (after the CheXpert labeler's mention lists, Irvin et al.
2019, written anew here). Some observations are also stated by the form of a sentence: *normal* statements
("heart size is normal", "the cardiac silhouette is not enlarged": negative; the "not" of a predicate is read
with it, never left for a trigger to miss), *borderline* ones ("borderline cardiomegaly", "heart size is upper
limits normal or mildly enlarged": uncertain, leaning) and *hedged* ones ("the mediastinum is questionably
widened", "heart size is at the upper limits of normal": uncertain).

A mention asserted present or historical is positive, possible is uncertain, absent is negative (a finding
"no longer seen", "cleared" or "resolved" is absent); a mention about a relative, a hypothetical one or a
limitation ("evaluation for pneumothorax is limited", "could obscure a nodule", "to exclude a mass") counts as
not mentioned. Per observation, positive beats uncertain beats negative (CheXpert's aggregation). *No Finding*
is positive when no observation other than Support Devices is positive or uncertain, and not mentioned
otherwise.

Definitions of the triage flags (documented in the README with the CheXpert observations they follow):

- consolidation: consolidation, pneumonia, pneumonitis and infiltrate; an airspace opacity or airspace disease
  only where its sentence does not attribute it to atelectasis, scarring, fat or overlap (CheXpert keeps those
  under Lung Opacity, which is not a flag); Lung Opacity stays its own CheXpert observation.
- nodule_mass: nodules, masses, mass-like and fibronodular opacities, and round opacities or densities.
- pneumothorax: also hydropneumothorax, hemopneumothorax, pleural air, and an effusion with an air-fluid level.
- pulmonary_edema: edema, vascular congestion or engorgement, cephalization, Kerley lines, heart failure.
- cardiomegaly: enlargement of the heart or cardiac silhouette in any wording ("the heart is large").

The triage reading (:meth:`RadiologyReportLabeler.stated_present`), the policy for uncertain mentions: a flag is
stated when a mention of it is positive, or uncertain and *leaning*, every hedge on it saying the finding is
more likely than not ("probable", "likely", "most suggestive of", "consistent with", "borderline"); a mere
possibility ("cannot exclude", "may represent", "question of", "X versus Y") is not stated. Training (the
laterality targets and the validation drafts), the pipeline's draft check, ``clinical-mm evaluate`` and the
monitoring all read reports this way; ``evaluate-report-labels --mesh`` reports it beside both blunt readings
(every uncertain label negative, every uncertain label positive).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from clinical_mm.core.findings import FINDINGS
from clinical_mm.extraction.context import RADIOLOGY_RULES, ConText
from clinical_mm.extraction.extractor import ClinicalExtractor
from clinical_mm.extraction.text import Sentence

__all__ = ["CHEXPERT_OBSERVATIONS", "Label", "LabelMention", "RadiologyReportLabeler"]

Label = Literal["positive", "negative", "uncertain", "not_mentioned"]

CHEXPERT_OBSERVATIONS: tuple[str, ...] = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Lesion", "Lung Opacity", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)
_UNREAD_SECTIONS = frozenset({"indication", "technique", "comparison", "hpi", "chief_complaint", "pmh", "psh",
                              "family_history", "social_history", "medications", "allergies"})


@dataclass(frozen=True)
class _Rule:
    """An observation's phrases: ``mention`` is asserted by ConText; ``normal`` says it is absent (negative);
    ``borderline`` says it is borderline or probable in the predicate itself (uncertain, leaning: the triage
    reading states it); ``hedged`` says it is merely possible (uncertain); ``weak`` is a mention
    that counts only where the report does not attribute it to something else within two words after it
    (``attributed``: "airspace disease, likely atelectasis" is atelectasis, not consolidation)."""

    mention: str
    normal: str | None = None
    borderline: str | None = None
    hedged: str | None = None
    weak: str | None = None
    attributed: str | None = None


# "<subject> <copula> <degree> <predicate>": the degree words a predicate may carry without changing its claim;
# "not", "no longer" or a hedge there is a negative or uncertain statement, never a mention ("the cardiac
# silhouette is not enlarged")
_DEGREE = (r"(?:(?:slightly|mildly|moderately|markedly|severely|minimally|massively|significantly|substantially|"
           r"somewhat|considerably|again|still|now|also|stably|grossly|at least|likely|very|quite|increasingly|"
           r"chronically|only|mild(?:ly)? to moderately|moderately to severely) )?")
_COPULA = r"(?: (?:is|are|appears?|remains?|seems?|looks?|continues to be|again)(?: to be)?)?"
_NOT = r"(?:not|no longer|not significantly|not definitely|not appreciably|not substantially|not clearly)"
_LEANING = r"(?:probably|likely|borderline|(?:at )?(?:the )?upper limits? (?:of )?normal or)"
_HEDGE = r"(?:questionably|possibly|perhaps|equivocally|slightly if at all)"


def _predicate(subject: str, predicate: str) -> tuple[str, str, str, str]:
    """The mention, the negated, the leaning and the hedged statement of "<subject> is <predicate>"."""
    head = rf"(?:{subject})(?: xxxx)?{_COPULA}"
    return (rf"{head} {_DEGREE}(?:{predicate})", rf"{head} {_NOT} {_DEGREE}(?:{predicate})",
            rf"{head} {_LEANING} {_DEGREE}(?:{predicate})", rf"{head} {_HEDGE} {_DEGREE}(?:{predicate})")


_HEART_SUBJECT = (r"(?:the )?(?:heart(?: size| shadow)?|cardiac (?:silhouette|size|shadow|contours?|outline|diameter)|"
                  r"cardiac silhouette size|size of the (?:heart|cardiac silhouette))")
_HEART_SAID = _predicate(_HEART_SUBJECT, r"enlarged|large|increased in size|enlarged in size")
_MEDIASTINUM_SUBJECT = (r"(?:the )?(?:(?:cardio)?mediastin(?:um|al (?:silhouette|contours?|width|structures|shadow))|"
                        r"(?:mediastinal and hilar|hilar and mediastinal) (?:contours|structures)|"
                        r"cardiomediastinal (?:silhouette|contours?))")
_MEDIASTINUM_SAID = _predicate(_MEDIASTINUM_SUBJECT, r"enlarged|widened|wide|prominent")

#: a statement that heart and mediastinum are both normal: negative for both observations
_BOTH_NORMAL = (r"heart and mediastinum (?:are|is) (?:normal|within normal limits|unremarkable)|"
                r"(?:cardiac|heart) and mediastinal (?:contours|silhouettes?) (?:are|is) (?:normal|within normal limits)")

_HEART = _Rule(
    r"cardiomegaly|enlarge(?:d|ment of the) (?:cardiac silhouette|heart)|enlarged heart|cardiac enlargement|"
    r"enlarged cardiac (?:silhouette|contour|shadow|size)|" + _HEART_SAID[0],
    normal=r"(?:heart size|heart|cardiac silhouette|cardiac size)(?: is| appears| remains)? (?:normal|within normal "
           r"limits)(?: in size)?|normal (?:heart size|heart|cardiac silhouette|cardiac size|size of the heart)|"
           + _BOTH_NORMAL + "|" + _HEART_SAID[1],
    borderline=r"borderline (?:cardiomegaly|heart size|enlarged|enlargement|large|cardiac (?:size|silhouette|contour|"
               r"enlargement))|(?:heart|heart size|cardiac silhouette|cardiac size)(?: xxxx)?(?: is| appears| remains)?"
               r" borderline(?: in size| enlarged| large)?|" + _HEART_SAID[2],
    hedged=r"(?:upper|top)[- ](?:limits? of )?normal (?:heart|cardiac)|"
           r"heart size is (?:at the )?(?:upper|top)[- ](?:limits? of )?normal(?! or)|" + _HEART_SAID[3],
)
_EFFUSION = _Rule(r"(?<!pericardial )(?<!pericardial\s)effusions?|pleural fluid|hydrothorax|"
                  r"blunting of (?:the |both )?(?:\w+ )?costophrenic")
_PNEUMOTHORAX = _Rule(r"(?:hydro|hemo|haemo)?pneumothora(?:x|ces)|ptx|pleural air(?: collection)?|"
                      r"(?:effusion|air collection|fluid collection) with (?:an )?air[- ]fluid levels?|"
                      r"air[- ]fluid levels? (?:in|within) the pleural space")
_ATELECTASIS = _Rule(r"atelecta(?:sis|ses|tic)|collapse of the (?:\w+ ){1,3}(?:lobe|lung|segment)|"
                     r"collapsed (?:lung|lobe)|(?:lung|lobe|lobar|segmental) collapse")
_EDEMA = _Rule(r"(?<!soft tissue )(?<!subcutaneous )(?:pulmonary |interstitial |alveolar )?o?edema|heart failure|"
               r"\bchf\b|vascular congestion|pulmonary congestion|indistinct(?:ness of the)? (?:pulmonary )?vasculature|"
               r"vascular prominence|kerley(?: b)?(?: lines?)?|engorgement of the (?:pulmonary )?(?:vasculature|vessels)|"
               r"(?:pulmonary |vascular |venous |pulmonary venous |pulmonary vascular )engorgement|engorged (?:pulmonary )?(?:vessels|vasculature)|increased (?:pulmonary )?vascularity|"
               r"cephalization|venous congestion|fluid overload|indistinct vascular margination",
               normal=r"(?:pulmonary )?(?:vascular engorgement|vascular congestion|venous engorgement)(?: (?:appears?|is|"
                      r"are|remains?))? (?:within (?:the )?(?:normal limits|limits of normal)|normal)")
_NODULE = (r"nodules?|nodular (?:densit(?:y|ies)|opacit(?:y|ies)|opacification)|mass(?:es)?\b|mass-?like|"
           r"fibronodular|(?:round|rounded|circular|spherical) (?:\w+ )?(?:densit(?:y|ies)|opacit(?:y|ies)|lesions?)|"
           r"nodularity")
_LESION = _Rule(_NODULE + r"|lump|cavitary lesion|carcinoma|neoplasm|tumou?r|lung lesion")

_CHEXPERT: dict[str, _Rule] = {
    "Enlarged Cardiomediastinum": _Rule(
        r"widen(?:ed|ing of the) (?:superior )?mediastinum|mediastinal widening|widened mediastin\w*|"
        r"enlarge(?:d|ment of the) (?:cardio)?mediastinal (?:silhouette|contours?)|"
        r"mediastinal (?:enlargement|mass)|" + _MEDIASTINUM_SAID[0],
        normal=r"(?:cardio)?mediastinal (?:silhouette|contours?|structures)(?: is| are| appears?)? (?:normal|within normal "
               r"limits|unremarkable)|normal (?:cardio)?mediastinal (?:silhouette|contours?)|mediastinum is normal|"
               + _BOTH_NORMAL + "|" + _MEDIASTINUM_SAID[1],
        borderline=_MEDIASTINUM_SAID[2], hedged=_MEDIASTINUM_SAID[3]),
    "Cardiomegaly": _HEART,
    "Lung Lesion": _LESION,
    "Lung Opacity": _Rule(r"opaci(?:ty|ties|fication|fied)|infiltrat(?:e|es|ion)|airspace disease|air-space disease|"
                          r"air space disease|increased densit(?:y|ies)|haziness|hazy|interstitial (?:markings|pattern|"
                          r"opacities)|reticular (?:pattern|markings|opacities)|reticulation|parenchymal scarring|"
                          r"peribronchial (?:thickening|cuffing)|ground[- ]glass",
                          normal=r"lungs? (?:(?:are|is|remains?|appears?) )?(?:otherwise |\w+ (?:but|and) )?clear|"
                                 r"clear lungs"),
    "Edema": _EDEMA,
    "Consolidation": _Rule(r"consolidat(?:ion|ions|ive|ed)"),
    "Pneumonia": _Rule(r"pneumonias?|bronchopneumonia|pneumonitis|infection|infectious(?: process)?"),
    "Atelectasis": _ATELECTASIS,
    "Pneumothorax": _PNEUMOTHORAX,
    "Pleural Effusion": _EFFUSION,
    "Pleural Other": _Rule(r"pleural (?:thickening|scar(?:ring)?|plaques?|calcifications?)|fibrothorax|"
                           r"pleuro-?parenchymal (?:scar(?:ring)?|thickening)|apical (?:pleural )?(?:cap|capping)"),
    "Fracture": _Rule(r"fractur(?:e|es|ed)|\bfx\b"),
    "Support Devices": _Rule(
        r"(?:central venous|central|venous|picc|arterial|midline|internal jugular|ij|subclavian|jugular|dialysis|"
        r"swan[- ]ganz|pulmonary artery) (?:line|catheter)s?|picc|catheters?|"
        r"(?:endotracheal|et|tracheostomy|trach|chest|nasogastric|ng|og|orogastric|enteric|feeding|dobhoff|"
        r"gastrostomy|g|thoracostomy) ?tubes?|\bett\b|\bngt\b|pacemaker|pacer|\baicd\b|\bicd\b|defibrillator|"
        r"(?:pacing |pacer |pacemaker )?leads|sternotomy wires|sternal wires|surgical clips|hardware|"
        r"prosthe(?:sis|tic valve)|stents?|\bport\b|port-a-cath|\blvad\b|\biabp\b|balloon pump|valve replacement|"
        r"electrodes|drains?"),
}
_FLAGS: dict[str, _Rule] = {
    "cardiomegaly": _HEART,
    "pleural_effusion": _EFFUSION,
    "pneumothorax": _PNEUMOTHORAX,
    # consolidation, pneumonia and infiltrate; an airspace opacity only where its sentence does not attribute it to
    # atelectasis (or scarring, fat, overlap: "likely atelectasis", "which represent atelectasis"); CheXpert keeps
    # those under Lung Opacity. "Airspace disease/atelectasis" names both, and attributes nothing
    "consolidation": _Rule(
        r"consolidat(?:ion|ions|ive|ed)|pneumonias?|bronchopneumonia|pneumonitis|infiltrat(?:e|es|ion|ive)",
        weak=r"air[- ]?space (?:opacit(?:y|ies|ification)|disease|process|densit(?:y|ies))|alveolar (?:opacit(?:y|ies)|"
             r"process|disease)",
        attributed=r"(?:likely|probably|possibly|most likely|represent\w*|consistent with|compatible with|secondary to|"
                   r"due to|suggestive of|related to|reflect\w*|favou?r\w*|xxxx)(?: \w+){0,3} (?:atelecta\w*|scar\w*|"
                   r"fibros\w*|fibrotic|epicardial fat|fat pads?|overlying soft tissues?|overlap\w*|summation|crowding|"
                   r"volume loss)"),
    "nodule_mass": _Rule(_NODULE),
    "atelectasis": _ATELECTASIS,
    "pulmonary_edema": _EDEMA,
}
assert set(_FLAGS) == set(FINDINGS)

_SIDE = re.compile(r"\b(right|left|bilateral|both)\b", re.I)
_SIZE = re.compile(r"\b(trace|tiny|small|mild|minimal|moderate|large|marked|severe)\b", re.I)
#: observations that group what a sentence tells apart (which device, which rib): a sentence naming one has no
#: meaning in labels
_GROUPING = frozenset({"Support Devices", "Fracture"})
_RANK: dict[str, int] = {"positive": 3, "uncertain": 2, "negative": 1, "not_mentioned": 0}
_STATUS: dict[str, Label] = {"present": "positive", "historical": "positive", "possible": "uncertain", "absent": "negative"}
#: the hedges that lean to the finding ("probable effusion", "most suggestive of edema"): such a mention is
#: uncertain, like every hedge (CheXpert's reading), and *leaning*: the triage reading states it
_PROBABLE = re.compile(r"(?:most |more )?(?:probable|probably|likely|borderline|suggestive of|suggests|suggesting|"
                       r"suspected|presumed|presumably|favored|favor|compatible with|consistent with|thought to be|"
                       r"felt to be|is likely|is probable|is suspected|is favored)")


@dataclass(frozen=True)
class LabelMention:
    """One mention: the observation (a CheXpert name or a triage flag), [start, end) in the report, its label;
    ``leaning``: uncertain, and every hedge on it leans to the finding ("probable", "likely", "most suggestive
    of")."""

    observation: str
    start: int
    end: int
    label: Label
    leaning: bool = False

    @property
    def stated(self) -> bool:
        """The triage reading: positive, or uncertain and leaning."""
        return self.label == "positive" or (self.label == "uncertain" and self.leaning)


@dataclass(frozen=True)
class _Compiled:
    mention: re.Pattern[str]
    normal: re.Pattern[str] | None
    borderline: re.Pattern[str] | None
    hedged: re.Pattern[str] | None
    weak: re.Pattern[str] | None
    attributed: re.Pattern[str] | None

    def spans(self, body: str) -> tuple[list[tuple[int, int]], list[tuple[int, int, Label, bool]]]:
        """The mentions ConText asserts, and the statements labelled by their form (label, leaning), in one
        sentence."""
        fixed: list[tuple[int, int, Label, bool]] = []
        forms: tuple[tuple[re.Pattern[str] | None, Label, bool], ...] = (
            (self.normal, "negative", False), (self.borderline, "uncertain", True), (self.hedged, "uncertain", False))
        for pattern, label, leaning in forms:
            if pattern is not None:
                fixed += [(m.start(), m.end(), label, leaning) for m in pattern.finditer(body)
                          if not any(a <= m.start() < b for a, b, _, _ in fixed)]
        found = [(m.start(), m.end()) for m in self.mention.finditer(body)]
        if self.weak is not None:
            weak = [m for m in self.weak.finditer(body) if not any(a <= m.start() < b for a, b in found)]
            # attributed: within two words after the weak mention, the report says what it is
            found += [(m.start(), m.end()) for m in weak
                      if self.attributed is None or not self.attributed.match(body, m.end())]
        spans = sorted((a, b) for a, b in found if not any(x <= a < y for x, y, _, _ in fixed))
        return spans, fixed


def _pattern(p: str | None) -> re.Pattern[str] | None:
    return re.compile(rf"(?<![a-z])(?:{p})(?![a-z])", re.I) if p else None


def _compile(rules: dict[str, _Rule]) -> dict[str, _Compiled]:
    out = {}
    for name, r in rules.items():
        mention = _pattern(r.mention)
        assert mention is not None
        attributed = (re.compile(rf"[\s,;:()-]*(?:[a-z]+\s+){{0,2}}?(?:{r.attributed})(?![a-z])", re.I)
                      if r.attributed else None)
        out[name] = _Compiled(mention, _pattern(r.normal), _pattern(r.borderline), _pattern(r.hedged),
                              _pattern(r.weak), attributed)
    return out


class RadiologyReportLabeler:
    """CheXpert observations and triage flags of report text (see the module's text)."""

    def __init__(self, extractor: ClinicalExtractor | None = None) -> None:
        # a report is read with the radiology rules (limitations) added; an extractor given is used as it is
        self.extractor = extractor or ClinicalExtractor(context=ConText(extra_rules=RADIOLOGY_RULES))
        self._rules = _compile({**_CHEXPERT, **_FLAGS})

    def mentions(self, text: str) -> list[LabelMention]:
        return [m for _, found in self._read(text) for m in found]

    def _read(self, text: str) -> list[tuple[Sentence, list[LabelMention]]]:
        """Each read sentence with its mentions."""
        read = []
        for sentence in self.extractor.sentences(text):
            if sentence.section in _UNREAD_SECTIONS:
                continue
            body = text[sentence.start:sentence.end]
            out: list[LabelMention] = []
            for name, rule in self._rules.items():
                spans, fixed = rule.spans(body)
                asserted = self.extractor.context.assert_mentions(body, spans, sentence.section) if spans else []
                for (a, b), (assertion, triggers) in zip(spans, asserted, strict=True):
                    status = _STATUS.get(assertion)
                    leaning = (status == "uncertain" and bool(triggers)
                               and all(_PROBABLE.fullmatch(" ".join(body[t.start:t.end].lower().split()))
                                       for t in triggers))
                    if status is not None:
                        out.append(LabelMention(name, sentence.start + a, sentence.start + b, status, leaning))
                out += [LabelMention(name, sentence.start + a, sentence.start + b, label, leaning)
                        for a, b, label, leaning in fixed]
            read.append((sentence, out))
        return read

    def _aggregate(self, names: tuple[str, ...], mentions: list[LabelMention]) -> dict[str, Label]:
        result: dict[str, Label] = dict.fromkeys(names, "not_mentioned")
        for m in mentions:
            if m.observation in result and _RANK[m.label] > _RANK[result[m.observation]]:
                result[m.observation] = m.label
        return result

    def chexpert(self, text: str) -> dict[str, Label]:
        """The 14 CheXpert observations of the report."""
        chexpert: dict[str, Label] = self.label(text)["chexpert"]
        return chexpert

    def flags(self, text: str) -> dict[str, Label]:
        """Each triage flag as the report states it."""
        return self._aggregate(FINDINGS, self.mentions(text))

    @staticmethod
    def _stated(mentions: list[LabelMention]) -> dict[str, int]:
        return {f: int(any(m.observation == f and m.stated for m in mentions)) for f in FINDINGS}

    def stated_present(self, text: str) -> dict[str, int]:
        """The triage reading of the report: 1 for each flag it states, positive or leaning (see the module's
        text), else 0. Training (laterality targets, validation drafts), the pipeline's draft check, the
        evaluation and the monitoring read reports with it."""
        return self._stated(self.mentions(text))

    def sides(self, text: str) -> dict[str, set[str]]:
        """The sides ("right", "left"; "bilateral" and "both" are both) named in the sentences where each flag is
        stated: a finding's laterality as its report gives it (the model's laterality targets)."""
        out: dict[str, set[str]] = {f: set() for f in FINDINGS}
        for sentence, found in self._read(text):
            named = {s.lower() for s in _SIDE.findall(text[sentence.start:sentence.end])}
            sides = {"right", "left"} if named & {"bilateral", "both"} else set()
            sides |= named & {"right", "left"}
            for m in found:
                if m.observation in out and m.stated:
                    out[m.observation] |= sides
        return out

    def sentence_meaning(self, sentence: str) -> tuple[frozenset[tuple[str, str]], frozenset[str]] | None:
        """What one sentence states: its (observation, label) pairs and the sides and sizes it names, the same for
        sentences that say the same in other words ("No pleural effusion." and "There is no pleural effusion.",
        "Small right pneumothorax." and "There is a small right pneumothorax."). None where it states no
        observation, or one that groups what the sentence tells apart (a support device, a fracture)."""
        mentions = self.mentions(sentence)
        if not mentions or any(m.observation in _GROUPING for m in mentions):
            return None
        words = {w.lower() for w in (*_SIDE.findall(sentence), *_SIZE.findall(sentence))}
        return frozenset((m.observation, m.label) for m in mentions), frozenset(words)

    def label(self, text: str) -> dict[str, Any]:
        """The 14 CheXpert observations, the triage flags (four-way) and the triage reading (``stated``)."""
        mentions = self.mentions(text)
        chexpert = self._aggregate(CHEXPERT_OBSERVATIONS, mentions)
        abnormal = any(v in ("positive", "uncertain") for k, v in chexpert.items()
                       if k not in ("No Finding", "Support Devices"))
        chexpert["No Finding"] = "not_mentioned" if abnormal else "positive"
        return {"chexpert": chexpert, "flags": self._aggregate(FINDINGS, mentions), "stated": self._stated(mentions)}
