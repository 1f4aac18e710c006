"""Assertion accuracy on annotated sentences: each line {"id", "style", "text", "target", "start", "end",
"assertion"}; the extractor asserts the span [start, end) of the text (sections and sentences as in
``clinical-mm extract``) and the answer is compared with the annotation.

The shipped set (``data/assertion_sentences.jsonl``, 340 sentences written for this project in radiology,
HPI, past medical, family and social history, discharge, nursing, progress-note and exam styles, upper and
mixed case) was written before the rules were tuned; the rules were then corrected on it (general rules,
no sentence-specific ones), so its score is a development score: the first run scored 0.888.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from clinical_mm.evaluation.annotated_jsonl import read_annotated
from clinical_mm.extraction.extractor import ClinicalExtractor

__all__ = ["SHIPPED_SENTENCES", "load_sentences", "score_assertions"]

SHIPPED_SENTENCES = Path(__file__).resolve().parent / "data" / "assertion_sentences.jsonl"


def _sentence(row: dict[str, Any]) -> dict[str, Any]:
    start, end, text = int(row["start"]), int(row["end"]), str(row["text"])
    if not 0 <= start < end <= len(text):
        raise ValueError
    return {**row, "start": start, "end": end, "text": text, "assertion": str(row["assertion"]),
            "style": str(row.get("style", "unspecified"))}


def load_sentences(path: Path) -> list[dict[str, Any]]:
    return read_annotated(path, _sentence, "{text, start, end, assertion} with a span inside the text")


def score_assertions(path: Path, extractor: ClinicalExtractor | None = None) -> dict[str, Any]:
    """Accuracy overall, per gold assertion and per style, with the mistakes (id, gold, predicted)."""
    extractor = extractor or ClinicalExtractor()
    rows = load_sentences(path)
    groups: dict[str, dict[str, list[int]]] = {"by_assertion": defaultdict(list), "by_style": defaultdict(list)}
    mistakes = []
    for row in rows:
        predicted = extractor.assert_spans(row["text"], [(row["start"], row["end"])])[0][0]
        hit = int(predicted == row["assertion"])
        groups["by_assertion"][row["assertion"]].append(hit)
        groups["by_style"][row["style"]].append(hit)
        if not hit:
            mistakes.append({"id": row.get("id", ""), "gold": row["assertion"], "predicted": predicted})
    n = len(rows)
    correct = n - len(mistakes)
    return {"n": n, "accuracy": correct / n if n else 0.0,
            **{name: {k: {"n": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(g.items())}
               for name, g in groups.items()},
            "mistakes": mistakes}
