"""Extractive question answering, all of it: the sliding-window features a BERT-style model reads, the
post-processing from start/end logits back to text, fine-tuning through the training spine, SQuAD
scoring, and answering one question. The data (SQuAD on the hub, Brown cloze questions offline, see
:func:`companion.brown.cloze_questions`) comes from :func:`companion.data.load` ``("qa")``.
"""

from __future__ import annotations

import collections
import re

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase, default_data_collator

from . import data, metrics, settings
from .training import TaskRun, finetune_features

def frequent_name_baseline(context: str) -> str:
    """A reader that does not read the question: the most frequent run of capitalized words in the
    context (a word after a sentence end counts too), or the first word when there is none."""
    names = re.findall(r"[A-Z][\w'.-]*(?: [A-Z][\w'.-]*)*", context)
    return collections.Counter(names).most_common(1)[0][0] if names else context.split()[0]


# --- features: question + context windows ----------------------------------------------------------

def train_features(examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int,
                   stride: int) -> dict[str, list]:
    """Tokenize question + context pairs; a context longer than ``max_length`` becomes several
    windows overlapping by ``stride`` tokens. Each window gets ``start_positions`` /
    ``end_positions``: the answer's first and last token, or 0 and 0 (the ``[CLS]`` token) when the
    answer is not wholly inside that window."""
    enc = _windows(examples, tokenizer, max_length, stride)
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        answers = examples["answers"][enc["overflow_to_sample_mapping"][i]]
        if not answers["text"]:
            starts.append(0)
            ends.append(0)
            continue
        first = answers["answer_start"][0]
        last = first + len(answers["text"][0])
        sequence = enc.sequence_ids(i)
        context = [k for k, s in enumerate(sequence) if s == 1]
        lo, hi = context[0], context[-1]
        if offsets[lo][0] > first or offsets[hi][1] < last:
            starts.append(0)
            ends.append(0)
            continue
        starts.append(next(k for k in range(lo, hi + 1) if offsets[k][1] > first))
        ends.append(next(k for k in range(hi, lo - 1, -1) if offsets[k][0] < last))
    enc["start_positions"], enc["end_positions"] = starts, ends
    enc.pop("offset_mapping")
    enc.pop("overflow_to_sample_mapping")
    return enc


def eval_features(examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int,
                  stride: int) -> dict[str, list]:
    """Like :func:`train_features` without labels; each window keeps its ``example_id`` and the
    character offsets of its context tokens (``None`` for question and special tokens)."""
    enc = _windows(examples, tokenizer, max_length, stride)
    ids, mapping = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ids.append(examples["id"][enc["overflow_to_sample_mapping"][i]])
        sequence = enc.sequence_ids(i)
        mapping.append([o if sequence[k] == 1 else None for k, o in enumerate(offsets)])
    enc["example_id"], enc["offset_mapping"] = ids, mapping
    enc.pop("overflow_to_sample_mapping")
    return enc


def _windows(examples: dict[str, list], tokenizer: PreTrainedTokenizerBase, max_length: int, stride: int):
    if tokenizer.padding_side != "right":
        raise ValueError("question-first windows need a tokenizer that pads on the right")
    questions = [q.strip() for q in examples["question"]]
    room = max_length - stride - 3  # [CLS] question [SEP] passage [SEP]: the passage needs more than the stride
    for question, n in zip(questions, map(len, tokenizer(questions, add_special_tokens=False)["input_ids"])):
        if n >= room:
            raise ValueError(f"a question of {n} tokens leaves no room for the passage in windows of {max_length}"
                             f" tokens with stride {stride} (at most {room - 1}): {question[:60]!r}...")
    return tokenizer(questions, examples["context"], truncation="only_second", max_length=max_length,
                     stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                     padding="max_length")


# --- post-processing: logits back to answer text ---------------------------------------------------

def answers(examples: Dataset, features: Dataset, start_logits: np.ndarray, end_logits: np.ndarray, *,
            n_best: int = 20, max_answer_tokens: int = 30, allow_no_answer: bool = False) -> dict[str, str]:
    """The predicted answer text per example id: over all windows of an example, the context span
    (start <= end, at most ``max_answer_tokens``) with the highest start + end logit. With
    ``allow_no_answer`` (SQuAD 2.0), the empty string when the ``[CLS]`` score of some window beats
    the best span."""
    windows = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        windows[example_id].append(i)
    offsets_all = features["offset_mapping"]
    predictions = {}
    for example in examples:
        best_text, best_score, null_score = "", -np.inf, np.inf
        for i in windows[example["id"]]:
            offsets = offsets_all[i]
            starts, ends = start_logits[i], end_logits[i]
            null_score = min(null_score, float(starts[0] + ends[0]))
            best_ends = np.argsort(ends)[::-1][:n_best]
            for s in np.argsort(starts)[::-1][:n_best]:
                for e in best_ends:
                    if (s >= len(offsets) or e >= len(offsets) or offsets[s] is None or offsets[e] is None
                            or e < s or e - s + 1 > max_answer_tokens):
                        continue
                    score = float(starts[s] + ends[e])
                    if score > best_score:
                        best_score = score
                        best_text = example["context"][offsets[s][0]:offsets[e][1]]
        predictions[example["id"]] = "" if allow_no_answer and null_score > best_score else best_text
    return predictions


def references(examples: Dataset) -> list[dict[str, object]]:
    """The gold answers in the form the ``squad`` metric takes."""
    return [{"id": ex["id"], "answers": ex["answers"]} for ex in examples]


def predictions_for_metric(predicted: dict[str, str]) -> list[dict[str, str]]:
    """Predicted answers in the form the ``squad`` metric takes."""
    return [{"id": key, "prediction_text": text} for key, text in predicted.items()]


# --- training, scoring and answering ---------------------------------------------------------------

def finetune(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: DatasetDict, *, lr: float,
             name: str = "qa", epochs: float | None = None, profile: settings.Profile | None = None) -> TaskRun:
    """Fine-tune start/end logits on SQuAD-format splits, contexts cut into ``profile.qa.max_length``
    windows overlapping by ``profile.qa.stride`` tokens (:func:`train_features`)."""
    profile = profile or settings.profile()
    data.check(ds, ("id", "context", "question", "answers"))
    columns = ds["train"].column_names
    train = ds["train"].map(lambda b: train_features(b, tokenizer, profile.qa.max_length, profile.qa.stride),
                            batched=True, remove_columns=columns, desc="question windows")
    held = DatasetDict({s: ds[s].map(lambda b: eval_features(b, tokenizer, profile.qa.max_length,
                                                             profile.qa.stride),
                                     batched=True, remove_columns=columns, desc="question windows")
                        for s in ("validation", "test")})
    return finetune_features(model, tokenizer, DatasetDict(train=train, **held), default_data_collator, lr=lr,
                             name=name, epochs=epochs or profile.finetune.epochs, profile=profile)


def logits(model: PreTrainedModel, features: Dataset, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits (windows x tokens) of a QA model over :func:`eval_features`."""
    model.eval()
    starts, ends = [], []
    inputs = features.select_columns([c for c in ("input_ids", "attention_mask", "token_type_ids")
                                      if c in features.column_names]).with_format("torch")
    for start in range(0, len(inputs), batch_size):
        batch = {k: v.to(model.device) for k, v in inputs[start:start + batch_size].items()}
        with torch.no_grad():
            out = model(**batch)
        starts.append(out.start_logits.float().cpu().numpy())
        ends.append(out.end_logits.float().cpu().numpy())
    return np.concatenate(starts), np.concatenate(ends)


def evaluate(model: PreTrainedModel, examples: Dataset, features: Dataset) -> dict[str, object]:
    """Exact match and F1 (SQuAD scoring, in %) of a QA model on ``examples``, with the predictions."""
    start, end = logits(model, features)
    predicted = answers(examples, features, start, end)
    scores = metrics.load("squad").compute(predictions=predictions_for_metric(predicted),
                                           references=references(examples))
    return {**scores, "windows": len(features), "questions": len(examples), "predictions": predicted}


def answer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, question: str, context: str,
           max_length: int = 384, stride: int = 128) -> str:
    """The answer span a QA model picks in ``context`` for ``question``."""
    example = Dataset.from_dict({"id": ["q"], "question": [question], "context": [context],
                                 "answers": [{"text": [], "answer_start": []}]})
    features = example.map(lambda b: eval_features(b, tokenizer, max_length, stride), batched=True,
                           remove_columns=example.column_names)
    return answers(example, features, *logits(model, features))["q"]
