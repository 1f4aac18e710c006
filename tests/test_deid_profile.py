"""Table-driven tests: every row of PS3.15 Table E.1-1, under the basic profile and under each option it names."""

from __future__ import annotations

import pytest
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid import ConfidentialityProfile, DicomDeidentifier, Option
from clinical_mm.deid.confidentiality_profile import OPTION_COLUMNS, ProfileRow

KEY = PseudonymKey(b"\x01" * 32)
ROWS = ConfidentialityProfile.table()
_VALUES = {
    "UI": "1.2.826.0.1.3680043.10.1093.77", "DA": "20310405", "TM": "101500", "DT": "20310405101500",
    "PN": "CANARY^PERSON", "AS": "045Y", "IS": "7", "DS": "1.5", "CS": "CANARYCODE", "LO": "CANARY LO",
    "SH": "CANARY SH", "LT": "CANARY LT", "ST": "CANARY ST", "UT": "CANARY UT", "UC": "CANARY UC",
    "AE": "CANARYAE", "UR": "http://canary.invalid", "US": 7, "UL": 7, "SS": 7, "SL": 7, "FL": 1.5, "FD": 1.5,
    "OB": b"CANARY01", "OW": b"CANARY01", "OF": b"\x00\x00\x80\x3f", "OD": b"\x00" * 8, "OL": b"\x00" * 4,
    "OV": b"\x00" * 8, "UN": b"CANARY01", "AT": 0x00100010, "SV": 7, "UV": 7,
}


def _tag_of(row: ProfileRow) -> int:
    if row.group == -1:
        return 0x00091010  # a private element (the private creator is (0009,0010))
    group = row.group | (0x0000 if row.group_mask == 0xFFFF else 0x0002)
    return (group << 16) | (row.element if row.element is not None else 0x0010)


def _vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "LO"
    return vr.split(" or ")[0].replace("US or SS", "US") if vr else "LO"


def _dataset(tag: int) -> tuple[Dataset, str]:
    ds = Dataset()
    ds.PatientID = "CANARY-PID-1"
    vr = _vr(tag)
    if vr == "SQ":
        item = Dataset()
        item.PatientName = "CANARY^NESTED"
        item.CodeMeaning = "kept code meaning"
        ds.add_new(tag, "SQ", Sequence([item]))
    else:
        if tag >> 16 == 0x0009:
            ds.add_new(0x00090010, "LO", "CANARY CREATOR")
        ds.add_new(tag, vr, _VALUES.get(vr, "CANARY"))
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.10.1093.1"
    return ds, vr


#: free text planted where a clean (C) action applies to a text attribute: the name and date must go, the
#: clinical words stay
_CLEAN_TEXT = "Seen by Dr. Canaryson on 07/22/2031, portable film"
_CLEANABLE = {"LO", "SH", "LT", "ST", "UT", "UC"}


def _check_clean(tag: int, vr: str, before: object, out: Dataset) -> None:
    """C on anything but a date: text cleaned in place, names replaced, sequences cleaned, overlays verified
    or removed, addresses removed, numbers and codes kept."""
    if vr in ("AE", "UR") or (tag >> 16) & 0xFF00 == 0x6000 and tag & 0xFFFF == 0x3000 or (tag >> 16) % 2:
        assert tag not in out, "an AE title, URL, unverifiable overlay or unlisted private attribute must be removed"
        return
    assert tag in out, "a cleaned attribute must be present"
    after = out[tag].value
    if vr in _CLEANABLE:
        text = str(after)
        assert "Canaryson" not in text and "07/22/2031" not in text and text.startswith("Seen by"), text
    elif vr == "PN":
        assert str(after) != str(before) and "CANARY" not in str(after)
    elif vr == "SQ":
        assert all(item.get("PatientName", "") == "" and item.CodeMeaning == "kept code meaning" for item in after)
    else:
        assert after == before


def _check(action: str, tag: int, original: Dataset, out: Dataset, deid: DicomDeidentifier, opts: frozenset[str]) -> None:
    vr = original[tag].VR
    before = original[tag].value
    temporal = vr in ("DA", "DT", "TM")
    if action == "X" or (action == "C" and temporal and Option.RETAIN_LONG_MODIFIED_DATES.value not in opts):
        assert tag not in out, "attribute must be removed"
        return
    if action == "C" and not temporal:
        _check_clean(tag, vr, before, out)
        return
    assert tag in out, "attribute must be present"
    after = out[tag].value
    if tag in (0x00100020, 0x00080050):  # identifiers: keyed pseudonyms
        assert after != before
        return
    if action == "K":
        if vr == "SQ":
            assert len(after) == len(before)
        else:
            assert after == before
    elif action == "Z":
        assert (len(after) == 0) if vr == "SQ" else (after in ("", None, b""))
    elif action == "D":
        if vr == "SQ":
            assert all("PatientName" not in item or item.PatientName == "" for item in after)
        else:
            assert after != before
    elif action == "U":
        if vr == "SQ":
            assert all("PatientName" not in item or item.PatientName == "" for item in after)
        else:
            assert after == deid.pseudo.uid(str(before))
    elif action == "C":  # a date under the modified dates option: a keyed shift into the past
        if vr == "DA":
            assert after != before and len(after) == 8
    else:
        raise AssertionError(f"unexpected action {action}")


CASES = [pytest.param(row, None, id=f"{row.tag}-basic-{row.basic}") for row in ROWS]
CASES += [
    pytest.param(row, opt, id=f"{row.tag}-{opt}-{row.options[opt]}")
    for row in ROWS for opt in OPTION_COLUMNS if opt in row.options
]


@pytest.mark.parametrize(("row", "option"), CASES)
def test_when_attribute_in_table_then_action_applied(row: ProfileRow, option: str | None) -> None:
    opts = frozenset({option} if option else set())
    deid = DicomDeidentifier(KEY, opts)
    tag = _tag_of(row)
    original, vr = _dataset(tag)
    expected = deid.profile.resolve(row, tag)
    if expected == "C" and vr in _CLEANABLE:
        original[tag].value = _CLEAN_TEXT[:16] if vr == "SH" else _CLEAN_TEXT
    out, _counts = deid.deidentify(original)
    if option is not None:
        assert expected == row.options[option] or "/" in row.options[option]
    _check(expected, tag, original, out, deid, opts)
    assert out.PatientIdentityRemoved == "YES"


def test_table_has_all_rows_and_codes() -> None:
    assert len(ROWS) == 621
    codes = {r.basic for r in ROWS}
    assert codes == {"X", "D", "U", "Z", "X/D", "X/Z", "X/Z/D", "Z/D", "X/Z/U*"}
    assert {opt for r in ROWS for opt in r.options} == set(OPTION_COLUMNS)


@pytest.mark.parametrize(
    ("code", "tag", "expected"),
    [
        ("X/Z", 0x00080022, "X"),  # Acquisition Date: not Type 1/2 in CR/DX -> removed
        ("Z/D", 0x00100020, "Z"),  # Patient ID: Type 2 -> zero length (then a keyed pseudonym)
        ("Z/D", 0x00080023, "Z"),  # Content Date: Type 2C
        ("X/Z/D", 0x00080080, "X"),  # Institution Name: Type 3
        ("X/Z/U*", 0x00081140, "X"),  # Referenced Image Sequence: Type 3
    ],
)
def test_when_combined_code_then_resolved_by_iod_type(code: str, tag: int, expected: str) -> None:
    profile = ConfidentialityProfile()
    row = profile.row_for(tag)
    assert row is not None and row.basic == code
    assert profile.resolve(row, tag) == expected


def test_when_same_key_then_same_uid_mapping_and_other_key_differs() -> None:
    a, b = DicomDeidentifier(KEY), DicomDeidentifier(KEY)
    c = DicomDeidentifier(PseudonymKey(b"\x02" * 32))
    uid = "1.2.3.4.5"
    assert a.pseudo.uid(uid) == b.pseudo.uid(uid) != c.pseudo.uid(uid)
    assert len(a.pseudo.uid(uid)) <= 64 and a.pseudo.uid(uid).startswith("2.25.")


def test_when_unknown_public_tag_then_removed_and_standard_unlisted_kept() -> None:
    ds = Dataset()
    ds.add_new(0x00191001, "LO", "private")  # odd group: private
    ds.add_new(0x00080016, "UI", "1.2.840.10008.5.1.4.1.1.1")  # SOP Class UID: not listed, kept
    ds.add_new(0x00185101, "CS", "PA")  # View Position: not listed, kept
    ds.add_new(0x0011FFFE, "LO", "x")
    ds.StudyInstanceUID = "1.2.3"
    out, counts = DicomDeidentifier(KEY).deidentify(ds)
    assert 0x00191001 not in out and 0x0011FFFE not in out
    assert out.SOPClassUID == "1.2.840.10008.5.1.4.1.1.1" and out.ViewPosition == "PA"


# Attributes Table E.1-1 does not list: (keyword, VR, value, what the conservative default must do)
_UNLISTED = [
    ("Manufacturer", "LO", "Acme Imaging", "keep"),  # an acquisition descriptor on the safe list
    ("RescaleType", "LO", "US", "keep"),
    ("KVP", "DS", "110", "keep"),  # numbers cannot carry a name
    ("BodyPartExamined", "CS", "CHEST", "keep"),
    ("ExposureTime", "IS", "12", "keep"),
    ("CodeMeaning", "LO", "postero-anterior", "keep"),
    ("TransferSyntaxUID", "UI", "1.2.840.10008.1.2.1", "keep"),  # a well-known UID
    ("TransactionStatusComment", "LT", "QX pain after fall at home of Mr Canary", "remove"),  # free text
    ("InventoryPurpose", "LT", "QX call Mrs Canary", "remove"),
    ("ProcedureCodeSequence", "SQ", None, "recurse"),
    ("SecondaryReviewDate", "DA", "20240101", "date"),
    ("MultiFrameSourceSOPInstanceUID", "UI", "1.2.826.0.1.3680043.10.1093.5", "remap"),
]


@pytest.mark.parametrize(("keyword", "vr", "value", "expected"), _UNLISTED, ids=[u[0] for u in _UNLISTED])
@pytest.mark.parametrize("option", [None, Option.RETAIN_LONG_FULL_DATES, Option.RETAIN_LONG_MODIFIED_DATES])
def test_when_attribute_is_not_in_the_table_then_conservative_default(
    keyword: str, vr: str, value: str | None, expected: str, option: Option | None
) -> None:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    assert tag is not None and ConfidentialityProfile().action(tag) is None, "must be an unlisted attribute"
    ds = Dataset()
    ds.PatientID = "QXP1"
    ds.StudyInstanceUID = "1.2.3"
    if vr == "SQ":
        item = Dataset()
        item.CodeValue, item.CodeMeaning = "X1", "coded"
        item.PatientName = "QX^NESTED"  # listed (X) at any depth
        item.TransactionStatusComment = "QX nested free text"
        ds.add_new(tag, vr, Sequence([item]))
    else:
        ds.add_new(tag, vr, value)
    deid = DicomDeidentifier(KEY, [option] if option else [])
    out, _ = deid.deidentify(ds)
    if expected == "keep":
        assert out[tag].value == value
    elif expected == "remove":
        assert tag not in out
    elif expected == "recurse":
        item = out[tag].value[0]
        assert item.CodeValue == "X1" and item.get("PatientName", "") == "" and "TransactionStatusComment" not in item
    elif expected == "remap":
        assert out[tag].value == deid.pseudo.uid(str(value))
    elif option is Option.RETAIN_LONG_FULL_DATES:
        assert out[tag].value == value
    elif option is Option.RETAIN_LONG_MODIFIED_DATES:
        assert out[tag].value == deid.pseudo.shift_date(str(value), "QXP1")
    else:
        assert tag not in out


def test_when_options_conflict_then_refused() -> None:
    from clinical_mm.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        ConfidentialityProfile(frozenset({Option.RETAIN_LONG_FULL_DATES.value, Option.RETAIN_LONG_MODIFIED_DATES.value}))
    with pytest.raises(ConfigurationError):
        ConfidentialityProfile(frozenset({"notAnOption"}))
