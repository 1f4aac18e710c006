"""The vision-language side of the model with a tiny random model: zero-shot prompts and their calibration, the
vector index against brute force, answers, phrase grounding, continued training, and the new training losses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from clinical_mm.core.errors import ConfigurationError
from clinical_mm.core.findings import FINDINGS, INCIDENTAL_FINDINGS
from clinical_mm.core.questions import QUESTION_TYPES, questions_for
from clinical_mm.model.checkpoint import LoadedModel
from clinical_mm.model.configuration import ClinicalMMConfig, HeadsConfig
from clinical_mm.model.grounding import InputGeometry
from clinical_mm.model.modeling import ClinicalMMModel, QuestionBatch, TextBatch
from clinical_mm.model.tokenizer import ReportTokenizer, format_report
from clinical_mm.model.training import continue_from, focus_targets
from clinical_mm.model.vector_index import StudyIndex
from clinical_mm.model.vision_language import (
    NEGATIVE_TEMPLATES,
    POSITIVE_TEMPLATES,
    VisionLanguage,
    fit_zero_shot_calibration,
)

TEXTS = [format_report("Small left pleural effusion. No pneumothorax.", "Small left pleural effusion."),
         format_report("Endotracheal tube tip 4 cm above the carina.", "No acute cardiopulmonary process."),
         "QUESTION: Is there a pneumothorax? ANSWER: yes", "QUESTION: Which side is the effusion on? ANSWER: left"]


@pytest.fixture(scope="module")
def vl() -> VisionLanguage:
    tokenizer = ReportTokenizer.train(TEXTS * 5, vocab_size=300)
    torch.manual_seed(0)
    config = ClinicalMMConfig.tiny(vocab_size=tokenizer.vocab_size)
    config.text.max_positions = 96  # room for the soft prompts, the reading tokens, a question and its answer
    model = ClinicalMMModel(config).eval()
    return VisionLanguage(LoadedModel(model, tokenizer, {"weights": {"sha256": "a" * 64}}, Path(".")))


def _pixels(n: int, size: int = 32) -> torch.Tensor:
    return torch.randn(n, 1, size, size, generator=torch.Generator().manual_seed(n))


def test_when_prompts_are_filled_then_every_template_names_the_finding(vl: VisionLanguage) -> None:
    from clinical_mm.model.vision_language import fill_prompt

    for template in (*POSITIVE_TEMPLATES, *NEGATIVE_TEMPLATES):
        text = fill_prompt(template, "Endotracheal tube.")
        assert "ndotracheal tube" in text and ".." not in text
    assert fill_prompt("There is {a} {f}.", "effusion") == "There is an effusion."


def test_when_scoring_zero_shot_then_each_image_gets_a_probability_per_finding(vl: VisionLanguage) -> None:
    scores = vl.zero_shot(_pixels(3), ["pneumothorax", "rib fracture"])
    assert len(scores) == 3 and all(len(s) == 2 for s in scores)
    for row in scores:
        for s in row:
            assert 0.0 <= s.probability <= 1.0 and not s.calibrated
            assert s.probability == pytest.approx(1 / (1 + np.exp(-np.exp(float(vl.model.logit_scale.detach())) * s.margin)),
                                                  abs=1e-4)


def test_when_calibration_is_fitted_then_it_recovers_a_known_logistic_relation() -> None:
    rng = np.random.default_rng(0)
    margins = rng.normal(0, 0.1, 4000)
    labels = (rng.random(4000) < 1 / (1 + np.exp(-(25 * margins - 0.5)))).astype(int)
    cal = fit_zero_shot_calibration(margins, labels)
    assert cal["slope"] == pytest.approx(25, rel=0.15) and cal["intercept"] == pytest.approx(-0.5, abs=0.15)
    with pytest.raises(ValueError, match="both labels"):
        fit_zero_shot_calibration(margins, np.zeros(4000))


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "hnsw"])
def test_when_an_index_is_searched_then_it_finds_what_brute_force_finds(tmp_path: Path, exact: bool,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import clinical_mm.model.vector_index as vector_index

    if not exact:
        monkeypatch.setattr(vector_index, "EXACT_UP_TO", 0)  # the graph of large indexes, on a small one
    rng = np.random.default_rng(1)
    n, q, d = 300, 4, 16

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    images, reports = unit(rng.normal(size=(n, q, d))), unit(rng.normal(size=(n, d)))
    entries = [{"key": f"k{i}", "report": f"report {i}" if i % 10 else ""} for i in range(n)]
    StudyIndex(entries, images, reports, {"id": "m", "sha256": "s"}).save(tmp_path / "idx")
    index = StudyIndex.load(tmp_path / "idx")
    text = reports[7]
    brute = np.einsum("nqd,d->nq", images, text).max(1)
    got = index.images_for_text(text, 5, "s")
    assert [h.position for h in got] == list(np.argsort(-brute)[:5])
    assert got[0].score == pytest.approx(float(brute.max()), abs=1e-4)
    with_report = [i for i in range(n) if entries[i]["report"]]
    brute_r = (reports[with_report] @ images[3].T).max(1)
    found = index.reports_for_image(images[3], 5, "s")
    assert [h.position for h in found] == [with_report[i] for i in np.argsort(-brute_r)[:5]]
    assert all(h.entry["report"] for h in found)  # studies without a report are not in the report graph
    with pytest.raises(ConfigurationError, match="rebuild"):
        index.images_for_text(text, 5, "another model")


def test_when_a_question_is_asked_then_an_answer_comes_back_per_image(vl: VisionLanguage) -> None:
    answers = vl.ask(_pixels(2), "Is there a pneumothorax?")
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    with pytest.raises(ValueError, match="empty"):
        vl.ask(_pixels(1), "   ")
    with pytest.raises(ValueError, match="too long"):
        vl.ask(_pixels(1), "Is there " + "a very long question " * 20)


def test_when_a_phrase_is_grounded_then_its_box_is_inside_the_image(vl: VisionLanguage) -> None:
    region = vl.ground(_pixels(1), "left pleural effusion", InputGeometry(400, 300, 32))
    assert 0 <= region.pixel_peak[0] <= 300 and 0 <= region.pixel_peak[1] <= 400
    for x0, y0, x1, y1 in region.pixel_boxes:
        assert 0 <= x0 < x1 <= 300 and 0 <= y0 < y1 <= 400


def test_when_the_answers_are_trained_then_their_loss_falls_and_reading_tokens_and_focus_learn(
        vl: VisionLanguage) -> None:
    model = ClinicalMMModel(vl.model.config)
    assert model.reading_tokens is not None
    start = model.reading_tokens.detach().clone()
    tok = vl.tokenizer
    emb = model.encode_image(_pixels(2)).detach()
    q_out, readings = model.query_output(emb).detach(), model.readings(emb).detach()
    assert readings.shape == (2, model.vision_head[1].out_features) and bool(((readings > 0) & (readings < 1)).all())
    asked = [("Is there a pneumothorax?", "yes", "pneumothorax", "presence"),
             ("Which side is the pleural effusion on?", "left", "pleural_effusion", "side"),
             ("Is there a pacemaker?", "no", "pacemaker", "presence"),
             ("How many of the seven triage findings are present?", "two", "", "count")]
    d_ids, d_mask, answer = tok.dialogue([a[0] for a in asked], [a[1] for a in asked], 24)
    subjects = model.config.heads.reading_subjects()
    focus = focus_targets([(finding, kind) for _, _, finding, kind in asked], subjects)
    questions = QuestionBatch(TextBatch(d_ids, d_mask), answer, torch.tensor([0, 1, 1, 0]), focus)
    params = [p for n, p in model.named_parameters() if n.startswith(("lm.", "language_projection.", "flag_prompts",
                                                                      "reading_tokens", "focus_head."))]
    opt = torch.optim.Adam(params, lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model.answer_loss(q_out, readings, questions)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    assert not torch.equal(model.reading_tokens, start)  # the encoder's readings reach the answers
    with torch.no_grad():
        picked = torch.softmax(model.focus_logits(d_ids, d_mask * (1 - answer)), 1)
    assert float(picked[0, subjects.index(("pneumothorax", "presence"))]) > 0.5  # the question picks its reading
    sides = [k for k, s in enumerate(subjects) if s == ("pleural_effusion", "side")]
    assert len(sides) == 2 and float(picked[1, sides].sum()) > 0.5
    assert float(picked[2, subjects.index(("pacemaker", "presence"))]) > 0.5
    prefix = model.answer_prompts(q_out, readings, model.focus_logits(d_ids[:2], d_mask[:2]))
    assert prefix.shape[1] == model.config.answer_prefix == 4 + model.config.heads.readings + 1
    with pytest.raises(ValueError, match="focus"):
        model.answer_prompts(q_out, readings)
    assert int(answer[0].sum()) == len(tok.ids(" yes")) + 1  # the answer and [EOS], not the question


def test_when_any_question_but_the_count_is_asked_then_some_reading_of_the_encoder_is_about_it() -> None:
    every = [{"name": name, "side": "left", "zone": "upper", "size": "small", "size_mm": 12.0, "severity": 0.5,
              "tip": "SVC"} for name in (*FINDINGS, *INCIDENTAL_FINDINGS)]
    subjects = HeadsConfig().reading_subjects()
    assert len(subjects) == HeadsConfig().readings
    asked = {(q.finding, q.kind) for q in questions_for(every)}
    assert {kind for _, kind in asked} == set(QUESTION_TYPES)
    assert {a for a in asked if a[1] != "count"} <= set(subjects)


def test_when_continuing_a_model_with_more_targets_then_trained_rows_are_kept() -> None:
    small = ClinicalMMConfig.tiny()
    small.heads.incidental, small.heads.detail, small.heads.reading_tokens = (), (), False  # the shipped model's
    trained = ClinicalMMModel(small)
    grown = ClinicalMMModel(ClinicalMMConfig.tiny())
    assert continue_from(grown, trained) == len(trained.state_dict())
    old, new = trained.vision_head[1].weight, grown.vision_head[1].weight
    heads = grown.config.heads
    assert new.shape[0] == old.shape[0] + len(heads.incidental) + len(heads.detail)
    assert torch.equal(new[: old.shape[0]], old)
    assert grown.reading_tokens is not None  # new, learnt by the answers stage
    with pytest.raises(ValueError, match="continue"):
        continue_from(trained, grown)


def test_when_a_question_is_too_long_for_the_dialogue_then_it_loses_its_end_but_never_the_answer_cue(
        vl: VisionLanguage) -> None:
    tok = vl.tokenizer
    question = "Which side is the " + "very " * 12 + "large pleural effusion on?"
    ids, mask, answer = tok.dialogue([question], ["left"], 20)
    n = int(mask[0].sum())
    assert n <= 20 and int(answer[0].sum()) == len(tok.ids(" left")) + 1
    cue = tok.ids(" ANSWER:")
    start = n - int(answer[0].sum())
    assert ids[0, start - len(cue):start].tolist() == cue  # the answer follows ANSWER:, as at inference


def test_when_an_answer_is_generated_then_room_is_left_for_the_longest_canonical_answer() -> None:
    """The answer's token budget holds every answer questions have, in the shipped tokenizer ("superior vena cava"
    was cut to "superior ven" at 8 tokens)."""
    import clinical_mm
    from clinical_mm.core.questions import questions_for
    from clinical_mm.model import vision_language

    tok = ReportTokenizer.load(Path(clinical_mm.__file__).parent / "weights" / "default" / "tokenizer.json")
    answers = {"yes", "no", "left", "right", "both", "small", "moderate", "large", "nodule", "mass", "mild", "marked",
               "superior vena cava", "right atrium", "stomach", "esophagus", "zero", "seven"}
    for zone in ("upper", "middle", "lower"):
        for side in ("left", "right"):
            specs = [{"name": "consolidation", "side": side, "zone": zone}]
            answers |= {q.answer for q in questions_for(specs) if q.kind == "location"}
    longest = max(len(tok.ids(f" {a}")) + 1 for a in answers)  # and [EOS]
    assert longest <= vision_language._ANSWER_TOKENS
