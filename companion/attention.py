"""Reading a transformer's attention weights, the same way for encoders and decoders."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def weights(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, text: str | tuple[str, str]
            ) -> tuple[list[str], torch.Tensor]:
    """The tokens of ``text`` (a sentence or a pair) and the model's attention weights, shaped
    (layers, heads, query, key)."""
    model.set_attn_implementation("eager")  # the fused kernels do not return their weights
    pair = (text,) if isinstance(text, str) else text
    batch = tokenizer(*pair, return_tensors="pt").to(model.device)
    model.eval()
    with torch.no_grad():
        out = model(**batch, output_attentions=True)
    pieces = tokenizer.convert_ids_to_tokens(batch["input_ids"][0])
    return pieces, torch.stack(out.attentions).squeeze(1).float().cpu()
