"""Questions about a chest radiograph and their answers, derived from what a study is known to show.

The source is a study's ground truth in the synthetic manifest's ``specs`` column (each drawn finding's side,
zone and size; each support device's side, detail and count): :func:`questions_for` asks about presence (every
flag and incidental finding, present or not), side, size, location and the number of flagged findings. The
answers are short, canonical phrases; :func:`normalise_answer` maps a free-text answer onto the same form, so
that accuracy is an exact match after normalisation (the VQA convention). Question types:
:data:`QUESTION_TYPES`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from clinical_mm.core.findings import FINDINGS, INCIDENTAL_FINDINGS

__all__ = [
    "DETAIL_TARGETS", "QUESTION_TYPES", "Question", "detail_targets", "finding_names", "normalise_answer",
    "parse_detail", "questions_for",
]

QUESTION_TYPES: Final[tuple[str, ...]] = ("presence", "side", "size", "location", "count")

#: how questions name each finding (a few phrasings each; the first is the canonical one)
_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "cardiomegaly": ("cardiomegaly", "an enlarged heart"),
    "pleural_effusion": ("a pleural effusion", "pleural fluid"),
    "pneumothorax": ("a pneumothorax", "a collapsed lung"),
    "consolidation": ("consolidation", "an airspace opacity"),
    "nodule_mass": ("a lung nodule or mass", "a pulmonary nodule"),
    "atelectasis": ("atelectasis", "collapse of lung tissue"),
    "pulmonary_edema": ("pulmonary edema", "fluid in the lungs"),
    "endotracheal_tube": ("an endotracheal tube", "a breathing tube"),
    "central_line": ("a central venous catheter", "a central line"),
    "nasogastric_tube": ("a nasogastric tube", "a feeding tube"),
    "pacemaker": ("a pacemaker", "a cardiac device"),
    "sternotomy_wires": ("sternotomy wires", "sternal wires"),
    "rib_fracture": ("a rib fracture", "a broken rib"),
    "hyperinflation": ("hyperinflation", "hyperinflated lungs"),
}
_SIDED: Final[frozenset[str]] = frozenset({"pleural_effusion", "pneumothorax", "consolidation", "nodule_mass",
                                           "atelectasis", "central_line", "pacemaker", "rib_fracture"})
_LOBE: Final[dict[tuple[str, str], str]] = {
    ("right", "upper"): "right upper lobe", ("right", "middle"): "right middle lobe",
    ("right", "lower"): "right lower lobe", ("left", "upper"): "left upper lobe",
    ("left", "middle"): "lingula", ("left", "lower"): "left lower lobe",
}
_NUMBERS: Final[tuple[str, ...]] = ("zero", "one", "two", "three", "four", "five", "six", "seven")


@dataclass(frozen=True)
class Question:
    """A question, its canonical answer, its type (:data:`QUESTION_TYPES`), the finding it is about (``""`` for
    the count) and ``evidence``: a short statement of the fact that answers it (``small right pneumothorax``),
    what a reader of the image would note; the language model learns to answer from such statements before it
    learns to answer from the image."""

    text: str
    answer: str
    kind: str
    finding: str
    evidence: str


def _bare(name: str) -> str:
    """A finding's name without its article (``pleural effusion``)."""
    return re.sub(r"^(a|an) ", "", _NAMES[name][0])


def finding_names(name: str) -> tuple[str, ...]:
    """The ways questions name a finding, without articles (``pleural effusion``, ``pleural fluid``)."""
    return tuple(re.sub(r"^(a|an) ", "", n) for n in _NAMES[name])


def _size(spec: Mapping[str, Any]) -> str | None:
    name = spec["name"]
    if name in ("pleural_effusion", "pneumothorax"):
        return str(spec["size"])
    if name == "nodule_mass":
        return "mass" if float(spec.get("size_mm", 0.0)) >= 30 else "nodule"
    if name == "cardiomegaly":
        sev = float(spec.get("severity", 0.5))
        return "mild" if sev < 0.4 else ("moderate" if sev < 0.75 else "marked")
    return None


def _location(spec: Mapping[str, Any]) -> str | None:
    name, side = spec["name"], spec.get("side", "")
    if name in ("consolidation", "nodule_mass") and side in ("left", "right"):
        return _LOBE[(side, spec["zone"])]
    if name == "central_line":
        return "superior vena cava" if spec.get("tip") == "SVC" else "right atrium"
    if name == "nasogastric_tube":
        return "stomach" if spec.get("tip") == "stomach" else "esophagus"
    return None


def questions_for(specs: Iterable[Mapping[str, Any]], variant: int = 0) -> list[Question]:
    """Every question about a study whose drawn findings are ``specs`` (the manifest's ``specs`` column).

    Presence of all fourteen findings (yes/no), then side, size and location of each present finding where they
    apply, then the count of flagged findings. ``variant`` picks the phrasing of each finding's name (0: the
    canonical one), for training on several.
    """
    present = {str(s["name"]): s for s in specs}
    out: list[Question] = []
    for name in (*FINDINGS, *INCIDENTAL_FINDINGS):
        label = _NAMES[name][variant % len(_NAMES[name])]
        verb = "Are there" if label.endswith(("wires", "lungs")) else "Is there"
        here = name in present
        out.append(Question(f"{verb} {label}?", "yes" if here else "no", "presence", name,
                            f"{_bare(name)} present." if here else f"no {_bare(name)}."))
    for name, spec in present.items():
        if name not in _NAMES:
            continue
        bare = _bare(name)
        side = str(spec.get("side", ""))
        if name in _SIDED and side in ("left", "right", "bilateral"):
            answer = "both" if side == "bilateral" else side
            out.append(Question(f"Which side is the {bare} on?", answer, "side", name, f"{bare} on {answer} sides."
                                if answer == "both" else f"{bare} on the {answer}."))
        size = _size(spec)
        if size is not None:
            out.append(Question(f"How large is the {bare}?", size, "size", name, f"{size} {bare}."))
        where = _location(spec)
        if where is not None:
            out.append(Question(f"Where is the {bare}?", where, "location", name, f"{bare} in the {where}."))
    n = sum(1 for f in FINDINGS if f in present)
    out.append(Question("How many of the seven triage findings are present?", _NUMBERS[n], "count", "",
                        f"{_NUMBERS[n]} triage findings: " + ", ".join(_bare(f) for f in FINDINGS if f in present)
                        + "."))
    return out


#: what the image encoder learns to read beyond presence (``heads.detail`` of the model configuration): each
#: ``finding.kind:answer|answer`` is true where the study's question of that kind about that finding has one of
#: the answers, false where it has another, unknown where it has none (the finding is absent). Sizes are ordinal
#: (moderate or larger, large); the flags' sides are the encoder's lateral targets already.
DETAIL_TARGETS: Final[tuple[str, ...]] = (
    "pleural_effusion.size:moderate|large", "pleural_effusion.size:large",
    "pneumothorax.size:moderate|large", "pneumothorax.size:large",
    "nodule_mass.size:mass", "cardiomegaly.size:moderate|marked", "cardiomegaly.size:marked",
    "central_line.side:right", "central_line.side:left", "pacemaker.side:right", "pacemaker.side:left",
    "rib_fracture.side:right", "rib_fracture.side:left",
    "central_line.location:right atrium", "nasogastric_tube.location:stomach",
    "consolidation.location:right upper lobe|left upper lobe", "consolidation.location:right lower lobe|left lower lobe",
    "nodule_mass.location:right upper lobe|left upper lobe", "nodule_mass.location:right lower lobe|left lower lobe",
)


def parse_detail(target: str) -> tuple[str, str, frozenset[str]]:
    """``finding.kind:answer|answer`` -> (finding, question type, answers); ValueError when malformed."""
    m = re.fullmatch(r"([a-z_]+)\.([a-z]+):([^|:]+(?:\|[^|:]+)*)", target)
    if m is None or m.group(1) not in _NAMES or m.group(2) not in QUESTION_TYPES or m.group(2) == "presence":
        raise ValueError(f"detail target {target!r} is not finding.kind:answer|answer (kind: side, size, location, "
                         "count)")
    return m.group(1), m.group(2), frozenset(m.group(3).split("|"))


def detail_targets(specs: Iterable[Mapping[str, Any]] | None, targets: Iterable[str]) -> list[float]:
    """Each of ``targets`` (:data:`DETAIL_TARGETS`' form) for a study drawn as ``specs``: 1.0 or 0.0, -1.0 where
    the study has no such question or its ground truth is unknown (``specs`` None)."""
    answers = {(q.finding, q.kind): q.answer for q in questions_for(specs)} if specs is not None else {}
    out = []
    for target in targets:
        finding, kind, wanted = parse_detail(target)
        answer = answers.get((finding, kind))
        out.append(-1.0 if answer is None else float(answer in wanted))
    return out


_ALIASES: Final[dict[str, str]] = {
    "bilateral": "both", "both sides": "both", "right side": "right", "left side": "left", "svc": "superior vena cava",
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
    "none": "zero", "true": "yes", "false": "no", "present": "yes", "absent": "no",
}


def normalise_answer(text: str) -> str:
    """Lower case, no punctuation or articles, one space between words, common synonyms mapped
    (``Bilateral.`` -> ``both``, ``3`` -> ``three``)."""
    t = re.sub(r"[^a-z0-9 ]+", " ", text.lower())
    t = re.sub(r"\b(the|a|an|is|it|on)\b", " ", t)
    t = " ".join(t.split())
    return _ALIASES.get(t, t)

