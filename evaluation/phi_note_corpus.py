"""An annotated set of synthetic clinical notes with planted PHI, for measuring text de-identification.

Three styles (nursing, radiology, discharge summaries), written in mixed case or UPPER CASE, each with
PHI of the HIPAA Safe Harbor kinds drawn from fake pools and written in the forms clinical notes use:
patient, relative and clinician names (full, "Mr. X", "Dr. X", "X, MD", initials), dates (07/22/2031,
7/22, 22-Jul, July 22nd, 2/3/45, ISO), ages over 89, phone and fax numbers, e-mail, street addresses,
cities and zip codes, medical record, accession, account, health-plan, licence and device serial
numbers, URLs and IP addresses, hospitals. Between them sits clinical text that is not PHI (drugs and
doses, vital signs, scores, ages up to 89, times of day, fractions, vertebral levels), so the set
measures over-redaction as well.

Every PHI value is annotated with its exact character span and type while the note is written, so the
annotations cannot drift from the text. The set is deterministic per seed; the shipped file
(``data/phi_notes.jsonl``) is ``PhiNoteCorpus(seed=2031).generate(330)``.

The name pools are deliberately unlike the surrogate pools of the de-identifier.

:func:`load_notes` also reads real annotated notes in the same line form, with the PhysioNet deid corpus's
types mapped onto ours (:data:`PHYSIONET_TYPES`); :func:`split_notes` splits a set by patient into the half
rules are tuned on and the half kept for checking.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from clinical_mm.core.errors import InputError
from clinical_mm.evaluation.annotated_jsonl import missing_set_hint

__all__ = ["BLIND2_NOTES", "BLIND3_NOTES", "BLIND4_NOTES", "BLIND5_NOTES", "BLIND6_NOTES", "BLIND7_NOTES", "BLIND8_NOTES", "BLIND9_NOTES", "BLIND10_NOTES", "BLIND11_NOTES", "BLIND_NOTES", "HELD_OUT_NOTES", "NOT_SAFE_HARBOR", "PHYSIONET_TYPES", "SHIPPED_NOTES", "SPLITS", "AnnotatedNote", "PHI_TYPES", "PhiNoteCorpus", "load_notes", "note_split", "split_notes", "type_counts"]

#: the shipped set: ``PhiNoteCorpus(seed=2031).generate(330)``
SHIPPED_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes.jsonl"
#: the held-out set: ``PhiNoteCorpus(seed=2032).generate(120, "held-out")``
HELD_OUT_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_held_out.jsonl"
#: the first blind set, with its own templates and names, scored once (then a lone-given-name rule was added):
#: ``PhiNoteCorpus(seed=2033).generate(150, "blind")``
BLIND_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind.jsonl"
#: the second blind set, written after every recognizer and scored once: ``PhiNoteCorpus(seed=2034).generate(150, "blind-2")``
BLIND2_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind2.jsonl"
#: the third blind set, written after the census names and the place gazetteer and scored once:
#: ``PhiNoteCorpus(seed=2035).generate(150, "blind-3")``
BLIND3_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind3.jsonl"
#: the fourth blind set, written after the third was scored and its rules added, scored once:
#: ``PhiNoteCorpus(seed=2036).generate(240, "blind-4")``
BLIND4_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind4.jsonl"
#: the fifth blind set, written after issue 6's vocabulary joined the allow-list, scored once:
#: ``PhiNoteCorpus(seed=2037).generate(240, "blind-5")``
BLIND5_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind5.jsonl"
#: the sixth blind set, written after the name-likeness model and the UPPER CASE rules, scored once:
#: ``PhiNoteCorpus(seed=2038).generate(240, "blind-6")``
BLIND6_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind6.jsonl"
#: the seventh blind set, written after the rules the sixth set showed, scored once:
#: ``PhiNoteCorpus(seed=2039).generate(240, "blind-7")``
BLIND7_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind7.jsonl"
#: the eighth blind set, written after the rules the seventh set showed, scored once:
#: ``PhiNoteCorpus(seed=2040).generate(240, "blind-8")``
BLIND8_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind8.jsonl"
#: the ninth blind set, written after the context tagger, never trained on, scored once:
#: ``PhiNoteCorpus(seed=2041).generate(240, "blind-9")``
BLIND9_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind9.jsonl"
#: the tenth blind set, written after the ninth was scored and before anything changed, never trained on,
#: scored once: ``PhiNoteCorpus(seed=2042).generate(300, "blind-10")``
BLIND10_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind10.jsonl"
#: the eleventh blind set, written after the rules the tenth showed, never trained on, scored once:
#: ``PhiNoteCorpus(seed=2043).generate(300, "blind-11")``
BLIND11_NOTES = Path(__file__).resolve().parent / "data" / "phi_notes_blind11.jsonl"

#: annotation types and the HIPAA Safe Harbor identifier each one is
PHI_TYPES: dict[str, str] = {
    "PATIENT": "names", "RELATIVE": "names", "CLINICIAN": "names",
    "DATE": "dates (except year)", "AGE": "ages over 89",
    "PHONE": "telephone numbers", "FAX": "fax numbers", "EMAIL": "e-mail addresses",
    "SSN": "social security numbers", "MRN": "medical record numbers",
    "HEALTH_PLAN": "health plan beneficiary numbers", "ACCOUNT": "account numbers",
    "LICENSE": "certificate/license numbers", "DEVICE_ID": "device identifiers and serial numbers",
    "URL": "web URLs", "IP_ADDRESS": "IP addresses",
    "STREET": "geographic subdivisions smaller than a state", "CITY": "geographic subdivisions smaller than a state",
    "ZIP": "geographic subdivisions smaller than a state",
    "ACCESSION": "any other unique identifying number", "HOSPITAL": "any other unique identifying characteristic",
    "LOCATION": "geographic subdivisions smaller than a state", "YEAR": "a year alone, not Safe Harbor PHI",
    "OTHER": "any other unique identifying characteristic",
}
#: annotation types that are no Safe Harbor PHI (recall is reported without them too)
NOT_SAFE_HARBOR = frozenset({"YEAR"})

#: the PhysioNet deid corpus's annotation types (Neamatullah et al. 2008) as ours; :func:`load_notes` reads them so
PHYSIONET_TYPES: dict[str, str] = {
    "HCPName": "CLINICIAN", "PTName": "PATIENT", "PTNameInitial": "PATIENT", "RelativeProxyName": "RELATIVE",
    "Date": "DATE", "DateYear": "YEAR", "Location": "LOCATION", "Phone": "PHONE", "Age": "AGE", "Other": "OTHER",
}

#: the parts of an annotated set split by patient (:func:`note_split`): "tune", the half the rules were tuned on
#: from the start; "check", the other half, never tuned on in issue 19's first three sessions; "check" is split in
#: two by patient, "tune2", tuned on from the fourth session, and "check2", never tuned on; "all" is every note
SPLITS = ("tune", "check", "tune2", "check2", "all")

_FIRST = ["Margaret", "Harold", "Dolores", "Wendell", "Priya", "Tomasz", "Ngozi", "Hiroshi", "Esperanza", "Declan",
          "Fatima", "Giovanni", "Ingrid", "Kwame", "Lucinda", "Mateo", "Oksana", "Rashid", "Siobhan", "Thaddeus",
          "Yolanda", "Zoltan", "Beatrice", "Cornelius", "Imogen", "Lorenzo", "Maribel", "Percival", "Rosalind",
          "Ignatius", "Aurelia", "Bartholomew", "Consuelo", "Dmitri", "Eulalia", "Florian", "Gwendolyn", "Horace",
          "Ismael", "Juniper", "Leopold", "Mirela", "Octavia", "Reginald", "Svetlana", "Ulysses", "Wilhelmina",
          "Anan", "Bich", "Chidi", "Deepa", "Eitan", "Farah", "Gustavo", "Hae-won", "Ifeoma", "Joaquin", "Kenji"]
_LAST = ["Abernathy", "Bjornsson", "Castellanos", "Dunleavy", "Eberhardt", "Fitzgerald", "Garibaldi", "Haverford",
         "Ishikawa", "Jankowski", "Kowalczyk", "Lindqvist", "Mbeki", "Nakamura", "Oyelaran", "Pemberton",
         "Quintero", "Rasmussen", "Szymanski", "Thibodeaux", "Umberger", "Vasquez", "Whitfield", "Xiong",
         "Yamamoto", "Zielinski", "Achebe", "Bellamy", "Chowdhury", "Delacroix", "Esposito", "Falkenrath",
         "Grabowski", "Hollingsworth", "Iwu", "Jorgensen", "Kirkpatrick", "Lafleur", "McAllister", "Novak",
         "O'Sullivan", "Petrakis", "Ravensworth", "Sorensen", "Trevino", "Van Buren", "Wojcik", "Okafor",
         "Nguyen", "Patel", "Kim", "Garcia", "Cohen", "Murphy", "Rossi", "Singh", "Tanaka", "Brown", "Lee"]
_BLIND_FIRST = ["Shanice", "Tyrone", "Guadalupe", "Nikolai", "Aaliyah", "Bao", "Oluwaseun", "Rajesh", "Mei", "Connor",
                "Brittany", "Dwayne", "Ximena", "Yusuf", "Zofia", "Liam", "Ebony", "Cheng", "Anastasia", "Terrence"]
_BLIND_LAST = ["Washington", "Okonkwo", "Hernandez", "Petrov", "Goldberg", "Nwosu", "Tran", "Kaur", "O'Brien", "Schmidt",
               "Jefferson", "Mendoza", "Kovacs", "Abdullah", "Lindgren", "Fitzpatrick", "Baptiste", "Yilmaz", "Haddad",
               "Ferreira"]
_BLIND2_FIRST = ["Rosalie", "Desmond", "Marisol", "Viktor", "Keisha", "Arjun", "Linnea", "Tobias", "Nadia", "Emeka",
                 "Colleen", "Rafael", "Sunita", "Gareth", "Ana", "Demetrius", "Ingeborg", "Lamar", "Yuki", "Fernando"]
_BLIND2_LAST = ["Castillo", "Odom", "Varga", "Mahoney", "Adeyemi", "Lund", "Prakash", "Whitaker", "Moreau", "Oyelowo",
                "Sandoval", "Kincaid", "Hashemi", "Dobrowski", "Stroud", "Ibarra", "Nilsen", "Mwangi", "Crane", "Vo"]
_BLIND3_FIRST = ["Precious", "Hamid", "Soledad", "Bogdan", "Tamika", "Kofi", "Annika", "Thiago", "Priyanka", "Seamus",
                 "Lakshmi", "Dariusz", "Jolene", "Anh", "Marguerite", "Obinna", "Esther", "Cyrus", "Maren", "Ezekiel"]
_BLIND3_LAST = ["Fairbanks", "Achterberg", "Mukherjee", "Delgado", "Osei", "Pruitt", "Halvorsen", "Nakashima", "Bramwell",
                "Ortega", "Szabo", "Rutherford", "Ekwueme", "Lachance", "Villanueva", "Gallagher", "Dimitriou", "Pham",
                "Kowalski", "Bouchard"]
_BLIND3_CITIES = ["Brattleboro", "Woonsocket", "Nashua", "Torrington", "Bangor", "Plattsburgh", "Ithaca", "Keene", "Saco",
                  "Cranston", "Danbury", "Montpelier", "Lewiston", "Pawtucket", "Meriden", "Utica", "Rutland",
                  "Glens Falls", "North Adams", "East Providence"]
_BLIND4_FIRST = ["Rosario", "Ekaterina", "Jamal", "Saoirse", "Haruto", "Nomvula", "Bertrand", "Yesenia", "Faisal", "Greta",
                 "Kamala", "Lucien", "Odalys", "Piotr", "Ramona", "Sekou", "Tatiana", "Vikram", "Winona", "Xavier"]
_BLIND4_LAST = ["Abernethy-Cole", "Balogun", "Cardenas", "Drummond", "Eriksen", "Fontaine", "Gutierrez", "Holloway", "Iyer",
                "Jablonski", "Kuznetsov", "Lindahl", "Maldonado", "Nakagawa", "Obi", "Pellegrino", "Quigley", "Rahman",
                "Stavros", "Tolliver"]
_BLIND4_CITIES = ["Amherst", "Biddeford", "Claremont", "Dover", "Easthampton", "Fitchburg", "Gloucester", "Holyoke",
                  "Laconia", "Manchester", "Newport", "Oneonta", "Portsmouth", "Salem", "Stamford", "Warwick",
                  "Westerly", "Watertown", "Bennington", "Saratoga Springs"]
_BLIND4_HOSPITALS = ["Pinecrest Regional Hospital", "Lakes Region General Hospital", "Seacoast Community Hospital",
                     "Berkshire Valley Medical Center", "Our Lady of Mercy Hospital", "Maplewood Rehabilitation Center",
                     "Copley Hospital", "Saint Vincent Hospital"]
_BLIND5_FIRST = ["Delphine", "Kwabena", "Mirabel", "Anselm", "Tuyet", "Rohan", "Gabriela", "Leif", "Chiamaka", "Dashiell",
                 "Ines", "Matthias", "Yaretzi", "Sven", "Amara", "Bronislaw", "Catalina", "Jedediah", "Noor", "Tiberius"]
_BLIND5_LAST = ["Ashcroft", "Bautista", "Czarnecki", "Dlamini", "Everhart", "Fujimoto", "Gonsalves", "Hargrove", "Idowu",
                "Juarez", "Kellerman", "Lombardi", "Mbatha", "Nordstrom", "Ochoa", "Pritchard", "Ramaswamy", "Sokolov",
                "Thackeray", "Underwood"]
_BLIND5_CITIES = ["Burlington", "Concord", "Derry", "Augusta", "Bristol", "Middletown", "Norwich", "Schenectady",
                  "Poughkeepsie", "Kingston", "Lebanon", "Hanover", "Waterville", "Presque Isle", "Westport", "Groton",
                  "Greenfield", "Northampton", "Gardner", "Athol"]
_BLIND5_HOSPITALS = ["Elm Ridge Medical Center", "Saint Luke's Hospital", "Hudson Valley Regional Hospital",
                     "Cornerstone Rehabilitation Hospital", "Marshside Community Hospital", "Fletcher Allen Clinic",
                     "Green Mountain Surgical Center", "Bay State Kidney Center"]
_BLIND6_FIRST = ["Thandiwe", "Ruairi", "Marisela", "Bartosz", "Ifeanyi", "Hyun-woo", "Solveig", "Jacinta", "Mehmet",
                 "Xochitl", "Dov", "Pania", "Zainab", "Ewan", "Graciela", "Radomir", "Ama", "Cosimo", "Hope", "Deshawn"]
_BLIND6_LAST = ["Abara", "Bergstrom", "Cuthbert", "Dzurinda", "Etxeberria", "Frobisher", "Gallardo", "Huckabee", "Iqbal",
                "Jovanovic", "Kaminski", "Llewellyn", "Moynihan", "Nwachukwu", "Ostrowski", "Paquette", "Rinaldi",
                "Saperstein", "Tshabalala", "Wexler"]
_BLIND6_CITIES = ["Bar Harbor", "Brunswick", "Littleton", "Lowville", "Malone", "Ogdensburg", "Oneida", "Cortland",
                  "Geneva", "Winsted", "Putnam", "Willimantic", "Westfield", "Chelsea", "Lynn", "Wakefield", "Bath",
                  "Belfast", "Calais", "Berlin"]
_BLIND6_HOSPITALS = ["Eastern Maine Medical Center", "Champlain Valley Physicians Hospital", "Samaritan Medical Center",
                     "Cheshire Medical Center", "Mid Coast Hospital", "Windham Community Memorial Hospital",
                     "Heywood Hospital", "Alice Peck Day Memorial Hospital"]
_BLIND7_FIRST = ["Amadou", "Brigid", "Cassius", "Dagny", "Efua", "Florentino", "Gioia", "Hamish", "Iolanthe", "Jin-soo",
                 "Kaveh", "Ludmila", "Mercy", "Nnamdi", "Orla", "Pascual", "Rhiannon", "Stellan", "Taini", "Wren"]
_BLIND7_LAST = ["Adebayo", "Blackwood", "Cervantes", "Dellinger", "Eskildsen", "Farquhar", "Grzelak", "Hotchkiss",
                "Ishida", "Jaramillo", "Kowalewski", "Lindemann", "Mwangi-Otieno", "Nakashima", "Oduya", "Pirozzi",
                "Rautenbach", "Szczepanski", "Thorvaldsen", "Vukovic"]
_BLIND7_CITIES = ["Auburn", "Brewer", "Caribou", "Dexter", "Ellsworth", "Farmington", "Gorham", "Houlton", "Keeseville",
                  "Lisbon", "Massena", "Norway", "Orono", "Potsdam", "Rumford", "Skowhegan", "Ticonderoga", "Sidney",
                  "Windsor", "Marion"]
_BLIND7_HOSPITALS = ["Northern Light Inland Hospital", "Franklin Memorial Hospital", "Canton-Potsdam Hospital",
                     "Rumford Hospital", "Redington-Fairview General Hospital", "Down East Community Hospital",
                     "Adirondack Health Clinic", "Stephens Memorial Hospital"]
_BLIND8_FIRST = ["Agnieszka", "Babajide", "Clementine", "Dmitar", "Eilidh", "Fenella", "Gaspard", "Hualing", "Ikaika",
                 "Jorunn", "Kenneth", "Lorcan", "Maaike", "Nikhil", "Ottilie", "Paz", "Quilla", "Roisin", "Sung-min",
                 "Faith"]
_BLIND8_LAST = ["Aguilar-Reyes", "Brannigan", "Czerwinski", "Dufresne", "Ekwueme-Obi", "Fairweather", "Giordano",
                "Hakobyan", "Inglethorpe", "Jeyaratnam", "Kristiansen", "Lachapelle", "Mbeki", "Nakamura-Holt",
                "Oyelowo", "Prendergast", "Quarshie", "Rasmussen", "Sithole", "Vandermeer"]
_BLIND8_CITIES = ["Amsterdam", "Bennington", "Canandaigua", "Dunkirk", "Elmira", "Fredonia", "Gloversville", "Hornell",
                  "Jamestown", "Kennebunk", "Lockport", "Millinocket", "Olean", "Penn Yan", "Rome", "Salamanca",
                  "Tupper Lake", "Waterbury", "Sanford", "Warsaw"]
_BLIND8_HOSPITALS = ["Arnot Ogden Medical Center", "Olean General Hospital", "Jones Memorial Hospital",
                     "Nathan Littauer Hospital", "Soldiers and Sailors Memorial Hospital", "Millinocket Regional Hospital",
                     "Brooks Memorial Hospital", "Southwestern Vermont Medical Center"]
_BLIND9_FIRST = ["Anouk", "Bolat", "Cressida", "Dagmar", "Eamon", "Fumiko", "Gwilym", "Hollis", "Ines", "Jarrah",
                 "Kwabena", "Liesel", "Marisol", "Nnamdi", "Oksana", "Pilar", "Rosalind", "Tavita", "Ugo", "Joy"]
_BLIND9_LAST = ["Achterberg", "Bakshi", "Cavanagh", "Delacroix-Moss", "Etemadi", "Fonoti", "Gallagher", "Hutchings",
                "Iwu", "Jablonski", "Kerrigan", "Lopes-Ferreira", "Mahoney", "Nieminen", "Ostergaard", "Pemberton",
                "Quintanilla", "Ruelas", "Stavros", "Winter"]
_BLIND9_CITIES = ["Barre", "Claremont", "Derby", "Enfield", "Gardner", "Hudson", "Ithaca", "Johnstown", "Kingston",
                  "Lebanon", "Malone", "Newport", "Oneonta", "Plattsburgh", "Rutland", "Saratoga Springs", "Torrington",
                  "Utica", "Vergennes", "Woodstock"]
_BLIND9_HOSPITALS = ["Gifford Medical Center", "Copley Hospital", "Alice Hyde Medical Center",
                     "Cortland Regional Medical Center", "Bassett Medical Center", "Northwestern Medical Center",
                     "Springfield Hospital", "Champlain Valley Physicians Hospital"]
_BLIND10_FIRST = ["Aurelio", "Brigitta", "Caoimhe", "Desmond", "Elif", "Florin", "Genevieve", "Hamza", "Isolde",
                  "Jovan", "Kalani", "Leopold", "Mireille", "Nizhoni", "Osric", "Priyanka", "Quentin", "Renata", "Sol",
                  "Bea"]
_BLIND10_LAST = ["Abernethy-Lowe", "Bergstrom", "Castellano", "Drummond", "Esposito", "Fairbanks", "Gunasekara",
                 "Holmquist", "Ibarra", "Jankowski", "Kovalenko", "Lindqvist", "Moreau", "Nakagawa", "Okonjo", "Pfeiffer",
                 "Rasheed", "Sorensen", "Takahashi", "Vance"]
_BLIND10_CITIES = ["Berlin", "Concord", "Dover", "Exeter", "Glens Falls", "Hanover", "Keene", "Littleton", "Middlebury",
                   "Presque Isle", "Randolph", "St. Albans", "Swanton", "Troy", "Watertown", "Windham", "Bethel",
                   "Lancaster", "Colebrook", "Brattleboro"]
_BLIND10_HOSPITALS = ["Concord Hospital", "Littleton Regional Healthcare", "Porter Medical Center", "Glens Falls Hospital",
                      "Speare Memorial Hospital", "Upper Connecticut Valley Hospital", "Mt. Ascutney Hospital",
                      "Samaritan Medical Center"]
_BLIND11_FIRST = ["Adaeze", "Bjorn", "Catalina", "Dariusz", "Esme", "Fergus", "Giselle", "Haruki", "Imogen", "Jalen",
                  "Kerensa", "Lachlan", "Margit", "Nuno", "Odalys", "Perpetua", "Rafferty", "Siobhan", "Tomas", "Ivy"]
_BLIND11_LAST = ["Ashworth", "Boateng", "Cifuentes", "Dvorak", "Engstrom", "Fitzroy-Hale", "Grabowski", "Halvorsen",
                 "Ilunga", "Juarez", "Kowalczyk", "Lachance", "Mbatha", "Nordstrom", "Oyarzun", "Pacheco", "Rousseau",
                 "Sutherland", "Tremblay", "Wolfe"]
_BLIND11_CITIES = ["Augusta", "Bath", "Camden", "Dover-Foxcroft", "Eastport", "Fort Kent", "Greenville", "Hallowell",
                   "Jay", "Kittery", "Lubec", "Machias", "Norridgewock", "Old Town", "Pittsfield", "Rockland",
                   "Saco", "Thomaston", "Van Buren", "Winslow"]
_BLIND11_HOSPITALS = ["MaineGeneral Medical Center", "Pen Bay Medical Center", "Cary Medical Center",
                      "Calais Community Hospital", "Mayo Regional Hospital", "Waldo County General Hospital",
                      "York Hospital", "St. Mary's Regional Medical Center"]
_STREETS = ["Maple", "Elmwood", "Chestnut Hill", "Harbor View", "Old Mill", "Juniper", "Lakeshore", "Briarcliff",
            "Kingsley", "Prospect", "Willow Creek", "Beacon", "Orchard", "Sycamore", "Fairmount", "Quarry"]
_SUFFIX = ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Court", "Boulevard", "Way", "Terrace"]
_CITIES = ["Springfield", "Fall River", "Worcester", "New Bedford", "Framingham", "Lowell", "Brockton", "Quincy",
           "Pittsfield", "Haverhill", "Chicopee", "Taunton", "Leominster", "Marlborough", "Peabody", "Attleboro",
           "Dorchester", "Revere", "Somerville", "Medford"]
_STATES = ["MA", "RI", "NH", "CT", "NY", "VT", "ME"]
_HOSPITALS = ["Mercy General Hospital", "St. Anselm Medical Center", "Riverbend Community Hospital",
              "Northshore Rehabilitation Center", "Good Samaritan Hospital", "Lakeview Nursing Home",
              "Bayside Health Center", "Holy Cross Hospital", "Westfield Family Clinic", "Saint Brigid Infirmary",
              "Valley Regional Medical Center", "Harborview Medical Center"]


@dataclass(frozen=True)
class _Pools:
    """The names, cities and hospitals a template set draws from."""

    first: list[str]
    last: list[str]
    cities: list[str] = field(default_factory=lambda: _CITIES)
    hospitals: list[str] = field(default_factory=lambda: _HOSPITALS)


_POOLS = {"dev": _Pools(_FIRST, _LAST), "held-out": _Pools(_FIRST, _LAST),
          "blind": _Pools(_BLIND_FIRST, _BLIND_LAST), "blind-2": _Pools(_BLIND2_FIRST, _BLIND2_LAST),
          "blind-3": _Pools(_BLIND3_FIRST, _BLIND3_LAST, _BLIND3_CITIES),
          "blind-4": _Pools(_BLIND4_FIRST, _BLIND4_LAST, _BLIND4_CITIES, _BLIND4_HOSPITALS),
          "blind-5": _Pools(_BLIND5_FIRST, _BLIND5_LAST, _BLIND5_CITIES, _BLIND5_HOSPITALS),
          "blind-6": _Pools(_BLIND6_FIRST, _BLIND6_LAST, _BLIND6_CITIES, _BLIND6_HOSPITALS),
          "blind-7": _Pools(_BLIND7_FIRST, _BLIND7_LAST, _BLIND7_CITIES, _BLIND7_HOSPITALS),
          "blind-8": _Pools(_BLIND8_FIRST, _BLIND8_LAST, _BLIND8_CITIES, _BLIND8_HOSPITALS),
          "blind-9": _Pools(_BLIND9_FIRST, _BLIND9_LAST, _BLIND9_CITIES, _BLIND9_HOSPITALS),
          "blind-10": _Pools(_BLIND10_FIRST, _BLIND10_LAST, _BLIND10_CITIES, _BLIND10_HOSPITALS),
          "blind-11": _Pools(_BLIND11_FIRST, _BLIND11_LAST, _BLIND11_CITIES, _BLIND11_HOSPITALS)}
_EMAIL_DOMAINS = ["gmail.com", "yahoo.com", "comcast.net", "outlook.com", "aol.com", "verizon.net"]
_RELATION = ["wife", "husband", "daughter", "son", "sister", "brother", "niece", "nephew", "mother", "father",
             "partner", "friend", "granddaughter", "grandson", "HCP"]
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


@dataclass
class AnnotatedNote:
    """One note: its text and the PHI spans in it (``start``, ``end``, ``type``)."""

    id: str
    style: str
    case: str
    text: str
    spans: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "style": self.style, "case": self.case, "text": self.text,
                           "spans": self.spans}, ensure_ascii=True)


#: a placeholder's value: (type, text), or a list of such parts
_Value = tuple[str, str] | list[tuple[str, str]]


class _Writer:
    """Builds a note piece by piece, recording the span of every PHI piece."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.spans: list[dict[str, object]] = []

    def text(self, s: str) -> None:
        self.parts.append(s)
        self.n += len(s)

    def phi(self, kind: str, value: str) -> None:
        if kind not in PHI_TYPES:
            raise ValueError(f"unknown PHI type {kind}")
        self.spans.append({"start": self.n, "end": self.n + len(value), "type": kind})
        self.text(value)

    def fill(self, template: str, values: dict[str, _Value]) -> None:
        """``template`` with ``{name}`` placeholders; ``values[name]`` is (type, text), or a list of them for a
        value whose parts differ (a title and a name); type "" is not PHI."""
        pos = 0
        for m in re.finditer(r"\{(\w+)\}", template):
            self.text(template[pos:m.start()])
            value = values[m.group(1)]
            for kind, part in value if isinstance(value, list) else [value]:
                if kind:
                    self.phi(kind, part)
                else:
                    self.text(part)
            pos = m.end()
        self.text(template[pos:])


class PhiNoteCorpus:
    """Writes annotated notes; the same seed gives the same notes."""

    def __init__(self, seed: int = 2031) -> None:
        self.seed = seed

    # ------------------------------------------------------------------ PHI values
    @staticmethod
    def _person(r: random.Random, pools: _Pools) -> tuple[str, str]:
        return r.choice(pools.first), r.choice(pools.last)

    def _date(self, r: random.Random, year: int | None = None, forms: str = "all") -> str:
        y = year or r.randint(2024, 2035)
        m, d = r.randint(1, 12), r.randint(1, 28)
        choices = {
            "full": [f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{_MONTHS[m - 1]} {d}, {y}",
                     f"{d}-{_MONTHS[m - 1][:3]}-{y}", f"{y}-{m:02d}-{d:02d}", f"{m:02d}-{d:02d}-{y}",
                     f"{_MONTHS[m - 1][:3]} {d}, {y}", f"{d} {_MONTHS[m - 1]} {y}"],
            "short": [f"{m}/{d}", f"{d}-{_MONTHS[m - 1][:3]}", f"{_MONTHS[m - 1]} {d}{_ordinal(d)}",
                      f"{_MONTHS[m - 1][:3]} {d}", f"{m}/{d}/{y % 100:02d}"],
        }
        pool = choices["full"] + choices["short"] if forms == "all" else choices[forms]
        return r.choice(pool)

    def _dob(self, r: random.Random) -> str:
        y = r.randint(1928, 2004)
        m, d = r.randint(1, 12), r.randint(1, 28)
        return r.choice([f"{m:02d}/{d:02d}/{y}", f"{m}/{d}/{y % 100:02d}", f"{_MONTHS[m - 1]} {d}, {y}", f"{y}-{m:02d}-{d:02d}"])

    @staticmethod
    def _phone(r: random.Random) -> str:
        a, b, c = r.randint(201, 989), r.randint(200, 989), r.randint(0, 9999)
        return r.choice([f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}", f"{a}.{b}.{c:04d}", f"+1 {a} {b} {c:04d}",
                         f"1-{a}-{b}-{c:04d}"])

    @staticmethod
    def _digits(r: random.Random, n: int) -> str:
        return "".join(str(r.randint(0, 9)) for _ in range(n))

    def _values(self, r: random.Random, pools: _Pools) -> dict[str, _Value]:
        pf, pl = self._person(r, pools)
        rf, rl = r.choice(pools.first), r.choice([pl, r.choice(pools.last)])
        cf, cl = self._person(r, pools)
        c2f, c2l = self._person(r, pools)
        sex = r.choice(["male", "female"])
        title = "Mr." if sex == "male" else r.choice(["Mrs.", "Ms."])
        old = r.random() < 0.45
        age = r.randint(90, 104) if old else r.randint(19, 89)
        age_suffix = r.choice([" yo", "-year-old", " y/o", " year old", "yo"])
        city, state = r.choice(pools.cities), r.choice(_STATES)
        zip_ = f"0{r.randint(1000, 2799)}" if r.random() < 0.7 else f"{r.randint(10000, 99999)}"
        user = r.choice([f"{pf.lower()}.{pl.lower().replace(' ', '').replace(chr(39), '')}",
                         f"{pf[0].lower()}{pl.lower().replace(' ', '').replace(chr(39), '')}{r.randint(1, 99)}"])
        v: dict[str, _Value] = {
            "pt_full": ("PATIENT", f"{pf} {pl}"), "pt_last": ("PATIENT", pl), "pt_first": ("PATIENT", pf),
            "pt_title": [("", f"{title} "), ("PATIENT", pl)], "pt_lastfirst": ("PATIENT", f"{pl}, {pf}"),
            "rel": ("", r.choice(_RELATION)), "rel_name": ("RELATIVE", rf), "rel_full": ("RELATIVE", f"{rf} {rl}"),
            "dr_last": ("CLINICIAN", cl), "dr_full": ("CLINICIAN", f"{cf} {cl}"),
            "dr_init": ("CLINICIAN", f"{cf[0]}. {cl}"), "dr2_last": ("CLINICIAN", c2l),
            "dr2_full": ("CLINICIAN", f"{c2f} {c2l}"), "initials": ("CLINICIAN", f"{c2f[0]}{c2l[0]}"),
            "sex": ("", sex), "age": [("AGE" if old else "", str(age)), ("", age_suffix)],
            "age_young": ("", f"{r.randint(19, 89)}-year-old"),
            "date": ("DATE", self._date(r)), "date2": ("DATE", self._date(r)), "date_full": ("DATE", self._date(r, forms="full")),
            "date_short": ("DATE", self._date(r, forms="short")), "dob": ("DATE", self._dob(r)),
            "phone": ("PHONE", self._phone(r)), "phone2": ("PHONE", self._phone(r)), "fax": ("FAX", self._phone(r)),
            "email": ("EMAIL", f"{user}@{r.choice(_EMAIL_DOMAINS)}"),
            "ssn": ("SSN", f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}"),
            "mrn": ("MRN", r.choice([self._digits(r, 7), self._digits(r, 8), f"{r.choice('ABEMR')}{self._digits(r, 7)}"])),
            "acc": ("ACCESSION", r.choice([f"RAD{self._digits(r, 7)}", self._digits(r, 9), f"CR{self._digits(r, 8)}"])),
            "acct": ("ACCOUNT", self._digits(r, r.randint(8, 11))),
            "plan": ("HEALTH_PLAN", r.choice([f"{r.choice(['XJH', 'BCB', 'MVP', 'HPH'])}{self._digits(r, 9)}",
                                              f"{self._digits(r, 3)}-{self._digits(r, 2)}-{self._digits(r, 4)}A",
                                              f"W{self._digits(r, 9)}"])),
            "lic": ("LICENSE", r.choice([f"{r.choice('ABFM')}{r.choice('ABCDGKLMRS')}{self._digits(r, 7)}",
                                         f"S{self._digits(r, 8)}"])),
            "serial": ("DEVICE_ID", r.choice([f"{r.choice(['PJN', 'RXQ', 'BLK'])}{self._digits(r, 6)}",
                                              f"{self._digits(r, 4)}-{r.choice('ABCDEFGH')}{self._digits(r, 3)}"])),
            "url": ("URL", f"https://{r.choice(['mychart', 'portal', 'patient'])}.{r.choice(['mercyhealth', 'riverbendhosp', 'stanselm'])}.org/{r.choice(['p', 'u', 'visit'])}/{self._digits(r, 6)}"),
            "ip": ("IP_ADDRESS", f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"),
            "street": ("STREET", f"{r.randint(2, 9899)} {r.choice(_STREETS)} {r.choice(_SUFFIX)}"
                                  + (f", Apt {r.randint(1, 40)}{r.choice(['', 'B', 'C'])}" if r.random() < 0.3 else "")),
            "city": ("CITY", city), "state": ("", state), "zip": ("ZIP", zip_),
            "hospital": ("HOSPITAL", r.choice(pools.hospitals)), "hospital2": ("HOSPITAL", r.choice(pools.hospitals)),
            "time": ("", r.choice(["0700", "1900", "14:30", "2315", "08:45", "3 pm", "0300"])),
            "mg": ("", str(r.choice([5, 10, 12.5, 20, 25, 40, 81, 325, 500, 650, 1000]))),
            "bp": ("", f"{r.randint(92, 178)}/{r.randint(48, 99)}"),
            "hr": ("", str(r.randint(52, 128))), "temp": ("", f"{r.randint(97, 101)}.{r.randint(0, 9)}"),
            "gcs": ("", str(r.randint(9, 15))), "size": ("", f"{r.randint(3, 45) / 10:.1f}"),
        }
        return v

    # ------------------------------------------------------------------ styles
    _NURSING = [
        "{time} nursing note. Pt {pt_full} ({age} {sex}), MRN {mrn}, resting in bed. VS: BP {bp}, HR {hr}, T {temp}. "
        "Pain 3/10, tylenol {mg} mg PO given q6h prn. Pt's {rel} {rel_name} at bedside, asked about discharge plan; "
        "{rel_name} can be reached at {phone}. Dr. {dr_last} aware of BP. Foley draining clear yellow urine. "
        "Fall precautions in place. Will continue to monitor. -- {initials}, RN",
        "Shift summary {date_short}: {pt_title} alert and oriented x3, GCS {gcs}. Ambulated to hallway with walker, "
        "tolerated well. Lasix {mg} mg IV given at {time}. {rel} ({rel_full}) called from home, number on file "
        "{phone}, updated on plan of care. Paged {dr_init} re: K 3.2, orders received for KCl 20 mEq PO x1. "
        "Skin intact, turned q2h. Signed {dr2_full} RN",
        "NURSING ADMISSION ASSESSMENT. Name: {pt_lastfirst}. DOB: {dob}. Admitted {date} from {hospital} via EMS. "
        "Lives at {street}, {city}, {state} {zip} with {rel} {rel_full}. Emergency contact {rel_full} {phone}. "
        "Allergies: penicillin (rash). Home meds reviewed with pt: metoprolol {mg} mg daily, aspirin 81 mg daily. "
        "Braden 16, Morse 45. Admitting MD: Dr. {dr_full}. Pt is a {age} {sex}, oriented, follows commands.",
        "Pt {pt_first} c/o nausea overnight, zofran 4 mg IV given with relief. BS 142 at {time}. "
        "{rel_name} ({rel}) visited, brought home CPAP, serial {serial}. Tele: NSR 70s-80s. "
        "Discussed with Dr {dr_last}, plan to advance diet {date_short}. Voided 350 mL. Bed alarm on. {initials} RN",
        "Wound care note {date}: {pt_title}, MRN {mrn}. Sacral pressure injury stage 2, {size} x 1.2 cm, "
        "pink wound bed, no drainage. Cleansed with NS, foam dressing applied. Reported to {dr_full}, NP. "
        "Pt states {rel} {rel_name} will do dressing changes at home at {street}. Next change due {date_short}.",
    ]
    _RADIOLOGY = [
        "EXAM: CHEST 2 VIEWS. DATE OF SERVICE: {date_full}. PATIENT: {pt_lastfirst}. MRN: {mrn}. ACCESSION: {acc}. "
        "DOB: {dob}. REFERRING: {dr_full}, MD. HISTORY: {age} {sex} with cough and fever. COMPARISON: {date}. "
        "FINDINGS: Heart size normal. Patchy opacity in the right lower lobe. No pleural effusion or pneumothorax. "
        "T8 compression deformity, unchanged. IMPRESSION: Right lower lobe pneumonia. "
        "Findings discussed with Dr. {dr_last} by telephone at {time} on {date_short}. "
        "Dictated by: {dr2_full}, MD. Electronically signed {date_full}.",
        "CT HEAD WITHOUT CONTRAST. Acc# {acc}. Pt: {pt_full}, {age} {sex}. Ordering physician {dr_init}. "
        "Clinical indication: fall at {hospital2}, on apixaban 5 mg BID. Technique: axial images, 5 mm. "
        "Findings: No acute hemorrhage. Chronic small vessel ischemic change. Prior study {date} at {hospital}. "
        "Impression: No acute intracranial abnormality. Read by {dr2_full} MD. Report faxed to {fax}.",
        "MRI LUMBAR SPINE. Patient {pt_title} (MRN {mrn}), study date {date_full}. Indication: low back pain, "
        "L4-L5 radiculopathy. Findings: disc bulge at L4-L5 with mild canal stenosis, L5-S1 facet arthropathy. "
        "Conus terminates at L1. Pacemaker checked as MR conditional, device serial {serial}. "
        "Comparison {date_short}. Results released to patient portal {url}. Radiologist: Dr. {dr_full}. "
        "Questions: call reading room {phone}.",
        "ULTRASOUND ABDOMEN. Name: {pt_full}  MRN: {mrn}  Acc: {acc}  Exam date: {date}. "
        "{age_young} {sex} with RUQ pain. Gallbladder contains multiple stones up to {size} cm, wall 2 mm. "
        "CBD 4 mm. Liver normal echotexture. IMPRESSION: Cholelithiasis without cholecystitis. "
        "Preliminary read by {dr_last}, final by {dr2_full}, MD on {date_short}. Workstation {ip}.",
        "PORTABLE CHEST {date_short} {time}. {pt_lastfirst}, {age} {sex}, ICU bed at {hospital}. "
        "Lines: right IJ catheter tip at cavoatrial junction. ET tube 4 cm above carina. Findings: bilateral "
        "perihilar opacities, small left effusion. Impression: pulmonary edema. Called to {dr_init} at {phone}. "
        "Accession {acc}. Signed: {dr2_full}, MD.",
    ]
    _DISCHARGE = [
        "DISCHARGE SUMMARY. Patient: {pt_full}. MRN: {mrn}. Account: {acct}. Admission date: {date_full}. "
        "Discharge date: {date2}. Attending: {dr_full}, MD. PCP: Dr. {dr2_last}. "
        "HPI: {pt_title} is a {age} {sex} with CHF (EF 35%) admitted with dyspnea. Treated with furosemide 40 mg IV BID "
        "and metoprolol succinate {mg} mg daily, weight down 3 kg. Discharge condition: stable. "
        "Follow-up: Dr. {dr2_last} at {hospital} on {date_short}, phone {phone}, fax {fax}. "
        "Home address: {street}, {city}, {state} {zip}. Insurance member ID {plan}.",
        "Discharge instructions for {pt_full} (DOB {dob}). You were treated at {hospital} for pneumonia. "
        "Take levofloxacin 750 mg once daily for 5 more days. Call your doctor at {phone} for fever over 101. "
        "Your {rel} {rel_full} was given a copy. Questions by e-mail: {email}. Portal: {url}. "
        "Appointment with {dr_init} on {date_short} at {time}. SSN on file: {ssn}.",
        "D/C SUMMARY {date}. {pt_lastfirst}, {age} {sex}, MRN {mrn}, acct #{acct}. Hospital course: admitted "
        "{date2} with hip fracture after fall at home ({street}, {city}). ORIF by Dr. {dr_last} on {date_short}. "
        "Enoxaparin 40 mg SC daily x 28 days. PT: WBAT. Discharged to {hospital2} for rehab. "
        "Discussed with {rel} {rel_name} ({phone}). Dictated by {dr2_full}, MD. License {lic}.",
        "Transfer summary. Name: {pt_full}. Medicare/health plan ID: {plan}. DOB: {dob}. Age {age}. "
        "Transferred from {hospital} on {date_full} to {hospital2}. Diagnoses: COPD exacerbation, type 2 diabetes "
        "(A1c 8.1), CKD stage 3. Meds: insulin glargine 20 units qhs, albuterol neb q4h prn, prednisone {mg} mg daily. "
        "Contact: {rel} {rel_full}, {phone2}, {email}. Sending MD {dr_full}, contact {phone}.",
        "Discharge note. {pt_title} ({age} {sex}) discharged home {date_short} with {rel} {rel_name}. "
        "Dx: UTI, resolved. Cefpodoxime 200 mg PO BID x 5 days. Follow up urology with Dr. {dr_full} at "
        "{hospital} in 2 weeks; clinic phone {phone}. Pt lives at {street}, {city} {zip}. "
        "Home health referral faxed to {fax} on {date}. Prescriber DEA {lic}. -- {dr2_full}, MD",
    ]

    #: written after the recognizers were frozen and never used to change them: a check on over-fitting
    _HELD_OUT = [
        ("nursing", "Late entry for {date_short}. Received report from {dr2_full} at change of shift. {pt_first} "
                    "{pt_last} slept most of the night; granddaughter {rel_full} stayed over and left her cell "
                    "{phone} with the desk. Morphine 2 mg IV x1 for pain 7/10 with good effect. "
                    "Notified {dr_init} of low urine output (20 mL/h). Plan per team."),
        ("nursing", "Home visit {date}. Patient {pt_title} seen at home, {street}, {city}. {age} {sex}, lives alone, "
                    "neighbor {rel_name} checks in daily. Med rec done: warfarin 5 mg, INR 2.4. Next visit {date_short}. "
                    "Case manager {dr2_full} (office {phone}, fax {fax})."),
        ("radiology", "CLINICAL HISTORY: {age} {sex}, shortness of breath. Study: CTA chest, performed {date_full} "
                      "at {hospital}. Outside images from {hospital2} dated {date} reviewed. Pt ID {mrn}. "
                      "Findings: no pulmonary embolism; 6 mm RUL nodule. Recommend follow-up CT in 12 months per "
                      "Fleischner. Communicated to {dr_full} on {date_short}. Attending radiologist: {dr2_full}."),
        ("radiology", "XR KNEE 3V LEFT / order {acc} / MRN {mrn} / {pt_lastfirst} / DOB {dob}. Mild medial "
                      "compartment narrowing. No fracture. Signed {dr2_full}, {date_full}."),
        ("discharge", "Hospital course summary prepared for {pt_full}, age {age}, by {dr_full}. Presented {date} with "
                      "sepsis from a urinary source, E. coli on culture, treated with ceftriaxone 1 g IV daily. Returns "
                      "to {street}, {city}, {state} {zip}. Sister {rel_full} ({email}) is health care proxy. Account "
                      "{acct}. Contact clinic {phone} with questions."),
        ("discharge", "Follow-up letter. Dear {dr2_full}: I saw your patient {pt_full} (MRN {mrn}) on {date_full} "
                      "for atrial fibrillation. Apixaban 5 mg BID continued. Please call me at {phone}. "
                      "Sincerely, {dr_full}, MD, {hospital}."),
    ]

    #: written after every recognizer, with their own names; scored once
    _BLIND = [
        ("nursing", "Family meeting held at {time}. Present: pt's {rel} {rel_full}, SW, and {dr2_full}. {pt_first} "
                    "prefers to go by her middle name. Code status changed to DNR/DNI per {pt_first} and {rel_name}. "
                    "Chaplain visit requested. Callback number for family {phone}."),
        ("nursing", "Telemetry event {date_short} at {time}: 6 beat run of VT, asymptomatic. {pt_full} resting, "
                    "lytes sent. Covering provider {dr_full} notified; Mg 2 g IV ordered. Bed {mrn} (MRN) on 5 North."),
        ("radiology", "Addendum: prior outside chest CT from {hospital} ({date_full}) has become available and was "
                      "compared. The 8 mm nodule is stable. This addendum was discussed with {dr_full} by phone. "
                      "{dr2_full} / {date_short}. Exam {acc}, {pt_lastfirst}."),
        ("radiology", "Mammogram screening bilateral. {pt_full}, DOB {dob}, MRN {mrn}. BI-RADS 1, negative. "
                      "Patient notified by letter mailed to {street}, {city}, {state} {zip}. Reader {dr2_full}."),
        ("discharge", "{pt_full} is being discharged to the care of her {rel}, {rel_full}, who lives at {street}, "
                      "{city}. Home O2 2 L via nasal cannula. Followup with {dr_full} in pulmonary clinic {date_short}. "
                      "Questions: {email} or {phone}."),
        ("discharge", "Med reconciliation completed {date} by {dr2_full}, PharmD, for {pt_full} ({age} {sex}). "
                      "Stopped: glipizide. Started: empagliflozin 10 mg daily. Insurance: plan ID {plan}."),
    ]

    #: the second blind set: written after every recognizer, with its own names; scored once
    _BLIND2 = [
        ("nursing", "Pt up to chair x2 today. Spouse at bedside most of the shift; {rel_name} asked about PT. "
                    "{pt_title} reports nausea improved after ondansetron. Dressing to L forearm CDI. "
                    "Report called to oncoming RN {dr2_full} at {time}."),
        ("nursing", "PRN given: oxycodone 5 mg PO at {time} for pain 6/10, reassessed at 1 hr 3/10. "
                    "{pt_full} tolerating regular diet. Daughter-in-law {rel_full} will pick pt up tomorrow; "
                    "her number is {phone}. Reviewed plan with {dr_init}."),
        ("radiology", "Comparison: {date_full} ({hospital}). Technique: PA and lateral. {pt_lastfirst}, MRN {mrn}. "
                      "Impression: interval resolution of left basilar opacity. I personally reviewed the images. "
                      "{dr2_full}, MD, Department of Radiology, {hospital2}. Transcribed {date_short}."),
        ("radiology", "Preliminary report by resident {dr_full} on {date_short}, final by {dr2_full}. "
                      "History: {age} {sex}, trauma. Exam: CT C-spine. No fracture or malalignment. "
                      "Results conveyed to ED attending at {time}. Accession number {acc}."),
        ("discharge", "Patient {pt_full} was admitted on {date} and went home on {date2}. She will stay with "
                      "her {rel} in {city} for two weeks (address on file: {street}, {city}, {state} {zip}). "
                      "PCP {dr_full} to see her within 7 days. Contact: {phone}."),
        ("discharge", "Summary faxed to {fax}, attn {dr_full}. {pt_first} {pt_last} is a {age} {sex} discharged "
                      "on apixaban 5 mg twice daily. MRN {mrn}. Billing account {acct}. Please call {phone2} "
                      "with results of outpatient labs."),
    ]

    #: the third blind set: written after the census lexicon and the place gazetteer, with its own names and
    #: cities, three templates per style; scored once
    _BLIND3 = [
        ("nursing", "0700-1900: {pt_title} slept poorly, c/o back pain 5/10, tylenol 650 mg PO given. Visitors: {rel} "
                    "({rel_full}) and a friend from {city}. Handoff to {dr2_full}, RN. Bed alarm on."),
        ("nursing", "Fall risk reassessed {date_short}. {pt_first} ambulated 50 ft with walker and standby assist. "
                    "{rel_name} called at {time} asking for an update, number on file {phone}. Covering MD {dr_last} "
                    "aware of BP 168/92."),
        ("nursing", "Wound care: sacral stage 2 dressing changed per {dr_init} orders. {pt_full} (MRN {mrn}) tolerated "
                    "well. Daughter {rel_name} stated pt lived alone in {city} until last month. Next change due {date}."),
        ("radiology", "EXAM: CT head w/o contrast. DATE: {date_full}. PATIENT: {pt_lastfirst}. ACC: {acc}. HISTORY: "
                      "{age} {sex}, fall. FINDINGS: No hemorrhage. Chronic small vessel change. Signed: {dr_full}, MD."),
        ("radiology", "Ultrasound RUQ for {pt_full}, referred by {dr2_full} from {hospital}. Gallbladder with sludge, "
                      "no wall thickening. CBD 4 mm. Images reviewed with {dr_init} on {date_short}."),
        ("radiology", "CHEST PORTABLE {date_short} {time}. Compared with {date}. ETT 4 cm above carina. Critical result "
                      "called to {dr_full} who read back the finding. Reading radiologist: {dr2_last}. Ordering "
                      "location {hospital}."),
        ("discharge", "Discharge summary for {pt_full}, {age} {sex}, admitted {date} for CHF exacerbation, diuresed "
                      "with IV furosemide 40 mg BID. Discharged {date2} to home in {city} with VNA. Follow up: "
                      "{dr_full} ({phone}). Insurance {plan}."),
        ("discharge", "Transfer summary: {pt_title} transferred from {hospital} on {date_full}; family ({rel} "
                      "{rel_full}) drove up from {city}, {state}. Code status full. Accepting physician {dr2_full}. "
                      "SSN {ssn} on face sheet."),
        ("discharge", "Patient instructions: {pt_first}, call {phone} or email {email} with questions. Your next visit "
                      "with {dr_init} is {date_short}. Your son {rel_name} may pick up prescriptions at the pharmacy "
                      "on {street}, {city}."),
    ]

    #: the fourth blind set: written after the third was scored and the rules it showed were added, with its own
    #: names, cities and hospitals, four templates per style; scored once
    _BLIND4 = [
        ("nursing", "S: pt states she feels better today. O: VSS, afebrile. A/P: {pt_first} {pt_last} progressing; "
                    "PT/OT to see. {rel} {rel_name} visiting from {city} this weekend. Discussed w/ {dr_init}."),
        ("nursing", "{time} - Called by lab with critical K 6.1. Notified {dr_full} (on call), orders for kayexalate. "
                    "Pt {pt_title} asymptomatic. Family: {rel_full} ({rel}) at {phone}."),
        ("nursing", "HANDOFF SBAR. S: {pt_full}, bed 12, {age} {sex}. B: admitted {date} with sepsis. A: improving. "
                    "R: cont abx. Accepting RN: {dr2_full}. Pt's {rel} is {rel_full}; lives in {city}."),
        ("nursing", "Pt refused AM labs. Educated by this RN. {pt_first} would like {rel_name} present for any "
                    "procedures. Chaplain {dr_last} to visit. Callback {phone2}."),
        ("radiology", "MRI brain w/wo. Clinical: {age} {sex} with headache. Compared to outside study from {hospital} "
                      "dated {date_full}. No acute infarct. Dictated: {dr_full} {date_short} {time}. "
                      "Transcriptionist: {initials}."),
        ("radiology", "PROCEDURE: CT-guided lung biopsy. Operator: {dr_full}. Assistant: {dr2_full}. Consent obtained "
                      "from pt {pt_full} and {rel} {rel_full}. Specimens to pathology. Acc# {acc}. MRN {mrn}."),
        ("radiology", "Mammo dx right. {pt_lastfirst} DOB {dob}. Callback from screening {date}. BI-RADS 4. Biopsy "
                      "scheduled {date_short} with {dr_init}. Pt prefers contact by email {email}."),
        ("radiology", "Results communicated by telephone to Dr. {dr_last}'s office at {time} on {date_short}; spoke "
                      "with nurse {dr2_full}. Reader: {dr_full}, {hospital}."),
        ("discharge", "DISCHARGE INSTRUCTIONS. Name: {pt_full}. Home address: {street}, {city}, {state} {zip}. Home "
                      "health: Visiting Nurse of {city}. Call {phone} for fever > 101.5. Follow-up {dr_full} "
                      "{date_short}."),
        ("discharge", "{pt_first} is a {age} {sex} from {city} with hx of COPD (FEV1 45%) who presented to {hospital} "
                      "ED on {date}. Son {rel_name} {pt_last} is HCP. Outpatient pulmonologist {dr_full}. Acct {acct}."),
        ("discharge", "Hospital course: uneventful. Dispo: SNF ({hospital}), {city}. Accepting: {dr2_full}. Sent with "
                      "MAR and code status DNR. Pt's husband, {rel_full}, agreed. Discharging MD {dr_full}, pager "
                      "{phone2}."),
        ("discharge", "Letter: To whom it may concern, {pt_full} (DOB {dob}) was hospitalized from {date} to {date2} "
                      "and may return to work on {date_short}. {dr_full}, MD. {hospital}, {city}, {state}."),
    ]

    #: the fifth blind set: written after issue 6's vocabulary joined the allow-list, with its own names, cities
    #: and hospitals, four templates per style; scored once
    _BLIND5 = [
        ("nursing", "0300 check: {pt_first} restless, pulling at lines. Redirected. Sitter requested. {rel_full} "
                    "({rel}) phoned for update, prefers texts to {phone}. Covering: {dr2_full}."),
        ("nursing", "WOUND CARE: sacral stage 2 dressed. Pt {pt_lastfirst}, {age} {sex}, DOB {dob}. Supplies ordered. "
                    "Wound RN {dr_full} to reassess {date_short}."),
        ("nursing", "Pt and {rel} {rel_name} taught insulin pen technique; return demonstration good. {pt_first} lives "
                    "alone in {city}, {rel_name} checks in daily. Outpatient diabetes educator at {hospital}."),
        ("nursing", "Belongings list signed by {pt_full} and witnessed by {dr2_full}. Valuables sent home with "
                    "{rel_full}. MRN {mrn}."),
        ("radiology", "CT ABDOMEN/PELVIS WITH CONTRAST. HISTORY: {age} {sex}, RLQ pain. Acc {acc}. Images reviewed with "
                      "Dr. {dr_last} at {time}. Outside films from {hospital} uploaded {date}."),
        ("radiology", "Addendum {date_short}: prior exam from {city} now available; findings unchanged. Addended by "
                      "{dr_full}. Patient: {pt_full}, MRN {mrn}."),
        ("radiology", "US carotid. Ordering: {dr_init}. Pt {pt_title} declined contrast. Report faxed to {fax} and "
                      "copied to {dr2_full} at {hospital2}."),
        ("radiology", "Portable chest for line placement. {pt_full}, room 4. Tech {initials}. Critical result called to "
                      "{dr2_full} who read back. Device serial {serial}."),
        ("discharge", "Dear {rel_name}, your father {pt_full} was discharged today ({date}) to {hospital}. Medications "
                      "changed: see list. Questions: {phone} or {email}."),
        ("discharge", "DISPOSITION: Home with VNA from {city}. Follow up with {dr_full} in 2 weeks and with cardiology "
                      "({dr2_full}). Insurance {plan}. Address on file {street}, {city}, {state} {zip}."),
        ("discharge", "{pt_first} {pt_last} is a {age} {sex} who was transferred from {hospital} on {date_full} for "
                      "higher level of care; seen by {dr_init}. Discharged {date2}. SSN on file {ssn}."),
        ("discharge", "Pt portal: {url}. {pt_title} may resume driving after {date_short}. Emergency contact: "
                      "{rel_full}, {rel}, {phone2}."),
    ]

    #: the sixth blind set: written after the name-likeness model and the UPPER CASE rules, with its own names,
    #: cities and hospitals, four templates per style; scored once
    _BLIND6 = [
        ("nursing", "Shift summary {time}: {pt_first} slept poorly, asked for her {rel} several times. Called "
                    "{rel_name} at {phone} - no answer, left voicemail. Wound vac intact. Endorsed to {dr2_full}, RN."),
        ("nursing", "PT/OT: {pt_title} ambulated 150 ft with rolling walker, min assist. Goals reviewed with {pt_first} "
                    "and {rel_full}. Plan d/c to home in {city} when cleared by {dr_full}. Next session {date_short}."),
        ("nursing", "Fall precautions. {age} {sex}, bed alarm on. Per {rel_name}, baseline oriented x3 at home on "
                    "{street}. Pharmacy at {hospital} called re: heparin drip; spoke w/ {dr2_last}."),
        ("nursing", "Admission note {date}: {pt_lastfirst} arrived via stretcher from {hospital}. MRN {mrn}, account "
                    "{acct}. Belongings with {rel}. Primary RN {dr2_full}; charge {initials}."),
        ("radiology", "EXAM: MRI brain w/wo. DATE OF SERVICE: {date_full}. PATIENT: {pt_full}. DOB: {dob}. ACCESSION: "
                      "{acc}. COMPARISON: {date2}, outside study from {hospital}. FINDINGS: no acute infarct. Reading "
                      "radiologist: {dr_full}."),
        ("radiology", "Findings were discussed by telephone with {dr2_full} on {date_short} at {time}, who acknowledged "
                      "receipt. Prior imaging at {hospital2} ({city}) requested. Ref: {dr_init}."),
        ("radiology", "Chest CT PE protocol for {pt_first} {pt_last}, {age} {sex}. Study flagged urgent by ED attending "
                      "{dr_last}. Result relayed to covering resident {dr2_full}, pager {phone2}. Device ID {serial}."),
        ("radiology", "Mammo callback: {pt_title} ({mrn}) returns {date_short} for spot compression. Letter mailed to "
                      "{street}, {city}, {state} {zip}. Questions to breast center at {phone}."),
        ("discharge", "Summary prepared for {dr_full} (PCP) and {dr2_full} (nephrology). {pt_full} was admitted {date} "
                      "with AKI; creatinine peaked 3.1. Discharged {date2} to {rel}'s home in {city}."),
        ("discharge", "Pt instructions: {pt_first}, take your medicines as listed. Your next appointment is {date_short} "
                      "with {dr_init}. If you have chest pain call 911. Your nurse line: {phone}. Portal: {url}."),
        ("discharge", "Home health referral faxed to {fax}: {pt_full}, {age} {sex}, {street}, {city}. Insurance {plan}. "
                      "Caregiver {rel_full} ({rel}), cell {phone2}, email {email}."),
        ("discharge", "Transfer summary: {pt_lastfirst} leaving {hospital} for {hospital2} on {date_full}; accepting "
                      "physician {dr2_full}; sending {dr_full}. License of sending MD {lic}. SSN {ssn}."),
    ]

    #: the seventh blind set: written after the rules the sixth set showed, with its own names, cities and
    #: hospitals, four templates per style; scored once
    _BLIND7 = [
        ("nursing", "Pt resting comfortably. {pt_first} states pain is better since the 0600 dose. Visitor {rel_name} "
                    "stayed overnight; consent to share info with {rel_name} on file. Contact {phone}. Ask {dr2_last} "
                    "to renew PRN orders."),
        ("nursing", "NEURO CHECKS Q2H. {pt_title} AAOX3, MAE. {rel} AT BEDSIDE ({rel_full}) - UPDATED BY PHONE BY "
                    "{dr_full} AT {time}. TRANSFER TO {hospital} PENDING BED, REF #{acct}."),
        ("nursing", "Skin assessment with {dr2_full}: heels intact. {pt_first}'s {rel}, {rel_name}, brought in "
                    "slippers from home ({city}). Next assessment {date_short}. MRN {mrn}."),
        ("nursing", "Telemetry: NSR 70s. Pt {pt_full} up to chair x2. Discussed plan of care w/ {rel_name} and "
                    "{pt_first}; both agree. Report to oncoming {dr2_full} at {time}."),
        ("radiology", "CLINICAL INFORMATION: {age} {sex} with cough. ORDERING PROVIDER: {dr_init}. EXAM DATE: {date_full}. "
                      "PATIENT NAME: {pt_lastfirst}. MEDICAL RECORD #: {mrn}. ACCESSION #: {acc}. IMPRESSION: no acute "
                      "process. Electronically signed: {dr_full}, {date2}."),
        ("radiology", "Comparison made to outside CT from {hospital} dated {date}. Dr. {dr2_last} was paged with the "
                      "preliminary findings; {dr2_last} requested a formal read by {date_short}. Pt: {pt_full}."),
        ("radiology", "Screening low-dose CT, {pt_first} {pt_last} ({age} {sex}, 40 pack-years). Lung-RADS 2. Results "
                      "letter to {street}, {city}, {state} {zip}; copy to PCP {dr_full} (fax {fax})."),
        ("radiology", "IR consult: {pt_title}, MRN {mrn}, referred by {dr_full} at {hospital2} for port placement "
                      "on {date_short}. Consent obtained from {rel} {rel_full}. Serial of port {serial}."),
        ("discharge", "Discharge summary for {pt_full}, DOB {dob}. Admitted {date} to {dr_full}'s service. Brief "
                      "course: cellulitis treated with cefazolin. To follow up in clinic with {dr2_last} on {date_short}."),
        ("discharge", "{pt_first} was seen today with {rel} {rel_name}. Home: {street}, {city}. Insurance {plan}. "
                      "Return precautions given. Email summary to {email}. SSN {ssn}."),
        ("discharge", "DISCHARGE CONDITION: STABLE. {pt_lastfirst} TO GO HOME WITH {rel} {rel_name} TODAY, {date}. "
                      "HOME O2 VIA {hospital}. PCP {dr_full}, PH {phone}. {age} {sex}."),
        ("discharge", "Thank you for allowing us to participate in the care of {pt_title}. Please call {dr_full} at "
                      "{phone2} with questions. cc: {dr2_full}, {hospital2}. Portal {url}. License {lic}."),
    ]

    #: the eighth blind set: written after the rules the seventh set showed, with its own names, cities and
    #: hospitals, four templates per style; scored once
    _BLIND8 = [
        ("nursing", "Received pt from PACU at {time}. {pt_first} drowsy but arousable. {rel} {rel_name} in waiting "
                    "room, updated. Incentive spirometer teaching done. Report received from {dr2_full}."),
        ("nursing", "SOCIAL WORK NOTE: MET WITH {pt_title} AND {rel_name} ({rel}). LIVES IN {city}, {state}. HOME "
                    "PHONE {phone}. NEEDS RIDE TO DIALYSIS AT {hospital} MWF. SW {dr2_full} FOLLOWING."),
        ("nursing", "Restraint check: bilateral soft wrist restraints, CMS intact. Order renewed by {dr_init} at "
                    "{time}. Pt {pt_full} continues to pull at NG tube. Family ({rel_full}) aware."),
        ("nursing", "Pt ambulated in hall with {rel}. Tolerated well. {rel_name} asks that {pt_first}'s pastor be "
                    "called; left message at {phone2}. Dressing change due {date_short}."),
        ("radiology", "US RENAL. {pt_lastfirst} ({mrn}). HX: AKI. PRIOR: {date} at {hospital}. FINDINGS: no "
                      "hydronephrosis. Dictated by {dr_full}; transcribed {date2}; read {date_short}."),
        ("radiology", "Critical finding (new PE) telephoned to {dr2_full} by {dr_init} at {time} on {date_full}; read "
                      "back confirmed. Patient location: ED bay 7, {hospital}. Accession {acc}."),
        ("radiology", "Fluoroscopy time 2.1 min. Procedure performed by {dr_full} with fellow {dr2_full}. Patient "
                      "{pt_first} {pt_last}, DOB {dob}, tolerated well. Implant lot {serial}."),
        ("radiology", "Outside CT from {city} reviewed at the request of {dr_last}. Original images on CD brought by "
                      "{rel}. Pt: {pt_title}; {age} {sex}. Contact {email} for the final report."),
        ("discharge", "Mr./Ms. {pt_last} is a {age} {sex} admitted {date} with sepsis from a urinary source. Seen in "
                      "consultation by {dr2_full} (ID). Discharged home in {city} {date2}; {rel} {rel_full} to assist."),
        ("discharge", "DISCHARGE MEDS REVIEWED WITH {pt_first} AND {rel_name}. PCP: {dr_full}, {hospital2}, "
                      "PHONE {phone}, FAX {fax}. MEDICARE ID {plan}."),
        ("discharge", "Follow-up: {dr2_last} clinic in 1 week ({date_short}); labs at {hospital} lab. Work note for "
                      "employer given to {pt_full}. SSN on file {ssn}. Acct {acct}."),
        ("discharge", "Addendum: spoke with {pt_first}'s {rel}, {rel_full}, who will bring {pt_title} home from "
                      "{hospital}. Patient portal {url}; license of attending {lic}."),
    ]

    #: the ninth blind set: written after the context tagger, with its own names, cities and hospitals, four
    #: templates per style; never trained on, scored once
    _BLIND9 = [
        ("nursing", "Overnight: {pt_first} restless 0200-0400, reoriented x3. Sitter requested. {rel} {rel_name} "
                    "phoned twice asking for updates; general info only. Handoff given to {dr2_full} at {time}."),
        ("nursing", "FALL RISK REASSESSED. {pt_title} UP WITH ASSIST OF 1. {rel_full} ({rel}) PREFERS CALLS AFTER 5 PM "
                    "AT {phone}. CHAPLAIN {dr2_last} VISITED; {pt_first} APPRECIATIVE."),
        ("nursing", "Blood transfusion: 1 unit PRBC started {time}, double-checked at bedside with {dr2_full}. Consent "
                    "signed {date_short}; witness {rel_name}. Pt {pt_full}, MRN {mrn}; no reaction."),
        ("nursing", "Afternoon quiet. {rel_name} sat with the patient until supper; emotional support given. "
                    "{pt_first} would like the {rel} to bring glasses from home in {city}. Spiritual care consult placed."),
        ("radiology", "COMPARISON: {hospital} STUDY OF {date}, READ BY {dr_last}. PATIENT {pt_lastfirst}, ACC {acc}. "
                      "NEW 6 MM NODULE RLL. FOLLOW-UP CT ADVISED; DISCUSSED WITH {dr2_full}, WHO WILL INFORM {pt_first}."),
        ("radiology", "Exam performed at the {city} imaging center on {date_full}. Technologist: {initials}. Images "
                      "sent to {hospital2} PACS from station {ip}. Pt {pt_title}, {age} {sex}."),
        ("radiology", "Addendum by {dr_full}: on second review the opacity described is atelectasis. Ordering clinician "
                      "{dr2_last} notified via secure chat {date_short}. Patient ID {mrn}."),
        ("radiology", "Pre-procedure timeout: patient {pt_full} confirmed name and DOB ({dob}) with nurse {dr2_full}. "
                      "Sedation by {dr_init}. Infusion pump serial {serial}."),
        ("discharge", "Goals of care conversation held with {pt_first}, {rel} {rel_full}, and palliative care "
                      "({dr2_full}). Decision: DNR/DNI. HCP document on file; HCP contact {phone}."),
        ("discharge", "PATIENT WILL STAY WITH {rel} IN {city} FOR TWO WEEKS. ADDRESS THERE: {street}, {city}, {state} "
                      "{zip}. HOME PT ARRANGED THROUGH {hospital}. PCP {dr_last} TO SEE {date_short}."),
        ("discharge", "Pt {pt_last}, {pt_first} ({age} {sex}) leaves AMA {date} after discussion with {dr_full}; risks "
                      "explained and understood. Given {hospital} clinic number {phone}. Insurance ID {plan}."),
        ("discharge", "Prescriptions e-sent; questions to {dr2_full} at {email}. Work note for {pt_title}. Next INR "
                      "check at {dr_last}'s office {date_short}. Account {acct}. Portal {url}."),
    ]

    #: the tenth blind set: written after the ninth was scored, before anything changed, with its own names,
    #: cities and hospitals, four templates per style; never trained on, scored once
    _BLIND10 = [
        ("nursing", "0400 rounds: {pt_first} found sitting at edge of bed, steady. Reminded to call for help. "
                    "{rel_name} ({rel}) left a voicemail at {time}; returned call to {phone}. Charge nurse {dr2_full} "
                    "informed."),
        ("nursing", "PT REFUSED EVENING INSULIN. EDUCATION PROVIDED BY {dr2_full}, CDE. {pt_first} STATES {rel_name} "
                    "GIVES SHOTS AT HOME. WILL READDRESS IN AM. MRN {mrn}."),
        ("nursing", "Interpreter ({rel_name}, phone line) used for consent discussion with {pt_title}. Procedure "
                    "explained by {dr_full}. Copy of consent mailed to {street}, {city} {zip}."),
        ("nursing", "Belongings list: glasses, phone, wallet. Valuables sent home with {rel} {rel_full} on "
                    "{date_short}. {pt_full} agrees. Security envelope #{acct}."),
        ("radiology", "HISTORY: {age} {sex}, TRAUMA. TECHNIQUE: CT C-SPINE. PRELIMINARY INTERPRETATION BY RESIDENT "
                      "{dr2_full} CONFIRMED BY ATTENDING {dr_last}. NO FRACTURE. NAME: {pt_lastfirst}. MRN {mrn}."),
        ("radiology", "Mammogram, screening. Patient {pt_first} {pt_last} (DOB {dob}) reports her {rel} had breast "
                      "cancer at 45. BI-RADS 1. Letter mailed {date_short}. Reader: {dr_init}."),
        ("radiology", "Results were conveyed to {dr2_last}'s nurse practitioner, {dr_full}, at {time} {date_full}; "
                      "she will contact the patient. Acc {acc}. Ordered at {hospital}."),
        ("radiology", "DEXA: T-score -2.6 at the femoral neck. Compared with {hospital2} exam of {date}. {pt_title}. "
                      "Scanner serial {serial}. Follow-up per {dr_last}."),
        ("discharge", "Hospital course complicated by delirium. {pt_first}'s {rel}, {rel_name}, stayed at the bedside "
                      "most nights. Discharged to {hospital2} on {date}. Summary sent to {dr_full}, fax {fax}."),
        ("discharge", "FOLLOW UP: {dr_full} (CARDIOLOGY) IN 2 WEEKS; {dr2_full} (PCP) IN 1 MONTH. TRANSPORT BY {rel} "
                      "{rel_name}. PATIENT PHONE {phone}. DOB {dob}."),
        ("discharge", "Patient {pt_full} asked that records be released only to {rel_full}. Release form signed "
                      "{date_short}. Email copy to {email}. MRN {mrn}; SSN {ssn}."),
        ("discharge", "Home oxygen vendor notified; concentrator to be delivered to {street}, {city}, {state} {zip} by "
                      "{date_short}. Contact {rel_name} at {phone2}. Ordering provider {dr_init}."),
    ]

    #: the eleventh blind set: written after the rules the tenth showed, with its own names, cities and
    #: hospitals, four templates per style; never trained on, scored once
    _BLIND11 = [
        ("nursing", "ED triage {time}: {pt_full}, {age} {sex}, arrived by private car with {rel} ({rel_name}). "
                    "Chief complaint SOB x2 days. Triage RN {dr2_full}. ESI 3. Belongings with {rel_name}."),
        ("nursing", "TELEPHONE ENCOUNTER {date_short}: {rel} {rel_full} CALLING ABOUT {pt_first}'S MEDS. CALLBACK "
                    "NUMBER {phone}. MESSAGE ROUTED TO {dr_last}'S POOL. TAKEN BY {dr2_full}."),
        ("nursing", "ICU event note: at {time} {pt_first} self-extubated; reintubated by {dr_full} without "
                    "difficulty. Family ({rel_full}, {rel}) notified by {dr2_last}. RT present."),
        ("nursing", "Home health visit. Met {pt_title} and caregiver {rel_name} at the home on {street} in {city}. "
                    "Meds set up in pillbox. Next visit {date_short}; agency line {phone2}."),
        ("radiology", "CTA CHEST. CLINICAL: {age} {sex}, DYSPNEA. WET READ BY {dr2_last} AT {time}; FINAL BY {dr_full}. "
                      "NO PE. PATIENT: {pt_lastfirst}, MRN {mrn}, ACC {acc}, STUDY DATE {date}."),
        ("radiology", "Bone scan at {hospital}: no osseous metastases. Tracer lot {serial}. {pt_full} tolerated the "
                      "exam; her {rel} {rel_name} drove her home. Referred by {dr_init}."),
        ("radiology", "Outside films from {hospital2} ({city}) uploaded by {dr2_full} on {date_full}; overread "
                      "requested by {dr_last}. Pt {pt_title}. Portal access {url}."),
        ("radiology", "Echo: EF 55%. Sonographer {initials}. Interpreting cardiologist {dr_full}. Pt {pt_first} "
                      "{pt_last}, DOB {dob}. Report routed to PCP {dr2_last}."),
        ("discharge", "Dear Dr. {dr2_last}, I saw your patient {pt_full} ({age} {sex}) in clinic on {date}. She "
                      "came with {rel_name}, her {rel}. Sincerely, {dr_full}, {hospital}."),
        ("discharge", "DISCHARGE TO {hospital2} (SNF) ON {date}. REPORT CALLED TO {dr2_full} AT {phone}. {pt_lastfirst}, "
                      "MRN {mrn}. {rel} {rel_name} AWARE AND AGREEABLE."),
        ("discharge", "Return to work note: {pt_full} may return {date_short} without restriction. Employer fax "
                      "{fax}. Signed {dr_full}. Acct {acct}. Questions: {email}."),
        ("discharge", "Advance directive on file; health care agent {rel_full} ({rel}), {phone}. {pt_first} prefers "
                      "to be called by a nickname. Lives in {city}, {state} {zip}. SSN {ssn}."),
    ]

    def generate(self, n: int = 330, template_set: str = "dev") -> list[AnnotatedNote]:
        """``n`` notes, styles in turn; every third note of a style is UPPER CASE. ``template_set``: "dev" (the
        shipped set), "held-out", "blind", "blind-2", ... "blind-11" (the blind sets have their own names too; the third
        its own cities, the fourth to eleventh their own cities and hospitals)."""
        if template_set not in _POOLS:
            raise ValueError(f"unknown template set {template_set!r}")
        r = random.Random(self.seed)
        pools = _POOLS[template_set]
        styles = [("nursing", self._NURSING), ("radiology", self._RADIOLOGY), ("discharge", self._DISCHARGE)]
        if template_set != "dev":
            pool = {"held-out": self._HELD_OUT, "blind": self._BLIND, "blind-2": self._BLIND2,
                    "blind-3": self._BLIND3, "blind-4": self._BLIND4, "blind-5": self._BLIND5,
                    "blind-6": self._BLIND6, "blind-7": self._BLIND7, "blind-8": self._BLIND8,
                    "blind-9": self._BLIND9, "blind-10": self._BLIND10,
                    "blind-11": self._BLIND11}[template_set]
            styles = [(st, [t for s2, t in pool if s2 == st]) for st, _ in styles]
        notes = []
        for i in range(n):
            style, templates = styles[i % 3]
            w = _Writer()
            w.fill(r.choice(templates), self._values(r, pools))
            text = "".join(w.parts)
            case = "upper" if (i // 3) % 3 == 2 else "mixed"
            if case == "upper":
                text = text.upper()
            prefix = "note" if template_set == "dev" else template_set
            notes.append(AnnotatedNote(f"{prefix}-{i:04d}", style, case, text, w.spans))
        return notes

    def write(self, path: Path, n: int = 330, template_set: str = "dev") -> list[AnnotatedNote]:
        notes = self.generate(n, template_set)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(note.to_json() + "\n" for note in notes), encoding="utf-8")
        return notes


def _ordinal(d: int) -> str:
    return "th" if 11 <= d % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(d % 10, "th")


def load_notes(path: Path) -> list[AnnotatedNote]:
    """Read an annotated note file (one JSON object per line: id, style, case, text, spans); the PhysioNet
    corpus's types are read as ours (:data:`PHYSIONET_TYPES`)."""
    notes = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read annotated notes ({exc.__class__.__name__}){missing_set_hint(path)}"
                         ) from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
            note = AnnotatedNote(str(o["id"]), str(o.get("style", "")), str(o.get("case", "")), str(o["text"]),
                                 [{"start": int(s["start"]), "end": int(s["end"]),
                                   "type": PHYSIONET_TYPES.get(str(s["type"]), str(s["type"]))}
                                  for s in o["spans"]])
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}: line {n}: expected {{id, text, spans: [{{start, end, type}}]}}") from None
        if any(not 0 <= int(str(s["start"])) < int(str(s["end"])) <= len(note.text) for s in note.spans):
            raise InputError(f"{path}: line {n}: a span lies outside the text")
        notes.append(note)
    return notes


def note_split(note_id: str) -> str:
    """The part of its set a note is in, by patient (the id's part before the first "-", "PATIENT-NOTE" in the
    PhysioNet corpus): "tune" when the first byte of sha256("clinical-mm" + patient) is even; else "check2" when
    its second byte is even, "tune2" when odd (together the "check" half)."""
    patient = note_id.split("-", 1)[0]
    digest = hashlib.sha256(("clinical-mm" + patient).encode()).digest()
    if digest[0] % 2 == 0:
        return "tune"
    return "check2" if digest[1] % 2 == 0 else "tune2"


def split_notes(notes: list[AnnotatedNote], split: str = "all") -> list[AnnotatedNote]:
    """The notes of one part (:data:`SPLITS`; "check": "tune2" and "check2"; "all": every note)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}")
    if split == "all":
        return notes
    parts = ("tune2", "check2") if split == "check" else (split,)
    return [n for n in notes if note_split(n.id) in parts]


def type_counts(notes: list[AnnotatedNote]) -> Counter[str]:
    return Counter(str(s["type"]) for n in notes for s in n.spans)
