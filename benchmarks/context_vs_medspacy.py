"""Assertion (ConText) speed and accuracy, side by side in one run on the same sentences: clinical-mm's ConText
against medspaCy's ConText (medspacy 1.3.1 with its default rules).

The sentences are the shipped annotated assertion set (340 sentences, each with one target span and its gold
assertion), read ``--repeat`` times after a warm-up pass. medspaCy needs spaCy < 3.8 and numpy 1.26, which our
environment (spaCy 3.8 for presidio) cannot hold, so it runs in a venv of its own: ``--medspacy-python PATH``,
or by default ``.bench/medspacy-venv`` under the repository, created on first use (pip install medspacy==1.3.1
from the package index).

Both sides are given the sentence and the target span and time the assertion only: medspaCy tokenises the
sentence (``nlp.make_doc``), marks it as one sentence, sets the span as the entity and runs ConText; clinical-mm runs ConText on the
sentence (``ConText.assert_mentions``), and, as a second figure, the whole ``assert_spans`` of the extractor
(sections and sentence splitting included). Accuracy is against the gold assertions, medspaCy's attributes
mapped to ours (family > hypothetical > negated > uncertain > historical > present, our priority).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from clinical_mm.evaluation.assertion_evaluation import SHIPPED_SENTENCES, load_sentences
from clinical_mm.extraction.extractor import ClinicalExtractor

ROOT = Path(__file__).resolve().parents[1]


def medspacy_python(given: str | None) -> str:
    if given:
        return given
    venv = ROOT / ".bench" / "medspacy-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with medspacy 1.3.1 (first run only)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "medspacy==1.3.1"], check=True)
    return str(python)


def accuracy(gold: list[str], predicted: list[str]) -> float:
    return sum(g == p for g, p in zip(gold, predicted, strict=True)) / len(gold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed passes over the sentences")
    parser.add_argument("--medspacy-python", help="python of a venv with medspacy 1.3.1")
    args = parser.parse_args()
    rows = load_sentences(SHIPPED_SENTENCES)
    gold = [r["assertion"] for r in rows]
    n = args.repeat * len(rows)

    extractor = ClinicalExtractor()
    context = extractor.context
    ours = [context.assert_mentions(r["text"], [(r["start"], r["end"])])[0][0] for r in rows]  # warm-up
    t = time.perf_counter()
    for _ in range(args.repeat):
        for r in rows:
            context.assert_mentions(r["text"], [(r["start"], r["end"])])
    ours_s = time.perf_counter() - t
    full = [extractor.assert_spans(r["text"], [(r["start"], r["end"])])[0][0] for r in rows]
    t = time.perf_counter()
    for _ in range(args.repeat):
        for r in rows:
            extractor.assert_spans(r["text"], [(r["start"], r["end"])])
    full_s = time.perf_counter() - t

    out = subprocess.run([medspacy_python(args.medspacy_python), str(Path(__file__).with_name("_medspacy_context.py")),
                          str(SHIPPED_SENTENCES), str(args.repeat)], check=True, capture_output=True, text=True)
    theirs = json.loads(out.stdout)

    print(f"{len(rows)} annotated sentences x {args.repeat} passes = {n} sentences, one process each, one core")
    print(f"{'':40} {'sentences/s':>12} {'accuracy':>9}")
    print(f"{'medspaCy ' + theirs['medspacy'] + ' ConText (spaCy ' + theirs['spacy'] + ')':40} "
          f"{theirs['sentences'] / theirs['seconds']:12.0f} {accuracy(gold, theirs['predictions']):9.3f}")
    print(f"{'clinical-mm ConText':40} {n / ours_s:12.0f} {accuracy(gold, ours):9.3f}")
    print(f"{'clinical-mm assert_spans (with sections)':40} {n / full_s:12.0f} {accuracy(gold, full):9.3f}")
    print(f"speed ratio (clinical-mm ConText / medspaCy): {(n / ours_s) / (theirs['sentences'] / theirs['seconds']):.2f}x")
    by = {}
    for g, p in zip(gold, theirs["predictions"], strict=True):
        by.setdefault(g, []).append(g == p)
    print("medspaCy accuracy per gold assertion: " + ", ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in sorted(by.items())))


if __name__ == "__main__":
    main()
