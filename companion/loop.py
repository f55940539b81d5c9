"""Training by hand: the loop that ``Trainer`` runs for every other chapter, written out.

A ``torch.utils.data.Dataset`` of tokenized sentences, a collate function that pads each batch, an
encoder with the classic sentiment head (dropout, one logit, ``BCEWithLogitsLoss``, sigmoid > 0.5), and
:func:`fit`: AdamW, linear warm-up then decay, gradient clipping, optional gradient accumulation and
autocast, a validation pass after each epoch, a progress bar. :func:`accumulated_gradient` shows that
micro-batches accumulated give the gradient of one large batch.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from datasets import Dataset
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from . import settings
from .training import FINETUNING, WEIGHT_DECAY

MAX_GRAD_NORM = 1.0  # gradients clipped to this global norm, as Trainer does by default


class SentenceDataset(torch.utils.data.Dataset):
    """The rows of a ``text`` / ``label`` split, tokenized once (truncated to ``max_length``, not padded):
    item ``i`` is ``{"input_ids": [...], "label": 0 or 1}``."""

    def __init__(self, part: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
        if len(part) == 0:
            raise ValueError("the split is empty: no sentences to train or score on")
        missing = {"text", "label"} - set(part.column_names)
        if missing:
            raise ValueError(f"the split has no {', '.join(sorted(missing))} column (it has {part.column_names})")
        self.input_ids = tokenizer(list(part["text"]), truncation=True, max_length=max_length)["input_ids"]
        self.labels = list(part["label"])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, object]:
        return {"input_ids": self.input_ids[i], "label": self.labels[i]}


def pad_batch(rows: list[dict[str, object]], pad_id: int) -> dict[str, torch.Tensor]:
    """A batch from dataset items: ``input_ids`` padded on the right with ``pad_id`` to the longest row,
    the ``attention_mask`` (1 on real tokens) and the ``labels`` as floats (what BCE reads)."""
    longest = max(len(row["input_ids"]) for row in rows)
    ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row["input_ids"])] = torch.tensor(row["input_ids"])
        mask[i, :len(row["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask,
            "labels": torch.tensor([row["label"] for row in rows], dtype=torch.float)}


def loader(part: Dataset, tokenizer: PreTrainedTokenizerBase, *, batch_size: int, max_length: int,
           shuffle: bool) -> DataLoader:
    """A DataLoader over :class:`SentenceDataset` batches padded by :func:`pad_batch` (shuffled with the
    book's seed when ``shuffle``)."""
    generator = torch.Generator().manual_seed(settings.SEED) if shuffle else None
    return DataLoader(SentenceDataset(part, tokenizer, max_length), batch_size=batch_size, shuffle=shuffle,
                      generator=generator, collate_fn=lambda rows: pad_batch(rows, tokenizer.pad_token_id))


class SentimentClassifier(nn.Module):
    """A pretrained encoder with the classic binary head: the first token's last hidden state, dropout,
    a linear layer to one logit. With ``labels`` the output holds the ``BCEWithLogitsLoss``; a sentence
    is positive when the sigmoid of its logit exceeds 0.5 (a logit above 0)."""

    def __init__(self, encoder: PreTrainedModel, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(encoder.config.hidden_size, 1)
        self.loss = nn.BCEWithLogitsLoss()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        first = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        logits = self.linear(self.dropout(first)).squeeze(-1)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = self.loss(logits.float(), labels.float())
        return out

    @staticmethod
    def predict(logits: torch.Tensor) -> torch.Tensor:
        """Labels 0 / 1 from logits: sigmoid above 0.5."""
        return (torch.sigmoid(logits.float()) > 0.5).long()


def parameter_groups(model: nn.Module, weight_decay: float = WEIGHT_DECAY) -> list[dict[str, object]]:
    """AdamW's two groups, as Trainer makes them: weight decay on the weight matrices, none on biases
    and LayerNorm weights."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@torch.inference_mode()
def evaluate(model: SentimentClassifier, batches: DataLoader, autocast: torch.dtype | None = None) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` over every batch (dropout off), the forward pass in
    ``autocast`` precision when given (e.g. ``torch.bfloat16``)."""
    model.eval()
    loss = correct = seen = 0.0
    device = next(model.parameters()).device
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext():
            out = model(**batch)
        loss += float(out["loss"]) * len(batch["labels"])
        correct += float((model.predict(out["logits"]) == batch["labels"].long()).sum())
        seen += len(batch["labels"])
    return {"loss": loss / seen, "accuracy": correct / seen}


@dataclass
class Fitted:
    """A finished :func:`fit`: the model, one row per epoch (the mean training loss, the validation loss
    and accuracy), the training loss of every optimizer step, and the seconds spent training
    (validation excluded)."""

    model: SentimentClassifier
    history: list[dict[str, float]]
    step_losses: list[float]
    train_seconds: float


def fit(model: SentimentClassifier, train: DataLoader, validation: DataLoader, *, lr: float, epochs: int,
        warmup: float = FINETUNING.warmup, accumulation: int = 1, autocast: torch.dtype | None = None,
        progress: bool = True) -> Fitted:
    """Train ``model`` by hand: for each batch, forward, loss, backward; every ``accumulation`` batches
    clip the gradients to :data:`MAX_GRAD_NORM`, take an AdamW step, move the learning rate along its
    schedule (linear rise over the first ``warmup`` share of the steps, then linear decay to zero) and
    zero the gradients. ``autocast`` (e.g. ``torch.bfloat16``) runs the forward pass in that precision
    (weights and optimizer stay fp32). Seeded with the book's seed; validation after each epoch; the progress
    bar follows tqdm's settings (``TQDM_DISABLE=1`` hides it) unless ``progress`` is False."""
    if accumulation < 1:
        raise ValueError(f"accumulation must be at least 1 batch, got {accumulation}")
    torch.manual_seed(settings.SEED)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(parameter_groups(model), lr=lr)
    total = math.ceil(len(train) / accumulation) * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(warmup * total), total)
    precision = torch.autocast(device.type, dtype=autocast) if autocast is not None else nullcontext()
    history, step_losses, seconds = [], [], 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        start, losses, pending = time.perf_counter(), [], 0.0
        bar = tqdm(train, desc=f"epoch {epoch}/{epochs}", leave=False, **({} if progress else {"disable": True}))
        for i, batch in enumerate(bar, start=1):
            batch = {k: v.to(device) for k, v in batch.items()}
            with precision:
                loss = model(**batch)["loss"] / accumulation  # the mean over the accumulated batches
            loss.backward()
            pending += loss.item()
            if i % accumulation == 0 or i == len(train):
                torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                step_losses.append(pending)
                losses.append(pending)
                bar.set_postfix(loss=f"{pending:.3f}")
                pending = 0.0
        seconds += time.perf_counter() - start
        scores = evaluate(model, validation)
        history.append({"epoch": epoch, "train_loss": sum(losses) / len(losses),
                        "validation_loss": scores["loss"], "validation_accuracy": scores["accuracy"]})
    return Fitted(model, history, step_losses, seconds)


def accumulated_gradient(model: nn.Module, batch: dict[str, torch.Tensor], micro_batches: int) -> float:
    """The largest absolute difference between the gradient of ``batch`` in one pass and the sum of the
    gradients of ``micro_batches`` equal slices of it, each loss divided by ``micro_batches`` (dropout
    off, so both see the same function). Leaves the gradients zeroed."""
    rows = len(batch["labels"])
    if rows % micro_batches:
        raise ValueError(f"{rows} rows do not split into {micro_batches} equal micro-batches")
    model.eval()
    model.zero_grad()
    model(**batch)["loss"].backward()
    whole = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    size = rows // micro_batches
    for start in range(0, rows, size):
        part = {k: v[start:start + size] for k, v in batch.items()}
        longest = int(part["attention_mask"].sum(1).max())  # each micro-batch padded to its own longest row
        part["input_ids"], part["attention_mask"] = part["input_ids"][:, :longest], part["attention_mask"][:, :longest]
        (model(**part)["loss"] / micro_batches).backward()
    parts = [p.grad for p in model.parameters() if p.grad is not None]
    difference = max(float((a - b).abs().max()) for a, b in zip(whole, parts))
    model.zero_grad()
    return difference
