"""The evaluation commands of ``clinical-mm``: the de-identifier, the assertion, medication and report labelers
scored on annotated sets, and the de-identifier's two small models retrained.

The command line sits below the evaluation package and never imports it: these commands reach the ``clinical-mm``
group through the ``clinical_mm.commands`` entry point (pyproject.toml), whose :func:`register` adds them.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from clinical_mm.cli.scaffold import format_option, print_report, terms_option, threshold_option
from clinical_mm.core.config import PseudonymKey, Settings
from clinical_mm.evaluation.assertion_evaluation import SHIPPED_SENTENCES, score_assertions
from clinical_mm.evaluation.compliance.commands import evaluate
from clinical_mm.evaluation.compliance.monitor_command import monitor
from clinical_mm.evaluation.mesh_report_evaluation import MESH_PARTS, READINGS, score_mesh
from clinical_mm.evaluation.note_entity_evaluation import (
    NOTE_ANNOTATIONS,
    NOTE_ENTITY_TYPES,
    score_note_entities,
)
from clinical_mm.evaluation.phi_note_corpus import (
    SHIPPED_NOTES,
    SPLITS,
    AnnotatedNote,
    load_notes,
    split_notes,
)
from clinical_mm.evaluation.text_deid_evaluation import TextDeidScore, curve_table, score_curve, score_notes

__all__ = [
    "deid_evaluate_text",
    "deid_train_context_model",
    "deid_train_name_model",
    "evaluate_assertions",
    "evaluate_medications",
    "evaluate_note_entities",
    "evaluate_report_labels",
    "register",
]


def register(cli: click.Group) -> None:
    """Add ``evaluate`` (the evaluation report of the model), ``monitor`` (its post-deployment monitoring),
    ``evaluate-assertions``, ``evaluate-report-labels``, ``evaluate-medications`` and ``evaluate-note-entities`` to
    ``cli``, and
    ``evaluate-text``, ``train-name-model`` and ``train-context-model`` to its ``deid`` group."""
    deid = cli.commands.get("deid")
    if not isinstance(deid, click.Group):
        raise LookupError("the command line has no 'deid' group for the de-identification evaluations")
    for command in (evaluate, monitor, evaluate_assertions, evaluate_report_labels, evaluate_medications,
                    evaluate_note_entities):
        cli.add_command(command)
    for command in (deid_evaluate_text, deid_train_name_model, deid_train_context_model):
        deid.add_command(command)


def _found_spans(annotated: list[AnnotatedNote], terms: Path | None, threshold: float | None
                 ) -> dict[str, list[tuple[int, int, str, float]]]:
    """Each note's spans (start, end, type, final score) as the site runs the text de-identifier: its vocabulary,
    recognizer and term files (``terms`` wins over CLINICAL_MM_DEID_TERMS) and ``threshold`` (else
    CLINICAL_MM_DEID_THRESHOLD, else the de-identifier's default)."""
    from clinical_mm.pipeline.text_deidentification import site_vocabulary, text_deidentifier

    settings = Settings()
    deid = text_deidentifier(PseudonymKey(secrets.token_bytes(32), ephemeral=True),  # finding only
                             site_vocabulary(settings.vocabulary), settings.recognizers, terms or settings.deid_terms,
                             settings.deid_threshold if threshold is None else threshold)
    texts = [n.text for n in annotated]
    return {text: [(s.start, s.end, s.entity_type, s.score) for s in spans]
            for text, spans in zip(texts, deid.find_many(texts), strict=True)}  # spaCy batches them itself


def _text_deid_score(notes: Path | None, split: str = "all", terms: Path | None = None,
                     threshold: float | None = None) -> TextDeidScore:
    """The text de-identifier's recall and precision on annotated notes (default: the shipped set), on one half
    of them (``split``)."""
    annotated = split_notes(load_notes(notes or SHIPPED_NOTES), split)
    found = _found_spans(annotated, terms, threshold)
    return score_notes(annotated, lambda text: [(s, e, k) for s, e, k, _ in found[text]])


def _text_deid_curve(notes: Path | None, split: str = "all", terms: Path | None = None) -> dict[str, Any]:
    """Recall and character precision at each threshold of ``CURVE_THRESHOLDS``, from one run of the
    de-identifier with threshold 0 (every span it finds, with its final score)."""
    annotated = split_notes(load_notes(notes or SHIPPED_NOTES), split)
    found = _found_spans(annotated, terms, 0.0)
    return {"notes": len(annotated), "spans": sum(len(n.spans) for n in annotated), "split": split,
            "curve": score_curve(annotated, lambda text: found[text])}


def _score_table(score: TextDeidScore, split: str) -> Iterator[str]:
    if split != "all":
        yield f"split {split} ({_SPLIT_HELP[split]})"
    yield score.table()


def _curve_table(report: dict[str, Any]) -> Iterator[str]:
    yield f"notes {report['notes']}, annotated PHI spans {report['spans']}, split {report['split']}"
    yield curve_table(report["curve"])


_SPLIT_HELP = {"tune": "the half we tuned the rules on", "check": "the other half: tune2 and check2",
               "tune2": "the half of check we tuned on from issue 19's fourth session",
               "check2": "the half of check never tuned on", "all": "every note"}


@click.command("evaluate-text")
@click.option("--notes", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Annotated notes, one JSON object per line {id, text, spans: [{start, end, type}]} (default: the "
                   "shipped set of 330 notes); the PhysioNet deid corpus's types (HCPName, PTName, DateYear, "
                   "Location, ...) are read as ours.")
@click.option("--split", type=click.Choice(SPLITS), default="all", show_default=True,
              help="Score one part of the notes, split by patient (the id's part before the first '-'): "
                   + "; ".join(f"{name}: {what}" for name, what in _SPLIT_HELP.items()) + ".")
@threshold_option()
@terms_option()
@click.option("--curve", is_flag=True,
              help="Recall and character precision at thresholds 0.1, 0.2, ... 0.9, from one run (--threshold is "
                   "not used).")
@format_option("table", "json")
def deid_evaluate_text(notes: Path | None, split: str, threshold: float | None, terms: Path | None, curve: bool,
                       fmt: str) -> None:
    """Recall per PHI type and character precision of the text de-identifier on annotated notes, or (--curve)
    both at a range of score thresholds."""
    if curve:
        print_report(lambda: _text_deid_curve(notes, split, terms), fmt, table=_curve_table)
        return
    print_report(lambda: _text_deid_score(notes, split, terms, threshold), fmt,
                 table=lambda score: _score_table(score, split),
                 as_dict=lambda score: {"split": split, **score.to_dict()})


@click.command("train-name-model")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the model (gzip JSON); the shipped one is clinical_mm/data/name_likeness.json.gz.")
@click.option("--dictionary", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="English word list, one word per line (default /usr/share/dict/american-english, Debian's wamerican).")
def deid_train_name_model(out: Path, dictionary: Path | None) -> None:
    """Train the name-likeness model the text de-identifier asks about unknown capitalised words (about 20 s)."""
    from clinical_mm.evaluation.deid_training import DICTIONARY, train_name_likeness

    print_report(lambda: train_name_likeness(out, dictionary or DICTIONARY))


@click.command("train-context-model")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the tagger (gzip JSON); the shipped one is clinical_mm/data/context_tagger.json.gz.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of the annotated PHI note sets and PHI-free texts (default: the shipped evaluation/data).")
def deid_train_context_model(out: Path, data_dir: Path | None) -> None:
    """Train the context tagger that finds names and places by the words around them (about 10 s)."""
    from clinical_mm.evaluation.deid_training import train_context_tagger

    print_report(lambda: train_context_tagger(out, data_dir))


def _assertion_table(report: dict[str, Any]) -> Iterator[str]:
    """Overall accuracy, then one line per assertion and per note style."""
    yield f"accuracy {report['accuracy']:.3f} on {report['n']} mentions"
    for group in ("by_assertion", "by_style"):
        for name, row in report[group].items():
            yield f"  {name:<14} {row['accuracy']:.3f}  (n={row['n']})"


@click.command("evaluate-assertions")
@click.option("--sentences", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='Annotated sentences, one JSON object per line {"id", "text", "start", "end", "assertion"} '
                   "(default: the shipped set).")
@format_option("table", "json")
def evaluate_assertions(sentences: Path | None, fmt: str) -> None:
    """Accuracy of the assertion of annotated mentions, overall and per assertion and note style."""
    print_report(lambda: score_assertions(sentences or SHIPPED_SENTENCES), fmt, table=_assertion_table)


def _manifest_flags_table(report: dict[str, Any]) -> Iterator[str]:
    """F1 of the positive flags on a synthetic manifest, then one line per flag."""
    yield f"flags F1 {report['micro']['f1']:.3f} on {report['n']} reports"
    for name, row in report["by_flag"].items():
        yield f"  {name:<18} F1 {row['f1']:.3f}  (tp {row['tp']}, fp {row['fp']}, fn {row['fn']})"


def _report_labels_table(report: dict[str, Any]) -> Iterator[str]:
    """One line each for the CheXpert observations and the triage flags: micro F1 and F1 per class."""
    for kind in ("chexpert", "flags"):
        row = report[kind]
        classes = "  ".join(f"{c} {v['f1']:.3f}" for c, v in row["by_class"].items())
        yield f"{kind}: F1 {row['micro']['f1']:.3f} on {report['n']} reports ({classes})"


def _mesh_table(report: dict[str, Any]) -> Iterator[str]:
    """Per part (tuned on, not tuned on) and reading: micro and macro F1, then one line per flag; then
    the disagreements asked for."""
    for part in ("tune", "untuned"):
        if part not in report:
            continue
        row = report[part]
        said = "tuned on" if part == "tune" else "never tuned on"
        yield (f"{part} ({said}): {row['n']} reports, {report['mapping']} mapping, No Finding agreement "
               f"{row['no_finding_agreement']:.3f}")
        for reading in READINGS:
            t = row[reading]
            said = "triage reading (stated)" if reading == "stated" else reading.replace("_", " ")
            yield f"  {said}: micro F1 {t['micro']['f1']:.3f}  macro F1 {t['macro_f1']:.3f}"
            for name, v in t["by_flag"].items():
                yield (f"    {name:<17} F1 {v['f1']:.3f}  precision {v['precision']:.3f}  recall {v['recall']:.3f}"
                       f"  (support {v['support']}, tp {v['tp']}, fp {v['fp']}, fn {v['fn']})")
        for flag, shown in row.get("disagreements", {}).items():
            for d in shown:
                yield f"  [{part}] {flag}: labeler {d['label']}, MeSH {d['mesh']!r} (uid {d['uid']})"
                yield "      " + d["text"].replace("\n", "\n      ")


@click.command("evaluate-report-labels")
@click.option("--reports", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='Labelled reports, one JSON object per line {"id", "text", "chexpert": {...}, "flags": {...}} '
                   "(default: the shipped hand-written set).")
@click.option("--heldout", is_flag=True, help="Score the shipped held-out reports instead.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Score the flags on a synthetic study manifest (clinical-mm synth) instead.")
@click.option("--mesh", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='Score the triage flags against people\'s MeSH indexing of real reports instead: one JSON object '
                   'per line {"uid", "MeSH", "indication", "comparison", "findings", "impression"} (the Indiana '
                   "University chest radiograph collection's form).")
@click.option("--part", type=click.Choice(MESH_PARTS), default="all", show_default=True,
              help="With --mesh: the part tuned on, the part never tuned on (split by a hash of the report id), or "
                   "both, reported separately.")
@click.option("--strict", is_flag=True, help="With --mesh: map MeSH headings without the near-synonyms.")
@click.option("--examples", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --mesh: print up to N disagreements per flag and part, with the report.")
@format_option("table", "json")
def evaluate_report_labels(reports: Path | None, heldout: bool, manifest: Path | None, mesh: Path | None, part: str,
                           strict: bool, examples: int, fmt: str) -> None:
    """Agreement of the report labeler with labelled reports (F1 per class: positive, negative, uncertain), with
    a synthetic manifest's flags (F1 of positive flags) or with the MeSH indexing of real reports (per flag
    precision, recall and F1, micro and macro; an uncertain label counted as negative and as positive)."""
    from clinical_mm.evaluation.report_label_evaluation import (
        HELDOUT_REPORTS,
        SHIPPED_REPORTS,
        score_manifest,
        score_reports,
    )

    if mesh is not None:
        print_report(lambda: score_mesh(mesh, near=not strict, examples=examples, part=part), fmt,
                     table=_mesh_table)
    elif manifest is not None:
        print_report(lambda: score_manifest(manifest), fmt, table=_manifest_flags_table)
    else:
        print_report(lambda: score_reports(reports or (HELDOUT_REPORTS if heldout else SHIPPED_REPORTS)), fmt,
                     table=_report_labels_table)


def _note_entities_table(report: dict[str, Any]) -> Iterator[str]:
    """Per part and type: overlap and exact precision, recall, F1; then the examples asked for."""
    for part in ("tune", "untuned"):
        if part not in report:
            continue
        said = "rules written from these notes" if part == "tune" else "never read for rules"
        yield f"{part} ({said}): {report[part]['notes']} notes"
        for kind in NOTE_ENTITY_TYPES:
            for match in ("overlap", "exact"):
                v = report[part][kind][match]
                yield (f"  {kind:<10} {match:<7} F1 {v['f1']:.3f}  precision {v['precision']:.3f}  recall "
                       f"{v['recall']:.3f}  (tp {v['tp']}, fp {v['fp']}, fn {v['fn']})")
    for key, shown in report.get("examples", {}).items():
        for e in shown:
            yield f"  [{key}] {e['span']!r} (note {e['id']}): {e['context']}"


@click.command("evaluate-note-entities")
@click.option("--notes", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help='The PhysioNet deid notes, one JSON object {"id", "text", ...} per line (the development set: '
                   "../shared/data/physionet_deid_dev/notes.jsonl; not in the repository).")
@click.option("--annotations", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Medication and problem spans of some of those notes (default: the shipped annotation of 60).")
@click.option("--examples", type=click.IntRange(min=0), default=0, show_default=True,
              help="Print up to N missed and N extra spans per part and type, with the text around them.")
@format_option("table", "json")
def evaluate_note_entities(notes: Path, annotations: Path | None, examples: int, fmt: str) -> None:
    """Medications and problems found by the extraction in real ICU notes against their annotation: precision,
    recall and F1, spans overlapping and exact, per part (rules written from it, never read for rules)."""
    print_report(lambda: score_note_entities(notes, annotations or NOTE_ANNOTATIONS, examples), fmt,
                 table=_note_entities_table)


def _medications_table(report: dict[str, Any]) -> Iterator[str]:
    """F1 of dose, route and frequency together, then one line per attribute."""
    core = report["dose_route_frequency"]
    yield (f"dose/route/frequency F1 {core['f1']:.3f} (precision {core['precision']:.3f}, recall "
           f"{core['recall']:.3f}) on {report['n']} lines; drugs found {report['drugs_found']}/{report['n']}")
    for name, row in report["by_attribute"].items():
        yield (f"  {name:<10} F1 {row['f1']:.3f}  precision {row['precision']:.3f}  recall {row['recall']:.3f}"
               f"  (tp {row['tp']}, fp {row['fp']}, fn {row['fn']})")


@click.command("evaluate-medications")
@click.option("--lines", "lines_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help='Annotated medication lines, one JSON object per line {"id", "text", "drug", "dose", "route", '
                   '"frequency", "duration", "as_needed"} (default: the shipped development set).')
@click.option("--heldout", is_flag=True, help="Score the shipped held-out set instead.")
@format_option("table", "json")
def evaluate_medications(lines_path: Path | None, heldout: bool, fmt: str) -> None:
    """Precision, recall and F1 of medication dose, route, frequency, duration and as-needed on annotated
    medication lines."""
    from clinical_mm.evaluation.medication_evaluation import (
        HELDOUT_MEDICATION_LINES,
        SHIPPED_MEDICATION_LINES,
        score_medications,
    )

    print_report(lambda: score_medications(
        lines_path or (HELDOUT_MEDICATION_LINES if heldout else SHIPPED_MEDICATION_LINES)), fmt,
        table=_medications_table)
