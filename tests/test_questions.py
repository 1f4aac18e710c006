"""Questions and answers derived from a study's ground truth, and the answer normalisation VQA accuracy uses."""

from __future__ import annotations

from clinical_mm.core.findings import FINDINGS, INCIDENTAL_FINDINGS
from clinical_mm.core.questions import QUESTION_TYPES, normalise_answer, questions_for

SPECS = [
    {"name": "pleural_effusion", "side": "bilateral", "zone": "lower", "size": "small", "size_mm": 0.0, "severity": 0.5},
    {"name": "nodule_mass", "side": "left", "zone": "middle", "size": "moderate", "size_mm": 34.0, "severity": 0.6},
    {"name": "cardiomegaly", "side": "bilateral", "zone": "middle", "size": "moderate", "size_mm": 0.0, "severity": 0.9},
    {"name": "central_line", "side": "right", "detail": "subclavian", "tip": "right atrium", "number": 0,
     "measure_mm": 0.0},
]


def _answers() -> dict[tuple[str, str], str]:
    return {(q.kind, q.finding): q.answer for q in questions_for(SPECS)}


def test_when_a_study_is_asked_about_then_every_finding_has_a_presence_question_with_the_truth() -> None:
    answers = _answers()
    present = {s["name"] for s in SPECS}
    for name in (*FINDINGS, *INCIDENTAL_FINDINGS):
        assert answers[("presence", name)] == ("yes" if name in present else "no")


def test_when_findings_are_present_then_side_size_location_and_count_follow_the_ground_truth() -> None:
    answers = _answers()
    assert answers[("side", "pleural_effusion")] == "both"
    assert answers[("size", "pleural_effusion")] == "small"
    assert answers[("side", "nodule_mass")] == "left"
    assert answers[("size", "nodule_mass")] == "mass"  # 34 mm: a mass, not a nodule
    assert answers[("location", "nodule_mass")] == "lingula"
    assert answers[("size", "cardiomegaly")] == "marked"
    assert answers[("location", "central_line")] == "right atrium"
    assert answers[("count", "")] == "three"  # the flags only: the line is no triage finding
    assert {q.kind for q in questions_for(SPECS)} == set(QUESTION_TYPES)
    assert ("side", "cardiomegaly") not in answers  # an organ has no side to ask about


def test_when_a_question_is_asked_then_its_evidence_states_the_answer() -> None:
    for q in questions_for(SPECS):
        assert q.evidence.endswith(".")
        if q.kind in ("side", "size", "location"):
            assert q.answer.split()[0] in q.evidence


def test_when_phrasings_vary_then_questions_differ_and_answers_do_not() -> None:
    a, b = questions_for(SPECS, 0), questions_for(SPECS, 1)
    assert [q.answer for q in a] == [q.answer for q in b]
    assert any(x.text != y.text for x, y in zip(a, b, strict=True))


def test_when_answers_are_normalised_then_equivalent_forms_match() -> None:
    assert normalise_answer("Bilateral.") == normalise_answer("both") == "both"
    assert normalise_answer("The right side") == "right"
    assert normalise_answer("3") == normalise_answer("three")
    assert normalise_answer("Yes.") == "yes"
    assert normalise_answer("In the SVC") != normalise_answer("right atrium")
    assert normalise_answer("svc") == "superior vena cava"


def test_when_detail_targets_are_read_then_they_follow_the_answers_and_absent_findings_are_unknown() -> None:
    import pytest

    from clinical_mm.core.questions import DETAIL_TARGETS, detail_targets, parse_detail

    targets = ("pleural_effusion.size:moderate|large", "nodule_mass.size:mass", "cardiomegaly.size:marked",
               "central_line.side:right", "central_line.location:right atrium",
               "nodule_mass.location:right upper lobe|left upper lobe", "pneumothorax.size:large")
    assert detail_targets(SPECS, targets) == [0.0, 1.0, 1.0, 1.0, 1.0, 0.0, -1.0]  # no pneumothorax: unknown
    assert detail_targets(None, targets) == [-1.0] * len(targets)
    assert all(parse_detail(t)[0] in (*FINDINGS, *INCIDENTAL_FINDINGS) for t in DETAIL_TARGETS)
    for bad in ("pleural_effusion.size", "heart.size:large", "pneumothorax.presence:yes", "pneumothorax.size:"):
        with pytest.raises(ValueError, match="detail target"):
            parse_detail(bad)
