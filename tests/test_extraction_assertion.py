"""Assertion of mentions (ConText), sections and sentences, the shipped assertion set, and `clinical-mm extract`
end to end (de-identification first, offsets into the input, audited)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.cli import cli
from clinical_mm.evaluation.assertion_evaluation import SHIPPED_SENTENCES, score_assertions
from clinical_mm.extraction.context import ConText, ContextRule
from clinical_mm.extraction.extractor import ClinicalExtractor
from clinical_mm.extraction.text import find_sections, split_sentences

EXTRACTOR = ClinicalExtractor()


def _assert(text: str, target: str) -> str:
    start = text.lower().index(target.lower())
    return EXTRACTOR.assert_spans(text, [(start, start + len(target))])[0][0]


# each cue kind of each category: forward (pre-), backward (post-), bidirectional, pseudo, termination
@pytest.mark.parametrize(("text", "target", "expected"), [
    ("No pneumothorax.", "pneumothorax", "absent"),                                        # forward
    ("She denies chest pain, nausea or vomiting.", "vomiting", "absent"),                  # forward, list
    ("Pneumothorax is not seen.", "pneumothorax", "absent"),                              # backward
    ("Blood cultures negative.", "Blood cultures", "absent"),                             # bidirectional
    ("No acute fracture.", "acute fracture", "absent"),                                    # cue inside a longer cue
    ("No change in the right pleural effusion.", "pleural effusion", "present"),          # pseudo
    ("No interval increase in the nodule.", "nodule", "present"),                         # pseudo
    ("Denies fever but reports cough.", "cough", "present"),                               # termination
    ("Denies fever, however has a cough.", "cough", "present"),                            # termination
    ("Possible early pneumonia.", "pneumonia", "possible"),                                # forward
    ("Pulmonary embolism cannot be excluded.", "Pulmonary embolism", "possible"),          # backward
    ("Pneumonia is not ruled out.", "Pneumonia", "possible"),                              # pseudo of "ruled out"
    ("Skin fold versus pneumothorax.", "Skin fold", "possible"),                           # bidirectional
    ("Rule out sepsis.", "sepsis", "possible"),
    ("History of myocardial infarction.", "myocardial infarction", "historical"),          # forward
    ("Appendectomy many years ago.", "Appendectomy", "historical"),                        # backward
    ("History of present illness: cough for two days.", "cough", "present"),               # pseudo
    ("Compared with the prior study, the effusion is larger.", "effusion", "present"),     # pseudo
    ("Mother with breast cancer.", "breast cancer", "family"),                             # bidirectional
    ("Breast cancer in her mother.", "Breast cancer", "family"),                           # backward
    ("Family history of colon cancer.", "colon cancer", "family"),                         # forward
    ("His daughter reports he has chest pain.", "chest pain", "present"),                  # termination
    ("Return if chest pain recurs.", "chest pain", "hypothetical"),                        # forward
    ("Enoxaparin for DVT prophylaxis.", "DVT", "hypothetical"),                            # backward
    ("NO PNEUMOTHORAX.", "PNEUMOTHORAX", "absent"),                                        # upper case
    ("H/o MI in 2019.", "MI", "historical"),                                               # a cue with a slash
    ("Daughter-in-law has asthma.", "asthma", "family"),                                   # inside a hyphenated word
    ("Meds given; no.", "Meds", "present"),                                                # punctuation between
    ("Hyponatremia, likely secondary to SIADH.", "SIADH", "possible"),
    ("Hyponatremia, likely secondary to SIADH.", "Hyponatremia", "present"),
])
def test_when_a_cue_governs_a_mention_then_its_assertion_follows(text: str, target: str, expected: str) -> None:
    assert _assert(text, target) == expected


@pytest.mark.parametrize(("text", "target", "expected"), [
    ("PAST MEDICAL HISTORY:\nHypertension, diabetes.", "diabetes", "historical"),   # upper-case header line
    ("Past Medical History: hypertension, no diabetes.", "hypertension", "historical"),  # colon style, inline
    ("Past Medical History: hypertension, no diabetes.", "diabetes", "absent"),      # a cue beats the default
    ("Family History:\nColon cancer.", "Colon cancer", "family"),
    ("FHx: hypertension", "hypertension", "family"),
    ("HPI: cough.\nPMH: asthma.\nFINDINGS: No effusion.", "cough", "present"),
    ("HPI: cough.\nPMH: asthma.\nFINDINGS: No effusion.", "asthma", "historical"),
])
def test_when_a_mention_is_in_a_section_then_the_section_default_applies(text: str, target: str, expected: str) -> None:
    assert _assert(text, target) == expected


def test_when_notes_have_headers_lists_and_abbreviations_then_sections_and_sentences_are_right() -> None:
    text = ("HISTORY OF PRESENT ILLNESS:\n72 yo M seen by Dr. Smith, started on lasix 40 mg p.o. b.i.d. with some\n"
            "relief. Denies chest pain.\nMedications:\n- Lisinopril 10 mg daily\n- Metformin 500 mg BID\n"
            "IMPRESSION:\n1. Small left pleural effusion.\n2. No pneumothorax.\n")
    assert [(s.name, s.header) for s in find_sections(text)] == [
        ("hpi", "HISTORY OF PRESENT ILLNESS"), ("medications", "Medications"), ("impression", "IMPRESSION")]
    assert [(s.section, text[s.start:s.end]) for s in split_sentences(text)] == [
        ("hpi", "72 yo M seen by Dr. Smith, started on lasix 40 mg p.o. b.i.d. with some\nrelief."),
        ("hpi", "Denies chest pain."),
        ("medications", "- Lisinopril 10 mg daily"), ("medications", "- Metformin 500 mg BID"),
        ("impression", "1. Small left pleural effusion."), ("impression", "2. No pneumothorax.")]


@pytest.mark.parametrize(("text", "target", "expected"), [
    # issue 21's scope rules as they read notes: a list of what is denied stays denied, a remainder is present
    ("Denies fever, chills and new cough.", "cough", "absent"),
    ("Negative for DVT and bilateral lower extremity swelling.", "swelling", "absent"),
    ("Prior stroke with residual left-sided weakness.", "weakness", "present"),
    ("SOB, breathing is difficult at night.", "SOB", "present"),
    ("Patient with pneumonia cleared for discharge by ID.", "pneumonia", "present"),
    ("CBC with differential: leukocytosis and anemia.", "anemia", "present"),
    ("Not likely pneumonia.", "pneumonia", "absent"),
    ("The rash has cleared.", "rash", "absent"),
])
def test_when_notes_use_lists_remainders_and_clearing_then_the_reading_holds(text: str, target: str,
                                                                           expected: str) -> None:
    assert _assert(text, target) == expected


def test_when_a_site_adds_a_rule_then_it_is_used() -> None:
    text = "Pneumonia r/o'd."
    assert ClinicalExtractor().assert_spans(text, [(0, 9)])[0][0] == "present"
    own = ClinicalExtractor(ConText(extra_rules=[ContextRule("r/o'd", "absent", "backward")]))
    assert own.assert_spans(text, [(0, 9)])[0][0] == "absent"


def test_when_the_shipped_assertion_set_is_scored_then_accuracy_is_at_least_0_97() -> None:
    report = score_assertions(SHIPPED_SENTENCES)
    assert report["n"] >= 300
    assert set(report["by_assertion"]) == {"present", "absent", "possible", "historical", "family", "hypothetical"}
    assert report["accuracy"] >= 0.97, report["mistakes"]


def test_when_extract_runs_then_targets_are_asserted_in_input_offsets_phi_is_masked_and_it_is_audited(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICAL_MM_KEY", "0c" * 32)
    monkeypatch.setenv("CLINICAL_MM_DATA_DIR", str(tmp_path / "data"))
    notes = [
        {"id": "n1", "text": "Seen by Dr. Halvorsen on 07/22/2031. Denies chest pain. Small left pleural effusion.",
         "targets": ["pleural effusion"]},
        {"id": "n2", "text": "FAMILY HISTORY: Mother with breast cancer.\nPMH: asthma.", "targets": ["asthma"]},
    ]
    src = tmp_path / "notes.jsonl"
    src.write_text("".join(json.dumps(n) + "\n" for n in notes))
    result = CliRunner().invoke(cli, ["extract", "--jsonl", str(src), "--target", "chest pain",
                                      "--target", "breast cancer"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in result.output.splitlines()]
    assert [x["id"] for x in lines] == ["n1", "n2"]
    by_target = [{t["target"]: t for t in line["targets"]} for line in lines]
    chest = by_target[0]["chest pain"]
    assert chest["assertion"] == "absent" and notes[0]["text"][chest["start"]:chest["end"]] == "chest pain"
    assert by_target[0]["pleural effusion"]["assertion"] == "present"
    assert by_target[0]["breast cancer"] == {"target": "breast cancer", "found": False}
    assert by_target[1]["breast cancer"]["assertion"] == "family"
    assert by_target[1]["asthma"]["assertion"] == "historical" and by_target[1]["asthma"]["section"] == "pmh"
    assert "Halvorsen" not in result.output and "07/22/2031" not in result.output

    assumed = CliRunner().invoke(cli, ["extract", "--assume-deidentified", "--target", "pneumothorax", "-"],
                                 input="No pneumothorax.\n")
    assert assumed.exit_code == 0, assumed.output
    assert json.loads(assumed.output)["targets"][0]["assertion"] == "absent"
    sink = SQLiteAuditSink(tmp_path / "data" / "audit.sqlite")
    try:
        records = [(r["action"], r["detail"]) for r in sink.records()]
    finally:
        sink.close()
    assert records == [("extract", "2 texts, json, de-identified"), ("extract", "1 texts, json, assumed de-identified")]

    monkeypatch.delenv("CLINICAL_MM_KEY")
    refused = CliRunner().invoke(cli, ["extract", "--target", "cough", "-"], input="Dr. Halvorsen: cough.\n")
    assert refused.exit_code != 0 and "no pseudonymisation key" in refused.output
    assert "Halvorsen" not in refused.output
