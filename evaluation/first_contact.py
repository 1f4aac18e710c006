"""What the context tagger would have done at first contact with each blind note set.

Each blind set was committed before it was scored once; the rules written after it saw it. For a set, this
script checks out the commit that added it (the rules as they stood when it was first scored) in a temporary
git worktree, runs that commit's text de-identifier over the set, trains the context tagger
(:mod:`clinical_mm.deid.text.context_tagger`) only on the sets written before it, adds what the tagger finds
the way the de-identifier does (:meth:`~clinical_mm.deid.text.text_deidentifier.TextDeidentifier.with_context`),
and prints recall and character precision with and without it. The tagger's features read today's word lists
and name model.

    python -m clinical_mm.evaluation.first_contact [--sets phi_notes_blind6,phi_notes_blind7]

Needs the repository's git history (a full clone) and about half a minute per set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from clinical_mm.core.config import PseudonymKey
from clinical_mm.deid.text.text_deidentifier import TextSpan
from clinical_mm.evaluation.deid_training import TRAINING_SETS, fit, training_rows
from clinical_mm.evaluation.phi_note_corpus import SHIPPED_NOTES, AnnotatedNote, load_notes
from clinical_mm.evaluation.text_deid_evaluation import TextDeidScore, score_notes
from clinical_mm.pipeline.text_deidentification import text_deidentifier

__all__ = ["FIRST_CONTACT", "score_with_tagger"]

#: blind set -> the commit that added it, before any rule written after scoring it
FIRST_CONTACT = {
    "phi_notes_blind3": "09cdc56", "phi_notes_blind4": "2ddb35a", "phi_notes_blind5": "22fda9d",
    "phi_notes_blind6": "5a107b1", "phi_notes_blind7": "fa43a27", "phi_notes_blind8": "489683a",
}
_REPOSITORY = Path(__file__).resolve().parents[1]
#: run inside the old commit's worktree (its module paths): its de-identifier's spans of every note, as JSON
_DUMP = """
import json, sys
from clinical_mm.config import PseudonymKey
from clinical_mm.deid.text_deidentifier import TextDeidentifier
texts = [json.loads(line)["text"] for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
spans = TextDeidentifier(PseudonymKey(bytes(32))).find_many(texts)
json.dump([[[s.start, s.end, s.entity_type, s.score] for s in found] for found in spans], open(sys.argv[2], "w"))
"""


def score_with_tagger(notes: list[AnnotatedNote], base: list[list[tuple[int, int, str, float]]],
                      tagger: object) -> TextDeidScore:
    """Score ``base`` (each note's spans) with what ``tagger`` adds to them."""
    deid = text_deidentifier(PseudonymKey(bytes(32)))
    found = {note.text: [(s.start, s.end, s.entity_type)
                         for s in deid.with_context(note.text, [TextSpan(*span) for span in spans], tagger)]
             for note, spans in zip(notes, base, strict=True)}
    return score_notes(notes, lambda text: found[text])


def _old_spans(commit: str, notes_path: Path) -> list[list[tuple[int, int, str, float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        tree, out = Path(tmp) / "tree", Path(tmp) / "spans.json"
        subprocess.run(["git", "-C", str(_REPOSITORY), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True)
        try:
            subprocess.run([sys.executable, "-W", "ignore", "-c", _DUMP, str(notes_path), str(out)], cwd=tree,
                           env={**os.environ, "PYTHONPATH": str(tree)}, check=True)
            return [[(int(s), int(e), str(t), float(p)) for s, e, t, p in found] for found in json.loads(out.read_text())]
        finally:
            subprocess.run(["git", "-C", str(_REPOSITORY), "worktree", "remove", "--force", str(tree)], check=True,
                           capture_output=True)


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(FIRST_CONTACT), help="comma-separated blind sets")
    args = parser.parse_args(argv)
    data_dir = SHIPPED_NOTES.parent
    torch.set_num_threads(1)
    print(f"{'set':<18} {'rules then':>22} {'with the tagger':>22}  tagger trained on")
    for name in args.sets.split(","):
        notes = load_notes(data_dir / f"{name}.jsonl")
        base = _old_spans(FIRST_CONTACT[name], data_dir / f"{name}.jsonl")
        before = TRAINING_SETS[:TRAINING_SETS.index(name)]
        tagger, _, _ = fit(training_rows(data_dir, before))
        old = {n.text: [(s, e, t) for s, e, t, _ in spans] for n, spans in zip(notes, base, strict=True)}
        then = score_notes(notes, old.__getitem__)
        now = score_with_tagger(notes, base, tagger)
        print(f"{name:<18} {then.recall():>10.4f} / {then.precision():.4f} {now.recall():>10.4f} / {now.precision():.4f}"
              f"  {len(before)} sets, up to {before[-1]}", flush=True)


if __name__ == "__main__":
    main()
