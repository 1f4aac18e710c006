"""Study analysis, composed of the stages.

read (connectors) -> scope check -> de-identify (deid) -> preprocess, encode, generate (model)
-> FHIR Bundle (outputs) -> audit record (audit), per study. A study that cannot be analysed is refused
with a reason and the batch goes on. Nothing upstream of de-identification is logged with values:
log lines and audit records carry pseudonymous study ids, hashes and PHI-free reasons only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from clinical_mm.audit.audit_record import AuditRecord, AuditSink, sha256_hex
from clinical_mm.connectors.base import StudySource
from clinical_mm.connectors.file_source import FileStudySource, SourceStudy
from clinical_mm.core.errors import (
    AuditError,
    ClinicalMMError,
    DeidentificationError,
    InputError,
    OutputError,
    UnsupportedStudyError,
)
from clinical_mm.core.pixel_limits import PixelLimits
from clinical_mm.core.types import StudyResult
from clinical_mm.deid.base import Deidentifier
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.model.base import GateReading, InputGate, ReportGenerator
from clinical_mm.model.study_scope import ChestRadiographScope
from clinical_mm.outputs.fhir_r4 import ReportBundleBuilder

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

__all__ = ["STAGES", "AnalysisPipeline", "write_results"]

_log = logging.getLogger(__name__)
STAGES = ("read", "deidentify", "preprocess", "encode", "generate", "fhir", "audit")


class AnalysisPipeline:
    """Analyses every study under a path and writes ``results.jsonl`` and FHIR bundles.

    Parameters
    ----------
    generator
        The model (ours: :class:`~clinical_mm.model.report_generator.ClinicalMMReportGenerator`).
    deidentifier
        The DICOM de-identifier (holds the pseudonymisation key).
    audit
        Where audit records go.
    actor
        The audit log's actor.
    scope
        The scope check (default: frontal chest radiographs).
    on_deidentified
        Told the pseudonymous study UID once a study is de-identified.
    report_labeler
        Reads what a draft states of each flag (default: the CheXpert labeler).
    source
        Makes the study source of a path given to :meth:`run` (default: files, folders, DICOMDIR).
    pixel_limits
        The most bytes an instance's and a study's pixels may decode to; checked from the headers before
        anything decodes them (settings ``CLINICAL_MM_MAX_*_PIXEL_BYTES``).
    gate
        The image-level input gate, read before the model sees an image: it refuses what is not a chest
        radiograph by its pixels and marks what is unlike the validated domain (None: no gate, for a model
        folder that has none).
    """

    def __init__(self, generator: ReportGenerator, deidentifier: Deidentifier, audit: AuditSink, *,
                 actor: str = "clinical-mm", scope: ChestRadiographScope | None = None,
                 on_deidentified: Callable[[str], None] | None = None,
                 report_labeler: RadiologyReportLabeler | None = None,
                 source: Callable[[Path], StudySource] = FileStudySource,
                 pixel_limits: PixelLimits | None = None, gate: InputGate | None = None) -> None:
        self.on_deidentified = on_deidentified
        self.gate = gate
        self.generator = generator
        self.deidentifier = deidentifier
        self.audit = audit
        self.actor = actor
        self.scope = scope or ChestRadiographScope()
        self.fhir = ReportBundleBuilder(generator.model_id, generator.model_sha256)
        self.report_labeler = report_labeler or RadiologyReportLabeler()
        self.source = source
        self.pixel_limits = pixel_limits or PixelLimits()

    def check_draft(self, findings: str, impression: str, flags: dict[str, float], raised: list[str]
                    ) -> dict[str, object]:
        """What the draft states of each flag (positive, negative, uncertain, not mentioned, read by the report
        labeler), and the flags where draft and flags disagree: raised but not stated (negative or not
        mentioned), or stated (the labeler's triage reading: positive, or uncertain and leaning) but not raised.
        For the reviewer's attention; it changes no priority."""
        reading = self.report_labeler.label(f"FINDINGS: {findings}\nIMPRESSION: {impression}")
        stated, triage = reading["flags"], reading["stated"]
        disagree = [f for f in flags if (f in raised and stated[f] in ("negative", "not_mentioned"))
                    or (f not in raised and triage[f])]
        return {"stated": stated, "disagree": disagree}

    def _audit(self, *, outcome: str, input_hash: str = "", study: str = "", output_hash: str = "",
               detail: str = "") -> None:
        self.audit.append(AuditRecord(actor=self.actor, action="analyze", outcome=outcome, input_hash=input_hash,
                                      study=study, model_id=self.generator.model_id,
                                      model_sha256=self.generator.model_sha256,
                                      output_hash=output_hash, detail=detail))

    def analyze_study(self, item: SourceStudy, out_dir: Path) -> list[StudyResult]:
        """Analyse one study. Unreadable instances, and frontal images the model cannot use (pixel data that
        cannot be decoded), are refused one by one (a result each, ``error`` set); the study's other
        instances go on, the next frontal image taking the refused one's place."""
        if item.error is not None:
            self._audit(outcome="refused", detail=item.error)
            return [StudyResult(source=item.source, error=item.error)]
        t = time.perf_counter()
        loaded, failed = item.load()
        over = {source: reason for source, _, ds in loaded
                if (reason := self.pixel_limits.instance_refusal(ds)) is not None}
        failed += over.items()
        loaded = [entry for entry in loaded if entry[0] not in over]
        too_large = self.pixel_limits.study_refusal(ds for _, _, ds in loaded)
        if too_large is not None:
            failed += [(source, too_large) for source, _, _ in loaded]
            loaded = []
        refused = []
        for source, reason in failed:
            self._audit(outcome="refused", detail=reason)
            refused.append(StudyResult(source=source, error=reason))
        if not loaded:
            return refused
        datasets = [ds for _, _, ds in loaded]
        try:
            candidates = self.scope.candidates(datasets)
        except InputError as exc:
            self._audit(outcome="refused", detail=exc.reason)
            return [*refused, StudyResult(source=loaded[0][0], error=exc.reason)]
        return [*refused, *self._analyze_loaded(loaded, candidates, out_dir, t)]

    def _gate(self, dataset: Dataset) -> GateReading | None:
        """The input gate's reading of the image; :class:`UnsupportedStudyError` when the gate refuses it."""
        if self.gate is None:
            return None
        reading = self.gate.read_image(dataset)
        if reading.refusal is not None:
            raise UnsupportedStudyError(reading.refusal)
        return reading

    def _analyze_loaded(self, loaded: list[tuple[str, Path, Dataset]], candidates: list[int], out_dir: Path,
                        t: float) -> list[StudyResult]:
        timings: dict[str, float] = {"read": (time.perf_counter() - t) * 1e3}
        datasets = [ds for _, _, ds in loaded]
        t = time.perf_counter()
        try:
            study = self.deidentifier.deidentify_study(datasets)
        except DeidentificationError as exc:
            self._audit(outcome="refused", detail=f"de-identification failed: {exc}")
            return [StudyResult(source=loaded[candidates[0]][0], error=f"de-identification failed: {exc}")]
        timings["deidentify"] = (time.perf_counter() - t) * 1e3
        if self.on_deidentified is not None:
            self.on_deidentified(study.study_uid)
        refused: list[StudyResult] = []
        for index in candidates:  # preferred frontal image first; one that cannot be used is refused alone
            source, path = loaded[index][0], loaded[index][1]
            t = time.perf_counter()
            input_hash = hashlib.sha256(path.read_bytes()).hexdigest()
            timings["read"] += (time.perf_counter() - t) * 1e3
            try:
                t = time.perf_counter()
                reading = self._gate(study.instances[index])
                timings["gate"] = (time.perf_counter() - t) * 1e3
                draft = self.generator.analyze(study, index)
                break
            except InputError as exc:  # e.g. pixel data that cannot be decoded, or not a chest radiograph
                self._audit(outcome="refused", input_hash=input_hash, study=study.study_uid, detail=exc.reason)
                refused.append(StudyResult(source=source, error=exc.reason))
        else:
            return refused
        timings.update(draft.timings_ms)
        ood = reading.to_json() if reading is not None else None
        t = time.perf_counter()
        try:
            bundle = self.fhir.build(study_uid=study.study_uid, accession=study.accession, findings=draft.findings,
                                     impression=draft.impression, flags=draft.flags, thresholds=draft.thresholds,
                                     raised=draft.raised, priority=draft.priority, regions=draft.regions,
                                     input_gate=ood)
        except OutputError as exc:  # the draft is no valid FHIR (e.g. a non-finite probability): refused, audited
            reason = f"the draft cannot be written as FHIR R4 ({exc})"
            self._audit(outcome="refused", input_hash=input_hash, study=study.study_uid, detail=reason)
            return [*refused, StudyResult(source=source, error=reason)]
        fhir_dir = out_dir / "fhir"
        fhir_dir.mkdir(parents=True, exist_ok=True)
        fhir_path = fhir_dir / f"{study.study_uid}.json"
        bundle_text = json.dumps(bundle, indent=1)
        try:
            fhir_path.write_text(bundle_text, encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{fhir_path}: cannot write FHIR bundle ({exc.strerror})") from None
        timings["fhir"] = (time.perf_counter() - t) * 1e3
        result = StudyResult(source=source, study_uid=study.study_uid, flags=draft.flags, thresholds=draft.thresholds,
                             raised=draft.raised, priority=draft.priority, findings=draft.findings,
                             impression=draft.impression, fhir=fhir_path.relative_to(out_dir).as_posix(),
                             accession=study.accession,
                             draft_check=self.check_draft(draft.findings, draft.impression, draft.flags, draft.raised),
                             ood=ood, regions=draft.regions,
                             image=str(study.instances[index].get("SOPInstanceUID", "")) or None)
        t = time.perf_counter()
        output_hash = sha256_hex(json.dumps(result.to_json(), sort_keys=True) + bundle_text)
        self._audit(outcome="analyzed", input_hash=input_hash, study=study.study_uid, output_hash=output_hash,
                    detail=f"priority={draft.priority}; raised={','.join(draft.raised) or 'none'}"
                           + ("; no input gate" if reading is None else
                              "" if reading.in_domain else "; outside the validated domain"))
        timings["audit"] = (time.perf_counter() - t) * 1e3
        result.timings_ms = timings
        _log.info("study %s analysed: priority %s", study.study_uid, draft.priority)
        return [*refused, result]

    def analyze_within_boundary(self, item: SourceStudy, out_dir: Path) -> list[StudyResult]:
        """:meth:`analyze_study`, where no failure of one study loses the batch: our own typed errors and any
        other exception (a header or pixel format nothing checked for) become a refusal with a PHI-free reason
        (the error's class, never its message, for the latter) and an audit record. Only a failure of our own
        outputs stops the run: the audit log cannot be written (:class:`AuditError`), or a result cannot."""
        try:
            return self.analyze_study(item, out_dir)
        except (AuditError, OutputError):
            raise
        except ClinicalMMError as exc:
            reason = f"{exc.__class__.__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - the batch boundary: one study never stops the others
            reason = f"internal error while analysing the study ({exc.__class__.__name__})"
        _log.error("study refused at the batch boundary: %s", reason.partition(":")[0])
        self._audit(outcome="refused", detail=reason)
        return [StudyResult(source=item.source, error=reason)]

    def run(self, path: Path, out_dir: Path, on_result: Callable[[StudyResult], None] | None = None) -> list[StudyResult]:
        """Analyse every study under ``path``; write ``out_dir/results.jsonl`` (one line per study, as it goes)."""
        items = self.source(path).studies()
        return write_results((self.analyze_within_boundary(item, out_dir) for item in items), out_dir, on_result)


def write_results(analysed: Iterable[list[StudyResult]], out_dir: Path,
                  on_result: Callable[[StudyResult], None] | None = None) -> list[StudyResult]:
    """Each study's results, as they come (in the studies' order), to ``out_dir/results.jsonl``, one line each;
    the results."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for study_results in analysed:
            for result in study_results:
                fh.write(json.dumps(result.to_json(), sort_keys=False) + "\n")
                fh.flush()
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return results
