"""The vision-language tasks of ``clinical-mm evaluate --tasks``: zero-shot findings, image-report retrieval,
visual questions, grounding and the input gate, each with 95% intervals, on a test manifest.

The ground truth is the synthetic manifest's (``clinical-mm synth``): flag columns, ``specs`` (every drawn
finding and device, for non-flag labels and questions) and ``regions`` (boxes, for grounding); a manifest without
them scores what it can and says what it could not. Every image goes through the pipeline's de-identification,
scope check and input gate (:class:`~clinical_mm.pipeline.vision_language_queries.VisionLanguageQueries`), and
the reports through the text de-identifier before the model reads them.

- ``zero_shot.<finding>``: AUROC of the ensembled prompts and of the single prompt, per flag and per incidental
  finding, and the means of each group; ``auroc_unseen_templates``: the ensemble of the templates training never
  says findings in (:data:`~clinical_mm.model.vision_language.CAPTION_TEMPLATES`), how far the prompts carry to
  new words.
- ``retrieval.image_to_text`` / ``.text_to_image``: Recall@1/5/10 (a hit is the study's own report; reports
  of the same text count as its own) and class-based Precision@5 (retrieved studies with the same flag labels).
  ``retrieval.own_report_ceiling``: the Recall@k a perfect reader of the image would reach (one that tells every
  drawn finding and device, its side, zone, size class and detail, but not how the report was phrased): studies
  that show the same are told apart only by chance, so a query whose content is shared by g studies finds its own
  report in the first k with probability min(1, k / g). Recall is read against it: on a few hundred synthetic
  studies, the normal ones alone keep it below 1.
- ``vqa.accuracy.<type>``: exact match after normalisation (:func:`~clinical_mm.core.questions.normalise_answer`);
  ``vqa.prior_baseline.<type>``: the accuracy of always giving the type's most common answer (VQA's "prior"
  baseline), what the accuracy is read against (most findings are absent from most images, so "no" is right
  for most presence questions).
- ``grounding``: pointing game (the peak within the finding's box, 15/224 of the image's side of tolerance, as
  the benchmark) and mean box IoU on raised flags that are present; phrase grounding of incidental findings.
- ``ood``: AUROC of the gate's distance between the test images and the same images turned or inverted, the
  share of test images refused (should be under 1%) and of turned images refused (should be 1).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
import torch

from clinical_mm.core.findings import FINDING_LABELS, FINDINGS, INCIDENTAL_FINDINGS, INCIDENTAL_LABELS
from clinical_mm.core.metrics import sigmoid
from clinical_mm.core.questions import QUESTION_TYPES, Question, normalise_answer, questions_for
from clinical_mm.evaluation.compliance.manifest import EvaluationManifest, ManifestRow
from clinical_mm.evaluation.compliance.statistics import Estimate, auroc, proportion
from clinical_mm.model.base import InputGate
from clinical_mm.model.grounding import encoder_sides, locate, occlusion_maps
from clinical_mm.pipeline.vision_language_queries import StudyImage, VisionLanguageQueries
from clinical_mm.synth.relabel import TURNS, grey_pixels, relabelled_chest_radiograph, turned

__all__ = ["TASKS", "own_report_ceiling", "prior_baseline", "run_tasks"]

TASKS: tuple[str, ...] = ("zero_shot", "retrieval", "vqa", "grounding", "ood")
#: phrase grounding runs about 100 encoder passes per phrase: at most this many phrases are scored
MAX_PHRASES = 60
#: turned images of the ood task: the first this many test images, each in every turn
MAX_TURNED = 40


@dataclass
class _Study:
    row: ManifestRow
    image: StudyImage


def _bootstrap_mean(values: list[float], seed: int, n_resamples: int) -> Estimate:
    if not values:
        return Estimate.undefined()
    arr = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    boots = arr[rng.integers(len(arr), size=(n_resamples, len(arr)))].mean(1)
    return Estimate(float(arr.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975)))


def _incidental_labels(row: ManifestRow) -> dict[str, int] | None:
    if row.specs is None:
        return None
    drawn = {str(s.get("name")) for s in row.specs}
    return {name: int(name in drawn) for name in INCIDENTAL_FINDINGS}


def zero_shot_task(queries: VisionLanguageQueries, studies: list[_Study], vectors: torch.Tensor, seed: int,
                   n_resamples: int) -> dict[str, Any]:
    vl = queries.vl
    out: dict[str, Any] = {}
    groups: dict[str, dict[str, list[float]]] = {"flags": defaultdict(list), "non_flags": defaultdict(list)}
    for name in (*FINDINGS, *INCIDENTAL_FINDINGS):
        if name in FINDINGS:
            labels = [s.row.labels.get(name) for s in studies]
        else:
            labels = [(_incidental_labels(s.row) or {}).get(name) for s in studies]
        keep = [i for i, y in enumerate(labels) if y is not None]
        if not keep:
            continue
        words = (FINDING_LABELS.get(name) or INCIDENTAL_LABELS[name]).lower()
        ensembled, single = vl.zero_shot_margins(vectors[keep], words)
        y = np.asarray([labels[i] for i in keep])
        ens, one, unseen = (auroc(y, m, seed=seed, n_resamples=n_resamples)
                            for m in (ensembled, single, vl.unseen_prompt_margins(vectors[keep], words)))
        out[name] = {"prompt": words, "auroc": ens.to_dict(), "auroc_single_prompt": one.to_dict(),
                     "auroc_unseen_templates": unseen.to_dict(), "positives": int(y.sum()), "n": len(y)}
        group = groups["flags" if name in FINDINGS else "non_flags"]
        for key, est in (("ensemble", ens), ("single", one), ("unseen_templates", unseen)):
            if est.estimate is not None:
                group[key].append(est.estimate)
    out["mean"] = {g: {k: round(float(np.mean(v)), 4) for k, v in vals.items()} for g, vals in groups.items()}
    out["calibrated"] = vl.calibration is not None
    return out


def _recall_and_precision(sim: np.ndarray, own: np.ndarray, same_class: np.ndarray, seed: int,
                          n_resamples: int) -> dict[str, Any]:
    """``sim`` (queries, gallery); ``own`` (queries, gallery) bool: a hit; ``same_class`` likewise for P@5."""
    order = np.argsort(-sim, axis=1, kind="stable")
    res: dict[str, Any] = {}
    for k in (1, 5, 10):
        hits = [float(own[i, order[i, :k]].any()) for i in range(len(sim))]
        res[f"recall@{k}"] = _bootstrap_mean(hits, seed, n_resamples).to_dict()
    precision = [float(same_class[i, order[i, :5]].mean()) for i in range(len(sim))]
    res["class_precision@5"] = _bootstrap_mean(precision, seed, n_resamples).to_dict()
    return res


def _content(specs: list[dict[str, Any]]) -> tuple[tuple[str, ...], ...]:
    """What a study shows, as a reader of the image can tell it: each drawn finding and device with its side,
    zone, size class and detail (measurements and phrasing left out)."""
    keys = ("name", "side", "zone", "size", "detail", "tip", "number")
    return tuple(sorted(tuple(str(s.get(k, "")) for k in keys) for s in specs))


def own_report_ceiling(specs: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The expected Recall@1/5/10 of a perfect content reader (see the module's text) on studies with these
    ground truths: min(1, k / g) for a study whose content g studies share, averaged."""
    keys = [_content(s) for s in specs]
    counts = Counter(keys)
    # a reference figure of the test set itself: no sampling interval
    return {f"recall@{k}": Estimate(float(np.mean([min(1.0, k / counts[key]) for key in keys])), None, None).to_dict()
            for k in (1, 5, 10)}


def retrieval_task(queries: VisionLanguageQueries, studies: list[_Study], vectors: torch.Tensor, seed: int,
                   n_resamples: int) -> dict[str, Any]:
    with_report = [i for i, s in enumerate(studies) if s.row.report_text]
    if len(with_report) < 2:
        return {"available": False, "reason": "the manifest has fewer than two reports (columns findings, impression)"}
    texts = [queries.clean_text(studies[i].row.report_text) for i in with_report]
    text_vectors = queries.vl.text_vectors(texts)
    sim = queries.vl.model.similarity(vectors[with_report], text_vectors).numpy()  # (images, reports)
    own = np.array([[a == b for b in texts] for a in texts])
    labels = [tuple(sorted(studies[i].row.labels.items())) for i in with_report]
    same_class = np.array([[a == b for b in labels] for a in labels])
    out: dict[str, Any] = {"gallery": len(texts),
                           "image_to_text": _recall_and_precision(sim, own, same_class, seed, n_resamples),
                           "text_to_image": _recall_and_precision(sim.T, own.T, same_class.T, seed, n_resamples)}
    specs = [studies[i].row.specs for i in with_report]
    if all(s is not None for s in specs):
        out["own_report_ceiling"] = own_report_ceiling([s for s in specs if s is not None])
    return out


def vqa_task(queries: VisionLanguageQueries, studies: list[_Study], seed: int, n_resamples: int) -> dict[str, Any]:
    asked = [(i, q) for i, s in enumerate(studies) if s.row.specs is not None for q in questions_for(s.row.specs)]
    if not asked:
        return {"available": False, "reason": "the manifest has no ground truth to ask about (column specs)"}
    pixels = torch.cat([s.image.pixels for s in studies if s.image.pixels is not None])
    tokens = queries.vl.encode(pixels)
    by_text: dict[str, list[tuple[int, Any]]] = defaultdict(list)
    for i, q in asked:
        by_text[q.text].append((i, q))
    correct: dict[str, list[float]] = defaultdict(list)
    examples: list[dict[str, str]] = []
    for text, items in by_text.items():
        answers = queries.vl.answers(tokens[[i for i, _ in items]], text)
        for (_, q), answer in zip(items, answers, strict=True):
            ok = normalise_answer(answer) == normalise_answer(q.answer)
            correct[q.kind].append(float(ok))
            if not ok and len(examples) < 12:
                examples.append({"question": text, "expected": q.answer, "answered": answer})
    accuracy = {k: _bootstrap_mean(correct[k], seed, n_resamples).to_dict() | {"n": len(correct[k])}
                for k in QUESTION_TYPES if correct[k]}
    return {"accuracy": accuracy, "prior_baseline": prior_baseline([q for _, q in asked]), "questions": len(asked),
            "wrong_examples": examples}


def prior_baseline(questions: list[Question]) -> dict[str, dict[str, Any]]:
    """Per question type, the most common (normalised) answer and the accuracy of always giving it."""
    answers: dict[str, Counter[str]] = defaultdict(Counter)
    for q in questions:
        answers[q.kind][normalise_answer(q.answer)] += 1
    out: dict[str, dict[str, Any]] = {}
    for kind in (k for k in QUESTION_TYPES if k in answers):
        answer, n = answers[kind].most_common(1)[0]
        out[kind] = Estimate(n / answers[kind].total(), None, None).to_dict() | {"answer": answer}
    return out


def _pointing(peak: tuple[int, int], boxes: list[list[int]], tol: float) -> float:
    px, py = peak
    return float(any(x0 - tol <= px <= x1 + tol and y0 - tol <= py <= y1 + tol for x0, y0, x1, y1 in boxes))


def _iou(shape: tuple[int, int], a: list[list[int]], b: list[list[int]] | tuple[tuple[int, ...], ...]) -> float:
    ma, mb = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    for m, boxes in ((ma, a), (mb, b)):
        for x0, y0, x1, y1 in boxes:
            m[y0:y1, x0:x1] = True
    return float((ma & mb).sum() / max(1, (ma | mb).sum()))


def grounding_task(queries: VisionLanguageQueries, studies: list[_Study], seed: int,
                   n_resamples: int) -> dict[str, Any]:
    vl, loaded = queries.vl, queries.vl.loaded
    temps, thresholds = loaded.temperatures, loaded.thresholds
    hits, ious, phrase_hits = [], [], []
    phrases = 0
    for s in studies:
        img, truth = s.image, s.row.regions
        if truth is None or img.pixels is None or img.geometry is None:
            continue
        shape = (img.geometry.rows, img.geometry.columns)
        tol = 15 / 224 * max(shape)
        with torch.inference_mode():
            tokens = vl.model.encode_image(img.pixels.float())
            logits = vl.model.triage_logits(vl.model.query_output(tokens)).float()[0].numpy()
        raised = [n for j, n in enumerate(FINDINGS) if sigmoid(logits[j] / temps[n]) >= thresholds[n] and n in truth]
        if raised:
            maps = occlusion_maps(vl.model, img.pixels.float()).numpy()
            sides = encoder_sides(vl.model, tokens.float())
            for name in raised:
                region = locate(name, maps[FINDINGS.index(name)], img.geometry, sides.get(name, ()))
                hits.append(_pointing(region.pixel_peak, truth[name], tol))
                ious.append(_iou(shape, truth[name], region.pixel_boxes))
        for name in (n for n in INCIDENTAL_FINDINGS if n in truth):
            if phrases >= MAX_PHRASES:
                break
            region = vl.ground(img.pixels, INCIDENTAL_LABELS[name].lower(), img.geometry)
            phrase_hits.append(_pointing(region.pixel_peak, truth[name], tol))
            phrases += 1
    if not hits and not phrase_hits:
        return {"available": False, "reason": "no raised flag with a region (column regions) to point at"}
    return {"pointing_game": _bootstrap_mean(hits, seed, n_resamples).to_dict() | {"n": len(hits)},
            "miou": _bootstrap_mean(ious, seed, n_resamples).to_dict(),
            "phrase": {"pointing_game": _bootstrap_mean(phrase_hits, seed, n_resamples).to_dict()
                       | {"n": len(phrase_hits), "phrases": "incidental findings by name, at most "
                                                            f"{MAX_PHRASES}"}}}


def ood_task(gate: InputGate | None, studies: list[_Study], refused_rows: int, seed: int,
             n_resamples: int) -> dict[str, Any]:
    if gate is None:
        return {"available": False, "reason": "the model folder has no input gate"}
    scores = [float(s.image.ood["score"]) for s in studies if s.image.ood is not None]  # type: ignore[arg-type]
    turned_scores, turned_refused = [], 0
    for s in studies[:MAX_TURNED]:
        ds = pydicom.dcmread(s.row.path)
        for turn in TURNS:
            reading = gate.read_image(relabelled_chest_radiograph(turned(grey_pixels(ds), turn)))
            turned_refused += reading.refusal is not None
            if math.isfinite(reading.score):
                turned_scores.append(reading.score)
    n_turned = min(len(studies), MAX_TURNED) * len(TURNS)
    y = np.r_[np.zeros(len(scores)), np.ones(len(turned_scores))]
    return {"auroc": auroc(y, np.r_[scores, turned_scores], seed=seed, n_resamples=n_resamples).to_dict(),
            "refused_test_images": proportion(refused_rows, refused_rows + len(studies)).to_dict(),
            "outside_domain_test_images": proportion(sum(1 for s in studies if s.image.ood is not None
                                                          and not s.image.ood.get("in_domain")), len(studies)).to_dict(),
            "refused_turned_images": proportion(turned_refused, n_turned).to_dict(),
            "turns": list(TURNS), "turned_from": min(len(studies), MAX_TURNED)}


def run_tasks(tasks: tuple[str, ...], manifest: EvaluationManifest, queries: VisionLanguageQueries, *, seed: int,
              n_resamples: int, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """The selected ``tasks`` on ``manifest``'s studies; one dict per task for ``results.json``."""
    studies, refused = [], 0
    for row in manifest.rows:
        image = next(queries.images(row.path, "evaluate"), None) if row.path.is_file() else None
        tick()
        if image is None or image.error is not None or image.pixels is None:
            refused += 1
            continue
        studies.append(_Study(row, image))
    out: dict[str, Any] = {"studies": len(manifest.rows), "analysed": len(studies), "refused": refused}
    if not studies:
        return out
    vectors = queries.vl.image_vectors(torch.cat([s.image.pixels for s in studies if s.image.pixels is not None]))
    for task in tasks:
        if task == "zero_shot":
            out[task] = zero_shot_task(queries, studies, vectors, seed, n_resamples)
        elif task == "retrieval":
            out[task] = retrieval_task(queries, studies, vectors, seed, n_resamples)
        elif task == "vqa":
            out[task] = vqa_task(queries, studies, seed, n_resamples)
        elif task == "grounding":
            out[task] = grounding_task(queries, studies, seed, n_resamples)
        elif task == "ood":
            out[task] = ood_task(queries.gate, studies, refused, seed, n_resamples)
    return out
