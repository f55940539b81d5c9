"""What a sequence-classification head reads: the final hidden state of the first token, [CLS]."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

# Parameter-name prefixes of the layers AutoModelForSequenceClassification adds (BERT, DistilBERT).
HEAD_PREFIXES = ("classifier", "pre_classifier")


def is_head(parameter_name: str) -> bool:
    """True for a parameter of the new classification head rather than of the pretrained encoder."""
    return parameter_name.startswith(HEAD_PREFIXES)


def cls_logits(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Recompute the head by hand: ``([CLS] vectors, logits)`` for a tokenized batch.

    BERT: logits = classifier(tanh(pooler.dense(h_CLS))); DistilBERT: classifier(relu(pre_classifier(h_CLS))).
    With the model in eval mode (no dropout) the logits equal ``model(**batch).logits``.
    """
    kind = model.config.model_type
    if kind not in ("bert", "distilbert"):
        raise ValueError(f"cls_logits knows BERT and DistilBERT heads, not {kind!r}")
    with torch.no_grad():
        hidden = model.base_model(**batch).last_hidden_state
        cls = hidden[:, 0]
        if kind == "bert":
            pooled = model.bert.pooler.activation(model.bert.pooler.dense(cls))
        else:
            pooled = torch.relu(model.pre_classifier(cls))
        return cls, model.classifier(pooled)
