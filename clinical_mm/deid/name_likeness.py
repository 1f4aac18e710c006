"""How much a word looks like a personal name from its letters alone, for names no lexicon holds.

A logistic regression over the word's character 2- to 4-grams (with ``^`` and ``$`` marking its ends),
trained by :func:`train` (``clinical-mm deid train-name-model``) and shipped as
``clinical_mm/data/name_likeness.json.gz``:

- names: the given names and surnames of :func:`~clinical_mm.deid.clinical_recognizers.name_lexicon`
  (US Census 1990 and Faker's Latin-script locales);
- words: the lower-case words of the SCOWL American English word list (Debian's ``wamerican``,
  ``/usr/share/dict/american-english``; the large list was tried and knows rare words that are names too,
  "stroud", "kamala"), the words of the ICD-10-CM descriptions (CMS, public domain, through
  ``simple-icd-10-cm``), one-word drug names and brands (the DrugBank open vocabulary, CC0, and MeSH,
  public domain, through ``drug-named-entity-recognition``), the extraction vocabulary, the note words the
  recognizers already know and clinical eponyms used as words (:data:`EPONYMS`); a word found on both
  sides ("baker", "grant") is left out of training.

One word in ten (by a hash of the word) is held out; the model file records the held-out figures. The same
file carries the known words (every word of the second list): a known word is never taken for a name for
its shape, whatever its score. The recognizers ask only about capitalised words where a name may stand
(clause openings, inside a sentence, next to a known name, after a lexicon surname and a comma), and in
UPPER CASE, where every word is capitalised, about words of two vowels or more.
"""

from __future__ import annotations

import bz2
import hashlib
import math
import pickle  # noqa: S403 - the drug dictionary of an installed development dependency
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from clinical_mm.deid import _model_file

__all__ = ["EPONYMS", "NameLikeness", "name_likeness", "ngrams", "train", "training_words"]

#: the character n-gram lengths read
NGRAM_LENGTHS = (2, 3, 4)
#: an n-gram becomes a feature when at least this many training words hold it
MIN_WORDS_PER_NGRAM = 10
#: inverse L2 regularisation strength (sklearn's C: C times the summed loss plus half the squared weights)
C = 4.0
#: probability from which a word looks like a name (see the model file's held-out figures)
THRESHOLD = 0.8
#: the shortest word asked about: shorter ones are initials and abbreviations more often than names
MIN_LENGTH = 4
DICTIONARY = Path("/usr/share/dict/american-english")
_WORD = re.compile(r"[a-z]+(?:['\-][a-z]+)*")
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


def ngrams(word: str) -> set[str]:
    """The character 2- to 4-grams of ``word`` in lower case, its ends marked ``^`` and ``$``."""
    w = f"^{word.lower()}$"
    return {w[i:i + n] for n in NGRAM_LENGTHS for i in range(len(w) - n + 1)}


@dataclass(frozen=True)
class NameLikeness:
    """The shipped (or a trained) name-likeness model: bias, n-gram weights, threshold and known words."""

    bias: float
    weights: dict[str, float]
    threshold: float
    known: frozenset[str]

    def score(self, word: str) -> float:
        """Probability that ``word`` is a personal name, from its n-grams (0.5 when it has no known n-gram)."""
        found = [self.weights[g] for g in ngrams(word) if g in self.weights]
        z = self.bias + (sum(found) / math.sqrt(len(found)) if found else 0.0)
        return 1.0 / (1.0 + math.exp(-z))

    def is_known_word(self, word: str) -> bool:
        """An English or clinical word of the training lists (any case)."""
        return word.lower() in self.known

    def looks_like_name(self, word: str) -> bool:
        """A word of at least :data:`MIN_LENGTH` letters, not a known word, scoring at least the threshold."""
        w = word.lower()
        return (len(w) >= MIN_LENGTH and _WORD.fullmatch(w) is not None and w not in self.known
                and self.score(w) >= self.threshold)

    @classmethod
    def load(cls, path: Path | None = None) -> NameLikeness:
        """The model in ``path`` (a file written by :func:`train`), else the shipped one."""
        data = _model_file.read("name_likeness.json.gz", path)
        return cls(float(data["bias"]), {k: float(v) for k, v in data["weights"].items()}, float(data["threshold"]),
                   frozenset(data["known_words"]))


@lru_cache(maxsize=1)
def name_likeness() -> NameLikeness:
    """The shipped model (read once per process)."""
    return NameLikeness.load()


def _held_out(word: str) -> bool:
    return hashlib.sha256(word.encode()).digest()[0] % 10 == 0


def training_words(dictionary: Path = DICTIONARY) -> tuple[set[str], set[str], dict[str, int]]:
    """Names, words, and the count each source gave (before the words on both sides are dropped).

    Needs the ``wamerican`` word list and the ``simple-icd-10-cm`` package (a development dependency)."""
    from clinical_mm.core.errors import ConfigurationError
    from clinical_mm.deid.clinical_recognizers import _NOT_NAMES, common_english, name_lexicon
    from clinical_mm.deid.text_deidentifier import ALLOW_LIST
    from clinical_mm.extraction.vocabulary import Vocabulary

    try:
        import simple_icd_10_cm as icd
        drug_dictionary = resources.files("drug_named_entity_recognition").joinpath("drug_ner_dictionary.pkl.bz2")
    except ImportError as exc:
        raise ConfigurationError(f"training the name model needs {exc.name} (pip install -e '.[dev]')") from None
    if not dictionary.is_file():
        raise ConfigurationError(f"training the name model needs the word list {dictionary} (Debian: wamerican)")
    first, last = name_lexicon()
    names = set(first) | set(last)
    english = {w for w in dictionary.read_text("utf-8").split() if _WORD.fullmatch(w) and not w.endswith("'s")}
    icd_words = {w for code in icd.get_all_codes(with_dots=False)
                 for w in _WORD.findall(icd.get_description(code).lower())}
    vocabulary = {w for w in Vocabulary.shipped().words() if _WORD.fullmatch(w)}
    # drug names and brands (a pickle inside the installed package, read as that package itself reads it)
    drugs_by_variant = pickle.loads(bz2.decompress(drug_dictionary.read_bytes()))["drug_variant_to_canonical"]
    # one-word names only: the words of longer ones include people ("Leif D") and plants ("Quassia amara")
    drugs = {variant for variant in drugs_by_variant if _WORD.fullmatch(variant)}
    notes = set(common_english()) | set(ALLOW_LIST) | set(_NOT_NAMES) | EPONYMS
    words = {w for w in english | icd_words | vocabulary | drugs | notes if len(w) > 2 and _WORD.fullmatch(w)}
    sources = {"names": len(names), "english_words": len(english), "icd10cm_words": len(icd_words),
               "drug_words": len(drugs), "vocabulary_words": len(vocabulary), "note_words": len(notes)}
    return names, words, sources


def train(out: Path, dictionary: Path = DICTIONARY) -> dict[str, Any]:
    """Train the model on :func:`training_words`, write it to ``out`` (gzip JSON) and return its figures.

    Full-batch L-BFGS in double precision on one thread: the same inputs give the same weights."""
    import torch

    names, words, sources = training_words(dictionary)
    both = names & words
    labelled = sorted([(w, 1) for w in names - both] + [(w, 0) for w in words - both])
    train_set = [(w, y) for w, y in labelled if not _held_out(w)]
    held_out = [(w, y) for w, y in labelled if _held_out(w)]

    counts: dict[str, int] = {}
    for w, _ in train_set:
        for g in ngrams(w):
            counts[g] = counts.get(g, 0) + 1
    vocab = sorted(g for g, n in counts.items() if n >= MIN_WORDS_PER_NGRAM)
    index = {g: i for i, g in enumerate(vocab)}

    def matrix(rows: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        crow, col, val = [0], [], []
        for w, _ in rows:
            cols = sorted(index[g] for g in ngrams(w) if g in index)
            col.extend(cols)
            val.extend([1.0 / math.sqrt(len(cols))] * len(cols) if cols else [])
            crow.append(len(col))
        x = torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col, dtype=torch.int64),
                                    torch.tensor(val, dtype=torch.float64), size=(len(rows), len(vocab)),
                                    check_invariants=True)
        return x, torch.tensor([y for _, y in rows], dtype=torch.float64)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            x, y = matrix(train_set)
            coef, intercept = _fit(x, x.t().to_sparse_csr(), y)
    finally:
        torch.set_num_threads(threads)
    weights = {g: round(v, 4) for g, v in zip(vocab, coef, strict=True) if round(v, 4)}
    bias = round(intercept, 4)

    model = NameLikeness(bias, weights, THRESHOLD, frozenset(words))
    names_out = [w for w, y in held_out if y]
    words_out = [w for w, y in held_out if not y]
    figures = {
        "held_out_names": len(names_out), "held_out_words": len(words_out),
        "held_out_name_recall": round(sum(model.score(w) >= THRESHOLD for w in names_out) / len(names_out), 4),
        "held_out_word_false_positive_rate": round(sum(model.score(w) >= THRESHOLD for w in words_out) / len(words_out), 4),
    }
    data = {
        "about": "clinical-mm name-likeness model: logistic regression on character 2-4-grams; see "
                 "clinical_mm/deid/name_likeness.py. Known words include the SCOWL American English word list "
                 "(Copyright 2000-2011 by Kevin Atkinson; permission to use, copy, modify, distribute and sell granted "
                 "provided the notice appears in supporting documentation), ICD-10-CM description words (CMS, public "
                 "domain) and drug names of the DrugBank open vocabulary (CC0) and MeSH (NLM, public domain).",
        "sources": sources, "left_out_on_both_sides": len(both), "trained_on": len(train_set), "features": len(vocab),
        "ngram_lengths": list(NGRAM_LENGTHS), "min_words_per_ngram": MIN_WORDS_PER_NGRAM, "C": C,
        "threshold": THRESHOLD, "figures": figures, "bias": bias, "weights": weights,
        "known_words": sorted(words),
    }
    _model_file.write(out, data)
    return {k: v for k, v in data.items() if k not in ("weights", "known_words", "about")}


def _fit(x: Any, xt: Any, y: Any, c: float = C, balanced: bool = True) -> tuple[list[float], float]:
    """L2 logistic regression (sklearn's objective with inverse strength ``c``; classes weighted to balance when
    ``balanced``) by full-batch L-BFGS; ``xt`` is ``x`` transposed, for the gradient computed by hand (autograd
    through a sparse product is slow)."""
    import torch

    n_pos = float(y.sum())
    sample_weight = (torch.where(y > 0, len(y) / (2 * n_pos), len(y) / (2 * (len(y) - n_pos))) if balanced
                     else torch.ones_like(y))
    coef = torch.zeros(x.shape[1], dtype=torch.float64)
    intercept = torch.zeros(1, dtype=torch.float64)
    coef.grad, intercept.grad = torch.zeros_like(coef), torch.zeros_like(intercept)
    opt = torch.optim.LBFGS([coef, intercept], lr=1.0, max_iter=500, tolerance_grad=1e-7, tolerance_change=1e-10,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure() -> float:
        z = (x @ coef.unsqueeze(1)).squeeze(1) + intercept
        loss = c * (sample_weight * torch.nn.functional.binary_cross_entropy_with_logits(
            z, y, reduction="none")).sum() + 0.5 * (coef * coef).sum()
        residual = c * sample_weight * (torch.sigmoid(z) - y)
        torch.add((xt @ residual.unsqueeze(1)).squeeze(1), coef, out=coef.grad)
        torch.sum(residual, dim=0, keepdim=True, out=intercept.grad)
        return float(loss)

    opt.step(closure)  # type: ignore[no-untyped-call]
    return [float(v) for v in coef.tolist()], float(intercept)
