"""Identifiers, dates, ages, names, contact details and places in the forms clinical notes write them.

One recognizer over a table of regular expressions (:data:`CLINICAL_PATTERNS`) whose PHI is a capture group,
so the context that finds it ("MRN:", "Dr.", "wife") stays outside the span. Labels and words such as months
are matched in any case (UPPER CASE notes); name words are capitalised or upper-case words, and a name found
through its context is cut before the first common word, so "SON IS AT BEDSIDE" does not become a name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from clinical_mm.deid.text.evidence import STRONG_RULE
from clinical_mm.deid.text.lexicons import (
    CALLED_RELATIVES,
    NAME_WORD,
    US_STATE_CODES,
    is_common_word,
    name_lexicon,
    word_given_names,
)
from clinical_mm.deid.text.name_likeness import name_likeness
from clinical_mm.deid.text.presidio_loader import AnalysisExplanation, NlpArtifacts, RecognizerResult
from clinical_mm.deid.text.recognizers.clinical_recognizer import ClinicalRecognizer

__all__ = ["CLINICAL_PATTERNS", "ClinicalPattern", "ClinicalPatternRecognizer"]

_MONTHS = ("(?i:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
           r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember|(?!\s*(?:from|to)\s*\d)))")  # "O2 DEC FROM 4 TO 2": decreased
_ORD = "(?i:st|nd|rd|th)"
_NOT_DOSE = r"(?!\s*(?i:tabs?|tablets?|mg|mcg|ml|caps?|puffs?|units?|strength|of)\b)"
#: what after an ordinal makes it no day ("the 10th left posterior rib", "1st step mattress", "4th and 5th toes")
_NOT_A_DAY_AFTER = (r"(?!(?:\s+(?i:left|right|anterior|posterior|lateral|and|or|through|to|-|\d{1,2}(?:st|nd|rd|th)))*"
                    r"\s+(?i:ribs?|intercostal|vertebra[el]?|thoracic|cervical|lumbar|sacral|percentile|decade|step|"
                    r"floor|grade|degree|dose|time|attempt|day|week|hour|ray|toe|finger|digit|metacarpal|metatarsal|"
                    r"ventricle|nerve|heart\s+sound|sound|trimester|generation|line|unit|bag|liter|set|round|cycle|ics|"
                    r"interspace|cranial|troponin|culture|bolus|boluse|compartment|stage|session|visit|try|tries|"
                    r"trop|specimen|sample)s?\b)")
#: a diagnosis or an operation of a history, which a year after it dates ("CVA 2004", "CHOLE 1985", "CEA (1996)")
_HISTORY_ITEMS = (r"cva|mi|ca|cabg|ptca|pci|aaa|tia|dvt|pe|chf|afib|stroke|cancer|repair|removal|resection|surgery|"
                  r"replacement|transplant|fracture|fx|mvr|avr|tvr|ppm|aicd|icd|pacemaker|intubation|born|died|deceased|"
                  r"chole|cea|appy|turp|tah|bso|tkr|thr|tka|tha|orif|pneumovax|\w+ectomy|\w+plasty|\w+otomy|\w+ostomy|\w+oscopy")
_W = NAME_WORD
_NAME = rf"{_W}(?:\s+[A-Z]\.)?(?:\s+{_W}){{0,2}}"
_CRED = r"(?:MD|M\.D\.|DO|RN|LPN|NP|PA-C|PA|PhD|CNA|APRN|FNP|DNP|PT|OT|RT|MSW|LCSW)"
_RELATIVES = ("(?:(?:step|grand|great-grand)-?)?(?:daughter|son|mother|father|child|parent)(?:[ -]in[ -]law)?|"
              "(?:sister|brother)(?:[ -]in[ -]law)?|wife|husband|spouse|partner|mom|dad|niece|nephew|aunt|uncle|cousin|"
              "friend|neighbor|neighbour|fianc[eé]e?|guardian|HCP|health care proxy|POA|caregiver|roommate|"
              "significant other|girlfriend|boyfriend|companion|visitor")
#: words after a credential that open a new clause with it: the letters before are the last clause's ("IN AF, MD AWARE")
_CLAUSE_AFTER_CREDENTIAL = ("AWARE|CALLED|NOTIFIED|PAGED|RUNNING|UPDATED|INFORMED|AT|IN|TO|HERE|PRESENT|WILL|SAW|SEEN|"
                            "FOLLOWING|ORDERED|WANTS|SAYS|STATES")
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
_STATES = US_STATE_CODES
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
    #: the context is a strong cue (a title, a credential, a label with a colon): what it finds is a name even
    #: when its words are clinical terms ("Dr. Foley", "-- LC, RN")
    strong: bool = False


#: a relative and how a number follows them, for a local number written with a space ("brother at 555 2871")
_RELATIVE_NUMBER = (rf"\b(?:{CALLED_RELATIVES})(?:'s)?"
                    r"(?:[ \t]{1,3}(?:cell|home|work|phone|number|#))?[ \t]{0,3}(?:(?:at|is|#|:|-)[ \t]{0,3})?")

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
    ClinicalPattern("US_SSN", r"(?i:\b(?:SSN|SS#|Social Security(?: No\.?| Number| #)?)(?:\s+(?:on\s+file|on\s+record|is|was|of|#))?)"
                    r"\s*[:#]?\s*(\d{3}[- ]?\d{2}[- ]?\d{4})\b"),  # "SSN on file: 442-42-2145"
    # any other number long enough to identify (six or more digits, optionally with a letter prefix): lab
    # values and doses are shorter or carry a decimal point or comma
    ClinicalPattern("ID", r"(?<![\w.,/:\-])([A-Z]{0,4}\d{6,}[A-Z]?)(?![\w.,/:\-]\d)", score=0.6),
    # dates
    ClinicalPattern("DATE", r"\b((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?:/(?:1[89]\d{2}|2[0-2]\d{2}|\d{2}))?)\b" + _NOT_DOSE,
                    not_after=r"(?i:pain|score|scale|rated|strength|power|grade|murmur|BP|blood pressure)\W*(?:of\s*)?$"),
    ClinicalPattern("DATE", r"\b((?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01])-(?:\d{4}|\d{2}))\b"),
    # two days written as one, a night's or a stay's ("NSG NOTE 11/3/11/4", "TREATMENTS 10/03/10/04")
    ClinicalPattern("DATE", r"(?<![\d/])((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))"
                    r"(?![\d/%])", score=0.8, not_after=r"(?i:simv|cpap|peep|ps|psv|ac|imv|bipap|ipap|epap|vent|mode|fio2?)\W*$"),
    # a whole date run into the word before it ("labs on10/14/31")
    ClinicalPattern("DATE", r"(?<=[A-Za-z])((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:1[89]\d{2}|2[0-2]\d{2}|\d{2}))(?![\d/])",
                    score=0.8, not_after=r"(?i:simv|cpap|peep|ps|psv|ac|imv|bipap|ipap|epap|vent|mode|fio2?)$"),
    # a month and a two-digit year that can be no day ("AVR 8/88", "MI 12/82"), and a year written with an
    # apostrophe ("MI '91", "CVA 74'"), in a history
    ClinicalPattern("DATE", r"(?<![\d/.])((?:0?[1-9]|1[0-2])/(?:3[2-9]|[4-9]\d|0\d))(?![\d/])" + _NOT_DOSE, score=0.7,
                    not_after=r"(?i:pain|score|scale|rated|strength|BP|blood pressure|ratio|x)\W*$"),
    ClinicalPattern("DATE", r"(?<![\w'])'(\d{2})(?![\w'])", score=0.6),
    # a month and a two-digit year with a hyphen after a procedure or a diagnosis of a history ("PPM 6-93", "MI 11-88")
    ClinicalPattern("DATE", r"(?i:\b(?:s/p|hx|cabg|avr|mvr|ppm|aicd|icd|mi|cva|pci|ptca|stent(?:ed)?|cath|surgery|repair|"
                    r"since|dx|diagnosed)\b[\s:,(]*(?:x\s?\d\s*)?)((?:0?[1-9]|1[0-2])-(?:[4-9]\d|0\d|3[2-9]))(?![\d\-/])",
                    score=0.7),
    # a date after its label, written with spaces ("Admit date: 3 / 4", "DATE 12 /3/ 93")
    ClinicalPattern("DATE", r"(?i:\bdate\s*[:#]?\s*)((?:0?[1-9]|1[0-2])\s*/\s*(?:0?[1-9]|[12]\d|3[01])(?:\s*/\s*\d{2,4})?)"
                    r"(?![\d/])"),
    # a month and a day with a dot after a word that dates it ("TRACH PLACED 1.22", "CXR 3.4 SHOWS", "NPN 5.30"; not "K
    # 3.4", "ON 2.5 L", an endotracheal tube's size "PLACED 7.5 ETT", halves "STARTED 1.5 LITERS", "2.5 YEARS AGO")
    ClinicalPattern("DATE", r"(?i:\b(?:placed|extubated|reintubated|admitted|d/?c'?d|cxr|npn)[ \t]+)"
                    r"((?:0?[1-9]|1[0-2])\.(?:0?[1-46-9]|[12]\d|3[01]))(?![\d.]\d|[\d%]|[ \t]*(?i:mg|mcg|ml|cc|l\b|liters?|"
                    r"litres?|lpm|units?|mm|cm|fr|french|g\b|gm|meq|mmol|x\b|hrs?\b|hours?|days?|min|wks?|weeks?|mos?\b|"
                    r"months?|yrs?\b|years?|ett|et\b|tube|trach|ns\b|cal\b|k\b|kg))", score=0.6),
    # a month, a day and a two-digit year after a dot ("11/21.93"), and a day as an ordinal ("on the 20th")
    ClinicalPattern("DATE", r"(?<![\d/.])((?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])\.\d{2})(?![\d./%])", score=0.7),
    ClinicalPattern("DATE", r"(?i:\b(?:on|the|of|since|until|by|before|after)\s+(?:the\s+)?)((?:[12]?\d|3[01])(?i:st|nd|rd|th))\b"
                    + _NOT_A_DAY_AFTER, score=0.6),  # not "the 10th left posterior rib", "1st step mattress"
    # the second of two days so written ("on the 9th and 10th")
    ClinicalPattern("DATE", r"(?i:\b(?:on|the|of|since|until|by|before|after)\s+(?:the\s+)?(?:[12]?\d|3[01])(?:st|nd|rd|th)"
                    r"\s*(?:and|or|&|to|-)\s*(?:the\s+)?)((?:[12]?\d|3[01])(?i:st|nd|rd|th))\b" + _NOT_A_DAY_AFTER, score=0.6),
    ClinicalPattern("DATE", r"(?<![\w'.\-])(\d{2})'(?![\w'\"])", score=0.6,
                    not_after=r"(?i:\b(?:hob|head of bed|elevated|elevation|angle|at|to|up|flat|feet|ft)|@)\W*$"),  # "HOB 30'"
    ClinicalPattern("DATE", r"\b(?i:in|since|dx|dx'd|diagnosed|s/p)\s+((?:19|20)\d{2})\b(?!\s*(?i:mg|mcg|ml|cc|units?|hrs?|h\b))",
                    score=0.6),
    # a year right after a diagnosis or an operation of a history ("CVA 2004", "MI 1992", "RENAL CELL CA 1977",
    # "CABG 1994", "CHOLECYSTECTOMY 1985"); not a volume or a dose ("UO 1950 CC")
    ClinicalPattern("DATE", rf"\b(?i:{_HISTORY_ITEMS})"
                    r"(?:[ \t]{1,3}|[ \t]{0,2}\([ \t]?)(?:in[ \t]{1,3})?((?:19[3-9]|20[0-3])\d)\b"
                    r"(?![ \t]*(?i:mg|mcg|ml|cc|cal|kcal|units?|hrs?\b|hours?|%|x\b))", score=0.6),
    # the same run into the word, a year that can be no time of day ("CABG1994", "CVA1998"), and two digits after
    # "in" closing a clause or before another ("CVA in 94 and 00", "hx mi in 97."; not "SATS IN 94%", "MI IN 90S")
    ClinicalPattern("DATE", rf"\b(?i:{_HISTORY_ITEMS})(19[6-9]\d)\b", score=0.6),
    ClinicalPattern("DATE", rf"\b(?i:{_HISTORY_ITEMS})[ \t]{{1,3}}(?i:in)[ \t]{{1,3}}([6-9]\d|0\d)"
                    r"(?=[ \t]*(?:[.,;)\n]|$|(?i:and|or|w/|with)\b))", score=0.6),  # not "AFIB IN 90-110", "in 90 days"
    # a year that can be no time of day, closing a clause of a history ("HX: CEA AT HOLY CROSS 1996.", "s/p liver tx
    # 1997", "PMH: ... (Sinai, 1999)"); not a volume ("S/P CABG, UO 1975 CC")
    ClinicalPattern("DATE", r"(?i:\b(?:hx|h/o|s/p|pmh|pmhx|history|hist)\b)[^.\n;]{0,40}?[ \t,(](19[6-9]\d)(?=[ \t]*(?:[.,;)\n]|$))",
                    score=0.6, not_after=r"(?i:\b(?:uo|uop|u/o|i/o|in|out|total|tf|ivf|cc|ml|urine|output|intake|bal|balance|"
                    r"cal|kcal|wt|weight|uf|ebl|bw|neg|pos|net|even|removed|drained|diuresed|lost|loss|bolus|given|"
                    r"infused|made|fluid|fluids|\+|-|=)[\s:=]*)$"),
    ClinicalPattern("DATE", r"\b((?:0?[1-9]|1[0-2])\.(?:0?[1-9]|[12]\d|3[01])\.(?:\d{4}|\d{2}))\b"),
    ClinicalPattern("DATE", rf"\b((?:0?[1-9]|[12]\d|3[01]){_ORD}?[- ](?:{_MONTHS})\.?(?:,?[- ]\d{{2,4}})?)\b"),
    ClinicalPattern("DATE", rf"\b((?:{_MONTHS})\.? (?:0?[1-9]|[12]\d|3[01]){_ORD}?(?:,? \d{{4}})?)\b"),
    # a month and a year of two digits that can be no day, after a word that places a time in it ("SINCE AUG 98"), a
    # month, a day and such a year ("MAR 2 01")
    ClinicalPattern("DATE", rf"(?i:\b(?:since|in|from|until|during|last|of|dx|dx'd|diagnosed|s/p)[ \t]+)"
                    rf"((?!(?i:may|mar|dec)\b)(?:{_MONTHS})\.?[ \t]'?(?:3[2-9]|[4-9]\d))\b"
                    r"(?![ \t]*(?i:mg|mcg|ml|cc|units?|%|percent|microns?)|/|'|s\b)", score=0.7),  # not "SBP DEC 88"
    ClinicalPattern("DATE", rf"\b((?:{_MONTHS})\.?[ \t](?:0?[1-9]|[12]\d|3[01]),?[ \t]'?(?:[4-9]\d|0\d))\b"
                    r"(?![ \t]*(?i:mg|mcg|ml|cc|units?|%|doses?|tabs?|x\b))", score=0.7),
    ClinicalPattern("DATE", r"\b((?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01]))\b"),
    ClinicalPattern("DATE", rf"\b((?:{_MONTHS})\.?[ \-/](?:19|20)\d{{2}})\b"),  # "July 2031", "Jul-2031", "Sept. 2031"
    # a month alone after a word that places a time in it ("in sept.", "SINCE NOVEMBER"; not "may", "MAR")
    ClinicalPattern("DATE", r"(?i:\b(?:in|since|during|until|till|early|late|mid|last|next|this|of)\s+)"
                    r"((?i:jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|june|july|aug(?:ust)?|sept?(?:ember)?|october|"
                    r"nov(?:ember)?|december))\b(?!\s*\d)", score=0.7),  # not "dec", "oct": decreased, octreotide
    # the first day of a range of two before a month ("1->2 NOV, 96", "3-4 June": a night shift's note; not "1-2 may")
    ClinicalPattern("DATE", rf"(?<![\d/.\-])((?:0?[1-9]|[12]\d|3[01]))\s*(?:->|-)\s*(?=(?:0?[1-9]|[12]\d|3[01])\s+"
                    rf"(?!(?i:may)\b)(?:{_MONTHS})\b)",
                    score=0.8),
    ClinicalPattern("DATE", r"(?<![\d/.])((?:0?[1-9]|1[0-2])/(?:19|20)\d{2})(?![\d/])", score=0.8),  # "CABG 6/2000"
    # a month and a day with a hyphen, after a word that dates it or a procedure ("seen 12-3", "since 4-15", "cath
    # 5-14"; not "HR 12-3", "from 11-30s", "for 5-7 days")
    ClinicalPattern("DATE", r"(?i:\b(?:on|since|from|until|dated?|seen|admitted|placed|started|done|cath|echo|cxr|"
                    r"surgery|biopsy|bx|tte|tee|mri|extubated|intubated|reintubated|discharged?|transferred|appt|"
                    r"appointment|removed|pulled|inserted|changed|sent|drawn|d/?c'?d)\s+)"
                    r"((?:0?[1-9]|1[0-2])-(?:0?[1-9]|[12]\d|3[01]))(?![\d\-/]|\.\d|s\b)(?!\s*(?i:days?|weeks?|wks?|hours?|"
                    r"hrs?|min|mins|minutes?|months?|times|x|pillows?|episodes?|stools?)\b)" + _NOT_DOSE, score=0.6),
    # holidays: a day of the year by its name
    ClinicalPattern("DATE", r"(?i:\b(christmas(?:\s+(?:eve|day))?|xmas(?:\s+(?:eve|day))?|st\.?\s+patrick'?s\s+day|thanksgiving|easter|new\s+year'?s(?:\s+(?:eve|day))?|"
                    r"valentine'?s\s+day|halloween|hanukk?ah|chanukah|passover|yom\s+kippur|rosh\s+hashanah|"
                    r"independence\s+day|(?:fourth|4th)\s+of\s+july|labor\s+day|memorial\s+day|mother'?s\s+day|"
                    r"father'?s\s+day)\b)", score=0.7),
    # ages over 89 (the number only; "90 yo", "aged 95", "age: 101", "92-year-old")
    ClinicalPattern("AGE", r"\b(9\d|1[0-1]\d)(?=\s*-?\s*(?i:y/?o\b|yo\b|y\.o\.|yrs?\b|years?\b|-year|year-old))"),
    ClinicalPattern("AGE", r"(?i:\b(?:age|aged|age:))\s*:?\s*(9\d|1[0-1]\d)\b"),
    # names by their context
    ClinicalPattern("PERSON", rf"\b(?i:Dr|Doctor|Prof)\b\.?\s+((?:[A-Z]\.\s*)?{_NAME})", name=True, overlap=True, strong=True),
    ClinicalPattern("PERSON", rf"\b(?i:Mr|Mrs|Ms|Miss|Mx|Mister)\b\.?\s+((?:[A-Z]\.\s*)?{_NAME})", name=True,
                    overlap=True, strong=True),
    ClinicalPattern("PERSON", rf"\b((?:[A-Z]\.\s*)?{_NAME}),?\s+{_CRED}\b", name=True),
    # a signature: an initial, a surname and a credential, the surname a name even where it is a word ("K. STONE, RN",
    # "C. TRAN RN")
    ClinicalPattern("PERSON", rf"(?<![A-Za-z.\d/])([A-Z]\.[ \t]?{_W}),?[ \t]+(?:RN|LPN|NP|RD|RRT|CNA|APRN|MSW|LCSW|MD)\b",
                    score=0.8, name=True, strong=True),
    ClinicalPattern("PERSON", rf"\b(?!(?:CT|MR|US|IR|NM|XR|CCO|ICU|CCU|OR|ER|ED|IV|PO|PT)\b)([A-Z]{{2,3}}|[A-Z]\.[A-Z]\.),?\s+"
                    rf"(?!(?:PT|OT|RT)\b){_CRED}\b(?!')(?!\s+[a-z])(?!\s+(?i:cath|catheter|line|pressures?|systolic|diastolic)\b)"
                    rf"(?!\s+(?:{_CLAUSE_AFTER_CREDENTIAL})\b)(?!\s*\d)",
                    score=0.7, strong=True),  # initials and a credential; not "CT PA", "CCO PA CATH", "W/RN, MD'S",
    # "HR 130S ST, MD AWARE", "R IJ, PA 38/18"
    ClinicalPattern("PERSON", r"(?:--|—)\s*([A-Z]{2,3})\b(?=\s*(?:,|$|RN\b|MD\b|NP\b))", score=0.6, name=True,
                    strong=True),
    # dictation and transcription initials ("TK/mc", "JRS/ab"): author in capitals, typist in lower case; not a
    # view or a unit ("AP/lat", "ML/min")
    ClinicalPattern("PERSON", r"(?<![\w/])((?!(?:AP|PA|LAT|ML|MG|IU|U|PO|IV|CO|CI|SV|HR|BP|SVR|PVR|CVP)/)[A-Z]{2,4}/"
                    r"(?!(?:min|hr|hrs|hour|day|wk|kg|lat|ml|dl|mg|mcg|mm|cm|mmol|meq|oblique|obl|pt|pts|fam|md|rn|np|ci|co|svr|pvr|cvp|"
                    r"sv|sats?|bp|hr)\b)[a-z]{2,4})"
                    r"(?![\w/])",
                    score=0.6, strong=True),
    # initials after a role word without a colon ("Tech JR.", "SCRIBE: AB" has its label row): not a modality
    ClinicalPattern("PERSON", r"\b(?i:tech|technologist|sonographer|scribe|transcriptionist|interpreter|charge)\b\.?\s+"
                    r"(?!(?:CT|MR|MRI|US|XR|IR|NM|PET|RN|RT|DR|CR|DX)\b)([A-Z]{2,3})\b", score=0.7, name=True, strong=True),
    ClinicalPattern("PERSON", rf"\b(?i:{_RELATIVES})\b(?:\s*[,:(]\s*|\s+)((?:{_NAME}))", score=0.75, name=True,
                    overlap=True),
    ClinicalPattern("PERSON", rf"\b({_NAME})\s*\((?i:{_RELATIVES})\)", score=0.75, name=True, strong=True),
    ClinicalPattern("PERSON", rf"\b(?i:family)\s*\(\s*({_NAME})", score=0.75, name=True),  # "Family (Hualing Holt)"
    # a possessive before a relative or a service ("Orla's son", "admitted to Kaveh Vukovic's service")
    ClinicalPattern("PERSON", rf"\b((?:[A-Z]\.\s*)?{_NAME})'s\s+(?i:{_RELATIVES}|service|team|clinic|office|patient)\b",
                    score=0.7, name=True, strong=True),
    ClinicalPattern("PERSON", rf"\b(?i:{_NAME_LABELS})\s*[:#]\s*((?:{_W}(?:\s+{_W})?,\s+)?(?:[A-Z]\.\s*)?{_NAME})", score=0.8,
                    name=True,
                    overlap=True, strong=True),
    ClinicalPattern("PERSON", rf"\b(?i:pt|patient)\s+({_W}\s+{_W})(?=\s*[,(])", score=0.7, name=True),
    ClinicalPattern("PERSON", rf"\b(?i:Dear|Sincerely|Regards|Thanks|Thank you)\b,?\s+((?:Dr\.?\s+)?{_NAME})", score=0.7,
                    name=True),
    ClinicalPattern("PERSON", rf"\b({_W},\s+{_W}|{_W}\s+{_W}),?\s+(?:(?i:is|was)\s+(?i:an?)\s+)?\(?(?=\d{{1,3}}\s*-?\s*(?i:yo\b|y/o|y\.o\.|years?\b|yr|year-old|[MF]\b))",
                    score=0.7, name=True),
    ClinicalPattern("PERSON", rf"\b(?i:{_NAME_LABELS})\s+((?:[A-Z]\.\s*)?{_NAME})", score=0.6, name=True, overlap=True),
    ClinicalPattern("PERSON", rf"\b((?:{_W},\s+)?{_NAME})\s*[(,/]?\s*\b(?i:DOB|D\.O\.B\.|born|MRN|MR#|age)\b", score=0.7,
                    name=True, strong=True),
    # 'Surname, Given' before a number in parentheses, a record's ("MBEKI, PAZ (E1155355)")
    ClinicalPattern("PERSON", rf"\b({_W},\s+{_W})\s*\((?=[A-Z]{{0,3}}\d{{5,}}\))", score=0.7, name=True, strong=True),
    # an initial and a name written in mixed case ("J. Ashworth", "D. Winter"): a strong cue there
    ClinicalPattern("PERSON", r"(?<![A-Za-z.\d<>/=&])([A-Z]\.\s?[A-Z][a-z]+(?:['\-][A-Za-z]+)*)(?=[\s.,;)]|$)", score=0.6,
                    strong=True),
    # an initial and a name ("J. Smith"), not a dotted abbreviation ("P.O.", "B.I.D.")
    ClinicalPattern("PERSON", rf"(?<![A-Za-z.\d<>/=&])([A-Z]\.\s?[A-Z][A-Za-z]+(?:['\-][A-Za-z]+)*(?:\s+{_W})?)", score=0.6,
                    name=True),
    # contact details and places
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/])((?:\+?1[-.\s]?)?(?:\(\d{3}\)\s*|\d{3}[-.\s/])\d{3}[-.\s]\d{4}(?!\d)"
                    r"(?:\s*(?i:ext|x)\.?\s*\d{1,5}(?!\d))?)"),  # the extension too ("617-555-1234 X 22")
    # a number written in groups without separators where it belongs ("(301 273 45166)", "(240444-1243)")
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/.])(\(?\d{3}\s\d{3}\s\d{4,5}\)?|\(\d{6}-\d{4}\))(?![\d/])", score=0.7),
    # a number after a word of calling: any grouping of seven to eleven digits ("call 301 555 1234", "cell #
    # 4105551234", "home (410)5551234", "pager 4-1234")
    ClinicalPattern("PHONE_NUMBER", r"(?i:\b(?:phone|tel|telephone|call|called|calling|cell|cellphone|home|work|number|"
                    r"beeper|pager|bpr|pgr|contact|reach|reached|page|paged)\b\.?)[\s:#.@]*(?i:at\s+|@\s*|is\s+)?"
                    r"((?=(?:[\s().\-+]*\d){5})(?:\+?1[\s.\-]?)?\(?\d[\d\s().\-]{2,14}\d)(?![\d/])",
                    score=0.6),  # five digits or more: "CALLED AT 2200" is a time
    # a number of a telephone's shape after "#" ("SON'S # 422.6213"; not "TUBE #2 20 CM")
    ClinicalPattern("PHONE_NUMBER", r"#\s*(?:(?i:is)\s+)?(\d{3}[-.\s]\d{4}|\d{7}|\d{10}|\d-\d{4})(?![\d/\-]|\.\d)", score=0.6),
    # a short number after a word of calling and its object ("PAGE RESIDENT AT 4-1234", "call the fellow at 555-1234",
    # "CALLED HO 2-3456"), after a clinician's title and name ("DR OLIN 4-5678"), or after another ("5-1234 OR 6-7890")
    ClinicalPattern("PHONE_NUMBER", r"(?i:\b(?:call|called|calling|page|paged|paging|reach|reached|contact|contacted|"
                    r"beep|beeped)(?:\s+[A-Za-z']+){1,3}\s+(?:(?:at|@)\s*(?:#\s?|[xX]\s?)?)?)(\d-\d{4}|\d{3}[-.]\d{4}|\d{5})(?![\d/\-]|\.\d)",
                    score=0.6),
    ClinicalPattern("PHONE_NUMBER", r"(?i:\b(?:dr|md|np|pa|rn|resident|fellow|intern|attending|ho)\.?\s+[A-Za-z'\-]+\s+)"
                    r"(\d-\d{4})(?![\d/\-])", score=0.6),
    ClinicalPattern("PHONE_NUMBER", r"(?<=\d-\d{4})(?i:\s+(?:or|and)\s+|\s*[/,]\s*)(\d-\d{4})(?![\d/\-])", score=0.6),
    # a number written with spaces around its hyphens ("410 - 555 - 1234")
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/.])(\d{3}[ \t]{1,2}-[ \t]{0,2}\d{3}[ \t]{0,2}-[ \t]{0,2}\d{4}|"
                    r"\d{3}[ \t]{0,2}-[ \t]{0,2}\d{3}[ \t]{1,2}-[ \t]{0,2}\d{4})(?![\d/])", score=0.7),
    # a pager's number after "#" in the clause of paging ("MICU FELLOW PAGED (#71234)", "AWARE VIA PAGE #2317"; not "PAGED
    # HO RE BED #1012")
    ClinicalPattern("PHONE_NUMBER", r"(?i:\b(?:page[sd]?|paging|beeper|pager|beep(?:ed)?)\b(?:(?:[ \t]+[A-Za-z']+){0,3}[ \t]*"
                    r"(?:at[ \t]*|\([ \t]*)|[ \t]*)#[ \t]?)(\d{4,5}|\d-\d{4})(?![\d\-/]|\.\d)", score=0.6),
    # ten or eleven digits in an area code's groups written off the usual shape ("410 5551234", "410-555-12345",
    # "410-55-51234": a misplaced separator, a digit too many)
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/.:\-])(\(?\d{3}\)?[-. ]?\d{7,8}|\d{3}[-.]\d{2,3}[-.]\d{5})(?![\d/\-]|\.\d)",
                    score=0.6),
    # a local number written with a space after a relative ("NOK: brother at 555 2871 or 555 9012")
    ClinicalPattern("PHONE_NUMBER", rf"(?i:{_RELATIVE_NUMBER})(\d{{3}} \d{{4}})(?![\d/\-])", score=0.6),
    ClinicalPattern("PHONE_NUMBER", rf"(?i:{_RELATIVE_NUMBER}\d{{3}} \d{{4}}(?:[ \t]{{1,2}}(?:or|and)[ \t]{{1,2}}|[ \t]?[/,][ \t]?))"
                    r"(\d{3}[ \-]\d{4})(?![\d/\-])", score=0.6),
    # a local number without its area code ("555-1234"): three digits, a hyphen, four
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/.:])(?<!\d-)(\d{3}-\d{2}(?!00)\d{2}(?:[ \t](?:(?i:ext)\.?[ \t]?\d{1,5}|[xX][ \t]?\d{3,5})(?!\d))?)(?![\d\-/])"
                    r"(?!\s*(?i:mg|mcg|ml|cc|units?|u)\b)",
                    score=0.6, not_after=r"(?i:\b(?:svr|pvr|svri|pvri|sv|co|ci|cvp|pcwp|wedge|plt|plts|wbc|glucose|fs|"
                                         r"fsbs|bs|u/o|uo|i/o|in|out|range|ranged|from|between))\W*$"),  # "SVR 880-1320"
    # internal numbers by their label: pager, beeper, extension ("pager 34512", "ext. 4-5231", "x45231")
    ClinicalPattern("PHONE_NUMBER", r"(?i:\b(?:pager|beeper|pgr|bpr|ext|extension)\b\.?|\b(?:pager|beeper|pgr|bpr)(?=\d))\s*[:#]?\s*#?\s*"
                    r"(\d{4,5}|\d-\d{4}|\d{2}-\d{3})(?![\d\-])"),
    ClinicalPattern("PHONE_NUMBER", r"(?<![\w.])([xX]\d{4,5}|[xX]\d-\d{4})(?![\d\-]|\.\d)"),  # "x45231", "X4-5231"
    # a number of three groups after a relative, off the usual shape ("SON ROB 285-482-551", "SON 944-50-32"): a relative
    # and an optional name before it
    ClinicalPattern("PHONE_NUMBER", rf"(?i:\b(?:{CALLED_RELATIVES})(?:'s)?"
                    r"(?:[ \t]{1,3}[A-Za-z]{2,15})?[ \t]{1,3}(?:(?:at|is|#|:|-)[ \t]{0,3})?)"
                    r"(\d{3}[ \-]\d{2,3}[ \-]\d{2,5})(?![\d/\-]|\.\d)(?![ \t]*(?i:mg|mcg|ml|cc|units?|hrs?|min|days?)\b)",
                    score=0.6),
    # a short extension after its word ("CALL RT EXT 22"), a number written with slashes ("HOME PH 410/555/7632")
    ClinicalPattern("PHONE_NUMBER", r"(?i:\bext\b\.?)[ \t]*#?[ \t]*(\d{2,3})(?![\d\-/+°]|\.\d)"
                    r"(?![ \t]*(?:°|(?i:cm|mm|in|inch|inches|x|deg|degrees|%)\b))", score=0.6),
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/])(\d{3}/\d{3}/\d{4})(?![\d/])"),
    # two numbers written with a slash between them ("HOME PHONE 555-0198/555-0199", "617-555-0100/617-555-0101")
    ClinicalPattern("PHONE_NUMBER", r"(?<![\d/.:\-])((?:\d{3}-)?\d{3}-\d{4})(?=/(?:\d{3}-)?\d{3}-\d{4}(?![\d\-/]))",
                    score=0.6),
    ClinicalPattern("PHONE_NUMBER", r"(?<=\d{3}-\d{4}/)((?:\d{3}-)?\d{3}-\d{4})(?![\d\-/])", score=0.6),
    # an internal number alone in parentheses ("DR VELLACOTT (4-5231)")
    ClinicalPattern("PHONE_NUMBER", r"\(\s*([1-9]-(?!\d000\b)\d{4})\s*\)", score=0.6),  # not "(0-1000)", "(1-2000)"
    ClinicalPattern("PHONE_NUMBER", r"(?<![\w+])(\+(?:[2-9]\d{0,2})[\s.\-]?(?:\(?\d{1,4}\)?[\s.\-]?)?\d{2,4}(?:[\s.\-]?\d{2,4}){1,3})(?!\d)"),
    ClinicalPattern("ADDRESS", rf"(?<![\d\-/.])\b(\d{{1,6}}\s+(?:[A-Z][A-Za-z]+\s+){{1,3}}{_STREET_SUFFIX}\b\.?"
                    rf"(?:,?\s+(?i:Apt|Apartment|Unit|Suite|Ste|#)\.?\s*#?\s*\w+)?"
                    rf"(?:(?:,\s*|\s+(?i:in)\s+)(?:(?i:St|Ste|Mt|Ft)\.\s)?[A-Z][A-Za-z]+(?:\s[A-Z][A-Za-z]+)?(?=[\s,.;)]|$))?"
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


class ClinicalPatternRecognizer(ClinicalRecognizer):
    """One presidio recognizer for all :data:`CLINICAL_PATTERNS` (PHI in a capture group)."""

    def __init__(self, patterns: tuple[ClinicalPattern, ...] = CLINICAL_PATTERNS) -> None:
        self.patterns = [(p, re.compile(f"(?=(?:{p.pattern}))" if p.overlap else p.pattern),
                          re.compile(p.not_after) if p.not_after else None) for p in patterns]
        super().__init__(supported_entities=sorted({p.entity for p in patterns}), name="ClinicalPatternRecognizer",
                         supported_language="en")

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
                    # after a label and its colon ("NAME: JUNIPER LEE") the words that open the name are kept
                    labelled = p.strong and text[m.start():m.start(p.group)].rstrip().endswith((":", "#"))
                    start, end = _trim_name(text, start, end, plain, labelled)
                if end > start:
                    cue = " ".join(_WORD.findall(text[m.start():m.start(p.group)]))[-40:]  # overlapping rows match empty
                    why = AnalysisExplanation(recognizer="ClinicalPatternRecognizer", original_score=p.score,
                                              pattern_name=f"{p.entity.lower()} {STRONG_RULE if p.strong else 'by pattern'}",
                                              textual_explanation=cue.lower() if p.strong else "")
                    out.append(RecognizerResult(p.entity, start, end, p.score, analysis_explanation=why))
        return out


_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*\.?")


def _plain_word(word: str) -> bool:
    """A known English, clinical or drug word (the name-likeness model's) that is not a lexicon given name
    (surnames are left out: the census holds "Given", "Kidney", "Cancer")."""
    w = word.lower().rstrip(".")
    return w in name_likeness().known and w not in name_lexicon()[0]


def _trim_name(text: str, start: int, end: int, plain: Callable[[str], bool] | None = None,
               labelled: bool = False) -> tuple[int, int]:
    """A context-found name without its leading common words ("Signed", "Pt") and cut before the next one
    (or the next word ``plain`` accepts; ``labelled``: not before the first, a label's colon said a name
    follows); (start, start) when nothing is left."""
    first = stop = -1
    before: re.Match[str] | None = None  # the common word just before the first name word
    for m in _WORD.finditer(text, start, end):
        word = m.group(0)
        initial = len(word) == 2 and word.endswith(".")  # "I. Varga": an initial, not the pronoun
        if not initial and (is_common_word(word) or len(word.rstrip(".")) == 1
                            or plain is not None and plain(word) and not (labelled and first < 0)):
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
