"""How the extraction finds medications and problems in real ICU nursing notes: the extractor's entities against
the annotation of 60 notes of the PhysioNet deid development set (``data/icu_notes_medications_problems.jsonl``:
offsets only; the notes stay outside the repository, see ``data/icu_notes_medications_problems.md`` for the
sample and the guidelines).

The notes file (``{"id", "text", ...}`` per line, the PhysioNet form) is given; a note whose text does not have
the annotated sha256 is refused by id. Per entity type (medication, problem) and part ("tune": rules were
written from these notes; "untuned": never read for rules), precision, recall and F1 of spans:

- *overlap*: a found entity of the type that overlaps an annotated span of the type matches it (each annotated
  span matched once), the usual lenient measure of concept extraction (i2b2 2010 "inexact");
- *exact*: the same with identical offsets.

A found entity of another type (a device, a lab) is not counted against either type.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from clinical_mm.core.errors import InputError
from clinical_mm.core.metrics import precision_recall_f1
from clinical_mm.extraction.extractor import ClinicalExtractor

__all__ = ["NOTE_ANNOTATIONS", "NOTE_ENTITY_TYPES", "score_note_entities"]

NOTE_ANNOTATIONS = Path(__file__).resolve().parent / "data" / "icu_notes_medications_problems.jsonl"
NOTE_ENTITY_TYPES = ("medication", "problem")

Span = tuple[int, int]


def _annotated_notes(notes: Path, annotations: Path) -> list[tuple[dict[str, Any], str]]:
    """(annotation, text) per annotated note; the notes file must hold every annotated note, unchanged."""
    try:
        texts = {}
        for line in notes.read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                texts[str(row["id"])] = str(row["text"])
        rows = [json.loads(line) for line in annotations.read_text("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{notes}: expected one JSON object {{id, text}} per line ({type(exc).__name__})") from None
    out = []
    for row in rows:
        text = texts.get(row["id"])
        if text is None or hashlib.sha256(text.encode()).hexdigest() != row["text_sha256"]:
            raise InputError(f"{notes}: note {row['id']} is missing or not the annotated text")
        out.append((row, text))
    return out


def _match(gold: list[Span], found: list[Span], exact: bool) -> tuple[int, int, int, list[Span], list[Span]]:
    """tp, fp, fn, and the unmatched found and gold spans."""
    left = list(gold)
    extra = []
    for a, b in found:
        hit = next((g for g in left if (g == (a, b) if exact else g[0] < b and a < g[1])), None)
        if hit is None:
            extra.append((a, b))
        else:
            left.remove(hit)
    tp = len(found) - len(extra)
    return tp, len(extra), len(left), extra, left


def score_note_entities(notes: Path, annotations: Path = NOTE_ANNOTATIONS, examples: int = 0,
                        extractor: ClinicalExtractor | None = None) -> dict[str, Any]:
    """Per part and entity type, overlap and exact precision/recall/F1; ``examples`` misses and extras per part
    and type (the text around them) where asked."""
    extractor = extractor or ClinicalExtractor()
    counts: dict[tuple[str, str, str], list[int]] = {}
    shown: dict[str, list[dict[str, str]]] = {}
    parts: dict[str, int] = {}
    for row, text in _annotated_notes(notes, annotations):
        part = str(row["part"])
        parts[part] = parts.get(part, 0) + 1
        entities = extractor.entities(text)
        for kind in NOTE_ENTITY_TYPES:
            gold = [(int(s["start"]), int(s["end"])) for s in row["spans"] if s["type"] == kind]
            found = sorted({(e.start, e.end) for e in entities if e.type == kind})
            for exact in (False, True):
                tp, fp, fn, extra, missed = _match(gold, found, exact)
                c = counts.setdefault((part, kind, "exact" if exact else "overlap"), [0, 0, 0])
                c[0], c[1], c[2] = c[0] + tp, c[1] + fp, c[2] + fn
                if not exact and examples:
                    for what, spans in (("missed", missed), ("extra", extra)):
                        for a, b in spans:
                            key = f"{part} {kind} {what}"
                            if len(shown.setdefault(key, [])) < examples:
                                shown[key].append({"id": str(row["id"]), "span": text[a:b],
                                                   "context": " ".join(text[max(0, a - 40):b + 40].split())})
    out: dict[str, Any] = {}
    for part in sorted(parts):
        out[part] = {"notes": parts[part], **{kind: {match: precision_recall_f1(*counts[(part, kind, match)])
                                                    for match in ("overlap", "exact")}
                                             for kind in NOTE_ENTITY_TYPES}}
    if examples:
        out["examples"] = shown
    return out
