"""Report labeler rows: negation, hedging, laterality."""

from __future__ import annotations

import pytest

from clinical_mm.extraction.training_report_labeler import TrainingReportLabeler

L = TrainingReportLabeler()


@pytest.mark.parametrize(
    ("text", "finding", "status"),
    [
        ("No pneumothorax.", "pneumothorax", "absent"),
        ("No pleural effusion or pneumothorax.", "pneumothorax", "absent"),
        ("Small left pleural effusion.", "pleural_effusion", "present"),
        ("There is no pleural effusion.", "pleural_effusion", "absent"),
        ("Heart size is normal.", "cardiomegaly", "not_mentioned"),
        ("The heart is mildly enlarged.", "cardiomegaly", "present"),
        ("Moderate enlargement of the cardiac silhouette.", "cardiomegaly", "present"),
        ("Patchy consolidation in the lingula, which may represent pneumonia.", "consolidation", "present"),
        ("Possible small pneumothorax.", "pneumothorax", "uncertain"),
        ("Pneumothorax cannot be excluded.", "pneumothorax", "uncertain"),
        ("No suspicious pulmonary nodule or mass.", "nodule_mass", "absent"),
        ("A 4.5 cm mass in the right upper lobe.", "nodule_mass", "present"),
        ("No evidence of pulmonary edema.", "pulmonary_edema", "absent"),
        ("Interstitial pulmonary edema with Kerley B lines.", "pulmonary_edema", "present"),
        ("Linear atelectasis at the left base.", "atelectasis", "present"),
        ("Lungs are clear. No atelectasis.", "atelectasis", "absent"),
    ],
)
def test_when_sentence_then_status(text: str, finding: str, status: str) -> None:
    assert L.label(text)[finding] == status


def test_when_sides_are_named_then_they_are_read() -> None:
    sides = L.sides("Small left pleural effusion. Large right pneumothorax. Bilateral atelectasis at both bases.")
    assert sides["pleural_effusion"] == {"left"} and sides["pneumothorax"] == {"right"}
    assert sides["atelectasis"] == {"left", "right"}
