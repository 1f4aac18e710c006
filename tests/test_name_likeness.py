"""The name-likeness model: names no lexicon holds, known words never names, the recognizers that ask it,
and the shipped model reproduced by its training command."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from clinical_mm.cli import cli
from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid.text.lexicons import name_lexicon
from clinical_mm.deid.text.name_likeness import NameLikeness, name_likeness, ngrams
from clinical_mm.deid.text.text_deidentifier import TextDeidentifier
from clinical_mm.evaluation.deid_training import DICTIONARY
from clinical_mm.pipeline.text_deidentification import text_deidentifier

SHIPPED = Path(__file__).resolve().parents[1] / "clinical_mm" / "data" / "name_likeness.json.gz"


@pytest.fixture(scope="module")
def deid() -> TextDeidentifier:
    return text_deidentifier(PseudonymKey(b"\x0c" * 32))


def test_ngrams_mark_the_word_ends_and_ignore_case() -> None:
    assert ngrams("Abe") == {"^a", "ab", "be", "e$", "^ab", "abe", "be$", "^abe", "abe$"}
    assert ngrams("ABE") == ngrams("abe")


@pytest.mark.parametrize("word", ["Mirabel", "Oluwaseun", "Aigerim", "Bakhyt"])
def test_when_a_name_is_in_no_lexicon_then_it_still_looks_like_a_name(word: str) -> None:
    first, last = name_lexicon()
    assert word.lower() not in first | last  # the case the model is for
    assert name_likeness().looks_like_name(word)


@pytest.mark.parametrize("word", ["melena", "Sitter", "afebrile", "Diuresing", "Lasix", "Entresto", "Kcentra",
                                  "Fleischner", "Anasarca", "Tele"])
def test_when_a_clinical_word_or_drug_then_it_does_not_look_like_a_name(word: str) -> None:
    assert not name_likeness().looks_like_name(word)


def test_known_words_are_never_names_whatever_their_score() -> None:
    model = name_likeness()
    assert model.is_known_word("Melena") and model.score("melena") > model.threshold  # the letters say name...
    assert not model.looks_like_name("Melena")  # ...the word list says otherwise


@pytest.mark.parametrize(("note", "names"), [
    ("0300 check: Oluwaseun restless, pulling at lines.", ["Oluwaseun"]),
    ("OLUWASEUN HARGROVE IS A 97 YO FEMALE WITH CHF.", ["OLUWASEUN HARGROVE"]),
    ("Spoke with Aigerim Bakhyt about the results.", ["Aigerim Bakhyt"]),
    ("Hargrove, Oluwaseun seen in clinic.", ["Hargrove, Oluwaseun"]),
    ("EDUCATED BY THIS RN. PT WOULD LIKE HARUTO PRESENT FOR ANY PROCEDURE.", ["HARUTO"]),  # lexicon given name
])
def test_when_a_name_is_in_no_lexicon_then_the_note_recognizers_find_it(
        deid: TextDeidentifier, note: str, names: list[str]) -> None:
    found = [note[s.start:s.end] for s in deid.find(note) if s.entity_type in ("PERSON", "LOCATION")]
    assert found == names


@pytest.mark.parametrize("note", [
    "Afebrile overnight. Diuresing well on Lasix. Tolerating diet. Anasarca improving. Ferritin pending.",
    "Entresto held for hypotension. Kcentra given before the procedure. Sitter at bedside.",
    "Recommend follow-up CT in 12 months per Fleischner. Melena overnight, hemoglobin stable.",
    "PT DENIES CHEST PAIN. FATHER DIED OF LUNG CANCER. DUONEB ADMINISTERED. NAUSEA RESOLVED.",
    "HX OF KIDNEY STONES. NEVER SMOKER. FAMILY HISTORY: LUNG CANCER IN FATHER.",
    "ASA 81 MG P.O. Q.D.; LASIX 40 MG P.O. B.I.D. NO FOCAL CONSOLIDATION, EFFUSION, OR PNEUMOTHORAX.",
])
def test_when_clinical_words_stand_where_names_may_then_nothing_is_flagged(deid: TextDeidentifier, note: str) -> None:
    # capitalised at clause openings or after a context ("PT", "FATHER") that in UPPER CASE guesses at a name;
    # the name model reads UPPER CASE in title case and takes "Kidney Stones" for a person; "OR" is Oregon
    assert [note[s.start:s.end] for s in deid.find(note)] == []


def test_when_a_state_code_is_also_a_word_then_a_place_before_it_still_counts(deid: TextDeidentifier) -> None:
    note = "MOVED FROM SALEM, OR 97301 LAST YEAR; VISITS PORTLAND, ME."
    spans = deid.find(note)
    for place in ("SALEM", "PORTLAND", "97301"):
        start = note.index(place)
        assert any(s.start <= start and start + len(place) <= s.end for s in spans), place


@pytest.mark.slow
def test_when_trained_again_then_the_shipped_model_is_reproduced(tmp_path: Path) -> None:
    if not DICTIONARY.is_file():
        pytest.fail(f"{DICTIONARY} is missing: `make install` installs Debian's wamerican")
    out = tmp_path / "model.json.gz"
    result = CliRunner().invoke(cli, ["deid", "train-name-model", "--out", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    shipped = json.loads(gzip.decompress(SHIPPED.read_bytes()))
    assert figures["figures"] == shipped["figures"] and figures["features"] == shipped["features"]
    trained, model = NameLikeness.load(out), name_likeness()
    assert trained.known == model.known and trained.weights.keys() == model.weights.keys()
    assert max(abs(trained.weights[g] - w) for g, w in model.weights.items()) < 1e-3
    assert abs(trained.bias - model.bias) < 1e-3


def test_when_the_word_list_is_missing_then_training_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-words"
    result = CliRunner().invoke(cli, ["deid", "train-name-model", "--out", str(tmp_path / "m.json.gz"),
                                      "--dictionary", str(missing)])
    assert result.exit_code != 0 and "no-such-words" in result.output
    assert not (tmp_path / "m.json.gz").exists()
