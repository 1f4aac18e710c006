"""Radiology report labeler: each of the 14 CheXpert observations and each triage flag as positive, negative,
uncertain or not mentioned.

The report is read as ``clinical-mm extract`` reads notes: sections and sentences, then ConText asserts every
mention of every observation in its sentence (so "no pneumothorax", "cannot exclude pneumonia" and "the
previously seen effusion has resolved" are labelled as a radiologist means them). Sentences of the indication,
history, technique and comparison sections are not read: "rule out pneumonia" there is the question, not the
answer. Mentions are phrase patterns per observation (after the CheXpert labeler's mention lists, Irvin et al.
2019, written anew here); some observations also have *normal* statements ("heart size is normal": negative)
and *borderline* ones ("borderline cardiomegaly": uncertain).

A mention asserted present or historical is positive, possible is uncertain, absent is negative; a mention
about a relative or a hypothetical one counts as not mentioned. Per observation, positive beats uncertain beats
negative (CheXpert's aggregation). *No Finding* is positive when no observation other than Support Devices is
positive or uncertain, and not mentioned otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from clinical_mm.core.findings import FINDINGS
from clinical_mm.extraction.extractor import ClinicalExtractor

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
    mention: str
    normal: str | None = None      # a statement that it is normal: negative
    borderline: str | None = None  # a statement that it is borderline: uncertain


_HEART = _Rule(
    r"cardiomegaly|enlarge(?:d|ment of the) (?:cardiac silhouette|heart)|enlarged heart|cardiac enlargement|"
    r"(?:heart|cardiac silhouette|heart size) (?:is|appears|remains) (?:\w+ )?enlarged",
    normal=r"(?:heart size|heart|cardiac silhouette|cardiac size)(?: is| appears| remains)? (?:normal|within normal "
           r"limits)(?: in size)?|normal (?:heart size|heart|cardiac silhouette|cardiac size|size of the heart)|"
           r"heart is not enlarged|heart and mediastinum (?:are|is) (?:normal|within normal limits|unremarkable)|"
           r"(?:cardiac|heart) and mediastinal (?:contours|silhouettes?) (?:are|is) (?:normal|within normal limits)",
    borderline=r"borderline (?:cardiomegaly|heart size|enlarged|enlargement)|(?:upper|top)[- ](?:limits? of )?normal"
               r" (?:heart|cardiac)|heart size is (?:at the )?(?:upper|top)[- ](?:limits? of )?normal",
)
_EFFUSION = _Rule(r"(?<!pericardial )(?<!pericardial\s)effusions?|pleural fluid|hydrothorax|"
                  r"blunting of (?:the |both )?(?:\w+ )?costophrenic")
_PNEUMOTHORAX = _Rule(r"pneumothora(?:x|ces)|ptx")
_ATELECTASIS = _Rule(r"atelecta(?:sis|tic)|collapse of the \w+ lobe|collapsed (?:lung|lobe)|"
                     r"(?:lung|lobe|lobar|segmental) collapse")
_EDEMA = _Rule(r"(?<!soft tissue )(?<!subcutaneous )(?:pulmonary |interstitial |alveolar )?o?edema|heart failure|"
               r"\bchf\b|vascular congestion|pulmonary congestion|indistinct(?:ness of the)? (?:pulmonary )?vasculature|"
               r"vascular prominence|kerley b?")
_LESION = _Rule(r"nodules?|nodular (?:densit(?:y|ies)|opacit(?:y|ies)|opacification)|mass(?:es)?\b|lump|"
                r"cavitary lesion|carcinoma|neoplasm|tumou?r|lung lesion")

_CHEXPERT: dict[str, _Rule] = {
    "Enlarged Cardiomediastinum": _Rule(
        r"widen(?:ed|ing of the) (?:superior )?mediastinum|mediastinal widening|widened mediastin\w*|"
        r"enlarge(?:d|ment of the) (?:cardio)?mediastinal (?:silhouette|contours?)|"
        r"(?:cardio)?mediastinal (?:silhouette|contours?) (?:is|are|appears?) (?:\w+ )?(?:enlarged|widened|prominent)|"
        r"mediastinal (?:enlargement|mass)|mediastinum (?:is|appears|remains) (?:\w+ )?(?:widened|enlarged|wide)",
        normal=r"(?:cardio)?mediastinal (?:silhouette|contours?|structures)(?: is| are| appears?)? (?:normal|within normal "
               r"limits|unremarkable)|normal (?:cardio)?mediastinal (?:silhouette|contours?)|mediastinum is "
               r"(?:normal|not widened)|heart and mediastinum (?:are|is) (?:normal|within normal limits|unremarkable)|"
               r"(?:cardiac|heart) and mediastinal (?:contours|silhouettes?) (?:are|is) (?:normal|within normal limits)"),
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
    "Pneumonia": _Rule(r"pneumonias?|bronchopneumonia|infection|infectious(?: process)?"),
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
    "consolidation": _Rule(r"consolidat(?:ion|ions|ive|ed)|airspace (?:opacit(?:y|ies)|disease)|pneumonias?"),
    "nodule_mass": _Rule(r"nodules?|nodular (?:densit(?:y|ies)|opacit(?:y|ies))|mass(?:es)?\b"),
    "atelectasis": _ATELECTASIS,
    "pulmonary_edema": _EDEMA,
}
assert set(_FLAGS) == set(FINDINGS)

_RANK: dict[str, int] = {"positive": 3, "uncertain": 2, "negative": 1, "not_mentioned": 0}
_STATUS: dict[str, Label] = {"present": "positive", "historical": "positive", "possible": "uncertain", "absent": "negative"}


@dataclass(frozen=True)
class LabelMention:
    """One mention: the observation (a CheXpert name or a triage flag), [start, end) in the report, its label."""

    observation: str
    start: int
    end: int
    label: Label


_Compiled = tuple[re.Pattern[str], re.Pattern[str] | None, re.Pattern[str] | None]


def _pattern(p: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z])(?:{p})(?![a-z])", re.I)


def _compile(rules: dict[str, _Rule]) -> dict[str, _Compiled]:
    return {name: (_pattern(r.mention), _pattern(r.normal) if r.normal else None,
                   _pattern(r.borderline) if r.borderline else None) for name, r in rules.items()}


class RadiologyReportLabeler:
    """CheXpert observations and triage flags of report text (see the module's text)."""

    def __init__(self, extractor: ClinicalExtractor | None = None) -> None:
        self.extractor = extractor or ClinicalExtractor()
        self._rules = _compile({**_CHEXPERT, **_FLAGS})

    def mentions(self, text: str) -> list[LabelMention]:
        out: list[LabelMention] = []
        for sentence in self.extractor.sentences(text):
            if sentence.section in _UNREAD_SECTIONS:
                continue
            body = text[sentence.start:sentence.end]
            for name, (mention, normal, borderline) in self._rules.items():
                fixed: list[tuple[int, int, Label]] = []
                if normal is not None:
                    fixed += [(m.start(), m.end(), "negative") for m in normal.finditer(body)]
                if borderline is not None:
                    fixed += [(m.start(), m.end(), "uncertain") for m in borderline.finditer(body)]
                spans = [(m.start(), m.end()) for m in mention.finditer(body)
                         if not any(a <= m.start() < b for a, b, _ in fixed)]
                asserted = self.extractor.context.assert_mentions(body, spans, sentence.section) if spans else []
                for (a, b), (assertion, _) in zip(spans, asserted, strict=True):
                    status = _STATUS.get(assertion)
                    if status is not None:
                        out.append(LabelMention(name, sentence.start + a, sentence.start + b, status))
                out += [LabelMention(name, sentence.start + a, sentence.start + b, label) for a, b, label in fixed]
        return out

    def _aggregate(self, names: tuple[str, ...], mentions: list[LabelMention]) -> dict[str, Label]:
        result: dict[str, Label] = dict.fromkeys(names, "not_mentioned")
        for m in mentions:
            if m.observation in result and _RANK[m.label] > _RANK[result[m.observation]]:
                result[m.observation] = m.label
        return result

    def chexpert(self, text: str) -> dict[str, Label]:
        """The 14 CheXpert observations of the report."""
        return self.label(text)["chexpert"]

    def flags(self, text: str) -> dict[str, Label]:
        """Each triage flag as the report states it."""
        return self._aggregate(FINDINGS, self.mentions(text))

    def label(self, text: str) -> dict[str, dict[str, Label]]:
        mentions = self.mentions(text)
        chexpert = self._aggregate(CHEXPERT_OBSERVATIONS, mentions)
        abnormal = any(v in ("positive", "uncertain") for k, v in chexpert.items()
                       if k not in ("No Finding", "Support Devices"))
        chexpert["No Finding"] = "not_mentioned" if abnormal else "positive"
        return {"chexpert": chexpert, "flags": self._aggregate(FINDINGS, mentions)}
