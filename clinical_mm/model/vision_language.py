"""The vision-language uses of the model beyond the draft: zero-shot findings from prompts, image and text
embeddings for retrieval, answers to questions, and where a phrase is on the image.

- **Zero-shot** (CLIP, CheXzero): a finding named in words is scored by the contrastive head, the image's
  similarity to positive prompts against its similarity to negative ones (``{f}.`` / ``No {f}.``), as a
  two-way softmax. Ensembling averages the unit text embeddings of several templates (severity x location x
  phrasing) per side before comparing, as CLIP's prompt ensembling. The margin is turned into a probability by
  a logistic calibration fitted on validation images (:func:`fit_zero_shot_calibration`, recorded in the
  model manifest's ``zero_shot`` section); without one the probability is the raw softmax and says so.
- **Embeddings**: an image is its Q query vectors in the contrastive space and a text one vector; their
  similarity is the best-matching query (BLIP-2's ITC), which a vector index answers exactly by indexing the
  query vectors and keeping each image's best hit (:mod:`clinical_mm.model.vector_index`).
- **Questions** (InstructBLIP): the question joins the Q-Former's queries, whose outputs prompt the language
  model; the answer is decoded greedily.
- **Phrase grounding**: the occlusion sensitivity (:mod:`clinical_mm.model.grounding`) of the image's
  similarity to the phrase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from clinical_mm.core.metrics import sigmoid
from clinical_mm.model.checkpoint import LoadedModel
from clinical_mm.model.grounding import GroundedRegion, InputGeometry, locate, occlusion_maps
from clinical_mm.model.modeling import TextBatch
from clinical_mm.model.tokenizer import SPECIAL_IDS, format_question

__all__ = [
    "CAPTION_TEMPLATES", "NEGATIVE_TEMPLATES", "POSITIVE_TEMPLATES", "VisionLanguage", "ZeroShotScore",
    "calibration_section", "fill_prompt", "fit_zero_shot_calibration",
]

#: positive prompts: phrasing x severity x location, in the words reports use; the first is the single prompt
POSITIVE_TEMPLATES: tuple[str, ...] = (
    "{F}.", "There is {a} {f}.", "Small {f}.", "Moderate {f}.", "Large {f}.", "Right {f}.", "Left {f}.",
    "Bilateral {f}.", "{F} is present.", "Findings consistent with {f}.",
)
#: negative prompts (pertinent negatives); the first is the single prompt
NEGATIVE_TEMPLATES: tuple[str, ...] = ("No {f}.", "There is no {f}.", "No evidence of {f}.", "{F} is absent.")
#: the templates training says findings in (positive, negative: :mod:`clinical_mm.model.training`'s captions);
#: the others (``{F} is present.``, ``Findings consistent with {f}.``, ``No evidence of {f}.``, ``{F} is
#: absent.``) are never trained on, and their ensemble measures how far the prompts' meaning carries to new words
CAPTION_TEMPLATES: tuple[tuple[str, ...], tuple[str, ...]] = (POSITIVE_TEMPLATES[:8], NEGATIVE_TEMPLATES[:2])
_TEXT_TOKENS = 32
#: tokens an answer may take: the longest canonical answer, "superior vena cava", takes 13 with the shipped tokenizer
#: (the reports rarely say it, so its byte pairs are short) and [EOS] one more
_ANSWER_TOKENS = 16


def fill_prompt(template: str, finding: str) -> str:
    """A template said of a finding (``There is {a} {f}.``, ``pleural effusion`` -> ``There is a pleural
    effusion.``)."""
    f = " ".join(finding.strip().rstrip(".").split())
    article = "an" if f[:1].lower() in "aeiou" else "a"
    return template.format(f=f.lower(), F=f[:1].upper() + f[1:], a=article)


@dataclass(frozen=True)
class ZeroShotScore:
    """One finding's zero-shot reading of one image: ``probability`` (calibrated when ``calibrated``), the
    cosine ``margin`` of positive over negative prompts, and the single-prompt margin for comparison."""

    finding: str
    probability: float
    margin: float
    single_prompt_margin: float
    calibrated: bool

    def to_json(self) -> dict[str, Any]:
        return {"finding": self.finding, "probability": round(self.probability, 4), "margin": round(self.margin, 5),
                "single_prompt_margin": round(self.single_prompt_margin, 5), "calibrated": self.calibrated}


class VisionLanguage:
    """Zero-shot scoring, embeddings, answers and phrase grounding with a loaded clinical-mm model."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        cal = loaded.manifest.get("zero_shot", {}).get("calibration")
        self.calibration: dict[str, float] | None = (
            {"slope": float(cal["slope"]), "intercept": float(cal["intercept"])} if cal else None)

    # ------------------------------------------------------------------ embeddings
    @torch.inference_mode()
    def image_vectors(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) model inputs -> (B, Q, D) unit query vectors."""
        out = [self.model.image_features(self.model.query_output(self.model.encode_image(pixels[i:i + 32].float())))
               for i in range(0, len(pixels), 32)]
        return torch.cat(out)

    @torch.inference_mode()
    def text_vectors(self, texts: list[str]) -> torch.Tensor:
        """Texts -> (B, D) unit vectors (reports read as the Q-Former was trained: impression, then findings)."""
        out = []
        for i in range(0, len(texts), 64):
            ids, mask = self.tokenizer.batch(texts[i:i + 64], "cls", self.model.config.qformer.max_text_length,
                                             end=False)
            out.append(self.model.text_features(TextBatch(ids, mask)))
        return torch.cat(out) if out else torch.zeros(0, self.model.config.heads.contrastive_dim)

    # ------------------------------------------------------------------ zero-shot
    def prompt_vectors(self, finding: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ensembled positive and negative prompt vectors, then the single prompts' (each (D,), unit)."""
        pos = self.text_vectors([fill_prompt(t, finding) for t in POSITIVE_TEMPLATES])
        neg = self.text_vectors([fill_prompt(t, finding) for t in NEGATIVE_TEMPLATES])
        unit = torch.nn.functional.normalize
        return unit(pos.mean(0), dim=0), unit(neg.mean(0), dim=0), pos[0], neg[0]

    def zero_shot_margins(self, image_vectors: torch.Tensor, finding: str) -> tuple[np.ndarray, np.ndarray]:
        """(B, Q, D) image vectors -> (ensembled, single-prompt) cosine margins of positive over negative, (B,) each."""
        pos, neg, pos1, neg1 = self.prompt_vectors(finding)
        sims = self.model.similarity(image_vectors, torch.stack([pos, neg, pos1, neg1]))
        return (sims[:, 0] - sims[:, 1]).numpy(), (sims[:, 2] - sims[:, 3]).numpy()

    def unseen_prompt_margins(self, image_vectors: torch.Tensor, finding: str) -> np.ndarray:
        """(B, Q, D) image vectors -> (B,) ensembled margins of the templates training never says findings in."""
        unit = torch.nn.functional.normalize
        pos = self.text_vectors([fill_prompt(t, finding) for t in POSITIVE_TEMPLATES[len(CAPTION_TEMPLATES[0]):]])
        neg = self.text_vectors([fill_prompt(t, finding) for t in NEGATIVE_TEMPLATES[len(CAPTION_TEMPLATES[1]):]])
        sims = self.model.similarity(image_vectors, torch.stack([unit(pos.mean(0), dim=0), unit(neg.mean(0), dim=0)]))
        return (sims[:, 0] - sims[:, 1]).numpy()

    def probability(self, margin: np.ndarray) -> np.ndarray:
        """Margins -> probabilities: the fitted calibration, else the contrastive head's own two-way softmax."""
        if self.calibration is not None:
            return np.asarray(sigmoid(self.calibration["slope"] * margin + self.calibration["intercept"]))
        scale = min(100.0, math.exp(float(self.model.logit_scale.detach())))
        return np.asarray(sigmoid(scale * margin))

    def zero_shot(self, pixels: torch.Tensor, findings: list[str]) -> list[list[ZeroShotScore]]:
        """Per image of ``pixels`` (B, C, S, S), a score per finding named in ``findings``."""
        vectors = self.image_vectors(pixels)
        per_finding = []
        for f in findings:
            margin, single = self.zero_shot_margins(vectors, f)
            prob = self.probability(margin)
            per_finding.append([ZeroShotScore(f, float(prob[i]), float(margin[i]), float(single[i]),
                                              self.calibration is not None) for i in range(len(vectors))])
        return [[scores[i] for scores in per_finding] for i in range(len(vectors))]

    # ------------------------------------------------------------------ questions
    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) model inputs -> (B, P, Dv) image tokens, for several questions about the same images."""
        return torch.cat([self.model.encode_image(pixels[i:i + 32].float()) for i in range(0, len(pixels), 32)])

    @torch.inference_mode()
    def ask(self, pixels: torch.Tensor, question: str) -> list[str]:
        """The model's answer to ``question`` about each image of ``pixels``."""
        return self.answers(self.encode(pixels), question)

    @torch.inference_mode()
    def answers(self, image_tokens: torch.Tensor, question: str) -> list[str]:
        """The model's answer to ``question`` about each image, from its tokens (:meth:`encode`)."""
        text = " ".join(question.split())
        if not text:
            raise ValueError("the question is empty")
        n = len(image_tokens)
        prompt = [SPECIAL_IDS["bos"], *self.tokenizer.ids(format_question(text))]
        cfg = self.model.config
        room = cfg.text.max_positions - cfg.answer_prefix - _ANSWER_TOKENS
        if len(prompt) > room:
            raise ValueError(f"the question is too long ({len(prompt)} tokens; at most {room})")
        dialogue = torch.tensor([prompt] * n)
        out: list[str] = []
        for i in range(0, n, 32):
            ids = self.model.answer(image_tokens[i:i + 32], dialogue[i:i + 32], max_new_tokens=_ANSWER_TOKENS)
            out += [self.tokenizer.decode(row) for row in ids.tolist()]
        return out

    # ------------------------------------------------------------------ phrase grounding
    @torch.inference_mode()
    def ground(self, pixels: torch.Tensor, phrase: str, geometry: InputGeometry) -> GroundedRegion:
        """Where ``phrase`` is on one image (``pixels`` (1, C, S, S)): occlusion sensitivity of its similarity."""
        text = self.text_vectors([phrase])
        model = self.model

        def score(x: torch.Tensor) -> torch.Tensor:
            return model.similarity(model.image_features(model.query_output(model.encode_image(x))), text)

        heatmap = occlusion_maps(model, pixels.float(), score=score)[0].numpy()
        return locate(phrase, heatmap, geometry)


def calibration_section(vl: VisionLanguage, images: torch.Tensor, labels: dict[str, np.ndarray],
                        provenance: dict[str, Any]) -> dict[str, Any]:
    """The manifest's ``zero_shot`` section: the calibration fitted on the margins of ``images`` (validation
    images, (N, C, S, S)) for each finding of ``labels`` (its words -> (N,) 0/1, -1 where unknown), with what it
    was fitted on."""
    vectors = vl.image_vectors(images)
    margins, targets = [], []
    for words, y in labels.items():
        known = y >= 0
        margin, _ = vl.zero_shot_margins(vectors[torch.from_numpy(known)], words)
        margins.append(margin)
        targets.append(y[known])
    cal: dict[str, float] | None = fit_zero_shot_calibration(np.concatenate(margins), np.concatenate(targets))
    if cal is not None and cal["slope"] <= 0:  # a curve that turns the prompts' ranking round is no calibration
        provenance = {**provenance, "not_calibrated": f"the fitted slope is {cal['slope']}: on these images the "
                                                      "prompts' margins do not rank present findings higher"}
        cal = None
    return {"calibration": cal, "method": "logistic (Platt) on the ensembled prompts' cosine margin, pooled over findings",
            "findings": sorted(labels), "templates": {"positive": len(POSITIVE_TEMPLATES),
                                                      "negative": len(NEGATIVE_TEMPLATES)}, **provenance}


def fit_zero_shot_calibration(margins: np.ndarray, labels: np.ndarray, steps: int = 500) -> dict[str, float]:
    """A logistic calibration ``sigmoid(slope * margin + intercept)`` fitted by maximum likelihood (Newton's
    method) on pooled validation margins and 0/1 labels (every finding together: it holds for findings named in
    any words, not one per finding)."""
    x, y = np.asarray(margins, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if len(x) < 10 or y.min() == y.max():
        raise ValueError("zero-shot calibration needs at least 10 margins with both labels")
    w = np.array([10.0, 0.0])
    design = np.stack([x, np.ones_like(x)], 1)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        grad = design.T @ (p - y)
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return {"slope": round(float(w[0]), 6), "intercept": round(float(w[1]), 6)}
