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
    PHYSIONET_TYPES,
    SHIPPED_NOTES,
    AnnotatedNote,
    PhiNoteCorpus,
    load_notes,
    note_split,
    split_notes,
    type_counts,
)
from clinical_mm.evaluation.text_deid_evaluation import CURVE_THRESHOLDS, score_notes

#: the development half of the PhysioNet deid corpus (not in the repository: ../shared/data, see its README)
PHYSIONET_DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "physionet_deid_dev" / "notes.jsonl"


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


def _physionet_file(path: Path) -> Path:
    """Notes in the PhysioNet deid form ("PATIENT-NOTE" ids, its types): patients 2 and 5 are in the "tune"
    half, 3 and 4 in "check": 3 in its part "tune2", 4 in "check2" (:func:`note_split`)."""
    rows = [
        ("2-1", "Seen by Dr. Zebulon Quackenbush on 07/22/2031.", [("Zebulon Quackenbush", "HCPName"),
                                                                  ("07/22/2031", "Date")]),
        ("2-2", "PT MARGARET ABERNATHY RESTING, DAUGHTER HELGA AT BEDSIDE.", [("MARGARET ABERNATHY", "PTName"),
                                                                              ("HELGA", "RelativeProxyName")]),
        ("5-1", "Transferred from Pinecrest Regional Hospital in 1998; call 555-867-5309.",
         [("Pinecrest Regional Hospital", "Location"), ("1998", "DateYear"), ("555-867-5309", "Phone")]),
        ("3-1", "A 92 y/o woman, M.A., with dyspnea. Lives in Brattleboro.",
         [("92", "Age"), ("M.A.", "PTNameInitial"), ("Brattleboro", "Location")]),
        ("4-1", "Vent settings unchanged. ABG stable. Plan to wean.", []),
        ("4-2", "Code word Bluebird on file.", [("Bluebird", "Other")]),
    ]
    lines = []
    for ident, text, spans in rows:
        found = [{"start": text.index(v), "end": text.index(v) + len(v), "type": t} for v, t in spans]
        lines.append(json.dumps({"id": ident, "text": text, "spans": found}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_when_physionet_notes_are_read_then_their_types_are_ours_and_split_by_patient(tmp_path: Path) -> None:
    notes = load_notes(_physionet_file(tmp_path / "notes.jsonl"))
    assert set(PHYSIONET_TYPES.values()) <= set(PHI_TYPES)
    assert set(type_counts(notes)) == {"CLINICIAN", "DATE", "PATIENT", "RELATIVE", "LOCATION", "YEAR", "PHONE",
                                       "AGE", "OTHER"}
    assert [n.id for n in split_notes(notes, "tune")] == ["2-1", "2-2", "5-1"]
    assert [n.id for n in split_notes(notes, "check")] == ["3-1", "4-1", "4-2"]
    assert [n.id for n in split_notes(notes, "tune2")] == ["3-1"]
    assert [n.id for n in split_notes(notes, "check2")] == ["4-1", "4-2"]
    assert note_split("3-1") == "tune2" and note_split("4-1") == "check2"
    assert split_notes(notes, "all") == notes and note_split("10-2") == note_split("10-99") == "tune"
    with pytest.raises(ValueError, match="unknown split"):
        split_notes(notes, "dev")


def test_when_a_year_alone_is_missed_then_recall_without_it_is_reported_apart() -> None:
    note = AnnotatedNote("7-1", "", "", "Dr. Lee saw her in 1998.", [{"start": 4, "end": 7, "type": "CLINICIAN"},
                                                                     {"start": 19, "end": 23, "type": "YEAR"}])
    score = score_notes([note], lambda text: [(4, 7, "PERSON")])
    assert score.recall() == 0.5 and score.safe_harbor_recall() == 1.0
    assert score.to_dict()["recall_safe_harbor"] == 1.0
    assert any(line.startswith("all but YEAR") and line.rstrip().endswith("1.000") for line in score.table().splitlines())


def test_when_evaluated_on_one_half_then_only_its_patients_are_scored_in_our_types(tmp_path: Path) -> None:
    notes = _physionet_file(tmp_path / "notes.jsonl")
    result = CliRunner().invoke(cli, ["deid", "evaluate-text", "--notes", str(notes), "--split", "tune",
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["split"] == "tune" and report["notes"] == 3 and report["spans"] == 7
    assert set(report["recall"]) == {"CLINICIAN", "DATE", "PATIENT", "RELATIVE", "LOCATION", "YEAR", "PHONE"}
    assert "recall_safe_harbor" in report
    table = CliRunner().invoke(cli, ["deid", "evaluate-text", "--notes", str(notes), "--split", "check",
                                     "--threshold", "0.9"])
    assert table.exit_code == 0, table.output
    assert "split check (the other half: tune2 and check2)" in table.output and "notes 3," in table.output
    assert "OTHER" in table.output and "detected as" in table.output
    help_text = CliRunner().invoke(cli, ["deid", "evaluate-text", "--help"]).output
    assert "tune: the half we tuned the rules on" in " ".join(help_text.split())
    assert "check2: the half of check never tuned on" in " ".join(help_text.split())


def test_when_curve_is_asked_then_each_threshold_is_scored_from_one_run(tmp_path: Path) -> None:
    notes = _physionet_file(tmp_path / "notes.jsonl")
    result = CliRunner().invoke(cli, ["deid", "evaluate-text", "--notes", str(notes), "--curve", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = report["curve"]
    assert [r["threshold"] for r in rows] == list(CURVE_THRESHOLDS) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert report["notes"] == 6 and report["split"] == "all"
    recalls = [r["recall"] for r in rows]
    assert recalls == sorted(recalls, reverse=True)  # a higher threshold keeps a subset of the spans
    assert all(r["recall_safe_harbor"] >= 0 and "char_precision" in r for r in rows)
    table = CliRunner().invoke(cli, ["deid", "evaluate-text", "--notes", str(notes), "--curve", "--split", "tune"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert "split tune" in lines[0] and "threshold" in lines[1] and "char precision" in lines[1]
    assert [line.split()[0] for line in lines[2:]] == [f"{t:.1f}" for t in CURVE_THRESHOLDS]


@pytest.mark.skipif(not PHYSIONET_DEV.is_file(), reason=f"the PhysioNet development notes are not here ({PHYSIONET_DEV})")
def test_when_the_physionet_development_notes_are_split_then_the_halves_are_as_documented() -> None:
    notes = load_notes(PHYSIONET_DEV)
    tune, check = split_notes(notes, "tune"), split_notes(notes, "check")
    assert (len(tune), sum(len(n.spans) for n in tune)) == (586, 436)
    assert (len(check), sum(len(n.spans) for n in check)) == (631, 435)
    assert not {n.id.split("-")[0] for n in tune} & {n.id.split("-")[0] for n in check}
    tune2, check2 = split_notes(notes, "tune2"), split_notes(notes, "check2")
    assert (len(tune2), sum(len(n.spans) for n in tune2)) == (278, 189)
    assert (len(check2), sum(len(n.spans) for n in check2)) == (353, 246)
    assert sorted(n.id for n in tune2 + check2) == sorted(n.id for n in check)
    assert not {n.id.split("-")[0] for n in tune2} & {n.id.split("-")[0] for n in check2}
    assert set(type_counts(notes)) <= set(PHYSIONET_TYPES.values())
