"""``clinical-mm analyze`` and ``clinical-mm demo``: studies de-identified, triaged and drafted, audited."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.cli.scaffold import cluster_option, reported_errors
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import ConfigurationError

if TYPE_CHECKING:
    from clinical_mm.core.types import StudyResult
    from clinical_mm.pipeline.analysis_pipeline import AnalysisPipeline

__all__ = ["analyze", "demo"]


@contextmanager
def _analysis_pipeline(settings: Settings, model_path: Path | None) -> Iterator[AnalysisPipeline]:
    """The study pipeline of ``settings`` (:func:`open_analysis_pipeline`), its audit log closed when the block
    ends."""
    from clinical_mm.pipeline.batch_runs import open_analysis_pipeline  # the model: not at start-up

    opened = open_analysis_pipeline(settings, model_path)
    try:
        yield opened.pipeline
    finally:
        opened.close()


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (results.jsonl, fhir/).")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model folder (default: CLINICAL_MM_MODEL_PATH or the shipped model).")
@cluster_option()
def analyze(path: Path, out: Path, model_path: Path | None, cluster: str | None) -> None:
    """Analyse the studies in PATH (a DICOM file, a folder or a DICOMDIR).

    Each study is de-identified, then triaged and drafted. Writes OUT/results.jsonl (one line per study)
    and a FHIR R4 Bundle per analysed study; every study is recorded in the audit log. With --cluster, the
    studies are analysed on a Dask cluster's workers (each loads the model once), with the same results.
    """
    with reported_errors():
        settings = Settings()
        if cluster is None:
            with _analysis_pipeline(settings, model_path) as pipeline:
                results = pipeline.run(path, out)
        else:
            from clinical_mm.pipeline.batch_runs import analyze_on_cluster
            from clinical_mm.pipeline.cluster import ClusterRun  # Dask: only for a cluster run

            key_id = settings.load_key().key_id
            with ClusterRun(cluster) as run:
                results = analyze_on_cluster(run, path, out, model_path, key_id)
    ok = sum(r.error is None for r in results)
    click.echo(f"{ok} analysed, {len(results) - ok} refused; results in {out / 'results.jsonl'}; "
               f"audit log {AuditLogSpec.from_settings(settings).where}")


def _demo_inputs(inputs: Path, manifest: Path, n: int, seed: int) -> None:
    """N synthetic studies in INPUTS (their manifest moved to MANIFEST) plus, in INPUTS/refuse, a CT of the head
    and a file that is not DICOM, both of which the pipeline must refuse."""
    from pydicom.data import get_testdata_file

    from clinical_mm.synth.study_synthesizer import StudySynthesizer

    if inputs.exists():
        shutil.rmtree(inputs)
    click.echo(f"synthesising {n} chest radiograph studies with fake PHI in {inputs} ...")
    StudySynthesizer(seed).write(n, inputs, progress=False, workers=1)
    (inputs / "manifest.csv").rename(manifest)
    refuse = inputs / "refuse" / "ct_head.dcm"
    refuse.parent.mkdir(parents=True, exist_ok=True)
    ct = get_testdata_file("CT_small.dcm")
    shutil.copyfile(str(ct), refuse)
    (inputs / "refuse" / "not_dicom.dcm").write_bytes(b"this is not a DICOM file\n")


def _print_demo_table(results: Sequence[StudyResult]) -> None:
    """One row per input: pseudonymised study, priority, raised flags, time and the impression's first sentence."""
    header = f"{'source':34} {'study (pseudonym)':20} {'priority':9} {'raised flags':34} {'ms':>6}  impression"
    click.echo(header)
    click.echo("-" * len(header))
    for r in results:
        if r.error:
            click.echo(f"{r.source:34} {'-':20} {'REFUSED':9} {r.error[:34]:34} {'':>6}")
            continue
        ms = sum(r.timings_ms.values())
        first = (r.impression or "").split(". ")[0][:60]
        study = (r.study_uid or "")[-18:]
        click.echo(f"{r.source:34} {study:20} {r.priority or '':9} {', '.join(r.raised)[:34]:34} {ms:6.0f}  {first}")


@click.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True)
@click.option("--n", "n", type=int, default=6, show_default=True, help="Synthetic studies to make.")
@click.option("--seed", type=int, default=20261127, show_default=True, help="Data seed of the demo studies.")
def demo(out: Path, n: int, seed: int) -> None:
    """Synthesise studies plus one file that must be refused, analyse them, print a table."""
    os.environ.setdefault("CLINICAL_MM_MODE", "demo")
    with reported_errors():
        settings = Settings(data_dir=out / "data") if "CLINICAL_MM_DATA_DIR" not in os.environ else Settings()
        if settings.mode != "demo" and settings.key is None and settings.key_file is None:
            raise ConfigurationError("demo needs CLINICAL_MM_MODE=demo or a key")
        inputs = out / "input"
        _demo_inputs(inputs, out / "manifest.csv", n, seed)
        with _analysis_pipeline(settings, None) as pipeline:
            click.echo(f"model {pipeline.generator.model_id} sha256 {pipeline.generator.model_sha256[:16]}...")
            results = pipeline.run(inputs, out)
    _print_demo_table(results)
    click.echo(f"\nresults: {out / 'results.jsonl'}\nFHIR bundles: {out / 'fhir'}\n"
               f"audit log: {settings.audit_path} (check with: clinical-mm audit verify --db {settings.audit_path})\n"
               f"reference reports and labels: {out / 'manifest.csv'}\n"
               "Drafts are preliminary and AI-generated: nothing is final until a radiologist signs it.")
