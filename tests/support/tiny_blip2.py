"""A tiny BLIP-2 checkpoint written to disk as a site would stage one: ``Blip2ForConditionalGeneration`` (one
vision layer on 32x32 images, one Q-Former layer with 4 queries, a one-layer OPT; width 32) and its
``Blip2Processor`` (BLIP image processor, a byte-level BPE tokenizer trained here on a few report sentences),
both saved with ``save_pretrained``. Built offline in about a second on two cores.

Randomly initialised, it writes arbitrary text; ``teach`` fits it for a few dozen steps to continue the prompt
with one report whatever the image, so a test can know what it will say.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    OPTConfig,
    PreTrainedTokenizerFast,
)
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

__all__ = ["PROMPT", "REPORTS", "write_tiny_blip2"]

PROMPT = "FINDINGS:"
REPORTS = (
    "FINDINGS: The heart is enlarged. The lungs are clear. IMPRESSION: Cardiomegaly.",
    "FINDINGS: Small left pleural effusion. IMPRESSION: Left pleural effusion.",
    "FINDINGS: Large right pneumothorax. IMPRESSION: Right pneumothorax.",
    "FINDINGS: The lungs are clear. No pneumothorax or pleural effusion. IMPRESSION: No acute disease.",
    "FINDINGS: Patchy right lower lobe consolidation. IMPRESSION: Pneumonia.",
)
QUERIES = 4
IMAGE_SIZE = 32


def _processor() -> Blip2Processor:
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[BOS]", "[EOS]", "<image>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(REPORTS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="[BOS]", eos_token="[EOS]", pad_token="[PAD]",
                                   unk_token="[UNK]")
    image_processor = BlipImageProcessorPil(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    return Blip2Processor(image_processor=image_processor, tokenizer=fast, num_query_tokens=QUERIES)


def _config(processor: Blip2Processor) -> Blip2Config:
    tok = processor.tokenizer
    text = OPTConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, ffn_dim=64, num_attention_heads=2,
                     max_position_embeddings=256, word_embed_proj_dim=32, bos_token_id=tok.bos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return Blip2Config(
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": IMAGE_SIZE, "patch_size": 8},
        qformer_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                        "num_attention_heads": 2, "vocab_size": len(tok)},
        text_config=text.to_dict(), num_query_tokens=QUERIES,
        image_token_index=tok.convert_tokens_to_ids("<image>"))


def _teach(model: Blip2ForConditionalGeneration, processor: Blip2Processor, continuation: str, steps: int) -> None:
    """Fit ``model`` to continue :data:`PROMPT` with ``continuation`` and end, on random images."""
    rng = np.random.default_rng(0)
    images = [(rng.random((40 + 4 * i, 36, 3)) * 255).astype(np.uint8) for i in range(4)]
    batch = processor(images=images, text=[PROMPT + continuation] * len(images), return_tensors="pt")
    prompt_length = len(processor(images=images[:1], text=PROMPT)["input_ids"][0])
    eos = torch.full((len(images), 1), processor.tokenizer.eos_token_id)
    ids = torch.cat([batch["input_ids"], eos], dim=1)
    labels = ids.clone()
    labels[:, :prompt_length] = -100  # the image queries and the prompt are given, not learnt
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(pixel_values=batch["pixel_values"], input_ids=ids, attention_mask=torch.ones_like(ids),
                     labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def write_tiny_blip2(out: Path, *, teach: str | None = None, steps: int = 100, seed: int = 0) -> Path:
    """Write the tiny checkpoint to ``out`` (created) and return it. ``teach``: the report text (after the
    prompt) it is fitted to write."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is many times faster than two on a shared machine
    try:
        torch.manual_seed(seed)
        processor = _processor()
        model = Blip2ForConditionalGeneration(_config(processor))
        if teach is not None:
            _teach(model, processor, teach, steps)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        processor.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
    return out
