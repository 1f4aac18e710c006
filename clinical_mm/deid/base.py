"""The de-identification stage's extension point: what turns a study's datasets into a de-identified study.

:class:`~clinical_mm.deid.dicom_deidentifier.DicomDeidentifier` (PS3.15 Basic Profile with options, keyed
pseudonyms, burned-in text) is ours. The result type carries the PHI boundary: only this package constructs a
:class:`~clinical_mm.core.types.DeidentifiedStudy`, and the model accepts nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from clinical_mm.core.types import DeidentifiedStudy

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["Deidentifier"]


class Deidentifier(Protocol):
    """De-identifies the instances of one study together (one pseudonym per study, series and instance)."""

    def deidentify_study(self, instances: list[Dataset]) -> DeidentifiedStudy:
        """The study de-identified; :class:`~clinical_mm.core.errors.DeidentificationError` (or
        :class:`~clinical_mm.core.errors.QuarantinedError`) with a PHI-free reason when it cannot be."""
        ...
