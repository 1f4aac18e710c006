"""Nested, serialisable configuration of the clinical-mm model (transformers style).

``ClinicalMMConfig`` holds one sub-config per part: ``vision`` (a ``ViTConfig``), ``qformer`` (a
``Blip2QFormerConfig``), ``text`` (a ``GPT2Config``) and ``heads`` (triage and contrastive heads).
It round-trips through JSON (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from clinical_mm.core.findings import FINDINGS, INCIDENTAL_FINDINGS
from clinical_mm.core.questions import DETAIL_TARGETS, parse_detail

__all__ = ["ClinicalMMConfig", "HeadsConfig", "QFormerSettings", "TextSettings", "VisionSettings"]


@dataclass
class VisionSettings:
    """ViT image encoder: the image as a sequence of patch tokens plus [CLS]."""

    image_size: int = 128
    patch_size: int = 16
    num_channels: int = 1
    hidden_size: int = 192
    num_hidden_layers: int = 4
    num_attention_heads: int = 3
    intermediate_size: int = 768
    dropout: float = 0.0
    #: patch tokens from a small CNN's feature map instead of one linear projection per patch (the ViT
    #: paper's hybrid): it learns small local findings from little data far faster
    conv_stem: bool = True

    def validate(self) -> None:
        if self.conv_stem and (self.patch_size & (self.patch_size - 1) or self.patch_size < 2):
            raise ValueError(f"vision.patch_size ({self.patch_size}) must be a power of two with conv_stem")
        if self.image_size % self.patch_size:
            raise ValueError(f"vision.image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size})")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"vision.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass
class QFormerSettings:
    """BLIP-2 Q-Former: learned queries cross-attending to the image tokens (BERT-shaped)."""

    num_query_tokens: int = 32
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    cross_attention_frequency: int = 2
    max_position_embeddings: int = 128
    #: report tokens the Q-Former reads (ITC, ITM, ITG): the whole report, lines and tubes included
    max_text_length: int = 96
    dropout: float = 0.1

    def validate(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"qformer.hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        if self.max_text_length > self.max_position_embeddings:
            raise ValueError("qformer.max_text_length must not exceed max_position_embeddings")


@dataclass
class TextSettings:
    """GPT-2-style causal language model that receives the projected queries as soft prompts."""

    vocab_size: int = 2048
    hidden_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_positions: int = 192
    max_report_tokens: int = 144
    dropout: float = 0.1

    def validate(self, num_query_tokens: int) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("text.hidden_size must be divisible by text.num_attention_heads")
        if num_query_tokens + self.max_report_tokens > self.max_positions:
            raise ValueError(
                f"text.max_positions ({self.max_positions}) must hold the {num_query_tokens} soft prompts "
                f"plus max_report_tokens ({self.max_report_tokens})"
            )


#: the fewest positions a question and its answer must have behind the answers' prefix
_SHORTEST_DIALOGUE = 24


@dataclass
class HeadsConfig:
    """Triage head over the query outputs, and the image-text contrastive projection."""

    flags: tuple[str, ...] = FINDINGS
    contrastive_dim: int = 128
    #: auxiliary laterality targets used while pre-training the image encoder
    lateral_flags: tuple[str, ...] = ("pleural_effusion", "pneumothorax", "consolidation", "nodule_mass", "atelectasis")
    #: auxiliary targets of the image encoder's pre-training that are never flags (devices, incidental
    #: findings): the encoder learns to see what reports mention, for zero-shot prompts and questions
    incidental: tuple[str, ...] = INCIDENTAL_FINDINGS
    #: auxiliary targets of the image encoder's pre-training on what questions ask beyond presence (sizes, the
    #: devices' sides, locations; :data:`~clinical_mm.core.questions.DETAIL_TARGETS`' form)
    detail: tuple[str, ...] = DETAIL_TARGETS
    #: answers read the image encoder's head as well as the queries: a token per head output (flags, sides,
    #: incidental findings, details) behind the soft prompts, set by its probability, and a last one, the
    #: question's focus: those tokens weighted by what the question asks about (``ClinicalMMModel.focus_logits``)
    reading_tokens: bool = True

    @property
    def readings(self) -> int:
        """Outputs of the image encoder's head: flags, two sides per lateral flag, incidental findings, details."""
        return len(self.flags) + 2 * len(self.lateral_flags) + len(self.incidental) + len(self.detail)

    def reading_subjects(self) -> list[tuple[str, str]]:
        """What each of the head's outputs (:attr:`readings`, in order) answers: (finding, question type), as
        :class:`~clinical_mm.core.questions.Question` names them (``("pneumothorax", "side")``)."""
        out = [(f, "presence") for f in self.flags]
        out += [(f, "side") for f in self.lateral_flags for _ in ("right", "left")]
        out += [(f, "presence") for f in self.incidental]
        out += [parse_detail(t)[:2] for t in self.detail]
        return out


@dataclass
class ClinicalMMConfig:
    """The whole model's configuration."""

    vision: VisionSettings = field(default_factory=VisionSettings)
    qformer: QFormerSettings = field(default_factory=QFormerSettings)
    text: TextSettings = field(default_factory=TextSettings)
    heads: HeadsConfig = field(default_factory=HeadsConfig)

    def __post_init__(self) -> None:
        self.vision.validate()
        self.qformer.validate()
        self.text.validate(self.qformer.num_query_tokens)
        if not self.heads.flags:
            raise ValueError("heads.flags must name at least one triage flag")
        for target in self.heads.detail:
            parse_detail(target)
        if self.answer_prefix + _SHORTEST_DIALOGUE > self.text.max_positions:
            raise ValueError(f"text.max_positions ({self.text.max_positions}) must hold the {self.answer_prefix} soft "
                             f"prompts, reading tokens and focus token and a question with its answer ({_SHORTEST_DIALOGUE} tokens)")

    @property
    def answer_prefix(self) -> int:
        """Positions before an answer's dialogue: the soft prompts, the reading tokens and the focus token."""
        return self.qformer.num_query_tokens + (self.heads.readings + 1 if self.heads.reading_tokens else 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClinicalMMConfig:
        heads = dict(data.get("heads", {}))
        heads.setdefault("incidental", ())  # models written before incidental targets had none
        heads.setdefault("detail", ())  # nor detail targets and reading tokens
        heads.setdefault("reading_tokens", False)
        for key in ("flags", "lateral_flags", "incidental", "detail"):
            if key in heads:
                heads[key] = tuple(heads[key])
        return cls(
            vision=VisionSettings(**data.get("vision", {})),
            qformer=QFormerSettings(**data.get("qformer", {})),
            text=TextSettings(**data.get("text", {})),
            heads=HeadsConfig(**heads),
        )

    @classmethod
    def tiny(cls, vocab_size: int = 64) -> ClinicalMMConfig:
        """A tiny configuration for unit tests on CPU."""
        return cls(
            vision=VisionSettings(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64),
            qformer=QFormerSettings(num_query_tokens=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64, max_position_embeddings=32, max_text_length=16,
                                    dropout=0.0),
            text=TextSettings(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              max_positions=80, max_report_tokens=24, dropout=0.0),
            heads=HeadsConfig(contrastive_dim=16),
        )
