"""``clinical-mm zero-shot``, ``ask``, ``ground``, ``index build`` and ``retrieve``: the vision-language uses of
the model on studies (:mod:`clinical_mm.pipeline.vision_language_queries`). Each prints JSON lines, one per
study; studies that are refused say why, and the rest go on. Every query is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from clinical_mm.cli.scaffold import audit_sink, reported_errors
from clinical_mm.core.config import Settings
from clinical_mm.core.errors import ConfigurationError

if TYPE_CHECKING:
    from clinical_mm.pipeline.vision_language_queries import VisionLanguageQueries

__all__ = ["ask", "ground", "index", "retrieve", "zero_shot"]

_MODEL_OPTION = click.option("--model", "model_path", type=click.Path(exists=True, file_okay=False, path_type=Path),
                             help="Model folder (default: CLINICAL_MM_MODEL_PATH or the shipped model).")


@contextmanager
def _queries(model_path: Path | None) -> Iterator[VisionLanguageQueries]:
    """The queries of ``settings``' key, model (ours: a BLIP-2 checkpoint has no contrastive head here), input
    gate, text de-identifier and audit log."""
    from clinical_mm.model.checkpoint import load_model
    from clinical_mm.model.generator_factory import checkpoint_kind
    from clinical_mm.pipeline.vision_language_queries import VisionLanguageQueries

    settings = Settings()
    folder = model_path or settings.model_path
    if checkpoint_kind(folder) != "clinical-mm":
        raise ConfigurationError(f"{folder}: zero-shot, questions, grounding and retrieval need a clinical-mm model "
                                 "folder (its contrastive head, queries and language model)")
    key = settings.load_key()
    loaded = load_model(folder)
    with audit_sink(settings) as sink:
        yield VisionLanguageQueries.from_settings(loaded, key, settings, sink)


def _print_lines(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row))


@click.command("zero-shot")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--finding", "findings", multiple=True, required=True,
              help="A finding in words (repeatable): one of the flags, or any other the reports mention, e.g. "
                   "'pneumothorax', 'endotracheal tube', 'rib fracture'.")
@_MODEL_OPTION
def zero_shot(path: Path, findings: tuple[str, ...], model_path: Path | None) -> None:
    """Score findings named in words on the studies in PATH, through the contrastive head.

    Positive and negative prompts over templates (severity, location, phrasing) are ensembled; the probability
    is calibrated on validation images when the model folder records a calibration (else the raw two-way
    softmax, and 'calibrated' is false). Not a triage flag: it changes no priority.
    """
    with reported_errors(), _queries(model_path) as queries:
        _print_lines(queries.zero_shot(path, list(findings)))


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("question")
@_MODEL_OPTION
def ask(path: Path, question: str, model_path: Path | None) -> None:
    """Answer QUESTION about the image of each study in PATH (presence, side, size, location, count).

    The question is de-identified before the model reads it; the answer is a preliminary reading.
    """
    with reported_errors(), _queries(model_path) as queries:
        _print_lines(queries.ask(path, question))


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("phrase")
@_MODEL_OPTION
def ground(path: Path, phrase: str, model_path: Path | None) -> None:
    """Show where PHRASE is on the image of each study in PATH: its peak and box on the image's 0-100 grid and
    in pixels (occlusion sensitivity of the image's similarity to the phrase)."""
    with reported_errors(), _queries(model_path) as queries:
        _print_lines(queries.ground(path, phrase))


@click.group()
def index() -> None:
    """Vector indexes of studies for image-report retrieval."""


@index.command("build")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Index folder to write.")
@_MODEL_OPTION
def index_build(manifest: Path, out: Path, model_path: Path | None) -> None:
    """Index the studies of MANIFEST (manifest.csv: path, findings, impression, the flag columns): each image's
    embedding and its de-identified report, in a faiss index (OUT; exact inner product, HNSW above 2 million vectors)."""
    with reported_errors(), _queries(model_path) as queries:
        summary = queries.build_index(manifest, out)
    click.echo(json.dumps(summary))


@click.command()
@click.option("--index", "index_path", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="An index folder written by 'clinical-mm index build'.")
@click.option("--image", type=click.Path(exists=True, path_type=Path),
              help="A study (file or folder): the indexed reports most like its image.")
@click.option("--text", help="A report or phrase: the indexed studies whose images are most like it.")
@click.option("--k", type=click.IntRange(1, 100), default=5, show_default=True, help="How many to return.")
@_MODEL_OPTION
def retrieve(index_path: Path, image: Path | None, text: str | None, k: int, model_path: Path | None) -> None:
    """Retrieve indexed studies by image (their reports) or by text (their images)."""
    from clinical_mm.model.vector_index import StudyIndex

    if (image is None) == (text is None):
        raise click.UsageError("give either --image or --text")
    with reported_errors(), _queries(model_path) as queries:
        found = StudyIndex.load(index_path)
        if text is not None:
            hits = queries.retrieve_by_text(found, text, k)
            _print_lines([{"rank": r + 1, "key": h.entry["key"], "score": h.score, "report": h.entry.get("report")}
                          for r, h in enumerate(hits)])
        else:
            assert image is not None
            _print_lines(queries.retrieve_by_image(found, image, k))
