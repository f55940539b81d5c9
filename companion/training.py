"""Fine-tuning with ``transformers.Trainer``: tokenize, pad per batch, train, evaluate, predict.

:func:`finetune` is what every classification chapter calls; it returns a :class:`Run` holding the
trainer, the validation curve and the timings, with helpers to score a split and label new text.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from datasets import ClassLabel, DatasetDict
from transformers import (DataCollatorWithPadding, EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase,
                          Trainer, TrainingArguments, set_seed)
from transformers.trainer_utils import TrainOutput

from . import data, heads, metrics, settings


# texts (and, for pair tasks, their second sentences) -> model inputs
Encode = Callable[[list[str], "list[str] | None"], dict[str, list]]


def encoder(tokenizer: PreTrainedTokenizerBase, max_length: int, padding: bool | str = False) -> Encode:
    """The default text (or text pair) -> ``input_ids`` / ``attention_mask`` function: the tokenizer,
    truncating to ``max_length`` and padding only if asked (by default the collator pads each batch
    to its longest row)."""
    def encode(texts: list[str], pairs: list[str] | None = None) -> dict[str, list]:
        return tokenizer(texts, pairs, truncation=True, max_length=max_length, padding=padding)

    return encode


def arguments(name: str, **options: object) -> TrainingArguments:
    """``TrainingArguments`` with the book's fixed choices (output under the cache's ``runs/<name>``,
    no checkpoints, no reporting, the book's seed, the GPU when there is one) plus ``options``."""
    return TrainingArguments(
        output_dir=str(settings.cache_dir() / "runs" / name), save_strategy="no", report_to="none",
        seed=settings.SEED, dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(), **options)


def timed_train(trainer: Trainer) -> tuple[TrainOutput, float]:
    """Run ``trainer.train()``; return its output and the seconds spent training, the validation
    passes it ran along the way excluded."""
    start = time.perf_counter()
    output = trainer.train()
    evaluating = sum(entry.get("eval_runtime", 0.0) for entry in trainer.state.log_history)
    return output, time.perf_counter() - start - evaluating


def tokenize(ds: DatasetDict, encode: Encode) -> DatasetDict:
    """Add the columns ``encode`` makes from each split's ``text`` column (and ``text_pair``, for
    a sentence-pair task)."""
    return ds.map(lambda batch: encode(list(batch["text"]), list(batch["text_pair"]) if "text_pair" in batch
                                       else None), batched=True, desc="tokenizing")


@dataclass
class Run:
    """A finished fine-tuning run."""

    name: str
    trainer: Trainer
    tokenizer: PreTrainedTokenizerBase
    encoded: DatasetDict
    encode: Encode
    learning_rate: float
    history: list[dict[str, float | None]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_examples: int = 0

    @property
    def model(self) -> PreTrainedModel:
        return self.trainer.model

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    @property
    def examples_per_second(self) -> float:
        """Training throughput: examples seen (all epochs) per second of training, validation excluded."""
        return self.train_examples / self.train_seconds if self.train_seconds else float("nan")

    def probabilities(self, split: str) -> np.ndarray:
        """Class probabilities (rows: examples) for a split (``"train"``, ``"validation"``, ``"test"``)."""
        logits = torch.from_numpy(self.trainer.predict(self.encoded[split]).predictions)
        return torch.softmax(logits.float(), dim=-1).numpy()

    def predictions(self, split: str) -> np.ndarray:
        """Predicted label ids for a split."""
        return self.probabilities(split).argmax(axis=-1)

    def evaluate(self, split: str = "test") -> dict[str, object]:
        """Accuracy, precision, recall, F1 and confusion matrix on a split."""
        return metrics.classification(self.predictions(split), self.encoded[split]["label"], len(self.labels))

    def classify(self, texts: list[str], pairs: list[str] | None = None) -> list[dict[str, object]]:
        """Label new sentences (or sentence pairs): encoded exactly as in training, the label with the
        highest probability and that probability."""
        if not texts:
            raise ValueError("no sentences to classify")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} first sentences but {len(pairs)} second sentences")
        encoded = self.encode(texts, pairs)
        rows = [{key: encoded[key][i] for key in encoded} for i in range(len(texts))]
        batch = DataCollatorWithPadding(self.tokenizer)(rows)
        self.model.eval()
        with torch.no_grad():
            logits = self.model(**batch.to(self.model.device)).logits
        probs = torch.softmax(logits.float(), dim=-1).cpu()
        return [{"text": t, "label": self.labels[int(p.argmax())], "score": round(float(p.max()), 4)}
                for t, p in zip(texts, probs)]

    def save(self, folder: Path) -> Path:
        """Save model and tokenizer (safetensors) so ``from_pretrained(folder)`` restores them."""
        self.trainer.save_model(str(folder))
        self.tokenizer.save_pretrained(str(folder))
        return folder


def _history(log: list[dict[str, float]], steps_per_epoch: int) -> list[dict[str, float | None]]:
    """One row per evaluation: epoch, step, last training loss (None before the first), validation
    loss and accuracy."""
    rows: list[dict[str, float | None]] = []
    last_loss = None
    for entry in log:
        if "loss" in entry:
            last_loss = float(entry["loss"])
        if "eval_loss" in entry:
            rows.append({"step": entry["step"], "epoch": round(entry["step"] / steps_per_epoch, 3),
                         "train_loss": last_loss, "eval_loss": float(entry["eval_loss"]),
                         "eval_accuracy": float(entry["eval_accuracy"])})
    return rows


def finetune(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: DatasetDict, *,
             lr: float, name: str, epochs: float | None = None, profile: settings.Profile | None = None,
             warmup: float = 0.1, pad_to: int | None = None, max_steps: int = -1,
             evaluate_during: bool = True, encode: Encode | None = None) -> Run:
    """Fine-tune ``model`` on ``ds`` (text + label splits) with AdamW, linear warmup then decay.

    Sizes come from ``profile`` (default: the active one). ``pad_to`` pads every row to that length
    instead of padding each batch to its longest row; ``max_steps`` caps the number of updates;
    ``encode`` replaces the plain tokenizer call (e.g. to add a decoder's start and extract tokens).
    The validation split is scored before the first step and ``profile.evals_per_epoch`` times per epoch.
    """
    profile = profile or settings.profile()
    data.check(ds)
    labels = ds["train"].features["label"]
    if isinstance(labels, ClassLabel) and labels.num_classes != model.config.num_labels:
        raise ValueError(f"the data has {labels.num_classes} labels but the model head has"
                         f" {model.config.num_labels}")
    encode = encode or encoder(tokenizer, pad_to or profile.max_length, "max_length" if pad_to else False)
    encoded = tokenize(ds, encode)
    steps_per_epoch = math.ceil(len(encoded["train"]) / profile.batch_size)
    every = max(1, steps_per_epoch // profile.evals_per_epoch)
    accuracy = metrics.load("accuracy")

    def score(pred: EvalPrediction) -> dict[str, float]:
        return accuracy.compute(predictions=np.argmax(pred.predictions, -1), references=pred.label_ids)

    set_seed(settings.SEED)
    args = arguments(
        name, learning_rate=lr, num_train_epochs=epochs if epochs is not None else profile.epochs,
        max_steps=max_steps, per_device_train_batch_size=profile.batch_size,
        per_device_eval_batch_size=4 * profile.batch_size, warmup_steps=warmup, weight_decay=0.01,
        eval_strategy="steps" if evaluate_during else "no", eval_steps=every, eval_on_start=evaluate_during,
        logging_steps=every)
    trainer = Trainer(model=model, args=args, train_dataset=encoded["train"],
                      eval_dataset=encoded["validation"], processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=score)
    output, seconds = timed_train(trainer)
    seen = int(round(output.metrics.get("train_samples_per_second", 0) * output.metrics["train_runtime"]))
    history = _history(trainer.state.log_history, steps_per_epoch)
    return Run(name, trainer, tokenizer, encoded, encode, lr, history, seconds, seen)


def weight_change(before: PreTrainedModel, after: PreTrainedModel) -> float:
    """Relative L2 distance ``|after - before| / |before|`` over the weights both share by name,
    i.e. how far fine-tuning moved the pretrained encoder (the new head is not in ``before``)."""
    old = dict(before.named_parameters())
    diff = norm = 0.0
    for key, value in after.named_parameters():
        if key in old and old[key].shape == value.shape and not heads.is_head(key):
            diff += float((value.detach().cpu() - old[key].detach().cpu()).pow(2).sum())
            norm += float(old[key].detach().cpu().pow(2).sum())
    if norm == 0.0:
        raise ValueError("the two models share no weights by name")
    return math.sqrt(diff / norm)
