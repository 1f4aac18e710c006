"""DICOM header de-identification with the PS3.15 Basic Application Level Confidentiality Profile.

Every attribute, at every sequence depth, is looked up in Table E.1-1 and handled by its action:
D (dummy), Z (zero length), X (remove), K (keep; sequences are recursed), C (clean), U (keyed UID
replacement). Private attributes are removed, except those on the safe-private list under the Retain
Safe Private Option. Attributes the table does not list get a conservative
default (:meth:`DicomDeidentifier._unlisted`): unknown public tags and free-text or name values are removed
(except a short list of acquisition descriptors), dates follow the temporal options, UIDs other than
well-known DICOM UIDs are remapped; numbers, coded strings and pixel data are kept. PatientID and
AccessionNumber get keyed pseudonyms (a consistent dummy value). "Clean" actions that need the text
de-identifier (descriptors, structured content, device and patient characteristics) remove the
attribute instead; the modified-dates option shifts dates by the patient's keyed offset.

Errors name the tag, never its value.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Iterable

from pydicom.datadict import dictionary_has_tag, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from clinical_mm.config import PseudonymKey
from clinical_mm.deid.confidentiality_profile import OPTION_CODES, ConfidentialityProfile, Option
from clinical_mm.deid.pixel_text import PixelTextCleaner
from clinical_mm.deid.pseudonymizer import Pseudonymizer
from clinical_mm.deid.safe_private import SafePrivateList
from clinical_mm.errors import DeidentificationError
from clinical_mm.types import _DEID_TOKEN, DeidentifiedStudy, DeidReceipt

__all__ = ["DicomDeidentifier"]

_log = logging.getLogger(__name__)

PROFILE_NAME = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"
_PATIENT_ID = 0x00100020
_ACCESSION = 0x00080050
_DATE_VRS = {"DA", "DT"}
_TEMPORAL_VRS = _DATE_VRS | {"TM"}
_TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "UR", "AE"}
#: Unlisted free-text attributes kept because they describe the acquisition or processing, never a person.
UNLISTED_SAFE_TEXT: frozenset[str] = frozenset({
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions", "RescaleType", "ProcessingFunction",
    "PostprocessingFunction", "PositionReferenceIndicator", "ConvolutionKernel", "FilterType",
    "CollimatorGridName", "PlateType", "ImagedNucleus", "ContrastBolusRoute", "LossyImageCompressionMethod",
    "PixelIntensityRelationship", "WindowCenterWidthExplanation", "CodingSchemeDesignator", "CodeValue",
    "CodeMeaning", "CodingSchemeVersion", "MappingResource", "ContextIdentifier",
})
_DUMMY_TEXT = {"PN": "ANONYMOUS", "LO": "ANONYMIZED", "SH": "ANONYMIZED", "LT": "ANONYMIZED",
               "ST": "ANONYMIZED", "UT": "ANONYMIZED", "CS": "ANONYMIZED", "AE": "ANONYMIZED",
               "UC": "ANONYMIZED", "DA": "19000101", "TM": "000000.00", "DT": "19000101000000",
               "AS": "000Y", "IS": "0", "DS": "0", "UR": ""}


class DicomDeidentifier:
    """De-identifies DICOM datasets (one instance) and studies (several instances).

    Parameters
    ----------
    key
        The pseudonymisation key.
    options
        Table E.1-1 option columns to apply (:class:`Option` values).
    safe_private
        Private attributes the Retain Safe Private Option keeps (none unless listed).
    pixels
        Burned-in text OCR and redaction, run on every image before its header is de-identified.
    remember
        Keep every pseudonym issued with its original for the re-identification vault
        (``self.pseudo.drain()``).
    """

    def __init__(self, key: PseudonymKey, options: Iterable[str | Option] = (), *, remember: bool = False,
                 safe_private: SafePrivateList | None = None, pixels: PixelTextCleaner | None = None) -> None:
        opts = frozenset(o.value if isinstance(o, Option) else str(o) for o in options)
        self.profile = ConfidentialityProfile(opts)
        self.safe_private = safe_private or SafePrivateList()
        self.pixels = pixels or PixelTextCleaner()
        self.pseudo = Pseudonymizer(key, remember=remember)
        self.key = key

    @property
    def method(self) -> str:
        """DeidentificationMethod (LO, 64 characters): the profile, keyed HMAC, and option codes."""
        codes = " ".join(OPTION_CODES[o][0] for o in sorted(self.profile.options))
        return f"PS3.15 Basic Profile, keyed HMAC (clinical-mm){'; ' + codes if codes else ''}"

    # ------------------------------------------------------------------ one dataset
    def deidentify(self, ds: Dataset, *, in_place: bool = False) -> tuple[Dataset, Counter[str]]:
        """Return a de-identified copy of ``ds`` (or ``ds`` itself, changed, with ``in_place``) and the count
        of each action applied."""
        counts: Counter[str] = Counter()
        patient = str(ds.get("PatientID", ""))
        out = ds if in_place else copy.deepcopy(ds)
        counts.update(self.pixels.clean(out))  # QuarantinedError when the pixels cannot be verified
        try:
            self._walk(out, counts, patient)
        except DeidentificationError:
            raise
        except Exception as exc:  # a malformed element: never pass the dataset on
            raise DeidentificationError(f"cannot de-identify dataset ({exc.__class__.__name__})") from None
        if hasattr(out, "file_meta") and "MediaStorageSOPInstanceUID" in out.file_meta:
            out.file_meta.MediaStorageSOPInstanceUID = UID(
                str(out.SOPInstanceUID) if "SOPInstanceUID" in out
                else self.pseudo.uid(str(out.file_meta.MediaStorageSOPInstanceUID)))
        self._mark(out)
        return out, counts

    def _walk(self, ds: Dataset, counts: Counter[str], patient: str) -> None:
        """Apply the profile to every element of ``ds``. Values are parsed only where an action needs them
        (removing or keeping an element does not), so most elements stay as read."""
        private_action = self.profile.resolve(self.profile.private_row, 0)
        safe = self.safe_private.kept_tags(ds) if private_action == "C" else set()
        for key in list(ds.keys()):  # a copy: we delete while walking
            tag = int(key)
            vr = ds.get_item(key).VR
            if vr is None or vr == "UN":  # implicit VR, or a VR the writer did not know: parse to learn it
                vr = ds[key].VR
            if (tag >> 16) % 2 == 1:
                if private_action == "K" or tag in safe:
                    self._recurse(ds, tag, vr, counts, patient)
                    counts["K:private" if tag in safe else "K"] += 1
                else:
                    del ds[tag]
                    counts["X"] += 1
                continue
            listed = self.profile.action(tag)
            if listed is None:
                self._unlisted(ds, tag, vr, counts, patient)
            else:
                self._apply(ds, tag, vr, listed, counts, patient)

    def _recurse(self, ds: Dataset, tag: int, vr: str, counts: Counter[str], patient: str) -> None:
        if vr == "SQ":
            for item in ds[tag].value or []:
                self._walk(item, counts, patient)

    def _unlisted(self, ds: Dataset, tag: int, vr: str, counts: Counter[str], patient: str) -> None:
        """The conservative default for attributes Table E.1-1 does not list.

        Unknown public tags are removed (they cannot be judged). Values that cannot carry a name or free text
        (numbers, coded strings, pixel data) are kept; sequences are recursed. Free-text and name VRs are
        removed unless the attribute is on a short list of acquisition and processing descriptors. Dates and
        times follow the temporal options (removed by default). UIDs that are not well-known DICOM UIDs
        (SOP classes, transfer syntaxes) are remapped with the keyed mapping.
        """
        if not dictionary_has_tag(BaseTag(tag)):
            del ds[tag]
            counts["X:unknown"] += 1
        elif vr == "SQ":
            self._recurse(ds, tag, vr, counts, patient)
        elif vr in _TEXT_VRS and keyword_for_tag(tag) not in UNLISTED_SAFE_TEXT:
            del ds[tag]
            counts["X:unlisted-text"] += 1
        elif vr in _TEMPORAL_VRS:
            if Option.RETAIN_LONG_FULL_DATES.value in self.profile.options:
                return
            self._apply(ds, tag, vr, "C", counts, patient)
        elif vr == "UI":
            elem = ds[tag]
            values = elem.value if isinstance(elem.value, (list, tuple, MultiValue)) else [elem.value]
            if elem.value and not all(UID(str(v)).keyword for v in values):  # well-known DICOM UIDs have a keyword
                elem.value = self._map_uids(elem.value)
                counts["U:unlisted"] += 1

    def _apply(self, ds: Dataset, tag: int, vr: str, action: str, counts: Counter[str], patient: str) -> None:
        if action == "X" or (action == "C" and not (
                Option.RETAIN_LONG_MODIFIED_DATES.value in self.profile.options and vr in _TEMPORAL_VRS)):
            del ds[tag]
            counts["X" if action == "X" else "C:removed"] += 1
            return
        if action == "K":
            self._recurse(ds, tag, vr, counts, patient)
            counts["K"] += 1
            return
        elem = ds[tag]
        if tag in (_PATIENT_ID, _ACCESSION) and action in ("Z", "D"):
            kind, length = ("patient", 16) if tag == _PATIENT_ID else ("accession", 16)
            elem.value = self.pseudo.identifier(kind, str(elem.value or ""), length) if elem.value else ""
            counts["D:pseudonym"] += 1
        elif action == "Z":
            elem.value = Sequence([]) if vr == "SQ" else ""
            counts["Z"] += 1
        elif action == "D":
            if vr == "SQ":
                self._recurse(ds, tag, vr, counts, patient)
            elif vr == "UI":
                elem.value = self._map_uids(elem.value)
            elif vr in _DUMMY_TEXT:
                elem.value = _DUMMY_TEXT[vr]
            else:  # binary or numeric VRs without a sensible dummy
                elem.value = b"" if vr in ("OB", "OW", "UN") else None
            counts["D"] += 1
        elif action == "U":
            if vr == "SQ":
                self._recurse(ds, tag, vr, counts, patient)
            else:
                elem.value = self._map_uids(elem.value)
            counts["U"] += 1
        elif action == "C":  # the modified-dates option: dates shift by the patient's keyed offset
            if vr in _DATE_VRS and elem.value:
                shifted = self.pseudo.shift_date(str(elem.value), patient)
                elem.value = shifted + (str(elem.value)[8:] if vr == "DT" else "")
            counts["C:date-shift"] += 1
        else:
            raise DeidentificationError(f"tag ({tag >> 16:04X},{tag & 0xFFFF:04X}): unknown action {action!r}")

    def _map_uids(self, value: object) -> object:
        if isinstance(value, (list, tuple, MultiValue)):
            return [self.pseudo.uid(str(v)) for v in value]
        return self.pseudo.uid(str(value)) if value else value

    def _mark(self, ds: Dataset) -> None:
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = self.method
        codes = []
        for key in ["basic", *sorted(self.profile.options)]:
            value, meaning = OPTION_CODES[key]
            item = Dataset()
            item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(codes)
        opts = self.profile.options
        ds.LongitudinalTemporalInformationModified = (
            "UNMODIFIED" if Option.RETAIN_LONG_FULL_DATES.value in opts
            else "MODIFIED" if Option.RETAIN_LONG_MODIFIED_DATES.value in opts else "REMOVED"
        )

    # ------------------------------------------------------------------ a study
    def deidentify_study(self, instances: list[Dataset]) -> DeidentifiedStudy:
        """De-identify all instances of one study and return the :class:`DeidentifiedStudy`."""
        if not instances:
            raise DeidentificationError("a study needs at least one instance")
        total: Counter[str] = Counter()
        out = []
        for ds in instances:
            new, counts = self.deidentify(ds)
            total.update(counts)
            out.append(new)
        study_uid = str(out[0].get("StudyInstanceUID", ""))
        if not study_uid:
            raise DeidentificationError("tag (0020,000D) StudyInstanceUID is missing")
        receipt = DeidReceipt(PROFILE_NAME, tuple(sorted(self.profile.options)), self.key.key_id, dict(total),
                              self.method)
        return DeidentifiedStudy(_DEID_TOKEN, study_uid, str(out[0].get("AccessionNumber", "")), out, receipt)
