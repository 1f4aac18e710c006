"""Report tokenizer: byte-level BPE trained with ``tokenizers`` on report text.

Special tokens have fixed ids (``SPECIAL_IDS``), so the model can be built before the tokenizer is
trained. Byte-level BPE decodes losslessly and never meets an unknown character.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from clinical_mm.core.errors import CheckpointError

__all__ = ["SPECIAL_IDS", "SPECIAL_TOKENS", "ReportTokenizer", "format_question", "format_report", "split_report"]

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[BOS]", "[EOS]", "[CLS]", "[DEC]")
SPECIAL_IDS: dict[str, int] = {"pad": 0, "unk": 1, "bos": 2, "eos": 3, "cls": 4, "dec": 5}


def format_report(findings: str, impression: str) -> str:
    """The one text form of a report that the model reads and writes."""
    return f"FINDINGS: {findings.strip()} IMPRESSION: {impression.strip()}"


def format_question(question: str) -> str:
    """The one text form of a question that the language model reads; the answer follows it."""
    return f"QUESTION: {' '.join(question.split())} ANSWER:"


def split_report(text: str) -> tuple[str, str]:
    """Inverse of :func:`format_report`, tolerant of a missing section."""
    body = text.strip()
    if body.startswith("FINDINGS:"):
        body = body[len("FINDINGS:"):]
    findings, sep, impression = body.partition("IMPRESSION:")
    return findings.strip(), impression.strip() if sep else ""


class ReportTokenizer:
    """Wraps a ``tokenizers.Tokenizer`` with the encodings the model's stages need."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        for name, idx in SPECIAL_IDS.items():
            token = SPECIAL_TOKENS[idx]
            if tokenizer.token_to_id(token) != idx:
                raise CheckpointError(f"tokenizer: special token {token} ({name}) must have id {idx}")
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> ReportTokenizer:
        tok = Tokenizer(models.BPE(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
        tok.train_from_iterator(texts, trainer=trainer)
        return cls(tok)

    @classmethod
    def load(cls, path: Path) -> ReportTokenizer:
        try:
            return cls(Tokenizer.from_file(str(path)))
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise CheckpointError(f"{path}: cannot load tokenizer ({exc.__class__.__name__})") from None

    def save(self, path: Path) -> None:
        self.tokenizer.save(str(path))

    def ids(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def batch(self, texts: list[str], start: str, max_length: int, end: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode ``texts`` as [start] + tokens (+ [EOS]) padded to the longest, truncated to ``max_length``."""
        rows = []
        for t in texts:
            ids = [SPECIAL_IDS[start], *self.ids(t)]
            if end:
                ids.append(SPECIAL_IDS["eos"])
            rows.append(ids[:max_length])
        width = max(len(r) for r in rows)
        ids_t = torch.full((len(rows), width), SPECIAL_IDS["pad"], dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids_t[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return ids_t, mask

    def dialogue(self, questions: list[str], answers: list[str], max_length: int
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[BOS] QUESTION: q ANSWER: a [EOS]`` per pair, padded to the longest; returns ids, attention mask and
        the answer mask (the answer's tokens and [EOS]). A question too long for ``max_length`` loses its end, never
        ``ANSWER:`` (the language model must always see where the answer starts)."""
        rows, starts = [], []
        cue = self.ids(" ANSWER:")
        for q, a in zip(questions, answers, strict=True):
            answer = [*self.ids(f" {a.strip()}"), SPECIAL_IDS["eos"]]
            question = self.ids(format_question(q)[: -len(" ANSWER:")])
            room = max(1, max_length - len(answer) - len(cue) - 1)
            prompt = [SPECIAL_IDS["bos"], *question[:room], *cue]
            rows.append(prompt + answer)
            starts.append(len(prompt))
        width = max(len(r) for r in rows)
        ids_t = torch.full((len(rows), width), SPECIAL_IDS["pad"], dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        answer_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (r, start) in enumerate(zip(rows, starts, strict=True)):
            ids_t[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
            answer_mask[i, start : len(r)] = 1
        return ids_t, mask, answer_mask

    def fixed(self, texts: list[str], length: int) -> torch.Tensor:
        """Encode ``texts`` without special tokens into exactly ``length`` positions (truncated or [PAD]-padded)."""
        ids_t = torch.full((len(texts), length), SPECIAL_IDS["pad"], dtype=torch.long)
        for i, t in enumerate(texts):
            row = self.ids(t)[:length]
            ids_t[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        return ids_t

    def decode(self, ids: list[int]) -> str:
        stop = [i for i in ids if i not in (SPECIAL_IDS["pad"], SPECIAL_IDS["bos"])]
        if SPECIAL_IDS["eos"] in stop:
            stop = stop[: stop.index(SPECIAL_IDS["eos"])]
        return str(self.tokenizer.decode(stop, skip_special_tokens=True)).strip()
