"""T5, the encoder-decoder transformer: every task as text in, text out; pretraining by span
corruption; multi-task fine-tuning with task prefixes; generated answers parsed and scored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Callable

import numpy as np
import torch
from datasets import Dataset, DatasetDict, concatenate_datasets
from tokenizers import SentencePieceUnigramTokenizer
from transformers import (DataCollatorForSeq2Seq, PreTrainedModel, PreTrainedTokenizerBase,
                          PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration, set_seed)

from . import data, metrics, qa, resources, settings
from .training import GROUP_BY_LENGTH, T5_PRETRAINING, TEXT_TO_TEXT, Training, cadence, train

SENTINELS = [f"<extra_id_{i}>" for i in range(100)]
NOISE_DENSITY = 0.15  # the T5 paper's defaults
MEAN_SPAN = 3.0
VOCAB_SIZE = 8_000  # of the offline SentencePiece vocabulary, special tokens and sentinels included
SPECIAL = ["<pad>", "</s>", "<unk>"]  # T5's ids 0, 1, 2
# Every T5 run stays in fp32, also on a GPU with bf16: in bf16 mixed precision on an H100 the small T5's
# pretraining gradient norm grew from 7 to 1.8e7 within 3,000 steps and its held-out loss rose from 5.45
# (step 500) to 7.45, where the same run in fp32 kept falling.
FP32 = {"bf16": False}


def tokenizer() -> PreTrainedTokenizerBase:
    """T5's tokenizer: t5-small's SentencePiece vocabulary (32,100 pieces, sentinels ``<extra_id_0..99>``
    built in) from the hub; offline a SentencePiece unigram vocabulary of ``VOCAB_SIZE`` pieces with the
    same special tokens, trained once on the Brown training documents (16 s on 2 cores) and cached."""
    if settings.source() == "hub":
        return resources.tokenizer("t5-small")

    def train_unigram(texts: list[str]) -> str:
        trained = SentencePieceUnigramTokenizer()
        trained.train_from_iterator(texts, vocab_size=VOCAB_SIZE, unk_token="<unk>", special_tokens=SPECIAL + SENTINELS,
                                    show_progress=False)
        return canonical_vocabulary(trained.to_str())

    path = data.trained_on_brown(settings.cache_dir() / "tokenizers" / f"t5-brown-unigram-{VOCAB_SIZE}.json",
                                 f"the offline T5 vocabulary ({VOCAB_SIZE:,} SentencePiece pieces)", train_unigram)
    return PreTrainedTokenizerFast(tokenizer_file=str(path), pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   additional_special_tokens=SENTINELS)


def canonical_vocabulary(tokenizer_json: str) -> str:
    """A trained unigram tokenizer (its JSON) made the same on every run: the special tokens first, as
    trained, then the pieces by score (rounded to 1e-9) and text. The trainer finds the same pieces and
    scores each time, but orders pieces of equal score at random, and gives the characters it must add at
    the end (single characters scored below every longer piece) its lowest scores in random order; those
    get the same scores, handed out in the characters' order."""
    spec = json.loads(tokenizer_json)
    special = {token["content"] for token in spec["added_tokens"]}
    pieces = [p for p in spec["model"]["vocab"] if p[0] not in special]
    floor = min(score for piece, score in pieces if len(piece) > 1)
    added = [p for p in pieces if len(p[0]) == 1 and p[1] <= floor]
    scores = sorted((score for _, score in added), reverse=True)
    pieces = [p for p in pieces if p not in added] + [list(p) for p in zip(sorted(piece for piece, _ in added), scores)]
    rest = sorted(([piece, round(score, 9)] for piece, score in pieces), key=lambda p: (-p[1], p[0]))
    spec["model"]["vocab"] = [p for p in spec["model"]["vocab"] if p[0] in special] + rest
    spec["model"]["unk_id"] = [p[0] for p in spec["model"]["vocab"]].index("<unk>")
    return json.dumps(spec, ensure_ascii=False)


def end_id(tok: PreTrainedTokenizerBase) -> int:
    """The token that ends a sequence: T5's ``</s>``, or ``[SEP]`` for a BERT vocabulary (a warm-started
    encoder-decoder, :func:`companion.resources.warm_started_seq2seq`)."""
    end = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
    if end is None:
        raise ValueError("the tokenizer has neither an end-of-sequence nor a separator token")
    return end


def fit(row: list[int], limit: int, end: int) -> list[int]:
    """``row`` (closed by ``end``) cut to at most ``limit`` tokens, still closed by ``end``."""
    return row if len(row) <= limit else row[:limit - 1] + [end]


def ids(tok: PreTrainedTokenizerBase, text: str | list[str]) -> list[int] | list[list[int]]:
    """Token ids of a text (or of each text), with the tokenizer's own start token if it has one (BERT's
    ``[CLS]``; T5 has none) and ending in exactly one end token (:func:`end_id`)."""
    texts = [text] if isinstance(text, str) else text
    end = end_id(tok)
    rows = [[i for i in row if i != end] + [end] for row in tok(texts, add_special_tokens=True)["input_ids"]]
    return rows[0] if isinstance(text, str) else rows


# --- span corruption ------------------------------------------------------------------------------

def noise_mask(length: int, rng: np.random.Generator, density: float = NOISE_DENSITY,
               mean_span: float = MEAN_SPAN) -> np.ndarray:
    """Which of ``length`` tokens to corrupt, as in the T5 paper: ``round(length * density)`` noise
    tokens in ``round(noise / mean_span)`` spans; span lengths, and the lengths of the kept stretches
    between them, are random partitions; the sequence starts with a kept stretch."""
    if length < 2:
        raise ValueError(f"span corruption needs at least 2 tokens, got {length}")
    noise = min(max(round(length * density), 1), length - 1)
    spans = max(min(round(noise / mean_span), noise, length - noise), 1)

    def partition(total: int) -> np.ndarray:  # total items into `spans` non-empty segments
        cuts = np.sort(rng.choice(np.arange(1, total), spans - 1, replace=False)) if spans > 1 else []
        return np.diff(np.concatenate([[0], cuts, [total]])).astype(int)

    noise_lengths, kept_lengths = partition(noise), partition(length - noise)
    mask = np.zeros(length, dtype=bool)
    position = 0
    for kept, noisy in zip(kept_lengths, noise_lengths):
        position += kept
        mask[position:position + noisy] = True
        position += noisy
    return mask


def corrupt(token_ids: list[int], mask: np.ndarray, sentinel_ids: list[int], eos_id: int
            ) -> tuple[list[int], list[int]]:
    """Input: the kept tokens, each noise span replaced by the next sentinel. Target: each noise span
    after its sentinel, then a final sentinel. Both end with ``eos_id``."""
    if len(token_ids) != len(mask):
        raise ValueError(f"{len(token_ids)} tokens but a mask of {len(mask)}")
    spans = int(mask[0]) + int((mask[1:] & ~mask[:-1]).sum())
    if spans + 1 > len(sentinel_ids):  # one sentinel per span, and one to close the target
        raise ValueError(f"{spans} spans but only {len(sentinel_ids)} sentinels")
    source, target, span = [], [], -1
    for i, (token, noisy) in enumerate(zip(token_ids, mask)):
        if noisy and (i == 0 or not mask[i - 1]):
            span += 1
            source.append(sentinel_ids[span])
            target.append(sentinel_ids[span])
        (target if noisy else source).append(token)
    return source + [eos_id], target + [sentinel_ids[span + 1], eos_id]


def reconstruct(source: list[int], target: list[int], sentinel_ids: list[int], eos_id: int) -> list[int]:
    """The original tokens from a corrupted input and its target: each sentinel of the input is
    replaced by what follows the same sentinel in the target."""
    fills, current = {}, None
    for token in target:
        if token in sentinel_ids:
            current = token
            fills[current] = []
        elif token != eos_id and current is not None:
            fills[current].append(token)
    return list(chain.from_iterable(fills.get(t, []) if t in sentinel_ids else [t]
                                    for t in source if t != eos_id))


@dataclass
class SpanCorruptionCollator:
    """Corrupts each row of ``input_ids`` afresh (seeded), then pads inputs and labels for
    ``T5ForConditionalGeneration`` (label padding -100, so the loss skips it)."""

    tokenizer: PreTrainedTokenizerBase
    seed: int = settings.SEED

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.sentinels = self.tokenizer.convert_tokens_to_ids(SENTINELS)

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        pairs = [corrupt(r["input_ids"], noise_mask(len(r["input_ids"]), self.rng), self.sentinels,
                         self.tokenizer.eos_token_id) for r in rows]
        return DataCollatorForSeq2Seq(self.tokenizer, label_pad_token_id=-100)(
            [{"input_ids": s, "attention_mask": [1] * len(s), "labels": t} for s, t in pairs])


def text_blocks(texts: list[str], tok: PreTrainedTokenizerBase, length: int) -> Dataset:
    """Texts tokenized, concatenated and cut into blocks of ``length`` tokens (before corruption)."""
    stream = list(chain.from_iterable(tok(list(texts), add_special_tokens=False)["input_ids"]))
    blocks = [stream[i:i + length] for i in range(0, len(stream) - length + 1, length)]
    if not blocks:
        raise ValueError(f"the texts hold fewer than {length} tokens")
    return Dataset.from_dict({"input_ids": blocks})


# --- the model ------------------------------------------------------------------------------------

def small_t5(tok: PreTrainedTokenizerBase, profile: settings.Profile | None = None) -> T5ForConditionalGeneration:
    """A T5 with random (seeded) weights: ``lm_layers`` encoder and decoder blocks of width ``lm_width``
    (heads of 32), feed-forward 4x, the tokenizer's vocabulary; decoding starts from ``<pad>``."""
    profile = profile or settings.profile()
    config = T5Config(vocab_size=len(tok), d_model=profile.small.width, d_kv=32, d_ff=4 * profile.small.width,
                      num_layers=profile.small.layers, num_decoder_layers=profile.small.layers,
                      num_heads=max(1, profile.small.width // 32), pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    set_seed(settings.SEED)
    return T5ForConditionalGeneration(config)


def parameter_split(model: PreTrainedModel) -> dict[str, int]:
    """Parameters of the shared token embeddings, the encoder blocks, the decoder blocks (cross-attention
    shown apart) and an untied output layer."""
    shared = model.shared.weight
    counts = {"shared embeddings": shared.numel(), "encoder": 0, "decoder self-attention and MLP": 0,
              "decoder cross-attention": 0, "output layer (untied)": 0}
    for name, param in model.named_parameters():
        if param is shared:
            continue
        if name.startswith("encoder."):
            counts["encoder"] += param.numel()
        elif name.startswith("decoder.") and "EncDecAttention" in name:
            counts["decoder cross-attention"] += param.numel()
        elif name.startswith("decoder."):
            counts["decoder self-attention and MLP"] += param.numel()
        elif name.startswith("lm_head."):
            counts["output layer (untied)"] += param.numel()
    return {**counts, "total": sum(counts.values())}


def pretrain(model: T5ForConditionalGeneration, tok: PreTrainedTokenizerBase, blocks: DatasetDict, *, steps: int,
             lr: float = 2e-3, evals: int = 6, name: str = "t5-pretraining",
             profile: settings.Profile | None = None) -> Training:
    """Train on span-corrupted blocks for ``steps`` updates (AdamW, warmup then cosine decay), scoring
    ``small.eval_blocks`` validation blocks (corrupted with a fixed seed) before and ``evals`` times along."""
    profile = profile or settings.profile()
    held = blocks["validation"]
    if profile.small.eval_blocks is not None and len(held) > profile.small.eval_blocks:
        held = held.shuffle(seed=settings.SEED).select(range(profile.small.eval_blocks))
    fixed = SpanCorruptionCollator(tok, seed=settings.SEED + 1)
    held = Dataset.from_list([{k: v[0].tolist() for k, v in fixed([row]).items()} for row in held])
    return train(model, blocks["train"], name=name, lr=lr, schedule=T5_PRETRAINING, batch_size=profile.batch_size,
                 collator=_Either(SpanCorruptionCollator(tok), DataCollatorForSeq2Seq(tok)), steps=steps,
                 eval_data=held, every=cadence(steps, evals), remove_unused_columns=False, **FP32)


@dataclass
class _Either:
    """Corrupt rows that are plain blocks; pad rows that were corrupted already (the fixed held-out set)."""

    corrupting: SpanCorruptionCollator
    padding: DataCollatorForSeq2Seq

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        return self.padding(rows) if "labels" in rows[0] else self.corrupting(rows)


def generate_text(model: PreTrainedModel, tok: PreTrainedTokenizerBase, inputs: list[str] | list[list[int]], *,
                  max_new_tokens: int = 16, batch_size: int = 32, max_length: int = 512) -> list[str]:
    """Greedy decoding of each input (a text, or token ids), special tokens kept out of the answer
    except sentinels, which span filling needs to show."""
    model.eval()
    answers = []
    keep = set(tok.convert_tokens_to_ids(SENTINELS)) if "<extra_id_0>" in tok.get_vocab() else set()
    drop = set(tok.all_special_ids) - keep
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size]
        rows = ids(tok, list(chunk)) if isinstance(chunk[0], str) else list(chunk)
        rows = [fit(row, max_length, end_id(tok)) for row in rows]
        batch = tok.pad({"input_ids": rows}, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1)
        for row in out.tolist():
            answers.append(tok.decode([t for t in row if t not in drop]).strip())
    return answers


# --- text-to-text tasks ---------------------------------------------------------------------------

PREFIXES = {"sentiment": "sentiment: {text}", "genre": "genre: {text}",
            "qa": "question: {question} context: {context}"}


def sentiment_pairs(ds: Dataset) -> Dataset:
    """``sentiment: <sentence>`` -> ``positive`` / ``negative``."""
    names = ds.features["label"].names
    return Dataset.from_dict({"task": ["sentiment"] * len(ds),
                              "source": [PREFIXES["sentiment"].format(text=t) for t in ds["text"]],
                              "target": [names[i] for i in ds["label"]]})


def genre_pairs(ds: Dataset, words: int = 60, per_document: int = 4) -> Dataset:
    """``genre: <passage of words>`` -> the Brown genre, for ``per_document`` passages of each document
    (taken evenly through it)."""
    names = ds.features["label"].names
    sources, targets = [], []
    for text, label in zip(ds["text"], ds["label"]):
        tokens = text.split()
        starts = np.linspace(0, max(0, len(tokens) - words), per_document).astype(int)
        for s in dict.fromkeys(starts):
            sources.append(PREFIXES["genre"].format(text=" ".join(tokens[s:s + words])))
            targets.append(names[label].replace("_", " "))
    return Dataset.from_dict({"task": ["genre"] * len(sources), "source": sources, "target": targets})


def qa_pairs(ds: Dataset) -> Dataset:
    """``question: <q> context: <passage>`` -> the answer text (the first gold answer)."""
    return Dataset.from_dict({"task": ["qa"] * len(ds),
                              "source": [PREFIXES["qa"].format(question=q, context=c)
                                         for q, c in zip(ds["question"], ds["context"])],
                              "target": [a["text"][0] for a in ds["answers"]], "id": ds["id"],
                              "answers": ds["answers"]})


def mixture(parts: list[Dataset], seed: int = settings.SEED) -> Dataset:
    """The tasks' training pairs in one shuffled set (each task keeps its own number of rows)."""
    columns = ["task", "source", "target"]
    return concatenate_datasets([p.select_columns(columns) for p in parts]).shuffle(seed=seed)


def balanced_mixture(parts: list[Dataset], rows_per_task: int, seed: int = settings.SEED) -> Dataset:
    """The tasks' training pairs in one shuffled set with ``rows_per_task`` pairs of each task, so that
    every task gets the same share of the steps whatever its size: a larger task is sampled (seeded,
    without repeats), a smaller one repeated, whole, as often as needed and then sampled for the rest.
    (T5 mixed its tasks in proportion to their size up to a cap; equal shares suit tasks of a few
    hundred pairs each, where proportional mixing would let the largest crowd out the rest.)"""
    if rows_per_task < 1:
        raise ValueError(f"need at least one pair per task, got {rows_per_task}")
    rng = np.random.default_rng(seed)
    drawn = []
    for number, part in enumerate(parts, 1):
        if len(part) == 0:
            raise ValueError(f"part {number} of {len(parts)} has no pairs")
        whole, rest = divmod(rows_per_task, len(part))
        picked = [*range(len(part))] * whole + rng.choice(len(part), size=rest, replace=False).tolist()
        drawn.append(part.select_columns(["task", "source", "target"]).select(picked))
    return concatenate_datasets(drawn).shuffle(seed=seed)


def evaluate_tasks(model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs_by_task: dict[str, Dataset],
                   labels: dict[str, list[str] | None], *, max_length: int,
                   templates: dict[str, Callable[[dict], str]] | None = None
                   ) -> tuple[dict[str, dict[str, float]], dict[str, list[str]]]:
    """Generate an answer for every pair of every task (its ``source``, or ``templates[task](row)`` to
    phrase it another way), then score each task with :func:`score_task` against ``labels[task]``
    (None for QA). Returns the scores and the answers, both by task."""
    scored, answers_by_task = {}, {}
    for task, pairs in pairs_by_task.items():
        inputs = pairs["source"] if templates is None else [templates[task](row) for row in pairs]
        answers_by_task[task] = generate_text(model, tok, inputs, max_new_tokens=16, max_length=max_length)
        scored[task] = score_task(task, answers_by_task[task], pairs, labels[task])
    return scored, answers_by_task


def seq2seq_features(pairs: Dataset, tok: PreTrainedTokenizerBase, max_source: int, max_target: int) -> Dataset:
    """Sources and targets tokenized (each closed by its end token, truncated to the limits). A target
    loses a leading ``[CLS]``: the decoder of a warm-started model starts from it already."""
    end = end_id(tok)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        sources = [fit(row, max_source, end) for row in ids(tok, batch["source"])]
        targets = [fit(row[1:] if row[0] == tok.cls_token_id else row, max_target, end)
                   for row in ids(tok, batch["target"])]
        return {"input_ids": sources, "attention_mask": [[1] * len(r) for r in sources], "labels": targets}

    return pairs.map(encode, batched=True, remove_columns=pairs.column_names, desc="tokenizing pairs")


def finetune(model: PreTrainedModel, tok: PreTrainedTokenizerBase, pairs: Dataset, *, lr: float, epochs: float,
             max_source: int, max_target: int = 16, name: str = "t5-multitask",
             profile: settings.Profile | None = None) -> Training:
    """Fine-tune on a mixture of text-to-text pairs through the training spine.

    Batches are drawn from pairs of similar input length (``group_by_length``), so a batch of short
    review sentences is not padded to the length of a question's passage. Trainer shuffles the pairs,
    cuts them into groups of up to 50 batches and sorts each group by length, so within a group a
    mixture's tasks come in runs (passages first, review sentences last)."""
    profile = profile or settings.profile()
    if len(pairs) == 0:
        raise ValueError("no training pairs")
    return train(model, seq2seq_features(pairs, tok, max_source, max_target), name=name, lr=lr,
                 schedule=TEXT_TO_TEXT, batch_size=profile.batch_size, epochs=epochs, tokenizer=tok,
                 collator=DataCollatorForSeq2Seq(tok, model=model, label_pad_token_id=-100),
                 **GROUP_BY_LENGTH, **FP32)


def matching_label(answer: str, labels: list[str]) -> str | None:
    """The label a generated answer names (case and surrounding punctuation ignored), or None when it
    is not exactly one of ``labels``."""
    cleaned = answer.strip().strip(".!\"'").strip().lower()
    matches = [label for label in labels if cleaned == label.lower()]
    return matches[0] if matches else None


def score_task(task: str, answers: list[str], pairs: Dataset, labels: list[str] | None = None) -> dict[str, object]:
    """Scores of generated answers: accuracy and invalid answers (not a label) for a classification
    task; SQuAD exact match and F1 for ``qa``."""
    if len(answers) != len(pairs):
        raise ValueError(f"{len(answers)} answers for {len(pairs)} examples")
    if task == "qa":
        predicted = {i: a for i, a in zip(pairs["id"], answers)}
        return metrics.load("squad").compute(predictions=qa.predictions_for_metric(predicted),
                                             references=qa.references(pairs))
    if not labels:
        raise ValueError(f"task {task!r} needs its labels to parse answers")
    parsed = [matching_label(a, labels) for a in answers]
    correct = sum(p == t for p, t in zip(parsed, pairs["target"]))
    return {"accuracy": correct / len(pairs), "invalid": sum(p is None for p in parsed), "examples": len(pairs)}
