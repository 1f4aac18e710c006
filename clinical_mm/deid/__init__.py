"""De-identification: the PS3.15 confidentiality profile on DICOM headers, keyed pseudonyms, and clinical free
text (:mod:`clinical_mm.deid.text`).

Only this package constructs :class:`clinical_mm.core.types.DeidentifiedStudy`.
"""

from clinical_mm.deid.confidentiality_profile import ConfidentialityProfile, Option
from clinical_mm.deid.dicom_deidentifier import DicomDeidentifier
from clinical_mm.deid.pseudonymizer import Pseudonymizer

__all__ = ["ConfidentialityProfile", "DicomDeidentifier", "Option", "Pseudonymizer"]
