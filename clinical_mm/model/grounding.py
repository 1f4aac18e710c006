"""Where the model looked: per-flag occlusion-sensitivity maps, and boxes.

A flag's map says how much the image encoder's reading of the finding (:meth:`ClinicalMMModel.vision_logits`)
drops when a square window of the image is hidden (filled with the image's mean), for windows sliding over
the image: the standard occlusion sensitivity (Zeiler and Fergus 2014), model-agnostic and honest about what
the model used. Each pixel gets the mean drop of the windows that cover it. One batch of occluded images
serves every flag. The region is where the map stays above half its range around the strongest point; a
lateral finding gets a second box on the image's other half where the encoder's side head reads it there too.

Coordinates: boxes and points are given on a 0-100 grid of the image as stored (x along columns, y along
rows, as MAIRA-2 and CheXagent give boxes) and in the image's pixels; :class:`InputGeometry` maps between
the model's padded square input and the image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from clinical_mm.model.modeling import ClinicalMMModel

__all__ = ["GroundedRegion", "InputGeometry", "encoder_sides", "locate", "occlusion_maps"]

#: a region is where the map stays at or above this share of its range over the image (peak 1, lowest 0)
REGION_SHARE = 0.5
#: flags read as one organ: a single region, not one per side
_WHOLE = frozenset({"cardiomegaly"})
#: flags whose regions are looked for on both sides without a side head (bilateral by nature)
_BOTH_SIDES = frozenset({"pulmonary_edema"})


@dataclass(frozen=True)
class InputGeometry:
    """How an image of ``rows`` x ``columns`` pixels sits in the model's ``size`` x ``size`` input: resized
    with its aspect kept so the longer side is ``size`` (MONAI ``Resize(size_mode="longest")``), then padded
    symmetrically (``SpatialPad``), as :class:`~clinical_mm.model.preprocessing.ChestXrayPreprocessor` does."""

    rows: int
    columns: int
    size: int

    @property
    def _inner(self) -> tuple[int, int, int, int]:
        scale = self.size / max(self.rows, self.columns)
        h, w = int(round(self.rows * scale)), int(round(self.columns * scale))
        return h, w, (self.size - h) // 2, (self.size - w) // 2

    def to_image(self, x: float, y: float) -> tuple[float, float]:
        """A point of the model input (pixels) -> the image's pixels (x: column, y: row), clipped to the image."""
        h, w, pad_y, pad_x = self._inner
        return (float(np.clip((x - pad_x) * self.columns / w, 0, self.columns)),
                float(np.clip((y - pad_y) * self.rows / h, 0, self.rows)))

    def to_model(self, x: float, y: float) -> tuple[float, float]:
        """A point of the image (pixels) -> the model input's pixels."""
        h, w, pad_y, pad_x = self._inner
        return x * w / self.columns + pad_x, y * h / self.rows + pad_y

    def image_mask(self) -> np.ndarray:
        """(size, size) bool: the model input's pixels that show the image (not the padding)."""
        h, w, pad_y, pad_x = self._inner
        mask = np.zeros((self.size, self.size), dtype=bool)
        mask[pad_y:pad_y + h, pad_x:pad_x + w] = True
        return mask

    def grid(self, x: float, y: float) -> tuple[float, float]:
        """Image pixels -> the 0-100 grid."""
        return round(100.0 * x / self.columns, 1), round(100.0 * y / self.rows, 1)


@dataclass(frozen=True)
class GroundedRegion:
    """Where one flag is shown: the peak and the boxes, on the 0-100 grid and in image pixels."""

    finding: str
    peak: tuple[float, float]  # 0-100 grid (x, y)
    boxes: tuple[tuple[float, float, float, float], ...]  # 0-100 grid (x0, y0, x1, y1)
    pixel_peak: tuple[int, int]
    pixel_boxes: tuple[tuple[int, int, int, int], ...]  # image pixels (x0, y0, x1, y1), end exclusive

    def to_json(self) -> dict[str, object]:
        return {"peak": list(self.peak), "boxes": [list(b) for b in self.boxes],
                "pixel_peak": list(self.pixel_peak), "pixel_boxes": [list(b) for b in self.pixel_boxes]}


#: side and stride (model-input pixels) of the occluding window
WINDOW, STRIDE = 24, 12


@torch.inference_mode()
def occlusion_maps(model: ClinicalMMModel, pixel_values: torch.Tensor, window: int = WINDOW,
                   stride: int = STRIDE, score: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """(1, C, S, S) model input -> (K, S, S): per score and pixel, the mean drop of the score when a ``window``
    square covering the pixel is filled with the image's mean (over the image, not its padding). ``score`` maps
    (B, C, S, S) inputs to (B, K) scores; default: the image encoder's F finding logits."""
    if score is None:
        def score(x: torch.Tensor) -> torch.Tensor:
            return model.vision_logits(model.encode_image(x))[0]
    size = pixel_values.shape[-1]
    window, stride = min(window, size), max(1, min(stride, size))
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    base = score(pixel_values)
    shown = pixel_values[pixel_values > pixel_values.min()]  # not the square padding (the lowest value)
    fill = shown.mean() if shown.numel() else pixel_values.mean()
    batch, spots = [], []
    for y in starts:
        for x in starts:
            hidden = pixel_values.clone()
            hidden[..., y:y + window, x:x + window] = fill
            batch.append(hidden)
            spots.append((y, x))
    drops = torch.cat([base - score(torch.cat(batch[i:i + 64])) for i in range(0, len(batch), 64)]).float()  # (windows, K)
    total = torch.zeros(drops.shape[1], size, size)
    count = torch.zeros(size, size)
    for (y, x), drop in zip(spots, drops, strict=True):
        total[:, y:y + window, x:x + window] += drop[:, None, None]
        count[y:y + window, x:x + window] += 1
    return total / count.clamp(min=1)


@torch.inference_mode()
def encoder_sides(model: ClinicalMMModel, image_tokens: torch.Tensor, threshold: float = 0.5) -> dict[str, tuple[str, ...]]:
    """Per lateral flag, the patient's sides (``right``, ``left``) the image encoder's side head reads it on
    (probability at least ``threshold``), for the first image of the batch."""
    _, lateral = model.vision_logits(image_tokens)
    probs = torch.sigmoid(lateral[0].float()).tolist()
    return {name: tuple(side for k, side in enumerate(("right", "left")) if probs[2 * j + k] >= threshold)
            for j, name in enumerate(model.config.heads.lateral_flags)}


def _scaled(heatmap: np.ndarray, geometry: InputGeometry) -> np.ndarray:
    """A map (any grid; bilinearly resized to the model input) -> (size, size) scaled to [0, 1] over the
    image's pixels (0 on the padding)."""
    up = np.asarray(heatmap, dtype=np.float32)
    if up.shape != (geometry.size, geometry.size):
        up = F.interpolate(torch.from_numpy(up)[None, None], size=(geometry.size, geometry.size), mode="bilinear",
                           align_corners=False)[0, 0].numpy()
    inside = geometry.image_mask()
    lo, hi = float(up[inside].min()), float(up[inside].max())
    return np.where(inside, (up - lo) / (hi - lo), 0.0) if hi > lo else inside.astype(np.float32)


def _component_box(labels: np.ndarray, seed: tuple[int, int]) -> tuple[int, int, int, int]:
    """The model-input box (x0, y0, x1, y1) of the labelled above-share component holding ``seed`` (row, column)."""
    rows, cols = np.nonzero(labels == labels[seed])
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def locate(finding: str, heatmap: np.ndarray, geometry: InputGeometry,
           sides: tuple[str, ...] = ()) -> GroundedRegion:
    """The region of ``finding`` from its map (the model input's size, or a coarser grid): the peak, and a box around it; for a lateral finding
    also a box around the other side's peak when ``sides`` (the patient's sides the encoder reads the finding
    on: ``right`` is the image's left half) names both, and for edema always both sides."""
    norm = _scaled(heatmap, geometry)
    seeds = [tuple(int(i) for i in np.unravel_index(int(np.argmax(norm)), norm.shape))]
    if finding not in _WHOLE and (finding in _BOTH_SIDES or set(sides) >= {"right", "left"}):
        half = geometry.size // 2
        other = norm[:, half:] if seeds[0][1] < half else norm[:, :half]
        r, c = np.unravel_index(int(np.argmax(other)), other.shape)
        if other[r, c] >= REGION_SHARE:
            seeds.append((int(r), int(c) + (half if seeds[0][1] < half else 0)))
    boxes, pixel_boxes = [], []
    labels, _ = ndimage.label(norm >= REGION_SHARE)
    seeds = [seed for k, seed in enumerate(seeds) if labels[seed] not in {labels[s] for s in seeds[:k]}]
    for seed in seeds:
        x0, y0, x1, y1 = _component_box(labels, seed)
        (a, b), (c, d) = geometry.to_image(x0, y0), geometry.to_image(x1, y1)
        pixel_boxes.append((int(a), int(b), int(np.ceil(c)), int(np.ceil(d))))
        boxes.append((*geometry.grid(a, b), *geometry.grid(c, d)))
    px, py = geometry.to_image(seeds[0][1] + 0.5, seeds[0][0] + 0.5)
    return GroundedRegion(finding, geometry.grid(px, py), tuple(boxes), (int(px), int(py)),
                          tuple(pixel_boxes))
