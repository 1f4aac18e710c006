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
Q-Former) with the language-modelling loss. The parts are the library's classes (``ViTModel``,
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

__all__ = ["ClinicalMMModel", "Stage1Output", "Stage2Output", "VisionPretrainOutput"]


@dataclass
class VisionPretrainOutput:
    """``loss`` scalar; ``logits`` (B, F) finding logits; ``lateral_logits`` (B, 2 * L) right/left logits."""

    loss: torch.Tensor
    logits: torch.Tensor
    lateral_logits: torch.Tensor


@dataclass
class Stage1Output:
    """BLIP-2 stage-1 losses (scalars): total, image-text contrastive, matching, grounded generation."""

    loss: torch.Tensor
    loss_itc: torch.Tensor
    loss_itm: torch.Tensor
    loss_itg: torch.Tensor


@dataclass
class Stage2Output:
    """BLIP-2 stage-2 losses (scalars): total, language modelling through the frozen LM, triage BCE."""

    loss: torch.Tensor
    loss_lm: torch.Tensor
    loss_triage: torch.Tensor


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
        n_lat = len(h.lateral_flags)
        self.vision_head = nn.Sequential(nn.LayerNorm(v.hidden_size), nn.Linear(v.hidden_size, len(h.flags) + 2 * n_lat))

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
        self, pixel_values: torch.Tensor, labels: torch.Tensor, lateral_labels: torch.Tensor
    ) -> VisionPretrainOutput:
        """Supervised image-encoder pre-training: findings (B, F) as 0/1 and their laterality (B, 2L) as 0/1,
        or -1 where the side is unknown (left out of the loss)."""
        logits, lat = self.vision_logits(self.encode_image(pixel_values))
        known = (lateral_labels >= 0).float()
        lat_loss = (F.binary_cross_entropy_with_logits(lat.float(), lateral_labels.clamp(min=0).float(), reduction="none")
                    * known).sum() / known.sum().clamp(min=1)
        loss = F.binary_cross_entropy_with_logits(logits.float(), labels.float()) + 0.5 * lat_loss
        return VisionPretrainOutput(loss, logits, lat)

    def vision_logits(self, image_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image encoder's own reading: (B, P, Dv) tokens -> finding logits (B, F) and right/left logits
        (B, 2L: right then left for each of ``heads.lateral_flags``).

        A multiple-instance head: every token scores every target; patch scores are pooled with a smooth
        maximum (log-sum-exp), so a finding in one patch counts and patch tokens learn local meaning (which
        :func:`clinical_mm.model.grounding.flag_heatmaps` reads).
        """
        scores = self.vision_head(image_tokens)  # (B, P, F + 2L)
        patch = scores[:, 1:]
        r = 4.0
        pooled = (torch.logsumexp(r * patch, dim=1) - math.log(patch.shape[1])) / r
        out = 0.5 * (scores[:, 0] + pooled)
        n_flags = len(self.config.heads.flags)
        return out[:, :n_flags], out[:, n_flags:]

    # ------------------------------------------------------------------ Q-Former passes
    def query_output(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Queries only: (B, P, Dv) image tokens -> (B, Q, Dq) query outputs."""
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        return self.qformer(query_embeds=queries, encoder_hidden_states=image_embeds).last_hidden_state

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

    def stage1(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
    ) -> Stage1Output:
        """ITC + ITM (hard negatives mined from ITC) + ITG. ``input_ids`` start with [CLS]; ``labels`` (B, F)
        mark studies with the same findings, which are not used as negatives of each other."""
        b = image_embeds.shape[0]
        nq = self.config.qformer.num_query_tokens
        q_out = self.query_output(image_embeds)
        img_feat = F.normalize(self.vision_proj(q_out), dim=-1)  # (B, Q, D)
        txt_feat = F.normalize(self.text_proj(self.text_output(input_ids, attention_mask)[:, 0]), dim=-1)
        scale = self.logit_scale.exp().clamp(max=100.0)
        sim_i2t = torch.einsum("iqd,td->itq", img_feat, txt_feat).amax(-1) * scale  # (B, B)
        sim_t2i = sim_i2t.t()
        same = (labels[:, None, :] == labels[None, :, :]).all(-1).float()  # same findings: positives
        targets = same / same.sum(1, keepdim=True)
        loss_itc = 0.5 * (
            -(targets * F.log_softmax(sim_i2t.float(), 1)).sum(1).mean()
            - (targets * F.log_softmax(sim_t2i.float(), 1)).sum(1).mean()
        )

        # ITM with hard negatives sampled from the ITC similarities.
        with torch.no_grad():
            w_i2t = F.softmax(sim_i2t.float(), 1).masked_fill(same.bool(), 0) + 1e-6 * (1 - same)
            w_t2i = F.softmax(sim_t2i.float(), 1).masked_fill(same.bool(), 0) + 1e-6 * (1 - same)
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

    def triage_logits(self, query_output: torch.Tensor) -> torch.Tensor:
        """(B, Q, Dq) query outputs -> (B, F) uncalibrated triage logits."""
        return self.triage_head(query_output.mean(1))

    def _lm_loss(self, prefix: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """LM loss of ``input_ids`` behind a (B, Q, Dt) prefix of embeddings, all attended; the prefix is not predicted."""
        tok = self.lm.transformer.wte(input_ids)
        embeds = torch.cat([prefix.to(tok.dtype), tok], 1)
        prefix_mask = torch.ones(prefix.shape[:2], dtype=attention_mask.dtype, device=attention_mask.device)
        mask = torch.cat([prefix_mask, attention_mask], 1)
        labels = torch.cat([torch.full(prefix.shape[:2], -100, dtype=torch.long, device=input_ids.device),
                            input_ids.masked_fill(attention_mask == 0, -100)], 1)
        positions = torch.arange(embeds.shape[1], device=input_ids.device)[None].expand(embeds.shape[0], -1)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, labels=labels).loss

    def lm_text_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prefix_ids: torch.Tensor) -> torch.Tensor:
        """Pre-training of the LM on report text, conditioned on a text prefix in the soft-prompt slots.

        ``prefix_ids`` (B, Q) hold the report's impression, padded to the Q prompt positions: the LM learns
        to write a report from what those positions say, and in stage 2 the projected queries take their
        place. All Q positions are attended (pads too), as the soft prompts will be; the report sits at
        positions Q, Q+1, ... in both stages.
        """
        if prefix_ids.shape[1] != self.config.qformer.num_query_tokens:
            raise ValueError(f"prefix_ids must have {self.config.qformer.num_query_tokens} positions")
        return self._lm_loss(self.lm.transformer.wte(prefix_ids), input_ids, attention_mask)

    def stage2(
        self, image_embeds: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        labels: torch.Tensor, triage_weight: float = 1.0,
    ) -> Stage2Output:
        """LM loss of the report given the soft prompts (``input_ids`` start with [BOS]), plus triage BCE."""
        q_out = self.query_output(image_embeds)
        prompts = self.soft_prompts(q_out)
        loss_lm = self._lm_loss(prompts, input_ids, attention_mask)
        loss_triage = F.binary_cross_entropy_with_logits(self.triage_logits(q_out).float(), labels.float())
        return Stage2Output(loss_lm + triage_weight * loss_triage, loss_lm, loss_triage)

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
