"""How much a word looks like a personal name from its letters alone, for names no lexicon holds.

A logistic regression over the word's character 2- to 4-grams (with ``^`` and ``$`` marking its ends), shipped
as ``clinical_mm/data/name_likeness.json.gz`` (trained by ``clinical-mm deid train-name-model``, the trainer
in :mod:`clinical_mm.evaluation.deid_training`: the names of the lexicon against English, ICD-10-CM, drug and
note words). The same file carries the known words: a known word is never taken for a name for its shape,
whatever its score. The recognizers ask only about capitalised words where a name may stand, and in UPPER
CASE, where every word is capitalised, about words of two vowels or more.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clinical_mm.deid.text import model_file

__all__ = ["MIN_LENGTH", "NGRAM_LENGTHS", "THRESHOLD", "WORD", "NameLikeness", "name_likeness", "ngrams"]

#: the character n-gram lengths read
NGRAM_LENGTHS = (2, 3, 4)
#: probability from which a word looks like a name (see the model file's held-out figures)
THRESHOLD = 0.8
#: the shortest word asked about: shorter ones are initials and abbreviations more often than names
MIN_LENGTH = 4
#: a word the model reads: lower-case letters, with inner apostrophes or hyphens
WORD = re.compile(r"[a-z]+(?:['\-][a-z]+)*")


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
        return (len(w) >= MIN_LENGTH and WORD.fullmatch(w) is not None and w not in self.known
                and self.score(w) >= self.threshold)

    @classmethod
    def load(cls, path: Path | None = None) -> NameLikeness:
        """The model in ``path`` (a file written by the trainer), else the shipped one."""
        data = model_file.read("name_likeness.json.gz", path)
        return cls(float(data["bias"]), {k: float(v) for k, v in data["weights"].items()}, float(data["threshold"]),
                   frozenset(data["known_words"]))


@lru_cache(maxsize=1)
def name_likeness() -> NameLikeness:
    """The shipped model (read once per process)."""
    return NameLikeness.load()
