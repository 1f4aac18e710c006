"""The word lists the text de-identifier reads: clinical words that are no PHI, words that are never names, a
name lexicon and a US place gazetteer, and the shape of a name word.

The recognizers, the name-likeness model, the context tagger and their trainers all read the same lists, so
they live here, in a module that imports nothing else of clinical-mm. The large lists load on first use
(Faker, the US Census name files and the ``zipcodes`` package) and are kept for the life of the process.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from clinical_mm.deid.text.name_likeness import name_likeness

__all__ = ["ALLOW_LIST", "CALLED_RELATIVES", "US_STATE_CODES", "EPONYM_PHRASES", "EPONYM_SCORES", "HOSPITAL_ROOMS", "ICU_SHORTHAND", "INSTITUTION_NAME_WORDS",
           "NAME_WORD", "NOT_NAMES", "PREFIXES", "ROLE_WORDS", "VOWELS", "big_cities", "clinical_terms", "common_english", "common_names",
           "expand_place_shorthand", "given_names",
           "is_common_word", "languages", "large_places", "misspelt_term", "name_lexicon", "place_gazetteer",
           "score_towns", "stop_words", "term_places", "upper_case_note", "us_states", "word_given_names"]

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

#: words of relation and role that stand next to a name and are none ("Son David", "Nephew, Neil Brandeis", "CALLED
#: SON AT ...")
ROLE_WORDS: frozenset[str] = frozenset("son sons daughter daughters wife husband mother father brother sister nephew niece aunt "
                                       "uncle cousin grandson granddaughter friend contact person family rabbi chaplain dr doctor "
                                       "rn md np pa mr mrs ms miss nurse va pastor priest minister reverend imam clergy "
                                       "deacon sitter interpreter translator companion roommate coworker guardian attorney "
                                       "atty sil bil fil dil mil ho pharmacist dietitian dietician nutritionist".split())

#: rooms and grounds of a hospital that share a town's name ("AMBULATED IN HALL", "FAMILY IN CHAPEL")
HOSPITAL_ROOMS: frozenset[str] = frozenset("hall halls hallway chapel lobby cafeteria garden gardens gym dayroom".split())
#: name words of an institution that are terms ("St. Mary's", "Lakeside Memorial", "Pinecrest Adventist")
INSTITUTION_NAME_WORDS: frozenset[str] = frozenset("st saint memorial general adventist union mercy providence sacred heart "
                                                    "good samaritan sam holy cross children's university county".split())
#: ICU nursing shorthand and charting words that the clinical term list lacks: ventricular ectopic activity,
#: arterial line, low intermittent suction, orogastric tube, the Riker sedation-agitation scale, the CareVue
#: charting system, serosanguinous, dobutamine, Respalor (a tube feed); pupils equal and reactive (pearl, perl),
#: serous and sanguinous drainage, flow, open to air, the rapid shallow breathing index, cardiac outputs (cos),
#: saturations (sao, svo), approximately, levofloxacin and levophed, fentanyl; radiology words the term list
#: lacks (cardiomediastinal, kyphotic, biapical, Veriphy the result-notification system); fluoroscopy, interventional
#: (radiology), channel blockers, dulcolax, the usual short names of antibiotics, sinus tachy. A word here is never a
#: name without a strong cue, even where it is a given name too ("PEARL", "Flo"); so not the names that are clinical
#: words only beside certain words ("amber", "Brady", "Quinton", "Ami", "Swan": evidence._CLINICAL_NEIGHBOURS).
#: (Not on ALLOW_LIST: that list is a training input of the shipped name and context models.)
ICU_SHORTHAND: frozenset[str] = frozenset("""
vea aline a-line paline deline carevue careview lis ogt pearla perla riker sang serosang dobuta respalor nsurg
overnoc vue preop postop periop intraop pmicu tsicu cvicu csicu nicu picu sicu ticu csru ccu micu pacu
pearl perl perrl sero sanq flo ota rsbi cos sao svo aprox levoflox levofed fent
cardiomediastinal mediastinal kyphotic biapical bibasilar veriphy
floro fluoro interventional blocker blockers dulc dulcolax
vanc vanco ceftaz ceftri cefaz cefazo zosyn pip-tazo clinda dapto linezolid mero imi tobra gent levaquin cipro
flagyl fluc acyclo bactrim unasyn amp ampi tachy
nsgy nsicu ctsurg gensurg vascsurg neurosurg wocn woc ctsicu nsurgery ctsx gsurg hoh
""".split())

#: the people a note gives a number to call, as a regular expression's alternation ("wife|husband|...")
CALLED_RELATIVES = ("wife|husband|spouse|son|daughter|dtr|brother|sister|mother|father|niece|nephew|friend|neighbou?r|"
                    "hcp|nok|proxy")

#: names of clinical scores, signs and tests ("Braden", "Geneva score", "Morse fall scale"), some of them towns too
EPONYM_SCORES: frozenset[str] = frozenset(
    "senna echo braden morse wells geneva milan duke hunt hess fisher gleason apgar glasgow ranson pugh child".split())

#: devices, signs, tests, procedures and diseases named after a person or a place: the name in the phrase is none
#: ("BLAKE DRAIN", "Bair Hugger", "Levine sign", "Miami J collar"), though the name alone may be ("Dr. Blake"); a
#: phrase matches with hyphens or spaces between its words, a possessive on its first word and a plural at its end
EPONYM_PHRASES: tuple[str, ...] = tuple(p.strip() for p in """
blake drain|jackson pratt|bair hugger|hoyer lift|stryker frame|stryker bed|miami j|aspen collar|philadelphia collar|
denver shunt|denver catheter|lima graft|lima to lad|allen test|levine sign|murphy sign|cullen sign|grey turner|
turner sign|hartmann pouch|hartmann procedure|whipple procedure|venturi mask|levin tube|fogarty catheter|
greenfield filter|mayfield pins|mayfield head holder|thomas splint|geri chair|broda chair|roho cushion|roho|clinitron|
kinair|passy muir|shiley trach|shiley tube|bivona trach|portex|posey vest|posey belt|posey mitts|posey bed|salem sump|
cheyne stokes|stevens johnson|dakin solution|dakins|montgomery straps|puritan bennett|hamilton vent|zoll pads|
quinton catheter|quinton cath|quinton line|mahurkar|tenckhoff|groshong|broviac|sengstaken blakemore|minnesota tube|
trendelenburg|kussmaul|babinski|homans sign|chvostek sign|trousseau sign|brudzinski sign|kernig sign|romberg sign|
romberg test|glasgow coma scale|ramsay scale|richmond agitation|impella|heartmate|biopatch|huber needle|tegaderm|
xeroform|kerlix|allevyn|mepilex|duoderm|aquacel|coolgard|arctic sun|flexiseal|pleurevac|ambu bag|ambu|yankauer|
parkinson disease|alzheimer disease|crohn disease|hodgkin lymphoma|hodgkin disease|addison disease|cushing triad|
cushing syndrome|graves disease|wernicke encephalopathy|wernicke aphasia|guillain barre|bell palsy|raynaud phenomenon|
raynaud disease|sjogren syndrome|kaposi sarcoma|barrett esophagus|morgagni hernia|zenker diverticulum|mallory weiss|
roux en y|nissen fundoplication|billroth ii|billroth i|wolff parkinson white|osler nodes|austin flint|ludwig angina|
pott disease|paget disease|wegener granulomatosis|berlin criteria|plaster of paris|norton scale|morse scale|
braden scale|apgar score|ranson criteria|child pugh|semi fowler|high fowler|low fowler|fowler position|call bell|
homan sign|geo matt|mylanta|corpak|
""".replace("\n", "").split("|") if p.strip())

#: words that are never a name on their own, beyond spaCy's stop words: clinical and note vocabulary
NOT_NAMES: frozenset[str] = frozenset("""
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
id
""".split()) | EPONYM_SCORES

#: word-forming prefixes written with a hyphen ("Pre-op", "Peri-hilar"), never a given name's first part
PREFIXES: frozenset[str] = frozenset("""pre post peri para hemo hypo hyper anti non sub trans intra inter extra mid
semi multi micro macro retro infra supra endo exo neuro cardio gastro uro nephro pulmo broncho osteo ortho pseudo
poly mono tele auto self ante""".split())

#: one name word, as an expression: capitalised or upper case, with inner hyphens or apostrophes (O'Sullivan,
#: Hae-won)
NAME_WORD = r"[A-Z][A-Za-z]*(?:['\-][A-Za-z]+)*"
VOWELS = re.compile(r"[AEIOUYaeiouy]")


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """spaCy's English stop words (loaded on first use: importing spaCy takes a second or two)."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def is_common_word(word: str) -> bool:
    """A word that should not be taken for a name: spaCy's stop words and common note vocabulary."""
    w = word.lower().strip(".,:;'\"()")
    return w in stop_words() or w in NOT_NAMES or w in ALLOW_LIST


@lru_cache(maxsize=8)
def upper_case_note(text: str) -> bool:
    """A note written in UPPER CASE: more than 60% of its letters are capitals (kept for the last few notes: the
    recognizers ask it of every span)."""
    letters = [c for c in text if c.isalpha()]
    return bool(letters) and sum(c.isupper() for c in letters) / len(letters) > 0.6


@lru_cache(maxsize=1)
def common_english() -> frozenset[str]:
    """About a thousand of the commonest English words (Faker's en_US word list): a word found without context
    is not taken for a name or a place when it is one of these ("Will", "Reading", "Normal")."""
    from faker.providers.lorem.en_US import Provider

    return frozenset(w.lower() for w in Provider.word_list)


@lru_cache(maxsize=1)
def clinical_terms() -> frozenset[str]:
    """195,252 lower-case words that are no names: English words, clinical terms and shorthand ("gu", "mae",
    "levo", "perrla", "hct"), drug names and their misspellings: philter-lite 0.6.0's "nonames" list (BSD
    3-Clause, UCSF; ``data/CLINICAL_TERMS_LICENSE.txt``). A word of it is taken for a name only where a strong
    cue says one stands there ("son Will", "Dr. White")."""
    import gzip
    from importlib.resources import files

    raw = files("clinical_mm").joinpath("data", "clinical_terms.txt.gz").read_bytes()
    return frozenset(gzip.decompress(raw).decode("ascii").split()) | ICU_SHORTHAND


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
    return frozenset(w for w in first if len(w) > 2 and w not in name_lexicon()[0] and w not in stop_words()
                     and w not in NOT_NAMES and w not in ALLOW_LIST)


def _typed_for() -> dict[str, str]:
    """For each letter, the letters a typist may have meant: the keys beside it on a QWERTY keyboard and the letters
    of the same sound."""
    rows = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
    near: dict[str, set[str]] = {c: set() for row in rows for c in row}
    for r, row in enumerate(rows):
        for i, c in enumerate(row):
            for r2 in (r - 1, r, r + 1):
                if 0 <= r2 < len(rows):
                    near[c].update(rows[r2][j] for j in (i - 1, i, i + 1) if 0 <= j < len(rows[r2]))
    for a, b in ("ae", "ei", "iy", "ou", "ck", "cs", "sz", "mn", "fv"):
        near[a].add(b)
        near[b].add(a)
    return {c: "".join(sorted(v - {c})) for c, v in near.items()}


#: the letters a typist may have meant for each letter (:func:`misspelt_term` with ``typing``)
_TYPED_FOR = _typed_for()


@lru_cache(maxsize=4096)
def misspelt_term(word: str, of: Callable[[str], bool] | None = None, typing: bool = False) -> bool:
    """A word one edit (a letter left out, added, changed, or two swapped) away from a clinical term of five
    letters or more: a misspelling in a note ("RECIEVED", "Diltizem", "SOMNULENT"), not a name; with ``of``, only
    a term for which ``of`` holds counts (an English word: "OVERNITE"); with ``typing``, a letter changed only for
    a key beside it or a letter of the same sound ("OVERNITE" for "overbite"; not "Hualing" for "healing")."""
    w = word.lower()
    if not 4 <= len(w) <= 30 or not w.isascii() or not w.isalpha():
        return False  # no term is longer than 30 letters
    terms = clinical_terms()
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
    edits = {a + b[1:] for a, b in splits if b}
    edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    edits |= {a + c + b[1:] for a, b in splits if b for c in (_TYPED_FOR.get(b[0], "") if typing else letters)}
    edits |= {a + c + b for a, b in splits for c in letters}
    return any(len(e) >= 5 and e in terms and (of is None or of(e)) for e in edits - {w})


@lru_cache(maxsize=1)
def common_names() -> frozenset[str]:
    """The commonest names of the US Census 1990 files (lower case): the 5,000 commonest surnames, 1,000
    female and 600 male given names. Some are clinical words too ("brown", "white", "mae"): such a word is a
    name when it stands with a name or after a cue ("Margaret Lee", "Dr. White")."""
    from importlib.resources import files

    out: set[str] = set()
    for resource, n in (("dist.all.last", 5000), ("dist.female.first", 1000), ("dist.male.first", 600)):
        lines = files("names").joinpath(resource).read_text(encoding="ascii").splitlines()[:n]
        out.update(line.split(None, 1)[0].lower() for line in lines if line[:1].isalpha())
    return frozenset(out)


#: a town's opening shorthand and the word it stands for ("MT AIRY": Mount Airy)
_PLACE_SHORTHAND = {"mt": "mount", "ft": "fort"}


def expand_place_shorthand(name: str) -> str | None:
    """``name`` (lower case) with its opening "mt" or "ft" written out as "mount" or "fort" ("mt airy" -> "mount
    airy"), or None where it opens with neither."""
    first, space, rest = name.partition(" ")
    return f"{_PLACE_SHORTHAND[first]} {rest}" if space and first in _PLACE_SHORTHAND else None


#: US postal codes of the states, DC and Puerto Rico (an alternation for a pattern)
US_STATE_CODES = ("AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|"
                  "NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR")


@lru_cache(maxsize=1)
def us_states() -> frozenset[str]:
    """US state names (lower case; Faker's en_US states): no Safe Harbor identifier, though towns share some of
    their names ("California", Maryland)."""
    from faker.providers.address.en_US import Provider as States

    return frozenset(p.lower() for p in States.states)


@lru_cache(maxsize=1)
def large_places() -> frozenset[str]:
    """US states, countries and continents (lower case): a place this large is no Safe Harbor identifier
    (Faker's en_US states and English country names)."""
    from faker.providers.address.en import Provider as Countries

    return us_states() | frozenset(p.lower() for p in Countries.countries) | frozenset(
        "europe asia africa america north america south america antarctica australia oceania usa us "
        "united states england scotland wales ireland puerto rico guam".split())


@lru_cache(maxsize=1)
def languages() -> frozenset[str]:
    """Language names and a few nationality words (lower case): "speaks English", "Russian speaking" name no
    person (Faker's language names)."""
    from faker.providers.person.en import Provider

    return frozenset(w.lower() for w in Provider.language_names if " " not in w) | frozenset(
        "english spanish russian cantonese mandarin chinese creole haitian portuguese italian greek polish french "
        "vietnamese korean japanese arabic hindi somali cape verdean american asian african european".split())


def given_names() -> frozenset[str]:
    """Every given name of the lexicon's sources (lower case), common words and two-letter names ("Ed", "Al")
    included: a name where a strong cue says one stands ("son Ed", "daughter Grace")."""
    return _raw_names()[0]


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


@lru_cache(maxsize=1)
def big_cities() -> frozenset[str]:
    """US cities of 20 ZIP codes or more (lower case; the ``zipcodes`` package): a city that size is a place after a
    word of moving or living even where it is an English or clinical word too ("DAUGHTER FROM BOSTON", "moved to
    Richmond"); not the few that are mostly words in notes (mobile, independence, mesa, midland, fpo)."""
    import zipcodes

    counts: dict[str, int] = {}
    for row in zipcodes.list_all():  # type: ignore[no-untyped-call]
        city = str(row["city"]).lower()
        counts[city] = counts.get(city, 0) + 1
    return frozenset(c for c, n in counts.items() if n >= 20) - {"mobile", "independence", "mesa", "midland", "fpo"}


@lru_cache(maxsize=1)
def score_towns() -> frozenset[str]:
    """US towns that share a clinical score's name ("Geneva", "Wells", "Milan"): left out of :func:`place_gazetteer`,
    a place only after a verb of living ("home in Geneva")."""
    import zipcodes

    return frozenset(str(row["city"]).lower() for row in zipcodes.list_all()) & EPONYM_SCORES  # type: ignore[no-untyped-call]


#: one-word places of the term list that notes write as words too ("in english", "to micro", "colo", "stet")
_WORDS_NOT_TERM_PLACES = frozenset("english mary micro kappa stet colo tesla thor viking fibre talcum hematite dolomite "
                                   "medusa zirconia taconite pyrites platina silex smilax syringa comfrey canadensis "
                                   "lobata fagus castanea chromo firebrick culdesac separ lignum pavo esto norco coxsackie "
                                   "parkland centre scopus satsuma mikado".split())


@lru_cache(maxsize=1)
def term_places() -> frozenset[str]:
    """One-word places of :func:`place_gazetteer` that :func:`clinical_terms` holds too though no English word list
    knows them (about 500): philter's "nonames" list keeps proper place names ("annapolis", "bethesda",
    "rockville", "chesapeake"), which after a cue of place are places, not terms ("son in annapolis called"); not
    states and countries ("from ireland"), nor names and their possessives, which are eponyms as often ("brady",
    "ewing", "glenn", "murphys")."""
    shape = name_likeness()
    first, last = _raw_names()
    names = first | last | given_names()
    return frozenset(p for p in place_gazetteer() & clinical_terms()
                     if len(p) >= 5 and p.isalpha() and not shape.is_known_word(p) and p not in ICU_SHORTHAND
                     and p not in _WORDS_NOT_TERM_PLACES and p not in names
                     and not (p.endswith("s") and p[:-1] in names)) - large_places()


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
