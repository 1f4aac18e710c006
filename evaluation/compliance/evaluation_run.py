"""``clinical-mm evaluate``: the model on a test manifest, and the report a clinical AI committee can sign.

Writes into the output folder ``results.json`` (every number), ``report.html`` (self-contained), ``report.pdf``
(the same sections), ``model_card.xml`` (CHAI Applied Model Card, schema-valid) and, with a signing key,
``signature.json`` over all of them. The studies go through the pipeline of ``clinical-mm analyze`` (de-identified
first, with a throwaway pseudonymisation key: the report names no study); every study is in the audit log.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.cli.scaffold import audit_sink
from clinical_mm.core import __version__
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ConfigurationError, OutputError
from clinical_mm.evaluation.compliance.analysis import analyse
from clinical_mm.evaluation.compliance.goals import load_goals
from clinical_mm.evaluation.compliance.manifest import (
    ATTRIBUTES,
    EvaluationManifest,
    check_no_overlap,
    read_manifest,
)
from clinical_mm.evaluation.compliance.model_card import model_card_xml
from clinical_mm.evaluation.compliance.render import plots, render_html, write_pdf
from clinical_mm.evaluation.compliance.runner import evaluation_pipeline, run_manifest
from clinical_mm.evaluation.compliance.signing import (
    SIGNATURE_FILE,
    fingerprint,
    load_private_key,
    sign_outputs,
)
from clinical_mm.evaluation.compliance.vision_language_tasks import run_tasks
from clinical_mm.model.checkpoint import LoadedModel
from clinical_mm.pipeline.vision_language_queries import VisionLanguageQueries

__all__ = ["OUTPUT_FILES", "EvaluationRequest", "run_evaluation"]

OUTPUT_FILES = ("results.json", "report.html", "report.pdf", "model_card.xml")
_PACKAGES = ("torch", "transformers", "numpy", "scipy", "scikit-learn", "fairlearn", "pandas", "matplotlib",
             "jinja2", "weasyprint", "xmlschema", "sacrebleu", "rouge-score", "pydicom")


@dataclass(frozen=True)
class EvaluationRequest:
    manifest: Path
    out: Path
    model: Path | None = None
    train_manifest: Path | None = None
    goals: Path | None = None
    signing_key: Path | None = None
    seed: int = 0
    bootstrap: int = 1000
    command: str = "clinical-mm evaluate"
    #: vision-language tasks scored besides triage (:data:`~clinical_mm.evaluation.compliance.vision_language_tasks.TASKS`)
    tasks: tuple[str, ...] = ()
    #: a Dask scheduler's address: the studies are analysed on its workers
    cluster: str | None = None


def _commit() -> str | None:
    """The git commit of the code when it runs from a checkout (``+dirty`` with local changes), else ``None``."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _software() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _check_out_dir(out: Path) -> None:
    """The output folder is new, empty or an earlier evaluation's (its outputs are replaced): a signature must
    cover the evaluation's files and nothing else."""
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out}: not a folder")
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in (*OUTPUT_FILES, SIGNATURE_FILE))
        if other:
            raise ConfigurationError(f"{out}: holds other files ({', '.join(other[:3])}); give an empty or new folder")


def _training_data(manifest: dict[str, Any]) -> str:
    data = manifest.get("data") or {}
    if data.get("synthetic"):
        return (f"synthetic studies (clinical-mm synth), data seed {data.get('data_seed')} "
                f"({(manifest.get('training') or {}).get('train_studies', '?')} studies), validation seed "
                f"{data.get('val_seed')}")
    return str(data.get("train_manifest") or "not recorded in the model's manifest")


def _tasks(request: EvaluationRequest, manifest: EvaluationManifest, loaded: LoadedModel, sink: AuditSink,
           settings: Settings, bar: Callable[[str, int], Callable[[], None]]) -> dict[str, Any]:
    """The vision-language tasks, their studies de-identified with a throwaway key as the triage run's."""
    key = PseudonymKey(secrets.token_bytes(32), ephemeral=True)
    queries = VisionLanguageQueries.from_settings(loaded, key, settings, sink)
    return run_tasks(request.tasks, manifest, queries, seed=request.seed, n_resamples=request.bootstrap,
                     tick=bar("tasks", len(manifest.rows)))


def run_evaluation(request: EvaluationRequest, *, progress: Callable[[str, int], Callable[[], None]] | None = None,
                   log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the evaluation of ``request``; return ``results.json``'s content. ``progress(description, total)``
    gives a function to call per step (a progress bar's update)."""
    from clinical_mm.model.report_generator import ClinicalMMReportGenerator

    settings = Settings()
    goals = load_goals(request.goals)
    key = load_private_key(request.signing_key) if request.signing_key is not None else None
    _check_out_dir(request.out)
    manifest = read_manifest(request.manifest)
    train = read_manifest(request.train_manifest) if request.train_manifest is not None else None
    model_path = request.model or settings.model_path
    generator = ClinicalMMReportGenerator.from_path(model_path, ground=False)  # flags and drafts are scored, not regions
    model_manifest = generator.loaded.manifest
    overlap_checks = check_no_overlap(manifest, train, model_manifest.get("data") or {})
    request.out.mkdir(parents=True, exist_ok=True)
    for name in (*OUTPUT_FILES, SIGNATURE_FILE):
        (request.out / name).unlink(missing_ok=True)
    bar = progress or (lambda _desc, _total: lambda: None)
    log(f"evaluating {generator.model_id} on {len(manifest.rows)} studies of {request.manifest.name}")
    with audit_sink(settings) as sink:
        step = bar("studies", len(manifest.rows))
        if request.cluster is None:
            outcomes = run_manifest(evaluation_pipeline(generator, settings, sink), manifest, lambda _n: step())
        else:
            from clinical_mm.pipeline.cluster import ClusterRun  # Dask: only for a cluster run

            with ClusterRun(request.cluster) as cluster:
                outcomes = run_manifest(None, manifest, lambda _n: step(), cluster=cluster, model_path=model_path)
        analysed = [o for o in outcomes if o.refused is None]
        groups = sum(len({o.attributes.get(a, "unknown") for o in analysed}) for a in ATTRIBUTES)
        step = bar("statistics", len(manifest.flags) + groups if analysed else 0)  # a tick per flag and per group
        results = analyse(manifest, outcomes, goals, seed=request.seed, n_resamples=request.bootstrap, tick=step)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if request.tasks:
            log(f"vision-language tasks: {', '.join(request.tasks)}")
            results["tasks"] = {"selected": list(request.tasks), **_tasks(request, manifest, generator.loaded, sink,
                                                                          settings, bar)}
            results.update({t: results["tasks"].pop(t) for t in request.tasks if t in results["tasks"]})
        results["time_to_notification"] = {
            "available": False,
            "reason": "evaluate reads the studies from files, so no C-STORE reception and no callback are timed; "
                      "the service's figures come from its audit log"}
        results["provenance"] = {
            "model": {"id": generator.model_id, "sha256": generator.model_sha256, "path": model_path.name,
                      "training_data": _training_data(model_manifest)},
            "manifest": {"name": request.manifest.name, "sha256": manifest.sha256, "rows": len(manifest.rows)},
            "train_manifest": (f"{request.train_manifest.name} (sha256 {train.sha256})"
                               if request.train_manifest is not None and train is not None else None),
            "overlap_checks": overlap_checks,
            "code": {"version": __version__, "commit": _commit()},
            "seeds": {"statistics": request.seed, "bootstrap_resamples": request.bootstrap},
            "date": now, "run_by": f"{getpass.getuser()} (audit actor {settings.actor})",
            "command": request.command, "software": _software(),
            "signature": {"fingerprint": fingerprint(key.public_key())[:16]} if key is not None else None}
        log("writing the report")
        text = json.dumps(results, indent=1, sort_keys=False, default=str)
        (request.out / "results.json").write_text(text + "\n", encoding="utf-8")
        html = render_html(results, plots(results))
        (request.out / "report.html").write_text(html, encoding="utf-8")
        try:
            write_pdf(html, request.out / "report.pdf")
        except OSError as exc:
            raise OutputError(f"{request.out / 'report.pdf'}: cannot write the PDF ({exc.__class__.__name__})") from None
        (request.out / "model_card.xml").write_text(model_card_xml(results), encoding="utf-8")
        if key is not None:
            sign_outputs(request.out, key, results["provenance"]["run_by"], now)
        sink.append(AuditRecord(actor=settings.actor, action="evaluate", outcome="reported",
                                input_hash=manifest.sha256, model_id=generator.model_id,
                                model_sha256=generator.model_sha256, output_hash=sha256_hex(text),
                                detail=f"{results['summary']['analysed']}/{results['summary']['studies']} analysed; "
                                       f"flagged groups: {len(results['summary']['flagged_groups'])}"))
    return results
