"""Clinical PHI recognizers for presidio: identifiers, dates, ages and names in the forms clinical notes use.

Each recognizer is a presidio ``EntityRecognizer`` over a regular expression whose PHI is one capture
group, so the context that finds it ("MRN:", "Dr.", "wife") stays outside the span. Labels and words
such as months are matched in any case (UPPER CASE notes); name words are capitalised or upper-case
words, and a name found through its context is cut before the first common word, so "SON IS AT
BEDSIDE" does not become a name. Imported only when text de-identification runs (presidio loads spaCy).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from spacy.lang.en.stop_words import STOP_WORDS

from clinical_mm.deid._presidio import EntityRecognizer, NlpArtifacts, RecognizerResult
from clinical_mm.deid.text_deidentifier import ALLOW_LIST

__all__ = ["CLINICAL_PATTERNS", "ClinicalPattern", "ClinicalPatternRecognizer", "NameLexiconRecognizer",
           "PlaceLexiconRecognizer", "common_english", "is_common_word", "name_lexicon", "place_gazetteer",
           "word_given_names"]

_MONTHS = ("(?i:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
           "|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_ORD = "(?i:st|nd|rd|th)"
_NOT_DOSE = r"(?!\s*(?i:tabs?|tablets?|mg|mcg|ml|caps?|puffs?|units?|strength|of)\b)"
#: one name word: capitalised or upper case, with inner hyphens or apostrophes (O'Sullivan, Hae-won)
_W = r"[A-Z][A-Za-z]*(?:['\-][A-Za-z]+)*"
_NAME = rf"{_W}(?:\s+[A-Z]\.)?(?:\s+{_W}){{0,2}}"
_CRED = r"(?:MD|M\.D\.|DO|RN|LPN|NP|PA-C|PA|PhD|CNA|APRN|FNP|DNP|PT|OT|RT|MSW|LCSW)"
_RELATIVES = ("(?:(?:step|grand|great-grand)-?)?(?:daughter|son|mother|father|child|parent)(?:-in-law)?|"
              "(?:sister|brother)(?:-in-law)?|wife|husband|spouse|partner|mom|dad|niece|nephew|aunt|uncle|cousin|"
              "friend|neighbor|neighbour|fianc[eé]e?|guardian|HCP|health care proxy|POA|caregiver|roommate|"
              "significant other|girlfriend|boyfriend|companion|visitor")
_NAME_LABELS = ("patient name|patient|pt name|pt|name|attending|attending physician|pcp|primary care|referring|"
                "referring physician|ordering physician|ordering|requesting physician|dictated by|signed by|"
                "electronically signed by|electronically signed|signed|e-signed|cosigned by|co-signed by|attested by|"
                "ordering provider|referring provider|read by|reviewed by|radiologist|physician|surgeon|resident|fellow|"
                "nurse|rn|np|cc|contact|emergency contact|sending md|accepting md|prescriber|preliminary read by|"
                "final by|seen by|discussed with|paged|called to|reported to|verbal order from|surrogate|proxy|attn|attention|"
                "communicated to|report from|report given to|handoff to|handoff from|signed out to|md|covering md|"
                "covering physician|covering provider|on-call|on call|chaplain|operator|assistant|accepting|transcriptionist|"
                "technologist|sonographer|therapist|pharmacist|interpreter|social worker|case manager|[a-z]+ologist|"
                "covering|addended by|amended by|copied to|cc'd to|follow up with|follow-up with|f/u with|"
                "spoke with|spoke w/|spoke to|talked with|talked to|reviewed with|relayed to|cleared by|"
                "prepared for|sending|sending physician|accepting physician|charge nurse|charge rn|primary rn|"
                "primary nurse|request of|consultation by|consulted by|received from|sw|social work")
_STATES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|"
           "NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR")
#: state codes that are also English words or clinical abbreviations
_WORD_STATES = "OR|IN|ME|OK|HI|ID|PA|MD|MS|LA|DE|OH|CO|MA|AL|ND|MO|NE|SC"
_OTHER_STATES = "|".join(c for c in _STATES.split("|") if c not in _WORD_STATES.split("|"))
_STREET_SUFFIX = ("(?i:St|Street|Ave|Avenue|Rd|Road|Blvd|Boulevard|Lane|Ln|Dr|Drive|Way|Ct|Court|Pl|Place|Terrace|Ter|"
                  "Pkwy|Parkway|Hwy|Highway|Circle|Cir|Sq|Square)")
_ID = r"[A-Z0-9](?:[A-Z0-9\-]*\d[A-Z0-9\-]*)"


@dataclass(frozen=True)
class ClinicalPattern:
    """A recognizer row: entity type, expression, the group holding the PHI, score, and whether the group is
    a name to cut at the first common word."""

    entity: str
    pattern: str
    group: int = 1
    score: float = 0.9
    name: bool = False
    #: not PHI when the 16 characters before the match hold this (a pain score "3/10" is not a date)
    not_after: str = ""
    #: tried at every position, for a context before the name: a context consumed by an earlier match whose
    #: name was trimmed away ("called to ONCOMING RN ARJUN STROUD") still introduces the name after it
    overlap: bool = False


CLINICAL_PATTERNS: tuple[ClinicalPattern, ...] = (
    # identifiers introduced by their label (any case)
    ClinicalPattern("MRN", rf"(?i:\b(?:MRN|MR#|MR No\.?|Med(?:ical)? Rec(?:ord)?(?: No\.?| #| Number)?|Hospital No\.?|"
                    rf"Unit No\.?|Chart(?: No\.?| #)?|Patient ID|Pt ID|Patient No\.?|Pt No\.?))\s*[:#]?\s*(?i:no\.?|number)?\s*#?\s*((?i:{_ID}))\b"),
    ClinicalPattern("ACCESSION", rf"(?i:\b(?:Acc(?:ession)?(?:\.|\s*No\.?|\s*#|\s*Number)?))\s*[:#]?\s*((?i:{_ID}))\b"),
    ClinicalPattern("ACCOUNT", rf"(?i:\b(?:Acct|Account|Billing|Encounter|Visit|FIN|CSN|HAR)(?:\s*No\.?|\s*#|\s*Number|\s*ID)?)"
                    rf"\s*[:#]?\s*#?\s*((?i:{_ID}))\b"),
    ClinicalPattern("HEALTH_PLAN", rf"(?i:\b(?:Member|Subscriber|Policy|Insurance|Insurer|Health ?Plan|Plan|Medicare|"
                    rf"Medicaid|MBI|HICN|Group|Beneficiary)(?:\s*/\s*health plan)?(?:\s*(?:ID|No\.?|#|Number))*)"
                    rf"\s*[:#]?\s*((?i:{_ID}))\b"),
    ClinicalPattern("LICENSE", rf"(?i:\b(?:License|Licence|Lic\.?|DEA|NPI|UPIN|Certificate|Cert\.?|Driver'?s License|DL)"
                    rf"(?:\s*(?:No\.?|#|Number))?)\s*[:#]?\s*((?i:{_ID}))\b"),
    ClinicalPattern("DEVICE_ID", rf"(?i:\b(?:Serial|S/N|SN|Device ID|UDI|Lot|Model/Serial|Implant ID|Pump ID)"
                    rf"(?:\s*(?:No\.?|#|Number))?(?:\s+(?:of|for|on)\s+(?:the\s+)?[a-z]+(?:\s+[a-z]+)?)?)"  # "serial of port"
                    rf"\s*[:#]?\s*((?i:{_ID}))\b"),
    ClinicalPattern("US_SSN", r"(?i:\b(?:SSN|SS#|Social Security(?: No\.?| Number| #)?))\s*[:#]?\s*(\d{3}[- ]?\d{2}[- ]?\d{4})\b"),
    # any other number long enough to identify (six or more digits, optionally with a letter prefix): lab
    # values and doses are shorter or carry a decimal point or comma
    ClinicalPattern("ID", r"(?<![\w.,/:\-])([A-Z]{0,4}\d{6,}[A-Z]?)(?![\w.,/:\-]\d)", score=0.6),
    # dates
    ClinicalPattern("DATE", r"\b((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?:/(?:\d{4}|\d{2}))?)\b" + _NOT_DOSE,
                    not_after=r"(?i:pain|score|scale|rated|strength|power|grade|murmur|BP|blood pressure)\W*(?:of\s*)?$"),
    ClinicalPattern("DATE", r"\b((?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])-(?:\d{4}|\d{2}))\b"),
    ClinicalPattern("DATE", r"\b((?:0?[1-9]|1[0-2])\.(?:0?[1-9]|[12]\d|3[01])\.(?:\d{4}|\d{2}))\b"),
    ClinicalPattern("DATE", rf"\b((?:0?[1-9]|[12]\d|3[01]){_ORD}?[- ](?:{_MONTHS})\.?(?:,?[- ]\d{{2,4}})?)\b"),
    ClinicalPattern("DATE", rf"\b((?:{_MONTHS})\.? (?:0?[1-9]|[12]\d|3[01]){_ORD}?(?:,? \d{{4}})?)\b"),
    ClinicalPattern("DATE", r"\b((?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01]))\b"),
    ClinicalPattern("DATE", rf"\b((?:{_MONTHS})\.?[ \-/](?:19|20)\d{{2}})\b"),  # "July 2031", "Jul-2031", "Sept. 2031"
    # ages over 89 (the number only; "90 yo", "aged 95", "age: 101", "92-year-old")
    ClinicalPattern("AGE", r"\b(9\d|1[0-1]\d)(?=\s*-?\s*(?i:y/?o\b|yo\b|y\.o\.|yrs?\b|years?\b|-year|year-old))"),
    ClinicalPattern("AGE", r"(?i:\b(?:age|aged|age:))\s*:?\s*(9\d|1[0-1]\d)\b"),
    # names by their context
    ClinicalPattern("PERSON", rf"\b(?i:Dr|Doctor|Prof)\b\.?\s+((?:[A-Z]\.\s*)?{_NAME})", name=True, overlap=True),
    ClinicalPattern("PERSON", rf"\b(?i:Mr|Mrs|Ms|Miss|Mx|Mister)\b\.?\s+((?:[A-Z]\.\s*)?{_NAME})", name=True,
                    overlap=True),
    ClinicalPattern("PERSON", rf"\b((?:[A-Z]\.\s*)?{_NAME}),?\s+{_CRED}\b", name=True),
    ClinicalPattern("PERSON", rf"\b([A-Z]{{2,3}}|[A-Z]\.[A-Z]\.),?\s+{_CRED}\b(?!\s+[a-z])", score=0.7, name=True),
    ClinicalPattern("PERSON", r"(?:--|—)\s*([A-Z]{2,3})\b", score=0.6, name=True),
    # dictation and transcription initials ("TK/mc", "JRS/ab"): author in capitals, typist in lower case; not a
    # view or a unit ("AP/lat", "ML/min")
    ClinicalPattern("PERSON", r"(?<![\w/])((?!(?:AP|PA|LAT|ML|MG|IU|U|PO|IV)/)[A-Z]{2,4}/"
                    r"(?!(?:min|hr|hrs|day|wk|kg|lat|ml|dl|mg|mcg|mm|cm|mmol|meq|oblique|obl)\b)[a-z]{2,4})(?![\w/])",
                    score=0.6),
    # initials after a role word without a colon ("Tech JR.", "SCRIBE: AB" has its label row): not a modality
    ClinicalPattern("PERSON", r"\b(?i:tech|technologist|sonographer|scribe|transcriptionist|interpreter|charge)\b\.?\s+"
                    r"(?!(?:CT|MR|MRI|US|XR|IR|NM|PET|RN|RT|DR|CR|DX)\b)([A-Z]{2,3})\b", score=0.7, name=True),
    ClinicalPattern("PERSON", rf"\b(?i:{_RELATIVES})\b(?:\s*[,:(]\s*|\s+)((?:{_NAME}))", score=0.75, name=True,
                    overlap=True),
    ClinicalPattern("PERSON", rf"\b({_NAME})\s*\((?i:{_RELATIVES})\)", score=0.75, name=True),
    ClinicalPattern("PERSON", rf"\b(?i:family)\s*\(\s*({_NAME})", score=0.75, name=True),  # "Family (Hualing Holt)"
    # a possessive before a relative or a service ("Orla's son", "admitted to Kaveh Vukovic's service")
    ClinicalPattern("PERSON", rf"\b((?:[A-Z]\.\s*)?{_NAME})'s\s+(?i:{_RELATIVES}|service|team|clinic|office|patient)\b",
                    score=0.7, name=True),
    ClinicalPattern("PERSON", rf"\b(?i:{_NAME_LABELS})\s*[:#]\s*((?:{_W}(?:\s+{_W})?,\s+)?{_NAME})", score=0.8, name=True,
                    overlap=True),
    ClinicalPattern("PERSON", rf"\b(?i:pt|patient)\s+({_W}\s+{_W})(?=\s*[,(])", score=0.7, name=True),
    ClinicalPattern("PERSON", rf"\b(?i:Dear|Sincerely|Regards|Thanks|Thank you)\b,?\s+((?:Dr\.?\s+)?{_NAME})", score=0.7,
                    name=True),
    ClinicalPattern("PERSON", rf"\b({_W},\s+{_W}|{_W}\s+{_W}),?\s+(?=\d{{1,3}}\s*-?\s*(?i:yo\b|y/o|y\.o\.|years?\b|yr|year-old|[MF]\b))",
                    score=0.7, name=True),
    ClinicalPattern("PERSON", rf"\b(?i:{_NAME_LABELS})\s+((?:[A-Z]\.\s*)?{_NAME})", score=0.6, name=True, overlap=True),
    ClinicalPattern("PERSON", rf"\b((?:{_W},\s+)?{_NAME})\s*[(,]?\s*\b(?i:DOB|D\.O\.B\.|born|MRN|MR#|age)\b", score=0.7,
                    name=True),
    # an initial and a name ("J. Smith"), not a dotted abbreviation ("P.O.", "B.I.D.")
    ClinicalPattern("PERSON", rf"(?<![A-Za-z.])([A-Z]\.\s?[A-Z][A-Za-z]+(?:['\-][A-Za-z]+)*(?:\s+{_W})?)", score=0.6,
                    name=True),
    # contact details and places
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/])((?:\+?1[-.\s]?)?(?:\(\d{3}\)\s*|\d{3}[-.\s])\d{3}[-.\s]\d{4})(?!\d)"
                    r"(?:\s*(?i:ext|x)\.?\s*\d{1,5})?"),
    # internal numbers by their label: pager, beeper, extension ("pager 34512", "ext. 4-5231", "x45231")
    ClinicalPattern("PHONE_NUMBER", r"(?i:\b(?:pager|beeper|pgr|bpr|ext|extension)\b\.?|\bx(?=\d))\s*[:#]?\s*#?\s*"
                    r"(\d{4,5}|\d-\d{4}|\d{2}-\d{3})(?![\d\-])"),
    ClinicalPattern("PHONE_NUMBER", r"(?<![\w+])(\+(?:[2-9]\d{0,2})[\s.\-]?(?:\(?\d{1,4}\)?[\s.\-]?)?\d{2,4}(?:[\s.\-]?\d{2,4}){1,3})(?!\d)"),
    ClinicalPattern("ADDRESS", rf"\b(\d{{1,6}}\s+(?:[A-Z][A-Za-z]+\s+){{1,3}}{_STREET_SUFFIX}\b\.?"
                    rf"(?:,?\s+(?i:Apt|Apartment|Unit|Suite|Ste|#)\.?\s*#?\s*\w+)?"
                    rf"(?:,\s*(?:(?:St|Ste|Mt|Ft)\.\s)?[A-Z][A-Za-z]+(?:\s[A-Z][A-Za-z]+)?(?=[\s,.;)]|$))?"
                    rf"(?:,?\s+(?:{_STATES}))?(?:,?\s+\d{{5}}(?:-\d{{4}})?)?)"),
    # "Salem, OR": a state code that is also a word ("EFFUSION, OR PNEUMOTHORAX") only when no word follows it
    ClinicalPattern("LOCATION", rf"\b([A-Z][A-Za-z]+(?:\s[A-Z][A-Za-z]+)?),\s*(?:(?:{_WORD_STATES})\b(?!\s+[A-Za-z])|"
                    rf"(?:{_OTHER_STATES})\b)", score=0.7),
    ClinicalPattern("ZIP", rf"\b(?:{_STATES})\.?,?\s+(\d{{5}}(?:-\d{{4}})?)\b"),
    ClinicalPattern("ZIP", r"(?i:\b(?:zip|zip code|postal code))\s*[:#]?\s*(\d{5}(?:-\d{4})?)\b"),
    ClinicalPattern("HOSPITAL", r"\b((?:(?i:St|Saint)\.?\s+)?(?:[A-Z][A-Za-z'\-]+\s+(?:(?:of|the|and)\s+)?){1,4}"
                    r"(?i:Hospital|Medical Center|Health Center|Health System|Healthcare|Clinic|Infirmary|Nursing Home|"
                    r"Rehab(?:ilitation)? Center|Hospice|Care Center|Surgical Center|Medical Group|"
                    r"(?:Kidney|Cancer|Dialysis|Heart|Vascular|Wound|Sleep|Imaging|Eye|Surgery|Transplant|Spine|"
                    r"Orthopedic|Women's|Children's) Center))\b", score=0.85),
    ClinicalPattern("WARD", r"(?i:\b(?:Ward|Room|Rm\.?|Bed))\s+([A-Z]?\d{1,4}[A-Z]?)\b", score=0.6),
)

#: words that are never a name on their own, beyond spaCy's stop words: clinical and note vocabulary
_NOT_NAMES = frozenset("""
patient pt pts name names dr doctor md rn np pa do mr mrs ms miss family home bedside visit visited visiting
called call calls phone number aware updated report reports noted note notes states stated says said plan
pain alert oriented resting ambulating ambulated discharge discharged admitted admission transfer transferred
history exam study findings impression comparison technique indication clinical signed dictated read reviewed
called spoke unable able per via re with at on in to by from for of the and or not no yes is was are be
ed er icu ccu micu sicu or pacu floor unit ward room bed rounds team service clinic hospital center
oncoming incoming outgoing covering charge triage
nursing nurse physician attending resident fellow radiology radiologist cardiology surgery medicine
cxr ct mri us xr ekg ecg bp hr rr spo2 temp vs gcs nyha dnr dni full code
ordered requested notified informed aware present absent stable unchanged reviewed consulted
portable film films view views pa ap lateral upright supine left right bilateral
north south east west january february march april june july august september october november december
monday tuesday wednesday thursday friday saturday sunday christmas easter thanksgiving
senna echo braden morse wells geneva milan duke hunt hess fisher gleason apgar glasgow ranson pugh child
id
""".split())


def is_common_word(word: str) -> bool:
    """A word that should not be taken for a name: spaCy's stop words and common note vocabulary."""
    w = word.lower().strip(".,:;'\"()")
    return w in STOP_WORDS or w in _NOT_NAMES or w in ALLOW_LIST


class ClinicalPatternRecognizer(EntityRecognizer):
    """One presidio recognizer for all :data:`CLINICAL_PATTERNS` (PHI in a capture group)."""

    def __init__(self, patterns: tuple[ClinicalPattern, ...] = CLINICAL_PATTERNS) -> None:
        self.patterns = [(p, re.compile(f"(?=(?:{p.pattern}))" if p.overlap else p.pattern),
                          re.compile(p.not_after) if p.not_after else None) for p in patterns]
        super().__init__(supported_entities=sorted({p.entity for p in patterns}), name="ClinicalPatternRecognizer",
                         supported_language="en")

    def load(self) -> None:
        """Nothing to load: the expressions are compiled in the constructor."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        out = []
        wanted = set(entities) if entities else None
        # in UPPER CASE a context guesses at the words after it ("PT DENIES", "FATHER DIED"): there a known English
        # or clinical word that no lexicon holds as a name ends the name too
        plain = _plain_word if text.upper() == text else None
        for p, rx, not_after in self.patterns:
            if wanted is not None and p.entity not in wanted:
                continue
            for m in rx.finditer(text):
                start, end = m.start(p.group), m.end(p.group)
                if not_after is not None and not_after.search(text[max(0, start - 16):start]):
                    continue
                if p.name:
                    start, end = _trim_name(text, start, end, plain)
                if end > start:
                    out.append(RecognizerResult(p.entity, start, end, p.score))
        return out


_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*\.?")
_VOWELS = re.compile(r"[AEIOUYaeiouy]")
#: word-forming prefixes written with a hyphen ("Pre-op", "Peri-hilar"), never a given name's first part
_PREFIXES = frozenset("""pre post peri para hemo hypo hyper anti non sub trans intra inter extra mid semi multi
micro macro retro infra supra endo exo neuro cardio gastro uro nephro pulmo broncho osteo ortho pseudo poly
mono tele auto self ante""".split())


def _plain_word(word: str) -> bool:
    """A known English, clinical or drug word (the name-likeness model's) that is not a lexicon given name
    (surnames are left out: the census holds "Given", "Kidney", "Cancer")."""
    from clinical_mm.deid.name_likeness import name_likeness

    w = word.lower().rstrip(".")
    return w in name_likeness().known and w not in name_lexicon()[0]


def _trim_name(text: str, start: int, end: int, plain: Callable[[str], bool] | None = None) -> tuple[int, int]:
    """A context-found name without its leading common words ("Signed", "Pt") and cut before the next one
    (or the next word ``plain`` accepts); (start, start) when nothing is left."""
    first = stop = -1
    before: re.Match[str] | None = None  # the common word just before the first name word
    for m in _WORD.finditer(text, start, end):
        word = m.group(0)
        initial = len(word) == 2 and word.endswith(".")  # "I. Varga": an initial, not the pronoun
        if not initial and (is_common_word(word) or len(word.rstrip(".")) == 1 or plain is not None and plain(word)):
            if first >= 0:
                break
            before = m
            continue
        if first < 0:
            first = m.start()
            # a given name that is also a word, right before the name ("READING RADIOLOGIST: HOPE LLEWELLYN")
            if before is not None and before.group(0).rstrip(".").lower() in word_given_names() \
                    and text[before.end():m.start()].strip() == "":
                first = before.start()
        stop = m.end()
    return (first, stop) if first >= 0 else (start, start)


@lru_cache(maxsize=1)
def common_english() -> frozenset[str]:
    """About a thousand of the commonest English words (Faker's en_US word list): a word found without context
    is not taken for a name or a place when it is one of these ("Will", "Reading", "Normal")."""
    from faker.providers.lorem.en_US import Provider

    return frozenset(w.lower() for w in Provider.word_list)


def _census_names(resource: str) -> set[str]:
    """Names (lower case) from a US Census Bureau 1990 frequency file shipped by the ``names`` package (public
    domain data: 88,799 surnames, 5,494 given names)."""
    from importlib.resources import files

    text = files("names").joinpath(resource).read_text(encoding="ascii")
    return {line.split(None, 1)[0].lower() for line in text.splitlines() if line[:1].isalpha()}


@lru_cache(maxsize=1)
def name_lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """Given names and surnames (lower case) from Faker's person providers of every locale written in Latin
    letters and the US Census 1990 name files (about 19,000 and 98,000), less common words."""
    first, last = _raw_names()
    common = common_english()
    return (frozenset(w for w in first if len(w) > 2 and w not in common and not is_common_word(w)),
            frozenset(w for w in last if len(w) > 2 and w not in common and not is_common_word(w)))


@lru_cache(maxsize=1)
def word_given_names() -> frozenset[str]:
    """Given names left out of the lexicon for being common words ("Hope", "Grace", "Will", "Mark"): a name
    only where a context already says a name stands."""
    first = _raw_names()[0]
    return frozenset(w for w in first if len(w) > 2 and w not in name_lexicon()[0] and w not in STOP_WORDS
                     and w not in _NOT_NAMES and w not in ALLOW_LIST)


@lru_cache(maxsize=1)
def _raw_names() -> tuple[frozenset[str], frozenset[str]]:
    import importlib
    import pkgutil

    import faker.providers.person as people

    first = _census_names("dist.male.first") | _census_names("dist.female.first")
    last = _census_names("dist.all.last")
    for module in pkgutil.iter_modules(people.__path__):
        try:
            provider = importlib.import_module(f"faker.providers.person.{module.name}").Provider
        except (ImportError, AttributeError):
            continue
        for attr, into in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                           ("last_names", last)):
            values = getattr(provider, attr, None)
            if isinstance(values, (dict, list, tuple)):
                into.update(v.lower() for v in values if isinstance(v, str) and v.isascii() and v[:1].isupper())
    return frozenset(first), frozenset(last)


class NameLexiconRecognizer(EntityRecognizer):
    """Names without context: a known given name followed by a capitalised word ("Gustavo Novak slept") or a
    capitalised word followed by a known surname ("Hae-won Quintero"), a
    capitalised word, a comma and a known given name ("Novak, Gustavo"), or, in mixed-case text, a known
    given name capitalised inside a sentence ("per Gustavo and family").

    In UPPER CASE text, where capitals say nothing, a pair needs a lexicon name and not two known words, and
    a lone lexicon given name counts anywhere when it is no English, clinical or drug word ("WOULD LIKE
    HARUTO PRESENT"). Common words never count as names.

    A word no lexicon holds counts as a name where a lexicon name would when it looks like one
    (:mod:`clinical_mm.deid.name_likeness`: not a known English or clinical word, letters typical of names):
    a lone word at a clause opening or inside a sentence, either word of a pair whose other word is a lexicon
    name, both words of a capitalised pair in mixed case, the given name of "Surname, Given".
    """

    _PAIR = re.compile(rf"(?<![A-Za-z'\-])(?=({_W})\s+({_W})(?![A-Za-z'\-]))")  # overlapping pairs
    _LAST_FIRST = re.compile(rf"(?<![A-Za-z'\-])({_W}),\s+({_W})(?![A-Za-z'\-])")
    #: a capitalised word inside a sentence (after a lower-case word or a comma), for a lone given name
    _INNER = re.compile(r"(?<=[a-z,/]\s)([A-Z][a-z]+(?:-[A-Za-z]+)?)(?![A-Za-z'\-])")  # "/": "w/ Taini"
    #: a capitalised word opening a sentence or clause and followed by a lower-case word ("Ingeborg asked",
    #: "Instructions: Ezekiel, call ...")
    _OPENING = re.compile(r"(?:^|(?<=[.;:!?]\s)|(?<=\n))([A-Z][a-z]+(?:-[A-Za-z]+)?)(?=,?\s+[a-z])")
    #: in UPPER CASE, a word opening a sentence or clause and followed by another word ("ANNIKA AMBULATED")
    _OPENING_UPPER = re.compile(r"(?:^|(?<=[.;:!?]\s)|(?<=\n))([A-Z]+(?:-[A-Z]+)?)(?=,?\s+[A-Z])")
    _UPPER_WORD = re.compile(r"(?<![A-Za-z'\-])([A-Z]+(?:-[A-Z]+)?)(?![A-Za-z'\-])")
    _POSSESSIVE = re.compile(r"(?<![A-Za-z'\-])([A-Z][A-Za-z]+(?:-[A-Za-z]+)?)'[sS]\b")
    #: a word right before "at" and a telephone number ("Called Hope at 447.788.4096", "reach Dov at (617) ...")
    _BEFORE_PHONE = re.compile(rf"(?<![A-Za-z'\-])({_W})\s+(?i:at|@|on)\s+(?=(?:\+?1[-.\s]?)?(?:\(\d{{3}}\)\s*|\d{{3}}[-.\s])"
                               rf"\d{{3}}[-.\s]\d{{4}}(?!\d))")

    def __init__(self) -> None:
        from clinical_mm.deid.name_likeness import name_likeness

        self.first, self.last = name_lexicon()
        self.shape = name_likeness()
        super().__init__(supported_entities=["PERSON"], name="NameLexiconRecognizer", supported_language="en")

    def _looks_like_name(self, word: str) -> bool:
        """A word no lexicon holds that looks like a name: by its letters (every part of a hyphenated one), or a
        hyphenated given name whose parts are too short for their letters to say much ("Jin-soo", "Hae-won"):
        a first part of three letters or more that no word list knows and is no prefix ("Pre-op", "Peri-hilar"),
        and no known word of four letters or more after it ("Hemo-dynamically")."""
        if is_common_word(word):
            return False
        parts = word.split("-")
        if all(self.shape.looks_like_name(part) for part in parts):
            return True
        return (len(parts) == 2 and len(parts[0]) >= 3 and parts[0].lower() not in _PREFIXES
                and not self.shape.is_known_word(parts[0]) and not is_common_word(parts[0])
                and not (len(parts[1]) >= 4 and self.shape.is_known_word(parts[1])))

    def _unknown_short_name(self, word: str, upper: bool) -> bool:
        """A word of three letters or more with a vowel, capitalised (in mixed case), that no word list knows."""
        return (len(word) >= 3 and _VOWELS.search(word) is not None and (upper or word[1:].islower())
                and not self.shape.is_known_word(word) and not is_common_word(word))

    def _name_word(self, word: str, upper: bool) -> bool:
        """A lexicon given name or surname, a word that looks like a name, or a short word no list knows."""
        return (word.lower() in self.first or word.lower() in self.last or self._looks_like_name(word)
                or self._unknown_short_name(word, upper))

    def _given(self, word: str) -> bool:
        return word.lower() in self.first or self._looks_like_name(word)

    def _family(self, word: str) -> bool:
        return word.lower() in self.last or self._looks_like_name(word)

    def load(self) -> None:
        """The lexicon is read in the constructor."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        upper = text.upper() == text
        out = []
        for m in self._PAIR.finditer(text):
            given, family = m.group(1), m.group(2)
            if is_common_word(family) or is_common_word(given):
                continue
            if upper:
                if self.shape.is_known_word(given) and self.shape.is_known_word(family):
                    continue  # "COLON CANCER": where capitals say nothing, two words of the word lists are words
                known_given, known_family = given.lower() in self.first, family.lower() in self.last
                # one in the lexicon and the other in it too or looking like a name ("BRONISLAW HARGROVE"), or a
                # lexicon given name before a surname no word list knows ("SOLVEIG ETXEBERRIA")
                if not (known_given and (self._family(family) or self._unknown_short_name(family, upper))
                        or known_family and self._given(given)):
                    continue
            elif given.lower() not in self.first:
                if not (given[1:].islower() and family[1:].islower()):
                    continue
                if family.lower() in self.last:
                    # an unknown capitalised word before a known capitalised surname ("Hae-won Quintero"), not
                    # a phrase of common words ("Daughter-in-law Lamar")
                    if any(is_common_word(part) for part in re.split(r"['\-]", given)):
                        continue
                elif not (self._looks_like_name(given) and self._looks_like_name(family)):
                    continue
            elif not (family[0].isupper() and family[1:].islower() or family.lower() in self.last):
                continue
            out.append(RecognizerResult("PERSON", m.start(1), m.end(2), 0.6))
        for m in self._LAST_FIRST.finditer(text):
            family, given = m.group(1), m.group(2)
            # the given name is a lexicon one, or after a lexicon surname a word that looks like one or, too short
            # for its letters to say much, any word the word lists do not know ("Paquette, Dov"; not "Tran, SW")
            if is_common_word(family) or not (given.lower() in self.first or family.lower() in self.last and (
                    self._looks_like_name(given) or self._unknown_short_name(given, upper))):
                continue
            if upper and family.lower() not in self.last:
                continue
            if not upper and not family[1:].islower():
                continue
            out.append(RecognizerResult("PERSON", m.start(1), m.end(2), 0.6))
        for rx in ((self._OPENING_UPPER,) if upper else (self._INNER, self._OPENING)):
            for m in rx.finditer(text):
                # the lexicon holds no common words; a given name that is also a word stays a name here
                # ("Precious ambulated"; "Trace left effusion" is the price)
                if self._given(m.group(1)):
                    out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.5))
        for m in self._POSSESSIVE.finditer(text):
            # a capitalised word with "'s" that no word list knows, or a lexicon name ("Fenella's pastor"; not
            # "Parkinson's", "Patient's")
            word = m.group(1)
            if not self.shape.is_known_word(word) and not is_common_word(word) and self._name_word(word, upper):
                out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.5))
        for m in self._BEFORE_PHONE.finditer(text):
            # a name of the lexicon, a given name that is also a word, or a word no word list knows
            word = m.group(1)
            if self._name_word(word, upper) or word.lower() in word_given_names():
                out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.5))
        if upper:
            # anywhere else in UPPER CASE, a lexicon given name that is no English, clinical or drug word
            # ("WOULD LIKE HARUTO PRESENT"; not "MAE", moves all extremities, which the word lists know), or a
            # word with two vowels or more that looks like a name ("PER RADOMIR"; not an acronym, "MRSA")
            for m in self._UPPER_WORD.finditer(text):
                word = m.group(1)
                if len(word) >= 4 and (word.lower() in self.first or len(_VOWELS.findall(word)) >= 2
                                       and self._looks_like_name(word)) \
                        and not self.shape.is_known_word(word) and not is_common_word(word):
                    out.append(RecognizerResult("PERSON", m.start(1), m.end(1), 0.45))
        return out


@lru_cache(maxsize=1)
def place_gazetteer() -> frozenset[str]:
    """US place names (lower case): every city and acceptable city name of the US ZIP codes in the
    ``zipcodes`` package (about 26,000), less common words."""
    import zipcodes

    places: set[str] = set()
    for row in zipcodes.list_all():  # type: ignore[no-untyped-call]
        places.add(str(row["city"]).lower())
        places.update(str(c).lower() for c in row.get("acceptable_cities") or ())
    common = common_english()
    return frozenset(p for p in places if p not in common and not all(is_common_word(w) for w in p.split()))


class PlaceLexiconRecognizer(EntityRecognizer):
    """Cities and towns without an address: a known US place name after "in", "from", "near", "to", "at",
    "outside" or "visiting" ("stay with her mother in Leominster", "MOVED FROM REVERE"), right after an
    institution ("Mid Coast Hospital (Bath)", "Visiting Nurse of Laconia"), or alone in parentheses ("home
    (Massena)"). Up to three words, the longest known name wins; a single word must not be a common word."""

    _PLACE = re.compile(rf"(?=\b((?i:in|from|near|to|at|outside|visiting))\s+({_W}(?:\s+{_W}){{0,2}}))")  # overlapping
    #: a known place that is all a pair of parentheses holds ("brought in slippers from home (Massena)"), unless a
    #: single word of the word lists ("(Normal)")
    _IN_PARENTHESES = re.compile(rf"\(\s*({_W}(?:\s+{_W}){{0,2}})\s*\)")
    #: a place right after an institution, in parentheses or after a comma ("Mid Coast Hospital (Bath)",
    #: "SNF (Seacoast Community Hospital), Amherst", "Visiting Nurse of Laconia")
    _AFTER_INSTITUTION = re.compile(
        rf"(?i:hospital|center|centre|clinic|infirmary|nursing home|hospice|rehab|snf|visiting nurses?)\)?"
        rf"(?:\s*\(\s*|,\s*|\s+(?i:of)\s+)({_W}(?:\s+{_W}){{0,2}})")

    def __init__(self) -> None:
        from clinical_mm.deid.name_likeness import name_likeness

        self.places = place_gazetteer()
        self.shape = name_likeness()
        super().__init__(supported_entities=["LOCATION"], name="PlaceLexiconRecognizer", supported_language="en")

    def load(self) -> None:
        """The gazetteer is read in the constructor."""

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        upper = text.upper() == text
        out = []
        for m in self._PLACE.finditer(text):
            if upper and m.group(1).lower() == "to":
                continue  # "TO MONITOR", "TO ADVANCE": in UPPER CASE a verb follows "to" more often than a place
            out.extend(self._longest_place(m, 2))
        for m in self._AFTER_INSTITUTION.finditer(text):
            out.extend(self._longest_place(m, 1))
        for m in self._IN_PARENTHESES.finditer(text):
            name = m.group(1)
            if name.lower() in self.places and not (" " not in name and self.shape.is_known_word(name)):
                out.append(RecognizerResult("LOCATION", m.start(1), m.end(1), 0.55))
        return out

    def _longest_place(self, m: re.Match[str], group: int) -> list[RecognizerResult]:
        """The longest known place the words of ``m.group(group)`` open with (none or one result)."""
        words = list(re.finditer(r"\S+", m.group(group)))
        for n in range(len(words), 0, -1):
            name = " ".join(w.group(0) for w in words[:n])
            if name.lower() in self.places:
                return [RecognizerResult("LOCATION", m.start(group), m.start(group) + words[n - 1].end(), 0.6)]
        return []
