"""Runs the model on a test manifest's studies through the pipeline of ``clinical-mm analyze`` (read, scope check,
de-identify, triage and draft, audit), one row at a time; a row that cannot be analysed is kept with its reason
and the rest goes on."""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from clinical_mm.audit.audit_record import AuditSink
from clinical_mm.connectors.file_source import FileStudySource, first_header
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ClinicalMMError
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.evaluation.compliance.manifest import (
    EvaluationManifest,
    ManifestRow,
    age_band,
    clean_value,
    sex_code,
)
from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline
from clinical_mm.pipeline.audit_forwarding import SiteAuditLog
from clinical_mm.pipeline.batch_runs import OpenPipeline

if TYPE_CHECKING:
    from clinical_mm.model.base import ReportGenerator
    from clinical_mm.pipeline.cluster import ClusterRun

__all__ = ["StudyOutcome", "evaluation_pipeline", "run_manifest"]

MISSING = "file missing"


@dataclass
class StudyOutcome:
    """What the model did with one manifest row; ``refused`` is a PHI-free reason when it did not analyse it."""

    row: ManifestRow
    attributes: dict[str, str]
    refused: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    raised: set[str] = field(default_factory=set)
    draft: str = ""
    seconds: float = 0.0


def _header_attributes(path: Path) -> dict[str, str]:
    """Sex, age band, manufacturer and view from the first readable DICOM header under ``path`` (coarse values
    only; nothing else of the header is kept)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    ds = first_header(files[:20], ["PatientSex", "PatientAge", "Manufacturer", "ViewPosition"])
    if ds is None:
        return {}
    sex = sex_code(clean_value(str(ds.get("PatientSex", "") or "")))
    return {"sex": sex if sex in ("F", "M", "O") else "unknown",
            "age_band": age_band(str(ds.get("PatientAge", "") or "")),
            "manufacturer": clean_value(str(ds.get("Manufacturer", "") or "")) or "unknown",
            "view": clean_value(str(ds.get("ViewPosition", "") or ""), 8).upper() or "unknown"}


def _scrub(reason: str, row: ManifestRow) -> str:
    """The reason without the row's file names (a site's paths can hold names)."""
    for text in sorted({str(row.path), row.path.as_posix(), row.path.name, row.path.parent.name}, key=len,
                       reverse=True):
        if len(text) > 2:
            reason = reason.replace(text, "<file>")
    return reason


def _attributes(row: ManifestRow) -> dict[str, str]:
    attributes = dict(row.attributes)
    if any(not attributes.get(a) for a in ("sex", "age_band", "manufacturer", "view")):
        header = _header_attributes(row.path) if row.path.exists() else {}
        for key, value in header.items():
            if not attributes.get(key):
                attributes[key] = value
    for key in ("sex", "age_band", "site", "manufacturer", "view"):
        attributes[key] = attributes.get(key) or "unknown"
    return attributes


def analyze_row(pipeline: AnalysisPipeline, row: ManifestRow, work: Path) -> StudyOutcome:
    """Analyse one row: the study at its path, or its refusal reason."""
    outcome = StudyOutcome(row, _attributes(row))
    if not row.path.exists():
        outcome.refused = MISSING
        return outcome
    t = time.perf_counter()
    try:
        items = FileStudySource(row.path).studies()
    except ClinicalMMError as exc:
        outcome.refused = _scrub(f"{exc.__class__.__name__}: {exc}", row)
        return outcome
    reasons: list[str] = []
    for item in items:
        for result in pipeline.analyze_within_boundary(item, work):
            if result.error is not None:
                reasons.append(_scrub(result.error, row))
            elif not outcome.probabilities:
                outcome.probabilities = dict(result.flags)
                outcome.thresholds = dict(result.thresholds)
                outcome.raised = set(result.raised)
                outcome.draft = f"FINDINGS: {result.findings or ''} IMPRESSION: {result.impression or ''}"
    outcome.seconds = time.perf_counter() - t
    if not outcome.probabilities:
        outcome.refused = reasons[0] if reasons else "no study found at the path"
    return outcome


def run_manifest(pipeline: AnalysisPipeline | None, manifest: EvaluationManifest,
                 progress: Callable[[int], object] | None = None, *, cluster: ClusterRun | None = None,
                 model_path: Path | None = None) -> list[StudyOutcome]:
    """Every row of ``manifest``, in order; ``progress`` is told after each one. With ``cluster``, the rows are
    analysed on its workers, each building the evaluation's pipeline of ``model_path`` once (``pipeline`` unused)."""
    with tempfile.TemporaryDirectory(prefix="cmm-evaluate-") as work:  # the FHIR bundles: not part of the report
        if cluster is not None:
            from clinical_mm.pipeline.cluster import WorkerResource  # Dask: only for a cluster run

            resource = WorkerResource(f"evaluate:{model_path}", partial(_worker_pipeline, model_path))
            analysed: Iterable[StudyOutcome] = cluster.map(resource, _analyze_row, manifest.rows, Path(work))
        else:
            assert pipeline is not None
            analysed = (analyze_row(pipeline, row, Path(work)) for row in manifest.rows)
        outcomes = []
        for outcome in analysed:
            outcomes.append(outcome)
            if progress is not None:
                progress(1)
    return outcomes


def evaluation_pipeline(generator: ReportGenerator, settings: Settings, audit: AuditSink) -> AnalysisPipeline:
    """The pipeline an evaluation runs: ``generator`` (our model without grounding: flags and drafts are scored, not
    regions), a throwaway key (nothing is re-linked), the site's pixel limits."""
    return AnalysisPipeline(generator, DicomDeidentifier(PseudonymKey(secrets.token_bytes(32), ephemeral=True)),
                            audit, actor=settings.actor, pixel_limits=settings.pixel_limits)


def _worker_pipeline(model_path: Path) -> OpenPipeline:
    from clinical_mm.model.report_generator import ClinicalMMReportGenerator  # the model: not at start-up

    settings = Settings()
    audit = SiteAuditLog(settings)
    generator = ClinicalMMReportGenerator.from_path(model_path, ground=False)
    return OpenPipeline(evaluation_pipeline(generator, settings, audit.log), audit)


def _analyze_row(opened: OpenPipeline, row: ManifestRow, work: Path) -> StudyOutcome:
    return analyze_row(opened.pipeline, row, work)
