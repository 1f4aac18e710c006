"""Which report generator a model folder holds, and that generator loaded.

A folder with our ``manifest.json`` is a clinical-mm model (:class:`ClinicalMMReportGenerator`); a folder with a
transformers ``config.json`` of ``model_type`` ``blip-2`` is a staged BLIP-2 checkpoint
(:class:`Blip2ReportGenerator`). Anything else is refused with what was expected. The CLI's ``analyze`` and
``demo`` and the service load their model here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from clinical_mm.core.config import DEFAULT_MODEL_PATH
from clinical_mm.core.errors import CheckpointError
from clinical_mm.model.base import DraftReader, InputGate, ReportGenerator
from clinical_mm.model.blip2_report_generator import (
    BLIP2_MODEL_TYPE,
    CONFIG,
    Blip2ReportGenerator,
    read_config,
)
from clinical_mm.model.checkpoint import MANIFEST, load_input_gate, load_model
from clinical_mm.model.report_generator import ClinicalMMReportGenerator

__all__ = ["CheckpointKind", "checkpoint_kind", "input_gate_for", "load_report_generator"]

_log = logging.getLogger(__name__)

CheckpointKind = Literal["clinical-mm", "blip-2"]


def checkpoint_kind(path: Path) -> CheckpointKind:
    """``clinical-mm`` where ``path`` holds our ``manifest.json`` (it wins over a ``config.json`` beside it),
    ``blip-2`` where it holds a ``config.json`` of that ``model_type``; else :class:`CheckpointError`."""
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a model folder")
    if (path / MANIFEST).is_file():
        return "clinical-mm"
    if (path / CONFIG).is_file():
        model_type = read_config(path).get("model_type")
        if model_type == BLIP2_MODEL_TYPE:
            return "blip-2"
        raise CheckpointError(f"{path / CONFIG}: model_type {str(model_type)[:40]!r} is not supported (expected "
                              f"{BLIP2_MODEL_TYPE!r}, a transformers Blip2ForConditionalGeneration checkpoint)")
    raise CheckpointError(f"{path}: expected {MANIFEST} (a clinical-mm model folder) or {CONFIG} with model_type "
                          f"{BLIP2_MODEL_TYPE!r} (a BLIP-2 checkpoint written by save_pretrained)")


def load_report_generator(path: Path, *, draft_reader: DraftReader) -> ReportGenerator:
    """The report generator of the model folder ``path`` (see :func:`checkpoint_kind`).

    ``draft_reader`` reads a BLIP-2 draft's flags from its text (the report labeler: the model stage has none of
    its own); our model's flags come from its calibrated triage head and do not use it.
    """
    if checkpoint_kind(path) == "blip-2":
        return Blip2ReportGenerator.from_path(path, draft_reader=draft_reader)
    return ClinicalMMReportGenerator.from_path(path)


def input_gate_for(generator: ReportGenerator, shipped: Path = DEFAULT_MODEL_PATH) -> InputGate | None:
    """The image-level input gate read before ``generator``: its own folder's when it is ours, else the shipped
    model's (our detector and image encoder read the pixels whichever model drafts). None when that folder has
    no gate (a model trained before gates)."""
    loaded = generator.loaded if isinstance(generator, ClinicalMMReportGenerator) else load_model(shipped)
    gate = load_input_gate(loaded)
    if gate is None:
        _log.warning("the model folder has no input gate: images are analysed without the pixel check "
                     "(fit one with clinical-mm train-input-gate)")
    return gate
