"""The model stage's extension points: what a report generator gives the pipeline, and what reads a draft.

A site plugs in another model by writing a class with these members (the pipeline, the service and the
CLI use nothing else); :class:`~clinical_mm.model.report_generator.ClinicalMMReportGenerator` is ours.
This module imports no torch, so the protocols can be used without loading a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from clinical_mm.core.types import DeidentifiedStudy

__all__ = ["DraftReader", "DraftReport", "ReportGenerator"]


@dataclass
class DraftReport:
    """The model's output for one study. ``flags``: calibrated probabilities; ``raised``: flags at or above threshold."""

    findings: str
    impression: str
    flags: dict[str, float]
    thresholds: dict[str, float]
    raised: list[str]
    priority: str
    timings_ms: dict[str, float] = field(default_factory=dict)


class ReportGenerator(Protocol):
    """Drafts a preliminary report and triage flags for the frontal image ``index`` of a de-identified study."""

    @property
    def model_id(self) -> str:
        """The model's name and version, as written in audit records and FHIR Provenance."""
        ...

    @property
    def model_sha256(self) -> str:
        """The sha256 of the model's weights."""
        ...

    def analyze(self, study: DeidentifiedStudy, index: int) -> DraftReport:
        """The draft for ``study.instances[index]``; :class:`~clinical_mm.core.errors.InputError` when the
        image cannot be used."""
        ...


class DraftReader(Protocol):
    """Reads which triage findings a report text states as present (1) or not (0)."""

    def stated_present(self, text: str) -> Mapping[str, int]:
        """1 for each finding the text states as present, else 0."""
        ...
