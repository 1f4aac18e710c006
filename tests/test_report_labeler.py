"""The report labeler's triage reading (what training, the draft check, the evaluation and the monitoring read a
report as stating) and the laterality it reads: negation, hedging, leaning hedges, sides."""

from __future__ import annotations

import pytest

from clinical_mm.extraction.chexpert import RadiologyReportLabeler

L = RadiologyReportLabeler()


@pytest.mark.parametrize(
    ("text", "finding", "stated"),
    [
        ("No pneumothorax.", "pneumothorax", 0),
        ("No pleural effusion or pneumothorax.", "pneumothorax", 0),
        ("Small left pleural effusion.", "pleural_effusion", 1),
        ("There is no pleural effusion.", "pleural_effusion", 0),
        ("Heart size is normal.", "cardiomegaly", 0),
        ("The heart is mildly enlarged.", "cardiomegaly", 1),
        ("The cardiac silhouette is not enlarged.", "cardiomegaly", 0),
        ("Borderline cardiomegaly.", "cardiomegaly", 1),
        ("Moderate enlargement of the cardiac silhouette.", "cardiomegaly", 1),
        ("Patchy consolidation in the lingula, which may represent pneumonia.", "consolidation", 1),
        ("Possible small pneumothorax.", "pneumothorax", 0),
        ("Pneumothorax cannot be excluded.", "pneumothorax", 0),
        ("Bibasilar opacities, likely atelectasis.", "atelectasis", 1),
        ("Bibasilar opacities, atelectasis versus infiltrate.", "atelectasis", 0),
        ("Bibasilar airspace disease, likely atelectasis.", "consolidation", 0),
        ("No suspicious pulmonary nodule or mass.", "nodule_mass", 0),
        ("A 4.5 cm mass in the right upper lobe.", "nodule_mass", 1),
        ("No evidence of pulmonary edema.", "pulmonary_edema", 0),
        ("Interstitial pulmonary edema with Kerley B lines.", "pulmonary_edema", 1),
        ("Linear atelectasis at the left base.", "atelectasis", 1),
        ("Lungs are clear. No atelectasis.", "atelectasis", 0),
    ],
)
def test_when_sentence_then_triage_reading(text: str, finding: str, stated: int) -> None:
    assert L.stated_present(text)[finding] == stated


@pytest.mark.parametrize(
    ("text", "finding", "stated"),
    [
        # issue 21's review: backward negations over a list, limitations that are findings, partial clearing
        ("Atelectasis and small effusions have resolved.", "atelectasis", 0),
        ("Right effusion and left pneumothorax are not seen.", "pleural_effusion", 0),
        ("Differential considerations include pneumonia and mild edema.", "pulmonary_edema", 0),
        ("Small right apical pneumothorax can be seen.", "pneumothorax", 1),
        ("Consolidation is limited to the right lower lobe.", "consolidation", 1),
        ("A small anterior pneumothorax could be missed on this supine film.", "pneumothorax", 0),
        ("Left effusion obscuring the costophrenic angle, nodule in the right upper lobe.", "nodule_mass", 1),
        ("Partial clearing of the left lower lobe consolidation.", "consolidation", 1),
        ("No pneumothorax, residual small left effusion.", "pleural_effusion", 1),
        ("Pneumothorax is not likely.", "pneumothorax", 0),
        ("Right upper lobe airspace opacity, left basilar opacity likely atelectasis.", "consolidation", 1),
        ("Kerley B lines.", "pulmonary_edema", 1),
        ("Borderline pulmonary edema.", "pulmonary_edema", 1),
    ],
)
def test_when_a_report_sentence_is_read_then_the_triage_reading_holds(text: str, finding: str, stated: int) -> None:
    assert L.stated_present(f"FINDINGS: {text}")[finding] == stated


def test_when_sides_are_named_then_they_are_read() -> None:
    sides = L.sides("Small left pleural effusion. Large right pneumothorax. Bilateral atelectasis at both bases.")
    assert sides["pleural_effusion"] == {"left"} and sides["pneumothorax"] == {"right"}
    assert sides["atelectasis"] == {"left", "right"}
    assert L.sides("No left pleural effusion.")["pleural_effusion"] == set()
