"""Rule-based radiology report labeler: is each triage finding stated present, absent, uncertain or not mentioned?

Sentence by sentence, each finding's mentions are matched by synonym patterns; a mention is *absent*
when a negation cue precedes it in the same clause ("No pleural effusion or pneumothorax."), *uncertain*
when a hedge cue is in its clause ("cannot be excluded", "possible"), otherwise *present*. The labeler
also reads the laterality of present mentions. It is how drafts are scored against the manifest
("stated as present"): a finding counts as stated when at least one mention is present.

Why a second labeler beside :class:`~clinical_mm.extraction.chexpert.RadiologyReportLabeler` (the one the
pipeline, ``label-report`` and evaluation use): the shipped model was trained and validated with this one
(laterality targets of its training reports, draft F1 in its manifest), so it is kept, under a name that says
so, until the model is retrained with the CheXpert labeler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from clinical_mm.core.findings import FINDINGS

__all__ = ["FindingMention", "TrainingReportLabeler"]

Status = Literal["present", "absent", "uncertain", "not_mentioned"]

_PATTERNS: dict[str, str] = {
    "cardiomegaly": r"cardiomegaly|heart is (?:\w+ )?enlarged|enlarge(?:d|ment of the) cardiac silhouette|"
                    r"cardiac silhouette is (?:\w+ )?enlarged|enlarged heart",
    "pleural_effusion": r"(?:pleural )?effusions?|blunting of (?:the|both) .{0,12}costophrenic",
    "pneumothorax": r"pneumothora(?:x|ces)",
    "consolidation": r"consolidat(?:ion|ive)|airspace (?:opacit(?:y|ies)|disease)|pneumonia",
    "nodule_mass": r"nodules?|mass(?:es)?\b",
    "atelectasis": r"atelectasis|atelectatic|collapse of the",
    "pulmonary_edema": r"(?:pulmonary |interstitial |alveolar )?o?edema|vascular congestion|kerley",
}
_NEGATION = re.compile(
    r"\b(?:no|not|without|negative for|free of|resolved|resolution of|absence of|clear of|ruled out)\b", re.I
)
_HEDGE = re.compile(
    r"\b(?:possible|possibly|probable|may represent|may be|cannot be (?:excluded|ruled out)|questionable|"
    r"suspicious for|concerning for|likely|versus|vs)\b", re.I
)
_CLAUSE = re.compile(r"[;,:]|\bbut\b|\bhowever\b|\bwhich\b|\bwith\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SIDE = re.compile(r"\b(right|left|bilateral|both)\b", re.I)


@dataclass(frozen=True)
class FindingMention:
    finding: str
    status: Status
    start: int
    end: int
    sides: frozenset[str]


class TrainingReportLabeler:
    """Labels the triage findings in report text, as the shipped model's training read them."""

    def __init__(self) -> None:
        self._patterns = {k: re.compile(rf"\b(?:{v})", re.I) for k, v in _PATTERNS.items()}

    def mentions(self, text: str) -> list[FindingMention]:
        out: list[FindingMention] = []
        pos = 0
        for sentence in _SENTENCE.split(text):
            offset = text.find(sentence, pos)
            pos = offset + len(sentence)
            for name, pattern in self._patterns.items():
                for m in pattern.finditer(sentence):
                    # the clause holding the mention, up to the mention
                    starts = [c.end() for c in _CLAUSE.finditer(sentence, 0, m.start())]
                    clause_start = starts[-1] if starts else 0
                    before = sentence[clause_start:m.start()]
                    ends = [c.start() for c in _CLAUSE.finditer(sentence, m.end())]
                    clause = sentence[clause_start:(ends[0] if ends else len(sentence))]
                    neg_scope = sentence[:m.start()] if not starts else before
                    if _NEGATION.search(neg_scope):
                        status: Status = "absent"
                    elif _HEDGE.search(clause) and not _HEDGE.search(sentence[: clause_start]) and name != "consolidation":
                        status = "uncertain"
                    elif _HEDGE.search(before):
                        status = "uncertain"
                    else:
                        status = "present"
                    sides = frozenset(s.lower().replace("both", "bilateral") for s in _SIDE.findall(sentence))
                    out.append(FindingMention(name, status, offset + m.start(), offset + m.end(), sides))
        return out

    def label(self, text: str) -> dict[str, Status]:
        """Each finding's status: present beats uncertain beats absent beats not mentioned."""
        rank = {"present": 3, "uncertain": 2, "absent": 1, "not_mentioned": 0}
        result: dict[str, Status] = dict.fromkeys(FINDINGS, "not_mentioned")
        for m in self.mentions(text):
            if rank[m.status] > rank[result[m.finding]]:
                result[m.finding] = m.status
        return result

    def stated_present(self, text: str) -> dict[str, int]:
        """1 for each finding the text states as present, else 0."""
        return {k: int(v == "present") for k, v in self.label(text).items()}

    def sides(self, text: str) -> dict[str, set[str]]:
        """Sides named with the present mentions of each finding (``right``, ``left``)."""
        out: dict[str, set[str]] = {k: set() for k in FINDINGS}
        for m in self.mentions(text):
            if m.status == "present":
                for s in m.sides:
                    out[m.finding] |= {"right", "left"} if s == "bilateral" else {s}
        return out
