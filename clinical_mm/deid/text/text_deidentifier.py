"""De-identification of clinical free text: presidio's analyzer and the clinical recognizers find PHI, keyed
surrogates replace it.

Finding PHI: the recognizers of a presidio ``RecognizerRegistry``
(:mod:`clinical_mm.deid.text.recognizer_registry`; a site adds or removes recognizers by configuration). The
clinical recognizers (:class:`~clinical_mm.deid.text.recognizers.clinical_recognizer.ClinicalRecognizer`:
identifiers by label, clinical dates, ages over 89, names by context, from a name lexicon and by the shape of
the word, phone and fax, addresses, hospitals, wards) read the note as written. The others (spaCy's NER,
presidio's e-mail, URL, IP, SSN and licence patterns) run in presidio's analyzer on the view spaCy reads
(UPPER CASE notes in title case, same offsets), and what they find is filtered: a minimum score, an
allow-list of clinical vocabulary (:data:`~clinical_mm.deid.text.lexicons.ALLOW_LIST` and the terms given to
the constructor), dates that look like dates, and no name or place made only of known English, clinical or
drug words that are no lexicon name ("DUONEB ADMINISTERED"). Names and places in phrasings no rule knows come
from the context tagger (:mod:`clinical_mm.deid.text.context_tagger`). A name found once is marked
everywhere in the note, and a word no word list knows joined to it by "and" is a name too. Spans are in the
ORIGINAL text's coordinates; overlapping spans are merged.

Replacing PHI (presidio-anonymizer, custom operators): keyed surrogates, consistent within a document and for
the same patient and key: the same name gets the same surrogate name, dates shift by the patient's keyed
offset (the same one the DICOM de-identifier uses), identifiers keep their shape with keyed digits, ages over
89 become "90+", places and institutions become typed placeholders.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from hashlib import sha256
from pathlib import Path
from typing import Any

from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.deid.text import context_tagger as tagger_module
from clinical_mm.deid.text.evidence import (
    INITIALS_RULE,
    TERM_INITIALS,
    UNKNOWN_WORDS_FACTOR,
    UNKNOWN_WORDS_RULE,
    Evidence,
)
from clinical_mm.deid.text.lexicons import (
    ALLOW_LIST,
    ROLE_WORDS,
    clinical_terms,
    is_common_word,
    name_lexicon,
    place_gazetteer,
    upper_case_note,
    word_given_names,
)
from clinical_mm.deid.text.name_likeness import name_likeness
from clinical_mm.deid.text.site_terms import SiteTerms
from clinical_mm.deid.text.text_span import TextSpan

__all__ = ["DEFAULT_THRESHOLD", "STRONG_NAME", "TextDeidentifier", "TextSpan"]

#: the final score from which a span counts as PHI by default
DEFAULT_THRESHOLD = 0.5
#: the score from which a found name is marked wherever its words stand again in the note
STRONG_NAME = 0.7
#: the score of a role's letters that are the initials of a name found in the note
STRONG_INITIALS = 0.8
#: a run of punctuation marks, symbols or underscores, long enough to slow spaCy's tokenizer ("((((", ".,.,", "____")
_PUNCTUATION_RUN = re.compile(r"(?:[^\w\s]|_){16,}")
#: a web address, not sentences run together ("PRESENT.TO", "..NO")
_REAL_URL = re.compile(r"(?i)://|\bwww\.|\.(?:com|org|net|edu|gov|io|us)\b(?!\.)")

_MONTHS = "Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
_LETTERS = re.compile(r"[A-Za-z]+")
_DIGIT = re.compile(r"\d")
_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
_DATE_LIKE = re.compile(rf"(?i)\b(?:{_MONTHS})\b|\b(?:0?[1-9]|1[0-2])[/-](?:0?[1-9]|[12]\d|3[01])[/-]\d{{2,4}}\b|"
                        r"\b(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])\b")
_FIRST = ["Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Reese", "Rowan",
          "Emerson", "Hayden", "Parker", "Sawyer", "Skyler"]
_LAST = ["Rivera", "Bennett", "Hughes", "Foster", "Coleman", "Jenkins", "Perry", "Powell", "Long", "Patterson",
         "Barnes", "Fisher", "Henderson", "Simmons", "Butler", "Bryant"]
_DATE_FORMATS = [("%m/%d/%Y", "%m/%d/%Y"), ("%m/%d/%y", "%m/%d/%y"), ("%m-%d-%Y", "%m-%d-%Y"), ("%m-%d-%y", "%m-%d-%y"),
                 ("%Y-%m-%d", "%Y-%m-%d"), ("%B %d, %Y", "%B %d, %Y"), ("%b %d, %Y", "%b %d, %Y"),
                 ("%B %d %Y", "%B %d %Y"), ("%d-%b-%Y", "%d-%b-%Y"), ("%d-%b-%y", "%d-%b-%y")]
_YEARLESS = [("%m/%d", "%m/%d"), ("%d-%b", "%d-%b"), ("%B %d", "%B %d"), ("%b %d", "%b %d"), ("%d %b", "%d %b")]


def _known_words_only(phrase: str, upper: bool = False) -> bool:
    """Every word of ``phrase`` is a known English, clinical or drug word (the name-likeness model's) and none
    is a name of the lexicon or a place of the gazetteer: the name model's "DUONEB ADMINISTERED",
    "Hemophilia". In a note the name model read in title case (``upper``), only given names count as names:
    the census surnames hold the words the model takes for names there ("KIDNEY STONES", "NEVER SMOKER")."""
    first, last = name_lexicon()
    known, places = name_likeness().known, place_gazetteer()
    words = [w.lower() for w in _NAME_WORD.findall(phrase)]
    return bool(words) and phrase.lower() not in places and all(
        w in known and w not in first and (upper or w not in last) and w not in places for w in words)


@dataclass(frozen=True)
class _Analysis:
    """The registry's recognizers as the de-identifier runs them."""

    #: presidio's spaCy NLP engine (NER only)
    nlp: Any
    #: the clinical recognizers, in the registry's order: they read the note as written
    clinical: tuple[Any, ...]
    #: presidio's analyzer over the other recognizers (None when the registry holds none)
    analyzer: Any
    #: the entity types asked of the analyzer: every type its recognizers find
    entities: list[str]


@lru_cache(maxsize=1)
def _anonymizer() -> Any:
    from clinical_mm.deid.text.presidio_loader import AnonymizerEngine

    return AnonymizerEngine()  # type: ignore[no-untyped-call]


def _ner_view(text: str) -> str:
    """The text the name model reads: UPPER CASE notes in title case (same offsets for ASCII text), and a long run
    of punctuation as spaces (same offsets; spaCy's tokenizer takes time quadratic in such a run)."""
    if upper_case_note(text):
        titled = text.title()
        if len(titled) == len(text):
            text = titled
    return _PUNCTUATION_RUN.sub(lambda m: " " * len(m.group(0)), text)


class TextDeidentifier:
    """Finds PHI in clinical text and replaces it with keyed surrogates.

    Parameters
    ----------
    key
        The pseudonymisation key (the same key gives the same surrogates and date shifts as the DICOM side).
    min_score
        Score from which what presidio's analyzer finds counts as PHI.
    allowed_terms
        Clinical terms whose words are never PHI by themselves ("Glipizide", "biopsy", "Fever": the models
        take such words for names or places), besides :data:`~clinical_mm.deid.text.lexicons.ALLOW_LIST`; a
        word that is a given name or a surname of the name lexicon is never allowed. The composition layer
        passes the extraction vocabulary's words (:mod:`clinical_mm.pipeline.text_deidentification`).
        Without them (the default) more clinical words are masked, never fewer.
    recognizers
        The site's recognizer file (presidio's YAML form; ``CLINICAL_MM_RECOGNIZERS``, passed by the composition
        layer): recognizers it adds, or removes with ``enabled: false``.
    registry
        The PHI recognizers (a presidio ``RecognizerRegistry``, e.g. from
        :func:`~clinical_mm.deid.text.recognizer_registry.clinical_registry`); by default the clinical registry
        with the entry points' recognizers and the ``recognizers`` file, built on first use.
    threshold
        Final score from which a span counts as PHI (:data:`DEFAULT_THRESHOLD`): lower finds more PHI and masks
        more clinical words, higher the reverse (the README gives the curve).
    site_terms
        The site's allow-list (never PHI) and deny-list (always PHI), :class:`~clinical_mm.deid.text.site_terms.SiteTerms`.
    """

    def __init__(self, key: PseudonymKey, min_score: float = 0.35, *, allowed_terms: Iterable[str] = (),
                 recognizers: Path | None = None, registry: Any = None, threshold: float = DEFAULT_THRESHOLD,
                 site_terms: SiteTerms | None = None) -> None:
        self.key = key
        self.threshold = threshold
        self.site_terms = site_terms or SiteTerms()
        self.pseudo = Pseudonymizer(key)
        self.min_score = min_score
        self.allowed_terms = frozenset(word for term in allowed_terms for word in term.lower().split())
        self.recognizers = recognizers
        self.registry = registry
        self._analysis: _Analysis | None = None  # built on first use (presidio and spaCy load then)

    @cached_property
    def allowed_words(self) -> frozenset[str]:
        """The words of the allowed terms that count alone: three letters or more, no number, no given name or
        surname of the name lexicon (built on first use)."""
        first, last = name_lexicon()
        return frozenset(w for w in self.allowed_terms if len(w) > 2 and not w.isdigit()
                         and w not in first and w not in last)

    @cached_property
    def evidence(self) -> Evidence:
        """The final weighing of spans (:class:`~clinical_mm.deid.text.evidence.Evidence`), built on first use."""
        return Evidence(self.allowed_words, self.site_terms.allow)

    @cached_property
    def _deny_patterns(self) -> list[tuple[re.Pattern[str], str]]:
        """The site's deny-listed terms as whole-word expressions, with their entity types."""
        return [(re.compile(rf"(?<![A-Za-z0-9]){re.escape(term)}(?![A-Za-z0-9])", re.IGNORECASE), kind)
                for term, kind in self.site_terms.deny]

    # ------------------------------------------------------------------ finding
    def find(self, text: str) -> list[TextSpan]:
        """PHI spans in ``text`` (original coordinates), merged where they overlap."""
        return self.find_many([text])[0]

    def find_many(self, texts: list[str]) -> list[list[TextSpan]]:
        """:meth:`find` for several texts; spaCy reads them as one batch."""
        return [[s for s in spans if s.score >= self.threshold] for spans in self.candidates_many(texts)]

    def candidates_many(self, texts: list[str]) -> list[list[TextSpan]]:
        """Every span found in each text with its final score, whatever the threshold (for the recall/precision
        curve of ``deid evaluate-text --curve``); :meth:`find_many` keeps those at or over the threshold."""
        analysis = self._analysis or self._prepare()
        tagger = tagger_module.context_tagger()
        views = [_ner_view(t) for t in texts]
        artifacts = analysis.nlp.process_batch(views, language="en", batch_size=64)
        out = []
        for text, (view, nlp_artifacts) in zip(texts, artifacts, strict=True):
            spans = [_span(r, recognizer.name) for recognizer in analysis.clinical for r in recognizer.analyze(text, [])]
            if analysis.analyzer is not None:
                spans += self._filtered(text, view, analysis.analyzer.analyze(
                    view, language="en", entities=analysis.entities, nlp_artifacts=nlp_artifacts))
            spans += self._site_denied(text)
            out.append(self.with_context(text, spans, tagger))
        return out

    def _site_denied(self, text: str) -> list[TextSpan]:
        """Every whole-word occurrence of a term of the site's deny-list, with its type."""
        return [TextSpan(m.start(), m.end(), kind, 1.0, "SiteTerms", "site deny-list")
                for pattern, kind in self._deny_patterns for m in pattern.finditer(text)]

    def _filtered(self, text: str, view: str, results: list[Any]) -> list[TextSpan]:
        """What presidio's analyzer found that counts as PHI (presidio's DATE_TIME called DATE)."""
        spans = []
        for r in results:
            word = text[r.start:r.end]
            if r.score < self.min_score or self._allowed(word):
                continue
            if r.entity_type == "DATE_TIME" and not _DATE_LIKE.search(word):
                continue  # spaCy calls "HR 72" or "97 year old" a date: keep only what looks like one
            if r.entity_type in ("PERSON", "LOCATION", "ORGANIZATION") and (
                    _DIGIT.search(word) or _known_words_only(word, upper=view is not text)):
                continue  # "Zofran 4 mg IV" is not a name, nor "DUONEB ADMINISTERED"
            if r.entity_type == "URL" and (not _REAL_URL.search(word) or ".." in word):
                continue  # "PRESENT.TO", "..NO": a note's run-together sentences, not addresses
            span = _span(r, "presidio")
            if r.entity_type == "DATE_TIME":  # the date itself, not the words spaCy takes with it ("today 9/21")
                dates = list(_DATE_LIKE.finditer(word))
                span = TextSpan(r.start + dates[0].start(), r.start + dates[-1].end(), "DATE", span.score,
                                span.recognizer, span.rule, span.context)
            spans.append(span)
        return spans

    def _prepare(self) -> _Analysis:
        """The registry (the default one built now) split into the clinical recognizers and presidio's
        analyzer over the others."""
        from clinical_mm.deid.text.nlp_engine import nlp_engine

        nlp = nlp_engine()  # first: a missing presidio or spaCy is a ConfigurationError there
        from clinical_mm.deid.text.no_context_enhancer import NoContextEnhancer
        from clinical_mm.deid.text.presidio_loader import AnalyzerEngine, RecognizerRegistry
        from clinical_mm.deid.text.recognizer_registry import clinical_registry
        from clinical_mm.deid.text.recognizers.clinical_recognizer import ClinicalRecognizer

        if self.registry is None:
            self.registry = clinical_registry(nlp, self.recognizers)
        clinical = tuple(r for r in self.registry.recognizers if isinstance(r, ClinicalRecognizer))
        others = [r for r in self.registry.recognizers if not isinstance(r, ClinicalRecognizer)]
        analyzer = None
        if others:
            general = RecognizerRegistry(others, global_regex_flags=self.registry.global_regex_flags,
                                         supported_languages=["en"])
            analyzer = AnalyzerEngine(nlp_engine=nlp, registry=general, supported_languages=["en"],
                                      context_aware_enhancer=NoContextEnhancer())
        self._analysis = _Analysis(nlp, clinical, analyzer, sorted({e for r in others for e in r.supported_entities}))
        return self._analysis

    def _allowed(self, word: str) -> bool:
        """Every word of ``word`` is on the allow-list or an allowed term's, and it holds no digit."""
        tokens = _LETTERS.findall(word.lower())
        allowed = self.allowed_words
        return bool(tokens) and all(t in ALLOW_LIST or t in allowed for t in tokens) and not _DIGIT.search(word)

    def with_context(self, text: str, spans: list[TextSpan], tagger: Any) -> list[TextSpan]:
        """``spans`` and the names and places ``tagger`` (a
        :class:`~clinical_mm.deid.text.context_tagger.ContextTagger`) finds, merged; then every word of a
        found name marked wherever it stands in the note and a word joined to a found name by "and" taken too
        (:func:`_propagate_names`, :func:`_coordinated_names`)."""
        tagged = [TextSpan(start, end, kind, p, "ContextTagger", f"context model p={p:.2f}")
                  for start, end, kind, p in tagger.spans(text) if not self._allowed(text[start:end])]
        weighed = _beside_known_names(text, [w for s in spans + tagged for w in self.evidence.weigh(text, s)])
        strong = [s for s in weighed if s.score >= max(self.threshold, STRONG_NAME)]
        weighed = _initials_of_found_names(text, weighed, strong)
        merged = _merge(_propagate_names(text, _merge(weighed), strong) + _coordinated_names(text, strong)
                        + _coordinated_years(text, [s for s in weighed if s.score >= self.threshold]))
        return [s for s in merged if not self.evidence.in_site_phrase(text, s)]  # not even a propagated name

    # ------------------------------------------------------------------ replacing
    @staticmethod
    def mask(text: str, spans: list[TextSpan]) -> str:
        """``text`` with every PHI span overwritten by ``*`` (line breaks kept): offsets stay those of the
        original, for tools that report spans in it (extraction)."""
        chars = list(text)
        for span in spans:
            for i in range(span.start, span.end):
                if chars[i] not in "\r\n":
                    chars[i] = "*"
        return "".join(chars)

    def deidentify(self, text: str, patient: str = "") -> tuple[str, list[TextSpan]]:
        """The de-identified text and the PHI spans found in the original."""
        return self.deidentify_many([text], [patient])[0]

    def deidentify_many(self, texts: list[str], patients: list[str]) -> list[tuple[str, list[TextSpan]]]:
        """:meth:`deidentify` for several texts (``patients[i]`` is the patient of ``texts[i]``)."""
        from clinical_mm.deid.text.presidio_loader import AnonymizerSpan, OperatorConfig

        anonymizer = _anonymizer()
        out = []
        for text, patient, spans in zip(texts, patients, self.find_many(texts), strict=True):
            memo: dict[tuple[str, str], str] = {}

            def surrogate(entity: str, original: str, patient: str = patient,
                          memo: dict[tuple[str, str], str] = memo) -> str:
                k = (entity, re.sub(r"\s+", " ", original.strip().lower()))
                if k not in memo:
                    memo[k] = self.surrogate(entity, original, patient)
                return memo[k]

            operators = {e: OperatorConfig("custom", {"lambda": lambda o, e=e: surrogate(e, o)})
                         for e in {s.entity_type for s in spans}}
            result = anonymizer.anonymize(
                text, [AnonymizerSpan(s.entity_type, s.start, s.end, s.score) for s in spans], operators)
            out.append((result.text, spans))
        return out

    def _digest(self, *parts: str) -> bytes:
        return hmac.new(self.key.secret, "\x00".join(("text-surrogate", *parts)).encode(), sha256).digest()

    def surrogate(self, entity: str, original: str, patient: str) -> str:
        """The keyed surrogate of one PHI value of type ``entity`` for ``patient`` (the same value and patient
        always get the same surrogate)."""
        if entity == "PERSON":
            d = self._digest(patient, re.sub(r"[^a-z]", "", original.lower()))
            words = original.split()
            name = _LAST[d[1] % len(_LAST)] if len(words) == 1 else f"{_FIRST[d[0] % len(_FIRST)]} {_LAST[d[1] % len(_LAST)]}"
            return name.upper() if original.isupper() else name
        if entity == "DATE":
            return self._shift_date(original, patient)
        if entity == "AGE":
            return "90+"
        if entity in {"MRN", "ACCESSION", "ACCOUNT", "PHONE_NUMBER", "US_SSN", "MEDICAL_LICENSE"}:
            d = self._digest(entity, original)
            digits = iter(str(int.from_bytes(d, "big")))
            return "".join(next(digits) if c.isdigit() else c for c in original)
        return f"[{entity}]"

    def _shift_date(self, original: str, patient: str) -> str:
        """The date moved by the patient's keyed offset, in the same written form; "[DATE]" when unparseable."""
        shift = dt.timedelta(days=self.pseudo.date_shift_days(patient))
        clean = re.sub(r"(?<=\d)(st|nd|rd|th)\b", "", original.strip())
        for fmt, out_fmt in _DATE_FORMATS:
            try:
                return (dt.datetime.strptime(clean, fmt) + shift).strftime(out_fmt)
            except ValueError:
                continue
        for fmt, out_fmt in _YEARLESS:  # no year: shift within a leap year, write without one
            try:
                return (dt.datetime.strptime(f"2000 {clean}", f"%Y {fmt}") + shift).strftime(out_fmt)
            except ValueError:
                continue
        return "[DATE]"


def _merge(spans: list[TextSpan]) -> list[TextSpan]:
    """Union of overlapping spans; the merged span takes the type of its highest-scoring part."""
    merged: list[TextSpan] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if s.end <= s.start:
            continue
        if merged and s.start < merged[-1].end:
            top = merged[-1]
            best = top if top.score >= s.score else s
            merged[-1] = TextSpan(top.start, max(top.end, s.end), best.entity_type, best.score, best.recognizer,
                                  best.rule, best.context)
        else:
            merged.append(s)
    return merged


_AND_NEXT = re.compile(r"\s+(?:and|AND|&)\s+([A-Z][A-Za-z]+(?:-[A-Za-z]+)?)(?![A-Za-z'\-])")
#: a word joined by "and" to the name after it, and the cue before it ("reviewed with Ama and Zainab Paquette")
_AND_BEFORE = re.compile(r"(?<![A-Za-z'\-])(?:(?P<cue>with|w/)\s+)?(?P<word>[A-Z][A-Za-z]+(?:-[A-Za-z]+)?)\s+(?:and|AND|&)\s+$",
                         re.IGNORECASE)


def _span(result: Any, default_recognizer: str) -> TextSpan:
    """A presidio result as a span, with its recognizer, rule and cue words."""
    ex = getattr(result, "analysis_explanation", None)
    meta = getattr(result, "recognition_metadata", None) or {}
    recognizer = str(meta.get("recognizer_name") or (ex.recognizer if ex is not None else "") or default_recognizer)
    rule = str(ex.pattern_name or "") if ex is not None else ""
    cue = str(ex.textual_explanation or "") if ex is not None else ""
    return TextSpan(result.start, result.end, result.entity_type, result.score, recognizer, rule,
                    (cue,) if cue else ())


def _beside_known_names(text: str, spans: list[TextSpan]) -> list[TextSpan]:
    """``spans``, where a name word scored down for being a word no list knows stands right before or after a
    kept name of the lexicon, with its score back: the given name or surname of a pair ("SUNITA STROUD")."""
    first, last = name_lexicon()
    known = [s for s in spans if s.entity_type == "PERSON" and UNKNOWN_WORDS_RULE not in s.rule
             and (any(w.lower() in first or w.lower() in last for w in _NAME_WORD.findall(text[s.start:s.end]))
                  or s.score >= 0.95)]
    if not known:
        return spans
    return [TextSpan(s.start, s.end, s.entity_type, min(1.0, s.score / UNKNOWN_WORDS_FACTOR), s.recognizer,
                     f"{s.rule}; beside a known name", s.context)
            if s.entity_type == "PERSON" and UNKNOWN_WORDS_RULE in s.rule
            and any(text[s.end:k.start] == " " or text[k.end:s.start] == " " for k in known) else s
            for s in spans]


def _initials_of_found_names(text: str, spans: list[TextSpan], strong: list[TextSpan]) -> list[TextSpan]:
    """``spans``, where a role's letters that are a clinical term too ("Tech SC.") are the initials of a name of two
    or three words found with a strong cue or score in the note ("Sven Czarnecki"), with a name's score."""
    initials = set()
    for s in strong:
        if s.entity_type == "PERSON" and not s.rule.startswith(INITIALS_RULE):
            words = _NAME_WORD.findall(text[s.start:s.end])
            if 2 <= len(words) <= 3:
                initials |= {"".join(w[0] for w in words).upper(), "".join(w[0] for w in words[::-1]).upper()}
    if not initials:
        return spans
    return [TextSpan(s.start, s.end, s.entity_type, STRONG_INITIALS, s.recognizer,
                     f"{s.rule}; the initials of a name found in the note", s.context)
            if s.rule.endswith(TERM_INITIALS) and text[s.start:s.end] in initials else s for s in spans]


#: a year found, alone: four digits or two (with an apostrophe or none)
_YEAR_ALONE = re.compile(r"'?(?:(?:19|20)\d{2}|\d{2})'?")
#: the next year of a list, joined by a comma, "and", "or" or "&" ("CVA in 94 and 00", "MI 1994, 1998 AND 2001"); not a
#: volume, a percentage or a decade after it
_NEXT_YEAR = re.compile(r"[ \t]*(?:,|(?i:and|or)\b|&)[ \t]*('?(?:19[3-9]\d|20[0-3]\d|\d{2})'?)(?![\d/:\-]|\.\d|[ \t]*(?:%|s\b|'s|"
                        r"(?i:mg|mcg|ml|cc|units?|hrs?|hours?|min|days?|x\b|times|pillows?|y/?o\b|y\.o|yrs?\b|years?|"
                        r"pack|kcal|cal\b|calories|steps|kg|lbs?|feet|ft\b|miles?|mmhg|bpm|beats)))")


def _coordinated_years(text: str, spans: list[TextSpan]) -> list[TextSpan]:
    """The years of a list after a year found alone, each of the first one's length ("CVA in 94 and 00", "MI 1994,
    1998 AND 2001"; not "in 94 and 2 days")."""
    out = []
    for s in spans:
        year = text[s.start:s.end]
        if s.entity_type != "DATE" or not _YEAR_ALONE.fullmatch(year):
            continue
        digits = len(year.strip("'"))
        end = s.end
        while (m := _NEXT_YEAR.match(text, end)) is not None and len(m.group(1).strip("'")) == digits:
            out.append(TextSpan(m.start(1), m.end(1), "DATE", s.score, "coordination", "a year of a list after a year found",
                                ("and",)))
            end = m.end(1)
    return out


def _coordinated_names(text: str, spans: list[TextSpan]) -> list[TextSpan]:
    """A capitalised word joined by "and" to a found name when no word list knows it ("with Fenella and
    Gaspard"; not "Dr. Smith and Pharmacy"), or before it; before it, a given name of the lexicon too after
    "with" ("reviewed with Ama and Zainab Paquette"; not "with family and Dr. Smith")."""
    known = name_likeness()
    first = name_lexicon()[0]
    out = []
    for s in spans:
        if s.entity_type != "PERSON":
            continue
        m = _AND_NEXT.match(text, s.end)
        if m and not is_common_word(m.group(1)) and not known.is_known_word(m.group(1)):
            out.append(TextSpan(m.start(1), m.end(1), "PERSON", STRONG_NAME, "coordination",
                                "a word joined by 'and' to a found name", ("and",)))
        b = _AND_BEFORE.search(text, max(0, s.start - 40), s.start)
        if b is None or not text[s.start:s.start + 1].isupper():
            continue
        w = b.group("word")
        if not is_common_word(w) and w.lower() not in ROLE_WORDS and (
                not known.is_known_word(w.lower()) and w.lower() not in clinical_terms()
                or b.group("cue") is not None and w.lower() in first):
            out.append(TextSpan(b.start("word"), b.end("word"), "PERSON", STRONG_NAME, "coordination",
                                "a word joined by 'and' to a found name", ("and",)))
    return out


def _propagate_names(text: str, spans: list[TextSpan], strong: list[TextSpan]) -> list[TextSpan]:
    """``spans`` and every other whole-word occurrence in the note of a word of a name found with a strong cue
    or a strong score (a name the context found once, "wife Juniper", is caught where it stands alone,
    "Juniper called")."""
    terms = clinical_terms()
    first, last = name_lexicon()
    given = word_given_names()
    shape = name_likeness()
    words = {w.lower() for s in strong if s.entity_type == "PERSON" and not s.rule.startswith(INITIALS_RULE)
             for w in _NAME_WORD.findall(text[s.start:s.end])
             if len(w) > 1 and not is_common_word(w) and (w.lower() not in terms or s.recognizer == "CueRecognizer")
             and (w.lower() in first or w.lower() in last or w.lower() in given
                  or len(w) >= 5 and shape.looks_like_name(w.capitalize()))}  # not "ween", "CONT", "DRNG"
    places = {text[s.start:s.end].lower(): s.entity_type for s in strong
              if s.recognizer == "CueRecognizer" and s.entity_type in ("WARD", "HOSPITAL") and " " not in
              text[s.start:s.end] and len(text[s.start:s.end]) >= 2}  # "GH", "BRIARWOOD": every mention
    kinds = {**{w: "PERSON" for w in words}, **places}
    if not kinds:
        return spans
    rx = re.compile(r"(?<![A-Za-z'\-])(" + "|".join(sorted(map(re.escape, kinds), key=len, reverse=True)) + r")(?![A-Za-z'\-])",
                    re.IGNORECASE)
    return spans + [TextSpan(m.start(), m.end(), kinds[m.group(0).lower()], STRONG_NAME, "propagation",
                             "another mention of a name found with a strong cue") for m in rx.finditer(text)]
