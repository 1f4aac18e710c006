"""How the report labeler's triage flags agree with people's indexing of real reports: the MeSH problem terms
of the Indiana University chest radiograph collection (Open-i; Demner-Fushman et al., JAMIA 2016).

Input: one JSON object per line, ``{"uid", "MeSH", "indication", "comparison", "findings", "impression"}``, the
MeSH field terms separated by ";", each a heading and its qualifiers separated by "/" ("Pleural
Effusion/right/small"; "normal" when the indexer found nothing). The labeler reads the report as its sections
("INDICATION:", "COMPARISON:", "FINDINGS:", "IMPRESSION:"), so the indication is not read as a finding.

The mapping from MeSH terms to flags (:data:`MESH_FLAGS`), a term maps when its heading is listed and, where a
qualifier is listed too, when the term has that qualifier:

- strict: Cardiomegaly; Pleural Effusion; Pneumothorax, Hydropneumothorax, Hemopneumothorax; Consolidation,
  Pneumonia; Nodule, Mass; Pulmonary Atelectasis; Pulmonary Edema.
- near-synonyms (added with ``near=True``, the figure the issue's bar is set on): Cardiac Shadow/enlarged as
  cardiomegaly; Costophrenic Angle/blunted as effusion; Infiltrate and Airspace Disease as consolidation;
  Pulmonary Congestion as edema; a round Opacity or Density as nodule/mass.

The reference is incomplete (an indexer who wrote "Cardiomegaly" may not have indexed the effusion the same
report states), so part of any disagreement is the reference's; ``--examples`` prints them to be read.

A report's flag is predicted three ways: as the labeler's triage reading states it (``stated``: positive, or
uncertain with every hedge leaning to the finding, "probable", "likely"; see
:mod:`clinical_mm.extraction.chexpert`), the reading training, the draft check and the evaluation use; and with
every uncertain label counted as negative, then as positive.

Which part of the set was tuned on: :func:`mesh_part` splits by a hash of the report id, so the split is the
same on every machine and for the held-out half; only the "tune" part's disagreements were read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from clinical_mm.core.findings import FINDINGS
from clinical_mm.core.metrics import precision_recall_f1
from clinical_mm.evaluation.annotated_jsonl import read_annotated
from clinical_mm.extraction.chexpert import RadiologyReportLabeler

__all__ = ["MESH_FLAGS", "MESH_PARTS", "READINGS", "MeshReport", "load_mesh_reports", "mesh_flags", "mesh_part",
           "score_mesh"]

MESH_PARTS = ("tune", "untuned", "all")

#: flag -> (heading, qualifier or None) pairs: strict first, then near-synonyms
MESH_FLAGS: dict[str, tuple[tuple[tuple[str, str | None], ...], tuple[tuple[str, str | None], ...]]] = {
    "cardiomegaly": ((("cardiomegaly", None),), (("cardiac shadow", "enlarged"),)),
    "pleural_effusion": ((("pleural effusion", None),), (("costophrenic angle", "blunted"),)),
    "pneumothorax": ((("pneumothorax", None), ("hydropneumothorax", None), ("hemopneumothorax", None)), ()),
    "consolidation": ((("consolidation", None), ("pneumonia", None)),
                      (("infiltrate", None), ("airspace disease", None))),
    "nodule_mass": ((("nodule", None), ("mass", None)), (("opacity", "round"), ("density", "round"))),
    "atelectasis": ((("pulmonary atelectasis", None),), ()),
    "pulmonary_edema": ((("pulmonary edema", None),), (("pulmonary congestion", None),)),
}
assert set(MESH_FLAGS) == set(FINDINGS)


@dataclass(frozen=True)
class MeshReport:
    uid: str
    text: str
    mesh: str


def mesh_part(uid: str) -> Literal["tune", "untuned"]:
    """"tune" when the first byte of sha256("clinical-mm-iu" + uid) is even, else "untuned"."""
    return "tune" if hashlib.sha256(("clinical-mm-iu" + uid).encode()).digest()[0] % 2 == 0 else "untuned"


def mesh_flags(mesh: str, near: bool = True) -> set[str]:
    """The flags a report's MeSH field states."""
    out: set[str] = set()
    for term in mesh.split(";"):
        parts = [p.strip().lower() for p in term.split("/")]
        heading, qualifiers = parts[0], set(parts[1:])
        for flag, (strict, synonyms) in MESH_FLAGS.items():
            for h, q in (*strict, *(synonyms if near else ())):
                if heading == h and (q is None or q in qualifiers):
                    out.add(flag)
    return out


def _text(row: dict[str, Any]) -> str:
    parts = [f"{name.upper()}: {str(row.get(name) or '').strip()}" for name in
             ("indication", "comparison", "findings", "impression") if str(row.get(name) or "").strip()]
    return "\n".join(parts)


def _mesh_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"uid": str(row["uid"]), "text": _text(row), "mesh": str(row["MeSH"])}


def load_mesh_reports(path: Path) -> list[MeshReport]:
    return [MeshReport(**r) for r in read_annotated(path, _mesh_row, "{uid, MeSH, findings, impression, ...}")]


def _table(pairs: list[tuple[set[str], set[str]]]) -> dict[str, Any]:
    """Per flag precision/recall/F1 and support, micro and macro F1."""
    by_flag = {}
    for f in FINDINGS:
        tp = sum(f in g and f in p for g, p in pairs)
        fp = sum(f not in g and f in p for g, p in pairs)
        fn = sum(f in g and f not in p for g, p in pairs)
        by_flag[f] = {**precision_recall_f1(tp, fp, fn), "support": tp + fn}
    micro = precision_recall_f1(*(sum(int(v[k]) for v in by_flag.values()) for k in ("tp", "fp", "fn")))
    macro = sum(float(v["f1"]) for v in by_flag.values()) / len(by_flag)
    return {"micro": micro, "macro_f1": macro, "by_flag": by_flag}


#: how a report's flags are predicted: the labeler's triage reading, and every uncertain label one way or the other
READINGS = ("stated", "uncertain_as_negative", "uncertain_as_positive")


def _predicted(labels: dict[str, Any], reading: str) -> set[str]:
    if reading == "stated":
        return {f for f, v in labels["stated"].items() if v}
    accepted = {"positive", "uncertain"} if reading == "uncertain_as_positive" else {"positive"}
    return {f for f, v in labels["flags"].items() if v in accepted}


def _score_part(rows: list[tuple[MeshReport, dict[str, Any]]], near: bool, examples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows)}
    gold = [mesh_flags(r.mesh, near) for r, _ in rows]
    predicted = {reading: [_predicted(labels, reading) for _, labels in rows] for reading in READINGS}
    for reading in READINGS:
        out[reading] = _table(list(zip(gold, predicted[reading], strict=True)))
    normal = [(r.mesh.strip().lower() == "normal", labels["chexpert"]["No Finding"] == "positive")
              for r, labels in rows]
    out["no_finding_agreement"] = sum(a == b for a, b in normal) / len(normal) if normal else None
    shown: dict[str, list[dict[str, Any]]] = {}
    for (r, labels), said, stated in zip(rows, gold, predicted["stated"], strict=True):
        for f in FINDINGS:
            if (f in said) != (f in stated) and len(shown.setdefault(f, [])) < examples:
                shown[f].append({"uid": r.uid, "mesh": r.mesh, "label": labels["flags"][f], "text": r.text})
    if examples:
        out["disagreements"] = shown
    return out


def score_mesh(path: Path, near: bool = True, examples: int = 0, part: str = "all",
               labeler: RadiologyReportLabeler | None = None) -> dict[str, Any]:
    """The labeler against the MeSH indexing of ``path``: the tuned part and the untuned part, each read three
    ways (:data:`READINGS`), and ``examples`` disagreements of the triage reading per flag where asked."""
    if part not in MESH_PARTS:
        raise ValueError(f"unknown part {part!r}")
    labeler = labeler or RadiologyReportLabeler()
    parts = ("tune", "untuned") if part == "all" else (part,)
    by_part: dict[str, list[tuple[MeshReport, dict[str, Any]]]] = {p: [] for p in parts}
    for r in load_mesh_reports(path):
        if mesh_part(r.uid) in by_part:  # only the part asked for is read
            by_part[mesh_part(r.uid)].append((r, labeler.label(r.text)))
    return {"mapping": "near-synonyms" if near else "strict",
            **{p: _score_part(rows, near, examples) for p, rows in by_part.items()}}
