"""Training of the text de-identifier's two shipped models, which the runtime only loads.

- The name-likeness model (:mod:`clinical_mm.deid.text.name_likeness`, ``clinical-mm deid train-name-model``):
  a logistic regression over the character 2- to 4-grams of a word, names against words. Names: the given
  names and surnames of :func:`~clinical_mm.deid.text.lexicons.name_lexicon`. Words: the lower-case words of
  the SCOWL American English word list (Debian's ``wamerican``, :data:`DICTIONARY`), the words of the
  ICD-10-CM descriptions (``simple-icd-10-cm``), one-word drug names and brands (the DrugBank open vocabulary
  and MeSH, through ``drug-named-entity-recognition``), the extraction vocabulary, the note words the
  recognizers already know and clinical eponyms used as words (:data:`EPONYMS`); a word found on both sides
  is left out. One word in ten (by a hash of the word) is held out and the file records the held-out
  figures; the file carries the known words (every word of the second list) too.
- The context tagger (:mod:`clinical_mm.deid.text.context_tagger`, ``clinical-mm deid train-context-model``):
  two logistic regressions on the features of each candidate word of the annotated PHI note sets
  (:data:`TRAINING_SETS`; a word inside a patient, clinician or relative span is a person, inside a city,
  hospital or street span a place, every other candidate neither) and, as words that are neither, of half of
  the PHI-free texts of the extraction sets (by a hash of the text), as written and in UPPER CASE; the other
  half is held out and the file records the words the tagger wrongly takes there. One known word in
  :data:`HIDDEN_KNOWN_WORDS` is shown to training as a word no list knows (:func:`_kind_in_training`).

Both fits are full-batch L-BFGS in float64 on one thread (:func:`~clinical_mm.evaluation.logistic.fit_logistic`):
the same inputs give the same file, byte for byte.
"""

from __future__ import annotations

import bz2
import hashlib
import json
import math
import pickle  # noqa: S403 - the drug dictionary of an installed development dependency
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.deid.text import model_file
from clinical_mm.deid.text.context_tagger import NEIGHBOUR_THRESHOLD, ContextTagger, features, word_kind
from clinical_mm.deid.text.context_tagger import THRESHOLD as TAGGER_THRESHOLD
from clinical_mm.deid.text.lexicons import ALLOW_LIST, NOT_NAMES, common_english, name_lexicon
from clinical_mm.deid.text.name_likeness import NGRAM_LENGTHS, THRESHOLD, WORD, NameLikeness, ngrams
from clinical_mm.evaluation.logistic import fit_logistic
from clinical_mm.evaluation.phi_note_corpus import SHIPPED_NOTES, load_notes
from clinical_mm.extraction.vocabulary import Vocabulary

__all__ = ["DICTIONARY", "EPONYMS", "HIDDEN_KNOWN_WORDS", "PHI_FREE_SETS", "TRAINING_SETS", "fit",
           "train_context_tagger", "train_name_likeness", "training_rows", "training_words"]

# ---------------------------------------------------------------------------------------------- name likeness
#: an n-gram becomes a feature when at least this many training words hold it
MIN_WORDS_PER_NGRAM = 10
#: inverse L2 regularisation strength of the name-likeness model (sklearn's C: C times the summed loss plus half
#: the squared weights)
NAME_C = 4.0
DICTIONARY = Path("/usr/share/dict/american-english")
#: eponyms notes use bare, as words rather than names ("per Fleischner", "Kerley B lines", "Wenckebach"): signs,
#: tests, scores, classifications, diseases, fractures and devices (written from clinical usage, not from notes)
EPONYMS = frozenset("""
fleischner kerley westermark hampton virchow kussmaul cheyne stokes babinski romberg trendelenburg valsalva
heimlich doppler holter bovie foley hickman swan ganz mallampati cormack lehane wenckebach mobitz brugada killip
forrester glasgow apgar braden morse gleason bosniak breslow lugano salter harris hirschsprung meckel zenker
barrett crohn hashimoto addison cushing graves parkinson alzheimer hodgkin kaposi guillain barre wernicke
korsakoff marfan ehlers danlos klinefelter bankart colles monteggia galeazzi jefferson lisfranc chopart
maisonneuve segond boerhaave mallory weiss tietze osgood schlatter legg perthes kienbock scheuermann schatzki
tinel phalen finkelstein mcmurray lachman homans murphy mcburney rovsing blumberg cullen kernig brudzinski
chvostek trousseau janeway osler quincke duroziez corrigan traube korotkoff penrose blakemore sengstaken
mahurkar quinton permcath groshong broviac ommaya greenfield tenckhoff malecot coude pleurx dobhoff yankauer
pratt jackson whipple nissen billroth hartmann roux kocher pfannenstiel seldinger bier epley dix hallpike
ranson pugh meld wells geneva caprini padua richmond ramsay karnofsky ecog norton waterlow tanner denver
""".split())


def _held_out_word(word: str) -> bool:
    return hashlib.sha256(word.encode()).digest()[0] % 10 == 0


def training_words(dictionary: Path = DICTIONARY) -> tuple[set[str], set[str], dict[str, int]]:
    """Names, words, and the count each source gave (before the words on both sides are dropped).

    Needs the ``wamerican`` word list and the ``simple-icd-10-cm`` package (a development dependency)."""
    try:
        import simple_icd_10_cm as icd
        drug_dictionary = resources.files("drug_named_entity_recognition").joinpath("drug_ner_dictionary.pkl.bz2")
    except ImportError as exc:
        raise ConfigurationError(f"training the name model needs {exc.name} (pip install -e '.[dev]')") from None
    if not dictionary.is_file():
        raise ConfigurationError(f"training the name model needs the word list {dictionary} (Debian: wamerican)")
    first, last = name_lexicon()
    names = set(first) | set(last)
    english = {w for w in dictionary.read_text("utf-8").split() if WORD.fullmatch(w) and not w.endswith("'s")}
    icd_words = {w for code in icd.get_all_codes(with_dots=False)
                 for w in WORD.findall(icd.get_description(code).lower())}
    vocabulary = {w for w in Vocabulary.shipped().words() if WORD.fullmatch(w)}
    # drug names and brands (a pickle inside the installed package, read as that package itself reads it)
    drugs_by_variant = pickle.loads(bz2.decompress(drug_dictionary.read_bytes()))["drug_variant_to_canonical"]
    # one-word names only: the words of longer ones include people ("Leif D") and plants ("Quassia amara")
    drugs = {variant for variant in drugs_by_variant if WORD.fullmatch(variant)}
    notes = set(common_english()) | set(ALLOW_LIST) | set(NOT_NAMES) | EPONYMS
    words = {w for w in english | icd_words | vocabulary | drugs | notes if len(w) > 2 and WORD.fullmatch(w)}
    sources = {"names": len(names), "english_words": len(english), "icd10cm_words": len(icd_words),
               "drug_words": len(drugs), "vocabulary_words": len(vocabulary), "note_words": len(notes)}
    return names, words, sources


def _ngram_matrix(rows: list[tuple[str, int]], index: dict[str, int]) -> tuple[Any, Any]:
    """The words of ``rows`` as a sparse CSR matrix of their n-gram features (each row scaled to unit length)
    and their labels."""
    import torch

    crow, col, val = [0], [], []
    for w, _ in rows:
        cols = sorted(index[g] for g in ngrams(w) if g in index)
        col.extend(cols)
        val.extend([1.0 / math.sqrt(len(cols))] * len(cols) if cols else [])
        crow.append(len(col))
    x = torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col, dtype=torch.int64),
                                torch.tensor(val, dtype=torch.float64), size=(len(rows), len(index)),
                                check_invariants=True)
    return x, torch.tensor([y for _, y in rows], dtype=torch.float64)


def _name_weights(train_set: list[tuple[str, int]]) -> tuple[float, dict[str, float], int]:
    """Bias, n-gram weights (rounded, zeros left out) and number of features of the model fitted on
    ``train_set``, on one thread."""
    import torch

    counts: dict[str, int] = {}
    for w, _ in train_set:
        for g in ngrams(w):
            counts[g] = counts.get(g, 0) + 1
    vocab = sorted(g for g, n in counts.items() if n >= MIN_WORDS_PER_NGRAM)
    index = {g: i for i, g in enumerate(vocab)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            x, y = _ngram_matrix(train_set, index)
            coef, intercept = fit_logistic(x, x.t().to_sparse_csr(), y, c=NAME_C)
    finally:
        torch.set_num_threads(threads)
    weights = {g: round(v, 4) for g, v in zip(vocab, coef, strict=True) if round(v, 4)}
    return round(intercept, 4), weights, len(vocab)


def train_name_likeness(out: Path, dictionary: Path = DICTIONARY) -> dict[str, Any]:
    """Train the name-likeness model on :func:`training_words`, write it to ``out`` (gzip JSON) and return its
    figures."""
    names, words, sources = training_words(dictionary)
    both = names & words
    labelled = sorted([(w, 1) for w in names - both] + [(w, 0) for w in words - both])
    train_set = [(w, y) for w, y in labelled if not _held_out_word(w)]
    held_out = [(w, y) for w, y in labelled if _held_out_word(w)]
    bias, weights, n_features = _name_weights(train_set)

    model = NameLikeness(bias, weights, THRESHOLD, frozenset(words))
    names_out = [w for w, y in held_out if y]
    words_out = [w for w, y in held_out if not y]
    figures = {
        "held_out_names": len(names_out), "held_out_words": len(words_out),
        "held_out_name_recall": round(sum(model.score(w) >= THRESHOLD for w in names_out) / len(names_out), 4),
        "held_out_word_false_positive_rate": round(sum(model.score(w) >= THRESHOLD for w in words_out) / len(words_out), 4),
    }
    data = {
        # the shipped file's text, kept as it was written so that retraining reproduces the file byte for byte
        "about": "clinical-mm name-likeness model: logistic regression on character 2-4-grams; see "
                 "clinical_mm/deid/name_likeness.py. Known words include the SCOWL American English word list "
                 "(Copyright 2000-2011 by Kevin Atkinson; permission to use, copy, modify, distribute and sell granted "
                 "provided the notice appears in supporting documentation), ICD-10-CM description words (CMS, public "
                 "domain) and drug names of the DrugBank open vocabulary (CC0) and MeSH (NLM, public domain).",
        "sources": sources, "left_out_on_both_sides": len(both), "trained_on": len(train_set), "features": n_features,
        "ngram_lengths": list(NGRAM_LENGTHS), "min_words_per_ngram": MIN_WORDS_PER_NGRAM, "C": NAME_C,
        "threshold": THRESHOLD, "figures": figures, "bias": bias, "weights": weights,
        "known_words": sorted(words),
    }
    model_file.write(out, data)
    return {k: v for k, v in data.items() if k not in ("weights", "known_words", "about")}


# ---------------------------------------------------------------------------------------------- context tagger
#: the annotated PHI note sets the tagger learns from (``evaluation/data/<name>.jsonl``)
TRAINING_SETS = ("phi_notes", "phi_notes_held_out", "phi_notes_blind", "phi_notes_blind2", "phi_notes_blind3",
                 "phi_notes_blind4", "phi_notes_blind5", "phi_notes_blind6", "phi_notes_blind7", "phi_notes_blind8")
#: the PHI-free texts (extraction sets), half of them words that are neither names nor places
PHI_FREE_SETS = ("assertion_sentences", "chest_reports", "chest_reports_holdout", "medication_lines",
                 "medication_lines_holdout")
PERSON_TYPES = frozenset({"PATIENT", "CLINICIAN", "RELATIVE"})
PLACE_TYPES = frozenset({"CITY", "HOSPITAL", "STREET"})
#: inverse L2 regularisation strength of both regressions of the tagger
TAGGER_C = 1.0
#: a feature is kept when at least this many training words have it
MIN_FEATURE_COUNT = 3
#: one known word in this many is hidden from the tagger in training (see :func:`_kind_in_training`)
HIDDEN_KNOWN_WORDS = 10


def _held_out_text(text: str) -> bool:
    return hashlib.sha256(text.encode()).digest()[0] % 2 == 1


def _phi_free_texts(data_dir: Path) -> tuple[list[str], list[str]]:
    texts = []
    for name in PHI_FREE_SETS:
        for line in (data_dir / f"{name}.jsonl").read_text("utf-8").splitlines():
            text = json.loads(line).get("text") if line.strip() else None
            if isinstance(text, str):
                texts.append(text)
    return [t for t in texts if not _held_out_text(t)], [t for t in texts if _held_out_text(t)]


def _kind_in_training(word: str) -> tuple[str, int]:
    """:func:`~clinical_mm.deid.text.context_tagger.word_kind`, except that one known word in
    :data:`HIDDEN_KNOWN_WORDS` (by a hash of the word) is given as a word no list knows, in the text and as a
    neighbour: notes hold clinical words our lists lack ("Anasarca", "MSSA"), and without them the tagger
    would learn that every word no list knows is a name."""
    flags, tenths = word_kind(word)
    if flags == "K" and hashlib.sha256(word.lower().encode()).digest()[0] % HIDDEN_KNOWN_WORDS == 0:
        return "", tenths
    return flags, tenths


def training_rows(data_dir: Path, sets: tuple[str, ...] = TRAINING_SETS) -> list[tuple[list[str], int]]:
    """Every candidate word of the annotated ``sets`` and of the training half of the PHI-free texts with its
    label: 2 person, 1 place, 0 neither."""
    rows: list[tuple[list[str], int]] = []
    for name in sets:
        for note in load_notes(data_dir / f"{name}.jsonl"):
            gold = [(int(str(g["start"])), int(str(g["end"])), str(g["type"])) for g in note.spans]
            for s, e, names in features(note.text, _kind_in_training):
                kinds = {kind for a, b, kind in gold if a < e and s < b}
                rows.append((names, 2 if kinds & PERSON_TYPES else 1 if kinds & PLACE_TYPES else 0))
    train_texts, _ = _phi_free_texts(data_dir)
    for text in train_texts:
        for view in (text, text.upper()):
            rows.extend((names, 0) for _, _, names in features(view, _kind_in_training))
    return rows


def _regression(rows: list[tuple[list[str], int]]) -> tuple[float, dict[str, float], int]:
    """Weights of an L2 logistic regression on binary labels (features kept from :data:`MIN_FEATURE_COUNT`)."""
    import torch

    counts: dict[str, int] = {}
    for names, _ in rows:
        for f in set(names):
            counts[f] = counts.get(f, 0) + 1
    vocab = sorted(f for f, n in counts.items() if n >= MIN_FEATURE_COUNT)
    index = {f: i for i, f in enumerate(vocab)}
    crow, col = [0], []
    for names, _ in rows:
        col.extend(sorted({index[f] for f in names if f in index}))
        crow.append(len(col))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        x = torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col, dtype=torch.int64),
                                    torch.ones(len(col), dtype=torch.float64), size=(len(rows), len(vocab)),
                                    check_invariants=True)
        coef, intercept = fit_logistic(x, x.t().to_sparse_csr(),
                                       torch.tensor([float(y) for _, y in rows], dtype=torch.float64),
                                       c=TAGGER_C, balanced=False)
    return round(intercept, 4), {f: round(v, 4) for f, v in zip(vocab, coef, strict=True) if round(v, 4)}, len(vocab)


def fit(rows: list[tuple[list[str], int]]) -> tuple[ContextTagger, int, int]:
    """Both regressions on :func:`training_rows`: the tagger and the number of features of each."""
    bias, weights, n_features = _regression([(names, int(y > 0)) for names, y in rows])
    person_bias, person_weights, n_person = _regression([(names, int(y == 2)) for names, y in rows if y])
    return ContextTagger(bias, weights, person_bias, person_weights), n_features, n_person


def train_context_tagger(out: Path, data_dir: Path | None = None) -> dict[str, Any]:
    """Train both regressions on :func:`training_rows`, write the tagger to ``out`` (gzip JSON) and return its figures."""
    import torch

    data_dir = data_dir or SHIPPED_NOTES.parent
    missing = [n for n in TRAINING_SETS + PHI_FREE_SETS if not (data_dir / f"{n}.jsonl").is_file()]
    if missing:
        raise ConfigurationError(f"training the context tagger needs {len(missing)} annotated sets missing from {data_dir}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = training_rows(data_dir)
        tagger, n_features, n_person = fit(rows)
    finally:
        torch.set_num_threads(threads)
    _, held_out = _phi_free_texts(data_dir)
    false_words = sum(len(tagger.spans(view)) for text in held_out for view in (text, text.upper()))
    figures = {
        "training_words": len(rows), "person_words": sum(y == 2 for _, y in rows), "place_words": sum(y == 1 for _, y in rows),
        "features": n_features, "person_features": n_person,
        "held_out_phi_free_texts": len(held_out), "held_out_phi_free_words_taken": false_words,
    }
    data = {
        # the shipped file's text, kept as it was written so that retraining reproduces the file byte for byte
        "about": "clinical-mm context tagger: logistic regressions on the words around a capitalised word; see "
                 "clinical_mm/deid/context_tagger.py. Trained on clinical-mm's own annotated PHI note sets.",
        "training_sets": list(TRAINING_SETS), "phi_free_sets": list(PHI_FREE_SETS), "C": TAGGER_C,
        "min_feature_count": MIN_FEATURE_COUNT, "threshold": TAGGER_THRESHOLD, "neighbour_threshold": NEIGHBOUR_THRESHOLD,
        "figures": figures, "bias": tagger.bias, "weights": tagger.weights, "person_bias": tagger.person_bias,
        "person_weights": tagger.person_weights,
    }
    model_file.write(out, data)
    return {k: v for k, v in data.items() if k not in ("weights", "person_weights", "about")}
