"""Names and places by the words around them: a token classifier for the capitalised words no rule reads.

The clinical recognizers find a name by a cue they know ("spoke with", "Dr.", "'s son") or by the word itself
(a lexicon name, a word that looks like one); a note written in phrasings they have not met ("Overnight
events: Dov slept poorly", "PLAN EXPLAINED TO MERCY, WHO AGREES") slips past both. This tagger reads every
capitalised word of two letters or more (every word, in UPPER CASE notes) and asks a logistic regression
whether it is part of a name or a place, from:

- the word itself without its identity: whether it is a known English, clinical or drug word, a lexicon
  given name or surname, a given name that is also a word ("Hope"), a US place name, its name-likeness
  score (:mod:`clinical_mm.deid.text.name_likeness`), its shape, length and vowels (acronyms have few), and
  whether it opens a sentence or follows a colon;
- the words around it: the two before and the two after, and what kind of word each is (the same classes
  as above). A neighbour is itself (lower case) only when it is a known word that no list holds as a name
  or a place ("with", "per", "called"); lower-case words of mixed-case notes and punctuation are
  themselves too; any other word stands as its class, digits as "#".

No word that could be a name is read as itself, so the names of the training notes are not learned; what
it learns is how notes put names in their sentences. A second regression on the same features says whether
a taken word is a person (``PERSON``) or a place (``LOCATION``). A word next to a taken word (only a space,
a hyphen or a comma between) is taken from a lower probability (:data:`NEIGHBOUR_THRESHOLD`): "CHARITY" in
"REINFORCED WITH CHARITY OKONJO-IWEALA". A known English or clinical word is taken only when it is a given
name, or in mixed case a surname or a place (:func:`_may_take`).

The tagger is shipped as ``clinical_mm/data/context_tagger.json.gz``; its trainer
(``clinical-mm deid train-context-model``) is :mod:`clinical_mm.evaluation.deid_training`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from clinical_mm.deid.text import model_file
from clinical_mm.deid.text.lexicons import (
    PREFIXES,
    is_common_word,
    name_lexicon,
    place_gazetteer,
    upper_case_note,
    word_given_names,
)
from clinical_mm.deid.text.name_likeness import name_likeness

__all__ = ["NEIGHBOUR_THRESHOLD", "THRESHOLD", "ContextTagger", "Kind", "context_tagger", "features", "tokens",
           "word_kind"]

#: probability from which a word is taken
THRESHOLD = 0.5
#: probability from which a word right next to a taken word is taken too
NEIGHBOUR_THRESHOLD = 0.2
_TOKEN = re.compile(r"[A-Za-z]+(?:['\u2019\-][A-Za-z]+)*|\d+|\S")
_SHAPE_UPPER = re.compile(r"[A-Z]+")
_SHAPE_LOWER = re.compile(r"[a-z]+")


def tokens(text: str) -> list[tuple[int, int, str]]:
    """Words (apostrophes and hyphens inside them kept, a possessive "'s" split off), digit runs and single
    other characters, with their offsets."""
    out = []
    for m in _TOKEN.finditer(text):
        w = m.group()
        if len(w) > 3 and w[-2] in "'\u2019" and w[-1] in "sS":
            out.append((m.start(), m.end() - 2, w[:-2]))
            out.append((m.end() - 2, m.end(), "'s"))
        else:
            out.append((m.start(), m.end(), w))
    return out


@lru_cache(maxsize=100_000)
def word_kind(word: str) -> tuple[str, int]:
    """What word lists say of ``word`` (K known word, or hyphenated known words and prefixes, G lexicon given
    name, S lexicon surname, W given name that is a word, P US place) and its name-likeness score in tenths
    (-1 under three letters)."""
    first, last = name_lexicon()
    model = name_likeness()
    w = word.lower()

    def known(part: str) -> bool:
        return model.is_known_word(part) or is_common_word(part)

    hyphenated = "-" in w and all(known(p) or p in PREFIXES for p in w.split("-"))  # "LOW-DOSE", "Non-verbal"
    flags = "".join(flag for flag, holds in (
        ("K", known(w) or hyphenated), ("G", w in first), ("S", w in last),
        ("W", w in word_given_names()), ("P", w in place_gazetteer())) if holds)
    return flags, (min(9, int(model.score(w) * 10)) if len(w) >= 3 else -1)


Kind = Callable[[str], tuple[str, int]]


def _word(toks: list[tuple[int, int, str]], j: int, upper: bool, kind: Kind) -> str:
    """A neighbour as a context word: itself (lower case) when it is a known word that no list holds as a name
    or a place ("with", "per", "called"), else its class (:func:`_class`), so that names are not learned."""
    if j < 0:
        return "^"
    if j >= len(toks):
        return "$"
    w = toks[j][2]
    if w[0].isdigit():
        return "#"
    if not w[0].isalpha() or (not upper and not w[0].isupper()) or kind(w)[0] == "K":
        return w.lower()
    return "?" + _class(toks, j, upper, kind)


def _class(toks: list[tuple[int, int, str]], j: int, upper: bool, kind: Kind) -> str:
    """A neighbour's kind: its flags and name-likeness tenths, "l" for a lower-case word of a mixed-case note,
    punctuation as itself, "#" for digits, "^" past either end."""
    if j < 0 or j >= len(toks):
        return "^"
    w = toks[j][2]
    if w[0].isdigit():
        return "#"
    if not w[0].isalpha():
        return w
    if not upper and not w[0].isupper():
        return "l"
    flags, tenths = kind(w)
    return f"{flags}{tenths}"


def features(text: str, kind: Kind = word_kind) -> list[tuple[int, int, list[str]]]:
    """The candidate words of ``text`` (capitalised, two letters or more, not glued to a digit as in "O2")
    with their offsets and feature names."""
    toks = tokens(text)
    upper = upper_case_note(text)
    m = "U" if upper else "M"
    rows = []
    for i, (s, e, w) in enumerate(toks):
        glued = text[e:e + 1].isdigit() or text[s - 1:s].isdigit()
        if len(w) < 2 or not (w[0].isalpha() and w[0].isupper()) or glued:
            continue
        flags, tenths = kind(w)
        prev = toks[i - 1] if i else None
        pos = ("S" if prev is None or prev[2] in ".!?" or "\n" in text[prev[1]:s]
               else "C" if prev[2] in ":;" else "I")
        p1, p2 = _word(toks, i - 1, upper, kind), _word(toks, i - 2, upper, kind)
        n1, n2 = _word(toks, i + 1, upper, kind), _word(toks, i + 2, upper, kind)
        c1, c2 = _class(toks, i - 1, upper, kind), _class(toks, i - 2, upper, kind)
        d1, d2 = _class(toks, i + 1, upper, kind), _class(toks, i + 2, upper, kind)
        shape = _SHAPE_UPPER.sub("X", _SHAPE_LOWER.sub("x", w))
        vowels = min(3, sum(c in "aeiouyAEIOUY" for c in w))
        rows.append((s, e, [
            f"m|{m}", f"o|{m}|{flags}", f"o|{m}|nl{tenths}", f"o|{m}|{flags}|{tenths}", f"sh|{m}|{shape}",
            f"len|{min(len(w), 9)}", f"len|{m}|{min(len(w), 9)}|{vowels}", f"v|{m}|{vowels}|{flags}",
            f"pos|{m}|{pos}", f"pos|{m}|{pos}|{flags}",
            f"p1|{p1}", f"p2|{p2}", f"n1|{n1}", f"n2|{n2}", f"p2p1|{p2}|{p1}", f"n1n2|{n1}|{n2}", f"p1n1|{p1}|{n1}",
            f"c1|{m}|{c1}", f"c2|{m}|{c2}", f"d1|{m}|{d1}", f"d2|{m}|{d2}", f"c1o|{m}|{c1}|{flags}",
            f"d1o|{m}|{d1}|{flags}", f"p1o|{p1}|{flags}", f"n1o|{n1}|{flags}"]))
    return rows


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


@dataclass(frozen=True)
class ContextTagger:
    """The shipped (or a trained) tagger: weights of the name-or-place regression and of the person-or-place one."""

    bias: float
    weights: dict[str, float]
    person_bias: float
    person_weights: dict[str, float]
    threshold: float = THRESHOLD
    neighbour_threshold: float = NEIGHBOUR_THRESHOLD

    def probability(self, names: list[str]) -> float:
        """Probability that a word with these features is part of a name or a place."""
        return _sigmoid(self.bias + sum(self.weights.get(f, 0.0) for f in names))

    def spans(self, text: str) -> list[tuple[int, int, str, float]]:
        """The words of ``text`` taken for names (``PERSON``) or places (``LOCATION``): start, end, type and
        probability."""
        rows = features(text)
        upper = upper_case_note(text)
        probs = [self.probability(names) for _, _, names in rows]
        taken = [p >= self.threshold for p in probs]
        todo = [j for j, t in enumerate(taken) if t]
        while todo:  # neighbours of taken words, from the lower threshold, until nothing more is taken (each once)
            k = todo.pop()
            for j in (k - 1, k + 1):
                if 0 <= j < len(rows) and not taken[j] and probs[j] >= self.neighbour_threshold \
                        and _adjacent(text, rows[k][:2], rows[j][:2]):
                    taken[j] = True
                    todo.append(j)
        out = []
        for (s, e, names), p, t in zip(rows, probs, taken, strict=True):
            if t and _may_take(text[s:e], upper):
                person = _sigmoid(self.person_bias + sum(self.person_weights.get(f, 0.0) for f in names)) >= 0.5
                out.append((s, e, "PERSON" if person else "LOCATION", p))
        return out

    @classmethod
    def load(cls, path: Path | None = None) -> ContextTagger:
        """The tagger in ``path`` (a file written by the trainer), else the shipped one."""
        data = model_file.read("context_tagger.json.gz", path)
        return cls(float(data["bias"]), {k: float(v) for k, v in data["weights"].items()},
                   float(data["person_bias"]), {k: float(v) for k, v in data["person_weights"].items()},
                   float(data["threshold"]), float(data["neighbour_threshold"]))


def _may_take(word: str, upper: bool) -> bool:
    """Not a known English or clinical word, unless a given name ("Hope"), or in mixed case a surname or a
    place: a known word no list holds as a name or place is never taken ("Kernig and Brudzinski signs"), nor in
    UPPER CASE a known word that is only a surname or a place ("MASS", "FALLS", "GREW")."""
    flags = word_kind(word)[0]
    return "K" not in flags or "G" in flags or "W" in flags or (not upper and flags != "K")


def _adjacent(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Only a space, a hyphen or a comma (and spaces) between the two words."""
    (s1, e1), (s2, e2) = sorted([a, b])
    return text[e1:s2].strip(" ") in ("", ",", "-")


@lru_cache(maxsize=1)
def context_tagger() -> ContextTagger:
    """The shipped tagger (read once per process)."""
    return ContextTagger.load()
