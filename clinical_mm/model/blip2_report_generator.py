"""A staged BLIP-2-family checkpoint (transformers ``Blip2ForConditionalGeneration``) as a report generator.

The folder is what ``save_pretrained`` of the model and of its ``Blip2Processor`` write: ``config.json``
(``model_type`` ``blip-2``), the weights as safetensors (``model.safetensors``, or the shards that
``model.safetensors.index.json`` lists), the image processor's and the tokenizer's files. Everything is read
from that folder (``local_files_only``, no remote code, no pickled weights): nothing is downloaded.

A BLIP-2 checkpoint has no triage head. Its flags are read from the text it writes by a
:class:`~clinical_mm.model.base.DraftReader` (the report labeler's triage reading): 1.0 where the draft states the
finding, 0.0 where it does not, each threshold 0.5. They are text-derived 0/1 values, **not calibrated
probabilities**; the priority follows the raised flags as for our model.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydicom.dataset import Dataset
from transformers import Blip2ForConditionalGeneration, Blip2Processor
from transformers.utils import logging as transformers_logging

from clinical_mm.audit.audit_record import sha256_file
from clinical_mm.core.errors import CheckpointError
from clinical_mm.core.findings import FINDINGS, priority_for
from clinical_mm.core.types import DeidentifiedStudy
from clinical_mm.model.base import DraftReader, DraftReport
from clinical_mm.model.preprocessing import ChestXrayPreprocessor

__all__ = ["BLIP2_MODEL_TYPE", "DEFAULT_PROMPT", "TEXT_FLAG_THRESHOLD", "Blip2ReportGenerator", "read_config",
           "split_sections", "weights_files", "weights_sha256"]

#: ``model_type`` of a BLIP-2 ``config.json``
BLIP2_MODEL_TYPE = "blip-2"
#: the text the model continues: our report form starts with it (``FINDINGS: ... IMPRESSION: ...``)
DEFAULT_PROMPT = "FINDINGS:"
#: the threshold of every text-derived flag (a flag is 1.0 where the draft states the finding, else 0.0)
TEXT_FLAG_THRESHOLD = 0.5
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
ARCHITECTURE = "Blip2ForConditionalGeneration"

_FINDINGS_HEADING = re.compile(r"^\s*findings\s*:", re.IGNORECASE)
_IMPRESSION_HEADING = re.compile(r"\bimpression\s*:", re.IGNORECASE)


def split_sections(text: str) -> tuple[str, str]:
    """``(findings, impression)`` of a generated report: a leading ``FINDINGS:`` dropped, the text after the
    first ``IMPRESSION:`` the impression (headings in any case); without that heading all of it is findings."""
    body = _FINDINGS_HEADING.sub("", text, count=1)
    heading = _IMPRESSION_HEADING.search(body)
    if heading is None:
        return body.strip(), ""
    return body[: heading.start()].strip(), body[heading.end():].strip()


def read_config(path: Path) -> dict[str, Any]:
    """``path/config.json`` as a dict; :class:`CheckpointError` when it is missing or no JSON object."""
    config = path / CONFIG
    if not config.is_file():
        raise CheckpointError(f"{path}: no {CONFIG} (not a transformers checkpoint folder)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{config}: cannot be read as JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{config}: not a JSON object")
    return data


def weights_files(path: Path) -> list[Path]:
    """The safetensors weights of the folder: ``model.safetensors``, or the shards its index lists (sorted).
    Pickled weights (``pytorch_model.bin``) are never loaded."""
    index = path / WEIGHTS_INDEX
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{index}: invalid shard index ({exc.__class__.__name__})") from None
        files = [path / str(name) for name in names]
    else:
        files = [path / WEIGHTS]
    for f in files:
        if f.parent != path or not f.is_file():
            raise CheckpointError(f"{f}: weights missing (safetensors only: pickled weights are not loaded)")
    return files


def weights_sha256(files: list[Path]) -> str:
    """The sha256 of one weights file; for shards, the sha256 of the lines ``<sha256>  <file name>`` (sorted by
    name, as ``sha256sum`` writes them), so it changes when any shard does."""
    if len(files) == 1:
        return sha256_file(files[0])
    lines = "".join(f"{sha256_file(f)}  {f.name}\n" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _check_config(path: Path, config: dict[str, Any]) -> None:
    """Refuse a config that is not a BLIP-2 generator with its image tokens placed by the processor."""
    if config.get("model_type") != BLIP2_MODEL_TYPE:
        raise CheckpointError(f"{path / CONFIG}: model_type is not {BLIP2_MODEL_TYPE!r}")
    architectures = config.get("architectures") or [ARCHITECTURE]
    if ARCHITECTURE not in architectures:
        saved_from = ", ".join(map(str, architectures))[:80]
        raise CheckpointError(f"{path / CONFIG}: saved from {saved_from}, not {ARCHITECTURE}")
    if config.get("image_token_index") is None:
        raise CheckpointError(f"{path / CONFIG}: no image_token_index (the tokenizer's image token, which "
                              "transformers 5 needs to place the image queries in the prompt)")


def _load_model(path: Path, dtype: torch.dtype) -> Blip2ForConditionalGeneration:
    """The model from the folder's safetensors; refused when any weight is missing, unexpected or mis-shaped
    (transformers would initialise a missing one at random)."""
    progress = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        loaded: Any = Blip2ForConditionalGeneration.from_pretrained(
            str(path), local_files_only=True, use_safetensors=True, trust_remote_code=False, dtype=dtype,
            output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 - transformers and safetensors raise many types on a bad folder
        raise CheckpointError(f"{path}: cannot load the BLIP-2 weights ({exc.__class__.__name__})") from None
    finally:
        if progress:
            transformers_logging.enable_progress_bar()
    model: Blip2ForConditionalGeneration = loaded[0]
    info: dict[str, Any] = loaded[1]
    if info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]:
        counts = [len(info[k]) for k in ("missing_keys", "unexpected_keys", "mismatched_keys")]
        raise CheckpointError(f"{path}: weights do not match {CONFIG} ({counts[0]} missing, {counts[1]} unexpected, "
                              f"{counts[2]} mis-shaped)")
    model.eval()
    return model


def _load_processor(path: Path, config: dict[str, Any]) -> Blip2Processor:
    """The folder's processor, checked against the model: the same number of query tokens and image token."""
    try:
        processor = Blip2Processor.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - a missing or malformed processor file raises many types
        raise CheckpointError(f"{path}: cannot load the Blip2Processor (image processor and tokenizer) "
                              f"({exc.__class__.__name__})") from None
    queries = int(config.get("num_query_tokens", 32))
    if processor.num_query_tokens is None:
        processor.num_query_tokens = queries
    if processor.num_query_tokens != queries:
        raise CheckpointError(f"{path}: the processor's num_query_tokens differs from {CONFIG}'s")
    if processor.tokenizer.convert_tokens_to_ids(str(processor.image_token)) != config["image_token_index"]:
        raise CheckpointError(f"{path}: the tokenizer's image token differs from {CONFIG}'s image_token_index")
    return processor


class Blip2ReportGenerator:
    """Runs a staged BLIP-2 checkpoint on the frontal image of a de-identified study (a
    :class:`~clinical_mm.model.base.ReportGenerator`).

    Parameters
    ----------
    model, processor
        The loaded ``Blip2ForConditionalGeneration`` and its ``Blip2Processor``.
    model_id
        Written in audit records and FHIR Provenance (:meth:`from_path`: ``blip2:<folder name>@<sha256[:12]>``).
    model_sha256
        The sha256 of the weights (:func:`weights_sha256`).
    draft_reader
        Reads which flags the draft states (the report labeler; the model stage has none of its own).
    prompt
        The text the model continues (default :data:`DEFAULT_PROMPT`).
    max_new_tokens
        The longest draft, in tokens; decoding is greedy, so the same image gives the same draft.
    flag_priority
        Priority each raised flag lifts a study to (default :data:`clinical_mm.core.findings.DEFAULT_FLAG_PRIORITY`).
    """

    def __init__(self, model: Blip2ForConditionalGeneration, processor: Blip2Processor, *, model_id: str,
                 model_sha256: str, draft_reader: DraftReader, prompt: str = DEFAULT_PROMPT,
                 max_new_tokens: int = 128, flag_priority: dict[str, str] | None = None) -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        self.model = model
        self.processor = processor
        self._model_id = model_id
        self._model_sha256 = model_sha256
        self.draft_reader = draft_reader
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.flag_priority = flag_priority
        self.preprocessor = ChestXrayPreprocessor()  # only its display_array (LUTs, checks) is used

    @property
    def model_id(self) -> str:
        """``blip2:<folder name>@<first 12 hex digits of the weights' sha256>`` (from :meth:`from_path`)."""
        return self._model_id

    @property
    def model_sha256(self) -> str:
        """The sha256 of the weights as read at load time (:func:`weights_sha256`)."""
        return self._model_sha256

    @classmethod
    def from_path(cls, path: Path, *, draft_reader: DraftReader, prompt: str = DEFAULT_PROMPT,
                  max_new_tokens: int = 128, flag_priority: dict[str, str] | None = None,
                  expected_sha256: str | None = None, dtype: torch.dtype = torch.float32) -> Blip2ReportGenerator:
        """Load the checkpoint folder ``path`` from local files. With ``expected_sha256`` (a site's pinned value)
        weights whose sha256 differs are refused; without, the sha256 read now names the model in every record.
        :class:`CheckpointError` (naming the file, never a value) when the folder cannot be used."""
        if not path.is_dir():
            raise CheckpointError(f"{path}: not a folder")
        config = read_config(path)
        _check_config(path, config)
        sha256 = weights_sha256(weights_files(path))
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise CheckpointError(f"{path}: the weights' sha256 differs from the expected one")
        model = _load_model(path, dtype)
        processor = _load_processor(path, config)
        return cls(model, processor, model_id=f"blip2:{path.resolve().name}@{sha256[:12]}", model_sha256=sha256,
                   draft_reader=draft_reader, prompt=prompt, max_new_tokens=max_new_tokens,
                   flag_priority=flag_priority)

    def image(self, ds: Dataset) -> np.ndarray:
        """The (rows, columns, 3) uint8 image the processor takes: the reader's greyscale view (LUTs applied,
        bright = dense; refused as :meth:`ChestXrayPreprocessor.display_array` refuses), its 0.5th to 99.5th
        percentile stretched to 0-255, in three equal channels."""
        arr = self.preprocessor.display_array(ds)
        lo, hi = (float(v) for v in np.percentile(arr, [0.5, 99.5]))
        scaled = np.clip((arr - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(arr)
        grey = np.round(scaled * 255.0).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)

    def draft_from_text(self, text: str, timings: dict[str, float] | None = None) -> DraftReport:
        """The draft of a generated text: its sections, and flags read from them by the draft reader (1.0 stated,
        0.0 not; threshold :data:`TEXT_FLAG_THRESHOLD`)."""
        findings, impression = split_sections(text)
        stated = self.draft_reader.stated_present(f"FINDINGS: {findings}\nIMPRESSION: {impression}")
        flags = {name: float(stated[name]) for name in FINDINGS}
        raised = [name for name in FINDINGS if flags[name] >= TEXT_FLAG_THRESHOLD]
        return DraftReport(findings, impression, flags, dict.fromkeys(FINDINGS, TEXT_FLAG_THRESHOLD), raised,
                           priority_for(raised, self.flag_priority), dict(timings or {}))

    @torch.inference_mode()
    def generate_text(self, rgb: np.ndarray) -> str:
        """The model's greedy continuation of the prompt for one (rows, columns, 3) uint8 image."""
        inputs = self.processor(images=rgb, text=self.prompt, return_tensors="pt")
        ids = self.model.generate(pixel_values=inputs["pixel_values"].to(self.model.dtype),
                                  input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                  max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1)[0]
        if not self.model.config.text_config.is_encoder_decoder:  # a decoder-only LM returns the prompt too
            ids = ids[inputs["input_ids"].shape[1]:]
        return str(self.processor.tokenizer.decode(ids, skip_special_tokens=True)).strip()

    def analyze(self, study: DeidentifiedStudy, index: int) -> DraftReport:
        """Draft and text-derived flags for ``study.instances[index]`` (the frontal image the scope check chose)."""
        if not isinstance(study, DeidentifiedStudy):
            raise TypeError("the model accepts only a DeidentifiedStudy")
        timings: dict[str, float] = {}
        t = time.perf_counter()
        rgb = self.image(study.instances[index])
        timings["preprocess"] = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        text = self.generate_text(rgb)
        timings["generate"] = (time.perf_counter() - t) * 1e3
        return self.draft_from_text(text, timings)
