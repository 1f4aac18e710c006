"""Scores a text de-identifier against annotated notes: recall per PHI type, character-level precision.

Recall: an annotated PHI span counts as caught when every letter and digit in it lies inside some
detected span (of any type: a leak is a leak whatever the detector called it). Character precision:
of the letters and digits the detector marked, the share inside annotated PHI; reported overall and per
detected type. Both are also broken down by note style and case (where notes have them). Recall is also given
over Safe Harbor PHI only (without a year alone), and, for a score threshold curve, at each of several
thresholds from one detection run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from clinical_mm.evaluation.phi_note_corpus import NOT_SAFE_HARBOR, PHI_TYPES, AnnotatedNote

__all__ = ["CURVE_THRESHOLDS", "TextDeidScore", "curve_table", "score_curve", "score_notes"]

#: detected spans of a note: (start, end, entity type)
Detected = Sequence[tuple[int, int, str]]
#: detected spans of a note with their final scores: (start, end, entity type, score)
Scored = Sequence[tuple[int, int, str, float]]
#: the score thresholds of ``deid evaluate-text --curve``
CURVE_THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(1, 10))


@dataclass
class TextDeidScore:
    """Counts behind the figures; ``recall`` and ``precision`` compute them."""

    gold: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    caught: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    missed_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    marked_chars: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    marked_in_gold: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_group: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    notes: int = 0

    def recall(self, kind: str | None = None) -> float:
        g = sum(self.gold.values()) if kind is None else self.gold[kind]
        c = sum(self.caught.values()) if kind is None else self.caught[kind]
        return c / g if g else float("nan")

    def safe_harbor_recall(self) -> float:
        """Recall over the annotated spans that are Safe Harbor PHI (all but :data:`NOT_SAFE_HARBOR`: a year
        alone)."""
        g = sum(n for k, n in self.gold.items() if k not in NOT_SAFE_HARBOR)
        c = sum(n for k, n in self.caught.items() if k not in NOT_SAFE_HARBOR)
        return c / g if g else float("nan")

    def precision(self, detected_type: str | None = None) -> float:
        m = sum(self.marked_chars.values()) if detected_type is None else self.marked_chars[detected_type]
        i = sum(self.marked_in_gold.values()) if detected_type is None else self.marked_in_gold[detected_type]
        return i / m if m else float("nan")

    def hipaa_recall(self) -> dict[str, float]:
        """Recall per HIPAA Safe Harbor identifier (annotation types grouped as :data:`PHI_TYPES` says)."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for kind, n in self.gold.items():
            out[PHI_TYPES.get(kind, kind)][0] += n
            out[PHI_TYPES.get(kind, kind)][1] += self.caught[kind]
        return {k: c / g for k, (g, c) in sorted(out.items())}

    def table(self) -> str:
        lines = [f"notes {self.notes}, annotated PHI spans {sum(self.gold.values())}", "",
                 f"{'PHI type':<14}{'spans':>7}{'caught':>8}{'recall':>8}"]
        for kind in sorted(self.gold):
            lines.append(f"{kind:<14}{self.gold[kind]:>7}{self.caught[kind]:>8}{self.recall(kind):>8.3f}")
        lines.append(f"{'all':<14}{sum(self.gold.values()):>7}{sum(self.caught.values()):>8}{self.recall():>8.3f}")
        if NOT_SAFE_HARBOR & set(self.gold):
            lines.append(f"{'all but ' + '/'.join(sorted(NOT_SAFE_HARBOR)):<14}"
                         f"{sum(n for k, n in self.gold.items() if k not in NOT_SAFE_HARBOR):>7}"
                         f"{sum(n for k, n in self.caught.items() if k not in NOT_SAFE_HARBOR):>8}"
                         f"{self.safe_harbor_recall():>8.3f}")
        lines += ["", f"{'detected as':<14}{'chars':>7}{'in PHI':>8}{'precision':>10}"]
        for kind in sorted(self.marked_chars):
            lines.append(f"{kind:<14}{self.marked_chars[kind]:>7}{self.marked_in_gold[kind]:>8}"
                         f"{self.precision(kind):>10.3f}")
        lines.append(f"{'all':<14}{sum(self.marked_chars.values()):>7}{sum(self.marked_in_gold.values()):>8}"
                     f"{self.precision():>10.3f}")
        lines += ["", f"{'style / case':<18}{'recall':>8}{'precision':>10}"] if self.by_group else []
        for group, (g, c, m, i) in sorted(self.by_group.items()):
            lines.append(f"{group:<18}{c / g if g else float('nan'):>8.3f}{i / m if m else float('nan'):>10.3f}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "notes": self.notes, "spans": sum(self.gold.values()),
            "recall": {k: round(self.recall(k), 4) for k in sorted(self.gold)},
            "recall_all": round(self.recall(), 4), "recall_safe_harbor": round(self.safe_harbor_recall(), 4),
            "hipaa_recall": {k: round(v, 4) for k, v in self.hipaa_recall().items()},
            "char_precision": {k: round(self.precision(k), 4) for k in sorted(self.marked_chars)},
            "char_precision_all": round(self.precision(), 4),
            "by_style_case": {k: {"recall": round(c / g, 4) if g else None, "char_precision": round(i / m, 4) if m else None}
                              for k, (g, c, m, i) in sorted(self.by_group.items())},
        }


def _alnum(text: str, start: int, end: int) -> list[int]:
    return [i for i in range(start, end) if text[i].isalnum()]


def score_notes(notes: Iterable[AnnotatedNote], detect: Callable[[str], Detected]) -> TextDeidScore:
    """Run ``detect`` over every note and score it against the annotations."""
    score = TextDeidScore()
    for note in notes:
        score.notes += 1
        found = detect(note.text)
        covered: set[int] = set()
        for start, end, _ in found:
            covered.update(range(start, end))
        gold_chars: set[int] = set()
        groups = (f"{note.style}/{note.case}", f"*/{note.case}") if note.case else ()  # real notes: no style
        for span in note.spans:
            s, e, kind = int(str(span["start"])), int(str(span["end"])), str(span["type"])
            gold_chars.update(range(s, e))
            score.gold[kind] += 1
            ok = all(i in covered for i in _alnum(note.text, s, e))
            score.caught[kind] += ok
            for g in groups:
                score.by_group[g][0] += 1
                score.by_group[g][1] += ok
            if not ok and len(score.missed_examples[kind]) < 5:
                score.missed_examples[kind].append(note.id)
        for start, end, kind in found:
            chars = _alnum(note.text, start, end)
            inside = sum(i in gold_chars for i in chars)
            score.marked_chars[kind] += len(chars)
            score.marked_in_gold[kind] += inside
            for g in groups:
                score.by_group[g][2] += len(chars)
                score.by_group[g][3] += inside
    return score


def score_curve(notes: Sequence[AnnotatedNote], detect: Callable[[str], Scored],
                thresholds: Iterable[float] = CURVE_THRESHOLDS) -> list[dict[str, float]]:
    """Recall (all, and Safe Harbor PHI only) and character precision at each score threshold: ``detect`` runs
    once per note (with every span it finds, whatever its score) and each threshold keeps the spans scored at or
    above it."""
    found = {note.text: list(detect(note.text)) for note in notes}
    rows = []
    for t in thresholds:
        score = score_notes(notes, lambda text, t=t: [(s, e, k) for s, e, k, p in found[text] if p >= t])
        rows.append({"threshold": t, "recall": round(score.recall(), 4),
                     "recall_safe_harbor": round(score.safe_harbor_recall(), 4),
                     "char_precision": round(score.precision(), 4)})
    return rows


def curve_table(rows: Sequence[dict[str, float]]) -> str:
    """:func:`score_curve`'s rows as a table: threshold, recall, recall without a year alone, char precision."""
    lines = [f"{'threshold':>9}{'recall':>8}{'recall w/o YEAR':>17}{'char precision':>16}"]
    lines += [f"{r['threshold']:>9.1f}{r['recall']:>8.3f}{r['recall_safe_harbor']:>17.3f}{r['char_precision']:>16.3f}"
              for r in rows]
    return "\n".join(lines)
