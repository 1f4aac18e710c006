"""Reference radiology reports for synthetic studies: findings and impression in varied phrasing.

Present findings are described with laterality, zone and size; some absent findings are stated as
pertinent negatives ("No pneumothorax."), as radiologists do.
"""

from __future__ import annotations

import numpy as np

from clinical_mm.synth.chest_phantom import FindingSpec, IncidentalSpec

__all__ = ["ReportWriter"]

_ZONE_LOBE = {
    ("right", "upper"): "right upper lobe",
    ("right", "middle"): "right middle lobe",
    ("right", "lower"): "right lower lobe",
    ("left", "upper"): "left upper lobe",
    ("left", "middle"): "lingula",
    ("left", "lower"): "left lower lobe",
}

_NEGATIVES = {
    "cardiomegaly": ["Heart size is normal.", "The cardiac silhouette is within normal limits.", "Normal heart size."],
    "pleural_effusion": ["No pleural effusion.", "No pleural effusions.", "There is no pleural effusion."],
    "pneumothorax": ["No pneumothorax.", "There is no pneumothorax.", "No evidence of pneumothorax."],
    "consolidation": ["No focal consolidation.", "No focal airspace consolidation.", "There is no consolidation."],
    "nodule_mass": ["No suspicious pulmonary nodule or mass.", "No pulmonary nodules."],
    "atelectasis": ["No atelectasis.", "No significant atelectasis."],
    "pulmonary_edema": ["No pulmonary edema.", "No evidence of pulmonary edema.", "No interstitial edema."],
}


_ORDINAL = {1: "1st", 2: "2nd", 3: "3rd"}


def _ordinal(n: int) -> str:
    return _ORDINAL.get(n, f"{n}th")


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


class ReportWriter:
    """Writes the findings and impression sections for a study's findings."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def _side(self, side: str) -> str:
        return "bilateral" if side == "bilateral" else side

    def _finding_sentence(self, f: FindingSpec) -> tuple[str, str]:
        """Return (findings sentence, impression phrase)."""
        rng = self.rng
        side = self._side(f.side)
        if f.name == "cardiomegaly":
            degree = "mild" if f.severity < 0.4 else ("moderate" if f.severity < 0.75 else "marked")
            s = _pick(rng, [
                f"The heart is {degree}ly enlarged." if degree != "marked" else "The heart is markedly enlarged.",
                f"There is {degree} cardiomegaly.",
                f"{degree.capitalize()} enlargement of the cardiac silhouette.",
                "The cardiac silhouette is enlarged.",
            ])
            return s, _pick(rng, ["Cardiomegaly.", f"{degree.capitalize()} cardiomegaly."])
        if f.name == "pleural_effusion":
            if side == "bilateral":
                s = _pick(rng, [
                    f"{f.size.capitalize()} bilateral pleural effusions.",
                    f"Bilateral {f.size} pleural effusions, larger on the right.",
                    f"There are {f.size} bilateral pleural effusions with blunting of both costophrenic angles.",
                ])
                return s, f"{f.size.capitalize()} bilateral pleural effusions."
            s = _pick(rng, [
                f"{f.size.capitalize()} {side} pleural effusion.",
                f"There is a {f.size} {side} pleural effusion.",
                f"{f.size.capitalize()} {side} pleural effusion with blunting of the {side} costophrenic angle.",
            ])
            return s, f"{f.size.capitalize()} {side} pleural effusion."
        if f.name == "pneumothorax":
            s = _pick(rng, [
                f"{f.size.capitalize()} {side} apical pneumothorax.",
                f"There is a {f.size} {side} pneumothorax with a visible pleural line.",
                f"{f.size.capitalize()} {side} pneumothorax.",
            ])
            return s, f"{f.size.capitalize()} {side} pneumothorax."
        if f.name == "consolidation":
            where = _ZONE_LOBE[(f.side, f.zone)] if f.side in ("left", "right") else f"{f.zone} lungs"
            s = _pick(rng, [
                f"Focal consolidation in the {where}.",
                f"There is airspace consolidation in the {where}.",
                f"Patchy consolidation in the {where}, which may represent pneumonia.",
            ])
            return s, _pick(rng, [f"Consolidation in the {where}.", f"{where.capitalize()} consolidation, likely pneumonia."])
        if f.name == "nodule_mass":
            where = _ZONE_LOBE[(f.side, f.zone)] if f.side in ("left", "right") else f"{f.zone} lungs"
            if f.size_mm >= 30:
                cm = f"{f.size_mm / 10:.1f} cm"
                s = _pick(rng, [f"A {cm} mass in the {where}.", f"There is a {cm} mass in the {where}."])
                return s, f"{cm} {where} mass, further evaluation with CT is recommended."
            mm = f"{round(f.size_mm):d} mm"
            s = _pick(rng, [f"A {mm} nodule in the {where}.", f"There is a {mm} pulmonary nodule in the {where}."])
            return s, f"{mm} {where} nodule; CT follow-up is recommended."
        if f.name == "atelectasis":
            base = "both bases" if side == "bilateral" else f"the {side} base"
            s = _pick(rng, [
                f"Linear atelectasis at {base}.",
                f"Plate-like atelectasis at {base}.",
                f"Subsegmental atelectasis at {base}.",
            ])
            return s, f"Atelectasis at {base}."
        if f.name == "pulmonary_edema":
            s = _pick(rng, [
                "Bilateral perihilar opacities consistent with pulmonary edema.",
                "Interstitial pulmonary edema with Kerley B lines.",
                "Pulmonary vascular congestion with interstitial edema.",
            ])
            return s, _pick(rng, ["Pulmonary edema.", "Interstitial pulmonary edema."])
        raise ValueError(f"unknown finding {f.name!r}")

    def write(self, findings: list[FindingSpec]) -> tuple[str, str]:
        """Return (findings section, impression section)."""
        rng = self.rng
        present = {f.name for f in findings}
        sentences: list[str] = []
        impressions: list[str] = []
        for f in findings:
            s, imp = self._finding_sentence(f)
            sentences.append(s)
            impressions.append(imp)
        if not present & {"consolidation", "pulmonary_edema", "nodule_mass", "atelectasis", "pleural_effusion"}:
            if rng.random() < 0.5:
                sentences.append(_pick(rng, ["The lungs are clear.", "Lungs are clear bilaterally."]))
        negatives = [n for n in _NEGATIVES if n not in present]
        order = rng.permutation(len(negatives))
        n_neg = int(rng.integers(1, min(4, len(negatives)) + 1)) if negatives else 0
        for idx in sorted(order[:n_neg]):
            sentences.append(_pick(rng, _NEGATIVES[negatives[idx]]))
        if rng.random() < 0.4:
            sentences.append(_pick(rng, ["No acute osseous abnormality.", "The osseous structures are intact."]))
        if not findings:
            impression = _pick(rng, [
                "No acute cardiopulmonary abnormality.",
                "No acute cardiopulmonary process.",
                "Normal chest radiograph.",
            ])
        else:
            impression = " ".join(impressions)
        return " ".join(sentences), impression

    @staticmethod
    def incidental_sentences(incidentals: tuple[IncidentalSpec, ...] | list[IncidentalSpec],
                             rng: np.random.Generator) -> list[str]:
        """Sentences on support devices and incidental findings, in the order reports list them (lines and
        tubes first), with pertinent negatives where there are none ("No lines or tubes."). ``rng`` is the
        incidental findings' own stream, so that the rest of the report is the same with or without them."""
        out: list[str] = []
        names = {inc.name for inc in incidentals}
        devices = {"endotracheal_tube", "central_line", "nasogastric_tube", "pacemaker"}
        if not names & devices and rng.random() < 0.5:  # pertinent negatives, as reports write them
            out.append(_pick(rng, ["No lines or tubes.", "No support devices.", "No indwelling lines or tubes."]))
        if "hyperinflation" not in names and rng.random() < 0.3:
            out.append(_pick(rng, ["Lung volumes are normal.", "Normal lung volumes."]))
        for inc in incidentals:
            side = inc.side
            if inc.name == "endotracheal_tube":
                cm = f"{inc.measure_mm / 10:.1f}".rstrip("0").rstrip(".")
                out.append(_pick(rng, [f"Endotracheal tube tip {cm} cm above the carina.",
                                       f"The endotracheal tube terminates {cm} cm above the carina."]))
            elif inc.name == "nasogastric_tube":
                where = "the stomach" if inc.tip == "stomach" else "the distal esophagus"
                out.append(_pick(rng, [f"Nasogastric tube with its tip in {where}.",
                                       f"Enteric tube tip projects over {where}."]))
            elif inc.name == "central_line":
                tip = "the superior vena cava" if inc.tip == "SVC" else "the right atrium"
                out.append(_pick(rng, [f"{side.capitalize()} {inc.detail} central venous catheter with its tip in {tip}.",
                                       f"{side.capitalize()} {inc.detail} line terminates in {tip}."]))
            elif inc.name == "pacemaker":
                leads = "dual-chamber" if inc.detail == "dual" else "single-chamber"
                out.append(_pick(rng, [f"{side.capitalize()}-sided {leads} pacemaker with intact leads.",
                                       f"{leads.capitalize()} cardiac pacemaker, generator over the {side} chest."]))
            elif inc.name == "sternotomy_wires":
                out.append(_pick(rng, [f"Median sternotomy with {inc.number} intact wires.",
                                       f"{inc.number} sternotomy wires are intact."]))
            elif inc.name == "rib_fracture":
                rib = f"{side} {_ordinal(inc.number)} posterior rib"
                out.append(f"Acute fracture of the {rib}." if inc.detail == "acute"
                           else _pick(rng, [f"Healed fracture of the {rib}.", f"Old healed {rib} fracture."]))
            elif inc.name == "hyperinflation":
                out.append(_pick(rng, ["The lungs are hyperinflated with flattened hemidiaphragms.",
                                       "Hyperinflated lungs, consistent with emphysema."]))
            else:
                raise ValueError(f"unknown incidental finding {inc.name!r}")
        return out
