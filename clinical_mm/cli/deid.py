"""``clinical-mm deid``: de-identification of DICOM files and clinical text, and re-identification for the key
holder. The evaluation and training commands of the group are added by :mod:`clinical_mm.evaluation.commands`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from clinical_mm.audit.audit_log import AuditLogSpec
from clinical_mm.audit.audit_record import AuditRecord, sha256_hex
from clinical_mm.cli.scaffold import (
    audit_sink,
    cluster_option,
    format_option,
    jsonl_items,
    key_file_option,
    reported_errors,
    resolve_key,
    terms_option,
    text_input,
    threshold_option,
)
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import ClinicalMMError, ConfigurationError
from clinical_mm.deid.confidentiality_profile import OPTION_CODES, ConfidentialityProfile, Option
from clinical_mm.deid.pixel_text import KnownTextRegions
from clinical_mm.deid.pseudonymizer import STUDY_ACCESSION, STUDY_PATIENT_NAME
from clinical_mm.deid.safe_private import SafePrivateList
from clinical_mm.deid.text.site_terms import SiteTerms

if TYPE_CHECKING:
    from clinical_mm.deid.text.text_deidentifier import TextDeidentifier

__all__ = ["deid"]

_F = TypeVar("_F", bound=Callable[..., Any])


@click.group()
def deid() -> None:
    """De-identification: DICOM files (PS3.15 profile and options) and re-identification for the key holder."""


def _option_flags(fn: _F) -> _F:
    """One named flag per PS3.15 Annex E option (Table E.1-1's option columns)."""
    for opt in reversed(list(Option)):
        flag = "--" + opt.name.lower().replace("_", "-")
        fn = click.option(flag, opt.value, is_flag=True, help=f"{OPTION_CODES[opt.value][1]} (DCM {OPTION_CODES[opt.value][0]}).")(fn)
    return fn


@deid.command("dicom")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@key_file_option()
@click.option("--quarantine", type=click.Path(path_type=Path),
              help="Where files that cannot be de-identified safely go, with reasons (default: DST-quarantine).")
@click.option("--vault", "vault_path", type=click.Path(path_type=Path),
              help="Re-identification vault (default: DATA_DIR/vault.sqlite).")
@click.option("--safe-private-list", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON [{"creator", "group", "element"}]: private attributes --retain-safe-private keeps.')
@click.option("--text-regions", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='JSON [{"manufacturer", "model", "regions": [[x0, y0, x1, y1]]}]: burned-in text areas (fractions).')
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes (default: up to 2, one per core).")
@cluster_option()
@_option_flags
def deid_dicom(src: Path, dst: Path, key_file: Path | None, quarantine: Path | None, vault_path: Path | None,
               safe_private_list: Path | None, text_regions: Path | None, workers: int | None, cluster: str | None,
               **options: bool) -> None:
    """De-identify the DICOM files in SRC (a file or a folder) into DST.

    Writes DST/<study>/<series>/<instance>.dcm and DST/<study>/receipt.json. Images that may carry
    burned-in text are read by OCR (tesseract) and redacted; files that cannot be de-identified or verified
    safely are copied to the quarantine folder with the reason and never reach DST.
    """
    if dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
        raise click.ClickException("DST must not be SRC or inside it")
    from clinical_mm.pipeline.dicom_batch_deidentifier import BatchSpec, run_batch

    quarantine = quarantine or dst.with_name(dst.name + "-quarantine")
    with reported_errors():
        settings = Settings()
        key = resolve_key(settings, key_file)
        chosen = tuple(name for name, on in options.items() if on)
        ConfidentialityProfile(frozenset(chosen))  # refuse conflicting options before any work
        spec = BatchSpec(key, chosen,
                         SafePrivateList.from_json(safe_private_list) if safe_private_list else None,
                         KnownTextRegions.from_json(text_regions) if text_regions else None,
                         AuditLogSpec.from_settings(settings), None if key.ephemeral else vault_path or settings.vault_path,
                         settings.actor, settings.vocabulary, settings.recognizers, settings.pixel_limits,
                         SiteTerms.from_file(settings.deid_terms) if settings.deid_terms else None,
                         settings.deid_threshold)
        if cluster is None:
            report = run_batch(spec, src, dst, quarantine, workers or min(2, os.cpu_count() or 1))
        else:
            from clinical_mm.pipeline.cluster import ClusterRun  # Dask: only for a cluster run

            with ClusterRun(cluster) as run:
                report = run_batch(spec, src, dst, quarantine, cluster=run)
    click.echo(f"{report.written} files de-identified in {len(report.receipts)} studies to {dst} "
               f"(key {key.key_id}; receipts in each study folder)")
    if report.quarantined:
        click.echo(f"{len(report.quarantined)} files quarantined in {quarantine} (reasons in quarantine.jsonl):")
        for entry in report.quarantined:
            click.echo(f"  {entry.source}: {entry.reason}")


_text_deidentifier: TextDeidentifier | None = None
"""The de-identifier of this process (a worker of ``deid text`` builds its own, once)."""


def _text_worker_init(key: PseudonymKey, vocabulary: Path | None, recognizers: Path | None,
                      terms: SiteTerms | None = None, threshold: float | None = None) -> None:
    """Build this process's text de-identifier with the site's vocabulary and recognizer files, its terms (read
    by the parent) and its score threshold (presidio and spaCy load on its first use)."""
    from clinical_mm.pipeline.text_deidentification import site_vocabulary, text_deidentifier

    global _text_deidentifier
    _text_deidentifier = text_deidentifier(key, site_vocabulary(vocabulary), recognizers, terms, threshold)


def _text_worker(batch: list[tuple[str, str, str]], explain: bool = False
                 ) -> list[tuple[str, str, list[dict[str, object]]]]:
    """(id, de-identified text, spans as dicts) of each (id, text, patient) of ``batch``; with ``explain`` each
    span's dict says why it was taken (:meth:`TextSpan.explain`: recognizer, rule, context words)."""
    if _text_deidentifier is None:
        raise RuntimeError("_text_worker_init has not run in this process")
    done = _text_deidentifier.deidentify_many([text for _, text, _ in batch], [patient for _, _, patient in batch])
    return [(ident, out, [s.explain() if explain else s.to_dict() for s in spans])
            for (ident, _, _), (out, spans) in zip(batch, done, strict=True)]


def _run_text(items: list[tuple[str, str, str]], site: tuple[Any, ...], workers: int | None, explain: bool
              ) -> list[tuple[str, str, list[dict[str, object]]]]:
    """:func:`_text_worker` over ``items`` in batches, in ``workers`` processes (each built by
    :func:`_text_worker_init` with ``site``) or in this one."""
    n_workers = max(1, min(workers or min(2, os.cpu_count() or 1), len(items)))
    size = max(1, min(64, len(items) // (4 * n_workers)))  # spaCy reads each batch in one pass
    batches = [items[i : i + size] for i in range(0, len(items), size)]
    work = partial(_text_worker, explain=explain)
    if n_workers > 1:
        from multiprocessing import Pool

        with Pool(n_workers, initializer=_text_worker_init, initargs=site) as pool:
            return [r for done in pool.imap(work, batches) for r in done]
    _text_worker_init(*site)
    return [r for batch in batches for r in work(batch)]


def _explained(span: dict[str, object]) -> str:
    """One line of ``deid text --explain``: offsets, type, score, recognizer, rule and context words (the cue,
    never the span's text, which is PHI)."""
    return (f"  span {span['start']}-{span['end']} {span['entity_type']} score={span['score']} "
            f"recognizer={json.dumps(span.get('recognizer', ''))} rule={json.dumps(span.get('rule', ''))} "
            f"context={json.dumps(span.get('context', []))}")


@deid.command("text")
@text_input('Input lines {"id", "text"} (optionally "patient"): one output line each.')
@format_option("text", "json",
               help='json: {"id", "text", "spans": [{"start", "end", "entity_type", "score"}]} per input, spans in '
                    "the original text's coordinates.")
@click.option("--patient", default="", help="Patient identifier: surrogates and date shifts agree with the DICOM side.")
@key_file_option()
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes for --jsonl (default: up to 2).")
@click.option("--explain", is_flag=True,
              help='Say why each span was taken: json adds "recognizer", "rule" and "context" (the cue words) to each '
                   "span; text prints one line per span after the text (offsets, type, score, recognizer, rule, "
                   "context words). Never the span's own text.")
@threshold_option()
@terms_option()
def deid_text(file: Any, jsonl: Any, fmt: str, patient: str, key_file: Path | None, workers: int | None,
              explain: bool, threshold: float | None, terms: Path | None) -> None:
    """De-identify clinical text from FILE (or standard input), or each line of --jsonl."""
    with reported_errors():
        settings = Settings()
        key = resolve_key(settings, key_file)
        term_file = terms or settings.deid_terms
        site = (key, settings.vocabulary, settings.recognizers,
                SiteTerms.from_file(term_file) if term_file else None,  # read here: a bad file fails once
                settings.deid_threshold if threshold is None else threshold)
        if jsonl is None:
            items = [("-" if file.name == "<stdin>" else file.name, file.read(), patient)]
        else:
            items = jsonl_items(jsonl, lambda row: (str(row["id"]), str(row["text"]),
                                                    str(row.get("patient", patient))),
                                "a JSON object with id and text")
        results = _run_text(items, site, workers, explain)
    for ident, text, spans in results:
        if fmt == "json":
            click.echo(json.dumps({"id": ident, "text": text, "spans": spans}))
        else:
            click.echo(text)
            for span in spans if explain else ():
                click.echo(_explained(span))


@deid.command("reidentify")
@click.argument("pseudonym")
@click.option("--kind", type=click.Choice(["patient", "accession", "uid", STUDY_ACCESSION, STUDY_PATIENT_NAME]),
              default="patient", show_default=True,
              help=f"What the pseudonym stands for ({STUDY_ACCESSION}, {STUDY_PATIENT_NAME}: the study's original "
                   "accession number or patient name, by its pseudonymous StudyInstanceUID).")
@key_file_option()
@click.option("--vault", "vault_path", type=click.Path(path_type=Path),
              help="Re-identification vault (default: DATA_DIR/vault.sqlite).")
def deid_reidentify(pseudonym: str, kind: str, key_file: Path | None, vault_path: Path | None) -> None:
    """Print the original value behind PSEUDONYM (key holders only; the lookup is audited)."""
    with reported_errors():
        settings = Settings()
        key = resolve_key(settings, key_file)
        path = vault_path or settings.vault_path
        if not path.is_file():
            raise ConfigurationError(f"{path}: no vault")
        from clinical_mm.deid.vault import PseudonymVault

        vault = PseudonymVault(path, key)
        try:
            with audit_sink(settings) as sink:
                try:
                    original = vault.lookup(kind, pseudonym)
                except ClinicalMMError as exc:
                    sink.append(AuditRecord(settings.actor, f"reidentify:{kind}", "refused",
                                            input_hash=sha256_hex(pseudonym), detail=exc.__class__.__name__))
                    raise
                sink.append(AuditRecord(settings.actor, f"reidentify:{kind}", "ok", input_hash=sha256_hex(pseudonym)))
        finally:
            vault.close()
    click.echo(original)
