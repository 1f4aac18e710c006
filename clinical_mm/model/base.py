"""The model stage's extension points: what a report generator gives the pipeline, and what reads a draft.

A site plugs in another model by writing a class with these members (the pipeline, the service and the
CLI use nothing else); :class:`~clinical_mm.model.report_generator.ClinicalMMReportGenerator` is ours,
:class:`~clinical_mm.model.blip2_report_generator.Blip2ReportGenerator` runs a staged BLIP-2 checkpoint, and
:func:`~clinical_mm.model.generator_factory.load_report_generator` picks one from a model folder.
This module imports no torch, so the protocols can be used without loading a model.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from clinical_mm.core.types import DeidentifiedStudy

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["DraftReader", "DraftReport", "GateReading", "InputGate", "ReportGenerator", "SentenceReader"]


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
    #: per raised flag, where the model sees it: ``{"peak", "boxes", "pixel_peak", "pixel_boxes"}`` (points and
    #: boxes on the image's 0-100 grid and in its pixels); empty for a generator that does not localise
    regions: dict[str, dict[str, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class GateReading:
    """The input gate's reading of one image. ``score``: its distance from the training images' encoder
    features, ``in_domain`` when at most ``threshold`` (the validation images' 99.5th percentile);
    ``chest_radiograph``: the detector's probability that it is an upright, non-inverted frontal chest film;
    ``refusal``: why it is refused, None when it is analysed."""

    score: float
    threshold: float
    in_domain: bool
    chest_radiograph: float
    chest_threshold: float
    refusal: str | None

    def to_json(self) -> dict[str, object]:
        """The ``ood`` field of a results line."""
        return {"score": round(self.score, 4), "threshold": round(self.threshold, 4), "in_domain": self.in_domain,
                "chest_radiograph": round(self.chest_radiograph, 4)}


class InputGate(Protocol):
    """Reads an image before any model call: refuses what is not a chest radiograph, marks what is unlike
    the validated domain (:class:`~clinical_mm.model.input_gate.ImageGate` is ours)."""

    def read_image(self, dataset: Dataset) -> GateReading:
        """The reading of a de-identified frontal image; :class:`~clinical_mm.core.errors.InputError` when its
        pixels cannot be used."""
        ...


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


class SentenceReader(Protocol):
    """Reads what one report sentence states, so that sentences saying the same in other words are known as one."""

    def sentence_meaning(self, sentence: str) -> Hashable | None:
        """The same value for sentences that state the same; None where the reader cannot tell (the sentence's
        wording is then its meaning)."""
        ...
