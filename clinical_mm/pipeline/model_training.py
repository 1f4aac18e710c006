"""The model's training data and a whole training run, composed of the stages.

Every study of a manifest is read, de-identified (the PHI boundary holds for training too), preprocessed as
at inference and labelled with the laterality its report states (the report labeler's triage reading,
:meth:`~clinical_mm.extraction.chexpert.RadiologyReportLabeler.sides`, the reading the pipeline's draft check and
the evaluation use too); :func:`train_model` synthesises the manifests it is not
given, loads both splits and runs :class:`~clinical_mm.model.training.Trainer`.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydicom
import torch
from tqdm import tqdm

from clinical_mm.core.config import PseudonymKey
from clinical_mm.core.errors import InputError, ManifestError
from clinical_mm.core.findings import FINDING_LABELS, FINDINGS, INCIDENTAL_LABELS
from clinical_mm.deid import DicomDeidentifier
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.model.checkpoint import LoadedModel, load_model, write_manifest
from clinical_mm.model.configuration import ClinicalMMConfig
from clinical_mm.model.gate_training import GatePlan, fit_input_gate
from clinical_mm.model.preprocessing import ChestXrayPreprocessor
from clinical_mm.model.tokenizer import format_report
from clinical_mm.model.training import StudyTensors, Trainer, TrainingPlan
from clinical_mm.model.vision_language import VisionLanguage, calibration_section
from clinical_mm.synth.study_synthesizer import StudySynthesizer

__all__ = [
    "TrainingRun", "calibrate_zero_shot_of_folder", "fit_gate_of_folder", "load_studies", "read_manifest",
    "train_model",
]


def read_manifest(path: Path) -> list[dict[str, str]]:
    """The rows of a training manifest, checked: its columns, and every finding column 0 or 1."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc.strerror})") from None
    required = {"study_id", "path", "findings", "impression", *FINDINGS}
    if not rows:
        raise ManifestError(f"{path}: manifest has no rows")
    missing = required - set(rows[0])
    if missing:
        raise ManifestError(f"{path}: manifest lacks columns {sorted(missing)}")
    for i, row in enumerate(rows, start=2):
        for f in FINDINGS:
            if row[f] not in ("0", "1"):
                raise ManifestError(f"{path}: line {i}: column {f} must be 0 or 1")
    return rows


def load_studies(manifest: Path, config: ClinicalMMConfig, cache_dir: Path | None = None,
                 progress: bool = True) -> StudyTensors:
    """Read, de-identify and preprocess the studies of ``manifest`` (cached by manifest hash)."""
    rows = read_manifest(manifest)
    digest = hashlib.sha256(manifest.read_bytes() + str(config.vision.image_size).encode()).hexdigest()[:16]
    cache = cache_dir / f"studies-{digest}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        data: StudyTensors = torch.load(cache, weights_only=False)
        return data
    pre = ChestXrayPreprocessor(config.vision.image_size)
    deid = DicomDeidentifier(PseudonymKey(hashlib.sha256(b"training-ephemeral" + digest.encode()).digest(),
                                          ephemeral=True))
    labeler = RadiologyReportLabeler()
    lateral_flags = config.heads.lateral_flags
    images, labels, lateral, reports, qtexts, ids = [], [], [], [], [], []
    incidental: list[list[float]] = []
    specs: list[list[dict[str, Any]] | None] = []
    for row in tqdm(rows, desc=f"read {manifest.parent.name}", unit="study", disable=not progress):
        file = manifest.parent / row["path"]
        try:
            ds = pydicom.dcmread(file)
        except (OSError, pydicom.errors.InvalidDicomError):
            raise InputError(f"{file}: not a readable DICOM file") from None
        study = deid.deidentify_study([ds])
        images.append(torch.from_numpy(pre(study.instances[0])).to(torch.float16))
        y = [int(row[f]) for f in FINDINGS]
        labels.append(y)
        text = f"{row['findings']} {row['impression']}"
        sides = labeler.sides(text)
        lat = []
        for name in lateral_flags:
            present = int(row[name]) == 1
            for side in ("right", "left"):
                lat.append(float(side in sides[name]) if (not present or sides[name]) else -1.0)
        lateral.append(lat)
        reports.append(format_report(row["findings"], row["impression"]))
        qtexts.append(f"{row['impression']} {row['findings']}")
        ids.append(row["study_id"])
        truth = _specs(row, manifest)
        specs.append(truth)
        drawn = {str(t["name"]) for t in truth or ()}
        incidental.append([float(n in drawn) if truth is not None else -1.0 for n in config.heads.incidental])
    data = StudyTensors(torch.stack(images), torch.tensor(labels, dtype=torch.float32),
                        torch.tensor(lateral, dtype=torch.float32), reports, qtexts, ids,
                        torch.tensor(incidental, dtype=torch.float32).reshape(len(rows), len(config.heads.incidental)),
                        specs)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(data, cache)
    return data


def _continued_config(parent: LoadedModel) -> ClinicalMMConfig:
    """The configuration of a model continued from ``parent``: the parent's architecture, with the image encoder's
    incidental and detail targets, reading tokens and the Q-Former's text length of today's default configuration."""
    config = ClinicalMMConfig.from_dict(parent.model.config.to_dict())
    default = ClinicalMMConfig()
    config.heads.incidental = default.heads.incidental
    config.heads.detail = default.heads.detail
    config.heads.reading_tokens = default.heads.reading_tokens
    config.qformer.max_text_length = default.qformer.max_text_length
    config.__post_init__()
    return config


def _specs(row: dict[str, str], manifest: Path) -> list[dict[str, Any]] | None:
    """A row's ground truth (the ``specs`` column of a synthetic manifest), None where the manifest has none."""
    raw = row.get("specs") or ""
    if not raw:
        return None
    try:
        specs = json.loads(raw)
    except ValueError:
        raise ManifestError(f"{manifest}: study {row['study_id']}: column specs is not JSON") from None
    if not isinstance(specs, list) or not all(isinstance(x, dict) and "name" in x for x in specs):
        raise ManifestError(f"{manifest}: study {row['study_id']}: column specs must be a list of objects with a name")
    return specs


@dataclass(frozen=True)
class TrainingRun:
    """What ``clinical-mm train`` was asked: the manifests (None: synthesise with the seed and count), the
    work folder (caches, resumable state, synthesised data), the model folder and the schedule."""

    manifest: Path | None
    val_manifest: Path | None
    synth_seed: int
    synth_n: int
    val_seed: int
    val_n: int
    seed: int
    work: Path
    out: Path
    quick: bool
    progress: bool
    command: str
    #: a trained model folder to continue from (its weights and tokenizer; ``TrainingPlan.continued``)
    continue_from: Path | None = None


def synthetic_manifest(work: Path, seed: int, n: int, progress: bool) -> Path:
    """``work/synth-<seed>/manifest.csv``, synthesised unless it is there already."""
    manifest = work / f"synth-{seed}" / "manifest.csv"
    if not manifest.is_file():
        StudySynthesizer(seed).write(n, manifest.parent, progress=progress)
    return manifest


def train_model(run: TrainingRun, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train the model as ``run`` says and write it to ``run.out``; the model manifest written there."""
    run.work.mkdir(parents=True, exist_ok=True)
    manifest = run.manifest or synthetic_manifest(run.work, run.synth_seed, run.synth_n, run.progress)
    val_manifest = run.val_manifest or synthetic_manifest(run.work, run.val_seed, run.val_n, run.progress)
    parent = load_model(run.continue_from) if run.continue_from is not None else None
    config = ClinicalMMConfig() if parent is None else _continued_config(parent)
    plan = TrainingPlan.quick() if run.quick else TrainingPlan.continued() if parent else TrainingPlan()
    train_data = load_studies(manifest, config, run.work / "cache", progress=run.progress)
    val_data = load_studies(val_manifest, config, run.work / "cache", progress=run.progress)
    labeler = RadiologyReportLabeler()
    trainer = Trainer(config, plan, run.work, draft_reader=labeler, seed=run.seed, progress=run.progress, log=log,
                      init_from=parent, sentence_reader=labeler)
    synthetic = manifest.parent.name.startswith("synth-")
    data_info = {"data": {"train_manifest": str(manifest), "val_manifest": str(val_manifest),
                          "synthetic": synthetic,
                          "data_seed": run.synth_seed if synthetic else None,
                          "val_seed": run.val_seed if val_manifest.parent.name.startswith("synth-") else None},
                 "training_command": run.command}
    if parent is not None:
        data_info["continued_from"] = {"path": str(run.continue_from), "sha256": parent.sha256,
                                       "training_command": parent.manifest.get("training_command"),
                                       "data": parent.manifest.get("data"),
                                       "training": parent.manifest.get("training", {}).get("plan")}
    trainer.fit(train_data, val_data, run.out, data_info)
    # the image-level input gate, fitted to this model's image encoder on the same images
    provenance = {"images": {"train": len(train_data), "val": len(val_data)}, "command": run.command}
    _record_gate(load_model(run.out), train_data, val_data, provenance,
                 GatePlan.quick() if run.quick else GatePlan(), log or print)
    return _record_zero_shot(load_model(run.out), val_data, {"fitted_on": f"validation images ({len(val_data)})",
                                                             "command": run.command})


def _record_zero_shot(loaded: LoadedModel, val: StudyTensors, provenance: dict[str, Any]) -> dict[str, Any]:
    """Fit the zero-shot calibration of a loaded model folder on validation images (the flags and, where the
    manifest knows them, the incidental findings, each named by its label) and add it to the folder's manifest;
    the new manifest."""
    labels = {FINDING_LABELS[f].lower(): val.labels[:, j].numpy() for j, f in enumerate(FINDINGS)}
    if val.incidental is not None:
        for j, name in enumerate(loaded.model.config.heads.incidental):
            labels[INCIDENTAL_LABELS[name].lower()] = val.incidental[:, j].numpy()
    manifest = dict(loaded.manifest)
    manifest["zero_shot"] = calibration_section(VisionLanguage(loaded), val.images.float(), labels, provenance)
    write_manifest(loaded.path, manifest)
    return manifest


def calibrate_zero_shot_of_folder(folder: Path, val_manifest: Path | None, val_synth: tuple[int, int], work: Path, *,
                                  command: str, progress: bool = True) -> dict[str, Any]:
    """Fit the zero-shot calibration of the model in ``folder`` on the images of ``val_manifest`` (synthesised
    with ``val_synth``'s (seed, n) when not given); the manifest's ``zero_shot`` section is returned."""
    loaded = load_model(folder)
    work.mkdir(parents=True, exist_ok=True)
    val_manifest = val_manifest or synthetic_manifest(work, val_synth[0], val_synth[1], progress)
    val = load_studies(val_manifest, loaded.model.config, work / "cache", progress=progress)
    source = (f"synthetic validation seed {val_synth[0]}" if val_manifest.parent.name.startswith("synth-")
              else val_manifest.name)
    return dict(_record_zero_shot(loaded, val, {"fitted_on": f"{source} ({len(val)} images)",
                                                "command": command})["zero_shot"])


def _record_gate(loaded: LoadedModel, train: StudyTensors, val: StudyTensors, provenance: dict[str, Any],
                 plan: GatePlan, log: Callable[[str], None]) -> dict[str, Any]:
    """Fit the input gate of a loaded model folder and add its section to the folder's manifest; the new
    manifest."""
    manifest = dict(loaded.manifest)
    manifest["input_gate"] = fit_input_gate(loaded.model, train.images, val.images, loaded.path, provenance, plan,
                                            log=log)
    write_manifest(loaded.path, manifest)
    return manifest


def fit_gate_of_folder(folder: Path, manifest: Path | None, val_manifest: Path | None, synth: tuple[int, int],
                       val_synth: tuple[int, int], work: Path, *, command: str, progress: bool = True,
                       log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit the input gate of the model in ``folder`` on the images of ``manifest`` and ``val_manifest``
    (synthesised with the (seed, n) of ``synth`` and ``val_synth`` when not given) and add it to the folder's
    manifest; the manifest's ``input_gate`` section is returned."""
    loaded = load_model(folder)
    work.mkdir(parents=True, exist_ok=True)
    manifest = manifest or synthetic_manifest(work, synth[0], synth[1], progress)
    val_manifest = val_manifest or synthetic_manifest(work, val_synth[0], val_synth[1], progress)
    config = loaded.model.config
    train = load_studies(manifest, config, work / "cache", progress=progress)
    val = load_studies(val_manifest, config, work / "cache", progress=progress)
    provenance = {"images": {"train": len(train), "train_synthetic_seed": synth[0] if manifest.parent.name.startswith("synth-") else None,
                             "val": len(val), "val_synthetic_seed": val_synth[0] if val_manifest.parent.name.startswith("synth-") else None},
                  "command": command}
    return dict(_record_gate(loaded, train, val, provenance, GatePlan(), log)["input_gate"])
