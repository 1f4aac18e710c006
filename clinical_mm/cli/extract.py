"""``clinical-mm extract`` and ``clinical-mm label-report``: structured facts and report labels from clinical
text, audited by counts and hashes (never the text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from clinical_mm.audit.audit_record import AuditRecord, sha256_hex
from clinical_mm.cli.scaffold import (
    audit_sink,
    format_option,
    key_file_option,
    read_items,
    reported_errors,
    resolve_key,
    text_input,
)
from clinical_mm.core.config import Settings
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.extraction.vocabulary import Vocabulary

__all__ = ["extract", "label_report"]


def _vocabulary(settings: Settings, files: tuple[Path, ...]) -> Vocabulary:
    """The shipped vocabulary with CLINICAL_MM_VOCABULARY's file and then the --vocabulary files on top."""
    return Vocabulary.load([*([settings.vocabulary] if settings.vocabulary else []), *files])


@click.command()
@text_input('Input lines {"id", "text", "targets": [optional terms]}: one output line each.')
@click.option("--target", "targets", multiple=True, help="A term to find and assert (repeatable; added to each line's).")
@format_option("json", "fhir",
               help='json: {"id", "entities": [...], "targets": [...]} per input; fhir: one FHIR R4 transaction '
                    "Bundle per input (Condition, FamilyMemberHistory, MedicationStatement, Observation, Provenance).")
@click.option("--vocabulary", "vocabularies", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A vocabulary file (the shipped one's form) added on top of the shipped vocabulary (repeatable; "
                   "also CLINICAL_MM_VOCABULARY).")
@click.option("--assume-deidentified", is_flag=True,
              help="The input is de-identified already (a corpus that is): skip de-identification; audited.")
@key_file_option("Pseudonymisation key (hex) for de-identification; default CLINICAL_MM_KEY / CLINICAL_MM_KEY_FILE.")
def extract(file: Any, jsonl: Any, targets: tuple[str, ...], fmt: str, vocabularies: tuple[Path, ...],
            assume_deidentified: bool, key_file: Path | None) -> None:
    """Structured facts from clinical text: coded entities (problems, medications with dose, route, frequency
    and duration, labs and vital signs with values, measurements, procedures, devices, anatomy and laterality)
    and the target terms asked for, each asserted (present, absent, possible, historical, family, hypothetical)
    by ConText, by section and sentence. The text is de-identified first (PHI masked, offsets kept): offsets are
    into the input text. Audited (counts and hashes, no text)."""
    from clinical_mm.pipeline.note_extraction import NoteExtraction

    with reported_errors():
        settings = Settings()
        items = read_items(file, jsonl, targets)
        extraction = NoteExtraction(None if assume_deidentified else resolve_key(settings, key_file),
                                    _vocabulary(settings, vocabularies), settings.recognizers, settings.deid_terms,
                                    settings.deid_threshold)
        with audit_sink(settings) as sink:
            lines = [json.dumps(o) for o in extraction.run(items, fmt, assume_deidentified, sink, settings.actor)]
    for line in lines:
        click.echo(line)


@click.command("label-report")
@text_input('Input lines {"id", "text"}: one output line each.')
def label_report(file: Any, jsonl: Any) -> None:
    """Label radiology reports: each of the 14 CheXpert observations and each triage flag as positive, negative,
    uncertain or not_mentioned. Prints {"id", "chexpert", "flags"} per report (labels only, no text); audited."""
    with reported_errors():
        settings = Settings()
        items = read_items(file, jsonl, ())
        labeler = RadiologyReportLabeler()
        lines = [json.dumps({"id": ident, **labeler.label(text)}) for ident, text, _ in items]
        with audit_sink(settings) as sink:
            sink.append(AuditRecord(settings.actor, "label-report", "ok",
                                    input_hash=sha256_hex("\x00".join(t for _, t, _ in items)),
                                    output_hash=sha256_hex("\n".join(lines)), detail=f"{len(items)} reports"))
    for line in lines:
        click.echo(line)
