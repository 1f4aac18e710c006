"""The context tagger: names and places found by the words around them where no rule has the cue, no name
learned from the training notes, known words never taken, and the shipped tagger reproduced by its command."""

from __future__ import annotations

import gzip
import json
from hashlib import sha256
from pathlib import Path
from unittest import mock

import pytest
from click.testing import CliRunner

import clinical_mm.deid.text.context_tagger as context_module
from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid.text.context_tagger import ContextTagger, context_tagger, features, tokens
from clinical_mm.deid.text.text_deidentifier import TextDeidentifier
from clinical_mm.evaluation.deid_training import TRAINING_SETS
from clinical_mm.pipeline.text_deidentification import text_deidentifier

SHIPPED = Path(__file__).resolve().parents[1] / "clinical_mm" / "data" / "context_tagger.json.gz"


@pytest.fixture(scope="module")
def deid() -> TextDeidentifier:
    return text_deidentifier(PseudonymKey(b"\x0d" * 32))


class _NoTagger:
    def spans(self, text: str) -> list[tuple[int, int, str, float]]:
        return []


def _found(deid: TextDeidentifier, note: str) -> list[tuple[str, str]]:
    return [(note[s.start:s.end], s.entity_type) for s in deid.find(note)]


def test_tokens_split_a_possessive_and_keep_hyphens_and_apostrophes_inside_names() -> None:
    assert [w for _, _, w in tokens("Orla's son, Jin-soo O'Brien: 2x")] == [
        "Orla", "'s", "son", ",", "Jin-soo", "O'Brien", ":", "2", "x"]


def test_no_feature_holds_a_name_of_the_note_its_own_or_a_neighbours() -> None:
    note = "Report received from Hualing Czerwinski and Zebulon at 1900. PER ZEBULON, BASELINE."
    rows = features(note)
    assert [note[s:e] for s, e, _ in rows] == ["Report", "Hualing", "Czerwinski", "Zebulon", "PER", "ZEBULON",
                                               "BASELINE"]
    for _, _, names in rows:
        assert not any(n in f.lower() for f in names for n in ("hualing", "czerwinski", "zebulon"))
    assert "p1|from" in rows[1][2] and "p2p1|received|from" in rows[1][2]  # known words are read as themselves


@pytest.mark.parametrize(("note", "expected"), [
    # a given name, after a header and a colon, before a verb the rules do not know ("Dov", the case before, is on
    # the clinical term list: a term is a name only after a strong cue; "slept" is a rule's verb of a person)
    ("Overnight events: Ottoline ate little and asked for water twice.", [("Ottoline", "PERSON")]),
    # a given name that is an English word, in UPPER CASE, after "explained to"
    ("PLAN OF CARE EXPLAINED TO MERCY, WHO AGREES.", [("MERCY", "PERSON")]),
])
def test_when_no_rule_has_the_cue_then_the_context_finds_the_name_or_place(
        deid: TextDeidentifier, note: str, expected: list[tuple[str, str]]) -> None:
    assert _found(deid, note) == expected
    with mock.patch.object(context_module, "context_tagger", _NoTagger):
        assert _found(deid, note) != expected  # the rules alone miss it: the case the tagger is for


def test_a_word_next_to_a_taken_name_is_taken_from_the_lower_threshold() -> None:
    tagger = context_tagger()
    note = "TEACHING REINFORCED WITH CHARITY OKONJO-IWEALA."
    rows = {note[s:e]: tagger.probability(names) for s, e, names in features(note)}
    assert tagger.neighbour_threshold <= rows["CHARITY"] < tagger.threshold <= rows["OKONJO-IWEALA"]
    assert [note[s:e] for s, e, kind, _ in tagger.spans(note)] == ["CHARITY", "OKONJO-IWEALA"]


@pytest.mark.parametrize("note", [
    "Kernig and Brudzinski signs negative. Trace bilateral effusions.",
    "Heparin drip titrated per protocol; aPTT in 6 hours. Foley removed at 0600.",
    "NO FOCAL CONSOLIDATION. CARDIOMEDIASTINAL SILHOUETTE WITHIN NORMAL LIMITS. NO PNEUMOTHORAX.",
])
def test_known_clinical_words_are_not_taken_for_their_context(note: str) -> None:
    assert context_tagger().spans(note) == []


@pytest.mark.slow
def test_when_trained_again_then_the_shipped_tagger_is_reproduced_byte_for_byte(tmp_path: Path) -> None:
    out = tmp_path / "tagger.json.gz"
    result = CliRunner().invoke(cli, ["deid", "train-context-model", "--out", str(out)])
    assert result.exit_code == 0, result.output
    shipped = json.loads(gzip.decompress(SHIPPED.read_bytes()))
    assert json.loads(result.output)["figures"] == shipped["figures"]
    assert sha256(out.read_bytes()).hexdigest() == sha256(SHIPPED.read_bytes()).hexdigest(), (  # (digests: pytest's
        # diff of two long byte strings runs for many minutes)
        "the training inputs changed: retrain with clinical-mm deid train-context-model --out " + str(SHIPPED))
    assert ContextTagger.load(out) == context_tagger()


def test_when_training_sets_are_missing_then_training_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["deid", "train-context-model", "--out", str(tmp_path / "t.json.gz"),
                                      "--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and "annotated sets missing" in result.output
    assert not (tmp_path / "t.json.gz").exists()


def test_first_contact_scoring_adds_what_the_tagger_finds_to_the_old_spans() -> None:
    from clinical_mm.evaluation.first_contact import FIRST_CONTACT, score_with_tagger
    from clinical_mm.evaluation.phi_note_corpus import AnnotatedNote

    text = "PLAN OF CARE EXPLAINED TO MERCY, WHO AGREES. CALL 617-555-0199."
    note = AnnotatedNote("n1", "nursing", "upper", text, [
        {"start": text.index("MERCY"), "end": text.index("MERCY") + 5, "type": "RELATIVE"},
        {"start": text.index("617"), "end": text.index("617") + 12, "type": "PHONE"}])
    base = [[(text.index("617"), text.index("617") + 12, "PHONE_NUMBER", 0.9)]]
    assert score_with_tagger([note], base, _NoTagger()).recall() == 0.5  # the old rules' spans alone
    assert score_with_tagger([note], base, context_tagger()).recall() == 1.0
    assert set(FIRST_CONTACT) <= set(TRAINING_SETS)


def test_the_blind_sets_written_after_the_tagger_are_never_trained_on() -> None:
    from clinical_mm.evaluation.phi_note_corpus import BLIND9_NOTES, BLIND10_NOTES, BLIND11_NOTES

    for path in (BLIND9_NOTES, BLIND10_NOTES, BLIND11_NOTES):
        assert path.stem not in TRAINING_SETS


def test_deid_text_command_replaces_what_only_the_context_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINICAL_MM_KEY", "0e" * 32)
    note = "TRANSPORT ARRANGED; EULALIA WILL DRIVE HIM HOME TO TICONDEROGA. PLAN EXPLAINED TO MERCY, WHO AGREES.\n"
    result = CliRunner().invoke(cli, ["deid", "text", "-", "--format", "json"], input=note)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.splitlines()[-1])
    assert not any(word in out["text"] for word in ("EULALIA", "TICONDEROGA", "MERCY"))
    assert {note[s["start"]:s["end"]] for s in out["spans"]} >= {"TICONDEROGA", "MERCY"}
    assert "[LOCATION]" in out["text"]
