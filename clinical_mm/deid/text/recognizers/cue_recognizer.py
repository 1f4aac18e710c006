"""Names and places by a strong cue, in any case: what real nursing and ICU notes write ("dr. vantreese aware",
"son bill called", "marta okafor, rn", "COVERING RESIDENT DOV JOVANOVIC", "TRANSFERED TO GH", "transfer to
briarwood 2", "lives in dover", "Faith (nephew)").

Every result names its rule and the cue words that decided it (``analysis_explanation``: ``pattern_name`` the
rule, ``textual_explanation`` the cue), for ``deid text --explain``. After a title (Dr, Mrs) any word but a
function word is a name; after a relative, a word that is no clinical term or is a given name; after a role or
a reading verb ("resident", "read by"), a word that is no English word unless it is a name; after a weak or
ambiguous cue ("MS" is also mental status, "PA" pulmonary artery, "per" only in UPPER CASE notes), a word that
is neither a clinical term (:func:`~clinical_mm.deid.text.lexicons.clinical_terms`) nor an English word; a name
given as such ("name is frank"), a given name or a word no list knows opening a clause before a verb of a person
("FRED PHONED AT 2200"), and a word between "pt" and what the patient did ("PT ORVELLE C/O NAUSEA"). A place needs a verb
of moving or living, a preposition and a known place, an institution word, a ward's number, staff or bed, the room
a patient was moved to, a public service ("BETHESDA EMS"), a university ("U OF VT MED CENTER"), a campus's
direction, a county ("HOWARD COUNTY"), parentheses after an outside hospital ("OSH (PENINSULA)"), a two-word
hospital name ("GOOD SAMARITAN"), or the form of a hospital abbreviation (before its ED, cath lab or ICU too). A staff
member's initials end a sentence after their role ("Sonographer IN.") or stand before their credential ("IT RN"); a
given name may be addressed in instructions ("Pt instructions: Hope, take").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from clinical_mm.deid.text.evidence import INITIALS_OF_A_TERM, INITIALS_RULE, TERM_INITIALS, typing_slip
from clinical_mm.deid.text.lexicons import (
    CALLED_RELATIVES,
    ICU_SHORTHAND,
    INSTITUTION_NAME_WORDS,
    ROLE_WORDS,
    big_cities,
    clinical_terms,
    common_names,
    expand_place_shorthand,
    given_names,
    large_places,
    misspelt_term,
    name_lexicon,
    place_gazetteer,
    score_towns,
    stop_words,
    term_places,
    upper_case_note,
    word_given_names,
)
from clinical_mm.deid.text.name_likeness import name_likeness
from clinical_mm.deid.text.presidio_loader import AnalysisExplanation, NlpArtifacts, RecognizerResult
from clinical_mm.deid.text.recognizers.clinical_recognizer import ClinicalRecognizer

__all__ = ["CueRecognizer"]

_WORD = re.compile(r"[^\W\d_](?:(?:[^\W\d_]|['\-])*[^\W\d_])?")  # letters of any script
_PLAIN_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|')*")
#: words that follow a cue without being a name ("dr aware", "son called", "daughter at bedside")
_NOT_AFTER_CUE = frozenset("""
aware notified paged called calls call updated update visited visiting visit here present at in to and or with
was is are were has had have will would wants wanted said says states stated spoke spoken came come comes
in-law inlaw phoned phone notify told informed contacted consulted made making ok okay also not into
team service office note notes order orders plans plan who which that this these those there
re on of by for from per via as if be been being out up down off over pt pts patient patients
son sons daughter daughters dtr wife husband mother father brother sister nephew niece grandson granddaughter
grandaughter aunt uncle cousin friend family families sibling siblings children child kids parents
english spanish russian cantonese mandarin chinese portuguese creole haitian italian greek polish french
speaking speaks speak carevue careview dr doctor mr mrs ms
attending resident fellow intern physician clinician surgeon radiologist hospitalist nurse nursing
""".split())
#: titles: any word after one but a function word is a name ("dr. white's order", "Dr. Foley")
_TITLES = frozenset("dr doctor drs dra mrs miss prof".split())
#: strong cues before a name: titles that are no clinical abbreviation, relatives
_STRONG_BEFORE = (r"dr|doctor|drs|dra|mrs|miss|prof|"
                  r"son|sons|daughter|daughters|dtr|dau|wife|husband|hsb|spouse|mother|mom|father|dad|brother|bro|"
                  r"sister|sis|nephew|niece|grandson|granddaughter|grandaughter|grandchild|aunt|uncle|cousin|"
                  r"fiance|fiancee|girlfriend|boyfriend|partner|friend|neighbor|neighbour|proxy|guardian|"
                  r"significant other|sig other|step-?son|step-?daughter|son[ -]in[ -]law|daughter[ -]in[ -]law|"
                  r"sister[ -]in[ -]law|brother[ -]in[ -]law|mother[ -]in[ -]law|father[ -]in[ -]law|contact person|chaplain|social worker|case manager|interpreter")
#: cues that are also clinical abbreviations (MR mitral regurgitation, MS mental status, PA pulmonary artery,
#: NP nasal prongs) or common verbs: the word after must look like a name, not a term ("per" only in UPPER CASE
#: notes: "per Fleischner" is an eponym)
_WEAK_BEFORE = (r"mr|ms|md|np|pa|rn|nurse|per|spoke with|spoke w/|spoke to|talked to|talked with|met with|"
                r"seen by|visited by|examined by|called|paged|notified|informed|updated|contact|"
                r"hcp|poa|s/o")
#: weak cues of reviewing, informing and sending, which departments follow as often as names: a word one edit away
#: from a clinical term after one is a misspelt department, not a name ("reviewed with nuerosurgery")
_DEPARTMENT_BEFORE = (r"reviewed with|discussed with|(?:will\s+)?inform|sent to|released(?:\s+only)?\s+to|came with|"
                      r"belongings with|visit with")
#: roles and phrases of reading, referring and accepting: a name follows ("COVERING RESIDENT DOV JOVANOVIC",
#: "Ordering clinician Winter", "READ BY WINTER")
_ROLE_BEFORE = (r"attending|resident|fellow|intern|physician|clinician|surgeon|radiologist|hospitalist|"
                r"read by|reviewed by|dictated by|signed by|referred by|prepared for|appointment with|"
                r"accepting physician|ordering clinician|covering|ho|pharmacist|dietitian|dietician|nutritionist")
#: weak cues that open a section of a note when a colon follows (mental status, pulmonary artery, nurse practitioner)
_SECTION_CUES = frozenset("ms mr md np pa rn".split())
_BEFORE = re.compile(rf"(?<![A-Za-z])(?:(?P<role>{_ROLE_BEFORE})|(?P<strong>{_STRONG_BEFORE})|(?P<weak>{_WEAK_BEFORE})|"
                     rf"(?P<department>{_DEPARTMENT_BEFORE}))"
                     rf"(?![A-Za-z])\.?[\s,:;(\-]*(?:is\s+)?", re.IGNORECASE)
#: a name and its relation in parentheses
_RELATION_AFTER = re.compile(rf"(?<![A-Za-z'\-])([A-Za-z][A-Za-z'\-]+)\s*\(\s*({_STRONG_BEFORE})\s*\)", re.IGNORECASE)
#: a credential after a name ("marta okafor, rn", "Tomas Ferrante,MD", "lucia brandt np")
_CREDENTIAL = re.compile(r"(?<![\s,])[\s,]+(?:rn|r\.n\.|md|m\.d\.|np|pa-c|pa|rrt|lcsw|licsw|licws|cna|lpn|pharmd)"
                         r"(?![A-Za-z])(?!\s+(?:cath|catheter|line|pressures?|systolic|diastolic|sats?|saturation|mean|"
                         r"wedge|diast|sys|numbers|tracing|waveform|port|running)\b)", re.IGNORECASE)  # not "PT IN PEA, MD RUNNING CODE"
#: a role's or a relation's shorthand after a cue ("COVERING HO", "SIGNED BY HCP", "HUSBAND HOH", "RESIDENT PGY2")
_ROLE_SHORTHAND = frozenset("ho hcp sw id cts pgy et hoh pcp nok poa dpoa rounds pgr bpr pager beeper ext".split())
#: credentials, which follow a role without being a name ("covering np", "attending md")
_CREDENTIAL_WORDS = frozenset("np rn md pa rrt lpn cna pharmd".split())
#: a surname's initial alone, with its period, after a title written as one ("Mrs. S.", "MRS S."; not "MR." or "MS" in
#: UPPER CASE, mitral regurgitation and mental status, nor "A." and "I." that open a sentence)
_INITIAL_AFTER_TITLE = re.compile(r"(?<![A-Za-z\d])(?P<cue>Mr|Mrs|Ms|Miss|MRS|MISS|mrs)\.?[ \t]+(?P<initials>[B-HJ-Z])\.(?=\s|$)")
#: a lower-case name, after an initial or not ("ross", "d ross")
_LOWER_NAME = re.compile(r"(?:[a-z]\.?[ \t])?([a-z]{3,})\b")
#: an initial and a name ("N. ABERNATHY", "B. OSTROVSKY", "D. Lorne")
_INITIAL = re.compile(r"(?<![A-Za-z.\d<>/=&])([A-Z])\.\s?(?=[A-Za-z])")  # not "R>L. Suct", "100.9F. Paced", "W&D. Art"
#: a place after a word of moving or living ("TRANSFERED TO GH", "lives in dover", "admitted to Sinai hospital")
_PLACE_CUE = re.compile(r"(?<![A-Za-z])(?P<cue>(?:transfer(?:red|ed)?|tranfer(?:red|ed)?|tranfered|transfered|"
                        r"tx'?d|tx|xfer(?:red|ed)?|admit(?:ted|td)?|admits|arrived|sent|medflight|med flight|flown|brought|d/c|"
                        r"taken|went|go|return(?:ed)?|discharged|d/c'?d|lives?|living|resides?|residing|works?|"
                        r"worked|moved|home|visiting)(?:\s+(?:him|her|them|pt|patient|back|nearby|here|there|"
                        r"directly|via ambulance|by ambulance|by ems))?\s+(?:to|from|frm|at|in|@|near)"
                        r"(?:\s+the)?|(?:works?|worked|working)\s+for|(?:from|frm|at|@|in|near|of|outside)(?:\s+the)?)\s+",
                        re.IGNORECASE)
#: words after a place name that make it an institution or a ward
_INSTITUTION = re.compile(r"\s*(?:hospital|hosp\b\.?|medical center|med ctr|medical|med\b|general|memorial|"
                          r"rehab|rehabilitation|campus|nursing home|nursing|health|healthcare|clinic|center|"
                          r"er\b|ed\b|ew\b|e\.r\.|emergency|facility|manor|house|adventist|regional|dialysis|"
                          r"assisted\s+living|nh\b|snf\b|ltac|ltach|hospice|care\s+center|cancer\s+center|heart\s+center|"
                          r"surg(?:ical|ery)\s+center)", re.IGNORECASE)
#: institution words that make any word before them a hospital's name after a verb of moving ("TRANSFERED FROM
#: PENINSULA REGIONAL", "taken to union hosp"), unless a word of kind ("outside", "local", "psych")
_HOSPITAL_WORD = re.compile(r"\s*(?:hospital|hosp\b\.?|medical center|med ctr|regional|memorial|general|gen\b|er\b|ew\b)",
                            re.IGNORECASE)
#: a word of a hospital and nothing else, for the name of up to three words before it after a place cue ("FROM CAPE COD
#: HOSP", "from suburban hosp", "FROM SOUTHERN MD HOSP CTR")
_HOSPITAL_ONLY = re.compile(r"[ \t]{1,2}(?:(?:gen|general|community|memorial|regional)[ \t]+)?"
                            r"(?:hospital|hosp\b|medical[ \t]+cent(?:er|re)|med[ \t]+(?:ctr|center)\b)", re.IGNORECASE)
#: words before a hospital word that say its kind, not its name ("from rehab hospital", "TO PSYCH HOSP")
_HOSPITAL_KINDS = frozenset("rehab rehabilitation psych psychiatric psychiatry mental cancer burn eye heart children "
                            "childrens kids women womens maternity pediatric paediatric orthopedic orthopaedic cardiac "
                            "cardiology oncology neuro neurology surgery surgical medical primary care inpatient "
                            "outpatient veterans military army navy naval air force acute chronic specialty trauma day "
                            "field animal affiliated sister partner network satellite tertiary quaternary academic "
                            "sending accepting transferring admitting referral receiving referring the this that "
                            "public private general major large".split())
#: clinical shorthand that ends in "mc" like a medical center's abbreviation ("to imc": intermediate care)
_CLINICAL_MC = frozenset("cmc pbmc pomc pmc smc imc mmc emc dmc lmc tmc vamc".split())  # and the VA's, no name
_KIND_WORDS = frozenset("outside another other local community area nearby psych psychiatric state city county "
                        "university children's childrens va veterans private rural teaching same previous prior "
                        "referring receiving his her their our its basic main big small new old different regular closest "
                        "nearest home general".split())
_WARD_NUMBER = re.compile(r"\s?\d{1,2}(?![\d/:]|\.\d)")  # "BRIARWOOD 2." ends a sentence; not "LEVO 2.5"
#: an abbreviation of a hospital's name: ends in H (hospital) or MC (medical center); not the generic ones
_HOSPITAL_ABBREVIATION = re.compile(r"[A-Z]{1,2}H|[A-Z]{1,2}MC")
_WARD_CUE = re.compile(r"(?<![A-Za-z])(?P<cue>on|to|plan:?)\s+(?P<ward>[A-Za-z]{5,})\s?\d{1,2}(?![\d/:%]|\.\d)"
                       r"(?!\s*(?i:mg|mcg|ml|cc|units?|l|lpm|hrs?|h|min|days?|x)\b)", re.IGNORECASE)
#: a unit's name before its number and its staff ("FELDBERG 7 NURSE AWARE"), or after a bed on it ("bed on feldberg")
_WARD_STAFF = re.compile(r"(?<![A-Za-z])(?P<ward>[A-Za-z]{5,})\s?\d{1,2}\s+(?P<cue>nurse|rn|charge|team|staff|floor|unit|"
                         r"resident|intern)(?![A-Za-z])", re.IGNORECASE)
_BED_ON = re.compile(r"(?<![A-Za-z])(?P<cue>beds?\s+(?:on|in|at))\s+(?:the\s+)?(?P<ward>[A-Za-z]{5,})(?![A-Za-z])",
                     re.IGNORECASE)
_NOT_ABBREVIATIONS = frozenset("oh ah uh eh sh th ch nh osh bh pmh psh fh hh dh ph".split())
#: clinical abbreviations in the form of a hospital's ("in ICH", "for TSH"): hormones, bleeds, hypertrophies (beyond
#: the _NOT_ABBREVIATIONS, which no rule takes for a hospital)
_CLINICAL_H = frozenset("tsh fsh lh gh acth adh pth hgh bph lvh rvh lah rah ich sah sdh edh ivh iph pph pah hth "
                        "mch dmh nph cah ssh cph fhh dah iah uph bmh".split())
#: an abbreviation in parentheses after a word of an institution ("OUTSIDE HOSPITAL (BMC)", "REHAB (NEBH)")
_ABBREVIATION_IN_PARENTHESES = re.compile(r"(?i:hospital|hosp|osh|rehab|facility|nursing home|nh|snf|clinic)\s*"
                                          r"\(\s*(?P<abbr>[A-Z]{2,6})\s*\)")
#: the letters a study's abbreviation opens with ("CTPA", "MRA", "EKG", "TTE")
_STUDY = re.compile(r"CT|MR|US|XR|NM|PET|EKG|ECG|EEG|EMG|TTE|TEE")
_LIVING = re.compile(r"(?i)liv|resid|home|work|moved")
#: a hospital abbreviation before its emergency department, cath lab or ICU ("GH EW", "to gh er", "BMC CATH LAB")
_ABBREVIATION_CUE = re.compile(r"(?<![A-Za-z])(?P<abbr>[A-Za-z]{1,2}[Hh]|[A-Za-z]{1,2}(?:MC|mc))\s+"
                               r"(?P<cue>ER|ED|EW|E\.R\.|er|ed|ew|(?i:cath\s+lab|cardiac\s+cath|icu|ccu|micu|sicu))"
                               r"(?![A-Za-z])")
_UNIT_CUES = frozenset("icu ccu micu sicu".split())
#: a university's hospital ("university of vermont medical center", "U OF VT MED CENTER", "Univ. of Iowa Hospitals")
_UNIVERSITY = re.compile(r"(?<![A-Za-z])(?<!\d)(?<!\d )(?P<cue>university|univ\.?|(?-i:U))\s+of\s+[A-Za-z]+(?:\s+[A-Za-z]+)?\s+"
                         r"(?:medical\s+cent(?:er|re)|med(?:ical)?\s+(?:center|ctr)|medical|hospitals?|hosp|health"
                         r"(?:\s+system)?|clinics?)(?![A-Za-z])", re.IGNORECASE)
#: a hospital's campus by its direction ("on North Campus", "EAST CAMPUS")
_CAMPUS = re.compile(r"(?<![A-Za-z])(?:north|south|east|west|northeast|northwest|southeast|southwest)\s+"
                     r"(?P<cue>campus)(?![A-Za-z])", re.IGNORECASE)
#: a unit named after a room number it was moved to ("transferred to 412 harwell", "TX'D TO RM 6 BRIARWOOD")
_WARD_AFTER_ROOM = re.compile(r"(?<![A-Za-z])(?P<cue>transfer(?:red|ed)?|transfered|tranfer(?:red|ed)?|tx'?d|"
                              r"xfer(?:red|ed)?|moved|sent|went|return(?:ed)?|admitted)\s+to\s+(?:(?:rm\.?|room|bed)\s*)?"
                              r"\d{1,4}[A-Za-z]?\s+(?P<ward>[A-Za-z]{5,})(?![A-Za-z])", re.IGNORECASE)
#: an institution word, for a name before it ("LAKESIDE MEMORIAL", "Memorial Hospital", "er halloway campus")
_INSTITUTION_WORD = re.compile(r"(?<![A-Za-z])(?:hospital|hosp|medical center|med ctr|campus|nursing home|"
                               r"rehab|rehabilitation center|health center|healthcare|infirmary|manor|house|nh|snf|"
                               r"lodge|gardens|commons|village|hospice|nursing center|care center)(?![A-Za-z])",
                               re.IGNORECASE)
_MEMORIAL = re.compile(r"(?<![A-Za-z])([A-Za-z]+)\s+(memorial|general)(?![A-Za-z])", re.IGNORECASE)
#: hospitals' names of two words that stand without an institution word ("PT WAS AT GOOD SAMARITAN")
_HOSPITAL_NAMES = frozenset({"good samaritan", "good sam", "holy cross", "sacred heart", "holy family", "holy name",
                             "our lady"})
#: words that open a town's name ("NEW TALBOT", "north braxton", "PORT ELLERY")
_PLACE_PREFIXES = frozenset("new north south east west port fort ft mount mt lake glen upper lower old greater".split())
_SAINT = re.compile(r"(?<![A-Za-z])(st\.?|saint|mt\.?|mount)\s+([A-Za-z]+)('s)?(?![A-Za-z])", re.IGNORECASE)
#: a device maker's words after a saint's name ("ST JUDE ICD", "St. Jude mechanical valve"), or a saint's day
_SAINT_DEVICE = re.compile(r"[ \t]+(?i:(?:mechanical[ \t]+|tissue[ \t]+|bileaflet[ \t]+)?(?:valve|avr|mvr)|icd|aicd|ppm|pacer|"
                           r"pacemaker|device|leads?|medical|day(?![ \t]+(?i:center|care|program|hospital|school)))\b")
# ("ST PATRICKS DAY": a holiday; "ST ELIZABETH DAY CENTER" stays a name)
#: words of a hospital's name that say its kind, part of the name as a whole ("LAKESIDE MEMORIAL", "PENINSULA REGIONAL")
_NAME_KIND_WORDS = frozenset("memorial regional general adventist".split())
#: what follows "general" or "regional" when it is no hospital's ("REGIONAL ANESTHESIA", "GENERAL SURGERY")
_NOT_A_HOSPITAL_AFTER = re.compile(r"[ \t]+(?i:anesthesia|surgery|surg|medicine|appearance|condition|weakness|malaise|"
                                   r"block|health|population|area|hospital\s+floor)\b")
#: a person to call or a word of calling, then (within a name's or a label's reach) a number in groups
_CONTACT_NUMBER = re.compile(rf"(?i)\b(?P<cue>{CALLED_RELATIVES}|"
                             r"contact(?:[ \t]+person)?|phone|ph|tel|reached[ \t]+at|"
                             r"(?:cell|home|work)(?=[ \t]*(?:#|:|phone|ph\b|number|no\b|tel))|"
                             r"call(?:ed)?(?:[ \t]+[a-z']+){0,2}[ \t]+at)\b[^\d\n]{0,30}?"
                             r"(?P<number>(?<![\d.])\d{2,8}(?:(?:[ \t]{1,3}|[ \t]?[\-/][ \t]?|\.)\d{2,8}){1,3})(?!\d|[./]\d)")
#: words of a measurement between a cue and a number: the number is a reading ("wife's BP 130/80 140/90")
_MEASURED = re.compile(r"(?i)\b(?:bp|glucose|sugars?|fs|fsbs|bs|counts?|hr|readings?|weights?|temps?|sats?|levels?|"
                       r"pressures?)\b")
#: what after a number makes it a dose, a duration, a volume or a count, not a telephone's
_UNIT_AFTER = re.compile(r"[ \t]*(?i:mg|mcg|ml|cc|units?|u\b|hrs?|hours?|min|days?|x\b|%|times|mmhg|kg|lbs?|cal|kcal|meq)")
#: a county by its name ("ARRIVED FROM HOWARD COUNTY", "Carroll County EMS")
_COUNTY = re.compile(r"(?<![A-Za-z])([A-Za-z]+(?:[ \-][A-Za-z]+)?)[ \t]+(?P<cue>county)(?![A-Za-z])", re.IGNORECASE)
#: a place's name alone in parentheses after an outside hospital or a home ("OSH (PENINSULA)", "NH (BRIARWOOD)")
_NAME_IN_PARENTHESES = re.compile(r"(?<![A-Za-z])(?P<cue>(?i:osh|outside hospital|outside hosp|nursing home|nh|snf|rehab|ltac|ltach))"
                                  r"\s*\(\s*(?P<name>[A-Za-z][A-Za-z'\-]{3,})\s*\)")
#: a hospital's town in parentheses after it ("Champlain Valley Hospital (Geneva)", "MEMORIAL HOSP (LEBANON)")
_TOWN_AFTER_HOSPITAL = re.compile(r"(?<![A-Za-z])(?P<cue>hospital|hosp|medical center|health center|clinic|infirmary)"
                                  r"[ \t]{0,3}\([ \t]{0,3}(?P<name>[A-Za-z][A-Za-z'\-]{2,}(?: [A-Za-z][A-Za-z'\-]+)?)"
                                  r"[ \t]{0,3}\)", re.IGNORECASE)
#: a town before its public services ("BETHESDA EMS", "dover police", "Farnsworth Fire Dept")
_TOWN_SERVICE = re.compile(r"(?<![A-Za-z])([A-Za-z]+(?:[ \-][A-Za-z]+)?)\s+(?P<cue>ems|police|fire\s+dep(?:t|artment)|fire\s+rescue|"
                           r"rescue|ambulance)(?![A-Za-z])", re.IGNORECASE)
#: a name opening a clause (or after a time) before a verb of a person ("FRED PHONED AT 2200", "social: jen visited",
#: "0700: Bolat slept poorly", "at 14:30 Perpetua self-extubated")
_NAME_BEFORE_VERB = re.compile(r"(?:^|(?<=[.;:!?,\n])|(?<=[.;:!?,]\s)|(?<=\n\s)|(?<=\band\s)|(?<=\d:\d\d\s))\s{0,4}"
                               r"([A-Za-z]{3,})\s+"
                               r"(?P<cue>called|phoned|visited|came in|was in|is here|in to visit|aware|asked|asks|"
                               r"wants|wanted|spoke|agrees|agreed|arrived|slept|prefers|would like|sat with|"
                               r"self-extubated|checks in|states|stated)\b", re.IGNORECASE)
#: a name opening a sentence (or after a time) before how the person is ("Hualing drowsy but arousable")
_NAME_BEFORE_STATE = re.compile(r"(?:^|(?<=[.;:!?\n])|(?<=[.;:!?]\s)|(?<=[.;:!?]\s\s)|(?<=\d:\d\d\s))[ \t]*"
                                r"([A-Za-z]{3,})[ \t]+(?P<cue>drowsy|lethargic|sleepy|asleep|awake|confused|agitated|"
                                r"restless|anxious|tearful|calm|pleasant|cooperative|somnolent|oriented)\b",
                                re.IGNORECASE | re.MULTILINE)
#: the verbs of _NAME_BEFORE_VERB that only a person does: a word no list knows is a name before one of them only
#: (not "NSICU AWARE", "BIOMED CALLED", "MEROPENUM ARRIVED")
_PERSON_VERBS = frozenset({"phoned", "visited", "asked", "asks", "wants", "wanted", "spoke", "agrees", "agreed", "slept",
                           "prefers", "would like", "sat with", "self-extubated", "checks in", "states", "stated"})
#: words for a person that a note misspells at a clause's start ("PATEINT STATES", "DAUGTHER WOULD LIKE", "GRANMA")
_PERSON_WORDS = ROLE_WORDS | frozenset("patient family families nurse resident doctor physician team neighbor neighbour "
                                       "spouse grandma grandpa grandkids inlaws visitor visitors friends kids".split())
#: a street without its number where someone lives ("LIVES ON ELM STREET", "house on maple ave")
_STREET_LIVED_ON = re.compile(r"(?<![A-Za-z])(?P<cue>lives?|living|resides?|residing|house|home|apartment|apt)\s+on\s+"
                              r"(?!the\s)(?P<street>[A-Za-z]+(?:\s+[A-Za-z]+)?\s+(?:street|st|avenue|ave|road|rd|lane|ln|drive|"
                              r"dr|boulevard|blvd|court|ct|way|place|pl|terrace|parkway|pkwy|highway|hwy))\b\.?",
                              re.IGNORECASE)
#: a street without its number where something happened ("FOUND DOWN ON TREMONT ST", "MVA ON STORROW DRIVE")
_STREET_ON = re.compile(r"(?<![A-Za-z])(?P<cue>on|off|at|crossing|near)[ \t]+(?P<street>[A-Za-z][A-Za-z'\-]{2,}(?:[ \t]+[A-Za-z][A-Za-z'\-]{2,})?)"
                        r"[ \t]+(?P<kind>street|st|avenue|ave|road|rd|boulevard|blvd|drive|parkway|pkwy|highway|hwy)\b\.?",
                        re.IGNORECASE)
#: a word of a firm after its name ("vista health", "ACME CORP", "Quincy Savings Bank")
_FIRM_WORD = re.compile(r"[ \t]{1,2}(?i:health|healthcare|inc|corp|corporation|company|bank|insurance|systems|group|"
                        r"associates|industries|electric|motors|laboratories|university|college|institute)\b")
#: kinds of street that name nothing else after "on", "off", "at" ("on Blue Hill Ave"; not "ON LEVO ST", "on hypoxic drive")
_PLAIN_STREET_KINDS = frozenset("street avenue ave road boulevard blvd parkway pkwy highway hwy".split())
#: a name given as such ("husband's name is frank", "a son named Rory", "goes by Bea")
_NAMED = re.compile(r"(?<![A-Za-z])(?P<cue>name is|named|goes by|prefers to be called|known as)\s+([A-Za-z][A-Za-z'\-]+)",
                    re.IGNORECASE)
#: words for a kind of name after "goes by" ("PT GOES BY MIDDLE NAME", "known as nickname")
_NAME_KINDS = frozenset("middle first last nickname maiden full given family his her their".split())
#: a given name addressed in a patient's instructions ("Pt instructions: Hope, take your medicines")
_ADDRESSED = re.compile(r"(?<![A-Za-z])(?P<cue>instructions?|dear)[ \t]{0,3}:?[ \t]{1,3}([A-Za-z][A-Za-z'\-]+),[ \t]{1,3}"
                        r"(?=(?:take|call|return|please|keep|avoid|do|don't|make|come|remember|you|your)\b)", re.IGNORECASE)
#: a given name that a sentence's information is credited to ("Per Hope, baseline oriented x3"; not "PER FAMILY,")
_PER_NAME = re.compile(r"(?:^|(?<=[.;:!?\n])|(?<=[.;:!?]\s)|(?<=[.;:!?]\s\s))(?P<cue>per)[ \t]+([A-Za-z][A-Za-z'\-]{2,})"
                       r"[ \t]*,", re.IGNORECASE | re.MULTILINE)
#: what a note credits information to that is also a given name somewhere ("Per MAR,", "Per Aide,", "Per Baby,")
_CREDITED_NOTE_WORDS = frozenset("mar aide baby infant doc chart report protocol staff team tele ortho neuro renal cards "
                                 "lab labs echo pharmacy family charge sitter".split())
#: months and weekdays, some of them given names too ("per June,")
_CALENDAR_WORDS = frozenset("january february march april may june july august september october november december "
                            "monday tuesday wednesday thursday friday saturday sunday".split())
#: words that open a clause after a hyphen: the word before it is a name alone ("son Rob-who called"; not "Ji-In")
_CLAUSE_WORDS = frozenset("who which that and but will would is was has had here there".split())
#: a patient named between "pt" and what the patient did or said ("PT ANAN C/O NAUSEA", "pt Haruki denies pain")
_PATIENT_BEFORE_VERB = re.compile(r"(?<![A-Za-z])(?P<cue>pt|patient)\s+([A-Za-z][A-Za-z'\-]+)\s+(?:c/o|complain(?:s|ed|ing)|"
                                  r"den(?:ies|ied)|states|stated|reports|reported|asks|asked|wants|wanted|refuses|"
                                  r"refused|tolerat(?:ed|ing)|ambulated|slept|resting|rested)(?![A-Za-z])",
                                  re.IGNORECASE)
#: words after which a capital and a period are an initial, not a note's S/O/A/P section ("WITH A. ETXEBERRIA")
_BEFORE_A_NAME = frozenset("with by to from per and for saw see dr".split())
#: a staff member's initials after their role, ending a sentence ("Sonographer IN.", "charge GO.", "TECHNOLOGIST: TO.")
_INITIALS_AFTER_ROLE = re.compile(r"(?<![A-Za-z])(?P<cue>transcriptionist|technologist|technician|tech|sonographer|"
                                  r"scribe|charge(?:\s+(?:rn|nurse))?)(?P<colon>\s*:)?[ \t]+(?P<initials>[A-Z]{2,3})"
                                  r"(?=[ \t]*(?:[.;]|$))", re.IGNORECASE | re.MULTILINE)
#: a staff member's initials before their credential, alone in a sentence ("Bed alarm on. IT RN")
_INITIALS_BEFORE_CREDENTIAL = re.compile(r"(?:^|(?<=[.;]\s))(?P<initials>[A-Z]{2,3}),?[ \t]+(?P<cue>RN|MD|NP|RRT|PA-C)"
                                         r"(?=[ \t]*(?:[.;]|$))", re.MULTILINE)
#: roles whose initials may be any letters but a few ("TRANSCRIPTIONIST: SQ."): no result follows them
_REPORTERS = frozenset("transcriptionist technologist sonographer scribe".split())
#: letters of a sentence's end that are no initials ("Tech NA.", "charge RN.")
_NO_INITIALS = frozenset("NA OK NO ON UP YES MD RN NP ED ER OR ICU PT AM PM AT QNS".split())
_GENERIC_PLACES = frozenset("osh nh snf ltach ltc rehab home floor unit er ed ew or icu ccu micu sicu csru pacu imc pcu sdu tcu "
                            "stepdown".split())


def _explained(entity: str, start: int, end: int, score: float, rule: str, cue: str) -> RecognizerResult:
    explanation = AnalysisExplanation(recognizer="CueRecognizer", original_score=score, pattern_name=rule,
                                      textual_explanation=cue.strip().lower())
    return RecognizerResult(entity, start, end, score, analysis_explanation=explanation)


class CueRecognizer(ClinicalRecognizer):
    """Names after a title, a relative or a verb of talking, before a credential or after an initial; places after
    a verb of moving or living, hospital names before "hospital" or "memorial", ward names before their number,
    hospital abbreviations; in any case."""

    def __init__(self) -> None:
        self.terms = clinical_terms()
        self.given = given_names()
        self.function_words = stop_words()
        self.stop = self.function_words | _NOT_AFTER_CUE
        self.places = place_gazetteer()
        self.term_places = term_places()
        self.score_towns = score_towns()
        self.large = large_places()
        self.big_cities = big_cities()
        self.lexicon = name_lexicon()
        self.common = common_names()
        self.shape = name_likeness()
        super().__init__(supported_entities=["PERSON", "LOCATION", "HOSPITAL", "WARD", "ADDRESS", "PHONE_NUMBER"],
                         name="CueRecognizer",
                         supported_language="en")

    # ------------------------------------------------------------------ words
    def is_name(self, word: str) -> bool:
        """A word that may stand for a name after a weak cue: no clinical term, function word or possessive, or
        a given name of the lexicon (common words left out); of a hyphenated word no part a function word."""
        w = word.lower()
        parts = w.split("-")
        if len(w) < 2 or w.endswith("'s") or any(p in self.stop for p in parts):
            return False
        return w not in self.terms and parts[0] not in self.terms and (
            not self.shape.is_known_word(w) or w in self.lexicon[0] or w in self.lexicon[1])  # not "arrived"

    def _service_shorthand(self, word: str) -> bool:
        """After a weak cue, a service's shorthand or its misspelling rather than a name: four letters or more
        without a vowel ("NSGY") or a typing slip of a clinical term ("NEUROSUGERY"), in no name list."""
        w = word.lower()
        if w in self.lexicon[0] or w in self.lexicon[1] or w in self.given:
            return False
        return len(w) >= 4 and w.isalpha() and not re.search("[aeiou]", w) or typing_slip(w)

    def after_title(self, word: str) -> bool:
        """A word that stands for a name after a title (Dr, Mrs): anything but a function word."""
        return len(word) > 1 and not any(p in self.stop for p in word.lower().split("-"))

    def after_role(self, word: str) -> bool:
        """A word that stands for a name after a role or a reading verb: not a function word, and no English or
        clinical word unless a name ("read by radiology": no; "read by Winter", "RESIDENT DOV": yes)."""
        w = word.lower()
        if "-" in w and all(p in self.terms or self.shape.is_known_word(p) for p in w.split("-") if p) \
                and w not in self.lexicon[1]:
            return False  # "ATTENDING CO-SIGNATURE"
        return self.after_title(word) and (w not in self.terms or w in self.given or w in self.lexicon[1]
                                           or not self.shape.is_known_word(w))

    def after_strong(self, word: str) -> bool:
        """A word that stands for a name after a strong cue: anything but a function word or a verb of the
        cue's sentence, or a clinical term that is no given name ("son Will": yes; "son updated": no)."""
        w = word.lower()
        if len(w) < 2 or any(p in self.stop for p in w.split("-")):
            return False
        return w not in self.terms or w in self.given

    # ------------------------------------------------------------------ analysis
    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None) -> list[RecognizerResult]:
        spaced = text.replace(".", " ")  # the note with its periods as spaces ("Dr. J. Yi", "ST. MARY HOSP")
        return [*self._after_cue(text, spaced), *self._before_credential(text), *self._before_relation(text),
                *self._after_initial(text), *self._named(text), *self._town_services(text), *self._streets(text),
                *self._places(text), *self._institutions(text, spaced), *self._wards(text), *self._initials(text),
                *self._contact_numbers(text)]

    @staticmethod
    def _contact_numbers(text: str) -> Iterator[RecognizerResult]:
        """A number of 9 to 12 digits in two to four groups after a person to call or a word of calling, whatever
        its separators ("SON ROB 285-482-5518", "call wife at 864  868  7854", "sister carol (442-233-474)",
        "PHONE # 748336 3538"); not a dose, a duration or a count after it."""
        for m in _CONTACT_NUMBER.finditer(text):
            groups = re.findall(r"\d+", m.group("number"))
            if "/" in m.group("number") and all(len(g) <= 3 for g in groups) \
                    or _MEASURED.search(text, m.end("cue"), m.start("number")):
                continue  # "wife's BP 130/80 140/90", "son's glucose 120 140 180": readings, not a number to call
            if 9 <= sum(map(len, groups)) <= 12 and len(groups[0]) >= 3 and not _UNIT_AFTER.match(text, m.end()):
                yield _explained("PHONE_NUMBER", m.start("number"), m.end("number"), 0.7,
                                 "a number of a telephone's length after a person to call", m.group("cue"))

    def _initials(self, text: str) -> Iterator[RecognizerResult]:
        """A staff member's initials that end a sentence after their role ("Sonographer IN.", with a colon in UPPER
        CASE: "TECHNOLOGIST: TO.") or stand alone before their credential ("IT RN"), in a mixed-case note for the
        latter."""
        upper = upper_case_note(text)
        for m in _INITIALS_AFTER_ROLE.finditer(text):
            if upper and not m.group("colon") or m.group("initials") in _NO_INITIALS:
                continue
            reporter = m.group("cue").lower() in _REPORTERS  # never followed by a result, as "Monitor tech: NSR." is
            if reporter or self._initials_word(m.group("initials")):
                yield _explained("PERSON", m.start("initials"), m.end("initials"), 0.8, f"{INITIALS_RULE}: after a role",
                                 m.group("cue"))
            else:  # "Tech SC.": a name only where they are the initials of a name found in the note ("Sven Czarnecki")
                yield _explained("PERSON", m.start("initials"), m.end("initials"), INITIALS_OF_A_TERM,
                                 f"{INITIALS_RULE}: {TERM_INITIALS}", m.group("cue"))
        for m in _INITIAL_AFTER_TITLE.finditer(text):
            yield _explained("PERSON", m.start("initials"), m.end("initials"), 0.8,
                             f"{INITIALS_RULE}: a surname's initial alone after a title", m.group("cue"))
        if not upper:
            for m in _INITIALS_BEFORE_CREDENTIAL.finditer(text):
                if self._initials_word(m.group("initials")):
                    yield _explained("PERSON", m.start("initials"), m.end("initials"), 0.8,
                                     f"{INITIALS_RULE}: before a credential", m.group("cue"))

    def _initials_word(self, letters: str) -> bool:
        """Letters that can be a person's initials: a function word's ("IN", "TO", "IT"), or no clinical term's
        ("NSR", "HD", "CCU", "RT" are none)."""
        w = letters.lower()
        return letters not in _NO_INITIALS and (w in self.function_words or w not in self.terms)

    def _wards(self, text: str) -> Iterator[RecognizerResult]:
        """A unit named by a word no list knows: with its number after "on", "to" or "plan:" ("ON BRIARWOOD 6") or
        before its staff ("BRIARWOOD 7 RN"), after a bed on it ("bed on briarwood"), or after the room a patient was
        moved to ("transferred to 412 harwell")."""
        for m in (*_WARD_CUE.finditer(text), *_WARD_STAFF.finditer(text), *_BED_ON.finditer(text),
                  *_WARD_AFTER_ROOM.finditer(text)):
            w = m.group("ward").lower()
            if w in self.terms or w in self.stop or self.shape.is_known_word(w) or w in _GENERIC_PLACES \
                    or any(w[:-len(end)] in self.terms for end in ("q", "of", "on", "at") if w.endswith(end)):
                continue  # not "combiventQ4", "PSVof 15": a term run into "q" or a word
            yield _explained("WARD", m.start("ward"), m.end("ward"), 0.75, "ward name by its number, staff or bed",
                             m.group("cue"))

    def _institutions(self, text: str, spaced: str) -> Iterator[RecognizerResult]:
        """Hospital abbreviations by their cue, names before an institution word, "St" and a given name."""
        for m in _ABBREVIATION_IN_PARENTHESES.finditer(text):
            abbr = m.group("abbr")
            if abbr.lower() in _GENERIC_PLACES or abbr.lower() in self.terms or _STUDY.match(abbr):
                continue  # "OSH (ICU)": a unit, "Hospital (CTPA)": a study, not a hospital
            yield _explained("HOSPITAL", m.start("abbr"), m.end("abbr"), 0.8,
                             "abbreviation in parentheses after a word of an institution", "(")
        for m in _NAME_IN_PARENTHESES.finditer(text):
            name = m.group("name").lower()
            if name not in self.stop and name not in _GENERIC_PLACES and (
                    name in self.places or name in self.lexicon[1] or self._unknown_name(name)):
                yield _explained("HOSPITAL", m.start("name"), m.end("name"), 0.75,
                                 "a name in parentheses after an outside hospital", "(")
        for m in _TOWN_AFTER_HOSPITAL.finditer(text):
            name = m.group("name").lower()
            if name in self.places and name not in self.large and name not in self.stop or name in self.score_towns:
                yield _explained("LOCATION", m.start("name"), m.end("name"), 0.75,
                                 "a known town in parentheses after a hospital", m.group("cue"))
        for m in _ABBREVIATION_CUE.finditer(text):
            if m.group("abbr").lower() not in _NOT_ABBREVIATIONS and (
                    m.group("cue").lower() not in _UNIT_CUES or m.group("abbr").lower() not in _CLINICAL_H):  # "SAH ICU"
                yield _explained("HOSPITAL", m.start("abbr"), m.end("abbr"), 0.8,
                                 "hospital abbreviation before its department", m.group("cue"))
        for m in _INSTITUTION_WORD.finditer(text):
            words = list(_WORD.finditer(text, max(0, m.start() - 40), m.start()))[-3:]
            start = m.start()
            for word in reversed(words):
                lw = word.group(0).lower()
                if not _adjacent(spaced, word.end(), start) \
                        or lw in self.stop or lw in _GENERIC_PLACES or not (
                        lw in INSTITUTION_NAME_WORDS or lw in self.places or self.is_name(lw)):
                    break
                start = word.start()
            if start < m.start():
                yield _explained("HOSPITAL", start, start + len(text[start:m.start()].rstrip()),
                                 0.8, "name before a word of an institution", m.group(0))
        for m in _UNIVERSITY.finditer(text):
            yield _explained("HOSPITAL", m.start(), m.end(), 0.85, "a university's hospital", m.group("cue"))
        for m in _CAMPUS.finditer(text):
            yield _explained("HOSPITAL", m.start(), m.end(), 0.75, "a campus by its direction", m.group("cue"))
        for m in _MEMORIAL.finditer(text):
            lw = m.group(1).lower()
            if lw not in self.stop and (lw in self.places or lw in INSTITUTION_NAME_WORDS or self.is_name(lw)):
                yield _explained("HOSPITAL", m.start(1), m.end(2), 0.8, f"name before '{m.group(2).lower()}'",
                                 m.group(2))
        for m in _SAINT.finditer(text):
            second = m.group(2).lower()
            mount = m.group(1).lower().startswith("m")  # "Mt. Sinai": a name no list knows after "Mount"
            if second.endswith("s") and m.group(3) is None and len(second) >= 5 and second not in self.stop \
                    and second not in self.terms and second[:-1] in self.given:
                second = second[:-1]  # "ST ELIZABETHS", "ST BRENDANS": a possessive written without its apostrophe
            if second not in self.stop and (second in self.given or mount and self.is_name(second)) \
                    and not _SAINT_DEVICE.match(text, m.end()):  # not "ST JUDE ICD", "St. Jude valve"
                yield _explained("HOSPITAL", m.start(), m.end(), 0.75, "a saint's name", "st")

    def _after_cue(self, text: str, spaced: str) -> Iterator[RecognizerResult]:
        upper = upper_case_note(text)
        for m in _BEFORE.finditer(text):
            role = m.group("role") is not None
            strong = role or m.group("strong") is not None
            cue = m.group("role") or m.group("strong") or m.group("weak") or m.group("department")
            if cue.lower() == "per" and not upper and not self._lexicon_name_after(text, m.end()):
                continue  # in lower case only a name of the lexicons ("per ross", "per d ross"; not "per protocol")
            accept = self.after_title if cue.lower() in _TITLES else self.after_role if role else \
                self.after_strong if strong else self.is_name
            words = list(_WORD.finditer(text, m.end(), min(len(text), m.end() + 40)))
            if cue.lower() in _SECTION_CUES and ":" in text[m.start() + len(cue):m.end()]:
                continue  # a section's label ("MS: sedated", "PA: 40/18"), not a title
            if not words or words[0].start() != m.end() or (
                    "." in text[m.start() + len(cue):m.end()] and (len(cue) > 3 or cue.lower() == "ho")
                    and cue.lower() not in _TITLES):
                continue  # a sentence ends after the cue ("SURGEON. CALM AND SLEEPY", "NOTIFIED. HEPARIN")
            first = words[0]
            word = first.group(0)
            parts = word.split("-")
            if len(parts) > 1 and any(p in _CLAUSE_WORDS for p in parts[1:]):
                word = parts[0]  # "son Rob-who called": the name before the hyphen
                words = words[:1]
            if word.lower().endswith("'s"):
                word = word[:-2]  # "wife's", "pt's": the word without its possessive
            if role and word.lower() in _CREDENTIAL_WORDS or word.lower() in _ROLE_SHORTHAND:
                continue  # "the covering np", "COVERING HO", "SIGNED BY HCP", "HUSBAND HOH": no name
            w = word.lower()
            if role and len(word) > 1 and "," in text[m.start() + len(cue):m.end()] and (
                    w in self.terms and w not in self.common
                    or not (w in self.lexicon[0] or w in self.lexicon[1] or w in self.given)):
                continue  # "Ordered by resident, Kayexalate given", "fellow, manual pressure": a new clause
            if strong and not role and cue.lower() not in _TITLES and len(w) >= 5 and w not in self.lexicon[0] \
                    and w not in self.lexicon[1] \
                    and w not in self.given and typing_slip(w):
                continue  # "WIFE TEARFULL", "DTR ANXIUOS": a misspelt word, not a name ("SISTER CHIDI" is one)
            end = first.start() + len(word)
            given = word.lower() in self.given or len(word) == 1
            gap_text = spaced if len(word) == 1 else text  # "Dr. J. Yi"; not "kenny. bp"
            # after a given name or an initial, a surname: no English or clinical word ("daughter peggy staying")
            then = len(words) > 1 and end == first.end() and _adjacent(gap_text, end, words[1].start()) \
                and (self.is_name(words[1].group(0))
                     or (strong or len(word) == 1) and given and self.after_role(words[1].group(0)))
            if len(word) == 1:  # an initial: with a name after it ("Dr B Muse", "Dr. J. Yi")
                if not ((word.isupper() or cue.lower() == "per" and not upper) and then) \
                        or word in "AI" and text[end:end + 1] != ".":
                    continue  # not "WIFE IS A CCU NURSE"
            elif not accept(word) or m.group("department") is not None and misspelt_term(word) and (
                    word.islower() or len(word) >= 9) or not strong and self._service_shorthand(word):
                continue  # "reviewed with nuerosurgery"; not "CAME WITH PERPETUA"; "PAGED NEUROSUGERY", "PER NSGY"
            if then:
                end = words[1].end()  # a surname after a given name or an initial ("Dr B Muse", "son don reid")
            if text[end - 2:end].lower() == "'s":
                end -= 2
            yield _explained("PERSON", first.start(), end, 0.9 if strong else 0.75,
                             "name after a title or relative" if strong else "name after a weak cue", cue)

    def _town_services(self, text: str) -> Iterator[RecognizerResult]:
        """A known town, or a word no list knows, before a public service ("BETHESDA EMS", "dover police")."""
        for m in _COUNTY.finditer(text):
            words = m.group(1).replace("-", " ").split()
            name = " ".join(words).lower()
            if name not in self.places:
                words = words[-1:]  # the last word alone ("FROM HOWARD COUNTY", not "FROM")
                name = words[0].lower()
            if name in self.stop or name in _KIND_WORDS or name in _GENERIC_PLACES:
                continue  # "the county", "same county", "other county"
            if name in self.places or self._unknown_name(name):  # not "GUARD COUNTY", "shelter county"
                yield _explained("LOCATION", m.end(1) - len(name), m.end(1), 0.75, "a county by its name", m.group("cue"))
        for m in _TOWN_SERVICE.finditer(text):
            start = m.start(1)
            if " ".join(m.group(1).lower().replace("-", " ").split()) not in self.places:
                start = m.end(1) - len(m.group(1).replace("-", " ").split()[-1])  # the last word alone
            place = text[start:m.end(1)].lower()
            if place in self.places and place not in self.large and place not in self.stop or self._unknown_name(place):
                yield _explained("LOCATION", start, m.end(1), 0.75, "a town before its public services", m.group("cue"))

    def _named(self, text: str) -> Iterator[RecognizerResult]:
        """A name given as such ("name is frank") or addressed in instructions ("Pt instructions: Hope, take"), a
        word between "pt" and what the patient did ("PT ORVELLE C/O"), and a given name or a word no list knows
        opening a clause before a verb of a person ("FRED PHONED AT 2200", "Bolat slept"; not "SON CALLED", "MD
        CALLED", "PATEINT STATES") or a sentence before how the person is ("Hualing drowsy"); a given name that
        information is credited to ("Per Hope, baseline ...")."""
        for m in _NAMED.finditer(text):
            if self.after_title(m.group(2)) and m.group(2).lower() not in ROLE_WORDS \
                    and m.group(2).lower() not in _NAME_KINDS:  # not "GOES BY MIDDLE NAME"
                yield _explained("PERSON", m.start(2), m.end(2), 0.85, "a name given as such", m.group("cue"))
        for m in _ADDRESSED.finditer(text):
            w = m.group(2).lower()
            if w in self.given and w not in ROLE_WORDS and w not in self.stop:
                yield _explained("PERSON", m.start(2), m.end(2), 0.8, "a given name addressed in instructions",
                                 m.group("cue"))
        for m in _PER_NAME.finditer(text):
            w = m.group(2).lower()
            if w in self.given and w not in ROLE_WORDS and w not in self.stop and w not in _CALENDAR_WORDS \
                    and w not in _CREDITED_NOTE_WORDS:
                yield _explained("PERSON", m.start(2), m.end(2), 0.75, "a given name information is credited to",
                                 m.group("cue"))
        for m in _PATIENT_BEFORE_VERB.finditer(text):
            w = m.group(2)
            if len(w) >= 3 and self.is_name(w) and (len(w) <= 4 or not misspelt_term(w)):  # not "PT ACTUALY REFUSED"
                yield _explained("PERSON", m.start(2), m.end(2), 0.75, "a name between 'pt' and a verb", m.group("cue"))
        for m in _NAME_BEFORE_VERB.finditer(text):
            w = m.group(1).lower()
            verb = " ".join(m.group("cue").lower().split())
            if (w in self.lexicon[0] or w in word_given_names() or verb in _PERSON_VERBS and self._unknown_person(w)) \
                    and w not in ROLE_WORDS and w not in self.stop:
                yield _explained("PERSON", m.start(1), m.end(1), 0.75, "a name before a verb of a person",
                                 m.group("cue"))

        for m in _NAME_BEFORE_STATE.finditer(text):
            w = m.group(1).lower()
            if self._unknown_person(w) or w in self.lexicon[0] and w not in self.terms and w not in self.stop:
                yield _explained("PERSON", m.start(1), m.end(1), 0.75, "a name before how the person is",
                                 m.group("cue"))

    def _streets(self, text: str) -> Iterator[RecognizerResult]:
        """A street someone lives on, without its number ("LIVES ON ELM STREET"; not "lives on the street"), or
        where something happened, by a name no clinical term ("FOUND DOWN ON TREMONT ST"; not "ON LEVO ST", "ON
        THE MAIN ROAD"), or, in a mixed-case note, of any words in Title Case before a kind that names only streets
        ("crossing Mass Ave", "on Blue Hill Avenue")."""
        upper = upper_case_note(text)
        lived = set()
        for m in _STREET_LIVED_ON.finditer(text):
            lived.add(m.start("street"))
            yield _explained("ADDRESS", m.start("street"), m.end("street"), 0.75, "a street someone lives on",
                             m.group("cue"))
        for m in _STREET_ON.finditer(text):
            words = m.group("street").lower().split()
            kind = m.group("kind").lower()
            # "crossing Mass Ave", "on Blue Hill Avenue": of English words in Title Case in a mixed-case note (not "HR AT
            # REST AVE 80", "crossing busy street")
            plain = kind in _PLAIN_STREET_KINDS and not upper and all(
                w[:1].isupper() and w[1:].islower() for w in m.group("street").split() + [m.group("kind")])
            if m.start("street") in lived or any(w in self.stop or w in self.terms and not plain for w in words) \
                    or kind == "st" and not m.group("street").split()[-1][:1].isupper() \
                    or m.group("cue").lower() != "on" and not plain:
                continue
            yield _explained("ADDRESS", m.start("street"), m.end("kind"), 0.7, "a street where something happened",
                             m.group("cue"))

    def _before_relation(self, text: str) -> Iterator[RecognizerResult]:
        """A name before its relation in parentheses ("Faith (nephew)", "DAVID (SON)")."""
        for m in _RELATION_AFTER.finditer(text):
            if self.after_strong(m.group(1)):  # "RUTH (DAUGHTER)", "Faith (nephew)"; not "the decision maker (daughter)"
                yield _explained("PERSON", m.start(1), m.end(1), 0.85, "name before its relation", m.group(2))

    def _before_credential(self, text: str) -> Iterator[RecognizerResult]:
        for m in _CREDENTIAL.finditer(text):
            words = list(_WORD.finditer(text, max(0, m.start() - 40), m.start()))[-2:]
            if not words or words[-1].end() != m.start() or not self.is_name(words[-1].group(0)) \
                    or words[-1].group(0).lower() in self.terms or text[words[-1].start() - 1:words[-1].start()].isdigit():
                continue  # not "37.5mgs PA SAT"
            start = words[-1].start()
            if len(words) == 2 and _adjacent(text, words[0].end(), start) and words[0].group(0).lower() not in self.stop \
                    and (self.is_name(words[0].group(0)) or words[0].group(0).lower() in self.given):
                start = words[0].start()
            yield _explained("PERSON", start, words[-1].end(), 0.8, "name before a credential",
                             m.group(0).strip(" ,"))

    def _after_initial(self, text: str) -> Iterator[RecognizerResult]:
        for m in _INITIAL.finditer(text):
            word = _PLAIN_WORD.match(text, m.end())
            if word is None or len(word.group(0)) < 3 or text[word.end():word.end() + 1].isdigit() \
                    or not self.is_name(word.group(0)):
                continue  # "S. NEO", "O. RECIEVED": a note's S/O/A/P sections, not initials
            before = text[max(0, m.start() - 20):m.start()].split()
            if m.group(1) in "SOAP" and word.group(0).lower() not in self.lexicon[1] \
                    and (before[-1:] or [""])[0].lower() not in _BEFORE_A_NAME and (
                    text[max(0, m.start() - 20):m.start()].rstrip(" \t")[-1:] in ("", "\n", ".", ":", ";", "-")
                    or not self.shape.looks_like_name(word.group(0).capitalize())):
                continue  # a section letter ("S. AMBUED", "O. RECIEVED"), not an initial
            yield _explained("PERSON", m.start(1), word.end(), 0.7, "name after an initial", "initial")

    def _places(self, text: str) -> Iterator[RecognizerResult]:
        for m in _PLACE_CUE.finditer(text):
            words = list(_WORD.finditer(text, m.end(), min(len(text), m.end() + 60)))[:3]
            if not words or words[0].start() != m.end():
                continue
            cue = m.group("cue").lower()
            found = self._employer_at(text, words) if cue.startswith("work") else None
            if found is None:  # a firm's word is part of its name ("works for vista health"), a hospital's kind is not
                found = self._place_at(text, words, _LIVING.match(cue) is not None,
                                       verb=cue.split()[0] not in ("from", "at", "@", "in", "near", "of", "outside"))
            if found is not None:
                kind, end, rule, score = found
                yield _explained(kind, words[0].start(), end, score, rule, m.group("cue"))

    def _employer_at(self, text: str, words: list[re.Match[str]]) -> tuple[str, int, str, float] | None:
        """An employer of up to three words and the word of a firm after them, after a verb of working, none of the
        words a function word or a word of kind and one no English word ("works for raytheon systems", "WORKS AT
        ZYTEC CORP"; not "for the local bank", "in mental health", "for cable company")."""
        found = _run_before(text, words, _FIRM_WORD,
                            lambda w: w.isalpha() and w.lower() not in self.stop and w.lower() not in _KIND_WORDS
                            and w.lower() not in _HOSPITAL_KINDS,
                            lambda run: any(not self.shape.is_known_word(w) for w in run))  # not "for cable company"
        if found is None:
            return None
        return "LOCATION", found.end(), "an employer and its firm's word after a verb of working", 0.75

    def _place_at(self, text: str, words: list[re.Match[str]], living: bool,
                  verb: bool = False) -> tuple[str, int, str, float] | None:
        """(type, end, rule, score) of the place the ``words`` after a place cue open with (``living``: a verb of
        living, "lives in dover"), or None."""
        first = words[0].group(0)
        w = first.lower()
        if w in _GENERIC_PLACES or w in self.stop:
            return None
        if (verb and _HOSPITAL_ABBREVIATION.fullmatch(first.upper())
                or len(w) == 2 and _HOSPITAL_ABBREVIATION.fullmatch(first.upper())
                or _HOSPITAL_ABBREVIATION.fullmatch(first) and w not in _CLINICAL_H) \
                and w not in _NOT_ABBREVIATIONS:
            # after a bare preposition: two capitals ("at GH"), or a longer one that is no clinical term ("in ICH")
            return "HOSPITAL", words[0].end(), "hospital abbreviation after a place cue", 0.8
        if len(words) > 1 and words[1].group(0).lower() in ("regional", "general") and w not in _KIND_WORDS \
                and w not in ICU_SHORTHAND and w not in _GENERIC_PLACES and len(w) >= 3 and w.isalpha() \
                and w not in self.stop and (not self.shape.is_known_word(w) or w in self.places
                                            or w in self.lexicon[0] or w in self.lexicon[1]) \
                and _adjacent(text, words[0].end(), words[1].start()) \
                and not _NOT_A_HOSPITAL_AFTER.match(text, words[1].end()):
            return "HOSPITAL", words[1].end(), "a name before 'regional' or 'general'", 0.8  # "FROM LAUREL REGIONAL ER"
        if w.isalpha() and w.islower() and 3 <= len(w) <= 4 and w.endswith(("h", "mc")) \
                and (w not in self.terms or w.endswith("mc") and w not in _CLINICAL_MC) \
                and w not in _CLINICAL_H and w not in _NOT_ABBREVIATIONS and not self.shape.is_known_word(w):
            return "HOSPITAL", words[0].end(), "hospital abbreviation in lower case after a place cue", 0.75  # "frm gbmc"
        if len(words) > 1 and f"{w} {words[1].group(0).lower()}" in _HOSPITAL_NAMES \
                and _adjacent(text, words[0].end(), words[1].start()):
            return "HOSPITAL", words[1].end(), "a hospital's name after a place cue", 0.8  # "AT GOOD SAMARITAN"
        if w in _PLACE_PREFIXES and len(words) > 1 and _adjacent(text, words[0].end(), words[1].start()) and (
                self.is_name(words[1].group(0)) and len(words[1].group(0)) >= 4
                or living and expand_place_shorthand(f"{w} {words[1].group(0).lower()}") in self.places):
            return "LOCATION", words[1].end(), "a town's name after a place cue", 0.75  # "from NEW TALBOT", "LIVES IN MT AIRY"
        n = 1  # the longest run of words that are no terms, or places, or names ("lakeside memorial", "st mary")
        while n < len(words) and _adjacent(text, words[n - 1].end(), words[n].start()) and (
                self.is_name(words[n].group(0)) or words[n].group(0).lower() in self.places
                or words[n].group(0).lower() in _NAME_KIND_WORDS) and words[n].group(0).lower() not in _GENERIC_PLACES:
            n += 1
        if n < len(words) and words[n].group(0).lower() in ("county", "community") \
                and _adjacent(text, words[n - 1].end(), words[n].start()) and _HOSPITAL_WORD.match(text, words[n].end()):
            n += 1  # "FROM HOWARD COUNTY GENERAL", "to Doctors Community Hospital": the county's or community's name
        end = words[n - 1].end()
        place = " ".join(x.group(0).lower() for x in words[:n])
        known_place = place in self.places or w in self.places
        if _INSTITUTION.match(text, end) and (known_place or self.is_name(first) or w in ("st", "saint")) \
                or verb and w not in _KIND_WORDS and len(w) >= 3 and _HOSPITAL_WORD.match(text, end):
            return "HOSPITAL", end, "name before a word of an institution", 0.85
        named = self._hospital_name(text, words)
        if named is not None:
            return "HOSPITAL", named, "a name before a hospital word after a place cue", 0.8
        number = _WARD_NUMBER.match(text, end)
        if number and w not in self.terms and len(w) >= 4:
            attached = number.group(0)[0].isdigit()  # "BRIARWOOD7": the number is part of the name
            return "WARD", number.end() if attached else end, "ward name before its number", 0.8
        # "urine of amber", "of normal saline" (no place as a whole: "Normal" and "Saline" are towns); "OLD TOWN" is one
        english = self.shape.is_known_word(w) and (" " not in place or place not in self.places)
        if (english or w in self.terms) and living and n < len(words) and _adjacent(text, end, words[n].start()) \
                and words[n].group(0).lower() not in self.function_words \
                and self.shape.is_known_word(words[n].group(0).lower()):
            return None  # "WORKS AT THE POST OFFICE": a word of a common phrase, not a town ("lives in Bath with")
        if (w not in self.terms or w in self.term_places or living or " " in place) and (not english or living) and (
                known_place or len(w) > 6 and w.endswith(("ville", "town")) or living and place in self.score_towns) \
                and place not in self.large:
            return "LOCATION", end, "known place after a verb of moving or living", 0.8
        if (w in self.big_cities or living and w == "dc") and w not in self.large and w not in self.stop:
            return "LOCATION", words[0].end(), "a big city after a place cue", 0.8  # "DAUGHTER FROM BOSTON"
        if verb and self._unknown_name(first) and place not in self.large:
            kind = "LOCATION" if living else "HOSPITAL"  # "lives in Glenbrook"; "transferred from Bayview"
            return kind, words[0].end(), "a name no list knows after a verb of moving or living", 0.7
        return None

    def _lexicon_name_after(self, text: str, start: int) -> bool:
        """A given name or surname of the lexicons of four letters or more (less clinical terms and roles) at
        ``start``, after an initial or not ("ross", "d ross"; not "per res", "per ash guidelines")."""
        m = _LOWER_NAME.match(text, start)
        return m is not None and len(m.group(1)) >= 4 and m.group(1) not in self.terms and m.group(1) not in self.stop \
            and m.group(1) not in ROLE_WORDS and (m.group(1) in self.lexicon[0] or m.group(1) in self.lexicon[1])

    def _hospital_name(self, text: str, words: list[re.Match[str]]) -> int | None:
        """The end of the longest run of the ``words`` (up to three, after a place cue) right before a hospital word,
        none of them a word of its kind, a unit or a function word ("FROM CAPE COD HOSP", "from suburban hosp";
        not "from outside hosp", "to rehab hospital"), or None."""
        def name_word(word: str) -> bool:
            x = word.lower()
            return x.replace("'", "").isalpha() and len(x) >= 2 and x not in self.stop and x not in _KIND_WORDS \
                and x not in _GENERIC_PLACES and x not in _HOSPITAL_KINDS and x not in ICU_SHORTHAND \
                and x not in _NAME_KIND_WORDS and x not in ("county", "community")

        found = _run_before(text, words, _HOSPITAL_ONLY, name_word)
        return None if found is None else found.start()

    def _unknown_person(self, word: str) -> bool:
        """A word of five letters or more that no list knows, before a verb only a person does: a name, even one
        edit away from a clinical term ("Osric"); not a misspelt English word ("OVERNITE SLEPT" for
        "overbite"; so not "Perpetua", though "Hualing" is no typing slip of "healing"), a misspelt word for a
        person ("PATEINT", "GRANMA"), an adverb ("FINALY") or
        letters without a vowel ("NSGY")."""
        w = word.lower()
        return len(w) >= 5 and w.isalpha() and w not in self.terms and w not in self.stop \
            and not self.shape.is_known_word(w) and bool(re.search("[aeiou]", w)) and not w.endswith("ly") \
            and w not in _PERSON_WORDS and not any(_one_edit(w, p) for p in _PERSON_WORDS) \
            and not misspelt_term(w, self.shape.is_known_word, typing=True)

    def _unknown_name(self, word: str) -> bool:
        """A word of four letters or more that no list knows and that is no misspelt term."""
        w = word.lower()
        return len(w) >= 4 and w.isalpha() and w not in self.terms and w not in self.stop \
            and not self.shape.is_known_word(w) and not misspelt_term(w) and bool(re.search("[aeiouy]", w))


def _run_before(text: str, words: list[re.Match[str]], marker: re.Pattern[str], word_ok: Callable[[str], bool],
                run_ok: Callable[[list[str]], bool] = lambda run: True) -> re.Match[str] | None:
    """The match of ``marker`` right after the longest run of the ``words`` (from the first) that stand only spaces
    apart, each passing ``word_ok`` and all of them ``run_ok`` ("CAPE COD" before " HOSP", "zytec" before " corp"), or
    None."""
    for n in range(len(words), 0, -1):
        run = words[:n]
        after = marker.match(text, run[-1].end())
        if after and all(_adjacent(text, a.end(), b.start()) for a, b in zip(run, run[1:], strict=False)) \
                and all(word_ok(x.group(0)) for x in run) and run_ok([x.group(0) for x in run]):
            return after
    return None


def _adjacent(text: str, end: int, start: int) -> bool:
    """Only spaces (no line break, no punctuation but a hyphen) between two words."""
    gap = text[end:start]
    return gap in (" ", "  ", "-") or (gap.strip() == "" and "\n" not in gap and len(gap) <= 3)


def _one_edit(a: str, b: str) -> bool:
    """``a`` one edit (a letter left out, added or changed, or two swapped) away from ``b``."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[i + 1:] == b[i + 1:] or a[i + 1:] == b[i:] or a[i:] == b[i + 1:] \
        or a[i:i + 2] == b[i:i + 2][::-1] and a[i + 2:] == b[i + 2:]
