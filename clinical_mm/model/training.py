"""Training: tokenizer, LM on report text, image-encoder pre-training, BLIP-2 stages 1 and 2, answers, calibration.

Stages run in order and are resumable: each finished epoch is saved under ``work_dir/state`` and a
restarted run continues from the last one. Every study goes through de-identification and the same
preprocessing as inference before its pixels are used (the PHI boundary holds for training too).
On CPUs with bfloat16 support, matrix work runs under bfloat16 autocast.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import zlib
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from clinical_mm.core.findings import FINDINGS
from clinical_mm.core.metrics import (
    auroc,
    expected_calibration_error,
    f1_score,
    sensitivity_specificity,
    sigmoid,
)
from clinical_mm.core.questions import QUESTION_TYPES, Question, detail_targets, finding_names, questions_for
from clinical_mm.model.base import DraftReader, SentenceReader
from clinical_mm.model.checkpoint import LoadedModel, save_model
from clinical_mm.model.configuration import ClinicalMMConfig
from clinical_mm.model.initialization import init_qformer_from_minilm
from clinical_mm.model.modeling import ClinicalMMModel, ContrastiveBatch, QuestionBatch, TextBatch
from clinical_mm.model.tokenizer import ReportTokenizer, format_question, split_report
from clinical_mm.model.vision_language import CAPTION_TEMPLATES, fill_prompt

__all__ = [
    "StudyTensors", "Trainer", "TrainingPlan", "VisionLanguageBatches", "continue_from", "focus_targets", "native_bf16",
    "report_sentences",
]

_log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"(?<=\.)\s+")
#: tokens of a question-and-answer dialogue for the language model (the longest question of
#: :mod:`clinical_mm.core.questions` and its answer take 49 with the shipped tokenizer)
_DIALOGUE_TOKENS = 64


@dataclass
class TrainingPlan:
    """Epochs, batch sizes and learning rates of each stage."""

    lm_epochs: int = 2
    vision_epochs: int = 16
    stage1_epochs: int = 1
    stage2_epochs: int = 6
    answers_epochs: int = 2
    lm_batch: int = 32
    vision_batch: int = 64
    stage1_batch: int = 32
    stage2_batch: int = 32
    #: studies per step of the answers stage (each with all its questions but some of its absent findings')
    answers_batch: int = 16
    lm_lr: float = 1e-3
    vision_lr: float = 6e-4
    stage1_lr: float = 1e-4
    stage2_lr: float = 3e-4
    answers_lr: float = 5e-4
    target_sensitivity: float = 0.90
    val_generate: int = 200
    #: image-text contrastive learning also on captions of each study's findings (:class:`VisionLanguageBatches`)
    captions: bool = True
    #: bfloat16 autocast; ``None``: where the CPU multiplies bfloat16 natively (AVX512-BF16, AMX). Elsewhere
    #: bfloat16 is emulated and about a hundred times slower than float32.
    bf16: bool | None = None

    @classmethod
    def quick(cls) -> TrainingPlan:
        """One epoch per stage: a smoke run."""
        return cls(lm_epochs=1, vision_epochs=1, stage1_epochs=1, stage2_epochs=1, answers_epochs=1, val_generate=16)

    @classmethod
    def continued(cls) -> TrainingPlan:
        """Continued training of a trained model (``Trainer(init_from=...)``): its language model learns the
        new report sentences and the answers, its image encoder the new targets, stage 1 the new captions (two
        epochs of image-text contrastive learning alone at 3e-4 took the continued model's zero-shot AUROC on the
        flags from 0.77 to 0.985; this plan on 2,000 studies, with all of stage 1 and stage 2 after it, reached
        0.938), stage 2 the rest and the answers stage the questions. The image encoder keeps the first
        training's learning rate and trains 16 epochs: on 2,000 studies, 6 epochs at a third of that rate did not
        teach it thin devices (the endotracheal tube's AUROC 0.50, the central line's 0.47); 6 at 6e-4 reached 0.67
        and 0.69, 16 at 6e-4 1.00 and 1.00 (the flags 0.995)."""
        return cls(lm_epochs=2, vision_epochs=16, stage1_epochs=2, stage2_epochs=4, answers_epochs=2, lm_lr=5e-4,
                   vision_lr=6e-4, stage1_lr=3e-4, stage2_lr=2e-4, answers_lr=5e-4)


@dataclass
class StudyTensors:
    """Preprocessed, de-identified training material for the studies of one manifest."""

    images: torch.Tensor  # (N, 1, S, S) float16
    labels: torch.Tensor  # (N, F) float
    lateral: torch.Tensor  # (N, 2L) float, -1 where unknown
    reports: list[str]  # model text form (FINDINGS: ... IMPRESSION: ...)
    qformer_texts: list[str]  # impression first, so truncation keeps it
    ids: list[str] = field(default_factory=list)
    #: (N, I) the incidental findings (``heads.incidental``) as 0/1, -1 where unknown; None: unknown for all
    incidental: torch.Tensor | None = None
    #: per study, the ground truth of what it shows (the synthetic manifest's ``specs``), None where not known:
    #: the source of its questions (:func:`~clinical_mm.core.questions.questions_for`)
    specs: list[list[dict[str, Any]] | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.reports)

    def truth(self, i: int) -> list[dict[str, Any]] | None:
        """Study ``i``'s ground truth (:attr:`specs`), None where not known."""
        return self.specs[i] if i < len(self.specs) else None


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (oneDNN's own check)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _batches(n: int, size: int, gen: torch.Generator, shuffle: bool = True) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    for i in range(0, n, size):
        yield order[i : i + size]


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small positioning and exposure changes; no flips (laterality matters)."""
    b = x.shape[0]
    r = lambda lo, hi: lo + (hi - lo) * torch.rand(b, generator=gen)  # noqa: E731
    ang, scale = r(-0.07, 0.07), r(0.93, 1.07)
    tx, ty = r(-0.05, 0.05), r(-0.05, 0.05)
    theta = torch.stack([
        torch.stack([scale * torch.cos(ang), -scale * torch.sin(ang), tx], 1),
        torch.stack([scale * torch.sin(ang), scale * torch.cos(ang), ty], 1),
    ], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, align_corners=False, padding_mode="border")
    out = out * r(0.9, 1.1)[:, None, None, None] + r(-0.15, 0.15)[:, None, None, None]
    return out + 0.05 * torch.randn(out.shape, generator=gen)


@torch.no_grad()
def continue_from(model: ClinicalMMModel, trained: ClinicalMMModel) -> int:
    """Copy a trained model's weights into ``model`` of the same architecture; heads that have grown (the image
    encoder's head with new incidental targets) keep the trained rows and start the new ones afresh. Returns the
    number of tensors copied."""
    own = model.state_dict()
    n = 0
    for key, value in trained.state_dict().items():
        if key not in own:
            raise ValueError(f"{key}: not in the model to continue")
        target = own[key]
        if target.shape == value.shape:
            target.copy_(value)
        elif target.dim() == value.dim() and target.shape[1:] == value.shape[1:] and target.shape[0] > value.shape[0]:
            target[: value.shape[0]].copy_(value)
        else:
            raise ValueError(f"{key}: shape {tuple(value.shape)} cannot continue as {tuple(target.shape)}")
        n += 1
    return n


def report_sentences(text: str) -> list[str]:
    """A report's sentences, from its findings and its impression (the model's text form, see ``format_report``)."""
    findings, impression = split_report(text)
    return [t.strip() for part in (findings, impression) for t in _SENTENCE_END.split(part) if t.strip()]


class VisionLanguageBatches:
    """The contrastive and question batches of the training stages, drawn from a study set's texts.

    ``contrastive``: a sentence is a positive of every image whose report states the same, in any words (the
    ``sentence_reader``'s meaning; without one, the same text): paraphrases are not taught apart as negatives
    (MedCLIP's false negatives). With ``captions``, each study also gets a caption of one finding (the flags and
    ``incidental``, present or absent) in a training template (CXR-CLIP's label prompts), a positive of every
    image in the same state.

    ``questions`` are drawn type first (presence, side, size, location, count: each as likely as the others
    among those a study has), presence questions half with a yes answer where the study has any finding; the
    phrasing of the finding varies. ``answer_sets`` ask every question about each study but, of its absent
    findings' presence questions, twice as many as it has present findings (at least two). With ``subjects``
    (``HeadsConfig.reading_subjects``), question batches say which readings each question is about.
    """

    def __init__(self, data: StudyTensors, tokenizer: ReportTokenizer, q_len: int, dialogue_len: int,
                 sentence_reader: SentenceReader | None = None, captions: bool = False,
                 incidental: tuple[str, ...] = (), subjects: Sequence[tuple[str, str]] = ()) -> None:
        self.data, self.tokenizer, self.q_len, self.dialogue_len = data, tokenizer, q_len, dialogue_len
        self.subjects = tuple(subjects)
        self.report_ids, self.report_mask = tokenizer.batch(data.qformer_texts, "cls", q_len, end=False)
        self.sentences = [report_sentences(r) for r in data.reports]
        meanings: dict[str, Hashable] = {}
        for sentence in {x for sentences in self.sentences for x in sentences}:
            meaning = sentence_reader.sentence_meaning(sentence) if sentence_reader is not None else None
            meanings[sentence] = meaning if meaning is not None else " ".join(sentence.lower().split())
        self.meaning = meanings
        self.meaning_sets = [frozenset(meanings[x] for x in sentences) for sentences in self.sentences]
        groups: dict[str, int] = {}
        self.text_group = torch.tensor([groups.setdefault(t, len(groups)) for t in data.qformer_texts])
        #: captions: each finding's state per study (the flags, then ``incidental``: 0/1, -1 where unknown)
        self.caption_names = (*FINDINGS, *incidental) if captions else ()
        inc = data.incidental
        if inc is None or inc.shape[1] != len(incidental):
            inc = torch.full((len(data), len(incidental)), -1.0)
        self.caption_state = torch.cat([data.labels, inc], 1)

    def contrastive(self, idx: torch.Tensor, g: torch.Generator) -> ContrastiveBatch:
        rows = idx.tolist()
        picked = [self.sentences[i][int(torch.randint(len(self.sentences[i]), (1,), generator=g))]
                  if self.sentences[i] else "" for i in rows]
        s_ids, s_mask = self.tokenizer.batch(picked, "cls", 32, end=False)
        grp = self.text_group[idx]
        sentence_pos = torch.tensor([[bool(p) and self.meaning[p] in self.meaning_sets[i] for p in picked]
                                     for i in rows])
        ids, mask = self.report_ids[idx], self.report_mask[idx]
        width = int(mask.sum(1).max())
        batch = ContrastiveBatch(TextBatch(ids[:, :width], mask[:, :width]), TextBatch(s_ids, s_mask),
                                 grp[:, None] == grp[None, :], sentence_pos)
        if self.caption_names:
            said = [self._caption(i, g) for i in rows]
            c_ids, c_mask = self.tokenizer.batch([text for text, _, _ in said], "cls", 32, end=False)
            batch.captions = TextBatch(c_ids, c_mask)
            batch.caption_pos = torch.tensor([[bool(self.caption_state[i, k] == on) for _, k, on in said]
                                              for i in rows])
        return batch

    def _caption(self, i: int, g: torch.Generator) -> tuple[str, int, float]:
        """A caption of study ``i``: one of its known findings (a present one half the time, where it has any)
        said in a training template (:data:`~clinical_mm.model.vision_language.CAPTION_TEMPLATES`) and one of its
        names; with the finding's index and state."""
        known = (self.caption_state[i] >= 0).nonzero().flatten().tolist()
        present = [k for k in known if self.caption_state[i, k] == 1]
        pool = present if present and float(torch.rand(1, generator=g)) < 0.5 else known
        k = pool[int(torch.randint(len(pool), (1,), generator=g))]
        on = float(self.caption_state[i, k])
        templates = CAPTION_TEMPLATES[0] if on == 1 else CAPTION_TEMPLATES[1]
        names = finding_names(self.caption_names[k])
        template = templates[int(torch.randint(len(templates), (1,), generator=g))]
        return fill_prompt(template, names[int(torch.randint(len(names), (1,), generator=g))]), k, on

    def draw(self, i: int, g: torch.Generator) -> Question | None:
        """One question about study ``i`` (None when its ground truth is not known)."""
        specs = self.data.truth(i)
        if specs is None:
            return None
        variant = int(torch.randint(2, (1,), generator=g))
        qs = questions_for(specs, variant)
        kinds = [k for k in QUESTION_TYPES if any(q.kind == k for q in qs)]
        kind = kinds[int(torch.randint(len(kinds), (1,), generator=g))]
        pool = [q for q in qs if q.kind == kind]
        if kind == "presence":
            yes = [q for q in pool if q.answer == "yes"]
            if yes and float(torch.rand(1, generator=g)) < 0.5:
                pool = yes
            elif yes:
                pool = [q for q in pool if q.answer == "no"]
        return pool[int(torch.randint(len(pool), (1,), generator=g))]

    def questions(self, idx: torch.Tensor, g: torch.Generator) -> tuple[QuestionBatch, list[Question]] | None:
        """One question per study of the batch that has a ground truth; None when none has."""
        return self._batch([(r, q) for r, i in enumerate(idx.tolist()) if (q := self.draw(i, g)) is not None])

    def answer_set(self, i: int, g: torch.Generator) -> list[Question]:
        """The questions about study ``i`` the answers stage asks (none when its ground truth is not known)."""
        specs = self.data.truth(i)
        if specs is None:
            return []
        qs = questions_for(specs, int(torch.randint(2, (1,), generator=g)))
        absent = [q for q in qs if q.kind == "presence" and q.answer == "no"]
        keep = max(2, 2 * sum(q.kind == "presence" and q.answer == "yes" for q in qs))
        chosen = set(torch.randperm(len(absent), generator=g)[:keep].tolist())
        dropped = {id(q) for k, q in enumerate(absent) if k not in chosen}
        return [q for q in qs if id(q) not in dropped]

    def answer_sets(self, idx: torch.Tensor, g: torch.Generator) -> tuple[QuestionBatch, list[Question]] | None:
        """:meth:`answer_set` of each study of the batch; None when none has a ground truth."""
        return self._batch([(r, q) for r, i in enumerate(idx.tolist()) for q in self.answer_set(i, g)])

    def _batch(self, drawn: list[tuple[int, Question]]) -> tuple[QuestionBatch, list[Question]] | None:
        if not drawn:
            return None
        qs = [q for _, q in drawn]
        ids, mask, answer = self.tokenizer.dialogue([q.text for q in qs], [q.answer for q in qs], self.dialogue_len)
        batch = QuestionBatch(TextBatch(ids, mask), answer, torch.tensor([r for r, _ in drawn]))
        if self.subjects:
            batch.focus = focus_targets([(q.finding, q.kind) for q in qs], self.subjects)
        return batch, qs


def focus_targets(asked: Sequence[tuple[str, str]], subjects: Sequence[tuple[str, str]]) -> torch.Tensor:
    """What each question, (finding, question type), is about among the readings ``subjects``
    (``HeadsConfig.reading_subjects``): (B', R) equal weights summing to one over its readings, a row of zeros for a
    question about none (:attr:`QuestionBatch.focus`)."""
    about = torch.tensor([[float(a == s) for s in subjects] for a in asked])
    return about / about.sum(1, keepdim=True).clamp_min(1.0)


class Trainer:
    """Runs the training stages and writes the model folder.

    Parameters
    ----------
    config
        Model configuration (the text vocabulary size is set from the trained tokenizer).
    plan
        Stage schedule.
    work_dir
        Caches and resumable state.
    draft_reader
        Reads which findings a generated draft states as present (validation draft F1).
    sentence_reader
        Reads what each report sentence states, so that paraphrases are one positive in contrastive learning
        (the report labeler); None: a sentence means its text.
    seed
        Seed of model initialisation, batching and augmentation.
    """

    def __init__(self, config: ClinicalMMConfig, plan: TrainingPlan, work_dir: Path, draft_reader: DraftReader,
                 seed: int = 0, progress: bool = True, log: Callable[[str], None] | None = None,
                 init_from: LoadedModel | None = None, sentence_reader: SentenceReader | None = None) -> None:
        if plan.bf16 is None:
            plan = replace(plan, bf16=native_bf16())
        self.config, self.plan, self.work_dir, self.seed = config, plan, work_dir, seed
        self.init_from = init_from
        self.draft_reader = draft_reader
        self.sentence_reader = sentence_reader
        self.progress = progress
        self.log = log or (lambda msg: _log.info("%s", msg))
        self.state_dir = work_dir / "state"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.history: dict[str, list[float]] = {}
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ helpers
    def _autocast(self) -> Any:
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(self.plan.bf16))

    def _run_stage(self, name: str, model: ClinicalMMModel, modules: tuple[str, ...], epochs: int,
                   n: int, batch: int, lr: float, step: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> None:
        """Train the parameters under ``modules`` (state-dict name prefixes); everything else stays as it is.

        A finished stage restores only its own modules, so stages compose; each stage seeds its own
        random streams, so its result does not depend on what earlier stages drew.
        """
        params = [p for k, p in model.named_parameters() if k.startswith(modules)]
        done = self.state_dir / f"{name}.done.pt"
        if done.is_file():
            state = torch.load(done, weights_only=True)
            model.load_state_dict({k: v for k, v in state.items() if k.startswith(modules)}, strict=False)
            self.log(f"{name}: already done, loaded")
            return
        stage_seed = self.seed * 1000 + zlib.crc32(name.encode()) % 997
        torch.manual_seed(stage_seed)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05, betas=(0.9, 0.98))
        steps_per_epoch = math.ceil(n / batch)
        total = max(1, epochs * steps_per_epoch)
        warm = max(1, total // 20)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
        gen = torch.Generator().manual_seed(stage_seed)
        start_epoch = 0
        partial = self.state_dir / f"{name}.partial.pt"
        if partial.is_file():
            st = torch.load(partial, weights_only=False)
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            sched.load_state_dict(st["sched"])
            gen.set_state(st["gen"])
            torch.set_rng_state(st["torch_rng"])
            start_epoch = st["epoch"]
            self.history[name] = st["history"]
            self.log(f"{name}: resuming at epoch {start_epoch + 1}")
        t0 = time.perf_counter()
        losses = self.history.setdefault(name, [])
        for epoch in range(start_epoch, epochs):
            model.train()
            running = []
            bar = tqdm(list(_batches(n, batch, gen)), desc=f"{name} {epoch + 1}/{epochs}", unit="step",
                       disable=not self.progress, leave=False)
            for idx in bar:
                with self._autocast():
                    loss = step(idx, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                sched.step()
                running.append(float(loss.detach()))
                bar.set_postfix(loss=f"{np.mean(running[-20:]):.3f}")
            losses.append(float(np.mean(running)))
            self.log(f"{name}: epoch {epoch + 1}/{epochs} loss {losses[-1]:.4f}")
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "gen": gen.get_state(), "torch_rng": torch.get_rng_state(), "epoch": epoch + 1,
                        "history": losses}, partial)
        torch.save(model.state_dict(), done)
        partial.unlink(missing_ok=True)
        self.timings[name] = time.perf_counter() - t0

    @torch.no_grad()
    def _batched(self, model: ClinicalMMModel, fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                 dtype: torch.dtype) -> torch.Tensor:
        """``fn`` over ``inputs`` in batches of 128, in eval mode and under the stage's autocast."""
        model.eval()
        out = []
        for i in range(0, len(inputs), 128):
            with self._autocast():
                out.append(fn(inputs[i : i + 128].float()).to(dtype))
        return torch.cat(out)

    def _image_embeds(self, model: ClinicalMMModel, images: torch.Tensor) -> torch.Tensor:
        return self._batched(model, model.encode_image, images, torch.float16)

    def _query_outputs(self, model: ClinicalMMModel, embeds: torch.Tensor) -> torch.Tensor:
        return self._batched(model, model.query_output, embeds, torch.float32)

    # ------------------------------------------------------------------ the run
    def _tokenizer(self, train: StudyTensors) -> ReportTokenizer:
        """The BPE vocabulary of the reports and of the questions, answers and evidence of their studies."""
        tok_path = self.state_dir / "tokenizer.json"
        if tok_path.is_file():
            return ReportTokenizer.load(tok_path)
        if self.init_from is not None:  # its embeddings are learnt for its vocabulary (byte-level: any text fits)
            self.init_from.tokenizer.save(tok_path)
            return self.init_from.tokenizer
        qa: set[str] = set()
        for specs in train.specs:
            for variant in (0, 1):
                for q in questions_for(specs, variant) if specs is not None else ():
                    qa.update((f"{format_question(q.text)} {q.answer}", q.evidence))
        tokenizer = ReportTokenizer.train([*train.reports, *sorted(qa)], self.config.text.vocab_size)
        tokenizer.save(tok_path)
        return tokenizer

    def _initial_model(self, tokenizer: ReportTokenizer) -> ClinicalMMModel:
        model = ClinicalMMModel(self.config)
        init_state = self.state_dir / "init.pt"
        if init_state.is_file():
            model.load_state_dict(torch.load(init_state, weights_only=True))
        elif self.init_from is not None:
            n = continue_from(model, self.init_from.model)
            self.log(f"init: {n} tensors from {self.init_from.path} (sha256 {self.init_from.sha256[:16]}...)")
            torch.save(model.state_dict(), init_state)
        else:
            n = init_qformer_from_minilm(model, tokenizer)
            self.log(f"init: {n} Q-Former tensors from MiniLM")
            torch.save(model.state_dict(), init_state)
        return model

    def _lm_stage(self, model: ClinicalMMModel, tokenizer: ReportTokenizer, train: StudyTensors,
                  batches: VisionLanguageBatches, lm_ids: torch.Tensor, lm_mask: torch.Tensor) -> None:
        """1. The language model on report text, conditioned on the impression in the soft-prompt slots (its
        sentences in a random order, so the LM reads the prefix as a set of findings), and on answers to
        questions, conditioned on the statement of the fact that answers each."""
        nq = self.config.qformer.num_query_tokens
        impressions = [_SENTENCE_END.split(split_report(r)[1]) for r in train.reports]

        def lm_step(idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            texts = []
            for i in idx.tolist():
                parts = [p for p in impressions[i] if p]
                order = torch.randperm(len(parts), generator=g).tolist() if len(parts) > 1 else range(len(parts))
                texts.append(" ".join(parts[k] for k in order))
            loss = model.lm_text_loss(lm_ids[idx], lm_mask[idx], tokenizer.fixed(texts, nq))
            asked = batches.questions(idx, g)
            if asked is not None:
                qb, qs = asked
                loss = loss + model.lm_text_loss(qb.dialogue.ids, qb.dialogue.mask,
                                                 tokenizer.fixed([q.evidence for q in qs], nq), qb.answer_mask)
            return loss

        self._run_stage("lm_text", model, ("lm.",), self.plan.lm_epochs, len(train), self.plan.lm_batch,
                        self.plan.lm_lr, lm_step)

    def _answers_stage(self, model: ClinicalMMModel, train: StudyTensors, train_emb: torch.Tensor,
                       batches: VisionLanguageBatches, lm_ids: torch.Tensor, lm_mask: torch.Tensor) -> None:
        """5. Answers (LLaVA's instruction tuning): the LM, the projection, the flag prompts, the reading tokens and the
        focus head learn every question about each image (:meth:`VisionLanguageBatches.answer_set`) from its plain query
        outputs and the image encoder's readings, both frozen; the focus head also learns which readings each question
        is about; the report's LM loss alongside keeps the drafts."""
        modules = ("lm.", "language_projection.", "flag_prompts", "reading_tokens", "focus_head.")
        for p in model.lm.parameters():
            p.requires_grad_(True)
        queries = self._batched(model, model.query_output, train_emb, torch.float16)
        readings = self._batched(model, model.readings, train_emb, torch.float32)

        def answers_step(idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            q = queries[idx].float()
            width = int(lm_mask[idx].sum(1).max())
            loss = model.report_loss(q, lm_ids[idx, :width], lm_mask[idx, :width])
            asked = batches.answer_sets(idx, g)
            return loss if asked is None else loss + model.answer_loss(q, readings[idx], asked[0])

        self._run_stage("answers", model, modules, self.plan.answers_epochs, len(train), self.plan.answers_batch,
                        self.plan.answers_lr, answers_step)

    def fit(self, train: StudyTensors, val: StudyTensors, out_dir: Path, extra_manifest: dict[str, Any]) -> dict[str, Any]:
        plan, cfg = self.plan, self.config
        torch.manual_seed(self.seed)
        tokenizer = self._tokenizer(train)
        cfg.text.vocab_size = tokenizer.vocab_size
        model = self._initial_model(tokenizer)
        batches = VisionLanguageBatches(train, tokenizer, cfg.qformer.max_text_length, _DIALOGUE_TOKENS,
                                        self.sentence_reader, plan.captions, tuple(cfg.heads.incidental),
                                        cfg.heads.reading_subjects() if cfg.heads.reading_tokens else ())
        lm_ids, lm_mask = tokenizer.batch(train.reports, "bos", cfg.text.max_report_tokens, end=True)
        self._lm_stage(model, tokenizer, train, batches, lm_ids, lm_mask)

        # 2. image encoder pre-training (flags, their sides, and the incidental findings and details where known)
        vision_modules = ("vision.", "vision_head.")
        incidental = train.incidental
        detail = torch.tensor([detail_targets(train.truth(i), cfg.heads.detail)
                               for i in range(len(train))]).reshape(len(train), len(cfg.heads.detail))

        def vision_step(idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
            x = _augment(train.images[idx].float(), g)
            inc = incidental[idx] if incidental is not None else None
            return model.vision_pretrain(x, train.labels[idx], train.lateral[idx], inc, detail[idx]).loss

        self._run_stage("vision", model, vision_modules, plan.vision_epochs, len(train), plan.vision_batch,
                        plan.vision_lr, vision_step)
        for p in (p for k, p in model.named_parameters() if k.startswith(vision_modules)):
            p.requires_grad_(False)
        train_emb = self._image_embeds(model, train.images)
        val_emb = self._image_embeds(model, val.images)

        # 3. BLIP-2 stage 1: Q-Former against the frozen image encoder (ITC on own reports and sentences, ITM, ITG)
        stage1_modules = ("query_tokens", "text_embeddings.", "qformer.", "itg_head.", "vision_proj.", "text_proj.",
                          "itm_head.", "logit_scale")
        self._run_stage("stage1", model, stage1_modules, plan.stage1_epochs, len(train), plan.stage1_batch,
                        plan.stage1_lr, lambda idx, g: model.stage1(train_emb[idx].float(),
                                                                     batches.contrastive(idx, g)).loss)

        # 4. BLIP-2 stage 2: LM frozen; projection and Q-Former learn from the report's LM loss, ITC kept alongside
        for p in model.lm.parameters():
            p.requires_grad_(False)
        stage2_modules = ("query_tokens", "qformer.", "language_projection.", "flag_prompts", "triage_head.",
                          "text_embeddings.", "vision_proj.", "text_proj.", "logit_scale")
        self._run_stage("stage2", model, stage2_modules, plan.stage2_epochs, len(train), plan.stage2_batch,
                        plan.stage2_lr, lambda idx, g: model.stage2(train_emb[idx].float(), lm_ids[idx], lm_mask[idx],
                                                                    train.labels[idx],
                                                                    contrastive=batches.contrastive(idx, g)).loss)
        self._answers_stage(model, train, train_emb, batches, lm_ids, lm_mask)

        # 6. calibration and validation
        model.eval()
        calibration, metrics = self.calibrate_and_validate(model, tokenizer, val, val_emb)
        manifest = save_model(model, tokenizer, out_dir, calibration=calibration, extra={
            **extra_manifest,
            "training": {"plan": asdict(plan), "seed": self.seed, "train_studies": len(train),
                         "val_studies": len(val), "loss_history": self.history,
                         "stage_seconds": {k: round(v, 1) for k, v in self.timings.items()}},
            "validation": metrics,
        })
        (self.state_dir / "last_metrics.json").write_text(json.dumps(metrics, indent=2))
        return manifest

    @torch.no_grad()
    def calibrate_and_validate(self, model: ClinicalMMModel, tokenizer: ReportTokenizer, val: StudyTensors,
                               val_emb: torch.Tensor) -> tuple[dict[str, Any], dict[str, Any]]:
        q = self._query_outputs(model, val_emb)
        logits = model.triage_logits(q).float().numpy()
        y = val.labels.numpy()
        temps, thresholds, per_flag = {}, {}, {}
        grid = np.exp(np.linspace(-2.5, 2.5, 401))
        for j, name in enumerate(FINDINGS):
            z, t = logits[:, j], y[:, j]

            def nll(temp: float, z: np.ndarray = z, t: np.ndarray = t) -> float:
                p = sigmoid(z / temp)
                p = np.clip(p, 1e-7, 1 - 1e-7)
                return float(-(t * np.log(p) + (1 - t) * np.log(1 - p)).mean())

            temp = float(grid[int(np.argmin([nll(g) for g in grid]))])
            p_raw, p_cal = sigmoid(z), sigmoid(z / temp)
            # operating point: the highest threshold that keeps validation sensitivity >= target
            pos = np.sort(p_cal[t == 1])
            k = int(math.floor((1 - self.plan.target_sensitivity) * len(pos))) if len(pos) else 0
            thr = float(pos[k]) if len(pos) else 0.5
            sens, spec = sensitivity_specificity(t, p_cal >= thr)
            temps[name], thresholds[name] = round(temp, 4), round(thr, 4)
            per_flag[name] = {"auroc": round(auroc(t, z), 4), "ece_raw": round(expected_calibration_error(t, p_raw), 4),
                              "ece_calibrated": round(expected_calibration_error(t, p_cal), 4),
                              "sensitivity": round(sens, 4), "specificity": round(spec, 4),
                              "prevalence": round(float(t.mean()), 4)}
        # drafts: stated-as-present F1 against the labels
        n_gen = min(self.plan.val_generate, len(val))
        stated = np.zeros((n_gen, len(FINDINGS)))
        for i in range(0, n_gen, 32):
            with self._autocast():
                out = model.generate(q[i : min(n_gen, i + 32)])
            for r, ids in enumerate(out.tolist()):
                findings, impression = split_report(tokenizer.decode(ids))
                s = self.draft_reader.stated_present(f"{findings} {impression}")
                stated[i + r] = [s[f] for f in FINDINGS]
        draft_f1 = {name: round(f1_score(y[:n_gen, j], stated[:, j]), 4) for j, name in enumerate(FINDINGS)}
        metrics = {
            "split": "validation (data seed of the validation manifest)",
            "triage": per_flag,
            "mean_auroc": round(float(np.mean([v["auroc"] for v in per_flag.values()])), 4),
            "draft_stated_present_f1": draft_f1,
            "draft_studies": n_gen,
        }
        calibration = {"method": "per-flag temperature scaling (validation NLL)", "temperature": temps,
                       "threshold": thresholds,
                       "threshold_rule": f"highest threshold with validation sensitivity >= {self.plan.target_sensitivity}"}
        return calibration, metrics
