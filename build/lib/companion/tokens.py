"""Showing what a tokenizer does to real sentences: pieces, ids, special tokens, padding, mask."""

from __future__ import annotations

import pandas as pd
from transformers import PreTrainedTokenizerBase


def pieces(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> pd.DataFrame:
    """One row per (sentence, position) after batching ``texts`` the way training does (truncate to
    ``max_length``, pad to the longest): the piece, its id, attention mask and whether it is special."""
    if not texts:
        raise ValueError("no sentences to tokenize")
    batch = tokenizer(texts, truncation=True, max_length=max_length, padding="longest")
    special = set(tokenizer.all_special_ids)
    rows = []
    for row, (ids, mask) in enumerate(zip(batch["input_ids"], batch["attention_mask"])):
        for position, (token_id, attend) in enumerate(zip(ids, mask)):
            rows.append({"sentence": row, "position": position, "piece": tokenizer.convert_ids_to_tokens(token_id),
                         "id": token_id, "attention_mask": attend, "special": token_id in special})
    return pd.DataFrame(rows)


def grid(table: pd.DataFrame, column: str = "piece") -> pd.DataFrame:
    """``pieces`` reshaped to one line per sentence and one column per position."""
    return table.pivot(index="sentence", columns="position", values=column)
