"""The clinical-mm model: ViT encoder -> BLIP-2 Q-Former -> projection -> GPT-2 causal LM, plus a triage head.

Shapes (B batch, P = patches + 1, Q query tokens, T text tokens, F triage flags)::

    pixel_values (B, C, S, S) --ViTModel--> image_embeds (B, P, Dv)
    query_tokens (1, Q, Dq) --Blip2QFormerModel, cross-attending to image_embeds--> query_output (B, Q, Dq)
    query_output --language_projection--> soft prompts (B, Q, Dt) --GPT2LMHeadModel--> report tokens
    query_output --mean, triage_head--> triage logits (B, F)

Training follows BLIP-2: the image encoder is pre-trained (here: supervised on findings and their
laterality); stage 1 trains the Q-Former against the frozen encoder with image-text contrastive (ITC),
image-text matching with hard negatives mined from ITC (ITM) and image-grounded text generation (ITG);
stage 2 freezes the language model (first trained on report text) and learns the projection (and the
Q-Former) with the language-modelling loss. Answers to questions (BLIP-2's and LLaVA's arrangement) read the
plain query outputs and, through reading tokens, the image encoder's own head; the question is only in the
LM's text, and the LM learns the answers last. The parts are the library's classes (``ViTModel``,
``Blip2QFormerModel``, ``GPT2LMHeadModel``); attention is not re-written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Blip2QFormerConfig, GPT2Config, GPT2LMHeadModel, ViTConfig, ViTModel
from transformers.models.blip_2.modeling_blip_2 import Blip2QFormerModel, Blip2TextEmbeddings

from clinical_mm.model.configuration import ClinicalMMConfig
from clinical_mm.model.tokenizer import SPECIAL_IDS

__all__ = [
    "ClinicalMMModel", "ContrastiveBatch", "QuestionBatch", "Stage1Output", "Stage2Output", "TextBatch",
    "VisionPretrainOutput",
]


@dataclass
class VisionPretrainOutput:
    """``loss`` scalar; ``logits`` (B, F) finding logits; ``lateral_logits`` (B, 2 * L) right/left logits;
    ``incidental_logits`` (B, I) logits of ``heads.incidental``; ``detail_logits`` (B, D) of ``heads.detail``."""

    loss: torch.Tensor
    logits: torch.Tensor
    lateral_logits: torch.Tensor
    incidental_logits: torch.Tensor
    detail_logits: torch.Tensor


@dataclass
class Stage1Output:
    """BLIP-2 stage-1 losses (scalars): total, image-text contrastive, matching, grounded generation."""

    loss: torch.Tensor
    loss_itc: torch.Tensor
    loss_itm: torch.Tensor
    loss_itg: torch.Tensor


@dataclass
class Stage2Output:
    """BLIP-2 stage-2 losses (scalars): total, language modelling through the frozen LM, triage BCE and the
    image-text contrastive loss kept alongside (so that stage 2 does not undo stage 1's alignment)."""

    loss: torch.Tensor
    loss_lm: torch.Tensor
    loss_triage: torch.Tensor
    loss_itc: torch.Tensor


@dataclass
class TextBatch:
    """Token ids (B, T) and their attention mask (B, T), as :meth:`ReportTokenizer.batch` returns them."""

    ids: torch.Tensor
    mask: torch.Tensor


@dataclass
class ContrastiveBatch:
    """What image-text contrastive learning sees of a batch of B studies: each study's report (``reports``,
    starting with [CLS]) and one sentence of it (``sentences``); ``report_pos`` (B, B) marks, for each image, the
    reports that are its own (its own, and any with the same text), ``sentence_pos`` (B, B) the sampled sentences
    its report states (``No pneumothorax.`` belongs to many reports, and so does any sentence saying the same).
    ``captions`` (optional, C of them): prompts said of one finding each (``Small pneumothorax.``, ``No pacemaker.``)
    with ``caption_pos`` (B, C) marking the images they are true of."""

    reports: TextBatch
    sentences: TextBatch
    report_pos: torch.Tensor
    sentence_pos: torch.Tensor
    captions: TextBatch | None = None
    caption_pos: torch.Tensor | None = None


@dataclass
class QuestionBatch:
    """Questions about a batch's images: ``dialogue`` ``[BOS] QUESTION: ... ANSWER: ... [EOS]`` for the language
    model, ``answer_mask`` (B', T) the dialogue tokens the loss is taken on (the answer and [EOS]) and ``rows``
    (B',) the image each question is about (several questions may be about one image). ``focus`` (B', R), where
    known: the readings each question is about (``HeadsConfig.reading_subjects``), as weights that sum to one
    (a row of zeros for a question about none, the count), what the focus token learns to pick."""

    dialogue: TextBatch
    answer_mask: torch.Tensor
    rows: torch.Tensor
    focus: torch.Tensor | None = None


def _masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over the targets that are known (>= 0); -1 marks unknown."""
    known = (targets >= 0).float()
    loss = F.binary_cross_entropy_with_logits(logits.float(), targets.clamp(min=0).float(), reduction="none")
    return (loss * known).sum() / known.sum().clamp(min=1)


def _multi_positive_nce(sim: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of a (B, B) image-to-text similarity with several positives per row (``pos``, bool):
    each direction's target spreads evenly over the positives."""
    pos = pos.float()
    rows = pos / pos.sum(1, keepdim=True).clamp(min=1)
    cols = pos.t() / pos.t().sum(1, keepdim=True).clamp(min=1)
    i2t = -(rows * F.log_softmax(sim.float(), 1)).sum(1)
    t2i = -(cols * F.log_softmax(sim.t().float(), 1)).sum(1)
    keep_i, keep_t = pos.sum(1) > 0, pos.sum(0) > 0
    return 0.5 * (i2t[keep_i].mean() + t2i[keep_t].mean())


class _QFormerLMHead(nn.Module):
    """BERT-style prediction head for ITG, its decoder tied to the Q-Former word embeddings."""

    def __init__(self, hidden: int, embeddings: nn.Embedding) -> None:
        super().__init__()
        self.transform = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=1e-12))
        self.embeddings = embeddings
        self.bias = nn.Parameter(torch.zeros(embeddings.num_embeddings))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(hidden_states), self.embeddings.weight, self.bias)


class ConvStem(nn.Module):
    """Hybrid-ViT patch embedding (the ViT paper's hybrid): tokens from a small CNN's feature map.

    log2(patch) levels of two 3x3 convolutions (batch norm, ReLU) and 2x max pooling keep full resolution
    where small findings live, then a 1x1 projection to the token width. Maps (B, C, S, S) to
    (B, D, S / patch, S / patch), the shape of ViT's linear patch projection. Patches larger than
    ``2 ** max_levels`` pixels first fold each block of pixels into channels (space-to-depth, lossless):
    the convolutions see the full-resolution detail (a pleural line, vessel markings) at the cost of
    the coarser grid, not of the finer one.
    """

    def __init__(self, in_channels: int, hidden: int, patch_size: int, max_levels: int = 4) -> None:
        super().__init__()
        n = int(math.log2(patch_size))
        fold = 2 ** max(0, n - max_levels)
        n -= int(math.log2(fold))
        layers: list[nn.Module] = [nn.PixelUnshuffle(fold)] if fold > 1 else []
        prev = in_channels * fold * fold
        for i in range(n):
            w = min(max(8, hidden // 2), 16 * 2**i)
            layers += [nn.Conv2d(prev, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            prev = w
        layers.append(nn.Conv2d(prev, hidden, 1))
        self.layers = nn.Sequential(*layers)

    @property
    def weight(self) -> torch.Tensor:
        """The last projection's weight (``ViTModel`` reads the patch projection's dtype from it)."""
        last = self.layers[-1]
        assert isinstance(last, nn.Conv2d)
        return last.weight

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.layers(pixel_values)


class ClinicalMMModel(nn.Module):
    """ViT + Q-Former + causal LM + triage head. See the module docstring for shapes."""

    def __init__(self, config: ClinicalMMConfig) -> None:
        super().__init__()
        self.config = config
        v, q, t, h = config.vision, config.qformer, config.text, config.heads
        self.vision = ViTModel(
            ViTConfig(
                image_size=v.image_size, patch_size=v.patch_size, num_channels=v.num_channels,
                hidden_size=v.hidden_size, num_hidden_layers=v.num_hidden_layers,
                num_attention_heads=v.num_attention_heads, intermediate_size=v.intermediate_size,
                hidden_dropout_prob=v.dropout, attention_probs_dropout_prob=v.dropout,
                attn_implementation="sdpa",
            ),
            add_pooling_layer=False,
        )
        if v.conv_stem:
            self.vision.embeddings.patch_embeddings.projection = ConvStem(v.num_channels, v.hidden_size, v.patch_size)
        n_read = h.readings
        self.vision_head = nn.Sequential(nn.LayerNorm(v.hidden_size), nn.Linear(v.hidden_size, n_read))

        qcfg = Blip2QFormerConfig(
            vocab_size=t.vocab_size, hidden_size=q.hidden_size, num_hidden_layers=q.num_hidden_layers,
            num_attention_heads=q.num_attention_heads, intermediate_size=q.intermediate_size,
            hidden_dropout_prob=q.dropout, attention_probs_dropout_prob=q.dropout,
            max_position_embeddings=q.max_position_embeddings, cross_attention_frequency=q.cross_attention_frequency,
            encoder_hidden_size=v.hidden_size, pad_token_id=SPECIAL_IDS["pad"], use_qformer_text_input=True,
            attn_implementation="sdpa",
        )
        self.query_tokens = nn.Parameter(torch.randn(1, q.num_query_tokens, q.hidden_size) * 0.02)
        self.text_embeddings = Blip2TextEmbeddings(qcfg)
        self.qformer = Blip2QFormerModel(qcfg)
        self.itg_head = _QFormerLMHead(q.hidden_size, self.text_embeddings.word_embeddings)
        self.vision_proj = nn.Linear(q.hidden_size, h.contrastive_dim)
        self.text_proj = nn.Linear(q.hidden_size, h.contrastive_dim)
        self.itm_head = nn.Linear(q.hidden_size, 2)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), as CLIP and BLIP-2
        self.triage_head = nn.Sequential(nn.LayerNorm(q.hidden_size), nn.Linear(q.hidden_size, len(h.flags)))

        self.language_projection = nn.Linear(q.hidden_size, t.hidden_size)
        #: one learned prompt pattern per triage flag, added to the projected queries in proportion to the flag's
        #: probability: co-occurring findings all reach the LM, not only the most conspicuous one
        self.flag_prompts = nn.Parameter(torch.zeros(len(h.flags), q.num_query_tokens, t.hidden_size))
        #: answers only: one token per output of the image encoder's head behind the soft prompts, between a learned
        #: "absent" and "present" embedding by its probability (PromptMRG's diagnosis prompts): what the encoder reads
        #: of sides, sizes and devices reaches the LM at a place of its own
        self.reading_tokens = (nn.Parameter(torch.randn(n_read, 2, t.hidden_size) * 0.02)
                               if h.reading_tokens else None)
        #: the question's focus over those readings (:meth:`focus_logits`): the question picks what it asks about
        self.focus_head = (nn.Sequential(nn.LayerNorm(t.hidden_size), nn.Linear(t.hidden_size, n_read))
                           if h.reading_tokens else None)
        self.lm = GPT2LMHeadModel(
            GPT2Config(
                vocab_size=t.vocab_size, n_positions=t.max_positions, n_embd=t.hidden_size,
                n_layer=t.num_hidden_layers, n_head=t.num_attention_heads, resid_pdrop=t.dropout,
                embd_pdrop=t.dropout, attn_pdrop=t.dropout, bos_token_id=SPECIAL_IDS["bos"],
                eos_token_id=SPECIAL_IDS["eos"], pad_token_id=SPECIAL_IDS["pad"], attn_implementation="sdpa",
            )
        )

    # ------------------------------------------------------------------ image encoder
    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) pixels -> (B, P, Dv) image tokens ([CLS] first)."""
        expected = (self.config.vision.num_channels, self.config.vision.image_size, self.config.vision.image_size)
        if pixel_values.dim() != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(f"pixel_values must have shape (B, {expected[0]}, {expected[1]}, {expected[2]}), "
                             f"got {tuple(pixel_values.shape)}")
        return self.vision(pixel_values=pixel_values).last_hidden_state

    def vision_pretrain(
        self, pixel_values: torch.Tensor, labels: torch.Tensor, lateral_labels: torch.Tensor,
        incidental_labels: torch.Tensor | None = None, detail_labels: torch.Tensor | None = None,
    ) -> VisionPretrainOutput:
        """Supervised image-encoder pre-training: findings (B, F) as 0/1, their laterality (B, 2L), the
        incidental findings (B, I) and the details (B, D) as 0/1, or -1 where unknown (left out of the loss)."""
        logits, lat, inc, det = self._split_head(self._vision_scores(self.encode_image(pixel_values)))
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float()) + 0.5 * _masked_bce(lat, lateral_labels)
        if incidental_labels is not None and inc.shape[1]:
            loss = loss + _masked_bce(inc, incidental_labels)
        if detail_labels is not None and det.shape[1]:
            loss = loss + _masked_bce(det, detail_labels)
        return VisionPretrainOutput(loss, logits, lat, inc, det)

    def vision_logits(self, image_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image encoder's own reading: (B, P, Dv) tokens -> finding logits (B, F) and right/left logits
        (B, 2L: right then left for each of ``heads.lateral_flags``).

        A multiple-instance head: every token scores every target; patch scores are pooled with a smooth
        maximum (log-sum-exp), so a finding in one patch counts and patch tokens learn local meaning (which
        :func:`clinical_mm.model.grounding.flag_heatmaps` reads).
        """
        flags, lateral, _, _ = self._split_head(self._vision_scores(image_tokens))
        return flags, lateral

    def incidental_logits(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """The image encoder's reading of ``heads.incidental`` (B, I), pooled as :meth:`vision_logits`."""
        return self._split_head(self._vision_scores(image_tokens))[2]

    def detail_logits(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """The image encoder's reading of ``heads.detail`` (B, D), pooled as :meth:`vision_logits`."""
        return self._split_head(self._vision_scores(image_tokens))[3]

    def readings(self, image_tokens: torch.Tensor) -> torch.Tensor:
        """(B, P, Dv) image tokens -> (B, R) probabilities of every output of the image encoder's head, what the
        reading tokens are set by."""
        return torch.sigmoid(self._vision_scores(image_tokens).float())

    def _split_head(self, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The head's (B, F + 2L + I + D) outputs as flags, sides, incidental findings and details."""
        h = self.config.heads
        sizes = [len(h.flags), 2 * len(h.lateral_flags), len(h.incidental), len(h.detail)]
        flags, lateral, incidental, detail = torch.split(scores, sizes, dim=1)
        return flags, lateral, incidental, detail

    def _vision_scores(self, image_tokens: torch.Tensor) -> torch.Tensor:
        scores = self.vision_head(image_tokens)  # (B, P, F + 2L + I + D)
        patch = scores[:, 1:]
        r = 4.0
        pooled = (torch.logsumexp(r * patch, dim=1) - math.log(patch.shape[1])) / r
        return 0.5 * (scores[:, 0] + pooled)

    # ------------------------------------------------------------------ Q-Former passes
    def query_output(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """(B, P, Dv) image tokens -> (B, Q, Dq) query outputs."""
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        return self.qformer(query_embeds=queries, encoder_hidden_states=image_embeds).last_hidden_state

    def image_features(self, query_output: torch.Tensor) -> torch.Tensor:
        """(B, Q, Dq) query outputs -> (B, Q, D) unit vectors of the contrastive space (one per query)."""
        return F.normalize(self.vision_proj(query_output).float(), dim=-1)

    def text_features(self, text: TextBatch) -> torch.Tensor:
        """(B, T) text ([CLS] first) -> (B, D) unit vectors of the contrastive space."""
        return F.normalize(self.text_proj(self.text_output(text.ids, text.mask)[:, 0]).float(), dim=-1)

    @staticmethod
    def similarity(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Cosine similarity (B_i, B_t) of images and texts: the best-matching query per pair (BLIP-2's ITC)."""
        return torch.einsum("iqd,td->itq", image_features, text_features).amax(-1)

    def contrastive_loss(self, query_output: torch.Tensor, batch: ContrastiveBatch) -> torch.Tensor:
        """ITC against each study's own report, against one sentence of it and, where the batch has them, against
        captions of its findings (multi-positive InfoNCE, the terms averaged).

        The report term aligns an image with its own report, not with every report of the same findings (what
        image-report retrieval needs); the sentence term aligns it with the statements its report makes, one at
        a time (what a zero-shot prompt is); the caption term with prompts said of its labels (CXR-CLIP's
        label-to-text prompts), so that a prompt's words, not only the reports' wording, mean the finding.
        """
        img = self.image_features(query_output)
        scale = self.logit_scale.exp().clamp(max=100.0)
        pairs = [(batch.reports, batch.report_pos), (batch.sentences, batch.sentence_pos)]
        if batch.captions is not None and batch.caption_pos is not None:
            pairs.append((batch.captions, batch.caption_pos))
        losses = [_multi_positive_nce(self.similarity(img, self.text_features(text)) * scale, pos) for text, pos in pairs]
        return torch.stack(losses).mean()

    def text_output(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Text only (unimodal): (B, T) ids -> (B, T, Dq) hidden states ([CLS] first)."""
        embeds = self.text_embeddings(input_ids=input_ids)
        return self.qformer(query_embeds=embeds, query_length=0, attention_mask=attention_mask).last_hidden_state

    def _joint(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, mask4d: torch.Tensor
    ) -> torch.Tensor:
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        embeds = self.text_embeddings(input_ids=input_ids, query_embeds=queries)
        return self.qformer(
            query_embeds=embeds, query_length=queries.shape[1], attention_mask=mask4d,
            encoder_hidden_states=image_embeds,
        ).last_hidden_state

    @staticmethod
    def _joint_mask(text_mask: torch.Tensor, n_query: int, causal: bool) -> torch.Tensor:
        """Boolean (B, 1, Q+T, Q+T) mask. ITM: all see all. ITG: queries see queries; text sees queries + past text."""
        b, t = text_mask.shape
        n = n_query + t
        keys = torch.cat([torch.ones(b, n_query, dtype=torch.bool, device=text_mask.device), text_mask.bool()], 1)
        mask = keys[:, None, :].expand(b, n, n).clone()
        if causal:
            mask[:, :n_query, n_query:] = False
            tri = torch.tril(torch.ones(t, t, dtype=torch.bool, device=text_mask.device))
            mask[:, n_query:, n_query:] &= tri
        return mask[:, None]

    def stage1(self, image_embeds: torch.Tensor, batch: ContrastiveBatch) -> Stage1Output:
        """ITC (:meth:`contrastive_loss`) + ITM (hard negatives mined from the report similarities) + ITG on the
        reports. Studies whose reports have the same text are not used as negatives of each other."""
        b = image_embeds.shape[0]
        nq = self.config.qformer.num_query_tokens
        input_ids, attention_mask = batch.reports.ids, batch.reports.mask
        q_out = self.query_output(image_embeds)
        loss_itc = self.contrastive_loss(q_out, batch)

        # ITM with hard negatives sampled from the ITC similarities.
        with torch.no_grad():
            same = batch.report_pos.float()
            sim_i2t = self.similarity(self.image_features(q_out), self.text_features(batch.reports))
            sim_i2t = sim_i2t * self.logit_scale.exp().clamp(max=100.0)
            w_i2t = F.softmax(sim_i2t.float(), 1).masked_fill(same.bool(), 0) + 1e-6 * (1 - same)
            w_t2i = F.softmax(sim_i2t.t().float(), 1).masked_fill(same.t().bool(), 0) + 1e-6 * (1 - same.t())
            has_neg = (same.sum(1) < b)
            neg_txt = torch.multinomial(w_i2t + (~has_neg)[:, None].float(), 1).squeeze(1)
            neg_img = torch.multinomial(w_t2i + (~has_neg)[:, None].float(), 1).squeeze(1)
        ids_all = torch.cat([input_ids, input_ids[neg_txt], input_ids])
        mask_all = torch.cat([attention_mask, attention_mask[neg_txt], attention_mask])
        img_all = torch.cat([image_embeds, image_embeds, image_embeds[neg_img]])
        joint = self._joint(img_all, ids_all, self._joint_mask(mask_all, nq, causal=False))
        itm_logits = self.itm_head(joint[:, :nq]).mean(1)
        itm_labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(itm_logits.device)
        valid = torch.cat([torch.ones(b, dtype=torch.bool, device=has_neg.device), has_neg, has_neg])
        loss_itm = F.cross_entropy(itm_logits.float()[valid], itm_labels[valid])

        # ITG: [DEC] replaces [CLS]; text is decoded causally, seeing all queries.
        dec_ids = input_ids.clone()
        dec_ids[:, 0] = SPECIAL_IDS["dec"]
        joint = self._joint(image_embeds, dec_ids, self._joint_mask(attention_mask, nq, causal=True))
        logits = self.itg_head(joint[:, nq:-1] if dec_ids.shape[1] > 1 else joint[:, nq:])
        target = dec_ids[:, 1:].masked_fill(attention_mask[:, 1:] == 0, -100)
        loss_itg = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)
        loss = loss_itc + loss_itm + loss_itg
        return Stage1Output(loss, loss_itc, loss_itm, loss_itg)

    # ------------------------------------------------------------------ language model side
    def soft_prompts(self, query_output: torch.Tensor) -> torch.Tensor:
        """(B, Q, Dq) query outputs -> (B, Q, Dt) soft visual prompts for the LM.

        The linear projection of the queries plus each flag's prompt pattern weighted by the triage head's
        probability (detached: the LM loss does not move the triage head).
        """
        probs = torch.sigmoid(self.triage_logits(query_output).float()).detach()
        flags = torch.einsum("bf,fqd->bqd", probs, self.flag_prompts.float())
        return self.language_projection(query_output) + flags.to(query_output.dtype)

    def focus_logits(self, dialogue_ids: torch.Tensor, question_mask: torch.Tensor) -> torch.Tensor:
        """What each question asks about: (B, T) dialogue ids and the mask of the question's tokens -> (B, R) logits
        over the readings (:meth:`readings`). The question is read as the mean of its tokens' LM embeddings, a bag
        of words (the finding's name and the question's kind are words of their own), normalised, through a linear
        layer: an instruction-aware choice of visual tokens (InstructBLIP's idea) at the cost of one small layer."""
        if self.focus_head is None:
            raise ValueError("this model has no reading tokens to focus on")
        emb = self.lm.transformer.wte(dialogue_ids).float()
        weight = question_mask.float()[:, :, None]
        return self.focus_head((emb * weight).sum(1) / weight.sum(1).clamp_min(1.0))

    def answer_prompts(self, query_output: torch.Tensor, readings: torch.Tensor,
                       focus: torch.Tensor | None = None) -> torch.Tensor:
        """The prefix of answers, (B, Q + R + 1, Dt): :meth:`soft_prompts`; a reading token per output of the image
        encoder's head, ``(1 - p) absent + p present`` with ``p`` its probability (``readings`` (B, R),
        :meth:`readings`; detached); last, the focus token, those tokens weighted by ``softmax(focus)`` (B, R)
        (:meth:`focus_logits`; required with reading tokens). A model without reading tokens answers from the
        soft prompts alone."""
        prompts = self.soft_prompts(query_output)
        if self.reading_tokens is None:
            return prompts
        if focus is None:
            raise ValueError("answer prompts with reading tokens need the question's focus")
        p = readings.float().detach()[:, :, None]
        tokens = (1 - p) * self.reading_tokens[:, 0].float() + p * self.reading_tokens[:, 1].float()
        focused = torch.einsum("br,brd->bd", torch.softmax(focus.float(), 1), tokens)[:, None]
        return torch.cat([prompts, tokens.to(prompts.dtype), focused.to(prompts.dtype)], 1)

    def triage_logits(self, query_output: torch.Tensor) -> torch.Tensor:
        """(B, Q, Dq) query outputs -> (B, F) uncalibrated triage logits."""
        return self.triage_head(query_output.mean(1))

    def _lm_loss(self, prefix: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 loss_mask: torch.Tensor | None = None) -> torch.Tensor:
        """LM loss of ``input_ids`` behind a (B, Q, Dt) prefix of embeddings, all attended; the prefix is not
        predicted, nor tokens outside ``loss_mask`` (default: every attended token)."""
        tok = self.lm.transformer.wte(input_ids)
        embeds = torch.cat([prefix.to(tok.dtype), tok], 1)
        prefix_mask = torch.ones(prefix.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device)
        mask = torch.cat([prefix_mask, attention_mask], 1)
        keep = attention_mask if loss_mask is None else attention_mask * loss_mask
        labels = torch.cat([torch.full(prefix.shape[:2], -100, dtype=torch.long, device=input_ids.device),
                            input_ids.masked_fill(keep == 0, -100)], 1)
        positions = torch.arange(embeds.shape[1], device=input_ids.device)[None].expand(embeds.shape[0], -1)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, labels=labels).loss

    def lm_text_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prefix_ids: torch.Tensor,
                     loss_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pre-training of the LM on report text, conditioned on a text prefix in the soft-prompt slots.

        ``prefix_ids`` (B, Q) hold the report's impression, padded to the Q prompt positions: the LM learns
        to write a report from what those positions say, and in stage 2 the projected queries take their
        place. All Q positions are attended (pads too), as the soft prompts will be; the report sits at
        positions Q, Q+1, ... in both stages. Questions are learnt the same way: the prefix states the fact
        (:attr:`~clinical_mm.core.questions.Question.evidence`), the text is the dialogue and ``loss_mask`` its
        answer.
        """
        if prefix_ids.shape[1] != self.config.qformer.num_query_tokens:
            raise ValueError(f"prefix_ids must have {self.config.qformer.num_query_tokens} positions")
        return self._lm_loss(self.lm.transformer.wte(prefix_ids), input_ids, attention_mask, loss_mask)

    def stage2(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        labels: torch.Tensor, triage_weight: float = 1.0, contrastive: ContrastiveBatch | None = None,
    ) -> Stage2Output:
        """LM loss of the report given the soft prompts (``input_ids`` start with [BOS]), plus triage BCE; with
        ``contrastive``, ITC as in stage 1."""
        q_out = self.query_output(image_embeds)
        loss_lm = self.report_loss(q_out, input_ids, attention_mask)
        loss_triage = F.binary_cross_entropy_with_logits(self.triage_logits(q_out).float(), labels.float())
        loss_itc = self.contrastive_loss(q_out, contrastive) if contrastive is not None else loss_lm.new_zeros(())
        loss = loss_lm + triage_weight * loss_triage + loss_itc
        return Stage2Output(loss, loss_lm, loss_triage, loss_itc)

    def report_loss(self, query_output: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
        """LM loss of the report (``input_ids`` start with [BOS]) given the soft prompts of ``query_output``."""
        return self._lm_loss(self.soft_prompts(query_output), input_ids, attention_mask)

    def answer_loss(self, query_output: torch.Tensor, readings: torch.Tensor, questions: QuestionBatch) -> torch.Tensor:
        """LM loss of the answers given their images' answer prompts (:meth:`answer_prompts`): ``query_output``
        (B, Q, Dq) and ``readings`` (B, R) of the batch's images, ``questions.rows`` which image each is about; with
        ``questions.focus``, plus the cross-entropy of the question's focus against the readings it is about."""
        rows, dialogue = questions.rows, questions.dialogue
        focus = (self.focus_logits(dialogue.ids, dialogue.mask * (1 - questions.answer_mask))
                 if self.focus_head is not None else None)
        loss = self._lm_loss(self.answer_prompts(query_output[rows], readings[rows], focus), dialogue.ids,
                             dialogue.mask, questions.answer_mask)
        if focus is None or questions.focus is None:
            return loss
        known = questions.focus.sum(1) > 0  # the count is about no one reading
        if bool(known.any()):
            loss = loss - (questions.focus[known] * F.log_softmax(focus[known].float(), 1)).sum(1).mean()
        return loss

    @torch.no_grad()
    def generate(self, query_output: torch.Tensor, max_new_tokens: int | None = None) -> torch.Tensor:
        """Greedy report decoding from the soft prompts: (B, Q, Dq) -> (B, <=max_new_tokens) token ids."""
        prompts = self.soft_prompts(query_output)
        bos = torch.full((prompts.shape[0], 1), SPECIAL_IDS["bos"], dtype=torch.long, device=prompts.device)
        embeds = torch.cat([prompts, self.lm.transformer.wte(bos)], 1)
        n = max_new_tokens or self.config.text.max_report_tokens - 1
        out = self.lm.generate(
            inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device),
            max_new_tokens=n, do_sample=False, num_beams=1, eos_token_id=SPECIAL_IDS["eos"],
            pad_token_id=SPECIAL_IDS["pad"],
        )
        return out

    @torch.no_grad()
    def answer(self, image_embeds: torch.Tensor, dialogue_ids: torch.Tensor, max_new_tokens: int = 16) -> torch.Tensor:
        """Greedy answers to questions, one per image: ``dialogue_ids`` (B, T) ``[BOS] QUESTION: ... ANSWER:`` for
        the LM (left-aligned, no padding: one length per call). Returns (B, <=max_new_tokens) answer token ids."""
        focus = (self.focus_logits(dialogue_ids, torch.ones_like(dialogue_ids))
                 if self.focus_head is not None else None)
        prompts = self.answer_prompts(self.query_output(image_embeds), self.readings(image_embeds), focus)
        embeds = torch.cat([prompts, self.lm.transformer.wte(dialogue_ids).to(prompts.dtype)], 1)
        out = self.lm.generate(
            inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device),
            max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=SPECIAL_IDS["eos"],
            pad_token_id=SPECIAL_IDS["pad"],
        )
        return out
