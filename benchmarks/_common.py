"""Helpers shared by the benchmark scripts: make studies, build the pipeline, run it."""

from __future__ import annotations

import csv
import secrets
from pathlib import Path

from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
from clinical_mm.core.config import DEFAULT_MODEL_PATH, PseudonymKey
from clinical_mm.core.types import StudyResult
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.model.report_generator import ClinicalMMReportGenerator
from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline
from clinical_mm.synth.study_synthesizer import StudySynthesizer


def make_studies(n: int, seed: int, root: Path) -> list[dict[str, str]]:
    data = root / f"synth-{seed}-{n}"
    if not (data / "manifest.csv").is_file():
        StudySynthesizer(seed).write(n, data, progress=True)
    with (data / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def run_pipeline(n: int, seed: int, root: Path, model: Path | None = None) -> tuple[list[dict[str, str]], list[StudyResult], AnalysisPipeline]:
    rows = make_studies(n, seed, root)
    generator = ClinicalMMReportGenerator.from_path(model or DEFAULT_MODEL_PATH)
    sink = SQLiteAuditSink(root / f"audit-{secrets.token_hex(4)}.sqlite")
    pipeline = AnalysisPipeline(generator, DicomDeidentifier(PseudonymKey(secrets.token_bytes(32), ephemeral=True)), sink)
    results = pipeline.run(root / f"synth-{seed}-{n}", root / f"out-{seed}-{n}")
    sink.close()
    return rows, results, pipeline
