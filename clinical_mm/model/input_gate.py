"""The image-level input gate, run on the chosen frontal image before any model call.

The scope check (:mod:`clinical_mm.model.study_scope`) reads headers; a header can say CR / CHEST / PA over
a CT slice, an ultrasound frame, a photograph or a radiograph shown upside down or inverted. The gate asks
two questions of the pixels:

1. **Is it a frontal chest radiograph, upright, dense structures bright?** A small convolutional detector
   (:class:`ChestRadiographDetector`) on the 32 x 32 thumbnail of the model input: the coarse anatomy (two
   dark lung fields beside a bright mediastinum, shoulders above, abdomen below) that every chest film has,
   synthetic or real. It is trained by :mod:`clinical_mm.model.gate_training` on our synthetic chest films,
   heavily augmented, against those films rotated, inverted and upside down and against generated
   cross-sections, ultrasound sectors, limbs and photographs. Below its threshold the image is refused
   with a reason: the model would read nonsense from it, whatever the header says.
2. **Is it like the images the model was validated on?** The Mahalanobis distance of the image encoder's
   features ([CLS] and the mean patch token) from the training images' (Ledoit-Wolf covariance), against a
   threshold set on the validation images (their 99.5th percentile). Above it the image is analysed but
   marked outside the validated domain (results, FHIR, review page); its priority is never lowered.

The gate's statistics and detector live in the model folder (``input_gate.safetensors``, described and
hashed in ``manifest.json`` under ``input_gate``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydicom.dataset import Dataset
from safetensors.torch import load_file
from torch import nn

from clinical_mm.audit.audit_record import sha256_file
from clinical_mm.core.errors import CheckpointError
from clinical_mm.model.base import GateReading
from clinical_mm.model.modeling import ClinicalMMModel
from clinical_mm.model.preprocessing import ChestXrayPreprocessor

__all__ = ["GATE_FILE", "ChestRadiographDetector", "ImageGate", "encoder_features", "mahalanobis_fit"]

GATE_FILE = "input_gate.safetensors"
#: side of the thumbnail the detector reads
THUMBNAIL = 32


class ChestRadiographDetector(nn.Module):
    """(B, 1, S, S) model input -> (B,) logit that it is an upright, non-inverted frontal chest radiograph.

    Three 3x3 convolution and pooling levels on the 32 x 32 thumbnail, then a linear layer over the 4 x 4
    map: the layout is kept (orientation is the point), fine texture is not (it differs between synthetic
    and real films)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.2),
        )
        self.classifier = nn.Linear(32 * (THUMBNAIL // 8) ** 2, 1)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(thumbnails(pixel_values)))[:, 0]


def thumbnails(pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) model inputs -> (B, 1, T, T) thumbnails of what each image shows: the border rows and
    columns at the image's lowest value (the square padding, black collimation) cut off first, so an image's
    shape (landscape, portrait) and its borders do not count, only its content."""
    out = []
    for image in pixel_values.float():
        content = image[0] > image[0].min() + 1e-3
        rows, cols = torch.nonzero(content.any(1)).flatten(), torch.nonzero(content.any(0)).flatten()
        if len(rows) < 2 or len(cols) < 2:
            out.append(F.adaptive_avg_pool2d(image, THUMBNAIL))
            continue
        crop = image[:, int(rows[0]):int(rows[-1]) + 1, int(cols[0]):int(cols[-1]) + 1]
        out.append(F.interpolate(crop[None], size=(THUMBNAIL, THUMBNAIL), mode="area")[0])
    return torch.stack(out)


def encoder_features(model: ClinicalMMModel, pixel_values: torch.Tensor) -> torch.Tensor:
    """(B, C, S, S) -> (B, 2 Dv): the image encoder's [CLS] token and mean patch token."""
    tokens = model.encode_image(pixel_values)
    return torch.cat([tokens[:, 0], tokens[:, 1:].mean(1)], 1).float()


class ImageGate:
    """Reads model inputs with the detector and the encoder statistics of a model folder.

    Parameters
    ----------
    model
        The model whose image encoder gives the features (ours, loaded from the same folder).
    tensors
        ``mean`` (D,), ``precision`` (D, D) and the detector's weights (``detector.*``).
    meta
        The manifest's ``input_gate`` section: ``threshold`` (distance) and ``chest_threshold`` (probability).
    """

    def __init__(self, model: ClinicalMMModel, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        self.model = model
        self.meta = meta
        self.mean = tensors["mean"].float()
        self.precision = tensors["precision"].float()
        self.threshold = float(meta["threshold"])
        self.chest_threshold = float(meta["chest_threshold"])
        self.detector = ChestRadiographDetector()
        self.detector.load_state_dict({k.removeprefix("detector."): v.float() for k, v in tensors.items()
                                       if k.startswith("detector.")})
        self.detector.eval()
        self.preprocessor = ChestXrayPreprocessor(model.config.vision.image_size)

    @classmethod
    def from_folder(cls, model: ClinicalMMModel, folder: Path, manifest: dict[str, Any]) -> ImageGate | None:
        """The gate of a model folder; None when its manifest describes none (a model trained before gates)."""
        meta = manifest.get("input_gate")
        if meta is None:
            return None
        path = folder / str(meta.get("file", GATE_FILE))
        if not path.is_file():
            raise CheckpointError(f"{path}: missing")
        if sha256_file(path) != meta.get("sha256"):
            raise CheckpointError(f"{path}: sha256 does not match the manifest")
        try:
            return cls(model, load_file(str(path)), meta)
        except Exception as exc:  # safetensors / torch raise several types on a corrupt file
            raise CheckpointError(f"{path}: cannot load the input gate ({exc.__class__.__name__})") from None

    def read_image(self, dataset: Dataset) -> GateReading:
        """The reading of one image (a DICOM dataset), preprocessed as the model reads it."""
        return self.read(torch.from_numpy(self.preprocessor(dataset))[None])[0]

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """(B, D) features -> (B,) Mahalanobis distances from the training images."""
        d = features.float() - self.mean
        return torch.einsum("bi,ij,bj->b", d, self.precision, d).clamp(min=0).sqrt()

    @torch.inference_mode()
    def read(self, pixel_values: torch.Tensor) -> list[GateReading]:
        """Read a batch of model inputs (B, C, S, S)."""
        chest = torch.sigmoid(self.detector(pixel_values)).tolist()
        scores = self.distances(encoder_features(self.model, pixel_values)).tolist()
        out = []
        for p, score in zip(chest, scores, strict=True):
            refusal = None
            if not (math.isfinite(score) and math.isfinite(p)):
                refusal = "the image's features are not finite numbers (the input gate cannot read it)"
            elif p < self.chest_threshold:
                refusal = (f"not a frontal chest radiograph by its pixels (chest-radiograph probability {p:.2f} "
                           f"< {self.chest_threshold:.2f}: another modality or body part, a photograph, or a film "
                           "rotated, upside down or inverted), whatever its header says")
            finite = math.isfinite(score) and math.isfinite(p)
            out.append(GateReading(score if finite else 0.0, self.threshold, bool(finite and score <= self.threshold),
                                   float(p) if finite else 0.0, self.chest_threshold, refusal))
        return out


def mahalanobis_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (Ledoit-Wolf shrunk) precision matrix of (N, D) features."""
    from sklearn.covariance import LedoitWolf

    mean = features.mean(0)
    lw = LedoitWolf().fit(features - mean)
    return mean.astype(np.float32), np.asarray(lw.precision_, dtype=np.float32)
