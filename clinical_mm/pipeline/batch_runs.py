"""The batch pipelines built from a site's settings, in this process or on each worker of a Dask cluster
(:mod:`clinical_mm.pipeline.cluster`): ``analyze``'s study pipeline, and its run over many studies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from clinical_mm.connectors.file_source import FileStudySource, SourceStudy
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.types import StudyResult
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.model.generator_factory import input_gate_for, load_report_generator
from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline, write_results
from clinical_mm.pipeline.audit_forwarding import SiteAuditLog
from clinical_mm.pipeline.cluster import ClusterRun, WorkerResource

__all__ = ["OpenPipeline", "analyze_on_cluster", "open_analysis_pipeline"]


@dataclass
class OpenPipeline:
    """``analyze``'s pipeline and the audit log it writes to (closed by :meth:`close`)."""

    pipeline: AnalysisPipeline
    audit: SiteAuditLog

    def close(self) -> None:
        self.audit.close()


def open_analysis_pipeline(settings: Settings, model_path: Path | None, key_id: str | None = None) -> OpenPipeline:
    """The study pipeline of ``settings``: its key, the model (``model_path`` or the settings': ours or a staged
    BLIP-2 checkpoint, whose flags the report labeler reads from its draft), the input gate and the audit log, which
    is opened last. With ``key_id``, a key of another id is refused (a cluster worker set up with another key)."""
    key = settings.load_key()
    if key_id is not None and key.key_id != key_id:
        raise ConfigurationError(f"this worker's pseudonymisation key is {key.key_id}, the run's is {key_id}: "
                                 "start the workers with the coordinator's CLINICAL_MM_KEY or CLINICAL_MM_KEY_FILE")
    labeler = RadiologyReportLabeler()
    generator = load_report_generator(model_path or settings.model_path, draft_reader=labeler)
    gate = input_gate_for(generator)
    audit = SiteAuditLog(settings)
    return OpenPipeline(AnalysisPipeline(generator, DicomDeidentifier(key), audit.log, actor=settings.actor,
                                         report_labeler=labeler, pixel_limits=settings.pixel_limits, gate=gate), audit)


def _worker_pipeline(model_path: Path | None, key_id: str) -> OpenPipeline:
    return open_analysis_pipeline(Settings(), model_path, key_id)


def _analyze(opened: OpenPipeline, item: SourceStudy, out_dir: Path) -> list[StudyResult]:
    return opened.pipeline.analyze_within_boundary(item, out_dir)


def analyze_on_cluster(cluster: ClusterRun, path: Path, out_dir: Path, model_path: Path | None, key_id: str,
                       on_result: Callable[[StudyResult], None] | None = None) -> list[StudyResult]:
    """``analyze`` on ``cluster``'s workers: the studies under ``path`` found here, analysed there (each worker builds
    the pipeline once, from its own settings, with the key of id ``key_id``), and ``out_dir/results.jsonl`` written
    here in the studies' order, as on one machine."""
    resource = WorkerResource(f"analyze:{model_path}:{key_id}", partial(_worker_pipeline, model_path, key_id))
    items = FileStudySource(path).studies()
    return write_results(cluster.map(resource, _analyze, items, out_dir), out_dir, on_result)
