"""Run medspaCy's ConText on annotated sentences; executed by context_vs_medspacy.py with the python of a venv
that has medspacy (it needs spaCy < 3.8, which our own environment cannot have). Prints one JSON object:
the predictions of the first pass and the seconds of the timed passes."""

from __future__ import annotations

import json
import sys
import time

import medspacy
import spacy
from medspacy.context import ConText


def main() -> None:
    path, repeat = sys.argv[1], int(sys.argv[2])
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    nlp = spacy.blank("en")
    context = ConText(nlp)  # medspaCy's default rules

    def assertion(text: str, start: int, end: int) -> str:
        doc = nlp.make_doc(text)
        for i, token in enumerate(doc):  # one sentence: ConText scopes need sentence boundaries
            token.is_sent_start = i == 0
        span = doc.char_span(start, end, label="TARGET", alignment_mode="expand")
        doc.ents = [span]
        context(doc)
        ent = doc.ents[0]
        for attr, name in (("is_family", "family"), ("is_hypothetical", "hypothetical"), ("is_negated", "absent"),
                           ("is_uncertain", "possible"), ("is_historical", "historical")):
            if getattr(ent._, attr):
                return name
        return "present"

    predictions = [assertion(r["text"], r["start"], r["end"]) for r in rows]  # also the warm-up
    t = time.perf_counter()
    for _ in range(repeat):
        for r in rows:
            assertion(r["text"], r["start"], r["end"])
    seconds = time.perf_counter() - t
    print(json.dumps({"medspacy": medspacy.__version__, "spacy": spacy.__version__, "predictions": predictions,
                      "seconds": seconds, "sentences": repeat * len(rows)}))


if __name__ == "__main__":
    main()
