"""The ``clinical-mm`` command line.

Heavy libraries (torch, transformers, monai) are imported inside the commands that need them, so
``clinical-mm --help`` stays fast.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.core.errors import AuditChainError, ClinicalMMError, ConfigurationError, RemoteRefusedError

if TYPE_CHECKING:
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
    from clinical_mm.connectors.dicomweb_client import DicomWebClient
    from clinical_mm.connectors.dimse_client import DimseClient
    from clinical_mm.pipeline.analysis import AnalysisPipeline

__all__ = ["main"]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


def _fail(exc: ClinicalMMError) -> None:
    raise click.ClickException(f"{exc.__class__.__name__}: {exc}")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress at INFO level.")
def cli(verbose: bool) -> None:
    """clinical-mm: de-identify chest radiographs, triage them and draft preliminary reports.

    Drafts are preliminary until a radiologist signs them; triage flags only raise priority.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request's full URL at INFO (a FHIR search URL carries an accession number), and
    # pynetdicom dumps every C-FIND and C-MOVE identifier at INFO (accession numbers, StudyInstanceUIDs)
    for noisy in ("httpx", "httpcore", "pynetdicom"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command()
@click.option("--n", "n", type=int, required=True, help="Number of studies.")
@click.option("--seed", type=int, required=True, help="Data seed (deterministic per seed).")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON with sites, prevalence, demographics (plants site or sex effects).")
@click.option("--workers", type=int, default=None, help="Processes (default: up to 2).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def synth(n: int, seed: int, out: Path, config_path: Path | None, workers: int | None, no_progress: bool) -> None:
    """Synthesise N chest radiograph studies (DICOM with fake PHI, reference reports) and manifest.csv."""
    from clinical_mm.synth.study_synthesizer import StudySynthesizer, SynthConfig

    try:
        cfg = SynthConfig.from_json(config_path) if config_path else SynthConfig()
        studies = StudySynthesizer(seed, cfg).write(n, out, progress=not no_progress, workers=workers)
    except ClinicalMMError as exc:
        _fail(exc)
    click.echo(f"wrote {len(studies)} studies and {out / 'manifest.csv'}")


@cli.command()
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Training manifest of your own studies (manifest.csv format).")
@click.option("--val-manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Validation manifest (calibration, thresholds, metrics).")
@click.option("--synth-seed", type=int, default=1, show_default=True, help="Without --manifest: data seed of the training set.")
@click.option("--synth-n", type=int, default=6000, show_default=True, help="Without --manifest: training studies to synthesise.")
@click.option("--val-seed", type=int, default=2, show_default=True, help="Without --val-manifest: data seed of validation.")
@click.option("--val-n", type=int, default=600, show_default=True, help="Without --val-manifest: validation studies.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initialisation and batching.")
@click.option("--work", type=click.Path(path_type=Path), default=Path("work/train-run"), show_default=True,
              help="Caches and resumable state (re-run the same command to resume).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Model folder to write.")
@click.option("--quick", is_flag=True, help="One epoch per stage (smoke run).")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def train(manifest: Path | None, val_manifest: Path | None, synth_seed: int, synth_n: int, val_seed: int, val_n: int,
          seed: int, work: Path, out: Path, quick: bool, no_progress: bool) -> None:
    """Train the model: tokenizer, LM, image encoder, BLIP-2 stages 1 and 2, triage calibration."""
    import torch

    from clinical_mm.model.configuration import ClinicalMMConfig
    from clinical_mm.model.training import Trainer, TrainingPlan, load_studies
    from clinical_mm.synth.study_synthesizer import StudySynthesizer

    torch.set_num_threads(max(1, torch.get_num_threads()))
    ctx = click.get_current_context()
    given = [(p, ctx.params[p.name]) for p in ctx.command.params if p.name is not None
             and ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT]
    command = "clinical-mm train" + "".join(
        f" {p.opts[0]}" if p.is_flag else f" {p.opts[0]} {shlex.quote(str(v))}" for p, v in given
        if isinstance(p, click.Option) and (not p.is_flag or v))
    try:
        work.mkdir(parents=True, exist_ok=True)
        if manifest is None:
            manifest = work / f"synth-{synth_seed}" / "manifest.csv"
            if not manifest.is_file():
                StudySynthesizer(synth_seed).write(synth_n, manifest.parent, progress=not no_progress)
        if val_manifest is None:
            val_manifest = work / f"synth-{val_seed}" / "manifest.csv"
            if not val_manifest.is_file():
                StudySynthesizer(val_seed).write(val_n, val_manifest.parent, progress=not no_progress)
        config = ClinicalMMConfig()
        plan = TrainingPlan.quick() if quick else TrainingPlan()
        train_data = load_studies(manifest, config, work / "cache", progress=not no_progress)
        val_data = load_studies(val_manifest, config, work / "cache", progress=not no_progress)
        trainer = Trainer(config, plan, work, seed=seed, progress=not no_progress, log=click.echo)
        data_info = {"data": {"train_manifest": str(manifest), "val_manifest": str(val_manifest),
                              "synthetic": manifest.parent.name.startswith("synth-"),
                              "data_seed": synth_seed if manifest.parent.name.startswith("synth-") else None,
                              "val_seed": val_seed if val_manifest.parent.name.startswith("synth-") else None},
                     "training_command": command}
        result = trainer.fit(train_data, val_data, out, data_info)
    except ClinicalMMError as exc:
        _fail(exc)
    click.echo(f"model written to {out} (sha256 {result['weights']['sha256'][:16]}..., "
               f"validation mean AUROC {result['validation']['mean_auroc']})")


def _pipeline(settings: Settings, model_path: Path | None) -> tuple[AnalysisPipeline, SQLiteAuditSink]:
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
    from clinical_mm.deid import DicomDeidentifier
    from clinical_mm.model.report_generator import ReportGenerator
    from clinical_mm.pipeline.analysis import AnalysisPipeline

    key = settings.load_key()
    generator = ReportGenerator.from_path(model_path or settings.model_path)
    sink = SQLiteAuditSink(settings.audit_path)
    return AnalysisPipeline(generator, DicomDeidentifier(key), sink, actor=settings.actor), sink


@cli.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder (results.jsonl, fhir/).")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model folder (default: CLINICAL_MM_MODEL_PATH or the shipped model).")
def analyze(path: Path, out: Path, model_path: Path | None) -> None:
    """Analyse the studies in PATH (a DICOM file, a folder or a DICOMDIR).

    Each study is de-identified, then triaged and drafted. Writes OUT/results.jsonl (one line per study)
    and a FHIR R4 Bundle per analysed study; every study is recorded in the audit log.
    """
    try:
        settings = Settings()
        pipeline, sink = _pipeline(settings, model_path)
        try:
            results = pipeline.run(path, out)
        finally:
            sink.close()
    except ClinicalMMError as exc:
        _fail(exc)
    ok = sum(r.error is None for r in results)
    click.echo(f"{ok} analysed, {len(results) - ok} refused; results in {out / 'results.jsonl'}; "
               f"audit log {settings.audit_path}")


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-output"), show_default=True)
@click.option("--n", "n", type=int, default=6, show_default=True, help="Synthetic studies to make.")
@click.option("--seed", type=int, default=20261127, show_default=True, help="Data seed of the demo studies.")
def demo(out: Path, n: int, seed: int) -> None:
    """Synthesise studies plus one file that must be refused, analyse them, print a table."""
    import os
    import shutil

    from clinical_mm.synth.study_synthesizer import StudySynthesizer

    os.environ.setdefault("CLINICAL_MM_MODE", "demo")
    try:
        settings = Settings(data_dir=out / "data") if "CLINICAL_MM_DATA_DIR" not in os.environ else Settings()
        if settings.mode != "demo" and settings.key is None and settings.key_file is None:
            raise ConfigurationError("demo needs CLINICAL_MM_MODE=demo or a key")
        inputs = out / "input"
        if inputs.exists():
            shutil.rmtree(inputs)
        click.echo(f"synthesising {n} chest radiograph studies with fake PHI in {inputs} ...")
        StudySynthesizer(seed).write(n, inputs, progress=False, workers=1)
        (inputs / "manifest.csv").rename(out / "manifest.csv")
        refuse = inputs / "refuse" / "ct_head.dcm"
        refuse.parent.mkdir(parents=True, exist_ok=True)
        from pydicom.data import get_testdata_file

        ct = get_testdata_file("CT_small.dcm")
        shutil.copyfile(str(ct), refuse)
        (inputs / "refuse" / "not_dicom.dcm").write_bytes(b"this is not a DICOM file\n")
        pipeline, sink = _pipeline(settings, None)
        click.echo(f"model {pipeline.generator.loaded.model_id} sha256 {pipeline.generator.loaded.sha256[:16]}...")
        try:
            results = pipeline.run(inputs, out)
        finally:
            sink.close()
    except ClinicalMMError as exc:
        _fail(exc)
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
    click.echo(f"\nresults: {out / 'results.jsonl'}\nFHIR bundles: {out / 'fhir'}\n"
               f"audit log: {settings.audit_path} (check with: clinical-mm audit verify --db {settings.audit_path})\n"
               f"reference reports and labels: {out / 'manifest.csv'}\n"
               "Drafts are preliminary and AI-generated: nothing is final until a radiologist signs it.")


@cli.group()
def deid() -> None:
    """De-identification: DICOM files (PS3.15 profile and options) and re-identification for the key holder."""


def _option_flags(fn: _F) -> _F:
    """One named flag per PS3.15 Annex E option (Table E.1-1's option columns)."""
    from clinical_mm.deid.confidentiality_profile import OPTION_CODES, Option

    for opt in reversed(list(Option)):
        flag = "--" + opt.name.lower().replace("_", "-")
        fn = click.option(flag, opt.value, is_flag=True, help=f"{OPTION_CODES[opt.value][1]} (DCM {OPTION_CODES[opt.value][0]}).")(fn)
    return fn


def _key(settings: Settings, key_file: Path | None) -> PseudonymKey:
    """The pseudonymisation key: ``--key-file`` when given (it wins over CLINICAL_MM_KEY), else the settings'."""
    if key_file is not None:
        settings = settings.model_copy(update={"key": None, "key_file": key_file})
    return settings.load_key()


@deid.command("dicom")
@click.argument("src", type=click.Path(exists=True, path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pseudonymisation key (hex); default CLINICAL_MM_KEY / CLINICAL_MM_KEY_FILE.")
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
@_option_flags
def deid_dicom(src: Path, dst: Path, key_file: Path | None, quarantine: Path | None, vault_path: Path | None,
               safe_private_list: Path | None, text_regions: Path | None, workers: int | None,
               **options: bool) -> None:
    """De-identify the DICOM files in SRC (a file or a folder) into DST.

    Writes DST/<study>/<series>/<instance>.dcm and DST/<study>/receipt.json. Images that may carry
    burned-in text are read by OCR (tesseract) and redacted; files that cannot be de-identified or verified
    safely are copied to the quarantine folder with the reason and never reach DST.
    """
    import os

    from clinical_mm.deid.confidentiality_profile import ConfidentialityProfile
    from clinical_mm.deid.pixel_text import KnownTextRegions
    from clinical_mm.deid.safe_private import SafePrivateList
    from clinical_mm.pipeline.dicom_batch import BatchSpec, run_batch

    if dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
        raise click.ClickException("DST must not be SRC or inside it")
    quarantine = quarantine or dst.with_name(dst.name + "-quarantine")
    try:
        settings = Settings()
        key = _key(settings, key_file)
        chosen = tuple(name for name, on in options.items() if on)
        ConfidentialityProfile(frozenset(chosen))  # refuse conflicting options before any work
        spec = BatchSpec(key, chosen,
                         SafePrivateList.from_json(safe_private_list) if safe_private_list else None,
                         KnownTextRegions.from_json(text_regions) if text_regions else None,
                         settings.audit_path, None if key.ephemeral else vault_path or settings.vault_path,
                         settings.actor)
        report = run_batch(spec, src, dst, quarantine, workers or min(2, os.cpu_count() or 1))
    except ClinicalMMError as exc:
        _fail(exc)
    click.echo(f"{report.written} files de-identified in {len(report.receipts)} studies to {dst} "
               f"(key {key.key_id}; receipts in each study folder)")
    if report.quarantined:
        click.echo(f"{len(report.quarantined)} files quarantined in {quarantine} (reasons in quarantine.jsonl):")
        for entry in report.quarantined:
            click.echo(f"  {entry.source}: {entry.reason}")


def _text_worker_init(key: PseudonymKey) -> None:
    global _TEXT_DEID
    from clinical_mm.deid.text_deidentifier import TextDeidentifier

    _TEXT_DEID = TextDeidentifier(key)


_TEXT_DEID: object = None


def _text_worker(batch: list[tuple[str, str, str]]) -> list[tuple[str, str, list[dict[str, object]]]]:
    from clinical_mm.deid.text_deidentifier import TextDeidentifier

    assert isinstance(_TEXT_DEID, TextDeidentifier)
    done = _TEXT_DEID.deidentify_many([text for _, text, _ in batch], [patient for _, _, patient in batch])
    return [(ident, out, [s.to_dict() for s in spans]) for (ident, _, _), (out, spans) in zip(batch, done, strict=True)]


@deid.command("text")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--jsonl", "jsonl", type=click.File("r", encoding="utf-8"),
              help='Input lines {"id", "text"} (optionally "patient"): one output line each.')
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help='json: {"id", "text", "spans": [{"start", "end", "entity_type", "score"}]} per input, spans in '
                   "the original text's coordinates.")
@click.option("--patient", default="", help="Patient identifier: surrogates and date shifts agree with the DICOM side.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pseudonymisation key (hex); default CLINICAL_MM_KEY / CLINICAL_MM_KEY_FILE.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Processes for --jsonl (default: up to 2).")
def deid_text(file: Any, jsonl: Any, fmt: str, patient: str, key_file: Path | None, workers: int | None) -> None:
    """De-identify clinical text from FILE (or standard input), or each line of --jsonl."""
    import json
    import os
    from multiprocessing import Pool

    try:
        key = _key(Settings(), key_file)
        if jsonl is None:
            items = [("-" if file.name == "<stdin>" else file.name, file.read(), patient)]
        else:
            items = _jsonl_items(jsonl, lambda row: (str(row["id"]), str(row["text"]),
                                                     str(row.get("patient", patient))),
                                 "a JSON object with id and text")
        n_workers = min(workers or min(2, os.cpu_count() or 1), len(items))
        size = max(1, min(64, len(items) // (4 * n_workers)))  # spaCy reads each batch in one pass
        batches = [items[i : i + size] for i in range(0, len(items), size)]
        if n_workers > 1:
            with Pool(n_workers, initializer=_text_worker_init, initargs=(key,)) as pool:
                results = [r for done in pool.imap(_text_worker, batches) for r in done]
        else:
            _text_worker_init(key)
            results = [r for batch in batches for r in _text_worker(batch)]
    except ClinicalMMError as exc:
        _fail(exc)
    for ident, text, spans in results:
        if fmt == "json":
            click.echo(json.dumps({"id": ident, "text": text, "spans": spans}))
        else:
            click.echo(text)


@deid.command("evaluate-text")
@click.option("--notes", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Annotated notes, one JSON object per line {id, text, spans: [{start, end, type}]} "
                   "(default: the shipped set of 330 notes).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def deid_evaluate_text(notes: Path | None, fmt: str) -> None:
    """Recall per PHI type and character precision of the text de-identifier on annotated notes."""
    import json
    import secrets

    from clinical_mm.deid.text_deidentifier import TextDeidentifier
    from clinical_mm.evaluation.phi_note_corpus import SHIPPED_NOTES, load_notes
    from clinical_mm.evaluation.text_deid_evaluation import score_notes

    try:
        annotated = load_notes(notes or SHIPPED_NOTES)
        deid = TextDeidentifier(PseudonymKey(secrets.token_bytes(32), ephemeral=True))  # finding only
        texts = [n.text for n in annotated]
        found = {text: [(s.start, s.end, s.entity_type) for s in spans]
                 for text, spans in zip(texts, deid.find_many(texts), strict=True)}  # spaCy batches them itself
        score = score_notes(annotated, lambda text: found[text])
    except ClinicalMMError as exc:
        _fail(exc)
    click.echo(json.dumps(score.to_dict(), indent=2) if fmt == "json" else score.table())


@deid.command("train-name-model")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the model (gzip JSON); the shipped one is clinical_mm/data/name_likeness.json.gz.")
@click.option("--dictionary", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="English word list, one word per line (default /usr/share/dict/american-english, Debian's wamerican).")
def deid_train_name_model(out: Path, dictionary: Path | None) -> None:
    """Train the name-likeness model the text de-identifier asks about unknown capitalised words (about 20 s)."""
    from clinical_mm.deid.name_likeness import DICTIONARY, train

    _train_and_print(lambda: train(out, dictionary or DICTIONARY))


@deid.command("train-context-model")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the tagger (gzip JSON); the shipped one is clinical_mm/data/context_tagger.json.gz.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of the annotated PHI note sets and PHI-free texts (default: the shipped evaluation/data).")
def deid_train_context_model(out: Path, data_dir: Path | None) -> None:
    """Train the context tagger that finds names and places by the words around them (about 10 s)."""
    from clinical_mm.deid.context_tagger import train

    _train_and_print(lambda: train(out, data_dir))


def _train_and_print(train: Callable[[], dict[str, Any]]) -> None:
    """Run a de-identification model's training and print its figures as JSON (a clear error if it cannot)."""
    import json

    try:
        figures = train()
    except ClinicalMMError as exc:
        _fail(exc)
    click.echo(json.dumps(figures, indent=2))


@deid.command("reidentify")
@click.argument("pseudonym")
@click.option("--kind", type=click.Choice(["patient", "accession", "uid"]), default="patient", show_default=True,
              help="What the pseudonym stands for.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pseudonymisation key (hex); default CLINICAL_MM_KEY / CLINICAL_MM_KEY_FILE.")
@click.option("--vault", "vault_path", type=click.Path(path_type=Path),
              help="Re-identification vault (default: DATA_DIR/vault.sqlite).")
def deid_reidentify(pseudonym: str, kind: str, key_file: Path | None, vault_path: Path | None) -> None:
    """Print the original value behind PSEUDONYM (key holders only; the lookup is audited)."""
    from clinical_mm.audit.audit_record import AuditRecord, sha256_hex
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
    from clinical_mm.deid.vault import PseudonymVault

    try:
        settings = Settings()
        key = _key(settings, key_file)
        path = vault_path or settings.vault_path
        if not path.is_file():
            raise ConfigurationError(f"{path}: no vault")
        vault = PseudonymVault(path, key)
        sink = SQLiteAuditSink(settings.audit_path)
        try:
            try:
                original = vault.lookup(kind, pseudonym)
            except ClinicalMMError as exc:
                sink.append(AuditRecord(settings.actor, f"reidentify:{kind}", "refused",
                                        input_hash=sha256_hex(pseudonym), detail=exc.__class__.__name__))
                raise
            sink.append(AuditRecord(settings.actor, f"reidentify:{kind}", "ok", input_hash=sha256_hex(pseudonym)))
        finally:
            sink.close()
            vault.close()
    except ClinicalMMError as exc:
        _fail(exc)
    click.echo(original)


@cli.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
@click.option("--db", type=click.Path(path_type=Path), help="Audit SQLite file (default: from settings).")
def audit_verify(db: Path | None) -> None:
    """Walk the hash chain; exit 1 and name the first broken record if it does not hold."""
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink

    path = db or Settings().audit_path
    if not path.is_file():
        raise click.ClickException(f"{path}: no audit log")
    sink = SQLiteAuditSink(path)
    try:
        report = sink.verify()
    except AuditChainError as exc:
        click.echo(f"BROKEN at record {exc.record_id}: {exc}", err=True)
        sys.exit(1)
    except ClinicalMMError as exc:
        _fail(exc)
    finally:
        sink.close()
    click.echo(f"ok: {report.records} records, chain head {report.head}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address for HTTP and DICOM.")
@click.option("--port", type=int, default=8000, show_default=True, help="HTTP port.")
@click.option("--dicom-port", type=int, default=11112, show_default=True, help="DICOM Storage SCP port.")
@click.option("--ae-title", default="CLINICALMM", show_default=True, help="Our AE title.")
@click.option("--allow-aet", "allowed_aets", multiple=True, help="Calling AE title allowed to send (repeatable).")
@click.option("--callback-host", "callback_hosts", multiple=True,
              help="Host callbacks may go to (repeatable; default 127.0.0.1 and localhost).")
@click.option("--quiet-period", type=float, default=2.0, show_default=True,
              help="Seconds without a new instance after which a study is complete and queued.")
@click.option("--public-url", help="Base URL callback receivers use to reach the API (default http://HOST:PORT).")
@click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model folder (default: CLINICAL_MM_MODEL_PATH or the shipped model).")
def serve(host: str, port: int, dicom_port: int, ae_title: str, allowed_aets: tuple[str, ...],
          callback_hosts: tuple[str, ...], quiet_period: float, public_url: str | None, model_path: Path | None) -> None:
    """Run the service: HTTP API, DICOM listener (C-ECHO, C-STORE), job queue and signed triage callbacks.

    State lives in CLINICAL_MM_DATA_DIR (service.sqlite, spool/, results/, audit.sqlite); a restart picks up
    every study left in the queue. Create API keys with `clinical-mm keys create --role ROLE`.
    """
    from clinical_mm.service.server import ServeOptions, run_server

    try:
        run_server(Settings(), ServeOptions(
            host=host, port=port, dicom_port=dicom_port, ae_title=ae_title, allowed_aets=list(allowed_aets),
            callback_hosts=list(callback_hosts) or ["127.0.0.1", "localhost"], quiet_period_s=quiet_period,
            model_path=model_path, public_url=public_url))
    except ClinicalMMError as exc:
        _fail(exc)


def _jsonl_items(jsonl: Any, item: Callable[[Any], _T], expected: str) -> list[_T]:
    """``item`` of each non-blank line of a JSON-lines file; a line it cannot take (not JSON, a field missing
    or of the wrong type) is a :class:`ConfigurationError` naming the file, the line and what was ``expected``."""
    import json

    items = []
    for n, line in enumerate(jsonl, start=1):
        if not line.strip():
            continue
        try:
            items.append(item(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ConfigurationError(f"{jsonl.name}: line {n}: expected {expected}") from None
    return items


def _read_items(file: Any, jsonl: Any, targets: tuple[str, ...]) -> list[tuple[str, str, list[str]]]:
    """(id, text, targets) from FILE or from --jsonl lines {"id", "text", "targets"}."""
    if jsonl is None:
        return [("-" if file.name == "<stdin>" else file.name, file.read(), list(targets))]

    def item(row: Any) -> tuple[str, str, list[str]]:
        own = row.get("targets") or []
        if not isinstance(own, list):
            raise TypeError
        return str(row["id"]), str(row["text"]), [*targets, *map(str, own)]

    return _jsonl_items(jsonl, item, "a JSON object with id, text and optional targets (a list)")


@cli.command()
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--jsonl", "jsonl", type=click.File("r", encoding="utf-8"),
              help='Input lines {"id", "text", "targets": [optional terms]}: one output line each.')
@click.option("--target", "targets", multiple=True, help="A term to find and assert (repeatable; added to each line's).")
@click.option("--format", "fmt", type=click.Choice(["json", "fhir"]), default="json", show_default=True,
              help='json: {"id", "entities": [...], "targets": [...]} per input; fhir: one FHIR R4 transaction '
                   "Bundle per input (Condition, FamilyMemberHistory, MedicationStatement, Observation, Provenance).")
@click.option("--vocabulary", "vocabularies", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A vocabulary file (the shipped one's form) added on top of the shipped vocabulary (repeatable; "
                   "also CLINICAL_MM_VOCABULARY).")
@click.option("--assume-deidentified", is_flag=True,
              help="The input is de-identified already (a corpus that is): skip de-identification; audited.")
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pseudonymisation key (hex) for de-identification; default CLINICAL_MM_KEY / CLINICAL_MM_KEY_FILE.")
def extract(file: Any, jsonl: Any, targets: tuple[str, ...], fmt: str, vocabularies: tuple[Path, ...],
            assume_deidentified: bool, key_file: Path | None) -> None:
    """Structured facts from clinical text: coded entities (problems, medications with dose, route, frequency
    and duration, labs and vital signs with values, measurements, procedures, devices, anatomy and laterality)
    and the target terms asked for, each asserted (present, absent, possible, historical, family, hypothetical)
    by ConText, by section and sentence. The text is de-identified first (PHI masked, offsets kept): offsets are
    into the input text. Audited (counts and hashes, no text)."""
    import json

    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
    from clinical_mm.pipeline.notes import NoteExtraction

    try:
        settings = Settings()
        items = _read_items(file, jsonl, targets)
        extraction = NoteExtraction(None if assume_deidentified else _key(settings, key_file),
                                    _vocabulary(settings, vocabularies))
        sink = SQLiteAuditSink(settings.audit_path)
        try:
            lines = [json.dumps(o) for o in extraction.run(items, fmt, assume_deidentified, sink, settings.actor)]
        finally:
            sink.close()
    except ClinicalMMError as exc:
        _fail(exc)
    for line in lines:
        click.echo(line)


def _vocabulary(settings: Settings, files: tuple[Path, ...]) -> Any:
    from clinical_mm.extraction.vocabulary import Vocabulary

    return Vocabulary.load([*([settings.vocabulary] if settings.vocabulary else []), *files])


@cli.command("evaluate-assertions")
@click.option("--sentences", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='Annotated sentences, one JSON object per line {"id", "text", "start", "end", "assertion"} '
                   "(default: the shipped set).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate_assertions(sentences: Path | None, fmt: str) -> None:
    """Accuracy of the assertion of annotated mentions, overall and per assertion and note style."""

    from clinical_mm.evaluation.assertion_evaluation import SHIPPED_SENTENCES, score_assertions

    report = _evaluation(lambda: score_assertions(sentences or SHIPPED_SENTENCES), fmt)
    if report is None:
        return
    click.echo(f"accuracy {report['accuracy']:.3f} on {report['n']} mentions")
    for group in ("by_assertion", "by_style"):
        for name, row in report[group].items():
            click.echo(f"  {name:<14} {row['accuracy']:.3f}  (n={row['n']})")


def _evaluation(score: Callable[[], dict[str, Any]], fmt: str) -> dict[str, Any] | None:
    """The report ``score()`` makes; with ``--format json`` printed here (and None returned). A typed error
    ends the command with its message."""
    import json

    try:
        report = score()
    except ClinicalMMError as exc:
        _fail(exc)
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return None
    return report


@cli.command("label-report")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
@click.option("--jsonl", "jsonl", type=click.File("r", encoding="utf-8"),
              help='Input lines {"id", "text"}: one output line each.')
def label_report(file: Any, jsonl: Any) -> None:
    """Label radiology reports: each of the 14 CheXpert observations and each triage flag as positive, negative,
    uncertain or not_mentioned. Prints {"id", "chexpert", "flags"} per report (labels only, no text); audited."""
    import json

    from clinical_mm.audit.audit_record import AuditRecord, sha256_hex
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
    from clinical_mm.extraction.chexpert import RadiologyReportLabeler

    try:
        settings = Settings()
        items = _read_items(file, jsonl, ())
        labeler = RadiologyReportLabeler()
        lines = [json.dumps({"id": ident, **labeler.label(text)}) for ident, text, _ in items]
        sink = SQLiteAuditSink(settings.audit_path)
        try:
            sink.append(AuditRecord(settings.actor, "label-report", "ok",
                                    input_hash=sha256_hex("\x00".join(t for _, t, _ in items)),
                                    output_hash=sha256_hex("\n".join(lines)), detail=f"{len(items)} reports"))
        finally:
            sink.close()
    except ClinicalMMError as exc:
        _fail(exc)
    for line in lines:
        click.echo(line)


@cli.command("evaluate-report-labels")
@click.option("--reports", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='Labelled reports, one JSON object per line {"id", "text", "chexpert": {...}, "flags": {...}} '
                   "(default: the shipped hand-written set).")
@click.option("--heldout", is_flag=True, help="Score the shipped held-out reports instead.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Score the flags on a synthetic study manifest (clinical-mm synth) instead.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate_report_labels(reports: Path | None, heldout: bool, manifest: Path | None, fmt: str) -> None:
    """Agreement of the report labeler with labelled reports (F1 per class: positive, negative, uncertain) or
    with a synthetic manifest's flags (F1 of positive flags)."""

    from clinical_mm.evaluation.report_label_evaluation import (
        HELDOUT_REPORTS,
        SHIPPED_REPORTS,
        score_manifest,
        score_reports,
    )

    report = _evaluation(lambda: score_manifest(manifest) if manifest is not None else score_reports(
        reports or (HELDOUT_REPORTS if heldout else SHIPPED_REPORTS)), fmt)
    if report is None:
        return
    if manifest is not None:
        click.echo(f"flags F1 {report['micro']['f1']:.3f} on {report['n']} reports")
        for name, row in report["by_flag"].items():
            click.echo(f"  {name:<18} F1 {row['f1']:.3f}  (tp {row['tp']}, fp {row['fp']}, fn {row['fn']})")
        return
    for kind in ("chexpert", "flags"):
        row = report[kind]
        classes = "  ".join(f"{c} {v['f1']:.3f}" for c, v in row["by_class"].items())
        click.echo(f"{kind}: F1 {row['micro']['f1']:.3f} on {report['n']} reports ({classes})")


@cli.command("evaluate-medications")
@click.option("--lines", "lines_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='Annotated medication lines, one JSON object per line {"id", "text", "drug", "dose", "route", '
                   '"frequency", "duration", "as_needed"} (default: the shipped development set).')
@click.option("--heldout", is_flag=True, help="Score the shipped held-out set instead.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def evaluate_medications(lines_path: Path | None, heldout: bool, fmt: str) -> None:
    """Precision, recall and F1 of medication dose, route, frequency, duration and as-needed on annotated
    medication lines."""

    from clinical_mm.evaluation.medication_evaluation import (
        HELDOUT_MEDICATION_LINES,
        SHIPPED_MEDICATION_LINES,
        score_medications,
    )

    report = _evaluation(lambda: score_medications(
        lines_path or (HELDOUT_MEDICATION_LINES if heldout else SHIPPED_MEDICATION_LINES)), fmt)
    if report is None:
        return
    core = report["dose_route_frequency"]
    click.echo(f"dose/route/frequency F1 {core['f1']:.3f} (precision {core['precision']:.3f}, recall "
               f"{core['recall']:.3f}) on {report['n']} lines; drugs found {report['drugs_found']}/{report['n']}")
    for name, row in report["by_attribute"].items():
        click.echo(f"  {name:<10} F1 {row['f1']:.3f}  precision {row['precision']:.3f}  recall {row['recall']:.3f}"
                   f"  (tp {row['tp']}, fp {row['fp']}, fn {row['fn']})")


@cli.command()
@click.option("--study-uid", help="StudyInstanceUID of the study to fetch.")
@click.option("--accession", help="Accession number whose studies to fetch.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder the studies are written to (study-1/0001.dcm, ...); they hold PHI until de-identified.")
@click.option("--dicomweb", "dicomweb_url", help="The PACS's DICOMweb root (default: CLINICAL_MM_DICOMWEB_URL).")
@click.option("--pacs", "pacs", help="The PACS to query and retrieve from by C-FIND/C-MOVE, AET@host:port "
              "(default: CLINICAL_MM_QR_PACS).")
@click.option("--aet", "ae_title", default="CLINICALMM", show_default=True,
              help="C-MOVE: our AE title, the calling AE and the move destination (the PACS must know it).")
@click.option("--store-host", default="127.0.0.1", show_default=True,
              help="C-MOVE: address the Storage SCP taking the study listens on (one the PACS reaches).")
@click.option("--store-port", type=click.IntRange(0, 65535), default=11113, show_default=True,
              help="C-MOVE: port of that Storage SCP (the PACS's entry for --aet must name it).")
def fetch(study_uid: str | None, accession: str | None, out: Path, dicomweb_url: str | None, pacs: str | None,
          ae_title: str, store_host: str, store_port: int) -> None:
    """Pull studies from the PACS into OUT, for `clinical-mm analyze OUT` or `deid dicom`: by DICOMweb (QIDO-RS
    finds them, WADO-RS retrieves them) or by DIMSE (C-FIND finds them, C-MOVE has the PACS send them to a
    Storage SCP this command runs while it waits). Audited (counts and a hash of the request, no identifier)."""
    from clinical_mm.audit.audit_record import AuditRecord, sha256_hex
    from clinical_mm.audit.sqlite_sink import SQLiteAuditSink
    from clinical_mm.connectors.dicomweb_client import DicomWebClient
    from clinical_mm.connectors.dimse_client import DicomDestination, DimseClient

    try:
        if (study_uid is None) == (accession is None):
            raise ConfigurationError("give exactly one of --study-uid and --accession")
        if dicomweb_url and pacs:
            raise ConfigurationError("give one of --dicomweb and --pacs")
        settings = Settings()
        if not (dicomweb_url or pacs):
            dicomweb_url, pacs = settings.dicomweb_url, settings.qr_pacs
            if dicomweb_url and pacs:
                raise ConfigurationError("both CLINICAL_MM_DICOMWEB_URL and CLINICAL_MM_QR_PACS are set: give "
                                         "--dicomweb or --pacs")
        if not (dicomweb_url or pacs):
            raise ConfigurationError("no PACS to fetch from: give --dicomweb or --pacs (or set "
                                     "CLINICAL_MM_DICOMWEB_URL or CLINICAL_MM_QR_PACS)")
        client: DicomWebClient | DimseClient
        if dicomweb_url:
            token = settings.dicomweb_token.get_secret_value() if settings.dicomweb_token else None
            client = DicomWebClient(dicomweb_url, token=token)
        else:
            client = DimseClient(DicomDestination.parse(str(pacs)), calling_ae_title=ae_title)
        request_hash = sha256_hex(f"{study_uid or ''}|{accession or ''}")
        sink = SQLiteAuditSink(settings.audit_path)
        try:
            try:
                uids = client.find_studies(study_uid=study_uid, accession=accession)
                folders = {uid: out / f"study-{n}" for n, uid in enumerate(uids, 1)}
                if isinstance(client, DicomWebClient):
                    written = _fetch_by_dicomweb(client, folders)
                else:
                    written = _fetch_by_move(client, folders, ae_title, store_host, store_port)
            except ClinicalMMError as exc:
                sink.append(AuditRecord(settings.actor, "fetch", "failed", input_hash=request_hash,
                                        detail=exc.__class__.__name__))
                raise
            finally:
                client.close()
            sink.append(AuditRecord(settings.actor, "fetch", "ok", input_hash=request_hash,
                                    detail=f"{len(uids)} studies, {written} instances"))
        finally:
            sink.close()
    except ClinicalMMError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(ConfigurationError(f"{out}: cannot write ({exc.strerror})"))
    if not uids:
        _fail(ConfigurationError("the PACS holds no study for that request"))
    click.echo(f"fetched {written} instances of {len(uids)} stud{'y' if len(uids) == 1 else 'ies'} into {out}")


def _fetch_by_dicomweb(client: DicomWebClient, folders: dict[str, Path]) -> int:
    """WADO-RS each study into its folder; the number of instances written."""
    written = 0
    for uid, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(client.retrieve_study(uid), 1):
            (folder / f"{i:04d}.dcm").write_bytes(data)
            written += 1
    return written


def _fetch_by_move(client: DimseClient, folders: dict[str, Path], ae_title: str, host: str, port: int) -> int:
    """C-MOVE each study to a Storage SCP of our own that writes it into its folder; the number written.
    Only the PACS's AE title may store, and only instances of the studies asked for are taken."""
    from clinical_mm.connectors.dimse_client import StoreReceiver

    counts = dict.fromkeys(folders, 0)

    def accept(study_uid: str, data: bytes) -> bool:
        if study_uid not in folders:
            return False
        folders[study_uid].mkdir(parents=True, exist_ok=True)
        counts[study_uid] += 1
        (folders[study_uid] / f"{counts[study_uid]:04d}.dcm").write_bytes(data)
        return True

    with StoreReceiver(ae_title, host, port, calling_ae_title=client.pacs.ae_title, accept=accept):
        for uid in folders:
            outcome = client.move_study(uid, ae_title)
            if not counts[uid]:
                raise RemoteRefusedError(f"the PACS reports {outcome.completed} instances moved to {ae_title}, "
                                         f"but none reached {host}:{port} (does the PACS have this address for "
                                         f"{ae_title}?)")
    return sum(counts.values())


@cli.group()
def keys() -> None:
    """API keys of the service (stored hashed in CLINICAL_MM_DATA_DIR/service.sqlite)."""


@keys.command("create")
@click.option("--role", type=click.Choice(["pacs", "radiologist", "auditor", "admin"]), required=True)
@click.option("--name", default="", help="Who holds the key (shown as the signer of the reports it signs).")
def keys_create(role: str, name: str) -> None:
    """Create an API key; it is printed once (key id on stderr, key on stdout)."""
    from clinical_mm.service.server import service_db_path
    from clinical_mm.service.store import ServiceStore

    try:
        store = ServiceStore(service_db_path(Settings()))
        key_id, key = store.create_api_key(role, name)
        store.close()
    except ClinicalMMError as exc:
        _fail(exc)
    click.echo(f"key id {key_id} ({role})", err=True)
    click.echo(key)


@keys.command("revoke")
@click.argument("key_id")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key by its id."""
    from clinical_mm.service.server import service_db_path
    from clinical_mm.service.store import ServiceStore

    try:
        store = ServiceStore(service_db_path(Settings()))
        ok = store.revoke_api_key(key_id)
        store.close()
    except ClinicalMMError as exc:
        _fail(exc)
    if not ok:
        _fail(ConfigurationError(f"no such key id {key_id}"))
    click.echo(f"revoked {key_id}")


def main() -> None:
    cli(prog_name="clinical-mm")


if __name__ == "__main__":
    main()
