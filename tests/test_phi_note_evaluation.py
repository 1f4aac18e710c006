"""The annotated note set and its scorer; the text de-identifier's recall and precision on it, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.core.errors import InputError
from clinical_mm.evaluation.phi_note_corpus import (
    BLIND2_NOTES,
    BLIND3_NOTES,
    BLIND4_NOTES,
    BLIND5_NOTES,
    BLIND6_NOTES,
    BLIND7_NOTES,
    BLIND8_NOTES,
    BLIND9_NOTES,
    BLIND10_NOTES,
    BLIND11_NOTES,
    BLIND_NOTES,
    HELD_OUT_NOTES,
    PHI_TYPES,
    SHIPPED_NOTES,
    AnnotatedNote,
    PhiNoteCorpus,
    load_notes,
    type_counts,
)
from clinical_mm.evaluation.text_deid_evaluation import score_notes


def test_when_generated_again_then_the_shipped_sets_are_reproduced_byte_for_byte() -> None:
    assert SHIPPED_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2031).generate(330))
    assert HELD_OUT_NOTES.read_text() == "".join(
        n.to_json() + "\n" for n in PhiNoteCorpus(2032).generate(120, "held-out"))
    assert BLIND_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2033).generate(150, "blind"))
    assert BLIND2_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2034).generate(150, "blind-2"))
    assert BLIND3_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2035).generate(150, "blind-3"))
    assert BLIND4_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2036).generate(240, "blind-4"))
    assert BLIND5_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2037).generate(240, "blind-5"))
    assert BLIND6_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2038).generate(240, "blind-6"))
    assert BLIND7_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2039).generate(240, "blind-7"))
    assert BLIND8_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2040).generate(240, "blind-8"))
    assert BLIND9_NOTES.read_text() == "".join(n.to_json() + "\n" for n in PhiNoteCorpus(2041).generate(240, "blind-9"))
    assert BLIND10_NOTES.read_text() == "".join(
        n.to_json() + "\n" for n in PhiNoteCorpus(2042).generate(300, "blind-10"))
    assert BLIND11_NOTES.read_text() == "".join(
        n.to_json() + "\n" for n in PhiNoteCorpus(2043).generate(300, "blind-11"))


def test_when_shipped_set_is_read_then_it_has_the_size_styles_and_cases_asked_for() -> None:
    notes = load_notes(SHIPPED_NOTES)
    counts = type_counts(notes)
    assert len(notes) >= 300 and sum(counts.values()) >= 1000
    assert {n.style for n in notes} == {"nursing", "radiology", "discharge"}
    assert {n.case for n in notes} == {"mixed", "upper"}
    assert set(counts) <= set(PHI_TYPES) and len(counts) >= 18
    for note in notes:
        for span in note.spans:
            value = note.text[int(str(span["start"])):int(str(span["end"]))]
            assert value.strip() == value and value  # annotations hold the value itself
        if note.case == "upper":
            assert note.text == note.text.upper()


def test_when_detector_is_perfect_then_recall_and_precision_are_one() -> None:
    notes = load_notes(SHIPPED_NOTES)[:20]
    by_text = {n.text: n for n in notes}
    score = score_notes(notes, lambda t: [(int(str(s["start"])), int(str(s["end"])), str(s["type"]))
                                          for s in by_text[t].spans])
    assert score.recall() == 1.0 and score.precision() == 1.0


def test_when_one_character_is_left_out_then_the_span_is_missed() -> None:
    note = AnnotatedNote("n", "nursing", "mixed", "Seen by Dr. Novak today.", [{"start": 12, "end": 17, "type": "CLINICIAN"}])
    assert score_notes([note], lambda t: [(12, 16, "PERSON")]).recall("CLINICIAN") == 0.0
    assert score_notes([note], lambda t: [(10, 18, "PERSON")]).recall("CLINICIAN") == 1.0


def test_when_detector_marks_clinical_words_then_character_precision_drops() -> None:
    note = AnnotatedNote("n", "nursing", "mixed", "Dr. Novak gave lasix.", [{"start": 4, "end": 9, "type": "CLINICIAN"}])
    score = score_notes([note], lambda t: [(4, 9, "PERSON"), (15, 20, "PERSON")])
    assert score.precision("PERSON") == pytest.approx(0.5)


@pytest.mark.parametrize(("line", "problem"), [
    ('{"id": "a", "text": "x"}', "line 1"),
    ("not json", "line 1"),
    ('{"id": "a", "text": "abc", "spans": [{"start": 1, "end": 9, "type": "DATE"}]}', "outside the text"),
])
def test_when_annotation_file_is_malformed_then_typed_error_names_the_line(tmp_path: Path, line: str, problem: str) -> None:
    f = tmp_path / "notes.jsonl"
    f.write_text(line + "\n")
    with pytest.raises(InputError, match=problem):
        load_notes(f)


def test_when_evaluated_from_the_cli_then_every_phi_type_meets_recall_and_precision() -> None:
    """The bar of the de-identification issue on the shipped set: recall >= 0.98 per type, character
    precision >= 0.7 per detected type (the held-out set is reported, not asserted: see the README)."""
    result = CliRunner().invoke(cli, ["deid", "evaluate-text", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["notes"] >= 300 and report["spans"] >= 1000
    assert all(v >= 0.98 for v in report["recall"].values()), report["recall"]
    assert all(v >= 0.7 for v in report["char_precision"].values()), report["char_precision"]
    table = CliRunner().invoke(cli, ["deid", "evaluate-text", "--notes", str(HELD_OUT_NOTES)])
    assert table.exit_code == 0 and "recall" in table.output
