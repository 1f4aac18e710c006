"""The architecture with tiny random configs on CPU: shapes, each training stage's loss falls, checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from clinical_mm.core.errors import CheckpointError, ModelError
from clinical_mm.core.findings import FINDINGS
from clinical_mm.core.questions import finding_names
from clinical_mm.extraction.chexpert import RadiologyReportLabeler
from clinical_mm.model.checkpoint import load_model, save_model
from clinical_mm.model.configuration import ClinicalMMConfig, QFormerSettings
from clinical_mm.model.initialization import init_qformer_from_minilm
from clinical_mm.model.modeling import ClinicalMMModel, ContrastiveBatch, TextBatch
from clinical_mm.model.tokenizer import SPECIAL_IDS, ReportTokenizer, format_report, split_report
from clinical_mm.model.training import StudyTensors, VisionLanguageBatches, report_sentences

B = 4
TEXTS = [
    format_report("Small left pleural effusion. No pneumothorax.", "Small left pleural effusion."),
    format_report("The heart is enlarged. No pleural effusion.", "Cardiomegaly."),
    format_report("Lungs are clear. No pneumothorax.", "No acute cardiopulmonary abnormality."),
    format_report("Moderate right pneumothorax.", "Moderate right pneumothorax."),
]


@pytest.fixture(scope="module")
def tokenizer() -> ReportTokenizer:
    return ReportTokenizer.train(TEXTS * 5, vocab_size=300)


@pytest.fixture()
def model(tokenizer: ReportTokenizer) -> ClinicalMMModel:
    torch.manual_seed(0)
    return ClinicalMMModel(ClinicalMMConfig.tiny(vocab_size=tokenizer.vocab_size))


def _batch(model: ClinicalMMModel) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    size = model.config.vision.image_size
    pixels = torch.randn(B, 1, size, size, generator=g)
    labels = torch.tensor([[0, 1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0], [0] * 7, [0, 0, 1, 0, 0, 0, 0]]).float()
    return pixels, labels


def _contrastive(model: ClinicalMMModel, tokenizer: ReportTokenizer) -> ContrastiveBatch:
    """Each study's report and its first sentence; reports 0 and 2 share the sentence 'No pneumothorax.'."""
    ids, mask = tokenizer.batch(TEXTS, "cls", model.config.qformer.max_text_length, end=False)
    sentences = [report_sentences(t)[-2 if i in (0, 2) else 0] for i, t in enumerate(TEXTS)]
    s_ids, s_mask = tokenizer.batch(sentences, "cls", 16, end=False)
    sets = [set(report_sentences(t)) for t in TEXTS]
    sentence_pos = torch.tensor([[s in sets[i] for s in sentences] for i in range(B)])
    return ContrastiveBatch(TextBatch(ids, mask), TextBatch(s_ids, s_mask), torch.eye(B, dtype=torch.bool), sentence_pos)


def _falls(model: ClinicalMMModel, loss_fn: Callable[[], torch.Tensor], params: list[torch.nn.Parameter],
           steps: int = 12, lr: float = 3e-3) -> tuple[float, float]:
    opt = torch.optim.Adam(params, lr=lr)
    first = last = 0.0
    for i in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i == 0:
            first = float(loss.detach())
        last = float(loss.detach())
    return first, last


def test_when_encoding_then_shapes_are_documented_ones(model: ClinicalMMModel) -> None:
    pixels, _ = _batch(model)
    cfg = model.config
    emb = model.encode_image(pixels)
    assert emb.shape == (B, cfg.vision.num_patches + 1, cfg.vision.hidden_size)
    q = model.query_output(emb)
    assert q.shape == (B, cfg.qformer.num_query_tokens, cfg.qformer.hidden_size)
    assert model.soft_prompts(q).shape == (B, cfg.qformer.num_query_tokens, cfg.text.hidden_size)
    assert model.triage_logits(q).shape == (B, len(cfg.heads.flags))
    model.eval()
    out = model.generate(q, max_new_tokens=5)
    assert out.shape[0] == B and out.shape[1] <= 5


def test_when_patches_exceed_the_stem_levels_then_pixels_fold_into_channels_losslessly() -> None:
    """A 32-pixel patch: the conv stem folds 2x2 pixel blocks into channels, then runs its 4 levels."""
    from clinical_mm.model.configuration import VisionSettings
    from clinical_mm.model.modeling import ConvStem

    stem = ConvStem(1, 24, 32)
    assert isinstance(stem.layers[0], torch.nn.PixelUnshuffle) and stem.layers[1].in_channels == 4
    assert stem(torch.randn(2, 1, 64, 64)).shape == (2, 24, 2, 2)
    assert not isinstance(ConvStem(1, 24, 16).layers[0], torch.nn.PixelUnshuffle)
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(torch.nn.PixelShuffle(2)(stem.layers[0](x)), x)  # nothing lost in the fold
    cfg = ClinicalMMConfig.tiny()
    cfg.vision = VisionSettings(image_size=64, patch_size=32, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64)
    model = ClinicalMMModel(cfg)
    assert model.encode_image(torch.randn(2, 1, 64, 64)).shape == (2, 5, 32)


def test_when_pixels_have_wrong_shape_then_value_error(model: ClinicalMMModel) -> None:
    with pytest.raises(ValueError, match="pixel_values must have shape"):
        model.encode_image(torch.zeros(1, 3, 32, 32))


def test_when_config_is_inconsistent_then_value_error() -> None:
    with pytest.raises(ValueError, match="divisible"):
        ClinicalMMConfig(qformer=QFormerSettings(hidden_size=30, num_attention_heads=4))


def test_when_pretraining_image_encoder_then_loss_falls(model: ClinicalMMModel) -> None:
    pixels, labels = _batch(model)
    lat = torch.zeros(B, 2 * len(model.config.heads.lateral_flags))
    first, last = _falls(model, lambda: model.vision_pretrain(pixels, labels, lat).loss,
                         list(model.vision.parameters()) + list(model.vision_head.parameters()))
    assert last < first * 0.7


@pytest.mark.slow
def test_when_training_stage1_then_each_loss_term_and_total_fall(model: ClinicalMMModel, tokenizer: ReportTokenizer) -> None:
    pixels, labels = _batch(model)
    emb = model.encode_image(pixels).detach()
    batch = _contrastive(model, tokenizer)
    params = [p for n, p in model.named_parameters() if not n.startswith(("vision", "lm."))]
    torch.manual_seed(0)
    before = model.stage1(emb, batch)
    first, last = _falls(model, lambda: model.stage1(emb, batch).loss, params, steps=15)
    torch.manual_seed(0)
    after = model.stage1(emb, batch)
    assert last < first * 0.7
    assert float(after.loss_itg) < float(before.loss_itg)
    assert float(after.loss_itc) < float(before.loss_itc)


def test_when_itg_mask_is_built_then_queries_never_see_text() -> None:
    mask = ClinicalMMModel._joint_mask(torch.tensor([[1, 1, 0]]), 2, causal=True)[0, 0]
    assert not mask[:2, 2:].any()  # queries: no text
    assert mask[2:, :2].all()  # text sees all queries
    assert mask[3, 2] and not mask[2, 3]  # causal text
    assert not mask[:, 4].any()  # padding is never attended


@pytest.mark.slow
def test_when_training_lm_then_stage2_then_losses_fall(model: ClinicalMMModel, tokenizer: ReportTokenizer) -> None:
    ids, mask = tokenizer.batch(TEXTS, "bos", model.config.text.max_report_tokens, end=True)
    pre = tokenizer.fixed([split_report(t)[1] for t in TEXTS], model.config.qformer.num_query_tokens)
    assert pre.shape == (B, model.config.qformer.num_query_tokens)
    first, last = _falls(model, lambda: model.lm_text_loss(ids, mask, pre), list(model.lm.parameters()),
                         steps=25)
    assert last < first * 0.7
    for p in model.lm.parameters():
        p.requires_grad_(False)
    pixels, labels = _batch(model)
    emb = model.encode_image(pixels).detach()
    params = [model.query_tokens, *model.qformer.parameters(), *model.language_projection.parameters(),
              *model.triage_head.parameters()]
    lm_before = [p.clone() for p in model.lm.parameters()]
    first, last = _falls(model, lambda: model.stage2(emb, ids, mask, labels).loss, params)
    assert last < first
    assert all(torch.equal(a, b) for a, b in zip(lm_before, model.lm.parameters(), strict=True)), "LM must stay frozen"


def test_when_saved_and_loaded_then_outputs_match_in_float16(model: ClinicalMMModel, tokenizer: ReportTokenizer,
                                                              tmp_path: Path) -> None:
    model.eval()
    calibration = {"temperature": dict.fromkeys(model.config.heads.flags, 1.0),
                   "threshold": dict.fromkeys(model.config.heads.flags, 0.5)}
    manifest = save_model(model, tokenizer, tmp_path, calibration=calibration, extra={"training_command": "test"})
    loaded = load_model(tmp_path)
    assert loaded.sha256 == manifest["weights"]["sha256"]
    pixels, _ = _batch(model)
    with torch.no_grad():
        a = model.triage_logits(model.query_output(model.encode_image(pixels)))
        b = loaded.model.triage_logits(loaded.model.query_output(loaded.model.encode_image(pixels)))
    assert torch.allclose(a, b, atol=2e-2)
    (tmp_path / "model.safetensors").write_bytes(b"corrupt")
    with pytest.raises(CheckpointError, match="sha256"):
        load_model(tmp_path)


def test_when_initialising_from_minilm_then_bert_weights_are_copied(tokenizer: ReportTokenizer) -> None:
    from safetensors.torch import load_file

    from clinical_mm.model.initialization import minilm_path

    cfg = ClinicalMMConfig.tiny(vocab_size=tokenizer.vocab_size)
    cfg.qformer = QFormerSettings(num_query_tokens=4, num_hidden_layers=2, max_position_embeddings=32, max_text_length=16)
    model = ClinicalMMModel(cfg)
    assert init_qformer_from_minilm(model, tokenizer) > 20
    bert = load_file(str(minilm_path() / "model.safetensors"))
    layer = model.qformer.encoder.layer[1]
    assert torch.equal(layer.attention.attention.query.weight, bert["encoder.layer.1.attention.self.query.weight"])
    assert torch.equal(layer.intermediate_query.dense.weight, bert["encoder.layer.1.intermediate.dense.weight"])
    cls_row = model.text_embeddings.word_embeddings.weight[SPECIAL_IDS["cls"]]
    assert torch.equal(cls_row, bert["embeddings.word_embeddings.weight"][101])  # BERT's [CLS]
    with pytest.raises(ModelError, match="384"):
        init_qformer_from_minilm(ClinicalMMModel(ClinicalMMConfig.tiny(vocab_size=tokenizer.vocab_size)), tokenizer)


def test_when_report_is_formatted_then_it_splits_back() -> None:
    assert split_report(format_report("a b.", "c.")) == ("a b.", "c.")
    assert split_report("FINDINGS: only findings") == ("only findings", "")


def _study_tensors(model: ClinicalMMModel, reports: list[str], incidental: list[float]) -> StudyTensors:
    pixels, labels = _batch(model)
    return StudyTensors(images=pixels.half(), labels=labels, lateral=-torch.ones(B, 2 * 5), reports=reports,
                        qformer_texts=reports, incidental=torch.tensor(incidental)[:, None])


def test_when_sentences_say_the_same_in_other_words_then_contrastive_learning_takes_them_as_one(
        model: ClinicalMMModel, tokenizer: ReportTokenizer) -> None:
    reports = [*TEXTS[:2], format_report("Lungs are clear. There is no pneumothorax.", "Normal chest radiograph."),
               TEXTS[3]]
    data = _study_tensors(model, reports, [0, 0, 0, 0])
    read = VisionLanguageBatches(data, tokenizer, 32, 64, sentence_reader=RadiologyReportLabeler())
    plain = VisionLanguageBatches(data, tokenizer, 32, 64)
    assert read.meaning["There is no pneumothorax."] in read.meaning_sets[0]  # report 0: "No pneumothorax."
    assert plain.meaning["There is no pneumothorax."] not in plain.meaning_sets[0]
    assert read.meaning["Small left pleural effusion."] not in read.meaning_sets[3]
    assert read.meaning["Moderate right pneumothorax."] != read.meaning["Small left pleural effusion."]


def test_when_captions_are_drawn_then_each_is_a_positive_of_exactly_the_images_it_is_true_of(
        model: ClinicalMMModel, tokenizer: ReportTokenizer) -> None:
    data = _study_tensors(model, TEXTS, [1, 0, -1, 0])  # a pacemaker on image 0; not known on image 2
    batches = VisionLanguageBatches(data, tokenizer, 32, 64, captions=True, incidental=("pacemaker",))
    state = torch.cat([data.labels, data.incidental], 1)  # type: ignore[list-item]
    names = [(*finding_names(f),) for f in (*FINDINGS, "pacemaker")]
    g = torch.Generator().manual_seed(0)
    seen_pacemaker = 0
    for _ in range(40):
        batch = batches.contrastive(torch.arange(B), g)
        assert batch.captions is not None and batch.caption_pos is not None
        texts = [tokenizer.decode(row) for row in batch.captions.ids.tolist()]
        for j, text in enumerate(texts):
            # (the tiny tokenizer reads almost letter by letter: the longest captions are cut at 32 tokens)
            k = next(k for k, words in enumerate(names) if any(w[:12] in text.lower() for w in words))
            on = 0.0 if text.startswith(("No ", "There is no ")) else 1.0
            assert batch.caption_pos[:, j].tolist() == [bool(state[i, k] == on) for i in range(B)], text
            assert batch.caption_pos[j, j]  # a study's own caption is true of it
            seen_pacemaker += k == len(FINDINGS)
    assert seen_pacemaker > 0
    emb = model.encode_image(data.images.float()).detach()
    params = [p for n, p in model.named_parameters() if not n.startswith(("vision", "lm."))]
    fixed = batches.contrastive(torch.arange(B), torch.Generator().manual_seed(1))
    first, last = _falls(model, lambda: model.contrastive_loss(model.query_output(emb), fixed), params)
    assert last < first


def test_when_answer_sets_are_drawn_then_all_but_some_absent_findings_questions_are_asked(
        model: ClinicalMMModel, tokenizer: ReportTokenizer) -> None:
    data = _study_tensors(model, TEXTS, [0, 0, 0, 0])
    effusion = {"name": "pleural_effusion", "side": "left", "zone": "lower", "size": "small", "size_mm": 0.0,
                "severity": 0.6}
    data.specs = [[effusion], [], None, [effusion, {**effusion, "name": "pneumothorax", "size": "large"}]]
    batches = VisionLanguageBatches(data, tokenizer, 32, 64)
    g = torch.Generator().manual_seed(0)
    one, none, unknown, two = (batches.answer_set(i, g) for i in range(4))
    assert unknown == []
    for asked, present in ((one, 1), (none, 0), (two, 2)):
        kinds = [(q.kind, q.answer) for q in asked]
        assert kinds.count(("presence", "yes")) == present
        assert kinds.count(("presence", "no")) == max(2, 2 * present)  # of 13, 14 or 12 absent findings
        assert sum(k == "count" for k, _ in kinds) == 1 and sum(k in ("side", "size") for k, _ in kinds) == 2 * present
    drawn = batches.answer_sets(torch.arange(4), g)
    assert drawn is not None
    qb, qs = drawn
    assert qb.rows.tolist().count(2) == 0 and len(qs) == len(qb.rows) == qb.dialogue.ids.shape[0]
