"""Model folders: ``model.safetensors`` (float16), ``tokenizer.json`` and ``manifest.json``.

The manifest records the configuration, the sha256 of the weights and the tokenizer, the calibration
(per-flag temperature and operating threshold), the data seed, the exact training command and the
validation metrics. Loading verifies the hashes and reads only local files.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from clinical_mm.audit.audit_record import sha256_file
from clinical_mm.core.errors import CheckpointError
from clinical_mm.model.configuration import ClinicalMMConfig
from clinical_mm.model.input_gate import ImageGate
from clinical_mm.model.modeling import ClinicalMMModel
from clinical_mm.model.tokenizer import ReportTokenizer

__all__ = ["LoadedModel", "load_input_gate", "load_model", "save_model", "write_manifest"]

WEIGHTS = "model.safetensors"
TOKENIZER = "tokenizer.json"
MANIFEST = "manifest.json"
MODEL_NAME = "clinical-mm-cxr"



@dataclass
class LoadedModel:
    """A model ready for inference, with what the outputs must name (id, version, sha256)."""

    model: ClinicalMMModel
    tokenizer: ReportTokenizer
    manifest: dict[str, Any]
    path: Path

    @property
    def sha256(self) -> str:
        return str(self.manifest["weights"]["sha256"])

    @property
    def model_id(self) -> str:
        return f"{self.manifest.get('name', MODEL_NAME)}@{self.manifest.get('version', '0')}"

    @property
    def temperatures(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.manifest["calibration"]["temperature"].items()}

    @property
    def thresholds(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.manifest["calibration"]["threshold"].items()}


def _unique_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the second name of tied tensors, in float16."""
    seen: dict[int, str] = {}
    out: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        ptr = tensor.data_ptr()
        if ptr in seen:
            continue
        seen[ptr] = name
        out[name] = tensor.detach().to(torch.float16).contiguous() if tensor.is_floating_point() else tensor.contiguous()
    return out


def save_model(
    model: ClinicalMMModel, tokenizer: ReportTokenizer, out_dir: Path, *, calibration: dict[str, Any],
    extra: dict[str, Any], version: str = "1",
) -> dict[str, Any]:
    """Write the model folder and return its manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(_unique_state(model), str(out_dir / WEIGHTS))
    tokenizer.save(out_dir / TOKENIZER)
    manifest = {
        "name": MODEL_NAME,
        "version": version,
        "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "config": model.config.to_dict(),
        "weights": {"file": WEIGHTS, "dtype": "float16", "sha256": sha256_file(out_dir / WEIGHTS),
                    "bytes": (out_dir / WEIGHTS).stat().st_size},
        "tokenizer": {"file": TOKENIZER, "sha256": sha256_file(out_dir / TOKENIZER)},
        "calibration": calibration,
        **extra,
    }
    write_manifest(out_dir, manifest)
    return manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write a model folder's ``manifest.json`` (the one layout every writer uses)."""
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def load_model(path: Path, *, verify: bool = True) -> LoadedModel:
    """Load a model folder from local files; with ``verify`` check the weights' and tokenizer's sha256."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{path}: no {MANIFEST} (not a clinical-mm model folder)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        config = ClinicalMMConfig.from_dict(manifest["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{manifest_path}: invalid manifest ({exc.__class__.__name__})") from None
    weights = path / manifest["weights"]["file"]
    tok_path = path / manifest["tokenizer"]["file"]
    for f, key in ((weights, "weights"), (tok_path, "tokenizer")):
        if not f.is_file():
            raise CheckpointError(f"{f}: missing")
        if verify and sha256_file(f) != manifest[key]["sha256"]:
            raise CheckpointError(f"{f}: sha256 does not match {MANIFEST}")
    tokenizer = ReportTokenizer.load(tok_path)
    if tokenizer.vocab_size != config.text.vocab_size:
        raise CheckpointError(f"{tok_path}: vocabulary size {tokenizer.vocab_size} != config {config.text.vocab_size}")
    model = ClinicalMMModel(config)
    try:
        state = load_file(str(weights))
        missing, unexpected = model.load_state_dict(state, strict=False)
    except Exception as exc:  # safetensors / torch raise several types on a corrupt file
        raise CheckpointError(f"{weights}: cannot load weights ({exc.__class__.__name__})") from None
    tied = {"itg_head.embeddings.weight", "lm.lm_head.weight"}
    if unexpected or set(missing) - tied:
        raise CheckpointError(f"{weights}: weights do not match the configuration")
    model.eval()
    return LoadedModel(model, tokenizer, manifest, path)


def load_input_gate(loaded: LoadedModel) -> ImageGate | None:
    """The input gate of a loaded model folder (None when its manifest has none)."""
    return ImageGate.from_folder(loaded.model, loaded.path, loaded.manifest)
