"""Training with ``transformers.Trainer``, set up in one place.

:func:`train` is the spine every objective of the book runs through (the book's fixed choices are
named once above it); it returns a :class:`Training`. :func:`finetune` is what every classification
chapter calls: it checks and tokenizes the data, trains through the spine, and returns a :class:`Run`
with helpers to score a split and label new text.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict
from transformers import (DataCollatorWithPadding, EvalPrediction, PreTrainedModel, PreTrainedTokenizerBase,
                          Trainer, TrainerCallback, TrainingArguments, set_seed)

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


@dataclass(frozen=True)
class Schedule:
    """How the learning rate moves over a run: it rises over the first ``warmup`` share of the steps,
    then decays (``"linear"`` to zero, or along a ``"cosine"``)."""

    warmup: float
    decay: str = "linear"


# The book's fixed choices, named once. Fine-tuning follows BERT's recipe; pretraining a small GPT or T5
# decays along a cosine, as GPT-2's successors do; the text-to-text fine-tuning warms up for less.
FINETUNING = Schedule(warmup=0.1)
TEXT_TO_TEXT = Schedule(warmup=0.05)
GPT_PRETRAINING = Schedule(warmup=0.05, decay="cosine")
BERT_PRETRAINING = Schedule(warmup=0.06)
T5_PRETRAINING = Schedule(warmup=0.05, decay="cosine")
WEIGHT_DECAY = 0.01  # AdamW's decoupled weight decay, every run
# Trainer's sampler that draws each batch from rows of similar length (batches in random order): rows
# padded to the longest of their batch then carry little padding.
GROUP_BY_LENGTH = {"train_sampling_strategy": "group_by_length"}
LOGS_PER_RUN = 10  # training-loss log lines of a run that is not evaluated along the way


def cadence(steps: int, times: int) -> int:
    """Steps between two logs (or evaluations) when ``steps`` steps should hold ``times`` of them."""
    return max(1, steps // times)


def arguments(name: str, arguments_class: type[TrainingArguments] = TrainingArguments,
              **options: object) -> TrainingArguments:
    """``TrainingArguments`` (or the subclass ``arguments_class``, e.g. TRL's ``SFTConfig``) with the
    book's fixed choices (output under the cache's ``runs/<name>``, no checkpoints, no reporting, the
    book's seed, the GPU when there is one, in bf16 mixed precision where it supports bf16: fp32 weights
    and optimizer, bf16 matmuls) plus ``options``, which may override any of them (``bf16=False`` keeps a
    run in fp32)."""
    gpu = torch.cuda.is_available()
    fixed = dict(output_dir=str(settings.cache_dir() / "runs" / name), save_strategy="no", report_to="none",
                 seed=settings.SEED, dataloader_pin_memory=gpu, use_cpu=not gpu,
                 bf16=gpu and torch.cuda.is_bf16_supported())
    return arguments_class(**(fixed | options))


def history(log: list[dict[str, float]], steps_per_epoch: int) -> list[dict[str, float | None]]:
    """One row per evaluation in a Trainer's ``log_history``: step, epoch, the last training loss
    before it (None before the first) and every ``eval_*`` score (runtime figures left out)."""
    rows: list[dict[str, float | None]] = []
    last_loss = None
    for entry in log:
        if "loss" in entry:
            last_loss = float(entry["loss"])
        if "eval_loss" in entry:
            scores = {k: float(v) for k, v in entry.items() if k.startswith("eval_")
                      and not k.endswith(("_runtime", "_per_second"))}
            rows.append({"step": entry["step"], "epoch": round(entry["step"] / steps_per_epoch, 3),
                         "train_loss": last_loss, **scores})
    return rows


@dataclass
class Training:
    """A finished run of :func:`train`, whatever its objective: the trainer (and its model), the
    validation history, the seconds spent training (validation passes excluded) and the examples seen."""

    trainer: Trainer
    history: list[dict[str, float | None]]
    train_seconds: float
    train_examples: int

    @property
    def model(self) -> PreTrainedModel:
        return self.trainer.model

    @property
    def examples_per_second(self) -> float:
        """Training throughput: examples seen (all epochs) per second of training, validation excluded."""
        return self.train_examples / self.train_seconds if self.train_seconds else float("nan")


def train(model: PreTrainedModel, train_data: Dataset, *, name: str, lr: float, schedule: Schedule,
          batch_size: int, collator: Callable | None, epochs: float | None = None, steps: int | None = None,
          eval_data: Dataset | None = None, every: int | None = None, eval_batch_size: int | None = None,
          tokenizer: PreTrainedTokenizerBase | None = None, compute_metrics: Callable | None = None,
          trainer_class: type[Trainer] = Trainer, arguments_class: type[TrainingArguments] = TrainingArguments,
          optimizer: torch.optim.Optimizer | None = None, callbacks: Sequence[TrainerCallback] = (),
          build_only: bool = False, **options: object) -> Training:
    """THE training spine: every objective of the book (classification, tagging, QA, causal LM,
    MLM + NSP, span corruption, text-to-text) runs through here.

    AdamW with :data:`WEIGHT_DECAY` and ``schedule``, ``batch_size`` rows a step, for ``epochs`` passes
    or ``steps`` updates, batches made by ``collator``. With ``eval_data`` the run is scored before the
    first step and every ``every`` steps (``compute_metrics`` adds scores to the loss); without it the
    training loss is logged every ``every`` steps (default :data:`LOGS_PER_RUN` times a run).
    ``trainer_class`` is a Trainer subclass for objectives that compute their loss themselves (or TRL's
    ``SFTTrainer``, with ``arguments_class`` its ``SFTConfig``; ``collator`` None lets it make its own);
    ``optimizer`` replaces Trainer's AdamW (e.g. with a learning rate per parameter group; the schedule
    still scales every group), ``callbacks`` act during training (e.g. unfreeze weights);
    ``options`` go to ``TrainingArguments`` as they are; ``build_only`` returns the trainer set up but
    not run (no history, zero seconds). Seeded with the book's seed."""
    if len(train_data) == 0:
        raise ValueError(f"{name}: the training data set is empty")
    if (epochs is None) == (steps is None):
        raise ValueError(f"{name}: give the run's length as epochs or as steps, one of the two")
    steps_per_epoch = math.ceil(len(train_data) / batch_size)
    total = steps if steps is not None else math.ceil(steps_per_epoch * epochs)
    every = every or cadence(total, LOGS_PER_RUN)
    evaluated = eval_data is not None
    set_seed(settings.SEED)
    args = arguments(name, arguments_class, learning_rate=lr, lr_scheduler_type=schedule.decay,
                     warmup_steps=schedule.warmup,
                     weight_decay=WEIGHT_DECAY, per_device_train_batch_size=batch_size,
                     per_device_eval_batch_size=eval_batch_size or batch_size,
                     **({"max_steps": steps} if steps is not None else {"num_train_epochs": epochs}),
                     eval_strategy="steps" if evaluated else "no", eval_steps=every if evaluated else None,
                     eval_on_start=evaluated, logging_steps=every, **options)
    trainer = trainer_class(model=model, args=args, train_dataset=train_data, eval_dataset=eval_data,
                            processing_class=tokenizer, data_collator=collator, compute_metrics=compute_metrics,
                            optimizers=(optimizer, None), callbacks=list(callbacks))
    if build_only:
        return Training(trainer, [], 0.0, 0)
    start = time.perf_counter()
    output = trainer.train()
    evaluating = sum(entry.get("eval_runtime", 0.0) for entry in trainer.state.log_history)
    seen = int(round(output.metrics.get("train_samples_per_second", 0) * output.metrics["train_runtime"]))
    return Training(trainer, history(trainer.state.log_history, steps_per_epoch),
                    time.perf_counter() - start - evaluating, seen)


def tokenize(ds: DatasetDict, encode: Encode) -> DatasetDict:
    """Add the columns ``encode`` makes from each split's ``text`` column (and ``text_pair``, for
    a sentence-pair task)."""
    return ds.map(lambda batch: encode(list(batch["text"]), list(batch["text_pair"]) if "text_pair" in batch
                                       else None), batched=True, desc="tokenizing")


def by_length(part: Dataset) -> tuple[Dataset, np.ndarray]:
    """The rows of a tokenized split sorted by length (shortest first), and the order they came from:
    ``sorted[i]`` is row ``order[i]`` of ``part``. Batches of similar rows need little padding."""
    order = np.argsort([len(ids) for ids in part["input_ids"]], kind="stable")
    return part.select(order), order


@dataclass
class Run(Training):
    """A finished classification fine-tuning run (:func:`finetune`): the :class:`Training` plus what it
    takes to score a split and label new text as training encoded it."""

    name: str
    tokenizer: PreTrainedTokenizerBase
    encoded: DatasetDict
    encode: Encode
    learning_rate: float

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def probabilities(self, split: str) -> np.ndarray:
        """Class probabilities (rows: examples, in the split's order) for a split (``"train"``,
        ``"validation"``, ``"test"``); scored in batches of rows of similar length, which need little padding.
        (Not ``Trainer.predict``: with length-grouped batches it returns rows in its sampler's order.)"""
        part, order = by_length(self.encoded[split])
        part = part.select_columns([c for c in part.column_names if c in self.tokenizer.model_input_names])
        size = self.trainer.args.per_device_eval_batch_size
        scored = [self._softmax(list(part.select(range(i, min(i + size, len(part))))))
                  for i in range(0, len(part), size)]
        probs = np.empty((len(part), self.model.config.num_labels), dtype=np.float32)
        probs[order] = torch.cat(scored).numpy()
        return probs

    def _softmax(self, rows: list[dict[str, list[int]]]) -> torch.Tensor:
        """Class probabilities of encoded rows, padded together as one batch (on the CPU)."""
        batch = DataCollatorWithPadding(self.tokenizer)(rows).to(self.model.device)
        self.model.eval()
        with torch.inference_mode():
            return torch.softmax(self.model(**batch).logits.float(), dim=-1).cpu()

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
        probs = self._softmax([{key: encoded[key][i] for key in encoded} for i in range(len(texts))])
        return [{"text": t, "label": self.labels[int(p.argmax())], "score": round(float(p.max()), 4)}
                for t, p in zip(texts, probs)]

    def save(self, folder: Path) -> Path:
        """Save model and tokenizer (safetensors) so ``from_pretrained(folder)`` restores them."""
        self.trainer.save_model(str(folder))
        self.tokenizer.save_pretrained(str(folder))
        return folder


def finetune(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: DatasetDict, *,
             lr: float, name: str, epochs: float | None = None, profile: settings.Profile | None = None,
             schedule: Schedule = FINETUNING, pad_to: int | None = None, max_steps: int = -1,
             evaluate_during: bool = True, encode: Encode | None = None,
             optimizer: torch.optim.Optimizer | None = None, callbacks: Sequence[TrainerCallback] = ()) -> Run:
    """Fine-tune ``model`` on ``ds`` (text + label splits) with AdamW, linear warmup then decay.

    Sizes come from ``profile`` (default: the active one). Rows are padded to the longest of their batch,
    and batches are drawn from rows of similar length (``group_by_length``: little padding left);
    ``pad_to`` pads every row to that length instead; ``max_steps`` caps the number of updates;
    ``encode`` replaces the plain tokenizer call (e.g. to add a decoder's start and extract tokens);
    ``optimizer`` and ``callbacks`` go to :func:`train`.
    The validation split is scored before the first step and ``profile.evals_per_epoch`` times per epoch.
    """
    profile = profile or settings.profile()
    data.check(ds)
    labels = ds["train"].features["label"]
    if isinstance(labels, ClassLabel) and labels.num_classes != model.config.num_labels:
        raise ValueError(f"the data has {labels.num_classes} labels but the model head has"
                         f" {model.config.num_labels}")
    check_rows(ds, model.config.num_labels)
    encode = encode or encoder(tokenizer, pad_to or profile.max_length, "max_length" if pad_to else False)
    encoded = tokenize(ds, encode)
    steps_per_epoch = math.ceil(len(encoded["train"]) / profile.batch_size)
    accuracy = metrics.load("accuracy")

    def score(pred: EvalPrediction) -> dict[str, float]:
        return accuracy.compute(predictions=np.argmax(pred.predictions, -1), references=pred.label_ids)

    length = ({"steps": max_steps} if max_steps > 0
              else {"epochs": epochs if epochs is not None else profile.finetune.epochs})
    done = train(model, encoded["train"], name=name, lr=lr, schedule=schedule, batch_size=profile.batch_size,
                 collator=DataCollatorWithPadding(tokenizer),
                 eval_data=encoded["validation"] if evaluate_during else None,
                 every=cadence(steps_per_epoch, profile.evals_per_epoch), eval_batch_size=4 * profile.batch_size,
                 tokenizer=tokenizer, compute_metrics=score, optimizer=optimizer, callbacks=callbacks, **length,
                 # padded per batch: batches of rows of similar length (in random order) carry little padding;
                 # Trainer's validation passes group rows by length too (their scores do not depend on order)
                 **({} if pad_to else GROUP_BY_LENGTH))
    return Run(done.trainer, done.history, done.train_seconds, done.train_examples, name, tokenizer, encoded,
               encode, lr)


@dataclass
class TaskRun(Training):
    """A finished fine-tuning run over prepared features (token tagging, question answering): the
    :class:`Training`, the tokenizer and the features of every split."""

    tokenizer: PreTrainedTokenizerBase
    features: DatasetDict


def finetune_features(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, features: DatasetDict,
                      collator: Callable, *, lr: float, name: str, epochs: float,
                      profile: settings.Profile) -> TaskRun:
    """Fine-tune on ``features["train"]`` (already tokenized, labels included) through the spine."""
    done = train(model, features["train"], name=name, lr=lr, schedule=FINETUNING, batch_size=profile.batch_size,
                 collator=collator, epochs=epochs, eval_batch_size=4 * profile.batch_size, tokenizer=tokenizer)
    return TaskRun(done.trainer, done.history, done.train_seconds, done.train_examples, tokenizer, features)


def check_rows(ds: DatasetDict, num_labels: int) -> None:
    """Raise ``ValueError`` naming the split, column, row and value when a text (``text``, ``text_pair``)
    is not a string or a label is not a class id of the head (``0 .. num_labels - 1``): caught here, before
    any work, instead of deep inside the tokenizer or the loss."""
    for split, part in ds.items():
        for column in ("text", "text_pair"):
            if column in part.column_names:
                for row, value in enumerate(part[column]):
                    if not isinstance(value, str):
                        raise ValueError(f"the {split!r} split's {column!r} column holds {value!r} (not text)"
                                         f" in row {row}")
        if "label" in part.column_names:
            for row, value in enumerate(part["label"]):
                if not isinstance(value, (int, np.integer)) or not 0 <= value < num_labels:
                    raise ValueError(f"the {split!r} split's 'label' column holds {value!r} in row {row}; the"
                                     f" model's head has labels 0 .. {num_labels - 1}")


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
