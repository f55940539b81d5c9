"""Prompting and in-context learning: prompts as plain text and as chat messages, model answers
parsed to labels, and label-word scoring with a decoder, naively or with the shared prompt prefix
encoded once and its key/value cache reused for every query.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .serving import Endpoint

SYSTEM = "You are a helpful assistant that classifies the sentiment of movie reviews."


@dataclass(frozen=True)
class Template:
    """How a few-shot prompt is laid out: an instruction, then one block per example; the query is
    the same block with the label left for the model to predict."""

    instruction: str = "Classify the sentiment of each movie review as positive or negative.\n\n"
    example: str = "Review: {text}\nSentiment:{label}\n\n"
    label_words: tuple[str, ...] = (" negative", " positive")

    def query(self, text: str) -> str:
        """The block for a sentence to classify, ending where the label word would start."""
        return self.example.split("{label}")[0].format(text=text)

    def prefix(self, shots: list[tuple[str, int]]) -> str:
        """Instruction plus the worked examples: the part every query shares."""
        return self.instruction + "".join(self.example.format(text=t, label=self.label_words[y]) for t, y in shots)


def draw_shots(train: Dataset, k: int, seed: int, balanced: bool = True) -> list[tuple[str, int]]:
    """``k`` (text, label) examples drawn from ``train`` with ``seed``; ``balanced`` takes as many of
    each label as possible (k // labels each, the remainder at random) and shuffles their order."""
    if k < 0:
        raise ValueError(f"the number of shots must be >= 0, got {k}")
    if k > len(train):
        raise ValueError(f"asked for {k} shots from a split of {len(train)} rows")
    rng = np.random.default_rng(seed)
    labels = np.asarray(train["label"])
    if balanced:
        classes = np.unique(labels)
        rows = [int(i) for c in classes for i in rng.choice(np.flatnonzero(labels == c), k // len(classes),
                                                            replace=False)]
        rest = np.setdiff1d(np.arange(len(train)), rows)
        rows += [int(i) for i in rng.choice(rest, k - len(rows), replace=False)]
        rows = [rows[i] for i in rng.permutation(len(rows))]
    else:
        rows = [int(i) for i in rng.choice(len(train), k, replace=False)]
    return [(train[i]["text"], int(train[i]["label"])) for i in rows]


def chat_messages(text: str, labels: list[str], shots: list[tuple[str, int]] = (),
                  system: str | None = SYSTEM) -> list[dict[str, str]]:
    """A chat for an instruction-tuned model: optional system turn, each shot as a user turn with the
    assistant answering its label, then the sentence to classify."""
    ask = f"Is the sentiment of this movie review {' or '.join(labels)}? Answer with one word.\n\nReview: "
    turns = [{"role": "system", "content": system}] if system else []
    for shot, label in shots:
        turns += [{"role": "user", "content": ask + shot}, {"role": "assistant", "content": labels[label]}]
    return turns + [{"role": "user", "content": ask + text}]


def parse_label(answer: str | None, labels: list[str]) -> int | None:
    """The label a free-text answer names: the index of the one label word it contains (case and
    punctuation ignored), or ``None`` (invalid) when it names none or several, or is empty."""
    words = set(re.findall(r"[a-z]+", (answer or "").lower()))
    named = [i for i, label in enumerate(labels) if label.lower() in words]
    return named[0] if len(named) == 1 else None


def label_token_ids(tokenizer: PreTrainedTokenizerBase, label_words: tuple[str, ...]) -> list[int]:
    """The token id of each label word; each must be a single token for one-step scoring."""
    ids = []
    for word in label_words:
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(pieces) != 1:
            raise ValueError(f"label word {word!r} is {len(pieces)} tokens for this tokenizer; choose"
                             " label words that are one token each")
        ids.append(pieces[0])
    return ids


def _encode(tokenizer: PreTrainedTokenizerBase, text: str, first: bool) -> list[int]:
    """Token ids of a prompt part; the tokenizer's start token (if it adds one) goes on the first part only."""
    return tokenizer(text, add_special_tokens=first)["input_ids"]


def score_naive(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prefix: str, queries: list[str],
                label_words: tuple[str, ...]) -> np.ndarray:
    """Log-probabilities (queries x labels) of each label word after prefix + query, running the
    whole prompt through the model once per query."""
    targets = label_token_ids(tokenizer, label_words)
    head = _encode(tokenizer, prefix, first=True)
    model.eval()
    rows = []
    for query in queries:
        ids = torch.tensor([head + _encode(tokenizer, query, first=not head)], device=model.device)
        with torch.no_grad():
            logits = model(input_ids=ids, logits_to_keep=1).logits[0, -1].float()
        rows.append(torch.log_softmax(logits, -1)[targets].cpu().numpy())
    return np.stack(rows)


def score_cached(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prefix: str, queries: list[str],
                 label_words: tuple[str, ...], batch_size: int = 16) -> np.ndarray:
    """Same result as :func:`score_naive` (up to float rounding), but the prefix is run once and its
    key/value cache reused, so each query costs only its own tokens.

    Queries are sorted by length and scored ``batch_size`` at a time: the prefix cache is copied and
    repeated once per row, and shorter queries are padded on the right, where a causal model's real
    tokens never look. Each row's label scores are read at its own last real token."""
    targets = label_token_ids(tokenizer, label_words)
    head = _encode(tokenizer, prefix, first=True)
    if not head:
        return score_naive(model, tokenizer, prefix, queries, label_words)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    model.eval()
    with torch.inference_mode():
        cache = model(input_ids=torch.tensor([head], device=model.device), use_cache=True,
                      logits_to_keep=1).past_key_values
    encoded = [_encode(tokenizer, query, first=False) for query in queries]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    rows = np.zeros((len(queries), len(targets)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        picked = order[start:start + batch_size]
        lengths = [len(encoded[i]) for i in picked]
        width = max(lengths)
        ids = torch.tensor([encoded[i] + [pad] * (width - len(encoded[i])) for i in picked], device=model.device)
        rows_cache = copy.deepcopy(cache)
        rows_cache.batch_repeat_interleave(len(picked))
        ends = sorted(set(n - 1 for n in lengths))  # the positions whose logits are needed
        with torch.inference_mode():
            logits = model(input_ids=ids, past_key_values=rows_cache, use_cache=True,
                           logits_to_keep=torch.tensor(ends, device=model.device)).logits
        last = logits[torch.arange(len(picked)), [ends.index(n - 1) for n in lengths]].float()
        rows[picked] = torch.log_softmax(last, -1)[:, targets].cpu().numpy()
    return rows


def calibrate(log_probs: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Contextual calibration (Zhao et al. 2021): divide each label's probability by the probability
    the same prompt gives it for content-free inputs (e.g. "N/A"), then renormalise. Both arrays hold
    label log-probabilities; ``content_free`` is one row or several (averaged). Returns probabilities."""
    probs = np.exp(log_probs - log_probs.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    free = np.exp(np.atleast_2d(content_free))
    free = (free / free.sum(-1, keepdims=True)).mean(0)
    fixed = probs / free
    return fixed / fixed.sum(-1, keepdims=True)


CONTENT_FREE = ("N/A", "", "[MASK]")  # inputs with no sentiment, for contextual calibration


@dataclass(frozen=True)
class PromptScore:
    """Label-word scoring of one prompt over test sentences."""

    log_probs: np.ndarray  # (sentences x labels)
    accuracy: float
    calibrated_accuracy: float  # after contextual calibration with CONTENT_FREE inputs
    seconds: float


def evaluate_prompt(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, shots: Sequence[tuple[str, int]],
                    test: Dataset, template: Template = Template()) -> PromptScore:
    """Score every sentence of ``test`` (columns text, label) after the prompt built from ``shots``:
    the prediction is the label word with the highest log-probability (prefix KV cache reused)."""
    if len(test) == 0:
        raise ValueError("the test split is empty: nothing to score")
    if "label" not in test.column_names:
        raise ValueError(f"the test split has no 'label' column (columns: {test.column_names})")
    prefix = template.prefix(list(shots))
    start = time.perf_counter()
    scores = score_cached(model, tokenizer, prefix, [template.query(t) for t in test["text"]], template.label_words)
    seconds = time.perf_counter() - start
    free = score_cached(model, tokenizer, prefix, [template.query(t) for t in CONTENT_FREE], template.label_words)
    gold = np.asarray(test["label"])
    return PromptScore(scores, float((scores.argmax(-1) == gold).mean()),
                       float((calibrate(scores, free).argmax(-1) == gold).mean()), seconds)


def few_shot_sweep(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, train: Dataset, test: Dataset,
                   shots: Sequence[int], draws: int, template: Template = Template(), seed: int = 0) -> pd.DataFrame:
    """Accuracy of label-word scoring for each number of ``shots`` and each of ``draws`` random
    balanced draws of examples from ``train`` (one draw for 0 shots, which has nothing to draw).
    Returns one row per (shots, draw): accuracy, calibrated accuracy, seconds."""
    runs = [(k, d) for k in shots for d in range(1 if k == 0 else draws)]
    rows = []
    for k, d in tqdm(runs, desc="few-shot prompts"):
        score = evaluate_prompt(model, tokenizer, draw_shots(train, k, seed=seed + 1_000 * k + d), test, template)
        rows.append({"shots": k, "draw": d, "accuracy": score.accuracy,
                     "calibrated_accuracy": score.calibrated_accuracy, "seconds": score.seconds})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ChatRun:
    """Answers of a chat model to classification prompts, parsed to labels (None: invalid)."""

    answers: list[str]
    predictions: list[int | None]
    seconds: float

    @property
    def invalid(self) -> int:
        return sum(p is None for p in self.predictions)

    def accuracy(self, gold: Sequence[int]) -> float:
        """Share of right answers; an invalid answer counts as wrong."""
        return float(np.mean([p == g for p, g in zip(self.predictions, gold, strict=True)]))


def classify_chat(endpoint: Endpoint, texts: Sequence[str], labels: list[str],
                  shots: Sequence[tuple[str, int]] = (), system: str | None = SYSTEM,
                  temperature: float = 0.0, max_tokens: int = 5) -> ChatRun:
    """Ask the chat model behind ``endpoint`` to name the label of each text (few-shot examples as
    earlier turns) and parse each answer with :func:`parse_label`."""
    answers = []
    start = time.perf_counter()
    for text in tqdm(texts, desc=f"chat {endpoint.model_label}"):
        answers.append(endpoint.chat(chat_messages(text, labels, list(shots), system),
                                     temperature=temperature, max_tokens=max_tokens))
    return ChatRun(answers, [parse_label(a, labels) for a in answers], time.perf_counter() - start)
