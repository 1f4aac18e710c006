"""What clinical text says about a mention besides its assertion: a medication's dose, route, frequency,
duration and as-needed reason; a lab's or vital sign's value and unit; a size measurement; laterality.

Each parser reads plain text from a given offset and returns offsets into it, so that callers keep spans in
the input's coordinates. Frequencies and routes are normalised to short codes (``BID``, ``Q6H``, ``PO``,
``IV``); the FHIR output maps each frequency code onto an R4 Timing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ROUTES", "Sig", "Value", "Size", "laterality_near", "parse_sig", "parse_size",
           "parse_value", "find_sizes"]

_NUM_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "half": "0.5",
              "1/2": "0.5"}
_NUMBER = r"(?:\d+(?:,\d{3})*(?:\.\d+)?|\.\d+|one|two|three|four|five|six|half|1/2)"

# --- routes: code -> patterns (lower case)
ROUTES: dict[str, str] = {
    "PO": r"p\.?o\.?|by mouth|orally|oral|per os|po/ng",
    "IV": r"i\.?v\.?(?: push| piggyback| infusion| drip)?|ivpb|intravenous(?:ly)?|drip|gtt|infusion",
    "IM": r"i\.?m\.?|intramuscular(?:ly)?",
    "SC": r"s\.?c\.?|s\.?q\.?|subq|sub-q|subcut|subcutaneous(?:ly)?",
    "SL": r"s\.?l\.?|sublingual(?:ly)?|under the tongue",
    "PR": r"p\.?r\.?|per rectum|rectal(?:ly)?",
    "INH": r"inh|inhaled|inhalation|via nebulizer|nebulized|neb|nebs|nebulizer|mdi|inhaler|inhale",
    "TOP": r"topical(?:ly)?|to affected area",
    "TD": r"transdermal(?:ly)?|patch",
    "NAS": r"intranasal(?:ly)?|nasal(?:ly)?|per nostril|each nostril",
    "OPH": r"ophthalmic|both eyes|each eye|o\.?u\.?",
    "ENT": r"per (?:ng|og|peg|g-tube|tube)|via (?:ng|og|peg|g-tube|feeding) tube|via (?:ng|peg|g-tube)",
}
_ROUTE = re.compile("|".join(f"(?P<{k}>(?<![a-z0-9])(?:{v})(?![a-z0-9]))" for k, v in ROUTES.items()))

# --- frequencies: code -> patterns; FHIR Timing.repeat of each
_FREQUENCIES: list[tuple[str, str]] = [
    ("Q{n}-{m}H", r"(?:q|every)\s*(?P<n>\d+)\s*(?:-|to)\s*(?P<m>\d+)\s*(?:h|hr|hrs|hours?)\b"),
    ("Q{n}H", r"(?:q\.?\s*|every\s+)(?P<n>\d+)\s*(?:h|hr|hrs|hours?)\b\.?|q\s*(?P<n2>\d+)h\b"),
    ("QHS", r"q\.?\s?h\.?\s?s\.?|at bedtime|nightly|every night|at night|before bed|(?<![a-z])hs(?![a-z])|qpm|every evening"),
    ("QAM", r"q\.?\s?a\.?\s?m\.?|every morning|in the morning|each morning"),
    ("QOD", r"q\.?\s?o\.?\s?d\.?|every other day|alternate days"),
    ("QID", r"q\.?\s?i\.?\s?d\.?|four times (?:a|per) day|four times daily|4 times (?:a|per) day|4 times daily"),
    ("TID", r"t\.?\s?i\.?\s?d\.?|three times (?:a|per) day|three times daily|3 times (?:a|per) day|3 times daily"),
    ("BID", r"b\.?\s?i\.?\s?d\.?|twice (?:a|per) day|twice daily|two times (?:a|per) day|2 times (?:a|per) day|"
            r"2 times daily"),
    ("WEEKLY", r"weekly|once weekly|once (?:a|per) week|every week|q\s?week|q\s?wk|qweek"),
    ("MONTHLY", r"monthly|once monthly|once (?:a|per) month|every month"),
    ("DAILY", r"q\.?\s?d\.?|daily|once daily|once (?:a|per) day|every day|each day|per day|/day|a day|q\s?day|"
              r"qdaily"),
    ("ONCE", r"once|x\s?1|one time|stat|single dose|now"),
]
_FREQUENCY = [(code, re.compile(r"(?<![a-z0-9])(?:" + pattern + r")(?![a-z0-9])")) for code, pattern in _FREQUENCIES]

_DOSE_UNITS = (r"mg/kg/h(?:r|our)?|mcg/kg/min|mg/kg|units?/kg(?:/h(?:r|our)?)?|units?/h(?:r|our)?|mg/h(?:r|our)?|"
               r"mcg/h(?:r|our)?|ml/h(?:r|our)?|mg|mcg|µg|ug|micrograms?|milligrams?|grams?|gm|g|kg|meq|"
               r"mmol|units?|iu|u|ml|cc|l|puffs?|tabs?|tablets?|caps?|capsules?|drops?|gtts?|sprays?|"
               r"patch(?:es)?|inhalations?|vials?|ampules?|suppositor(?:y|ies)|%")
_DOSE = re.compile(rf"(?<![a-z0-9./])(?P<value>{_NUMBER}(?:\s*(?:-|to)\s*{_NUMBER})?)\s*(?P<unit>{_DOSE_UNITS})"
                   rf"(?![a-z0-9])")
_FORM = re.compile(r"\s*(?:er|xl|sr|dr|ec|odt)?\s*(tablets?|tabs?|capsules?|caps?)(?![a-z])")
_DURATION = re.compile(
    rf"(?<![a-z])(?:for|x|over|during)\s*(?:the\s+next\s+|a\s+total\s+of\s+|another\s+)?(?P<value>{_NUMBER}|a|an)\s*"
    r"(?:more\s+)?(?P<unit>days?|d|weeks?|wks?|w|months?|mos?|hours?|hrs?|doses?)(?![a-z0-9])")
_PRN = re.compile(r"(?<![a-z0-9])(?:p\.?r\.?n\.?|as needed|if needed|when needed)(?![a-z0-9])"
                  r"(?:\s*(?:for|for\s+the)?\s*(?P<reason>(?!for\b)[a-z][a-z /-]{1,30}?))?"
                  r"(?=$|[,.;)\n]|\s+(?:and|or|max|maximum|not to|up to|x|for \d|q\d|every)\b)")


@dataclass(frozen=True)
class Sig:
    """A medication's instructions as the text states them (absent parts are None)."""

    dose: str | None = None          # "25 mg", "2 puffs", "10 units"
    dose_value: str | None = None
    dose_unit: str | None = None
    route: str | None = None         # a key of ROUTES
    frequency: str | None = None     # DAILY, BID, Q6H, Q4-6H, QHS, ...
    duration: str | None = None      # "7 days"
    as_needed: bool = False
    as_needed_for: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {k: v for k, v in (("dose", self.dose), ("dose_value", self.dose_value),
                                                    ("dose_unit", self.dose_unit), ("route", self.route),
                                                    ("frequency", self.frequency), ("duration", self.duration))
                                  if v is not None}
        if self.as_needed:
            out["as_needed"] = True
            if self.as_needed_for:
                out["as_needed_for"] = self.as_needed_for
        return out


def _unit(unit: str) -> str:
    u = unit.lower()
    table = {"milligram": "mg", "milligrams": "mg", "microgram": "mcg", "micrograms": "mcg", "µg": "mcg",
             "ug": "mcg", "gram": "g", "grams": "g", "gm": "g", "unit": "units", "u": "units", "iu": "units",
             "cc": "mL", "ml": "mL", "l": "L", "meq": "mEq", "puff": "puffs", "tab": "tablets", "tabs": "tablets",
             "tablet": "tablets", "cap": "capsules", "caps": "capsules", "capsule": "capsules", "drop": "drops",
             "gtt": "drops", "gtts": "drops", "spray": "sprays", "patches": "patch", "inhalation": "inhalations",
             "vial": "vials", "ampule": "ampules", "suppositories": "suppository"}
    return table.get(u, u.replace("ml/", "mL/").replace("/hour", "/h").replace("/hr", "/h"))


def _number(value: str) -> str:
    parts = re.split(r"\s*(?:-|to)\s*", value.lower())
    return "-".join(_NUM_WORDS.get(p, p.replace(",", "")) for p in parts)


def parse_sig(text: str, start: int, end: int) -> Sig:
    """The medication instructions in ``text[start:end]`` (the words after a drug's name, up to the next drug
    or the end of its line or sentence)."""
    window = text[start:end].lower()
    dose = dose_value = dose_unit = route = frequency = duration = reason = None
    as_needed = False
    taken: list[tuple[int, int]] = []

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    for m in _DURATION.finditer(window):
        value = m.group("value")
        number = "1" if value in ("a", "an") else _number(value)
        unit = {"d": "day", "w": "week", "wk": "week", "wks": "week", "mo": "month", "mos": "month",
                "hr": "hour", "hrs": "hour"}.get(m.group("unit"), m.group("unit").rstrip("s"))
        duration = f"{number} {unit}{'' if number == '1' else 's'}"
        taken.append((m.start(), m.end()))
        break
    doses = [m for m in _DOSE.finditer(window) if free(m.start(), m.end())]
    if doses:
        m = doses[0]
        dose_value, dose_unit = _number(m.group("value")), _unit(m.group("unit"))
        # "500 mg tablet ... take 2 tablets": 500 mg is the strength, the dose is 2 tablets = 1000 mg
        form = _FORM.match(window, m.end())
        count = next((d for d in doses[1:] if _unit(d.group("unit")) == _unit(form.group(1))), None) if form else None
        if count is not None:
            n = _number(count.group("value"))
            try:
                dose_value = f"{float(n) * float(dose_value):g}"
            except ValueError:
                dose_value, dose_unit = n, _unit(count.group("unit"))
            m = count
        dose = f"{dose_value} {dose_unit}"
        taken.append((m.start(), m.end()))
    for m in _PRN.finditer(window):
        as_needed = True
        reason = (m.group("reason") or "").strip() or None
        taken.append((m.start(), m.end()))
        break
    # the first frequency stated ("125 mg IV once, then 40 mg IV q8h" is once); at one place the longest
    hits = [(h.start(), -(h.end() - h.start()), code, h) for code, pattern in _FREQUENCY
            for h in pattern.finditer(window) if free(h.start(), h.end())]
    if hits:
        _, _, code, m = min(hits, key=lambda h: (h[0], h[1]))
        if code.startswith("Q{n}"):
            n = m.group("n") or (m.groupdict().get("n2") or "")
            frequency = code.replace("{n}", n).replace("{m}", m.groupdict().get("m") or "")
        else:
            frequency = code
        taken.append((m.start(), m.end()))
    for m in _ROUTE.finditer(window):
        if free(m.start(), m.end()):
            route = m.lastgroup
            break
    return Sig(dose, dose_value, dose_unit, route, frequency, duration, as_needed, reason)


# --- lab and vital values
_UNITS = (r"%|mm\s?hg|bpm|beats?/min|breaths?/min|/min|°\s?[cf]|deg(?:rees)?\s?[cf]?|[cf](?![a-z])|mg/dl|g/dl|"
          r"mmol/l|meq/l|ng/ml|ng/dl|pg/ml|ng/l|u/l|iu/l|miu/l|uiu/ml|k/ul|k/mm3|x\s?10\^?[39]/l|10\^?[39]/l|"
          r"/ul|/mm3|kg/m2|kg|lbs?|cm|in|mg/l|sec|s")
_VALUE = re.compile(
    rf"\s*(?:(?:level|levels|count|value)\s+)?(?:(?:of|is|was|were|are|at|on admission|peaked at|now)\s+|[:=~]\s*|-\s+)?"
    rf"(?P<value>(?<![a-z0-9.])(?:[<>]=?\s*)?\d+(?:\.\d+)?(?:\s*[/-]\s*\d+(?:\.\d+)?)?)(?![0-9])"
    rf"(?:\s*(?P<unit>{_UNITS})(?![a-z0-9/]))?", re.I)
_QUALITATIVE = re.compile(
    r"\s*(?:(?:level|levels|count)\s+)?(?:(?:is|was|were|are|remains|remained)\s+|[:=]\s*)?"
    r"(?P<value>negative|positive|normal|elevated|high|low|undetectable|pending|within normal limits|wnl|"
    r"unremarkable|flat|stable|rising|downtrending|uptrending)(?![a-z])", re.I)


@dataclass(frozen=True)
class Value:
    value: str
    unit: str | None
    start: int
    end: int
    numeric: bool


def parse_value(text: str, start: int, limit: int) -> Value | None:
    """The value stated right after ``start`` (a number with its unit, a blood pressure, or a word such as
    "negative"), not past ``limit``."""
    m = _VALUE.match(text, start, limit)
    if m:
        unit = m.group("unit")
        if unit is not None:
            unit = re.sub(r"\s+", "", unit)
        return Value(re.sub(r"\s+", "", m.group("value")), unit, m.start("value"), m.end(), True)
    m = _QUALITATIVE.match(text, start, limit)
    if m:
        return Value(m.group("value").lower(), None, m.start("value"), m.end(), False)
    return None


# --- sizes
_SIZE = re.compile(
    r"(?<![a-z0-9.])(?P<dims>\d+(?:\.\d+)?(?:\s*(?:x|×|by)\s*\d+(?:\.\d+)?){0,2})\s*"
    r"(?P<unit>mm|cm|millimeters?|centimeters?|millimetres?|centimetres?)(?![a-z0-9])", re.I)


@dataclass(frozen=True)
class Size:
    dims: tuple[str, ...]
    unit: str
    start: int
    end: int


def parse_size(match: re.Match[str]) -> Size:
    dims = tuple(re.split(r"\s*(?:x|×|by)\s*", match.group("dims"), flags=re.I))
    unit = match.group("unit").lower()
    unit = "mm" if unit.startswith("milli") else "cm" if unit.startswith("centi") else unit
    return Size(dims, unit, match.start(), match.end())


def find_sizes(text: str, start: int, end: int) -> list[Size]:
    return [parse_size(m) for m in _SIZE.finditer(text, start, end)]


# --- laterality
_SIDE_WORDS = {"right": "right", "left": "left", "bilateral": "bilateral", "bilaterally": "bilateral",
               "both": "bilateral", "bibasilar": "bilateral", "bibasal": "bilateral", "rul": "right", "rml": "right",
               "rll": "right", "lul": "left", "lll": "left", "r": "right", "l": "left", "rt": "right",
               "lt": "left", "biapical": "bilateral"}
_SIDE = re.compile(r"(?<![A-Za-z0-9])(right|left|bilateral(?:ly)?|both|bibasilar|bibasal|biapical|RUL|RML|RLL|LUL|"
                   r"LLL|R|L|[Rr]t|[Ll]t)(?![A-Za-z0-9])", re.I)
_CLAUSE_BREAK = re.compile(r"[,;:.()\n]|\b(?:and|but|with|while|whereas)\b", re.I)


def laterality_near(text: str, start: int, end: int, lo: int, hi: int) -> str | None:
    """The side a mention [start, end) is on: a side word before it in its clause (within six words), or after
    it in its clause ("effusion on the left"); ``lo``-``hi`` bound the sentence."""
    own = _SIDE.fullmatch(text, start, end) or _SIDE.match(text, start, end)
    if own and own.group(1).upper() in ("RUL", "RML", "RLL", "LUL", "LLL"):  # the mention names its side
        return _SIDE_WORDS[own.group(1).lower()]
    breaks = [m.end() for m in _CLAUSE_BREAK.finditer(text, lo, start)]
    clause_start = max(breaks, default=lo)
    before = list(_SIDE.finditer(text, clause_start, start))
    before = [m for m in before if len(text[m.end():start].split()) <= 6]
    nxt = _CLAUSE_BREAK.search(text, end, hi)
    clause_end = nxt.start() if nxt else hi
    after = [m for m in _SIDE.finditer(text, end, clause_end) if len(text[end:m.start()].split()) <= 4]
    for m in [*reversed(before), *after]:
        word = m.group(1)
        if word in ("R", "L") or word.lower() not in ("r", "l"):  # a lone r/l only in upper case
            return _SIDE_WORDS[word.lower()]
    return None
