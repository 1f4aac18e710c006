"""DICOM header de-identification with the PS3.15 Basic Application Level Confidentiality Profile.

Every attribute, at every sequence depth, is looked up in Table E.1-1 and handled by its action:
D (dummy), Z (zero length), X (remove), K (keep; sequences are recursed), C (clean), U (keyed UID
replacement). Private attributes are removed, except those on the safe-private list under the Retain
Safe Private Option. Attributes the table does not list get a conservative
default (:meth:`DicomDeidentifier._unlisted`): unknown public tags and free-text or name values are removed
(except a short list of acquisition descriptors), dates follow the temporal options, UIDs other than
well-known DICOM UIDs are remapped; numbers, coded strings and pixel data are kept. PatientID and
AccessionNumber get keyed pseudonyms (a consistent dummy value).

"Clean" (C) actions replace values with ones of similar meaning that carry no identity: free text
(descriptors, comments, text content items, annotation text) goes through the clinical text
de-identifier, keyed surrogates for the same patient and key as the notes; person names become keyed
surrogate names; dates shift by the patient's keyed offset under the modified-dates option (and are
removed otherwise); sequences are recursed with their free text cleaned rather than dropped; overlay
bitmaps are read by OCR, words are cleared and the overlay is kept only when verified (else removed);
numbers, codes and curve samples are kept.

Errors name the tag, never its value.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_has_tag, keyword_for_tag, repeater_has_tag
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import UID

from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import DeidentificationError, QuarantinedError
from clinical_mm.core.types import DEID_CONSTRUCTION_TOKEN, DeidentifiedStudy, DeidReceipt
from clinical_mm.deid.confidentiality_profile import OPTION_CODES, ConfidentialityProfile, Option
from clinical_mm.deid.pixel_text import PixelTextCleaner
from clinical_mm.deid.pseudonymizer import STUDY_ACCESSION, STUDY_PATIENT_NAME, Pseudonymizer
from clinical_mm.deid.safe_private import SafePrivateList
from clinical_mm.deid.text.site_terms import SiteTerms

__all__ = ["DicomDeidentifier"]

_log = logging.getLogger(__name__)

PROFILE_NAME = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"
_PATIENT_ID = 0x00100020
_ACCESSION = 0x00080050
_DATE_VRS = {"DA", "DT"}
_TEMPORAL_VRS = _DATE_VRS | {"TM"}
_TEXT_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "UC", "UR", "AE"}
#: free-text VRs the text de-identifier cleans, with their maximum length in characters
_CLEANABLE = {"LO": 64, "SH": 16, "LT": 10240, "ST": 1024, "UT": 2**32 - 2, "UC": 2**32 - 2}
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
        (``self.pseudo.drain()``), and the study's original accession number and patient name under its
        pseudonymous StudyInstanceUID (kinds ``study-accession``, ``study-patient-name``).
    allowed_terms
        Clinical terms the text de-identifier of the clean options never takes for PHI (its
        ``allowed_terms``: the composition layer passes the extraction vocabulary's words).
    recognizers
        The site's PHI recognizer file for that text de-identifier (``CLINICAL_MM_RECOGNIZERS``).
    site_terms, threshold
        The site's allow/deny terms (``CLINICAL_MM_DEID_TERMS``, read) and score threshold
        (``CLINICAL_MM_DEID_THRESHOLD``; None: the text de-identifier's default) for that text de-identifier.
    """

    def __init__(self, key: PseudonymKey, options: Iterable[str | Option] = (), *, remember: bool = False,
                 safe_private: SafePrivateList | None = None, pixels: PixelTextCleaner | None = None,
                 allowed_terms: Iterable[str] = (), recognizers: Path | None = None,
                 site_terms: SiteTerms | None = None, threshold: float | None = None) -> None:
        opts = frozenset(o.value if isinstance(o, Option) else str(o) for o in options)
        self.profile = ConfidentialityProfile(opts)
        self.safe_private = safe_private or SafePrivateList()
        self.pixels = pixels or PixelTextCleaner()
        self.pseudo = Pseudonymizer(key, remember=remember)
        self.key = key
        self.allowed_terms = frozenset(allowed_terms)
        self.recognizers = recognizers
        self.site_terms = site_terms
        self.threshold = threshold
        self._text: Any = None  # the text de-identifier, loaded on the first clean action that needs it

    @property
    def method_values(self) -> list[str]:
        """DeidentificationMethod values (LO, 64 characters each, multi-valued): the profile with keyed HMAC,
        then each option's name."""
        return ["PS3.15 Basic Profile, keyed HMAC (clinical-mm)",
                *(OPTION_CODES[o][1] for o in sorted(self.profile.options))]

    @property
    def method(self) -> str:
        """The method as one line (receipts)."""
        return "; ".join(self.method_values)

    # ------------------------------------------------------------------ one dataset
    def deidentify(self, ds: Dataset, *, in_place: bool = False) -> tuple[Dataset, Counter[str]]:
        """Return a de-identified copy of ``ds`` (or ``ds`` itself, changed, with ``in_place``) and the count
        of each action applied."""
        counts: Counter[str] = Counter()
        patient = str(ds.get("PatientID", ""))
        study = self._study_originals(ds) if self.pseudo.remember else None
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
        if study is not None:
            self._keep_study_originals(out, *study)
        return out, counts

    @staticmethod
    def _study_originals(ds: Dataset) -> tuple[str, str, str] | None:
        """The original StudyInstanceUID, AccessionNumber and PatientName (empty where absent); None when one
        cannot be read (then nothing is filed: the profile removes them without reading them)."""
        try:
            uid, accession, name = (str(ds.get(k) or "").strip()
                                    for k in ("StudyInstanceUID", "AccessionNumber", "PatientName"))
        except Exception:  # noqa: BLE001 - a malformed element: the vault goes without, the profile still runs
            return None
        return uid, accession, name

    def _keep_study_originals(self, out: Dataset, study_uid: str, accession: str, name: str) -> None:
        """The study's original accession number and patient name for the vault, under the study's pseudonymous
        UID (only a remapped one: a retained UID is no pseudonym to file them under)."""
        pseudonymous = str(out.get("StudyInstanceUID") or "")
        if pseudonymous and pseudonymous != study_uid:
            self.pseudo.keep(STUDY_ACCESSION, pseudonymous, accession)
            self.pseudo.keep(STUDY_PATIENT_NAME, pseudonymous, name)

    def _walk(self, ds: Dataset, counts: Counter[str], patient: str, clean: bool = False) -> None:
        """Apply the profile to every element of ``ds``. Values are parsed only where an action needs them
        (removing or keeping an element does not), so most elements stay as read. ``clean``: ``ds`` is an
        item of a sequence being cleaned, so free text the table does not list is cleaned, not removed."""
        private_action = self.profile.resolve(self.profile.private_row, 0)
        safe = self.safe_private.kept_tags(ds) if private_action == "C" else set()
        overlays = {g for g in range(0x6000, 0x6020, 2) if (g << 16) | 0x3000 in ds}
        for key in list(ds.keys()):  # a copy: we delete while walking
            tag = int(key)
            vr = ds.get_item(key).VR
            if vr is None or vr == "UN":  # implicit VR, or a VR the writer did not know: parse to learn it
                vr = ds[key].VR
            if (tag >> 16) % 2 == 1:
                if private_action == "K" or tag in safe:
                    self._recurse(ds, tag, vr, counts, patient, clean)
                    counts["K:private" if tag in safe else "K"] += 1
                else:
                    del ds[tag]
                    counts["X"] += 1
                continue
            listed = self.profile.action(tag)
            if listed is None:
                self._unlisted(ds, tag, vr, counts, patient, clean)
            else:
                self._apply(ds, tag, vr, listed, counts, patient, clean)
        self._drop_empty_overlays(ds, overlays, counts)

    @staticmethod
    def _drop_empty_overlays(ds: Dataset, overlays: set[int], counts: Counter[str]) -> None:
        """An overlay group whose Overlay Data was removed goes as a whole (Overlay Data is Type 1)."""
        for g in overlays:
            if (g << 16) | 0x3000 not in ds:
                for k in [k for k in ds.keys() if int(k) >> 16 == g]:
                    del ds[k]
                counts["X:overlay-group"] += 1

    def _recurse(self, ds: Dataset, tag: int, vr: str, counts: Counter[str], patient: str, clean: bool = False) -> None:
        if vr == "SQ":
            for item in ds[tag].value or []:
                self._walk(item, counts, patient, clean)

    def _unlisted(self, ds: Dataset, tag: int, vr: str, counts: Counter[str], patient: str, clean: bool = False) -> None:
        """The conservative default for attributes Table E.1-1 does not list.

        Unknown public tags are removed (they cannot be judged). Values that cannot carry a name or free text
        (numbers, coded strings, pixel data) are kept; sequences are recursed. Free-text and name VRs are
        removed unless the attribute is on a short list of acquisition and processing descriptors. Dates and
        times follow the temporal options (removed by default). UIDs that are not well-known DICOM UIDs
        (SOP classes, transfer syntaxes) are remapped with the keyed mapping.
        """
        if not (dictionary_has_tag(BaseTag(tag)) or repeater_has_tag(tag)):
            del ds[tag]
            counts["X:unknown"] += 1
        elif vr == "SQ":
            self._recurse(ds, tag, vr, counts, patient, clean)
        elif vr in _TEXT_VRS and keyword_for_tag(tag) not in UNLISTED_SAFE_TEXT:
            if clean and (vr in _CLEANABLE or vr == "PN"):
                self._clean_value(ds, tag, vr, counts, patient)
            else:
                del ds[tag]
                counts["X:unlisted-text"] += 1
        elif vr in _TEMPORAL_VRS:
            if Option.RETAIN_LONG_FULL_DATES.value in self.profile.options:
                return
            self._apply(ds, tag, vr, "C", counts, patient, clean)
        elif vr == "UI":
            elem = ds[tag]
            values = elem.value if isinstance(elem.value, (list, tuple, MultiValue)) else [elem.value]
            if elem.value and not all(UID(str(v)).keyword for v in values):  # well-known DICOM UIDs have a keyword
                elem.value = self._map_uids(elem.value)
                counts["U:unlisted"] += 1

    def _apply(self, ds: Dataset, tag: int, vr: str, action: str, counts: Counter[str], patient: str,
               clean: bool = False) -> None:
        if action == "X" or (action == "C" and vr in _TEMPORAL_VRS
                             and Option.RETAIN_LONG_MODIFIED_DATES.value not in self.profile.options):
            del ds[tag]
            counts["X" if action == "X" else "C:removed"] += 1
            return
        if action == "K":
            self._recurse(ds, tag, vr, counts, patient, clean)
            counts["K"] += 1
            return
        if action == "C" and vr not in _TEMPORAL_VRS:
            self._clean(ds, tag, vr, counts, patient)
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
                self._recurse(ds, tag, vr, counts, patient, clean)
            elif vr == "UI":
                elem.value = self._map_uids(elem.value)
            elif vr in _DUMMY_TEXT:
                elem.value = _DUMMY_TEXT[vr]
            else:  # binary or numeric VRs without a sensible dummy
                elem.value = b"" if vr in ("OB", "OW", "UN") else None
            counts["D"] += 1
        elif action == "U":
            if vr == "SQ":
                self._recurse(ds, tag, vr, counts, patient, clean)
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

    # ------------------------------------------------------------------ clean (C) actions
    def _clean(self, ds: Dataset, tag: int, vr: str, counts: Counter[str], patient: str) -> None:
        """A non-temporal C action: clean text and names, recurse sequences cleaning their text, verify
        overlays by OCR; numbers, codes and binary samples (curves) carry no identity and are kept."""
        if vr == "SQ":
            self._recurse(ds, tag, vr, counts, patient, clean=True)
            counts["C:sequence"] += 1
        elif vr in _CLEANABLE or vr == "PN":
            self._clean_value(ds, tag, vr, counts, patient)
        elif (tag >> 16) & 0xFF00 == 0x6000 and tag & 0xFFFF == 0x3000:
            self._clean_overlay(ds, tag, counts)
        elif vr in ("AE", "UR"):  # an address cannot be cleaned into a meaningful one
            del ds[tag]
            counts["C:removed"] += 1
        else:
            counts["C:kept"] += 1

    def _text_deidentifier(self) -> Any:
        if self._text is None:
            from clinical_mm.deid.text.text_deidentifier import DEFAULT_THRESHOLD, TextDeidentifier

            self._text = TextDeidentifier(self.key, allowed_terms=self.allowed_terms, recognizers=self.recognizers,
                                          site_terms=self.site_terms,
                                          threshold=DEFAULT_THRESHOLD if self.threshold is None else self.threshold)
        return self._text

    def _clean_value(self, ds: Dataset, tag: int, vr: str, counts: Counter[str], patient: str) -> None:
        """Free text through the text de-identifier (each value of a multi-valued element); a person name
        becomes the keyed surrogate name the text side gives it. Cut to the VR's length."""
        elem = ds[tag]
        values = list(elem.value) if isinstance(elem.value, (list, tuple, MultiValue)) else [elem.value]
        text = self._text_deidentifier()
        out = []
        for v in values:
            if v is None or str(v) == "":
                out.append(v)
            elif vr == "PN":
                out.append(text.surrogate("PERSON", str(v).replace("^", " ").strip(), patient).replace(" ", "^"))
            else:
                cleaned, _ = text.deidentify(str(v), patient)
                out.append(cleaned[: _CLEANABLE[vr]])
        elem.value = out if len(out) > 1 else out[0]
        counts["C:text"] += 1

    def _clean_overlay(self, ds: Dataset, tag: int, counts: Counter[str]) -> None:
        """Overlay bitmap: words read by OCR are cleared; kept only when verified, removed otherwise."""
        group = tag >> 16
        try:
            boxes = self.pixels.clean_overlay(ds, group)
        except QuarantinedError:
            del ds[tag]
            counts["C:overlay-removed"] += 1
            return
        counts["C:overlay-verified"] += 1
        counts["pixel:overlay-box"] += boxes

    def _map_uids(self, value: object) -> object:
        if isinstance(value, (list, tuple, MultiValue)):
            return [self.pseudo.uid(str(v)) for v in value]
        return self.pseudo.uid(str(value)) if value else value

    def _mark(self, ds: Dataset) -> None:
        ds.PatientIdentityRemoved = "YES"
        values = self.method_values
        ds.DeidentificationMethod = values if len(values) > 1 else values[0]
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
        return DeidentifiedStudy(DEID_CONSTRUCTION_TOKEN, study_uid, str(out[0].get("AccessionNumber", "")), out, receipt)
