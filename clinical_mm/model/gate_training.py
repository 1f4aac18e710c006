"""Fitting the input gate of a model folder (:mod:`clinical_mm.model.input_gate`).

* The encoder statistics: mean and Ledoit-Wolf precision of the image encoder's features over the training
  images; the distance threshold is the 99.5th percentile over the validation images.
* The chest-radiograph detector: positives are the training images, augmented well beyond the synthetic
  look (rotation up to 12 degrees, zoom 0.8-1.25, shifts, mirror images, gamma 0.6-1.6, blur, noise,
  burned-in text blocks); negatives are the same augmented films rotated by 90, 180 and 270 degrees,
  inverted and upside down, and generated images of what a mislabelled image can be: cross-sections
  (CT/MR: a body or head outline with organs and bone, a table), ultrasound sectors with speckle and
  text, limbs, whole-body scans, and photographs (shapes, gradients, textures). Its threshold is the
  lower of 0.5 and the 0.1th percentile of the validation images' probability; a detector that refuses less
  than 99% of held-out negatives (generated with another seed, and validation films turned) is not written.

Everything is seeded: the same images give the same gate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from scipy import ndimage

from clinical_mm.audit.audit_record import sha256_file
from clinical_mm.core.errors import CheckpointError
from clinical_mm.model.input_gate import GATE_FILE, ChestRadiographDetector, encoder_features, mahalanobis_fit
from clinical_mm.model.modeling import ClinicalMMModel

__all__ = ["GatePlan", "fit_input_gate"]

#: share of the validation images whose distance is at most the in-domain threshold
DOMAIN_QUANTILE = 0.995


@dataclass(frozen=True)
class GatePlan:
    """Detector training settings."""

    steps: int = 2000
    batch: int = 64
    lr: float = 2e-3
    negatives: int = 2800
    seed: int = 0
    #: the least share of held-out negatives (fresh generated images, validation films turned) the detector must
    #: refuse; a fit below it is refused
    min_refused: float = 0.99

    @classmethod
    def quick(cls) -> GatePlan:
        """A smoke run (``clinical-mm train --quick``): a detector that has barely learned, not checked."""
        return cls(steps=20, negatives=90, min_refused=0.0)


class _Negatives:
    """Generated images of what a mislabelled chest radiograph can be, (S, S) in [0, 1]."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng, self.size = rng, size
        self.y, self.x = np.mgrid[0:size, 0:size] / size

    def _blur(self, a: np.ndarray, sigma: float) -> np.ndarray:
        return np.asarray(ndimage.gaussian_filter(a, sigma), dtype=np.float32)

    def cross_section(self) -> np.ndarray:
        """A CT or MR slice: a body or head outline, organs dark and bright, a bony rim, a table."""
        rng, s = self.rng, self.size
        a = np.zeros((s, s))
        cx, cy = rng.uniform(0.35, 0.65, 2)
        rx, ry = rng.uniform(0.2, 0.48, 2)
        th = rng.uniform(0, np.pi)
        dx, dy = self.x - cx, self.y - cy
        xr, yr = dx * np.cos(th) + dy * np.sin(th), -dx * np.sin(th) + dy * np.cos(th)
        body = (xr / rx) ** 2 + (yr / ry) ** 2 < 1
        a[body] = rng.uniform(0.3, 0.7)
        if rng.random() < 0.5:
            a[body & ((xr / (rx * 0.88)) ** 2 + (yr / (ry * 0.88)) ** 2 > 1)] = rng.uniform(0.8, 1.0)
        for _ in range(int(rng.integers(0, 5))):
            ox, oy = rng.uniform(-0.6, 0.6, 2) * [rx, ry]
            orx, ory = rng.uniform(0.03, 0.5, 2) * [rx, ry]
            organ = (((dx - ox) / orx) ** 2 + ((dy - oy) / ory) ** 2 < 1) & body
            a[organ] = rng.uniform(0, 0.15) if rng.random() < 0.5 else rng.uniform(0.75, 1.0)
        if rng.random() < 0.4:
            a[int(s * rng.uniform(0.8, 0.95)):, :] += 0.3
        a += rng.uniform(0, 0.05) * rng.standard_normal((s, s))
        return self._blur(a, rng.uniform(0, 1.5))

    def axial_thorax(self) -> np.ndarray:
        """An axial chest CT slice: a wide body, two dark lungs beside the mediastinum, the spine behind."""
        rng, s = self.rng, self.size
        a = np.zeros((s, s))
        cx, cy, rx, ry = rng.uniform(0.45, 0.55), rng.uniform(0.45, 0.55), rng.uniform(0.35, 0.48), rng.uniform(0.25, 0.38)
        body = ((self.x - cx) / rx) ** 2 + ((self.y - cy) / ry) ** 2 < 1
        a[body] = rng.uniform(0.4, 0.6)
        for side in (-1, 1):
            lx, lrx, lry = cx + side * rx * rng.uniform(0.4, 0.55), rx * rng.uniform(0.28, 0.4), ry * rng.uniform(0.55, 0.8)
            a[(((self.x - lx) / lrx) ** 2 + ((self.y - cy) / lry) ** 2 < 1) & body] = rng.uniform(0.0, 0.12)
        a[((self.x - cx) / (rx * 0.12)) ** 2 + ((self.y - cy - ry * 0.6) / (ry * 0.18)) ** 2 < 1] = rng.uniform(0.8, 1)
        a[((self.x - cx) / (rx * 0.2)) ** 2 + ((self.y - cy + ry * 0.1) / (ry * 0.35)) ** 2 < 1] = rng.uniform(0.5, 0.7)
        if rng.random() < 0.5:
            a[int(s * min(0.98, cy + ry + 0.03)):, :] = 0.35
        if rng.random() < 0.5:  # lung window: vessels in the lungs, soft tissue bright
            a = np.where(a < 0.15, a + 0.15 * self._blur(rng.random((s, s)), 1.0), np.minimum(1.0, a * 1.6))
        a += rng.uniform(0, 0.04) * rng.standard_normal((s, s))
        return self._blur(a, rng.uniform(0, 1.2))

    def ultrasound(self) -> np.ndarray:
        """An ultrasound frame: a sector (or a rectangle) of speckle on black, with text."""
        rng, s = self.rng, self.size
        a = np.zeros((s, s))
        ax, ay = rng.uniform(0.4, 0.6), rng.uniform(-0.1, 0.15)
        angle, r = np.arctan2(self.x - ax, self.y - ay), np.hypot(self.x - ax, self.y - ay)
        fan = (np.abs(angle) < rng.uniform(0.3, 0.8)) & (r < rng.uniform(0.6, 1.0)) & (r > 0.05)
        if rng.random() < 0.3:
            fan = (self.x > 0.1) & (self.x < 0.9) & (self.y > 0.15) & (self.y < 0.85)
        speckle = self._blur(rng.exponential(1, (s, s)), 0.7) * self._blur(rng.random((s, s)), 6) * 2
        a[fan] = speckle[fan]
        a = np.clip(a / (a.max() + 1e-6), 0, 1)
        self._text(a, int(rng.integers(0, 6)))
        return a

    def photograph(self) -> np.ndarray:
        """A photograph's greyscale: smooth fields, gradients, shapes, texture."""
        rng, s = self.rng, self.size
        a = self._blur(rng.random((s, s)), rng.uniform(2, 20))
        a = (a - a.min()) / (np.ptp(a) + 1e-6) + rng.uniform(-1, 1) * self.y + rng.uniform(-1, 1) * self.x
        for _ in range(int(rng.integers(1, 12))):
            x0, y0 = rng.integers(0, s, 2)
            w, h = rng.integers(5, 70, 2)
            if rng.random() < 0.5:
                a[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1.5)
            else:
                a[((self.x * s - x0) / w) ** 2 + ((self.y * s - y0) / h) ** 2 < 1] = rng.uniform(0, 1.5)
        return self._blur(a, rng.uniform(0, 2)) + rng.uniform(0, 0.1) * self._blur(rng.standard_normal((s, s)), 0.5)

    def limb(self) -> np.ndarray:
        """A limb radiograph: a soft-tissue band with one or two long bones."""
        rng, s = self.rng, self.size
        a = np.full((s, s), rng.uniform(0, 0.2))
        cx, w = rng.uniform(0.3, 0.7), rng.uniform(0.08, 0.3)
        soft = np.abs(self.x - cx - 0.05 * np.sin(self.y * 3)) < w
        a[soft] = rng.uniform(0.3, 0.5)
        for _ in range(int(rng.integers(1, 3))):
            a[(np.abs(self.x - cx - rng.uniform(-0.5, 0.5) * w) < rng.uniform(0.02, 0.07)) & soft] = rng.uniform(0.7, 1)
        a = a.T if rng.random() < 0.5 else a
        return self._blur(a, 1.0) + 0.02 * rng.standard_normal((s, s))

    def whole_body(self) -> np.ndarray:
        """A whole-body scan: a thin upright figure on black."""
        rng, s = self.rng, self.size
        a = np.zeros((s, s))
        cx = rng.uniform(0.4, 0.6)
        a[(np.abs(self.x - cx) < rng.uniform(0.03, 0.1)) & (self.y > 0.1) & (self.y < 0.95)] = rng.uniform(0.3, 1)
        a[((self.x - cx) / 0.05) ** 2 + ((self.y - 0.08) / 0.05) ** 2 < 1] = 0.8
        return self._blur(a, 1.0) + 0.02 * rng.random((s, s))

    def _text(self, a: np.ndarray, n: int) -> None:
        rng, s = self.rng, self.size
        for _ in range(n):
            y0, x0 = int(rng.integers(0, s - 6)), int(rng.integers(0, s - 25))
            a[y0:y0 + int(rng.integers(2, 5)), x0:x0 + int(rng.integers(5, 25))] = rng.uniform(0.6, 1)

    def kinds(self) -> list[Callable[[], np.ndarray]]:
        return [self.cross_section, self.axial_thorax, self.axial_thorax, self.ultrasound, self.ultrasound,
                self.photograph, self.photograph, self.limb, self.whole_body]


def _model_input(a01: np.ndarray) -> np.ndarray:
    """[0, 1]-ish image -> the model's normalisation (robust range to [0, 1], then (x - 0.5) / 0.25)."""
    lo, hi = np.percentile(a01, [0.5, 99.5])
    return ((np.clip((a01 - lo) / (hi - lo + 1e-6), 0, 1) - 0.5) / 0.25).astype(np.float32)


def _augment(images: torch.Tensor, rng: np.random.Generator, negatives: _Negatives) -> np.ndarray:
    """(B, S, S) model inputs -> (B, S, S) augmented images in [0, 1]."""
    b = images.shape[0]
    t = (images.float() * 0.25 + 0.5)[:, None]

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.from_numpy(rng.uniform(lo, hi, b)).float()

    ang, scale, tx, ty = u(-12, 12) * math.pi / 180, u(0.8, 1.25), u(-0.1, 0.1), u(-0.1, 0.1)
    mirror = torch.from_numpy(np.where(rng.random(b) < 0.5, -1.0, 1.0)).float()
    theta = torch.stack([torch.stack([mirror * torch.cos(ang) / scale, -torch.sin(ang) / scale, tx], 1),
                         torch.stack([mirror * torch.sin(ang) / scale, torch.cos(ang) / scale, ty], 1)], 1)
    t = F.grid_sample(t, F.affine_grid(theta, list(t.shape), align_corners=False), padding_mode="border",
                      align_corners=False)
    t = t.clamp(0, 1) ** u(0.6, 1.6)[:, None, None, None]
    sharp = u(0, 1.5)[:, None, None, None] * (rng.random(b) < 0.5)[:, None, None, None]
    t = t + torch.from_numpy(np.asarray(sharp, dtype=np.float32)) * (t - F.avg_pool2d(t, 9, 1, 4))  # unsharp mask
    k = int(rng.integers(0, 3)) * 2 + 1
    if k > 1:
        t = F.avg_pool2d(t, k, 1, k // 2)
    t = t + u(0, 0.06)[:, None, None, None] * torch.from_numpy(rng.standard_normal(t.shape)).float()
    out = t[:, 0].numpy().copy()
    for i in range(b):
        if rng.random() < 0.3:  # equalised, as many films are processed
            ranks = np.argsort(np.argsort(out[i].ravel()))
            out[i] = (ranks / ranks.size).reshape(out[i].shape)
        for _ in range(int(rng.integers(0, 3))):  # collimation: a band of one side, black or white
            w = int(rng.integers(2, out.shape[-1] // 5))
            band = [np.s_[:w, :], np.s_[-w:, :], np.s_[:, :w], np.s_[:, -w:]][int(rng.integers(4))]
            out[i][band] = float(rng.random() < 0.5)
        negatives._text(out[i], int(rng.integers(0, 5)))
    return out


def _batch(images: torch.Tensor, pool: np.ndarray, rng: np.random.Generator, negatives: _Negatives,
           n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Half positives, a quarter transformed positives, a quarter generated negatives."""
    aug = _augment(images[torch.from_numpy(rng.integers(len(images), size=n))], rng, negatives)
    xs, ys = [], []
    for a in aug:
        r = rng.random()
        if r < 0.5:
            xs.append(_model_input(a))
            ys.append(1.0)
        elif r < 0.75:
            k = int(rng.integers(0, 5))
            turned = [np.rot90(a, 1), np.rot90(a, 2), np.rot90(a, 3), 1.0 - a, a[::-1]][k]
            xs.append(_model_input(np.ascontiguousarray(turned)))
            ys.append(0.0)
        else:
            xs.append(pool[int(rng.integers(len(pool)))])
            ys.append(0.0)
    return torch.from_numpy(np.stack(xs))[:, None], torch.tensor(ys)


def train_detector(images: torch.Tensor, plan: GatePlan, log: Callable[[str], None] = print) -> ChestRadiographDetector:
    """Train the chest-radiograph detector on (N, 1, S, S) training images (model inputs)."""
    rng = np.random.default_rng(plan.seed)
    torch.manual_seed(plan.seed)
    negatives = _Negatives(rng, images.shape[-1])
    kinds = negatives.kinds()
    pool = np.stack([_model_input(kinds[i % len(kinds)]()) for i in range(plan.negatives)])
    detector = ChestRadiographDetector()
    opt = torch.optim.Adam(detector.parameters(), plan.lr, weight_decay=1e-4)
    detector.train()
    for step in range(plan.steps):
        x, y = _batch(images[:, 0], pool, rng, negatives, plan.batch)
        loss = F.binary_cross_entropy_with_logits(detector(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 250 == 0 or step == plan.steps - 1:
            log(f"input gate detector: step {step} loss {loss.item():.4f}")
    detector.eval()
    return detector


@torch.inference_mode()
def _held_out_refusal(detector: ChestRadiographDetector, val_images: torch.Tensor, threshold: float,
                      plan: GatePlan) -> float:
    """The share the detector refuses of held-out negatives: generated images of another seed (as many as the
    validation images, at least 200) and up to 200 validation films, each turned one of the five ways."""
    rng = np.random.default_rng(plan.seed + 1)
    negatives = _Negatives(rng, val_images.shape[-1])
    kinds = negatives.kinds()
    made = [_model_input(kinds[i % len(kinds)]()) for i in range(max(200, len(val_images)))]
    films = (val_images[:200, 0].float() * 0.25 + 0.5).numpy()
    for i, a in enumerate(films):
        turned = [np.rot90(a, 1), np.rot90(a, 2), np.rot90(a, 3), 1.0 - a, a[::-1]][i % 5]
        made.append(_model_input(np.ascontiguousarray(turned)))
    x = torch.from_numpy(np.stack(made))[:, None]
    p = torch.sigmoid(torch.cat([detector(x[i:i + 256]) for i in range(0, len(x), 256)])).numpy()
    return float(np.mean(p < threshold))


@torch.inference_mode()
def _features(model: ClinicalMMModel, images: torch.Tensor, batch: int = 64) -> np.ndarray:
    return torch.cat([encoder_features(model, images[i:i + batch].float())
                      for i in range(0, len(images), batch)]).numpy()


def fit_input_gate(model: ClinicalMMModel, train_images: torch.Tensor, val_images: torch.Tensor, folder: Path,
                   provenance: dict[str, Any], plan: GatePlan | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit the gate on (N, 1, S, S) training and validation images, write ``folder/input_gate.safetensors``,
    and return the manifest's ``input_gate`` section (``provenance`` says which images, by which command)."""
    plan = plan or GatePlan()
    mean, precision = mahalanobis_fit(_features(model, train_images))
    val = torch.from_numpy(_features(model, val_images))
    d = val - torch.from_numpy(mean)
    val_dist = torch.einsum("bi,ij,bj->b", d, torch.from_numpy(precision), d).clamp(min=0).sqrt().numpy()
    threshold = float(np.quantile(val_dist, DOMAIN_QUANTILE))
    detector = train_detector(train_images.float(), plan, log)
    with torch.inference_mode():
        val_p = torch.sigmoid(torch.cat([detector(val_images[i:i + 256].float())
                                         for i in range(0, len(val_images), 256)])).numpy()
    chest_threshold = float(min(0.5, np.quantile(val_p, 0.001)))
    refused = _held_out_refusal(detector, val_images, chest_threshold, plan)
    if refused < plan.min_refused:
        raise CheckpointError(f"the input gate's detector refuses {refused:.3f} of held-out negatives, below "
                              f"{plan.min_refused}: not written (train longer or on more images)")
    tensors = {"mean": torch.from_numpy(mean), "precision": torch.from_numpy(precision),
               **{f"detector.{k}": v.contiguous() for k, v in detector.state_dict().items()}}
    save_file(tensors, str(folder / GATE_FILE))
    return {
        "file": GATE_FILE, "sha256": sha256_file(folder / GATE_FILE),
        "features": "image encoder [CLS] token and mean patch token", "distance": "Mahalanobis (Ledoit-Wolf)",
        "threshold": round(threshold, 4), "threshold_rule": f"validation images' {DOMAIN_QUANTILE:.1%} quantile",
        "chest_threshold": round(chest_threshold, 4),
        "chest_threshold_rule": "min(0.5, validation images' 0.1% quantile of the detector's probability)",
        "validation": {"images": len(val_images), "outside_domain": float(np.mean(val_dist > threshold)),
                       "refused": float(np.mean(val_p < chest_threshold)),
                       "held_out_negatives_refused": round(refused, 4)},
        "detector_plan": {k: getattr(plan, k) for k in ("steps", "batch", "lr", "negatives", "seed", "min_refused")},
        **provenance,
    }
